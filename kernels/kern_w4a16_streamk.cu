/* kern_w4a16_streamk: the W4A16 GEMM for 1..16 rows on Hopper, split stream-K, with each
 * block's whole weight share in flight before it waits for the previous kernel.
 *
 * The work is U = (N / 16) * (K / 64) units, one unit = one k64 chunk of one n16 tile, numbered
 * in the repacked layout's memory order (kernels/ref_w4a16.h: tile by tile, chunk by chunk, 512
 * bytes each), and block b of a one-wave grid takes the contiguous units [lo(b), lo(b + 1))
 * (kernels/streamk_plan.h, with a column block = one n16 tile), so every SM streams the same
 * bytes and a block's share is one contiguous run of memory.
 *
 * Why this shape (kernels/NOTES.md, item 6): a per-block timeline of the split-K kernel showed
 * qkv's 288 equal blocks on 132 SMs finishing 1.6x apart; a register stream-K kernel fixed the
 * balance but kept only 4 chunks in flight per warp and was slower (qkv M=1 15.1 against 11.8
 * us); and a kernel that only reads the weights reaches ~1.0x the floor only when it issues all
 * its loads before the programmatic-dependent-launch wait, so that they overlap the previous
 * kernel. So here:
 *  1. Before the wait (weights are constants): lane 0 of each warp issues bulk asynchronous
 *     copies (TMA, cp.async.bulk) of the warp's part of the block's run into shared memory, in
 *     pieces of PU units, each completing on its own mbarrier; every thread issues cp.async
 *     copies of the block's group scales; then the block lets the next kernel be scheduled.
 *  2. After the wait: the block copies all M activation rows into shared memory (cp.async, one
 *     round trip); warp w walks its units in order (at most two n16 tiles, the host sees to
 *     it), waiting for each piece as it reaches it; dequantisation and mma are the split-K
 *     kernel's (w4_chunk). A first version read the activations from L2 per unit, two units
 *     ahead: every step then waited for L2 (qkv M=1 21.7 us on the H100). Where the rows do
 *     not fit beside the weights (large M x K), the split-K kernel runs instead.
 *  3. Partials: each warp leaves one per tile it touched in shared memory; warp j sums tile j's
 *     in warp order; a tile wholly inside the block is stored, a tile split between blocks goes
 *     through the split-K workspace: each block writes its slot, the last to arrive sums the
 *     slots in slot order and stores (deterministic, no float atomics, nobody waits) and resets
 *     the tile's counter.
 * Compiled for sm_80 too, where the kernel is empty and w4a16_streamk_launch() never launches
 * it. SERVESIM_W4_STREAMK=0 sends these GEMMs to the split-K kernel. */
#include <stdlib.h>

#include "kernels/kern_w4a16.cuh"
#include "kernels/streamk_plan.h"

namespace kern_w4 {
namespace {

constexpr int kSkW = 8;         /* warps per block */
constexpr int kSkPieces = 16;   /* most pieces (mbarriers) per warp */
constexpr int kSkBarBytes = kSkW * kSkPieces * 8;

/* Dynamic shared memory: mbarriers, the warps' tile partials [W][2][MT * 32] float4, the
 * activations [M][K + 8] bf16 (the 16-byte pad makes a warp's fragment reads conflict-free),
 * the block's group scales [slots][8] uint32, its weight run [units][32] uint4. */
template <int MT>
constexpr size_t sk_red_bytes() { return (size_t)kSkW * 2 * MT * 32 * 16; }
static size_t sk_x_bytes(int M, int K) { return (size_t)M * (2 * (size_t)K + 16); }
static size_t sk_smem(int MT, int M, int K, int max_units) {
  const size_t red = (size_t)kSkW * 2 * MT * 32 * 16, slots = (size_t)max_units / 2 + 2;
  return kSkBarBytes + red + sk_x_bytes(M, K) + slots * 32 + (size_t)max_units * 512;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
static __device__ __forceinline__ uint32_t sk_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
static __device__ __forceinline__ void sk_wait(uint32_t bar) {
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar)
        : "memory");
}
#endif

/* grid (B); 256 threads; U = (N / 16) * KC units; maxc: workspace slots per tile; pu: units
 * per piece. */
template <int MT, int S>
__global__ void __launch_bounds__(256, 2) w4sk_kernel(W4Args a, int U, int maxc, int pu, int trigger_early) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int W = kSkW, FR = MT * 32; /* float4 per tile partial */
  extern __shared__ __align__(128) unsigned char sk_buf[];
  uint64_t *bars = reinterpret_cast<uint64_t *>(sk_buf);
  float4 *red = reinterpret_cast<float4 *>(sk_buf + kSkBarBytes);
  const int xst = a.K + 8; /* activation row stride in shared memory, elements */
  uint16_t *xs = reinterpret_cast<uint16_t *>(sk_buf + kSkBarBytes + sk_red_bytes<MT>());
  uint32_t *ssc = reinterpret_cast<uint32_t *>(sk_buf + kSkBarBytes + sk_red_bytes<MT>() + (size_t)a.M * xst * 2);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int K = a.K, N = a.N, KC = K / 64, NT16 = N / 16, B = gridDim.x, b = blockIdx.x;
  const int lo = (int)streamk_plan_lo(b, U, B), hi = (int)streamk_plan_lo(b + 1, U, B), n = hi - lo;
  const int nslots = ((hi - 1) >> 1) - (lo >> 1) + 1;
  const uint4 *sw = reinterpret_cast<const uint4 *>(ssc + (size_t)((n / 2 + 2) * 8)); /* [n][32] */
  const int wa = lo + warp * n / W, wb = lo + (warp + 1) * n / W;

  /* 1. Everything that does not depend on the previous kernel. */
  if (threadIdx.x == 0) {
    for (int i = 0; i < W * kSkPieces; i++)
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(sk_addr(bars + i)) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (lane == 0)
    for (int p = 0, u = wa; u < wb; p++, u += pu) {
      const uint32_t bytes = (uint32_t)((wb - u < pu ? wb - u : pu) * 512), bar = sk_addr(bars + warp * kSkPieces + p);
      asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
      asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                       sk_addr(sw + (size_t)(u - lo) * 32)),
                   "l"(a.qrep + (size_t)u * 32), "r"(bytes), "r"(bar)
                   : "memory");
    }
  for (int i = threadIdx.x; i < nslots; i += blockDim.x) {
    const int G = (lo >> 1) + i, tile = G / (KC / 2), grp = G - tile * (KC / 2); /* unit u's group: u / 2 */
    const uint32_t *src = a.srep + ((size_t)grp * NT16 + tile) * 8;
    w4_cp16(ssc + i * 8, src);
    w4_cp16(ssc + i * 8 + 4, src + 4);
  }
  w4_commit();
  if (trigger_early) kern_pdl_trigger();

  /* 2. The activations are the previous kernel's output: all M rows into shared memory at
   * once (one round trip; read from L2 per unit they put that latency in every step, and a
   * tile's activations would be read once per tile rather than once per block). */
  kern_pdl_wait();
  {
    const int per_row = K / 8; /* 16-byte pieces */
    for (int i = threadIdx.x; i < a.M * per_row; i += blockDim.x) {
      const int r = i / per_row, k8 = i - r * per_row;
      w4_cp16(xs + (size_t)r * xst + 8 * k8, a.x + (size_t)r * K + 8 * k8);
    }
    w4_commit();
  }
  const uint16_t *xrow[MT];
  bool rvalid[MT];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
    const int r = mt * 8 + g;
    rvalid[mt] = r < a.M;
    xrow[mt] = xs + (size_t)(rvalid[mt] ? r : 0) * xst + 16 * t;
  }
  float acc[1][MT][4];
#pragma unroll
  for (int j = 0; j < MT; j++)
#pragma unroll
    for (int r = 0; r < 4; r++) acc[0][j][r] = 0.f;
  int c = wa % KC, seg = 0;
  int piece = 0, piece_end = wa; /* units [.., piece_end) have arrived */
  w4_wait<0>();
  __syncthreads(); /* the scales and activations */
  for (int u0 = wa; u0 < wb; u0 += S) {
#pragma unroll
    for (int s = 0; s < S; s++) {
      const int u = u0 + s;
      if (u < wb) {
        if (u == piece_end) {
          sk_wait(sk_addr(bars + warp * kSkPieces + piece));
          piece++;
          piece_end = wa + piece * pu < wb ? wa + piece * pu : wb;
        }
        if (c == 0 && u != wa) { /* a new tile: leave the last one's partial */
#pragma unroll
          for (int j = 0; j < MT; j++) {
            red[(warp * 2 + seg) * FR + j * 32 + lane] = make_float4(acc[0][j][0], acc[0][j][1], acc[0][j][2], acc[0][j][3]);
#pragma unroll
            for (int r = 0; r < 4; r++) acc[0][j][r] = 0.f;
          }
          seg = 1;
        }
        uint4 xv[MT][2];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
          if (rvalid[mt]) {
            const uint4 *p = reinterpret_cast<const uint4 *>(xrow[mt] + (size_t)c * 64);
            xv[mt][0] = p[0];
            xv[mt][1] = p[1];
          } else {
            xv[mt][0] = xv[mt][1] = make_uint4(0, 0, 0, 0);
          }
        }
        const uint4 wq[1] = {sw[(size_t)(u - lo) * 32 + lane]};
        const uint32_t sc[1] = {ssc[((u >> 1) - (lo >> 1)) * 8 + g]};
        w4_chunk<1, MT>(acc, wq, sc, xv);
        c = c + 1 == KC ? 0 : c + 1;
      }
    }
  }
  if (wa < wb)
#pragma unroll
    for (int j = 0; j < MT; j++)
      red[(warp * 2 + seg) * FR + j * 32 + lane] = make_float4(acc[0][j][0], acc[0][j][1], acc[0][j][2], acc[0][j][3]);
  if (!trigger_early) kern_pdl_trigger();
  __syncthreads();

  /* 3. Tile j of the block (tiles lo / KC .. (hi - 1) / KC) to warp j % W: its partials in
   * warp order, then stored, or summed with the other blocks' through the workspace. */
  const int t_first = lo / KC, t_last = (hi - 1) / KC;
  for (int tl = t_first + warp; tl <= t_last; tl += W) {
    float4 v[MT];
#pragma unroll
    for (int j = 0; j < MT; j++) v[j] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int w = 0; w < W; w++) {
      const int a0 = lo + w * n / W, b0 = lo + (w + 1) * n / W;
      if (a0 >= b0) continue;
      const int s0 = a0 / KC, s1 = (b0 - 1) / KC; /* warp w's tiles: s0 (slot 0) and s1 (slot 1) */
      if (tl != s0 && tl != s1) continue;
      const int slot = tl == s0 ? 0 : 1;
#pragma unroll
      for (int j = 0; j < MT; j++) {
        const float4 p = red[(w * 2 + slot) * FR + j * 32 + lane];
        v[j].x += p.x; v[j].y += p.y; v[j].z += p.z; v[j].w += p.w;
      }
    }
    if (tl * KC < lo || (tl + 1) * KC > hi) { /* split between blocks */
      int nb, slot;
      streamk_plan_share(tl, KC, U, B, b, &nb, &slot);
      float4 *part = reinterpret_cast<float4 *>(a.ws_part) + (size_t)tl * maxc * FR;
#pragma unroll
      for (int j = 0; j < MT; j++) __stcg(part + (size_t)slot * FR + j * 32 + lane, v[j]);
      __threadfence();
      __syncwarp();
      int last = 0;
      if (lane == 0) last = atomicAdd(a.ws_cnt + tl, 1) == nb - 1;
      if (!__shfl_sync(0xffffffffu, last, 0)) continue;
      __threadfence();
#pragma unroll
      for (int j = 0; j < MT; j++) {
        float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int z = 0; z < nb; z++) {
          const float4 p = __ldcg(part + (size_t)z * FR + j * 32 + lane);
          sum.x += p.x; sum.y += p.y; sum.z += p.z; sum.w += p.w;
        }
        v[j] = sum;
      }
      if (lane == 0) a.ws_cnt[tl] = 0;
    }
#pragma unroll
    for (int j = 0; j < MT; j++) w4_store_frag<false>(a.y, N, a.M, j * 8 + 2 * t, tl, g, v[j].x, v[j].y, v[j].z, v[j].w);
  }
#else
  (void)a; (void)U; (void)maxc; (void)pu; (void)trigger_early;
#endif
}

struct SkDev {
  int ready;      /* 0: not looked up on this device */
  int ok;         /* sm_90 code present and the device is 9.x */
  int smem_max;   /* opt-in shared memory per block */
};

/* Whether this device runs the kernel (compute capability 9.x and code built for it), and its
 * shared-memory limit (set on the functions once per device). */
template <int MT, int S>
int sk_prepare(SkDev *d) {
  if (!d->ready) {
    int dev = 0;
    KERN_CUDA(cudaGetDevice(&dev));
    KERN_CUDA(cudaDeviceGetAttribute(&d->smem_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    cudaFuncAttributes fa;
    KERN_CUDA(cudaFuncGetAttributes(&fa, w4sk_kernel<MT, S>));
    d->ok = kern_device_cc() >= 90 && fa.binaryVersion >= 90;
    if (d->ok)
      KERN_CUDA(cudaFuncSetAttribute(w4sk_kernel<MT, S>, cudaFuncAttributeMaxDynamicSharedMemorySize, d->smem_max));
    d->ready = 1;
  }
  return ERR_OK;
}

int sk_env(const char *name, int dflt) {
  const char *e = getenv(name);
  return e && *e ? atoi(e) : dflt;
}

template <int MT, int S>
int sk_launch(const W4Args &a0, int32_t *counters, int n_counters, float *part, size_t part_floats, int sms,
              cudaStream_t st, int *launched) {
  static SkDev devs[64];
  int dev = 0;
  KERN_CUDA(cudaGetDevice(&dev));
  SkDev *d = devs + (dev >= 0 && dev < 64 ? dev : 63);
  if (int rc = sk_prepare<MT, S>(d)) return rc;
  if (!d->ok) return ERR_OK;
  static int bps = -1, early = -1;
  if (bps < 0) bps = sk_env("SERVESIM_W4_STREAMK_BPS", 1);
  if (early < 0) early = sk_env("SERVESIM_W4_STREAMK_TRIGGER", 1) != 0;
  const int64_t NT16 = a0.N / 16, KC = a0.K / 64, U = NT16 * KC;
  if (U > (1 << 30)) return ERR_OK;
  const int64_t B = (int64_t)sms * (bps >= 1 ? bps : 1) < U ? (int64_t)sms * (bps >= 1 ? bps : 1) : U;
  const int max_units = (int)((U + B - 1) / B);
  /* each warp's run may touch at most two tiles: (units a warp + 1) <= KC + 2 covers it */
  const int per_warp = (max_units + kSkW - 1) / kSkW;
  if (per_warp > KC + 1) return ERR_OK;
  const size_t smem = sk_smem(MT, a0.M, (int)a0.K, max_units);
  if (smem > (size_t)d->smem_max) return ERR_OK;
  /* slots per tile: the same few shapes come back every layer, so keep the last answer */
  static thread_local int64_t memo_t = -1, memo_kc = -1, memo_b = -1;
  static thread_local int memo_maxc = 0;
  if (NT16 != memo_t || KC != memo_kc || B != memo_b) {
    memo_maxc = streamk_plan_max_split(NT16, KC, B);
    memo_t = NT16; memo_kc = KC; memo_b = B;
  }
  const int maxc = memo_maxc;
  if (maxc < 1 || NT16 > n_counters || (size_t)NT16 * maxc * MT * 32 * 4 > part_floats) return ERR_OK;
  int pu = (per_warp + kSkPieces - 1) / kSkPieces;
  pu = pu < 2 ? 2 : pu;
  W4Args a = a0;
  a.ws_cnt = counters;
  a.ws_part = part;
  *launched = 1;
  return kern_launch_pdl(w4sk_kernel<MT, S>, dim3((unsigned)B), dim3(32 * kSkW), smem, st, a, (int)U, maxc, pu, early);
}

} // namespace

int w4a16_streamk_on(void) {
  static int env = -1;
  if (env < 0) env = sk_env("SERVESIM_W4_STREAMK", 0) != 0;
  return env;
}

int w4a16_streamk_launch(const W4Args &a, int32_t *counters, int n_counters, float *part, size_t part_floats,
                         int sms, cudaStream_t st, int *launched) {
  *launched = 0;
  if (a.M < 1 || a.M > 16 || !counters || !part) return ERR_OK;
  return a.M <= 8 ? sk_launch<1, 4>(a, counters, n_counters, part, part_floats, sms, st, launched)
                  : sk_launch<2, 2>(a, counters, n_counters, part, part_floats, sms, st, launched);
}

} // namespace kern_w4
