/* kern_w4a16_wgmma: the W4A16 GEMM for 33..256 rows on Hopper, with warpgroup MMA (wgmma).
 *
 * One block = one warpgroup (4 warps, 128 threads) computes 64 output columns (4 n16 weight
 * tiles of the repacked layout, one per warp) for BT = 64 or 128 rows (tokens). The weights are
 * wgmma's A operand from registers: each warp dequantises its tile word exactly as the mma.sync
 * path does (kern_w4a16.cuh) -- the mma.m16n8k16 A fragment is also wgmma's per-warp slice of
 * the 64 x 16 A tile -- so the rounding is the same. The activations are the B operand in
 * shared memory, K-major without swizzle: core matrices of 8 rows x 16 bytes; for each k16
 * step the two k-adjacent cores of a row group are 128 bytes apart (the descriptor's leading
 * byte offset) and row groups 256 bytes apart (stride byte offset).
 * The repacked tile word of lane (g, t) holds, for mma step s of a k64 chunk, the real k
 * 16t + 4s + {0,1} where the mma fragment expects k 2t + {0,1} and 16t + 4s + {2,3} for
 * 2t + 8 + {0,1} (ref_w4a16.h; the mma.sync path reads its B fragments in the same order, so
 * the permutation cancels). wgmma reads B from shared memory in plain k order, so the tile is
 * staged permuted: bf16 pair p (real k 2p, 2p+1) of a row goes to step s = (p >> 1) & 3, k-half
 * h = p & 1, slot t = p >> 3 of the row's 16 bytes. Hence 4-byte copies, one pair per thread.
 * S-stage cp.async pipeline per k64 chunk (activation tile + each thread's own weight word and
 * scale), one barrier per chunk, 4 wgmma per chunk, then wait for them before the next
 * chunk's dequantisation.
 * Compiled for sm_90a only (wgmma needs the architecture-specific target); elsewhere the kernel
 * is empty and w4a16_wgmma_available() is 0, so the mma.sync path runs. */
#include <stdlib.h>
#include <string.h>

#include "kernels/kern_w4a16.cuh"
#include "kernels/w4g_layout.h"

namespace kern_w4 {
namespace {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define W4G_SM90A 1
#endif

constexpr int kW4gStages = 4;

/* bytes of one stage's activation tile: BT rows x 64 k x 2 bytes */
template <int BT>
constexpr int w4g_xbytes() { return BT * 128; }

template <int BT>
constexpr size_t w4g_smem() { return (size_t)kW4gStages * (w4g_xbytes<BT>() + 128 * 16 + 128 * 4); }


#ifdef W4G_SM90A
__device__ __forceinline__ uint64_t w4g_desc(const void *smem, uint32_t lbo, uint32_t sbo) {
  const uint32_t a = (uint32_t)__cvta_generic_to_shared(smem);
  return (uint64_t)((a & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32);
}
__device__ __forceinline__ void w4g_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void w4g_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void w4g_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }

/* d [32 fp32 per thread] += A (64 x 16, registers: the mma.m16n8k16 A fragment per warp)
 * x B (16 x 64, shared memory, K-major, described by desc). */
static __device__ __forceinline__ void w4g_mma_n64(float (&d)[32], const uint32_t (&a)[4], uint64_t desc) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, 1, 1, 1, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}

/* d [64 fp32 per thread] += A (64 x 16, registers: the mma.m16n8k16 A fragment per warp)
 * x B (16 x 128, shared memory, K-major, described by desc). */
static __device__ __forceinline__ void w4g_mma_n128(float (&d)[64], const uint32_t (&a)[4], uint64_t desc) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "{%64, %65, %66, %67}, %68, 1, 1, 1, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));
}

template <int BT>
__device__ __forceinline__ void w4g_mma(float (&d)[BT / 2], const uint32_t (&a)[4], uint64_t desc) {
  if constexpr (BT == 64) w4g_mma_n64(d, a, desc);
  else w4g_mma_n128(d, a, desc);
}
#endif

template <int BT>
__global__ void __launch_bounds__(128) w4g_kernel(W4Args a, int swap_offsets) {
#ifdef W4G_SM90A
  constexpr int S = kW4gStages, XB = w4g_xbytes<BT>(), ROWS = BT / 4; /* rows per thread */
  extern __shared__ __align__(128) uint8_t w4g_smem_buf[];
  uint8_t *xs = w4g_smem_buf;
  uint4 *wring = reinterpret_cast<uint4 *>(w4g_smem_buf + S * XB);
  uint32_t *sring = reinterpret_cast<uint32_t *>(wring + S * 128);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int K = a.K, N = a.N, M = a.M, KC = K / 64, NT16 = N / 16;
  const int nt = blockIdx.x * 4 + warp; /* this warp's 16 output columns */
  const bool nt_ok = nt < NT16;
  const int m0 = blockIdx.y * BT;
  /* this thread copies bf16 pair p of rows warp, warp + 4, ...: a warp reads 128 contiguous
   * bytes of a row */
  const int p = lane;
  const uint32_t poff = w4g_layout_off(BT, 0, p);
  const uint16_t *xsrc = a.x + 2 * p;
  const uint4 *wsrc = a.qrep + (size_t)(nt_ok ? nt : 0) * KC * 32 + lane;
  const uint32_t *ssrc = a.srep + (nt_ok ? nt : 0) * 8 + g;
  kern_pdl_wait(); /* activations are the previous kernel's output */
  auto issue = [&](int c) {
    const int st = c % S;
#pragma unroll
    for (int j = 0; j < ROWS; j++) {
      const int r = warp + 4 * j;
      const int row = m0 + r < M ? m0 + r : M - 1; /* rows past M load a real row: columns discarded */
      w4_cp4(xs + st * XB + poff + (r >> 3) * W4G_SBO + (r & 7) * 16, xsrc + (size_t)row * K + (size_t)c * 64);
    }
    w4_cp16(wring + st * 128 + threadIdx.x, wsrc + (size_t)c * 32);
    w4_cp4(sring + st * 128 + threadIdx.x, ssrc + (size_t)(c >> 1) * NT16 * 8);
  };
  float d[BT / 2];
#pragma unroll
  for (int i = 0; i < BT / 2; i++) d[i] = 0.f;
#pragma unroll
  for (int i = 0; i < S - 1; i++) {
    if (i < KC) issue(i);
    w4_commit();
  }
  const uint32_t lbo = swap_offsets ? W4G_SBO : W4G_LBO, sbo = swap_offsets ? W4G_LBO : W4G_SBO;
  for (int c = 0; c < KC; c++) {
    w4_wait<S - 2>();
    /* cp.async wrote through the generic proxy; wgmma reads through the async proxy */
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads(); /* chunk c is in for every thread; stage (c-1) % S is free */
    const int st = c % S;
    const uint4 wq = wring[st * 128 + threadIdx.x];
    const uint32_t sc = sring[st * 128 + threadIdx.x];
    if (c + S - 1 < KC) issue(c + S - 1);
    w4_commit();
    uint32_t af[4][4];
    w4_dequant(wq.x, __byte_perm(sc, 0, 0x1010), __byte_perm(sc, 0, 0x3232), af[0]);
    w4_dequant(wq.y, __byte_perm(sc, 0, 0x1010), __byte_perm(sc, 0, 0x3232), af[1]);
    w4_dequant(wq.z, __byte_perm(sc, 0, 0x1010), __byte_perm(sc, 0, 0x3232), af[2]);
    w4_dequant(wq.w, __byte_perm(sc, 0, 0x1010), __byte_perm(sc, 0, 0x3232), af[3]);
    w4g_fence();
#pragma unroll
    for (int s = 0; s < 4; s++) w4g_mma<BT>(d, af[s], w4g_desc(xs + st * XB + s * w4g_step_bytes(BT), lbo, sbo));
    w4g_commit();
    w4g_wait0(); /* A registers and the stage are reused next chunk */
  }
  w4_wait<0>();
  kern_pdl_trigger();
  if (!nt_ok) return;
  /* D fragment: rows (output columns) nt*16 + g and + 8; columns (tokens) 8i + 2t and + 1 */
  const int f = nt * 16 + g;
#pragma unroll
  for (int i = 0; i < BT / 8; i++) {
    const int m = m0 + 8 * i + 2 * t;
    if (m < M) {
      a.y[(size_t)m * N + f] = kern_f2bf(d[4 * i]);
      a.y[(size_t)m * N + f + 8] = kern_f2bf(d[4 * i + 2]);
    }
    if (m + 1 < M) {
      a.y[(size_t)(m + 1) * N + f] = kern_f2bf(d[4 * i + 1]);
      a.y[(size_t)(m + 1) * N + f + 8] = kern_f2bf(d[4 * i + 3]);
    }
  }
#else
  (void)a;
  (void)swap_offsets;
#endif
}

template <int BT>
int w4g_launch(const W4Args &a, cudaStream_t st, int swap) {
  static int attr_set[64];
  int dev = 0;
  KERN_CUDA(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) dev = 63;
  if (!attr_set[dev]) {
    KERN_CUDA(cudaFuncSetAttribute(w4g_kernel<BT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)w4g_smem<BT>()));
    attr_set[dev] = 1;
  }
  dim3 grid(kern_cdiv(a.N, 64), kern_cdiv(a.M, BT));
  return kern_launch_pdl(w4g_kernel<BT>, grid, dim3(128), w4g_smem<BT>(), st, a, swap);
}

} // namespace

int w4a16_wgmma_available(void) {
  static int env = -1;
  if (env < 0) env = kern_env_int("SERVESIM_W4_WGMMA", 0); /* off until validated on a GPU: kernels/NOTES.md */
  return env && kern_device_cc() == 90; /* sm_90a code runs on 9.0 only */
}

int w4a16_wgmma_launch(const W4Args &a, cudaStream_t st) {
  /* SERVESIM_W4_WGMMA_SWAP=1 exchanges the descriptor's two byte offsets (a check of the
   * layout reading on a new device: the validation fails with the wrong one) */
  const char *e = getenv("SERVESIM_W4_WGMMA_SWAP");
  const int swap = e && *e == '1';
  return a.M <= 64 ? w4g_launch<64>(a, st, swap) : w4g_launch<128>(a, st, swap);
}

} // namespace kern_w4
