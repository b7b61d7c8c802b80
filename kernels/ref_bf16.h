/* ref_bf16: bfloat16 <-> float conversion for the C references (round to nearest even). */
#ifndef SERVESIM_REF_BF16_H
#define SERVESIM_REF_BF16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t bf16_t;

static inline float ref_bf16_to_f32(bf16_t x) {
  uint32_t u = (uint32_t)x << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline bf16_t ref_f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return (bf16_t)((u >> 16) | 0x40); /* NaN */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (bf16_t)(u >> 16);
}

/* Rounds a float through bf16 (what storing an activation in bf16 does). */
static inline float ref_bf16_round(float f) { return ref_bf16_to_f32(ref_f32_to_bf16(f)); }

void ref_bf16_from_f32(bf16_t *dst, const float *src, int64_t n);
void ref_bf16_to_f32_array(float *dst, const bf16_t *src, int64_t n);
/* Normalised squared error of a against the reference b: sum (a - b)^2 / sum b^2 over bf16
 * arrays, in double; NaN anywhere gives +inf, an all-zero b gives 0 if a equals it, else +inf.
 * The metric the kernel tolerances are named in (tests/kern_test_util.h). */
double ref_bf16_nmse(const bf16_t *a, const bf16_t *b, int64_t n);

#endif
