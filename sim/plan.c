/* plan: the planner's driver: enumerate the space, evaluate the feasible candidates on threads
 * (and MPI ranks), gather the outcomes into enumeration order, rank them. See plan.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/progress.h"
#include "sim/plan.h"

void plan_opts_default(struct plan_opts *o) {
  memset(o, 0, sizeof *o);
  o->search_rate = 1;
  o->rate_tol = 0.02;
  o->rate_max_iters = 12;
  o->load_min = 1.0 / 64;
  o->load_max = 64;
  o->n_threads = 1;
  o->objective = PLAN_OBJ_TPUT_GPU;
  o->pareto_metric = PLAN_M_TPOT;
  o->pareto_stat = PLAN_S_P99;
  o->seed = 0;
  o->progress = -1;
}

struct plan_job {
  const struct plan_evaluator *ev;
  const struct plan_opts *o;
  const struct plan_cand *cand;
  const int *ids;            /* (n_tasks) candidate id of each task */
  struct plan_outcome *out;  /* (n_feasible) compact: one slot per feasible candidate */
  int rank, size;            /* this process owns compact slots k with k % size == rank */
  struct progress pg;
};

static int plan_task(void *ctx, int i) {
  struct plan_job *j = ctx;
  int k = j->rank + i * j->size; /* the i-th slot this rank owns */
  int rc = plan_search_candidate(j->ev, &j->cand[j->ids[k]], j->o, &j->out[k]);
  progress_add(&j->pg, 1);
  return rc;
}

static double plan_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int plan_run(const struct plan_space *s, const struct model_spec *m,
             const struct plan_evaluator *ev, const struct plan_opts *o, struct plan_result *r,
             int *is_root) {
  double t0 = plan_now_s();
  int rc;
  memset(r, 0, sizeof *r);
  r->space = *s;
  r->opts = *o;
  snprintf(r->model, sizeof r->model, "%s", m->name);
  r->load_kind = ev->load_kind;
  r->load_nominal = ev->load_nominal;
  r->rate_req_s = ev->rate_req_s;
  snprintf(r->workload, sizeof r->workload, "%s", ev->workload);
  snprintf(r->cost_model, sizeof r->cost_model, "%s", ev->cost_model);
  r->fewest_cand = -1;
  for (int k = 0; k < PLAN_OBJ_N; k++) r->best[k] = -1;
  *is_root = plan_mpi_rank() == 0;
  if (o->search_rate && o->slo.n &&
      !(o->load_min > 0 && o->load_max >= o->load_min && o->rate_tol > 0))
    return err_set(ERR_INPUT, "plan: the rate search needs 0 < load_min <= load_max and tol > 0");

  if ((rc = plan_space_enumerate(s, m, o->seed, &r->cand, &r->n_cand))) return rc;
  if (r->n_cand == 0)
    return err_set(ERR_INPUT, "plan: no layout of the given GPU counts matches the pinned sizes "
                   "(-tp/-pp/-dp), --layout or --expert-parallel");
  r->out = calloc((size_t)(r->n_cand ? r->n_cand : 1), sizeof *r->out);
  int *ids = malloc((size_t)(r->n_cand ? r->n_cand : 1) * sizeof *ids);
  struct plan_outcome *compact = calloc((size_t)(r->n_cand ? r->n_cand : 1), sizeof *compact);
  if (!r->out || !ids || !compact) {
    free(ids);
    free(compact);
    return err_set(ERR_NOMEM, "plan: out of memory for %d candidates", r->n_cand);
  }
  for (int i = 0; i < r->n_cand; i++)
    if (r->cand[i].feasible) ids[r->n_feasible++] = i;

  /* Round-robin over the feasible candidates, not over all ids: rejected ones cluster (small
   * TP first), and skipping them keeps the ranks' shares even. */
  struct plan_job job = {.ev = ev, .o = o, .cand = r->cand, .ids = ids, .out = compact,
                         .rank = plan_mpi_rank(), .size = plan_mpi_size()};
  int n_mine = r->n_feasible > job.rank ? (r->n_feasible - job.rank + job.size - 1) / job.size : 0;
  progress_start(&job.pg, "plan", "candidates", n_mine, *is_root ? o->progress : 0);
  plan_pool_run(n_mine, o->n_threads, plan_task, &job); /* statuses live in the outcomes */
  progress_end(&job.pg);
  rc = plan_mpi_gather(compact, r->n_feasible);
  if (rc == ERR_OK && *is_root) {
    for (int k = 0; k < r->n_feasible; k++) r->out[ids[k]] = compact[k];
  }
  free(ids);
  free(compact);
  if (rc || !*is_root) return rc;

  /* A candidate whose simulation failed stays in the report with its message; the plan fails
   * only when none ran, with the first failure (lowest id) as the reason. */
  int n_ok = 0, first_fail = -1;
  for (int i = 0; i < r->n_cand; i++) {
    if (!r->cand[i].feasible) continue;
    r->n_sims += r->out[i].n_sims;
    if (r->out[i].status == ERR_OK)
      n_ok++;
    else if (first_fail < 0)
      first_fail = i;
  }
  if (r->n_feasible > 0 && n_ok == 0) {
    char lay[64];
    plan_space_layout_str(&r->cand[first_fail], lay, sizeof lay);
    return err_set(r->out[first_fail].status, "plan: every simulation failed; %s: %s", lay,
                   r->out[first_fail].err);
  }
  if ((rc = plan_rank(r))) return rc;
  plan_search_fewest_gpus(r);
  r->wall_s = plan_now_s() - t0;
  return ERR_OK;
}

void plan_result_free(struct plan_result *r) {
  if (!r) return;
  free(r->cand);
  free(r->out);
  free(r->ranked);
  free(r->pareto);
  memset(r, 0, sizeof *r);
}
