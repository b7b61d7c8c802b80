/* moe_plan: the row-tile bound of the grouped expert GEMMs (moe_plan.h). */
#include "kernels/moe_plan.h"

#include <stdint.h>

int moe_plan_row_tiles(int rows, int n_experts, int bm) {
  if (rows <= 0 || n_experts <= 0 || bm <= 0) return 0;
  const int64_t m = n_experts < rows ? n_experts : rows; /* experts that can have rows */
  return (int)(((int64_t)rows + m * (bm - 1)) / bm);
}
