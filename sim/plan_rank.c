/* plan_rank: objectives, the ranked order, the best candidate per objective, and the Pareto
 * frontier of throughput per GPU against a latency statistic.
 *
 * Every comparison is (score, candidate id): equal scores keep enumeration order, so the ranking
 * never depends on which thread or rank finished first. Scores are oriented "higher is better";
 * an objective that is undefined for a candidate (no SLO, no price, failed run) scores -inf and
 * sorts last. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sim/plan.h"

const char *const plan_objective_names[PLAN_OBJ_N] = {"throughput", "ttft", "tpot",
                                                       "goodput",    "cost", "rate"};

int plan_objective_parse(const char *s, int *obj) {
  for (int i = 0; i < PLAN_OBJ_N; i++)
    if (s && !strcmp(s, plan_objective_names[i])) {
      *obj = i;
      return ERR_OK;
    }
  return err_set(ERR_INPUT, "--objective: unknown '%s' (throughput, ttft, tpot, goodput, cost "
                 "or rate)", s ? s : "");
}

static int plan_rank_usable(const struct plan_result *r, int id) {
  return r->cand[id].feasible && r->out[id].evaluated && r->out[id].status == ERR_OK;
}

double plan_rank_value(const struct plan_result *r, int id, int objective) {
  if (!plan_rank_usable(r, id)) return NAN;
  const struct plan_outcome *o = &r->out[id];
  const struct plan_metrics *m = &o->m;
  int g = r->cand[id].n_gpus;
  switch (objective) {
    case PLAN_OBJ_TPUT_GPU: return m->out_tok_s / g;
    case PLAN_OBJ_TTFT: return m->q_s[PLAN_M_TTFT][PLAN_S_P99];
    case PLAN_OBJ_TPOT: return m->q_s[PLAN_M_TPOT][PLAN_S_P99];
    case PLAN_OBJ_GOODPUT: return r->opts.slo.n ? m->goodput_req_s : NAN;
    case PLAN_OBJ_COST:
      /* $ per million output tokens: the deployment's GPU-hours per hour over its tokens. */
      if (r->opts.gpu_hour_cost <= 0 || !(m->out_tok_s > 0)) return NAN;
      return r->opts.gpu_hour_cost * g / 3600.0 / m->out_tok_s * 1e6;
    case PLAN_OBJ_RATE: return o->rate_status == PLAN_RATE_NONE ? NAN : o->max_load;
    default: return NAN;
  }
}

double plan_rank_score(const struct plan_result *r, int id, int objective) {
  double v = plan_rank_value(r, id, objective);
  if (isnan(v)) return -INFINITY;
  int lower_better = objective == PLAN_OBJ_TTFT || objective == PLAN_OBJ_TPOT ||
                     objective == PLAN_OBJ_COST;
  return lower_better ? -v : v;
}

struct plan_rank_key {
  double a;                  /* primary key, descending */
  double b;                  /* secondary key, ascending (the frontier's latency) */
  int id;                    /* ties: enumeration order */
};

static int plan_rank_cmp(const void *pa, const void *pb) {
  const struct plan_rank_key *x = pa, *y = pb;
  if (x->a != y->a) return x->a > y->a ? -1 : 1;
  if (x->b != y->b) return x->b < y->b ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

int plan_rank(struct plan_result *r) {
  free(r->ranked);
  free(r->pareto);
  r->ranked = r->pareto = NULL;
  r->n_ranked = r->n_pareto = 0;
  for (int k = 0; k < PLAN_OBJ_N; k++) r->best[k] = -1;
  int n = 0;
  for (int i = 0; i < r->n_cand; i++) n += plan_rank_usable(r, i);
  if (n == 0) return ERR_OK;
  struct plan_rank_key *keys = malloc((size_t)n * sizeof *keys);
  r->ranked = malloc((size_t)n * sizeof *r->ranked);
  r->pareto = malloc((size_t)n * sizeof *r->pareto);
  if (!keys || !r->ranked || !r->pareto) {
    free(keys);
    return err_set(ERR_NOMEM, "plan: out of memory ranking %d candidates", n);
  }

  /* best per objective: the top of each objective's order, if its score is defined */
  for (int k = 0; k < PLAN_OBJ_N; k++) {
    int best = -1;
    double best_s = -INFINITY;
    for (int i = 0; i < r->n_cand; i++) {
      if (!plan_rank_usable(r, i)) continue;
      double s = plan_rank_score(r, i, k);
      if (s > best_s) { /* strict: the lower id wins ties */
        best_s = s;
        best = i;
      }
    }
    r->best[k] = best;
  }

  /* the table: by the chosen objective; ties by throughput per GPU, then id */
  int j = 0;
  for (int i = 0; i < r->n_cand; i++) {
    if (!plan_rank_usable(r, i)) continue;
    keys[j].a = plan_rank_score(r, i, r->opts.objective);
    keys[j].b = -plan_rank_score(r, i, PLAN_OBJ_TPUT_GPU);
    keys[j].id = i;
    j++;
  }
  qsort(keys, (size_t)n, sizeof *keys, plan_rank_cmp);
  for (int i = 0; i < n; i++) r->ranked[i] = keys[i].id;
  r->n_ranked = n;

  /* Pareto frontier: sweep by throughput descending; a point joins when its latency beats every
   * point with at least its throughput. Undefined latency (NaN) never joins. */
  j = 0;
  for (int i = 0; i < r->n_cand; i++) {
    if (!plan_rank_usable(r, i)) continue;
    double lat = r->out[i].m.q_s[r->opts.pareto_metric][r->opts.pareto_stat];
    double tput = plan_rank_value(r, i, PLAN_OBJ_TPUT_GPU);
    if (isnan(lat) || isnan(tput)) continue;
    keys[j].a = tput;
    keys[j].b = lat;
    keys[j].id = i;
    j++;
  }
  qsort(keys, (size_t)j, sizeof *keys, plan_rank_cmp);
  double best_lat = INFINITY;
  for (int i = 0; i < j; i++) {
    if (keys[i].b < best_lat) {
      best_lat = keys[i].b;
      r->pareto[r->n_pareto++] = keys[i].id;
    }
  }
  free(keys);
  return ERR_OK;
}
