/* plan_eval: the planner's evaluator wired to the simulator: one sim_run of one candidate at
 * one load, boiled down to the figures the planner ranks by (struct plan_metrics).
 *
 * Thread safety: cost models are built once per key and then only read (see the cache below);
 * a call that rescales an open-loop trace makes its own copy of the arrivals; the shared model,
 * hardware and trace are only read.
 * Load means the arrival-rate factor for an open loop (arrival times divided by it: the same
 * requests, the same order, a faster or slower clock) and the number of clients for evalscope's
 * closed loop. The candidate's seed drives the simulator's own random draws; the roofline's
 * routing table takes one seed for every candidate (servesim bench's), so all layouts see the
 * same expert popularity. A candidate's answer is thus the same whichever thread, rank or search
 * space it runs in. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sim/cost_roofline.h"
#include "sim/dispatch.h"
#include "sim/plan.h"
#include "sim/sim.h"
#include "traces/trace.h"

/* evalscope's percentile columns: metrics_pcts = {10,25,50,66,75,80,90,95,98,99}. */
static int plan_eval_pct_idx(int pct) {
  for (int i = 0; i < METRICS_N_PCT; i++)
    if (metrics_pcts[i] == pct) return i;
  return -1;
}

static void plan_eval_fill(const struct metrics *mt, const struct sim_result *res,
                           struct plan_metrics *m) {
  static const int stat_pct[PLAN_S_N] = {0, 50, 90, 95, 99};
  static const int cols[PLAN_M_N] = {MPCT_TTFT, MPCT_TPOT, MPCT_LATENCY};
  const double means[PLAN_M_N] = {mt->es.avg_ttft_s, mt->es.avg_tpot_s, mt->es.avg_latency_s};
  memset(m, 0, sizeof *m);
  m->n_req = mt->es.total;
  m->n_done = mt->es.succeed;
  m->duration_s = mt->es.time_s;
  m->out_tok_s = mt->es.out_tps;
  m->total_tok_s = mt->es.total_tps;
  m->req_s = mt->es.req_tps;
  for (int k = 0; k < PLAN_M_N; k++) {
    m->q_s[k][PLAN_S_MEAN] = means[k];
    for (int s = 1; s < PLAN_S_N; s++) {
      int idx = plan_eval_pct_idx(stat_pct[s]);
      m->q_s[k][s] = idx >= 0 ? mt->pct[cols[k]][idx] : NAN;
    }
  }
  if (mt->vllm.has_goodput) {
    m->goodput_req_s = mt->vllm.goodput_rps;
    m->slo_frac = m->n_req > 0 ? mt->vllm.goodput_rps * mt->vllm.duration_s / (double)m->n_req : 0;
  } else {
    m->goodput_req_s = NAN;
    m->slo_frac = NAN;
  }
  m->n_preempt = res->counts.n_preemptions;
}

/* ---- the cost-model cache ----
 * Building a roofline model costs tens of ms (its MoE routing table), as much as a short
 * simulation; candidates that differ only in max_num_seqs get identical models. So models are
 * built once per (hardware, layout, engine without max_num_seqs) and shared. Sharing across
 * threads is safe because stage_ns is pure (sim.h, cost_roofline.h: no state changes, the rng
 * unused), and deterministic because a model depends only on its key: whichever thread builds
 * it builds the same one. A thread that needs a model another is building waits for it. */
struct plan_eval_entry {
  int hw_idx;
  struct layout layout;
  struct engine engine;      /* the key: max_num_seqs cleared */
  int state;                 /* 0 building, 1 ready, 2 failed */
  int rc;
  char err[512];             /* the build's message, replayed to every candidate that shares it */
  struct cost_model cm;
  struct plan_eval_entry *next;
};

struct plan_eval_cache {
  pthread_mutex_t mu;
  pthread_cond_t built;
  struct plan_eval_entry *head;
};

void plan_eval_cost_key(const struct plan_cand *c, struct engine *key) {
  *key = c->engine;
  key->max_num_seqs = 0;
}

/* Field by field: struct padding is not guaranteed to be copied, so no memcmp. */
static int plan_eval_engine_eq(const struct engine *a, const struct engine *b) {
  return a->gpu_mem_util == b->gpu_mem_util && a->max_model_len == b->max_model_len &&
         a->max_num_seqs == b->max_num_seqs && a->max_num_batched_tokens == b->max_num_batched_tokens &&
         a->block_size == b->block_size && a->kv_dtype_bytes == b->kv_dtype_bytes &&
         a->enforce_eager == b->enforce_eager && a->enable_prefix_caching == b->enable_prefix_caching;
}

static int plan_eval_layout_eq(const struct layout *a, const struct layout *b) {
  return a->tp == b->tp && a->pp == b->pp && a->dp == b->dp && a->ep == b->ep;
}

static int plan_eval_build(const struct plan_eval_ctx *x, const struct plan_cand *c,
                           struct cost_model *cm) {
  memset(cm, 0, sizeof *cm);
  if (x->cost_kind == PLAN_COST_CONSTANT) {
    cost_constant_init(cm, x->const_fixed_ns, x->const_per_tok_ns);
    return cm->stage_ns ? ERR_OK : err_set(ERR_NOMEM, "plan: out of memory for the cost model");
  }
  struct cost_roofline_opts ro;
  cost_roofline_opts_default(&ro);
  if (x->route_skew >= 0) ro.route_skew = x->route_skew;
  ro.route_seed = x->route_seed;
  return cost_roofline_create(x->model, &x->space->hw[c->hw_idx], &c->layout, &c->engine, &ro, cm);
}

int plan_eval_begin(void *ctx, const struct plan_cand *c, void **cs) {
  const struct plan_eval_ctx *x = ctx;
  struct plan_eval_cache *k = x->cache;
  struct engine key;
  *cs = NULL;
  if (!k) return err_set(ERR_INTERNAL, "plan: plan_eval_begin before plan_eval_init");
  plan_eval_cost_key(c, &key);
  pthread_mutex_lock(&k->mu);
  struct plan_eval_entry *e = k->head;
  while (e && !(e->hw_idx == c->hw_idx && plan_eval_layout_eq(&e->layout, &c->layout) &&
                plan_eval_engine_eq(&e->engine, &key)))
    e = e->next;
  if (!e) { /* ours to build, outside the lock */
    e = calloc(1, sizeof *e);
    if (!e) {
      pthread_mutex_unlock(&k->mu);
      return err_set(ERR_NOMEM, "plan: out of memory for the cost-model cache");
    }
    e->hw_idx = c->hw_idx;
    e->layout = c->layout;
    e->engine = key;
    e->next = k->head;
    k->head = e;
    pthread_mutex_unlock(&k->mu);
    int rc = plan_eval_build(x, c, &e->cm);
    pthread_mutex_lock(&k->mu);
    e->rc = rc;
    if (rc) snprintf(e->err, sizeof e->err, "%s", err_msg());
    e->state = rc ? 2 : 1;
    pthread_cond_broadcast(&k->built);
  }
  while (e->state == 0) pthread_cond_wait(&k->built, &k->mu);
  int rc = e->rc;
  pthread_mutex_unlock(&k->mu);
  if (rc) return err_set(rc, "%s", e->err);
  *cs = &e->cm;
  return ERR_OK;
}

void plan_eval_release(struct plan_eval_ctx *ctx) {
  struct plan_eval_cache *k = ctx ? ctx->cache : NULL;
  if (!k) return;
  for (struct plan_eval_entry *e = k->head, *n; e; e = n) {
    n = e->next;
    if (e->state == 1) cost_destroy(&e->cm);
    free(e);
  }
  pthread_mutex_destroy(&k->mu);
  pthread_cond_destroy(&k->built);
  free(k);
  ctx->cache = NULL;
}

int plan_eval_sim(void *ctx, void *cs, const struct plan_cand *c, double load,
                  const struct plan_slo *slo, struct plan_metrics *m) {
  const struct plan_eval_ctx *x = ctx;
  const struct cost_model *cm = cs;
  struct trace scaled;
  const struct trace *tr = x->trace;
  struct sim_result *res = NULL;
  int rc;
  trace_init(&scaled);
  if (!(load > 0) || !isfinite(load)) return err_set(ERR_INPUT, "plan: load %g is not positive", load);
  if (!cm) return err_set(ERR_INTERNAL, "plan: plan_eval_sim without plan_eval_begin");

  struct sim_config cfg;
  sim_config_default(&cfg);
  cfg.model = x->model;
  cfg.hw = &x->space->hw[c->hw_idx];
  cfg.layout = c->layout;
  cfg.engine = c->engine;
  cfg.kv_blocks = c->verdict.mem.kv_blocks;
  cfg.cost = cm;
  cfg.seed = c->seed;
  cfg.dispatch = x->dispatch;
  /* The planner reads no ITL statistic: one exact sample, the rest into the fixed histogram,
   * spares sorting every token gap (a quarter of a 10k-request run's time). */
  cfg.itl_cap = 1;
  double thr[PLAN_M_N];
  plan_slo_thresholds(slo, thr);
  cfg.slo.ttft_s = thr[PLAN_M_TTFT];
  cfg.slo.tpot_s = thr[PLAN_M_TPOT];
  cfg.slo.e2el_s = thr[PLAN_M_LATENCY];
  if (x->closed_loop) {
    cfg.mode = SIM_CLOSED_LOOP;
    cfg.parallel = (int)load;
    if (cfg.parallel < 1 || (double)cfg.parallel != load) {
      rc = err_set(ERR_INPUT, "plan: concurrency %g is not a positive integer", load);
      goto done;
    }
  } else {
    cfg.mode = SIM_OPEN_LOOP;
    if (load != 1.0) {
      /* Same requests on a clock running `load` times faster; rounding keeps the order. */
      if ((rc = trace_reserve(&scaled, tr->n))) goto done;
      memcpy(scaled.reqs, tr->reqs, (size_t)tr->n * sizeof *tr->reqs);
      scaled.n = tr->n;
      for (int64_t i = 0; i < tr->n; i++)
        scaled.reqs[i].arrival_ns = llround((double)tr->reqs[i].arrival_ns / load);
      tr = &scaled;
    }
  }
  /* sim_result carries per-GPU arrays: too big for a worker thread's stack */
  res = calloc(1, sizeof *res);
  if (!res) {
    rc = err_set(ERR_NOMEM, "plan: out of memory for a simulation result");
    goto done;
  }
  if ((rc = sim_run(&cfg, tr, res))) goto done;
  plan_eval_fill(&res->metrics, res, m);
done:
  free(res);
  trace_free(&scaled);
  return rc;
}

int plan_eval_init(struct plan_evaluator *ev, struct plan_eval_ctx *ctx) {
  memset(ev, 0, sizeof *ev);
  const struct trace *t = ctx->trace;
  if (!t || t->n < 1) return err_set(ERR_INPUT, "plan: the workload has no requests");
  if (ctx->closed_loop && ctx->parallel < 1) return err_set(ERR_INPUT, "plan: --parallel must be at least 1");
  plan_eval_release(ctx);
  ctx->cache = calloc(1, sizeof *ctx->cache);
  if (!ctx->cache) return err_set(ERR_NOMEM, "plan: out of memory for the cost-model cache");
  pthread_mutex_init(&ctx->cache->mu, NULL);
  pthread_cond_init(&ctx->cache->built, NULL);
  ev->cand_begin = plan_eval_begin;
  ev->cand_end = NULL; /* models stay in the cache until plan_eval_release */
  ev->eval = plan_eval_sim;
  snprintf(ev->cost_model, sizeof ev->cost_model, "%s",
           ctx->cost_kind == PLAN_COST_CONSTANT ? "constant" : "roofline");
  ev->ctx = ctx;
  if (ctx->closed_loop) {
    ev->load_kind = PLAN_LOAD_CONCURRENCY;
    ev->load_nominal = ctx->parallel;
    ev->rate_req_s = 0;
    snprintf(ev->workload, sizeof ev->workload, "closed loop, parallel %d, %lld requests (%.200s)",
             ctx->parallel, (long long)t->n, t->source);
  } else {
    int64_t span = t->reqs[t->n - 1].arrival_ns - t->reqs[0].arrival_ns;
    ev->load_kind = PLAN_LOAD_RATE;
    ev->load_nominal = 1;
    ev->rate_req_s = span > 0 ? (double)(t->n - 1) / ((double)span * 1e-9) : 0;
    snprintf(ev->workload, sizeof ev->workload, "open loop, %lld requests at %.3f req/s (%.200s)",
             (long long)t->n, ev->rate_req_s, t->source);
  }
  return ERR_OK;
}
