/* bench_cuda: the GPU benchmark programs' check of a CUDA runtime call -- on failure, print
 * file:line, the call and CUDA's message, and exit 1 (a benchmark has nothing to clean up) --,
 * their skip where there is no GPU, their timing of a chain of calls as one CUDA graph (the
 * way a CUDA-graph decode step runs them: launch cost excluded, the gaps between calls kept),
 * a nearest-rank percentile, and the copy ceiling their floors divide by. */
#ifndef SERVESIM_BENCH_CUDA_H
#define SERVESIM_BENCH_CUDA_H

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <cuda_runtime.h>

#define BENCH_CUDA(call)                                                                       \
  do {                                                                                         \
    cudaError_t e_ = (call);                                                                   \
    if (e_ != cudaSuccess) {                                                                   \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));   \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

/* Exit 77 (ctest's skip code) with "<prog>: no CUDA device" where the runtime sees no GPU. */
static inline void bench_cuda_need_device(const char *prog) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    fprintf(stderr, "%s: no CUDA device\n", prog);
    exit(77);
  }
}

/* fn(0) .. fn(n - 1) run once outside capture (warm-up, lazy allocations), then captured on st
 * into one graph; returns it instantiated (the caller destroys it). */
template <class F>
static cudaGraphExec_t bench_graph_capture(cudaStream_t st, int n, F fn) {
  for (int i = 0; i < n; i++) fn(i);
  BENCH_CUDA(cudaStreamSynchronize(st));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  BENCH_CUDA(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < n; i++) fn(i);
  BENCH_CUDA(cudaStreamEndCapture(st, &graph));
  BENCH_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  BENCH_CUDA(cudaGraphDestroy(graph));
  return exec;
}

/* One replay of exec on st between two events: its microseconds */
static inline double bench_graph_replay_us(cudaGraphExec_t exec, cudaStream_t st, cudaEvent_t a, cudaEvent_t b) {
  BENCH_CUDA(cudaEventRecord(a, st));
  BENCH_CUDA(cudaGraphLaunch(exec, st));
  BENCH_CUDA(cudaEventRecord(b, st));
  BENCH_CUDA(cudaEventSynchronize(b));
  float ms = 0;
  BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
  return ms * 1000.0;
}

/* p-th percentile (0..100) of v, nearest rank (0 for an empty v); v is sorted here. */
static inline double bench_pct(std::vector<double> &v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0.0;
  const size_t i = (size_t)(p / 100.0 * (double)(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

/* Copies of a bytes-sized set of weights to rotate over so that together they exceed twice the
 * L2 (at most 256: 131 for the smallest slice timed, down at TP=4 on a 50 MiB L2); a timed chain
 * holds at least one call a copy, so that no call finds its weights in L2. */
static inline int bench_copies(size_t bytes, size_t l2_bytes) {
  return (int)std::min<size_t>(256, 2 * l2_bytes / bytes + 2);
}

/* 16 bytes a thread, grid-strided: the copy kernel of the copy ceiling below */
static __global__ void bench_copy16(uint4 *dst, const uint4 *src, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = src[i];
}

/* The copy ceiling, GB/s counting bytes read plus bytes written: 1 GiB copied device to device
 * on st by cudaMemcpyAsync and by bench_copy16 (132 x 16 blocks of 256 threads); each timed
 * eagerly 5 times after a warm-up, the better median taken. */
static inline double bench_copy_gbs(cudaStream_t st) {
  const size_t n = (size_t)1 << 30;
  void *a, *b;
  BENCH_CUDA(cudaMalloc(&a, n));
  BENCH_CUDA(cudaMalloc(&b, n));
  BENCH_CUDA(cudaMemset(a, 1, n));
  cudaEvent_t e0, e1;
  BENCH_CUDA(cudaEventCreate(&e0));
  BENCH_CUDA(cudaEventCreate(&e1));
  double best_us = 1e30;
  for (int how = 0; how < 2; how++) {
    std::vector<double> v;
    for (int i = 0; i < 6; i++) {
      BENCH_CUDA(cudaEventRecord(e0, st));
      if (how == 0) BENCH_CUDA(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, st));
      else bench_copy16<<<132 * 16, 256, 0, st>>>((uint4 *)b, (const uint4 *)a, (int64_t)(n / 16));
      BENCH_CUDA(cudaEventRecord(e1, st));
      BENCH_CUDA(cudaEventSynchronize(e1));
      float ms = 0;
      BENCH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
      if (i > 0) v.push_back(ms * 1000.0);
    }
    std::sort(v.begin(), v.end());
    best_us = std::min(best_us, v[v.size() / 2]);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * n / (best_us * 1e3);
}

#endif
