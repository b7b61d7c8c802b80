/* batch: the shape of one forward step as the scheduler hands it to the executor: a list of
 * sequence chunks (a prefill chunk of n_new tokens after ctx_before cached ones, or a decode
 * with n_new = 1), flattened into per-token arrays, plus the paged-KV block tables.
 *
 * The KV cache is paged with KERN_KV_BLOCK (16) tokens per block. Blocks are assigned statically
 * (sequence slot s, block j -> physical block j * max_seqs + s), interleaved on purpose so that
 * every kernel and the C reference must go through the block table: a kernel that assumed
 * contiguous blocks fails the reference comparison. The serving loop (part 2) replaces the
 * static map with sim/kv.c's block manager; the tables keep the same shape. */
#ifndef SERVESIM_EXEC_BATCH_H
#define SERVESIM_EXEC_BATCH_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stdint.h>

#define BATCH_KV_BLOCK 16

struct batch_kv {
  int max_seqs;          /* sequence slots */
  int max_blocks;        /* blocks per sequence: ceil(max_ctx / 16) */
  int n_blocks;          /* physical blocks: max_seqs * max_blocks */
  int32_t *block_tables; /* host [max_seqs, max_blocks] */
};

struct batch_chunk {
  int seq;               /* sequence slot */
  int ctx_before;        /* tokens of this sequence already in the cache */
  int n_new;             /* tokens in this step (1 = decode) */
  const int32_t *tokens; /* [n_new] */
  int sample;            /* 1: produce logits for the chunk's last token */
};

struct batch {
  int n_tok, n_sample, max_context, cap_tok;
  int32_t *tokens;       /* [cap_tok] token ids */
  int32_t *positions;    /* [cap_tok] */
  int32_t *token_seq;    /* [cap_tok] sequence slot of each token */
  int32_t *slots;        /* [cap_tok] KV slot: block_tables[seq][pos/16] * 16 + pos % 16 */
  int32_t *sample_idx;   /* [cap_tok] token index of each sampled row */
  int32_t *sample_seq;   /* [cap_tok] its sequence slot */
};

int batch_kv_init(struct batch_kv *kv, int max_seqs, int max_ctx);
void batch_kv_free(struct batch_kv *kv);
int batch_init(struct batch *b, int cap_tok);
void batch_free(struct batch *b);
/* Flattens chunks into b; ERR_INPUT when a chunk overflows its slot's blocks or b's capacity. */
int batch_build(struct batch *b, const struct batch_kv *kv, const struct batch_chunk *chunks, int n_chunks);

#ifdef __cplusplus
}
#endif

#endif
