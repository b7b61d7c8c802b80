/* ref_w4a16: GPTQ int4 quantize / dequantize / reference GEMM / tile repack (see the header). */
#include "kernels/ref_w4a16.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float ref_w4a16_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else { /* subnormal: renormalise */
      exp = 1;
      while (!(man & 0x400u)) { man <<= 1; exp--; }
      man &= 0x3ffu;
      u = sign | ((exp + 112) << 23) | (man << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &u, 4);
  return f;
}

uint16_t ref_w4a16_f32_to_f16(float f) {
  /* Round to nearest even through the double path: exact for the normal range we use. */
  uint32_t u;
  memcpy(&u, &f, 4);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  float a = fabsf(f);
  if (a != a) return (uint16_t)(sign | 0x7e00u);
  if (a >= 65520.0f) return (uint16_t)(sign | 0x7c00u);
  if (a < 6.103515625e-05f) { /* subnormal: multiples of 2^-24 */
    int m = (int)nearbyint(a * 16777216.0);
    return (uint16_t)(sign | m);
  }
  int e;
  double m = frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
  double q = nearbyint(m * 2048.0); /* 11 significant bits */
  if (q >= 2048.0) { q /= 2; e++; }
  int exp = e - 1 + 15;
  if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
  return (uint16_t)(sign | (exp << 10) | ((int)q - 1024));
}

int ref_w4a16_get(const int32_t *qweight, int N, int k, int n) {
  return ((uint32_t)qweight[(int64_t)(k / 8) * N + n] >> (4 * (k % 8))) & 0xf;
}

void ref_w4a16_quantize(int32_t *qweight, uint16_t *scales, const float *w, int K, int N) {
  memset(qweight, 0, sizeof(int32_t) * (size_t)(K / 8) * N);
  for (int g = 0; g < K / REF_W4A16_GROUP; g++) {
    for (int n = 0; n < N; n++) {
      float amax = 0;
      for (int k = g * REF_W4A16_GROUP; k < (g + 1) * REF_W4A16_GROUP; k++)
        amax = fmaxf(amax, fabsf(w[(int64_t)k * N + n]));
      uint16_t sh = ref_w4a16_f32_to_f16(amax > 0 ? 2.0f * amax / 15.0f : 1.0f);
      scales[(int64_t)g * N + n] = sh;
      float s = ref_w4a16_f16_to_f32(sh);
      for (int k = g * REF_W4A16_GROUP; k < (g + 1) * REF_W4A16_GROUP; k++) {
        int q = (int)nearbyintf(w[(int64_t)k * N + n] / s) + 8;
        q = q < 0 ? 0 : q > 15 ? 15 : q;
        qweight[(int64_t)(k / 8) * N + n] |= (int32_t)((uint32_t)q << (4 * (k % 8)));
      }
    }
  }
}

/* splitmix64: a self-contained generator so the reference needs nothing from common/. */
static uint64_t ref_w4a16_mix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void ref_w4a16_random(int32_t *qweight, uint16_t *scales, int K, int N, uint64_t seed, float lo,
                      float hi) {
  uint64_t s = seed;
  for (int64_t i = 0; i < (int64_t)(K / 8) * N; i++) qweight[i] = (int32_t)(uint32_t)ref_w4a16_mix(&s);
  for (int64_t i = 0; i < (int64_t)(K / REF_W4A16_GROUP) * N; i++) {
    double u = (double)(ref_w4a16_mix(&s) >> 11) / 9007199254740992.0;
    scales[i] = ref_w4a16_f32_to_f16((float)(lo + (hi - lo) * u));
  }
}

void ref_w4a16_dequant(float *w, const int32_t *qweight, const uint16_t *scales, int K, int N) {
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++)
      w[(int64_t)k * N + n] = ref_w4a16_f16_to_f32(scales[(int64_t)(k / REF_W4A16_GROUP) * N + n]) *
                              (float)(ref_w4a16_get(qweight, N, k, n) - 8);
}

void ref_w4a16_gemm(bf16_t *y, const bf16_t *x, const int32_t *qweight, const uint16_t *scales,
                    int M, int K, int N) {
  /* Dequantise one K row of W at a time (float [N]) and accumulate all M outputs. */
  float *acc = calloc((size_t)M * N, sizeof(float));
  float *wrow = malloc(sizeof(float) * (size_t)N);
  if (!acc || !wrow) abort();
  for (int k = 0; k < K; k++) {
    for (int n = 0; n < N; n++)
      wrow[n] = ref_w4a16_f16_to_f32(scales[(int64_t)(k / REF_W4A16_GROUP) * N + n]) *
                (float)(ref_w4a16_get(qweight, N, k, n) - 8);
    for (int m = 0; m < M; m++) {
      float xv = ref_bf16_to_f32(x[(int64_t)m * K + k]);
      float *a = acc + (int64_t)m * N;
      for (int n = 0; n < N; n++) a[n] += xv * wrow[n];
    }
  }
  for (int64_t i = 0; i < (int64_t)M * N; i++) y[i] = ref_f32_to_bf16(acc[i]);
  free(acc);
  free(wrow);
}

int64_t ref_w4a16_tile_word(int K, int k, int n, int *shift) {
  /* logical k l = 8 (b % 2) + 2t + b / 2 of step s sits in byte b of lane (g, t)'s word */
  int nt = n / 16, r = n % 16, g = r % 8, hi = r / 8;
  int kc = k / 64, s = (k % 64) / 16, l = k % 16, t = (l % 8) / 2, b = l / 8 + 2 * (l % 2);
  *shift = 4 * (2 * b + hi);
  return (((int64_t)nt * (K / 64) + kc) * 8 + g) * 16 + 4 * s + t;
}

/* Generic repack: column c of the tile comes from (src[c], col[c]) of one of two sources. */
static void ref_w4a16_repack_cols(int32_t *qrep, bf16_t *srep, const int32_t *const qw[2],
                                  const uint16_t *const sc[2], int src_n, int K, int N,
                                  int gate_up) {
  memset(qrep, 0, sizeof(int32_t) * (size_t)K / 8 * N);
  for (int c = 0; c < N; c++) {
    int col = c, which = 0;
    if (gate_up) which = ref_w4a16_gate_up_col(c, &col);
    for (int k = 0; k < K; k++) {
      int shift;
      int64_t w = ref_w4a16_tile_word(K, k, c, &shift);
      qrep[w] |= (int32_t)((uint32_t)ref_w4a16_get(qw[which], src_n, k, col) << shift);
    }
    for (int g = 0; g < K / REF_W4A16_GROUP; g++) {
      float s = ref_w4a16_f16_to_f32(sc[which][(int64_t)g * src_n + col]);
      int nt = c / 16, r = c % 16;
      srep[((int64_t)g * (N / 16) + nt) * 16 + (r % 8) * 2 + r / 8] = ref_f32_to_bf16(s);
    }
  }
}

void ref_w4a16_repack(int32_t *qrep, bf16_t *srep, const int32_t *qweight,
                      const uint16_t *scales, int K, int N) {
  const int32_t *qw[2] = {qweight, qweight};
  const uint16_t *sc[2] = {scales, scales};
  ref_w4a16_repack_cols(qrep, srep, qw, sc, N, K, N, 0);
}

void ref_w4a16_unrepack(int32_t *qweight, const int32_t *qrep, int K, int N) {
  memset(qweight, 0, sizeof(int32_t) * (size_t)K / 8 * N);
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) {
      int shift;
      int64_t w = ref_w4a16_tile_word(K, k, n, &shift);
      uint32_t q = ((uint32_t)qrep[w] >> shift) & 0xf;
      qweight[(int64_t)(k / 8) * N + n] |= (int32_t)(q << (4 * (k % 8)));
    }
}

int ref_w4a16_gate_up_col(int c, int *col) {
  int nt = c / 16, r = c % 16;
  *col = nt * 8 + r % 8;
  return r / 8;
}

void ref_w4a16_repack_gate_up(int32_t *qrep, bf16_t *srep, const int32_t *qw_gate,
                              const uint16_t *s_gate, const int32_t *qw_up,
                              const uint16_t *s_up, int K, int I) {
  const int32_t *qw[2] = {qw_gate, qw_up};
  const uint16_t *sc[2] = {s_gate, s_up};
  ref_w4a16_repack_cols(qrep, srep, qw, sc, I, K, 2 * I, 1);
}
