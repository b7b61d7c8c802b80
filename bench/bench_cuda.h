/* bench_cuda: the GPU benchmark programs' check of a CUDA runtime call -- on failure, print
 * file:line, the call and CUDA's message, and exit 1 (a benchmark has nothing to clean up) --
 * and their skip where there is no GPU. */
#ifndef SERVESIM_BENCH_CUDA_H
#define SERVESIM_BENCH_CUDA_H

#include <cstdio>
#include <cstdlib>

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

#endif
