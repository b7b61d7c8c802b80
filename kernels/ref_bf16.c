/* ref_bf16: array conversions between float and bfloat16. */
#include "kernels/ref_bf16.h"

#include <math.h>

void ref_bf16_from_f32(bf16_t *dst, const float *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = ref_f32_to_bf16(src[i]);
}

void ref_bf16_to_f32_array(float *dst, const bf16_t *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = ref_bf16_to_f32(src[i]);
}

double ref_bf16_nmse(const bf16_t *a, const bf16_t *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double x = ref_bf16_to_f32(a[i]), y = ref_bf16_to_f32(b[i]);
    if (x != x || y != y) return INFINITY;
    num += (x - y) * (x - y);
    den += y * y;
  }
  return den > 0 ? num / den : (num > 0 ? INFINITY : 0);
}
