/* gpu_kern_w4a16: the GPTQ repack kernels bit-exact against ref_w4a16_repack*, and the W4A16
 * GEMM against ref_w4a16_gemm (NMSE <= 5e-4) for M from 1 to 1024 on Qwen3 shapes and odd
 * ones (N not a multiple of the block tile), with and without the split-K workspace; split-K
 * results repeat bit for bit; unsupported K is refused. Label gpu; exit 77 without a GPU. */
#include <string.h>

#include "kernels/ref_w4a16.h"
#include "tests/check.h"
#include "tests/gpu_kern_util.h"
#include "tests/kern_test_util.h"

static void *g_ws;
static size_t g_ws_bytes;

static void test_shape(struct rng *r, int K, int N, const int *Ms, int nM) {
  int32_t *q = kt_alloc(4 * (size_t)K / 8 * N), *rep = kt_alloc(4 * (size_t)K / 8 * N),
          *rep_gpu = kt_alloc(4 * (size_t)K / 8 * N);
  uint16_t *s = kt_alloc(2 * (size_t)K / 128 * N);
  bf16_t *srep = kt_alloc(2 * (size_t)K / 128 * N), *srep_gpu = kt_alloc(2 * (size_t)K / 128 * N);
  ref_w4a16_random(q, s, K, N, rng_u64(r), 0.001f, 0.02f);
  ref_w4a16_repack(rep, srep, q, s, K, N);
  int32_t *d_q = gk_up(q, 4 * (size_t)K / 8 * N), *d_rep = gk_dev(4 * (size_t)K / 8 * N);
  uint16_t *d_s = gk_up(s, 2 * (size_t)K / 128 * N);
  bf16_t *d_srep = gk_dev(2 * (size_t)K / 128 * N);
  GK_KERN(kern_gptq_repack(d_rep, d_srep, d_q, d_s, K, N, 0));
  gk_down(rep_gpu, d_rep, 4 * (size_t)K / 8 * N);
  gk_down(srep_gpu, d_srep, 2 * (size_t)K / 128 * N);
  CHECK_MSG(memcmp(rep, rep_gpu, 4 * (size_t)K / 8 * N) == 0, "GPU repack qweight differs K=%d N=%d", K, N);
  CHECK_MSG(memcmp(srep, srep_gpu, 2 * (size_t)K / 128 * N) == 0, "GPU repack scales differ K=%d N=%d", K, N);
  for (int i = 0; i < nM; i++) {
    int M = Ms[i];
    bf16_t *x = kt_alloc(2 * (size_t)M * K), *y = kt_alloc(2 * (size_t)M * N), *yg = kt_alloc(2 * (size_t)M * N),
           *yg2 = kt_alloc(2 * (size_t)M * N);
    kt_fill_bf16(r, x, (int64_t)M * K, 1.0f);
    ref_w4a16_gemm(y, x, q, s, M, K, N);
    bf16_t *d_x = gk_up(x, 2 * (size_t)M * K), *d_y = gk_dev(2 * (size_t)M * N);
    for (int use_ws = 0; use_ws < 2; use_ws++) {
      GK_CUDA(cudaMemset(d_y, 0xff, 2 * (size_t)M * N));
      GK_KERN(kern_w4a16_gemm(d_y, d_x, d_rep, d_srep, M, K, N, use_ws ? g_ws : NULL,
                              use_ws ? g_ws_bytes : 0, 0));
      gk_down(yg, d_y, 2 * (size_t)M * N);
      double e = ref_bf16_nmse(yg, y, (int64_t)M * N);
      CHECK_MSG(e <= KT_NMSE_GEMM, "w4a16 GEMM M=%d K=%d N=%d ws=%d: nmse %.3g", M, K, N, use_ws, e);
    }
    GK_KERN(kern_w4a16_gemm(d_y, d_x, d_rep, d_srep, M, K, N, g_ws, g_ws_bytes, 0));
    gk_down(yg2, d_y, 2 * (size_t)M * N);
    CHECK_MSG(memcmp(yg, yg2, 2 * (size_t)M * N) == 0, "GEMM not deterministic M=%d K=%d N=%d", M, K, N);
    cudaFree(d_x); cudaFree(d_y);
    free(x); free(y); free(yg); free(yg2);
  }
  cudaFree(d_q); cudaFree(d_rep); cudaFree(d_s); cudaFree(d_srep);
  free(q); free(rep); free(rep_gpu); free(s); free(srep); free(srep_gpu);
}

static void test_gate_up_repack(struct rng *r) {
  const int K = 512, I = 192;
  size_t nq = (size_t)K / 8 * I, ns = (size_t)K / 128 * I;
  int32_t *qg = kt_alloc(4 * nq), *qu = kt_alloc(4 * nq), *rep = kt_alloc(8 * nq), *rep_gpu = kt_alloc(8 * nq);
  uint16_t *sg = kt_alloc(2 * ns), *su = kt_alloc(2 * ns);
  bf16_t *srep = kt_alloc(4 * ns), *srep_gpu = kt_alloc(4 * ns);
  ref_w4a16_random(qg, sg, K, I, rng_u64(r), 0.001f, 0.02f);
  ref_w4a16_random(qu, su, K, I, rng_u64(r), 0.001f, 0.02f);
  ref_w4a16_repack_gate_up(rep, srep, qg, sg, qu, su, K, I);
  int32_t *d_qg = gk_up(qg, 4 * nq), *d_qu = gk_up(qu, 4 * nq), *d_rep = gk_dev(8 * nq);
  uint16_t *d_sg = gk_up(sg, 2 * ns), *d_su = gk_up(su, 2 * ns);
  bf16_t *d_srep = gk_dev(4 * ns);
  GK_KERN(kern_gptq_repack_gate_up(d_rep, d_srep, d_qg, d_sg, d_qu, d_su, K, I, 0));
  gk_down(rep_gpu, d_rep, 8 * nq);
  gk_down(srep_gpu, d_srep, 4 * ns);
  CHECK(memcmp(rep, rep_gpu, 8 * nq) == 0);
  CHECK(memcmp(srep, srep_gpu, 4 * ns) == 0);
  cudaFree(d_qg); cudaFree(d_qu); cudaFree(d_rep); cudaFree(d_sg); cudaFree(d_su); cudaFree(d_srep);
  free(qg); free(qu); free(rep); free(rep_gpu); free(sg); free(su); free(srep); free(srep_gpu);
}

int main(void) {
  if (!gk_have_gpu()) CHECK_SKIP("no CUDA device");
  struct rng r;
  rng_seed(&r, kt_seed("gpu_kern_w4a16"));
  g_ws_bytes = kern_w4a16_workspace_bytes(1024, 9216);
  g_ws = gk_dev(g_ws_bytes);
  GK_CUDA(cudaMemset(g_ws, 0, g_ws_bytes));
  const int small[] = {1, 2, 7, 8, 9, 16, 17, 31, 32, 33, 64, 65, 100, 256, 1024};
  test_shape(&r, 128, 16, small, (int)(sizeof small / sizeof *small));
  test_shape(&r, 256, 48, small, (int)(sizeof small / sizeof *small));
  test_shape(&r, 1536, 4096, (const int[]){1, 4, 16, 33, 128, 200}, 6); /* expert down (200: a partial second row tile) */
  test_shape(&r, 4096, 3072, (const int[]){1, 8, 16, 64}, 4);        /* expert gate_up */
  test_shape(&r, 4096, 9216, (const int[]){1, 16}, 2);               /* qkv */
  test_shape(&r, 8192, 4096, (const int[]){1, 5}, 2);                /* o_proj */
  test_shape(&r, 1024, 1280, (const int[]){3, 40}, 2);               /* qkv at TP=8 (K slice of o) */
  test_gate_up_repack(&r);
  /* refused shapes: K not a multiple of the group, N not of 16 */
  CHECK(kern_w4a16_gemm(NULL, NULL, NULL, NULL, 1, 192, 4096, NULL, 0, 0) == ERR_INPUT);
  CHECK(kern_w4a16_gemm(NULL, NULL, NULL, NULL, 1, 128, 40, NULL, 0, 0) == ERR_INPUT);
  CHECK(kern_w4a16_gemm(NULL, NULL, NULL, NULL, 0, 128, 16, NULL, 0, 0) == 0);
  cudaFree(g_ws);
  return check_report("gpu_kern_w4a16");
}
