/* moe_plan: how many row tiles the grouped expert GEMMs launch, how tall, and which wgmma tile
 * runs them, in plain C so that CI tests the bound the GPU kernel relies on and the rules
 * (tests/test_moe_plan.c). The launcher cannot see the expert offsets (they are on the device,
 * written by kern_moe_align), so it sizes a launch for an upper bound of the row tiles: blocks
 * past the last real tile leave at once, or (the wgmma kernel's 96-, 128- and 256-row tiles) a
 * persistent grid's blocks list only the real ones.
 * Too few and rows would be silently skipped; too many and a decode batch launches blocks that
 * only find no work (it was ceil(rows / BM) + E before fd300d4: 129 row tiles for one token over
 * 128 experts). */
#ifndef SERVESIM_MOE_PLAN_H
#define SERVESIM_MOE_PLAN_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__CUDACC__)
#define MOE_PLAN_HD __host__ __device__
#else
#define MOE_PLAN_HD
#endif

/* Row tiles of bm rows enough for any split of `rows` (token, expert) pairs over n_experts
 * experts, and no more than the worst split needs: with m = min(n_experts, rows) experts that
 * can have rows, sum over e of ceil(n_e / bm) <= sum of (n_e + bm - 1) / bm rounded down
 * <= (rows + m (bm - 1)) / bm rounded down, reached by m - 1 experts with one row each. */
int moe_plan_row_tiles(int rows, int n_experts, int bm);

/* Rows an expert that the grouped expert GEMMs size their row tiles for, from the launcher's
 * only knowledge, the pairs and the experts: the mean L = pairs / n_experts plus z10 / 10
 * standard deviations of the rows an expert gets when the pairs fall on the experts at random
 * (Poisson: sd = sqrt(L)), i.e. the least integer r >= L with (10 (r - L))^2 >= z10^2 L;
 * z10 = 0 gives the mean rounded down (the launcher's rule before). A tile sized for the mean
 * alone leaves about half the experts of a batch with one more tile, and each further tile reads
 * that expert's weights again; a tile sized for the largest expert computes rows of padding.
 * The launcher picks the smallest of its tile heights holding r (kernels/NOTES.md item 25). */
int moe_plan_tile_rows(int pairs, int n_experts, int z10);

/* The Hopper wgmma path's tile for the grouped expert GEMMs (kern_w4a16_wgmma.cu's
 * ws_moe_launch) at tile_rows rows an expert: returns its height, the smallest of 32, 48, 64, 96
 * and 128 that holds tile_rows (128 past them all; force_rows one of them or 256 forces it:
 * SERVESIM_W4WS_MOE_ROWS), and sets *nwg, its consumer warpgroups of 64 columns each: 2 up to 64
 * rows and at 256, 3 at 96 and 128 (force_wg 2 or 3 forces them on the 64- and 128-row tiles:
 * SERVESIM_W4WS_MOE_WG; other values of either, the rule). Measured on the H200
 * (kernels/NOTES.md items 25, 31 and 32): 48-row tiles 9% faster than 64-row ones at 512 tokens
 * (weights in registers), 96-row ones 9-12% faster than 128-row ones at 1024 and 1280; 192 columns on the 128-row
 * tiles 6-7% faster than 128 at 1024..2048 tokens, and on the 64-row tiles slower. Past 128 rows
 * 96-row tiles lost 14% at 2048 tokens (134 tile rows: two tiles of either height, but the experts
 * under 128 rows, about half, take one 128-row tile and two 96-row ones). */
int moe_plan_wgmma_tile(int tile_rows, int force_rows, int force_wg, int *nwg);

/* Whether the mma.sync grouped expert GEMMs (kern_w4a16.cu's tiles of up to 16 rows) take 128
 * columns a block, the four warps splitting N (variant 9), rather than 32 with the warps
 * splitting K: where those blocks fill the GPU twice over, i.e. min(rows, n_experts) row tiles
 * (one an expert with rows, at most) times ceil(n / 128) column tiles >= 2 sms. Measured on the
 * H200 (kernels/NOTES.md item 35): the fused MoE 2-19% faster at 2..192 tokens (8 of 128
 * experts), 16% slower at one token (8 x 24 and 8 x 32 blocks for 132 SMs). */
int moe_plan_mma_wide(int rows, int n_experts, int n, int sms);

/* Whether h is one of the wgmma kernel's heights for the grouped expert GEMMs (32, 48, 64, 96,
 * 128, 256): what the force_ arguments below must be to force anything. */
int moe_plan_is_height(int h);

/* Two tile heights for the wgmma path's grouped expert GEMMs, ha > hb: an expert's n rows take
 * n / ha tiles of ha rows and leave r = n mod ha; r > hb takes one more ha-row tile (part 0, the
 * first launch), 0 < r <= hb one tile of hb rows (part 1, a second launch). hb = 0: one launch,
 * ceil(n / ha) tiles, the rule before kernels/NOTES.md item 33. Every row of the expert is in
 * exactly one tile (test_moe_plan). Returns the expert's tiles in `part` and sets *row0 the first
 * one's first row from the expert's start; the tiles of part 0 follow each other ha rows apart.
 * (host and device: kern_w4a16.cuh's w4_moe_list numbers the tiles with it) */
static inline MOE_PLAN_HD int moe_plan_expert_tiles(int n, int ha, int hb, int part, int *row0) {
  const int full = n / ha, r = n - full * ha;
  if (part == 0) {
    *row0 = 0;
    return full + (r > hb ? 1 : 0);
  }
  *row0 = n - r;
  return r > 0 && r <= hb ? 1 : 0;
}

/* The first launch's row tiles, an upper bound: moe_plan_row_tiles at ha, and with hb > 0 no more
 * than rows / (hb + 1), since each of its tiles then holds more than hb rows (on a grid of a block
 * a tile every block past the last tile still starts, reads the offsets and leaves, kernels/NOTES.md
 * item 33). */
int moe_plan_split_tiles(int rows, int n_experts, int ha, int hb);

/* The second launch's row tiles, an upper bound: at most one an expert that has rows. */
int moe_plan_rem_tiles(int rows, int n_experts);

/* The wgmma kernel's grouped expert GEMMs number a launch's tiles row tile by row tile, column
 * tiles fastest (lin = row tile x tx + column tile, tx column tiles), and block b of g takes the
 * tiles b, b + g, b + 2g, ... below the real count, which only the device knows (kern_w4a16.cuh's
 * w4_moe_list). The 96-, 128- and 256-row tiles run a persistent grid (kernels/NOTES.md item 34), each
 * block listing its tiles in shared memory, at most MOE_PLAN_MAX_PIECES; the 32-, 48- and 64-row
 * tiles a block a tile of the upper bound (g = the bound's tiles). */
#define MOE_PLAN_MAX_PIECES 96

/* The blocks of that grid for an upper bound of lin_bound tiles and `resident` blocks that fit on
 * the GPU at once: one wave (resident), unless a block would then list more than
 * MOE_PLAN_MAX_PIECES of the bound's tiles; never more blocks than tiles. 0 for no tiles.
 * (32-bit here and below: the launcher keeps a launch's tiles below 2^30.) */
int moe_plan_persistent_blocks(int lin_bound, int resident);

/* Block b of g's tiles (b, b + g, ...) below lin: how many, which is also the index k of its first
 * tile at or past lin, b + k g -- with lin the launch's real count, the block's list length. */
static inline MOE_PLAN_HD int moe_plan_pieces_below(int lin, int b, int g) {
  return lin > b ? (lin - b + g - 1) / g : 0;
}

/* The heights (ha, hb) of the split above for `pairs` (token, expert) pairs over n_experts
 * experts, from the expected cost of a random routing -- Poisson(pairs / n_experts) rows an
 * expert, the launcher's only knowledge: a tile costs w_rows + its height, in rows of tensor work
 * (w_rows the read of an expert's weights, which every tile repeats), a 256-row tile w_rows + 256
 * tall_pct / 100, and the second launch launch_rows more; ha and hb from 32, 48, 64, 96, 128 and
 * 256 (256 only with tall_pct > 0, or forced), hb = 0 for no second launch. The expected cost of
 * one height is kernels/NOTES.md item 32's fit (w_rows ~103 on the H200, from the 1024- and
 * 2048-token pairs; it agreed with every height comparison timed then); the split is item 33's;
 * tall_pct item 35's (125 on the H200: six timed comparisons of 256-row splits against the rule's
 * picks at 2048..4096 tokens within 4% of the cost's ratios; at 100 the cost took them from 2048
 * tokens, where they lost 5-9%). force_ha one of the heights fixes ha; force_hb a height below ha
 * fixes hb, 0 or a height not below ha one launch, -1 (or anything else) leaves it to the cost.
 * Returns ha and sets *hb; 0 and *hb = 0 for no pairs. */
int moe_plan_split(int pairs, int n_experts, int w_rows, int launch_rows, int tall_pct, int force_ha, int force_hb, int *hb);

#ifdef __cplusplus
}
#endif

#endif
