/* kv: paged KV block pool with an LRU free queue and prefix caching. See kv.h. */
#include "sim/kv.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/hash.h"

/* ---- key -> block table: open addressing, linear probing, backward-shift deletion ---- */

static int32_t kv_hget(const struct kv *kv, uint64_t k) {
  for (uint64_t i = hash_mix64(k) & kv->hmask;; i = (i + 1) & kv->hmask) {
    if (kv->hkey[i] == k) return kv->hval[i];
    if (kv->hkey[i] == KV_NO_KEY) return -1;
  }
}

static void kv_hput(struct kv *kv, uint64_t k, int32_t b) {
  uint64_t i = hash_mix64(k) & kv->hmask;
  while (kv->hkey[i] != KV_NO_KEY && kv->hkey[i] != k) i = (i + 1) & kv->hmask;
  kv->hkey[i] = k;
  kv->hval[i] = b;
}

static void kv_hdel(struct kv *kv, uint64_t k) {
  uint64_t i = hash_mix64(k) & kv->hmask;
  while (kv->hkey[i] != k) {
    if (kv->hkey[i] == KV_NO_KEY) return;
    i = (i + 1) & kv->hmask;
  }
  /* shift later members of the probe run back so lookups never stop early */
  for (uint64_t j = (i + 1) & kv->hmask;; j = (j + 1) & kv->hmask) {
    if (kv->hkey[j] == KV_NO_KEY) break;
    uint64_t home = hash_mix64(kv->hkey[j]) & kv->hmask;
    /* j's entry may move to i when its home is not cyclically in (i, j] */
    if (((j - home) & kv->hmask) >= ((j - i) & kv->hmask)) {
      kv->hkey[i] = kv->hkey[j];
      kv->hval[i] = kv->hval[j];
      i = j;
    }
  }
  kv->hkey[i] = KV_NO_KEY;
}

/* ---- free blocks: keyless LIFO stack + keyed LRU list, ordered by free sequence numbers ---- */

static void kv_list_append(struct kv *kv, int32_t b) {
  kv->fnext[b] = -1;
  kv->fprev[b] = kv->free_tail;
  if (kv->free_tail >= 0) kv->fnext[kv->free_tail] = b;
  else kv->free_head = b;
  kv->free_tail = b;
}

/* Takes a free keyed block off the LRU list (a cache hit, or an eviction). */
static void kv_list_remove(struct kv *kv, int32_t b) {
  int32_t p = kv->fprev[b], n = kv->fnext[b];
  if (p >= 0) kv->fnext[p] = n;
  else kv->free_head = n;
  if (n >= 0) kv->fprev[n] = p;
  else kv->free_tail = p;
  kv->fprev[b] = kv->fnext[b] = -1;
  kv->n_keyed_free--;
  kv->n_free--;
}

/* Frees b with sequence number seq (callers hand out increasing numbers per kind). */
static void kv_push_free(struct kv *kv, int32_t b, int64_t seq) {
  if (kv->key[b] == KV_NO_KEY) {
    kv->useq[(kv->useq_head + kv->n_ustack) % kv->n_blocks] = seq;
    kv->ustack[kv->n_ustack++] = b;
  } else {
    kv->fseq[b] = seq;
    kv_list_append(kv, b);
    kv->n_keyed_free++;
  }
  kv->n_free++;
}

/* Allocates the block vLLM's queue would hand out: the oldest free, evicting its key. */
static int32_t kv_pop_free(struct kv *kv) {
  if (kv->free_head >= 0 && (kv->n_ustack == 0 || kv->fseq[kv->free_head] < kv->useq[kv->useq_head])) {
    int32_t b = kv->free_head;
    kv_list_remove(kv, b);
    kv_hdel(kv, kv->key[b]);
    kv->key[b] = KV_NO_KEY;
    kv->n_evicted++;
    return b;
  }
  /* keyless blocks are interchangeable: consume the oldest number, reuse the newest block */
  kv->useq_head = (kv->useq_head + 1) % kv->n_blocks;
  kv->n_free--;
  return kv->ustack[--kv->n_ustack];
}

/* ---- keys ---- */

/* Group blocks: bit 63 set, group in bits 32..62; a request's own blocks: uid in bits 32..62. */
static inline uint64_t kv_key(const struct kv_seq *s, int32_t pos) {
  if (s->group >= 0 && pos < s->n_group_blk)
    return (1ULL << 63) | ((uint64_t)(uint32_t)s->group << 32) | (uint32_t)pos;
  if (s->uid < 0) return KV_NO_KEY; /* no namespace: its own blocks are never cached */
  return ((uint64_t)(uint32_t)s->uid << 32) | (uint32_t)pos;
}

/* ---- public ---- */

int kv_init(struct kv *kv, int64_t n_blocks, int block_size, int prefix_caching) {
  memset(kv, 0, sizeof *kv);
  if (n_blocks < 1 || n_blocks > INT32_MAX / 4)
    return err_set(ERR_INPUT, "kv: %lld KV blocks is out of range (need 1 .. 2^29)", (long long)n_blocks);
  if (block_size < 1) return err_set(ERR_INPUT, "kv: block size %d must be >= 1", block_size);
  size_t n = (size_t)n_blocks;
  uint64_t slots = 1;
  while (slots < 2 * (uint64_t)n_blocks) slots <<= 1; /* load factor <= 1/2 */
  kv->cnext = malloc(n * sizeof *kv->cnext);
  kv->fprev = malloc(n * sizeof *kv->fprev);
  kv->fnext = malloc(n * sizeof *kv->fnext);
  kv->fseq = malloc(n * sizeof *kv->fseq);
  kv->ustack = malloc(n * sizeof *kv->ustack);
  kv->useq = malloc(n * sizeof *kv->useq);
  kv->refcnt = calloc(n, sizeof *kv->refcnt);
  kv->key = malloc(n * sizeof *kv->key);
  kv->hkey = prefix_caching ? malloc(slots * sizeof *kv->hkey) : NULL;
  kv->hval = prefix_caching ? malloc(slots * sizeof *kv->hval) : NULL;
  if (!kv->cnext || !kv->fprev || !kv->fnext || !kv->fseq || !kv->ustack || !kv->useq || !kv->refcnt || !kv->key ||
      (prefix_caching && (!kv->hkey || !kv->hval))) {
    kv_destroy(kv);
    return err_set(ERR_NOMEM, "kv: cannot allocate %lld blocks", (long long)n_blocks);
  }
  kv->n_blocks = (int32_t)n_blocks;
  kv->block_size = block_size;
  kv->caching = prefix_caching != 0;
  kv->hmask = slots - 1;
  if (kv->hkey)
    for (uint64_t i = 0; i < slots; i++) kv->hkey[i] = KV_NO_KEY;
  kv->free_head = kv->free_tail = -1;
  /* block 0 is handed out first, as from vLLM's initial queue */
  for (int32_t b = kv->n_blocks - 1; b >= 0; b--) {
    kv->cnext[b] = kv->fprev[b] = kv->fnext[b] = -1;
    kv->key[b] = KV_NO_KEY;
    kv_push_free(kv, b, kv->next_seq++);
  }
  return ERR_OK;
}

void kv_destroy(struct kv *kv) {
  if (!kv) return;
  free(kv->cnext);
  free(kv->fprev);
  free(kv->fnext);
  free(kv->fseq);
  free(kv->ustack);
  free(kv->useq);
  free(kv->refcnt);
  free(kv->key);
  free(kv->hkey);
  free(kv->hval);
  memset(kv, 0, sizeof *kv);
}

void kv_seq_init(struct kv_seq *s, int32_t uid, int32_t group, int64_t group_tok, int block_size) {
  *s = (struct kv_seq){.head = -1, .tail = -1, .uid = uid, .group = group};
  s->n_group_blk = group >= 0 && block_size > 0 ? (int32_t)(group_tok / block_size) : 0;
}

int kv_can_allocate_slow(const struct kv *kv, const struct kv_seq *s, int64_t n_tok) {
  int32_t need = kv_blocks_for(kv, n_tok) - s->n_blocks;
  return need <= kv->n_free;
}

/* Appends block b to the end of s's private chain. */
static inline void kv_chain_append(struct kv *kv, struct kv_seq *s, int32_t b) {
  kv->cnext[b] = -1;
  if (s->tail >= 0) kv->cnext[s->tail] = b;
  else s->head = b;
  s->tail = b;
}

/* Moves s's private chain head (position n_grp, now full) into the shared group part. If
 * another request published the same position first, s shares that block and frees its own. */
static void kv_publish_group(struct kv *kv, struct kv_seq *s) {
  int32_t b = s->head;
  s->head = kv->cnext[b];
  if (s->head < 0) s->tail = -1;
  kv->cnext[b] = -1;
  uint64_t k = kv_key(s, s->n_grp);
  int32_t have = kv_hget(kv, k);
  if (have >= 0 && have != b) {
    if (kv->refcnt[have]++ == 0) kv_list_remove(kv, have);
    kv->refcnt[b] = 0;
    kv_push_free(kv, b, kv->next_seq++);
  } else {
    kv_hput(kv, k, b);
    kv->key[b] = k;
  }
  s->n_grp++;
}

int kv_allocate_slow(struct kv *kv, struct kv_seq *s, int64_t n_tok) {
  int32_t need = kv_blocks_for(kv, n_tok) - s->n_blocks;
  if (need > kv->n_free) return err_set(ERR_NOMEM, "kv: need %d blocks, %d free", need, kv->n_free);
  for (int32_t k = 0; k < need; k++) {
    int32_t b = kv_pop_free(kv);
    kv->refcnt[b] = 1;
    kv_chain_append(kv, s, b);
  }
  if (need > 0) s->n_blocks += need;
  /* group blocks become shareable once scheduled full (vLLM caches at allocation) */
  if (kv->caching)
    while (s->n_grp < s->n_group_blk && (int64_t)(s->n_grp + 1) * kv->block_size <= n_tok && s->head >= 0)
      kv_publish_group(kv, s);
  return ERR_OK;
}

int32_t kv_prefix_hit(const struct kv *kv, const struct kv_seq *s, int64_t n_known, int32_t *n_hit_free) {
  *n_hit_free = 0;
  if (!kv->caching || n_known < 1) return 0;
  int32_t max_blk = (int32_t)((n_known - 1) / kv->block_size);
  int32_t i = 0;
  for (; i < max_blk; i++) {
    uint64_t k = kv_key(s, i);
    int32_t b = k == KV_NO_KEY ? -1 : kv_hget(kv, k);
    if (b < 0) break;
    if (kv->refcnt[b] == 0) (*n_hit_free)++;
  }
  return i;
}

void kv_take_hit(struct kv *kv, struct kv_seq *s, int32_t n_hit) {
  for (int32_t i = 0; i < n_hit; i++) {
    int32_t b = kv_hget(kv, kv_key(s, i));
    if (kv->refcnt[b]++ == 0) kv_list_remove(kv, b);
    if (i < s->n_group_blk && s->group >= 0 && s->n_grp == i) {
      s->n_grp++;
    } else { /* its own block from before a preemption: back into the private chain */
      s->n_keyed_priv++;
      kv_chain_append(kv, s, b);
    }
    s->n_blocks++;
  }
}

void kv_free(struct kv *kv, struct kv_seq *s, int64_t keep_tok) {
  if (s->n_blocks == 0) return;
  int32_t keep_blk = kv->caching && keep_tok > 0 ? (int32_t)(keep_tok / kv->block_size) : 0;
  int32_t n_priv = s->n_blocks - s->n_grp;
  /* vLLM frees the deepest block first: position p of the chain gets number base + (last - p) */
  int64_t base = kv->next_seq;
  kv->next_seq += s->n_blocks;
  if (keep_blk == 0 && s->n_keyed_priv == 0) {
    /* hot path (a request finishing): no key in the chain; keyless numbers must enter their
     * ring in ascending order, and these blocks are interchangeable, so number them in walk order */
    int64_t seq = base;
    for (int32_t b = s->head; b >= 0;) {
      int32_t next = kv->cnext[b];
      kv->cnext[b] = -1;
      kv->refcnt[b] = 0;
      kv_push_free(kv, b, seq++);
      b = next;
    }
  } else {
    /* a preemption keeping keys (or a chain holding keyed blocks): keyless blocks first (they are
     * the deepest), then keyed ones deepest first, by reversing the chain in place */
    int32_t prev = -1, pos = s->n_grp;
    int64_t useq = base;
    for (int32_t b = s->head; b >= 0; pos++) {
      int32_t next = kv->cnext[b];
      kv->refcnt[b] = 0;
      if (pos < keep_blk && kv->key[b] == KV_NO_KEY) {
        uint64_t k = kv_key(s, pos);
        if (k != KV_NO_KEY && kv_hget(kv, k) < 0) {
          kv_hput(kv, k, b);
          kv->key[b] = k;
        }
      }
      if (kv->key[b] == KV_NO_KEY) {
        kv->cnext[b] = -1;
        kv_push_free(kv, b, useq++);
      } else {
        kv->cnext[b] = prev;
        prev = b;
      }
      b = next;
    }
    for (int32_t b = prev; b >= 0;) {
      int32_t next = kv->cnext[b];
      kv->cnext[b] = -1;
      kv_push_free(kv, b, useq++);
      b = next;
    }
  }
  /* then the shared group blocks, deepest first */
  int64_t gseq = base + n_priv;
  for (int32_t i = s->n_grp - 1; i >= 0; i--) {
    int32_t b = kv_hget(kv, kv_key(s, i));
    if (b >= 0 && --kv->refcnt[b] == 0) kv_push_free(kv, b, gseq);
    gseq++;
  }
  s->head = s->tail = -1;
  s->n_blocks = s->n_grp = s->n_keyed_priv = 0;
}

int64_t kv_refs(const struct kv *kv) {
  int64_t r = 0;
  for (int32_t b = 0; b < kv->n_blocks; b++) r += kv->refcnt[b];
  return r;
}

int kv_check(const struct kv *kv) {
  int32_t n = 0, zero = 0;
  int64_t last = -1;
  for (int32_t b = kv->free_head; b >= 0; b = kv->fnext[b]) {
    if (b >= kv->n_blocks || kv->refcnt[b] != 0 || kv->key[b] == KV_NO_KEY || ++n > kv->n_blocks)
      return err_set(ERR_INTERNAL, "kv: LRU list holds block %d (holders %d, key %s) or loops", b,
                     b < kv->n_blocks ? kv->refcnt[b] : -1, b < kv->n_blocks && kv->key[b] != KV_NO_KEY ? "set" : "none");
    if (kv->fseq[b] <= last) return err_set(ERR_INTERNAL, "kv: LRU list out of free order at block %d", b);
    last = kv->fseq[b];
  }
  if (n != kv->n_keyed_free) return err_set(ERR_INTERNAL, "kv: LRU list holds %d blocks, count says %d", n, kv->n_keyed_free);
  last = -1;
  for (int32_t i = 0; i < kv->n_ustack; i++) {
    int32_t b = kv->ustack[i];
    int64_t q = kv->useq[(kv->useq_head + i) % kv->n_blocks];
    if (b < 0 || b >= kv->n_blocks || kv->refcnt[b] != 0 || kv->key[b] != KV_NO_KEY)
      return err_set(ERR_INTERNAL, "kv: keyless free stack holds block %d wrongly", b);
    if (q <= last) return err_set(ERR_INTERNAL, "kv: keyless free numbers out of order at %d", i);
    last = q;
  }
  for (int32_t b = 0; b < kv->n_blocks; b++) {
    if (kv->refcnt[b] < 0) return err_set(ERR_INTERNAL, "kv: block %d has %d holders", b, kv->refcnt[b]);
    zero += kv->refcnt[b] == 0;
    if (kv->key[b] != KV_NO_KEY && kv_hget(kv, kv->key[b]) != b)
      return err_set(ERR_INTERNAL, "kv: block %d carries a key the table does not map to it", b);
  }
  if (n + kv->n_ustack != kv->n_free || zero != kv->n_free)
    return err_set(ERR_INTERNAL, "kv: %d keyed + %d keyless free blocks, %d have no holder, n_free = %d", n,
                   kv->n_ustack, zero, kv->n_free);
  if (kv->hkey)
    for (uint64_t i = 0; i <= kv->hmask; i++)
      if (kv->hkey[i] != KV_NO_KEY && kv->key[kv->hval[i]] != kv->hkey[i])
        return err_set(ERR_INTERNAL, "kv: table slot %llu maps a key to block %d, which carries another",
                       (unsigned long long)i, kv->hval[i]);
  return ERR_OK;
}
