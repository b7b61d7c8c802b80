/* test_wsk_plan: the wgmma W4A16 kernel's stream-K pieces (kernels/wsk_plan.h) on the Qwen3
 * grids and random ones, against brute force: every block's pieces, listed as the kernel lists
 * them, cover every quantum of every tile exactly once, in order; a tile held whole is
 * WSK_WHOLE; a split tile has one WSK_OWNER (its first quanta, the last piece of its block) and
 * WSK_PART pieces held by exactly the blocks owner + 1 .. last, each as its block's first piece
 * (one workspace slot a block); no block holds more pieces than wsk_plan_max_pieces says. A
 * wrong formula here would drop or double-count chunks on the GPU, sum a tile from the wrong
 * slots, or wait for a flag nobody raises. */
#include <stdlib.h>

#include "common/rng.h"
#include "kernels/wsk_plan.h"
#include "tests/check.h"

/* T tiles (TX a row) of KQ quanta of q chunks on G blocks. */
static void check_plan(int64_t T, int TX, int KQ, int q, int64_t G) {
  const int64_t TU = T * KQ;
  if (G > TU || G < 1) return; /* the launcher takes G = min(SMs, TU) */
  int *holder = malloc((size_t)TU * sizeof *holder);   /* block holding each quantum */
  int *owner = malloc((size_t)T * sizeof *owner);      /* the tile's WSK_OWNER block, or -1 */
  int *last = malloc((size_t)T * sizeof *last);        /* that piece's last */
  int *whole = malloc((size_t)T * sizeof *whole);      /* held as WSK_WHOLE */
  int *first_part = malloc((size_t)G * sizeof *first_part); /* the tile of block b's WSK_PART, or -1 */
  CHECK(holder && owner && last && whole && first_part);
  if (!holder || !owner || !last || !whole || !first_part) goto out;
  for (int64_t u = 0; u < TU; u++) holder[u] = -1;
  for (int64_t t = 0; t < T; t++) owner[t] = -1, whole[t] = 0;
  int bad = 0, bound_bad = 0;
  const int64_t most = wsk_plan_max_pieces(TU, G, KQ);
  for (int64_t b = 0; b < G; b++) {
    int64_t u = streamk_plan_lo(b, TU, G);
    const int64_t uend = streamk_plan_lo(b + 1, TU, G);
    first_part[b] = -1;
    WskPiece p;
    int k = 0;
    while (wsk_plan_next(&u, uend, TU, KQ, q, TX, G, &p)) {
      const int64_t tile = (int64_t)p.ty * TX + p.tx;
      bad += p.tx < 0 || p.tx >= TX || tile >= T || p.n <= 0 || p.kc0 % q || p.n % q;
      bad += p.kc0 + p.n > KQ * q;
      for (int64_t c = p.kc0 / q; c < (p.kc0 + p.n) / q && tile < T; c++) {
        bad += holder[tile * KQ + c] != -1;
        holder[tile * KQ + c] = (int)b;
      }
      const int at_end = u == uend;
      if (p.kind == WSK_WHOLE) {
        bad += p.kc0 != 0 || p.n != KQ * q;
        whole[tile] = 1;
      } else if (p.kind == WSK_OWNER) {
        bad += p.kc0 != 0 || p.n >= KQ * q || !at_end || p.last <= b;
        bad += owner[tile] != -1;
        owner[tile] = (int)b;
        last[tile] = p.last;
      } else if (p.kind == WSK_PART) {
        bad += p.kc0 == 0 || k != 0;
        first_part[b] = (int)tile;
      } else {
        bad++;
      }
      k++;
    }
    bad += u != uend;
    bound_bad += k > most;
  }
  for (int64_t x = 0; x < TU; x++) bad += holder[x] < 0;
  /* a split tile: its owner holds quantum 0, the parts are exactly blocks owner + 1 .. last */
  for (int64_t t = 0; t < T; t++) {
    if (whole[t]) {
      bad += owner[t] != -1;
      continue;
    }
    bad += owner[t] < 0 || holder[t * KQ] != owner[t] || holder[t * KQ + KQ - 1] != last[t];
    if (owner[t] < 0) continue;
    for (int64_t b = owner[t] + 1; b <= last[t]; b++) bad += first_part[b] != t;
  }
  CHECK_MSG(bad == 0, "T=%lld TX=%d KQ=%d q=%d G=%lld: pieces wrong in %d places", (long long)T, TX, KQ, q,
            (long long)G, bad);
  CHECK_MSG(bound_bad == 0, "T=%lld KQ=%d G=%lld: %d blocks over wsk_plan_max_pieces", (long long)T, KQ,
            (long long)G, bound_bad);
out:
  free(holder);
  free(owner);
  free(last);
  free(whole);
  free(first_part);
}

int main(void) {
  /* the Qwen3-235B shapes (N, K) and TP slices at 64, 128, 256 rows on 132 SMs, as the launcher
   * sets them up: 64-row tiles with 1-chunk quanta; 128-row tiles with 4-chunk quanta where K
   * allows (K % 256 == 0), else 1 */
  static const int shapes[][2] = {{9216, 4096}, {4096, 8192}, {3072, 4096}, {4096, 1536}, {4608, 4096}, {4096, 4096},
                                  {1536, 4096}, {4096, 768},  {2304, 4096}, {4096, 2048}, {768, 4096},  {4096, 384}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int M = 64; M <= 256; M *= 2) {
      const int N = shapes[s][0], K = shapes[s][1], BT = M <= 64 ? 64 : 128;
      const int q = BT == 128 && K % 256 == 0 ? 4 : 1, TX = (N + 127) / 128;
      const int64_t T = (int64_t)TX * ((M + BT - 1) / BT), TU = T * (K / 64 / q);
      check_plan(T, TX, K / 64 / q, q, TU < 132 ? TU : 132);
    }
  /* edge grids: one block; one quantum a block; one tile; blocks inside one tile */
  check_plan(5, 5, 8, 1, 1);
  check_plan(3, 3, 4, 4, 12);
  check_plan(1, 1, 64, 1, 40);
  check_plan(2, 1, 7, 1, 13);
  struct rng r;
  rng_seed(&r, 20261128);
  for (int i = 0; i < 500; i++) {
    const int TX = (int)rng_range(&r, 1, 80), TY = (int)rng_range(&r, 1, 4), KQ = (int)rng_range(&r, 1, 130);
    const int q = rng_range(&r, 0, 1) ? 4 : 1;
    const int64_t T = (int64_t)TX * TY;
    check_plan(T, TX, KQ, q, (int64_t)rng_range(&r, 1, 300));
  }
  /* The kernel lists at most WSK_MAX_PIECES pieces: on 132 SMs every Qwen3 grid stays well
   * under it (the launcher checks wsk_plan_max_pieces before choosing stream-K). */
  CHECK(wsk_plan_max_pieces(144 * 16, 132, 16) <= WSK_MAX_PIECES); /* qkv, 256 rows */
  CHECK(wsk_plan_max_pieces(6 * 64, 132, 64) == 2);                /* gate_up TP=4: under a tile a block */

  /* The rule: enough chunks an SM, and not against a shallow one-wave split grid. qkv at 256
   * rows (144 tiles of 64 chunks; 2 splits on 132 slots, two waves) takes stream-K; o_proj at
   * 256 rows (64 tiles of 128; 2 splits, one wave) and gate_up at TP=4, 64 rows (6 tiles of 64
   * chunks: under 12 an SM) do not. */
  CHECK(wsk_plan_prefer(144, 64, 2, 132, 132));
  CHECK(!wsk_plan_prefer(64, 128, 2, 132, 132));
  CHECK(!wsk_plan_prefer(6, 64, 8, 264, 132));
  CHECK(wsk_plan_prefer(32, 128, 4, 132, 132)); /* o_proj, 128 rows: one wave but 4 splits */
  /* and not against an unsplit grid of more than two stream-K grids' worth of tiles whose waves
   * are at least 90% full (4096 rows: o_proj's 512 tiles of 256 x 128, four waves 97% full; qkv's
   * 1152, nine), where the data-parallel grid was faster; still where its last wave is short (qkv
   * at 2048 rows: 576 tiles, five waves 87% full; 1024: 288, three, 73%), up to two grids' worth
   * (264) and for split grids */
  CHECK(!wsk_plan_prefer(512, 128, 1, 132, 132));
  CHECK(!wsk_plan_prefer(1152, 64, 1, 132, 132));
  CHECK(wsk_plan_prefer(576, 64, 1, 132, 132));
  CHECK(wsk_plan_prefer(288, 64, 1, 132, 132));
  CHECK(wsk_plan_prefer(264, 64, 1, 132, 132));
  CHECK(!wsk_plan_prefer(265 + 131, 64, 1, 132, 132)); /* 396: three full waves */
  CHECK(wsk_plan_prefer(432, 64, 2, 132, 132));
  /* whole tiles on a persistent grid: unsplit, more tiles than blocks, at most 32 chunks a tile
   * and WSK_MAX_PIECES a block (down at TP=4 and 4096 rows: 512 tiles of 6 chunks; o_proj at
   * TP=4: 32 chunks; not qkv's 64 nor o_proj's 128, nor 128 tiles on 132 blocks) */
  CHECK(wsk_plan_whole(512, 6, 1, 132) && wsk_plan_whole(512, 32, 1, 132));
  CHECK(!wsk_plan_whole(512, 33, 1, 132) && !wsk_plan_whole(1152, 64, 1, 132) && !wsk_plan_whole(512, 128, 1, 132));
  CHECK(!wsk_plan_whole(128, 6, 1, 132) && wsk_plan_whole(133, 6, 1, 132) && !wsk_plan_whole(512, 6, 2, 132));
  CHECK(wsk_plan_whole(132 * 16, 6, 1, 132) && !wsk_plan_whole(132 * 16 + 1, 6, 1, 132) && !wsk_plan_whole(512, 6, 1, 0));
  return check_report("test_wsk_plan");
}
