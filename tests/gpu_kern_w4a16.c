/* gpu_kern_w4a16: the GPTQ repack kernels bit-exact against ref_w4a16_repack*, and the W4A16
 * GEMM against ref_w4a16_gemm (NMSE <= 5e-4) for M from 1 to 1024 on Qwen3 shapes and odd
 * ones (N not a multiple of the block tile), with and without the split-K workspace; split-K
 * results repeat bit for bit, also over a queue of launches into separate outputs (races
 * between a launch's blocks, or with the launch before it, show as differing bits); a GEMM
 * reading the output of the GEMM queued before it; unsupported K is refused. Label gpu; exit 77
 * without a GPU. */
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

/* Random GPTQ weights of K x N (*q, *s on the host, freed by the caller) and their repacked form
 * on the device (*d_rep, *d_srep; cudaFree by the caller). */
static void test_weights(struct rng *r, int K, int N, int32_t **q, uint16_t **s, int32_t **d_rep, bf16_t **d_srep) {
  *q = kt_alloc(4 * (size_t)K / 8 * N);
  *s = kt_alloc(2 * (size_t)K / 128 * N);
  ref_w4a16_random(*q, *s, K, N, rng_u64(r), 0.001f, 0.02f);
  int32_t *d_q = gk_up(*q, 4 * (size_t)K / 8 * N);
  uint16_t *d_s = gk_up(*s, 2 * (size_t)K / 128 * N);
  *d_rep = gk_dev(4 * (size_t)K / 8 * N);
  *d_srep = gk_dev(2 * (size_t)K / 128 * N);
  GK_KERN(kern_gptq_repack(*d_rep, *d_srep, d_q, d_s, K, N, 0));
  cudaFree(d_q);
  cudaFree(d_s);
}

/* R launches queued back to back (each may overlap the one before: programmatic dependent
 * launch), each into its own output: all bit-identical to a first, synchronised launch */
static void test_repeat(struct rng *r, int K, int N, int M, int R) {
  int32_t *q, *d_rep;
  uint16_t *s;
  bf16_t *d_srep;
  test_weights(r, K, N, &q, &s, &d_rep, &d_srep);
  const size_t ny = (size_t)M * N;
  bf16_t *x = kt_alloc(2 * (size_t)M * K), *y0 = kt_alloc(2 * ny), *yi = kt_alloc(2 * ny);
  kt_fill_bf16(r, x, (int64_t)M * K, 1.0f);
  bf16_t *d_x = gk_up(x, 2 * (size_t)M * K), *d_y = gk_dev(2 * ny * (size_t)(R + 1));
  GK_CUDA(cudaMemset(d_y, 0xff, 2 * ny * (size_t)(R + 1)));
  GK_KERN(kern_w4a16_gemm(d_y, d_x, d_rep, d_srep, M, K, N, g_ws, g_ws_bytes, 0));
  gk_down(y0, d_y, 2 * ny);
  for (int i = 1; i <= R; i++)
    if (kern_w4a16_gemm(d_y + (size_t)i * ny, d_x, d_rep, d_srep, M, K, N, g_ws, g_ws_bytes, 0)) {
      CHECK_MSG(0, "w4a16 GEMM launch %d failed M=%d K=%d N=%d", i, M, K, N);
      break;
    }
  int bad = 0;
  for (int i = 1; i <= R; i++) {
    gk_down(yi, d_y + (size_t)i * ny, 2 * ny);
    bad += memcmp(y0, yi, 2 * ny) != 0;
  }
  CHECK_MSG(bad == 0, "GEMM M=%d K=%d N=%d: %d of %d queued launches differ from the first", M, K, N, bad, R);
  cudaFree(d_rep); cudaFree(d_srep); cudaFree(d_x); cudaFree(d_y);
  free(q); free(s); free(x); free(y0); free(yi);
}

/* Two GEMMs queued back to back, the second reading the first's output (h = x W1, y = h W2), as
 * a layer's kernels do under programmatic dependent launch: the second may start while the
 * first runs and must not read h before its dependency wait (h starts as NaN each round). y is
 * checked against the reference on the h the first wrote, and R rounds must agree bit for bit.
 * Before kernels/NOTES.md item 27 ptxas scheduled some activation loads (ld.global.nc) before
 * that wait, which this catches where the timing exposes it. */
static void test_chain(struct rng *r, int K1, int N1, int N2, int M, int R) {
  const int K2 = N1;
  int32_t *q1, *q2, *d_rep1, *d_rep2;
  uint16_t *s1, *s2;
  bf16_t *d_srep1, *d_srep2;
  test_weights(r, K1, N1, &q1, &s1, &d_rep1, &d_srep1);
  test_weights(r, K2, N2, &q2, &s2, &d_rep2, &d_srep2);
  bf16_t *x = kt_alloc(2 * (size_t)M * K1), *h0 = kt_alloc(2 * (size_t)M * N1), *y0 = kt_alloc(2 * (size_t)M * N2),
         *h = kt_alloc(2 * (size_t)M * N1), *y = kt_alloc(2 * (size_t)M * N2), *yref = kt_alloc(2 * (size_t)M * N2);
  kt_fill_bf16(r, x, (int64_t)M * K1, 1.0f);
  bf16_t *d_x = gk_up(x, 2 * (size_t)M * K1), *d_h = gk_dev(2 * (size_t)M * N1), *d_y = gk_dev(2 * (size_t)M * N2);
  int differ = 0;
  for (int i = 0; i < R; i++) {
    GK_CUDA(cudaMemsetAsync(d_h, 0xff, 2 * (size_t)M * N1, 0)); /* NaN until the first GEMM writes it */
    if (kern_w4a16_gemm(d_h, d_x, d_rep1, d_srep1, M, K1, N1, g_ws, g_ws_bytes, 0) ||
        kern_w4a16_gemm(d_y, d_h, d_rep2, d_srep2, M, K2, N2, g_ws, g_ws_bytes, 0)) {
      CHECK_MSG(0, "chained GEMM launch failed M=%d", M);
      break;
    }
    gk_down(i ? h : h0, d_h, 2 * (size_t)M * N1);
    gk_down(i ? y : y0, d_y, 2 * (size_t)M * N2);
    if (i) differ += memcmp(h, h0, 2 * (size_t)M * N1) != 0 || memcmp(y, y0, 2 * (size_t)M * N2) != 0;
  }
  /* the first round against the reference on the h it wrote; the others bit for bit the same */
  ref_w4a16_gemm(yref, h0, q2, s2, M, K2, N2);
  const double e = ref_bf16_nmse(y0, yref, (int64_t)M * N2);
  CHECK_MSG(e <= KT_NMSE_GEMM, "chained GEMMs M=%d K=%d N=%d then N=%d: the second's nmse %.3g", M, K1, N1, N2, e);
  CHECK_MSG(differ == 0, "chained GEMMs M=%d: %d of %d rounds differ from the first", M, differ, R - 1);
  cudaFree(d_rep1); cudaFree(d_rep2); cudaFree(d_srep1); cudaFree(d_srep2); cudaFree(d_x); cudaFree(d_h); cudaFree(d_y);
  free(q1); free(q2); free(s1); free(s2); free(x); free(h0); free(y0); free(h); free(y); free(yref);
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
  test_shape(&r, 8192, 4096, (const int[]){1, 5, 12}, 3);            /* o_proj (12: two row tiles, two K splits) */
  test_shape(&r, 1024, 1280, (const int[]){3, 40}, 2);               /* qkv at TP=8 (K slice of o) */
  test_shape(&r, 768, 4096, (const int[]){2, 48, 256, 600}, 4);      /* expert down at TP=2 (600: past 256 rows, a partial last row tile) */
  test_shape(&r, 384, 4096, (const int[]){3, 128, 129, 160}, 4);     /* expert down at TP=4 (129: a last row tile of one row) */
  /* ten chunks of K, one tile a block: the last chunk's ring stage lies under the wgmma
   * kernel's output tile, which one warpgroup may fill while the other's last wgmma still reads
   * that stage unless they meet first */
  test_shape(&r, 640, 8192, (const int[]){256}, 1);
  /* 144 tiles of 128 x 128 (more than one wave unsplit, K too short to split): stream-K under
   * the default rule (otherwise only the wsskall variant checks its results against the reference) */
  test_shape(&r, 1024, 9216, (const int[]){256}, 1);
  /* 256-row tiles under the default choice (kernels/ws_cost.h, test_ws_cost): unsplit, the last
   * tile's box stopping at row 200 (72 tiles); K split in two clusters, each split's share leaving
   * by direct stores. Stream-K at 256 rows (qkv, 256 rows) is checked launch against launch by
   * test_repeat below, and against the reference under the wsskall variant (K = 768, 640, 1024
   * and 1536 at 256 rows take 256-row stream-K there). */
  test_shape(&r, 256, 9216, (const int[]){200}, 1);
  /* a persistent grid of whole tiles under the default rule (wsk_plan_whole): 256 unsplit tiles
   * of 256 x 128 with 6 chunks of K on 132 blocks, two tiles a block for most, the last row tile
   * 8 rows (the SERVESIM_W4WS_PDP=2 variant, wspdp2, takes every unsplit grid of more tiles than
   * blocks there) */
  test_shape(&r, 384, 4096, (const int[]){1800}, 1);
  test_shape(&r, 1536, 6144, (const int[]){129, 256}, 2);
  /* 32 groups of K on 16 column tiles: the wgmma kernel's 64-row tiles split over K, at 24 and 40
   * rows with 8-row groups past M that the cluster sum skips */
  test_shape(&r, 4096, 1024, (const int[]){24, 40, 64}, 3);
  /* queued launches at the wgmma path's schedules: one tile a block (256 rows, two row tiles),
   * K split over a cluster (128 rows), stream-K (qkv, 256 rows), the 64-row kernel */
  test_repeat(&r, 768, 4096, 256, 40);
  test_repeat(&r, 1536, 4096, 128, 40);
  test_repeat(&r, 4096, 9216, 256, 20);
  test_repeat(&r, 2048, 4096, 64, 40);
  test_repeat(&r, 768, 4096, 600, 20); /* past 256 rows (a partial last row tile at any height) */
  test_repeat(&r, 1536, 4096, 48, 40);  /* a split 64-row tile summing 6 of its 8 row groups */
  /* a GEMM reading the one before it: 1, 8 and 12 rows (the preload kernel's one and two row
   * tiles), 40 and 200 (the wgmma kernel) */
  for (int i = 0; i < 5; i++) test_chain(&r, 4096, 4096, i % 2 ? 3072 : 1536, (const int[]){1, 8, 12, 40, 200}[i], 16);
  test_gate_up_repack(&r);
  /* refused shapes: K not a multiple of the group, N not of 16 */
  CHECK(kern_w4a16_gemm(NULL, NULL, NULL, NULL, 1, 192, 4096, NULL, 0, 0) == ERR_INPUT);
  CHECK(kern_w4a16_gemm(NULL, NULL, NULL, NULL, 1, 128, 40, NULL, 0, 0) == ERR_INPUT);
  CHECK(kern_w4a16_gemm(NULL, NULL, NULL, NULL, 0, 128, 16, NULL, 0, 0) == 0);
  cudaFree(g_ws);
  return check_report("gpu_kern_w4a16");
}
