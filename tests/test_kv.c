/* test_kv: block accounting of the paged KV pool against a plain model, chains hold distinct
 * ids, frees return every block, and the boundaries of can_allocate. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "common/rng.h"
#include "sim/kv.h"

#define NSEQ 40

int main(void) {
  struct kv kv;
  CHECK(kv_init(&kv, 100, 16) == 0);
  struct kv_seq s;
  kv_seq_init(&s);
  CHECK(kv_blocks_for(&kv, 0) == 0 && kv_blocks_for(&kv, 1) == 1 && kv_blocks_for(&kv, 16) == 1 &&
        kv_blocks_for(&kv, 17) == 2);
  CHECK(kv_can_allocate(&kv, &s, 1600));  /* exactly the pool */
  CHECK(!kv_can_allocate(&kv, &s, 1601));
  CHECK(kv_allocate(&kv, &s, 1601) == ERR_NOMEM && kv.n_free == 100 && s.n_blocks == 0);
  CHECK(kv_allocate(&kv, &s, 20) == 0 && s.n_blocks == 2 && kv.n_free == 98);
  CHECK(kv_can_append(&kv, &s, 20, 12) && kv_append(&kv, &s, 20, 12) == 0 && s.n_blocks == 2); /* 32 fits */
  CHECK(kv_append(&kv, &s, 32, 1) == 0 && s.n_blocks == 3 && kv.n_free == 97);
  kv_free(&kv, &s);
  CHECK(s.n_blocks == 0 && s.head == -1 && kv.n_free == 100);
  CHECK(kv_check(&kv) == 0);

  /* random grow/free of 40 sequences against a model of held blocks */
  struct kv_seq seqs[NSEQ];
  int64_t tok[NSEQ] = {0};
  for (int i = 0; i < NSEQ; i++) kv_seq_init(&seqs[i]);
  struct rng r;
  rng_seed(&r, 3);
  int mismatches = 0;
  for (int step = 0; step < 20000; step++) {
    int i = (int)rng_range(&r, 0, NSEQ - 1);
    if (rng_uniform(&r) < 0.15) {
      kv_free(&kv, &seqs[i]);
      tok[i] = 0;
    } else {
      int64_t want = tok[i] + rng_range(&r, 1, 40);
      int can = kv_can_allocate(&kv, &seqs[i], want);
      int rc = kv_allocate(&kv, &seqs[i], want);
      if ((rc == 0) != can) mismatches++;
      if (rc == 0) tok[i] = want;
    }
    int64_t held = 0;
    for (int k = 0; k < NSEQ; k++) {
      if (seqs[k].n_blocks != kv_blocks_for(&kv, tok[k])) mismatches++;
      held += seqs[k].n_blocks;
    }
    if (held + kv.n_free != kv.n_blocks) mismatches++;
  }
  CHECK_MSG(mismatches == 0, "%d accounting mismatches", mismatches);
  /* chains and the free list partition the pool: every id exactly once */
  char *seen = calloc(100, 1);
  int dup = 0, count = 0;
  for (int k = 0; k < NSEQ; k++) {
    int len = 0;
    for (int32_t b = seqs[k].head; b >= 0; b = kv.next[b], len++) {
      if (seen[b]++) dup++;
      count++;
    }
    if (len != seqs[k].n_blocks) dup++;
  }
  for (int32_t b = kv.free_head; b >= 0; b = kv.next[b]) {
    if (seen[b]++) dup++;
    count++;
  }
  CHECK_MSG(dup == 0 && count == 100, "dup %d count %d", dup, count);
  free(seen);
  for (int k = 0; k < NSEQ; k++) kv_free(&kv, &seqs[k]);
  CHECK_MSG(kv.n_free == 100, "n_free %d after freeing all", kv.n_free);
  CHECK(kv_check(&kv) == 0);
  kv_destroy(&kv);
  CHECK(kv_init(&kv, 0, 16) == ERR_INPUT);
  return check_report("test_kv");
}
