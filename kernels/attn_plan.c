/* attn_plan: the block split of a paged attention call (attn_plan.h). */
#include "kernels/attn_plan.h"

#include <string.h>

int attn_plan_parts(int64_t rows, int max_context) {
  const int p_min = (max_context + ATTN_PART_MAX - 1) / ATTN_PART_MAX;
  const int p_max = (max_context + ATTN_PART_QUANTUM - 1) / ATTN_PART_QUANTUM;
  const int want = rows >= ATTN_TARGET_BLOCKS ? 1 : (int)((ATTN_TARGET_BLOCKS + rows - 1) / rows);
  const int p = want < p_max ? want : p_max;
  return p > p_min ? p : p_min;
}

int attn_plan_heads_per_block(int T, int nq, int nkv, int max_context, const char *force) {
  const int G = nq / nkv;
  if (force && !strcmp(force, "split")) return 1;
  if (force && !strcmp(force, "group")) return G;
  const int p_max = (max_context + ATTN_PART_QUANTUM - 1) / ATTN_PART_QUANTUM;
  return G > 1 && (int64_t)T * nkv * p_max < ATTN_TARGET_BLOCKS / 4 ? 1 : G;
}

size_t attn_plan_call_bytes(int T, int nq, int D, int parts) {
  return parts > 1 ? (size_t)T * nq * parts * (D + 2) * sizeof(float) : 0;
}

/* A call of t tokens has t * nq * parts(rows) partials, rows = t * nkv (grouped) or t * nq
 * (one head per block); rows >= t and parts never grows with rows, so t * parts(t) bounds both
 * for every nkv. Fewer tokens may take more parts, hence the maximum over t <= T. */
size_t attn_plan_workspace_bytes(int T, int nq, int D, int max_context) {
  if (T < 1 || max_context < 1) return 0;
  size_t most = 0;
  for (int t = 1; t <= T; t++) {
    const size_t b = attn_plan_call_bytes(t, nq, D, attn_plan_parts(t, max_context));
    if (b > most) most = b;
  }
  return most;
}
