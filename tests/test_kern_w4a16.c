/* test_kern_w4a16: the GPTQ int4 C reference: fp16 conversion, quantize/dequantize error bound,
 * the tile repack round trip (exact), the gate/up interleave, the reference GEMM against a
 * plain double GEMM over dequantised weights, and independent emulations of what the CUDA
 * kernels' mma fragments compute from the tile layout, scaled before the mma or (the preload
 * kernel) after it (so a layout slip fails here, on CPU). */
#include <string.h>

#include "kernels/ref_w4a16.h"
#include "kernels/w4g_layout.h"
#include "tests/check.h"
#include "tests/kern_test_util.h"

static void test_f16(void) {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) continue; /* NaN */
    if (ref_w4a16_f32_to_f16(ref_w4a16_f16_to_f32((uint16_t)h)) != (uint16_t)h) bad++;
  }
  CHECK_MSG(bad == 0, "%d fp16 values do not round-trip", bad);
  CHECK_NEAR(ref_w4a16_f16_to_f32(0x3c00), 1.0, 0);
  CHECK_NEAR(ref_w4a16_f16_to_f32(0xc000), -2.0, 0);
  CHECK_NEAR(ref_w4a16_f16_to_f32(0x0001), 5.960464477539063e-08, 0);
  CHECK(ref_w4a16_f32_to_f16(1.0f + 1.0f / 4096) == 0x3c00); /* tie to even */
}

static void test_quantize(struct rng *r) {
  const int K = 256, N = 48;
  float *w = kt_alloc(sizeof(float) * K * N), *d = kt_alloc(sizeof(float) * K * N);
  int32_t *q = kt_alloc(sizeof(int32_t) * K / 8 * N);
  uint16_t *s = kt_alloc(sizeof(uint16_t) * K / 128 * N);
  for (int i = 0; i < K * N; i++) w[i] = (float)rng_normal(r) * 0.02f;
  ref_w4a16_quantize(q, s, w, K, N);
  ref_w4a16_dequant(d, q, s, K, N);
  int bad = 0;
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) {
      float sc = ref_w4a16_f16_to_f32(s[(k / 128) * N + n]);
      /* symmetric grid -8..7: values up to +7.5 scale round to 7 with error <= scale/2 + fp16 */
      float err = fabsf(w[k * N + n] - d[k * N + n]);
      if (err > 0.5f * sc * 1.01f + 1e-7f) bad++;
    }
  CHECK_MSG(bad == 0, "%d weights off the int4 grid by more than scale/2", bad);
  free(w); free(d); free(q); free(s);
}

static void test_repack_roundtrip(struct rng *r, int K, int N) {
  int32_t *q = kt_alloc(sizeof(int32_t) * K / 8 * N), *rep = kt_alloc(sizeof(int32_t) * K / 8 * N),
          *back = kt_alloc(sizeof(int32_t) * K / 8 * N);
  uint16_t *s = kt_alloc(sizeof(uint16_t) * K / 128 * N);
  bf16_t *srep = kt_alloc(sizeof(bf16_t) * K / 128 * N);
  ref_w4a16_random(q, s, K, N, rng_u64(r), 0.001f, 0.05f);
  ref_w4a16_repack(rep, srep, q, s, K, N);
  ref_w4a16_unrepack(back, rep, K, N);
  CHECK_MSG(memcmp(q, back, sizeof(int32_t) * K / 8 * N) == 0, "repack round trip K=%d N=%d", K, N);
  /* every nibble position used exactly once: the permutation is a bijection */
  int64_t words = (int64_t)K * N / 8;
  unsigned char *seen = kt_alloc((size_t)words * 8);
  int dup = 0;
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) {
      int sh;
      int64_t w = ref_w4a16_tile_word(K, k, n, &sh);
      if (w < 0 || w >= words || seen[w * 8 + sh / 4]++) dup++;
    }
  CHECK_MSG(dup == 0, "tile map not a bijection: %d collisions", dup);
  int sbad = 0;
  for (int g = 0; g < K / 128; g++)
    for (int n = 0; n < N; n++) {
      bf16_t want = ref_f32_to_bf16(ref_w4a16_f16_to_f32(s[g * N + n]));
      if (srep[(g * (N / 16) + n / 16) * 16 + (n % 8) * 2 + (n % 16) / 8] != want) sbad++;
    }
  CHECK_MSG(sbad == 0, "%d repacked scales wrong", sbad);
  free(q); free(rep); free(back); free(s); free(srep); free(seen);
}

static void test_gate_up(struct rng *r) {
  const int K = 256, I = 24;
  int32_t *qg = kt_alloc(sizeof(int32_t) * K / 8 * I), *qu = kt_alloc(sizeof(int32_t) * K / 8 * I);
  uint16_t *sg = kt_alloc(sizeof(uint16_t) * K / 128 * I), *su = kt_alloc(sizeof(uint16_t) * K / 128 * I);
  int32_t *rep = kt_alloc(sizeof(int32_t) * K / 8 * 2 * I), *back = kt_alloc(sizeof(int32_t) * K / 8 * 2 * I);
  bf16_t *srep = kt_alloc(sizeof(bf16_t) * K / 128 * 2 * I);
  ref_w4a16_random(qg, sg, K, I, rng_u64(r), 0.01f, 0.02f);
  ref_w4a16_random(qu, su, K, I, rng_u64(r), 0.03f, 0.04f);
  ref_w4a16_repack_gate_up(rep, srep, qg, sg, qu, su, K, I);
  ref_w4a16_unrepack(back, rep, K, 2 * I);
  int bad = 0, gates = 0;
  for (int c = 0; c < 2 * I; c++) {
    int col, which = ref_w4a16_gate_up_col(c, &col);
    gates += which == 0;
    for (int k = 0; k < K; k++)
      if (ref_w4a16_get(back, 2 * I, k, c) != ref_w4a16_get(which ? qu : qg, I, k, col)) bad++;
  }
  CHECK_MSG(bad == 0, "%d gate/up nibbles misplaced", bad);
  CHECK(gates == I);
  int c13, w13 = ref_w4a16_gate_up_col(13, &c13); /* tile 0 row 13: up column 5 */
  CHECK(w13 == 1 && c13 == 5);
  int c17, w17 = ref_w4a16_gate_up_col(17, &c17); /* tile 1 row 1: gate column 9 */
  CHECK(w17 == 0 && c17 == 9);
  free(qg); free(qu); free(sg); free(su); free(rep); free(back); free(srep);
}

/* What the CUDA kernels compute, derived from the PTX m16n8k16 fragment layout rather than
 * from ref_w4a16_tile_word: A fragment register i/2 (i = 0..7: element a_i) of lane (g, t) is
 * row g + 8*((i/2)%2), logical column l = 2t + i%2 + 8*(i/4), from the low nibbles of bytes 0
 * (i even) and 2 (i odd) of some 32-bit value. The wgmma kernels take that value from the step-s
 * word w4g_word(g, s, t) of the chunk, register r = i/2 shifted right by 4r, and logical column
 * l of step s is real k 16s + l; the mma.sync kernels take it from the lane's own 16 bytes,
 * word w4g_piece_word(s, r) shifted by w4g_piece_shift(s, r), and logical column l of step s is
 * real k 16*((l%8)/2) + 4s + 2*(l/8) + l%2 (their activations: 16 contiguous k a lane). Dequant
 * rounds (q-8)*scale to bf16. */
static void emulate_tile_gemm(double *y, const bf16_t *x, const int32_t *qrep, const bf16_t *srep,
                              int M, int K, int N, int mma_sync) {
  int KC = K / 64;
  memset(y, 0, sizeof(double) * M * N);
  for (int nt = 0; nt < N / 16; nt++)
    for (int kc = 0; kc < KC; kc++)
      for (int lane = 0; lane < 32; lane++)
        for (int s = 0; s < 4; s++) {
          const uint32_t *chunk = (const uint32_t *)qrep + (size_t)(nt * KC + kc) * 128;
          int g = lane / 4, t = lane % 4;
          for (int i = 0; i < 8; i++) {
            int reg = i / 2, row = g + 8 * (reg % 2), l = 2 * t + i % 2 + 8 * (i / 4);
            uint32_t v = mma_sync ? chunk[4 * lane + w4g_piece_word(s, reg)] >> w4g_piece_shift(s, reg)
                                  : chunk[w4g_word(g, s, t)] >> (4 * reg);
            int q = (v >> (16 * (i % 2))) & 0xf;
            int k = kc * 64 + (mma_sync ? 16 * ((l % 8) / 2) + 4 * s + 2 * (l / 8) + l % 2 : 16 * s + l);
            int n = nt * 16 + row;
            float sc = ref_bf16_to_f32(srep[((kc / 2) * (N / 16) + nt) * 16 + g * 2 + row / 8]);
            float w = ref_bf16_round((float)(q - 8) * sc);
            for (int m = 0; m < M; m++) y[m * N + n] += (double)ref_bf16_to_f32(x[m * K + k]) * w;
          }
        }
}

/* What the preload kernel (kern_w4a16_preload.cu, 1..16 rows) computes: the mmas take the weights
 * unscaled, bf16 (0x4300 | q) - 136 = q - 8 exactly (w4_unscaled_piece), in the mma.sync layout
 * above; lane (g, t)'s accumulator r is C[row g + 8 (r / 2)][token 2t + r % 2] of the m16n8k16
 * product, summed over the two chunks of a group, then scaled by the group's scale pair as the
 * kernel loads it -- one 32-bit word at pair index g of the tile, the low half (element 2g, row
 * g) for r < 2 and the high half (element 2g + 1, row g + 8) for r >= 2. M <= 16: tokens 8 mt ..
 * 8 mt + 7 are row tile mt (two tiles for 9..16 rows), lane (g, t)'s accumulator r of tile mt
 * token 8 mt + 2t + r % 2. */
static void emulate_unscaled_gemm(double *y, const bf16_t *x, const int32_t *qrep, const bf16_t *srep,
                                  int M, int K, int N) {
  const int KC = K / 64;
  memset(y, 0, sizeof(double) * M * N);
  for (int nt = 0; nt < N / 16; nt++)
    for (int grp = 0; grp < K / 128; grp++) {
      double c[16][16] = {{0}}; /* C[row][token] of the group's mmas, both row tiles */
      for (int kc = 2 * grp; kc < 2 * grp + 2; kc++)
        for (int s = 0; s < 4; s++) {
          const uint32_t *chunk = (const uint32_t *)qrep + (size_t)(nt * KC + kc) * 128;
          for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < 8; i++) {
              const int g = lane / 4, t = lane % 4, reg = i / 2, row = g + 8 * (reg % 2);
              const int l = 2 * t + i % 2 + 8 * (i / 4);
              const uint32_t v = chunk[4 * lane + w4g_piece_word(s, reg)] >> w4g_piece_shift(s, reg);
              const uint16_t bits = (uint16_t)(0x4300u | ((v >> (16 * (i % 2))) & 0xfu));
              const float a = ref_bf16_round(ref_bf16_to_f32(bits) - 136.0f);
              const int k = kc * 64 + 16 * ((l % 8) / 2) + 4 * s + 2 * (l / 8) + l % 2;
              for (int m = 0; m < M; m++) c[row][m] += (double)a * ref_bf16_to_f32(x[m * K + k]);
            }
        }
      for (int lane = 0; lane < 32; lane++) {
        const int g = lane / 4, t = lane % 4;
        const bf16_t *pair = srep + ((size_t)grp * (N / 16) + nt) * 16 + 2 * g;
        for (int mt = 0; mt < 2; mt++)
          for (int r = 0; r < 4; r++) {
            const int row = g + 8 * (r / 2), tok = 8 * mt + 2 * t + r % 2;
            if (tok < M) y[tok * N + nt * 16 + row] += ref_bf16_to_f32(pair[r < 2 ? 0 : 1]) * c[row][tok];
          }
      }
    }
}

static void test_gemm(struct rng *r, int M, int K, int N) {
  int32_t *q = kt_alloc(sizeof(int32_t) * K / 8 * N), *rep = kt_alloc(sizeof(int32_t) * K / 8 * N);
  uint16_t *s = kt_alloc(sizeof(uint16_t) * K / 128 * N);
  bf16_t *srep = kt_alloc(sizeof(bf16_t) * K / 128 * N), *x = kt_alloc(sizeof(bf16_t) * M * K),
         *y = kt_alloc(sizeof(bf16_t) * M * N);
  float *w = kt_alloc(sizeof(float) * K * N);
  double *naive = kt_alloc(sizeof(double) * M * N), *emu = kt_alloc(sizeof(double) * M * N);
  ref_w4a16_random(q, s, K, N, rng_u64(r), 0.002f, 0.03f);
  kt_fill_bf16(r, x, (int64_t)M * K, 1.0f);
  ref_w4a16_gemm(y, x, q, s, M, K, N);
  ref_w4a16_dequant(w, q, s, K, N);
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double acc = 0;
      for (int k = 0; k < K; k++) acc += (double)ref_bf16_to_f32(x[m * K + k]) * w[k * N + n];
      naive[m * N + n] = acc;
    }
  double e1 = kt_nmse_f64(y, naive, (int64_t)M * N);
  CHECK_MSG(e1 <= KT_NMSE_BF16, "ref GEMM vs naive dequant GEMM M=%d K=%d N=%d: nmse %.3g", M, K, N, e1);
  ref_w4a16_repack(rep, srep, q, s, K, N);
  for (int mma_sync = 0; mma_sync < 2; mma_sync++) {
    emulate_tile_gemm(emu, x, rep, srep, M, K, N, mma_sync);
    double e2 = kt_nmse_f64(y, emu, (int64_t)M * N);
    CHECK_MSG(e2 <= KT_NMSE_GEMM, "tile-layout emulation (%s) vs ref M=%d K=%d N=%d: nmse %.3g",
              mma_sync ? "mma.sync, a lane's 16 bytes" : "wgmma step words", M, K, N, e2);
  }
  if (M <= 16) {
    emulate_unscaled_gemm(emu, x, rep, srep, M, K, N);
    double e3 = kt_nmse_f64(y, emu, (int64_t)M * N);
    CHECK_MSG(e3 <= KT_NMSE_GEMM, "unscaled-weight emulation (preload kernel) vs ref M=%d K=%d N=%d: nmse %.3g", M,
              K, N, e3);
  }
  free(q); free(rep); free(s); free(srep); free(x); free(y); free(w); free(naive); free(emu);
}

int main(void) {
  struct rng r;
  rng_seed(&r, kt_seed("test_kern_w4a16"));
  test_f16();
  test_quantize(&r);
  test_repack_roundtrip(&r, 128, 16);
  test_repack_roundtrip(&r, 384, 80);
  test_repack_roundtrip(&r, 1536, 32);
  test_gate_up(&r);
  test_gemm(&r, 1, 128, 16);
  test_gemm(&r, 5, 256, 48);
  test_gemm(&r, 12, 256, 32); /* two row tiles in the preload kernel */
  test_gemm(&r, 17, 384, 32);
  return check_report("test_kern_w4a16");
}
