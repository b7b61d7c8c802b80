/* kern_w4a16: GPTQ int4 x bf16 GEMMs on tensor cores (dense and grouped over MoE experts), and
 * the load-time repack into the tile layout (kernels/ref_w4a16.h pins the layout).
 *
 * One kernel template serves every case. Roles: the weights are the mma's A operand (16 output
 * columns x 16 k), the activations its B operand (16 k x 8 tokens), so a decode batch of 1..8
 * tokens wastes no weight bandwidth and uses one m16n8k16 per 16x16 weight tile. Each lane
 * reads its A fragments of four k16 sub-tiles with one 16-byte load (the repack made this so)
 * and dequantises in registers: (nibble | 0x4300) is bf16 128+q, minus 136 is q-8 exactly, times
 * the group's scale (bf16) -- 3 ALU ops per two weights.
 * - Small M (<= 16 rows per tile): 4 warps split K inside the block and the grid splits K
 *   again (gridDim.z) so that enough loads are in flight. On Hopper the splits of a tile form
 *   one thread block cluster and sum their partials through distributed shared memory, each
 *   block one slice, in split order; elsewhere (or SERVESIM_W4_CLUSTER=0) the last block to
 *   finish a tile sums the partials from a global workspace in split order and resets the
 *   tile's counter. Both are deterministic (no float atomics) and give the same bits. Loads
 *   go through registers (S chunks per warp) or a per-thread cp.async ring;
 *   SERVESIM_W4_VARIANT (dense) and SERVESIM_W4_VARIANT_MOE (experts) pick one of 9 such
 *   settings (11 for the experts; bench_kernels.sh TUNE=1 times them all; the defaults are the
 *   fastest measured, see kernels/NOTES.md).
 * - Larger M: the block's activation tile is staged in shared memory by cp.async (S stages,
 *   one barrier per k64 chunk) and shared by 4 warps that split N; weights keep a per-thread
 *   ring. Tiles 64 x 128 up to 256 rows (SERVESIM_W4_LARGE), 64 x 256 beyond.
 * SERVESIM_W4_STREAMK=1 sends dense GEMMs of 1..16 rows to the stream-K kernel
 * (kern_w4a16_streamk.cu; correct, measured slower on the H100, so off: kernels/NOTES.md 7).
 * On Hopper, dense GEMMs of 1..8 rows go to the preload kernel (kern_w4a16_preload.cu: every
 * weight load issued before the dependent-launch wait; measured faster than these tiles at
 * every shape but one, kernels/NOTES.md item 9; SERVESIM_W4_PRELOAD=0 keeps them here), and
 * those of 9..16 rows too where its plan is one wave (item 19: 16% less time summed at 16 rows;
 * qkv at TP=1 has no such plan and stays here).
 * On Hopper, dense GEMMs of 17 rows and more go to the wgmma path (kern_w4a16_wgmma.cu; measured
 * faster than these tiles over M = 64..256, kernels/NOTES.md item 8, at 9 of 12 shapes at
 * 20..32 rows, item 16, and 2-3x faster at 512..4096 rows, item 20; SERVESIM_W4_WGMMA=0 keeps
 * them here, SERVESIM_W4_WGMMA_FROM and _TO move the boundaries).
 * The fused MoE's grouped expert GEMMs take the wgmma kernel too from 17 tile rows an expert
 * (w4a16_moe_tile_rows: the mean plus half a standard deviation; kernels/NOTES.md item 21: 1.68x
 * at 4096 tokens on the H200, items 25, 32 and 33 -- there in two launches, each expert's
 * remainder in a shorter tile, ws_moe_launch; gate_up's rows gathered in expert order first,
 * w4_moe_gather_kernel), the tiles below here otherwise.
 * Not done: a wgmma path as fast as cuBLAS bf16 everywhere (on the H200 at or under it at 20 of
 * the 36 points of M = 64..256, up to 1.22x slower elsewhere; 1.05-1.19x slower summed at 512,
 * 1024, 4096 rows), a persistent small-M grid. */
#include <algorithm>
#include <climits>
#include <cooperative_groups.h>

#include "kernels/kern_w4a16.cuh"
#include "kernels/moe_plan.h"
#include "kernels/ws_cost.h"

namespace {

using namespace kern_w4;

/* Least blocks an SM the compiler must leave registers for (0: no bound; a bound of 1 is not the
 * same, ptxas then gives most variants more registers). The register-path configuration with two
 * chunks in flight and one row group (variant 2, the MoE experts' default, aiming at ~8 blocks an
 * SM; variant 0 is the same kernel) gets a floor of 7: without it the compiler gave the MoE ones
 * 74 registers (6 blocks) once the tile layout made a lane's words of steps s and s + 2 one pair
 * (kernels/w4g_layout.h), against 72 (7 blocks) before, and the fused MoE lost ~4.5% at 2..128
 * tokens (kernels/NOTES.md item 15). Any kernel of that configuration gets the floor. */
constexpr int w4_min_blocks(int MT, int S, bool XS, bool RING) { return MT == 1 && S == 2 && !XS && !RING ? 7 : 0; }

template <int MT, int NT, int WK, int WN, int WM, int S, bool MOE, bool GATHER, bool SILU, bool XS, bool RING>
__global__ void __launch_bounds__(128, w4_min_blocks(MT, S, XS, RING)) w4a16_kernel(W4Args a) {
  static_assert(WK * WN * WM == 4, "4 warps per block");
  static_assert(!XS || (WK == 1 && WM == 1), "shared activation tiles: warps split N only");
  constexpr int BM = WM * MT * 8;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int kw = warp % WK, wn = (warp / WK) % WN, wm = warp / (WK * WN);
  const int K = a.K, N = a.N, KC = K / 64, NT16 = N / 16;
  /* Programmatic dependent launch (kern_common.cuh): wait for the previous kernel before the
   * first read of activations or expert offsets (the dense register path first issues its
   * first weight loads) and before any write; let the next kernel be scheduled once the main
   * loop is done, so its weight prefetch overlaps this kernel's reduction tail rather than
   * competing with its streaming (triggering at the start cost 4-7% on qkv and o_proj). */
  bool waited = false;

  int expert = 0, row0, row_end;
  if (MOE) {
    kern_pdl_wait();
    waited = true;
    /* Find this block's (expert, 8*MT*WM-row tile); blocks past the last tile leave at once, so
     * experts with no rows cost nothing. */
    __shared__ int s_tile[3];
    if (warp == 0) w4_moe_tile(a, BM, blockIdx.y, lane, s_tile);
    __syncthreads();
    expert = s_tile[0];
    if (expert < 0) return;
    row0 = s_tile[1];
    row_end = s_tile[2];
  } else {
    row0 = blockIdx.y * BM;
    row_end = a.M;
  }
  const uint4 *qrep = a.qrep + (size_t)expert * ((size_t)K * N / 32);
  const uint32_t *srep = a.srep + (size_t)expert * ((size_t)(K / 128) * N / 2);

  const int nt0 = (blockIdx.x * WN + wn) * NT; /* first n16 tile of this warp */
  const uint16_t *xrow[MT];
  bool rvalid[MT];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
    int r = row0 + (wm * MT + mt) * 8 + g;
    rvalid[mt] = r < row_end;
    int xr = r;
    if (GATHER && rvalid[mt]) xr = a.sorted_pair[r] / a.topk;
    xrow[mt] = a.x + (size_t)(rvalid[mt] ? xr : 0) * K + 16 * t;
  }

  const int splits = gridDim.z, z = blockIdx.z;
  const int c_begin = (int)((int64_t)z * KC / splits), c_end = (int)((int64_t)(z + 1) * KC / splits);

  float acc[NT][MT][4];
#pragma unroll
  for (int i = 0; i < NT; i++)
#pragma unroll
    for (int j = 0; j < MT; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) acc[i][j][r] = 0.f;

  if constexpr (XS) {
    /* Large M: the block's activation tile (BM rows x 64 k, rows padded to 144 B so the
     * 16-byte fragment reads of a quarter-warp hit distinct banks) is copied once per k64 chunk
     * by all threads and shared by the WN warps, instead of each warp fetching it; the weights
     * keep the per-thread ring. S-stage cp.async pipeline, one barrier per chunk. */
    constexpr int XROW = 72; /* bf16 per padded row */
    constexpr int PIECES = BM * 8 / 128; /* 16-byte pieces of the tile per thread */
    constexpr int WSLOTS = NT + 1;
    extern __shared__ uint4 w4_ring[];
    uint16_t *xs = reinterpret_cast<uint16_t *>(w4_ring);
    uint4 *wring = w4_ring + (size_t)S * BM * XROW / 8;
    if (!waited) {
      kern_pdl_wait();
      waited = true;
    }
    int prow[PIECES]; /* activation row of each piece this thread copies, -1 past the end */
#pragma unroll
    for (int j = 0; j < PIECES; j++) {
      const int gr = row0 + (int)(threadIdx.x + j * 128) / 8;
      prow[j] = gr < row_end ? (GATHER ? a.sorted_pair[gr] / a.topk : gr) : -1;
    }
    const int c16 = threadIdx.x % 8;
    const int n_my = c_end - c_begin;
    auto wslot = [&](int stage, int j) { return wring + ((size_t)(stage * WSLOTS + j) * 128 + threadIdx.x); };
    auto issue = [&](int i) {
      const int c = c_begin + i, stage = i % S;
#pragma unroll
      for (int j = 0; j < PIECES; j++)
        if (prow[j] >= 0)
          w4_cp16(xs + ((size_t)stage * BM + (threadIdx.x + j * 128) / 8) * XROW + c16 * 8,
                  a.x + (size_t)prow[j] * K + (size_t)c * 64 + c16 * 8);
#pragma unroll
      for (int nt = 0; nt < NT; nt++)
        if (nt0 + nt < NT16) {
          w4_cp16(wslot(stage, nt), qrep + ((size_t)(nt0 + nt) * KC + c) * 32 + lane);
          w4_cp4(reinterpret_cast<uint32_t *>(wslot(stage, NT)) + nt, srep + ((size_t)(c >> 1) * NT16 + nt0 + nt) * 8 + g);
        }
    };
#pragma unroll
    for (int i = 0; i < S - 1; i++) {
      if (i < n_my) issue(i);
      w4_commit();
    }
    for (int i = 0; i < n_my; i++) {
      w4_wait<S - 2>();
      __syncthreads(); /* chunk i's tile is complete for every thread; stage i-1 is free */
      const int stage = i % S;
      uint4 wq[NT];
      uint32_t sc[NT];
#pragma unroll
      for (int nt = 0; nt < NT; nt++) {
        wq[nt] = *wslot(stage, nt);
        sc[nt] = reinterpret_cast<const uint32_t *>(wslot(stage, NT))[nt];
      }
      if (i + S - 1 < n_my) issue(i + S - 1);
      w4_commit();
      const uint16_t *xt = xs + (size_t)stage * BM * XROW + g * XROW + 16 * t;
#pragma unroll
      for (int sp = 0; sp < 2; sp++) {
        uint4 xq[MT];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) xq[mt] = *reinterpret_cast<const uint4 *>(xt + mt * 8 * XROW + 8 * sp);
#pragma unroll
        for (int s2 = 0; s2 < 2; s2++) {
          const int s = 2 * sp + s2;
#pragma unroll
          for (int nt = 0; nt < NT; nt++) {
            uint32_t af[4];
            w4_dequant_piece(wq[nt], s, __byte_perm(sc[nt], 0, 0x1010), __byte_perm(sc[nt], 0, 0x3232), af);
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
              kern_mma_bf16(acc[nt][mt], af, s2 ? xq[mt].z : xq[mt].x, s2 ? xq[mt].w : xq[mt].y);
          }
        }
      }
    }
    w4_wait<0>();
  } else if constexpr (RING) {
    /* Main loop: a per-thread ring of S stages in shared memory, filled with cp.async, keeps
     * S-1 k64 chunks of loads in flight per warp without holding them in registers. Each thread
     * reads back only what it copied itself, so no barrier is needed. Slots per stage: NT weight
     * words (16 B each), 2*MT activation pieces (32 B per row), one slot of NT scale pairs.
     * Rows or tiles past the end load nothing: their smem garbage only reaches outputs that are
     * never written (mma columns and rows are independent). */
    constexpr int SLOTS = NT + 2 * MT + 1;
    extern __shared__ uint4 w4_ring[];
    if (!waited) {
      kern_pdl_wait();
      waited = true;
    }
    const int n_my = c_end - c_begin - kw > 0 ? (c_end - c_begin - kw + WK - 1) / WK : 0;
    auto slot = [&](int stage, int j) { return w4_ring + ((size_t)(stage * SLOTS + j) * blockDim.x + threadIdx.x); };
    auto issue = [&](int i) {
      const int c = c_begin + kw + i * WK, stage = i % S;
  #pragma unroll
      for (int nt = 0; nt < NT; nt++)
        if (nt0 + nt < NT16) {
          w4_cp16(slot(stage, nt), qrep + ((size_t)(nt0 + nt) * KC + c) * 32 + lane);
          w4_cp4(reinterpret_cast<uint32_t *>(slot(stage, NT + 2 * MT)) + nt,
                 srep + ((size_t)(c >> 1) * NT16 + nt0 + nt) * 8 + g);
        }
  #pragma unroll
      for (int mt = 0; mt < MT; mt++)
        if (rvalid[mt]) {
          const uint4 *p = reinterpret_cast<const uint4 *>(xrow[mt] + (size_t)c * 64);
          w4_cp16(slot(stage, NT + 2 * mt), p);
          w4_cp16(slot(stage, NT + 2 * mt + 1), p + 1);
        }
    };
  #pragma unroll
    for (int i = 0; i < S - 1; i++) {
      if (i < n_my) issue(i);
      w4_commit();
    }
    for (int i = 0; i < n_my; i++) {
      w4_wait<S - 2>();
      const int stage = i % S;
      uint4 wq[NT], xv[MT][2];
      uint32_t sc[NT];
  #pragma unroll
      for (int nt = 0; nt < NT; nt++) {
        wq[nt] = *slot(stage, nt);
        sc[nt] = reinterpret_cast<const uint32_t *>(slot(stage, NT + 2 * MT))[nt];
      }
  #pragma unroll
      for (int mt = 0; mt < MT; mt++) {
        xv[mt][0] = *slot(stage, NT + 2 * mt);
        xv[mt][1] = *slot(stage, NT + 2 * mt + 1);
      }
      if (i + S - 1 < n_my) issue(i + S - 1);
      w4_commit();
      w4_chunk<NT, MT>(acc, wq, sc, xv);
    }
    w4_wait<0>();
  } else {
    /* Register pipeline: S chunks of loads issued back to back, then consumed; the weights
     * skip L1 (w4_ldg_stream: the fused MoE, whose expert GEMMs run here, 0.6-2.1% faster at
     * 1..128 tokens on the H200, kernels/NOTES.md item 26; not measured on the A100 or H100,
     * and no switch: the __ldg load is a one-line revert). */
    for (int base = c_begin + kw; base < c_end; base += WK * S) {
      uint4 wq[S][NT];
      uint32_t sc[S][NT];
      uint4 xv[S][MT][2];
  #pragma unroll
      for (int u = 0; u < S; u++) {
        const int c = base + u * WK;
        const bool cv = c < c_end;
  #pragma unroll
        for (int nt = 0; nt < NT; nt++) {
          const bool ok = cv && nt0 + nt < NT16;
          wq[u][nt] = ok ? w4_ldg_stream(qrep + ((size_t)(nt0 + nt) * KC + c) * 32 + lane) : make_uint4(0, 0, 0, 0);
          sc[u][nt] = ok ? __ldg(srep + ((size_t)(c >> 1) * NT16 + nt0 + nt) * 8 + g) : 0u;
        }
      }
      if (!waited) { /* the first weight loads are in flight: now the activations */
        kern_pdl_wait();
        waited = true;
      }
  #pragma unroll
      for (int u = 0; u < S; u++) {
        const int c = base + u * WK;
        const bool cv = c < c_end;
  #pragma unroll
        for (int mt = 0; mt < MT; mt++) {
          /* one row tile (8 rows: the MoE experts' tiles up to ~64 tokens): rows past the tile's
           * end read row 0 (xrow), not zeros -- their mma columns are never stored -- and a chunk
           * past c_end is never used, so no zeros are moved in (as in the preload kernel: fused MoE
           * 1..64 tokens 2-3% faster on the H200, kernels/NOTES.md item 27); two row tiles keep
           * the zeros (without them qkv at 16 rows took 15.5 against 11.2 us, and the MoE at 128
           * tokens 613 against 548, measured while ptxas still put these loads before the
           * dependency wait, as __ldg; with the coherent loads of w4_ld_act the MoE still took
           * 612 against 547, kernels/NOTES.md item 28) */
          if (cv && (MT == 1 || rvalid[mt])) {
            const uint4 *p = reinterpret_cast<const uint4 *>(xrow[mt] + (size_t)c * 64);
            xv[u][mt][0] = w4_ld_act(p);
            xv[u][mt][1] = w4_ld_act(p + 1);
          } else if (MT != 1) {
            xv[u][mt][0] = xv[u][mt][1] = make_uint4(0, 0, 0, 0);
          }
        }
      }
  #pragma unroll
      for (int u = 0; u < S; u++) {
        if (base + u * WK >= c_end) break;
        w4_chunk<NT, MT>(acc, wq[u], sc[u], xv[u]);
      }
    }
  }

  if (!waited) kern_pdl_wait(); /* a warp without k chunks: before any write */
  kern_pdl_trigger();

  /* In-block reduction over the WK warps that split K. */
  if (WK > 1) {
    constexpr int FR = NT * MT * 4;
    __shared__ float red[(WK > 1 ? WK - 1 : 1) * (WN * WM) * FR * 32];
    const int slot = wn * WM + wm;
    if (kw > 0) {
#pragma unroll
      for (int i = 0; i < NT; i++)
#pragma unroll
        for (int j = 0; j < MT; j++)
#pragma unroll
          for (int r = 0; r < 4; r++)
            red[(((kw - 1) * (WN * WM) + slot) * FR + (i * MT + j) * 4 + r) * 32 + lane] = acc[i][j][r];
    }
    __syncthreads();
    if (kw == 0) {
      for (int w = 1; w < WK; w++)
#pragma unroll
        for (int i = 0; i < NT; i++)
#pragma unroll
          for (int j = 0; j < MT; j++)
#pragma unroll
            for (int r = 0; r < 4; r++)
              acc[i][j][r] += red[(((w - 1) * (WN * WM) + slot) * FR + (i * MT + j) * 4 + r) * 32 + lane];
    }
  }

  /* The bf16 output of fragment (i, j) of warp slot (wn_, wm_), lane ln's four sums. */
  auto store = [&](int i, int j, int wn_, int wm_, int ln, float v0, float v1, float v2, float v3) {
    const int ntile = (blockIdx.x * WN + wn_) * NT + i;
    if (ntile >= NT16) return;
    w4_store_frag<SILU>(a.y, N, row_end, row0 + (wm_ * MT + j) * 8 + 2 * (ln & 3), ntile, ln >> 2, v0, v1, v2, v3);
  };
  const int wslot = wn * WM + wm;
  constexpr int TILE4 = WN * WM * NT * MT * 32; /* float4 per block partial */

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  /* Split-K inside a thread block cluster (Hopper): each block leaves its partial in its own
   * shared memory, and after one cluster barrier block r sums the r-th 1/splits of the tile
   * over the blocks' partials in rank (= split) order -- the same order, so the same bits, as
   * the workspace path below, without its global round trip, fence and arrival counter. The
   * second barrier keeps every block's partial alive until the others have read it. */
  if (splits > 1 && a.cluster_split) {
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    __shared__ float4 cl_static[(XS || RING) ? 1 : TILE4];
    float4 *cl = cl_static;
    if constexpr (XS || RING) {
      extern __shared__ uint4 w4_ring[];
      cl = reinterpret_cast<float4 *>(w4_ring); /* the host checks that the ring holds TILE4 */
    }
    __syncthreads(); /* every warp is past its last read of the ring */
    if (kw == 0) {
#pragma unroll
      for (int i = 0; i < NT; i++)
#pragma unroll
        for (int j = 0; j < MT; j++)
          cl[((wslot * NT + i) * MT + j) * 32 + lane] = make_float4(acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]);
    }
    cluster.sync();
    const int rank = (int)cluster.block_rank();
    const int lo = (int)((int64_t)rank * TILE4 / splits), hi = (int)((int64_t)(rank + 1) * TILE4 / splits);
    for (int e = lo + (int)threadIdx.x; e < hi; e += (int)blockDim.x) {
      float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int zz = 0; zz < splits; zz++) {
        const float4 v = *cluster.map_shared_rank(cl + e, zz);
        sum.x += v.x; sum.y += v.y; sum.z += v.z; sum.w += v.w;
      }
      const int f = e >> 5, j = f % MT, i = (f / MT) % NT, ws_ = f / (MT * NT);
      store(i, j, ws_ / WM, ws_ % WM, e & 31, sum.x, sum.y, sum.z, sum.w);
    }
    cluster.sync();
    return;
  }
#endif

  /* Split-K across blocks: write partials, the last block to arrive sums them in order. */
  if (splits > 1) {
    const int tile_id = blockIdx.y * gridDim.x + blockIdx.x;
    if (kw == 0) {
      float4 *part = reinterpret_cast<float4 *>(a.ws_part) + ((size_t)tile_id * splits + z) * TILE4 +
                     (size_t)wslot * NT * MT * 32;
#pragma unroll
      for (int i = 0; i < NT; i++)
#pragma unroll
        for (int j = 0; j < MT; j++)
          __stcg(part + (i * MT + j) * 32 + lane, make_float4(acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]));
    }
    __threadfence();
    __syncthreads();
    __shared__ int s_last;
    if (threadIdx.x == 0) {
      int old = atomicAdd(a.ws_cnt + tile_id, 1);
      s_last = old == splits - 1;
    }
    __syncthreads();
    if (!s_last) return;
    __threadfence();
    if (kw == 0) {
#pragma unroll
      for (int i = 0; i < NT; i++)
#pragma unroll
        for (int j = 0; j < MT; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.f;
      for (int zz = 0; zz < splits; zz++) {
        const float4 *part = reinterpret_cast<const float4 *>(a.ws_part) + ((size_t)tile_id * splits + zz) * TILE4 +
                             (size_t)wslot * NT * MT * 32;
#pragma unroll
        for (int i = 0; i < NT; i++)
#pragma unroll
          for (int j = 0; j < MT; j++) {
            float4 v = __ldcg(part + (i * MT + j) * 32 + lane);
            acc[i][j][0] += v.x; acc[i][j][1] += v.y; acc[i][j][2] += v.z; acc[i][j][3] += v.w;
          }
      }
    }
    if (threadIdx.x == 0) a.ws_cnt[tile_id] = 0;
  }

  if (kw != 0) return;
#pragma unroll
  for (int i = 0; i < NT; i++)
#pragma unroll
    for (int j = 0; j < MT; j++) store(i, j, wn, wm, lane, acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]);
}

/* Repack: one thread per tile word, gathering its 8 nibbles from the checkpoint layout. */
__global__ void w4a16_repack_kernel(int32_t *qrep, const int32_t *qw0, const int32_t *qw1, int K,
                                    int N, int src_n, int gate_up) {
  const int64_t n_words = (int64_t)K * N / 8;
  for (int64_t w = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; w < n_words;
       w += (int64_t)gridDim.x * blockDim.x) {
    const int t = (int)(w & 3), s = (int)((w >> 2) & 3), g = (int)((w >> 4) & 7); /* w4g_word(g, s, t) */
    const int64_t rest = w >> 7;
    const int KC = K / 64;
    const int kc = (int)(rest % KC), nt = (int)(rest / KC);
    uint32_t out = 0;
#pragma unroll
    for (int nib = 0; nib < 8; nib++) {
      /* nibble 2b + hi: row g + 8 hi, logical k 8 (b % 2) + 2t + b / 2 of step s (ref_w4a16.h) */
      const int b = nib >> 1, hi = nib & 1;
      const int row = hi * 8 + g;
      const int k = kc * 64 + 16 * s + 8 * (b & 1) + 2 * t + (b >> 1);
      int c = nt * 16 + row;
      const int32_t *src = qw0;
      if (gate_up) {
        src = hi ? qw1 : qw0;
        c = nt * 8 + g;
      }
      const uint32_t q = ((uint32_t)src[(int64_t)(k / 8) * src_n + c] >> (4 * (k % 8))) & 0xfu;
      out |= q << (4 * nib);
    }
    qrep[w] = (int32_t)out;
  }
}

__global__ void w4a16_repack_scales_kernel(uint16_t *srep, const uint16_t *s0, const uint16_t *s1,
                                           int K, int N, int src_n, int gate_up) {
  const int64_t n = (int64_t)(K / 128) * N;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int grp = (int)(i / N), rem = (int)(i % N);
    const int nt = rem / 16, g = (rem % 16) / 2, hi = rem & 1;
    int c = nt * 16 + hi * 8 + g;
    const uint16_t *src = s0;
    if (gate_up) {
      src = hi ? s1 : s0;
      c = nt * 8 + g;
    }
    const float f = __half2float(__ushort_as_half(src[(int64_t)grp * src_n + c]));
    srep[i] = kern_f2bf(f);
  }
}

int w4a16_num_sms(void) {
  static int sms[KERN_MAX_DEVICES];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= KERN_MAX_DEVICES) return 132;
  if (!sms[dev] && cudaDeviceGetAttribute(&sms[dev], cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
    sms[dev] = 132;
  return sms[dev];
}

} // namespace

/* Whether dense split-K GEMMs sum their splits inside a thread block cluster (compute
 * capability 9.0 and up; SERVESIM_W4_CLUSTER=0 turns it off, for comparison) rather than
 * through the global workspace. Per device, as the executor drives one GPU per thread. */
int kern_w4::w4a16_cluster_on(void) {
  static int env = -1;
  if (env < 0) env = kern_env_int("SERVESIM_W4_CLUSTER", 1) != 0;
  return env && kern_device_cc() >= 90;
}

namespace {

/* Split-K capacity of a workspace: splits * padded rows <= kSplitRows; block tiles that split
 * <= kCounters. */
constexpr int kSplitRows = 512, kMaxSplits = 8, kCounters = 16384, kDefaultVariant = 8, kDefaultVariantMoe = 2,
              kDefaultVariantMoe16 = 1, kDefaultVariantMoeWide = 9, kDefaultVariantHopper16 = 0, kDefaultLarge = 0;
constexpr int kSkSms = 160; /* stream-K workspace: SMs a device may have (H100 / H200: 132) */

int64_t w4a16_npad(int N) { return ((int64_t)N + 127) / 128 * 128; }

/* The workspace's layout: kCounters arrival counters / flags first (a fixed place, so calls
 * with different N never overwrite each other's counters), then the partials. Empty (NULL
 * pointers, no room) without a workspace or one with no room past the counters. */
W4Ws w4a16_ws_view(void *ws, size_t ws_bytes) {
  W4Ws w = {};
  if (ws && ws_bytes > (size_t)kCounters * sizeof(int32_t)) {
    w.cnt = (int32_t *)ws;
    w.part = (float *)((char *)ws + kCounters * sizeof(int32_t));
    w.max_flags = kCounters;
    w.part_floats = (int64_t)((ws_bytes - kCounters * sizeof(int32_t)) / sizeof(float));
  }
  return w;
}

/* One kernel configuration: its dynamic shared memory (the cp.async ring) and how many of its
 * blocks fit on one SM, both fixed per instantiation and computed once. */
template <int MT, int NT, int WK, int WN, int WM, int S, bool MOE, bool GATHER, bool SILU, bool XS, bool RING>
struct W4Cfg {
  static constexpr int BM = WM * MT * 8, BN = WN * NT * 16;
  static constexpr size_t kSmem = XS     ? (size_t)S * (BM * 72 * 2 + (NT + 1) * 16 * 128)
                                  : RING ? (size_t)S * (NT + 2 * MT + 1) * 16 * 128
                                         : 0;
  /* The cluster split-K keeps a block's partial (BM x BN floats) in the ring, or in static
   * shared memory where there is no ring. */
  static constexpr bool kClusterFits = !(XS || RING) || kSmem >= (size_t)BM * BN * sizeof(float);
  static int prepare(int *blocks_per_sm, int *has_sm90) {
    /* The shared-memory limit is a per-device attribute of the function: set it once on each
     * device a launch runs on (the executor drives one GPU per thread). Racing first calls
     * both set the same value, which is harmless. */
    static int occ[KERN_MAX_DEVICES], sm90[KERN_MAX_DEVICES];
    int dev = 0;
    if (int rc = kern_device_slot(&dev)) return rc;
    auto fn = w4a16_kernel<MT, NT, WK, WN, WM, S, MOE, GATHER, SILU, XS, RING>;
    if (occ[dev] <= 0) {
      KERN_CUDA(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kSmem));
      int o = 0;
      KERN_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&o, fn, 128, kSmem));
      /* the cluster split-K exists only in code built for sm_90 and up: a build without it
       * (e.g. compute_80 PTX run on an H100) must keep the workspace path */
      cudaFuncAttributes fa;
      KERN_CUDA(cudaFuncGetAttributes(&fa, fn));
      sm90[dev] = fa.binaryVersion >= 90;
      occ[dev] = o > 0 ? o : 1;
    }
    *blocks_per_sm = occ[dev];
    *has_sm90 = sm90[dev];
    return 0;
  }
};

/* One launch of a configuration. Dense: grid (N tiles, M tiles, K splits); the split count
 * fills about target_per_sm blocks per SM (0: as many as fit), within the workspace. MoE: grid
 * (N tiles, an upper bound of expert row tiles, kernels/moe_plan.h), no split. */
template <int MT, int NT, int WK, int WN, int WM, int S, bool MOE, bool GATHER, bool SILU, bool XS, bool RING>
int w4a16_launch(const W4Args &a0, void *ws, size_t ws_bytes, int rows_max, int target_per_sm, cudaStream_t st) {
  using Cfg = W4Cfg<MT, NT, WK, WN, WM, S, MOE, GATHER, SILU, XS, RING>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN;
  W4Args a = a0;
  int occ = 1, has_sm90 = 0;
  if (int rc = Cfg::prepare(&occ, &has_sm90)) return rc;
  dim3 grid(kern_cdiv(a.N, BN), MOE ? moe_plan_row_tiles(rows_max, a.n_experts, BM) : kern_cdiv(a.M, BM), 1);
  int cluster_z = 1;
  if (!MOE) {
    const int64_t blocks = (int64_t)grid.x * grid.y;
    const int KC = a.K / 64;
    const bool cluster = Cfg::kClusterFits && has_sm90 && w4a16_cluster_on();
    int max_splits = kMaxSplits;
    max_splits = max_splits > KC / WK ? KC / WK : max_splits; /* every warp gets a k64 chunk */
    while (max_splits > 1 && (int64_t)max_splits * grid.y * BM > kSplitRows) max_splits--;
    const int64_t target = (int64_t)(target_per_sm > 0 ? target_per_sm : occ) * w4a16_num_sms();
    int splits = blocks < target ? (int)((target + blocks - 1) / blocks) : 1;
    splits = splits > max_splits ? max_splits : splits;
    splits = splits < 1 ? 1 : splits;
    if (cluster && splits > 1) { /* the splits of a tile: one cluster, no workspace */
      a.cluster_split = 1;
      cluster_z = splits;
    } else {
      /* the workspace (w4a16_ws_view): an arrival counter a block tile, the partials */
      const W4Ws w = w4a16_ws_view(ws, ws_bytes);
      const int64_t part_floats = (int64_t)splits * grid.y * BM * grid.x * BN;
      if (splits > 1 && (!w.cnt || blocks > w.max_flags || w.part_floats < part_floats))
        splits = 1; /* no (or too small a) workspace: still correct, less parallel */
      if (splits > 1) {
        a.ws_cnt = w.cnt;
        a.ws_part = w.part;
      }
    }
    grid.z = splits;
  }
  return kern_launch_ex(w4a16_kernel<MT, NT, WK, WN, WM, S, MOE, GATHER, SILU, XS, RING>, grid, dim3(128),
                        Cfg::kSmem, st, cluster_z, a);
}

/* Small-M variants (M <= 16, or MoE tiles of <= 16 rows), selectable for tuning with
 * SERVESIM_W4_VARIANT (dense) and SERVESIM_W4_VARIANT_MOE (expert GEMMs); bench_kernels.sh
 * TUNE=1 compares them:
 *   0 registers, 2 chunks in flight per warp, ~4 blocks/SM   1 registers, 4 chunks, ~4/SM
 *   2 registers, 2 chunks, ~8/SM                             3 registers, 4 chunks, ~8/SM
 *   4 cp.async ring of 4 stages, ~4/SM                       5 ring of 8 stages, ~4/SM
 *   6 registers, 4 chunks, 64 columns per warp, ~4/SM        7 registers, 8 chunks, ~4/SM
 *   8 registers, 4 chunks, ~2/SM (fewer K splits)
 *   9 registers, 4 chunks, the 4 warps split N (128 columns a block, each warp all of K: no
 *     in-block sum)                                          10 the same, 2 warps on N x 2 on K
 * Defaults, the fastest measured (kernels/NOTES.md): 8 for dense GEMMs (the H100). For the MoE
 * expert GEMMs 9 wherever its blocks fill the GPU twice over (moe_plan_mma_wide; item 35, H200, fused MoE:
 * 2..24 tokens 2-11% less time than the defaults below, 32..192 tokens 11-19%; at one token, 8
 * experts x 24 or 32 column tiles of 128, variant 2 was 16% faster), otherwise 2 for 8-row tiles
 * (the H100: no K split there; fused MoE 207.5 against 216.0 us at 8 tokens, 8448474) and 1
 * for those of 16-row tiles (MT 2), the fastest on the H200: fused MoE at 128
 * and 192 tokens 551 / 618 us against variant 2's 602 / 670, while at 8..96 tokens (8-row
 * tiles) variant 1 was 5-8% slower than 2 (kernels/NOTES.md item 25). On Hopper, where the
 * dense GEMMs of 9..16 rows come here only when the preload kernel has no one-wave plan (qkv at
 * TP=1), their 16-row tiles take variant 0 (2 chunks in flight, 4 blocks an SM): qkv at 9 / 12 /
 * 16 rows 11.3 / 11.3 / 11.3 us against variant 8's 11.8 / 12.0 / 12.4 on the H200 (item 25).
 * (Tried and dropped, 3184f17 on an H100: 16 columns per warp with 8 chunks, and 8 chunks at
 * ~1/SM, summed 464 and 429 us against variant 8's 334 us; 38e971d: a rolling register
 * pipeline, post-mma scaling, a TMA producer/consumer kernel; kernels/NOTES.md.) */
int w4a16_variant(bool moe, int mt, bool wide) {
  static int v[2] = {-2, -2}; /* dense, MoE: -1 = the default */
  int &x = v[moe ? 1 : 0];
  if (x == -2) {
    x = kern_env_int(moe ? "SERVESIM_W4_VARIANT_MOE" : "SERVESIM_W4_VARIANT", -1);
    if (x < -1 || x > (moe ? 10 : 8)) x = -1; /* (9 and 10 the experts' only: gpu_kern_moe tests them) */
  }
  if (x >= 0) return x;
  if (moe) return wide ? kDefaultVariantMoeWide : mt == 2 ? kDefaultVariantMoe16 : kDefaultVariantMoe;
  return mt == 2 && kern_device_cc() == 90 ? kDefaultVariantHopper16 : kDefaultVariant;
}

template <int MT, bool MOE, bool GATHER, bool SILU>
int w4a16_small(const W4Args &a, void *ws, size_t wsb, int rows_max, cudaStream_t st) {
  /* the grouped expert GEMMs: 128 columns a block (variant 9) where those blocks fill the GPU
   * twice over (moe_plan_mma_wide) */
  const bool wide = MOE && moe_plan_mma_wide(rows_max, a.n_experts, a.N, w4a16_num_sms());
  const int v = w4a16_variant(MOE, MT, wide);
  if constexpr (MOE) { /* (the experts' only) */
    if (v == 9) return w4a16_launch<MT, 2, 1, 4, 1, 4, MOE, GATHER, SILU, false, false>(a, ws, wsb, rows_max, 4, st);
    if (v == 10) return w4a16_launch<MT, 2, 2, 2, 1, 4, MOE, GATHER, SILU, false, false>(a, ws, wsb, rows_max, 4, st);
  }
  switch (v) {
    case 1: return w4a16_launch<MT, 2, 4, 1, 1, 4, MOE, GATHER, SILU, false, false>(a, ws, wsb, rows_max, 4, st);
    case 2: return w4a16_launch<MT, 2, 4, 1, 1, 2, MOE, GATHER, SILU, false, false>(a, ws, wsb, rows_max, 8, st);
    case 3: return w4a16_launch<MT, 2, 4, 1, 1, 4, MOE, GATHER, SILU, false, false>(a, ws, wsb, rows_max, 8, st);
    case 4: return w4a16_launch<MT, 2, 4, 1, 1, 4, MOE, GATHER, SILU, false, true>(a, ws, wsb, rows_max, 4, st);
    case 5: return w4a16_launch<MT, 2, 4, 1, 1, 8, MOE, GATHER, SILU, false, true>(a, ws, wsb, rows_max, 4, st);
    case 6: return w4a16_launch<MT, 4, 4, 1, 1, 4, MOE, GATHER, SILU, false, false>(a, ws, wsb, rows_max, 4, st);
    case 7: return w4a16_launch<MT, 2, 4, 1, 1, 8, MOE, GATHER, SILU, false, false>(a, ws, wsb, rows_max, 4, st);
    case 8: return w4a16_launch<MT, 2, 4, 1, 1, 4, MOE, GATHER, SILU, false, false>(a, ws, wsb, rows_max, 2, st);
    default: return w4a16_launch<MT, 2, 4, 1, 1, 2, MOE, GATHER, SILU, false, false>(a, ws, wsb, rows_max, 4, st);
  }
}

/* The fewest tile rows an expert (w4a16_moe_tile_rows) with which the grouped expert GEMMs take
 * the Hopper wgmma path (SERVESIM_W4_WGMMA_MOE_FROM; 0: never; gate_up only where the caller gives
 * x_sorted). Default 17: from there its 32-row tiles, weights through the producer's stages, took
 * 4-9% off the 32-row mma.sync tiles at 256 and 384 tokens (18 and 27 tile rows; H200,
 * kernels/NOTES.md item 32); with their weights in registers they lost, as did the 64-row tiles
 * (item 25: at 24 rows an expert on average 845-855 us against the mma.sync tiles' 674-763). Up
 * to 16 rows the mma.sync tiles stay: a 16-row wgmma tile was within 1% of them (item 32). */
static int w4a16_wgmma_moe_from(void) {
  static int env = -1;
  if (env < 0) env = kern_env_int_min("SERVESIM_W4_WGMMA_MOE_FROM", 17, 0);
  return env;
}
/* The rows an expert the grouped expert GEMMs pick their tile height by (on Hopper the smallest
 * of 8 and 16 -- the mma.sync tiles --, and from 17 the wgmma kernel, whose heights come from
 * moe_plan_split since kernels/NOTES.md item 33, or with SERVESIM_W4WS_MOE_SPLIT=0 the smallest of
 * 32, 48, 64, 96 and 128 that holds them; without the wgmma path 17..32 rows take the 32-row mma.sync tiles and 33..256
 * the 64-row ones, w4a16_dispatch): the mean T k / local experts plus SERVESIM_W4_MOE_TILE_Z10
 * tenths of a standard deviation of a random routing's count (kernels/moe_plan.h; 0: the mean alone -- the heights, the wgmma
 * threshold and the variants stay as now). Default 5: on the H200 its heights were the fastest
 * measured, or within the machine's spread of it, at each of 96..2048 tokens, where the mean alone
 * took 633.5 against 551 us at 128 tokens (8- instead of 16-row tiles), 769.5 against 629-715 at
 * 256 (16- instead of 32-row), 32-row tiles at 512 (1036 against ~800-890 on the wgmma path,
 * item 21) and 64-row wgmma tiles at 1024 (1153.7 against 1086.1; kernels/NOTES.md item 25). */
static int w4a16_moe_tile_rows(int pairs, int n_experts) {
  static int z10 = -1;
  if (z10 < 0) {
    z10 = kern_env_int("SERVESIM_W4_MOE_TILE_Z10", 5);
    z10 = z10 < 0 ? 5 : z10 > 80 ? 80 : z10;
  }
  return moe_plan_tile_rows(pairs, n_experts, z10);
}

/* ...and whether this call takes it: its buffers 16-byte aligned (the tensor map and the gather's
 * 16-byte copies need it; an unaligned call keeps the mma.sync tiles, which take any). tile_rows
 * is w4a16_moe_tile_rows, whose T k / local experts overstates an EP rank's rows an expert (a speed
 * effect only). */
static bool w4a16_wgmma_moe_on(int tile_rows, const void *p0, const void *p1, const void *p2, const void *p3,
                               const void *p4) {
  const int from = w4a16_wgmma_moe_from();
  const uintptr_t bits = (uintptr_t)p0 | (uintptr_t)p1 | (uintptr_t)p2 | (uintptr_t)p3 | (uintptr_t)p4;
  return from > 0 && tile_rows >= from && (bits & 15) == 0 && w4a16_wgmma_available();
}

/* xs[r] = x[sorted_pair[r] / topk] (K bf16 a row) for the rows r < expert_off[n_experts], the
 * local experts' pairs in expert order: gate_up's activations as one block of rows an expert,
 * which one tensor map of the wgmma kernel reads. 16-byte copies, a grid-stride loop. */
__global__ void w4_moe_gather_kernel(uint16_t *xs, const uint16_t *x, const int32_t *sorted_pair,
                                     const int32_t *expert_off, int n_experts, int topk, int K) {
  kern_pdl_wait(); /* expert_off, sorted_pair and x are earlier kernels' */
  kern_pdl_trigger();
  const int per_row = K / 8;
  const int64_t n = (int64_t)expert_off[n_experts] * per_row;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / per_row;
    reinterpret_cast<uint4 *>(xs)[i] =
        reinterpret_cast<const uint4 *>(x)[(int64_t)(sorted_pair[r] / topk) * per_row + i % per_row];
  }
}

/* The fewest rows a dense GEMM takes the Hopper wgmma path with (SERVESIM_W4_WGMMA_FROM, 17..257;
 * below it the mma.sync tiles; 257 meant "never" while the path ended at 256 rows -- now
 * SERVESIM_W4_WGMMA=0 does). Default 17: at 20, 24 and 32 rows the wgmma kernel's 64-row tiles
 * beat the 32-row mma.sync tiles at 9 of the 12 Qwen3 shapes and slices (summed at 32 rows 110.2
 * against 117.9 us on the H200; down TP=1, gate_up TP=2, o_proj TP=4 0.3-0.6 us slower;
 * kernels/NOTES.md item 16). */
static int w4a16_wgmma_from(void) {
  static int env = -1;
  if (env < 0) {
    env = kern_env_int("SERVESIM_W4_WGMMA_FROM", 17);
    env = env < 17 ? 17 : env > 257 ? 257 : env;
  }
  return env;
}

/* The most rows a dense GEMM takes the Hopper wgmma path with (SERVESIM_W4_WGMMA_TO, at least
 * 256; above it the mma.sync 64 x 256 tiles). Default: every row count -- at 512, 1024 and 4096
 * rows the wgmma kernel took 284 / 466 / 1976 us summed over the twelve Qwen3 shapes and slices
 * against the 64 x 256 tiles' 846 / 1235 / 3884 (cuBLAS bf16 249 / 445 / 1663 in the same run),
 * faster at each of the 36 points (H200, kernels/NOTES.md item 20). */
static int w4a16_wgmma_to(void) {
  static int env = -1;
  if (env < 0) {
    env = kern_env_int("SERVESIM_W4_WGMMA_TO", INT_MAX);
    env = env < 256 ? 256 : env;
  }
  return env;
}

/* Every size: rows per tile (M, or the MoE's tile rows an expert, w4a16_moe_tile_rows) picks the
 * configuration. */
template <bool MOE, bool GATHER, bool SILU>
int w4a16_dispatch(const W4Args &a, void *ws, size_t wsb, int rows, int rows_max, cudaStream_t st) {
  if constexpr (!MOE)
    if (rows <= 16 && w4a16_streamk_on()) {
      int launched = 0;
      const int rc = w4a16_streamk_launch(a, w4a16_num_sms(), st, &launched);
      if (rc || launched) return rc;
    }
  if constexpr (!MOE)
    if (rows <= 16 && w4a16_preload_on()) {
      int launched = 0;
      const int rc = w4a16_preload_launch(a, w4a16_num_sms(), st, &launched);
      if (rc || launched) return rc;
    }
  if (rows <= 8) return w4a16_small<1, MOE, GATHER, SILU>(a, ws, wsb, rows_max, st);
  if (rows <= 16) return w4a16_small<2, MOE, GATHER, SILU>(a, ws, wsb, rows_max, st);
  if constexpr (!MOE)
    if (rows >= w4a16_wgmma_from() && rows <= w4a16_wgmma_to() && w4a16_wgmma_available())
      return w4a16_wgmma_launch(a, w4a16_num_sms(), w4a16_ws_view(ws, wsb), st); /* stream-K uses the workspace */
  /* shared activation tiles (rows x columns): 32 x 128 up to 32 rows; 33..256 rows by
   * SERVESIM_W4_LARGE (default 64 x 128); then 64 x 256 */
  if (rows <= 32) return w4a16_launch<4, 2, 1, 4, 1, 4, MOE, GATHER, SILU, true, false>(a, ws, wsb, rows_max, 0, st);
  if (rows <= 256) {
    /* SERVESIM_W4_LARGE (tuning): 0 tiles 64 x 128, 1 tiles 32 x 256, 2 tiles 64 x 256 */
    static int large = -1;
    if (large < 0) large = kern_env_int("SERVESIM_W4_LARGE", kDefaultLarge);
    if (large == 1) return w4a16_launch<4, 4, 1, 4, 1, 4, MOE, GATHER, SILU, true, false>(a, ws, wsb, rows_max, 0, st);
    if (large == 2) return w4a16_launch<8, 4, 1, 4, 1, 3, MOE, GATHER, SILU, true, false>(a, ws, wsb, rows_max, 0, st);
    return w4a16_launch<8, 2, 1, 4, 1, 4, MOE, GATHER, SILU, true, false>(a, ws, wsb, rows_max, 0, st);
  }
  return w4a16_launch<8, 4, 1, 4, 1, 3, MOE, GATHER, SILU, true, false>(a, ws, wsb, rows_max, 0, st);
}

/* Both repacks into the K x N tile layout: the 4-bit words, then the group scales. One source
 * matrix (gate_up 0: q1/s1 unused, src_n = N) or gate and up interleaved (gate_up 1, src_n = I). */
int w4a16_repack(int32_t *qrep, bf16_t *srep, const int32_t *q0, const int32_t *q1,
                 const uint16_t *s0, const uint16_t *s1, int K, int N, int src_n, int gate_up,
                 cudaStream_t st) {
  const int64_t words = (int64_t)K * N / 8;
  w4a16_repack_kernel<<<kern_grid_256(words), 256, 0, st>>>(qrep, q0, q1, K, N, src_n, gate_up);
  KERN_LAUNCHED();
  const int64_t ns = (int64_t)(K / 128) * N;
  w4a16_repack_scales_kernel<<<kern_grid_256(ns), 256, 0, st>>>(srep, s0, s1, K, N, src_n, gate_up);
  KERN_LAUNCHED();
  return 0;
}

} // namespace

extern "C" {

int kern_gptq_repack(int32_t *qrep, bf16_t *srep, const int32_t *qweight, const uint16_t *scales,
                     int K, int N, kern_stream_t stream) {
  KERN_REQUIRE(K > 0 && K % 128 == 0, "kern_gptq_repack: K = %d is not a positive multiple of 128", K);
  KERN_REQUIRE(N > 0 && N % 16 == 0, "kern_gptq_repack: N = %d is not a positive multiple of 16", N);
  return w4a16_repack(qrep, srep, qweight, qweight, scales, scales, K, N, N, 0,
                      (cudaStream_t)stream);
}

int kern_gptq_repack_gate_up(int32_t *qrep, bf16_t *srep, const int32_t *qw_gate,
                             const uint16_t *s_gate, const int32_t *qw_up, const uint16_t *s_up,
                             int K, int I, kern_stream_t stream) {
  KERN_REQUIRE(K > 0 && K % 128 == 0, "kern_gptq_repack_gate_up: K = %d is not a positive multiple of 128", K);
  KERN_REQUIRE(I > 0 && I % 8 == 0, "kern_gptq_repack_gate_up: I = %d is not a positive multiple of 8", I);
  return w4a16_repack(qrep, srep, qw_gate, qw_up, s_gate, s_up, K, 2 * I, I, 1,
                      (cudaStream_t)stream);
}

size_t kern_w4a16_workspace_bytes(int max_M, int max_N) {
  (void)max_M;
  const int64_t npad = w4a16_npad(max_N);
  /* the split-K partials, or the Hopper stream-K slots (a block's tile of up to 256 rows x 128
   * columns of floats -- 128 rows x 192 columns take less --, one block an SM, for up to kSkSms
   * SMs: ~21 MB), whichever is larger */
  const int64_t split = (int64_t)kSplitRows * npad, sk = (int64_t)kSkSms * WS_COST_SK_SLOT_FLOATS(256, 2);
  return (size_t)kCounters * sizeof(int32_t) + (size_t)(split > sk ? split : sk) * sizeof(float);
}

int kern_w4a16_gemm(bf16_t *y, const bf16_t *x, const int32_t *qrep, const bf16_t *srep, int M,
                    int K, int N, void *workspace, size_t workspace_bytes, kern_stream_t stream) {
  KERN_REQUIRE(M >= 0, "kern_w4a16_gemm: M = %d < 0", M);
  KERN_REQUIRE(K > 0 && K % 128 == 0, "kern_w4a16_gemm: K = %d is not a positive multiple of 128 (group size)", K);
  KERN_REQUIRE(N > 0 && N % 16 == 0, "kern_w4a16_gemm: N = %d is not a positive multiple of 16", N);
  if (M == 0) return 0;
  W4Args a = {};
  a.y = y; a.x = x; a.qrep = (const uint4 *)qrep; a.srep = (const uint32_t *)srep;
  a.M = M; a.K = K; a.N = N;
  cudaStream_t st = (cudaStream_t)stream;
  return w4a16_dispatch<false, false, false>(a, workspace, workspace_bytes, M, M, st);
}

int kern_moe_w4a16_gate_up_silu(bf16_t *h, const bf16_t *x, const int32_t *qrep,
                                const bf16_t *srep, const int32_t *expert_off,
                                const int32_t *sorted_pair, int T, int k, int H, int I,
                                int n_local_experts, bf16_t *x_sorted, kern_stream_t stream) {
  KERN_REQUIRE(T >= 0 && k > 0, "kern_moe_w4a16_gate_up_silu: T = %d, k = %d", T, k);
  KERN_REQUIRE(H > 0 && H % 128 == 0, "kern_moe_w4a16_gate_up_silu: H = %d is not a multiple of 128", H);
  KERN_REQUIRE(I > 0 && I % 8 == 0, "kern_moe_w4a16_gate_up_silu: I = %d is not a multiple of 8", I);
  KERN_REQUIRE(n_local_experts > 0, "kern_moe_w4a16_gate_up_silu: no local experts");
  if (T == 0) return 0;
  W4Args a = {};
  a.y = h; a.x = x; a.qrep = (const uint4 *)qrep; a.srep = (const uint32_t *)srep;
  a.M = T * k; a.K = H; a.N = 2 * I;
  a.expert_off = expert_off; a.sorted_pair = sorted_pair; a.topk = k; a.n_experts = n_local_experts;
  const int tile_rows = w4a16_moe_tile_rows(T * k, n_local_experts);
  cudaStream_t st = (cudaStream_t)stream;
  if (x_sorted && w4a16_wgmma_moe_on(tile_rows, x, x_sorted, h, qrep, srep)) {
    const int blocks = std::min(kern_grid_256((int64_t)T * k * (H / 8)), 8 * w4a16_num_sms()); /* 16-byte copies */
    if (int rc = kern_launch_ex(w4_moe_gather_kernel, dim3((unsigned)blocks), dim3(256), 0, st, 1, (uint16_t *)x_sorted, a.x,
                                sorted_pair, expert_off, n_local_experts, k, H))
      return rc;
    a.x = (const uint16_t *)x_sorted;
    return w4a16_wgmma_moe_launch(a, tile_rows, 1, w4a16_num_sms(), st);
  }
  return w4a16_dispatch<true, true, true>(a, NULL, 0, tile_rows, T * k, st);
}

int kern_moe_w4a16_down(bf16_t *y, const bf16_t *h, const int32_t *qrep, const bf16_t *srep,
                        const int32_t *expert_off, int T, int k, int I, int H,
                        int n_local_experts, kern_stream_t stream) {
  KERN_REQUIRE(T >= 0 && k > 0, "kern_moe_w4a16_down: T = %d, k = %d", T, k);
  KERN_REQUIRE(I > 0 && I % 128 == 0, "kern_moe_w4a16_down: I = %d is not a multiple of 128 (use EP at TP=8)", I);
  KERN_REQUIRE(H > 0 && H % 16 == 0, "kern_moe_w4a16_down: H = %d is not a multiple of 16", H);
  KERN_REQUIRE(n_local_experts > 0, "kern_moe_w4a16_down: no local experts");
  if (T == 0) return 0;
  W4Args a = {};
  a.y = y; a.x = h; a.qrep = (const uint4 *)qrep; a.srep = (const uint32_t *)srep;
  a.M = T * k; a.K = I; a.N = H;
  a.expert_off = expert_off; a.topk = k; a.n_experts = n_local_experts;
  const int tile_rows = w4a16_moe_tile_rows(T * k, n_local_experts);
  if (w4a16_wgmma_moe_on(tile_rows, h, y, qrep, srep, NULL))
    return w4a16_wgmma_moe_launch(a, tile_rows, 0, w4a16_num_sms(), (cudaStream_t)stream);
  return w4a16_dispatch<true, false, false>(a, NULL, 0, tile_rows, T * k, (cudaStream_t)stream);
}

} /* extern "C" */
