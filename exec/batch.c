/* batch: flattening sequence chunks into per-token arrays (see batch.h). */
#include "exec/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int batch_kv_init(struct batch_kv *kv, int max_seqs, int max_ctx) {
  memset(kv, 0, sizeof *kv);
  if (max_seqs < 1 || max_ctx < 1) return err_set(ERR_INPUT, "KV cache needs max_seqs >= 1 and max_ctx >= 1");
  kv->max_seqs = max_seqs;
  kv->max_blocks = (max_ctx + BATCH_KV_BLOCK - 1) / BATCH_KV_BLOCK;
  kv->n_blocks = max_seqs * kv->max_blocks;
  kv->block_tables = malloc(sizeof(int32_t) * (size_t)kv->n_blocks);
  if (!kv->block_tables) return err_set(ERR_NOMEM, "out of memory");
  for (int s = 0; s < max_seqs; s++)
    for (int j = 0; j < kv->max_blocks; j++) kv->block_tables[s * kv->max_blocks + j] = j * max_seqs + s;
  return ERR_OK;
}

void batch_kv_free(struct batch_kv *kv) {
  free(kv->block_tables);
  kv->block_tables = NULL;
}

int batch_init(struct batch *b, int cap_tok) {
  memset(b, 0, sizeof *b);
  b->cap_tok = cap_tok;
  int32_t **arr[] = {&b->tokens, &b->positions, &b->token_seq, &b->slots, &b->sample_idx, &b->sample_seq};
  for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++) {
    *arr[i] = calloc((size_t)cap_tok, sizeof(int32_t));
    if (!*arr[i]) {
      batch_free(b);
      return err_set(ERR_NOMEM, "out of memory");
    }
  }
  return ERR_OK;
}

void batch_free(struct batch *b) {
  free(b->tokens);
  free(b->positions);
  free(b->token_seq);
  free(b->slots);
  free(b->sample_idx);
  free(b->sample_seq);
  memset(b, 0, sizeof *b);
}

int batch_build(struct batch *b, const struct batch_kv *kv, const struct batch_chunk *chunks, int n_chunks) {
  int t = 0, ns = 0, maxc = 0;
  for (int c = 0; c < n_chunks; c++) {
    const struct batch_chunk *ch = &chunks[c];
    if (ch->seq < 0 || ch->seq >= kv->max_seqs)
      return err_set(ERR_INPUT, "batch: sequence slot %d outside [0, %d)", ch->seq, kv->max_seqs);
    if (ch->n_new < 1 || ch->ctx_before < 0 || ch->ctx_before + ch->n_new > kv->max_blocks * BATCH_KV_BLOCK)
      return err_set(ERR_INPUT, "batch: sequence %d context %d + %d exceeds the KV capacity %d", ch->seq,
                     ch->ctx_before, ch->n_new, kv->max_blocks * BATCH_KV_BLOCK);
    if (t + ch->n_new > b->cap_tok)
      return err_set(ERR_INPUT, "batch: %d tokens exceed the step capacity %d", t + ch->n_new, b->cap_tok);
    for (int i = 0; i < ch->n_new; i++, t++) {
      int pos = ch->ctx_before + i;
      b->tokens[t] = ch->tokens[i];
      b->positions[t] = pos;
      b->token_seq[t] = ch->seq;
      b->slots[t] = kv->block_tables[ch->seq * kv->max_blocks + pos / BATCH_KV_BLOCK] * BATCH_KV_BLOCK +
                    pos % BATCH_KV_BLOCK;
    }
    if (ch->ctx_before + ch->n_new > maxc) maxc = ch->ctx_before + ch->n_new;
    if (ch->sample) {
      b->sample_idx[ns] = t - 1;
      b->sample_seq[ns] = ch->seq;
      ns++;
    }
  }
  b->n_tok = t;
  b->n_sample = ns;
  b->max_context = maxc;
  return ERR_OK;
}
