/* ref_moe: plain-C fused MoE (see the header for layouts and rounding points). */
#include "kernels/ref_moe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ref_w4a16.h"

void ref_moe_route(int32_t *topk_ids, float *topk_w, const bf16_t *logits, int T, int E, int k,
                   int renorm) {
  for (int t = 0; t < T; t++) {
    const bf16_t *l = logits + (int64_t)t * E;
    float mx = -INFINITY, sum = 0;
    for (int e = 0; e < E; e++) mx = fmaxf(mx, ref_bf16_to_f32(l[e]));
    for (int e = 0; e < E; e++) sum += expf(ref_bf16_to_f32(l[e]) - mx);
    /* Selection by repeated max over the raw logits: the softmax is monotone, and comparing
     * logits avoids ties created by rounding of the exponentials. */
    float wsum = 0;
    for (int j = 0; j < k; j++) {
      int best = -1;
      float bv = -INFINITY;
      for (int e = 0; e < E; e++) {
        int used = 0;
        for (int i = 0; i < j; i++) used |= topk_ids[(int64_t)t * k + i] == e;
        float v = ref_bf16_to_f32(l[e]);
        if (!used && (best < 0 || v > bv)) { best = e; bv = v; }
      }
      topk_ids[(int64_t)t * k + j] = best;
      topk_w[(int64_t)t * k + j] = expf(bv - mx) / sum;
      wsum += topk_w[(int64_t)t * k + j];
    }
    if (renorm)
      for (int j = 0; j < k; j++) topk_w[(int64_t)t * k + j] /= wsum;
  }
}

void ref_moe_align(int32_t *expert_off, int32_t *sorted_pair, int32_t *pair_row,
                   const int32_t *topk_ids, int T, int k, int e0, int e1) {
  int n_local = e1 - e0;
  int64_t P = (int64_t)T * k;
  memset(expert_off, 0, sizeof(int32_t) * (size_t)(n_local + 1));
  for (int64_t p = 0; p < P; p++) {
    int e = topk_ids[p];
    if (e >= e0 && e < e1) expert_off[e - e0 + 1]++;
  }
  for (int e = 0; e < n_local; e++) expert_off[e + 1] += expert_off[e];
  int32_t *fill = malloc(sizeof(int32_t) * (size_t)(n_local + 1));
  if (!fill) abort();
  memcpy(fill, expert_off, sizeof(int32_t) * (size_t)(n_local + 1));
  for (int64_t p = 0; p < P; p++) {
    int e = topk_ids[p];
    if (e >= e0 && e < e1) {
      int r = fill[e - e0]++;
      sorted_pair[r] = (int32_t)p;
      pair_row[p] = r;
    } else {
      pair_row[p] = -1;
    }
  }
  free(fill);
}

/* acc float [n] = x bf16 [K] * W (one expert's checkpoint weights). The group's scales are
 * converted once per group (the reference also serves the benchmark's validation). */
static void ref_moe_row(float *acc, const bf16_t *x, const int32_t *qw, const uint16_t *sc, int K,
                        int N) {
  float *s = malloc(sizeof(float) * (size_t)N);
  if (!s) abort();
  for (int n = 0; n < N; n++) acc[n] = 0;
  for (int g = 0; g < K / REF_W4A16_GROUP; g++) {
    for (int n = 0; n < N; n++) s[n] = ref_w4a16_f16_to_f32(sc[(int64_t)g * N + n]);
    for (int kk = g * REF_W4A16_GROUP; kk < (g + 1) * REF_W4A16_GROUP; kk++) {
      float xv = ref_bf16_to_f32(x[kk]);
      if (xv == 0) continue;
      const int32_t *row = qw + (int64_t)(kk / 8) * N;
      int sh = 4 * (kk % 8);
      for (int n = 0; n < N; n++) acc[n] += xv * s[n] * (float)((int)(((uint32_t)row[n] >> sh) & 0xf) - 8);
    }
  }
  free(s);
}

void ref_moe_gate_up_silu(bf16_t *h, const bf16_t *x, const struct ref_moe_weights *w,
                          const int32_t *expert_off, const int32_t *sorted_pair, int k, int H,
                          int I, int n_local) {
  float *g = malloc(sizeof(float) * (size_t)I), *u = malloc(sizeof(float) * (size_t)I);
  if (!g || !u) abort();
  for (int e = 0; e < n_local; e++) {
    const int32_t *qg = w->qw_gate + (int64_t)e * (H / 8) * I;
    const int32_t *qu = w->qw_up + (int64_t)e * (H / 8) * I;
    const uint16_t *sg = w->s_gate + (int64_t)e * (H / REF_W4A16_GROUP) * I;
    const uint16_t *su = w->s_up + (int64_t)e * (H / REF_W4A16_GROUP) * I;
    for (int r = expert_off[e]; r < expert_off[e + 1]; r++) {
      const bf16_t *xr = x + (int64_t)(sorted_pair[r] / k) * H;
      ref_moe_row(g, xr, qg, sg, H, I);
      ref_moe_row(u, xr, qu, su, H, I);
      for (int i = 0; i < I; i++)
        h[(int64_t)r * I + i] = ref_f32_to_bf16(g[i] / (1.0f + expf(-g[i])) * u[i]);
    }
  }
  free(g);
  free(u);
}

void ref_moe_down(bf16_t *y, const bf16_t *h, const struct ref_moe_weights *w,
                  const int32_t *expert_off, int I, int H, int n_local) {
  float *acc = malloc(sizeof(float) * (size_t)H);
  if (!acc) abort();
  for (int e = 0; e < n_local; e++) {
    const int32_t *qd = w->qw_down + (int64_t)e * (I / 8) * H;
    const uint16_t *sd = w->s_down + (int64_t)e * (I / REF_W4A16_GROUP) * H;
    for (int r = expert_off[e]; r < expert_off[e + 1]; r++) {
      ref_moe_row(acc, h + (int64_t)r * I, qd, sd, I, H);
      for (int n = 0; n < H; n++) y[(int64_t)r * H + n] = ref_f32_to_bf16(acc[n]);
    }
  }
  free(acc);
}

void ref_moe_combine(bf16_t *out, const bf16_t *y, const int32_t *pair_row, const float *topk_w,
                     int T, int k, int H) {
  for (int t = 0; t < T; t++)
    for (int n = 0; n < H; n++) {
      float s = 0;
      for (int j = 0; j < k; j++) {
        int r = pair_row[(int64_t)t * k + j];
        if (r >= 0) s += topk_w[(int64_t)t * k + j] * ref_bf16_to_f32(y[(int64_t)r * H + n]);
      }
      out[(int64_t)t * H + n] = ref_f32_to_bf16(s);
    }
}

int ref_moe_forward(bf16_t *out, const bf16_t *x, const int32_t *topk_ids, const float *topk_w,
                    const struct ref_moe_weights *w, int T, int k, int H, int I, int e0, int e1) {
  int n_local = e1 - e0;
  int64_t P = (int64_t)T * k;
  int32_t *off = malloc(sizeof(int32_t) * (size_t)(n_local + 1));
  int32_t *sorted = malloc(sizeof(int32_t) * (size_t)P), *prow = malloc(sizeof(int32_t) * (size_t)P);
  bf16_t *h = malloc(sizeof(bf16_t) * (size_t)(P * I)), *y = malloc(sizeof(bf16_t) * (size_t)(P * H));
  int rc = -1;
  if (!off || !sorted || !prow || !h || !y) goto done;
  ref_moe_align(off, sorted, prow, topk_ids, T, k, e0, e1);
  ref_moe_gate_up_silu(h, x, w, off, sorted, k, H, I, n_local);
  ref_moe_down(y, h, w, off, I, H, n_local);
  ref_moe_combine(out, y, prow, topk_w, T, k, H);
  rc = 0;
done:
  free(off);
  free(sorted);
  free(prow);
  free(h);
  free(y);
  return rc;
}
