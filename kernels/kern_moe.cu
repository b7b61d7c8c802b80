/* kern_moe: routing (softmax + top-k + renormalisation), grouping of (token, slot) pairs by the
 * experts a rank owns, and the weighted combine back to token order. The grouped expert GEMMs
 * live in kern_w4a16.cu. All deterministic: the grouping is a stable counting sort (no
 * atomics decide an order). */
#include <math.h>

#include "kernels/kern_common.cuh"

namespace {

constexpr int kRouteWarps = 4;

/* One warp per token: logits staged in shared memory, k rounds of a warp arg-max. */
__global__ void moe_route_kernel(int32_t *ids, float *wts, const uint16_t *logits, int T, int E,
                                 int k, int renorm) {
  kern_pdl_trigger();
  extern __shared__ float s_l[]; /* [kRouteWarps][E] */
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int tok = blockIdx.x * kRouteWarps + warp;
  if (tok >= T) return;
  float *l = s_l + warp * E;
  float mx = -INFINITY;
  for (int e = lane; e < E; e += 32) {
    l[e] = kern_bf2f(logits[(size_t)tok * E + e]);
    mx = fmaxf(mx, l[e]);
  }
  for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float sum = 0;
  for (int e = lane; e < E; e += 32) sum += expf(l[e] - mx);
  for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  __syncwarp();
  float wsum = 0, my_w = 0;
  int my_id = 0;
  for (int j = 0; j < k; j++) {
    /* selected entries become NaN: NaN never compares greater or equal, so never wins again */
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int e = lane; e < E; e += 32) {
      float v = l[e];
      if (v > bv || (v == bv && e < bi)) { bv = v; bi = e; }
    }
    for (int o = 16; o; o >>= 1) {
      float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    const float w = expf(bv - mx) / sum;
    wsum += w;
    if (lane == j) { my_w = w; my_id = bi; }
    if (lane == 0) l[bi] = __int_as_float(0x7fc00000);
    __syncwarp();
  }
  if (lane < k) {
    ids[(size_t)tok * k + lane] = my_id;
    wts[(size_t)tok * k + lane] = renorm ? my_w / wsum : my_w;
  }
}

constexpr int kAlignWarps = 32, kAlignMaxExperts = 256;

/* One block of 32 warps. Warp w owns the contiguous pair range [w*P/32, (w+1)*P/32); the rank of
 * a pair inside its expert = pairs of that expert in earlier warps' ranges + earlier in its own
 * range, so the order is ascending pair index (stable), independent of scheduling. */
__global__ void __launch_bounds__(1024) moe_align_kernel(int32_t *expert_off, int32_t *sorted_pair,
                                                         int32_t *pair_row, const int32_t *ids,
                                                         int P, int e0, int n_local,
                                                         unsigned long long *hits) {
  kern_pdl_trigger();
  __shared__ int cnt[kAlignWarps][kAlignMaxExperts];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int i = threadIdx.x; i < kAlignWarps * kAlignMaxExperts; i += blockDim.x) (&cnt[0][0])[i] = 0;
  __syncthreads();
  const int p_begin = (int)((int64_t)warp * P / kAlignWarps), p_end = (int)((int64_t)(warp + 1) * P / kAlignWarps);
  const unsigned lt = (1u << lane) - 1;
  for (int b = p_begin; b < p_end; b += 32) {
    const int p = b + lane;
    int e = p < p_end ? ids[p] - e0 : -1;
    if (e < 0 || e >= n_local) e = -1;
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    if (e >= 0 && (peers & lt) == 0) cnt[warp][e] += __popc(peers);
    __syncwarp();
  }
  __syncthreads();
  /* Totals, exclusive scan over experts (thread 0; <= 256 adds), per-warp bases. */
  __shared__ int off[kAlignMaxExperts + 1];
  if (threadIdx.x < n_local) {
    int s = 0;
    for (int w = 0; w < kAlignWarps; w++) s += cnt[w][threadIdx.x];
    off[threadIdx.x + 1] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    off[0] = 0;
    for (int e = 0; e < n_local; e++) off[e + 1] += off[e];
  }
  __syncthreads();
  if (threadIdx.x <= n_local) expert_off[threadIdx.x] = off[threadIdx.x];
  /* one thread per expert: plain adds, no race, the same counts every run */
  if (hits && threadIdx.x < n_local) hits[threadIdx.x] += (unsigned long long)(off[threadIdx.x + 1] - off[threadIdx.x]);
  if (threadIdx.x < n_local) {
    int run = off[threadIdx.x];
    for (int w = 0; w < kAlignWarps; w++) {
      const int c = cnt[w][threadIdx.x];
      cnt[w][threadIdx.x] = run;
      run += c;
    }
  }
  __syncthreads();
  for (int b = p_begin; b < p_end; b += 32) {
    const int p = b + lane;
    int e = p < p_end ? ids[p] - e0 : -1;
    if (e < 0 || e >= n_local) e = -1;
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    if (p < p_end) {
      if (e >= 0) {
        const int r = cnt[warp][e] + __popc(peers & lt);
        sorted_pair[r] = p;
        pair_row[p] = r;
      } else {
        pair_row[p] = -1;
      }
    }
    __syncwarp();
    if (e >= 0 && (peers & lt) == 0) cnt[warp][e] += __popc(peers);
    __syncwarp();
  }
}

/* One block per token, 8 bf16 per thread per step. */
__global__ void moe_combine_kernel(uint16_t *out, const uint16_t *y, const int32_t *pair_row,
                                   const float *wts, int k, int H) {
  kern_pdl_trigger();
  const int t = blockIdx.x;
  for (int c = threadIdx.x * 8; c < H; c += blockDim.x * 8) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < k; j++) {
      const int r = pair_row[(size_t)t * k + j];
      if (r < 0) continue;
      const float w = wts[(size_t)t * k + j];
      const uint4 v = *reinterpret_cast<const uint4 *>(y + (size_t)r * H + c);
      const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int i = 0; i < 4; i++) {
        acc[2 * i] += w * __uint_as_float(u[i] << 16);
        acc[2 * i + 1] += w * __uint_as_float(u[i] & 0xffff0000u);
      }
    }
    uint4 o;
    uint32_t *ou = reinterpret_cast<uint32_t *>(&o);
#pragma unroll
    for (int i = 0; i < 4; i++) ou[i] = (uint32_t)kern_f2bf(acc[2 * i]) | ((uint32_t)kern_f2bf(acc[2 * i + 1]) << 16);
    *reinterpret_cast<uint4 *>(out + (size_t)t * H + c) = o;
  }
}

} // namespace

extern "C" {

int kern_moe_route(int32_t *topk_ids, float *topk_w, const bf16_t *logits, int T, int E, int k,
                   int renorm, kern_stream_t stream) {
  KERN_REQUIRE(T >= 0, "kern_moe_route: T = %d < 0", T);
  KERN_REQUIRE(E > 0 && E <= 1024, "kern_moe_route: E = %d outside 1..1024", E);
  KERN_REQUIRE(k > 0 && k <= 32 && k <= E, "kern_moe_route: k = %d outside 1..min(32, E)", k);
  if (T == 0) return 0;
  moe_route_kernel<<<kern_cdiv(T, kRouteWarps), 32 * kRouteWarps, kRouteWarps * E * sizeof(float),
                     (cudaStream_t)stream>>>(topk_ids, topk_w, logits, T, E, k, renorm);
  KERN_LAUNCHED();
  return 0;
}

int kern_moe_align(int32_t *expert_off, int32_t *sorted_pair, int32_t *pair_row,
                   const int32_t *topk_ids, int T, int k, int e0, int e1, uint64_t *hits,
                   kern_stream_t stream) {
  KERN_REQUIRE(T >= 0 && k > 0, "kern_moe_align: T = %d, k = %d", T, k);
  KERN_REQUIRE((int64_t)T * k <= (1 << 20), "kern_moe_align: T*k = %lld > 2^20", (long long)T * k);
  KERN_REQUIRE(e0 >= 0 && e1 > e0 && e1 - e0 <= kAlignMaxExperts,
               "kern_moe_align: expert range [%d, %d) empty or wider than %d", e0, e1, kAlignMaxExperts);
  moe_align_kernel<<<1, 32 * kAlignWarps, 0, (cudaStream_t)stream>>>(expert_off, sorted_pair, pair_row,
                                                                     topk_ids, T * k, e0, e1 - e0,
                                                                     (unsigned long long *)hits);
  KERN_LAUNCHED();
  return 0;
}

int kern_moe_combine(bf16_t *out, const bf16_t *y, const int32_t *pair_row, const float *topk_w,
                     int T, int k, int H, kern_stream_t stream) {
  KERN_REQUIRE(T >= 0 && k > 0, "kern_moe_combine: T = %d, k = %d", T, k);
  KERN_REQUIRE(H > 0 && H % 8 == 0, "kern_moe_combine: H = %d is not a multiple of 8", H);
  if (T == 0) return 0;
  int threads = H / 8 < 512 ? H / 8 : 512;
  moe_combine_kernel<<<T, threads, 0, (cudaStream_t)stream>>>(out, y, pair_row, topk_w, k, H);
  KERN_LAUNCHED();
  return 0;
}

} /* extern "C" */
