/* streamk_plan: how the stream-K W4A16 GEMM (kern_w4a16_streamk.cu) shares its work, in plain C
 * so that CI tests what the GPU kernel relies on (tests/test_streamk_plan.c).
 *
 * The work is U = CB * KC units, one unit = one k64 chunk of one 32-column block (CB column
 * blocks of K / 64 = KC chunks each), numbered column block by column block. Block b of a
 * grid of B <= U blocks takes the contiguous units [lo(b), lo(b + 1)), lo(b) = floor(b U / B),
 * so every block gets floor(U / B) or one more unit: with B a multiple of the SM count, every SM
 * streams the same number of weight bytes (a grid of equal tiles cannot: 288 column blocks on
 * 132 SMs leave 24 SMs three and the rest two, and the three-block SMs set the time).
 * A column block whose chunks all fall to one block is stored by it; the others are split
 * between the consecutive blocks first(cb) .. last(cb), which each leave a partial in slot
 * b - first(cb) of the column block's workspace; the last to arrive sums the slots in slot
 * order (deterministic) and stores. */
#ifndef SERVESIM_STREAMK_PLAN_H
#define SERVESIM_STREAMK_PLAN_H

#include <stdint.h>

#ifdef __CUDACC__
#define STREAMK_PLAN_FN static inline __host__ __device__
#else
#define STREAMK_PLAN_FN static inline
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* First unit of block b (b = B gives U, the end of the last block). */
STREAMK_PLAN_FN int64_t streamk_plan_lo(int64_t b, int64_t U, int64_t B) { return b * U / B; }

/* The block whose range holds unit u: the largest b with lo(b) <= u, i.e. the largest b with
 * b U / B < u + 1, which is ceil((u + 1) B / U) - 1. */
STREAMK_PLAN_FN int64_t streamk_plan_block_of(int64_t u, int64_t U, int64_t B) { return ((u + 1) * B - 1) / U; }

/* The blocks that hold chunks of column block cb (of KC chunks): first(cb) .. last(cb). */
STREAMK_PLAN_FN int64_t streamk_plan_first(int64_t cb, int64_t KC, int64_t U, int64_t B) {
  return streamk_plan_block_of(cb * KC, U, B);
}
STREAMK_PLAN_FN int64_t streamk_plan_last(int64_t cb, int64_t KC, int64_t U, int64_t B) {
  return streamk_plan_block_of(cb * KC + KC - 1, U, B);
}

/* Block b's share of column block cb: how many blocks hold a part of it (*n; 1 = b holds it
 * whole and stores it) and b's slot among them (b - first(cb)), where it leaves its partial. */
STREAMK_PLAN_FN void streamk_plan_share(int64_t cb, int64_t KC, int64_t U, int64_t B, int64_t b, int *n, int *slot) {
  const int64_t first = streamk_plan_first(cb, KC, U, B);
  *n = (int)(streamk_plan_last(cb, KC, U, B) - first + 1);
  *slot = (int)(b - first);
}

/* One segment of a block's walk: from unit u (< u_end, the block's end), the run within one
 * column block: *cb, its chunks [*c_lo, *c_hi); returns the next segment's first unit. The
 * segment is the whole column block, stored by this block, iff *c_lo == 0 and *c_hi == KC. */
STREAMK_PLAN_FN int64_t streamk_plan_segment(int64_t u, int64_t u_end, int64_t KC, int *cb, int *c_lo, int *c_hi) {
  const int64_t c = u / KC, rest = u_end - c * KC;
  *cb = (int)c;
  *c_lo = (int)(u - c * KC);
  *c_hi = (int)(rest < KC ? rest : KC);
  return c * KC + *c_hi;
}

/* The most blocks any column block is split between (the workspace's slots per column
 * block); 0 when the arguments are out of range (cb_count, KC, B >= 1 and B <= cb_count * KC). */
int streamk_plan_max_split(int64_t cb_count, int64_t KC, int64_t B);

#ifdef __cplusplus
}
#endif

#endif
