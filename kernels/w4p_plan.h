/* w4p_plan: how the preload W4A16 GEMM (kern_w4a16_preload.cu) splits its work, in plain C so
 * that CI tests what the GPU kernel relies on (tests/test_w4p_plan.c).
 *
 * The weights of one n16 tile are KG = K / 128 groups of two k64 chunks (one group scale each).
 * A block holds W warps and takes one tile and one of S contiguous K splits of it; the S splits
 * of a tile form one thread block cluster (S <= 8). The S * W warps of a tile share its groups
 * evenly: warp j (= split * W + warp) takes groups [lo(j), lo(j + 1)), lo(j) = floor(j KG /
 * (S W)), i.e. at most ceil(KG / (S W)) groups, which the split count keeps within the U / 2
 * groups (U chunks) a warp holds in registers. Grid: N / 16 tiles x S splits.
 *
 * Configurations (warps a block, chunks a warp): (8, 4), (8, 8), (4, 16), (8, 16), (8, 8)
 * again compiled for 3 blocks a SM (fewer registers: it gives one wave where the other does
 * not), and (16, 2), one group a warp, which the plan takes for K of 9..16 groups (forced on a
 * longer K it splits over a cluster); w4p_plan_choose prefers a grid of
 * one wave (every block resident at once, so every weight load is issued before any block
 * waits), then the fewest splits, then more busy warps a tile (warps with at least one group:
 * a shorter run for each warp after the wait), then more warps a block up to 8 (the 16-warp
 * block only where it keeps more warps busy: its idle warps cost, kernels/NOTES.md item 20),
 * then fewer chunks a warp. */
#ifndef SERVESIM_W4P_PLAN_H
#define SERVESIM_W4P_PLAN_H

#include <stdint.h>

#ifdef __CUDACC__
#define W4P_PLAN_FN static inline __host__ __device__
#define W4P_PLAN_CONSTEXPR constexpr
#else
#define W4P_PLAN_FN static inline
#define W4P_PLAN_CONSTEXPR
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum { W4P_PLAN_CFGS = 6, W4P_PLAN_MAX_SPLITS = 8 };

/* warps per block and k64 chunks per warp of configuration c (0 .. W4P_PLAN_CFGS - 1) */
W4P_PLAN_FN W4P_PLAN_CONSTEXPR int w4p_plan_warps(int c) { return c == 2 ? 4 : c == 5 ? 16 : 8; }
W4P_PLAN_FN W4P_PLAN_CONSTEXPR int w4p_plan_units(int c) { return c == 5 ? 2 : c == 0 ? 4 : c == 1 || c == 4 ? 8 : 16; }

/* First group of warp j of nw warps sharing KG groups (j = nw gives KG). */
W4P_PLAN_FN int w4p_plan_group_lo(int j, int KG, int nw) { return (int)((int64_t)j * KG / nw); }

/* K splits configuration c needs for KG groups: ceil(KG / (W * U / 2)). */
W4P_PLAN_FN int w4p_plan_splits(int c, int KG) {
  const int per_block = w4p_plan_warps(c) * w4p_plan_units(c) / 2;
  return (KG + per_block - 1) / per_block;
}

typedef struct {
  int cfg;    /* configuration, -1: none fits (S > 8 for every one) */
  int splits; /* S: K splits per tile = blocks per cluster */
  int blocks; /* grid: N16 * splits */
  int waves;  /* ceil(blocks / (sms * blocks_per_sm[cfg])) */
} w4p_plan_t;

/* Warps of the S W a tile has (S splits of configuration c) that own at least one of its KG
 * groups: min(S W, KG), as w4p_plan_group_lo deals them. */
W4P_PLAN_FN int w4p_plan_busy_warps(int c, int S, int KG) {
  const int nw = S * w4p_plan_warps(c);
  return nw < KG ? nw : KG;
}

/* The plan for N16 tiles of KG groups on sms SMs, blocks_per_sm[c] the occupancy of each
 * configuration (0: a block does not fit; never chosen). forced >= 0 takes that configuration
 * whatever its waves (for tuning; cfg -1 when it would need more than 8 splits or does not
 * fit). Otherwise, among the configurations with at most 8 splits, the fewest waves, then the
 * fewest splits (each split adds a cluster sum), then the most busy warps a tile, then the most
 * warps a block counting a 16-warp block as none, then the fewest chunks a warp, then the lower
 * index (kernels/NOTES.md items 9 and 20 have the measurements). */
W4P_PLAN_FN w4p_plan_t w4p_plan_choose(int N16, int KG, int sms, const int *blocks_per_sm, int forced) {
  w4p_plan_t best = {-1, 0, 0, 0};
  for (int c = 0; c < W4P_PLAN_CFGS; c++) {
    if (forced >= 0 && c != forced) continue;
    const int s = w4p_plan_splits(c, KG);
    if (s > W4P_PLAN_MAX_SPLITS || blocks_per_sm[c] < 1) continue;
    const int64_t blocks = (int64_t)N16 * s, slots = (int64_t)sms * blocks_per_sm[c];
    if (blocks > (1 << 30)) continue;
    const int waves = (int)((blocks + slots - 1) / slots);
    const int busy = w4p_plan_busy_warps(c, s, KG), bbusy = best.cfg < 0 ? 0 : w4p_plan_busy_warps(best.cfg, best.splits, KG);
    const int w = w4p_plan_warps(c) > 8 ? 0 : w4p_plan_warps(c), u = w4p_plan_units(c);
    const int bw = best.cfg < 0 || w4p_plan_warps(best.cfg) > 8 ? 0 : w4p_plan_warps(best.cfg);
    const int bu = best.cfg < 0 ? 0 : w4p_plan_units(best.cfg);
    if (best.cfg < 0 || waves < best.waves ||
        (waves == best.waves &&
         (s < best.splits ||
          (s == best.splits && (busy > bbusy || (busy == bbusy && (w > bw || (w == bw && u < bu)))))))) {
      best.cfg = c;
      best.splits = s;
      best.blocks = (int)blocks;
      best.waves = waves;
    }
  }
  return best;
}

/* Row tiles of 8 a call of M rows takes: 1 for 1..8 rows, 2 for 9..16; 0 past 16 (or M < 1),
 * which the kernel does not take. */
W4P_PLAN_FN int w4p_plan_row_tiles(int M) { return M < 1 || M > 16 ? 0 : M <= 8 ? 1 : 2; }

/* The plan for a call of M rows: w4p_plan_choose with the occupancies of the kernel compiled
 * for its row tiles (occ_by_tiles[0] for one, [1] for two). Two row tiles need about 30 more
 * registers a thread, so some shapes have no one-wave plan there (qkv: 576 blocks, 4 a SM), and
 * in two waves the kernel was slower than the split-K kernel (16.2 against 12.3 us at 16 rows,
 * kernels/NOTES.md item 19): with two row tiles a plan of more than one wave is refused (cfg -1,
 * the caller takes another kernel), forced or not. */
W4P_PLAN_FN w4p_plan_t w4p_plan_rows(int M, int N16, int KG, int sms, const int *const occ_by_tiles[2], int forced) {
  const w4p_plan_t none = {-1, 0, 0, 0};
  const int mt = w4p_plan_row_tiles(M);
  if (mt == 0) return none;
  const w4p_plan_t p = w4p_plan_choose(N16, KG, sms, occ_by_tiles[mt - 1], forced);
  return mt == 2 && p.waves > 1 ? none : p;
}

#ifdef __cplusplus
}
#endif

#endif
