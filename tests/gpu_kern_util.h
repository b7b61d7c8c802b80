/* gpu_kern_util: device helpers for the GPU kernel tests (C, CUDA runtime API): skip with 77
 * when there is no GPU, checked allocation/copies that print file:line, NaN poisoning so an
 * output element the kernel never wrote fails the comparison. */
#ifndef SERVESIM_TESTS_GPU_KERN_UTIL_H
#define SERVESIM_TESTS_GPU_KERN_UTIL_H

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"
#include "kernels/kernels.h"

#define GK_CUDA(call)                                                                          \
  do {                                                                                         \
    cudaError_t gk_e_ = (call);                                                                \
    if (gk_e_ != cudaSuccess) {                                                                \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(gk_e_)); \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)
/* A launcher must succeed, and the kernel must run clean to completion. */
#define GK_KERN(call)                                                                          \
  do {                                                                                         \
    int gk_rc_ = (call);                                                                       \
    if (gk_rc_ != 0) {                                                                         \
      fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, gk_rc_, err_msg()); \
      exit(1);                                                                                 \
    }                                                                                          \
    GK_CUDA(cudaDeviceSynchronize());                                                          \
  } while (0)

static inline int gk_have_gpu(void) {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

static inline void *gk_dev(size_t n) {
  void *p = NULL;
  GK_CUDA(cudaMalloc(&p, n ? n : 1));
  GK_CUDA(cudaMemset(p, 0xff, n ? n : 1)); /* bf16 0xffff is NaN: unwritten outputs show */
  return p;
}
static inline void *gk_up(const void *h, size_t n) {
  void *p = gk_dev(n);
  GK_CUDA(cudaMemcpy(p, h, n, cudaMemcpyHostToDevice));
  return p;
}
static inline void gk_down(void *h, const void *d, size_t n) {
  GK_CUDA(cudaMemcpy(h, d, n, cudaMemcpyDeviceToHost));
}

#endif
