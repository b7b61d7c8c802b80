/* kern_test_util: helpers for the kernel tests (CPU test_kern_*.c and GPU gpu_kern_*.c):
 * a fresh seed per run (printed, overridable with SERVESIM_TEST_SEED so a failure can be
 * replayed), random bf16 fills, and the normalised error metric the tolerances are named in. */
#ifndef SERVESIM_TESTS_KERN_TEST_UTIL_H
#define SERVESIM_TESTS_KERN_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/rng.h"
#include "kernels/ref_bf16.h"

/* ggml's bound for its MoE matmul test: sum (a-b)^2 / sum b^2 */
#define KT_NMSE_GEMM 5e-4
/* bf16 outputs of float math: rounding alone gives ~1e-6 */
#define KT_NMSE_BF16 1e-4

static inline uint64_t kt_seed(const char *test) {
  const char *e = getenv("SERVESIM_TEST_SEED");
  uint64_t s;
  if (e && *e) {
    s = strtoull(e, 0, 0);
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
  }
  printf("%s: seed %llu (SERVESIM_TEST_SEED=%llu replays it)\n", test, (unsigned long long)s,
         (unsigned long long)s);
  return s;
}

static inline void kt_fill_bf16(struct rng *r, bf16_t *x, int64_t n, float stddev) {
  for (int64_t i = 0; i < n; i++) x[i] = ref_f32_to_bf16((float)(rng_normal(r) * stddev));
}


static inline double kt_nmse_f64(const bf16_t *a, const double *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double x = ref_bf16_to_f32(a[i]);
    if (x != x) return INFINITY;
    num += (x - b[i]) * (x - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? num / den : (num > 0 ? INFINITY : 0);
}

static inline void *kt_alloc(size_t n) {
  void *p = calloc(n ? n : 1, 1);
  if (!p) {
    fprintf(stderr, "out of host memory (%zu bytes)\n", n);
    exit(2);
  }
  return p;
}

#endif
