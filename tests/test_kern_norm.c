/* test_kern_norm: RMSNorm (plain and with the fused residual add) against double math, and the
 * q/k norm + neox RoPE: position 0 is the bare norm, rotation keeps each pair's length, and
 * the inner product of q and k depends only on the distance between their positions. */
#include <string.h>

#include "kernels/ref_norm.h"
#include "tests/check.h"
#include "tests/kern_test_util.h"

static void test_rmsnorm(struct rng *r) {
  enum { T = 3, H = 64 };
  bf16_t x[T * H], res[T * H], res0[T * H], w[H], out[T * H];
  kt_fill_bf16(r, x, T * H, 2.0f);
  kt_fill_bf16(r, res, T * H, 1.0f);
  kt_fill_bf16(r, w, H, 1.0f);
  memcpy(res0, res, sizeof res);
  double want[T * H];
  for (int pass = 0; pass < 2; pass++) {
    for (int t = 0; t < T; t++) {
      double ss = 0, v[H];
      for (int i = 0; i < H; i++) {
        v[i] = ref_bf16_to_f32(x[t * H + i]);
        if (pass) v[i] = ref_bf16_round((float)v[i] + ref_bf16_to_f32(res0[t * H + i]));
        ss += v[i] * v[i];
      }
      for (int i = 0; i < H; i++) want[t * H + i] = v[i] / sqrt(ss / H + 1e-6) * ref_bf16_to_f32(w[i]);
    }
    ref_rmsnorm(out, x, pass ? res : NULL, w, T, H, 1e-6f);
    double e = kt_nmse_f64(out, want, T * H);
    CHECK_MSG(e <= KT_NMSE_BF16, "rmsnorm residual=%d nmse %.3g", pass, e);
  }
  int bad = 0;
  for (int i = 0; i < T * H; i++)
    if (res[i] != ref_f32_to_bf16(ref_bf16_to_f32(x[i]) + ref_bf16_to_f32(res0[i]))) bad++;
  CHECK_MSG(bad == 0, "residual not updated to x + residual (%d)", bad);
}

static void test_rope(struct rng *r) {
  enum { nq = 2, nkv = 1, D = 128 };
  const int row = (nq + 2 * nkv) * D;
  bf16_t a[row], b[row], w[D];
  for (int i = 0; i < D; i++) w[i] = ref_f32_to_bf16(1.0f);
  kt_fill_bf16(r, a, row, 1.0f);
  memcpy(b, a, sizeof a);
  int32_t p0 = 0;
  ref_qk_norm_rope(a, w, w, &p0, 1, nq, nkv, D, 1e-6f, 1e6f);
  /* position 0: only the norm; v untouched */
  double ss = 0;
  for (int i = 0; i < D; i++) ss += (double)ref_bf16_to_f32(b[i]) * ref_bf16_to_f32(b[i]);
  CHECK_NEAR(ref_bf16_to_f32(a[5]), ref_bf16_to_f32(b[5]) / sqrt(ss / D + 1e-6), 0.02);
  CHECK(memcmp(a + (nq + nkv) * D, b + (nq + nkv) * D, sizeof(bf16_t) * D) == 0);
  /* relative position property: <q(p), k(p')> depends on p - p' only (the same q and k) */
  bf16_t u[2][row];
  int32_t pos[2] = {7, 1007};
  double dots[2];
  for (int c = 0; c < 2; c++) {
    memcpy(u[c], b, sizeof b);
    ref_qk_norm_rope(u[c], w, w, &pos[c], 1, nq, nkv, D, 1e-6f, 1e6f);
  }
  /* q of token at 7+3, k at 7 vs q at 1007+3, k at 1007 */
  bf16_t q1[row], q2[row];
  memcpy(q1, b, sizeof b);
  memcpy(q2, b, sizeof b);
  int32_t pq[2] = {10, 1010};
  ref_qk_norm_rope(q1, w, w, &pq[0], 1, nq, nkv, D, 1e-6f, 1e6f);
  ref_qk_norm_rope(q2, w, w, &pq[1], 1, nq, nkv, D, 1e-6f, 1e6f);
  dots[0] = dots[1] = 0;
  for (int i = 0; i < D; i++) {
    dots[0] += (double)ref_bf16_to_f32(q1[i]) * ref_bf16_to_f32(u[0][nq * D + i]);
    dots[1] += (double)ref_bf16_to_f32(q2[i]) * ref_bf16_to_f32(u[1][nq * D + i]);
  }
  CHECK_NEAR(dots[0], dots[1], 0.05 * fabs(dots[0]) + 0.5);
  /* a rotation keeps each pair (i, i + D/2) of the normalised head the same length */
  bf16_t n0[row];
  memcpy(n0, b, sizeof b);
  ref_qk_norm_rope(n0, w, w, &p0, 1, nq, nkv, D, 1e-6f, 1e6f);
  int bad = 0;
  for (int i = 0; i < D / 2; i++) {
    double l0 = hypot(ref_bf16_to_f32(n0[i]), ref_bf16_to_f32(n0[i + D / 2]));
    double l1 = hypot(ref_bf16_to_f32(u[1][i]), ref_bf16_to_f32(u[1][i + D / 2]));
    if (fabs(l0 - l1) > 0.01 * l0 + 1e-3) bad++;
  }
  CHECK_MSG(bad == 0, "rope changed %d pair lengths", bad);
}

int main(void) {
  struct rng r;
  rng_seed(&r, kt_seed("test_kern_norm"));
  test_rmsnorm(&r);
  test_rope(&r);
  CHECK_NEAR(ref_norm_rope_inv_freq(0, 128, 1e6f), 1.0, 0);
  CHECK_NEAR(ref_norm_rope_inv_freq(32, 128, 1e6f), 1e-3, 1e-9);
  return check_report("test_kern_norm");
}
