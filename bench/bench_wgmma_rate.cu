/* bench_wgmma_rate: the Hopper tensor pipe's own rate for the wgmma shapes of the W4A16 kernel
 * (kernels/kern_w4a16_wgmma.cu: A = 64 weight columns x k16 a warpgroup, B = the tile's tokens x
 * k16 from a 128-byte-swizzled shared-memory stage), with nothing else in the loop: no ring, no
 * barriers, no global memory. Each block (one an SM: 200 KB of shared memory) runs NWG warpgroups,
 * each repeating a k64 chunk -- wgmma.fence, four m64nNk16 (k16 steps of one 64-k stage),
 * commit, wait_group 1 -- ITER times on the same operands. Modes:
 *   ss   A from shared memory too (the all-shared-memory wgmma cuBLAS runs)
 *   rs   A from registers, the same four fragments every chunk (the kernel's operand source)
 *   rsd  A from registers dequantised every chunk from four int4 words and a scale pair, into
 *        two alternating fragment sets (the kernel's consumer loop without the ring: w4_dequant
 *        after the wait that retires the set's previous chunk)
 * Prints SM cycles a chunk (each block's slowest warpgroup by clock64; the median block and the
 * slowest) and the tensor pipe's share: NWG x 4 x the ideal cycles of one wgmma (2048 bf16 FMA a
 * cycle an SM: m64n128k16 64 cycles, m64n256k16 128) over the period. kernels/NOTES.md item 22
 * reads it. (m64n256k16 with three warpgroups only from shared memory: with A in registers ptxas
 * serialises the wgmma for want of registers.)
 * Usage: bench_wgmma_rate [ITER] (even, default 4000). Exit 77 without a compute capability 9.0
 * GPU. */
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/bench_cuda.h"
#include "kernels/kern_w4a16.cuh"

namespace {

enum WrMode { WR_SS, WR_RS, WR_RSD };
const char *const kModeName[3] = {"ss", "rs", "rsd"};
constexpr size_t kSmem = 200 * 1024; /* one block an SM */

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define WR_SM90A 1
/* d [64 fp32] += A (64 x 16, registers) x B (16 x 128, shared memory) */
__device__ __forceinline__ void wr_rs_n128(float (&d)[64], const uint32_t (&a)[4], uint64_t db) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, 1, 1, 1, 0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
/* d [64 fp32] += A (64 x 16, shared memory) x B (16 x 128, shared memory) */
__device__ __forceinline__ void wr_ss_n128(float (&d)[64], uint64_t da, uint64_t db) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, 1, 1, 1, 0, 0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
               : "l"(da), "l"(db));
}

/* d [128 fp32] += A (64 x 16, registers) x B (16 x 256, shared memory) */
__device__ __forceinline__ void wr_rs_n256(float (&d)[128], const uint32_t (&a)[4], uint64_t db) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, {%128, %129, %130, %131}, %132, 1, 1, 1, 0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
/* d [128 fp32] += A (64 x 16, shared memory) x B (16 x 256, shared memory) */
__device__ __forceinline__ void wr_ss_n256(float (&d)[128], uint64_t da, uint64_t db) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, 1, 1, 1, 0, 0;\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
               : "l"(da), "l"(db));
}

__device__ __forceinline__ void wr_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wr_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int W>
__device__ __forceinline__ void wr_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(W) : "memory"); }
__device__ __forceinline__ void wr_keep(uint32_t (&af)[4][4]) {
#pragma unroll
  for (int s = 0; s < 4; s++) asm volatile("" : "+r"(af[s][0]), "+r"(af[s][1]), "+r"(af[s][2]), "+r"(af[s][3])::"memory");
}
template <int ND>
__device__ __forceinline__ void wr_keep(float (&d)[ND]) {
#pragma unroll
  for (int i = 0; i < ND; i++) asm volatile("" : "+f"(d[i])::"memory");
}
template <int N>
__device__ __forceinline__ void wr_mma(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (N == 128) wr_rs_n128(d, a, db);
  else wr_rs_n256(d, a, db);
}
template <int N>
__device__ __forceinline__ void wr_mma(float (&d)[N / 2], uint64_t da, uint64_t db) {
  if constexpr (N == 128) wr_ss_n128(d, da, db);
  else wr_ss_n256(d, da, db);
}
#endif

/* out[block * NWG + warpgroup] = SM cycles of ITER chunks; sink keeps the accumulators live */
template <int MODE, int N, int NWG>
__global__ void __launch_bounds__(128 * NWG, 1) wr_kernel(int iters, long long *out, float *sink) {
#ifdef WR_SM90A
  extern __shared__ uint8_t wr_raw[];
  uint8_t *base = wr_raw + ((1024 - ((uint32_t)__cvta_generic_to_shared(wr_raw) & 1023)) & 1023);
  /* B: N rows x 128 bytes; A (ss): 64 rows x 128 bytes a warpgroup, past it. bf16 in [0.5, 1). */
  const int tid = threadIdx.x, wg = tid >> 7, lane = tid & 31;
  const int bytes = N * 128 + NWG * 64 * 128;
  for (int i = tid; i < bytes / 4; i += blockDim.x)
    reinterpret_cast<uint32_t *>(base)[i] = 0x3f003f00u | ((uint32_t)(i * 2654435761u) & 0x007f007fu);
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); /* generic stores -> wgmma reads */
  __syncthreads();
  const uint64_t db = kern_w4::w4_desc_sw128(base), da = kern_w4::w4_desc_sw128(base + N * 128 + wg * 64 * 128);
  float d[N / 2];
#pragma unroll
  for (int i = 0; i < N / 2; i++) d[i] = 0.f;
  uint32_t af0[4][4], af1[4][4];
  uint32_t wq[4] = {0x12345678u ^ (uint32_t)lane, 0x9abcdef0u, 0x0f1e2d3cu, 0x4b5a6978u ^ (uint32_t)tid};
  const uint32_t sc = 0x3c003c00u; /* a scale pair: bf16 1/128 in both halves */
  const uint32_t s0 = __byte_perm(sc, 0, 0x1010), s8 = __byte_perm(sc, 0, 0x3232);
#pragma unroll
  for (int q = 0; q < 4; q++) kern_w4::w4_dequant(wq[q], s0, s8, af0[q]), kern_w4::w4_dequant(wq[q], s0, s8, af1[q]);
  __syncthreads();
  const long long t0 = clock64();
  auto chunk = [&](uint32_t(&af)[4][4], uint32_t(&af_prev)[4][4]) {
    if constexpr (MODE == WR_RSD) {
#pragma unroll
      for (int q = 0; q < 4; q++) {
        asm volatile("" : "+r"(wq[q])); /* opaque: dequantised anew every chunk */
        kern_w4::w4_dequant(wq[q], s0, s8, af[q]);
      }
    }
    wr_keep(d);
    wr_fence();
#pragma unroll
    for (int s = 0; s < 4; s++) {
      if constexpr (MODE == WR_SS) wr_mma<N>(d, da + 2 * s, db + 2 * s); /* +32 bytes a k16 step */
      else wr_mma<N>(d, af[s], db + 2 * s);
    }
    wr_commit();
    wr_keep(d);
    wr_wait<1>();
    wr_keep(af_prev);
  };
  for (int it = 0; it < iters; it += 2) {
    chunk(af0, af1);
    chunk(af1, af0);
  }
  wr_wait<0>();
  wr_keep(d);
  const long long t1 = clock64();
  float acc = 0.f;
#pragma unroll
  for (int i = 0; i < N / 2; i++) acc += d[i];
  if (acc == 12345.f) sink[tid] = acc; /* never, but the compiler cannot tell */
  if ((tid & 127) == 0) out[blockIdx.x * NWG + wg] = t1 - t0;
#else
  (void)iters;
  (void)out;
  (void)sink;
#endif
}

template <int MODE, int N, int NWG>
void wr_run(int sms, int iters, long long *d_out, float *d_sink) {
  auto fn = wr_kernel<MODE, N, NWG>;
  BENCH_CUDA(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kSmem));
  fn<<<sms, 128 * NWG, kSmem>>>(iters, d_out, d_sink); /* warm-up */
  BENCH_CUDA(cudaGetLastError());
  fn<<<sms, 128 * NWG, kSmem>>>(iters, d_out, d_sink);
  BENCH_CUDA(cudaGetLastError());
  BENCH_CUDA(cudaDeviceSynchronize());
  std::vector<long long> cyc((size_t)sms * NWG);
  BENCH_CUDA(cudaMemcpy(cyc.data(), d_out, cyc.size() * sizeof(long long), cudaMemcpyDeviceToHost));
  std::vector<long long> blk(sms);
  for (int b = 0; b < sms; b++) blk[b] = *std::max_element(cyc.begin() + (size_t)b * NWG, cyc.begin() + (size_t)(b + 1) * NWG);
  std::sort(blk.begin(), blk.end());
  const double per = (double)blk[sms / 2] / iters, ideal = NWG * 4.0 * (N == 128 ? 64 : 128);
  printf("| %-3s | m64n%dk16 | %d | %7.1f | %7.1f | %5.2f | %7.1f |\n", kModeName[MODE], N, NWG, per, ideal, ideal / per,
         (double)blk[sms - 1] / iters);
}

template <int MODE>
void wr_mode(int sms, int iters, long long *o, float *s) {
  wr_run<MODE, 128, 1>(sms, iters, o, s);
  wr_run<MODE, 128, 2>(sms, iters, o, s);
  wr_run<MODE, 128, 3>(sms, iters, o, s);
  wr_run<MODE, 256, 1>(sms, iters, o, s);
  wr_run<MODE, 256, 2>(sms, iters, o, s);
  if constexpr (MODE == WR_SS) wr_run<MODE, 256, 3>(sms, iters, o, s); /* register-sourced: 170 registers a thread do not hold it */
}

} // namespace

int main(int argc, char **argv) {
  const int iters = argc == 2 ? atoi(argv[1]) : 4000;
  if (argc > 2 || iters < 2 || iters % 2) {
    fprintf(stderr, "usage: bench_wgmma_rate [ITER]   (ITER even, >= 2)\n");
    return 2;
  }
  bench_cuda_need_device("bench_wgmma_rate");
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (prop.major != 9 || prop.minor != 0) {
    fprintf(stderr, "bench_wgmma_rate: needs a compute capability 9.0 GPU\n");
    return 77;
  }
  const int sms = prop.multiProcessorCount;
  long long *d_out;
  float *d_sink;
  BENCH_CUDA(cudaMalloc(&d_out, (size_t)sms * 3 * sizeof(long long)));
  BENCH_CUDA(cudaMalloc(&d_sink, 512 * sizeof(float)));
  printf("device %s, %d SMs, %d chunks a warpgroup, one block an SM\n", prop.name, sms, iters);
  printf("| A | shape | warpgroups | cycles a chunk (median block) | tensor-bound cycles | tensor share | slowest block |\n");
  printf("|---|---|---|---|---|---|---|\n");
  wr_mode<WR_SS>(sms, iters, d_out, d_sink);
  wr_mode<WR_RS>(sms, iters, d_out, d_sink);
  wr_mode<WR_RSD>(sms, iters, d_out, d_sink);
  return 0;
}
