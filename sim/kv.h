/* kv: the paged KV-cache block manager (vLLM's block pool) over integer block ids.
 *
 * Policy only: no time, no GPU. A replica owns n_blocks blocks of block_size tokens (the memory
 * plan's kv_blocks). Each sequence holds a chain of blocks in table order; the chains and the free
 * list share one next[] array, so allocating k blocks is O(k) and freeing a whole sequence is O(1)
 * (its chain is spliced onto the free list) with no per-sequence block table to size. Prefix
 * caching (shared blocks with reference counts) is not modelled yet. */
#ifndef SERVESIM_KV_H
#define SERVESIM_KV_H

#include <stdint.h>

/* A sequence's blocks: a chain head..tail through kv.next. */
struct kv_seq {
  int32_t head;              /* first block id, -1 when none */
  int32_t tail;              /* last block id, -1 when none */
  int32_t n_blocks;
};

struct kv {
  int32_t *next;             /* (n_blocks) next block in a chain or in the free list; -1 ends */
  int32_t free_head;         /* first free block, -1 when none */
  int32_t n_blocks;
  int32_t n_free;
  int32_t block_size;        /* tokens per block */
};

int kv_init(struct kv *kv, int64_t n_blocks, int block_size);
void kv_destroy(struct kv *kv);
void kv_seq_init(struct kv_seq *s);
/* Blocks a sequence needs to hold n_tok tokens in total. */
static inline int32_t kv_blocks_for(const struct kv *kv, int64_t n_tok) {
  return (int32_t)((n_tok + kv->block_size - 1) / kv->block_size);
}
int kv_can_allocate_slow(const struct kv *kv, const struct kv_seq *s, int64_t n_tok);
int kv_allocate_slow(struct kv *kv, struct kv_seq *s, int64_t n_tok);
/* Can s grow to hold n_tok tokens in total (n_tok = tokens computed + tokens scheduled)?
 * Inline fast path (most decodes): the last block still has room — a multiply, not a divide. */
static inline int kv_can_allocate(const struct kv *kv, const struct kv_seq *s, int64_t n_tok) {
  return n_tok <= (int64_t)s->n_blocks * kv->block_size || kv_can_allocate_slow(kv, s, n_tok);
}
/* Grows s to hold n_tok tokens; ERR_NOMEM (state unchanged) if the pool lacks blocks. */
static inline int kv_allocate(struct kv *kv, struct kv_seq *s, int64_t n_tok) {
  return n_tok <= (int64_t)s->n_blocks * kv->block_size ? 0 : kv_allocate_slow(kv, s, n_tok);
}
/* Decode: room for n_new more tokens on top of n_cur already held. */
static inline int kv_can_append(const struct kv *kv, const struct kv_seq *s, int64_t n_cur, int n_new) {
  return kv_can_allocate(kv, s, n_cur + n_new);
}
static inline int kv_append(struct kv *kv, struct kv_seq *s, int64_t n_cur, int n_new) {
  return kv_allocate(kv, s, n_cur + n_new);
}
/* Returns every block of s to the pool. */
void kv_free(struct kv *kv, struct kv_seq *s);
/* Walks the free list: n_free must equal its length and no id may repeat (tests, debugging).
 * Returns ERR_OK or ERR_INTERNAL with the mismatch in err_msg. */
int kv_check(const struct kv *kv);

#endif
