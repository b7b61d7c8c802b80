/* layout: a parallel deployment (vLLM's flags), its engine knobs, the memory plan, and every
 * rule that decides whether vLLM 0.9.x can run it, each naming the kernel or engine constraint.
 *
 * GPU ranks are numbered TP fastest, then PP, then DP: rank = dp * (pp*tp) + pp_stage * tp + tp_rank,
 * as vLLM places them, so a TP group occupies consecutive GPUs. */
#ifndef SERVESIM_LAYOUT_H
#define SERVESIM_LAYOUT_H

#include <stdint.h>

#include "sim/hw.h"
#include "sim/model.h"

struct layout {
  int tp;                    /* --tensor-parallel-size */
  int pp;                    /* --pipeline-parallel-size */
  int dp;                    /* --data-parallel-size */
  int ep;                    /* --enable-expert-parallel: experts spread over tp*dp ranks */
};

struct engine {
  double gpu_mem_util;       /* --gpu-memory-utilization (0.9) */
  int max_model_len;         /* --max-model-len (engine_defaults: max_position_embeddings) */
  int max_num_seqs;          /* --max-num-seqs (0 = vLLM default for the card) */
  int max_num_batched_tokens;/* --max-num-batched-tokens (0 = vLLM default for the card) */
  int block_size;            /* --block-size (16) */
  int kv_dtype_bytes;        /* --kv-cache-dtype: auto = model dtype (2), fp8 = 1 */
  int enforce_eager;         /* --enforce-eager */
  int enable_prefix_caching; /* vLLM V1 default on */
};

struct mem_plan {
  int64_t weight_bytes_rank;     /* largest rank's weights */
  int64_t activation_bytes_rank; /* activation / workspace peak reserved by the profile run */
  int64_t kv_bytes_token_rank;   /* KV bytes per token on one rank (its layers, its KV heads) */
  int64_t kv_bytes_free_rank;    /* mem * util - weights - activations - overhead */
  int64_t kv_blocks;             /* blocks per replica (min over its ranks) */
  int64_t kv_tokens;             /* kv_blocks * block_size */
  double max_concurrency;        /* kv_tokens / max_model_len */
  int64_t overhead_bytes_rank;   /* non-PyTorch memory vLLM's profile counts (NCCL, cuBLAS) */
  int64_t budget_bytes_rank;     /* mem_bytes * gpu_memory_utilization */
  int q_heads_rank;              /* attention heads per TP rank */
  int kv_heads_rank;             /* KV heads per TP rank: max(1, n_kv / tp) (replicated) */
  int experts_rank;              /* experts held per rank (whole with EP, else all, TP-split) */
  int moe_inter_rank;            /* expert intermediate width per rank (I/tp, or I with EP) */
  int layers_stage_max;          /* layers on the largest pipeline stage */
  int max_model_len;             /* the engine's max_model_len used for max_concurrency */
};

#define LAYOUT_MAX_FAILS 16

struct layout_fail {
  char rule[48];             /* short id: "tp-heads", "moe-block-k", "memory", ... */
  char detail[512];          /* the constraint, its numbers, and what vLLM prints */
};

#define LAYOUT_MAX_NOTES 8

struct layout_verdict {
  int n_fails;
  struct layout_fail fails[LAYOUT_MAX_FAILS];
  int n_notes;                              /* warnings that do not stop vLLM */
  struct layout_fail notes[LAYOUT_MAX_NOTES];
  struct mem_plan mem;
};

/* vLLM 0.9's engine defaults for a model on a card: max_model_len is the model's
 * max_position_embeddings (as vLLM derives it from config.json), the batch limits depend on
 * the card. Every engine starts here, so max_model_len is resolved once, where the engine
 * meets its model; layout_check, the cost models and the simulator read it as given. m or h
 * may be NULL (max_model_len 0; the small-card defaults). */
void engine_defaults(struct engine *e, const struct model_spec *m, const struct hw_spec *h);

/* Which expert-parallel variants layout_enumerate yields for each TP x PP x DP. EP over one rank
 * (tp * dp == 1) places every expert on the one rank, the same deployment as EP off. */
enum layout_enum_ep {
  LAYOUT_ENUM_EP_OFF = 0, /* ep = 0 only (dense models; --expert-parallel off) */
  LAYOUT_ENUM_EP_ON,      /* ep = 1 only, over one rank too (--enable-expert-parallel asked for it) */
  LAYOUT_ENUM_EP_BOTH,    /* ep = 0, then ep = 1 where the EP group has more than one rank */
  LAYOUT_ENUM_EP_EVERY,   /* ep = 0, then ep = 1 everywhere, EP over one rank included */
};
/* Every layout of exactly n_gpus GPUs, in one fixed order that `servesim check --all` rows and
 * the planner's candidates follow: TP ascending over the divisors of n_gpus, then PP ascending
 * over the divisors of n_gpus / TP, DP = n_gpus / (TP * PP), then ep 0 before ep 1 (as ep_set
 * allows). Writes the first min(total, cap) into out (out may be NULL when cap is 0) and returns
 * the total, so a caller can count first and size its array; 0 when n_gpus < 1. */
int layout_enumerate(int n_gpus, enum layout_enum_ep ep_set, struct layout *out, int cap);
/* Fills the verdict; returns ERR_OK (runs) or ERR_LAYOUT (n_fails > 0) with err_msg the first.
 * e starts from engine_defaults for m (its max_model_len is taken as given). */
int layout_check(const struct model_spec *m, const struct hw_spec *h, int n_gpus,
                 const struct layout *l, const struct engine *e, struct layout_verdict *v);
/* A --layout value: "tp=8,ep", "tp=4, pp=2", "tp=2,pp=2,dp=2,ep=1". tp, pp and dp take an
 * integer >= 1 (1 when not given); ep alone or ep=1 turns expert parallelism on, ep=0 off.
 * Spaces around an item are ignored; an empty item, an unknown key, a key given twice, or more
 * than max_gpus GPUs in all (tp * pp * dp) is an ERR_INPUT naming the value. */
int layout_parse(const char *s, int max_gpus, struct layout *l);
/* What one rank of a layout computes, as the cost models price it: the per-rank widths of the
 * model's linears and attention under TP, and the expert-parallel group. Sizes below 1 in the
 * layout count as 1. */
struct layout_rank {
  int tp, pp, dp;
  int qh, kvh, hd;     /* q heads, kv heads (replicated when tp > n_kv_heads), head dim */
  double H;            /* hidden */
  double qkv_n, o_k;   /* fused QKV output width, O input width */
  double dense_I;      /* dense MLP width (dense models, mlp-only layers) */
  double I_rank;       /* expert intermediate width: whole with EP, else split by TP */
  int E, topk;         /* experts, experts per token (1 for dense models) */
  int ep;              /* EP group size: tp * dp with --enable-expert-parallel on a MoE, else 1 */
  int ep_dp;           /* EP spans the DP replicas (MoE, EP on, dp > 1) */
};
void layout_rank_init(const struct model_spec *m, const struct layout *l, struct layout_rank *r);
/* Layers of pipeline stage `stage`, and how many of them are MoE and dense layers. */
void layout_stage_counts(const struct model_spec *m, int pp, int stage, int *n_layers, int *n_moe, int *n_dense);
/* EP group size (tp*dp with --enable-expert-parallel, else 1). */
int layout_ep_size(const struct layout *l);
int layout_n_gpus(const struct layout *l);
/* vLLM's get_pp_indices: layers [*first, *first + *count) on stage; extras go to the stages
 * before the last (which also holds lm_head). */
void layout_stage_layers(int n_layers, int pp, int stage, int *first, int *count);
/* Weight bytes on one rank of a pipeline stage (the largest such rank under uneven EP). */
int64_t layout_weight_bytes_stage(const struct model_spec *m, const struct layout *l, int stage);
/* KV bytes per token on one rank of a stage, kv_dtype_bytes per element. */
int64_t layout_kv_bytes_token_stage(const struct model_spec *m, const struct layout *l, int stage,
                                    int kv_dtype_bytes);
/* Estimated PyTorch activation peak of vLLM's profile run on a stage's rank (see layout.c). */
int64_t layout_activation_bytes_stage(const struct model_spec *m, const struct layout *l,
                                      const struct engine *e, int stage);

#endif
