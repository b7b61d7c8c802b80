/* moe_plan: the row-tile bound of the grouped expert GEMMs (moe_plan.h). */
#include "kernels/moe_plan.h"

int moe_plan_row_tiles(int rows, int n_experts, int bm) {
  if (rows <= 0 || n_experts <= 0 || bm <= 0) return 0;
  const int partial = n_experts < rows ? n_experts : rows;
  return (rows + bm - 1) / bm + partial;
}
