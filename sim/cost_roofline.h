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

/* vLLM's captured CUDA-graph size for n_tok scheduled tokens: [1, 2, 4] then multiples of 8 up
 * to 512; 0 when the step runs eager (above 512). */
int cost_roofline_graph_size(int n_tok);

#endif
