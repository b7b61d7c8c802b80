/* bench_w4p_parts: what each part of the preload W4A16 kernel (kernels/kern_w4a16_preload.cu)
 * costs inside a chain of calls, timed the way bench_kernels times it (20 calls, or one a weight
 * copy, captured in one CUDA graph under programmatic dependent launch, weights rotated over
 * copies larger than twice the L2). The kernel is compiled here with parts left out (its template argument P):
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
 * Padding takes shared memory, so a padded variant may run with less L1 than the whole kernel
 * (the cell gives the padding in KB); a variant that needs none runs as launched by the library.
 * Weights and activations are constants (the timing does not depend on their values); floor =
 * the int4 + scale bytes over the copy ceiling measured here (bench_copy_gbs, as bench_kernels).
 *
 * Usage: bench_w4p_parts [M] (default 1; 1..16). Exit 77 without a GPU or off compute
 * capability 9.x. Environment switches of the kernel apply (SERVESIM_W4P_CFG, _TRIGGER). */
#include "kernels/kern_w4a16_preload.cu"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/bench_w4p.h"

namespace {

struct PtShape {
  const char *name;
  int K, N;
};

enum { PT_VARIANTS = 4 }; /* whole, no x, no math, loads (P = 0..3) */

typedef BenchW4pFn pt_fn;

int pt_occ(pt_fn fn, int threads, size_t smem) {
  int occ = 0;
  BENCH_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, fn, threads, smem));
  return occ;
}

/* The least dynamic shared memory (1 KB steps) that brings fn to at most `target` blocks an SM
 * (0, the launch attributes untouched, where it is there already); optin: the most shared memory
 * a block may have (static + dynamic) */
size_t pt_pad(pt_fn fn, int threads, int target, size_t optin) {
  if (pt_occ(fn, threads, 0) <= target) return 0;
  cudaFuncAttributes fa;
  BENCH_CUDA(cudaFuncGetAttributes(&fa, fn));
  const size_t dyn_max = optin - fa.sharedSizeBytes;
  BENCH_CUDA(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)dyn_max));
  size_t smem = 0;
  while (pt_occ(fn, threads, smem) > target && smem + 1024 <= dyn_max) smem += 1024;
  return smem;
}

void pt_shape(const PtShape &s, int M, int sms, size_t l2, size_t optin, double copy_gbs, cudaStream_t st) {
  const int mt = w4p_plan_row_tiles(M);
  const w4p_plan_t p = bench_w4p_plan("bench_w4p_parts", M, s.K, s.N, sms);
  if (p.cfg < 0) {
    printf("| %s | %d | no plan | | | | | | | | |\n", s.name, M);
    return;
  }
  const int threads = 32 * w4p_plan_warps(p.cfg);
  BenchW4pBufs bufs = bench_w4p_alloc(M, s.K, s.N, l2);
  cudaEvent_t e0, e1;
  BENCH_CUDA(cudaEventCreate(&e0));
  BENCH_CUDA(cudaEventCreate(&e1));
  const int calls = bench_w4p_calls(bufs);
  /* variant v with smem bytes of padding: us a call, median of 15 replays */
  auto time_variant = [&](pt_fn fn, size_t smem) {
    auto launch = [&](int i) {
      const kern_w4::W4Args a = bench_w4p_args(bufs, i);
      if (bench_w4p_launch(fn, p, a, smem, st)) {
        fprintf(stderr, "bench_w4p_parts: %s M=%d: launch failed (%s)\n", s.name, M, err_msg());
        exit(1);
      }
    };
    cudaGraphExec_t exec = bench_graph_capture(st, calls, launch);
    for (int r = 0; r < 3; r++) BENCH_CUDA(cudaGraphLaunch(exec, st));
    std::vector<double> v;
    for (int r = 0; r < 15; r++) v.push_back(bench_graph_replay_us(exec, st, e0, e1) / calls);
    cudaGraphExecDestroy(exec);
    return bench_pct(v, 50);
  };
  const int occ0 = pt_occ(bench_w4p_kernel(p.cfg, mt, BENCH_W4P_WHOLE), threads, 0);
  double us[PT_VARIANTS];
  int occ[PT_VARIANTS];
  size_t pad[PT_VARIANTS];
  for (int v = 0; v < PT_VARIANTS; v++) {
    pt_fn fn = bench_w4p_kernel(p.cfg, mt, v);
    pad[v] = v == 0 ? 0 : pt_pad(fn, threads, occ0, optin);
    occ[v] = pt_occ(fn, threads, pad[v]);
    us[v] = time_variant(fn, pad[v]);
  }
  pt_fn loads = bench_w4p_kernel(p.cfg, mt, BENCH_W4P_LOADS);
  const int occ_free = pt_occ(loads, threads, 0);
  const double us_free = time_variant(loads, 0);
  const double floor_us = (double)(bufs.q_bytes + bufs.s_bytes) / (copy_gbs * 1e3);
  printf("| %s | %d | (%d, %d) x %d | %d | %.2f |", s.name, M, w4p_plan_warps(p.cfg), w4p_plan_units(p.cfg), p.splits,
         p.blocks, floor_us);
  for (int v = 0; v < PT_VARIANTS; v++) {
    if (pad[v]) printf(" %.2f (%d, %zu KB) |", us[v], occ[v], pad[v] / 1024);
    else printf(" %.2f (%d) |", us[v], occ[v]);
  }
  printf(" %.2f (%d) | %.2f |\n", us_free, occ_free, us[0] / floor_us);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  bench_w4p_free(bufs);
}

} // namespace

int main(int argc, char **argv) {
  int M;
  cudaDeviceProp prop;
  cudaStream_t st;
  if (int rc = bench_w4p_start(argc, argv, "bench_w4p_parts", &M, &prop, &st)) return rc;
  const double gbs = bench_copy_gbs(st);
  printf("device: %s, %d SMs; copy %.0f GB/s; programmatic dependent launch: %s\n", prop.name,
         prop.multiProcessorCount, gbs, kern_pdl_on() ? "on" : "off");
  printf("us a call (blocks an SM, and the shared-memory padding if any); matched: padded to the whole kernel's "
         "blocks an SM\n\n");
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
