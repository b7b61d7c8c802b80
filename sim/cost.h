/* cost: how long one pipeline stage takes to run one scheduled batch (a "step").
 *
 * The interface between the serving loop (which decides *what* runs) and the cost models (which
 * say *how long* it takes). Implementations: cost_roofline.c (FLOPs and bytes over the hardware
 * spec's ceilings, alpha-beta collectives, MoE routing), cost_constant (tests), and later a
 * calibrated model interpolating measurements from the SQLite store. A cost model does no I/O
 * and no allocation per call: everything is precomputed at create time. */
#ifndef SERVESIM_COST_H
#define SERVESIM_COST_H

#include <stdint.h>

#include "common/rng.h"
#include "sim/hw.h"
#include "sim/layout.h"
#include "sim/model.h"

/* One request inside a step. */
struct cost_req {
  int32_t n_new;             /* tokens computed this step: a prefill chunk, or 1 for a decode */
  int32_t n_ctx;             /* tokens already in the KV cache before this step */
};

/* One stage's batch. The serving loop fills it; the cost model reads it. */
struct cost_step {
  const struct cost_req *reqs; /* (n_reqs) */
  int32_t n_reqs;
  int32_t n_tok;             /* sum of n_new */
  int32_t n_decode;          /* requests with n_new == 1 and n_ctx > 0 */
  int32_t n_sample;          /* requests that produce a token this step (last chunk or decode) */
  int32_t stage;             /* pipeline stage 0 .. pp-1 */
};

/* Where the time goes. Terms add up to the stage's duration. */
enum cost_term {
  COST_ATTN = 0,             /* attention kernels over actual context lengths */
  COST_DENSE_GEMM,           /* QKV / O projections (and dense MLPs) */
  COST_MOE_GEMM,             /* expert GEMMs on the most loaded EP rank at the mean load */
  COST_EXPERT_IMBALANCE,     /* extra MoE time because the most loaded rank waits */
  COST_ALLREDUCE,            /* TP / EP all-reduces */
  COST_ALL2ALL,              /* EP dispatch + combine (DP > 1 with expert parallel) */
  COST_PP_XFER,              /* activations sent to the next pipeline stage */
  COST_NORM_MISC,            /* norms, rope, router, activations, residual adds */
  COST_LM_HEAD,              /* embedding, lm_head and sampling (last stage) */
  COST_LAUNCH,               /* kernel launch / CUDA-graph replay and per-step CPU overhead */
  COST_N_TERMS
};

extern const char *const cost_term_names[COST_N_TERMS];

struct cost_breakdown {
  int64_t ns[COST_N_TERMS];
};

struct cost_model {
  const char *name;          /* "roofline", "constant", "calibrated" */
  void *state;
  /* Duration of one stage's step in ns; adds each term into *bd when bd != NULL. rng draws the
   * expert routing where the model samples it (deterministic for a given stream). */
  int64_t (*stage_ns)(void *state, const struct cost_step *step, struct rng *rng,
                      struct cost_breakdown *bd);
  void (*destroy)(void *state);
};

/* A model where a step costs fixed_ns + per_tok_ns * n_tok: exact arithmetic for tests. */
void cost_constant_init(struct cost_model *cm, int64_t fixed_ns, int64_t per_tok_ns);
void cost_destroy(struct cost_model *cm);

#endif
