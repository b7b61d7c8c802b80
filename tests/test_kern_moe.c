/* test_kern_moe: the MoE C reference: routing (hand cases, ties, renormalisation), the
 * grouping's invariants (each local pair once, stable order, offsets; experts with 0, 1 and all
 * tokens; an EP range), and the whole MoE block against a plain double computation. */
#include <string.h>

#include "kernels/ref_moe.h"
#include "kernels/ref_w4a16.h"
#include "tests/check.h"
#include "tests/kern_test_util.h"

static void test_route(void) {
  /* logits 0, 2, 1, 2 (two equal maxima): top-2 = ids 1, 3 (tie: lower id first) */
  bf16_t l[4] = {ref_f32_to_bf16(0), ref_f32_to_bf16(2), ref_f32_to_bf16(1), ref_f32_to_bf16(2)};
  int32_t ids[2];
  float w[2];
  ref_moe_route(ids, w, l, 1, 4, 2, 0);
  CHECK(ids[0] == 1 && ids[1] == 3);
  double z = 1 + 2 * exp(2.0) + exp(1.0);
  CHECK_NEAR(w[0], exp(2.0) / z, 1e-6);
  ref_moe_route(ids, w, l, 1, 4, 2, 1);
  CHECK_NEAR(w[0], 0.5, 1e-6);
  CHECK_NEAR(w[0] + w[1], 1.0, 1e-6);
  /* k = E: every expert, sorted by logit */
  int32_t all[4];
  float wa[4];
  ref_moe_route(all, wa, l, 1, 4, 4, 1);
  CHECK(all[0] == 1 && all[1] == 3 && all[2] == 2 && all[3] == 0);
}

static void check_align(const int32_t *ids, int T, int k, int e0, int e1) {
  int nl = e1 - e0, P = T * k;
  int32_t *off = kt_alloc(sizeof(int32_t) * (nl + 1)), *sorted = kt_alloc(sizeof(int32_t) * P),
          *prow = kt_alloc(sizeof(int32_t) * P);
  ref_moe_align(off, sorted, prow, ids, T, k, e0, e1);
  int local = 0, bad = 0;
  for (int p = 0; p < P; p++) local += ids[p] >= e0 && ids[p] < e1;
  CHECK_MSG(off[0] == 0 && off[nl] == local, "offsets end %d, %d local pairs", off[nl], local);
  for (int e = 0; e < nl; e++) {
    int cnt = 0;
    for (int p = 0; p < P; p++) cnt += ids[p] == e0 + e;
    if (off[e + 1] - off[e] != cnt) bad++;
    for (int r = off[e]; r < off[e + 1]; r++) {
      if (ids[sorted[r]] != e0 + e || prow[sorted[r]] != r) bad++;
      if (r > off[e] && sorted[r] <= sorted[r - 1]) bad++; /* ascending pair index */
    }
  }
  for (int p = 0; p < P; p++)
    if ((ids[p] >= e0 && ids[p] < e1) != (prow[p] >= 0)) bad++;
  CHECK_MSG(bad == 0, "align T=%d k=%d [%d,%d): %d violations", T, k, e0, e1, bad);
  free(off); free(sorted); free(prow);
}

static void test_align(struct rng *r) {
  enum { T = 40, K = 4, E = 16 };
  int32_t ids[T * K];
  for (int t = 0; t < T; t++) /* distinct experts per token, as top-k gives */
    for (int j = 0; j < K; j++) ids[t * K + j] = (int32_t)((t * 5 + j * 3) % E);
  check_align(ids, T, K, 0, E);
  check_align(ids, T, K, 4, 8); /* an EP rank's range */
  for (int i = 0; i < T * K; i++) ids[i] = (int32_t)rng_range(r, 0, E - 1);
  check_align(ids, T, K, 0, E);
  check_align(ids, 1, 1, 0, E); /* one token: one expert with 1 row, the rest with 0 */
  int32_t same[T];
  for (int t = 0; t < T; t++) same[t] = 7; /* all tokens on one expert */
  check_align(same, T, 1, 0, E);
  check_align(same, T, 1, 8, E); /* none local */
}

static void test_forward(struct rng *r) {
  enum { T = 6, k = 3, H = 256, I = 128, E = 5, e0 = 1, e1 = 4 };
  int nl = e1 - e0;
  int32_t *qg = kt_alloc(4 * (size_t)nl * H / 8 * I), *qu = kt_alloc(4 * (size_t)nl * H / 8 * I),
          *qd = kt_alloc(4 * (size_t)nl * I / 8 * H);
  uint16_t *sg = kt_alloc(2 * (size_t)nl * H / 128 * I), *su = kt_alloc(2 * (size_t)nl * H / 128 * I),
           *sd = kt_alloc(2 * (size_t)nl * I / 128 * H);
  for (int e = 0; e < nl; e++) {
    ref_w4a16_random(qg + e * H / 8 * I, sg + e * H / 128 * I, H, I, rng_u64(r), 0.005f, 0.02f);
    ref_w4a16_random(qu + e * H / 8 * I, su + e * H / 128 * I, H, I, rng_u64(r), 0.005f, 0.02f);
    ref_w4a16_random(qd + e * I / 8 * H, sd + e * I / 128 * H, I, H, rng_u64(r), 0.005f, 0.02f);
  }
  struct ref_moe_weights w = {qg, qu, qd, sg, su, sd};
  bf16_t *x = kt_alloc(2 * T * H), *out = kt_alloc(2 * T * H);
  kt_fill_bf16(r, x, T * H, 1.0f);
  int32_t ids[T * k];
  float tw[T * k];
  for (int t = 0; t < T; t++)
    for (int j = 0; j < k; j++) {
      ids[t * k + j] = (t + j) % E; /* token 0..: some slots remote (experts 0, 4) */
      tw[t * k + j] = (float)rng_uniform(r);
    }
  CHECK(ref_moe_forward(out, x, ids, tw, &w, T, k, H, I, e0, e1) == 0);
  double *want = kt_alloc(sizeof(double) * T * H);
  float *wg = kt_alloc(4 * H * I), *wu = kt_alloc(4 * H * I), *wd = kt_alloc(4 * I * H);
  double *h = kt_alloc(sizeof(double) * I);
  for (int t = 0; t < T; t++)
    for (int j = 0; j < k; j++) {
      int e = ids[t * k + j] - e0;
      if (e < 0 || e >= nl) continue;
      ref_w4a16_dequant(wg, qg + e * H / 8 * I, sg + e * H / 128 * I, H, I);
      ref_w4a16_dequant(wu, qu + e * H / 8 * I, su + e * H / 128 * I, H, I);
      ref_w4a16_dequant(wd, qd + e * I / 8 * H, sd + e * I / 128 * H, I, H);
      for (int i = 0; i < I; i++) {
        double a = 0, b = 0;
        for (int kk = 0; kk < H; kk++) {
          a += (double)ref_bf16_to_f32(x[t * H + kk]) * wg[kk * I + i];
          b += (double)ref_bf16_to_f32(x[t * H + kk]) * wu[kk * I + i];
        }
        h[i] = a / (1 + exp(-a)) * b;
      }
      for (int n = 0; n < H; n++) {
        double y = 0;
        for (int i = 0; i < I; i++) y += h[i] * wd[i * H + n];
        want[t * H + n] += tw[t * k + j] * y;
      }
    }
  double e = kt_nmse_f64(out, want, T * H);
  CHECK_MSG(e <= KT_NMSE_GEMM, "ref_moe_forward vs double: nmse %.3g", e);
  free(qg); free(qu); free(qd); free(sg); free(su); free(sd); free(x); free(out); free(want);
  free(wg); free(wu); free(wd); free(h);
}

int main(void) {
  struct rng r;
  rng_seed(&r, kt_seed("test_kern_moe"));
  test_route();
  test_align(&r);
  test_forward(&r);
  return check_report("test_kern_moe");
}
