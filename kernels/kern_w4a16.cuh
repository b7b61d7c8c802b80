/* kern_w4a16.cuh: what the W4A16 GEMM's two source files share (internal to kernels/): the
 * launch arguments, the in-register dequantisation of a tile word into an mma A fragment, the
 * cp.async helpers, and the Hopper wgmma path's entry (kern_w4a16_wgmma.cu). */
#ifndef SERVESIM_KERN_W4A16_CUH
#define SERVESIM_KERN_W4A16_CUH

#include "kernels/kern_common.cuh"
#include "kernels/moe_plan.h"
#include "kernels/w4g_layout.h"

namespace kern_w4 {

struct W4Args {
  uint16_t *y;             /* [rows, N] or [rows, N/2] with SILU */
  const uint16_t *x;       /* [*, K] */
  const uint4 *qrep;       /* tile layout, E stacked */
  const uint32_t *srep;    /* bf16 pairs, E stacked */
  int M, K, N;
  const int32_t *expert_off;  /* MoE: [E_l + 1] or NULL (dense) */
  const int32_t *sorted_pair; /* MoE gate_up: x row of sorted row r = sorted_pair[r] / topk */
  int topk, n_experts;
  int moe_ha, moe_hb, moe_part; /* MoE: the tile split of moe_plan_expert_tiles (all 0: tiles of bm
                                   rows, ceil(n / bm) an expert; w4_moe_tile, w4_moe_list) */
  float *ws_part;          /* split-K partials */
  int32_t *ws_cnt;         /* split-K arrival counters (zero between calls) */
  int cluster_split;       /* 1: the gridDim.z K splits of a tile form one thread block cluster
                              and are summed through distributed shared memory (sm_90+) */
  int x_tail_rows;         /* wgmma kernel: rows of the last row tile's activation box */
  int sk_whole;            /* wgmma kernel's stream-K instance: 1 a persistent grid of whole tiles
                              (block b the tiles b, b + blocks, ...; no partials) */
};

static constexpr uint32_t kMask = 0x000f000fu, kMagic = 0x43004300u;

/* bf16 128 + q in both halves of a register from the low nibbles q of bytes 0 and 2 of x:
 * (x & kMask) | kMagic in one lop3 (the compiler emits an and and an or). */
static __device__ __forceinline__ uint32_t w4_raw_reg(uint32_t x) {
  uint32_t v;
  asm("lop3.b32 %0, %1, %2, %3, 0xea;\n" : "=r"(v) : "r"(x), "n"(kMask), "r"(kMagic));
  return v;
}

/* One A fragment register (bf16x2) from the low nibbles of bytes 0 and 2 of x, times scale s (a
 * bf16 pair): 128 + q minus 136 is q - 8 exactly, then the product. */
static __device__ __forceinline__ uint32_t w4_dequant_reg(uint32_t x, uint32_t s) {
  const __nv_bfloat162 c136 = __floats2bfloat162_rn(136.0f, 136.0f);
  uint32_t v = w4_raw_reg(x);
  __nv_bfloat162 w = __hsub2(*reinterpret_cast<__nv_bfloat162 *>(&v), c136);
  w = __hmul2(w, *reinterpret_cast<__nv_bfloat162 *>(&s));
  return *reinterpret_cast<uint32_t *>(&w);
}

/* The same register unscaled: bf16 q - 8 (exact). 136 is spelled here as an immediate and in
 * w4_dequant_reg as a conversion, each as its kernels were measured with: one spelling for both
 * changes the other kernels' generated code. */
static __device__ __forceinline__ uint32_t w4_unscaled_reg(uint32_t x) {
  const uint32_t c136 = 0x43084308u; /* bf16 136.0 in both halves */
  const uint32_t v = w4_raw_reg(x);
  const __nv_bfloat162 w = __hsub2(*reinterpret_cast<const __nv_bfloat162 *>(&v),
                                   *reinterpret_cast<const __nv_bfloat162 *>(&c136));
  return *reinterpret_cast<const uint32_t *>(&w);
}

/* The 32 bits whose low nibbles of bytes 0 and 2 are register r of step s (0..3, compile-time
 * constants once unrolled) of the mma.sync kernels' A fragment, from the lane's own 16 bytes of
 * the chunk, p: word w4g_piece_word(s, r) shifted by w4g_piece_shift(s, r) (kernels/w4g_layout.h). */
static __device__ __forceinline__ uint32_t w4_piece_bits(const uint4 &p, int s, int r) {
  const int i = w4g_piece_word(s, r), sh = w4g_piece_shift(s, r);
  const uint32_t x = i == 0 ? p.x : i == 1 ? p.y : i == 2 ? p.z : p.w;
  return sh ? x >> sh : x;
}

/* A fragment (4 regs of bf16x2) from one tile word (the wgmma kernels' step word); s_g2 / s_g82
 * are the scales of rows g and g+8 broadcast into both halves. */
static __device__ __forceinline__ void w4_dequant(uint32_t q, uint32_t s_g2, uint32_t s_g82,
                                           uint32_t a[4]) {
#pragma unroll
  for (int r = 0; r < 4; r++) a[r] = w4_dequant_reg(r ? q >> (4 * r) : q, (r & 1) ? s_g82 : s_g2);
}

/* The mma.sync kernels' A fragment of step s from the lane's own 16 bytes of the chunk, p;
 * the same cost as w4_dequant. */
static __device__ __forceinline__ void w4_dequant_piece(const uint4 &p, int s, uint32_t s_g2, uint32_t s_g82,
                                                 uint32_t a[4]) {
#pragma unroll
  for (int r = 0; r < 4; r++) a[r] = w4_dequant_reg(w4_piece_bits(p, s, r), (r & 1) ? s_g82 : s_g2);
}

/* Step s's A fragment unscaled, as the bf16 integers q - 8 (exact): w4_dequant_piece without
 * its product, for kernels that scale the fp32 sums instead (kern_w4a16_preload.cu). */
static __device__ __forceinline__ void w4_unscaled_piece(const uint4 &p, int s, uint32_t a[4]) {
#pragma unroll
  for (int r = 0; r < 4; r++) a[r] = w4_unscaled_reg(w4_piece_bits(p, s, r));
}

/* acc[NT][MT] += one k64 chunk: the lane's 16 bytes wq[NT] of each tile (four k16 steps), dequantised
 * to bf16 (q - 8) * s with their scale pairs sc[NT] (rows g and g+8), times the activations
 * xv[MT][2] (the B fragments of the four steps). */
template <int NT, int MT>
static __device__ __forceinline__ void w4_chunk(float (&acc)[NT][MT][4], const uint4 (&wq)[NT], const uint32_t (&sc)[NT],
                                                const uint4 (&xv)[MT][2]) {
#pragma unroll
  for (int s = 0; s < 4; s++) {
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
      uint32_t af[4];
      w4_dequant_piece(wq[nt], s, __byte_perm(sc[nt], 0, 0x1010), __byte_perm(sc[nt], 0, 0x3232), af);
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
        const uint4 &lo = xv[mt][s >> 1];
        kern_mma_bf16(acc[nt][mt], af, (s & 1) ? lo.z : lo.x, (s & 1) ? lo.w : lo.y);
      }
    }
  }
}

/* Stores one mma accumulator fragment (lane g = ln / 4, t = ln % 4 of n16 tile ntile, rows m
 * and m + 1 with m = 8 * row group + 2t) as bf16: columns 16 ntile + g and + 8, or with SILU
 * (interleaved gate/up tiles) silu(gate) * up into column 8 ntile + g of an [rows, N/2] output.
 * Rows at or past row_end are not written. */
template <bool SILU>
static __device__ __forceinline__ void w4_store_frag(uint16_t *y, int N, int row_end, int m, int ntile, int g,
                                                     float v0, float v1, float v2, float v3) {
  if (SILU) {
    const int n = ntile * 8 + g, NO = N / 2;
    if (m < row_end) y[(size_t)m * NO + n] = kern_f2bf(kern_silu(v0) * v2);
    if (m + 1 < row_end) y[(size_t)(m + 1) * NO + n] = kern_f2bf(kern_silu(v1) * v3);
  } else {
    const int n = ntile * 16 + g;
    if (m < row_end) {
      y[(size_t)m * N + n] = kern_f2bf(v0);
      y[(size_t)m * N + n + 8] = kern_f2bf(v2);
    }
    if (m + 1 < row_end) {
      y[(size_t)(m + 1) * N + n] = kern_f2bf(v1);
      y[(size_t)(m + 1) * N + n + 8] = kern_f2bf(v3);
    }
  }
}

/* The wgmma descriptor of a K-major operand in shared memory with the 128-byte swizzle, 8-row
 * groups 1024 bytes apart, starting at smem (k16 step s of a 64-k tile at smem + 32 s): the
 * warp-specialised kernel's activation tiles (kern_w4a16_wgmma.cu) and the rate benches'. */
static __device__ __forceinline__ uint64_t w4_desc_sw128(const void *smem) {
  const uint32_t a = (uint32_t)__cvta_generic_to_shared(smem);
  return (uint64_t)((a & 0x3FFFF) >> 4) | (1ull << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}

/* A weight load into registers: 16 bytes read once, not allocated in L1
 * (ld.global.nc.L1::no_allocate), so that the streaming weights leave L1 to the activations,
 * which a kernel's blocks read over the same K ranges (kernels/NOTES.md item 26). */
static __device__ __forceinline__ uint4 w4_ldg_stream(const uint4 *p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

/* An activation load (16 bytes; the previous kernel's output under programmatic dependent
 * launch): a coherent ld.global, not __ldg. ld.global.nc promises data that no one writes while
 * the kernel runs, and ptxas moves such loads above griddepcontrol.wait (ACQBULK) when their
 * address does not depend on anything after it: the preload kernel's first activation loads at
 * 9..16 rows, and the split-K kernel's at one row tile, were scheduled before the wait in the
 * SASS (kernels/NOTES.md item 27), so they could read x before the kernel that writes it ended.
 * A plain load, in volatile asm so that the compiler keeps it after the wait's (volatile) asm,
 * which ptxas does not move either (checked in the SASS of every instance). */
static __device__ __forceinline__ uint4 w4_ld_act(const uint4 *p) {
  uint4 v;
  asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

static __device__ __forceinline__ void w4_cp16(void *smem, const void *gmem) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(a), "l"(gmem) : "memory");
}
static __device__ __forceinline__ void w4_cp4(void *smem, const void *gmem) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(a), "l"(gmem) : "memory");
}
static __device__ __forceinline__ void w4_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
static __device__ __forceinline__ void w4_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

/* (one warp) the inclusive sum of v over lanes 0..lane */
static __device__ __forceinline__ int w4_warp_incl_sum(int v, int lane) {
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int u = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += u;
  }
  return v;
}

/* (one warp, all lanes) the row tile `target` of bm rows in the mma.sync tiles' grouped expert
 * GEMMs, the tiles numbered expert by expert over the rows expert_off gives each of a.n_experts
 * experts, ceil(n / bm) an expert: s[0] its expert, s[1] its first row, s[2] that expert's row
 * end; s[0] = -1 past the last tile. The experts' counts are scanned 32 at a time, each 32 one
 * memory round trip (loading 128 experts' offsets at once, as w4_moe_list does, cost these tiles
 * 1-2% at 8..128 tokens: kernels/NOTES.md item 33). */
static __device__ __forceinline__ void w4_moe_tile(const W4Args &a, int bm, int target, int lane, int *s) {
  int base = 0, found = 0;
  for (int e0 = 0; e0 < a.n_experts && !found; e0 += 32) {
    const int e = e0 + lane;
    int lo = 0, hi = 0;
    if (e < a.n_experts) { lo = a.expert_off[e]; hi = a.expert_off[e + 1]; }
    const int tiles = (hi - lo + bm - 1) / bm;
    const int incl = w4_warp_incl_sum(tiles, lane);
    const int excl = incl - tiles;
    const bool hit = target >= base + excl && target < base + incl;
    const unsigned ballot = __ballot_sync(0xffffffffu, hit);
    if (hit) {
      s[0] = e;
      s[1] = lo + (target - base - excl) * bm;
      s[2] = hi;
    }
    found = ballot != 0;
    base += __shfl_sync(0xffffffffu, incl, 31);
  }
  if (!found && lane == 0) s[0] = -1;
}

/* One tile of the wgmma kernel's grouped expert GEMMs: its column tile, expert, first row and
 * the expert's row end. */
struct W4MoePiece {
  int tx, e, row0, row_end;
};

/* (one warp, all lanes) the tiles of block blockIdx.x of the wgmma kernel's persistent grid of
 * g = gridDim.x blocks for the grouped expert GEMMs (moe_plan.h): the launch's tiles numbered row
 * tile by row tile, expert by expert over the rows a.expert_off gives, the tx column tiles
 * fastest; the block takes those congruent to its index mod g, listed in order in `list` (at most
 * cap, which the launcher's grid keeps to: MOE_PLAN_MAX_PIECES, or 1 on a grid of a block a tile)
 * and counted in *n. The row tiles are part a.moe_part of moe_plan_expert_tiles's split (bm =
 * a.moe_ha in part 0, a.moe_hb in part 1), or with a.moe_hb = 0 ceil(n / bm) an expert. The
 * offsets of 128 experts are loaded at once (four a lane) before their scan: one memory round trip
 * for the model's 128 experts. */
static __device__ __forceinline__ void w4_moe_list(const W4Args &a, int bm, int tx, int lane, W4MoePiece *list, int cap, int *n) {
  const int ha = a.moe_hb > 0 ? a.moe_ha : bm, g = (int)gridDim.x, b = (int)blockIdx.x, gq = g / tx, gr = g - gq * tx;
  const int tyb = b / tx; /* the row tile of the block's first tile, b (a block a tile: its only one) */
  int base = 0; /* row tiles of the experts before */
  for (int e00 = 0; e00 < a.n_experts; e00 += 128) {
    int lo[4], hi[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int e = e00 + 32 * i + lane;
      lo[i] = e < a.n_experts ? a.expert_off[e] : 0; /* (coherent loads: a previous kernel wrote them) */
      hi[i] = e < a.n_experts ? a.expert_off[e + 1] : 0;
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int e = e00 + 32 * i + lane;
      int row0 = 0;
      const int tiles = moe_plan_expert_tiles(hi[i] - lo[i], ha, a.moe_hb, a.moe_part, &row0);
      const int incl = w4_warp_incl_sum(tiles, lane), first = base + incl - tiles; /* the expert's first row tile */
      if (cap == 1) { /* a block a tile (32-bit throughout: the launcher keeps the tiles below 2^30) */
        if (tyb >= first && tyb < first + tiles) list[0] = W4MoePiece{b - tyb * tx, e, lo[i] + row0 + (tyb - first) * bm, hi[i]};
      } else if (tiles > 0) {
        /* its tiles of this block, l = b + k g = ty tx + c: two divisions, then steps of g = gq tx + gr */
        const int lend = (first + tiles) * tx;
        int k = moe_plan_pieces_below(first * tx, b, g), l = b + k * g;
        if (l < lend) {
          int ty = l / tx, c = l - ty * tx;
          for (; l < lend && k < cap; l += g, k++) {
            list[k] = W4MoePiece{c, e, lo[i] + row0 + (ty - first) * bm, hi[i]};
            ty += gq, c += gr;
            if (c >= tx) c -= tx, ty++;
          }
        }
      }
      base += __shfl_sync(0xffffffffu, incl, 31);
    }
  }
  if (lane == 0) {
    const int c = moe_plan_pieces_below(base * tx, b, g);
    *n = c < cap ? c : cap;
  }
}

/* Hopper (sm_90a) path for dense GEMMs of 17 rows and more: warpgroup MMA (wgmma) with the
 * dequantised weights as the register A operand and the activations staged in shared memory
 * as B. w4a16_wgmma_available() says whether the current device runs it (compute capability
 * 9.0, the sm_90a code present, SERVESIM_W4_WGMMA not 0; 2, the default, is the
 * warp-specialised TMA kernel, 1 the all-threads one). */
int w4a16_wgmma_available(void);
/* The workspace a stream-K launch may use: flags (zero between calls) and partial slots. */
struct W4Ws {
  int32_t *cnt;
  float *part;
  int64_t max_flags, part_floats;
};
int w4a16_wgmma_launch(const W4Args &a, int sms, const W4Ws &ws, cudaStream_t st);
/* The grouped expert GEMMs on the Hopper wgmma path (kern_moe_w4a16_down, and gate_up with
 * silu = 1 over its rows gathered in expert order): a.M = all pairs' rows, a.x in expert order,
 * tile_rows the rows an expert the tiles are sized for (w4a16_moe_tile_rows; picks the height),
 * sms the GPU's SMs (the persistent grid's size). */
int w4a16_wgmma_moe_launch(const W4Args &a, int tile_rows, int silu, int sms, cudaStream_t st);

/* Stream-K path for dense GEMMs of 1..16 rows on Hopper (kern_w4a16_streamk.cu), on with
 * SERVESIM_W4_STREAMK=1 (correct, measured slower than the split-K kernel: kernels/NOTES.md
 * item 7). *launched is 0 when the call does not fit it (not sm_90 code on a 9.x device, the
 * activations and weights too large for shared memory), and the caller runs the split-K
 * kernel instead. */
int w4a16_streamk_on(void);
int w4a16_streamk_launch(const W4Args &a, int sms, cudaStream_t st, int *launched);

/* Preload path for dense GEMMs of 1..16 rows on Hopper (kern_w4a16_preload.cu): every weight
 * load of a call in registers before the programmatic-dependent-launch wait, one wave. On
 * unless SERVESIM_W4_PRELOAD=0; *launched is 0 where it does not apply (more than 16 rows, not
 * 9.x or no sm_90 code, more than 8 K splits needed, 9..16 rows without a one-wave plan:
 * kernels/w4p_plan.h) and the caller runs the split-K kernel. */
int w4a16_preload_on(void);
int w4a16_preload_launch(const W4Args &a, int sms, cudaStream_t st, int *launched);

/* Whether dense split-K GEMMs sum their splits inside a thread block cluster (kern_w4a16.cu). */
int w4a16_cluster_on(void);

} // namespace kern_w4

#endif
