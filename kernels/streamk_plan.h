/* streamk_plan: how the stream-K W4A16 GEMM (kern_w4a16_streamk.cu) shares its work, in plain C
 * so that CI tests what the GPU kernel relies on (tests/test_streamk_plan.c).
 *
 * The work is T * KC units, one unit = one k64 chunk of one n16 tile (T tiles of K / 64 = KC
 * chunks each), numbered tile by tile -- the repacked weights' memory order. A grid of B = Q *
 * CL blocks forms Q clusters of CL consecutive blocks. Cluster q takes the whole tiles
 * [lo(q, T, Q), lo(q + 1, T, Q)), so no tile is split between clusters, and its CL blocks split
 * the cluster's nU units evenly: rank r takes [lo(r, nU, CL), lo(r + 1, nU, CL)) from the
 * cluster's first unit. lo(i, n, k) = floor(i n / k): consecutive shares differ by at most one,
 * so every SM streams about the same bytes (clusters at most one tile apart). A tile held by
 * several blocks of its cluster is summed by the first of them from the others' shared memory;
 * block_of names the rank holding a unit. */
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

/* First of n items of share i of k (i = k gives n, the end of the last share). */
STREAMK_PLAN_FN int64_t streamk_plan_lo(int64_t i, int64_t n, int64_t k) { return i * n / k; }

/* The share holding item u: the largest i with lo(i) <= u, i.e. the largest i with
 * i n / k < u + 1, which is ceil((u + 1) k / n) - 1. */
STREAMK_PLAN_FN int64_t streamk_plan_block_of(int64_t u, int64_t n, int64_t k) { return ((u + 1) * k - 1) / n; }

/* Block b's units [*lo, *hi) and its cluster's [*c_lo, *c_hi) (whole tiles), for T tiles of KC
 * units, B blocks in clusters of CL (B a multiple of CL, B / CL <= T, and (T / (B / CL)) * KC >=
 * CL so that every block gets a unit). */
STREAMK_PLAN_FN void streamk_plan_range(int64_t b, int64_t T, int64_t KC, int64_t B, int64_t CL, int64_t *lo,
                                        int64_t *hi, int64_t *c_lo, int64_t *c_hi) {
  const int64_t q = b / CL, r = b - q * CL, Q = B / CL;
  *c_lo = streamk_plan_lo(q, T, Q) * KC;
  *c_hi = streamk_plan_lo(q + 1, T, Q) * KC;
  const int64_t nU = *c_hi - *c_lo;
  *lo = *c_lo + streamk_plan_lo(r, nU, CL);
  *hi = *c_lo + streamk_plan_lo(r + 1, nU, CL);
}

#ifdef __cplusplus
}
#endif

#endif
