/* kern_w4a16_streamk: the W4A16 GEMM for 1..16 rows split stream-K (kernels/streamk_plan.h):
 * one wave of B blocks, each an equal contiguous run of (32-column block, k64 chunk) units, so
 * that every SM streams the same weight bytes. Why: a per-block timeline of the split-K kernel
 * (kernels/NOTES.md, item 6) showed qkv's 288 equal blocks on 132 SMs finishing 1.6x apart,
 * the SMs with three blocks setting the time.
 *
 * Inside a block, the run is walked column block by column block ("segments"); the 4 warps
 * split a segment's chunks (warp w takes chunks w, w + 4, ...) with the register pipeline of
 * the split-K kernel (4 chunks of loads in flight per warp) and the same dequantisation and
 * mma (w4_chunk). A segment that is a whole column block is stored by its block; a partial one
 * goes to its slot of the workspace, and the last of the column block's blocks to arrive sums
 * the slots in slot order and stores -- deterministic, no float atomics, and no block waits
 * for another (the counter is reset for the next call by the block that sums).
 * Off by default until measured on a GPU (SERVESIM_W4_STREAMK=1 turns it on; the ctest
 * gpu_kern_w4a16_streamk runs the GEMM tests with it). */
#include <stdlib.h>

#include "kernels/kern_w4a16.cuh"
#include "kernels/streamk_plan.h"

namespace kern_w4 {
namespace {

constexpr int kSkNT = 2, kSkWK = 4, kSkS = 4; /* n16 tiles per warp, warps, chunks in flight per warp */
/* Blocks per SM the register budget must allow (MT = 2 took 166 registers unbounded: 3 a SM,
 * fewer than the default 4 a SM the grid asks for, which would make a second wave). */
constexpr int kSkMinBlocks = 4;

/* grid (B); 128 threads; U = CB * KC units; maxc: workspace slots per column block. */
template <int MT>
__global__ void __launch_bounds__(128, kSkMinBlocks) w4sk_kernel(W4Args a, int64_t U, int maxc) {
  constexpr int NT = kSkNT, WK = kSkWK, S = kSkS;
  constexpr int TILE4 = NT * MT * 32; /* float4 per block partial */
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, kw = warp;
  const int K = a.K, N = a.N, KC = K / 64, NT16 = N / 16;
  const int64_t B = gridDim.x, b = blockIdx.x;
  const int64_t u_end = streamk_plan_lo(b + 1, U, B);
  const uint4 *qrep = a.qrep;
  const uint32_t *srep = a.srep;
  const uint16_t *xrow[MT];
  bool rvalid[MT];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
    const int r = mt * 8 + g;
    rvalid[mt] = r < a.M;
    xrow[mt] = a.x + (size_t)(rvalid[mt] ? r : 0) * K + 16 * t;
  }
  __shared__ float4 red[WK - 1][TILE4];
  __shared__ int s_last;
  bool waited = false;

  for (int64_t u = streamk_plan_lo(b, U, B); u < u_end;) {
    int cb, c_lo, c_hi;
    const int64_t u_next = streamk_plan_segment(u, u_end, KC, &cb, &c_lo, &c_hi);
    const int nt0 = cb * NT;
    float acc[NT][MT][4];
#pragma unroll
    for (int i = 0; i < NT; i++)
#pragma unroll
      for (int j = 0; j < MT; j++)
#pragma unroll
        for (int r = 0; r < 4; r++) acc[i][j][r] = 0.f;

    for (int base = c_lo + kw; base < c_hi; base += WK * S) {
      uint4 wq[S][NT], xv[S][MT][2];
      uint32_t sc[S][NT];
#pragma unroll
      for (int s = 0; s < S; s++) {
        const int c = base + s * WK;
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
          const bool ok = c < c_hi && nt0 + nt < NT16;
          wq[s][nt] = ok ? __ldg(qrep + ((size_t)(nt0 + nt) * KC + c) * 32 + lane) : make_uint4(0, 0, 0, 0);
          sc[s][nt] = ok ? __ldg(srep + ((size_t)(c >> 1) * NT16 + nt0 + nt) * 8 + g) : 0u;
        }
      }
      if (!waited) { /* the first weight loads are in flight: now the activations */
        kern_pdl_wait();
        waited = true;
      }
#pragma unroll
      for (int s = 0; s < S; s++) {
        const int c = base + s * WK;
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
          if (c < c_hi && rvalid[mt]) {
            const uint4 *p = reinterpret_cast<const uint4 *>(xrow[mt] + (size_t)c * 64);
            xv[s][mt][0] = __ldg(p);
            xv[s][mt][1] = __ldg(p + 1);
          } else {
            xv[s][mt][0] = xv[s][mt][1] = make_uint4(0, 0, 0, 0);
          }
        }
      }
#pragma unroll
      for (int s = 0; s < S; s++) {
        if (base + s * WK >= c_hi) break;
        w4_chunk<NT, MT>(acc, wq[s], sc[s], xv[s]);
      }
    }
    if (!waited) { /* a warp without chunks so far: before any write */
      kern_pdl_wait();
      waited = true;
    }
    /* the last segment's loads are done: let the next kernel start on its weights */
    if (u_next >= u_end) kern_pdl_trigger();

    /* The 4 warps' sums, in warp order, into warp 0 (the barrier before also keeps the last
     * segment's readers of red ahead of this segment's writers). */
    __syncthreads();
    if (kw > 0) {
#pragma unroll
      for (int i = 0; i < NT; i++)
#pragma unroll
        for (int j = 0; j < MT; j++)
          red[kw - 1][(i * MT + j) * 32 + lane] = make_float4(acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]);
    }
    __syncthreads();
    if (kw == 0) {
#pragma unroll
      for (int i = 0; i < NT; i++)
#pragma unroll
        for (int j = 0; j < MT; j++)
          for (int w = 0; w < WK - 1; w++) {
            const float4 v = red[w][(i * MT + j) * 32 + lane];
            acc[i][j][0] += v.x; acc[i][j][1] += v.y; acc[i][j][2] += v.z; acc[i][j][3] += v.w;
          }
    }

    bool store = c_lo == 0 && c_hi == KC; /* the whole column block is this block's */
    if (!store) {
      int n, slot;
      streamk_plan_share(cb, KC, U, B, b, &n, &slot);
      float4 *part = reinterpret_cast<float4 *>(a.ws_part) + (size_t)cb * maxc * TILE4;
      if (kw == 0) {
#pragma unroll
        for (int i = 0; i < NT; i++)
#pragma unroll
          for (int j = 0; j < MT; j++)
            __stcg(part + (size_t)slot * TILE4 + (i * MT + j) * 32 + lane,
                   make_float4(acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]));
      }
      __threadfence();
      __syncthreads();
      if (threadIdx.x == 0) s_last = atomicAdd(a.ws_cnt + cb, 1) == n - 1;
      __syncthreads();
      store = s_last;
      if (store) {
        __threadfence();
        if (kw == 0) {
#pragma unroll
          for (int i = 0; i < NT; i++)
#pragma unroll
            for (int j = 0; j < MT; j++) {
              float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
              for (int z = 0; z < n; z++) {
                const float4 v = __ldcg(part + (size_t)z * TILE4 + (i * MT + j) * 32 + lane);
                sum.x += v.x; sum.y += v.y; sum.z += v.z; sum.w += v.w;
              }
              acc[i][j][0] = sum.x; acc[i][j][1] = sum.y; acc[i][j][2] = sum.z; acc[i][j][3] = sum.w;
            }
        }
        if (threadIdx.x == 0) a.ws_cnt[cb] = 0;
      }
    }
    if (store && kw == 0) {
#pragma unroll
      for (int i = 0; i < NT; i++)
        if (nt0 + i < NT16)
#pragma unroll
          for (int j = 0; j < MT; j++)
            w4_store_frag<false>(a.y, N, a.M, j * 8 + 2 * t, nt0 + i, g, acc[i][j][0], acc[i][j][1], acc[i][j][2],
                                 acc[i][j][3]);
    }
    u = u_next;
  }
}

/* Blocks of w4sk_kernel<MT> that fit on one SM of the current device (computed once a device). */
template <int MT>
int w4sk_occupancy(int *per_sm) {
  static int occ[64];
  int dev = 0;
  KERN_CUDA(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) dev = 63;
  if (occ[dev] <= 0) {
    int o = 0;
    KERN_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&o, w4sk_kernel<MT>, 128, 0));
    occ[dev] = o > 0 ? o : 1;
  }
  *per_sm = occ[dev];
  return ERR_OK;
}

template <int MT>
int w4sk_launch(const W4Args &a, int64_t U, int B, int maxc, cudaStream_t st) {
  return kern_launch_pdl(w4sk_kernel<MT>, dim3((unsigned)B), dim3(128), 0, st, a, U, maxc);
}

} // namespace

int w4a16_streamk_on(void) {
  static int env = -1;
  if (env < 0) {
    const char *e = getenv("SERVESIM_W4_STREAMK");
    env = e && *e ? atoi(e) != 0 : 0;
  }
  return env;
}

int w4a16_streamk_launch(const W4Args &a0, int32_t *counters, int n_counters, float *part, size_t part_floats,
                         int sms, cudaStream_t st, int *launched) {
  *launched = 0;
  if (a0.M < 1 || a0.M > 16 || !counters || !part) return ERR_OK;
  static int bps = -1;
  if (bps < 0) {
    const char *e = getenv("SERVESIM_W4_STREAMK_BPS");
    bps = e && *e ? atoi(e) : 4;
    if (bps < 1) bps = 4;
  }
  const int64_t CB = (a0.N + 31) / 32, KC = a0.K / 64, U = CB * KC;
  const int MT = a0.M <= 8 ? 1 : 2;
  int fit = 1; /* one wave: no more blocks a SM than fit */
  if (int rc = MT == 1 ? w4sk_occupancy<1>(&fit) : w4sk_occupancy<2>(&fit)) return rc;
  const int per_sm = bps < fit ? bps : fit;
  const int64_t B = (int64_t)sms * per_sm < U ? (int64_t)sms * per_sm : U;
  /* slots per column block: the same few shapes come back every layer, so keep the last answer */
  static thread_local int64_t memo_cb = -1, memo_kc = -1, memo_b = -1;
  static thread_local int memo_maxc = 0;
  if (CB != memo_cb || KC != memo_kc || B != memo_b) {
    memo_maxc = streamk_plan_max_split(CB, KC, B);
    memo_cb = CB; memo_kc = KC; memo_b = B;
  }
  const int maxc = memo_maxc;
  if (maxc < 1 || CB > n_counters || (size_t)CB * maxc * kSkNT * MT * 32 * 4 > part_floats) return ERR_OK;
  W4Args a = a0;
  a.ws_cnt = counters;
  a.ws_part = part;
  *launched = 1;
  return MT == 1 ? w4sk_launch<1>(a, U, (int)B, maxc, st) : w4sk_launch<2>(a, U, (int)B, maxc, st);
}

} // namespace kern_w4
