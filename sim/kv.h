/* kv: the paged KV-cache block manager (vLLM V1's block pool with prefix caching) over integer
 * block ids.
 *
 * Policy only: no time, no GPU. A replica owns n_blocks blocks of block_size tokens (the memory
 * plan's kv_blocks). vLLM keeps free blocks in one LRU queue: allocation takes the least recently
 * freed block (evicting its cached content), a free appends, a sequence's deepest blocks first.
 *
 * Prefix caching (vLLM V1's default): a full block is known by a key — (prefix group, position)
 * for the blocks of a prompt prefix shared by a group of requests (trace prefix_id/prefix_tok),
 * (request, position) for the request's own blocks. Group blocks are published as soon as they
 * are scheduled full, so later requests of the group share them (reference counted); a
 * request's own blocks are published when it is preempted, so its recompute can hit them. A
 * freed block keeps its key until it is handed out again (eviction). A new request's hit is the
 * run of leading keys found, capped one token short of its known tokens (the last token is
 * always computed, for its logits).
 *
 * Free blocks without a key are interchangeable, so they live on a LIFO stack (cache-friendly:
 * the block freed last is reused first) while keyed ones live in an LRU list; every free carries
 * a sequence number, and allocation takes a keyed block exactly when vLLM's single queue would
 * (its number is older than the oldest keyless one's, kept in a sorted ring). Eviction happens
 * at the same moments as in vLLM, at a fraction of the memory traffic.
 *
 * A sequence holds n_grp leading group blocks (found again through their keys), then a private
 * chain through cnext[]: allocating k blocks is O(k), freeing O(blocks held). */
#ifndef SERVESIM_KV_H
#define SERVESIM_KV_H

#include <stdint.h>

#define KV_NO_KEY UINT64_MAX

/* A sequence's blocks and its key namespace. */
struct kv_seq {
  int32_t head;              /* private chain: first block id, -1 when none */
  int32_t tail;              /* last block id, -1 when none */
  int32_t n_blocks;          /* n_grp + blocks in the private chain */
  int32_t n_grp;             /* leading group blocks held through the cache */
  int32_t uid;               /* request id: namespace of its own blocks' keys (-1 = none) */
  int32_t group;             /* prefix group (-1 = none) */
  int32_t n_group_blk;       /* leading full blocks shared with the group */
  int32_t n_keyed_priv;      /* private blocks carrying a key (taken back after a preemption) */
};

struct kv {
  int32_t *cnext;            /* (n_blocks) next block of a private chain, -1 ends */
  int32_t *refcnt;           /* (n_blocks) holders; 0 = free */
  uint64_t *key;             /* (n_blocks) cache key or KV_NO_KEY */
  int32_t *ustack;           /* (n_blocks) free blocks without a key, LIFO */
  int64_t *useq;             /* (n_blocks) ring of their free sequence numbers, ascending */
  int32_t n_ustack;
  int64_t useq_head;
  int32_t *fprev, *fnext;    /* (n_blocks) LRU list of free keyed blocks, -1 ends */
  int64_t *fseq;             /* (n_blocks) free sequence number of a keyed free block */
  int64_t next_seq;          /* the next free's sequence number */
  int32_t n_keyed_free;
  uint64_t *hkey;            /* (hmask + 1) open-addressing table: key -> block, KV_NO_KEY empty */
  int32_t *hval;             /* (hmask + 1) */
  uint64_t hmask;
  int32_t free_head, free_tail;  /* keyed LRU list */
  int32_t n_blocks;
  int32_t n_free;            /* free blocks, keyed or not (n_ustack + n_keyed_free) */
  int32_t block_size;        /* tokens per block */
  int caching;               /* --enable-prefix-caching */
  int64_t n_evicted;         /* cached blocks handed out again */
};

int kv_init(struct kv *kv, int64_t n_blocks, int block_size, int prefix_caching);
void kv_destroy(struct kv *kv);
/* uid: the request id (its own blocks' keys); group, group_tok: its shared prompt prefix. */
void kv_seq_init(struct kv_seq *s, int32_t uid, int32_t group, int64_t group_tok, int block_size);
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
/* Grows s to hold n_tok tokens (and publishes its group blocks that are now full); ERR_NOMEM,
 * state unchanged, if the pool lacks blocks. */
static inline int kv_allocate(struct kv *kv, struct kv_seq *s, int64_t n_tok) {
  return n_tok <= (int64_t)s->n_blocks * kv->block_size ? 0 : kv_allocate_slow(kv, s, n_tok);
}
/* Cache hit of an empty sequence whose first n_known tokens are known: leading blocks found
 * (no side effect). *n_hit_free: how many of them sit in the free queue (admitting takes them
 * out of it, so they count against n_free). */
int32_t kv_prefix_hit(const struct kv *kv, const struct kv_seq *s, int64_t n_known, int32_t *n_hit_free);
/* Can an empty s take its hit of n_hit blocks (n_hit_free of them free) and grow to n_tok? */
static inline int kv_can_admit(const struct kv *kv, int32_t n_hit, int32_t n_hit_free, int64_t n_tok) {
  return kv_blocks_for(kv, n_tok) - n_hit + n_hit_free <= kv->n_free;
}
/* Takes the n_hit leading cached blocks into the empty s (call kv_prefix_hit first). */
void kv_take_hit(struct kv *kv, struct kv_seq *s, int32_t n_hit);
/* Returns every block of s to the pool. keep_tok > 0 (a preemption, with caching on): the full
 * blocks of its first keep_tok tokens keep a key so its recompute can hit them. */
void kv_free(struct kv *kv, struct kv_seq *s, int64_t keep_tok);
/* Walks the pool: the free queue holds exactly the n_free blocks with no holder, every key in the
 * table names a block carrying it. Returns ERR_OK or ERR_INTERNAL with the mismatch. */
int kv_check(const struct kv *kv);
/* Sum of holders over all blocks (= sum of n_blocks over live sequences). */
int64_t kv_refs(const struct kv *kv);

#endif
