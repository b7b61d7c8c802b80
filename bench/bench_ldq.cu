/* bench_ldq: how long one L2 hit takes on an SM whose other warps have just issued their share
 * of a streaming weight read -- the preload W4A16 kernel's position after its dependency wait,
 * where its activations' L2 round trip costs ~0.15 us a chunk (kernels/NOTES.md item 26, whose
 * open question is why a load issued then is slow).
 *
 * A one-wave grid of B blocks an SM (the preload kernel's configuration 2 has B = 5 blocks of 4
 * warps). A block is 4 loader warps and one probe warp. Each loader warp issues U 16-byte loads
 * a lane of its own 512-byte pieces of a weight buffer (copies rotated so that together they
 * exceed twice the L2: HBM reads); then the block's barrier; then the probe warp's lane 0 walks
 * a chain of H dependent 4-byte loads through a 64 KB ring of 128-byte lines that a kernel just
 * before read (L2 hits; ld.global.cg never allocates in L1), reading the SM clock after each
 * load's value is used. The probe is a warp of its own so that its loads share no scoreboard
 * with the weights' (a warp's scoreboards are its own). Modes:
 *   0  no weight loads: an L2 hit's latency on an idle SM
 *   1  the chain right after the loaders issued their loads, which are in flight
 *   2  the chain after the loaders folded their weights into a register (they have landed)
 *   3  as 1, the weight loads not allocated in L1 (ld.global.nc.L1::no_allocate, the library's)
 *   4  as 0, each hop a 16-byte bulk copy into shared memory (cp.async.bulk, the TMA unit,
 *      completing on an mbarrier) and a shared load of its first word
 *   5  as 4, the weights in flight as in 3
 *   6  as 0, each hop a 16-byte cp.async (LDGSTS) into shared memory, waited for, and a shared load
 *   7  as 6, the weights in flight as in 3
 *   8, 9, 10  as 3, 5, 7, the probe warp's lanes issuing U weight loads of their own just before
 *      the chain (the preload kernel's warps wait behind their own weight loads)
 * Prints, for each U (4, 8, 16), B (1, 3, 5) and mode, the p50 over blocks of the SM cycles of
 * hops 0, 1, 2, 4, 8 and 15 and of the mean hop, and loader warp 0's cycles from its first load
 * until its weights are in (p50). Each configuration runs 6 times (a weight copy each); the last is printed.
 * Usage: bench_ldq [H] (hops, 17..100000, default 64). Exit 77 without a compute capability 9.x
 * GPU. Not a test: results go to bench/RESULTS.md. */
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/bench_cuda.h"
#include "kernels/kern_w4a16.cuh"

namespace {

constexpr int kWarps = 4;           /* warps a block */
constexpr int kRingLines = 512;     /* 64 KB of 128-byte lines */
constexpr uint32_t kMagic = 0x12345678u; /* never the fold of the weights' fill (0x5a bytes) */

/* a weight load: the library's (kern_w4a16.cuh w4_ldg_stream) or __ldg's, in volatile asm so
 * that it stays before the block's barrier */
__device__ __forceinline__ uint4 ldq_ld16(const uint4 *p, bool no_l1) {
  if (no_l1) return kern_w4::w4_ldg_stream(p);
  uint4 v;
  asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
__device__ __forceinline__ uint32_t ldq_ld4_cg(const uint32_t *p) {
  uint32_t v;
  asm volatile("ld.global.cg.u32 %0, [%1];\n" : "=r"(v) : "l"(p));
  return v;
}
/* modes 4, 5: 16 bytes at p into dst by the TMA unit, waited for on bar (phase *ph, flipped) */
__device__ __forceinline__ uint32_t ldq_ld4_bulk(const uint32_t *p, uint32_t dst, uint32_t bar, uint32_t *ph) {
  uint32_t v = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 /* (the bench runs on 9.x only) */
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "mbarrier.arrive.expect_tx.shared::cta.b64 _, [%2], 16;\n"
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%1], [%3], 16, [%2];\n"
      "LDQ_WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%2], %4;\n"
      "@!p bra LDQ_WAIT_%=;\n"
      "ld.shared.u32 %0, [%1];\n"
      "}\n"
      : "=r"(v)
      : "r"(dst), "r"(bar), "l"(p), "r"(*ph)
      : "memory");
#else
  (void)p, (void)dst, (void)bar;
#endif
  *ph ^= 1u;
  return v;
}
/* modes 6, 7: 16 bytes at p into dst by cp.async, waited for */
__device__ __forceinline__ uint32_t ldq_ld4_cpasync(const uint32_t *p, uint32_t dst) {
  uint32_t v;
  asm volatile(
      "cp.async.cg.shared.global [%1], [%2], 16;\n"
      "cp.async.commit_group;\n"
      "cp.async.wait_group 0;\n"
      "ld.shared.u32 %0, [%1];\n"
      : "=r"(v)
      : "r"(dst), "l"(p)
      : "memory");
  return v;
}

constexpr int kRec = 16; /* hops whose cycles are kept one by one */

/* out[block]: [0 .. kRec - 1] the cycles of hops 0 .. kRec - 1, [kRec] hops 0 .. H - 2, [kRec + 1]
 * loader warp 0's cycles from before its loads to after the barrier and its fold (modes 1, 3: the
 * weights landed) */
template <int U>
__global__ void __launch_bounds__(32 * (kWarps + 1)) ldq_kernel(const uint4 *w, const uint32_t *ring, int hops,
                                                              int mode, long long *out, uint32_t *sink) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  long long *o = out + (size_t)blockIdx.x * (kRec + 2);
  uint32_t acc = 0;
  uint4 wq[U];
  const bool loader = warp < kWarps;
  const bool weights = mode == 1 || mode == 2 || mode == 3 || mode == 5 || mode >= 7, no_l1 = weights && mode != 1 && mode != 2;
  __shared__ __align__(16) uint32_t pbuf[4];
  __shared__ __align__(8) uint64_t pbar;
  const uint32_t pdst = (uint32_t)__cvta_generic_to_shared(pbuf), pbar_at = (uint32_t)__cvta_generic_to_shared(&pbar);
  if (threadIdx.x == 32 * kWarps) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(pbar_at));
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
  }
  const long long t0 = clock64();
  const bool own = mode >= 8; /* the probe warp loads weights too */
  if ((loader || own) && weights) {
    /* (the probes' weights past the loaders') */
    const int gw = loader ? blockIdx.x * kWarps + warp : gridDim.x * kWarps + blockIdx.x;
#pragma unroll
    for (int u = 0; u < U; u++) wq[u] = ldq_ld16(w + ((size_t)gw * U + u) * 32 + lane, no_l1);
    if (mode == 2) {
#pragma unroll
      for (int u = 0; u < U; u++) acc ^= wq[u].x ^ wq[u].y ^ wq[u].z ^ wq[u].w;
    }
  }
  __syncthreads(); /* the loaders' weights in flight (modes 1, 3) or landed (mode 2) */
  if (loader) {
    if (weights && mode != 2) {
#pragma unroll
      for (int u = 0; u < U; u++) acc ^= wq[u].x ^ wq[u].y ^ wq[u].z ^ wq[u].w;
    }
    if (warp == 0 && lane == 0) o[kRec + 1] = clock64() - t0;
  } else if (lane == 0) {
    /* Each load's address is the load before's value, so a load issues when the one before has
     * landed, and the clock read after it (ptxas puts it right after the issue, or after the
     * value's use) steps by one hop's latency: hop k's cycles are the step from the clock after
     * load k to the clock after load k + 1. */
    uint32_t idx = (uint32_t)(blockIdx.x * 7 % kRingLines) * 32;
    long long prev = 0, first = 0;
    uint32_t ph = 0;
    for (int h = 0; h < hops; h++) {
      if (mode == 4 || mode == 5 || mode == 9) idx = ldq_ld4_bulk(ring + idx, pdst, pbar_at, &ph);
      else if (mode == 6 || mode == 7 || mode == 10) idx = ldq_ld4_cpasync(ring + idx, pdst);
      else idx = ldq_ld4_cg(ring + idx);
      const long long now = clock64();
      if (h == 0) first = now;
      else if (h - 1 < kRec) o[h - 1] = now - prev;
      prev = now;
    }
    o[kRec] = prev - first; /* hops - 1 hops */
    acc = idx;
    if (own) {
#pragma unroll
      for (int u = 0; u < U; u++) acc ^= wq[u].x ^ wq[u].y ^ wq[u].z ^ wq[u].w;
    }
  }
  if (acc == kMagic) sink[0] = acc; /* (never: keeps the loads) */
}

/* every word of the ring read once (into L2 before each timed kernel) */
__global__ void ldq_touch(const uint32_t *ring, uint32_t *sink) {
  uint32_t s = 0;
  for (int i = threadIdx.x; i < kRingLines * 32; i += blockDim.x) s += ring[i];
  if (s == kMagic) sink[1] = s;
}

template <int U>
void ldq_run(int blocks_per_sm, int mode, int hops, const cudaDeviceProp &prop, const uint4 *w, size_t w_copy_warps,
             int copies, const uint32_t *ring, long long *d_out, uint32_t *d_sink, cudaStream_t st) {
  const int blocks = prop.multiProcessorCount * blocks_per_sm;
  if ((size_t)blocks * (kWarps + 1) * U > w_copy_warps) {
    fprintf(stderr, "bench_ldq: %d blocks x %d warps x %d loads exceed a weight copy\n", blocks, kWarps + 1, U);
    exit(1);
  }
  int occ = 0;
  BENCH_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, ldq_kernel<U>, 32 * (kWarps + 1), 0));
  if (occ < blocks_per_sm) {
    printf("| %d | %d | %d | (%d blocks an SM fit) | | | | | | | |\n", U, blocks_per_sm, mode, occ);
    return;
  }
  std::vector<long long> h((size_t)blocks * (kRec + 2));
  for (int r = 0; r < 6; r++) {
    const uint4 *wc = w + (size_t)(r % copies) * w_copy_warps * 32;
    ldq_touch<<<1, 1024, 0, st>>>(ring, d_sink);
    ldq_kernel<U><<<blocks, 32 * (kWarps + 1), 0, st>>>(wc, ring, hops, mode, d_out, d_sink);
    BENCH_CUDA(cudaGetLastError());
  }
  BENCH_CUDA(cudaStreamSynchronize(st));
  BENCH_CUDA(cudaMemcpy(h.data(), d_out, h.size() * sizeof(long long), cudaMemcpyDeviceToHost));
  auto col = [&](int k, double div) {
    std::vector<double> v;
    for (int b = 0; b < blocks; b++) v.push_back((double)h[(size_t)b * (kRec + 2) + k] / div);
    return bench_pct(v, 50);
  };
  printf("| %d | %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", U, blocks_per_sm, mode, col(0, 1),
         col(1, 1), col(2, 1), col(4, 1), col(8, 1), col(15, 1), col(kRec, hops - 1), col(kRec + 1, 1));
}

} // namespace

int main(int argc, char **argv) {
  const int hops = argc > 1 ? atoi(argv[1]) : 64;
  if (argc > 2 || hops < kRec + 1 || hops > 100000) {
    fprintf(stderr, "usage: bench_ldq [H]   (hops, %d..100000, default 64)\n", kRec + 1);
    return 2;
  }
  bench_cuda_need_device("bench_ldq");
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (prop.major != 9) {
    fprintf(stderr, "bench_ldq: measures the Hopper preload kernel's setting; compute capability 9.x only (this is %d.%d)\n",
            prop.major, prop.minor);
    return 77;
  }
  cudaStream_t st;
  BENCH_CUDA(cudaStreamCreate(&st));
  /* weights: one copy holds 16 loads a warp for 5 blocks of 4 loader warps and a probe warp on
   * every SM */
  const size_t w_copy_warps = (size_t)prop.multiProcessorCount * 5 * (kWarps + 1) * 16;
  const size_t copy_bytes = w_copy_warps * 512;
  const int copies = bench_copies(copy_bytes, (size_t)prop.l2CacheSize);
  uint4 *w;
  BENCH_CUDA(cudaMalloc(&w, copy_bytes * copies));
  BENCH_CUDA(cudaMemset(w, 0x5a, copy_bytes * copies));
  /* the ring: one cycle through every line in a fixed shuffled order; a line's words all hold the
   * word index of the next line's start */
  std::vector<uint32_t> hr((size_t)kRingLines * 32, 0);
  std::vector<int> perm(kRingLines);
  for (int i = 0; i < kRingLines; i++) perm[i] = i;
  uint32_t rng = 12345u;
  for (int i = kRingLines - 1; i > 0; i--) {
    rng = rng * 1664525u + 1013904223u;
    std::swap(perm[i], perm[(int)((rng >> 8) % (uint32_t)(i + 1))]);
  }
  for (int k = 0; k < kRingLines; k++) hr[(size_t)perm[k] * 32] = (uint32_t)perm[(k + 1) % kRingLines] * 32;
  /* every line's other words point along too, so a chain may start at any word of a line */
  for (int l = 0; l < kRingLines; l++)
    for (int j = 1; j < 32; j++) hr[(size_t)l * 32 + j] = hr[(size_t)l * 32];
  uint32_t *ring, *sink;
  long long *d_out;
  BENCH_CUDA(cudaMalloc(&ring, hr.size() * 4));
  BENCH_CUDA(cudaMemcpy(ring, hr.data(), hr.size() * 4, cudaMemcpyHostToDevice));
  BENCH_CUDA(cudaMalloc(&sink, 8));
  BENCH_CUDA(cudaMalloc(&d_out, (size_t)prop.multiProcessorCount * 5 * (kRec + 2) * sizeof(long long)));
  printf("device: %s, %d SMs, L2 %d MB; %d hops a chain; weight copies: %d of %.1f MB\n", prop.name,
         prop.multiProcessorCount, prop.l2CacheSize >> 20, hops, copies, copy_bytes / 1e6);
  printf("modes: 0 no weight loads, 1 the chain while the loader warps' loads are in flight, 2 after they landed, 3 as 1 "
         "with L1::no_allocate; 4, 5 as 0, 3 with hops by bulk copy (TMA); 6, 7 as 0, 3 with hops by cp.async; 8, 9, 10 as 3, 5, 7 with "
         "the probe's own weight loads before its chain; SM cycles, p50 over blocks\n\n");
  printf("| U | blocks an SM | mode | hop 0 | hop 1 | hop 2 | hop 4 | hop 8 | hop 15 | mean hop | loader 0: first load -> "
         "weights in |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int b : {1, 3, 5})
    for (int mode = 0; mode < 11; mode++) {
      ldq_run<4>(b, mode, hops, prop, w, w_copy_warps, copies, ring, d_out, sink, st);
      ldq_run<8>(b, mode, hops, prop, w, w_copy_warps, copies, ring, d_out, sink, st);
      ldq_run<16>(b, mode, hops, prop, w, w_copy_warps, copies, ring, d_out, sink, st);
    }
  BENCH_CUDA(cudaFree(w));
  BENCH_CUDA(cudaFree(ring));
  BENCH_CUDA(cudaFree(sink));
  BENCH_CUDA(cudaFree(d_out));
  BENCH_CUDA(cudaStreamDestroy(st));
  return 0;
}
