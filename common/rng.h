/* rng: deterministic pseudo-random numbers (xoshiro256** seeded by splitmix64).
 *
 * Same seed, same stream on every platform: no libc rand(), no floating-point tricks that
 * depend on the compiler. Each consumer owns a struct rng, so threads never share state. */
#ifndef SERVESIM_RNG_H
#define SERVESIM_RNG_H

#include <stdint.h>

struct rng {
  uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_u64(struct rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double rng_uniform(struct rng *r);
/* Uniform integer in [lo, hi] inclusive (unbiased, by rejection). */
int64_t rng_range(struct rng *r, int64_t lo, int64_t hi);
/* Exponential with the given mean. */
double rng_exp(struct rng *r, double mean);
/* Standard normal (Box-Muller, no cached spare so the stream is position-independent). */
double rng_normal(struct rng *r);
/* Gamma(shape k, scale theta), Marsaglia-Tsang; mean k*theta. */
double rng_gamma(struct rng *r, double shape, double scale);
/* Derives an independent stream (e.g. one per thread or per replica) from a parent seed. */
uint64_t rng_derive(uint64_t seed, uint64_t stream);

#endif
