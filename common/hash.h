/* hash: the 64-bit finalizer the open-addressing tables use (the first half of MurmurHash3's
 * fmix64: shift-xor, multiply, shift-xor), enough to spread sequential ids over a power-of-two
 * table. One definition for sim/kv.c's prefix-block table and traces/mooncake.c's id set. */
#ifndef SERVESIM_HASH_H
#define SERVESIM_HASH_H

#include <stdint.h>

static inline uint64_t hash_mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

#endif
