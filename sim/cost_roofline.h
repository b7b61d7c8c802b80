/* cost_roofline: the roofline step-cost model (sim/cost.h interface) built from the model,
 * hardware and layout specs alone.
 *
 * Per pipeline stage and step, each layer's ops are priced as max(bytes / achievable HBM
 * bandwidth, FLOPs / achievable tensor rate) plus a fixed per-kernel latency; collectives come
 * from sim/comm.c per interconnect tier; the MoE from a routing table (sim/moe_route.c); then
 * embedding, lm_head and sampling, the PP hand-off, CUDA-graph padding and host overhead.
 * Everything shape-dependent is precomputed at create time: a call is O(n_reqs), allocation-free
 * and pure (the rng argument is not used; routing is tabulated). Every constant and its source
 * is listed in cost_roofline.c and bench/RESULTS.md. */
#ifndef SERVESIM_COST_ROOFLINE_H
#define SERVESIM_COST_ROOFLINE_H

#include <stdint.h>

#include "sim/cost.h"

struct cost_roofline_opts {
  double route_skew;         /* Zipf exponent of expert popularity (0 = uniform multinomial) */
  uint64_t route_seed;       /* seed of the routing table (deterministic) */
  int route_samples;         /* Monte-Carlo draws per table point at small token counts */
  /* Host-side constants; a negative value selects the default documented in cost_roofline.c. */
  double cpu_step_us;        /* per step and stage: schedule, input prep, sync (fitted, RESULTS.md) */
  double cpu_req_us;         /* per request in the step */
  double pp_stage_us;        /* extra host latency per PP boundary (default 0) */
};

void cost_roofline_opts_default(struct cost_roofline_opts *o);

/* Fills out (name "roofline"). e must be resolved (engine_defaults). ERR_INPUT for a model or
 * layout the model cannot price (e.g. heads not divisible by tp), ERR_NOMEM. */
int cost_roofline_create(const struct model_spec *m, const struct hw_spec *h, const struct layout *l,
                         const struct engine *e, const struct cost_roofline_opts *o,
                         struct cost_model *out);

/* The launch/CPU term of one stage step by part, for a model that re-prices some of the
 * roofline's ops from measurements (cost_calib) and must rebuild the term. The roofline's is
 *   COST_LAUNCH = gap_ns x k_all + max(0, host_ns - (gpu_ns + gap_ns x k_all)) + fixed_ns.
 * k_* count the layer kernels of each re-priceable op on the stage (one GPU gap each). */
struct cost_roofline_launch {
  double gap_ns;             /* GPU gap per kernel (hw kernel_launch_us) */
  double k_all;              /* every layer kernel on the stage (and the embedding's) */
  double k_attn;             /* attention: one per layer */
  double k_qkv, k_o;         /* QKV and O projections: one each per layer */
  double k_gu, k_dn;         /* dense-MLP gate_up and down: one each per dense layer */
  double k_moe;              /* fused-MoE kernels per MoE layer x layers: 2 align/sort, gate_up, SiLU*mul,
                              * down, top-k weighted sum (router and top-k softmax not included) */
  double host_ns;            /* host dispatch of those kernels (graph replays per layer, or eager) */
  double gpu_ns;             /* the GPU terms the host time was compared with */
  double fixed_ns;           /* after the comparison: lm_head gaps and the per-step, per-request CPU */
};
/* stage_ns of a roofline model with its launch term by part (lp may be NULL). ERR_INPUT (as a
 * negative return) when rl is not a roofline model. */
int64_t cost_roofline_stage_launch_ns(const struct cost_model *rl, const struct cost_step *step,
                                      struct cost_breakdown *bd, struct cost_roofline_launch *lp);

/* vLLM's captured CUDA-graph size for n_tok scheduled tokens: [1, 2, 4] then multiples of 8 up
 * to 512; 0 when the step runs eager (above 512). */
int cost_roofline_graph_size(int n_tok);

#endif
