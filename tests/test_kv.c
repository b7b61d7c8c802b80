/* test_kv: block accounting of the paged KV pool against a plain model, chains hold distinct
 * ids, frees return every block, the boundaries of can_allocate; prefix caching: group blocks
 * shared and reference counted, hits capped one token short, LRU eviction drops keys, a
 * preempted request's recompute hits its own blocks, concurrent publishers deduplicate; and a
 * random stress of all of it with kv_check after every operation. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "common/rng.h"
#include "sim/kv.h"

#define NSEQ 40

static void test_plain(void) {
  struct kv kv;
  CHECK(kv_init(&kv, 100, 16, 0) == 0);
  struct kv_seq s;
  kv_seq_init(&s, 0, -1, 0, 16);
  CHECK(kv_blocks_for(&kv, 0) == 0 && kv_blocks_for(&kv, 1) == 1 && kv_blocks_for(&kv, 16) == 1 &&
        kv_blocks_for(&kv, 17) == 2);
  CHECK(kv_can_allocate(&kv, &s, 1600)); /* exactly the pool */
  CHECK(!kv_can_allocate(&kv, &s, 1601));
  CHECK(kv_allocate(&kv, &s, 1601) == ERR_NOMEM && kv.n_free == 100 && s.n_blocks == 0);
  CHECK(kv_allocate(&kv, &s, 20) == 0 && s.n_blocks == 2 && kv.n_free == 98);
  CHECK(kv_can_allocate(&kv, &s, 20 + 12) && kv_allocate(&kv, &s, 20 + 12) == 0 && s.n_blocks == 2); /* 32 fits */
  CHECK(kv_allocate(&kv, &s, 32 + 1) == 0 && s.n_blocks == 3 && kv.n_free == 97);
  int32_t hf;
  CHECK(kv_prefix_hit(&kv, &s, 40, &hf) == 0); /* caching off: never a hit */
  kv_free(&kv, &s, 48);
  CHECK(s.n_blocks == 0 && s.head == -1 && kv.n_free == 100);
  CHECK(kv_check(&kv) == 0);

  /* random grow/free of 40 sequences against a model of held blocks */
  struct kv_seq seqs[NSEQ];
  int64_t tok[NSEQ] = {0};
  for (int i = 0; i < NSEQ; i++) kv_seq_init(&seqs[i], i, -1, 0, 16);
  struct rng r;
  rng_seed(&r, 3);
  int mismatches = 0;
  for (int step = 0; step < 20000; step++) {
    int i = (int)rng_range(&r, 0, NSEQ - 1);
    if (rng_uniform(&r) < 0.15) {
      kv_free(&kv, &seqs[i], 0);
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
  /* chains and the free queue partition the pool: every id exactly once */
  char *seen = calloc(100, 1);
  int dup = 0, count = 0;
  for (int k = 0; k < NSEQ; k++) {
    int len = 0;
    for (int32_t b = seqs[k].head; b >= 0; b = kv.cnext[b], len++) {
      if (seen[b]++) dup++;
      count++;
    }
    if (len != seqs[k].n_blocks) dup++;
  }
  for (int32_t i = 0; i < kv.n_ustack; i++) { /* caching off: every free block is keyless */
    if (seen[kv.ustack[i]]++) dup++;
    count++;
  }
  CHECK_MSG(dup == 0 && count == 100, "dup %d count %d", dup, count);
  free(seen);
  for (int k = 0; k < NSEQ; k++) kv_free(&kv, &seqs[k], 0);
  CHECK_MSG(kv.n_free == 100, "n_free %d after freeing all", kv.n_free);
  CHECK(kv_check(&kv) == 0);
  kv_destroy(&kv);
  CHECK(kv_init(&kv, 0, 16, 1) == ERR_INPUT);
}

/* admit as the scheduler does: hit, take, grow */
static int admit(struct kv *kv, struct kv_seq *s, int64_t n_known, int64_t n_tok, int32_t *hit_out) {
  int32_t hf, hit = kv_prefix_hit(kv, s, n_known, &hf);
  *hit_out = hit;
  int64_t total = n_tok > hit * 16 ? n_tok : hit * 16;
  if (!kv_can_admit(kv, hit, hf, total)) return ERR_NOMEM;
  kv_take_hit(kv, s, hit);
  return kv_allocate(kv, s, total);
}

static void test_prefix_cache(void) {
  struct kv kv;
  CHECK(kv_init(&kv, 100, 16, 1) == 0);
  struct kv_seq a, b, c, d, e;
  int32_t hit, hf;
  /* A: group 5 shares 64 tokens (4 blocks); 100 tokens -> 7 blocks, the 4 group blocks published */
  kv_seq_init(&a, 0, 5, 64, 16);
  CHECK(admit(&kv, &a, 100, 100, &hit) == 0 && hit == 0);
  CHECK(a.n_blocks == 7 && a.n_grp == 4 && kv.n_free == 93);
  /* B of the same group shares them: 4 hits (its 5th block has its own key), none free */
  kv_seq_init(&b, 1, 5, 64, 16);
  CHECK(kv_prefix_hit(&kv, &b, 100, &hf) == 4 && hf == 0);
  CHECK(admit(&kv, &b, 100, 100, &hit) == 0 && hit == 4);
  CHECK(b.n_blocks == 7 && b.n_grp == 4 && kv.n_free == 90);  /* only 3 new blocks */
  CHECK(kv_refs(&kv) == 14 && kv_check(&kv) == 0);
  /* the hit stops one token short: with exactly 64 known tokens only 3 blocks may hit */
  kv_seq_init(&c, 2, 5, 64, 16);
  CHECK(kv_prefix_hit(&kv, &c, 64, &hf) == 3);
  kv_free(&kv, &a, 0);
  CHECK(kv.n_free == 93);                          /* A's 3 private blocks; the group ones stay held by B */
  kv_free(&kv, &b, 0);
  CHECK(kv.n_free == 100 && kv_check(&kv) == 0);   /* all free, group blocks still cached */
  CHECK(kv_prefix_hit(&kv, &c, 100, &hf) == 4 && hf == 4);
  CHECK(kv_can_admit(&kv, 4, 4, 100));
  /* D fills the pool: the queue hands out cached blocks last freed last, then evicts them */
  kv_seq_init(&d, 3, -1, 0, 16);
  CHECK(kv_allocate(&kv, &d, 1600) == 0 && kv.n_free == 0 && kv.n_evicted == 4);
  kv_free(&kv, &d, 0);
  CHECK(kv_prefix_hit(&kv, &c, 100, &hf) == 0);   /* evicted */
  /* E is preempted after 50 tokens: its 3 full blocks stay cached for its recompute */
  kv_seq_init(&e, 4, -1, 0, 16);
  CHECK(kv_allocate(&kv, &e, 50) == 0);
  kv_free(&kv, &e, 50);
  CHECK(kv_prefix_hit(&kv, &e, 51, &hf) == 3 && hf == 3);
  CHECK(admit(&kv, &e, 51, 51, &hit) == 0 && hit == 3 && e.n_blocks == 4 && e.n_grp == 0);
  CHECK(kv_check(&kv) == 0);
  kv_free(&kv, &e, 0);
  /* two requests of a group allocate before either hit: the second publisher shares the first's
   * blocks and its own go back to the pool */
  struct kv_seq f, g;
  kv_seq_init(&f, 5, 9, 32, 16);
  kv_seq_init(&g, 6, 9, 32, 16);
  CHECK(kv_allocate(&kv, &f, 40) == 0 && kv_allocate(&kv, &g, 40) == 0);
  CHECK(f.n_grp == 2 && g.n_grp == 2 && kv.n_free == 100 - 3 - 1);
  CHECK(kv_refs(&kv) == 6 && kv_check(&kv) == 0);
  kv_free(&kv, &f, 0);
  kv_free(&kv, &g, 0);
  CHECK(kv.n_free == 100 && kv_check(&kv) == 0);
  kv_destroy(&kv);
}

/* Eviction order follows vLLM's single LRU queue: older free blocks go first, keyed or not, and
 * a request's deepest block before its shallower ones. */
static void test_eviction_order(void) {
  struct kv kv;
  CHECK(kv_init(&kv, 4, 16, 1) == 0);
  struct kv_seq e, g;
  int32_t hf;
  kv_seq_init(&e, 0, -1, 0, 16);
  kv_seq_init(&g, 1, -1, 0, 16);
  CHECK(kv_allocate(&kv, &e, 32) == 0);      /* the two oldest blocks */
  kv_free(&kv, &e, 32);                      /* preempted: both keep keys, freed after the rest */
  CHECK(kv_prefix_hit(&kv, &e, 33, &hf) == 2 && hf == 2);
  CHECK(kv_allocate(&kv, &g, 32) == 0);      /* the two never-used blocks are older: no eviction */
  CHECK(kv.n_evicted == 0 && kv_prefix_hit(&kv, &e, 33, &hf) == 2);
  CHECK(kv_allocate(&kv, &g, 48) == 0);      /* now the oldest free is e's deepest block */
  CHECK(kv.n_evicted == 1 && kv_prefix_hit(&kv, &e, 33, &hf) == 1);
  CHECK(kv_check(&kv) == 0);
  kv_free(&kv, &g, 0);
  CHECK(kv.n_free == 4 && kv_check(&kv) == 0);
  kv_destroy(&kv);
}

/* Random admissions (with hits), growth, finishes and preemptions over 3 prefix groups. */
static void test_stress(void) {
  struct kv kv;
  CHECK(kv_init(&kv, 200, 16, 1) == 0);
  struct kv_seq s[NSEQ];
  int64_t tok[NSEQ] = {0};
  int live[NSEQ] = {0}, uid = 0, bad = 0;
  struct rng r;
  rng_seed(&r, 9);
  int64_t hits = 0;
  for (int step = 0; step < 30000 && !bad; step++) {
    int i = (int)rng_range(&r, 0, NSEQ - 1);
    double u = rng_uniform(&r);
    if (!live[i]) {
      int grp = (int)rng_range(&r, -1, 2);
      kv_seq_init(&s[i], uid++, grp, grp >= 0 ? 16 * rng_range(&r, 1, 8) : 0, 16);
      int64_t n = rng_range(&r, 1, 300);
      int32_t hit;
      if (admit(&kv, &s[i], n, n, &hit) == 0) {
        live[i] = 1;
        tok[i] = n > hit * 16 ? n : hit * 16;
        hits += hit;
      }
    } else if (u < 0.2) {
      kv_free(&kv, &s[i], rng_uniform(&r) < 0.5 ? tok[i] : 0);
      live[i] = 0;
    } else {
      int64_t want = tok[i] + rng_range(&r, 1, 24);
      if (kv_allocate(&kv, &s[i], want) == 0) tok[i] = want;
    }
    int64_t held = 0;
    for (int k = 0; k < NSEQ; k++) held += live[k] ? s[k].n_blocks : 0;
    if (held != kv_refs(&kv) || kv_check(&kv) != 0) {
      fprintf(stderr, "step %d: held %lld refs %lld: %s\n", step, (long long)held, (long long)kv_refs(&kv), err_msg());
      bad = 1;
    }
  }
  CHECK(!bad);
  CHECK_MSG(hits > 100, "only %lld hits: the stress does not exercise the cache", (long long)hits);
  for (int k = 0; k < NSEQ; k++)
    if (live[k]) kv_free(&kv, &s[k], 0);
  CHECK(kv.n_free == 200 && kv_refs(&kv) == 0 && kv_check(&kv) == 0);
  kv_destroy(&kv);
}

int main(void) {
  test_plain();
  test_prefix_cache();
  test_eviction_order();
  test_stress();
  return check_report("test_kv");
}
