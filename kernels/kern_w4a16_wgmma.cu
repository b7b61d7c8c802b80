/* kern_w4a16_wgmma: the W4A16 GEMM for 17 rows and more on Hopper, with warpgroup MMA (wgmma).
 * Two kernels share the operand contract below: the warp-specialised one (w4ws_kernel, further
 * down; the default, SERVESIM_W4_WGMMA=2), and the all-threads one first (SERVESIM_W4_WGMMA=1,
 * kept for comparison: slower, kernels/NOTES.md item 8).
 *
 * A block is WG consumer warpgroups (WG x 128 threads); warpgroup w computes 64 output columns
 * (4 n16 weight tiles of the repacked layout, one per warp) for BT = 64 or 128 rows (tokens; the
 * warp-specialised kernel also 256, and 32 and 48 in the fused MoE's grouped expert GEMMs),
 * so a block covers 64 WG columns x BT rows and the WG warpgroups share one activation tile.
 * The weights are wgmma's A operand from registers: each warp dequantises its tile words exactly
 * as the mma.sync path does (kern_w4a16.cuh) -- the mma.m16n8k16 A fragment is also wgmma's
 * per-warp slice of the 64 x 16 A tile -- so the rounding is the same; the tile layout holds
 * each step's word with the step's k in plain order, as wgmma reads B (kernels/w4g_layout.h),
 * and a lane loads its four words of a chunk with four 32-bit loads. The activations are the B
 * operand in shared memory, K-major without swizzle: core matrices of 8 rows x 16 bytes, one
 * 16-byte cp.async per row and k8 slice; a warp's 32 copies fill 512 contiguous bytes (no bank
 * conflicts).
 *
 * Pipeline per k64 chunk c (S-stage cp.async ring of activation tile + weight words + scales):
 * issue chunk c's 4 wgmma on the A registers af[c & 1]; wait until chunk c-1's wgmma are done
 * (wgmma.wait_group 1, so they overlap the dequantisation below) and chunk c+1's copies have
 * landed; one barrier; refill the stage chunk c-1 used; dequantise chunk c+1 into af[(c+1) & 1].
 *
 * Few tiles (small N or M): the K range is split over up to 8 blocks of one thread block
 * cluster, which sum their accumulators through distributed shared memory in split order. The
 * warp-specialised kernel may instead run a stream-K schedule (one block an SM over all the
 * tiles' chunks, partials summed through the caller's workspace; ws_plan says when), or on the
 * same instance a persistent grid of whole tiles (many short unsplit tiles: wsk_plan_whole).
 * Or (its KSL instances) the consumer warpgroups of one 64-column tile take its chunks in turn
 * and add their accumulators in shared memory: a K split inside the block (ws_cost_pick_slices
 * says where).
 * The warp-specialised kernel also runs the fused MoE's grouped expert GEMMs (its MOE instances,
 * ws_moe_launch): tiles of one expert's rows and 128 or 192 columns, unsplit; from 96 rows a
 * persistent grid whose blocks work lists of them, below that a block a tile.
 * Compiled for sm_90a only (wgmma needs the architecture-specific target); elsewhere the kernels
 * are empty and w4a16_wgmma_available() is 0, so the mma.sync path runs. */
#include <cooperative_groups.h>
#include <cuda.h>
#include <cudaTypedefs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kern_w4a16.cuh"
#include "kernels/moe_plan.h"
#include "kernels/w4g_layout.h"
#include "kernels/ws_cost.h"
#include "kernels/wsk_plan.h"

namespace kern_w4 {
namespace {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define W4G_SM90A 1
#endif

constexpr int kW4gMaxSplits = 8; /* portable cluster size */
/* whether a K split's share may leave through the output tile (past the partials in the ring):
 * not at 256 rows, whose partials fill the ring, nor with three consumer warpgroups (96 KB of
 * partials and a 50 KB tile at 128 rows: more than the 8-stage ring) */
__host__ __device__ constexpr bool w4g_split_staged(int bt, int nwg) { return bt <= 128 && nwg <= 2; }

/* bench_w4ws_trace's stamps of the K splits of tile (0, 0) (W4WS_TRACE only): SM clock at
 * 1 the producer's dependency wait returned, 3 main loop done, 4-7 the split-K epilogue's block
 * barrier, first cluster barrier, sum and stores, second cluster barrier; 8 and 9 the global
 * timer (ns) at 1 and 7 */
#ifdef W4WS_TRACE
__device__ long long ws_trace_ep[kW4gMaxSplits][10];
#define WS_EP_STAMP(k, thr)                                                        \
  do {                                                                             \
    if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == (thr)) {              \
      ws_trace_ep[blockIdx.z][k] = clock64();                                      \
      if ((k) == 1 || (k) == 7)                                                    \
        ws_trace_ep[blockIdx.z][(k) == 1 ? 8 : 9] = (long long)kern_globaltimer(); \
    }                                                                              \
  } while (0)
#else
#define WS_EP_STAMP(k, thr) \
  do {                      \
  } while (0)
#endif

/* Shared memory of one configuration: S stages of (activation tile BT x 64 k x 2 bytes,
 * WG x 128 weight words of 16 bytes, WG x 128 scale pairs of 4 bytes); the split-K sum reuses
 * it for the block's accumulators (BT / 2 floats a thread), which must fit. */
template <int BT, int WG, int S>
struct W4gCfg {
  static constexpr int T = WG * 128, XB = BT * 128, WB = T * 16, SB = T * 4;
  static constexpr int STAGE = XB + WB + SB;
  static constexpr size_t kSmem = (size_t)S * STAGE;
  static_assert((size_t)(BT / 2) * T * 4 <= kSmem, "the split-K sum must fit in the ring");
  static_assert(BT * 8 % T == 0, "activation copies must divide over the threads");
};

#ifdef W4G_SM90A
__device__ __forceinline__ uint64_t w4g_desc(const void *smem, uint32_t lbo, uint32_t sbo) {
  const uint32_t a = (uint32_t)__cvta_generic_to_shared(smem);
  return (uint64_t)((a & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32);
}
__device__ __forceinline__ void w4g_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void w4g_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void w4g_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }

/* A wgmma reads its register operands (A fragments, accumulators) asynchronously, until the
 * wgmma.wait_group that retires it, but the compiler sees them read once, at the issue: without
 * these empty statements, which the compiler must assume read and rewrite the registers where
 * they stand, it may give a retired-looking A fragment's registers to the next chunk's
 * dequantisation while the wgmma still read them, and ptxas then serialises every wgmma of the
 * kernel (its warning C7513). Placed after the wait that retires the operand. */
__device__ __forceinline__ void w4g_keep(uint32_t (&af)[4][4]) {
#pragma unroll
  for (int s = 0; s < 4; s++) asm volatile("" : "+r"(af[s][0]), "+r"(af[s][1]), "+r"(af[s][2]), "+r"(af[s][3])::"memory");
}
template <int N>
__device__ __forceinline__ void w4g_keep(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}
/* The wgmma wrappers' accumulator operands: d[b] .. d[b + 31], each read and written. */
#define W4G_D8(b)                                                                                        \
  "+f"(d[(b)]), "+f"(d[(b) + 1]), "+f"(d[(b) + 2]), "+f"(d[(b) + 3]), "+f"(d[(b) + 4]), "+f"(d[(b) + 5]), \
      "+f"(d[(b) + 6]), "+f"(d[(b) + 7])
#define W4G_D32(b) W4G_D8(b), W4G_D8((b) + 8), W4G_D8((b) + 16), W4G_D8((b) + 24)

/* d [32 fp32 per thread] += A (64 x 16, registers: the mma.m16n8k16 A fragment per warp)
 * x B (16 x 64, shared memory, K-major, described by desc). */
static __device__ __forceinline__ void w4g_mma_n64(float (&d)[32], const uint32_t (&a)[4], uint64_t desc) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, 1, 1, 1, 0;\n"
      "}\n"
      : W4G_D32(0)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}

/* d [16 fp32 per thread] += A (64 x 16, registers) x B (16 x 32, shared memory, K-major,
 * described by desc): the fused MoE's 32-row expert tiles. */
static __device__ __forceinline__ void w4g_mma_n32(float (&d)[16], const uint32_t (&a)[4], uint64_t desc) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
      "{%16, %17, %18, %19}, %20, 1, 1, 1, 0;\n"
      "}\n"
      : W4G_D8(0), W4G_D8(8)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}

/* d [24 fp32 per thread] += A (64 x 16, registers) x B (16 x 48, shared memory, K-major,
 * described by desc): the fused MoE's 48-row expert tiles. */
static __device__ __forceinline__ void w4g_mma_n48(float (&d)[24], const uint32_t (&a)[4], uint64_t desc) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n48k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23}, "
      "{%24, %25, %26, %27}, %28, 1, 1, 1, 0;\n"
      "}\n"
      : W4G_D8(0), W4G_D8(8), W4G_D8(16)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}

/* d [48 fp32 per thread] += A (64 x 16, registers) x B (16 x 96, shared memory, K-major,
 * described by desc): the fused MoE's 96-row expert tiles. */
static __device__ __forceinline__ void w4g_mma_n96(float (&d)[48], const uint32_t (&a)[4], uint64_t desc) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n96k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47}, "
      "{%48, %49, %50, %51}, %52, 1, 1, 1, 0;\n"
      "}\n"
      : W4G_D8(0), W4G_D8(8), W4G_D8(16), W4G_D8(24), W4G_D8(32), W4G_D8(40)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}

/* d [64 fp32 per thread] += A (64 x 16, registers: the mma.m16n8k16 A fragment per warp)
 * x B (16 x 128, shared memory, K-major, described by desc). */
static __device__ __forceinline__ void w4g_mma_n128(float (&d)[64], const uint32_t (&a)[4], uint64_t desc) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "{%64, %65, %66, %67}, %68, 1, 1, 1, 0;\n"
      "}\n"
      : W4G_D32(0), W4G_D32(32)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}

/* d [128 fp32 per thread] += A (64 x 16, registers) x B (16 x 256, shared memory, K-major,
 * described by desc): the 256-row tiles (twice the tensor work of a dequantised word). */
static __device__ __forceinline__ void w4g_mma_n256(float (&d)[128], const uint32_t (&a)[4], uint64_t desc) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
      "{%128, %129, %130, %131}, %132, 1, 1, 1, 0;\n"
      "}\n"
      : W4G_D32(0), W4G_D32(32), W4G_D32(64), W4G_D32(96)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}
#undef W4G_D32
#undef W4G_D8

template <int BT>
__device__ __forceinline__ void w4g_mma(float (&d)[BT / 2], const uint32_t (&a)[4], uint64_t desc) {
  if constexpr (BT == 32) w4g_mma_n32(d, a, desc);
  else if constexpr (BT == 48) w4g_mma_n48(d, a, desc);
  else if constexpr (BT == 64) w4g_mma_n64(d, a, desc);
  else if constexpr (BT == 96) w4g_mma_n96(d, a, desc);
  else if constexpr (BT == 128) w4g_mma_n128(d, a, desc);
  else {
    static_assert(BT == 256, "tiles of 32, 48, 64, 96, 128 or 256 rows");
    w4g_mma_n256(d, a, desc);
  }
}

/* Output through shared memory (the warp-specialised kernel): the 128 NWG consumer threads' bf16
 * results of tokens 8 lo .. 8 hi - 1 go transposed into a [BT tokens][64 NWG columns] tile by
 * stmatrix (.trans: an accumulator pair of lane g, t -- output column g, tokens 2t and 2t + 1 of
 * an 8 x 8 block -- lands in token rows 2t and 2t + 1; the layout is kernels/w4g_layout.h's,
 * which test_w4g_layout checks on the CPU), then leave as 16-byte row segments, a warp writing
 * 512 contiguous bytes of the tile (two whole rows of 128 columns, 1 1/3 of 192). The
 * per-fragment stores this replaces (one 2-byte store a value, four 16-byte pieces a warp
 * instruction) took ~2300 SM cycles for a 128 x 128 tile on the H200 (bench_w4ws_trace;
 * kernels/NOTES.md item 13). */
__device__ __forceinline__ uint32_t w4g_bf16x2(float lo, float hi) {
  return (uint32_t)kern_f2bf(lo) | (uint32_t)kern_f2bf(hi) << 16;
}

/* (consumer warps only, all lanes; NWG consumer warpgroups) groups lo .. hi - 1 of the tile's
 * rows, v[4 (i - lo) + e] the fragment values of group i; the caller's named barrier 1 of the
 * 128 NWG consumers follows */
template <int NV, int NWG>
__device__ __forceinline__ void w4g_stage_rows(uint8_t *tile, const float (&v)[NV], int lo, int hi, int cw, int lane) {
  /* at w4g_out_row_off(NWG, cw, lane, lo + i), its column part taken out of the loop */
  const uint32_t base = (uint32_t)__cvta_generic_to_shared(tile) + w4g_out_col_off(cw, lane);
#pragma unroll
  for (int i = 0; i < NV / 4; i++)
    if (lo + i < hi) {
      const uint32_t at = base + (uint32_t)(w4g_out_row(lane, lo + i) * w4g_out_pitch(NWG));
      asm volatile("stmatrix.sync.aligned.m8n8.x2.trans.shared.b16 [%0], {%1, %2};\n" ::"r"(at),
                   "r"(w4g_bf16x2(v[4 * i], v[4 * i + 1])), "r"(w4g_bf16x2(v[4 * i + 2], v[4 * i + 3]))
                   : "memory");
    }
}

/* (the 128 NWG consumer threads, after the barrier) tile rows 8 lo .. 8 hi - 1 to y */
template <int NWG>
__device__ __forceinline__ void w4g_write_rows(const W4Args &a, const uint8_t *tile, int lo, int hi, int ct, int nt, int m0) {
  const int n0 = nt / (4 * NWG) * (64 * NWG), nseg = 8 * NWG * 8 * (hi - lo);
  for (int idx = ct; idx < nseg; idx += 128 * NWG) {
    const int r = w4g_out_seg_row(NWG, lo, idx), sg = w4g_out_seg(NWG, idx), row = m0 + r, col = n0 + 8 * sg;
    if (row < a.M && col < a.N)
      *reinterpret_cast<uint4 *>(a.y + (size_t)row * a.N + col) =
          *reinterpret_cast<const uint4 *>(tile + r * w4g_out_pitch(NWG) + 16 * sg);
  }
}

/* Named barrier 1: the 128 NWG consumer threads of the warp-specialised kernel (warps 0 ..
 * 4 NWG - 1) */
template <int NWG>
__device__ __forceinline__ void w4g_consumers_sync() { asm volatile("bar.sync 1, %0;\n" ::"n"(128 * NWG) : "memory"); }

/* (the 128 NWG consumers) groups lo .. hi - 1 into the tile, the barrier, the tile's rows to y */
template <int NV, int NWG>
__device__ __forceinline__ void w4g_tile_out(const W4Args &a, uint8_t *tile, const float (&v)[NV], int lo, int hi, int ct,
                                             int nt, int lane, int m0) {
  w4g_stage_rows<NV, NWG>(tile, v, lo, hi, ct >> 5, lane);
  w4g_consumers_sync<NWG>();
  w4g_write_rows<NWG>(a, tile, lo, hi, ct, nt, m0);
}

constexpr int kW4gStageMinGroups = 5; /* 128-row tiles: a split's share staged from this many 8-row groups */

/* The epilogue of both kernels: consumer thread ct's accumulators d (the wgmma D fragment of
 * lane g = lane / 4, t = lane % 4: output columns nt*16 + g and + 8, rows m0 + 8i + 2t and + 1)
 * to bf16 y, directly (the all-threads kernel) or through a shared-memory tile (STG: the
 * warp-specialised kernel, T = 128 NWG consumers; w4g_stage_rows). With K split over the cluster
 * (gridDim.z > 1) each block first leaves d in its own shared memory (ring: the pipeline's, free
 * now, room for BT / 2 x T floats) and block `rank` sums the rank-th share of the fragments of
 * the tile's 8-row groups that hold rows below M over the cluster in split order; the second
 * barrier keeps every block's partial alive until the others have read it. With STG the output
 * tile lies past the partials (SILU, gate_up's grouped GEMM: direct stores of SiLU(gate) x up
 * instead). Every thread of the block calls it (the barriers); non-consumers (consumer = false)
 * only take part in them. WHOLE: never a split grid (the grouped expert GEMMs, which call it for
 * each of a block's tiles; without the split's code the instance needs fewer registers). */
template <int BT, int T, bool STG = false, bool SILU = false, bool WHOLE = false>
__device__ __forceinline__ void w4g_epilogue(const W4Args &a, const float (&d)[BT / 2], uint8_t *ring, bool consumer,
                                             int ct, int nt, int lane, int m0) {
  static_assert(!SILU || STG, "the SiLU epilogue is the grouped expert GEMMs' (warp-specialised kernel, unsplit)");
  const int N = a.N, M = a.M, splits = gridDim.z, g = lane >> 2, t = lane & 3;
  const bool nt_ok = consumer && nt < N / 16;
  static_assert(!STG || T == 128 || T == 256 || T == 384, "the staged output is the 128 NWG consumers' (named barrier 1)");
  constexpr int NWG = T / 128;
  auto store4 = [&](int i, float v0, float v1, float v2, float v3) {
    w4_store_frag<SILU>(a.y, N, M, m0 + 8 * i + 2 * t, nt, g, v0, v1, v2, v3);
  };
  if (!WHOLE && splits > 1) {
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    /* group i of thread ct (d[4i .. 4i + 3]) at i T + ct in 16-byte pieces (T = 128 or 256: one
     * or two consumer warpgroups, or the all-threads kernel); with three consumer warpgroups value
     * i at i T + ct (16-byte loads were slower there: kernels/NOTES.md item 17) */
    constexpr bool V4 = NWG <= 2;
    float4 *part = reinterpret_cast<float4 *>(ring);
    float *part1 = reinterpret_cast<float *>(ring);
    /* the tile's 8-row groups that hold a row below M: only they are left and summed, the rows
     * past M being never stored (at 32 rows a 64-row tile's sum moves half the bytes: down TP=1
     * 7.1 -> 6.2 us, 963.4 -> 920.6 summed over the twelve shapes at 17..64, 100 and 200 rows on
     * the H200, kernels/NOTES.md item 21) */
    const int G = BT / 8, gv = (M - m0 + 7) / 8 < G ? (M - m0 + 7) / 8 : G;
    WS_EP_STAMP(3, 0);
    __syncthreads(); /* every consumer is past its last read of the ring */
    WS_EP_STAMP(4, 0);
    if (consumer) {
#pragma unroll
      for (int i = 0; i < BT / 8; i++) {
        if (i >= gv) continue;
        if constexpr (V4) {
          part[i * T + ct] = make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]);
        } else {
#pragma unroll
          for (int e = 0; e < 4; e++) part1[(4 * i + e) * T + ct] = d[4 * i + e];
        }
      }
    }
    cluster.sync();
    WS_EP_STAMP(5, 0);
    if (consumer) {
      const int rank = (int)cluster.block_rank();
      const int lo = rank * gv / splits, hi = (rank + 1) * gv / splits;
      /* staged where the share is large: at 128 rows a few groups a warp leave faster by their
       * own stores than through the tile and its barrier (gate_up, 8 splits: 7.7 -> 8.1 us
       * staged); the 64-row kernel (two blocks an SM, 96 registers) is faster staged at every
       * split, and with both paths in it slower at every M = 64 point (qkv 19.7 -> 21.0 us); the
       * 256-row kernel's partials fill its ring, so its shares leave directly */
      /* v[0..3] = group i's four values summed over the cluster in split order: one 16-byte load
       * a peer, all issued before the adds (bench_dsmem: up to 21% less time than 4-byte loads a
       * peer after another -- 64 KB, 3 splits; 6% at 4 --, kernels/NOTES.md item 17) */
      auto sum_group = [&](int i, float *v) {
#pragma unroll
        for (int e = 0; e < 4; e++) v[e] = 0.f;
        if constexpr (V4) {
          float4 x[kW4gMaxSplits];
#pragma unroll
          for (int zz = 0; zz < kW4gMaxSplits; zz++)
            if (zz < splits) x[zz] = cluster.map_shared_rank(part, zz)[i * T + ct];
#pragma unroll
          for (int zz = 0; zz < kW4gMaxSplits; zz++)
            if (zz < splits) v[0] += x[zz].x, v[1] += x[zz].y, v[2] += x[zz].z, v[3] += x[zz].w;
        } else {
          for (int zz = 0; zz < splits; zz++) {
            const float *pz = cluster.map_shared_rank(part1, zz);
#pragma unroll
            for (int e = 0; e < 4; e++) v[e] += pz[(4 * i + e) * T + ct];
          }
        }
      };
      if (STG && w4g_split_staged(BT, NWG) && (BT == 64 || hi - lo >= kW4gStageMinGroups)) {
        constexpr int SH = (BT / 8 + 1) / 2; /* a share's groups at most (splits >= 2) */
        float v[4 * SH];
#pragma unroll
        for (int i = 0; i < SH; i++)
          if (lo + i < hi) sum_group(lo + i, &v[4 * i]);
        w4g_tile_out<4 * SH, NWG>(a, ring + (size_t)BT / 2 * T * 4, v, lo, hi, ct, nt, lane, m0);
      } else {
        for (int i = lo; i < hi; i++) {
          float v[4];
          sum_group(i, v);
          if (nt_ok) store4(i, v[0], v[1], v[2], v[3]);
        }
      }
    }
    WS_EP_STAMP(6, 0);
    cluster.sync();
    WS_EP_STAMP(7, 0);
    return;
  }
  if constexpr (STG && !SILU) {
    if (!consumer) return;
    /* the tile overlays the ring: every consumer warpgroup's last wgmma must have read it (a
     * warpgroup's wgmma.wait covers its own only; without this barrier the bench's validation
     * caught one wrong result in ~36 launches' worth of graphs, down TP=2 at 256 rows) */
    w4g_consumers_sync<NWG>();
    w4g_tile_out<BT / 2, NWG>(a, ring, d, 0, BT / 8, ct, nt, lane, m0);
    return;
  }
  if (!nt_ok) return;
#pragma unroll
  for (int i = 0; i < BT / 8; i++) store4(i, d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]);
}

/* What w4g_epilogue's non-consumers do: its barriers only. */
__device__ __forceinline__ void w4g_epilogue_barriers() {
  if (gridDim.z > 1) {
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    __syncthreads();
    cluster.sync();
    cluster.sync();
  }
}
#endif

template <int BT, int WG, int S>
__global__ void __launch_bounds__(WG * 128, BT <= 64 ? 2 : 1) w4g_kernel(W4Args a, int swap_offsets) {
#ifdef W4G_SM90A
  using Cfg = W4gCfg<BT, WG, S>;
  constexpr int T = Cfg::T, XB = Cfg::XB, NX = BT * 8 / T; /* 16-byte copies a thread */
  extern __shared__ __align__(128) uint8_t w4g_smem_buf[];
  const int tid = threadIdx.x, warp4 = (tid >> 5) & 3, wg = tid >> 7, lane = tid & 31, g = lane >> 2;
  const int K = a.K, N = a.N, M = a.M, KC = K / 64, NT16 = N / 16;
  const int nt = (blockIdx.x * WG + wg) * 4 + warp4; /* this warp's 16 output columns */
  const bool nt_ok = nt < NT16;
  const int m0 = blockIdx.y * BT;
  const int splits = gridDim.z, z = blockIdx.z;
  const int kc0 = (int)((int64_t)z * KC / splits), n = (int)((int64_t)(z + 1) * KC / splits) - kc0;

  /* 16-byte activation copy i of this thread: item q = i T + tid -> row r, k8 slice j, so that
   * a warp's 32 copies are 512 contiguous bytes of the stage (w4g_layout_off16) */
  auto xitem = [&](int i, int &r, int &j) {
    const int q = i * T + tid, rest = q >> 5;
    r = (rest >> 2) * 16 + ((q >> 4) & 1) * 8 + (q & 7);
    j = (rest & 3) * 2 + ((q >> 3) & 1);
  };
  const uint4 *wsrc = a.qrep + (size_t)(nt_ok ? nt : 0) * KC * 32 + lane;
  const uint32_t *ssrc = a.srep + (nt_ok ? nt : 0) * 8 + g;
  auto stage = [&](int j) { return w4g_smem_buf + (size_t)j * Cfg::STAGE; };
  auto issue_w = [&](int c, int j) { /* weights and scales of chunk kc0 + c into stage j */
    uint8_t *sp = stage(j);
    w4_cp16(reinterpret_cast<uint4 *>(sp + XB) + tid, wsrc + (size_t)(kc0 + c) * 32);
    w4_cp4(reinterpret_cast<uint32_t *>(sp + XB + Cfg::WB) + tid, ssrc + (size_t)((kc0 + c) >> 1) * NT16 * 8);
  };
  auto issue_x = [&](int c, int jst) {
    uint8_t *sp = stage(jst);
#pragma unroll
    for (int i = 0; i < NX; i++) {
      int r, j;
      xitem(i, r, j);
      const int row = m0 + r < M ? m0 + r : M - 1; /* rows past M load a real row: columns discarded */
      w4_cp16(sp + w4g_layout_off16(BT, r, j), a.x + (size_t)row * K + (size_t)(kc0 + c) * 64 + 8 * j);
    }
  };
  auto dequant = [&](uint32_t(&af)[4][4], int j) {
    const uint8_t *sp = stage(j);
    /* this lane's word of step st: w4g_word(g, st, t) of the warp's 512 bytes (4-way bank
     * conflicts: g, g + 2, g + 4, g + 6 share banks) */
    const uint32_t *wp = reinterpret_cast<const uint32_t *>(sp + XB) + (tid >> 5) * 128 + w4g_word(g, 0, lane & 3);
    const uint32_t wq[4] = {wp[w4g_word(0, 0, 0)], wp[w4g_word(0, 1, 0)], wp[w4g_word(0, 2, 0)], wp[w4g_word(0, 3, 0)]};
    const uint32_t sc = reinterpret_cast<const uint32_t *>(sp + XB + Cfg::WB)[tid];
    const uint32_t s0 = __byte_perm(sc, 0, 0x1010), s8 = __byte_perm(sc, 0, 0x3232);
#pragma unroll
    for (int st = 0; st < 4; st++) w4_dequant(wq[st], s0, s8, af[st]);
  };
  const uint32_t lbo = swap_offsets ? W4G_SBO : W4G_LBO, sbo = swap_offsets ? W4G_LBO : W4G_SBO;

  /* weights first (no kernel writes them), then the wait for the activations' producer */
#pragma unroll
  for (int i = 0; i < S - 1; i++)
    if (i < n) issue_w(i, i);
  kern_pdl_wait();
#pragma unroll
  for (int i = 0; i < S - 1; i++) {
    if (i < n) issue_x(i, i);
    w4_commit();
  }
  float d[BT / 2];
#pragma unroll
  for (int i = 0; i < BT / 2; i++) d[i] = 0.f;
  uint32_t af0[4][4], af1[4][4];
  w4_wait<S - 2>();
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); /* cp.async (generic) -> wgmma (async proxy) */
  __syncthreads();
  dequant(af0, 0);
  /* one chunk: its wgmma on af, then (if another follows) the next chunk's dequantisation into
   * af_next once the chunk before this one is done with it */
  auto chunk = [&](int c, uint32_t(&af)[4][4], uint32_t(&af_next)[4][4]) {
    const int j = c % S;
    w4g_keep(d);
    w4g_fence();
#pragma unroll
    for (int s = 0; s < 4; s++) w4g_mma<BT>(d, af[s], w4g_desc(stage(j) + s * w4g_step_bytes(BT), lbo, sbo));
    w4g_commit();
    w4g_keep(d);
    if (c + 1 < n) {
      w4g_wait<1>();  /* chunk c-1's wgmma done: af_next and stage (c-1) % S are free */
      w4g_keep(af_next);
      w4_wait<S - 3>(); /* this thread's copies of chunk c+1 landed */
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
      __syncthreads();
      if (c + S - 1 < n) {
        issue_w(c + S - 1, (c + S - 1) % S);
        issue_x(c + S - 1, (c + S - 1) % S);
      }
      w4_commit();
      dequant(af_next, (c + 1) % S);
    }
  };
  for (int c = 0; c < n; c += 2) {
    chunk(c, af0, af1);
    if (c + 1 < n) chunk(c + 1, af1, af0);
  }
  w4g_wait<0>();
  w4g_keep(d);
  w4_wait<0>();
  kern_pdl_trigger();

  w4g_epilogue<BT, T>(a, d, w4g_smem_buf, true, tid, nt, lane, m0);
#else
  (void)a;
  (void)swap_offsets;
#endif
}

/* Kernel FN's dynamic shared memory limit raised to smem and its blocks per SM (the occupancy
 * calculator at `threads` a block), once per device. */
template <auto FN>
int w4g_prepare(int threads, size_t smem, int *occ) {
  static int occ_dev[KERN_MAX_DEVICES];
  int dev = 0;
  if (int rc = kern_device_slot(&dev)) return rc;
  if (!occ_dev[dev]) {
    KERN_CUDA(cudaFuncSetAttribute(FN, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    int o = 0;
    KERN_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&o, FN, threads, smem));
    occ_dev[dev] = o > 0 ? o : 1;
  }
  *occ = occ_dev[dev];
  return 0;
}

/* Grid (column tiles, row tiles, K splits): splits fill the SMs when the tiles do not, each
 * split at least 2 chunks; the splits of a tile form one cluster. */
template <int BT, int WG, int S>
int w4g_launch(const W4Args &a, int sms, cudaStream_t st, int swap) {
  using Cfg = W4gCfg<BT, WG, S>;
  int occ = 1;
  if (int rc = w4g_prepare<w4g_kernel<BT, WG, S>>(Cfg::T, Cfg::kSmem, &occ)) return rc;
  dim3 grid(kern_cdiv(a.N, 64 * WG), kern_cdiv(a.M, BT), 1);
  const int64_t tiles = (int64_t)grid.x * grid.y, target = (int64_t)sms * occ;
  int splits = tiles < target ? (int)((target + tiles - 1) / tiles) : 1;
  const int max_splits = a.K / 64 / 2 < kW4gMaxSplits ? a.K / 64 / 2 : kW4gMaxSplits;
  splits = splits > max_splits ? max_splits : splits;
  splits = splits < 1 ? 1 : splits;
  grid.z = splits;
  return kern_launch_ex(w4g_kernel<BT, WG, S>, grid, dim3(Cfg::T), Cfg::kSmem, st, splits, a, swap);
}


/* ---- Warp-specialised variant (SERVESIM_W4_WGMMA=2): a producer warp fills an S-stage ring
 * by TMA with the activation tile (2D tensor map, 128-byte swizzle) on a full mbarrier per
 * stage; the NWG consumer warpgroups (2, 3 for the 128 x 192 tiles, 1 for the 64-column ones;
 * 64 output columns each, a block 64 NWG -- or, with K slices, KSL, the same 64 columns each,
 * each its own chunks) wait on it, dequantise, run their wgmma and release
 * the stage on an empty mbarrier once wgmma.wait 1 says the chunk before is done. No block
 * barrier in the loop. The weights (WREG, the default): each consumer warp fetches its own 512
 * bytes a chunk (16 a lane) and its scales -- from 96 rows by cp.async into its own ring in
 * shared memory, WsCfg::WD chunks ahead; 64-row tiles from global memory into registers P
 * chunks ahead. Without
 * WREG they come through the stages too: the producer copies the CW weight tiles of a chunk in
 * one 2D tensor copy and their scales in one bulk copy, those of the first S chunks before
 * the dependency wait (ws_weight_map). That is what 64-row grids of at most one block for every
 * two SMs run (ws_run64, kernels/NOTES.md item 24), and every tile with SERVESIM_W4WS_CFG=1 (the
 * fifth session's data path, then nine 1D bulk copies a chunk, which capped the producer at
 * ~1450 SM cycles a chunk on the H200 against ~800 with WREG: item 10). */
constexpr size_t kWsSmemMax = 232448; /* shared memory a block may have on sm_90, 227 KB (static included) */

template <int BT, int S, bool WREG, int NWG>
struct WsCfg {
  static constexpr int CW = 4 * NWG; /* consumer warps: one n16 weight tile each (with K slices, the tile of warp % 4) */
  static constexpr int XB = BT * 128, WB = WREG ? 0 : CW * 512, SB = WREG ? 0 : CW * 32;
  static constexpr int STAGE = (XB + WB + SB + 1023) / 1024 * 1024; /* X tiles 1024-aligned (swizzle) */
  /* WREG from 96 rows (the dense GEMM's tiles from 128, the fused MoE's from 96): past the
   * stages, each consumer warp's own ring of WD + 1 slots (a chunk's 512 weight bytes and 32 scale
   * bytes), filled WD chunks ahead (4 at 256 rows, whose stream-K output tile leaves no room for
   * more); the 64-row tiles (two blocks an SM, 96 registers) load into registers instead */
  static constexpr bool WR = WREG && BT >= 96;
  static constexpr int WD = WR ? (BT == 256 ? 4 : 6) : 0, WSLOT = 544, WRING = WR ? CW * (WD + 1) * WSLOT : 0;
  static constexpr size_t kSmem = (size_t)S * STAGE + WRING + 1024;
  static constexpr size_t kOutTile = (size_t)BT * W4G_OUT_PITCH(NWG);
  /* stream-K: the output tile past the rings (the producer may be filling the ring for the next
   * piece while a piece's result leaves) */
  static constexpr size_t smem_sk() { return kSmem + kOutTile; }
  /* the split-K partials and (up to 128 rows, where a split's share is staged) the output tile
   * past them; the unsplit output tile overlays the ring */
  static_assert((size_t)(BT / 2) * 128 * NWG * 4 + (w4g_split_staged(BT, NWG) ? kOutTile : 0) <= (size_t)S * STAGE,
                "the split-K sum and the output tile must fit in the ring");
  static_assert(kOutTile <= (size_t)S * STAGE, "the output tile must fit in the ring");
  static_assert(kSmem + (NWG == 2 ? kOutTile : 0) <= kWsSmemMax, "227 KB of shared memory a block at most (stream-K's included)");
};

/* Threads of a block: NWG consumer warpgroups and the producer warp (288 for two), or with RB a
 * full producer warpgroup (384 for two) so that setmaxnreg can move registers (it acts on whole
 * warpgroups). ptxas caps a one-block-an-SM kernel of 288 threads at 168 registers a thread, as
 * it does one of 384; with RB the producer warpgroup gives its own back and the consumers take
 * them: two consumer warpgroups 232 a thread against the producer's 40 (128 x 40 + 256 x 232 =
 * 384 x 168), three 152 (128 x 40 + 384 x 152 <= 512 x 128; with the producer at 24 and the
 * consumers at 160, ptxas spilled 8 bytes in a 192-column stream-K instance, not built now); one
 * consumer warpgroup at two blocks an SM, 152 too (128 x 40 + 128 x 152 <= 256 x 128). */
constexpr int ws_threads(bool rb, int nwg) { return rb ? 128 * (nwg + 1) : 128 * nwg + 32; }

#ifdef W4G_SM90A
constexpr int kWsProducerRegs = 40;
__host__ __device__ constexpr int ws_consumer_regs(int nwg) { return nwg == 2 ? 232 : 152; }
__device__ __forceinline__ uint32_t ws_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void ws_bar_init(uint64_t *b, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(ws_u32(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void ws_expect_tx(uint64_t *b, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(ws_u32(b)), "r"(bytes) : "memory");
}
/* bytes the phase waits for, without an arrival (the arrival comes with a later expect_tx) */
__device__ __forceinline__ void ws_expect_tx_only(uint64_t *b, uint32_t bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(ws_u32(b)), "r"(bytes) : "memory");
}
/* barrier operations on a shared-space address (the consumers keep their barriers' addresses in
 * registers rather than converting generic pointers every chunk) */
__device__ __forceinline__ void ws_arrive_at(uint32_t b) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(b) : "memory"); }
__device__ __forceinline__ void ws_arrive(uint64_t *b) { ws_arrive_at(ws_u32(b)); }
__device__ __forceinline__ void ws_wait_at(uint32_t b, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "WS_WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WS_WAIT_%=;\n"
      "}\n" ::"r"(b),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void ws_wait(uint64_t *b, uint32_t parity) { ws_wait_at(ws_u32(b), parity); }
__device__ __forceinline__ void ws_tma_2d(void *dst, const CUtensorMap *map, int x0, int x1, uint64_t *bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          ws_u32(dst)),
      "l"(map), "r"(x0), "r"(x1), "r"(ws_u32(bar))
      : "memory");
}
__device__ __forceinline__ void ws_bulk(void *dst, const void *src, uint32_t bytes, uint64_t *bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(ws_u32(dst)),
               "l"(src), "r"(bytes), "r"(ws_u32(bar))
               : "memory");
}
#endif

/* A per-chunk timeline of block (0, 0, 0) for bench/bench_w4ws_trace.cu, which includes this file
 * with W4WS_TRACE defined (the library build has no trace code): SM clock stamps of the
 * producer's empty-slot waits and of consumer warp 0's full waits, wgmma issues and retirements
 * (with K slices the consumers' chunk index is their slice's own: chunk c of warp 0 is the
 * piece's chunk KSL c, of warp 4 KSL c + 1). */
#ifdef W4WS_TRACE
constexpr int kWsTraceChunks = 128;
__device__ long long ws_trace_buf[10][kWsTraceChunks]; /* [event][chunk]; 4: start, epilogue, end; 5: dequantised;
                                                        6-9: consumer warp 4 (warpgroup 1) landed, dequantised, issued, retired */
#define WS_STAMP(ev, c)                                                                             \
  do {                                                                                              \
    if (blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && (c) < kWsTraceChunks)              \
      ws_trace_buf[ev][c] = clock64();                                                              \
  } while (0)
/* every block's (linear index b < kWsTraceBlocks) global timer (ns) and SM clock when thread 0
 * passes: 0 the start, 1 its first chunk landed, 2 its last piece's main loop done, 3 the end */
constexpr int kWsTraceBlocks = 4096;
__device__ long long ws_trace_blk[kWsTraceBlocks][4][2];
#define WS_BLK_STAMP(k)                                                                          \
  do {                                                                                           \
    const long long b_ = blockIdx.x + (long long)gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z); \
    if (threadIdx.x == 0 && b_ < kWsTraceBlocks) {                                               \
      ws_trace_blk[b_][k][0] = (long long)kern_globaltimer();                                    \
      ws_trace_blk[b_][k][1] = clock64();                                                        \
    }                                                                                            \
  } while (0)
/* stream-K blocks' pieces (the first kWsTracePieces of block b < kWsTraceBlocks): [0] kind x 65536
 * + chunks, then the global timer (ns) when thread 0 passes: [1] the piece's first chunk landed,
 * [2] its main loop done, [3] (WSK_OWNER) the other holders' partials added, [4] its end */
constexpr int kWsTracePieces = 4;
__device__ long long ws_trace_piece[kWsTraceBlocks][kWsTracePieces][5];
#define WS_PIECE_SET(si, k, v)                                                            \
  do {                                                                                    \
    if (threadIdx.x == 0 && blockIdx.x < kWsTraceBlocks && (si) < kWsTracePieces)        \
      ws_trace_piece[blockIdx.x][si][k] = (v);                                            \
  } while (0)
#define WS_PIECE_STAMP(si, k) WS_PIECE_SET(si, k, (long long)kern_globaltimer())
#else
#define WS_STAMP(ev, c) \
  do {                  \
  } while (0)
#define WS_BLK_STAMP(k) \
  do {                  \
  } while (0)
#define WS_PIECE_SET(si, k, v) \
  do {                         \
  } while (0)
#define WS_PIECE_STAMP(si, k) \
  do {                        \
  } while (0)
#endif

#ifdef W4G_SM90A
/* A stream-K piece's end (kernels/wsk_plan.h), by the T = 128 NWG consumer threads (ct = consumer
 * thread, the accumulators d in the wgmma D fragment layout of w4g_epilogue; the launcher runs
 * stream-K with two warpgroups only): WSK_PART leaves d in this block's workspace slot (BT / 2 x
 * T floats: thread ct's values 4i .. 4i + 3 as the 16 bytes i T + ct) and raises its flag
 * (ws_cnt[block]); WSK_OWNER adds the slots of blocks owner + 1 .. last in block order (each
 * flag waited for by one thread, then reset to zero for the next call) and stores y through
 * the output tile otile (past the ring: w4g_stage_rows), as WSK_WHOLE does at once. The flag
 * handshake: the writers' stores, the barrier of the T (named barrier 1), one release store
 * (cumulative: it orders every store the barrier ordered before it); the reader's acquire load,
 * the barrier, the loads (L2, not L1). 16-byte stores and the one release wrote a 128 KB slot
 * in 2.0-2.2 us against 2.5 for 4-byte stores each fenced (qkv at 256 rows; one bulk copy of the
 * slot into the ring read it slower than the threads' loads: kernels/NOTES.md item 17). */
template <int BT, int NWG>
__device__ __forceinline__ void w4s_piece_epilogue(const W4Args &a, float (&d)[BT / 2], const WskPiece &sg, int ct, int nt,
                                                   int lane, int m0, uint8_t *otile, int si /* (trace stamps only) */) {
  (void)si;
  constexpr int SLOT = (int)WS_COST_SK_SLOT_FLOATS(BT, NWG), T = 128 * NWG; /* the slot ws_cost_schedule makes room for */
  static_assert(SLOT == BT / 2 * T, "a slot holds the consumers' accumulators");
  const int b = blockIdx.x;
  if (sg.kind == WSK_PART) {
    float4 *part = reinterpret_cast<float4 *>(a.ws_part + (size_t)b * SLOT);
#pragma unroll
    for (int i = 0; i < BT / 8; i++) __stcg(part + i * T + ct, make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]));
    w4g_consumers_sync<NWG>();
    if (ct == 0) asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(a.ws_cnt + b), "r"(1u) : "memory");
    return;
  }
  if (sg.kind == WSK_OWNER) {
    for (int o = b + 1; o <= sg.last; o++) {
      if (ct == 0) {
        uint32_t f = 0;
        do asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(f) : "l"(a.ws_cnt + o) : "memory");
        while (f == 0);
        a.ws_cnt[o] = 0;
      }
      w4g_consumers_sync<NWG>();
      const float4 *part = reinterpret_cast<const float4 *>(a.ws_part + (size_t)o * SLOT);
#pragma unroll
      for (int i = 0; i < BT / 8; i++) {
        const float4 v = __ldcg(part + i * T + ct);
        d[4 * i] += v.x, d[4 * i + 1] += v.y, d[4 * i + 2] += v.z, d[4 * i + 3] += v.w;
      }
    }
    WS_PIECE_STAMP(si, 3);
  }
  /* through the output tile (w4g_stage_rows): the barrier first, so that no consumer is still
   * reading the previous piece's tile */
  w4g_consumers_sync<NWG>();
  w4g_tile_out<BT / 2, NWG>(a, otile, d, 0, BT / 8, ct, nt, lane, m0);
}
#endif

#ifdef W4G_SM90A
/* K slices (w4ws_kernel's KSL > 1), the 128 KSL consumer threads (ct < 128 KSL; warpgroup ct /
 * 128 holds slice ct / 128's accumulators d): slices 1 .. KSL - 1 leave d in the ring -- free
 * once the first barrier passes, every warpgroup's wgmma having read their stages -- as 16-byte
 * pieces (group i of slice w at ((w - 1) BT / 8 + i) 128 + ct % 128), and warpgroup 0 adds them
 * in slice order; the tile's first gv 8-row groups only (those holding rows below M). The output
 * is then warpgroup 0's (w4g_epilogue with T = 128). Through the SM's own shared memory: a 128 x
 * 64 tile's 32 KB a slice, against a K split's sum over the cluster's network (~6-11 bytes a
 * cycle an SM, bench_dsmem, kernels/NOTES.md item 17). */
template <int BT, int KSL>
__device__ __forceinline__ void ws_slices_sum(float (&d)[BT / 2], uint8_t *ring, int ct, int gv) {
  static_assert(KSL >= 2 && KSL <= 4, "two to four slices");
  float4 *part = reinterpret_cast<float4 *>(ring);
  const int w = ct >> 7, ci = ct & 127;
  w4g_consumers_sync<KSL>();
  if (w > 0) {
#pragma unroll
    for (int i = 0; i < BT / 8; i++)
      if (i < gv) part[((w - 1) * (BT / 8) + i) * 128 + ci] = make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]);
  }
  w4g_consumers_sync<KSL>();
  if (w == 0) {
#pragma unroll
    for (int v = 1; v < KSL; v++)
#pragma unroll
      for (int i = 0; i < BT / 8; i++)
        if (i < gv) {
          const float4 x = part[((v - 1) * (BT / 8) + i) * 128 + ci];
          d[4 * i] += x.x, d[4 * i + 1] += x.y, d[4 * i + 2] += x.z, d[4 * i + 3] += x.w;
        }
  }
}
#endif

/* MOE (not with SK): 0 a dense GEMM; 1 the grouped expert GEMMs (kern_moe_w4a16_down's), each
 * block working the tiles w4_moe_list gives it -- with RB a persistent grid's list, one after
 * another, otherwise one tile (the row tiles numbered expert by expert over the rows a.expert_off
 * gives; the activations' rows in expert order, so one tensor map serves every expert); 2 the
 * same with gate_up's SiLU(gate) x up epilogue (y of N / 2 columns). */
template <int BT, int MINB, int S, bool WREG, int P, bool SK, bool RB, int NWG, int MOE = 0, int KSL = 1>
__global__ void __launch_bounds__(ws_threads(RB, NWG), MINB) w4ws_kernel(const __grid_constant__ CUtensorMap tmx, const __grid_constant__ CUtensorMap tmx_tail,
                                                                      const __grid_constant__ CUtensorMap tmw, W4Args a) {
#ifdef W4G_SM90A
  static_assert(MOE == 0 || !SK, "the grouped expert GEMMs run whole tiles");
  /* KSL > 1: the NWG = KSL consumer warpgroups share one tile of 64 columns and take its chunks
   * in turn (warpgroup w the chunks c = w mod KSL, from the stages j = w mod KSL: a sub-ring of
   * S / KSL stages each), then add their accumulators in shared memory (ws_slices_sum) -- a K
   * split inside the block, with no cluster sum (kernels/NOTES.md item 30) */
  static_assert(KSL == 1 || (KSL == NWG && !SK && MOE == 0 && WREG && S % KSL == 0 && S / KSL >= 2),
                "K slices: one 64-column tile, split grids of the dense GEMM, weights from the consumers, two stages a "
                "slice at least (a slice releases chunk c's stage during chunk c + 1)");
  using Cfg = WsCfg<BT, S, WREG, NWG>;
  constexpr int CW = Cfg::CW;
  constexpr int COLW = CW / KSL; /* a block's n16 weight tiles (64 NWG / KSL columns) */
  constexpr int SS = S / KSL;    /* a consumer warpgroup's stages */
  static_assert((size_t)(KSL - 1) * BT * 256 <= (size_t)S * Cfg::STAGE, "the slices' accumulators must fit in the ring");
  constexpr int XB = Cfg::XB;
  extern __shared__ uint8_t ws_raw[];
  __shared__ __align__(8) uint64_t full[S], empty[S];
  uint8_t *base = ws_raw + ((1024 - (ws_u32(ws_raw) & 1023)) & 1023);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2;
  const int K = a.K, N = a.N, KC = K / 64, NT16 = N / 16;
  /* pieces in whole groups of P chunks (the consumers' loop step): no tail after the loop when
   * P = 4, one odd chunk at most when P = 2 (a conditional wgmma chunk after a loop of 4 makes
   * ptxas serialise the wgmma, warning C7512) */
  static_assert(P == 2 || P == 4, "P chunks a loop step");
  /* the quantum (ws_run checks KC % q == 0; with K slices a slice's steps are whole) */
  constexpr int q = P == 4 ? 4 * KSL : 1;
  const int KQ = KC / q, TX = (NT16 + COLW - 1) / COLW;
  const int64_t TU = (int64_t)TX * ((a.M + BT - 1) / BT) * KQ;
  /* the block's pieces, worked in this order by every role: one from the grid position, or
   * with stream-K those thread 0 lists */
  __shared__ WskPiece segs[SK ? WSK_MAX_PIECES : 1];
  __shared__ int nseg_s;
  if constexpr (SK) {
    if (tid == 0) {
      int k = 0;
      if (a.sk_whole) { /* whole tiles, strided: the blocks at work at once hold neighbouring tiles */
        for (int64_t t = blockIdx.x; t < TU / KQ && k < WSK_MAX_PIECES; t += gridDim.x, k++) {
          segs[k].tx = (int)(t % TX);
          segs[k].ty = (int)(t / TX);
          segs[k].kc0 = 0;
          segs[k].n = q * KQ;
          segs[k].kind = WSK_WHOLE;
          segs[k].last = 0;
        }
      } else {
        int64_t u = (int64_t)blockIdx.x * TU / gridDim.x;
        const int64_t uend = (int64_t)(blockIdx.x + 1) * TU / gridDim.x;
        while (k < WSK_MAX_PIECES && wsk_plan_next(&u, uend, TU, KQ, q, TX, gridDim.x, &segs[k])) k++;
      }
      nseg_s = k; /* the launcher keeps a block's share within WSK_MAX_PIECES pieces */
    }
  }
  /* the grouped expert GEMMs' tiles (kernels/NOTES.md item 34). With RB (one block an SM: the 96-
   * and 128-row tiles) a persistent grid, each block working a list of tiles: before, one block a
   * (column tile, row tile) over the launch's upper bound of row tiles, and every block past the
   * last real tile started, looked its tile up and left (~1 us an SM each). Without RB (the 32-,
   * 48- and 64-row tiles, two blocks an SM, 96 registers) still one block a tile of the bound
   * (the launcher's grid; the list holds one): their loop over tiles cost registers enough that
   * ptxas serialised the wgmma of the 48- and 64-row instances (C7512), and the blocks past the
   * last tile cost these tiles little (no gain measured at 256..512 tokens). */
  constexpr bool MLOOP = MOE != 0 && RB;
  constexpr int ML = MLOOP ? MOE_PLAN_MAX_PIECES : 1;
  __shared__ W4MoePiece moe_list[ML];
  __shared__ int moe_n;
  auto seg_at = [&](int si) {
    if constexpr (SK) return segs[si];
    if constexpr (MOE != 0) {
      WskPiece sg;
      sg.tx = moe_list[si].tx;
      sg.ty = 0;
      sg.kc0 = 0;
      sg.n = q * KQ;
      sg.kind = WSK_WHOLE;
      sg.last = 0;
      return sg;
    }
    const int splits = gridDim.z, z = blockIdx.z;
    WskPiece sg;
    sg.tx = blockIdx.x;
    sg.ty = blockIdx.y;
    sg.kc0 = q * (z * KQ / splits); /* 32-bit: z < 8, KQ = K / 64 / q */
    sg.n = q * ((z + 1) * KQ / splits) - sg.kc0;
    sg.kind = splits > 1 ? WSK_SPLIT : WSK_WHOLE;
    sg.last = 0;
    return sg;
  };
  auto stage = [&](int j) { return base + (size_t)j * Cfg::STAGE; };
  /* the grouped expert GEMMs: a tile's expert (its weights), first row and row end, known only
   * once the kernel that wrote expert_off is done, so no weight load before the wait here */
  int moe_row0 = 0, moe_tile0 = 0; /* the piece's first row; its expert's first n16 tile in tmw (WREG false) */
  /* piece si's expert's weights and scales (a holds every expert's, and is not changed, so that
   * the compiler keeps reading it from the parameters rather than holding it in registers across
   * the tiles) */
  auto moe_qrep = [&](int si) { return a.qrep + (size_t)moe_list[si].e * ((size_t)K * N / 32); };
  auto moe_srep = [&](int si) { return a.srep + (size_t)moe_list[si].e * ((size_t)(K / 128) * N / 2); };
  /* The split's second launch (part 1, the remainder tiles; ws_moe_launch) reads only what the
   * kernels before the first launch wrote: every block of the first had passed its wait when it
   * let this launch in, so those kernels are done, and this one waits for the first launch only
   * before it stores (each tile's epilogue), or before it leaves when it has no tile -- then its
   * end still means the first launch's end, which the kernel after it relies on. The first launch
   * lets it in at once, so that the remainder tiles fill the first launch's tail. */
  if constexpr (MOE != 0) {
    const bool moe_rem = a.moe_part == 1;
    if (!moe_rem) kern_pdl_wait();
    if (warp == 0) w4_moe_list(a, BT, TX, lane, moe_list, ML, &moe_n);
    __syncthreads();
    if (moe_n == 0) { /* the whole block, before any barrier is set up */
      if (moe_rem) kern_pdl_wait();
      return;
    }
    if (a.moe_hb > 0 && !moe_rem) kern_pdl_trigger();
  }
  if (tid == 0) {
    for (int j = 0; j < S; j++) {
      ws_bar_init(&full[j], 1);
      ws_bar_init(&empty[j], COLW); /* lane 0 of each consumer warp that takes the stage */
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (tid == 0) WS_STAMP(4, 0);
  WS_BLK_STAMP(0);
  float d[BT / 2];
  const int t = lane & 3; /* consumer warp (warp < CW): warpgroup warp / 4 */
  int nt = 0, m0 = 0; /* the last piece's (the cluster epilogue after the loop) */
  /* A role's end (who: 0 the producer warpgroup, 1 the consumers, 2 any thread): let the next
   * kernel in, then the split grid's epilogue, in which the producer warps only take part in the
   * barriers. With RB each role ends inside its own branch (code after the branches join would
   * be held to the producer's 40 registers), without it after the join. */
  auto finish = [&](int who) {
    kern_pdl_trigger();
    if constexpr (!SK && MOE == 0) { /* (the grouped expert GEMMs store each tile in the consumers' loop) */
      kern_pdl_wait(); /* (returns at once: the producer waited) before writing what a predecessor may read */
      if (tid == 0) WS_STAMP(4, 1);
      WS_BLK_STAMP(2);
      if (who == 0) w4g_epilogue_barriers();
      else /* (K slices: warpgroup 0 holds the sum) */
        w4g_epilogue<BT, 128 * NWG / KSL, true, MOE == 2>(a, d, base, KSL == 1 ? who == 1 || warp < CW : warp < COLW, tid, nt, lane, m0);
      if (tid == 0) WS_STAMP(4, 2);
      WS_BLK_STAMP(3);
    }
  };
  if (warp >= CW) {
    if constexpr (RB) asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kWsProducerRegs));
    if (warp == CW && lane == 0) {
      const uint8_t *sq = reinterpret_cast<const uint8_t *>(a.srep);
      if constexpr (MOE != 0) { /* the piece's expert's */
        sq = reinterpret_cast<const uint8_t *>(moe_srep(0));
        moe_tile0 = moe_list[0].e * NT16;
      }
      int gc = 0; /* ring position: chunks of all pieces so far */
      const int nseg = SK ? nseg_s : MLOOP ? moe_n : 1;
      /* Without WREG the weights come through the stages: the tile's CW weight tiles of a chunk
       * in one tensor copy (tmw, ws_weight_map; tiles past N read as zeros -- or, in the grouped
       * expert GEMMs, whose map holds every expert, as the next expert's first tiles, whose
       * columns are never stored -- and are counted) and its scales in one bulk copy.
       * They depend on no kernel, so those of the first S chunks leave before the dependency
       * wait (their bytes expected without an arrival, which the activations' copy brings). */
      auto ntiles = [&](const WskPiece &sg) { return NT16 - sg.tx * CW < CW ? NT16 - sg.tx * CW : CW; }; /* within N */
      auto fetch_w = [&](uint8_t *sp, const WskPiece &sg, int c, uint64_t *bar) {
        ws_tma_2d(sp + XB, &tmw, (sg.kc0 + c) * 128, moe_tile0 + sg.tx * CW, bar);
        ws_bulk(sp + XB + Cfg::WB, sq + ((size_t)((sg.kc0 + c) >> 1) * NT16 + sg.tx * CW) * 32, ntiles(sg) * 32, bar);
      };
      auto wbytes = [&](const WskPiece &sg) { return (uint32_t)(CW * 512 + ntiles(sg) * 32); };
      int npre = 0; /* chunks whose weights left before the wait (the first piece's; SK is WREG only) */
      if constexpr (!WREG) {
        const WskPiece sg = seg_at(0);
        npre = sg.n < S ? sg.n : S;
        for (int c = 0; c < npre; c++) {
          ws_expect_tx_only(&full[c], wbytes(sg));
          fetch_w(stage(c), sg, c, &full[c]);
        }
      }
      for (int si = 0; si < nseg; si++) {
        const WskPiece sg = seg_at(si);
        if constexpr (MOE != 0) {
          moe_row0 = moe_list[si].row0;
          if (si > 0) {
            sq = reinterpret_cast<const uint8_t *>(moe_srep(si));
            moe_tile0 = moe_list[si].e * NT16;
          }
        }
        /* the last row tile's box stops at its last row (rounded up to 8; wgmma reads the
         * stage's older rows past it, whose outputs are never stored) */
        const bool tail = MOE == 0 && sg.ty == (a.M - 1) / BT;
        const CUtensorMap *map = tail ? &tmx_tail : &tmx;
        const uint32_t xbytes = tail ? a.x_tail_rows * 128 : XB;
        for (int c = 0; c < sg.n; c++, gc++) {
          const int j = gc % S;
          if (gc >= S) ws_wait(&empty[j], ((gc / S) - 1) & 1);
          WS_STAMP(0, gc);
          uint8_t *sp = stage(j);
          if (!WREG && gc >= npre) {
            ws_expect_tx(&full[j], xbytes + wbytes(sg));
            fetch_w(sp, sg, c, &full[j]);
          } else {
            ws_expect_tx(&full[j], xbytes);
          }
          if (gc == 0) {
            if (MOE == 0 || a.moe_part != 1) kern_pdl_wait(); /* the activations are the previous kernel's output */
            WS_EP_STAMP(1, 32 * CW);
          }
          ws_tma_2d(sp, map, (sg.kc0 + c) * 64, MOE != 0 ? moe_row0 : sg.ty * BT, &full[j]);
        }
      }
    }
    if constexpr (RB) finish(0);
  } else {
    if constexpr (RB) asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(ws_consumer_regs(NWG)));
    unsigned gc0 = 0; /* ring position of the piece's first chunk */
    const int nseg = SK ? nseg_s : MLOOP ? moe_n : 1;
    /* stage 0's descriptor: stage j, k16 step s adds (j STAGE + 32 s) / 16 to its start field
     * (shared addresses < 256 KB: the 14-bit field does not carry) */
    const uint64_t desc0 = w4_desc_sw128(base);
    const uint32_t desc0_lo = (uint32_t)desc0;
    uint32_t full_at = ws_u32(full), empty_at = ws_u32(empty);
    /* Weights through the stages: this lane's weight words' and scales' shared addresses in stage
     * 0, and the barriers', made opaque to the compiler here so that they are held in registers:
     * ptxas otherwise worked them out again each chunk from the shared window (SR_CgaCtaId), the
     * ring's alignment and the lane -- the 32-row MoE tiles' loop 255 instructions a two-chunk
     * step, 225 so (kernels/NOTES.md item 36). Not with WREG: the 96-register instances spilled. */
    uint32_t w_at = 0, s_at = 0;
    if constexpr (!WREG) {
      w_at = ws_u32(base) + XB + warp * 512 + w4g_word(g, 0, t) * 4;
      s_at = ws_u32(base) + XB + Cfg::WB + warp * 32 + g * 4;
      asm volatile("" : "+r"(full_at), "+r"(empty_at), "+r"(w_at), "+r"(s_at));
    }
    /* K slices (KSL > 1): this warp's warpgroup wk takes the piece's chunks wk, wk + KSL, ...
     * (below, c counts the slice's own chunks) from its stages wk + KSL jj (jj < SS) */
    const int wk = KSL > 1 ? warp / 4 : 0;
    auto phys = [&](unsigned jj) { return KSL > 1 ? (unsigned)wk + KSL * jj : jj; };
    for (int si = 0; si < nseg; si++) {
      const WskPiece sg = seg_at(si);
      const int kc0 = sg.kc0 + wk, n = KSL > 1 ? (sg.n - wk + KSL - 1) / KSL : sg.n; /* the slice's first chunk, its chunks */
      nt = sg.tx * COLW + (KSL > 1 ? warp & 3 : warp);
      if constexpr (MOE != 0) moe_row0 = moe_list[si].row0;
      m0 = MOE != 0 ? moe_row0 : sg.ty * BT;
#pragma unroll
      for (int i = 0; i < BT / 2; i++) d[i] = 0.f;
      /* WREG: each warp fetches its own weight words and scales (the producer only moves the
       * activations; otherwise they come through the stages). From 96 rows (WR) it copies them
       * into its own ring in shared memory, WsCfg::WD chunks ahead, one cp.async group a chunk
       * (wait_group counts them exactly), and reads them from there. The 64-row tiles load them
       * into registers P chunks ahead, as every tile did up to the twentieth session: ptxas
       * puts all of a warp's weight loads on one scoreboard and waits for all of them at a
       * step's first use, so the last chunk of a step has one chunk of lead (25% of the
       * consumers' loop samples stalled there at 128 rows, ncu, kernels/NOTES.md item 23); at 64
       * rows the ring cost more than it saved (spills at 96 registers). */
      constexpr bool WR = Cfg::WR;
      const int ntl = nt < NT16 ? nt : NT16 - 1; /* past N: a real tile, columns discarded */
      const int sstep = NT16 * 8;
      constexpr int WD = Cfg::WD, WSLOT = Cfg::WSLOT, WLAST = WD * WSLOT; /* the last slot's offset */
      const uint32_t wring = ws_u32(base + (size_t)S * Cfg::STAGE) + (uint32_t)(warp * (WD + 1) * WSLOT);
      /* this lane's 16 bytes of a chunk (the step-t words of lanes (g, 0..3), w4g_layout.h) and,
       * lanes 0 and 1, half of the tile's eight scale words; the pieces of row group g permuted
       * (t ^ (g / 2) % 4) so that a step's 32 words fall on 32 banks when read */
      const uint8_t *wsrc = reinterpret_cast<const uint8_t *>(a.qrep) + ((size_t)ntl * KC + kc0) * 512 + lane * 16;
      const uint8_t *ssrc = reinterpret_cast<const uint8_t *>(a.srep + (size_t)ntl * 8 + (size_t)(kc0 >> 1) * sstep) + (lane & 1) * 16;
      if constexpr (MOE != 0) { /* the piece's expert's (a holds them all) */
        wsrc = reinterpret_cast<const uint8_t *>(moe_qrep(si)) + (wsrc - reinterpret_cast<const uint8_t *>(a.qrep));
        ssrc = reinterpret_cast<const uint8_t *>(moe_srep(si)) + (ssrc - reinterpret_cast<const uint8_t *>(a.srep));
      }
      const uint32_t wdst = (uint32_t)(4 * g + (t ^ ((g >> 1) & 3))) * 16, sdst = 512 + (lane & 1) * 16;
      /* scale groups (two chunks each) from the slice's chunk c to c + 1 */
      auto gstep = [&](int c) { return KSL == 1 ? (kc0 + c) & 1 : ((kc0 + KSL * (c + 1)) >> 1) - ((kc0 + KSL * c) >> 1); };
      uint32_t wslot = 0, rslot = 0; /* byte offsets of the slots of the next chunk to fetch / read */
      /* (predicated copies rather than branches around them) */
      auto fetch = [&](int c) {
        const int live = c < n, more = c + 1 < n;
        asm volatile(
            "{\n"
            ".reg .pred p, ps;\n"
            "setp.ne.b32 p, %4, 0;\n"
            "setp.lt.and.u32 ps, %5, 2, p;\n"
            "@p cp.async.cg.shared.global [%0], [%1], 16;\n"
            "@ps cp.async.cg.shared.global [%2], [%3], 16;\n"
            "cp.async.commit_group;\n" /* (empty past the piece: one group a chunk either way) */
            "}\n" ::"r"(wring + wslot + wdst),
            "l"(wsrc), "r"(wring + wslot + sdst), "l"(ssrc), "r"(live), "r"(lane)
            : "memory");
        wsrc += more ? 512 * KSL : 0;
        ssrc += more ? gstep(c) * sstep * 4 : 0;
        wslot = wslot == WLAST ? 0 : wslot + WSLOT;
      };
      /* the register path's running pointers of the next chunk to fetch (its weight words, its
       * group's scales: the group advances after an odd chunk) */
      const uint32_t *wnext = reinterpret_cast<const uint32_t *>(a.qrep) + ((size_t)ntl * KC + kc0) * 128 + w4g_word(g, 0, t);
      const uint32_t *snext = a.srep + (size_t)ntl * 8 + g + (size_t)(kc0 >> 1) * sstep;
      if constexpr (MOE != 0) {
        wnext = reinterpret_cast<const uint32_t *>(moe_qrep(si)) + (wnext - reinterpret_cast<const uint32_t *>(a.qrep));
        snext = moe_srep(si) + (snext - a.srep);
      }
      uint4 wr[P];
      uint32_t sr[P];
      auto fetch_r = [&](int c, uint4 &w, uint32_t &sv) {
        if (c < n) {
          /* the lane's words of steps 0..3, from lanes (g, 0..3)'s 16 bytes (w4g_layout.h) */
          w = make_uint4(__ldg(wnext), __ldg(wnext + w4g_word(0, 1, 0)), __ldg(wnext + w4g_word(0, 2, 0)),
                         __ldg(wnext + w4g_word(0, 3, 0)));
          sv = __ldg(snext);
          wnext += 128 * KSL;
          snext += gstep(c) * sstep;
        }
      };
      if constexpr (WR) {
#pragma unroll
        for (int i = 0; i < WD; i++) fetch(i);
      } else if constexpr (WREG) {
#pragma unroll
        for (int i = 0; i < P; i++) fetch_r(i, wr[i], sr[i]);
      }

      auto dequant = [&](uint32_t(&af)[4][4], int j, int c, uint4 &w, uint32_t &sv) {
        uint32_t wq[4], sc;
        if constexpr (!WR && WREG) {
          wq[0] = w.x, wq[1] = w.y, wq[2] = w.z, wq[3] = w.w;
          sc = sv;
          fetch_r(c + P, w, sv);
        } else if constexpr (WR) {
          w4_wait<WD - 1>(); /* this lane's copies of chunk c landed */
          __syncwarp();      /* and the other lanes' */
          const uint32_t at = wring + rslot;
#pragma unroll
          for (int q = 0; q < 4; q++)
            asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(wq[q]) : "r"(at + (uint32_t)(4 * g + (q ^ ((g >> 1) & 3))) * 16 + 4 * t));
          asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(sc) : "r"(at + 512 + 4 * g));
          rslot = rslot == WLAST ? 0 : rslot + WSLOT;
          fetch(c + WD); /* into the slot chunk c - 1 left (every lane read it before the __syncwarp) */
        } else {
          /* step q's word, 4-way bank conflicts (conflict-free reads through a 3D tensor copy of
           * 128-byte rows with the 128-byte swizzle were no faster on small grids and ~0.5 us
           * slower on grids that fill the SMs, kernels/NOTES.md item 24) */
          const uint32_t js = j * Cfg::STAGE;
#pragma unroll
          for (int q = 0; q < 4; q++) /* (step q's word: w4g_word(g, q, t), 16 bytes a step) */
            asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(wq[q]) : "r"(w_at + js + 16 * q));
          asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(sc) : "r"(s_at + js));
        }
        const uint32_t s0 = __byte_perm(sc, 0, 0x1010), s8 = __byte_perm(sc, 0, 0x3232);
#pragma unroll
        for (int q = 0; q < 4; q++) w4_dequant(wq[q], s0, s8, af[q]);
      };
      /* chunk c of the piece in stage j, whose full barrier is in phase `parity`; jprev: chunk
       * c-1's stage */
      auto chunk = [&](int c, unsigned j, unsigned parity, unsigned jprev, uint32_t(&af)[4][4], uint32_t(&af_prev)[4][4],
                       uint4 &w, uint32_t &sv) {
        const unsigned gc = gc0 + c; /* (the trace's chunk index) */
        (void)gc;
        ws_wait_at(full_at + 8 * j, parity);
        if (tid == 0) WS_STAMP(1, gc);
        if (gc == 0) WS_BLK_STAMP(1);
        if (SK && c == 0) WS_PIECE_STAMP(si, 1);
        if (tid == 128) WS_STAMP(6, gc);
        dequant(af, j, c, w, sv); /* chunk c-1's wgmma still run on the other registers */
        if (tid == 0) WS_STAMP(5, gc);
        if (tid == 128) WS_STAMP(7, gc);
        uint64_t desc[4]; /* made before the fence: nothing but wgmma between fence and commit */
#pragma unroll
        for (int s = 0; s < 4; s++) {
          desc[s] = desc0 - desc0_lo + (desc0_lo + (uint32_t)((j * Cfg::STAGE + 32 * s) >> 4)); /* the start address field */
          asm volatile("" : "+l"(desc[s])::"memory");
        }
        w4g_keep(d);
        w4g_fence();
#pragma unroll
        for (int s = 0; s < 4; s++) w4g_mma<BT>(d, af[s], desc[s]);
        w4g_commit();
        if (tid == 0) WS_STAMP(2, gc);
        if (tid == 128) WS_STAMP(8, gc);
        w4g_keep(d);
        w4g_wait<1>(); /* chunk c-1 done: its stage goes back to the producer */
        if (tid == 0) WS_STAMP(3, gc);
        if (tid == 128) WS_STAMP(9, gc);
        w4g_keep(af_prev);
        if (c >= 1 && lane == 0) ws_arrive_at(empty_at + 8 * jprev);
      };
      /* ring position gc (of the slice's own stages): stage gc % SS, phase (gc / SS) & 1 */
      auto chunk_at = [&](int c, uint32_t(&af)[4][4], uint32_t(&af_prev)[4][4], uint4 &w, uint32_t &sv) {
        const unsigned gc = gc0 + c;
        chunk(c, phys(gc % SS), (gc / SS) & 1, phys((gc - 1) % SS), af, af_prev, w, sv);
      };
      uint32_t af0[4][4], af1[4][4];
      int c = 0; /* groups of P, then the rest: no branch inside the loop (see w4g_keep) */
      static_assert(P % 2 == 0, "the A registers alternate");
      for (; c + P - 1 < n; c += P) {
        if constexpr (q == P) {
          /* pieces of whole quanta: the step's first ring position is a multiple of P, so its P
           * chunks take stages j0 .. j0 + P - 1 in one phase -- worked out once a step rather
           * than a chunk (~5 instructions a chunk fewer, ~1% faster: kernels/NOTES.md item 14) */
          static_assert(S % P == 0 && KSL == 1, "a step's stages must not wrap");
          const unsigned gcb = gc0 + c, j0 = gcb % S, par = (gcb / S) & 1, jp0 = (gcb + S - 1) % S;
#pragma unroll
          for (int i = 0; i < P; i += 2) {
            chunk(c + i, j0 + i, par, i ? j0 + i - 1 : jp0, af0, af1, wr[i], sr[i]);
            chunk(c + i + 1, j0 + i + 1, par, j0 + i, af1, af0, wr[i + 1], sr[i + 1]);
          }
        } else {
#pragma unroll
          for (int i = 0; i < P; i += 2) {
            chunk_at(c + i, af0, af1, wr[i], sr[i]);
            chunk_at(c + i + 1, af1, af0, wr[i + 1], sr[i + 1]);
          }
        }
      }
      if constexpr (P == 2)
        if (c < n) chunk_at(c, af0, af1, wr[0], sr[0]);
      w4g_wait<0>();
      w4g_keep(d);
      gc0 += n;
      if constexpr (SK) {
        if (si == nseg - 1) WS_BLK_STAMP(2);
        WS_PIECE_SET(si, 0, (long long)sg.kind * 65536 + n);
        WS_PIECE_STAMP(si, 2);
        if (lane == 0) ws_arrive(&empty[(gc0 - 1) % S]); /* the piece's last stage: the next piece reuses the ring */
        kern_pdl_wait(); /* (returns at once: the producer waited) before writing what a predecessor may read */
        w4s_piece_epilogue<BT, NWG>(a, d, sg, tid, nt, lane, m0, base + (size_t)S * Cfg::STAGE + Cfg::WRING, si);
        WS_PIECE_STAMP(si, 4);
      }
      if constexpr (MOE != 0) {
        if (si + 1 < nseg) {
          if (lane == 0) ws_arrive(&empty[(gc0 - 1) % S]); /* the tile's last stage: the next tile reuses the ring */
        } else {
          kern_pdl_trigger();
        }
        kern_pdl_wait(); /* (part 1 waits for part 0 here, before its first store; otherwise at once) */
        W4Args ae = a;
        ae.M = moe_list[si].row_end; /* rows from the expert's end on are never stored */
        /* down's output tile (MOE 1): with a list of tiles past the rings (ws_moe_run sizes the
         * block for it), so that the producer fills the ring with the next tile's chunks while
         * this one leaves -- it overlaid the ring before, and the producer waited for each tile's
         * stores (kernels/NOTES.md item 35); a block of one tile overlays the ring (w4g_epilogue's
         * barrier first: every consumer past its last read of the ring and of the tile before) */
        uint8_t *otile = MLOOP && MOE == 1 ? base + (size_t)S * Cfg::STAGE + Cfg::WRING : base; /* (as ws_moe_run sizes it) */
        w4g_epilogue<BT, 128 * NWG, true, MOE == 2, true>(ae, d, otile, true, tid, nt, lane, m0);
      }
    }
    if constexpr (SK) WS_BLK_STAMP(3);
    if constexpr (KSL > 1) {
      const int rows = a.M - m0, gv = (rows + 7) / 8 < BT / 8 ? (rows + 7) / 8 : BT / 8;
      ws_slices_sum<BT, KSL>(d, base, tid, gv);
    }
    if constexpr (RB) finish(1);
  }
  if constexpr (!RB) finish(2);
#else
  (void)tmx;
  (void)tmx_tail;
  (void)tmw;
  (void)a;
#endif
}

/* cuTensorMapEncodeTiled, from the driver through the runtime (no link against libcuda), looked
 * up once */
static int ws_encode_fn(PFN_cuTensorMapEncodeTiled_v12000 *out) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = NULL;
  if (!encode) {
    void *fn = NULL;
    cudaDriverEntryPointQueryResult q;
    KERN_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q));
    if (q != cudaDriverEntryPointSuccess || !fn) return err_set(ERR_DEVICE, "kern_w4a16_wgmma: cuTensorMapEncodeTiled not found");
    encode = (PFN_cuTensorMapEncodeTiled_v12000)fn;
  }
  *out = encode;
  return 0;
}

/* A 2D tensor map over `base`: inner extent `inner` elements of type `dt`, `outer` rows `pitch`
 * bytes apart, boxes of box_inner x box_outer, reads past the extents as zeros; `what` names it
 * in the error. */
static int ws_map_2d(CUtensorMap *map, CUtensorMapDataType dt, const void *base, uint64_t inner, uint64_t outer, uint64_t pitch,
                     uint32_t box_inner, uint32_t box_outer, CUtensorMapSwizzle swizzle, const char *what) {
  PFN_cuTensorMapEncodeTiled_v12000 encode = NULL;
  if (int rc = ws_encode_fn(&encode)) return rc;
  const cuuint64_t dims[2] = {inner, outer}, strides[1] = {pitch};
  const cuuint32_t box[2] = {box_inner, box_outer}, estr[2] = {1, 1};
  const CUresult r = encode(map, dt, 2, (void *)base, dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    return err_set(ERR_DEVICE, "kern_w4a16_wgmma: cuTensorMapEncodeTiled failed (%d) for the %s, %llu x %llu", (int)r, what,
                   (unsigned long long)outer, (unsigned long long)inner);
  return 0;
}

/* The activations' tensor map: [M rows][K] bf16, boxes of 64 k x `rows` rows, 128-byte
 * swizzle, rows past M read as zeros. */
int ws_tensor_map(CUtensorMap *map, const W4Args &a, int rows) {
  return ws_map_2d(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, a.x, (uint64_t)a.K, (uint64_t)a.M, (uint64_t)a.K * 2, 64,
                   (uint32_t)rows, CU_TENSOR_MAP_SWIZZLE_128B, "activations");
}

/* The repacked weights' tensor map for the kernels that bring them through the stages (WREG
 * false): [N / 16 tiles][K / 64 chunks x 128 words], boxes of `tiles` tiles x one chunk's 512
 * bytes, no swizzle (the stage holds the tiles' chunks one after another, as the consumers read
 * them), tiles past N read as zeros; mats matrices of N columns one after another (the grouped
 * expert GEMMs' experts). */
int ws_weight_map(CUtensorMap *map, const W4Args &a, int tiles, int mats = 1) {
  return ws_map_2d(map, CU_TENSOR_MAP_DATA_TYPE_UINT32, a.qrep, (uint64_t)(a.K / 64) * 128, (uint64_t)(a.N / 16) * mats,
                   (uint64_t)(a.K / 64) * 512, 128, (uint32_t)tiles, CU_TENSOR_MAP_SWIZZLE_NONE, "weights");
}

static_assert(kW4gMaxSplits == WS_COST_MAX_SPLITS, "one cluster limit for the kernel and its schedule model");

/* cap[s]: blocks of kernel FN resident at once in clusters of s (s = 1: slots, the SMs x
 * blocks an SM), once per device. A cluster's blocks share one GPC, so at one block an SM the
 * GPCs' SM counts leave some SMs idle for most s (kern_cluster_capacity). SERVESIM_W4WS_CLOCC=0
 * counts slots for every s, as the model did before (kernels/NOTES.md item 12). */
template <auto FN>
int ws_cluster_slots(dim3 block, size_t smem, int64_t slots, int64_t (&cap)[kW4gMaxSplits + 1]) {
  static int64_t cache[KERN_MAX_DEVICES][kW4gMaxSplits + 1];
  static int env = -1;
  if (env < 0) env = kern_env_int("SERVESIM_W4WS_CLOCC", 1) != 0;
  int dev = 0;
  if (int rc = kern_device_slot(&dev)) return rc;
  if (!cache[dev][1]) {
    int64_t c[kW4gMaxSplits + 1] = {0, slots};
    for (int s = 2; s <= kW4gMaxSplits; s++) {
      int n = 1;
      if (env)
        if (int rc = kern_cluster_capacity(FN, block, smem, s, &n)) return rc;
      c[s] = env ? (int64_t)n * s : slots;
    }
    memcpy(cache[dev], c, sizeof c);
  }
  memcpy(cap, cache[dev], sizeof cap);
  return 0;
}

/* SERVESIM_W4WS_SK (ws_plan below): 1 the rule, 0 never stream-K, 2 wherever it fits */
static int ws_sk_env(void) {
  static int env = -1;
  if (env < 0) env = kern_env_int("SERVESIM_W4WS_SK", 1);
  return env;
}

/* SERVESIM_W4WS_LOG=1: one stderr line a plan made (tuning aid; ws_launch_mid makes up to seven
 * a launch, and ws_run64 up to four): the tile (rows x columns, K slices), the tiles, the K splits
 * and the blocks resident for each split count, or the stream-K grid or the persistent grid of
 * whole tiles (their blocks), and the plan's
 * cost (quarter chunks of that tile; with K slices of a slice). */
void ws_log(const W4Args &a, int bt, int nwg, int64_t tiles, int splits, const int64_t (&cap)[kW4gMaxSplits + 1], int64_t sk_blocks,
            int64_t cost, int ksl = 1, int whole = 0) {
  static int env = -1;
  if (env < 0) env = kern_env_int("SERVESIM_W4WS_LOG", 0) != 0;
  if (!env) return;
  fprintf(stderr, "w4ws: M=%d K=%d N=%d rows/tile=%d cols/tile=%d k-slices=%d tiles=%lld splits=%d %s blocks=%lld cost=%lld resident(s=1..8)=",
          a.M, a.K, a.N, bt, 64 * nwg / ksl, ksl, (long long)tiles, splits, whole ? "whole-tile" : "stream-K", (long long)sk_blocks,
          (long long)cost);
  for (int s = 1; s <= kW4gMaxSplits; s++) fprintf(stderr, "%lld%c", (long long)cap[s], s < kW4gMaxSplits ? ',' : '\n');
}

/* The schedule (kernels/ws_cost.h's ws_cost_schedule): the grid of (column tiles, row tiles, K splits
 * of one cluster), or stream-K (one block an SM over all the chunks, kernels/wsk_plan.h) where
 * that grid is uneven or split deep and every SM gets enough chunks to pay for its fix-ups
 * (measured in kernels/NOTES.md item 11). SERVESIM_W4WS_SK: 1 (default) that rule (128 rows a
 * tile and more), 0 never, 2 wherever the workspace holds it (the ctest that runs it on every
 * shape); SERVESIM_W4WS_SPLITS: a split the model may take. */
struct WsPlan {
  dim3 grid; /* the split grid's (column tiles, row tiles, splits) */
  WsCostSched s; /* s.sk_blocks > 0: stream-K on that many blocks instead */
  int whole = 0; /* with s.sk_blocks: the stream-K instance as a persistent grid of whole tiles */
};

/* SERVESIM_W4WS_PDP: whether an unsplit grid of 128- or 256-row tiles, more of them than the
 * SMs hold, runs as a persistent grid of whole tiles on the stream-K instance instead (block b
 * the tiles b, b + blocks, ...): 1 (default) where wsk_plan_whole says (short tiles), 0 never, 2
 * always (tuning and the GPU test variant wspdp2) */
static int ws_pdp_env(void) {
  static int env = -1;
  if (env < 0) env = kern_env_int("SERVESIM_W4WS_PDP", 1);
  return env;
}

template <int BT, int MINB, int S, bool WREG, int P, bool RB, int NWG = 2, int KSL = 1>
int ws_plan(const W4Args &a0, int sms, const W4Ws &ws, WsPlan *pl) {
  using Cfg = WsCfg<BT, S, WREG, NWG>;
  constexpr int TH = ws_threads(RB, NWG);
  constexpr auto FN = w4ws_kernel<BT, MINB, S, WREG, P, false, RB, NWG, 0, KSL>;
  int occ = 1;
  const int sk_env = ws_sk_env();
  if (int rc = w4g_prepare<FN>(TH, Cfg::kSmem, &occ)) return rc;
  dim3 grid(kern_cdiv(a0.N, 64 * NWG / KSL), kern_cdiv(a0.M, BT), 1);
  constexpr int q = P == 4 ? 4 : 1; /* the kernel's quantum (with K slices a slice's: the kernel's is 4 KSL) */
  const int KC = a0.K / 64;
  const int64_t tiles = (int64_t)grid.x * grid.y, slots = (int64_t)sms * occ;
  int64_t cap[kW4gMaxSplits + 1];
  if (int rc = ws_cluster_slots<FN>(dim3(TH), Cfg::kSmem, slots, cap)) return rc;
  static int force = -1;
  if (force < 0) force = kern_env_int("SERVESIM_W4WS_SPLITS", 0);
  /* stream-K's instance: one block an SM (at two, the 64-row kernel's wgmma serialise, ptxas
   * warning C7512); none for three consumer warpgroups (its one pick on the H200, o_proj at 128
   * rows, ran 23.1 us against 20.0 for the split grid, kernels/NOTES.md item 16) */
  const int sk_mode = WREG && NWG == 2 ? sk_env : 0; /* (none with K slices: ws_cost_schedule_ksl) */
  /* the persistent grid of whole tiles: SERVESIM_W4WS_PDP 1 for short tiles (wsk_plan_whole), 2 at
   * any length (0 chunks to it), 0 never; 128 rows a tile and up, not under a forced split */
  const int pdp = BT >= 128 && WREG && force <= 0 ? ws_pdp_env() : 0;
  int64_t sk_slots = 0;
  if constexpr (NWG == 2 && KSL == 1)
    if ((sk_mode && force <= 0) || pdp) {
      int occ_sk = 1;
      if (int rc = w4g_prepare<w4ws_kernel<BT, 1, S, WREG, P, true, RB, NWG>>(TH, Cfg::smem_sk(), &occ_sk)) return rc;
      sk_slots = (int64_t)sms * occ_sk;
    }
  /* (K slices: costed as the busiest slice's chunks) */
  pl->s = ws_cost_schedule_ksl(BT, NWG, KSL, tiles, KC, q, cap, force, sk_mode, sk_slots, ws.cnt ? ws.max_flags : 0,
                               ws.cnt ? ws.part_floats : 0);
  pl->whole = 0;
  if constexpr (NWG == 2 && KSL == 1)
    if ((pdp == 1 || pdp == 2) && pl->s.sk_blocks == 0 && wsk_plan_whole(tiles, pdp == 2 ? 0 : KC, pl->s.splits, sk_slots)) {
      pl->s.sk_blocks = sk_slots; /* (the cost stays the unsplit grid's) */
      pl->whole = 1;
    }
  grid.z = (unsigned)pl->s.splits;
  pl->grid = grid;
  ws_log(a0, BT, NWG, tiles, pl->s.splits, cap, pl->s.sk_blocks, pl->s.cost_qc, KSL, pl->whole);
  return 0;
}

template <int BT, int MINB, int S, bool WREG, int P, bool RB, int NWG = 2, int KSL = 1>
int ws_run(const W4Args &a0, const WsPlan &pl, const W4Ws &ws, cudaStream_t st) {
  using Cfg = WsCfg<BT, S, WREG, NWG>;
  constexpr int TH = ws_threads(RB, NWG);
  /* the kernel's quantum (w4ws_kernel's q): pieces of whole loop steps, a slice's too */
  constexpr int QK = P == 4 ? 4 * KSL : 1;
  KERN_REQUIRE((a0.K / 64) % QK == 0, "kern_w4a16_gemm: K = %d is not a multiple of %d for this wgmma tile (4-chunk steps%s)", a0.K,
               64 * QK, KSL > 1 ? ", K slices" : "");
  /* TMA and bulk copies need 16-byte aligned sources (cudaMalloc'd buffers and the executor's
   * 256-byte carving are) */
  KERN_REQUIRE((((uintptr_t)a0.x | (uintptr_t)a0.qrep | (uintptr_t)a0.srep | (uintptr_t)a0.y) & 15) == 0,
               "kern_w4a16_gemm: x, qrep, srep and y must be 16-byte aligned for the Hopper wgmma path");
  /* two maps: whole row tiles, and the last one's rows only (its box reading 64 or more rows
   * past the tensor's end slowed the 128-row kernel down by up to 60% between 129 and 255 rows,
   * kernels/NOTES.md item 12; SERVESIM_W4WS_TAIL=0 reads whole boxes there too) */
  static int tail_env = -1;
  if (tail_env < 0) tail_env = kern_env_int("SERVESIM_W4WS_TAIL", 1) != 0;
  W4Args a1 = a0;
  const int last_rows = a0.M - (a0.M - 1) / BT * BT;
  a1.x_tail_rows = tail_env ? (last_rows + 7) / 8 * 8 : BT;
  CUtensorMap map, map_tail;
  if (int rc = ws_tensor_map(&map, a0, BT)) return rc;
  if (a1.x_tail_rows == BT) map_tail = map; /* whole last tile: the same map, not encoded twice */
  else if (int rc = ws_tensor_map(&map_tail, a0, a1.x_tail_rows)) return rc;
  CUtensorMap map_w = map; /* (unused with WREG) */
  if constexpr (!WREG)
    if (int rc = ws_weight_map(&map_w, a0, Cfg::CW)) return rc;
  if constexpr (NWG == 2 && KSL == 1)
    if (pl.s.sk_blocks > 0) {
      a1.ws_cnt = ws.cnt;
      a1.ws_part = ws.part;
      a1.sk_whole = pl.whole;
      return kern_launch_ex(w4ws_kernel<BT, 1, S, WREG, P, true, RB, NWG>, dim3((unsigned)pl.s.sk_blocks), dim3(TH),
                            Cfg::smem_sk(), st, 1, map, map_tail, map_w, a1);
    }
  return kern_launch_ex(w4ws_kernel<BT, MINB, S, WREG, P, false, RB, NWG, 0, KSL>, pl.grid, dim3(TH), Cfg::kSmem, st,
                        (int)pl.grid.z, map, map_tail, map_w, a1);
}

template <int BT, int MINB, int S, bool WREG, int P, bool RB, int NWG = 2, int KSL = 1>
int ws_launch(const W4Args &a, int sms, const W4Ws &ws, cudaStream_t st) {
  WsPlan pl;
  if (int rc = ws_plan<BT, MINB, S, WREG, P, RB, NWG, KSL>(a, sms, ws, &pl)) return rc;
  return ws_run<BT, MINB, S, WREG, P, RB, NWG, KSL>(a, pl, ws, st);
}

/* A tile configuration (the template arguments of ws_plan / ws_run / ws_launch), spelled once
 * where several are planned and one is run. */
template <int BT, int MINB, int S, bool WREG, int P, bool RB, int NWG = 2, int KSL = 1>
struct WsConf {
  static int plan(const W4Args &a, int sms, const W4Ws &ws, WsPlan *pl) {
    return ws_plan<BT, MINB, S, WREG, P, RB, NWG, KSL>(a, sms, ws, pl);
  }
  static int run(const W4Args &a, const WsPlan &pl, const W4Ws &ws, cudaStream_t st) {
    return ws_run<BT, MINB, S, WREG, P, RB, NWG, KSL>(a, pl, ws, st);
  }
  static int launch(const W4Args &a, int sms, const W4Ws &ws, cudaStream_t st) {
    return ws_launch<BT, MINB, S, WREG, P, RB, NWG, KSL>(a, sms, ws, st);
  }
};
/* the tiles of the default path: 64 rows (two blocks an SM, 2-chunk steps); 128 and 256 rows and
 * 128 x 192 (one block an SM, P-chunk steps, the register hand-over) */
using WsTile64 = WsConf<64, 2, 8, true, 2, false>;
/* 64 rows with the weights through the stages, one tensor copy a chunk (ws_run64) */
using WsTile64T = WsConf<64, 2, 8, false, 2, false>;
/* 64 rows of 64 columns: one consumer warpgroup (160 threads), three blocks an SM (110
 * registers, no spill; where: ws_run64) */
using WsTile64w1 = WsConf<64, 3, 8, true, 2, false, 1>;
template <int P>
using WsTile128 = WsConf<128, 1, 8, true, P, true>;
template <int P>
using WsTile256 = WsConf<256, 1, 4, true, P, true>;
template <int P>
using WsTile128x192 = WsConf<128, 1, 8, true, P, true, 3>;
/* 128 rows of 64 columns: one consumer warpgroup and the producer's, 4 stages, two blocks an SM
 * (128 registers, no spill; the consumers raised to 152 as the 192-column tiles' are) */
template <int P>
using WsTile128w1 = WsConf<128, 2, 4, true, P, true, 1>;
/* K slices (kernels/NOTES.md item 30): tiles of 64 columns whose two or four consumer
 * warpgroups take the chunks in turn and add up in shared memory -- 64 x 64 with two (as
 * WsTile64: two blocks an SM), 128 x 64 with two (as WsTile128; 4-chunk steps where K is a
 * multiple of 512, ws_k2_p4) */
using WsTile64k2 = WsConf<64, 2, 8, true, 2, false, 2, 2>;
/* 64 x 64 with four slices: one block an SM (544 threads, 16 stages: four a warpgroup) */
using WsTile64k4 = WsConf<64, 1, 16, true, 2, false, 4, 4>;
template <int P>
using WsTile128k2 = WsConf<128, 1, 8, true, P, true, 2, 2>;

/* SERVESIM_W4WS_CFG: 0 (default) weights fetched by the consumer warps, but at 64 rows through
 * the stages where the grid is small (ws_run64); 1 the fifth session's kernel, weights and scales
 * through the stages at every height; 2 through the stages at 64 rows always, 3 never */
static int ws_cfg(void) {
  static int cfg = -1;
  if (cfg < 0) cfg = kern_env_int("SERVESIM_W4WS_CFG", 0);
  return cfg;
}

/* SERVESIM_W4WS_WG: 0 (default) the costs' choice of consumer warpgroups; 2 always two (128
 * columns); 3 three (192 columns) at 128 rows; 1 one (64 columns): 64 x 64 tiles at 17..64
 * rows, ahead of SERVESIM_W4WS_CFG's stages kernel, and 128 x 64 past that (64 x 64 with
 * SERVESIM_W4WS_ROWS=64; tuning). The 64-column tiles need the register hand-over and the
 * weights in registers: SERVESIM_W4WS_RB=0 and SERVESIM_W4WS_CFG=1 never run them. */
static int ws_wg(void) {
  static int wg = -1;
  if (wg < 0) wg = kern_env_int("SERVESIM_W4WS_WG", 0);
  return wg;
}

/* SERVESIM_W4WS_KSL: 0 (default, and any value but 1, 2, 4) the K-sliced tiles where
 * ws_cost_pick_slices says; 1 never (the dispatch before kernels/NOTES.md item 30); 2 the
 * two-slice tiles everywhere from 17 rows (64 x 64 up to 64 rows, 128 x 64 past that; with
 * SERVESIM_W4WS_ROWS=64 64 x 64 at every height); 4: 64 x 64 with four slices everywhere. 2 and 4
 * come before SERVESIM_W4WS_WG and _ROWS (tuning). The paths that leave the default dispatch --
 * SERVESIM_W4WS_CFG=1, and SERVESIM_W4WS_RB=0 past 64 rows -- run no K slices. */
static int ws_ksl(void) {
  static int k = -1;
  if (k < 0) {
    k = kern_env_int("SERVESIM_W4WS_KSL", 0);
    if (k != 1 && k != 2 && k != 4) k = 0; /* (other values: the rule) */
  }
  return k;
}

/* Whether the rule may put K-sliced tiles in the pick's place: by default only -- not under the
 * tuning switches that force a data path or a tile (SERVESIM_W4WS_CFG, _WG, stream-K everywhere
 * with _SK=2, which the K-sliced tiles do not have) */
static bool ws_slices_rule(void) { return ws_ksl() == 0 && ws_cfg() == 0 && ws_wg() == 0 && ws_sk_env() != 2; }

/* Whether the two-slice 128 x 64 tiles step 4 chunks at a time (each slice's share a multiple of 4:
 * K a multiple of 512), as the 128 x 128 ones do where K allows; SERVESIM_W4WS_KSLP=2 keeps them
 * at 2-chunk steps (tuning, kernels/NOTES.md item 30) */
static bool ws_k2_p4(const W4Args &a) {
  static int env = -1;
  if (env < 0) env = kern_env_int("SERVESIM_W4WS_KSLP", 4);
  return env != 2 && a.K % 512 == 0;
}

/* Runs the K-sliced tile ws_cost_pick_slices picks against `cur` (weight cur_w; k2: whether the
 * 128 x 64 tiles are planned, k2_64 the two-slice 64 x 64 ones); *ran = false where it keeps cur */
int ws_run_slices(const W4Args &a, int sms, const W4Ws &ws, cudaStream_t st, int cur_w, const WsPlan &cur, bool k2, bool k2_64,
                  bool *ran) {
  *ran = false;
  WsPlan p2, p4, p2s;
  const bool p4k2 = ws_k2_p4(a);
  if (k2)
    if (int rc = p4k2 ? WsTile128k2<4>::plan(a, sms, ws, &p2) : WsTile128k2<2>::plan(a, sms, ws, &p2)) return rc;
  if (int rc = WsTile64k4::plan(a, sms, ws, &p4)) return rc;
  if (k2_64)
    if (int rc = WsTile64k2::plan(a, sms, ws, &p2s)) return rc;
  switch (ws_cost_pick_slices(cur_w, &cur.s, k2 ? &p2.s : NULL, &p4.s, k2_64 ? &p2s.s : NULL)) {
    case WS_SLICES_K2: *ran = true; return p4k2 ? WsTile128k2<4>::run(a, p2, ws, st) : WsTile128k2<2>::run(a, p2, ws, st);
    case WS_SLICES_K4_64: *ran = true; return WsTile64k4::run(a, p4, ws, st);
    case WS_SLICES_K2_64: *ran = true; return WsTile64k2::run(a, p2s, ws, st);
    default: return 0;
  }
}

/* A 64-row grid, planned for the register kernel (p64): run by the kernel whose producer brings
 * the weights through the stages (WsTile64T: 8 chunks ahead of the consumers, those of the first
 * 8 chunks before the dependency wait) where ws_cost_stage_weights64 says -- its own split grid
 * of at most one block for every two SMs (measured in kernels/NOTES.md item 24: 0.5-0.85 us off
 * gate_up and down at TP=4 on the H200; on grids that fill the SMs it was 0.1-1.4 us slower,
 * qkv at TP=1 15.2 -> 16.6 us at 24 rows, not understood). Otherwise, where narrow (the call's
 * M <= 64), by tiles of 64 columns where ws_cost_narrow64 says (their split grid against p64's;
 * kernels/NOTES.md item 29), else by p64. Where narrow, the K-sliced 64 x 64 tiles (two or four
 * slices) then replace that pick where ws_cost_pick_slices says (item 30). */
int ws_run64(const W4Args &a, const WsPlan &p64, int sms, const W4Ws &ws, cudaStream_t st, bool narrow) {
  const int cfg = ws_cfg();
  /* the pick: 0 p64, 1 the stages kernel's, 2 the 64-column one's -- then, where narrow, the
   * K-sliced tiles against it (ws_run_slices) */
  WsPlan pt, pn;
  int kind = 0;
  if (cfg != 3 && p64.s.sk_blocks == 0) {
    if (int rc = WsTile64T::plan(a, sms, ws, &pt)) return rc;
    if (ws_cost_stage_weights64(&p64.s, &pt.s, sms, cfg)) kind = 1;
  }
  if (kind == 0 && narrow && ws_wg() != 2) {
    if (int rc = WsTile64w1::plan(a, sms, ws, &pn)) return rc;
    if (ws_cost_narrow64(&p64.s, &pn.s, sms, ws_wg())) kind = 2;
  }
  const WsPlan &cur = kind == 1 ? pt : kind == 2 ? pn : p64;
  if (narrow && ws_slices_rule()) {
    const int w = ws_cost_tile_weight(64, kind == 2 ? 1 : 2, cur.s.blocks, sms);
    bool ran = false;
    if (int rc = ws_run_slices(a, sms, ws, st, w, cur, false, true, &ran)) return rc;
    if (ran) return 0;
  }
  if (kind == 1) return WsTile64T::run(a, pt, ws, st);
  if (kind == 2) return WsTile64w1::run(a, pn, ws, st);
  return WsTile64::run(a, p64, ws, st);
}
int ws_launch64(const W4Args &a, int sms, const W4Ws &ws, cudaStream_t st) {
  if (ws_ksl() >= 2) return ws_ksl() == 4 ? WsTile64k4::launch(a, sms, ws, st) : WsTile64k2::launch(a, sms, ws, st);
  if (ws_wg() == 1) return WsTile64w1::launch(a, sms, ws, st);
  WsPlan p64;
  if (int rc = WsTile64::plan(a, sms, ws, &p64)) return rc;
  return ws_run64(a, p64, sms, ws, st, a.M <= 64);
}

/* 65 rows and more: the tile whose schedule costs least (kernels/ws_cost.h's ws_cost_pick_tile): 64,
 * 128 or (from 129 rows) 256 rows of 128 columns, or 128 rows of 192 or of 64 (three consumer
 * warpgroups, or one). SERVESIM_W4WS_ROWS = 64, 128 or 256 forces a height (256 only from 129
 * rows; other values: the cost's choice), of 128 columns unless SERVESIM_W4WS_WG = 3 asks for
 * 192 (with 128 rows) or 1 for 64 (0, the default: the cost's choice; 2: 128 columns only). A
 * forced split (SERVESIM_W4WS_SPLITS) enters each tile's plan before the choice, so it may move
 * the tile too; force the tile as well for a split A/B. The K-sliced tiles (128 x 64 with two
 * slices, 64 x 64 with four) then replace the cost's choice where ws_cost_pick_slices says
 * (kernels/NOTES.md item 30; not under a forced height or column count). */
template <int P>
int ws_launch_mid(const W4Args &a, int sms, const W4Ws &ws, cudaStream_t st) {
  static int rows = -1;
  if (rows < 0) rows = kern_env_int("SERVESIM_W4WS_ROWS", 0);
  const int wg = ws_wg(), ksl = ws_ksl();
  if (ksl >= 2) {
    if (rows == 64 || ksl == 4) return ws_launch64(a, sms, ws, st);
    return ws_k2_p4(a) ? WsTile128k2<4>::launch(a, sms, ws, st) : WsTile128k2<2>::launch(a, sms, ws, st);
  }
  if (wg == 1) return rows == 64 ? ws_launch64(a, sms, ws, st) : WsTile128w1<P>::launch(a, sms, ws, st);
  if (wg == 3 && rows != 64 && !(rows == 256 && a.M > 128)) return WsTile128x192<P>::launch(a, sms, ws, st);
  if (rows == 64) return ws_launch64(a, sms, ws, st);
  if (rows == 256 && a.M > 128) return WsTile256<P>::launch(a, sms, ws, st);
  if (rows == 128 || rows == 256) return WsTile128<P>::launch(a, sms, ws, st);
  WsPlan p64, p128, p256, p128w3, p128w1;
  if (int rc = WsTile128<P>::plan(a, sms, ws, &p128)) return rc;
  if (int rc = WsTile64::plan(a, sms, ws, &p64)) return rc;
  if (a.M > 128)
    if (int rc = WsTile256<P>::plan(a, sms, ws, &p256)) return rc;
  /* (2: 128 columns only, the others not planned; with stream-K everywhere, SERVESIM_W4WS_SK=2,
   * no 64 columns either, which have no stream-K instance) */
  const bool w3 = wg != 2, w1 = wg != 2 && ws_sk_env() != 2;
  if (w3)
    if (int rc = WsTile128x192<P>::plan(a, sms, ws, &p128w3)) return rc;
  if (w1)
    if (int rc = WsTile128w1<P>::plan(a, sms, ws, &p128w1)) return rc;
  int nwg = 2;
  const int pick = ws_cost_pick_tile(&p64.s, &p128.s, a.M > 128 ? &p256.s : NULL, w3 ? &p128w3.s : NULL,
                                     w1 ? &p128w1.s : NULL, a.K / 64, sms, &nwg);
  if (ws_slices_rule()) { /* the K-sliced tiles against the pick, at its ws_cost_pick_tile weight */
    const WsPlan &cur = nwg == 3 ? p128w3 : nwg == 1 ? p128w1 : pick == 256 ? p256 : pick == 64 ? p64 : p128;
    bool ran = false;
    if (int rc = ws_run_slices(a, sms, ws, st, ws_cost_tile_weight(pick, nwg, cur.s.blocks, sms), cur, true, false, &ran)) return rc;
    if (ran) return 0;
  }
  if (nwg == 3) return WsTile128x192<P>::run(a, p128w3, ws, st);
  if (nwg == 1) return WsTile128w1<P>::run(a, p128w1, ws, st);
  if (pick == 256) return WsTile256<P>::run(a, p256, ws, st);
  if (pick == 64) return ws_run64(a, p64, sms, ws, st, false);
  return WsTile128<P>::run(a, p128, ws, st);
}

/* The grouped expert GEMMs on the warp-specialised kernel (MOE 1 or 2, NWG consumer warpgroups:
 * two, or three for 192 columns; WREG, weights fetched by the consumers -- WsCfg's shared-memory
 * ring from 96 rows, registers at 64 --, or without it through the producer's stages, by a tensor
 * map over all a.n_experts experts' weights):
 * a.M the rows of all local experts (the tensor map's), a.x those rows in expert order; over an
 * upper bound of the (column tile, row tile) pairs (kernels/moe_plan.h), unsplit: with RB (the 96-,
 * 128- and 256-row tiles) a persistent grid of one wave, each block working a list of the real ones,
 * without it a block a pair of the bound, those past the real ones leaving at once. */
template <int BT, int MINB, int P, bool RB, int MOE, int NWG = 2, bool WREG = true>
int ws_moe_run(const W4Args &a, int sms, cudaStream_t st) {
  constexpr int S = BT == 256 ? 4 : 8, TH = ws_threads(RB, NWG); /* (256 rows: the dense tile's stages) */
  using Cfg = WsCfg<BT, S, WREG, NWG>;
  constexpr auto FN = w4ws_kernel<BT, MINB, S, WREG, P, false, RB, NWG, MOE>;
  KERN_REQUIRE((((uintptr_t)a.x | (uintptr_t)a.qrep | (uintptr_t)a.srep | (uintptr_t)a.y) & 15) == 0,
               "kern_moe_w4a16: x, qrep, srep and y must be 16-byte aligned for the Hopper wgmma path");
  /* with RB down's output tile past the rings (w4ws_kernel) */
  constexpr size_t SMEM = Cfg::kSmem + (RB && MOE == 1 ? Cfg::kOutTile : 0);
  static_assert(SMEM + sizeof(W4MoePiece) * MOE_PLAN_MAX_PIECES + 512 <= kWsSmemMax, "227 KB of shared memory a block at most");
  int occ = 1;
  if (int rc = w4g_prepare<FN>(TH, SMEM, &occ)) return rc; /* (sets its shared memory size) */
  CUtensorMap map;
  if (int rc = ws_tensor_map(&map, a, BT)) return rc;
  CUtensorMap map_w = map; /* (unread with WREG) */
  if (!WREG)
    if (int rc = ws_weight_map(&map_w, a, Cfg::CW, a.n_experts)) return rc;
  /* with RB the persistent grid over an upper bound of the tiles (moe_plan.h): one wave of
   * blocks, each listing the real tiles it takes (w4_moe_list). SERVESIM_W4WS_MOE_RESIDENT=R sizes
   * it for R blocks at once instead of the SMs' (the tests: a few blocks with long lists; 1000000,
   * a block a tile of the bound, as before the persistent grid), SERVESIM_W4WS_MOE_WAVES=W for W
   * times the SMs' (2 was no faster at 1024..4096 tokens, kernels/NOTES.md item 34) */
  static int resident = -1, waves = -1;
  if (resident < 0) resident = kern_env_int_min("SERVESIM_W4WS_MOE_RESIDENT", 0, 0);
  if (waves < 0) waves = kern_env_int_min("SERVESIM_W4WS_MOE_WAVES", 1, 1);
  const int tiles = a.moe_part ? moe_plan_rem_tiles(a.M, a.n_experts) : moe_plan_split_tiles(a.M, a.n_experts, BT, a.moe_hb);
  const long long lin = (long long)tiles * kern_cdiv(a.N, 64 * NWG);
  KERN_REQUIRE(lin < (1LL << 30), "kern_moe_w4a16: %lld tiles is too many for one launch", lin);
  const int blocks = RB ? moe_plan_persistent_blocks((int)lin, resident > 0 ? resident : occ * sms * waves) : (int)lin;
  if (blocks == 0) return 0;
  return kern_launch_ex(FN, dim3((unsigned)blocks), dim3(TH), SMEM, st, 1, map, map, map_w, a);
}

/* One launch of the grouped expert GEMMs in tiles of bt rows (nwg consumer warpgroups, the
 * 64-row tiles' weights through the stages when stg): 32, 48 or 64 rows of 128 columns (two blocks
 * an SM), their weights through the producer's stages (one tensor map over every expert's
 * weights; 4 chunks a loop step where K % 256 == 0, as the taller tiles -- with the loop's shared
 * addresses held in registers, 256..768 tokens 2-12% faster on the H200, kernels/NOTES.md item
 * 36); 96 or 128 rows of 192 columns (three consumer warpgroups, the register hand-over), their
 * weights through each consumer warp's ring; 256 rows of 128 columns (the dense GEMM's
 * 256-row tile: two consumer warpgroups, 4 stages). Measured on the H200 (kernels/NOTES.md item
 * 32): at 256..768 tokens the stages took 2-9% off the same tiles with their weights in
 * registers, 48-row tiles 9% off 64-row ones (512 tokens, weights in registers), and 32-row tiles
 * with the stages 4-9% off the 32-row mma.sync tiles, against which the same tiles with their
 * weights in registers lost; 96-row tiles 9-12% off 128 at 1024 and 1280 tokens (68 and 85 tile
 * rows), with the stages on them 2% less; the stages lost ~1% on the 128-row tiles; items 25 and
 * 31 for the 128-row tiles' columns; item 35 for the 256-row tiles (the split's tall_pct). */
/* ws_moe_run with 4 chunks a loop step where K % 256 == 0 (pieces of whole 4-chunk steps), else 2 */
template <int BT, int MINB, bool RB, int MOE, int NWG = 2, bool WREG = true>
int ws_moe_run_p(const W4Args &a, int sms, cudaStream_t st) {
  return a.K % 256 == 0 ? ws_moe_run<BT, MINB, 4, RB, MOE, NWG, WREG>(a, sms, st) : ws_moe_run<BT, MINB, 2, RB, MOE, NWG, WREG>(a, sms, st);
}

template <int MOE>
int ws_moe_height(const W4Args &a, int bt, int nwg, int stg, int sms, cudaStream_t st) {
  if (bt == 32) return ws_moe_run_p<32, 2, false, MOE, 2, false>(a, sms, st);
  if (bt == 48) return ws_moe_run_p<48, 2, false, MOE, 2, false>(a, sms, st);
  if (bt == 64 && nwg == 2 && stg) return ws_moe_run_p<64, 2, false, MOE, 2, false>(a, sms, st);
  if (bt == 64) return nwg == 3 ? ws_moe_run<64, 1, 2, false, MOE, 3>(a, sms, st) : ws_moe_run<64, 2, 2, false, MOE>(a, sms, st);
  if (bt == 96) return ws_moe_run_p<96, 1, true, MOE, 3>(a, sms, st);
  if (bt == 256) return ws_moe_run_p<256, 1, true, MOE>(a, sms, st);
  if (nwg == 3) return ws_moe_run_p<128, 1, true, MOE, 3>(a, sms, st);
  return ws_moe_run_p<128, 1, true, MOE>(a, sms, st);
}

/* The grouped expert GEMMs in two launches (kernels/NOTES.md item 33): tiles of ha rows, then
 * each expert's remainder of at most hb rows in one tile of hb (moe_plan_expert_tiles), the
 * heights from the expected cost of a random routing of a.M pairs (moe_plan_split: a tile's
 * weight read worth SERVESIM_W4WS_MOE_W rows, default 103, item 32's fit; the second launch
 * SERVESIM_W4WS_MOE_LAUNCH rows, default 900, ~27 us: at 256 the split lost 1-2% at 384, 832,
 * 1152, 1280 and 1728 tokens, item 33; a 256-row tile's rows SERVESIM_W4WS_MOE_TALL percent of
 * the others', default 125, 0: no 256-row tiles unless forced, item 35). The longer tiles go
 * first, and let the second launch in at once, so that the short ones fill the first launch's
 * tail (measured no faster than a second launch after the first, but no slower).
 * SERVESIM_W4WS_MOE_SPLIT=0: one launch, the smallest height that holds the launcher's tile rows
 * (kern_w4a16.cu's w4a16_moe_tile_rows; the rule of item 32). SERVESIM_W4WS_MOE_ROWS = 32, 48, 64,
 * 96, 128 or 256 forces ha, and then one launch unless SERVESIM_W4WS_MOE_ROWS_B forces hb (a height
 * below ha; 0: one launch); SERVESIM_W4WS_MOE_WG = 2 or 3 the columns of the 64- and 128-row tiles
 * (128 or 192; other values: moe_plan_wgmma_tile), SERVESIM_W4WS_MOE_STAGES=0 the 64-row tiles'
 * weights in registers (as before item 32; the 32- and 48-row tiles have no such instance). */
template <int MOE>
int ws_moe_launch(const W4Args &a0, int tile_rows, int sms, cudaStream_t st) {
  static int force = -1, force_b = -2, wg = -1, stg = -1, split = -1, w_rows = -1, launch_rows = -1, tall_pct = -1;
  if (force < 0) force = kern_env_int("SERVESIM_W4WS_MOE_ROWS", 0);
  if (force_b == -2) force_b = kern_env_int("SERVESIM_W4WS_MOE_ROWS_B", -1);
  if (wg < 0) wg = kern_env_int("SERVESIM_W4WS_MOE_WG", 0);
  if (stg < 0) stg = kern_env_int("SERVESIM_W4WS_MOE_STAGES", 1) != 0;
  if (split < 0) split = kern_env_int("SERVESIM_W4WS_MOE_SPLIT", 1) != 0;
  if (w_rows < 0) w_rows = kern_env_int_min("SERVESIM_W4WS_MOE_W", 103, 0);
  if (launch_rows < 0) launch_rows = kern_env_int_min("SERVESIM_W4WS_MOE_LAUNCH", 900, 0);
  if (tall_pct < 0) tall_pct = kern_env_int_min("SERVESIM_W4WS_MOE_TALL", 125, 0);
  W4Args a = a0;
  int nwg = 2, hb = 0, ha;
  if (split) {
    ha = moe_plan_split(a.M, a.n_experts, w_rows, launch_rows, tall_pct, force, moe_plan_is_height(force) && force_b < 0 ? 0 : force_b, &hb);
    moe_plan_wgmma_tile(ha, ha, wg, &nwg);
  } else {
    ha = moe_plan_wgmma_tile(tile_rows, force, wg, &nwg);
  }
  a.moe_ha = ha;
  a.moe_hb = hb;
  a.moe_part = 0;
  if (int rc = ws_moe_height<MOE>(a, ha, nwg, stg, sms, st)) return rc;
  if (hb == 0) return ERR_OK;
  a.moe_part = 1;
  moe_plan_wgmma_tile(hb, hb, wg, &nwg);
  return ws_moe_height<MOE>(a, hb, nwg, stg, sms, st);
}

} // namespace

/* SERVESIM_W4_WGMMA: 2 (default) the warp-specialised kernel, 1 the all-threads kernel, 0 off
 * (the mma.sync tiles); measured in kernels/NOTES.md item 8. */
static int w4a16_wgmma_variant(void) {
  static int env = -1;
  if (env < 0) {
    env = kern_env_int("SERVESIM_W4_WGMMA", 2);
    if (env < 0 || env > 2) env = 2;
  }
  return env;
}

int w4a16_wgmma_available(void) {
  return w4a16_wgmma_variant() && kern_device_cc() == 90; /* sm_90a code runs on 9.0 only */
}

int w4a16_wgmma_moe_launch(const W4Args &a, int tile_rows, int silu, int sms, cudaStream_t st) {
  return silu ? ws_moe_launch<2>(a, tile_rows, sms, st) : ws_moe_launch<1>(a, tile_rows, sms, st);
}

int w4a16_wgmma_launch(const W4Args &a, int sms, const W4Ws &ws, cudaStream_t st) {
  /* SERVESIM_W4_WGMMA_SWAP=1 exchanges the descriptor's two byte offsets (a check of the
   * layout reading on a new device: the validation fails with the wrong one) */
  static int swap = -1;
  if (swap < 0) {
    const char *e = getenv("SERVESIM_W4_WGMMA_SWAP");
    swap = e && *e == '1';
  }
  if (w4a16_wgmma_variant() == 2) {
    const int cfg = ws_cfg();
    if (cfg == 1) /* the fifth session's kernel: weights and scales through the stages at every height */
      return a.M <= 64 ? ws_launch<64, 1, 5, false, 2, false>(a, sms, ws, st) : ws_launch<128, 1, 5, false, 2, false>(a, sms, ws, st);
    /* weights straight into registers; 64 rows: two blocks an SM (96 registers: 2 chunks ahead),
     * more: 128-row tiles, one block an SM, 4 chunks ahead where K allows (kernels/NOTES.md item
     * 10), with a full producer warpgroup handing its registers to the consumers (RB;
     * SERVESIM_W4WS_RB=0: the 288-thread block; kernels/NOTES.md item 12) -- or, where
     * ws_launch_mid's costs say, 64- or 256-row tiles or 128 x 192 ones (with RB only) */
    static int rb = -1;
    if (rb < 0) rb = kern_env_int("SERVESIM_W4WS_RB", 1) != 0;
    if (a.M <= 64) return ws_launch64(a, sms, ws, st);
    if (rb) return a.K % 256 == 0 ? ws_launch_mid<4>(a, sms, ws, st) : ws_launch_mid<2>(a, sms, ws, st);
    return a.K % 256 == 0 ? ws_launch<128, 1, 8, true, 4, false>(a, sms, ws, st) : ws_launch<128, 1, 8, true, 2, false>(a, sms, ws, st);
  }
  /* 4 stages: 6 and 8 measured no faster (H200, kernels/NOTES.md item 8) */
  return a.M <= 64 ? w4g_launch<64, 2, 4>(a, sms, st, swap) : w4g_launch<128, 2, 4>(a, sms, st, swap);
}

} // namespace kern_w4
