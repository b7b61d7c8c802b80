/* test_moe_plan: the grouped expert GEMMs' row-tile bound (kernels/moe_plan.h) against the
 * tiles actually needed, sum over experts of ceil(n_e / bm), for random and extreme splits of
 * the (token, expert) pairs: a tile left out would skip rows silently on the GPU. And the bound
 * is tight: some split needs every tile it launches (a decode step of one token launches 8 row
 * tiles for its 8 pairs, not 1 + E). */
#include <math.h>

#include "common/rng.h"
#include "kernels/moe_plan.h"
#include "tests/check.h"

enum { EMAX = 256 };

static int needed(const int *n, int E, int bm) {
  int t = 0;
  for (int e = 0; e < E; e++) t += (n[e] + bm - 1) / bm;
  return t;
}

int main(void) {
  struct rng r;
  rng_seed(&r, 20261128);
  static const int bms[] = {8, 16, 32, 64};
  static const int Es[] = {1, 8, 16, 128, 256};
  int n[EMAX];
  int worst_slack = 1 << 30;
  for (size_t bi = 0; bi < sizeof bms / sizeof bms[0]; bi++)
    for (size_t ei = 0; ei < sizeof Es / sizeof Es[0]; ei++) {
      const int bm = bms[bi], E = Es[ei];
      for (int iter = 0; iter < 400; iter++) {
        const int rows = iter < 64 ? iter + 1 : (int)rng_range(&r, 1, 70000);
        for (int e = 0; e < E; e++) n[e] = 0;
        const int mode = iter % 4;
        for (int p = 0; p < rows; p++) {
          /* 0: uniform; 1: all on one expert; 2: one pair on each expert first (most partial
           * tiles); 3: skewed toward low ids */
          int e = mode == 0 ? (int)rng_range(&r, 0, E - 1)
                  : mode == 1 ? 0
                  : mode == 2 ? p % E
                              : (int)(rng_range(&r, 0, E - 1) * rng_uniform(&r));
          n[e]++;
        }
        const int need = needed(n, E, bm), bound = moe_plan_row_tiles(rows, E, bm);
        CHECK_MSG(need <= bound, "rows %d over %d experts, tiles of %d (mode %d): %d tiles needed > %d launched",
                  rows, E, bm, mode, need, bound);
        if (bound - need < worst_slack) worst_slack = bound - need;
      }
    }
  /* the bound is reached (one pair on each expert first, the rest spread): tight */
  CHECK(worst_slack == 0);
  /* a decode token: 8 pairs on 8 of 128 experts -> 8 partial tiles, 8 launched */
  CHECK(moe_plan_row_tiles(8, 128, 8) == 8);
  CHECK(moe_plan_row_tiles(1, 128, 8) == 1);
  CHECK(moe_plan_row_tiles(64, 1, 8) == 8); /* one expert: full tiles only */
  CHECK(moe_plan_row_tiles(0, 128, 8) == 0);

  /* tile rows: z10 = 0 the mean rounded down; otherwise the least r >= mean with
   * (r - mean)^2 >= (z10 / 10)^2 mean, checked by its definition in floating point */
  CHECK(moe_plan_tile_rows(2048, 128, 0) == 16);
  CHECK(moe_plan_tile_rows(2047, 128, 0) == 15);
  CHECK(moe_plan_tile_rows(2048, 128, 20) == 24); /* 16 + 2 x 4 */
  CHECK(moe_plan_tile_rows(2048, 128, 5) == 18);  /* 16 + 0.5 x 4 */
  CHECK(moe_plan_tile_rows(1024, 128, 5) == 10);  /* 8 + 0.5 x 2.83 = 9.41 */
  CHECK(moe_plan_tile_rows(8, 128, 5) == 1);      /* a decode token: still one row */
  CHECK(moe_plan_tile_rows(64, 128, 5) == 1);     /* 8 decode tokens: mean 0.5 -> 0.85 */
  CHECK(moe_plan_tile_rows(3, 2, 1) == 2);        /* 1.5 + 0.12 */
  CHECK(moe_plan_tile_rows(0, 128, 5) == 0);
  CHECK(moe_plan_tile_rows(1 << 20, 1, 80) == 1056768);  /* 2^20 + 8 x 1024: the callers' extremes */
  CHECK(moe_plan_tile_rows(1 << 20, 1024, 80) == 1280);  /* 1024 + 8 x 32 */
  /* the definition in exact integers (t satisfies it, t - 1 does not) and in floating point,
   * over the callers' ranges: pairs log-uniform in 1 .. 2^20 (decode sizes included), 1..1024
   * experts, z10 1..80 */
  for (int iter = 0; iter < 4000; iter++) {
    const int P = (int)(1 << rng_range(&r, 0, 20)) + (int)rng_range(&r, 0, 7), E = (int)rng_range(&r, 1, 1024),
              z10 = (int)rng_range(&r, 1, 80);
    const double L = (double)P / E, lim = L + z10 / 10.0 * sqrt(L);
    const int t = moe_plan_tile_rows(P, E, z10);
    const int64_t d = (int64_t)t * E - P, d1 = d - E, need = (int64_t)z10 * z10 * P * E;
    CHECK_MSG(d >= 0 && 100 * d * d >= need && (d1 < 0 || 100 * d1 * d1 < need),
              "tile rows(%d pairs, %d experts, z10 %d) = %d breaks the definition", P, E, z10, t);
    CHECK_MSG(t >= lim - 1e-9 && t - 1 < lim + 1e-9, "tile rows(%d pairs, %d experts, z10 %d) = %d, mean + z sd = %.4f",
              P, E, z10, t, lim);
    CHECK(moe_plan_tile_rows(P, E, z10 + 1) >= t && moe_plan_tile_rows(P + 1, E, z10) >= t);
  }
  /* what it is for: a random routing of a 256-token decode batch (2048 pairs over 128 experts)
   * overflows a tile of the mean's 16 rows at about half the experts, and a tile of the
   * 32-row height that the default's 18 rows pick at almost none, so the experts' weights are
   * read once, not ~1.4 times */
  {
    int over_mean = 0, over_32 = 0;
    const int trials = 50, tm = moe_plan_tile_rows(2048, 128, 0), t5 = moe_plan_tile_rows(2048, 128, 5);
    CHECK(tm <= 16 && t5 > 16 && t5 <= 32);
    for (int tr = 0; tr < trials; tr++) {
      for (int e = 0; e < 128; e++) n[e] = 0;
      for (int p = 0; p < 2048; p++) n[rng_range(&r, 0, 127)]++;
      for (int e = 0; e < 128; e++) over_mean += n[e] > 16, over_32 += n[e] > 32;
    }
    const double fm = (double)over_mean / (trials * 128), f32 = (double)over_32 / (trials * 128);
    CHECK_MSG(fm > 0.3 && f32 < 0.01, "experts over one tile: %.3f of 16 rows, %.3f of 32", fm, f32);
  }
  /* the wgmma tile (ws_moe_launch): 32, 48 or 64 rows of 128 columns up to 64 rows an expert,
   * 96 or 128 of 192 past them; forced heights and column counts, other values the rule */
  {
    int nwg = 0;
    /* the smallest height holding the tile rows */
    CHECK(moe_plan_wgmma_tile(1, 0, 0, &nwg) == 32 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(17, 0, 0, &nwg) == 32 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(32, 0, 0, &nwg) == 32 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(33, 0, 0, &nwg) == 48 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(48, 0, 0, &nwg) == 48 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(49, 0, 0, &nwg) == 64 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(64, 0, 0, &nwg) == 64 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(65, 0, 0, &nwg) == 96 && nwg == 3);
    CHECK(moe_plan_wgmma_tile(96, 0, 0, &nwg) == 96 && nwg == 3);
    CHECK(moe_plan_wgmma_tile(97, 0, 0, &nwg) == 128 && nwg == 3);
    CHECK(moe_plan_wgmma_tile(5000, 0, 0, &nwg) == 128 && nwg == 3);
    /* forced heights and columns; the columns only on the 64- and 128-row tiles */
    CHECK(moe_plan_wgmma_tile(1, 128, 0, &nwg) == 128 && nwg == 3);
    CHECK(moe_plan_wgmma_tile(1, 256, 3, &nwg) == 256 && nwg == 2); /* (256 rows: 128 columns only) */
    CHECK(moe_plan_wgmma_tile(300, 0, 0, &nwg) == 128 && nwg == 3);  /* (256 only forced or split) */
    CHECK(moe_plan_wgmma_tile(1000, 64, 0, &nwg) == 64 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(1000, 32, 0, &nwg) == 32 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(1000, 48, 3, &nwg) == 48 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(20, 96, 2, &nwg) == 96 && nwg == 3);
    CHECK(moe_plan_wgmma_tile(1000, 0, 2, &nwg) == 128 && nwg == 2);
    CHECK(moe_plan_wgmma_tile(50, 0, 3, &nwg) == 64 && nwg == 3);
    CHECK(moe_plan_wgmma_tile(40, 100, 4, &nwg) == 48 && nwg == 2); /* (neither forced value allowed) */
    CHECK(moe_plan_wgmma_tile(40, 16, 0, &nwg) == 48 && nwg == 2);  /* (no 16-row wgmma tile) */
  }
  /* the two-height split (moe_plan_expert_tiles): every row of an expert in exactly one tile,
   * none empty, none taller than its height, part 1 one tile at most, for every n to 600 and every
   * (ha, hb) pair the kernels have */
  static const int hs[] = {32, 48, 64, 96, 128, 256};
  {
    static unsigned char seen[600];
    for (int ia = 0; ia < 6; ia++)
      for (int ib = -1; ib < ia; ib++) {
        const int ha = hs[ia], hb = ib < 0 ? 0 : hs[ib];
        for (int nn = 0; nn < 600; nn++) {
          for (int i = 0; i < nn; i++) seen[i] = 0;
          int ok = 1, row0 = -1;
          const int t0 = moe_plan_expert_tiles(nn, ha, hb, 0, &row0);
          ok &= row0 == 0;
          for (int t = 0; t < t0; t++) {
            const int a = t * ha, b = a + ha < nn ? a + ha : nn;
            ok &= a < nn;
            for (int i = a; i < b; i++) seen[i]++;
          }
          const int t1 = moe_plan_expert_tiles(nn, ha, hb, 1, &row0);
          ok &= t1 == 0 || t1 == 1;
          if (t1) {
            ok &= row0 >= 0 && row0 < nn && nn - row0 <= hb;
            for (int i = row0; i < nn; i++) seen[i]++;
          }
          for (int i = 0; i < nn; i++) ok &= seen[i] == 1;
          /* hb = 0 is the one-launch rule: ceil(n / ha) tiles */
          if (hb == 0) ok &= t0 == (nn + ha - 1) / ha && t1 == 0;
          CHECK_MSG(ok, "split (%d, %d) of %d rows: rows missed, repeated or a tile out of bounds", ha, hb, nn);
        }
      }
  }
  /* ...and the launches' bounds hold for random and extreme routings (the first launch's,
   * moe_plan_split_tiles: moe_plan_row_tiles at ha, since it never has more tiles than ceil(n / ha)
   * an expert, and rows / (hb + 1), since each of its tiles holds more than hb rows) */
  for (int iter = 0; iter < 2000; iter++) {
    const int E = Es[iter % 5], rows = iter < 64 ? iter + 1 : (int)rng_range(&r, 1, 70000), mode = iter % 3;
    const int ia = (int)rng_range(&r, 1, 5), hb = hs[rng_range(&r, 0, ia - 1)], ha = hs[ia];
    for (int e = 0; e < E; e++) n[e] = 0;
    for (int p = 0; p < rows; p++)
      n[mode == 0 ? (int)rng_range(&r, 0, E - 1) : mode == 1 ? 0 : p % E]++;
    int t0 = 0, t1 = 0, row0;
    for (int e = 0; e < E; e++) {
      t0 += moe_plan_expert_tiles(n[e], ha, hb, 0, &row0);
      t1 += moe_plan_expert_tiles(n[e], ha, hb, 1, &row0);
    }
    CHECK_MSG(t0 <= moe_plan_split_tiles(rows, E, ha, hb) && t1 <= moe_plan_rem_tiles(rows, E),
              "split (%d, %d), %d rows over %d experts (mode %d): %d + %d tiles over the bounds %d + %d", ha, hb,
              rows, E, mode, t0, t1, moe_plan_split_tiles(rows, E, ha, hb), moe_plan_rem_tiles(rows, E));
    if (mode == 1 && rows % ha > hb) /* one expert: its tiles, the bound's own count */
      CHECK(t0 == moe_plan_split_tiles(rows, 1, ha, hb));
  }
  CHECK(moe_plan_split_tiles(10240, 128, 128, 96) == 105 && moe_plan_row_tiles(10240, 128, 128) == 207);
  CHECK(moe_plan_split_tiles(10240, 128, 128, 0) == 207 && moe_plan_split_tiles(0, 128, 128, 96) == 0);
  CHECK(moe_plan_rem_tiles(8, 128) == 8 && moe_plan_rem_tiles(5000, 128) == 128 && moe_plan_rem_tiles(0, 128) == 0);
  /* the split's heights against what they are for: routings drawn as the bench draws them (each
   * token on 8 distinct experts of 128 at random), each candidate's cost summed over the experts'
   * tiles (w_rows + height a tile, 256 for a second launch): the pick is within 0.5% of the
   * cheapest candidate on these draws -- the plan's Poisson expectation against sampled
   * routings -- and never over one launch at the height that the launcher's tile rows pick (the
   * rule before; kernels/NOTES.md item 33), at 1024, 2048 and 4096 tokens at least 5% under it */
  {
    static const int toks[] = {256, 384, 512, 768, 1024, 1280, 2048, 2560, 3072, 4096};
    for (size_t ti = 0; ti < sizeof toks / sizeof toks[0]; ti++) {
      const int T = toks[ti], E = 128, k = 8, W = 103, trials = 40;
      double mc[6][7] = {{0}};
      for (int tr = 0; tr < trials; tr++) {
        for (int e = 0; e < E; e++) n[e] = 0;
        for (int t = 0; t < T; t++) {
          int pick[8], c = 0;
          while (c < k) {
            const int e = (int)rng_range(&r, 0, E - 1);
            int dup = 0;
            for (int q = 0; q < c; q++) dup |= pick[q] == e;
            if (!dup) pick[c++] = e, n[e]++;
          }
        }
        for (int ia = 0; ia < 6; ia++)
          for (int ib = -1; ib < ia; ib++) {
            const int ha = hs[ia], hb = ib < 0 ? 0 : hs[ib];
            double c = hb ? 256.0 : 0.0;
            int row0;
            for (int e = 0; e < E; e++)
              c += (double)moe_plan_expert_tiles(n[e], ha, hb, 0, &row0) * (W + (ha == 256 ? 1.25 * ha : ha)) +
                   (double)moe_plan_expert_tiles(n[e], ha, hb, 1, &row0) * (W + hb);
            mc[ia][ib + 1] += c / trials;
          }
      }
      /* without the 256-row tiles (tall_pct 0), then with them at 125% a row */
      for (int tall = 0; tall <= 125; tall += 125) {
        const int nh = tall ? 6 : 5;
        int hb = -1;
        const int ha = moe_plan_split(T * k, E, W, 256, tall, -1, -1, &hb);
        double best = 1e300, picked = -1.0;
        for (int ia = 0; ia < nh; ia++)
          for (int ib = -1; ib < ia; ib++) {
            if (mc[ia][ib + 1] < best) best = mc[ia][ib + 1];
            if (hs[ia] == ha && (ib < 0 ? 0 : hs[ib]) == hb) picked = mc[ia][ib + 1];
          }
        int nwg, old_i = 0;
        const int old_h = moe_plan_wgmma_tile(moe_plan_tile_rows(T * k, E, 5), 0, 0, &nwg);
        while (hs[old_i] != old_h) old_i++;
        const double old = mc[old_i][0];
        CHECK_MSG(picked > 0.0 && picked <= best * 1.005,
                  "%d tokens, tall %d: split (%d, %d) costs %.0f on sampled routings, the cheapest %.0f", T, tall, ha, hb,
                  picked, best);
        CHECK_MSG(picked <= old * (T == 1024 || T >= 2048 ? 0.95 : 1.0),
                  "%d tokens, tall %d: split (%d, %d) costs %.0f, one launch of %d rows %.0f", T, tall, ha, hb, picked, old_h,
                  old);
        /* the 256-row tiles where every expert holds ~256 rows, not where half of each tile would be padding */
        if (tall) CHECK_MSG((ha == 256) == (T >= 3072), "%d tokens: split (%d, %d)", T, ha, hb);
      }
    }
  }
  /* forced heights: ha one of them fixes it; hb 0 one launch, a height below ha fixes it, one not
   * below ha leaves one launch; no pairs, no tiles */
  {
    int hb = -1;
    CHECK(moe_plan_split(2048 * 8, 128, 103, 256, 125, 64, -1, &hb) == 64 && hb > 0 && hb < 64);
    CHECK(moe_plan_split(2048 * 8, 128, 103, 256, 125, 64, 0, &hb) == 64 && hb == 0);
    CHECK(moe_plan_split(2048 * 8, 128, 103, 256, 125, 96, 48, &hb) == 96 && hb == 48);
    CHECK(moe_plan_split(2048 * 8, 128, 103, 256, 125, 48, 64, &hb) == 48 && hb == 0);
    CHECK(moe_plan_split(2048 * 8, 128, 103, 256, 125, 17, 0, &hb) == 128 && hb == 0); /* 17 no height */
    CHECK(moe_plan_split(2048 * 8, 128, 103, 256, 125, -1, 256, &hb) == 128 && hb == 0); /* nothing under it */
    CHECK(moe_plan_split(2048 * 8, 128, 103, 256, 125, -1, 128, &hb) == 256 && hb == 128); /* only 256 over it */
    CHECK(moe_plan_split(2048 * 8, 128, 103, 256, 0, -1, 128, &hb) == 128 && hb == 0);    /* ...not a candidate */
    CHECK(moe_plan_split(2048 * 8, 128, 103, 256, 125, -1, 96, &hb) == 128 && hb == 96);
    CHECK(moe_plan_split(0, 128, 103, 256, 125, -1, -1, &hb) == 0 && hb == 0);
    /* 256-row tiles: forced, or where the cost takes them (4096 tokens: every expert holds ~256
     * rows, so one 256-row tile an expert reads its weights once where 128-row tiles read them
     * twice); never with tall_pct 0 */
    CHECK(moe_plan_split(4096 * 8, 128, 103, 900, 0, 256, 32, &hb) == 256 && hb == 32);
    CHECK(moe_plan_split(4096 * 8, 128, 103, 900, 0, 256, 0, &hb) == 256 && hb == 0);
    CHECK(moe_plan_split(4096 * 8, 128, 103, 900, 125, -1, -1, &hb) == 256 && hb == 32);
    for (int T = 1; T <= 65536; T *= 2) CHECK(moe_plan_split(T * 8, 128, 103, 900, 0, -1, -1, &hb) <= 128);
    /* a second launch too dear: one launch, at the height of least expected cost */
    CHECK(moe_plan_split(2048 * 8, 128, 103, 1 << 30, 125, -1, -1, &hb) == 128 && hb == 0);
    /* weights free (w = 0): the least padding, the smallest height without a split */
    CHECK(moe_plan_split(2048 * 8, 128, 0, 1 << 30, 125, -1, -1, &hb) == 32 && hb == 0);
  }
  /* the mma.sync tiles' width (moe_plan_mma_wide): 128 columns a block from two tokens of 8 on 128
   * experts at the model's gate_up (N = 3072) and down (4096) on 132 SMs, not at one token; an
   * expert's rows count once however many */
  CHECK(!moe_plan_mma_wide(8, 128, 3072, 132) && !moe_plan_mma_wide(8, 128, 4096, 132));
  CHECK(moe_plan_mma_wide(16, 128, 3072, 132) && moe_plan_mma_wide(16, 128, 4096, 132));
  CHECK(moe_plan_mma_wide(8, 128, 4224, 132));               /* 8 x 33 = 264 */
  CHECK(!moe_plan_mma_wide(100000, 8, 4096, 132));           /* 8 experts x 32: 256 < 264 */
  CHECK(moe_plan_mma_wide(100000, 9, 4096, 132));            /* 288 */
  CHECK(!moe_plan_mma_wide(0, 128, 4096, 132) && !moe_plan_mma_wide(16, 0, 4096, 132));
  CHECK(!moe_plan_mma_wide(64, 16, 768, 132));               /* gpu_kern_moe's decode case: 96 blocks */
  /* the persistent grid (moe_plan_persistent_blocks): g blocks, each taking the tiles congruent
   * to its index mod g below the real count (moe_plan_pieces_below; piece k of block b is tile
   * b + k g, the first at or past a tile the same count below it): every tile of any real count up to
   * the bound in exactly one block, in order, and no block with more than MOE_PLAN_MAX_PIECES,
   * which is all its list in shared memory holds */
  {
    static unsigned char seen[1 << 16];
    for (int iter = 0; iter < 500; iter++) {
      const int bound = iter < 40 ? iter : (int)rng_range(&r, 1, iter % 3 ? 20000 : 60000);
      const int resident = iter % 7 == 0 ? 1 : (int)rng_range(&r, 1, 528);
      const int g = moe_plan_persistent_blocks(bound, resident);
      if (bound == 0) {
        CHECK(g == 0);
        continue;
      }
      CHECK_MSG(g >= 1 && g <= bound && (g >= resident || g == bound) && (bound + g - 1) / g <= MOE_PLAN_MAX_PIECES,
                "bound %d, resident %d: %d blocks", bound, resident, g);
      if (g < 1) continue;
      const int total = iter % 5 == 0 ? bound : (int)rng_range(&r, 0, bound), tx = (int)rng_range(&r, 1, 64);
      for (int l = 0; l < total; l++) seen[l] = 0;
      long long pieces = 0;
      for (int b = 0; b < g; b++) {
        const int n = moe_plan_pieces_below(total, b, g);
        CHECK(n <= MOE_PLAN_MAX_PIECES);
        pieces += n;
        /* walk the tiles in runs of whole row tiles (an expert's, a random number), as the
         * kernel's list does: each run's first piece from moe_plan_pieces_below, then steps of g */
        int l0 = 0, k = 0;
        while (l0 < total) {
          const int step = tx * (int)rng_range(&r, 1, 4), l1 = l0 + step < total ? l0 + step : total;
          const int k0 = moe_plan_pieces_below(l0, b, g), f = b + k0 * g;
          CHECK_MSG(f >= l0 && f - g < l0 && k0 == k, "block %d of %d: first tile %d from %d, piece %d (walked %d)", b, g, f, l0, k0, k);
          for (int l = f; l < l1; l += g, k++) seen[l]++;
          l0 = l1;
        }
        CHECK_MSG(k == n, "block %d of %d: %d pieces walked, %d counted", b, g, k, n);
      }
      CHECK(pieces == total);
      int bad = -1;
      for (int l = 0; l < total && bad < 0; l++)
        if (seen[l] != 1) bad = l;
      CHECK_MSG(bad < 0, "tile %d of %d: %d blocks", bad, total, bad < 0 ? 1 : seen[bad]);
    }
    CHECK(moe_plan_persistent_blocks(207 * 16, 132) == 132);
    CHECK(moe_plan_persistent_blocks(100000, 132) == (100000 + MOE_PLAN_MAX_PIECES - 1) / MOE_PLAN_MAX_PIECES);
    CHECK(moe_plan_persistent_blocks(5, 132) == 5);
  }
  return check_report("test_moe_plan");
}
