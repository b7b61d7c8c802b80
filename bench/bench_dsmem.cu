/* bench_dsmem: what the K-split sum of the Hopper W4A16 wgmma kernel (kern_w4a16_wgmma.cu,
 * w4g_epilogue) costs by each way of moving fp32 partials between the blocks of a thread block
 * cluster. Every block holds F fp32 partials a thread (256 threads: the two consumer warpgroups;
 * F = 32 is a 64-row tile's 32 KB, F = 64 a 128-row tile's 64 KB, F = 128 a 256-row tile's
 * 128 KB) in groups of four; block
 * `rank` of a cluster of S owns groups [rank G / S, (rank + 1) G / S) (G = F / 4) and sums them over
 * the cluster in split order, as the kernel does. The ways:
 *   pull       the kernel's: partials to the block's own shared memory (4-byte stores), cluster
 *              barrier, each owner loads its groups from every peer (4-byte distributed shared
 *              memory loads, a group at a time), cluster barrier (the peers' partials stay alive)
 *   pull_v4    the same with 16-byte stores and loads, every peer's group loaded before the adds
 *   push_v4    cluster barrier (the owners' receive areas are free), each block stores the groups
 *              it does not own straight from registers into their owners' shared memory (16-byte
 *              distributed shared memory stores), cluster barrier, owners sum from local memory
 *   push_bulk  partials to own shared memory, then one thread bulk-copies each owner's groups into
 *              its receive area (cp.async.bulk shared::cluster, completing on the owner's
 *              mbarrier), owners wait on their mbarrier and sum locally: two cluster barriers,
 *              one before the partials are rewritten (the owners are done with the copies)
 *   l2         the groups a block does not own stored to a global workspace (16-byte, L2), cluster
 *              barrier (release / acquire at cluster scope), owners load them (16-byte, L2)
 *   mix_k/8    both paths at once: of every group, warps 0 .. k - 1 move their values as pull_v4
 *              does (distributed shared memory) and warps k .. 7 as l2 does (the global
 *              workspace) -- whether the SM-to-SM network and L2 are separate resources, so that
 *              a split sum could use both (kernels/NOTES.md open lead 3); k = 2, 4, 5, 6
 * Grid: as many clusters as fit at one block an SM (cudaOccupancyMaxActiveClusters), each block
 * repeating the sum R times; time per sum = (time of R + 1 sums - time of 1) / R, and the bytes
 * that cross between SMs, (S - 1) / S of a block's partials, over that time a block and a cycle
 * (SM clock of block 0 by clock64 against the global timer). All ways give bit-identical sums
 * (checked against pull). Usage: bench_dsmem [R] (default 200). Exit 77 without a compute
 * capability 9.0 GPU. */
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/bench_cuda.h"

namespace cg = cooperative_groups;

namespace {

constexpr int kT = 256; /* threads a block: two consumer warpgroups */
enum DsmWay { DSM_PULL, DSM_PULL_V4, DSM_PUSH_V4, DSM_PUSH_BULK, DSM_L2, DSM_MIX2, DSM_MIX4, DSM_MIX5, DSM_MIX6, DSM_WAYS };
const char *const kWayName[DSM_WAYS] = {"pull", "pull_v4", "push_v4", "push_bulk", "l2", "mix_2/8", "mix_4/8", "mix_5/8", "mix_6/8"};
/* the warps of a mixed way that use distributed shared memory (0: not a mixed way) */
__host__ __device__ constexpr int dsm_mix_warps(int w) {
  return w == DSM_MIX2 ? 2 : w == DSM_MIX4 ? 4 : w == DSM_MIX5 ? 5 : w == DSM_MIX6 ? 6 : 0;
}

/* a cluster of s blocks: rank r's groups [lo, hi) of g */
__host__ __device__ inline int dsm_lo(int r, int g, int s) { return r * g / s; }
/* groups a share holds at most */
__host__ __device__ inline int dsm_share_max(int g, int s) { return (g + s - 1) / s; }

/* shared memory of way w: the partials (pull, pull_v4, push_bulk) and the receive areas, one a
 * peer (push_v4, push_bulk; l2 keeps its own share there); 0 if it does not fit */
size_t dsm_smem(int w, int f, int s) {
  const size_t part = (w == DSM_PULL || w == DSM_PULL_V4 || w == DSM_PUSH_BULK || dsm_mix_warps(w)) ? (size_t)f * kT * 4 : 0;
  const size_t recv = (w == DSM_PUSH_V4 || w == DSM_PUSH_BULK || w == DSM_L2) ? (size_t)(s - 1) * dsm_share_max(f / 4, s) * kT * 16 : 0;
  const size_t n = 128 + part + recv; /* the mbarrier first */
  /* at least 120 KB: one block an SM, so that the figures are an SM's */
  return n <= 227 * 1024 ? (n < 120 * 1024 ? 120 * 1024 : n) : 0;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ uint32_t dsm_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
__device__ __forceinline__ uint32_t dsm_mapa(uint32_t a, int rank) {
  uint32_t r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(a), "r"(rank));
  return r;
}
__device__ __forceinline__ void dsm_st4(uint32_t a, float4 v) {
  asm volatile("st.shared::cluster.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(a), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w) : "memory");
}
__device__ __forceinline__ float4 dsm_ld4(uint32_t a) {
  float4 v;
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ void dsm_add(float4 &a, float4 b) { a.x += b.x, a.y += b.y, a.z += b.z, a.w += b.w; }
#endif

/* R sums of F partials a thread; out[block][share group][thread]: the last sum (float4s) */
template <int W, int F>
__global__ void __launch_bounds__(kT, 1) dsm_kernel(int reps, float4 *ws, float4 *out, long long *clk, float *chk) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int G = F / 4;
  extern __shared__ __align__(128) uint8_t dsm_smem_buf[];
  cg::cluster_group cluster = cg::this_cluster();
  const int ct = threadIdx.x, S = (int)cluster.num_blocks(), me = (int)cluster.block_rank();
  const int SH = dsm_share_max(G, S), lo = dsm_lo(me, G, S), hi = dsm_lo(me + 1, G, S);
  const bool has_part = W == DSM_PULL || W == DSM_PULL_V4 || W == DSM_PUSH_BULK || dsm_mix_warps(W);
  uint64_t *bar = reinterpret_cast<uint64_t *>(dsm_smem_buf);
  float *part = reinterpret_cast<float *>(dsm_smem_buf + 128);
  float4 *recv = reinterpret_cast<float4 *>(dsm_smem_buf + 128 + (has_part ? (size_t)F * kT * 4 : 0));
  const size_t cl = blockIdx.x / S; /* the cluster's index */
  if (ct == 0) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(dsm_u32(bar)));
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  float d[F];
#pragma unroll
  for (int i = 0; i < F; i++) d[i] = (float)(((blockIdx.x * 131u + ct * 7u + i * 3u) % 61u)) * 0.25f - 7.f;
  cluster.sync();
  long long c0 = 0, t0 = 0;
  if (blockIdx.x == 0 && ct == 0) {
    c0 = clock64();
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t0));
  }
  float4 v[8];
  float live = 0.f; /* every sum's values added up (so that no sum is dead code) */
  for (int rep = 0; rep < reps; rep++) {
#pragma unroll
    for (int i = 0; i < F; i++) d[i] += 0.5f;
    if constexpr (W == DSM_PULL) {
      __syncthreads();
#pragma unroll
      for (int i = 0; i < F; i++) part[i * kT + ct] = d[i];
      cluster.sync();
      for (int i = lo; i < hi; i++) {
        float s4[4] = {0.f, 0.f, 0.f, 0.f};
        for (int z = 0; z < S; z++) {
          const float *pz = cluster.map_shared_rank(part, z);
#pragma unroll
          for (int e = 0; e < 4; e++) s4[e] += pz[(4 * i + e) * kT + ct];
        }
        live += s4[0] + s4[1] + s4[2] + s4[3];
        if (rep == reps - 1) out[((size_t)blockIdx.x * (G / 2) + i - lo) * kT + ct] = make_float4(s4[0], s4[1], s4[2], s4[3]);
      }
      cluster.sync();
    } else if constexpr (W == DSM_PULL_V4) {
      __syncthreads();
      float4 *p4 = reinterpret_cast<float4 *>(part);
#pragma unroll
      for (int i = 0; i < G; i++) p4[i * kT + ct] = make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]);
      cluster.sync();
      const uint32_t a0 = dsm_u32(p4 + ct);
      for (int i = lo; i < hi; i++) {
#pragma unroll
        for (int z = 0; z < 8; z++)
          if (z < S) v[z] = dsm_ld4(dsm_mapa(a0 + i * kT * 16, z));
        float4 s4 = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int z = 0; z < 8; z++)
          if (z < S) dsm_add(s4, v[z]);
        live += s4.x + s4.y + s4.z + s4.w;
        if (rep == reps - 1) out[((size_t)blockIdx.x * (G / 2) + i - lo) * kT + ct] = s4;
      }
      cluster.sync();
    } else if constexpr (W == DSM_PUSH_V4) {
      cluster.sync(); /* the owners' receive areas are free */
      const uint32_t r0 = dsm_u32(recv + ct);
#pragma unroll
      for (int i = 0; i < G; i++) {
        /* group i's owner r: the largest r with r G / S <= i */
        const int r = (int)(((i + 1) * S - 1) / G);
        if (r == me) continue;
        const int slot = me < r ? me : me - 1;
        dsm_st4(dsm_mapa(r0 + ((slot * SH + i - dsm_lo(r, G, S)) * kT) * 16, r),
                make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]));
      }
      cluster.sync(); /* arrived */
#pragma unroll
      for (int i = 0; i < G; i++) {
        if (i < lo || i >= hi) continue;
        const float4 own = make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]);
        float4 s4 = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int z = 0; z < S; z++) dsm_add(s4, z == me ? own : recv[((z < me ? z : z - 1) * SH + i - lo) * kT + ct]);
        live += s4.x + s4.y + s4.z + s4.w;
        if (rep == reps - 1) out[((size_t)blockIdx.x * (G / 2) + i - lo) * kT + ct] = s4;
      }
    } else if constexpr (W == DSM_PUSH_BULK) {
      float4 *p4 = reinterpret_cast<float4 *>(part);
      /* every owner has waited for the last sum's copies (so they have read part) and summed
       * them: part and recv may be rewritten (the copies complete on the owners' mbarriers, not
       * in a bulk group, so the sender cannot wait for their reads itself) */
      cluster.sync();
#pragma unroll
      for (int i = 0; i < G; i++) p4[i * kT + ct] = make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]);
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
      if (ct == 0)
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(dsm_u32(bar)), "r"((uint32_t)((S - 1) * (hi - lo) * kT * 16))
                     : "memory");
      cluster.sync(); /* partials written, every owner's mbarrier armed, receive areas free */
      if (ct < S && ct != me) {
        const int r = ct, slot = me < r ? me : me - 1, rlo = dsm_lo(r, G, S), rhi = dsm_lo(r + 1, G, S);
        asm volatile(
            "cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                dsm_mapa(dsm_u32(recv + (size_t)slot * SH * kT), r)),
            "r"(dsm_u32(p4 + (size_t)rlo * kT)), "r"((uint32_t)((rhi - rlo) * kT * 16)), "r"(dsm_mapa(dsm_u32(bar), r))
            : "memory");
      }
      uint32_t done = 0;
      while (!done)
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }\n"
                     : "=r"(done)
                     : "r"(dsm_u32(bar)), "r"((uint32_t)(rep & 1))
                     : "memory");
      for (int i = lo; i < hi; i++) {
        float4 s4 = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int z = 0; z < S; z++) dsm_add(s4, z == me ? p4[i * kT + ct] : recv[((z < me ? z : z - 1) * SH + i - lo) * kT + ct]);
        live += s4.x + s4.y + s4.z + s4.w;
        if (rep == reps - 1) out[((size_t)blockIdx.x * (G / 2) + i - lo) * kT + ct] = s4;
      }
    } else if constexpr (dsm_mix_warps(W) > 0) {
      /* this thread's values of every group through one path: the first warps' through the
       * owners' loads from distributed shared memory, the others' through the global workspace
       * (laid out as l2's) */
      const bool via_l2 = (ct >> 5) >= dsm_mix_warps(W);
      float4 *w0 = ws + ((cl * 2 + (rep & 1)) * S) * (size_t)(S - 1) * SH * kT;
      float4 *p4 = reinterpret_cast<float4 *>(part);
      __syncthreads();
#pragma unroll
      for (int i = 0; i < G; i++) {
        const float4 di = make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]);
        const int r = (int)(((i + 1) * S - 1) / G);
        if (via_l2 && r != me) {
          const int slot = me < r ? me : me - 1;
          __stcg(w0 + (((size_t)r * (S - 1) + slot) * SH + i - dsm_lo(r, G, S)) * kT + ct, di);
        } else {
          p4[i * kT + ct] = di;
        }
      }
      cluster.sync();
      const uint32_t a0 = dsm_u32(p4 + ct);
      for (int i = lo; i < hi; i++) {
        float4 s4 = make_float4(0.f, 0.f, 0.f, 0.f);
        if (!via_l2) {
#pragma unroll
          for (int z = 0; z < 8; z++)
            if (z < S) v[z] = dsm_ld4(dsm_mapa(a0 + i * kT * 16, z));
#pragma unroll
          for (int z = 0; z < 8; z++)
            if (z < S) dsm_add(s4, v[z]);
        } else {
#pragma unroll
          for (int z = 0; z < 7; z++)
            if (z < S - 1) v[z] = __ldcg(w0 + (((size_t)me * (S - 1) + z) * SH + i - lo) * kT + ct);
          const float4 own = p4[i * kT + ct];
#pragma unroll
          for (int z = 0; z < 8; z++)
            if (z < S) dsm_add(s4, z == me ? own : z < me ? v[z < 7 ? z : 6] : v[z > 0 ? z - 1 : 0]);
        }
        live += s4.x + s4.y + s4.z + s4.w;
        if (rep == reps - 1) out[((size_t)blockIdx.x * (G / 2) + i - lo) * kT + ct] = s4;
      }
      cluster.sync(); /* the peers' partials stay alive until read */
    } else { /* DSM_L2: workspace [cluster][rep parity][owner][slot][share group][thread] */
      float4 *w0 = ws + ((cl * 2 + (rep & 1)) * S) * (size_t)(S - 1) * SH * kT;
#pragma unroll
      for (int i = 0; i < G; i++) {
        const int r = (int)(((i + 1) * S - 1) / G);
        if (r == me) { /* the own share waits in local shared memory (a runtime loop sums it) */
          recv[(i - lo) * kT + ct] = make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]);
          continue;
        }
        const int slot = me < r ? me : me - 1;
        __stcg(w0 + (((size_t)r * (S - 1) + slot) * SH + i - dsm_lo(r, G, S)) * kT + ct,
               make_float4(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]));
      }
      cluster.sync();
      for (int i = lo; i < hi; i++) {
#pragma unroll
        for (int z = 0; z < 7; z++)
          if (z < S - 1) v[z] = __ldcg(w0 + (((size_t)me * (S - 1) + z) * SH + i - lo) * kT + ct);
        const float4 own = recv[(i - lo) * kT + ct];
        float4 s4 = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int z = 0; z < 8; z++)
          if (z < S) dsm_add(s4, z == me ? own : z < me ? v[z < 7 ? z : 6] : v[z > 0 ? z - 1 : 0]); /* registers: fixed indices */
        live += s4.x + s4.y + s4.z + s4.w;
        if (rep == reps - 1) out[((size_t)blockIdx.x * (G / 2) + i - lo) * kT + ct] = s4;
      }
    }
  }
  chk[blockIdx.x * kT + ct] = live;
  cluster.sync(); /* no block leaves while a peer may still read or write its shared memory */
  if (blockIdx.x == 0 && ct == 0) {
    long long t1;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t1));
    clk[0] = clock64() - c0;
    clk[1] = t1 - t0;
  }
#else
  (void)reps, (void)ws, (void)out, (void)clk, (void)chk;
#endif
}

using DsmFn = void (*)(int, float4 *, float4 *, long long *, float *);

DsmFn dsm_pick(int w, int f) {
#define DSM_CASE(W) \
  case W:           \
    return f == 32 ? dsm_kernel<W, 32> : f == 64 ? dsm_kernel<W, 64> : dsm_kernel<W, 128>;
  switch (w) {
    DSM_CASE(DSM_PULL)
    DSM_CASE(DSM_PULL_V4)
    DSM_CASE(DSM_PUSH_V4)
    DSM_CASE(DSM_PUSH_BULK)
    DSM_CASE(DSM_L2)
    DSM_CASE(DSM_MIX2)
    DSM_CASE(DSM_MIX4)
    DSM_CASE(DSM_MIX5)
    DSM_CASE(DSM_MIX6)
  }
#undef DSM_CASE
  return NULL;
}

/* clusters of s blocks of fn resident at once (0: none) */
int dsm_clusters(DsmFn fn, size_t smem, int s) {
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = (unsigned)s, attr[0].val.clusterDim.y = 1, attr[0].val.clusterDim.z = 1;
  cfg.gridDim = dim3((unsigned)s), cfg.blockDim = dim3(kT), cfg.dynamicSmemBytes = smem;
  cfg.attrs = attr, cfg.numAttrs = 1;
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, fn, &cfg) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

float dsm_run(DsmFn fn, int clusters, int s, size_t smem, int reps, float4 *ws, float4 *out, long long *clk, float *chk, cudaEvent_t a,
              cudaEvent_t b) {
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = (unsigned)s, attr[0].val.clusterDim.y = 1, attr[0].val.clusterDim.z = 1;
  cfg.gridDim = dim3((unsigned)(clusters * s)), cfg.blockDim = dim3(kT), cfg.dynamicSmemBytes = smem;
  cfg.attrs = attr, cfg.numAttrs = 1;
  BENCH_CUDA(cudaEventRecord(a));
  BENCH_CUDA(cudaLaunchKernelEx(&cfg, fn, reps, ws, out, clk, chk));
  BENCH_CUDA(cudaEventRecord(b));
  BENCH_CUDA(cudaEventSynchronize(b));
  float ms = 0;
  BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
  return ms * 1000.f;
}

} // namespace

int main(int argc, char **argv) {
  const int R = argc > 1 ? atoi(argv[1]) : 200;
  if (argc > 2 || R < 1) {
    fprintf(stderr, "usage: bench_dsmem [R]   (R >= 1 sums a block, default 200)\n");
    return 2;
  }
  bench_cuda_need_device("bench_dsmem");
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (prop.major != 9 || prop.minor != 0) {
    fprintf(stderr, "bench_dsmem: needs a compute capability 9.0 GPU\n");
    return 77;
  }
  printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  /* >= clusters x 2 x S x (S - 1) x SH x T float4s: clusters x S <= SMs, (S - 1) SH <= 30 */
  const size_t ws_floats4 = (size_t)prop.multiProcessorCount * 2 * 32 * kT;
  float4 *ws, *out;
  long long *clk;
  float *chk;
  BENCH_CUDA(cudaMalloc(&chk, (size_t)prop.multiProcessorCount * kT * 4));
  BENCH_CUDA(cudaMalloc(&ws, ws_floats4 * 16));
  BENCH_CUDA(cudaMalloc(&out, (size_t)prop.multiProcessorCount * 16 * kT * 16));
  BENCH_CUDA(cudaMallocManaged(&clk, 2 * sizeof(long long)));
  cudaEvent_t a, b;
  BENCH_CUDA(cudaEventCreate(&a));
  BENCH_CUDA(cudaEventCreate(&b));
  std::vector<float4> ref, got;
  printf("\n| KB a block | S | way | clusters | us a sum | crossing KB a block | B a cycle an SM | GB/s all SMs | SM GHz | same as pull |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|\n");
  int bad = 0;
  for (int f : {32, 64, 128}) {
    for (int s = 2; s <= 8; s++) {
      const int G = f / 4;
      for (int w = 0; w < DSM_WAYS; w++) {
        const size_t smem = dsm_smem(w, f, s);
        DsmFn fn = dsm_pick(w, f);
        if (!smem) continue;
        BENCH_CUDA(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        BENCH_CUDA(cudaFuncSetAttribute(fn, cudaFuncAttributeNonPortableClusterSizeAllowed, 0));
        const int clusters = dsm_clusters(fn, smem, s);
        if (clusters < 1) continue;
        BENCH_CUDA(cudaMemset(out, 0, (size_t)prop.multiProcessorCount * 16 * kT * 16));
        dsm_run(fn, clusters, s, smem, 1, ws, out, clk, chk, a, b); /* warm-up */
        float best1 = 1e30f, bestR = 1e30f;
        double ghz = 0;
        for (int k = 0; k < 3; k++) {
          const float t1 = dsm_run(fn, clusters, s, smem, 1, ws, out, clk, chk, a, b);
          const float tR = dsm_run(fn, clusters, s, smem, R + 1, ws, out, clk, chk, a, b);
          best1 = t1 < best1 ? t1 : best1;
          if (tR < bestR) bestR = tR, ghz = (double)clk[0] / (double)clk[1];
        }
        /* the last sum of the R + 1 run, compared with pull's */
        got.resize((size_t)clusters * s * (G / 2) * kT);
        BENCH_CUDA(cudaMemcpy(got.data(), out, got.size() * 16, cudaMemcpyDeviceToHost));
        bool same = true;
        if (w == DSM_PULL) ref = got;
        else same = ref.size() == got.size() && memcmp(ref.data(), got.data(), got.size() * 16) == 0;
        bad += !same;
        const double us = (bestR - best1) / R;
        const double cross_kb = (double)f * kT * 4 * (s - 1) / s / 1024.0;
        const double bpc = cross_kb * 1024.0 / (us * 1e3 * ghz);
        printf("| %d | %d | %s | %d | %.2f | %.1f | %.1f | %.0f | %.2f | %s |\n", f * kT * 4 / 1024, s, kWayName[w], clusters, us, cross_kb,
               bpc, cross_kb * 1024.0 * clusters * s / (us * 1e3), ghz, w == DSM_PULL ? "(ref)" : same ? "yes" : "NO");
      }
    }
  }
  BENCH_CUDA(cudaFree(ws));
  BENCH_CUDA(cudaFree(out));
  BENCH_CUDA(cudaFree(clk));
  BENCH_CUDA(cudaFree(chk));
  if (bad) fprintf(stderr, "bench_dsmem: %d ways gave sums different from pull's\n", bad);
  return bad ? 1 : 0;
}
