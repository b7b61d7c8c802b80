/* plan_report: the planner's answer as a readable table and as JSON.
 *
 * Everything printed is a function of the plan_result's candidates and outcomes (never of wall
 * time or thread count), so two runs of one search print byte-identical reports: the thread and
 * MPI independence tests diff exactly this text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sim/plan.h"

static const char *const plan_report_rate_names[] = {"none", "found", "below_min", "at_cap"};

/* "%.*f" that prints "-" for an undefined value. */
static void plan_report_num(char *buf, int len, double v, int prec) {
  if (isnan(v) || isinf(v))
    snprintf(buf, (size_t)len, "-");
  else
    snprintf(buf, (size_t)len, "%.*f", prec, v);
}

/* The highest sustained load as text: req/s for an open loop, clients for a closed one. */
static void plan_report_load(const struct plan_result *r, const struct plan_outcome *o, char *buf,
                             int len) {
  if (o->rate_status == PLAN_RATE_NONE) {
    snprintf(buf, (size_t)len, "-");
    return;
  }
  int conc = r->load_kind == PLAN_LOAD_CONCURRENCY;
  double v = conc ? o->max_load : o->max_load * r->rate_req_s;
  double vmin = conc ? r->opts.load_min : r->opts.load_min * r->rate_req_s;
  if (o->rate_status == PLAN_RATE_BELOW_MIN)
    snprintf(buf, (size_t)len, conc ? "<%.0f" : "<%.3f", vmin);
  else
    snprintf(buf, (size_t)len, conc ? "%s%.0f" : "%s%.3f",
             o->rate_status == PLAN_RATE_AT_CAP ? ">=" : "", v);
}

static void plan_report_knobs(const struct plan_cand *c, char *buf, int len) {
  snprintf(buf, (size_t)len, "%5d %6d %-6s", c->engine.max_num_seqs,
           c->engine.max_num_batched_tokens, c->engine.enforce_eager ? "off" : "on");
}

static void plan_report_who(const struct plan_result *r, int id, char *buf, int len) {
  const struct plan_cand *c = &r->cand[id];
  char lay[64];
  plan_space_layout_str(c, lay, sizeof lay);
  snprintf(buf, (size_t)len, "%s on %d x %s, max-num-seqs %d, max-num-batched-tokens %d, "
           "cuda graphs %s", lay, c->n_gpus, r->space.hw[c->hw_idx].name, c->engine.max_num_seqs,
           c->engine.max_num_batched_tokens, c->engine.enforce_eager ? "off" : "on");
}

static void plan_report_row(FILE *f, const struct plan_result *r, int rank, int id) {
  const struct plan_cand *c = &r->cand[id];
  const struct plan_outcome *o = &r->out[id];
  char lay[64], knobs[48], tput[24], tpg[24], ttft[24], tpot[24], good[24], cost[24], load[32];
  plan_space_layout_str(c, lay, sizeof lay);
  plan_report_knobs(c, knobs, sizeof knobs);
  plan_report_num(tput, sizeof tput, o->m.out_tok_s, 1);
  plan_report_num(tpg, sizeof tpg, plan_rank_value(r, id, PLAN_OBJ_TPUT_GPU), 1);
  plan_report_num(ttft, sizeof ttft, o->m.q_s[PLAN_M_TTFT][PLAN_S_P99], 3);
  plan_report_num(tpot, sizeof tpot, o->m.q_s[PLAN_M_TPOT][PLAN_S_P99], 4);
  plan_report_num(good, sizeof good, plan_rank_value(r, id, PLAN_OBJ_GOODPUT), 3);
  plan_report_num(cost, sizeof cost, plan_rank_value(r, id, PLAN_OBJ_COST), 3);
  plan_report_load(r, o, load, sizeof load);
  fprintf(f, "%4d  %-16s %4d  %-15s %s %10s %9s %9s %9s %8s %8s %9s  %s\n", rank,
          r->space.hw[c->hw_idx].name, c->n_gpus, lay, knobs, tput, tpg, ttft, tpot, good, cost,
          load, r->opts.slo.n ? (o->slo_ok ? "yes" : "no") : "-");
}

/* Rejected candidates, one entry per layout when every knob setting fails the same rules (knobs
 * are the innermost loop of the enumeration, so a layout's settings are consecutive); the
 * details quoted are the first setting's, since figures such as the activation peak vary. */
static void plan_report_rejected(FILE *f, const struct plan_result *r) {
  int n_rej = r->n_cand - r->n_feasible, n_failed = 0;
  for (int i = 0; i < r->n_cand; i++) n_failed += r->cand[i].feasible && r->out[i].status != 0;
  fprintf(f, "\nrejected (%d of %d candidates", n_rej, r->n_cand);
  if (n_failed) fprintf(f, "; %d more failed to simulate", n_failed);
  fprintf(f, "):\n");
  if (!n_rej && !n_failed) fprintf(f, "  none\n");
  for (int i = 0; i < r->n_cand;) {
    int j = i + 1;
    const struct plan_cand *a = &r->cand[i];
    while (j < r->n_cand && r->cand[j].hw_idx == a->hw_idx && r->cand[j].n_gpus == a->n_gpus &&
           !memcmp(&r->cand[j].layout, &a->layout, sizeof a->layout))
      j++;
    /* [i, j): one layout's knob settings */
    int all_same = 1;
    for (int k = i; k < j; k++) {
      const struct layout_verdict *v = &r->cand[k].verdict, *v0 = &a->verdict;
      if (r->cand[k].feasible || v->n_fails != v0->n_fails) all_same = 0;
      for (int q = 0; all_same && q < v->n_fails; q++)
        if (strcmp(v->fails[q].rule, v0->fails[q].rule)) all_same = 0;
    }
    for (int k = i; k < j; k++) {
      const struct plan_cand *c = &r->cand[k];
      if (c->feasible || (all_same && k > i)) continue;
      char lay[64], knobs[64];
      plan_space_layout_str(c, lay, sizeof lay);
      if (all_same && j - i > 1)
        snprintf(knobs, sizeof knobs, "all %d knob settings; figures for the first", j - i);
      else
        snprintf(knobs, sizeof knobs, "seqs %d, mbt %d, graphs %s", c->engine.max_num_seqs,
                 c->engine.max_num_batched_tokens, c->engine.enforce_eager ? "off" : "on");
      fprintf(f, "  %-16s %4d  %-15s (%s)\n", r->space.hw[c->hw_idx].name, c->n_gpus, lay, knobs);
      for (int q = 0; q < c->verdict.n_fails; q++)
        fprintf(f, "      %s: %s\n", c->verdict.fails[q].rule, c->verdict.fails[q].detail);
    }
    i = j;
  }
  /* Feasible by the rules but the simulation failed (e.g. a request longer than the KV cache). */
  for (int i = 0; i < r->n_cand; i++) {
    if (!r->cand[i].feasible || r->out[i].status == 0) continue;
    char who[256];
    plan_report_who(r, i, who, sizeof who);
    fprintf(f, "  simulation failed: %s: %s\n", who, r->out[i].err);
  }
}

void plan_report_table(FILE *f, const struct plan_result *r, int top_n) {
  char slo[256] = "none";
  if (r->opts.slo.n) plan_slo_str(&r->opts.slo, slo, sizeof slo);
  fprintf(f, "servesim plan: %s\n", r->model);
  fprintf(f, "workload: %s\n", r->workload);
  fprintf(f, "SLO: %s; ranked by %s", slo, plan_objective_names[r->opts.objective]);
  if (r->opts.gpu_hour_cost > 0) fprintf(f, "; $%.2f per GPU-hour", r->opts.gpu_hour_cost);
  fprintf(f, "\ncandidates: %d (%d feasible, %d rejected), %lld simulations\n\n", r->n_cand,
          r->n_feasible, r->n_cand - r->n_feasible, (long long)r->n_sims);

  const char *load_hdr = r->load_kind == PLAN_LOAD_CONCURRENCY ? "max conc" : "max req/s";
  fprintf(f, "%4s  %-16s %4s  %-15s %5s %6s %-6s %10s %9s %9s %9s %8s %8s %9s  %s\n", "rank",
          "hardware", "gpus", "layout", "seqs", "mbt", "graphs", "out tok/s", "tok/s/GPU",
          "TTFT p99", "TPOT p99", "goodput", "$/Mtok", load_hdr, "SLO");
  int n = r->n_ranked;
  if (top_n > 0 && top_n < n) n = top_n;
  for (int i = 0; i < n; i++) plan_report_row(f, r, i + 1, r->ranked[i]);
  if (n < r->n_ranked) fprintf(f, "  ... %d more (--top 0 shows all)\n", r->n_ranked - n);
  if (r->n_ranked == 0) fprintf(f, "  (no feasible candidate)\n");

  static const char *const units[PLAN_OBJ_N] = {"tok/s/GPU", "s TTFT p99", "s TPOT p99",
                                                "req/s goodput", "$/Mtok", ""};
  fprintf(f, "\nbest by objective:\n");
  for (int k = 0; k < PLAN_OBJ_N; k++) {
    int id = r->best[k];
    if (id < 0) {
      const char *why = k == PLAN_OBJ_GOODPUT ? "needs --slo"
                        : k == PLAN_OBJ_COST  ? "needs --gpu-hour-cost"
                        : k == PLAN_OBJ_RATE  ? "needs --slo and the rate search"
                                              : "no candidate";
      fprintf(f, "  %-10s -  (%s)\n", plan_objective_names[k], why);
      continue;
    }
    char who[256], val[32];
    plan_report_who(r, id, who, sizeof who);
    if (k == PLAN_OBJ_RATE) {
      plan_report_load(r, &r->out[id], val, sizeof val);
      fprintf(f, "  %-10s %s %s  %s\n", plan_objective_names[k], val,
              r->load_kind == PLAN_LOAD_CONCURRENCY ? "clients" : "req/s", who);
    } else {
      double v = plan_rank_value(r, id, k);
      fprintf(f, "  %-10s %.4g %s  %s\n", plan_objective_names[k], v, units[k], who);
    }
  }

  fprintf(f, "\nPareto frontier (tok/s/GPU up, %s %s down):\n",
          plan_metric_names[r->opts.pareto_metric], plan_stat_names[r->opts.pareto_stat]);
  for (int i = 0; i < r->n_pareto; i++) {
    int id = r->pareto[i];
    char who[256];
    plan_report_who(r, id, who, sizeof who);
    fprintf(f, "  %9.1f tok/s/GPU  %8.4f s  %s\n", plan_rank_value(r, id, PLAN_OBJ_TPUT_GPU),
            r->out[id].m.q_s[r->opts.pareto_metric][r->opts.pareto_stat], who);
  }
  if (!r->n_pareto) fprintf(f, "  (empty)\n");

  fprintf(f, "\nfewest GPUs%s: ", r->opts.slo.n ? " meeting the SLO" : " that fit (no --slo)");
  if (r->fewest_cand >= 0) {
    char who[256];
    plan_report_who(r, r->fewest_cand, who, sizeof who);
    fprintf(f, "%d  (%s)\n", r->fewest_gpus, who);
  } else {
    fprintf(f, "none of the candidates%s\n", r->opts.slo.n ? " meets the SLO" : " fits");
  }
  plan_report_rejected(f, r);
}

/* ---- JSON ---- */

static cJSON *plan_report_metrics_json(const struct plan_metrics *m) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "requests", (double)m->n_req);
  cJSON_AddNumberToObject(o, "succeeded", (double)m->n_done);
  cJSON_AddNumberToObject(o, "duration_s", m->duration_s);
  cJSON_AddNumberToObject(o, "output_tok_s", m->out_tok_s);
  cJSON_AddNumberToObject(o, "total_tok_s", m->total_tok_s);
  cJSON_AddNumberToObject(o, "request_s", m->req_s);
  for (int k = 0; k < PLAN_M_N; k++)
    for (int s = 0; s < PLAN_S_N; s++) {
      char key[48];
      snprintf(key, sizeof key, "%s_%s_s", plan_metric_names[k], plan_stat_names[s]);
      cJSON_AddNumberToObject(o, key, m->q_s[k][s]); /* NaN prints as null */
    }
  cJSON_AddNumberToObject(o, "goodput_req_s", m->goodput_req_s);
  cJSON_AddNumberToObject(o, "slo_fraction", m->slo_frac);
  cJSON_AddNumberToObject(o, "preemptions", (double)m->n_preempt);
  return o;
}

static cJSON *plan_report_cand_obj(const struct plan_result *r, int id) {
  const struct plan_cand *c = &r->cand[id];
  const struct plan_outcome *o = &r->out[id];
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "id", id);
  cJSON_AddStringToObject(j, "hardware", r->space.hw[c->hw_idx].name);
  cJSON_AddNumberToObject(j, "gpus", c->n_gpus);
  cJSON_AddNumberToObject(j, "tensor_parallel_size", c->layout.tp);
  cJSON_AddNumberToObject(j, "pipeline_parallel_size", c->layout.pp);
  cJSON_AddNumberToObject(j, "data_parallel_size", c->layout.dp);
  cJSON_AddBoolToObject(j, "enable_expert_parallel", c->layout.ep);
  cJSON_AddNumberToObject(j, "max_num_seqs", c->engine.max_num_seqs);
  cJSON_AddNumberToObject(j, "max_num_batched_tokens", c->engine.max_num_batched_tokens);
  cJSON_AddBoolToObject(j, "cuda_graphs", !c->engine.enforce_eager);
  char seed[24];
  snprintf(seed, sizeof seed, "%016llx", (unsigned long long)c->seed);
  cJSON_AddStringToObject(j, "seed", seed); /* 64 bits do not fit a JSON double */
  cJSON_AddBoolToObject(j, "feasible", c->feasible);
  if (!c->feasible) {
    cJSON *fails = cJSON_AddArrayToObject(j, "rejected");
    for (int q = 0; q < c->verdict.n_fails; q++) {
      cJSON *fo = cJSON_CreateObject();
      cJSON_AddStringToObject(fo, "rule", c->verdict.fails[q].rule);
      cJSON_AddStringToObject(fo, "detail", c->verdict.fails[q].detail);
      cJSON_AddItemToArray(fails, fo);
    }
    return j;
  }
  cJSON_AddNumberToObject(j, "kv_blocks", (double)c->verdict.mem.kv_blocks);
  if (o->status) {
    cJSON_AddStringToObject(j, "error", o->err);
    return j;
  }
  cJSON_AddItemToObject(j, "metrics", plan_report_metrics_json(&o->m));
  cJSON_AddNumberToObject(j, "output_tok_s_per_gpu", plan_rank_value(r, id, PLAN_OBJ_TPUT_GPU));
  cJSON_AddNumberToObject(j, "cost_per_mtok", plan_rank_value(r, id, PLAN_OBJ_COST));
  if (r->opts.slo.n) cJSON_AddBoolToObject(j, "slo_ok", o->slo_ok);
  cJSON_AddNumberToObject(j, "simulations", o->n_sims);
  if (o->rate_status != PLAN_RATE_NONE) {
    cJSON *rs = cJSON_AddObjectToObject(j, "max_load");
    cJSON_AddStringToObject(rs, "status", plan_report_rate_names[o->rate_status]);
    if (r->load_kind == PLAN_LOAD_CONCURRENCY) {
      cJSON_AddNumberToObject(rs, "parallel", o->max_load);
    } else {
      cJSON_AddNumberToObject(rs, "rate_factor", o->max_load);
      cJSON_AddNumberToObject(rs, "request_rate", o->max_load * r->rate_req_s);
    }
    if (o->max_load > 0) cJSON_AddItemToObject(rs, "metrics", plan_report_metrics_json(&o->m_max));
  }
  return j;
}

char *plan_report_cand_json(const struct plan_result *r, int id) {
  cJSON *o = plan_report_cand_obj(r, id);
  cJSON_AddStringToObject(o, "model", r->model);
  cJSON_AddStringToObject(o, "workload", r->workload);
  cJSON_AddStringToObject(o, "cost_model", r->cost_model);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

char *plan_report_json(const struct plan_result *r) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "model", r->model);
  cJSON_AddStringToObject(root, "workload", r->workload);
  cJSON_AddStringToObject(root, "cost_model", r->cost_model);
  cJSON_AddStringToObject(root, "load_kind",
                          r->load_kind == PLAN_LOAD_CONCURRENCY ? "parallel" : "rate_factor");
  cJSON_AddNumberToObject(root, "request_rate", r->rate_req_s);
  cJSON *slo = cJSON_AddObjectToObject(root, "slo");
  for (int i = 0; i < r->opts.slo.n; i++) {
    char key[48];
    snprintf(key, sizeof key, "%s_%s_s", plan_metric_names[r->opts.slo.t[i].metric],
             plan_stat_names[r->opts.slo.t[i].stat]);
    cJSON_AddNumberToObject(slo, key, r->opts.slo.t[i].limit_s);
  }
  cJSON_AddStringToObject(root, "objective", plan_objective_names[r->opts.objective]);
  if (r->opts.gpu_hour_cost > 0) cJSON_AddNumberToObject(root, "gpu_hour_cost", r->opts.gpu_hour_cost);
  cJSON_AddNumberToObject(root, "simulations", (double)r->n_sims);
  cJSON *cands = cJSON_AddArrayToObject(root, "candidates");
  for (int i = 0; i < r->n_cand; i++) cJSON_AddItemToArray(cands, plan_report_cand_obj(r, i));
  cJSON *ranked = cJSON_AddArrayToObject(root, "ranked");
  for (int i = 0; i < r->n_ranked; i++) cJSON_AddItemToArray(ranked, cJSON_CreateNumber(r->ranked[i]));
  cJSON *best = cJSON_AddObjectToObject(root, "best");
  for (int k = 0; k < PLAN_OBJ_N; k++) {
    if (r->best[k] >= 0)
      cJSON_AddNumberToObject(best, plan_objective_names[k], r->best[k]);
    else
      cJSON_AddNullToObject(best, plan_objective_names[k]);
  }
  cJSON *par = cJSON_AddArrayToObject(root, "pareto");
  for (int i = 0; i < r->n_pareto; i++) cJSON_AddItemToArray(par, cJSON_CreateNumber(r->pareto[i]));
  cJSON *few = cJSON_AddObjectToObject(root, "fewest_gpus");
  if (r->fewest_cand >= 0) {
    cJSON_AddNumberToObject(few, "gpus", r->fewest_gpus);
    cJSON_AddNumberToObject(few, "id", r->fewest_cand);
  }
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  return s;
}
