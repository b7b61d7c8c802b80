/* plan_db: stores a plan in the SQLite store (see plan_db.h). */
#include "sim/plan_db.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "db/db.h"

static const char *plan_db_quant(const struct model_spec *m) {
  switch (m->quant.method) {
    case MODEL_QUANT_GPTQ: return m->quant.bits == 8 ? "gptq-int8" : "gptq-int4";
    case MODEL_QUANT_FP8: return "fp8";
    default: return "bf16";
  }
}

/* Rejected layouts: one layouts row per (hardware, count, layout). ok = 1 if any knob setting
 * runs; the fails of the first rejected setting otherwise (knob settings are consecutive). */
static int plan_db_layouts(struct db *db, const struct plan_result *r, const struct model_spec *m,
                           const struct db_provenance *prov) {
  for (int i = 0; i < r->n_cand;) {
    const struct plan_cand *a = &r->cand[i];
    int j = i, any_ok = 0;
    while (j < r->n_cand && r->cand[j].hw_idx == a->hw_idx && r->cand[j].n_gpus == a->n_gpus &&
           !memcmp(&r->cand[j].layout, &a->layout, sizeof a->layout)) {
      any_ok |= r->cand[j].feasible;
      j++;
    }
    char fails[LAYOUT_MAX_FAILS * 400];
    int off = 0;
    fails[0] = '\0';
    for (int q = 0; !any_ok && q < a->verdict.n_fails && off < (int)sizeof fails; q++)
      off += snprintf(fails + off, sizeof fails - (size_t)off, "%s%s: %s", q ? "\n" : "",
                      a->verdict.fails[q].rule, a->verdict.fails[q].detail);
    const struct mem_plan *mp = &a->verdict.mem;
    struct db_layout l = {.model = m->name, .hardware = r->space.hw[a->hw_idx].name,
                          .n_gpus = a->n_gpus, .tp = a->layout.tp, .pp = a->layout.pp,
                          .dp = a->layout.dp, .ep = layout_ep_size(&a->layout), .ok = any_ok,
                          .weight_bytes_rank = mp->weight_bytes_rank,
                          .kv_bytes_token_rank = mp->kv_bytes_token_rank,
                          .kv_blocks = mp->kv_blocks, .kv_tokens = mp->kv_tokens,
                          .max_concurrency = mp->max_concurrency,
                          .fails = any_ok ? NULL : fails, .prov = *prov};
    int64_t id;
    int rc = db_put_layout(db, &l, &id);
    if (rc) return rc;
    i = j;
  }
  return ERR_OK;
}

static int plan_db_run(struct db *db, const struct plan_result *r, const struct model_spec *m,
                       const struct db_provenance *prov, int id, const int *rank_of,
                       const unsigned char *on_frontier) {
  const struct plan_cand *c = &r->cand[id];
  const struct plan_outcome *o = &r->out[id];
  char *cfg = plan_report_cand_json(r, id);
  if (!cfg) return err_set(ERR_NOMEM, "plan: out of memory writing a run's JSON");
  struct db_run run;
  db_run_init(&run);
  run.kind = "simulated";
  run.label = "plan";
  run.model = m->name;
  run.model_quant = plan_db_quant(m);
  run.hardware = r->space.hw[c->hw_idx].name;
  run.n_gpus = c->n_gpus;
  run.tp = c->layout.tp;
  run.pp = c->layout.pp;
  run.dp = c->layout.dp;
  run.ep = layout_ep_size(&c->layout);
  run.workload = r->workload;
  run.cost_model = r->cost_model;
  run.seed = (int64_t)(c->seed >> 1); /* SQLite integers are signed 64-bit */
  run.config_json = cfg;
  run.prov = *prov;

  struct db_summary s;
  db_summary_init(&s);
  const struct plan_metrics *pm = &o->m;
  s.concurrency = r->load_kind == PLAN_LOAD_CONCURRENCY ? (int64_t)r->load_nominal : DB_UNSET;
  s.n_requests = pm->n_req;
  s.n_succeeded = pm->n_done;
  s.n_failed = pm->n_req - pm->n_done;
  s.duration_s = pm->duration_s;
  s.output_tok_s = pm->out_tok_s;
  s.total_tok_s = pm->total_tok_s;
  s.request_s = pm->req_s;
  s.ttft_avg_s = pm->q_s[PLAN_M_TTFT][PLAN_S_MEAN];
  s.tpot_avg_s = pm->q_s[PLAN_M_TPOT][PLAN_S_MEAN];
  s.latency_avg_s = pm->q_s[PLAN_M_LATENCY][PLAN_S_MEAN];
  s.ttft_p99_s = pm->q_s[PLAN_M_TTFT][PLAN_S_P99];
  s.tpot_p99_s = pm->q_s[PLAN_M_TPOT][PLAN_S_P99];
  s.latency_p99_s = pm->q_s[PLAN_M_LATENCY][PLAN_S_P99];
  s.goodput_req_s = r->opts.slo.n ? pm->goodput_req_s : NAN;

  int64_t run_id;
  int rc = db_put_run(db, &run, &run_id);
  free(cfg);
  if (!rc) rc = db_put_summary(db, run_id, &s);
  struct {
    const char *key;
    double v;
  } kv[] = {
      {"plan: output tok/s per GPU", plan_rank_value(r, id, PLAN_OBJ_TPUT_GPU)},
      {"plan: $ per million output tokens", plan_rank_value(r, id, PLAN_OBJ_COST)},
      {"plan: SLO met", r->opts.slo.n ? (double)o->slo_ok : NAN},
      {"plan: highest load under SLO", o->rate_status ? o->max_load : NAN},
      {"plan: highest request rate under SLO (req/s)",
       o->rate_status && r->load_kind == PLAN_LOAD_RATE ? o->max_load * r->rate_req_s : NAN},
      {"plan: rank", (double)(rank_of[id] + 1)},
      {"plan: on Pareto frontier", (double)on_frontier[id]},
      {"plan: simulations", (double)o->n_sims},
  };
  for (size_t k = 0; !rc && k < sizeof kv / sizeof kv[0]; k++) rc = db_put_metric(db, run_id, kv[k].key, kv[k].v);
  return rc;
}

int plan_db_store(const char *path, const struct plan_result *r, const struct model_spec *m) {
  struct db *db = NULL;
  int rc = db_open(path, &db);
  if (rc) return rc;
  int n = r->n_cand ? r->n_cand : 1;
  int *rank_of = malloc((size_t)n * sizeof *rank_of);
  unsigned char *on_frontier = calloc((size_t)n, 1);
  if (!rank_of || !on_frontier) {
    rc = err_set(ERR_NOMEM, "plan: out of memory storing the plan");
    goto out;
  }
  for (int i = 0; i < r->n_cand; i++) rank_of[i] = -1;
  for (int i = 0; i < r->n_ranked; i++) rank_of[r->ranked[i]] = i;
  for (int i = 0; i < r->n_pareto; i++) on_frontier[r->pareto[i]] = 1;
  struct db_provenance prov;
  db_provenance_fill(&prov);
  if ((rc = db_begin(db))) goto out;
  rc = plan_db_layouts(db, r, m, &prov);
  for (int i = 0; !rc && i < r->n_ranked; i++)
    rc = plan_db_run(db, r, m, &prov, r->ranked[i], rank_of, on_frontier);
  if (rc) {
    db_rollback(db);
    goto out;
  }
  rc = db_commit(db);
out:
  free(rank_of);
  free(on_frontier);
  db_close(db);
  return rc;
}
