/* test_streamk_plan: the stream-K GEMM's work split (kernels/streamk_plan.h) on random and
 * edge grids, against brute force: the blocks' ranges cover every unit exactly once, in block
 * order; every cluster holds whole tiles and at least one; clusters differ by at most one tile
 * and a cluster's blocks by at most one unit; block_of names the rank holding a unit within its
 * cluster (the kernel finds a split tile's holders with it); and the kernel's limit -- a warp's
 * run of at most KC + 1 units touches at most two tiles -- holds. A wrong formula here would
 * drop or double-count chunks on the GPU, or sum a tile from the wrong block. */
#include <stdlib.h>

#include "common/rng.h"
#include "kernels/streamk_plan.h"
#include "tests/check.h"

static void check_grid(int64_t T, int64_t KC, int64_t Q, int64_t CL) {
  const int64_t U = T * KC, B = Q * CL;
  if (T / Q * KC < CL) return; /* outside the plan's contract; the launcher refuses it */
  int64_t *owner = malloc((size_t)U * sizeof *owner);
  CHECK(owner != NULL);
  if (!owner) return;
  for (int64_t u = 0; u < U; u++) owner[u] = -1;
  int bad = 0;
  int64_t prev_hi = 0, c_small = T, c_large = 0;
  for (int64_t b = 0; b < B; b++) {
    int64_t lo, hi, c_lo, c_hi;
    streamk_plan_range(b, T, KC, B, CL, &lo, &hi, &c_lo, &c_hi);
    bad += lo != prev_hi || hi < lo || lo < c_lo || hi > c_hi; /* in order, inside the cluster */
    bad += c_lo % KC != 0 || c_hi % KC != 0 || c_hi <= c_lo;   /* whole tiles, at least one */
    bad += hi - lo < 1;                                        /* every block has work */
    prev_hi = hi;
    for (int64_t u = lo; u < hi && u < U; u++) {
      bad += owner[u] != -1;
      owner[u] = b;
    }
    if (b % CL == 0) {
      const int64_t tiles = (c_hi - c_lo) / KC;
      if (tiles < c_small) c_small = tiles;
      if (tiles > c_large) c_large = tiles;
      /* the cluster's blocks differ by at most one unit */
      int64_t small = U, large = 0;
      for (int64_t r = 0; r < CL; r++) {
        int64_t l2, h2, cl2, ch2;
        streamk_plan_range(b + r, T, KC, B, CL, &l2, &h2, &cl2, &ch2);
        bad += cl2 != c_lo || ch2 != c_hi;
        if (h2 - l2 < small) small = h2 - l2;
        if (h2 - l2 > large) large = h2 - l2;
      }
      bad += large - small > 1;
    }
  }
  bad += prev_hi != U;
  for (int64_t u = 0; u < U; u++) bad += owner[u] < 0;
  CHECK_MSG(bad == 0, "T=%lld KC=%lld Q=%lld CL=%lld: ranges wrong in %d places", (long long)T, (long long)KC,
            (long long)Q, (long long)CL, bad);
  CHECK_MSG(c_large - c_small <= 1, "T=%lld Q=%lld: clusters hold %lld..%lld tiles", (long long)T, (long long)Q,
            (long long)c_small, (long long)c_large);
  /* block_of, as the kernel uses it: the rank within the cluster holding unit u */
  int rank_bad = 0;
  for (int64_t u = 0; u < U; u++) {
    const int64_t b = owner[u], q = b / CL;
    int64_t lo, hi, c_lo, c_hi;
    streamk_plan_range(b, T, KC, B, CL, &lo, &hi, &c_lo, &c_hi);
    rank_bad += q * CL + streamk_plan_block_of(u - c_lo, c_hi - c_lo, CL) != b;
  }
  CHECK_MSG(rank_bad == 0, "T=%lld KC=%lld Q=%lld CL=%lld: block_of wrong for %d units", (long long)T, (long long)KC,
            (long long)Q, (long long)CL, rank_bad);
  free(owner);
}

/* Tiles touched by a run of n units starting at u (tiles of KC units). */
static int64_t tiles_touched(int64_t u, int64_t n, int64_t KC) { return (u + n - 1) / KC - u / KC + 1; }

int main(void) {
  /* the Qwen3-235B decode shapes (n16 tiles, k64 chunks), TP 1 and 4 slices, on 132 SMs in
   * clusters of 1, 2, 4 (the kernel's SERVESIM_W4_STREAMK_CLUSTER) */
  static const int64_t shapes[][2] = {{9216 / 16, 4096 / 64}, {4096 / 16, 8192 / 64}, {3072 / 16, 4096 / 64},
                                      {4096 / 16, 1536 / 64}, {2304 / 16, 4096 / 64}, {4096 / 16, 384 / 64},
                                      {1, 2},                 {3, 2}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int64_t CL = 1; CL <= 4; CL *= 2) {
      const int64_t T = shapes[s][0], KC = shapes[s][1];
      const int64_t Q = 132 / CL < T ? 132 / CL : T;
      check_grid(T, KC, Q, CL);
    }
  /* edge grids: one cluster; one tile a cluster; blocks of one unit */
  check_grid(7, 4, 1, 1);
  check_grid(7, 4, 7, 2);
  check_grid(7, 4, 7, 4);
  check_grid(1, 2, 1, 2);
  check_grid(3, 2, 3, 2);
  struct rng r;
  rng_seed(&r, 20261128);
  for (int i = 0; i < 400; i++) {
    const int64_t T = (int64_t)rng_range(&r, 1, 700), KC = 2 * (int64_t)rng_range(&r, 1, 65);
    const int64_t CL = (int64_t)1 << rng_range(&r, 0, 2);
    check_grid(T, KC, (int64_t)rng_range(&r, 1, T), CL);
  }
  /* A run of at most KC + 1 units touches at most two tiles, and KC + 2 can touch three: the
   * bound the launcher checks before sending a warp a run. */
  int touch_bad = 0;
  for (int64_t KC = 2; KC <= 130; KC += 2)
    for (int64_t u = 0; u < 3 * KC; u++) {
      touch_bad += tiles_touched(u, KC + 1, KC) > 2;
      touch_bad += tiles_touched(KC - 1, KC + 2, KC) != 3;
    }
  CHECK(touch_bad == 0);
  /* qkv on 132 SMs in clusters of 2: 576 tiles over 66 clusters, 8 or 9 each (1.03x) */
  {
    int64_t lo, hi, c_lo, c_hi, most = 0;
    for (int64_t b = 0; b < 132; b += 2) {
      streamk_plan_range(b, 576, 64, 132, 2, &lo, &hi, &c_lo, &c_hi);
      if ((c_hi - c_lo) / 64 > most) most = (c_hi - c_lo) / 64;
    }
    CHECK(most == 9);
  }
  return check_report("test_streamk_plan");
}
