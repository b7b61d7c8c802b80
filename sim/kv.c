/* kv: paged KV block pool; chains through one next[] array. See kv.h. */
#include "sim/kv.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int kv_init(struct kv *kv, int64_t n_blocks, int block_size) {
  memset(kv, 0, sizeof *kv);
  if (n_blocks < 1 || n_blocks > INT32_MAX - 1)
    return err_set(ERR_INPUT, "kv: %lld KV blocks is out of range (need 1 .. 2^31-2)", (long long)n_blocks);
  if (block_size < 1) return err_set(ERR_INPUT, "kv: block size %d must be >= 1", block_size);
  kv->next = malloc((size_t)n_blocks * sizeof *kv->next);
  if (!kv->next) return err_set(ERR_NOMEM, "kv: cannot allocate %lld block ids", (long long)n_blocks);
  for (int64_t i = 0; i < n_blocks; i++) kv->next[i] = (int32_t)(i + 1 < n_blocks ? i + 1 : -1);
  kv->free_head = 0;
  kv->n_blocks = kv->n_free = (int32_t)n_blocks;
  kv->block_size = block_size;
  return ERR_OK;
}

void kv_destroy(struct kv *kv) {
  if (!kv) return;
  free(kv->next);
  kv->next = NULL;
}

void kv_seq_init(struct kv_seq *s) { *s = (struct kv_seq){-1, -1, 0}; }

int kv_can_allocate_slow(const struct kv *kv, const struct kv_seq *s, int64_t n_tok) {
  int32_t need = kv_blocks_for(kv, n_tok) - s->n_blocks;
  return need <= kv->n_free;
}

int kv_allocate_slow(struct kv *kv, struct kv_seq *s, int64_t n_tok) {
  int32_t need = kv_blocks_for(kv, n_tok) - s->n_blocks;
  if (need <= 0) return ERR_OK;
  if (need > kv->n_free)
    return err_set(ERR_NOMEM, "kv: need %d blocks, %d free", need, kv->n_free);
  for (int32_t k = 0; k < need; k++) {
    int32_t b = kv->free_head;
    kv->free_head = kv->next[b];
    kv->next[b] = -1;
    if (s->tail >= 0)
      kv->next[s->tail] = b;
    else
      s->head = b;
    s->tail = b;
  }
  kv->n_free -= need;
  s->n_blocks += need;
  return ERR_OK;
}

void kv_free(struct kv *kv, struct kv_seq *s) {
  if (s->n_blocks == 0) return;
  /* splice the whole chain in front of the free list: O(1) */
  kv->next[s->tail] = kv->free_head;
  kv->free_head = s->head;
  kv->n_free += s->n_blocks;
  kv_seq_init(s);
}

int kv_check(const struct kv *kv) {
  char *seen = calloc((size_t)kv->n_blocks, 1);
  if (!seen) return err_set(ERR_NOMEM, "kv_check: out of memory");
  int32_t n = 0;
  int rc = ERR_OK;
  for (int32_t b = kv->free_head; b >= 0; b = kv->next[b]) {
    if (b >= kv->n_blocks || seen[b]) {
      rc = err_set(ERR_INTERNAL, "kv: free list revisits or leaves the pool at block %d", b);
      break;
    }
    seen[b] = 1;
    n++;
  }
  if (rc == ERR_OK && n != kv->n_free)
    rc = err_set(ERR_INTERNAL, "kv: free list holds %d blocks but n_free = %d", n, kv->n_free);
  free(seen);
  return rc;
}
