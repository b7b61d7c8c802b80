/* weights: one tensor-parallel rank's share of a Qwen3-MoE GPTQ-Int4 model, its layout in one
 * buffer, and how it is filled (from a safetensors checkpoint or synthesized).
 *
 * TP slicing (what vLLM does for this model):
 *   q/k/v_proj, expert gate/up_proj  column-parallel: split N (heads / intermediate columns).
 *   o_proj, expert down_proj         row-parallel: split K along whole GPTQ groups, so
 *                                    K / tp must be a multiple of group_size (1536/8 = 192 is not:
 *                                    the same wall vLLM's MoE kernels hit at TP=8).
 *   KV heads                         n_kv/tp per rank; when tp > n_kv each rank holds the one head
 *                                    its q heads use (replicated tp/n_kv times).
 *   mlp.gate (router), norms         replicated (small).
 *   embed_tokens                     replicated: a lookup reads only the batch's rows, so
 *                                    splitting it would save memory (1.2 GB) but cost a collective.
 *   lm_head                          vocab-parallel: rank r holds rows [v0, v0+v_loc); greedy
 *                                    sampling takes each rank's (max, argmax) and gathers them.
 * Experts are stored back to back so a kernel indexes expert e by stride (the layout of
 * kernels/ref_moe.h); q, k and v are concatenated along N ([q | k | v]) so one GEMM serves all.
 * This is the checkpoint layout; the GPU copy is repacked by kern_gptq_repack* (exec/gpu_weights.cu).
 * The layout is a list of byte offsets from one base: the same struct describes the host mirror
 * and the device copy (llm.c's "one allocation carved into tensors"). */
#ifndef SERVESIM_EXEC_WEIGHTS_H
#define SERVESIM_EXEC_WEIGHTS_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stdint.h>

#include "sim/model.h"

struct st_ckpt;

/* The local dimensions of one rank. */
struct wt_dims {
  int tp, rank;
  int hidden;          /* H */
  int head_dim;        /* D */
  int n_layers;        /* L */
  int n_experts;       /* E */
  int top_k;
  int inter;           /* moe_intermediate_size (global I) */
  int inter_loc;       /* I / tp */
  int n_heads, n_kv_heads;
  int hq_loc;          /* q heads on this rank */
  int hkv_loc;         /* kv heads on this rank */
  int q_head0;         /* first global q head */
  int kv_head0;        /* first global kv head */
  int qkv_n;           /* (hq_loc + 2 hkv_loc) * D: columns of the fused qkv GEMM */
  int vocab, v0, v_loc;/* lm_head rows of this rank */
  int group;           /* GPTQ group size (128) */
  int tie_embed;       /* lm_head is the embedding (tie_word_embeddings) */
};

/* One GPTQ int4 linear K x N (y = x W, x [M, K]): pointers into the rank's buffer. */
struct wt_qlinear {
  int k, n;
  int32_t *qweight;    /* [k/8, n]: 8 consecutive k rows per int32, lowest row in the low nibble */
  int32_t *qzeros;     /* [k/group, n/8]: packed along n the same way */
  uint16_t *scales;    /* fp16 [k/group, n] */
};

/* n_experts GPTQ linears of one shape, back to back (expert e at + e * stride). */
struct wt_qexperts {
  int n_experts, k, n;
  int32_t *qweight;    /* [E][k/8][n] */
  int32_t *qzeros;     /* [E][k/group][n/8] */
  uint16_t *scales;    /* [E][k/group][n] fp16 */
};

struct wt_layer {
  uint16_t *input_ln;  /* bf16 [H] */
  uint16_t *post_ln;   /* bf16 [H] */
  uint16_t *q_norm;    /* bf16 [D] */
  uint16_t *k_norm;    /* bf16 [D] */
  struct wt_qlinear qkv;   /* K = H, N = qkv_n: [q (hq_loc D) | k (hkv_loc D) | v (hkv_loc D)] */
  struct wt_qlinear o;     /* K = hq_loc D, N = H (row-parallel) */
  uint16_t *router;    /* bf16 [E, H] (nn.Linear layout: logits = h router^T) */
  struct wt_qexperts w1;   /* gate_proj: K = H, N = inter_loc (column-parallel) */
  struct wt_qexperts w3;   /* up_proj:   K = H, N = inter_loc (column-parallel) */
  struct wt_qexperts w2;   /* down_proj: K = inter_loc, N = H (row-parallel) */
};

struct wt_rank {
  struct wt_dims d;
  uint16_t *embed;     /* bf16 [V, H] (replicated) */
  uint16_t *final_ln;  /* bf16 [H] */
  uint16_t *lm_head;   /* bf16 [v_loc, H] */
  struct wt_layer *layers; /* host array [L] of pointers into base */
  uint8_t *base;
  int64_t n_bytes;
};

/* Checks that the model can be split tp ways (each failure names the rule) and fills d. */
int wt_dims_init(const struct model_spec *m, int tp, int rank, struct wt_dims *d);
/* Bytes of the rank's weights (the buffer wt_layout carves). */
int64_t wt_rank_bytes(const struct wt_dims *d);
/* Points w's tensors into base (host or device memory of wt_rank_bytes bytes). Allocates the
 * host-side layers array; free with wt_layout_free. */
int wt_layout(const struct wt_dims *d, uint8_t *base, struct wt_rank *w);
void wt_layout_free(struct wt_rank *w);

/* Bytes of one layer's tensors, and a layer struct carved from base (a one-layer staging
 * buffer: the GPU loader fills one layer on the host at a time). */
int64_t wt_layer_bytes(const struct wt_dims *d);
void wt_layout_layer(const struct wt_dims *d, uint8_t *base, struct wt_layer *L);

/* One quantised tensor of a layer as this rank holds it: block rows [k0, k0 + kl) x columns
 * [n0, n0 + nl) of the full GPTQ tensor (K_glob x N_glob), stored in the rank's buffers of ld
 * columns from column col_off. Host synthesis, the checkpoint loader and the GPU synthesis
 * (exec/gpu_weights.cu) all walk the same list, so the tensor-parallel slicing is written once. */
struct wt_qslice {
  int kind;   /* wsynth.h's WS_Q, WS_K, WS_V, WS_O, WS_GATE, WS_UP, WS_DOWN */
  int expert; /* -1 for the attention tensors */
  int64_t K_glob, N_glob, k0, kl, n0, nl, ld, col_off;
  int32_t *qweight, *qzeros;
  uint16_t *scales;
};
/* A layer has wt_layer_qslice_count(d) = 4 + 3 n_experts of them: i = 0..3 q, k, v, o; then
 * gate, up, down of expert (i - 4) / 3. */
int wt_layer_qslice_count(const struct wt_dims *d);
void wt_layer_qslice(const struct wt_dims *d, const struct wt_layer *L, int i, struct wt_qslice *s);

/* Host synthesis of the rank's slice (wsynth.h values). w must point into host memory. */
void wt_synth_host(const struct wt_dims *d, uint64_t seed, float skew, struct wt_rank *w);
void wt_synth_layer_host(const struct wt_dims *d, uint64_t seed, float skew, int layer, struct wt_layer *L);
/* Embedding, final norm, lm_head slice only. */
void wt_synth_globals_host(const struct wt_dims *d, uint64_t seed, float skew, struct wt_rank *w);
/* Loads the rank's slice from a checkpoint into host memory w (only the slice's bytes are read);
 * checks every tensor's dtype and shape, that g_idx is k / group (desc_act=false) and that
 * qzeros hold the symmetric zero (the kernels assume it). */
int wt_load(const struct st_ckpt *c, const struct wt_dims *d, struct wt_rank *w);
int wt_load_layer(const struct st_ckpt *c, const struct wt_dims *d, int layer, struct wt_layer *L);
int wt_load_globals(const struct st_ckpt *c, const struct wt_dims *d, struct wt_rank *w);

/* Weight bytes one token reads on this rank at decode: attention, top_k experts' share, router,
 * norms, lm_head slice (not the embedding: one row). For the decode floor. */
double wt_active_bytes_per_token(const struct wt_dims *d);

/* Hugging Face tensor names. expert < 0 for non-expert tensors. */
void wt_hf_name(char *out, int n, int layer, const char *module, int expert, const char *suffix);

#ifdef __cplusplus
}
#endif

#endif
