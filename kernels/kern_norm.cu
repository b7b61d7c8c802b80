/* kern_norm: RMSNorm with the fused residual add, and Qwen3's per-head q/k RMSNorm + neox RoPE
 * (in place on the qkv GEMM output). Float math, bf16 storage; same rounding points as
 * kernels/ref_norm.c. */
#include <math.h>

#include "kernels/kern_common.cuh"

namespace {

constexpr int kNormThreads = 256, kNormVec = 8; /* up to 8 x 16 bytes per thread: H <= 16384 */

__device__ __forceinline__ void unpack8(const uint4 &v, float f[8]) {
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    f[2 * i] = __uint_as_float(u[i] << 16);
    f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
  }
}
__device__ __forceinline__ uint4 pack8(const float f[8]) {
  uint4 v;
  uint32_t *u = reinterpret_cast<uint32_t *>(&v);
#pragma unroll
  for (int i = 0; i < 4; i++) u[i] = (uint32_t)kern_f2bf(f[2 * i]) | ((uint32_t)kern_f2bf(f[2 * i + 1]) << 16);
  return v;
}

__global__ void __launch_bounds__(kNormThreads) rmsnorm_kernel(uint16_t *out, const uint16_t *x,
                                                               uint16_t *res, const uint16_t *w,
                                                               int H, float eps) {
  kern_pdl_trigger();
  const size_t row = (size_t)blockIdx.x * H;
  float v[kNormVec][8];
  float ss = 0;
#pragma unroll
  for (int i = 0; i < kNormVec; i++) {
    const int c = (i * kNormThreads + threadIdx.x) * 8;
    if (c < H) {
      unpack8(*reinterpret_cast<const uint4 *>(x + row + c), v[i]);
      if (res) {
        float r[8];
        unpack8(*reinterpret_cast<const uint4 *>(res + row + c), r);
#pragma unroll
        for (int j = 0; j < 8; j++) v[i][j] = __bfloat162float(__float2bfloat16_rn(v[i][j] + r[j]));
        *reinterpret_cast<uint4 *>(res + row + c) = pack8(v[i]);
      }
#pragma unroll
      for (int j = 0; j < 8; j++) ss += v[i][j] * v[i][j];
    }
  }
  __shared__ float red[kNormThreads / 32];
  for (int o = 16; o; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
  __syncthreads();
  float tot = 0;
#pragma unroll
  for (int i = 0; i < kNormThreads / 32; i++) tot += red[i];
  const float inv = rsqrtf(tot / (float)H + eps);
#pragma unroll
  for (int i = 0; i < kNormVec; i++) {
    const int c = (i * kNormThreads + threadIdx.x) * 8;
    if (c < H) {
      float wf[8], o[8];
      unpack8(*reinterpret_cast<const uint4 *>(w + c), wf);
#pragma unroll
      for (int j = 0; j < 8; j++) o[j] = v[i][j] * inv * wf[j];
      *reinterpret_cast<uint4 *>(out + row + c) = pack8(o);
    }
  }
}

/* One warp per (token, head) of q and k; lane handles rotary pairs i = lane, lane+32, ...
 * With a cache (kc != NULL) the k warps also store the finished k row, and the v row, into the
 * token's slot (kern_kv_write_paged's layout), so the decode step needs no separate write. */
__global__ void qk_norm_rope_kernel(uint16_t *qkv, const uint16_t *qw, const uint16_t *kw,
                                    const int32_t *pos, int T, int nq, int nkv, int D, float eps,
                                    float theta, uint16_t *kc, uint16_t *vc, const int32_t *slots) {
  kern_pdl_trigger();
  const int warp = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
  const int heads = nq + nkv;
  if (warp >= T * heads) return;
  const int t = warp / heads, h = warp % heads;
  uint16_t *x = qkv + (size_t)t * (nq + 2 * nkv) * D + (size_t)h * D;
  /* cache rows of this k head and its v head, or NULL (q head, no cache, padding slot) */
  uint16_t *kd = NULL, *vd = NULL;
  if (kc && h >= nq && slots[t] >= 0) {
    const size_t dst = ((size_t)slots[t] * nkv + (h - nq)) * D;
    kd = kc + dst;
    vd = vc + dst;
    const uint16_t *vs = x + (size_t)nkv * D; /* v head h - nq */
    for (int i = lane; i < D; i += 32) vd[i] = vs[i];
  }
  const uint16_t *w = h < nq ? qw : kw;
  const int half = D / 2;
  float a[4], b[4]; /* D <= 256: at most 4 pairs per lane */
  float ss = 0;
#pragma unroll
  for (int j = 0; j < 4; j++) {
    const int i = lane + 32 * j;
    a[j] = b[j] = 0;
    if (i < half) {
      a[j] = kern_bf2f(x[i]);
      b[j] = kern_bf2f(x[i + half]);
      ss += a[j] * a[j] + b[j] * b[j];
    }
  }
  for (int o = 16; o; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  const float inv = 1.0f / sqrtf(ss / (float)D + eps);
  const float p = (float)pos[t];
#pragma unroll
  for (int j = 0; j < 4; j++) {
    const int i = lane + 32 * j;
    if (i < half) {
      const float an = a[j] * inv * kern_bf2f(w[i]), bn = b[j] * inv * kern_bf2f(w[i + half]);
      const float inv_freq = (float)pow((double)theta, -2.0 * i / (double)D);
      float s, c;
      sincosf(p * inv_freq, &s, &c);
      const uint16_t lo = kern_f2bf(an * c - bn * s), hi = kern_f2bf(bn * c + an * s);
      x[i] = lo;
      x[i + half] = hi;
      if (kd) {
        kd[i] = lo;
        kd[i + half] = hi;
      }
    }
  }
}

} // namespace

extern "C" {

int kern_rmsnorm(bf16_t *out, const bf16_t *x, bf16_t *residual, const bf16_t *w, int T, int H,
                 float eps, kern_stream_t stream) {
  KERN_REQUIRE(T >= 0, "kern_rmsnorm: T = %d < 0", T);
  KERN_REQUIRE(H > 0 && H % 8 == 0 && H <= kNormThreads * kNormVec * 8,
               "kern_rmsnorm: H = %d not a multiple of 8 in 8..16384", H);
  if (T == 0) return 0;
  rmsnorm_kernel<<<T, kNormThreads, 0, (cudaStream_t)stream>>>(out, x, residual, w, H, eps);
  KERN_LAUNCHED();
  return 0;
}

int kern_qk_norm_rope(bf16_t *qkv, const bf16_t *q_w, const bf16_t *k_w, const int32_t *positions,
                      int T, int nq, int nkv, int D, float eps, float theta, kern_stream_t stream) {
  return kern_qk_norm_rope_kv_write(qkv, q_w, k_w, positions, NULL, NULL, NULL, T, nq, nkv, D, eps, theta, stream);
}

int kern_qk_norm_rope_kv_write(bf16_t *qkv, const bf16_t *q_w, const bf16_t *k_w, const int32_t *positions,
                               bf16_t *k_cache, bf16_t *v_cache, const int32_t *slot_mapping, int T, int nq,
                               int nkv, int D, float eps, float theta, kern_stream_t stream) {
  KERN_REQUIRE(T >= 0 && nq > 0 && nkv > 0, "kern_qk_norm_rope: T = %d, nq = %d, nkv = %d", T, nq, nkv);
  KERN_REQUIRE(D > 0 && D % 2 == 0 && D <= 256, "kern_qk_norm_rope: D = %d not even in 2..256", D);
  KERN_REQUIRE(!k_cache == !v_cache && (!k_cache || slot_mapping),
               "kern_qk_norm_rope_kv_write: k_cache, v_cache and slot_mapping go together");
  if (T == 0) return 0;
  const int64_t warps = (int64_t)T * (nq + nkv);
  qk_norm_rope_kernel<<<(int)((warps + 7) / 8), 256, 0, (cudaStream_t)stream>>>(
      qkv, q_w, k_w, positions, T, nq, nkv, D, eps, theta, k_cache, v_cache, slot_mapping);
  KERN_LAUNCHED();
  return 0;
}

} /* extern "C" */
