/* moe_route: the expert-routing model behind the MoE cost, tabulated once at create time.
 *
 * Each token picks top_k distinct experts. Uniform routing (skew 0) gives every expert the same
 * chance; skew s > 0 gives the expert of popularity rank r a weight (r + 1)^-s (a Zipf law), the
 * ranks shuffled over experts with a fixed seed so hot experts land on random EP ranks. Picks are
 * drawn without replacement in proportion to weight (Plackett-Luce). Experts sit on EP ranks
 * linearly in contiguous ranges, as vLLM 0.9.x places them: E / ep experts per rank, the first
 * E % ep ranks holding one more when ep does not divide E.
 *
 * The serving loop asks for a step's MoE cost ~1e6 times per run, so the expectation over routing
 * of (a) the most loaded rank's cost and (b) the mean rank's cost is tabulated by token count on a
 * grid (every count to 64, then 6.25% steps) by Monte-Carlo with a fixed seed, made monotone,
 * and interpolated. The caller supplies the per-rank cost from the rank's per-expert counts. */
#ifndef SERVESIM_MOE_ROUTE_H
#define SERVESIM_MOE_ROUTE_H

#include <stdint.h>

struct moe_route_cfg {
  int n_experts;             /* experts per MoE layer (global) */
  int top_k;                 /* experts per token */
  int n_ranks;               /* EP ranks holding disjoint expert sets; 1 = every rank holds all */
  double skew;               /* Zipf exponent of expert popularity; 0 = uniform */
  uint64_t seed;             /* Monte-Carlo and popularity-shuffle seed */
  int samples;               /* draws per grid point for small counts (fewer for large) */
};

/* Cost (ns) of one rank running its local experts; counts: (n_local) tokens per local expert;
 * n_tok: tokens in the step (the kernel's block size depends on it). */
typedef double (*moe_rank_cost_fn)(const void *ctx, int n_tok, const int32_t *counts, int n_local);

struct moe_route_table {
  int n_pts;
  int32_t *tok;              /* (n_pts) token counts of the grid, increasing */
  double *max_ns;            /* (n_pts) E[cost of the most loaded rank] */
  double *mean_ns;           /* (n_pts) E[mean cost over ranks] */
  double *active;            /* (n_pts) E[experts with >= 1 token, whole layer] */
};

/* Builds the table up to max_tok tokens. ERR_INPUT on a bad configuration, ERR_NOMEM. */
int moe_route_table_build(struct moe_route_table *tb, const struct moe_route_cfg *c, int max_tok,
                          moe_rank_cost_fn cost, const void *ctx);
/* Linear interpolation (linear extrapolation past the last point, slope of the last segment). */
void moe_route_lookup(const struct moe_route_table *tb, int n_tok, double *max_ns, double *mean_ns);
double moe_route_active(const struct moe_route_table *tb, int n_tok);
void moe_route_table_free(struct moe_route_table *tb);

#endif
