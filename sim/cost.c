/* cost: term names, the constant model (exact arithmetic for tests) and cost_destroy.
 * The roofline model lives in cost_roofline.c. */
#include "sim/cost.h"

#include <stdlib.h>

const char *const cost_term_names[COST_N_TERMS] = {
    [COST_ATTN] = "attention",
    [COST_DENSE_GEMM] = "dense GEMM",
    [COST_MOE_GEMM] = "MoE GEMM",
    [COST_EXPERT_IMBALANCE] = "expert imbalance",
    [COST_ALLREDUCE] = "all-reduce",
    [COST_ALL2ALL] = "all-to-all",
    [COST_PP_XFER] = "PP transfer",
    [COST_NORM_MISC] = "norms/misc",
    [COST_LM_HEAD] = "lm_head+sampling",
    [COST_LAUNCH] = "launch/CPU overhead",
};

struct cost_constant {
  int64_t fixed_ns;
  int64_t per_tok_ns;
};

/* fixed_ns is charged as launch overhead, the per-token part as dense GEMM, so the breakdown of
 * a constant run still adds up to its duration. */
static int64_t cost_constant_stage_ns(void *state, const struct cost_step *step, struct rng *rng,
                                      struct cost_breakdown *bd) {
  (void)rng;
  const struct cost_constant *c = state;
  int64_t tok_ns = c->per_tok_ns * step->n_tok;
  if (bd) {
    bd->ns[COST_LAUNCH] += c->fixed_ns;
    bd->ns[COST_DENSE_GEMM] += tok_ns;
  }
  return c->fixed_ns + tok_ns;
}

static void cost_constant_destroy(void *state) { free(state); }

void cost_constant_init(struct cost_model *cm, int64_t fixed_ns, int64_t per_tok_ns) {
  struct cost_constant *c = malloc(sizeof *c);
  cm->name = "constant";
  cm->state = c;
  cm->stage_ns = cost_constant_stage_ns;
  cm->destroy = cost_constant_destroy;
  if (c) {
    c->fixed_ns = fixed_ns;
    c->per_tok_ns = per_tok_ns;
  } else {
    cm->stage_ns = NULL; /* callers check stage_ns before running */
  }
}

void cost_destroy(struct cost_model *cm) {
  if (!cm) return;
  if (cm->destroy && cm->state) cm->destroy(cm->state);
  cm->state = NULL;
  cm->stage_ns = NULL;
}
