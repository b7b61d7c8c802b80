/* kern_w4a16_streamk: the W4A16 GEMM for 1..16 rows on Hopper, with each block's whole weight
 * share in flight before it waits for the previous kernel.
 *
 * The work is U = (N / 16) * (K / 64) units, one unit = one k64 chunk of one n16 tile, numbered
 * in the repacked layout's memory order (kernels/ref_w4a16.h: tile by tile, chunk by chunk, 512
 * bytes each). A one-wave grid of B = Q * CL blocks forms Q clusters of CL blocks; cluster q
 * takes the whole tiles [q T / Q, (q + 1) T / Q) and its CL blocks split their units evenly and
 * contiguously (kernels/streamk_plan.h), so every SM streams about the same bytes (at most one
 * tile more a cluster: 1.03x for the four Qwen3 shapes at CL = 2 on 132 SMs) and a block's share
 * is one contiguous run of memory.
 *
 * Why this shape (kernels/NOTES.md, items 6 and 7): a per-block timeline of the split-K kernel showed
 * qkv's 288 equal blocks on 132 SMs finishing 1.6x apart; a register stream-K kernel fixed the
 * balance but kept only 4 chunks in flight per warp and was slower (qkv M=1 15.1 against 11.8
 * us); a kernel that only reads the weights reaches ~1.0x the floor only when it issues all its
 * loads before the programmatic-dependent-launch wait, so that they overlap the previous kernel.
 *  1. Before the wait (weights are constants): every lane issues cp.async copies of its 16
 *     bytes of each unit of its warp's part of the run into shared memory, one commit group a
 *     piece of PU units, after one group of the block's group scales; then the block lets the
 *     next kernel be scheduled. (Bulk copies (TMA) of the same pieces, one lane a warp issuing,
 *     delivered about 1.1 TB/s and took 3-5 us just to issue: qkv M=1 19.5 us.)
 *  2. After the wait: the block copies the M activation rows into shared memory (loads through
 *     registers, 8 in flight a thread); warp w walks its units in order (at most two n16
 *     tiles, the host sees to it), waiting for each of its lanes' groups as it reaches it (a
 *     lane reads only the bytes it copied); dequantisation is the split-K kernel's
 *     (w4_dequant_piece), with one accumulator per k16 step (four independent mma chains).
 *     (Activations read from L2 per unit put that latency in every step: 21.7 us.)
 *     Where the rows do not fit beside the weights (large M x K), the split-K kernel runs.
 *  3. Partials: each warp leaves one per tile it touched in shared memory; warp j sums tile j's
 *     in warp order; a tile wholly inside the block is stored; a tile split between blocks of
 *     the cluster is summed by its first block from the holders' shared memory (distributed
 *     shared memory) in rank order -- deterministic, no global round trip. (Summing through a
 *     global workspace with a fence and an arrival counter took ~3 us a call.)
 * Measured on the H100 (kernels/NOTES.md item 7): correct, but slower than the split-K kernel
 * in every form tried (qkv M=1 18.1 against 11.8 us at its best, cluster 1 and 16 warps), so it
 * runs only with SERVESIM_W4_STREAMK=1; SERVESIM_W4_STREAMK_CLUSTER (1, 2 default -- the one
 * the ctest runs --, 4), _WARPS (8, 16) and _TRIGGER (1 early, 0 after the main loop) select
 * the settings bench_kernels.sh STREAMK=1 compares. Compiled for sm_80 too, where the kernel
 * is empty and w4a16_streamk_launch() never launches it. */
#include <cooperative_groups.h>

#include "kernels/kern_w4a16.cuh"
#include "kernels/streamk_plan.h"

namespace kern_w4 {
namespace {

constexpr int kSkPieces = 16;  /* most commit groups of weights per lane */

/* Dynamic shared memory: the warps' tile partials [W][2][MT * 32] float4, the block's two
 * boundary-tile partials [2][MT * 32] float4, the activations [M][K + 8] bf16 (the 16-byte pad
 * makes a warp's fragment reads conflict-free), the block's group scales [slots][8] uint32, its
 * weight run [units][32] uint4. */
template <int MT, int W>
constexpr size_t sk_red_bytes() { return (size_t)(W + 1) * 2 * MT * 32 * 16; }
static size_t sk_smem(int MT, int W, int M, int K, int max_units) {
  const size_t red = (size_t)(W + 1) * 2 * MT * 32 * 16, slots = (size_t)max_units / 2 + 2;
  return red + (size_t)M * (2 * (size_t)K + 16) + slots * 32 + (size_t)max_units * 512;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
/* cp.async.wait_group n for a run-time n in 0..16 */
static __device__ __forceinline__ void sk_wait_groups(int n) {
  switch (n) {
    case 0: w4_wait<0>(); break;   case 1: w4_wait<1>(); break;   case 2: w4_wait<2>(); break;
    case 3: w4_wait<3>(); break;   case 4: w4_wait<4>(); break;   case 5: w4_wait<5>(); break;
    case 6: w4_wait<6>(); break;   case 7: w4_wait<7>(); break;   case 8: w4_wait<8>(); break;
    case 9: w4_wait<9>(); break;   case 10: w4_wait<10>(); break; case 11: w4_wait<11>(); break;
    case 12: w4_wait<12>(); break; case 13: w4_wait<13>(); break; case 14: w4_wait<14>(); break;
    case 15: w4_wait<15>(); break; default: w4_wait<16>(); break;
  }
}
#endif

/* grid (1, 1, B = Q * CL); 32 W threads; clusters of (1, 1, CL) blocks when CL > 1; pu: units
 * per piece. */
template <int MT, int W>
__global__ void __launch_bounds__(32 * W, 16 / W) w4sk_kernel(W4Args a, int CL, int pu, int trigger_early) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int FR = MT * 32; /* float4 per tile partial */
  extern __shared__ __align__(128) unsigned char sk_buf[];
  float4 *red = reinterpret_cast<float4 *>(sk_buf); /* [W][2][FR] */
  float4 *tp = red + W * 2 * FR;                     /* [2][FR]: first, last tile */
  const int xst = a.K + 8;                           /* activation row stride, elements */
  uint16_t *xs = reinterpret_cast<uint16_t *>(sk_buf + sk_red_bytes<MT, W>());
  uint32_t *ssc = reinterpret_cast<uint32_t *>(sk_buf + sk_red_bytes<MT, W>() + (size_t)a.M * xst * 2);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int K = a.K, N = a.N, KC = K / 64, NT16 = N / 16, B = gridDim.z, b = blockIdx.z;
  int64_t lo64, hi64, c_lo64, c_hi64;
  streamk_plan_range(b, NT16, KC, B, CL, &lo64, &hi64, &c_lo64, &c_hi64);
  const int lo = (int)lo64, hi = (int)hi64, c_lo = (int)c_lo64, c_hi = (int)c_hi64;
  const int n = hi - lo, nslots = ((hi - 1) >> 1) - (lo >> 1) + 1;
  uint4 *sw = reinterpret_cast<uint4 *>(ssc + (size_t)((n / 2 + 2) * 8)); /* [n][32] */
  const int wa = lo + warp * n / W, wb = lo + (warp + 1) * n / W;

  /* 1. Everything that does not depend on the previous kernel: the scales (one group), then
   * the lane's 16 bytes of each unit of the warp's run, a group a piece. */
  for (int i = threadIdx.x; i < nslots; i += blockDim.x) {
    const int G = (lo >> 1) + i, tile = G / (KC / 2), grp = G - tile * (KC / 2); /* unit u's group: u / 2 */
    const uint32_t *src = a.srep + ((size_t)grp * NT16 + tile) * 8;
    w4_cp16(ssc + i * 8, src);
    w4_cp16(ssc + i * 8 + 4, src + 4);
  }
  w4_commit();
  int np = 0;
  for (int u = wa; u < wb; np++) {
    const int e = wb - u < pu ? wb : u + pu;
    for (; u < e; u++) w4_cp16(sw + (size_t)(u - lo) * 32 + lane, a.qrep + (size_t)u * 32 + lane);
    w4_commit();
  }
  if (trigger_early) kern_pdl_trigger();

  /* 2. The activations are the previous kernel's output. */
  kern_pdl_wait();
  {
    const int per_row = K / 8, total = a.M * per_row; /* 16-byte pieces */
    for (int i0 = threadIdx.x; i0 < total; i0 += 8 * blockDim.x) {
      uint4 v[8];
#pragma unroll
      for (int q = 0; q < 8; q++) {
        const int i = i0 + q * blockDim.x, r = i / per_row, k8 = i - r * per_row;
        if (i < total) v[q] = w4_ld_act(reinterpret_cast<const uint4 *>(a.x + (size_t)r * K + 8 * k8));
      }
#pragma unroll
      for (int q = 0; q < 8; q++) {
        const int i = i0 + q * blockDim.x, r = i / per_row, k8 = i - r * per_row;
        if (i < total) *reinterpret_cast<uint4 *>(xs + (size_t)r * xst + 8 * k8) = v[q];
      }
    }
  }
  const uint16_t *xrow[MT];
  bool rvalid[MT];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
    const int r = mt * 8 + g;
    rvalid[mt] = r < a.M;
    xrow[mt] = xs + (size_t)(rvalid[mt] ? r : 0) * xst + 16 * t;
  }
  /* one accumulator per k16 step of a chunk: four independent mma chains, not one */
  float acc[4][MT][4];
#pragma unroll
  for (int q = 0; q < 4; q++)
#pragma unroll
    for (int j = 0; j < MT; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) acc[q][j][r] = 0.f;
  /* the lane's partial of the current tile: the four chains in order, then zeroed */
  auto leave = [&](int slot) {
#pragma unroll
    for (int j = 0; j < MT; j++) {
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
      for (int q = 0; q < 4; q++) {
        v.x += acc[q][j][0]; v.y += acc[q][j][1]; v.z += acc[q][j][2]; v.w += acc[q][j][3];
#pragma unroll
        for (int r = 0; r < 4; r++) acc[q][j][r] = 0.f;
      }
      red[(warp * 2 + slot) * FR + j * 32 + lane] = v;
    }
  };
  int c = wa % KC, seg = 0;
  int piece = 0, piece_end = wa; /* this lane's copies of units [.., piece_end) are done */
  sk_wait_groups(np);            /* the scales (every thread's) */
  __syncthreads();               /* ... and the activations */
  constexpr int S = 4;
  for (int u0 = wa; u0 < wb; u0 += S) {
#pragma unroll
    for (int s = 0; s < S; s++) {
      const int u = u0 + s;
      if (u < wb) {
        if (u == piece_end) {
          piece++;
          sk_wait_groups(np - piece);
          piece_end = wa + piece * pu < wb ? wa + piece * pu : wb;
        }
        if (c == 0 && u != wa) { /* a new tile: leave the last one's partial */
          leave(seg);
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
        const uint4 wq = sw[(size_t)(u - lo) * 32 + lane];
        const uint32_t sc = ssc[((u >> 1) - (lo >> 1)) * 8 + g];
        const uint32_t s_g2 = __byte_perm(sc, 0, 0x1010), s_g82 = __byte_perm(sc, 0, 0x3232);
#pragma unroll
        for (int q = 0; q < 4; q++) {
          uint32_t af[4];
          w4_dequant_piece(wq, q, s_g2, s_g82, af);
#pragma unroll
          for (int mt = 0; mt < MT; mt++) {
            const uint4 &xq = xv[mt][q >> 1];
            kern_mma_bf16(acc[q][mt], af, (q & 1) ? xq.z : xq.x, (q & 1) ? xq.w : xq.y);
          }
        }
        c = c + 1 == KC ? 0 : c + 1;
      }
    }
  }
  if (wa < wb) leave(seg);
  if (!trigger_early) kern_pdl_trigger();
  __syncthreads();

  /* 3. Tile tl of the block (lo / KC .. (hi - 1) / KC) to warp (tl - first) % W: its warps'
   * partials in warp order; stored if the block holds the whole tile, else left in tp. */
  const int t_first = lo / KC, t_last = (hi - 1) / KC;
  auto whole = [&](int tl) { return tl * KC >= lo && (tl + 1) * KC <= hi; }; /* the block holds all of tile tl */
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
    if (whole(tl)) {
#pragma unroll
      for (int j = 0; j < MT; j++) w4_store_frag<false>(a.y, N, a.M, j * 8 + 2 * t, tl, g, v[j].x, v[j].y, v[j].z, v[j].w);
    } else {
#pragma unroll
      for (int j = 0; j < MT; j++) tp[(tl == t_first ? 0 : 1) * FR + j * 32 + lane] = v[j];
    }
  }
  if (CL == 1) return; /* clusters hold whole tiles: with one block, so does the block */

  /* Split tiles: the first holder sums the holders' partials in rank order. */
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  const int rank = (int)cluster.block_rank(), nU = c_hi - c_lo;
  for (int side = warp; side < 2; side += W) {
    const int tl = side == 0 ? t_first : t_last;
    if (side == 1 && t_last == t_first) break;
    if (whole(tl)) continue; /* stored above */
    const int r0 = (int)streamk_plan_block_of(tl * KC - c_lo, nU, CL);
    const int r1 = (int)streamk_plan_block_of((tl + 1) * KC - 1 - c_lo, nU, CL);
    if (r0 != rank) continue;
    float4 v[MT];
#pragma unroll
    for (int j = 0; j < MT; j++) v[j] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int r = r0; r <= r1; r++) {
      const int rlo = c_lo + (int)streamk_plan_lo(r, nU, CL);
      const int rs = tl == rlo / KC ? 0 : 1; /* the tile's slot in rank r */
      const float4 *rp = cluster.map_shared_rank(tp + rs * FR, r);
#pragma unroll
      for (int j = 0; j < MT; j++) {
        const float4 p = rp[j * 32 + lane];
        v[j].x += p.x; v[j].y += p.y; v[j].z += p.z; v[j].w += p.w;
      }
    }
#pragma unroll
    for (int j = 0; j < MT; j++) w4_store_frag<false>(a.y, N, a.M, j * 8 + 2 * t, tl, g, v[j].x, v[j].y, v[j].z, v[j].w);
  }
  cluster.sync(); /* no block leaves while another reads its shared memory */
#else
  (void)a; (void)CL; (void)pu; (void)trigger_early;
#endif
}

struct SkDev {
  int ready;     /* 0: not looked up on this device */
  int ok;        /* sm_90 code present and the device is 9.x */
  int smem_max;  /* opt-in shared memory per block */
};

/* Whether this device runs the kernel (compute capability 9.x and code built for it), and its
 * shared-memory limit (set on the function once per device). */
template <int MT, int W>
int sk_prepare(SkDev *d) {
  if (!d->ready) {
    int dev = 0;
    KERN_CUDA(cudaGetDevice(&dev));
    KERN_CUDA(cudaDeviceGetAttribute(&d->smem_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    cudaFuncAttributes fa;
    KERN_CUDA(cudaFuncGetAttributes(&fa, w4sk_kernel<MT, W>));
    d->ok = kern_device_cc() >= 90 && fa.binaryVersion >= 90;
    if (d->ok) {
      KERN_CUDA(cudaFuncSetAttribute(w4sk_kernel<MT, W>, cudaFuncAttributeMaxDynamicSharedMemorySize, d->smem_max));
      KERN_CUDA(cudaFuncSetAttribute(w4sk_kernel<MT, W>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    }
    d->ready = 1;
  }
  return ERR_OK;
}

template <int MT, int W>
int sk_launch(const W4Args &a, int sms, cudaStream_t st, int *launched) {
  static SkDev devs[KERN_MAX_DEVICES];
  int dev = 0;
  if (int rc = kern_device_slot(&dev)) return rc;
  SkDev *d = devs + dev;
  if (int rc = sk_prepare<MT, W>(d)) return rc;
  if (!d->ok) return ERR_OK;
  static int cl_env = -1, early = -1;
  if (cl_env < 0) cl_env = kern_env_int("SERVESIM_W4_STREAMK_CLUSTER", 2);
  if (early < 0) early = kern_env_int("SERVESIM_W4_STREAMK_TRIGGER", 1) != 0;
  const int CL = cl_env == 1 || cl_env == 2 || cl_env == 4 ? cl_env : 2;
  const int64_t T = a.N / 16, KC = a.K / 64;
  if (T * KC > (1 << 30)) return ERR_OK;
  /* one cluster of whole tiles per CL SMs, at least one tile each */
  const int64_t Q = sms / CL < T ? sms / CL : T;
  if (Q < 1) return ERR_OK;
  if (T / Q * KC < CL) return ERR_OK; /* a cluster of one tile must give each block a unit */
  const int64_t B = Q * CL, max_units = ((T + Q - 1) / Q * KC + CL - 1) / CL;
  /* each warp's run may touch at most two tiles: a run of <= KC + 1 units does */
  const int64_t per_warp = (max_units + W - 1) / W;
  if (per_warp > KC + 1) return ERR_OK;
  const size_t smem = sk_smem(MT, W, a.M, a.K, (int)max_units);
  if (smem > (size_t)d->smem_max) return ERR_OK;
  int pu = (int)((per_warp + kSkPieces - 1) / kSkPieces);
  pu = pu < 2 ? 2 : pu;
  *launched = 1;
  return kern_launch_ex(w4sk_kernel<MT, W>, dim3(1, 1, (unsigned)B), dim3(32 * W), smem, st, CL, a, CL, pu, early);
}

} // namespace

int w4a16_streamk_on(void) {
  static int env = -1;
  if (env < 0) env = kern_env_int("SERVESIM_W4_STREAMK", 0) != 0;
  return env;
}

int w4a16_streamk_launch(const W4Args &a, int sms, cudaStream_t st, int *launched) {
  *launched = 0;
  if (a.M < 1 || a.M > 16) return ERR_OK;
  static int warps = -1;
  if (warps < 0) warps = kern_env_int("SERVESIM_W4_STREAMK_WARPS", 16) == 8 ? 8 : 16;
  if (warps == 8) return a.M <= 8 ? sk_launch<1, 8>(a, sms, st, launched) : sk_launch<2, 8>(a, sms, st, launched);
  return a.M <= 8 ? sk_launch<1, 16>(a, sms, st, launched) : sk_launch<2, 16>(a, sms, st, launched);
}

} // namespace kern_w4
