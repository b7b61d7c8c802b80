/* bench_w4p_parts: what each part of the preload W4A16 kernel (kernels/kern_w4a16_preload.cu)
 * costs inside a chain of calls, timed the way bench_kernels times it (20 calls captured in one
 * CUDA graph under programmatic dependent launch, weights rotated over copies larger than twice
 * the L2). The kernel is compiled here with parts left out (its template argument P):
 *   whole     the library's kernel;
 *   no x      activation fragments made from the lane number, not loaded (no L2 reads after
 *             the wait but the scales' and weights' own);
 *   no math   no dequantisation or mma: each chunk's words are folded into the accumulator;
 *   loads     both left out: the weight and scale loads, the waits, the reductions and the
 *             stores only -- the same grid, blocks and loads as the kernel.
 * Every variant runs with the plan the library picks (configuration, splits, grid). A variant
 * that needs fewer registers would fit more blocks an SM, and so overlap consecutive calls more;
 * the "matched" columns pad it with dynamic shared memory to the whole kernel's blocks an SM,
 * so that only the left-out part's time differs; "loads, free" is the loads-only variant at its
 * own occupancy (how far the overlap alone would take this grid).
 * Weights and activations are constants (the timing does not depend on their values); floor =
 * the int4 + scale bytes over the copy ceiling measured here (cudaMemcpy, 1 GiB, read + write).
 *
 * Usage: bench_w4p_parts [M] (default 1; 1..8). Exit 77 without a GPU or off compute
 * capability 9.x. Environment switches of the kernel apply (SERVESIM_W4P_CFG, _TRIGGER). */
#include "kernels/kern_w4a16_preload.cu"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/bench_cuda.h"

namespace {

struct PtShape {
  const char *name;
  int K, N;
};

enum { PT_VARIANTS = 4 }; /* whole, no x, no math, loads (P = 0..3) */

/* w4p_kernel<C, P> for a runtime (c, p) */
typedef void (*pt_fn)(kern_w4::W4Args, int);
template <int C>
pt_fn pt_kernel_c(int p) {
  switch (p) {
    case 0: return kern_w4::w4p_kernel<C, 0>;
    case 1: return kern_w4::w4p_kernel<C, kern_w4::W4P_NO_X>;
    case 2: return kern_w4::w4p_kernel<C, kern_w4::W4P_NO_MATH>;
    default: return kern_w4::w4p_kernel<C, kern_w4::W4P_NO_X | kern_w4::W4P_NO_MATH>;
  }
}
pt_fn pt_kernel(int c, int p) {
  switch (c) {
    case 0: return pt_kernel_c<0>(p);
    case 1: return pt_kernel_c<1>(p);
    case 2: return pt_kernel_c<2>(p);
    case 3: return pt_kernel_c<3>(p);
    default: return pt_kernel_c<4>(p);
  }
}

int pt_occ(pt_fn fn, int threads, size_t smem) {
  int occ = 0;
  BENCH_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, fn, threads, smem));
  return occ;
}

/* The least dynamic shared memory (1 KB steps) that brings fn to at most `target` blocks an SM;
 * optin: the most shared memory a block may have (static + dynamic) */
size_t pt_pad(pt_fn fn, int threads, int target, size_t optin) {
  cudaFuncAttributes fa;
  BENCH_CUDA(cudaFuncGetAttributes(&fa, fn));
  const size_t dyn_max = optin - fa.sharedSizeBytes;
  BENCH_CUDA(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)dyn_max));
  size_t smem = 0;
  while (pt_occ(fn, threads, smem) > target && smem + 1024 <= dyn_max) smem += 1024;
  return smem;
}

double pt_copy_gbs(cudaStream_t st) {
  const size_t n = (size_t)1 << 30;
  void *a, *b;
  BENCH_CUDA(cudaMalloc(&a, n));
  BENCH_CUDA(cudaMalloc(&b, n));
  BENCH_CUDA(cudaMemset(a, 1, n));
  cudaEvent_t e0, e1;
  BENCH_CUDA(cudaEventCreate(&e0));
  BENCH_CUDA(cudaEventCreate(&e1));
  std::vector<double> v;
  for (int i = 0; i < 6; i++) {
    BENCH_CUDA(cudaEventRecord(e0, st));
    BENCH_CUDA(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, st));
    BENCH_CUDA(cudaEventRecord(e1, st));
    BENCH_CUDA(cudaEventSynchronize(e1));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
    if (i > 0) v.push_back(ms * 1000.0);
  }
  std::sort(v.begin(), v.end());
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * n / (v[v.size() / 2] * 1e3);
}

void pt_shape(const PtShape &s, int M, int sms, size_t l2, size_t optin, double copy_gbs, cudaStream_t st) {
  const size_t q_bytes = (size_t)s.K * s.N / 2, s_bytes = (size_t)(s.K / 128) * s.N * 2;
  const int copies = (int)std::min<size_t>(64, 2 * l2 / (q_bytes + s_bytes) + 2);
  kern_w4::W4pDev dev = {};
  if (kern_w4::w4p_prepare(&dev) || !dev.ok) {
    fprintf(stderr, "bench_w4p_parts: the preload kernel cannot run here (%s)\n", err_msg());
    exit(1);
  }
  const int forced = kern_env_int("SERVESIM_W4P_CFG", -1);
  const w4p_plan_t p = w4p_plan_choose(s.N / 16, s.K / 128, sms, dev.occ, forced);
  if (p.cfg < 0) {
    printf("| %s | %d | no plan | | | | | | | |\n", s.name, M);
    return;
  }
  const int early = kern_env_int("SERVESIM_W4P_TRIGGER", 1) != 0;
  const int threads = 32 * w4p_plan_warps(p.cfg);
  uint8_t *qrep, *srep;
  uint16_t *x, *y;
  BENCH_CUDA(cudaMalloc(&qrep, q_bytes * copies));
  BENCH_CUDA(cudaMalloc(&srep, s_bytes * copies));
  BENCH_CUDA(cudaMalloc(&x, (size_t)M * s.K * 2));
  BENCH_CUDA(cudaMalloc(&y, (size_t)M * s.N * 2));
  BENCH_CUDA(cudaMemset(qrep, 0x5a, q_bytes * copies));
  BENCH_CUDA(cudaMemset(srep, 0x3c, s_bytes * copies)); /* bf16 0x3c3c = 0.0115 */
  BENCH_CUDA(cudaMemset(x, 0x3c, (size_t)M * s.K * 2));
  cudaEvent_t e0, e1;
  BENCH_CUDA(cudaEventCreate(&e0));
  BENCH_CUDA(cudaEventCreate(&e1));
  const int calls = 20;
  /* variant v with smem bytes of padding: us a call, median of 15 replays */
  auto time_variant = [&](pt_fn fn, size_t smem) {
    auto launch = [&](int i) {
      kern_w4::W4Args a = {};
      a.y = y;
      a.x = x;
      a.qrep = (const uint4 *)(qrep + (size_t)(i % copies) * q_bytes);
      a.srep = (const uint32_t *)(srep + (size_t)(i % copies) * s_bytes);
      a.M = M;
      a.K = s.K;
      a.N = s.N;
      if (kern_launch_ex(fn, dim3((unsigned)(s.N / 16), 1, (unsigned)p.splits), dim3(threads), smem, st, p.splits, a,
                         early)) {
        fprintf(stderr, "bench_w4p_parts: %s M=%d: launch failed (%s)\n", s.name, M, err_msg());
        exit(1);
      }
    };
    cudaGraphExec_t exec = bench_graph_capture(st, calls, launch);
    for (int r = 0; r < 3; r++) BENCH_CUDA(cudaGraphLaunch(exec, st));
    std::vector<double> v;
    for (int r = 0; r < 15; r++) v.push_back(bench_graph_replay_us(exec, st, e0, e1) / calls);
    cudaGraphExecDestroy(exec);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const int occ0 = pt_occ(pt_kernel(p.cfg, 0), threads, 0);
  double us[PT_VARIANTS];
  int occ[PT_VARIANTS];
  for (int v = 0; v < PT_VARIANTS; v++) {
    pt_fn fn = pt_kernel(p.cfg, v);
    const size_t smem = v == 0 ? 0 : pt_pad(fn, threads, occ0, optin);
    occ[v] = pt_occ(fn, threads, smem);
    us[v] = time_variant(fn, smem);
  }
  pt_fn loads = pt_kernel(p.cfg, PT_VARIANTS - 1);
  const int occ_free = pt_occ(loads, threads, 0);
  const double us_free = time_variant(loads, 0);
  const double floor_us = (double)(q_bytes + s_bytes) / (copy_gbs * 1e3);
  printf("| %s | %d | (%d, %d) x %d | %d | %.2f |", s.name, M, w4p_plan_warps(p.cfg), w4p_plan_units(p.cfg), p.splits,
         p.blocks, floor_us);
  for (int v = 0; v < PT_VARIANTS; v++) printf(" %.2f (%d) |", us[v], occ[v]);
  printf(" %.2f (%d) | %.2f |\n", us_free, occ_free, us[0] / floor_us);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(qrep);
  cudaFree(srep);
  cudaFree(x);
  cudaFree(y);
}

} // namespace

int main(int argc, char **argv) {
  const int M = argc > 1 ? atoi(argv[1]) : 1;
  if (argc > 2 || M < 1 || M > 8) {
    fprintf(stderr, "usage: bench_w4p_parts [M]   (M = 1..8, default 1)\n");
    return 2;
  }
  bench_cuda_need_device("bench_w4p_parts");
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (prop.major != 9) {
    fprintf(stderr, "bench_w4p_parts: the preload kernel runs on compute capability 9.x only (this is %d.%d)\n",
            prop.major, prop.minor);
    return 77;
  }
  cudaStream_t st;
  BENCH_CUDA(cudaStreamCreate(&st));
  const double gbs = pt_copy_gbs(st);
  printf("device: %s, %d SMs; copy %.0f GB/s; programmatic dependent launch: %s\n", prop.name,
         prop.multiProcessorCount, gbs, kern_pdl_on() ? "on" : "off");
  printf("us a call (blocks an SM); matched: padded to the whole kernel's blocks an SM\n\n");
  printf("| shape | M | (warps, chunks) x splits | blocks | floor us | whole | no x, matched | no math, matched "
         "| loads, matched | loads, free | whole / floor |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  const PtShape shapes[] = {{"qkv", 4096, 9216},      {"o_proj", 8192, 4096},   {"gate_up", 4096, 3072},
                            {"down", 1536, 4096},     {"qkv TP=2", 4096, 4608}, {"o_proj TP=2", 4096, 4096},
                            {"gate_up TP=2", 4096, 1536}, {"down TP=2", 768, 4096}, {"down TP=4", 384, 4096}};
  for (const PtShape &s : shapes)
    pt_shape(s, M, prop.multiProcessorCount, (size_t)prop.l2CacheSize, prop.sharedMemPerBlockOptin, gbs, st);
  cudaStreamDestroy(st);
  return 0;
}
