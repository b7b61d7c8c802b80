/* weights: TP slicing rules, the rank buffer's layout, host synthesis and checkpoint loading of
 * one rank's Qwen3-MoE GPTQ-Int4 weights (see weights.h). */
#include "exec/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "exec/safetensors.h"
#include "exec/wsynth.h"

#define WT_ALIGN 256

int wt_dims_init(const struct model_spec *m, int tp, int rank, struct wt_dims *d) {
  memset(d, 0, sizeof *d);
  if (m->quant.method != MODEL_QUANT_GPTQ || m->quant.bits != 4)
    return err_set(ERR_INPUT, "%s: the executor runs GPTQ int4 checkpoints only (quantization_config quant_method gptq, bits 4)",
                   m->name);
  if (m->quant.desc_act)
    return err_set(ERR_INPUT, "%s: desc_act=true (act-order g_idx) is not supported: the kernels assume g_idx[k] = k / group_size",
                   m->name);
  if (m->n_experts <= 0 || m->n_moe_layers != m->n_layers)
    return err_set(ERR_INPUT, "%s: every layer must be MoE (Qwen3-MoE with decoder_sparse_step 1, no mlp_only_layers)",
                   m->name);
  int g = m->quant.group_size;
  if (g <= 0 || g % 8)
    return err_set(ERR_INPUT, "%s: GPTQ group_size %d unsupported (needs a positive multiple of 8)", m->name, g);
  if (tp < 1 || rank < 0 || rank >= tp) return err_set(ERR_INPUT, "bad tensor-parallel rank %d of %d", rank, tp);
  if (m->n_heads % tp)
    return err_set(ERR_LAYOUT, "tp %d does not divide num_attention_heads %d", tp, m->n_heads);
  if (m->n_kv_heads % tp && tp % m->n_kv_heads)
    return err_set(ERR_LAYOUT, "tp %d and num_key_value_heads %d: neither divides the other", tp, m->n_kv_heads);
  if (m->hidden % g)
    return err_set(ERR_LAYOUT, "hidden_size %d is not a multiple of the GPTQ group size %d", m->hidden, g);
  if (m->moe_intermediate % tp)
    return err_set(ERR_LAYOUT, "tp %d does not divide moe_intermediate_size %d", tp, m->moe_intermediate);
  int inter_loc = m->moe_intermediate / tp;
  if (inter_loc % g)
    return err_set(ERR_LAYOUT,
                   "moe_intermediate_size %d / tp %d = %d is not a multiple of the GPTQ group size %d: the row-parallel down_proj cannot be split along groups (vLLM fails here too)",
                   m->moe_intermediate, tp, inter_loc, g);
  int hq_loc = m->n_heads / tp;
  if ((int64_t)hq_loc * m->head_dim % g)
    return err_set(ERR_LAYOUT, "o_proj rows per rank %d x %d are not a multiple of the GPTQ group size %d", hq_loc,
                   m->head_dim, g);
  if (m->head_dim % 8 || m->head_dim > 256)
    return err_set(ERR_INPUT, "head_dim %d unsupported (multiple of 8, at most 256)", m->head_dim);
  if (m->top_k < 1 || m->top_k > m->n_experts || m->top_k > 32)
    return err_set(ERR_INPUT, "num_experts_per_tok %d unsupported (1..min(32, num_experts))", m->top_k);
  d->tp = tp;
  d->rank = rank;
  d->hidden = m->hidden;
  d->head_dim = m->head_dim;
  d->n_layers = m->n_layers;
  d->n_experts = m->n_experts;
  d->top_k = m->top_k;
  d->inter = m->moe_intermediate;
  d->inter_loc = inter_loc;
  d->n_heads = m->n_heads;
  d->n_kv_heads = m->n_kv_heads;
  d->hq_loc = hq_loc;
  d->q_head0 = rank * hq_loc;
  if (tp <= m->n_kv_heads) {
    d->hkv_loc = m->n_kv_heads / tp;
    d->kv_head0 = rank * d->hkv_loc;
  } else {
    d->hkv_loc = 1;   /* replicated: the head this rank's q heads attend with */
    d->kv_head0 = rank * m->n_kv_heads / tp;
  }
  d->qkv_n = (d->hq_loc + 2 * d->hkv_loc) * d->head_dim;
  d->vocab = m->vocab;
  int vl = (m->vocab + tp - 1) / tp;
  d->v0 = rank * vl;
  d->v_loc = d->v0 + vl <= m->vocab ? vl : m->vocab - d->v0;
  d->group = g;
  d->tie_embed = m->tie_embed;
  return ERR_OK;
}

/* ---- layout: a bump allocator over offsets; base == NULL only sizes ---- */
struct wt_carver {
  uint8_t *base;
  int64_t off;
};

static void *wt_carve(struct wt_carver *c, int64_t n_bytes) {
  c->off = (c->off + WT_ALIGN - 1) / WT_ALIGN * WT_ALIGN;
  void *p = c->base ? c->base + c->off : NULL;
  c->off += n_bytes;
  return p;
}

static void wt_carve_q(struct wt_carver *c, int k, int n, int g, struct wt_qlinear *q) {
  q->k = k;
  q->n = n;
  q->qweight = wt_carve(c, (int64_t)k / 8 * n * 4);
  q->qzeros = wt_carve(c, (int64_t)k / g * (n / 8) * 4);
  q->scales = wt_carve(c, (int64_t)k / g * n * 2);
}

static void wt_carve_qe(struct wt_carver *c, int e, int k, int n, int g, struct wt_qexperts *q) {
  q->n_experts = e;
  q->k = k;
  q->n = n;
  q->qweight = wt_carve(c, (int64_t)e * k / 8 * n * 4);
  q->qzeros = wt_carve(c, (int64_t)e * (k / g) * (n / 8) * 4);
  q->scales = wt_carve(c, (int64_t)e * (k / g) * n * 2);
}

static void wt_carve_layer(const struct wt_dims *d, struct wt_carver *c, struct wt_layer *L) {
  int H = d->hidden, D = d->head_dim, g = d->group;
  L->input_ln = wt_carve(c, (int64_t)H * 2);
  L->post_ln = wt_carve(c, (int64_t)H * 2);
  L->q_norm = wt_carve(c, (int64_t)D * 2);
  L->k_norm = wt_carve(c, (int64_t)D * 2);
  L->router = wt_carve(c, (int64_t)d->n_experts * H * 2);
  wt_carve_q(c, H, d->qkv_n, g, &L->qkv);
  wt_carve_q(c, d->hq_loc * D, H, g, &L->o);
  wt_carve_qe(c, d->n_experts, H, d->inter_loc, g, &L->w1);
  wt_carve_qe(c, d->n_experts, H, d->inter_loc, g, &L->w3);
  wt_carve_qe(c, d->n_experts, d->inter_loc, H, g, &L->w2);
}

static void wt_carve_all(const struct wt_dims *d, struct wt_carver *c, struct wt_rank *w, struct wt_layer *layers) {
  int H = d->hidden;
  w->embed = wt_carve(c, (int64_t)d->vocab * H * 2);
  w->final_ln = wt_carve(c, (int64_t)H * 2);
  w->lm_head = wt_carve(c, (int64_t)d->v_loc * H * 2);
  for (int l = 0; l < d->n_layers; l++) {
    struct wt_layer tmp, *L = layers ? &layers[l] : &tmp;
    wt_carve_layer(d, c, L);
  }
}

int64_t wt_layer_bytes(const struct wt_dims *d) {
  struct wt_carver c = {NULL, 0};
  struct wt_layer L;
  wt_carve_layer(d, &c, &L);
  return (c.off + WT_ALIGN - 1) / WT_ALIGN * WT_ALIGN;
}

void wt_layout_layer(const struct wt_dims *d, uint8_t *base, struct wt_layer *L) {
  struct wt_carver c = {base, 0};
  wt_carve_layer(d, &c, L);
}

int64_t wt_rank_bytes(const struct wt_dims *d) {
  struct wt_carver c = {NULL, 0};
  struct wt_rank w;
  wt_carve_all(d, &c, &w, NULL);
  return (c.off + WT_ALIGN - 1) / WT_ALIGN * WT_ALIGN;
}

int wt_layout(const struct wt_dims *d, uint8_t *base, struct wt_rank *w) {
  memset(w, 0, sizeof *w);
  w->d = *d;
  w->layers = calloc((size_t)d->n_layers, sizeof *w->layers);
  if (!w->layers) return err_set(ERR_NOMEM, "out of memory");
  struct wt_carver c = {base, 0};
  wt_carve_all(d, &c, w, w->layers);
  w->base = base;
  w->n_bytes = wt_rank_bytes(d);
  return ERR_OK;
}

void wt_layout_free(struct wt_rank *w) {
  free(w->layers);
  w->layers = NULL;
}

/* ---- the quantised tensors' slices ---- */

int wt_layer_qslice_count(const struct wt_dims *d) { return 4 + 3 * d->n_experts; }

void wt_layer_qslice(const struct wt_dims *d, const struct wt_layer *L, int i, struct wt_qslice *s) {
  const int64_t H = d->hidden, D = d->head_dim, g = d->group, I = d->inter, Il = d->inter_loc;
  const int64_t nq = (int64_t)d->n_heads * D, nkv = (int64_t)d->n_kv_heads * D;
  const int64_t hq = (int64_t)d->hq_loc * D, hkv = (int64_t)d->hkv_loc * D;
  if (i < 4) {
    /* q, k, v: column-parallel by heads into the fused [q | k | v] buffer; o: row-parallel */
    const struct wt_qlinear *q = i < 3 ? &L->qkv : &L->o;
    static const int kinds[4] = {WS_Q, WS_K, WS_V, WS_O};
    *s = (struct wt_qslice){.kind = kinds[i], .expert = -1, .qweight = q->qweight, .qzeros = q->qzeros,
                            .scales = q->scales};
    if (i < 3) {
      s->K_glob = H, s->N_glob = i == 0 ? nq : nkv, s->k0 = 0, s->kl = H;
      s->n0 = (int64_t)(i == 0 ? d->q_head0 : d->kv_head0) * D, s->nl = i == 0 ? hq : hkv;
      s->ld = d->qkv_n, s->col_off = i == 0 ? 0 : i == 1 ? hq : hq + hkv;
    } else {
      s->K_glob = nq, s->N_glob = H, s->k0 = (int64_t)d->q_head0 * D, s->kl = hq;
      s->n0 = 0, s->nl = H, s->ld = H, s->col_off = 0;
    }
    return;
  }
  const int e = (i - 4) / 3, which = (i - 4) % 3; /* gate, up, down */
  const struct wt_qexperts *x = which == 0 ? &L->w1 : which == 1 ? &L->w3 : &L->w2;
  /* per-expert strides: gate/up K = H, N = Il; down K = Il, N = H */
  const int64_t kx = which < 2 ? H : Il, nx = which < 2 ? Il : H;
  *s = (struct wt_qslice){.kind = which == 0 ? WS_GATE : which == 1 ? WS_UP : WS_DOWN, .expert = e,
                          .qweight = x->qweight + e * (kx / 8 * nx), .qzeros = x->qzeros + e * (kx / g * (nx / 8)),
                          .scales = x->scales + e * (kx / g * nx)};
  if (which < 2) {
    s->K_glob = H, s->N_glob = I, s->k0 = 0, s->kl = H, s->n0 = (int64_t)d->rank * Il, s->nl = Il, s->ld = Il;
  } else {
    s->K_glob = I, s->N_glob = H, s->k0 = (int64_t)d->rank * Il, s->kl = Il, s->n0 = 0, s->nl = H, s->ld = H;
  }
  s->col_off = 0;
}

/* ---- host synthesis ---- */

/* Fills the block rows [k0, k0+kl) x cols [n0, n0+nl) of the full GPTQ tensor (K_glob x N_glob)
 * into a rank buffer with ld columns, starting at column col_off. */
static void wt_synth_q(uint64_t seed, uint64_t tid, int64_t K_glob, int64_t N_glob, int g, int64_t k0, int64_t kl,
                       int64_t n0, int64_t nl, int32_t *qw, int32_t *qz, uint16_t *sc, int64_t ld, int64_t col_off) {
  for (int64_t r = 0; r < kl / 8; r++)
    for (int64_t c = 0; c < nl; c++)
      qw[r * ld + col_off + c] = (int32_t)ws_qweight(seed, tid, (uint64_t)((k0 / 8 + r) * N_glob + n0 + c));
  for (int64_t gi = 0; gi < kl / g; gi++) {
    for (int64_t c = 0; c < nl; c++)
      sc[gi * ld + col_off + c] =
          ws_scale_fp16(ws_hash(seed, tid, WS_PART_SCALES, (uint64_t)((k0 / g + gi) * N_glob + n0 + c)), K_glob, tid);
    for (int64_t c = 0; c < nl / 8; c++) qz[gi * (ld / 8) + col_off / 8 + c] = (int32_t)WS_QZEROS_SYM4;
  }
}

static void wt_synth_bf16(uint64_t seed, int layer, int kind, int64_t row0, int64_t n_rows, int64_t n_cols,
                          int n_experts, float skew, uint16_t *dst) {
  for (int64_t r = 0; r < n_rows; r++)
    for (int64_t c = 0; c < n_cols; c++)
      dst[r * n_cols + c] =
          ws_bf16_value(seed, layer, kind, row0 + r, (uint64_t)((row0 + r) * n_cols + c), n_experts, skew);
}

void wt_synth_globals_host(const struct wt_dims *d, uint64_t seed, float skew, struct wt_rank *w) {
  int H = d->hidden, E = d->n_experts;
  wt_synth_bf16(seed, -1, WS_EMBED, 0, d->vocab, H, E, skew, w->embed);
  wt_synth_bf16(seed, -1, WS_FINAL_NORM, 0, 1, H, E, skew, w->final_ln);
  wt_synth_bf16(seed, -1, d->tie_embed ? WS_EMBED : WS_LM_HEAD, d->v0, d->v_loc, H, E, skew, w->lm_head);
}

void wt_synth_layer_host(const struct wt_dims *d, uint64_t seed, float skew, int l, struct wt_layer *L) {
  int H = d->hidden, D = d->head_dim, g = d->group, E = d->n_experts;
  wt_synth_bf16(seed, l, WS_IN_LN, 0, 1, H, E, skew, L->input_ln);
  wt_synth_bf16(seed, l, WS_POST_LN, 0, 1, H, E, skew, L->post_ln);
  wt_synth_bf16(seed, l, WS_Q_NORM, 0, 1, D, E, skew, L->q_norm);
  wt_synth_bf16(seed, l, WS_K_NORM, 0, 1, D, E, skew, L->k_norm);
  wt_synth_bf16(seed, l, WS_ROUTER, 0, E, H, E, skew, L->router);
  for (int i = 0; i < wt_layer_qslice_count(d); i++) {
    struct wt_qslice q;
    wt_layer_qslice(d, L, i, &q);
    wt_synth_q(seed, ws_tensor_id(l, q.kind, q.expert < 0 ? 0 : q.expert), q.K_glob, q.N_glob, g, q.k0, q.kl, q.n0,
               q.nl, q.qweight, q.qzeros, q.scales, q.ld, q.col_off);
  }
}

void wt_synth_host(const struct wt_dims *d, uint64_t seed, float skew, struct wt_rank *w) {
  wt_synth_globals_host(d, seed, skew, w);
  for (int l = 0; l < d->n_layers; l++) wt_synth_layer_host(d, seed, skew, l, &w->layers[l]);
}

/* ---- checkpoint loading ---- */

void wt_hf_name(char *out, int n, int layer, const char *module, int expert, const char *suffix) {
  if (expert >= 0)
    snprintf(out, (size_t)n, "model.layers.%d.mlp.experts.%d.%s.%s", layer, expert, module, suffix);
  else
    snprintf(out, (size_t)n, "model.layers.%d.%s.%s", layer, module, suffix);
}

/* Reads block rows [r0, r0+nr) x cols [c0, c0+nc) of t into dst with leading dimension ld. */
static int wt_read_ld(const struct st_ckpt *c, const struct st_tensor *t, int64_t r0, int64_t nr, int64_t c0,
                      int64_t nc, void *dst, int64_t ld, int es) {
  for (int64_t r = 0; r < nr; r++) {
    int rc = st_read_block(c, t, r0 + r, 1, c0, nc, (uint8_t *)dst + r * ld * es);
    if (rc) return rc;
  }
  return ERR_OK;
}

/* Loads block rows [k0,k0+kl) x cols [n0,n0+nl) of the GPTQ linear `prefix` (K_glob x N_glob). */
static int wt_load_q(const struct st_ckpt *c, const char *prefix, int64_t K_glob, int64_t N_glob, int g, int64_t k0,
                     int64_t kl, int64_t n0, int64_t nl, int32_t *qw, int32_t *qz, uint16_t *sc, int64_t ld,
                     int64_t col_off) {
  char name[256];
  const struct st_tensor *t;
  int rc;
  int64_t shp_w[2] = {K_glob / 8, N_glob}, shp_z[2] = {K_glob / g, N_glob / 8}, shp_s[2] = {K_glob / g, N_glob},
          shp_g[1] = {K_glob};
  snprintf(name, sizeof name, "%s.qweight", prefix);
  if ((rc = st_get(c, name, ST_I32, 2, shp_w, &t)) ||
      (rc = wt_read_ld(c, t, k0 / 8, kl / 8, n0, nl, qw + col_off, ld, 4)))
    return rc;
  snprintf(name, sizeof name, "%s.qzeros", prefix);
  if ((rc = st_get(c, name, ST_I32, 2, shp_z, &t)) ||
      (rc = wt_read_ld(c, t, k0 / g, kl / g, n0 / 8, nl / 8, qz + col_off / 8, ld / 8, 4)))
    return rc;
  for (int64_t r = 0; r < kl / g; r++)
    for (int64_t j = 0; j < nl / 8; j++)
      if ((uint32_t)qz[r * (ld / 8) + col_off / 8 + j] != WS_QZEROS_SYM4)
        return err_set(ERR_INPUT, "%s: tensor %s: qzeros[%lld][%lld] = 0x%08x, not the symmetric 0x77777777 (sym=false checkpoints are not supported)",
                       st_shard_path(c, t->shard), name, (long long)(k0 / g + r), (long long)(n0 / 8 + j),
                       (unsigned)qz[r * (ld / 8) + col_off / 8 + j]);
  snprintf(name, sizeof name, "%s.scales", prefix);
  if ((rc = st_get(c, name, ST_F16, 2, shp_s, &t)) ||
      (rc = wt_read_ld(c, t, k0 / g, kl / g, n0, nl, sc + col_off, ld, 2)))
    return rc;
  snprintf(name, sizeof name, "%s.g_idx", prefix);
  const struct st_tensor *gi = st_find(c, name);
  if (gi) { /* optional in some exports; when present it must be the trivial act-order-free map */
    if ((rc = st_get(c, name, ST_I32, 1, shp_g, &gi))) return rc;
    for (int64_t k = k0; k < k0 + kl; k++) {
      int32_t v;
      memcpy(&v, gi->data + k * 4, 4);
      if (v != (int32_t)(k / g))
        return err_set(ERR_INPUT, "%s: tensor %s: g_idx[%lld] = %d, expected %lld (act-order checkpoints are not supported)",
                       st_shard_path(c, gi->shard), name, (long long)k, v, (long long)(k / g));
    }
  }
  return ERR_OK;
}

/* A bf16 tensor: 1-D [cols] when rows == 0, else 2-D [rows, cols] of which rows [r0, r0+nr). */
static int wt_load_bf16(const struct st_ckpt *c, const char *name, int64_t rows, int64_t cols, int64_t r0,
                        int64_t nr, uint16_t *dst) {
  const struct st_tensor *t;
  int64_t shp2[2] = {rows, cols}, shp1[1] = {cols};
  int rc = rows > 0 ? st_get(c, name, ST_BF16, 2, shp2, &t) : st_get(c, name, ST_BF16, 1, shp1, &t);
  if (rc) return rc;
  return st_read_block(c, t, r0, nr, 0, cols, dst);
}

int wt_load_globals(const struct st_ckpt *c, const struct wt_dims *d, struct wt_rank *w) {
  int H = d->hidden, rc;
  if ((rc = wt_load_bf16(c, "model.embed_tokens.weight", d->vocab, H, 0, d->vocab, w->embed)) ||
      (rc = wt_load_bf16(c, "model.norm.weight", 0, H, 0, 1, w->final_ln)))
    return rc;
  /* tie_word_embeddings checkpoints carry no lm_head.weight: the embedding serves. */
  const char *lm = st_find(c, "lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
  return wt_load_bf16(c, lm, d->vocab, H, d->v0, d->v_loc, w->lm_head);
}

int wt_load_layer(const struct st_ckpt *c, const struct wt_dims *d, int l, struct wt_layer *L) {
  int H = d->hidden, D = d->head_dim, g = d->group, E = d->n_experts, rc;
  char name[256], pre[200];
  wt_hf_name(name, sizeof name, l, "input_layernorm", -1, "weight");
  if ((rc = wt_load_bf16(c, name, 0, H, 0, 1, L->input_ln))) return rc;
  wt_hf_name(name, sizeof name, l, "post_attention_layernorm", -1, "weight");
  if ((rc = wt_load_bf16(c, name, 0, H, 0, 1, L->post_ln))) return rc;
  wt_hf_name(name, sizeof name, l, "self_attn.q_norm", -1, "weight");
  if ((rc = wt_load_bf16(c, name, 0, D, 0, 1, L->q_norm))) return rc;
  wt_hf_name(name, sizeof name, l, "self_attn.k_norm", -1, "weight");
  if ((rc = wt_load_bf16(c, name, 0, D, 0, 1, L->k_norm))) return rc;
  wt_hf_name(name, sizeof name, l, "mlp.gate", -1, "weight");
  if ((rc = wt_load_bf16(c, name, E, H, 0, E, L->router))) return rc;
  for (int i = 0; i < wt_layer_qslice_count(d); i++) {
    struct wt_qslice q;
    wt_layer_qslice(d, L, i, &q);
    static const char *const module[] = {[WS_Q] = "self_attn.q_proj", [WS_K] = "self_attn.k_proj",
                                         [WS_V] = "self_attn.v_proj", [WS_O] = "self_attn.o_proj",
                                         [WS_GATE] = "gate_proj",     [WS_UP] = "up_proj",
                                         [WS_DOWN] = "down_proj"};
    if (q.expert < 0)
      snprintf(pre, sizeof pre, "model.layers.%d.%s", l, module[q.kind]);
    else
      snprintf(pre, sizeof pre, "model.layers.%d.mlp.experts.%d.%s", l, q.expert, module[q.kind]);
    if ((rc = wt_load_q(c, pre, q.K_glob, q.N_glob, g, q.k0, q.kl, q.n0, q.nl, q.qweight, q.qzeros, q.scales, q.ld,
                        q.col_off)))
      return rc;
  }
  return ERR_OK;
}

int wt_load(const struct st_ckpt *c, const struct wt_dims *d, struct wt_rank *w) {
  int rc = wt_load_globals(c, d, w);
  for (int l = 0; !rc && l < d->n_layers; l++) rc = wt_load_layer(c, d, l, &w->layers[l]);
  return rc;
}

static double wt_qbytes(int64_t k, int64_t n, int g) { return (double)k * n / 2 + (double)k / g * n * 2 + (double)k / g * n / 2; }

double wt_active_bytes_per_token(const struct wt_dims *d) {
  int H = d->hidden, g = d->group;
  double per_layer = wt_qbytes(H, d->qkv_n, g) + wt_qbytes((int64_t)d->hq_loc * d->head_dim, H, g) +
                     (double)d->n_experts * H * 2 +
                     d->top_k * (2 * wt_qbytes(H, d->inter_loc, g) + wt_qbytes(d->inter_loc, H, g)) +
                     4.0 * H + 4.0 * d->head_dim;
  return per_layer * d->n_layers + (double)d->v_loc * H * 2 + 2.0 * H;
}
