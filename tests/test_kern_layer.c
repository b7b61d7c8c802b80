/* test_kern_layer: embedding gather (out-of-range ids give zeros), the bf16 linear against
 * double, greedy argmax with ties (first index) and NaN (never wins). */
#include <string.h>

#include "kernels/ref_layer.h"
#include "tests/check.h"
#include "tests/kern_test_util.h"

int main(void) {
  struct rng r;
  rng_seed(&r, kt_seed("test_kern_layer"));
  enum { V = 10, H = 16 };
  bf16_t table[V * H], out[3 * H];
  kt_fill_bf16(&r, table, V * H, 1.0f);
  int32_t ids[3] = {9, -1, 10};
  ref_layer_embed(out, table, ids, 3, H, V);
  CHECK(memcmp(out, table + 9 * H, sizeof(bf16_t) * H) == 0);
  int nz = 0;
  for (int i = H; i < 3 * H; i++) nz += out[i] != 0;
  CHECK_MSG(nz == 0, "out-of-range ids must give zero rows (%d nonzero)", nz);

  enum { M = 3, K = 40, N = 7 };
  bf16_t x[M * K], w[N * K], y[M * N];
  double want[M * N];
  kt_fill_bf16(&r, x, M * K, 1.0f);
  kt_fill_bf16(&r, w, N * K, 1.0f);
  ref_layer_linear(y, x, w, M, K, N);
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += (double)ref_bf16_to_f32(x[m * K + k]) * ref_bf16_to_f32(w[n * K + k]);
      want[m * N + n] = s;
    }
  double e = kt_nmse_f64(y, want, M * N);
  CHECK_MSG(e <= KT_NMSE_BF16, "linear nmse %.3g", e);

  bf16_t lg[3 * 5] = {0};
  const float row0[5] = {1, 3, 3, -1, 2}, row2[5] = {-5, -4, -4, -6, -7};
  for (int i = 0; i < 5; i++) {
    lg[i] = ref_f32_to_bf16(row0[i]);
    lg[10 + i] = ref_f32_to_bf16(row2[i]);
  }
  lg[5] = 0x7fc0; /* NaN first in row 1 */
  lg[6] = ref_f32_to_bf16(-1);
  lg[7] = ref_f32_to_bf16(4);
  lg[8] = 0x7fc0;
  lg[9] = ref_f32_to_bf16(4);
  int32_t am[3];
  ref_layer_argmax(am, lg, 3, 5);
  CHECK(am[0] == 1);
  CHECK(am[1] == 2);
  CHECK(am[2] == 1);
  return check_report("test_kern_layer");
}
