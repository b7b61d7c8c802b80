/* attn_plan: how kern_attn_paged splits one call into blocks, in plain C so that CI tests the
 * arithmetic the GPU kernel relies on (tests/test_attn_plan.c): the query heads per block, the
 * context parts (the grid's z), each token's keys per part, and the workspace the parts need.
 *
 * A block takes (token, group of query heads, context part). Parts: enough for about
 * ATTN_TARGET_BLOCKS blocks per call, at most one per ATTN_PART_QUANTUM keys of max_context and
 * never fewer than max_context / ATTN_PART_MAX. Each token spreads its own context over the
 * parts in multiples of ATTN_PART_QUANTUM keys (so a CUDA graph captured for the KV capacity
 * still splits a short context finely); parts past its context are empty. */
#ifndef SERVESIM_ATTN_PLAN_H
#define SERVESIM_ATTN_PLAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __CUDACC__
#define ATTN_PLAN_HD __host__ __device__
#else
#define ATTN_PLAN_HD
#endif

#define ATTN_PART_MAX 512      /* keys per part at most (load balance of long prefills) */
#define ATTN_PART_QUANTUM 128  /* keys per part at least: one 32-key tile per warp of 4 */
#define ATTN_TARGET_BLOCKS 512 /* blocks wanted for one call: ~4 per SM of an H100 */

/* Keys per context part for a token with n_keys keys in a call of n_parts parts: a multiple
 * of ATTN_PART_QUANTUM with n_parts * keys >= n_keys (every key in some part). */
static inline ATTN_PLAN_HD int attn_plan_part_keys(int n_keys, int n_parts) {
  return ((n_keys + n_parts - 1) / n_parts + ATTN_PART_QUANTUM - 1) / ATTN_PART_QUANTUM * ATTN_PART_QUANTUM;
}

/* Context parts of a call whose grid has `rows` (token, head group) blocks per part. */
int attn_plan_parts(int64_t rows, int max_context);

/* Query heads per block: the whole group of a kv head, G = nq / nkv (each K/V row read once for
 * all of them), or 1 when fewer than ATTN_TARGET_BLOCKS / 4 grouped blocks exist even at the
 * finest parts (a decode batch of a few sequences with one kv head per rank): then each block
 * scores one head and re-reads the group's K/V from L2. The line is where the two cross in
 * `bench_kernels --attn` on an H100 (16 and 8 heads per kv head, batch 1-64, 512-4096 keys: the
 * faster choice at every point measured, bench/RESULTS.md). force: "split" or "group" forces
 * one choice (SERVESIM_ATTN_HEADS), NULL or anything else lets the rule choose. */
int attn_plan_heads_per_block(int T, int nq, int nkv, int max_context, const char *force);

/* Workspace bytes for the partial results of any call of up to T tokens over nq query heads
 * (any nkv dividing nq, either head choice) with this max_context; 0 when no call needs one. */
size_t attn_plan_workspace_bytes(int T, int nq, int D, int max_context);

/* Workspace bytes one call needs: T * nq * parts * (D + 2) floats when parts > 1, else 0. */
size_t attn_plan_call_bytes(int T, int nq, int D, int parts);

#ifdef __cplusplus
}
#endif

#endif
