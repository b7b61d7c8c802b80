/* kern_w4a16_stream: the W4A16 GEMM for 1..16 rows on Hopper -- decode batches, where the
 * time is reading the int4 weights -- as a producer/consumer stream.
 *
 * A block computes 32 output columns (two n16 tiles of the repacked layout, kernels/ref_w4a16.h)
 * over a range of whole scale groups of K; the K splits of a column tile form one thread block
 * cluster and are summed through distributed shared memory (rank order: deterministic).
 * Warp 4 is the producer: one lane issues bulk asynchronous copies (TMA, cp.async.bulk) of each
 * stage -- 4 k64 chunks of both tiles (2 x 2 KiB, contiguous in the layout) and the stage's
 * group scales (64 B per group) -- into an S-stage shared-memory ring, completing on the
 * stage's "full" mbarrier. Warps 0-3 consume chunk w of every stage: the lane's 16-byte tile
 * word per tile, dequantised in registers to mma A fragments exactly as the mma.sync path does
 * (kern_w4a16.cuh), times the activations (mma B, read from global/L2, the next chunk's
 * prefetched one step ahead), then arrive on the stage's "empty" mbarrier so the producer can
 * refill it. The producer never waits for the previous kernel (the weights are constants); the
 * consumers call the programmatic-dependent-launch wait before the first activation read, and
 * every block triggers the next kernel at its start (SERVESIM_W4_STREAM_TRIGGER=0: after the
 * main loop), so under a CUDA graph with PDL the next GEMM's ring fills during this one.
 * Compiled for sm_80 too, where the kernel is empty and w4a16_stream_available() is 0. */
#include <cooperative_groups.h>
#include <stdlib.h>

#include "kernels/kern_w4a16.cuh"

namespace kern_w4 {
namespace {

constexpr int kChunksPerStage = 4;                    /* one per consumer warp */
constexpr int kStageWBytes = 2 * kChunksPerStage * 512; /* two n16 tiles */
constexpr int kStageSBytes = kChunksPerStage / 2 * 64;  /* two groups x two tiles x 32 B */
constexpr int kMaxSplits = 8;                          /* portable cluster size */

/* 2S mbarriers (8 bytes each), padded to 128 bytes, then the ring */
template <int S>
constexpr int w4s_head() { return (16 * S + 127) / 128 * 128; }
template <int S>
constexpr size_t w4s_smem() {
  return w4s_head<S>() + (size_t)S * (kStageWBytes + kStageSBytes);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
static __device__ __forceinline__ uint32_t w4s_addr(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}
static __device__ __forceinline__ void w4s_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
}
static __device__ __forceinline__ void w4s_bulk(uint32_t dst, const void *src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}
#endif

/* grid (N / 32 column tiles, 1, splits); 160 threads; cluster (1, 1, splits) when splits > 1. */
template <int MT, int S, bool PS>
__global__ void __launch_bounds__(160) w4s_kernel(W4Args a, int trigger_early) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) unsigned char w4s_smem_buf[];
  uint64_t *bars = reinterpret_cast<uint64_t *>(w4s_smem_buf); /* full[S], empty[S] */
  unsigned char *wring = w4s_smem_buf + w4s_head<S>();
  unsigned char *sring = wring + (size_t)S * kStageWBytes;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int K = a.K, N = a.N, KC = K / 64, NT16 = N / 16, G = K / 128;
  const int nt_base = blockIdx.x * 2, ntv = min(2, NT16 - nt_base);
  const int splits = gridDim.z, z = blockIdx.z;
  /* this block's k64 chunks: whole groups, so a stage's scales are whole 64-byte runs */
  const int c_begin = 2 * (int)((int64_t)z * G / splits), c_end = 2 * (int)((int64_t)(z + 1) * G / splits);
  const int n_stages = (c_end - c_begin + kChunksPerStage - 1) / kChunksPerStage;
  if (trigger_early) kern_pdl_trigger();

  if (threadIdx.x == 0) {
    for (int s = 0; s < S; s++) {
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(w4s_addr(bars + s)) : "memory");
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 4;\n" ::"r"(w4s_addr(bars + S + s)) : "memory");
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  float acc[2][MT][4];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < MT; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) acc[i][j][r] = 0.f;

  if (warp == 4) {
    /* Producer: stage i holds chunks c_begin + 4i .. +3 of both tiles, and their groups. */
    if (lane == 0) {
      for (int i = 0; i < n_stages; i++) {
        const int s = i % S;
        if (i >= S) w4s_wait(w4s_addr(bars + S + s), ((i / S) - 1) & 1);
        const int c0 = c_begin + i * kChunksPerStage, nch = min(kChunksPerStage, c_end - c0);
        const uint32_t wbytes = (uint32_t)(ntv * nch * 512), sbytes = (uint32_t)(nch / 2 * ntv * 32);
        const uint32_t full = w4s_addr(bars + s);
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(full), "r"(wbytes + sbytes)
                     : "memory");
        for (int tl = 0; tl < ntv; tl++)
          w4s_bulk(w4s_addr(wring + (size_t)s * kStageWBytes + tl * (kChunksPerStage * 512)),
                   a.qrep + ((size_t)(nt_base + tl) * KC + c0) * 32, (uint32_t)(nch * 512), full);
        for (int gi = 0; gi < nch / 2; gi++)
          w4s_bulk(w4s_addr(sring + (size_t)s * kStageSBytes + gi * 64),
                   a.srep + ((size_t)((c0 >> 1) + gi) * NT16 + nt_base) * 8, (uint32_t)(ntv * 32), full);
      }
    }
    kern_pdl_wait(); /* this warp writes outputs in the cluster sum below */
  } else {
    /* Consumers: warp w takes chunk w of each stage. */
    const uint16_t *xrow[MT];
    bool rvalid[MT];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
      const int r = mt * 8 + g;
      rvalid[mt] = r < a.M;
      xrow[mt] = a.x + (size_t)(rvalid[mt] ? r : 0) * K + 16 * t;
    }
    kern_pdl_wait(); /* the activations are the previous kernel's output */
    uint4 xv[MT][2], xn[MT][2];
    auto load_x = [&](int c, uint4 (&dst)[MT][2]) {
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
        if (c < c_end && rvalid[mt]) {
          const uint4 *p = reinterpret_cast<const uint4 *>(xrow[mt] + (size_t)c * 64);
          dst[mt][0] = __ldg(p);
          dst[mt][1] = __ldg(p + 1);
        } else {
          dst[mt][0] = dst[mt][1] = make_uint4(0, 0, 0, 0);
        }
      }
    };
    load_x(c_begin + warp, xv);
    for (int i = 0; i < n_stages; i++) {
      const int s = i % S, c = c_begin + i * kChunksPerStage + warp;
      load_x(c + kChunksPerStage, xn);
      w4s_wait(w4s_addr(bars + s), (i / S) & 1);
      if (c < c_end) {
        const unsigned char *ws = wring + (size_t)s * kStageWBytes + warp * 512;
        const uint32_t *ss = reinterpret_cast<const uint32_t *>(sring + (size_t)s * kStageSBytes + (warp >> 1) * 64);
        const uint4 wq[2] = {reinterpret_cast<const uint4 *>(ws)[lane],
                             reinterpret_cast<const uint4 *>(ws + kChunksPerStage * 512)[lane]};
        const uint32_t sc[2] = {ss[g], ss[8 + g]};
        w4_chunk<2, MT, PS>(acc, wq, sc, xv);
      }
      __syncwarp();
      if (lane == 0) asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(w4s_addr(bars + S + s)) : "memory");
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
        xv[mt][0] = xn[mt][0];
        xv[mt][1] = xn[mt][1];
      }
    }
  }
  if (!trigger_early) kern_pdl_trigger();

  /* Sum the four consumer warps (the ring is drained: every copy was waited for), in warp
   * order, into warp 0; then the splits, in rank order, through the cluster. */
  constexpr int FR4 = 2 * MT * 32; /* float4 per warp partial */
  float4 *red = reinterpret_cast<float4 *>(wring);
  static_assert(4 * FR4 * 16 <= S * kStageWBytes, "the ring holds the partials");
  __syncthreads();
  if (warp >= 1 && warp < 4) {
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
      for (int j = 0; j < MT; j++)
        red[(warp - 1) * FR4 + (i * MT + j) * 32 + lane] = make_float4(acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]);
  }
  __syncthreads();
  float4 *part = red + 3 * FR4; /* the block's partial, read by the cluster */
  if (warp == 0) {
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
      for (int j = 0; j < MT; j++) {
        float4 v = make_float4(acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]);
        for (int w = 0; w < 3; w++) {
          const float4 u = red[w * FR4 + (i * MT + j) * 32 + lane];
          v.x += u.x; v.y += u.y; v.z += u.z; v.w += u.w;
        }
        if (splits == 1) {
          if (i < ntv) w4_store_frag<false>(a.y, N, a.M, j * 8 + 2 * t, nt_base + i, g, v.x, v.y, v.z, v.w);
        } else {
          part[(i * MT + j) * 32 + lane] = v;
        }
      }
  }
  if (splits == 1) return;
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  const int rank = (int)cluster.block_rank();
  const int lo = rank * FR4 / splits, hi = (rank + 1) * FR4 / splits;
  for (int e = lo + (int)threadIdx.x; e < hi; e += (int)blockDim.x) {
    float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int zz = 0; zz < splits; zz++) {
      const float4 v = *cluster.map_shared_rank(part + e, zz);
      sum.x += v.x; sum.y += v.y; sum.z += v.z; sum.w += v.w;
    }
    const int f = e >> 5, j = f % MT, i = f / MT, ln = e & 31;
    if (i < ntv) w4_store_frag<false>(a.y, N, a.M, j * 8 + 2 * (ln & 3), nt_base + i, ln >> 2, sum.x, sum.y, sum.z, sum.w);
  }
  cluster.sync();
#else
  (void)a;
  (void)trigger_early;
#endif
}

int w4s_env(const char *name, int dflt) {
  const char *e = getenv(name);
  return e && *e ? atoi(e) : dflt;
}

template <int MT, int S, bool PS>
int w4s_launch(const W4Args &a, cudaStream_t st) {
  static int attr_set[64];
  int dev = 0;
  KERN_CUDA(cudaGetDevice(&dev));
  if (dev >= 0 && dev < 64 && !attr_set[dev]) {
    KERN_CUDA(cudaFuncSetAttribute(w4s_kernel<MT, S, PS>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)w4s_smem<S>()));
    attr_set[dev] = 1;
  }
  /* K splits: enough blocks for SERVESIM_W4_STREAM_BPS (default 2) per SM, at most 8 (one
   * cluster) and at most one per scale group. */
  static int bps = -1, early = -1;
  if (bps < 0) bps = w4s_env("SERVESIM_W4_STREAM_BPS", 2);
  if (early < 0) early = w4s_env("SERVESIM_W4_STREAM_TRIGGER", 0) != 0;
  const int tiles = kern_cdiv(a.N, 32), G = a.K / 128;
  int sms = 132;
  KERN_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int64_t target = (int64_t)(bps > 0 ? bps : 2) * sms;
  int splits = (int)((target + tiles - 1) / tiles);
  splits = splits > kMaxSplits ? kMaxSplits : splits;
  splits = splits > G ? G : splits;
  splits = splits < 1 ? 1 : splits;
  return kern_launch_ex(w4s_kernel<MT, S, PS>, dim3(tiles, 1, splits), dim3(160), w4s_smem<S>(), st, splits, a, early);
}

} // namespace

int w4a16_stream_available(void) {
  static int env = -1, on[64]; /* per device: 0 unknown, 1 no, 2 yes */
  if (env < 0) env = w4s_env("SERVESIM_W4_STREAM", 1);
  if (!env) return 0;
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 0;
  if (!on[dev]) {
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) major = 0;
    on[dev] = major >= 9 ? 2 : 1;
  }
  return on[dev] == 2;
}

int w4a16_stream_launch(const W4Args &a, cudaStream_t st) {
  static int stages = -1, ps = -1;
  if (stages < 0) stages = w4s_env("SERVESIM_W4_STREAM_STAGES", 8);
  if (ps < 0) ps = w4s_env("SERVESIM_W4_POSTSCALE", 1) != 0;
  if (a.M <= 8) {
    if (stages <= 8) return ps ? w4s_launch<1, 8, true>(a, st) : w4s_launch<1, 8, false>(a, st);
    return ps ? w4s_launch<1, 16, true>(a, st) : w4s_launch<1, 16, false>(a, st);
  }
  if (stages <= 8) return ps ? w4s_launch<2, 8, true>(a, st) : w4s_launch<2, 8, false>(a, st);
  return ps ? w4s_launch<2, 16, true>(a, st) : w4s_launch<2, 16, false>(a, st);
}

} // namespace kern_w4
