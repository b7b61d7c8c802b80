/* test_w4p_plan: the preload GEMM's work split and configuration choice (kernels/w4p_plan.h)
 * on the model's shapes, edge shapes and random ones, against brute force: the S W warps of a
 * tile take every group exactly once, in order; no warp gets more chunks than its
 * configuration holds in registers (the kernel has no loop beyond U); splits stay within a
 * cluster (8); the choice is the fewest waves, then splits, then busy warps, warps, chunks and
 * the lower index;
 * a forced configuration is honoured. A wrong formula here would drop or double-count chunks on
 * the GPU, or read past a warp's registers. */
#include <stdint.h>

#include "common/rng.h"
#include "kernels/w4p_plan.h"
#include "tests/check.h"

/* Every group of one tile owned exactly once, in warp order, at most U / 2 per warp. */
static void check_split(int cfg, int KG) {
  const int S = w4p_plan_splits(cfg, KG), W = w4p_plan_warps(cfg), U = w4p_plan_units(cfg);
  const int nw = S * W;
  int bad = 0, prev = 0;
  for (int j = 0; j < nw; j++) {
    const int lo = w4p_plan_group_lo(j, KG, nw), hi = w4p_plan_group_lo(j + 1, KG, nw);
    bad += lo != prev || hi < lo || 2 * (hi - lo) > U;
    prev = hi;
  }
  bad += prev != KG || w4p_plan_group_lo(0, KG, nw) != 0;
  /* one split fewer would not do: S is the least that keeps every warp within U */
  if (S > 1) bad += (int64_t)(S - 1) * W * (U / 2) >= KG;
  CHECK_MSG(bad == 0, "cfg %d KG %d: %d faults in the group split (S = %d)", cfg, KG, bad, S);
}

/* The choice against a brute-force reading of its rule: the fewest waves, then the fewest
 * splits, then the most busy warps a tile (those with a group), then the most warps a block of
 * at most 8 (a 16-warp block ranks below any), then the fewest chunks a warp, then the lower
 * index, among configurations that fit with at most 8 splits: every candidate scored as one
 * tuple. */
static void check_choice(int N16, int KG, int sms, const int *occ) {
  const w4p_plan_t p = w4p_plan_choose(N16, KG, sms, occ, -1);
  int want = -1, want_waves = 0, want_s = 0;
  int64_t want_key = INT64_MAX;
  for (int c = 0; c < W4P_PLAN_CFGS; c++) {
    const int s = w4p_plan_splits(c, KG);
    if (s > W4P_PLAN_MAX_SPLITS || occ[c] < 1) continue;
    const int64_t slots = (int64_t)sms * occ[c], blocks = (int64_t)N16 * s;
    const int waves = (int)((blocks + slots - 1) / slots);
    /* waves, splits (<= 8), -busy warps (<= 128), -warps (16 as 0), chunks (<= 16), index (< 10) */
    int busy = 0;
    for (int j = 0; j < s * w4p_plan_warps(c); j++)
      busy += w4p_plan_group_lo(j + 1, KG, s * w4p_plan_warps(c)) > w4p_plan_group_lo(j, KG, s * w4p_plan_warps(c));
    const int wr = w4p_plan_warps(c) > 8 ? 0 : w4p_plan_warps(c);
    const int64_t key =
        ((((((int64_t)waves * 10 + s) * 1000 + (999 - busy)) * 100 + (99 - wr)) * 100 + w4p_plan_units(c)) * 10) + c;
    if (key < want_key) {
      want_key = key;
      want = c;
      want_waves = waves;
      want_s = s;
    }
  }
  CHECK_MSG(p.cfg == want && (want < 0 || (p.waves == want_waves && p.splits == want_s && p.blocks == N16 * p.splits &&
                                           p.splits <= W4P_PLAN_MAX_SPLITS)),
            "N16 %d KG %d sms %d: cfg %d (%d waves), expected %d (%d)", N16, KG, sms, p.cfg, p.waves, want, want_waves);
}

int main(void) {
  for (int c = 0; c < W4P_PLAN_CFGS; c++)
    for (int KG = 1; KG <= 1024; KG++) check_split(c, KG);
  /* occupancies as the H100/H200 build has them */
  const int occ[W4P_PLAN_CFGS] = {3, 2, 5, 2, 3, 2}; /* the H200 build's */
  /* the Qwen3-235B shapes on 132 SMs: (n16 tiles, groups) -> configuration */
  struct { int N16, KG, cfg, splits; } model[] = {
      {9216 / 16, 4096 / 128, 2, 1}, /* qkv: 576 blocks of 4 warps x 16 chunks, 5 a SM */
      {4096 / 16, 8192 / 128, 3, 1}, /* o_proj: 256 blocks of 8 warps x 16 chunks, 2 a SM */
      {3072 / 16, 4096 / 128, 1, 1}, /* gate_up: 192 blocks of 8 warps x 8 chunks */
      {4096 / 16, 1536 / 128, 5, 1}, /* down: 256 blocks of 16 warps, 12 of them with one group */
      {4608 / 16, 4096 / 128, 4, 1}, /* qkv at TP=2: 288 blocks, one wave only at 3 a SM */
      {2304 / 16, 4096 / 128, 1, 1}, /* qkv at TP=4 */
      {768 / 16, 4096 / 128, 1, 1},  /* gate_up at TP=4 */
      {4096 / 16, 384 / 128, 0, 1},  /* down at TP=4: 3 busy warps in any, so not 16 */
      {4096 / 16, 768 / 128, 0, 1},  /* down at TP=2: 6 busy warps in 8 or 16 */
      {4096 / 16, 2048 / 128, 5, 1}, /* o_proj at TP=4: 16 warps of one group each */
  };
  for (size_t i = 0; i < sizeof model / sizeof model[0]; i++) {
    const w4p_plan_t p = w4p_plan_choose(model[i].N16, model[i].KG, 132, occ, -1);
    CHECK_MSG(p.cfg == model[i].cfg && p.splits == model[i].splits && p.waves == 1,
              "shape %zu: cfg %d splits %d waves %d", i, p.cfg, p.splits, p.waves);
    check_choice(model[i].N16, model[i].KG, 132, occ);
  }
  /* forced: honoured whatever its waves; refused (cfg -1) past 8 splits */
  {
    const w4p_plan_t p = w4p_plan_choose(576, 32, 132, occ, 0);
    CHECK(p.cfg == 0 && p.splits == 2 && p.blocks == 1152 && p.waves == 3);
    CHECK(w4p_plan_choose(256, 512, 132, occ, 0).cfg == -1); /* K = 65536: 32 splits of 16 groups */
    CHECK(w4p_plan_choose(256, 512, 132, occ, 3).cfg == 3);  /* 8 splits of 64 groups */
    CHECK(w4p_plan_choose(256, 513, 132, occ, -1).cfg == -1);
  }
  /* a configuration that does not fit is never chosen, nor forced */
  {
    const int occ2[W4P_PLAN_CFGS] = {3, 3, 0, 2, 3, 2};
    const w4p_plan_t p = w4p_plan_choose(9216 / 16, 4096 / 128, 132, occ2, -1);
    CHECK(p.cfg != 2 && p.cfg >= 0);
    CHECK(w4p_plan_choose(9216 / 16, 4096 / 128, 132, occ2, 2).cfg == -1);
  }
  /* rows: one row tile for 1..8, two for 9..16 and then one wave only, none outside 1..16 */
  {
    const int occ_mt2[W4P_PLAN_CFGS] = {2, 2, 4, 1, 2, 2}; /* the H200 build's, two row tiles */
    const int *by_tiles[2] = {occ, occ_mt2};
    CHECK(w4p_plan_row_tiles(0) == 0 && w4p_plan_row_tiles(1) == 1 && w4p_plan_row_tiles(8) == 1 &&
          w4p_plan_row_tiles(9) == 2 && w4p_plan_row_tiles(16) == 2 && w4p_plan_row_tiles(17) == 0);
    for (int M = -1; M <= 18; M++)
      for (size_t i = 0; i < sizeof model / sizeof model[0]; i++) {
        const int mt = w4p_plan_row_tiles(M);
        const w4p_plan_t p = w4p_plan_rows(M, model[i].N16, model[i].KG, 132, by_tiles, -1);
        const w4p_plan_t q = w4p_plan_choose(model[i].N16, model[i].KG, 132, mt == 2 ? occ_mt2 : occ, -1);
        const int want = mt == 0 || (mt == 2 && q.waves > 1) ? -1 : q.cfg;
        CHECK_MSG(p.cfg == want && (want < 0 || (p.splits == q.splits && p.waves == 1)),
                  "M %d shape %zu: cfg %d, expected %d", M, i, p.cfg, want);
      }
    /* qkv at 16 rows: 576 blocks, at most 4 a SM: refused; at 8 rows: one wave of 5 a SM */
    CHECK(w4p_plan_rows(16, 576, 32, 132, by_tiles, -1).cfg == -1);
    CHECK(w4p_plan_rows(16, 576, 32, 132, by_tiles, 2).cfg == -1);
    CHECK(w4p_plan_rows(8, 576, 32, 132, by_tiles, -1).cfg == 2);
    /* one row tile: a forced plan of several waves is still taken (only two tiles refuse them) */
    const w4p_plan_t f = w4p_plan_rows(1, 576, 32, 132, by_tiles, 0);
    CHECK(f.cfg == 0 && f.waves == 3 && f.splits == 2);
    /* o_proj at 16 rows: 4 warps x 16 chunks, two splits, 512 blocks in one wave */
    const w4p_plan_t o = w4p_plan_rows(16, 256, 64, 132, by_tiles, -1);
    CHECK(o.cfg == 2 && o.splits == 2 && o.waves == 1);
  }
  /* one SM, one tile of one group; and random shapes, SM counts and occupancies */
  check_choice(1, 1, 1, occ);
  struct rng r;
  rng_seed(&r, 20261128);
  for (int i = 0; i < 2000; i++) {
    int o[W4P_PLAN_CFGS];
    for (int c = 0; c < W4P_PLAN_CFGS; c++) o[c] = (int)rng_range(&r, 0, 8); /* 0: does not fit */
    check_choice((int)rng_range(&r, 1, 2048), (int)rng_range(&r, 1, 600), (int)rng_range(&r, 1, 200), o);
  }
  return check_report("test_w4p_plan");
}
