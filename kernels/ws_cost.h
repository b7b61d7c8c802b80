/* ws_cost: the schedule model of the Hopper warp-specialised wgmma W4A16 kernel
 * (kern_w4a16_wgmma.cu, 17 rows and more), in plain C so that CI tests it (tests/test_ws_cost.c):
 * how many K splits a grid of output tiles takes, whether stream-K replaces that grid, what the
 * chosen schedule costs, which tile (64, 128 or 256 rows of 128 columns, or 128 rows of 192 or
 * of 64) serves 65 rows and more, whether 64 or 128 columns serve 17..64 rows, and whether a
 * K-sliced tile (ws_cost_pick_slices) replaces that choice.
 *
 * Units: a cost is in quarter chunks (a chunk: one k64 step of one tile, at the tile's own
 * height) that the busiest slot spends. K splits: `tiles` tiles of KC chunks split at multiples
 * of q chunks (1, or 4 for the kernel whose loop steps 4 chunks), at most 8 splits (a portable
 * cluster) of at least 2 q chunks; waves x (chunks a split + a block's fixed cost + the cluster
 * sum's), ceil(tiles s / cap[s]) (q ceil(KC / q / s) + 1.5 + (s > 1 ? 2 + (s - 1) : 0)) chunks,
 * cap[s] the blocks resident at once in clusters of s (the launcher asks the occupancy
 * calculator; cap[1] = SMs x blocks an SM). The constants are fitted to the H200 times of every
 * allowed split at the 27 points of down, gate_up and o_proj (TP 1, 2, 4) at 64, 128 and 256
 * rows with the staged output tile (summed 304.0 us for the model's choices, 303.5 for the best
 * split at each point, 309.7 for the previous constants: 5.5 chunks a block, 0.75 a further
 * split); bench_w4ws_trace shows the cluster sum's share: ~1000 SM cycles to leave the partials
 * and meet, 3500-5000 to read the peers' shares through distributed shared memory at 128 rows
 * (kernels/NOTES.md item 13). The 256-row tiles (item 14) reuse these constants, counted in
 * their own chunks. Stream-K: a block's share of the quanta plus one split's fixed costs. */
#ifndef SERVESIM_WS_COST_H
#define SERVESIM_WS_COST_H

#include <stdint.h>

#include "kernels/wsk_plan.h"

#ifdef __CUDACC__
#define WS_COST_FN static inline __host__ __device__
#else
#define WS_COST_FN static inline
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define WS_COST_MAX_SPLITS 8 /* a portable cluster */

/* A stream-K block's workspace slot: its rows x 64 nwg columns of fp32 partials (the kernel's
 * accumulators of its 128 nwg consumer threads, rows / 2 each; nwg consumer warpgroups) */
#define WS_COST_SK_SLOT_FLOATS(rows, nwg) ((int64_t)(rows) / 2 * 128 * (nwg))

/* s splits of KC chunks, each at least 2 quanta of q chunks */
WS_COST_FN int ws_cost_split_ok(int s, int KC, int q) { return s >= 1 && s <= WS_COST_MAX_SPLITS && 2 * s * q <= KC; }

/* the cost of `tiles` tiles of KC chunks split s ways, the cluster sum's share divided by
 * sum_div (1; 2 for the 64 x 64 tiles, ws_cost_schedule) */
WS_COST_FN int64_t ws_cost_split(int64_t tiles, int KC, const int64_t cap[WS_COST_MAX_SPLITS + 1], int q, int s, int sum_div) {
  const int units = KC / q;
  const int64_t waves = (tiles * s + cap[s] - 1) / cap[s];
  return waves * (4 * q * ((units + s - 1) / s) + 6 + (s > 1 ? (8 + 4 * (s - 1)) / sum_div : 0));
}

/* the cheapest allowed split (the fewest splits among equals) */
WS_COST_FN int ws_cost_splits(int64_t tiles, int KC, const int64_t cap[WS_COST_MAX_SPLITS + 1], int q, int sum_div) {
  int best = 1;
  int64_t best_cost = INT64_MAX;
  for (int s = 1; ws_cost_split_ok(s, KC, q); s++) {
    const int64_t cost = ws_cost_split(tiles, KC, cap, q, s, sum_div);
    if (cost < best_cost) {
      best_cost = cost;
      best = s;
    }
  }
  return best;
}

/* stream-K over G blocks of TU quanta */
WS_COST_FN int64_t ws_cost_sk(int64_t TU, int64_t G, int q) { return 4 * q * ((TU + G - 1) / G) + 6 + 8; }

/* One tile height's schedule: `tiles` tiles split `splits` ways (a cluster each), or stream-K
 * on sk_blocks blocks (> 0); blocks launched; the model's cost. */
typedef struct {
  int splits;
  int64_t sk_blocks, blocks, cost_qc; /* cost_qc: quarter chunks */
} WsCostSched;

/* The schedule of `tiles` tiles of `rows` rows (nwg consumer warpgroups, 64 nwg columns; with
 * ksl > 1 K slices, ksl = nwg warpgroups taking the chunks of a 64-column tile in turn,
 * kern_w4a16_wgmma.cu's KSL: costed as the busiest slice's ceil(KC / ksl) chunks, never
 * stream-K) and KC chunks (quanta of q). force: a split
 * asked for (SERVESIM_W4WS_SPLITS; taken if allowed; any force > 0, allowed or not, turns
 * stream-K off, so that an A/B of splits never times stream-K instead); sk_mode: 0
 * never stream-K, 1 where wsk_plan_prefer says (128 rows a tile and up: the 64-row kernel's
 * stream-K instance holds one block an SM against its split grid's two, and lost wherever the
 * rule took it, kernels/NOTES.md item 12), 2 always; sk_slots: the stream-K instance's blocks
 * an SM x SMs; max_flags, part_floats: the workspace's room (stream-K needs a flag and a slot of
 * WS_COST_SK_SLOT_FLOATS(rows, nwg) floats a block; 0 without a workspace). */
WS_COST_FN WsCostSched ws_cost_schedule_ksl(int rows, int nwg, int ksl, int64_t tiles, int KC, int q,
                                            const int64_t cap[WS_COST_MAX_SPLITS + 1], int force, int sk_mode, int64_t sk_slots,
                                            int64_t max_flags, int64_t part_floats) {
  WsCostSched r;
  /* the 64 x 64 tiles' cluster sum counted at half (fitted, H200, kernels/NOTES.md item 29: with
   * the full count their splits were 4, 4 and 3 at down TP=1, o_proj TP=4 and down TP=2, where
   * 5, 5 and 4 were up to 0.4 us faster at 32..64 rows; the sum's bytes are half a 64 x 128
   * block's, and their chunks cost more than half of one); likewise with two K slices (item 30:
   * gate_up TP=4 at 32..64 rows 4.4-4.6 us with 8 splits against 5.9-6.3 with the full count's
   * 4), but not with four (one block an SM: the full count fitted better) */
  const int sum_div = rows == 64 && (nwg == 1 || ksl == 2) ? 2 : 1;
  if (ksl > 1) KC = (KC + ksl - 1) / ksl, sk_mode = 0;
  r.splits = ws_cost_splits(tiles, KC, cap, q, sum_div);
  if (ws_cost_split_ok(force, KC, q)) r.splits = force;
  r.sk_blocks = 0;
  r.blocks = tiles * r.splits;
  r.cost_qc = ws_cost_split(tiles, KC, cap, q, r.splits, sum_div);
  if (sk_mode && force <= 0) {
    const int64_t TU = tiles * (KC / q), G = TU < sk_slots ? TU : sk_slots;
    const int want = sk_mode == 2 || (rows >= 128 && wsk_plan_prefer(tiles, KC, r.splits, cap[r.splits], sk_slots));
    if (want && G >= 1 && G <= max_flags && G * WS_COST_SK_SLOT_FLOATS(rows, nwg) <= part_floats &&
        wsk_plan_max_pieces(TU, G, KC / q) <= WSK_MAX_PIECES) {
      r.sk_blocks = G;
      r.blocks = G;
      r.cost_qc = ws_cost_sk(TU, G, q);
    }
  }
  return r;
}

/* without K slices */
WS_COST_FN WsCostSched ws_cost_schedule(int rows, int nwg, int64_t tiles, int KC, int q, const int64_t cap[WS_COST_MAX_SPLITS + 1],
                                        int force, int sk_mode, int64_t sk_slots, int64_t max_flags, int64_t part_floats) {
  return ws_cost_schedule_ksl(rows, nwg, 1, tiles, KC, q, cap, force, sk_mode, sk_slots, max_flags, part_floats);
}

/* The most k64 chunks a block of the 128 x 64 tiles may run for ws_cost_pick_tile to take them:
 * their chunk was costed at 0.875 of a 128 x 128 one, fitted where loops are short (their blocks
 * sum half the partials and two share an SM); o_proj at TP=1 and 256 rows, 64 chunks a block,
 * costed even with 128 x 128 tiles, took 29.5 against 28.0 us (H200, kernels/NOTES.md item 29) */
#define WS_COST_NARROW_MAX_CHUNKS 48

/* A schedule's weight in ws_cost_pick_tile (below, which explains them) and ws_cost_pick_slices:
 * a tile of `rows` x 64 nwg columns, `blocks` of them on `sms` SMs */
#define WS_COST_W_NARROW64 46 /* the 64 x 64 tiles (17..64 rows only), fitted in kernels/NOTES.md item 30 */
WS_COST_FN int ws_cost_tile_weight(int rows, int nwg, int64_t blocks, int sms) {
  if (rows == 64) return nwg == 1 ? WS_COST_W_NARROW64 : blocks <= sms ? 30 : 60;
  return rows == 256 ? 60 : nwg == 3 ? 47 : nwg == 1 ? 35 : 40;
}

/* The tile for 65 rows and more from the five schedules (s256 NULL below 129 rows, s128w3 and
 * s128w1 NULL where 192 or 64 columns are not wanted, SERVESIM_W4WS_WG=2; KC the call's k64
 * chunks): returns its height and sets *nwg, its consumer warpgroups (64 columns each: 2, 3 for
 * the 128 x 192 tiles of s128w3, 1 for the 128 x 64 tiles of s128w1). Each schedule's cost
 * (quarter chunks of its own tile) is weighted by what its chunk counts against a 128-row chunk
 * (x 40 = 1): a 256-row chunk 1.5 (x 60; each dequantised weight serves twice the tokens), a
 * 64-row chunk 0.75 where its schedule's blocks fit one an SM and 1.5 where two share one (x 30
 * / 60; its chunk took ~1230 SM cycles against ~800 for 128 rows, kernels/NOTES.md item 11), a
 * 192-column chunk 1.175 (x 47; a fitted factor: its loop takes ~970 cycles a chunk against
 * ~700, item 16, and its grid has fewer blocks; never stream-K), a 64-column chunk 0.875 (x 35,
 * fitted, item 29; half the work, two blocks an SM; never stream-K) where its blocks run at most
 * WS_COST_NARROW_MAX_CHUNKS chunks. Fitted to the H200 (kernels/NOTES.md items 14, 16, 29;
 * tests/test_ws_cost.c has the Qwen3 shapes' picks): 128 x 64 tiles at 128 and 256 rows for
 * most TP=2/4 slices and gate_up and down at TP=1, 256 rows at qkv TP=1, 64 rows at down TP=4
 * and gate_up TP=4 with 128 rows, 192 columns at o_proj TP=1 with 128 rows, 128 x 128
 * elsewhere. Equal costs keep the earlier tile in the order 128 x 128, 64, 256, 128 x 192,
 * 128 x 64. */
WS_COST_FN int ws_cost_pick_tile(const WsCostSched *s64, const WsCostSched *s128, const WsCostSched *s256,
                                 const WsCostSched *s128w3, const WsCostSched *s128w1, int KC, int sms, int *nwg) {
  const int64_t c128 = ws_cost_tile_weight(128, 2, s128->blocks, sms) * s128->cost_qc;
  const int64_t c64 = ws_cost_tile_weight(64, 2, s64->blocks, sms) * s64->cost_qc;
  const int64_t c256 = s256 ? ws_cost_tile_weight(256, 2, s256->blocks, sms) * s256->cost_qc : INT64_MAX;
  const int64_t cw3 = s128w3 ? ws_cost_tile_weight(128, 3, s128w3->blocks, sms) * s128w3->cost_qc : INT64_MAX;
  const int w1_ok = s128w1 && s128w1->sk_blocks == 0 && (KC + s128w1->splits - 1) / s128w1->splits <= WS_COST_NARROW_MAX_CHUNKS;
  const int64_t cw1 = w1_ok ? ws_cost_tile_weight(128, 1, s128w1->blocks, sms) * s128w1->cost_qc : INT64_MAX;
  int rows = 128;
  int64_t best = c128;
  *nwg = 2;
  if (c64 < best) rows = 64, best = c64;
  if (c256 < best) rows = 256, best = c256;
  if (cw3 < best) rows = 128, best = cw3, *nwg = 3;
  if (cw1 < best) rows = 128, best = cw1, *nwg = 1;
  return rows;
}

/* Whether a 64-row grid runs the kernel whose producer brings the weights through the stages
 * (kern_w4a16_wgmma.cu's ws_run64) rather than the one whose consumer warps load them into
 * registers. reg: the register kernel's schedule, stg: the stages kernel's (never stream-K);
 * cfg: SERVESIM_W4WS_CFG (2 always, 3 never, anything else this rule). The rule: a split grid
 * of at most one block for every two SMs. Measured on the H200 (kernels/NOTES.md item 24): there
 * eight stages of lead take 0.5-0.85 us off gate_up and down at TP=4 (48 and 32 blocks), where
 * the register kernel's one chunk of lead leaves each chunk a memory latency that no other
 * block on the SM hides; on grids that fill the SMs the stages kernel was up to 1.4 us slower.
 * A stream-K schedule of the register kernel is kept (the stages kernel has none). */
WS_COST_FN int ws_cost_stage_weights64(const WsCostSched *reg, const WsCostSched *stg, int sms, int cfg) {
  if (cfg == 3 || reg->sk_blocks > 0 || stg->sk_blocks > 0) return 0;
  return cfg == 2 || 2 * stg->blocks <= sms;
}

/* Whether a grid of 17..64 rows takes tiles of 64 columns (one consumer warpgroup, three blocks
 * an SM: kern_w4a16_wgmma.cu's WsTile64w1) rather than 128. wide, narrow: the two register
 * kernels' schedules (each in its own quarter chunks; a narrow chunk is half a wide one's work);
 * wg: SERVESIM_W4WS_WG (1 always, 2 never, anything else this rule; kern_w4a16_wgmma.cu forces
 * 1 before asking). The rule: the narrow schedule costs at most 6% more of its own quarter
 * chunks, splits K at most one way fewer, and either the wide grid has at least 7/8 as many
 * blocks as there are SMs or the narrow split is deeper -- so the narrow tiles come in where
 * the SMs are full, or where they split deeper, with a split about as deep: each block then
 * sums half the partials, and two or three on an SM overlap one another's waits. Never against
 * a stream-K schedule. Measured on the H200 (kernels/NOTES.md item 29), 17..64 rows: the narrow
 * tiles took 0.35-1.1 us off down at TP=1, o_proj at TP=2/4 and qkv at TP=4 (wide grids of
 * 128-192 blocks) and, split 4 ways against 3, 0.2-0.5 off down at TP=2 (96 wide blocks); they
 * lost 0.25-2.7 us at qkv TP=1/2, 0.2-0.45 at gate_up TP=1 and 0.7-1.3 at gate_up TP=2 (96 wide
 * blocks, one an SM with SMs to spare, the same 8 splits), and tied at o_proj TP=1. With the
 * narrow tiles' costs of ws_cost_schedule (their cluster sum at half), the cost condition keeps
 * qkv TP=1 wide (27% dearer) and the split condition qkv TP=2, gate_up TP=1 and o_proj TP=1 (4,
 * 6 and 5 splits against 6, 8 and 7); tests/test_ws_cost.c has the twelve shapes. */
WS_COST_FN int ws_cost_narrow64(const WsCostSched *wide, const WsCostSched *narrow, int sms, int wg) {
  if (wg == 1) return 1;
  if (wg == 2 || wide->sk_blocks > 0 || narrow->sk_blocks > 0) return 0;
  return (8 * wide->blocks >= 7 * (int64_t)sms || narrow->splits > wide->splits) &&
         100 * narrow->cost_qc <= 106 * wide->cost_qc && narrow->splits + 1 >= wide->splits;
}

/* The K-sliced tiles (kernels/NOTES.md item 30): 64 columns whose consumer warpgroups take the
 * chunks in turn and add their accumulators in the SM's shared memory -- 128 x 64 with two slices
 * (one block an SM), 64 x 64 with four (one block an SM) and, at 17..64 rows, 64 x 64 with two
 * (two blocks an SM) -- against the tile the rules above picked (cur, at weight cur_w, its
 * ws_cost_tile_weight). Each schedule counts weight x (cost + WS_COST_SPLIT_SUM_QC if it splits
 * K over a cluster), the weights in 40ths of a 128 x 128 chunk: WS_COST_W_K2 for a two-slice
 * 128 x 64 tile's slice chunk, WS_COST_W_K4_64 and WS_COST_W_K2_64 for the 64 x 64 ones; the
 * extra charge is the cluster sum that the slices avoid, which ws_cost_split (fitted among the
 * splits of one tile) counts low against them. NULL: not planned. Returns WS_SLICES_NONE (keep
 * cur; ties too) or the cheapest, in the order k2, k4, k2_64 among equals. Fitted (with
 * WS_COST_W_NARROW64) to the H200's sweep of every allowed split of the three tiles at the
 * twelve Qwen3 shapes, 32..256 rows (kernels/NOTES.md item 30; tests/test_ws_cost.c has the
 * picks): summed 863.6 us over those 84 points for the picks against 893.8 for the previous
 * dispatch. */
#define WS_COST_SPLIT_SUM_QC 6
#define WS_COST_W_K2 43
#define WS_COST_W_K4_64 58
#define WS_COST_W_K2_64 58
enum { WS_SLICES_NONE = 0, WS_SLICES_K2 = 1, WS_SLICES_K4_64 = 2, WS_SLICES_K2_64 = 3 };

/* weight x (cost + the cluster sum's extra charge) */
WS_COST_FN int64_t ws_cost_slices_weighted(int w, const WsCostSched *s) {
  return (int64_t)w * (s->cost_qc + (s->splits > 1 && s->sk_blocks == 0 ? WS_COST_SPLIT_SUM_QC : 0));
}

WS_COST_FN int ws_cost_pick_slices(int cur_w, const WsCostSched *cur, const WsCostSched *k2, const WsCostSched *k4_64,
                                   const WsCostSched *k2_64) {
  const int64_t c2 = k2 ? ws_cost_slices_weighted(WS_COST_W_K2, k2) : INT64_MAX;
  const int64_t c4 = k4_64 ? ws_cost_slices_weighted(WS_COST_W_K4_64, k4_64) : INT64_MAX;
  const int64_t c2s = k2_64 ? ws_cost_slices_weighted(WS_COST_W_K2_64, k2_64) : INT64_MAX;
  int64_t best = ws_cost_slices_weighted(cur_w, cur);
  int pick = WS_SLICES_NONE;
  if (c2 < best) best = c2, pick = WS_SLICES_K2;
  if (c4 < best) best = c4, pick = WS_SLICES_K4_64;
  if (c2s < best) pick = WS_SLICES_K2_64;
  return pick;
}

#ifdef __cplusplus
}
#endif

#endif
