/* wsk_plan: the stream-K schedule of the Hopper wgmma W4A16 kernel (kern_w4a16_wgmma.cu, 17 rows
 * and more), in plain C so that CI tests what the kernel relies on (tests/test_wsk_plan.c).
 *
 * The work is TU = T * KQ quanta: T output tiles of 128 columns x BT rows, numbered ty * TX + tx
 * (consecutive blocks then share activation rows), each KQ quanta of q k64 chunks (q = the
 * consumers' loop step). G blocks, one an SM: block b takes quanta [lo(b), lo(b + 1)),
 * lo(i) = i TU / G (streamk_plan_lo), and walks them tile by tile as pieces:
 *   WSK_WHOLE  a whole tile: the block stores y;
 *   WSK_OWNER  a tile's first quanta but not all: the block adds the partials of blocks
 *              b + 1 .. last (the holders of the rest, in block order) and stores y;
 *   WSK_PART   a tile's later quanta: the block leaves a partial in its workspace slot b.
 * A block's share is contiguous, so only its first piece can be WSK_PART and only its last
 * WSK_OWNER: one workspace slot a block, and a split tile's partials are written at their
 * holders' start and read at the owner's end. (WSK_SPLIT: the kernel's other schedule, a K split
 * of a thread block cluster, which sums in distributed shared memory.) */
#ifndef SERVESIM_WSK_PLAN_H
#define SERVESIM_WSK_PLAN_H

#include <stdint.h>

#include "kernels/streamk_plan.h"

#ifdef __CUDACC__
#define WSK_PLAN_FN static inline __host__ __device__
#else
#define WSK_PLAN_FN static inline
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum { WSK_WHOLE = 0, WSK_OWNER = 1, WSK_PART = 2, WSK_SPLIT = 3 };

#define WSK_MAX_PIECES 16 /* pieces a block may hold (the kernel lists them in shared memory) */

/* One piece: tile (tx, ty), chunks [kc0, kc0 + n) of its K range; kind as above; last: for
 * WSK_OWNER, the last block holding part of the tile. */
typedef struct {
  int tx, ty, kc0, n, kind, last;
} WskPiece;

/* The piece at quantum *u of a share ending at uend (TU quanta on G blocks, KQ a tile, q chunks
 * a quantum, TX tiles a row): fills *s, moves *u past it; 0 at the share's end. */
WSK_PLAN_FN int wsk_plan_next(int64_t *u, int64_t uend, int64_t TU, int KQ, int q, int TX, int64_t G, WskPiece *s) {
  if (*u >= uend) return 0;
  const int64_t tile = *u / KQ;
  const int qs = (int)(*u - tile * KQ), qe = uend - *u < KQ - qs ? qs + (int)(uend - *u) : KQ;
  s->tx = (int)(tile % TX);
  s->ty = (int)(tile / TX);
  s->kc0 = qs * q;
  s->n = (qe - qs) * q;
  s->kind = qs > 0 ? WSK_PART : qe < KQ ? WSK_OWNER : WSK_WHOLE;
  s->last = (int)streamk_plan_block_of(tile * KQ + KQ - 1, TU, G);
  *u += qe - qs;
  return 1;
}

/* An upper bound of the pieces in any block's share: a share of at most ceil(TU / G) quanta
 * touches at most ceil(that / KQ) + 1 tiles. */
WSK_PLAN_FN int64_t wsk_plan_max_pieces(int64_t TU, int64_t G, int KQ) { return (TU + G - 1) / G / KQ + 2; }

/* Whether stream-K beats the K-split grid (tiles tiles of KC chunks, `splits` splits on
 * split_slots resident blocks; sk_slots blocks for stream-K): where every SM gets at least 12
 * chunks, unless the split grid is one wave of at most 3 splits -- the rule fitted to the H200
 * measurements of both schedules at the 36 Qwen3 points of 64..256 rows (kernels/NOTES.md item
 * 11; summed 558 us against 632 for never and 652 for always) -- and not against an unsplit grid
 * of more than WSK_PLAN_MAX_WAVES stream-K grids' worth of tiles whose waves are at least 90%
 * full: there the data-parallel grid loses little to its last wave, while stream-K's shares are
 * runs of consecutive tiles, so the blocks at work at once hold tiles from all over the grid and
 * read activation rows from all of it (o_proj at 4096 rows: 64 MB, more than the 60 MB L2; a
 * reading, not measured) and pay the fix-ups besides. Measured on the H200
 * at 4096 rows (kernels/NOTES.md item 37): 5-35% faster at the eight Qwen3 points this turns
 * (o_proj 330 us against 510); qkv at 2048 rows, five waves 87% full, stayed faster on stream-K. */
#define WSK_PLAN_MAX_WAVES 2
WSK_PLAN_FN int wsk_plan_prefer(int64_t tiles, int KC, int64_t splits, int64_t split_slots, int64_t sk_slots) {
  const int64_t blocks = tiles * splits, waves = (blocks + split_slots - 1) / split_slots;
  const int one_shallow_wave = blocks <= split_slots && splits <= 3;
  const int full_waves = splits == 1 && tiles > WSK_PLAN_MAX_WAVES * sk_slots && 10 * blocks >= 9 * waves * split_slots;
  return tiles * KC >= 12 * sk_slots && !one_shallow_wave && !full_waves;
}

/* Whether an unsplit grid of `tiles` tiles of KC chunks runs instead as a persistent grid of
 * whole tiles on sk_slots blocks (block b the tiles b, b + sk_slots, ...; the stream-K instance
 * with no partials): where it holds more tiles than the blocks and short ones -- each block then
 * fills its ring with the next tile's first chunks while it stores the last tile, which is worth
 * most where a tile has few chunks -- and no block more than WSK_MAX_PIECES of them. Measured on
 * the H200 against the unsplit grid at 1024..4096 rows (kernels/NOTES.md item 37): down 2.6-7.6%
 * faster at TP=1/2/4 (KC 24, 12, 6) at 3072 and 4096 rows, o_proj at TP=4 (KC 32) 1.5-1.8%; qkv
 * and gate_up (KC 64) within 0.3%, o_proj (KC 128) 0.5-0.7% slower. */
#define WSK_PLAN_WHOLE_MAX_CHUNKS 32
WSK_PLAN_FN int wsk_plan_whole(int64_t tiles, int KC, int64_t splits, int64_t sk_slots) {
  return splits == 1 && sk_slots > 0 && tiles > sk_slots && KC <= WSK_PLAN_WHOLE_MAX_CHUNKS &&
         (tiles + sk_slots - 1) / sk_slots <= WSK_MAX_PIECES;
}

#ifdef __cplusplus
}
#endif

#endif
