/* ref_forward: the C reference forward of Qwen3-MoE (see ref_forward.h). */
#include "exec/ref_forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "kernels/ref_attn.h"
#include "kernels/ref_layer.h"
#include "kernels/ref_moe.h"
#include "kernels/ref_norm.h"
#include "kernels/ref_w4a16.h"

int ref_fwd_init(struct ref_fwd *r, const struct model_spec *m, const struct wt_rank *w, int max_seqs,
                 int max_ctx, int cap_tok) {
  memset(r, 0, sizeof *r);
  const struct wt_dims *d = &w->d;
  if (d->tp != 1) return err_set(ERR_INTERNAL, "ref_forward needs the tp=1 weights (got tp %d)", d->tp);
  r->m = *m;
  r->w = w;
  r->cap_tok = cap_tok;
  int rc = batch_kv_init(&r->kv, max_seqs, max_ctx);
  if (rc) return rc;
  int64_t H = d->hidden, L = d->n_layers;
  int64_t kv_elems = (int64_t)r->kv.n_blocks * BATCH_KV_BLOCK * d->n_kv_heads * d->head_dim;
  r->k_cache = calloc((size_t)(L * kv_elems), 2);
  r->v_cache = calloc((size_t)(L * kv_elems), 2);
  r->resid = malloc((size_t)(cap_tok * H) * 2);
  r->delta = malloc((size_t)(cap_tok * H) * 2);
  r->h = malloc((size_t)(cap_tok * H) * 2);
  r->sel = malloc((size_t)(cap_tok * H) * 2);
  r->qkv = malloc((size_t)cap_tok * (size_t)d->qkv_n * 2);
  r->attn = malloc((size_t)cap_tok * (size_t)d->n_heads * (size_t)d->head_dim * 2);
  r->rlogits = malloc((size_t)cap_tok * (size_t)d->n_experts * 2);
  r->topk_ids = malloc((size_t)cap_tok * (size_t)d->top_k * 4);
  r->topk_w = malloc((size_t)cap_tok * (size_t)d->top_k * 4);
  r->expert_hits = calloc((size_t)(L * d->n_experts), sizeof(int64_t));
  if (!r->k_cache || !r->v_cache || !r->resid || !r->delta || !r->h || !r->sel || !r->qkv || !r->attn ||
      !r->rlogits || !r->topk_ids || !r->topk_w || !r->expert_hits) {
    ref_fwd_free(r);
    return err_set(ERR_NOMEM, "ref_forward: out of host memory");
  }
  return ERR_OK;
}

void ref_fwd_free(struct ref_fwd *r) {
  batch_kv_free(&r->kv);
  void *p[] = {r->k_cache, r->v_cache, r->resid, r->delta, r->h, r->sel, r->qkv, r->attn, r->rlogits,
               r->topk_ids, r->topk_w, r->expert_hits};
  for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
  memset(r, 0, sizeof *r);
}

int ref_fwd_step(struct ref_fwd *r, const struct batch *b, bf16_t *logits, int32_t *next) {
  const struct wt_dims *d = &r->w->d;
  const struct wt_rank *w = r->w;
  int T = b->n_tok, H = d->hidden, D = d->head_dim, E = d->n_experts, k = d->top_k;
  int nq = d->hq_loc, nkv = d->hkv_loc;
  float eps = (float)r->m.rms_eps, theta = (float)r->m.rope_theta;
  if (T > r->cap_tok) return err_set(ERR_INPUT, "ref_forward: %d tokens exceed capacity %d", T, r->cap_tok);
  int64_t kv_elems = (int64_t)r->kv.n_blocks * BATCH_KV_BLOCK * nkv * D;
  ref_layer_embed(r->resid, w->embed, b->tokens, T, H, d->vocab);
  for (int l = 0; l < d->n_layers; l++) {
    const struct wt_layer *L = &w->layers[l];
    /* Layer 0 normalises the embedding; later layers first add the previous MoE output. */
    if (l == 0) ref_rmsnorm(r->h, r->resid, NULL, L->input_ln, T, H, eps);
    else ref_rmsnorm(r->h, r->delta, r->resid, L->input_ln, T, H, eps);
    ref_w4a16_gemm(r->qkv, r->h, L->qkv.qweight, L->qkv.scales, T, H, d->qkv_n);
    ref_qk_norm_rope(r->qkv, L->q_norm, L->k_norm, b->positions, T, nq, nkv, D, eps, theta);
    bf16_t *kc = r->k_cache + l * kv_elems, *vc = r->v_cache + l * kv_elems;
    ref_kv_write_paged(kc, vc, r->qkv, b->slots, T, nq, nkv, D);
    ref_attn_paged(r->attn, r->qkv, kc, vc, r->kv.block_tables, r->kv.max_blocks, b->token_seq, b->positions, T,
                   nq, nkv, D, 1.0f / sqrtf((float)D));
    ref_w4a16_gemm(r->delta, r->attn, L->o.qweight, L->o.scales, T, nq * D, H);
    ref_rmsnorm(r->h, r->delta, r->resid, L->post_ln, T, H, eps);
    ref_layer_linear(r->rlogits, r->h, L->router, T, H, E);
    ref_moe_route(r->topk_ids, r->topk_w, r->rlogits, T, E, k, r->m.norm_topk_prob);
    for (int64_t p = 0; p < (int64_t)T * k; p++) r->expert_hits[(int64_t)l * E + r->topk_ids[p]]++;
    struct ref_moe_weights mw = {L->w1.qweight, L->w3.qweight, L->w2.qweight,
                                 L->w1.scales,  L->w3.scales,  L->w2.scales};
    if (ref_moe_forward(r->delta, r->h, r->topk_ids, r->topk_w, &mw, T, k, H, d->inter_loc, 0, E))
      return err_set(ERR_NOMEM, "ref_forward: out of host memory in the MoE");
  }
  ref_rmsnorm(r->h, r->delta, r->resid, w->final_ln, T, H, eps);
  for (int s = 0; s < b->n_sample; s++)
    memcpy(r->sel + (int64_t)s * H, r->h + (int64_t)b->sample_idx[s] * H, (size_t)H * 2);
  bf16_t *lg = logits ? logits : malloc((size_t)b->n_sample * (size_t)d->vocab * 2);
  if (!lg) return err_set(ERR_NOMEM, "ref_forward: out of host memory");
  ref_layer_linear(lg, r->sel, w->lm_head, b->n_sample, H, d->v_loc);
  ref_layer_argmax(next, lg, b->n_sample, d->v_loc);
  if (!logits) free(lg);
  return ERR_OK;
}
