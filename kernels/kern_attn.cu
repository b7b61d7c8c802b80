/* kern_attn: paged KV cache write and paged GQA attention for decode and chunked prefill.
 *
 * Attention: one block (4 warps) per (query token, kv head, context part); the block holds the
 * G = nq/nkv query heads that share the kv head, so each K/V row is read once for the whole
 * group -- unless the groups are too few to fill the GPU (a decode batch of a few sequences
 * with one kv head per rank), then one block per query head (attn_plan.h). A warp takes 32
 * keys at a time: lane j scores key j against the G heads (q in shared
 * memory, broadcast), the warp keeps an online softmax per head (max across lanes, per-lane
 * partial sums), and accumulates P*V with each lane owning D/32 dimensions; the 32 keys' cache
 * slots are broadcast from the lanes that looked them up, so the V rows load independently
 * (no table lookup on the critical path). Warps then merge through shared memory.
 * Contexts split into parts (flash-decoding) whose partial (max, sum, acc) go to a workspace
 * and a second kernel merges them. The split (parts, keys per part, heads per block,
 * workspace) is kernels/attn_plan.h, plain C tested in CI.
 * CUDA cores only: a tensor-core prefill (flash-attention with mma over query tiles) is the
 * obvious next step and is not done. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attn_plan.h"
#include "kernels/kern_common.cuh"

namespace {

constexpr int kGmax = 16;          /* query heads per kv head handled in one block */

__global__ void kv_write_kernel(uint16_t *kc, uint16_t *vc, const uint16_t *qkv, const int32_t *slots,
                                int T, int nq, int nkv, int D) {
  const int vec = D / 8; /* uint4 per head row */
  const int64_t n = (int64_t)T * nkv * vec;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int t = (int)(i / (nkv * vec)), rem = (int)(i % (nkv * vec));
    const int h = rem / vec, v = rem % vec;
    const int s = slots[t];
    if (s < 0) continue;
    const uint16_t *src = qkv + (size_t)t * (nq + 2 * nkv) * D;
    const size_t dst = ((size_t)s * nkv + h) * D + v * 8;
    *reinterpret_cast<uint4 *>(kc + dst) = *reinterpret_cast<const uint4 *>(src + (size_t)(nq + h) * D + v * 8);
    *reinterpret_cast<uint4 *>(vc + dst) = *reinterpret_cast<const uint4 *>(src + (size_t)(nq + nkv + h) * D + v * 8);
  }
}

template <int D, int G>
__global__ void __launch_bounds__(128) attn_kernel(uint16_t *out, const uint16_t *qkv, const uint16_t *kc,
                                                   const uint16_t *vc, const int32_t *bt, int max_blocks,
                                                   const int32_t *tseq, const int32_t *pos, int nq, int nkv,
                                                   int g_heads, float scale, float *ws, int n_parts) {
  kern_pdl_trigger();
  constexpr int DL = D / 32; /* dims per lane */
  /* block (token, group of g_heads query heads, context part) */
  const int t = blockIdx.x, part = blockIdx.z;
  const int h0 = blockIdx.y * g_heads, kvh = h0 / (nq / nkv);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n_keys = pos[t] + 1;
  /* this token's context over the n_parts parts, in multiples of ATTN_PART_QUANTUM keys */
  const int plen = attn_plan_part_keys(n_keys, n_parts);
  const int k_begin = part * plen, k_end = min(n_keys, k_begin + plen);
  /* s_q and s_p live only through the key loop; s_acc reuses their space for the merge. */
  constexpr int kLoopFloats = G * D + 4 * G * 32, kMergeFloats = 4 * G * D;
  __shared__ float smem[kLoopFloats > kMergeFloats ? kLoopFloats : kMergeFloats];
  __shared__ float s_m[4][G], s_l[4][G];
  float (*s_q)[D] = reinterpret_cast<float (*)[D]>(smem);
  float (*s_p)[G][32] = reinterpret_cast<float (*)[G][32]>(smem + G * D);
  float (*s_acc)[G][D] = reinterpret_cast<float (*)[G][D]>(smem);
  if (k_begin >= k_end) { /* part past this token's context: an empty partial */
    if (n_parts > 1)
      for (int i = threadIdx.x; i < g_heads; i += blockDim.x) {
        float *w = ws + (((size_t)t * nq + h0 + i) * n_parts + part) * (D + 2);
        w[0] = -INFINITY;
        w[1] = 0;
      }
    return;
  }
  const uint16_t *qrow = qkv + (size_t)t * (nq + 2 * nkv) * D;
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    s_q[h][d] = h < g_heads ? kern_bf2f(qrow[(size_t)(h0 + h) * D + d]) * scale : 0.f;
  }
  __syncthreads();
  const int32_t *table = bt + (size_t)tseq[t] * max_blocks;
  float m[G], l[G], acc[G][DL];
#pragma unroll
  for (int h = 0; h < G; h++) {
    m[h] = -INFINITY;
    l[h] = 0;
#pragma unroll
    for (int d = 0; d < DL; d++) acc[h][d] = 0;
  }
  for (int kb = k_begin + warp * 32; kb < k_end; kb += 4 * 32) {
    const int j = kb + lane;
    const bool valid = j < k_end;
    /* lanes past the end look up the last key: finite data, weighted 0 below */
    const int jc = valid ? j : k_end - 1;
    /* 64-bit: a pool of more than 2^27 blocks would overflow an int slot */
    const long long my_slot = (long long)table[jc / KERN_KV_BLOCK] * KERN_KV_BLOCK + jc % KERN_KV_BLOCK;
    float s[G];
#pragma unroll
    for (int h = 0; h < G; h++) s[h] = 0;
    if (valid) {
      const uint4 *kr = reinterpret_cast<const uint4 *>(kc + ((size_t)my_slot * nkv + kvh) * D);
#pragma unroll 4
      for (int c = 0; c < D / 8; c++) {
        const uint4 v = kr[c];
        const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const float k0 = __uint_as_float(u[e] << 16), k1 = __uint_as_float(u[e] & 0xffff0000u);
#pragma unroll
          for (int h = 0; h < G; h++) s[h] += s_q[h][c * 8 + 2 * e] * k0 + s_q[h][c * 8 + 2 * e + 1] * k1;
        }
      }
    }
#pragma unroll
    for (int h = 0; h < G; h++) {
      float mx = valid ? s[h] : -INFINITY;
      for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float mn = fmaxf(m[h], mx);
      const float corr = expf(m[h] - mn); /* exp(-inf) = 0 on the first tile */
      const float p = valid ? expf(s[h] - mn) : 0.f;
      l[h] = l[h] * corr + p;
#pragma unroll
      for (int d = 0; d < DL; d++) acc[h][d] *= corr;
      m[h] = mn;
      s_p[warp][h][lane] = p;
    }
    __syncwarp();
    /* P*V over the tile's 32 keys (keys past the end have p = 0 and a valid row): 8 rows in
     * flight per lane, each row's slot taken from the lane that looked it up */
#pragma unroll
    for (int j0 = 0; j0 < 32; j0 += 8) {
      float vf[8][DL];
#pragma unroll
      for (int u = 0; u < 8; u++) {
        const long long sl = __shfl_sync(0xffffffffu, my_slot, j0 + u);
        const uint16_t *vr = vc + ((size_t)sl * nkv + kvh) * D + lane * DL;
        if constexpr (DL == 4) {
          const uint2 v = *reinterpret_cast<const uint2 *>(vr);
          vf[u][0] = __uint_as_float(v.x << 16); vf[u][1] = __uint_as_float(v.x & 0xffff0000u);
          vf[u][2] = __uint_as_float(v.y << 16); vf[u][3] = __uint_as_float(v.y & 0xffff0000u);
        } else if constexpr (DL == 2) {
          const uint32_t v = *reinterpret_cast<const uint32_t *>(vr);
          vf[u][0] = __uint_as_float(v << 16); vf[u][1] = __uint_as_float(v & 0xffff0000u);
        } else {
#pragma unroll
          for (int d = 0; d < DL; d++) vf[u][d] = kern_bf2f(vr[d]);
        }
      }
#pragma unroll
      for (int u = 0; u < 8; u++)
#pragma unroll
        for (int h = 0; h < G; h++) {
          const float p = s_p[warp][h][j0 + u];
#pragma unroll
          for (int d = 0; d < DL; d++) acc[h][d] += p * vf[u][d];
        }
    }
    __syncwarp();
  }
  /* Merge the 4 warps: per head, global max, rescale sums and accumulators. */
  __syncthreads(); /* every warp is done with s_q / s_p */
#pragma unroll
  for (int h = 0; h < G; h++) {
    float lsum = l[h];
    for (int o = 16; o; o >>= 1) lsum += __shfl_xor_sync(0xffffffffu, lsum, o);
    if (lane == 0) { s_m[warp][h] = m[h]; s_l[warp][h] = lsum; }
#pragma unroll
    for (int d = 0; d < DL; d++) s_acc[warp][h][lane * DL + d] = acc[h][d];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < g_heads * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    float mx = -INFINITY;
    for (int w = 0; w < 4; w++) mx = fmaxf(mx, s_m[w][h]);
    float lt = 0, at = 0;
    for (int w = 0; w < 4; w++) {
      if (s_m[w][h] == -INFINITY) continue; /* warp saw no keys */
      const float c = expf(s_m[w][h] - mx);
      lt += s_l[w][h] * c;
      at += s_acc[w][h][d] * c;
    }
    if (n_parts == 1) {
      out[((size_t)t * nq + h0 + h) * D + d] = kern_f2bf(at / lt);
    } else {
      float *w = ws + (((size_t)t * nq + h0 + h) * n_parts + part) * (D + 2);
      if (d == 0) { w[0] = mx; w[1] = lt; }
      w[2 + d] = at;
    }
  }
}

/* Merges the context parts of one (token, head): block of D threads. */
__global__ void attn_merge_kernel(uint16_t *out, const float *ws, int nq, int D, int n_parts) {
  kern_pdl_trigger();
  const size_t th = blockIdx.x; /* token * nq + head */
  const int d = threadIdx.x;
  const float *w = ws + th * n_parts * (D + 2);
  float mx = -INFINITY;
  for (int p = 0; p < n_parts; p++) mx = fmaxf(mx, w[(size_t)p * (D + 2)]);
  float lt = 0, at = 0;
  for (int p = 0; p < n_parts; p++) {
    const float *wp = w + (size_t)p * (D + 2);
    if (wp[0] == -INFINITY) continue;
    const float c = expf(wp[0] - mx);
    lt += wp[1] * c;
    at += wp[2 + d] * c;
  }
  out[th * D + d] = kern_f2bf(at / lt);
}

template <int D>
int attn_launch(dim3 grid, cudaStream_t st, uint16_t *out, const uint16_t *qkv, const uint16_t *kc,
                const uint16_t *vc, const int32_t *bt, int max_blocks, const int32_t *tseq,
                const int32_t *pos, int nq, int nkv, int G, float scale, float *ws, int n_parts) {
  if (G <= 1)
    attn_kernel<D, 1><<<grid, 128, 0, st>>>(out, qkv, kc, vc, bt, max_blocks, tseq, pos, nq, nkv, G, scale, ws, n_parts);
  else if (G <= 4)
    attn_kernel<D, 4><<<grid, 128, 0, st>>>(out, qkv, kc, vc, bt, max_blocks, tseq, pos, nq, nkv, G, scale, ws, n_parts);
  else if (G <= 8)
    attn_kernel<D, 8><<<grid, 128, 0, st>>>(out, qkv, kc, vc, bt, max_blocks, tseq, pos, nq, nkv, G, scale, ws, n_parts);
  else
    attn_kernel<D, 16><<<grid, 128, 0, st>>>(out, qkv, kc, vc, bt, max_blocks, tseq, pos, nq, nkv, G, scale, ws, n_parts);
  KERN_LAUNCHED();
  return 0;
}

} // namespace

extern "C" {

int kern_kv_write_paged(bf16_t *k_cache, bf16_t *v_cache, const bf16_t *qkv,
                        const int32_t *slot_mapping, int T, int nq, int nkv, int D,
                        kern_stream_t stream) {
  KERN_REQUIRE(T >= 0 && nq > 0 && nkv > 0, "kern_kv_write_paged: T = %d, nq = %d, nkv = %d", T, nq, nkv);
  KERN_REQUIRE(D > 0 && D % 8 == 0, "kern_kv_write_paged: D = %d is not a multiple of 8", D);
  if (T == 0) return 0;
  const int64_t n = (int64_t)T * nkv * (D / 8);
  kv_write_kernel<<<kern_grid_256(n), 256, 0, (cudaStream_t)stream>>>(
      k_cache, v_cache, qkv, slot_mapping, T, nq, nkv, D);
  KERN_LAUNCHED();
  return 0;
}

size_t kern_attn_workspace_bytes(int T, int nq, int D, int max_context) {
  return attn_plan_workspace_bytes(T, nq, D, max_context);
}

int kern_attn_paged(bf16_t *out, const bf16_t *qkv, const bf16_t *k_cache, const bf16_t *v_cache,
                    const int32_t *block_tables, int max_blocks, const int32_t *token_seq,
                    const int32_t *positions, int T, int nq, int nkv, int D, int max_context,
                    float scale, void *workspace, size_t workspace_bytes, kern_stream_t stream) {
  KERN_REQUIRE(T >= 0 && nq > 0 && nkv > 0 && nq % nkv == 0,
               "kern_attn_paged: nq = %d is not a positive multiple of nkv = %d", nq, nkv);
  KERN_REQUIRE(nq / nkv <= kGmax, "kern_attn_paged: %d query heads per kv head > %d", nq / nkv, kGmax);
  KERN_REQUIRE(D == 128 || D == 64 || D == 32, "kern_attn_paged: head_dim %d (supported: 32, 64, 128)", D);
  KERN_REQUIRE(max_context >= 1 && max_context <= max_blocks * KERN_KV_BLOCK,
               "kern_attn_paged: max_context %d outside 1..max_blocks*16 = %d", max_context,
               max_blocks * KERN_KV_BLOCK);
  if (T == 0) return 0;
  /* SERVESIM_ATTN_HEADS=split|group forces the head choice (bench_kernels --attn compares
   * them); read per call so a benchmark can switch it between timings */
  const int hpb = attn_plan_heads_per_block(T, nq, nkv, max_context, getenv("SERVESIM_ATTN_HEADS"));
  const int parts = attn_plan_parts((int64_t)T * (nq / hpb), max_context);
  const size_t need = attn_plan_call_bytes(T, nq, D, parts);
  KERN_REQUIRE(workspace_bytes >= need && (need == 0 || workspace),
               "kern_attn_paged: workspace %zu bytes < %zu needed", workspace_bytes, need);
  cudaStream_t st = (cudaStream_t)stream;
  dim3 grid(T, nq / hpb, parts);
  float *ws = (float *)workspace;
  const int G = hpb;
  int rc = D == 128  ? attn_launch<128>(grid, st, out, qkv, k_cache, v_cache, block_tables, max_blocks, token_seq,
                                        positions, nq, nkv, G, scale, ws, parts)
           : D == 64 ? attn_launch<64>(grid, st, out, qkv, k_cache, v_cache, block_tables, max_blocks, token_seq,
                                       positions, nq, nkv, G, scale, ws, parts)
                     : attn_launch<32>(grid, st, out, qkv, k_cache, v_cache, block_tables, max_blocks, token_seq,
                                       positions, nq, nkv, G, scale, ws, parts);
  if (rc) return rc;
  if (parts > 1) {
    attn_merge_kernel<<<T * nq, D, 0, st>>>(out, ws, nq, D, parts);
    KERN_LAUNCHED();
  }
  return 0;
}

} /* extern "C" */
