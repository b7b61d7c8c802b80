/* engine_int: the inside of struct eng, shared by exec/engine.cu (the step) and
 * exec/profile.cu (which times the step's pieces on the same buffers and weights). */
#ifndef SERVESIM_EXEC_ENGINE_INT_H
#define SERVESIM_EXEC_ENGINE_INT_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "exec/engine.h"
#include "exec/gpu_weights.h"

#define ENG_MAX_GRAPHS 16

struct eng_graph {
  int n_tok;                   /* decode batch size it was captured for; 0 = free */
  cudaGraphExec_t exec;
};

struct eng {
  struct eng_cfg cfg;
  struct model_spec m;
  struct wt_dims d;
  struct comm *comm;
  struct gw_rank w;
  struct batch_kv kv;
  cudaStream_t stream;
  cublasHandle_t blas;
  cudaEvent_t ev0, ev1;
  double last_ms;
  int cap_ctx;                 /* max_blocks * 16: the context the graphs are sized for */
  /* device buffers, one allocation */
  void *act_base;
  int64_t act_bytes;
  int32_t *tokens, *positions, *token_seq, *slots, *sample_idx; /* [max_tok] */
  int32_t *block_tables;       /* [max_seqs, max_blocks] */
  bf16_t *resid, *delta, *h;   /* [max_tok, H] */
  bf16_t *qkv;                 /* [max_tok, qkv_n] */
  bf16_t *attn;                /* [max_tok, hq_loc D] */
  bf16_t *rlogits;             /* [max_tok, E] */
  int32_t *topk_ids;           /* [max_tok, k] */
  float *topk_w;               /* [max_tok, k] */
  int32_t *expert_off;         /* [E + 1] */
  int32_t *sorted_pair, *pair_row; /* [max_tok k] */
  bf16_t *hmid;                /* [max_tok k, I_loc] */
  bf16_t *ymoe;                /* [max_tok k, H] */
  bf16_t *sel;                 /* [max_seqs, H] sampled rows */
  bf16_t *logits;              /* [max_seqs, v_loc] */
  int32_t *ids;                /* [max_seqs] local argmax */
  int32_t *pairs;              /* [max_seqs, 2]: (logit as float bits, global id) */
  int32_t *gathered;           /* [tp, max_seqs, 2] */
  bf16_t *logits_all;          /* [tp, max_seqs, v_loc]: the gathered vocabulary slices */
  unsigned long long *hits;    /* [L, E] */
  void *gemm_ws;               /* kern_w4a16 split-K workspace */
  size_t gemm_ws_bytes;
  void *attn_ws;
  size_t attn_ws_bytes;
  void *blas_ws;               /* cuBLAS workspace (fixed, so graph capture never allocates) */
  bf16_t *k_cache, *v_cache;   /* [L][n_blocks, 16, hkv_loc, D] */
  int64_t kv_layer_elems;
  /* pinned host staging */
  int32_t *h_in;               /* [5, max_tok] */
  int32_t *h_gathered;         /* [tp, max_seqs, 2] */
  bf16_t *h_logits;            /* [tp, max_seqs, v_loc] */
  struct eng_graph graphs[ENG_MAX_GRAPHS];
  /* decode fast paths (engine.cu): enabled only after matching the library kernels on this
   * device at start-up (eng_selfcheck) */
  int router_gemv;             /* router logits by a GEMV (4 warps per expert) for T <= ENG_GEMV_MAX_T */
};

#define ENG_GEMV_MAX_T 64
/* The step's attention and router, as the forward runs them (profile.cu times the router this
 * way; the attention it times through kern_attn_paged, which is all eng_attention calls). stream
 * is the kernels' kern_stream_t. */
int eng_attention(struct eng *e, const bf16_t *kc, const bf16_t *vc, int T, int max_context,
                  struct CUstream_st *stream);
int eng_router(struct eng *e, const bf16_t *router, int T, struct CUstream_st *stream);

/* The layers and sampling of one step on already-uploaded inputs (no host sync): what a graph
 * captures. max_context sizes the attention split. */
int eng_forward_device(struct eng *e, int n_tok, int n_sample, int max_context);

#define ENG_CUDA(call)                                                                                  \
  do {                                                                                                  \
    cudaError_t eng_e_ = (call);                                                                        \
    if (eng_e_ != cudaSuccess)                                                                          \
      return err_set(ERR_DEVICE, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(eng_e_)); \
  } while (0)
#define ENG_TRY(call)          \
  do {                         \
    int eng_rc_ = (call);      \
    if (eng_rc_) return eng_rc_; \
  } while (0)

#endif
