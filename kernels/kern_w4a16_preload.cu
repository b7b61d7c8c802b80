/* kern_w4a16_preload: the W4A16 GEMM for 1..16 rows on Hopper, every weight load of a call
 * issued before it waits for the previous kernel.
 *
 * Why (kernels/NOTES.md items 6, 7 and 9): a kernel that only reads the weights, chained under
 * programmatic dependent launch (PDL) with all its loads issued before its dependency wait,
 * reads at ~1.0x the floor, because each call's loads overlap the call before it; the split-K
 * kernel loads 4 chunks a warp, waits, computes and loads again, so every call after its wait
 * still pays several memory latencies under load, and its blocks, unevenly spread, finish
 * apart. Here:
 *  1. A block is W warps on one n16 tile and one of S contiguous K splits (the S blocks of a
 *     tile are one cluster); warp j of the tile's S W warps owns groups [lo(j), lo(j + 1)) of
 *     its K (kernels/w4p_plan.h: at most U / 2 groups, U k64 chunks), and loads all of them --
 *     16 bytes a lane a chunk, plus a scale pair a group -- into registers at its start. The
 *     host picks W, U and S so that the grid is one wave (w4p_plan_choose), so every load of
 *     the call is in flight before any block waits.
 *  2. Then it lets the next kernel be scheduled (SERVESIM_W4P_TRIGGER=1, the default; 0
 *     triggers after the main loop instead), waits for the previous one, and walks its chunks
 *     in order: the activation fragments of the next one or two chunks are loaded (from L2)
 *     and chunk u is unpacked to q - 8 (w4_unscaled_piece) and multiplied (one m16n8k16 per
 *     k16 step and 8 rows); each group's fp32 sums are scaled at its end. (Up to the
 *     twenty-third session every load of the kernel was on one scoreboard in the SASS, so chunk
 *     u's first use of its fragments also waited for the loads issued just before it,
 *     kernels/NOTES.md item 26; since every lane loads its activations unconditionally, item
 *     27, ptxas spreads them over four.)
 *  3. The W warps' partials are summed in warp order through shared memory; with S > 1 block r
 *     of the cluster then sums the r-th 1/S of the tile over the blocks in rank order (distributed
 *     shared memory) and stores it. Deterministic, no workspace, no atomics.
 * Measured on an H200 (kernels/NOTES.md items 9 and 18): 22% less time than the split-K kernel
 * summed over every shape and slice at 1..8 rows, 1.68-3.18x the floor at one row (item 27).
 * What the time after the wait is (bench/bench_w4p_parts.cu leaves parts out): the weights
 * themselves stream at ~1.1x the floor in this grid, calls overlapping; at qkv M=1 (item 28)
 * loads only 5.06 us, with the activations but no math 6.32, with the math but no activations
 * 7.57, the whole 7.65: the unpacking and mmas (bound by the INT pipe, below) are the ~2.6 us
 * after the loads, and the activations' loads hide behind them (not the order the weights land
 * in: taking each warp's groups as they land from shared memory was slower, item 20).
 * Item 26 timed the loop chunk by chunk: a steady ~0.25 us a chunk at qkv M=1, the math (~0.19
 * alone) and one L2 round trip for the activations (~0.15 alone) overlapping only in part; the
 * ways tried to overlap them (L1 prefetch, a cp.async ring, a dependency ordering the wait
 * first) were slower. ~11 instructions fewer a chunk (no zeros moved in for rows past M) took
 * 5.5% off M = 1..16 (item 27). What bounds the loop is the INT pipe, half the FP32 pipe's
 * width on Hopper (item 28, bench/bench_mma_rate.cu): a chunk's 12 shifts and 16 lop3 take ~2
 * cycles each a sub-partition, ~60 of its ~81 cycles, while its 16 bf16 subtractions (FMA
 * pipe) add ~8 and each further mma ~5 -- leaving the subtractions out (wrong sums, timed
 * only) saved 0.05 us at qkv M=1 and 3% over the nine shapes at M=1, and the extra mmas that
 * would make up for them cost more than that.
 * Rows 9..16 take two row tiles (MT = 2: two mmas a k16 step on the same unpacked weights, ~30
 * more registers a thread), only where the plan is still one wave (w4p_plan_rows; item 19:
 * 16% less time than the split-K kernel summed over the twelve shapes at 16 rows, qkv at TP=1
 * refused -- in two waves it took 16.2 us against 12.3).
 * The weights' loads skip L1 (w4p_load_w; item 26: 0.6% less time summed at 1..16 rows).
 * Compiled for sm_80 too, where the kernel is empty and w4a16_preload_launch() never launches
 * it. SERVESIM_W4P_CFG (0..5) forces a configuration, for tuning. */
#include <cooperative_groups.h>

#include "kernels/kern_w4a16.cuh"
#include "kernels/w4p_plan.h"

namespace kern_w4 {
namespace {

/* A per-block timeline for bench/bench_w4p_trace.cu, which includes this file with W4P_TRACE
 * defined (the library build has no trace code): thread 0 of each block stamps the global
 * timer at its start, when its wait returns, when warp 0 has issued its first chunk's mmas (so
 * that chunk's weights and activations have arrived), when warp 0's main loop is done and at
 * its end, into slot (call index & 1), the call index passed in the otherwise unused a.topk. */
#ifdef W4P_TRACE
constexpr int kW4pTraceBlocks = 8192;
constexpr int kW4pTraceStamps = 5;
constexpr int kW4pTraceChunks = 16; /* U at most (kernels/w4p_plan.h) */
__device__ unsigned long long w4p_trace_buf[2][kW4pTraceBlocks][kW4pTraceStamps];
/* and when warp 0 has issued chunk u's mmas, for every chunk u it has (the post-wait loop's
 * pace: weights and activations in, then the math) */
__device__ unsigned long long w4p_trace_chunk[2][kW4pTraceBlocks][kW4pTraceChunks];
int w4p_trace_last_blocks;
/* stamp `i` of array `buf` ([2][blocks][n]) for this block, thread 0 only */
#define W4P_STAMP_IN(buf, n, i)                                                               \
  do {                                                                                        \
    const unsigned long long now_ = kern_globaltimer();                                       \
    const unsigned b_ = blockIdx.z * gridDim.x + blockIdx.x;                                  \
    if (threadIdx.x == 0 && b_ < kW4pTraceBlocks && (i) < (n)) buf[a.topk & 1][b_][i] = now_; \
  } while (0)
#define W4P_STAMP(i) W4P_STAMP_IN(w4p_trace_buf, kW4pTraceStamps, i)
#define W4P_STAMP_CHUNK(u) W4P_STAMP_IN(w4p_trace_chunk, kW4pTraceChunks, u)
#else
#define W4P_STAMP(i) \
  do {               \
  } while (0)
#define W4P_STAMP_CHUNK(u) \
  do {                     \
  } while (0)
#endif

/* Least blocks a SM the compiler must leave room for (__launch_bounds__): configuration 2
 * (4 warps x 16 chunks) 5 so that qkv's 576 blocks are one wave, configuration 4 ((8, 8)
 * again) 3; the others as many registers as they like. With two row tiles one block fewer each
 * (at most 128 registers: 128 and 116 used, no spill; at 5 and 3 they spilled 212 and 176
 * bytes, nvcc 13.0). Configuration 5 (16 warps x 2 chunks) 2 with either (64 registers, no
 * spill; uncapped it took 79, one block a SM: two waves for down's 256 tiles). */
constexpr int w4p_min_blocks(int C, int MT) { return C == 2 ? 6 - MT : C == 4 ? 4 - MT : C == 5 ? 2 : 1; }

/* Parts of the kernel that bench/bench_w4p_parts.cu leaves out to see what each costs (P, a
 * bit set; the library runs the whole kernel, P = 0 or W4P_W_L1 below): the activation loads
 * (fragments made from the lane number instead) and the dequantisation + mmas (the chunk's
 * words folded into the accumulator instead). The loads of the weights and scales, the waits,
 * the reductions and the stores stay in every variant. W4P_W_AFTER (bench/bench_w4p_trace.cu)
 * issues the weight and scale loads after the wait instead of before it. */
enum { W4P_NO_X = 1, W4P_NO_MATH = 2, W4P_W_AFTER = 4, W4P_W_L1 = 8 };

/* The weights' loads skip L1 (w4_ldg_stream); W4P_W_L1 (SERVESIM_W4P_WL1=1) allocates them as
 * __ldg does, the load up to the twenty-third session: on the H200 skipping L1 took 0.6% off
 * M = 1..16 summed over the twelve shapes, ~0.1 us at qkv and down TP=4, and was 0.1-0.17 us
 * slower at o_proj TP=2 (kernels/NOTES.md item 26). */
template <int P>
static __device__ __forceinline__ uint4 w4p_load_w(const uint4 *p) {
  if constexpr ((P & W4P_W_L1) != 0) return __ldg(p);
  else return w4_ldg_stream(p);
}

/* MT: row tiles of 8 (rows 1..8: 1, 9..16: 2), one m16n8k16 each per k16 step */
template <int C, int P = 0, int MT = 1>
__global__ void __launch_bounds__(32 * w4p_plan_warps(C), w4p_min_blocks(C, MT)) w4p_kernel(W4Args a, int trigger_early) {
  constexpr int W = w4p_plan_warps(C), U = w4p_plan_units(C);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  W4P_STAMP(0);
  static_assert(U % 2 == 0, "whole groups per warp");
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int K = a.K, N = a.N, KC = K / 64, KG = K / 128, NT16 = N / 16;
  const int tile = blockIdx.x, S = gridDim.z, z = blockIdx.z;
  const int nw = S * W, j = z * W + warp;
  const int g0 = w4p_plan_group_lo(j, KG, nw), n = 2 * (w4p_plan_group_lo(j + 1, KG, nw) - g0); /* n <= U */
  const int c0 = 2 * g0;

  /* 1. this warp's weights and scales, all in flight (no kernel writes them: before the wait) */
  const uint4 *wp = a.qrep + ((size_t)tile * KC + c0) * 32 + lane;
  const uint32_t *sp = a.srep + ((size_t)g0 * NT16 + tile) * 8 + g;
  uint4 wq[U];
  uint32_t sc[U / 2];
  auto load_w = [&]() {
#pragma unroll
    for (int u = 0; u < U; u++) wq[u] = u < n ? w4p_load_w<P>(wp + (size_t)u * 32) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int h = 0; h < U / 2; h++) sc[h] = 2 * h < n ? __ldg(sp + (size_t)h * NT16 * 8) : 0u;
  };
  if constexpr ((P & W4P_W_AFTER) == 0) load_w();

  /* 2. let the next kernel in, wait for the previous one; then chunk by chunk: the activation
   * fragments of a later chunk loaded (from L2) while chunk u is unpacked and multiplied */
  if (trigger_early) kern_pdl_trigger();
  kern_pdl_wait();
  W4P_STAMP(1);
  if constexpr ((P & W4P_W_AFTER) != 0) load_w();
  /* The mmas take the weights unscaled, as the bf16 integers q - 8 (w4_unscaled_piece: one lop3
   * and one bf16 subtraction a register, exact), and each group's fp32 sums are scaled once at
   * the group's end: out += s raw, raw = sum over the group of (q - 8) x. 11 instead of 15 ALU
   * operations for a k16 step's four A registers (3 shifts, 4 lop3, 4 subtractions; the 4
   * products gone; the work after the wait is INT-pipe-bound: kernels/NOTES.md items 18, 28); the
   * weights are not rounded to bf16 after scaling either. raw in NACC independent chains (one
   * per k16 step when 4), each started afresh a group by its first mma and summed in order at
   * the group's end: the short runs of U <= 8 chunks are latency-bound, while U = 16 needs the
   * registers (measured, item 9). */
  constexpr int NACC = U <= 8 ? 4 / MT : 1; /* MT = 2: two chains a step already (16 registers fewer) */
  float raw[NACC][MT][4], out[MT][4];
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int r = 0; r < 4; r++) out[mt][r] = 0.f;
  /* Row g of row tile mt is the B fragment's column (token) g: a row past M reads row 0 instead
   * of zeros, so that every lane loads unconditionally. An mma's output column depends on its own
   * B column only, and the columns past M are never stored (w4_store_frag), so the stored rows are
   * bit for bit those of zero fill, which cost ~11 of the ~68 instructions a chunk after the wait
   * (SASS: the zeros moved in before a branch around the loads; kernels/NOTES.md item 27). */
  const uint16_t *xr[MT];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
    const int row = mt * 8 + g;
    xr[mt] = a.x + (size_t)(row < a.M ? row : 0) * K + c0 * 64 + 16 * t;
  }
  auto load_x = [&](uint4 (&xv)[MT][2], int u) {
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
      if constexpr ((P & W4P_NO_X) != 0) {
        xv[mt][0] = make_uint4(0x3c003c00u ^ lane, 0x3c003c00u ^ u, 0x3c003c00u, 0x3c003c00u ^ g);
        xv[mt][1] = make_uint4(0x3c003c00u ^ t, 0x3c003c00u, 0x3c003c00u ^ u, 0x3c003c00u);
      } else {
        const uint4 *px = reinterpret_cast<const uint4 *>(xr[mt] + u * 64);
        xv[mt][0] = w4_ld_act(px);
        xv[mt][1] = w4_ld_act(px + 1);
      }
    }
  };
  /* activations XA chunks ahead of the one in use: two in configurations 1 and 3 (measured
   * faster there), one elsewhere -- 2 and 4, register-capped by __launch_bounds__, spilled with
   * two, and 0, uncapped too, was no faster (item 18) */
  constexpr int XA = (C == 1 || C == 3) ? 2 : 1;
  uint4 xring[XA + 1][MT][2];
#pragma unroll
  for (int v = 0; v < XA; v++)
    if (v < n) load_x(xring[v], v);
#pragma unroll
  for (int u = 0; u < U; u++) {
    if (u < n) {
      if (u + XA < n) load_x(xring[(u + XA) % (XA + 1)], u + XA);
      const uint4 (&xv)[MT][2] = xring[u % (XA + 1)];
      const bool first = (u & 1) == 0; /* the group's first chunk */
      if constexpr ((P & W4P_NO_MATH) != 0) {
        uint32_t f = wq[u].x ^ wq[u].y ^ wq[u].z ^ wq[u].w;
#pragma unroll
        for (int mt = 0; mt < MT; mt++) f ^= xv[mt][0].x ^ xv[mt][0].w ^ xv[mt][1].y ^ xv[mt][1].z;
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
          for (int r = 0; r < 4; r++)
#pragma unroll
            for (int i = 0; i < NACC; i++) {
              const float v = i == 0 ? __uint_as_float((f >> r) & 0x3f7fffffu) : 0.f;
              raw[i][mt][r] = first ? v : raw[i][mt][r] + v;
            }
      } else {
#pragma unroll
        for (int s4 = 0; s4 < 4; s4++) {
          uint32_t af[4];
          w4_unscaled_piece(wq[u], s4, af);
#pragma unroll
          for (int mt = 0; mt < MT; mt++) {
            const uint4 &xq = xv[mt][s4 >> 1];
            const uint32_t b0 = (s4 & 1) ? xq.z : xq.x, b1 = (s4 & 1) ? xq.w : xq.y;
            if (first && s4 < NACC) kern_mma_bf16_first(raw[s4 % NACC][mt], af, b0, b1);
            else kern_mma_bf16(raw[s4 % NACC][mt], af, b0, b1);
          }
        }
      }
      if (u == 0) W4P_STAMP(2);
      W4P_STAMP_CHUNK(u);
      if (!first) { /* the group ends: rows g (c0, c1) and g + 8 (c2, c3) scaled by its pair */
        const uint32_t scu = sc[u / 2];
        const float s_lo = __uint_as_float(scu << 16), s_hi = __uint_as_float(scu & 0xffff0000u);
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
          for (int r = 0; r < 4; r++) {
            float v = raw[0][mt][r];
            if constexpr (NACC == 4) v = (v + raw[1][mt][r]) + (raw[2][mt][r] + raw[3][mt][r]);
            if constexpr (NACC == 2) v += raw[1][mt][r];
            out[mt][r] = fmaf(r < 2 ? s_lo : s_hi, v, out[mt][r]);
          }
      }
    }
  }
  if (!trigger_early) kern_pdl_trigger();
  W4P_STAMP(3);

  /* 3. the block's partial in warp order, then the cluster's in rank order */
  __shared__ float4 red[W][MT * 32];
  __shared__ float4 part[MT * 32];
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
    red[warp][mt * 32 + lane] = make_float4(out[mt][0], out[mt][1], out[mt][2], out[mt][3]);
  __syncthreads();
  const int e = threadIdx.x;
  if (e < MT * 32) {
    float4 s = red[0][e];
#pragma unroll
    for (int w = 1; w < W; w++) {
      const float4 v = red[w][e];
      s.x += v.x; s.y += v.y; s.z += v.z; s.w += v.w;
    }
    if (S == 1) {
      w4_store_frag<false>(a.y, N, a.M, (e >> 5) * 8 + 2 * (e & 3), tile, (e & 31) >> 2, s.x, s.y, s.z, s.w);
      W4P_STAMP(4);
      return;
    }
    part[e] = s;
  }
  if (S == 1) return;
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  const int rank = (int)cluster.block_rank();
  const int lo = rank * MT * 32 / S, hi = (rank + 1) * MT * 32 / S;
  if (e < hi - lo) {
    const int f = lo + e;
    float4 s = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int zz = 0; zz < S; zz++) {
      const float4 v = *cluster.map_shared_rank(part + f, zz);
      s.x += v.x; s.y += v.y; s.z += v.z; s.w += v.w;
    }
    w4_store_frag<false>(a.y, N, a.M, (f >> 5) * 8 + 2 * (f & 3), tile, (f & 31) >> 2, s.x, s.y, s.z, s.w);
  }
  cluster.sync(); /* no block leaves while another reads its shared memory */
  W4P_STAMP(4);
#else
  (void)a; (void)trigger_early;
#endif
}

struct W4pDev {
  int ready;                 /* 0: not looked up on this device */
  int ok;                    /* sm_90 code present and the device is 9.x */
  int occ[2][W4P_PLAN_CFGS]; /* blocks per SM, [MT - 1] */
};

/* Whether the weight loads allocate in L1 (SERVESIM_W4P_WL1=1: W4P_W_L1) or skip it (default) */
int w4p_weights_l1(void) {
  static int l1 = -1;
  if (l1 < 0) l1 = kern_env_int("SERVESIM_W4P_WL1", 0) != 0;
  return l1;
}

/* Configuration C of kernels/w4p_plan.h's table, MT row tiles. */
template <int C, int MT>
int w4p_occ(W4pDev *d) {
  cudaFuncAttributes fa;
  KERN_CUDA(cudaFuncGetAttributes(&fa, w4p_kernel<C, 0, MT>));
  d->ok = d->ok && fa.binaryVersion >= 90;
  KERN_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&d->occ[MT - 1][C], w4p_kernel<C, 0, MT>,
                                                          32 * w4p_plan_warps(C), 0));
  return ERR_OK;
}
template <int MT>
int w4p_occ_all(W4pDev *d) {
  int rc = w4p_occ<0, MT>(d);
  if (!rc) rc = w4p_occ<1, MT>(d);
  if (!rc) rc = w4p_occ<2, MT>(d);
  if (!rc) rc = w4p_occ<3, MT>(d);
  if (!rc) rc = w4p_occ<4, MT>(d);
  if (!rc) rc = w4p_occ<5, MT>(d);
  return rc;
}

int w4p_prepare(W4pDev *d) {
  if (d->ready) return ERR_OK;
  d->ok = kern_device_cc() >= 90;
  if (d->ok) {
    int rc = w4p_occ_all<1>(d);
    if (!rc) rc = w4p_occ_all<2>(d);
    if (rc) return rc;
  }
  d->ready = 1;
  return ERR_OK;
}

template <int C, int MT>
int w4p_launch(const W4Args &a, int splits, int early, cudaStream_t st) {
#ifdef W4P_TRACE
  w4p_trace_last_blocks = a.N / 16 * splits;
#endif
  const dim3 grid((unsigned)(a.N / 16), 1, (unsigned)splits), block(32 * w4p_plan_warps(C));
  /* (the two instances' registers are the same, nvcc 13.0: the occupancy of P = 0 holds; a
   * difference would cost speed, not correctness) */
  if (w4p_weights_l1()) return kern_launch_ex(w4p_kernel<C, W4P_W_L1, MT>, grid, block, 0, st, splits, a, early);
  return kern_launch_ex(w4p_kernel<C, 0, MT>, grid, block, 0, st, splits, a, early);
}
template <int MT>
int w4p_launch_cfg(int c, const W4Args &a, int splits, int early, cudaStream_t st) {
  switch (c) {
    case 0: return w4p_launch<0, MT>(a, splits, early, st);
    case 1: return w4p_launch<1, MT>(a, splits, early, st);
    case 2: return w4p_launch<2, MT>(a, splits, early, st);
    case 3: return w4p_launch<3, MT>(a, splits, early, st);
    case 4: return w4p_launch<4, MT>(a, splits, early, st);
    default: return w4p_launch<5, MT>(a, splits, early, st);
  }
}

/* The plan w4a16_preload_launch makes for a on the current device (its benches time the same
 * one): cfg -1 where it does not launch -- rows outside 1..16, no sm_90 code or not a 9.x
 * device, no plan (kernels/w4p_plan.h) --; SERVESIM_W4P_CFG (0..5; other values are ignored)
 * forces a configuration. */
int w4p_plan_for(const W4Args &a, int sms, w4p_plan_t *p) {
  *p = w4p_plan_t{-1, 0, 0, 0};
  if (w4p_plan_row_tiles(a.M) == 0) return ERR_OK;
  static W4pDev devs[KERN_MAX_DEVICES];
  int dev = 0;
  if (int rc = kern_device_slot(&dev)) return rc;
  W4pDev *d = devs + dev;
  if (int rc = w4p_prepare(d)) return rc;
  if (!d->ok) return ERR_OK;
  static int forced = -2;
  if (forced == -2) {
    forced = kern_env_int("SERVESIM_W4P_CFG", -1);
    if (forced < -1 || forced >= W4P_PLAN_CFGS) forced = -1;
  }
  const int *occ[2] = {d->occ[0], d->occ[1]};
  *p = w4p_plan_rows(a.M, a.N / 16, a.K / 128, sms, occ, forced);
  return ERR_OK;
}

/* Whether the next kernel is let in at the start (1, the default) or after the main loop
 * (SERVESIM_W4P_TRIGGER=0): the kernel's trigger_early argument */
int w4p_trigger_early(void) {
  static int early = -1;
  if (early < 0) early = kern_env_int("SERVESIM_W4P_TRIGGER", 1) != 0;
  return early;
}

} // namespace

int w4a16_preload_on(void) {
  static int env = -1;
  if (env < 0) env = kern_env_int("SERVESIM_W4_PRELOAD", 1) != 0;
  return env;
}

int w4a16_preload_launch(const W4Args &a, int sms, cudaStream_t st, int *launched) {
  *launched = 0;
  w4p_plan_t p;
  if (int rc = w4p_plan_for(a, sms, &p)) return rc;
  if (p.cfg < 0) return ERR_OK;
  *launched = 1;
  const int early = w4p_trigger_early();
  return w4p_plan_row_tiles(a.M) == 1 ? w4p_launch_cfg<1>(p.cfg, a, p.splits, early, st)
                                      : w4p_launch_cfg<2>(p.cfg, a, p.splits, early, st);
}

} // namespace kern_w4
