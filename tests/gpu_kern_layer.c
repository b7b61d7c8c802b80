/* gpu_kern_layer: RMSNorm (plain and fused residual add), embedding gather (bad ids give zero
 * rows), greedy argmax over a 151936 vocabulary (ties, NaN), and the cuBLAS bf16 linear, each
 * against ref_*. Label gpu; exit 77 without a GPU. */
#include <cublas_v2.h>
#include <string.h>

#include "kernels/ref_layer.h"
#include "kernels/ref_norm.h"
#include "tests/check.h"
#include "tests/gpu_kern_util.h"
#include "tests/kern_test_util.h"

static void test_rmsnorm(struct rng *r, int T, int H, int with_res) {
  bf16_t *x = kt_alloc(2 * (size_t)T * H), *res = kt_alloc(2 * (size_t)T * H), *w = kt_alloc(2 * (size_t)H),
         *out = kt_alloc(2 * (size_t)T * H), *g = kt_alloc(2 * (size_t)T * H);
  kt_fill_bf16(r, x, (int64_t)T * H, 4.0f);
  kt_fill_bf16(r, res, (int64_t)T * H, 4.0f);
  kt_fill_bf16(r, w, H, 1.0f);
  bf16_t *d_x = gk_up(x, 2 * (size_t)T * H), *d_res = gk_up(res, 2 * (size_t)T * H), *d_w = gk_up(w, 2 * (size_t)H),
         *d_out = gk_dev(2 * (size_t)T * H);
  ref_rmsnorm(out, x, with_res ? res : NULL, w, T, H, 1e-6f);
  GK_KERN(kern_rmsnorm(d_out, d_x, with_res ? d_res : NULL, d_w, T, H, 1e-6f, 0));
  gk_down(g, d_out, 2 * (size_t)T * H);
  double e = ref_bf16_nmse(g, out, (int64_t)T * H);
  CHECK_MSG(e <= KT_NMSE_BF16, "rmsnorm T=%d H=%d res=%d: nmse %.3g", T, H, with_res, e);
  if (with_res) {
    gk_down(g, d_res, 2 * (size_t)T * H);
    CHECK_MSG(memcmp(g, res, 2 * (size_t)T * H) == 0, "residual update differs");
  }
  cudaFree(d_x); cudaFree(d_res); cudaFree(d_w); cudaFree(d_out);
  free(x); free(res); free(w); free(out); free(g);
}

static void test_embed_argmax(struct rng *r) {
  enum { V = 151936, H = 512, T = 6 };
  bf16_t *table = kt_alloc(2 * (size_t)V * H), *out = kt_alloc(2 * T * H), *g = kt_alloc(2 * T * H);
  kt_fill_bf16(r, table, (int64_t)V * H, 1.0f);
  int32_t ids[T] = {0, V - 1, 12345, -3, V, 7};
  ref_layer_embed(out, table, ids, T, H, V);
  bf16_t *d_table = gk_up(table, 2 * (size_t)V * H), *d_out = gk_dev(2 * T * H);
  int32_t *d_ids = gk_up(ids, sizeof ids);
  GK_KERN(kern_embed(d_out, d_table, d_ids, T, H, V, 0));
  gk_down(g, d_out, 2 * T * H);
  CHECK(memcmp(g, out, 2 * T * H) == 0);
  /* argmax: rows of random logits, with planted maxima (ties, NaN) */
  bf16_t *lg = table; /* reuse: T rows of V */
  lg[1 * V + 100] = ref_f32_to_bf16(50.f);
  lg[1 * V + 90000] = ref_f32_to_bf16(50.f); /* tie: first index wins */
  lg[2 * V + 5] = 0x7fc0;                      /* NaN never wins */
  lg[2 * V + V - 1] = ref_f32_to_bf16(60.f);
  int32_t want[T], got[T];
  ref_layer_argmax(want, lg, T, V);
  GK_CUDA(cudaMemcpy(d_table, lg, 2 * (size_t)T * V, cudaMemcpyHostToDevice));
  int32_t *d_am = gk_dev(sizeof got);
  GK_KERN(kern_argmax(d_am, d_table, T, V, 0));
  gk_down(got, d_am, sizeof got);
  CHECK(memcmp(want, got, sizeof got) == 0);
  CHECK(got[1] == 100 && got[2] == V - 1);
  cudaFree(d_table); cudaFree(d_out); cudaFree(d_ids); cudaFree(d_am);
  free(table); free(out); free(g);
}

static void test_linear(struct rng *r, int M, int K, int N) {
  cublasHandle_t h;
  CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
  bf16_t *x = kt_alloc(2 * (size_t)M * K), *w = kt_alloc(2 * (size_t)N * K), *y = kt_alloc(2 * (size_t)M * N),
         *g = kt_alloc(2 * (size_t)M * N);
  kt_fill_bf16(r, x, (int64_t)M * K, 1.0f);
  kt_fill_bf16(r, w, (int64_t)N * K, 0.05f);
  ref_layer_linear(y, x, w, M, K, N);
  bf16_t *d_x = gk_up(x, 2 * (size_t)M * K), *d_w = gk_up(w, 2 * (size_t)N * K), *d_y = gk_dev(2 * (size_t)M * N);
  GK_KERN(kern_linear_bf16(h, d_y, d_x, d_w, M, K, N, 0));
  gk_down(g, d_y, 2 * (size_t)M * N);
  double e = ref_bf16_nmse(g, y, (int64_t)M * N);
  CHECK_MSG(e <= KT_NMSE_BF16, "linear M=%d K=%d N=%d: nmse %.3g", M, K, N, e);
  cudaFree(d_x); cudaFree(d_w); cudaFree(d_y);
  free(x); free(w); free(y); free(g);
  cublasDestroy(h);
}

int main(void) {
  if (!gk_have_gpu()) CHECK_SKIP("no CUDA device");
  struct rng r;
  rng_seed(&r, kt_seed("gpu_kern_layer"));
  test_rmsnorm(&r, 1, 4096, 0);
  test_rmsnorm(&r, 7, 4096, 1);
  test_rmsnorm(&r, 3, 2048, 1);
  test_rmsnorm(&r, 2, 16384, 1);
  test_embed_argmax(&r);
  test_linear(&r, 3, 4096, 128);  /* router shape */
  test_linear(&r, 2, 512, 1000);
  return check_report("gpu_kern_layer");
}
