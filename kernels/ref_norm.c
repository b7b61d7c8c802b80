/* ref_norm: plain-C RMSNorm and q/k norm + RoPE. */
#include "kernels/ref_norm.h"

#include <math.h>

void ref_rmsnorm(bf16_t *out, const bf16_t *x, bf16_t *residual, const bf16_t *w, int T, int H,
                 float eps) {
  for (int t = 0; t < T; t++) {
    const bf16_t *xr = x + (int64_t)t * H;
    bf16_t *rr = residual ? residual + (int64_t)t * H : 0;
    float ss = 0;
    for (int i = 0; i < H; i++) {
      float v = ref_bf16_to_f32(xr[i]);
      if (rr) {
        v = ref_bf16_round(v + ref_bf16_to_f32(rr[i]));
        rr[i] = ref_f32_to_bf16(v);
      }
      ss += v * v;
    }
    float inv = 1.0f / sqrtf(ss / (float)H + eps);
    for (int i = 0; i < H; i++) {
      float v = rr ? ref_bf16_to_f32(rr[i]) : ref_bf16_to_f32(xr[i]);
      out[(int64_t)t * H + i] = ref_f32_to_bf16(v * inv * ref_bf16_to_f32(w[i]));
    }
  }
}

float ref_norm_rope_inv_freq(int i, int D, float theta) {
  return (float)pow((double)theta, -2.0 * i / (double)D);
}

/* One head in place: RMSNorm then rotate halves. */
static void ref_norm_head(bf16_t *x, const bf16_t *w, int pos, int D, float eps, float theta) {
  float v[512];
  float ss = 0;
  for (int i = 0; i < D; i++) {
    v[i] = ref_bf16_to_f32(x[i]);
    ss += v[i] * v[i];
  }
  float inv = 1.0f / sqrtf(ss / (float)D + eps);
  for (int i = 0; i < D; i++) v[i] = v[i] * inv * ref_bf16_to_f32(w[i]);
  for (int i = 0; i < D / 2; i++) {
    float ang = (float)pos * ref_norm_rope_inv_freq(i, D, theta);
    float c = cosf(ang), s = sinf(ang);
    float a = v[i], b = v[i + D / 2];
    x[i] = ref_f32_to_bf16(a * c - b * s);
    x[i + D / 2] = ref_f32_to_bf16(b * c + a * s);
  }
}

void ref_qk_norm_rope(bf16_t *qkv, const bf16_t *q_w, const bf16_t *k_w, const int32_t *positions,
                      int T, int nq, int nkv, int D, float eps, float theta) {
  int64_t row = (int64_t)(nq + 2 * nkv) * D;
  for (int t = 0; t < T; t++) {
    bf16_t *r = qkv + t * row;
    for (int h = 0; h < nq; h++) ref_norm_head(r + (int64_t)h * D, q_w, positions[t], D, eps, theta);
    for (int h = 0; h < nkv; h++)
      ref_norm_head(r + (int64_t)(nq + h) * D, k_w, positions[t], D, eps, theta);
  }
}
