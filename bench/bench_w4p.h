/* bench_w4p: what the preload W4A16 kernel's two benchmarks (bench_w4p_trace.cu, bench_w4p_parts.cu)
 * share: their M argument and compute-capability check, and a shape's buffers -- the weights
 * rotated over copies larger than twice the L2 so that every call reads them from HBM, constant
 * values throughout (the timing does not depend on them). Include after the kernel's source. */
#ifndef SERVESIM_BENCH_W4P_H
#define SERVESIM_BENCH_W4P_H

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "bench/bench_cuda.h"

struct BenchW4pBufs {
  int M, K, N, copies;
  size_t q_bytes, s_bytes;         /* one copy's int4 weights and bf16 scales */
  uint8_t *qrep, *srep;            /* [copies][q_bytes], [copies][s_bytes] */
  uint16_t *x, *y;                 /* [M, K], [M, N] */
};

/* The kernel's variants the benchmarks time, as its P bits: the whole kernel, without the
 * activation loads, without the math, without both (bench_w4p_parts), the weights loaded after
 * the wait (bench_w4p_trace) */
enum {
  BENCH_W4P_WHOLE = 0,
  BENCH_W4P_NO_X = kern_w4::W4P_NO_X,
  BENCH_W4P_NO_MATH = kern_w4::W4P_NO_MATH,
  BENCH_W4P_LOADS = kern_w4::W4P_NO_X | kern_w4::W4P_NO_MATH,
  BENCH_W4P_W_AFTER = kern_w4::W4P_W_AFTER,
};

/* w4p_kernel<C, P, MT> for a runtime configuration c, row tiles mt (1, 2) and variant p (above) */
typedef void (*BenchW4pFn)(kern_w4::W4Args, int);
template <int C, int MT>
BenchW4pFn bench_w4p_kernel_cm(int p) {
  switch (p) {
    case BENCH_W4P_NO_X: return kern_w4::w4p_kernel<C, BENCH_W4P_NO_X, MT>;
    case BENCH_W4P_NO_MATH: return kern_w4::w4p_kernel<C, BENCH_W4P_NO_MATH, MT>;
    case BENCH_W4P_LOADS: return kern_w4::w4p_kernel<C, BENCH_W4P_LOADS, MT>;
    case BENCH_W4P_W_AFTER: return kern_w4::w4p_kernel<C, BENCH_W4P_W_AFTER, MT>;
    default: return kern_w4::w4p_kernel<C, BENCH_W4P_WHOLE, MT>;
  }
}
template <int C>
BenchW4pFn bench_w4p_kernel_c(int mt, int p) {
  return mt == 1 ? bench_w4p_kernel_cm<C, 1>(p) : bench_w4p_kernel_cm<C, 2>(p);
}
static inline BenchW4pFn bench_w4p_kernel(int c, int mt, int p) {
  switch (c) {
    case 0: return bench_w4p_kernel_c<0>(mt, p);
    case 1: return bench_w4p_kernel_c<1>(mt, p);
    case 2: return bench_w4p_kernel_c<2>(mt, p);
    case 3: return bench_w4p_kernel_c<3>(mt, p);
    case 4: return bench_w4p_kernel_c<4>(mt, p);
    default: return bench_w4p_kernel_c<5>(mt, p);
  }
}

/* The library launcher's plan for M rows of K x N on sms SMs (cfg -1: it would not launch, the
 * split-K kernel runs); exits where the kernel cannot run on this device. */
static inline w4p_plan_t bench_w4p_plan(const char *prog, int M, int K, int N, int sms) {
  kern_w4::W4Args a = {};
  a.M = M;
  a.K = K;
  a.N = N;
  w4p_plan_t p;
  if (kern_w4::w4p_plan_for(a, sms, &p)) {
    fprintf(stderr, "%s: the preload kernel's plan failed (%s)\n", prog, err_msg());
    exit(1);
  }
  return p;
}

/* fn (bench_w4p_kernel's) launched on plan p as the library launches its kernel: N / 16 tiles x
 * p.splits (one cluster a tile), smem bytes of dynamic shared memory (0 but for padding), the
 * library's trigger setting; an error code */
static inline int bench_w4p_launch(BenchW4pFn fn, const w4p_plan_t &p, const kern_w4::W4Args &a, size_t smem,
                                   cudaStream_t st) {
  return kern_launch_ex(fn, dim3((unsigned)(a.N / 16), 1, (unsigned)p.splits), dim3(32 * w4p_plan_warps(p.cfg)), smem,
                        st, p.splits, a, kern_w4::w4p_trigger_early());
}

static inline BenchW4pBufs bench_w4p_alloc(int M, int K, int N, size_t l2_bytes) {
  BenchW4pBufs b = {};
  b.M = M;
  b.K = K;
  b.N = N;
  b.q_bytes = (size_t)K * N / 2;
  b.s_bytes = (size_t)(K / 128) * N * 2;
  b.copies = bench_copies(b.q_bytes + b.s_bytes, l2_bytes);
  BENCH_CUDA(cudaMalloc(&b.qrep, b.q_bytes * b.copies));
  BENCH_CUDA(cudaMalloc(&b.srep, b.s_bytes * b.copies));
  BENCH_CUDA(cudaMalloc(&b.x, (size_t)M * K * 2));
  BENCH_CUDA(cudaMalloc(&b.y, (size_t)M * N * 2));
  BENCH_CUDA(cudaMemset(b.qrep, 0x5a, b.q_bytes * b.copies));
  BENCH_CUDA(cudaMemset(b.srep, 0x3c, b.s_bytes * b.copies)); /* bf16 0x3c3c = 0.0115 */
  BENCH_CUDA(cudaMemset(b.x, 0x3c, (size_t)M * K * 2));
  return b;
}

/* The arguments of call i of a chain: its own copy of the weights */
static inline kern_w4::W4Args bench_w4p_args(const BenchW4pBufs &b, int i) {
  kern_w4::W4Args a = {};
  a.y = b.y;
  a.x = b.x;
  a.qrep = (const uint4 *)(b.qrep + (size_t)(i % b.copies) * b.q_bytes);
  a.srep = (const uint32_t *)(b.srep + (size_t)(i % b.copies) * b.s_bytes);
  a.M = b.M;
  a.K = b.K;
  a.N = b.N;
  return a;
}

/* Calls in a timed chain: 20, or as many as there are weight copies (rounded up to even, so that
 * the last call is odd: the trace keeps calls in slots by index & 1), so that a replay of the
 * chain finds none of its weights in L2 from the replay before. */
static inline int bench_w4p_calls(const BenchW4pBufs &b) { return std::max(20, (b.copies + 1) & ~1); }

static inline void bench_w4p_free(BenchW4pBufs &b) {
  cudaFree(b.qrep);
  cudaFree(b.srep);
  cudaFree(b.x);
  cudaFree(b.y);
}

/* M from the command line (1..16, default 1), device 0, which must be of compute capability 9.x
 * (the kernel's only target), and a stream on it: 0, or the exit code -- 2 for a bad argument,
 * 77 (ctest's skip) without a GPU or on another architecture. */
static inline int bench_w4p_start(int argc, char **argv, const char *prog, int *M, cudaDeviceProp *prop,
                                  cudaStream_t *st) {
  *M = argc > 1 ? atoi(argv[1]) : 1;
  if (argc > 2 || *M < 1 || *M > 16) {
    fprintf(stderr, "usage: %s [M]   (M = 1..16, default 1)\n", prog);
    return 2;
  }
  bench_cuda_need_device(prog);
  BENCH_CUDA(cudaGetDeviceProperties(prop, 0));
  if (prop->major != 9) {
    fprintf(stderr, "%s: the preload kernel runs on compute capability 9.x only (this is %d.%d)\n", prog,
            prop->major, prop->minor);
    return 77;
  }
  BENCH_CUDA(cudaStreamCreate(st));
  return 0;
}

#endif
