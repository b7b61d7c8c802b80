/* ref_forward: the whole Qwen3-MoE forward pass in plain C on one rank holding every weight
 * (TP=1), built from the kernels' C references (kernels/ref_*.h) with the GPU forward's exact
 * order of operations and bf16 rounding points. It is the oracle of `servesim-exec verify` and
 * of the GPU tests: embedding; per layer RMSNorm (fused residual add), qkv GEMM, per-head q/k
 * RMSNorm + neox RoPE, paged KV write, paged attention, o_proj, RMSNorm, router, top-k
 * (renormalised), experts, combine; final RMSNorm, lm_head, greedy argmax.
 * Slow by design (tiny models only). */
#ifndef SERVESIM_EXEC_REF_FORWARD_H
#define SERVESIM_EXEC_REF_FORWARD_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stdint.h>

#include "exec/batch.h"
#include "exec/weights.h"
#include "kernels/ref_bf16.h"
#include "sim/model.h"

struct ref_fwd {
  struct model_spec m;
  const struct wt_rank *w;   /* tp = 1 weights in host memory */
  struct batch_kv kv;
  int cap_tok;
  bf16_t *k_cache, *v_cache; /* [L][n_blocks * 16 * n_kv * D] */
  bf16_t *resid;             /* [cap_tok, H] residual stream */
  bf16_t *delta;             /* [cap_tok, H] attention / MoE output added to the residual next */
  bf16_t *h;                 /* [cap_tok, H] normed input of a sublayer */
  bf16_t *qkv;               /* [cap_tok, qkv_n] */
  bf16_t *attn;              /* [cap_tok, n_heads * D] */
  bf16_t *rlogits;           /* [cap_tok, E] router logits */
  int32_t *topk_ids;         /* [cap_tok, top_k] */
  float *topk_w;             /* [cap_tok, top_k] */
  bf16_t *sel;               /* [cap_tok, H] sampled rows */
  int64_t *expert_hits;      /* [L, E] tokens routed to each expert, summed over steps */
};

int ref_fwd_init(struct ref_fwd *r, const struct model_spec *m, const struct wt_rank *w, int max_seqs,
                 int max_ctx, int cap_tok);
void ref_fwd_free(struct ref_fwd *r);
/* One step. logits bf16 [n_sample, V] out (may be NULL); next int32 [n_sample] out. */
int ref_fwd_step(struct ref_fwd *r, const struct batch *b, bf16_t *logits, int32_t *next);

#ifdef __cplusplus
}
#endif

#endif
