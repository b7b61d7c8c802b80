/* test_streamk_plan: the stream-K GEMM's work split (kernels/streamk_plan.h) on random and
 * edge grids: the blocks' ranges cover every unit exactly once and differ in size by at most
 * one unit; block_of(u) names the block that holds u; first/last bracket exactly the blocks
 * that hold a column block's chunks, so the slot numbers the kernel's fix-up uses are 0 ..
 * n - 1 without gaps; max_split is the largest such n; and the kernel's segment walk
 * (streamk_plan_segment) visits every unit once and stores every column block once. A wrong
 * formula here would drop or double-count chunks on the GPU, or leave a column block unsummed. */
#include <stdlib.h>

#include "common/rng.h"
#include "kernels/streamk_plan.h"
#include "tests/check.h"

static void check_grid(int64_t CB, int64_t KC, int64_t B) {
  const int64_t U = CB * KC;
  int64_t *owner = malloc((size_t)U * sizeof *owner);
  CHECK(owner != NULL);
  if (!owner) return;
  CHECK(streamk_plan_lo(0, U, B) == 0 && streamk_plan_lo(B, U, B) == U);
  int64_t smallest = U, largest = 0;
  for (int64_t b = 0; b < B; b++) {
    const int64_t lo = streamk_plan_lo(b, U, B), hi = streamk_plan_lo(b + 1, U, B);
    if (hi - lo < smallest) smallest = hi - lo;
    if (hi - lo > largest) largest = hi - lo;
    for (int64_t u = lo; u < hi; u++) owner[u] = b;
  }
  CHECK_MSG(smallest >= 1 && largest - smallest <= 1, "CB=%lld KC=%lld B=%lld: block sizes %lld..%lld", (long long)CB,
            (long long)KC, (long long)B, (long long)smallest, (long long)largest);
  int bad = 0;
  for (int64_t u = 0; u < U; u++) bad += streamk_plan_block_of(u, U, B) != owner[u];
  CHECK_MSG(bad == 0, "CB=%lld KC=%lld B=%lld: block_of wrong for %d units", (long long)CB, (long long)KC,
            (long long)B, bad);
  int64_t most = 0;
  for (int64_t cb = 0; cb < CB; cb++) {
    const int64_t f = streamk_plan_first(cb, KC, U, B), l = streamk_plan_last(cb, KC, U, B);
    /* the blocks holding this column block's chunks, by brute force: exactly f..l, each once */
    int ok = owner[cb * KC] == f && owner[cb * KC + KC - 1] == l && f <= l;
    for (int64_t c = 1; c < KC; c++) {
      const int64_t d = owner[cb * KC + c] - owner[cb * KC + c - 1];
      ok &= d == 0 || d == 1; /* consecutive blocks, no block skipped */
    }
    bad += !ok;
    if (l - f + 1 > most) most = l - f + 1;
  }
  CHECK_MSG(bad == 0, "CB=%lld KC=%lld B=%lld: first/last wrong for %d column blocks", (long long)CB, (long long)KC,
            (long long)B, bad);
  CHECK_MSG(streamk_plan_max_split(CB, KC, B) == most, "CB=%lld KC=%lld B=%lld: max_split %d, brute force %lld",
            (long long)CB, (long long)KC, (long long)B, streamk_plan_max_split(CB, KC, B), (long long)most);

  /* The kernel's walk (streamk_plan_segment, as kern_w4a16_streamk.cu calls it): every unit
   * once; a segment stays in one column block; a block stores a column block itself exactly
   * when nobody else holds part of it; otherwise its slot is in [0, n) and no slot is written
   * twice; every column block ends up stored exactly once (by its block, or by the last of its
   * n contributors to arrive). */
  int64_t *seen = calloc((size_t)U, sizeof *seen), *slots = calloc((size_t)CB * (size_t)most, sizeof *slots),
          *stored = calloc((size_t)CB, sizeof *stored), *arrived = calloc((size_t)CB, sizeof *arrived);
  CHECK(seen && slots && stored && arrived);
  if (seen && slots && stored && arrived) {
    int walk_bad = 0;
    for (int64_t b = 0; b < B; b++) {
      const int64_t u_end = streamk_plan_lo(b + 1, U, B);
      for (int64_t u = streamk_plan_lo(b, U, B); u < u_end;) {
        int cb, c_lo, c_hi;
        const int64_t next = streamk_plan_segment(u, u_end, KC, &cb, &c_lo, &c_hi);
        walk_bad += next <= u || next > u_end || c_lo >= c_hi || c_hi > KC || cb < 0 || cb >= CB ||
                    (int64_t)cb * KC + c_lo != u || next != (int64_t)cb * KC + c_hi;
        if (next <= u) break;
        for (int64_t v = u; v < next; v++) seen[v]++;
        int n, slot;
        streamk_plan_share(cb, KC, U, B, b, &n, &slot);
        if (c_lo == 0 && c_hi == KC) {
          walk_bad += n != 1 || slot != 0;
          stored[cb]++;
        } else {
          walk_bad += n < 2 || slot < 0 || slot >= n || slot >= most;
          if (slot >= 0 && slot < most) slots[cb * most + slot]++;
          if (++arrived[cb] == n) stored[cb]++; /* the last contributor sums and stores */
        }
        u = next;
      }
    }
    for (int64_t v = 0; v < U; v++) walk_bad += seen[v] != 1;
    for (int64_t i = 0; i < CB * most; i++) walk_bad += slots[i] > 1;
    for (int64_t cb = 0; cb < CB; cb++) walk_bad += stored[cb] != 1;
    CHECK_MSG(walk_bad == 0, "CB=%lld KC=%lld B=%lld: the segment walk is wrong in %d places", (long long)CB,
              (long long)KC, (long long)B, walk_bad);
  }
  free(seen);
  free(slots);
  free(stored);
  free(arrived);
  free(owner);
}

int main(void) {
  /* the Qwen3-235B decode shapes (32-column blocks, k64 chunks) on 132 SMs at 1-5 blocks/SM */
  static const int64_t shapes[][2] = {{9216 / 32, 4096 / 64}, {4096 / 32, 8192 / 64}, {3072 / 32, 4096 / 64},
                                      {4096 / 32, 1536 / 64}, {4608 / 32, 4096 / 64}, {4096 / 32, 384 / 64},
                                      {1, 2},                 {3, 1}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int64_t bps = 1; bps <= 5; bps++) {
      int64_t B = 132 * bps;
      if (B > shapes[s][0] * shapes[s][1]) B = shapes[s][0] * shapes[s][1];
      check_grid(shapes[s][0], shapes[s][1], B);
    }
  /* edge grids: one block; one unit per block; B one short of U */
  check_grid(7, 5, 1);
  check_grid(7, 5, 35);
  check_grid(7, 5, 34);
  struct rng r;
  rng_seed(&r, 20261128);
  for (int i = 0; i < 300; i++) {
    const int64_t CB = (int64_t)rng_range(&r, 1, 600), KC = (int64_t)rng_range(&r, 1, 130);
    check_grid(CB, KC, (int64_t)rng_range(&r, 1, CB * KC));
  }
  /* out of range */
  CHECK(streamk_plan_max_split(0, 4, 1) == 0 && streamk_plan_max_split(4, 4, 17) == 0 &&
        streamk_plan_max_split(4, 4, 0) == 0);
  /* qkv at 264 blocks: every column block is split over at most 2 blocks (64 chunks, ~70 a block) */
  CHECK(streamk_plan_max_split(288, 64, 264) == 2);
  return check_report("test_streamk_plan");
}
