/* gpu_kern_moe: routing (ids exact, weights within 1e-5), grouping (bit-exact: offsets, sorted
 * pairs, pair rows), and the grouped gate_up+SiLU / down GEMMs and combine against ref_moe_*,
 * for decode (1, 8 and 32 tokens), a skewed batch (all tokens on one expert, others with 0 or 1),
 * an EP rank's expert range, and a prefill-sized batch that takes the large-tile path.
 * Label gpu; exit 77 without a GPU. */
#include <string.h>

#include "kernels/ref_moe.h"
#include "kernels/ref_w4a16.h"
#include "tests/check.h"
#include "tests/gpu_kern_util.h"
#include "tests/kern_test_util.h"

static void test_route(struct rng *r, int T, int E, int k) {
  bf16_t *l = kt_alloc(2 * (size_t)T * E);
  kt_fill_bf16(r, l, (int64_t)T * E, 2.0f);
  int32_t *ids = kt_alloc(4 * (size_t)T * k), *gids = kt_alloc(4 * (size_t)T * k);
  float *w = kt_alloc(4 * (size_t)T * k), *gw = kt_alloc(4 * (size_t)T * k);
  ref_moe_route(ids, w, l, T, E, k, 1);
  bf16_t *d_l = gk_up(l, 2 * (size_t)T * E);
  int32_t *d_ids = gk_dev(4 * (size_t)T * k);
  float *d_w = gk_dev(4 * (size_t)T * k);
  GK_KERN(kern_moe_route(d_ids, d_w, d_l, T, E, k, 1, 0));
  gk_down(gids, d_ids, 4 * (size_t)T * k);
  gk_down(gw, d_w, 4 * (size_t)T * k);
  int bad = 0;
  for (int i = 0; i < T * k; i++) bad += ids[i] != gids[i] || !(fabsf(w[i] - gw[i]) <= 1e-5f * w[i] + 1e-7f);
  CHECK_MSG(bad == 0, "route T=%d E=%d k=%d: %d of %d differ", T, E, k, bad, T * k);
  cudaFree(d_l); cudaFree(d_ids); cudaFree(d_w);
  free(l); free(ids); free(gids); free(w); free(gw);
}

/* Routing of T tokens: mode 0 random distinct experts, 1 every token on experts 0..k-1. */
static void make_ids(struct rng *r, int32_t *ids, int T, int k, int E, int mode) {
  for (int t = 0; t < T; t++)
    for (int j = 0; j < k; j++) {
      if (mode == 1) { ids[t * k + j] = j; continue; }
      int e, dup;
      do {
        e = (int)rng_range(r, 0, E - 1);
        dup = 0;
        for (int i = 0; i < j; i++) dup |= ids[t * k + i] == e;
      } while (dup);
      ids[t * k + j] = e;
    }
}

struct moe_case {
  int T, k, E, e0, e1, H, I, mode;
};

static void test_moe(struct rng *r, struct moe_case c) {
  const int nl = c.e1 - c.e0, P = c.T * c.k, H = c.H, I = c.I;
  size_t nqg = (size_t)H / 8 * I, nsg = (size_t)H / 128 * I, nqd = (size_t)I / 8 * H, nsd = (size_t)I / 128 * H;
  int32_t *qg = kt_alloc(4 * nl * nqg), *qu = kt_alloc(4 * nl * nqg), *qd = kt_alloc(4 * nl * nqd);
  uint16_t *sg = kt_alloc(2 * nl * nsg), *su = kt_alloc(2 * nl * nsg), *sd = kt_alloc(2 * nl * nsd);
  for (int e = 0; e < nl; e++) {
    ref_w4a16_random(qg + e * nqg, sg + e * nsg, H, I, rng_u64(r), 0.002f, 0.01f);
    ref_w4a16_random(qu + e * nqg, su + e * nsg, H, I, rng_u64(r), 0.002f, 0.01f);
    ref_w4a16_random(qd + e * nqd, sd + e * nsd, I, H, rng_u64(r), 0.002f, 0.01f);
  }
  struct ref_moe_weights w = {qg, qu, qd, sg, su, sd};
  bf16_t *x = kt_alloc(2 * (size_t)c.T * H);
  kt_fill_bf16(r, x, (int64_t)c.T * H, 1.0f);
  int32_t *ids = kt_alloc(4 * (size_t)P);
  float *tw = kt_alloc(4 * (size_t)P);
  make_ids(r, ids, c.T, c.k, c.E, c.mode);
  for (int i = 0; i < P; i++) tw[i] = (float)(0.05 + rng_uniform(r));
  /* reference, stage by stage */
  int32_t *off = kt_alloc(4 * (nl + 1)), *sorted = kt_alloc(4 * (size_t)P), *prow = kt_alloc(4 * (size_t)P);
  bf16_t *h = kt_alloc(2 * (size_t)P * I), *y = kt_alloc(2 * (size_t)P * H), *out = kt_alloc(2 * (size_t)c.T * H);
  ref_moe_align(off, sorted, prow, ids, c.T, c.k, c.e0, c.e1);
  ref_moe_gate_up_silu(h, x, &w, off, sorted, c.k, H, I, nl);
  ref_moe_down(y, h, &w, off, I, H, nl);
  ref_moe_combine(out, y, prow, tw, c.T, c.k, H);
  const int rows = off[nl];
  /* device: weights repacked per expert */
  int32_t *d_qg = gk_up(qg, 4 * nl * nqg), *d_qu = gk_up(qu, 4 * nl * nqg), *d_qd = gk_up(qd, 4 * nl * nqd);
  uint16_t *d_sg = gk_up(sg, 2 * nl * nsg), *d_su = gk_up(su, 2 * nl * nsg), *d_sd = gk_up(sd, 2 * nl * nsd);
  int32_t *d_q13 = gk_dev(8 * nl * nqg), *d_q2 = gk_dev(4 * nl * nqd);
  bf16_t *d_s13 = gk_dev(4 * nl * nsg), *d_s2 = gk_dev(2 * nl * nsd);
  for (int e = 0; e < nl; e++) {
    GK_KERN(kern_gptq_repack_gate_up(d_q13 + e * 2 * nqg, d_s13 + e * 2 * nsg, d_qg + e * nqg, d_sg + e * nsg,
                                     d_qu + e * nqg, d_su + e * nsg, H, I, 0));
    GK_KERN(kern_gptq_repack(d_q2 + e * nqd, d_s2 + e * nsd, d_qd + e * nqd, d_sd + e * nsd, I, H, 0));
  }
  bf16_t *d_x = gk_up(x, 2 * (size_t)c.T * H), *d_h = gk_dev(2 * (size_t)P * I), *d_y = gk_dev(2 * (size_t)P * H),
         *d_out = gk_dev(2 * (size_t)c.T * H);
  int32_t *d_ids = gk_up(ids, 4 * (size_t)P), *d_off = gk_dev(4 * (nl + 1)), *d_sorted = gk_dev(4 * (size_t)P),
          *d_prow = gk_dev(4 * (size_t)P);
  float *d_tw = gk_up(tw, 4 * (size_t)P);
  /* hit counters start at 1000 + e: the kernel adds to them */
  uint64_t *hits = kt_alloc(8 * (size_t)nl), *g_hits = kt_alloc(8 * (size_t)nl);
  for (int e = 0; e < nl; e++) hits[e] = 1000u + (uint64_t)e;
  uint64_t *d_hits = gk_up(hits, 8 * (size_t)nl);
  for (int p = 0; p < P; p++)
    if (ids[p] >= c.e0 && ids[p] < c.e1) hits[ids[p] - c.e0]++;
  GK_KERN(kern_moe_align(d_off, d_sorted, d_prow, d_ids, c.T, c.k, c.e0, c.e1, d_hits, 0));
  gk_down(g_hits, d_hits, 8 * (size_t)nl);
  CHECK_MSG(memcmp(hits, g_hits, 8 * (size_t)nl) == 0, "align hit counts T=%d mode=%d", c.T, c.mode);
  cudaFree(d_hits);
  free(hits); free(g_hits);
  int32_t *g_off = kt_alloc(4 * (nl + 1)), *g_sorted = kt_alloc(4 * (size_t)P), *g_prow = kt_alloc(4 * (size_t)P);
  gk_down(g_off, d_off, 4 * (nl + 1));
  gk_down(g_sorted, d_sorted, 4 * (size_t)P);
  gk_down(g_prow, d_prow, 4 * (size_t)P);
  CHECK_MSG(memcmp(off, g_off, 4 * (nl + 1)) == 0, "align offsets T=%d mode=%d", c.T, c.mode);
  CHECK_MSG(memcmp(sorted, g_sorted, 4 * (size_t)rows) == 0, "align sorted pairs T=%d mode=%d", c.T, c.mode);
  CHECK_MSG(memcmp(prow, g_prow, 4 * (size_t)P) == 0, "align pair rows T=%d mode=%d", c.T, c.mode);
  /* d_y (down's output, P x H) as the scratch the Hopper wgmma path gathers gate_up's rows into */
  GK_KERN(kern_moe_w4a16_gate_up_silu(d_h, d_x, d_q13, d_s13, d_off, d_sorted, c.T, c.k, H, I, nl, d_y, 0));
  bf16_t *g_h = kt_alloc(2 * (size_t)P * I), *g_y = kt_alloc(2 * (size_t)P * H), *g_out = kt_alloc(2 * (size_t)c.T * H);
  gk_down(g_h, d_h, 2 * (size_t)P * I);
  double eh = ref_bf16_nmse(g_h, h, (int64_t)rows * I);
  CHECK_MSG(eh <= KT_NMSE_GEMM, "moe gate_up T=%d k=%d E=[%d,%d) mode=%d: nmse %.3g", c.T, c.k, c.e0, c.e1, c.mode, eh);
  GK_KERN(kern_moe_w4a16_down(d_y, d_h, d_q2, d_s2, d_off, c.T, c.k, I, H, nl, 0));
  gk_down(g_y, d_y, 2 * (size_t)P * H);
  double ey = ref_bf16_nmse(g_y, y, (int64_t)rows * H);
  CHECK_MSG(ey <= KT_NMSE_GEMM, "moe down T=%d mode=%d: nmse %.3g", c.T, c.mode, ey);
  GK_KERN(kern_moe_combine(d_out, d_y, d_prow, d_tw, c.T, c.k, H, 0));
  gk_down(g_out, d_out, 2 * (size_t)c.T * H);
  double eo = ref_bf16_nmse(g_out, out, (int64_t)c.T * H);
  CHECK_MSG(eo <= KT_NMSE_GEMM, "moe combine T=%d mode=%d: nmse %.3g", c.T, c.mode, eo);
  printf("moe T=%d k=%d experts [%d,%d) of %d H=%d I=%d mode=%d: rows %d, nmse h %.2g y %.2g out %.2g\n", c.T,
         c.k, c.e0, c.e1, c.E, H, I, c.mode, rows, eh, ey, eo);
  void *ptrs[] = {d_qg, d_qu, d_qd, d_sg, d_su, d_sd, d_q13, d_q2, d_s13, d_s2, d_x, d_h, d_y, d_out, d_ids, d_off, d_sorted, d_prow, d_tw};
  for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) cudaFree(ptrs[i]);
  void *hp[] = {qg, qu, qd, sg, su, sd, x, ids, tw, off, sorted, prow, h, y, out, g_off, g_sorted, g_prow, g_h, g_y, g_out};
  for (size_t i = 0; i < sizeof hp / sizeof *hp; i++) free(hp[i]);
}

int main(void) {
  if (!gk_have_gpu()) CHECK_SKIP("no CUDA device");
  struct rng r;
  rng_seed(&r, kt_seed("gpu_kern_moe"));
  test_route(&r, 1, 128, 8);
  test_route(&r, 37, 128, 8);
  test_route(&r, 300, 64, 4);
  test_route(&r, 5, 1000, 32);
  test_moe(&r, (struct moe_case){1, 8, 16, 0, 16, 512, 384, 0});   /* one token: 8 experts, 1 row each */
  test_moe(&r, (struct moe_case){8, 8, 16, 0, 16, 512, 384, 0});   /* decode */
  test_moe(&r, (struct moe_case){8, 8, 16, 4, 12, 512, 384, 0});   /* EP rank: experts [4, 12) */
  /* a decode batch on 128 experts, ~2 rows each: the mma.sync tiles of 128 columns by default
   * (moe_plan_mma_wide: 128 experts x 6 and x 4 column tiles, at least twice the SMs of a GPU of
   * up to 192) */
  test_moe(&r, (struct moe_case){32, 8, 128, 0, 128, 512, 384, 0});
  test_moe(&r, (struct moe_case){40, 2, 8, 0, 8, 256, 256, 1});    /* all tokens on experts 0,1; others 0 rows */
  test_moe(&r, (struct moe_case){40, 4, 8, 0, 8, 256, 128, 0});    /* ~20 rows per expert: 32-row tiles */
  test_moe(&r, (struct moe_case){60, 4, 8, 0, 8, 256, 128, 0});    /* ~30 rows per expert */
  test_moe(&r, (struct moe_case){300, 4, 8, 0, 8, 256, 128, 0});   /* large-tile path */
  test_moe(&r, (struct moe_case){4096, 8, 128, 0, 128, 128, 128, 0}); /* the largest batch */
  return check_report("gpu_kern_moe");
}
