/* test_moe_plan: the grouped expert GEMMs' row-tile bound (kernels/moe_plan.h) against the
 * tiles actually needed, sum over experts of ceil(n_e / bm), for random and extreme splits of
 * the (token, expert) pairs: a tile left out would skip rows silently on the GPU. And the bound
 * is tight: some split needs every tile it launches (a decode step of one token launches 8 row
 * tiles for its 8 pairs, not 1 + E). */
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
  return check_report("test_moe_plan");
}
