/* moe_plan: the row-tile bound, the tile rows and the wgmma tile of the grouped expert GEMMs
 * (moe_plan.h). */
#include "kernels/moe_plan.h"

#include <stdint.h>

int moe_plan_row_tiles(int rows, int n_experts, int bm) {
  if (rows <= 0 || n_experts <= 0 || bm <= 0) return 0;
  const int64_t m = n_experts < rows ? n_experts : rows; /* experts that can have rows */
  return (int)(((int64_t)rows + m * (bm - 1)) / bm);
}

int moe_plan_wgmma_tile(int tile_rows, int force_rows, int force_wg, int *nwg) {
  static const int heights[] = {32, 48, 64, 96, 128};
  int bt = 0;
  for (int i = 0; i < 5; i++)
    if (force_rows == heights[i]) bt = force_rows;
  for (int i = 0; i < 5 && !bt; i++)
    if (tile_rows <= heights[i]) bt = heights[i];
  if (!bt) bt = 128;
  if (bt != 64 && bt != 128) *nwg = bt < 64 ? 2 : 3; /* (one instance each) */
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
