/* bench_mma_rate: what bounds the mma.sync W4A16 kernels' chunk on Hopper, with no global
 * memory in the loop. One block an SM on every SM, ITER rounds, each block's cycles by clock64,
 * the median block. Three tables:
 *  1. mma.sync m16n8k16 (bf16, fp32 sums) alone: W warps a block, each C independent accumulator
 *     chains; cycles an mma a sub-partition and bf16 FMA a cycle an SM (the dense wgmma peak is
 *     2048). The preload kernel (kernels/kern_w4a16_preload.cu) issues one a k16 step and 8 rows:
 *     at M = 1 seven of its eight columns are padding.
 *  2. The preload kernel's chunk without its loads (mr_deq_kernel): the dequantisation of one
 *     16-byte weight piece a lane into four k16 steps' A fragments and their four mmas, in ways
 *     that leave out or replace parts (V below), so that each part's cost shows: cycles a chunk a
 *     warp, per sub-partition.
 *  3. wgmma m64n8k16 and m64n16k16 with A from registers (what a warpgroup would issue for 64
 *     weight rows at 1..8 and 9..16 rows): G warpgroups a block, four a chunk into one of two
 *     accumulator sets (commit, wait_group 1); cycles a wgmma an SM.
 * Every launch asks for 120 KB of dynamic shared memory, so that no SM holds two blocks.
 * kernels/NOTES.md item 28 reads it (the chunk is bound by the INT pipe's lop3 and shifts).
 * Usage: bench_mma_rate [ITER] (even, default 4096). Exit 77 without a compute capability 9.0
 * GPU, 2 on a bad argument. */
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/bench_cuda.h"
#include "kernels/kern_w4a16.cuh"

namespace {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MR_SM90A 1
/* d [4 fp32] += A (64 x 16, registers) x B (16 x 8, shared memory) */
__device__ __forceinline__ void mr_wgmma_n8(float (&d)[4], const uint32_t (&a)[4], uint64_t db) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {%0, %1, %2, %3}, {%4, %5, %6, %7}, %8, 1, 1, "
               "1, 0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
/* d [8 fp32] += A (64 x 16, registers) x B (16 x 16, shared memory) */
__device__ __forceinline__ void mr_wgmma_n16(float (&d)[8], const uint32_t (&a)[4], uint64_t db) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, "
               "%11}, %12, 1, 1, 1, 0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
#endif

/* A block's end: thread 0 stores its cycles in out[block]; sink keeps the C chains' sums live */
template <int C>
__device__ __forceinline__ void mr_finish(const float (&d)[C][4], long long cycles, long long *out, float *sink) {
  float s = 0.f;
#pragma unroll
  for (int c = 0; c < C; c++) s += d[c][0] + d[c][1] + d[c][2] + d[c][3];
  if (s == 12345.f) sink[threadIdx.x] = s;
  if (threadIdx.x == 0) out[blockIdx.x] = cycles;
}

/* out[block] = SM cycles of iters rounds of C mma.sync a warp; sink keeps the sums live */
template <int C>
__global__ void mr_mma_kernel(int iters, long long *out, float *sink) {
  const int lane = threadIdx.x & 31;
  const uint32_t a[4] = {0x3f003f00u ^ (uint32_t)lane, 0x3f103f10u, 0x3f203f20u ^ (uint32_t)threadIdx.x, 0x3f303f30u};
  const uint32_t b0 = 0x3e803e80u ^ (uint32_t)lane, b1 = 0x3e903e90u;
  float d[C][4];
#pragma unroll
  for (int c = 0; c < C; c++)
#pragma unroll
    for (int r = 0; r < 4; r++) d[c][r] = 0.f;
  __syncthreads();
  const long long t0 = clock64();
  for (int i = 0; i < iters; i++)
#pragma unroll
    for (int c = 0; c < C; c++) kern_mma_bf16(d[c], a, b0, b1);
  __syncthreads();
  mr_finish(d, clock64() - t0, out, sink);
}

/* out[block] = SM cycles of iters chunks of four m64nNk16 a warpgroup */
template <int N>
__global__ void mr_wgmma_kernel(int iters, long long *out, float *sink) {
#ifdef MR_SM90A
  __shared__ __align__(1024) uint8_t b_tile[N * 128];
  for (int i = threadIdx.x; i < N * 32; i += blockDim.x)
    reinterpret_cast<uint32_t *>(b_tile)[i] = 0x3f003f00u | ((uint32_t)(i * 2654435761u) & 0x007f007fu);
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  const int lane = threadIdx.x & 31;
  const uint32_t a[4] = {0x3f003f00u ^ (uint32_t)lane, 0x3f103f10u, 0x3f203f20u ^ (uint32_t)threadIdx.x, 0x3f303f30u};
  const uint64_t db = kern_w4::w4_desc_sw128(b_tile);
  float d0[N / 2], d1[N / 2];
#pragma unroll
  for (int i = 0; i < N / 2; i++) d0[i] = d1[i] = 0.f;
  auto chunk = [&](float (&d)[N / 2]) {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int s = 0; s < 4; s++) {
      const uint64_t dbs = db + (uint64_t)((32 * s) >> 4); /* k16 step s: 32 bytes further */
      if constexpr (N == 8) mr_wgmma_n8(d, a, dbs);
      else mr_wgmma_n16(d, a, dbs);
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
  };
  __syncthreads();
  const long long t0 = clock64();
  for (int i = 0; i < iters; i += 2) {
    chunk(d0);
    chunk(d1);
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  __syncthreads();
  const long long t1 = clock64();
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < N / 2; i++) s += d0[i] + d1[i];
  if (s == 12345.f) sink[threadIdx.x] = s;
  if (threadIdx.x == 0) out[blockIdx.x] = t1 - t0;
#else
  (void)iters; (void)sink;
  if (threadIdx.x == 0) out[blockIdx.x] = -1; /* no sm_90a code ran (e.g. PTX JIT): no figure */
#endif
}

/* The preload kernel's chunk without its global loads: one 16-byte piece of int4 weights a lane
 * (read from shared memory each round, LDS.128: neither the INT nor the FMA pipe), four k16 steps
 * of four A registers, one mma each into NACC chains. V:
 *   0 shifts + lop3 + bf16 subtraction (q - 8: the library's w4_unscaled_piece)
 *   1 shifts + lop3 (128 + q, no subtraction: w4_raw_reg)
 *   2 as 1, the right shifts as IMAD.HI by an opaque power of two (the FMA pipe)
 *   3 the mmas alone (the four words as one A quad every step)
 *   4 the shifts alone (no lop3)
 *   5 as 1 with two more mmas a chunk (the words as one A quad), each in a chain of its own
 *   6 as 1 with the shifts by 8 and 12 as byte permutes (of x and x >> 4)
 *   7 as 1 without the mmas (the registers xor-folded into the sums: 8 more lop3 and 4 FADD) */
template <int V, int NACC>
__global__ void mr_deq_kernel(int iters, long long *out, float *sink, uint32_t m4, uint32_t m8, uint32_t m12) {
  const int lane = threadIdx.x & 31;
  __shared__ uint4 wsh[1024];
  wsh[threadIdx.x] =
      make_uint4(0x12345678u ^ (uint32_t)lane, 0x9abcdef0u, 0x0f1e2d3cu, 0x4b5a6978u ^ (uint32_t)threadIdx.x);
  const unsigned wv = (unsigned)__cvta_generic_to_shared(wsh + threadIdx.x);
  const uint32_t b0 = 0x3e803e80u ^ (uint32_t)lane, b1 = 0x3e903e90u;
  float d[NACC][4], e[2][4]; /* e: V = 5's two extra chains */
#pragma unroll
  for (int c = 0; c < NACC; c++)
#pragma unroll
    for (int r = 0; r < 4; r++) d[c][r] = 0.f;
#pragma unroll
  for (int r = 0; r < 4; r++) e[0][r] = e[1][r] = 0.f;
  __syncthreads();
  const long long t0 = clock64();
  for (int i = 0; i < iters; i++) {
    uint4 p; /* one 16-byte shared-memory read a lane each round (LDS.128, no bank conflict: 4 cycles an SM) */
    asm volatile("ld.volatile.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(p.x), "=r"(p.y), "=r"(p.z), "=r"(p.w)
                 : "r"(wv));
#pragma unroll
    for (int s = 0; s < 4; s++) {
      uint32_t af[4];
#pragma unroll
      for (int r = 0; r < 4; r++) {
        /* w4g_piece_word(s, r) and w4g_piece_shift(s, r) spelled out: with the calls ptxas
         * unrolls this loop twice, which the figures in bench/RESULTS.md were not measured with */
        const int wi = 2 * (s & 1) + (r >> 1), sh = 8 * (s >> 1) + 4 * (r & 1);
        const uint32_t x = wi == 0 ? p.x : wi == 1 ? p.y : wi == 2 ? p.z : p.w;
        uint32_t xs = x;
        if constexpr (V == 2) xs = sh == 0 ? x : __umulhi(x, sh == 4 ? m4 : sh == 8 ? m8 : m12);
        else if constexpr (V == 6) /* bytes 1..3 down by a byte permute instead of the shifts by 8 */
          xs = sh == 0 ? x : sh == 4 ? x >> 4 : sh == 8 ? __byte_perm(x, 0, 0x3321) : __byte_perm(x >> 4, 0, 0x3321);
        else xs = sh ? x >> sh : x;
        if constexpr (V == 0) af[r] = kern_w4::w4_unscaled_reg(xs);
        else if constexpr (V == 3) af[r] = r == 0 ? p.x : r == 1 ? p.y : r == 2 ? p.z : p.w; /* one quad, no moves */
        else if constexpr (V == 4) af[r] = xs;
        else af[r] = kern_w4::w4_raw_reg(xs);
      }
      if constexpr (V == 7) { /* no mma: the registers folded into the sums */
        d[s % NACC][0] += __uint_as_float((af[0] ^ af[1] ^ af[2] ^ af[3]) & 0x3f7fffffu);
      } else {
        kern_mma_bf16(d[s % NACC], af, b0, b1);
      }
    }
    if constexpr (V == 5) { /* two more mmas, the words as A (one quad, no moves), chains of their own */
      const uint32_t aq[4] = {p.x, p.y, p.z, p.w};
      kern_mma_bf16(e[0], aq, 0x43004300u, 0x43004300u);
      kern_mma_bf16(e[1], aq, 0x43004300u, 0x43004300u);
    }
  }
  __syncthreads();
  const long long cycles = clock64() - t0;
  if (V == 5) d[0][0] += e[0][0] + e[0][1] + e[0][2] + e[0][3] + e[1][0] + e[1][1] + e[1][2] + e[1][3];
  mr_finish(d, cycles, out, sink);
}

/* Dynamic shared memory every launch asks for, so that no SM holds two blocks (an SM has 228 KB) */
constexpr int kOneBlockSmem = 120 * 1024;

template <typename F>
void mr_one_block(F *fn) {
  BENCH_CUDA(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, kOneBlockSmem));
}

/* the median block's cycles of launch() (run twice: a warm-up, then the timed one), each block's
 * count in d_out[block] */
template <typename L>
double mr_time(L launch, int sms, long long *d_out) {
  launch();
  launch();
  BENCH_CUDA(cudaGetLastError());
  BENCH_CUDA(cudaDeviceSynchronize());
  std::vector<long long> c((size_t)sms);
  BENCH_CUDA(cudaMemcpy(c.data(), d_out, sizeof(long long) * (size_t)sms, cudaMemcpyDeviceToHost));
  std::vector<double> v(c.begin(), c.end());
  return bench_pct(v, 50);
}

/* mr_deq_kernel<V, NACC> (multipliers 2^28, 2^24, 2^20: x >> 4, 8, 12 as IMAD.HI) */
template <int V, int NACC>
void mr_deq_row(int warps, int sms, int iters, long long *d_out, float *d_sink) {
  static const char *const names[8] = {"shifts, lop3, subtraction", "shifts, lop3", "IMAD.HI, lop3", "mma only",
                                       "shifts only (no lop3)", "shifts, lop3, 2 more mma",
                                       "shift by 4, byte permutes, lop3", "shifts, lop3, no mma"};
  mr_one_block(mr_deq_kernel<V, NACC>);
  const double cyc = mr_time(
      [&] {
        mr_deq_kernel<V, NACC>
            <<<sms, 32 * warps, kOneBlockSmem>>>(iters, d_out, d_sink, 1u << 28, 1u << 24, 1u << 20);
      },
      sms, d_out);
  const double per_sp = (double)warps * iters / 4.0; /* chunks a sub-partition */
  const int mmas = V == 5 ? 6 : V == 7 ? 0 : 4;   /* a chunk */
  printf("| %s | %d warps, %d chain%s | %.1f |", names[V], warps, NACC, NACC > 1 ? "s" : "", cyc / per_sp);
  if (mmas) printf(" %.0f |\n", 4.0 * per_sp * mmas * 2048.0 / cyc);
  else printf(" - |\n");
}

/* mr_deq_row for each way V..., NACC chains, in that order */
template <int NACC, int... V>
void mr_deq_rows(int warps, int sms, int iters, long long *d_out, float *d_sink) {
  (mr_deq_row<V, NACC>(warps, sms, iters, d_out, d_sink), ...);
}

template <int C>
void mr_mma_row(int warps, int sms, int iters, long long *d_out, float *d_sink) {
  mr_one_block(mr_mma_kernel<C>);
  const double cyc =
      mr_time([&] { mr_mma_kernel<C><<<sms, 32 * warps, kOneBlockSmem>>>(iters, d_out, d_sink); }, sms, d_out);
  const double per_sp = (double)warps * C * iters / 4.0; /* mma.sync a sub-partition */
  printf("| %d warps x %d chain%s | %.2f | %.0f |\n", warps, C, C > 1 ? "s" : "", cyc / per_sp,
         4.0 * per_sp * 2048.0 / cyc);
}

template <int N>
void mr_wgmma_row(int groups, int sms, int iters, long long *d_out, float *d_sink) {
  mr_one_block(mr_wgmma_kernel<N>);
  const double cyc =
      mr_time([&] { mr_wgmma_kernel<N><<<sms, 128 * groups, kOneBlockSmem>>>(iters, d_out, d_sink); }, sms, d_out);
  if (cyc < 0) { /* the kernel's sm_90a code did not run */
    printf("| m64n%dk16 | %d | n/a | n/a |\n", N, groups);
    return;
  }
  const double per_sm = (double)groups * 4.0 * iters; /* wgmma an SM */
  printf("| m64n%dk16 | %d | %.2f | %.0f |\n", N, groups, cyc / per_sm, per_sm * 64.0 * N * 16.0 / cyc);
}

} // namespace

int main(int argc, char **argv) {
  int iters = 4096;
  if (argc > 2) {
    fprintf(stderr, "usage: bench_mma_rate [ITER]\n");
    return 2;
  }
  if (argc == 2) {
    char *end = nullptr;
    const long v = strtol(argv[1], &end, 10);
    if (!end || *end || v < 2 || v > (1 << 24) || v % 2) {
      fprintf(stderr, "bench_mma_rate: ITER %s: want an even number 2..16777216\n", argv[1]);
      return 2;
    }
    iters = (int)v;
  }
  bench_cuda_need_device("bench_mma_rate");
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (prop.major != 9 || prop.minor != 0) {
    fprintf(stderr, "bench_mma_rate: %s is compute capability %d.%d, not 9.0 (skipped)\n", prop.name, prop.major,
            prop.minor);
    return 77;
  }
  const int sms = prop.multiProcessorCount;
  long long *d_out = nullptr;
  float *d_sink = nullptr;
  BENCH_CUDA(cudaMalloc(&d_out, sizeof(long long) * (size_t)sms));
  BENCH_CUDA(cudaMalloc(&d_sink, sizeof(float) * 1024));
  printf("device: %s, %d SMs; %d rounds; one block an SM, the median block\n\n", prop.name, sms, iters);
  printf("mma.sync m16n8k16 alone\n\n| block | cycles an mma a sub-partition | bf16 FMA a cycle an SM |\n"
         "|---|---|---|\n");
  for (int w : {4, 8, 16, 20, 32}) {
    mr_mma_row<1>(w, sms, iters, d_out, d_sink);
    mr_mma_row<2>(w, sms, iters, d_out, d_sink);
    mr_mma_row<4>(w, sms, iters, d_out, d_sink);
  }
  printf("\nthe preload kernel's chunk (four mma.sync on one dequantised 16-byte piece a lane)\n\n"
         "| way | block | cycles a chunk a warp, a sub-partition | bf16 FMA a cycle an SM |\n|---|---|---|---|\n");
  for (int w : {8, 16, 20, 32}) { /* every way in one chain, the mma-bound ones in four too */
    mr_deq_rows<1, 0, 1, 2, 3, 4, 5, 6, 7>(w, sms, iters, d_out, d_sink);
    mr_deq_rows<4, 0, 1, 3, 4, 5>(w, sms, iters, d_out, d_sink);
  }
  printf("\nwgmma with A from registers\n\n| shape | warpgroups | cycles a wgmma an SM | bf16 FMA a cycle an SM |\n"
         "|---|---|---|---|\n");
  for (int g : {1, 2, 4}) {
    mr_wgmma_row<8>(g, sms, iters, d_out, d_sink);
    mr_wgmma_row<16>(g, sms, iters, d_out, d_sink);
  }
  cudaFree(d_out);
  cudaFree(d_sink);
  return 0;
}
