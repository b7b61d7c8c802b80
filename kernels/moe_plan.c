/* moe_plan: the row-tile bound, the tile rows and the wgmma tile of the grouped expert GEMMs
 * (moe_plan.h). */
#include "kernels/moe_plan.h"

#include <math.h>
#include <stdint.h>

int moe_plan_row_tiles(int rows, int n_experts, int bm) {
  if (rows <= 0 || n_experts <= 0 || bm <= 0) return 0;
  const int64_t m = n_experts < rows ? n_experts : rows; /* experts that can have rows */
  return (int)(((int64_t)rows + m * (bm - 1)) / bm);
}

/* the wgmma kernel's heights for the grouped expert GEMMs, in increasing order */
enum { MOE_PLAN_HEIGHTS = 6, MOE_PLAN_HMAX = 256 };
static const int moe_plan_heights[MOE_PLAN_HEIGHTS] = {32, 48, 64, 96, 128, 256};

int moe_plan_is_height(int h) {
  for (int i = 0; i < MOE_PLAN_HEIGHTS; i++)
    if (h == moe_plan_heights[i]) return 1;
  return 0;
}

int moe_plan_wgmma_tile(int tile_rows, int force_rows, int force_wg, int *nwg) {
  int bt = moe_plan_is_height(force_rows) ? force_rows : 0;
  for (int i = 0; i < MOE_PLAN_HEIGHTS && !bt; i++)
    if (tile_rows <= moe_plan_heights[i] && moe_plan_heights[i] <= 128) bt = moe_plan_heights[i];
  if (!bt) bt = 128;
  if (bt != 64 && bt != 128) *nwg = bt < 64 || bt == 256 ? 2 : 3; /* (one instance each) */
  else *nwg = force_wg == 2 || force_wg == 3 ? force_wg : bt == 128 ? 3 : 2;
  return bt;
}

int moe_plan_tile_rows(int pairs, int n_experts, int z10) {
  if (pairs <= 0 || n_experts <= 0) return 0;
  if (z10 <= 0) return pairs / n_experts;
  /* in units of 1 / n_experts: r E - pairs >= 0 and 100 (r E - pairs)^2 >= z10^2 pairs E */
  const int64_t E = n_experts, P = pairs, need = (int64_t)z10 * z10 * P * E;
  int64_t r = (P + E - 1) / E;
  while (100 * (r * E - P) * (r * E - P) < need) r++;
  return (int)r;
}

int moe_plan_split_tiles(int rows, int n_experts, int ha, int hb) {
  const int t = moe_plan_row_tiles(rows, n_experts, ha);
  if (hb <= 0 || t <= 0) return t;
  const int u = rows / (hb + 1);
  return u < t ? u : t;
}

int moe_plan_rem_tiles(int rows, int n_experts) {
  if (rows <= 0 || n_experts <= 0) return 0;
  return n_experts < rows ? n_experts : rows;
}

int moe_plan_mma_wide(int rows, int n_experts, int n, int sms) {
  if (rows <= 0 || n_experts <= 0 || n <= 0) return 0;
  const int64_t tiles = rows < n_experts ? rows : n_experts;
  return tiles * ((n + 127) / 128) >= 2 * (int64_t)sms;
}

int moe_plan_persistent_blocks(int lin_bound, int resident) {
  if (lin_bound <= 0) return 0;
  const int need = (lin_bound + MOE_PLAN_MAX_PIECES - 1) / MOE_PLAN_MAX_PIECES;
  int g = resident > 0 ? resident : 1;
  if (g < need) g = need;
  return g < lin_bound ? g : lin_bound;
}

int moe_plan_split(int pairs, int n_experts, int w_rows, int launch_rows, int tall_pct, int force_ha, int force_hb, int *hb) {
  *hb = 0;
  if (pairs <= 0 || n_experts <= 0) return 0;
  /* the candidates: (ha, hb) with hb = 0 or a height below ha; cost[i][j], j = 0 no split */
  double cost[MOE_PLAN_HEIGHTS][MOE_PLAN_HEIGHTS + 1] = {{0}};
  const double L = (double)pairs / n_experts, sd = sqrt(L);
  /* the Poisson mass beyond 12 sd + 12 rows of the mean is below 1e-20 */
  const double lo_d = floor(L - 12.0 * sd - 12.0), hi_d = ceil(L + 12.0 * sd + 12.0);
  /* (the callers' pairs are at most 2^20, kern_moe_align; hi kept within int for any pairs) */
  const int lo = lo_d < 0.0 ? 0 : (int)lo_d, hi = hi_d > 2.0e9 ? 2000000000 : (int)hi_d;
  /* over n: E[n / ha] and the law of n mod ha for each height, p(n) by p(n + 1) = p(n) L / (n + 1)
   * from p(lo) (one exp and lgamma a call: the launcher calls this for every grouped GEMM; p(lo) >=
   * ~1e-80), n / ha and n mod ha carried along */
  double p = exp((double)lo * log(L) - L - lgamma((double)lo + 1.0)), mass = 0.0;
  double efull[MOE_PLAN_HEIGHTS] = {0}, hist[MOE_PLAN_HEIGHTS][MOE_PLAN_HMAX] = {{0}};
  int full[MOE_PLAN_HEIGHTS], rem[MOE_PLAN_HEIGHTS];
  for (int i = 0; i < MOE_PLAN_HEIGHTS; i++) {
    full[i] = lo / moe_plan_heights[i];
    rem[i] = lo - full[i] * moe_plan_heights[i];
  }
  for (int n = lo; n <= hi; p *= L / (double)(n + 1), n++) {
    mass += p;
    for (int i = 0; i < MOE_PLAN_HEIGHTS; i++) {
      efull[i] += p * full[i];
      hist[i][rem[i]] += p;
      if (++rem[i] == moe_plan_heights[i]) rem[i] = 0, full[i]++;
    }
  }
  /* a tile of h rows costs w_rows + h, the 256-row ones w_rows + h tall_pct / 100 */
  double tile[MOE_PLAN_HEIGHTS];
  for (int i = 0; i < MOE_PLAN_HEIGHTS; i++) {
    const int h = moe_plan_heights[i];
    tile[i] = w_rows + (h == MOE_PLAN_HMAX ? h * (tall_pct > 0 ? tall_pct : 100) / 100.0 : (double)h);
  }
  /* an expert's tiles: n / ha, one more of ha rows when r > hb, one of hb rows when 0 < r <= hb */
  for (int i = 0; i < MOE_PLAN_HEIGHTS; i++) {
    const int ha = moe_plan_heights[i];
    for (int j = 0; j <= i; j++) {
      const int b = j == 0 ? 0 : moe_plan_heights[j - 1];
      double gt = 0.0, le = 0.0; /* P(r > b), P(0 < r <= b), times the mass */
      for (int r = 1; r < ha; r++) {
        if (r > b) gt += hist[i][r];
        else le += hist[i][r];
      }
      cost[i][j] = (efull[i] + gt) * tile[i] + (j ? le * tile[j - 1] : 0.0);
    }
  }
  int best_i = -1, best_j = 0;
  double best = 0.0;
  for (int i = 0; i < MOE_PLAN_HEIGHTS; i++) {
    const int ha = moe_plan_heights[i];
    if (moe_plan_is_height(force_ha) ? ha != force_ha : ha == MOE_PLAN_HMAX && tall_pct <= 0) continue;
    /* a forced hb below ha fixes it; 0, or a height not below ha, one launch */
    const int hb_forced = force_hb == 0 || moe_plan_is_height(force_hb), hb_below = hb_forced && force_hb && force_hb < ha;
    for (int j = 0; j <= i; j++) {
      const int b = j == 0 ? 0 : moe_plan_heights[j - 1];
      if (hb_forced && b != (hb_below ? force_hb : 0)) continue;
      const double c = (double)n_experts * cost[i][j] / mass + (b ? (double)launch_rows : 0.0);
      if (best_i < 0 || c < best) { best = c; best_i = i; best_j = j; }
    }
  }
  *hb = best_j == 0 ? 0 : moe_plan_heights[best_j - 1];
  return moe_plan_heights[best_i];
}
