/* report: text and JSON output of a run. See report.h. */
#include "sim/report.h"

#include <math.h>
#include <string.h>

#include "common/err.h"
#include "sim/cost.h"

const char *report_num4(char *buf, size_t n, double x) {
  if (isnan(x)) {
    snprintf(buf, n, "NaN");
    return buf;
  }
  if (isinf(x)) {
    snprintf(buf, n, x > 0 ? "Infinity" : "-Infinity");
    return buf;
  }
  /* %.4f rounds the exact binary value, as Python's round(x, 4) does; then drop trailing zeros
   * but keep one decimal, as repr() of a float prints */
  snprintf(buf, n, "%.4f", x);
  char *dot = strchr(buf, '.');
  if (dot) {
    char *e = buf + strlen(buf) - 1;
    while (e > dot + 1 && *e == '0') *e-- = '\0';
  }
  if (!strcmp(buf, "-0.0")) snprintf(buf, n, "-0.0");
  return buf;
}

static const char *const es_keys[15] = {
    "Time taken for tests (s)", "Number of concurrency", "Total requests", "Succeed requests",
    "Failed requests", "Output token throughput (tok/s)", "Total token throughput (tok/s)",
    "Request throughput (req/s)", "Average latency (s)", "Average time to first token (s)",
    "Average time per output token (s)", "Average input tokens per request",
    "Average output tokens per request", "Average package latency (s)",
    "Average package per request"};

/* The value of key k as evalscope prints it (ints stay ints). */
static const char *es_value(char *buf, size_t n, const struct metrics_evalscope *es, int k) {
  /* nothing succeeded: evalscope never computes its averages and prints their int default -1 */
  if (es->succeed == 0 && k >= 5) {
    snprintf(buf, n, "-1");
    return buf;
  }
  switch (k) {
    case 0: return report_num4(buf, n, es->time_s);
    case 1: snprintf(buf, n, "%lld", (long long)es->concurrency); return buf;
    case 2: snprintf(buf, n, "%lld", (long long)es->total); return buf;
    case 3: snprintf(buf, n, "%lld", (long long)es->succeed); return buf;
    case 4: snprintf(buf, n, "%lld", (long long)es->failed); return buf;
    case 5: return report_num4(buf, n, es->out_tps);
    case 6: return report_num4(buf, n, es->total_tps);
    case 7: return report_num4(buf, n, es->req_tps);
    case 8: return report_num4(buf, n, es->avg_latency_s);
    case 9: return report_num4(buf, n, es->avg_ttft_s);
    case 10: return report_num4(buf, n, es->avg_tpot_s);
    case 11: return report_num4(buf, n, es->avg_in_tok);
    case 12: return report_num4(buf, n, es->avg_out_tok);
    case 13: return report_num4(buf, n, es->avg_pkg_latency_s);
    default: return report_num4(buf, n, es->avg_pkg_per_req);
  }
}

void report_evalscope_json(FILE *f, const struct metrics_evalscope *es, int indent) {
  char buf[64];
  fprintf(f, "{\n");
  for (int k = 0; k < 15; k++)
    fprintf(f, "%*s\"%s\": %s%s\n", indent + 4, "", es_keys[k], es_value(buf, sizeof buf, es, k), k < 14 ? "," : "");
  fprintf(f, "%*s}", indent, "");
}

void report_percentiles_json(FILE *f, const struct metrics *m, int indent) {
  char buf[64];
  fprintf(f, "[\n");
  for (int p = 0; p < METRICS_N_PCT; p++) {
    fprintf(f, "%*s{\n%*s\"Percentiles\": \"%d%%\"", indent + 4, "", indent + 8, "", metrics_pcts[p]);
    for (int c = 0; c < MPCT_N_COLS; c++)
      fprintf(f, ",\n%*s\"%s\": %s", indent + 8, "", metrics_pct_names[c], report_num4(buf, sizeof buf, m->pct[c][p]));
    fprintf(f, "\n%*s}%s\n", indent + 4, "", p + 1 < METRICS_N_PCT ? "," : "");
  }
  fprintf(f, "%*s]", indent, "");
}

static void report_dist_json(FILE *f, const char *name, const struct metrics_dist *d, int ind, int last) {
  char a[64], b[64], c[64], e[64], g[64];
  fprintf(f, "%*s\"%s\": {\"mean_ms\": %s, \"median_ms\": %s, \"std_ms\": %s, \"p90_ms\": %s, \"p99_ms\": %s}%s\n",
          ind, "", name, report_num4(a, sizeof a, d->mean * 1e3), report_num4(b, sizeof b, d->median * 1e3),
          report_num4(c, sizeof c, d->std * 1e3), report_num4(e, sizeof e, d->p90 * 1e3),
          report_num4(g, sizeof g, d->p99 * 1e3), last ? "" : ",");
}

void report_vllm_json(FILE *f, const struct metrics *m, int indent) {
  const struct metrics_vllm *v = &m->vllm;
  char a[64], b[64], c[64], d[64], g[64];
  int in = indent + 4;
  fprintf(f, "{\n%*s\"duration_s\": %s,\n%*s\"completed\": %lld,\n%*s\"total_input_tokens\": %lld,\n"
          "%*s\"total_output_tokens\": %lld,\n%*s\"request_throughput\": %s,\n%*s\"output_throughput\": %s,\n"
          "%*s\"total_token_throughput\": %s,\n",
          in, "", report_num4(a, sizeof a, v->duration_s), in, "", (long long)v->completed, in, "",
          (long long)v->total_in, in, "", (long long)v->total_out, in, "", report_num4(b, sizeof b, v->req_tps), in, "",
          report_num4(c, sizeof c, v->out_tps), in, "", report_num4(d, sizeof d, v->total_tps));
  if (v->has_goodput) fprintf(f, "%*s\"request_goodput\": %s,\n", in, "", report_num4(g, sizeof g, v->goodput_rps));
  fprintf(f, "%*s\"itl_exact\": %s,\n", in, "", m->itl_exact ? "true" : "false");
  report_dist_json(f, "ttft", &v->ttft, in, 0);
  report_dist_json(f, "tpot", &v->tpot, in, 0);
  report_dist_json(f, "itl", &v->itl, in, 0);
  report_dist_json(f, "e2el", &v->e2el, in, 1);
  fprintf(f, "%*s}", indent, "");
}

void report_breakdown_json(FILE *f, const struct sim_result *res, int indent) {
  const struct sim_breakdown *bd = &res->bd;
  const struct sim_counts *c = &res->counts;
  int in = indent + 4;
  fprintf(f, "{\n");
  fprintf(f, "%*s\"span_s\": %.9f,\n%*s\"stage_time_s\": %.9f,\n", in, "", bd->span_ns * 1e-9, in, "",
          bd->stage_span_ns * 1e-9);
  for (int t = 0; t < COST_N_TERMS; t++)
    fprintf(f, "%*s\"%s_s\": %.9f,\n", in, "", cost_term_names[t], bd->term_ns[t] * 1e-9);
  fprintf(f, "%*s\"busy_s\": %.9f,\n%*s\"pipeline_bubble_s\": %.9f,\n%*s\"idle_s\": %.9f,\n"
          "%*s\"preemption_recompute_s\": %.9f,\n",
          in, "", bd->busy_ns * 1e-9, in, "", bd->bubble_ns * 1e-9, in, "", bd->idle_ns * 1e-9, in, "",
          bd->recompute_ns * 1e-9);
  fprintf(f, "%*s\"gpu_busy_fraction\": [", in, "");
  for (int g = 0; g < bd->n_gpus; g++) fprintf(f, "%s%.6f", g ? ", " : "", bd->gpu_busy_frac[g]);
  fprintf(f, "],\n");
  fprintf(f, "%*s\"events\": %lld,\n%*s\"steps\": %lld,\n%*s\"cost_calls\": %lld,\n%*s\"preemptions\": %lld,\n"
          "%*s\"tokens\": %lld,\n%*s\"recompute_tokens\": %lld,\n%*s\"prefix_cache_hit_tokens\": %lld,\n"
          "%*s\"max_batch\": %lld\n",
          in, "", (long long)c->n_events, in, "", (long long)c->n_steps, in, "", (long long)c->n_stage_calls, in, "",
          (long long)c->n_preemptions, in, "", (long long)c->n_tokens, in, "", (long long)c->n_recompute_tokens, in,
          "", (long long)c->n_cached_tokens, in, "", (long long)c->max_batch);
  fprintf(f, "%*s}", indent, "");
}

void report_summary_table(FILE *f, const struct metrics_evalscope *es) {
  char buf[64];
  fprintf(f, "Benchmarking summary:\n");
  fprintf(f, "+-----------------------------------+-------------+\n");
  fprintf(f, "| %-33s | %-11s |\n", "Key", "Value");
  fprintf(f, "+===================================+=============+\n");
  for (int k = 0; k < 15; k++) {
    fprintf(f, "| %-33s | %11s |\n", es_keys[k], es_value(buf, sizeof buf, es, k));
    fprintf(f, "+-----------------------------------+-------------+\n");
  }
}

void report_percentile_table(FILE *f, const struct metrics *m) {
  char buf[64];
  fprintf(f, "Percentile results%s:\n", m->itl_exact ? "" : " (ITL from a 1/128-resolution histogram)");
  fprintf(f, "%-11s", "Percentiles");
  for (int c = 0; c < MPCT_N_COLS; c++) fprintf(f, " %14s", metrics_pct_names[c]);
  fputc('\n', f);
  for (int p = 0; p < METRICS_N_PCT; p++) {
    char pc[16];
    snprintf(pc, sizeof pc, "%d%%", metrics_pcts[p]);
    fprintf(f, "%-11s", pc);
    for (int c = 0; c < MPCT_N_COLS; c++) fprintf(f, " %14s", report_num4(buf, sizeof buf, m->pct[c][p]));
    fputc('\n', f);
  }
}

static void report_dist(FILE *f, const char *title, const char *abbr, const struct metrics_dist *d) {
  const char *names[4] = {"Mean", "Median", "P90", "P99"};
  double vals[4] = {d->mean, d->median, d->p90, d->p99};
  fprintf(f, "%s\n", title);
  for (int k = 0; k < 4; k++) {
    char label[64];
    snprintf(label, sizeof label, "%s %s (ms):", names[k], abbr);
    fprintf(f, "%-40s%-10.2f\n", label, vals[k] * 1e3);
  }
}

void report_vllm(FILE *f, const struct metrics *m) {
  const struct metrics_vllm *v = &m->vllm;
  fprintf(f, "============ Serving Benchmark Result ============\n");
  fprintf(f, "%-40s%-10lld\n", "Successful requests:", (long long)v->completed);
  fprintf(f, "%-40s%-10.2f\n", "Benchmark duration (s):", v->duration_s);
  fprintf(f, "%-40s%-10lld\n", "Total input tokens:", (long long)v->total_in);
  fprintf(f, "%-40s%-10lld\n", "Total generated tokens:", (long long)v->total_out);
  fprintf(f, "%-40s%-10.2f\n", "Request throughput (req/s):", v->req_tps);
  if (v->has_goodput) fprintf(f, "%-40s%-10.2f\n", "Request goodput (req/s):", v->goodput_rps);
  fprintf(f, "%-40s%-10.2f\n", "Output token throughput (tok/s):", v->out_tps);
  fprintf(f, "%-40s%-10.2f\n", "Total Token throughput (tok/s):", v->total_tps);
  report_dist(f, "---------------Time to First Token----------------", "TTFT", &v->ttft);
  report_dist(f, "-----Time per Output Token (excl. 1st token)------", "TPOT", &v->tpot);
  report_dist(f, m->itl_exact ? "---------------Inter-token Latency----------------"
                              : "-------Inter-token Latency (histogram)-----------", "ITL", &v->itl);
  report_dist(f, "----------------End-to-end Latency----------------", "E2EL", &v->e2el);
  fprintf(f, "==================================================\n");
}

void report_breakdown(FILE *f, const struct sim_result *res, const struct layout *l) {
  const struct sim_breakdown *bd = &res->bd;
  const struct sim_counts *c = &res->counts;
  double total = (double)bd->stage_span_ns;
  if (total <= 0) total = 1;
  fprintf(f, "Where the time goes: %d replica(s) x %d stage(s) x TP %d, span %.3f s, stage-time %.3f s\n",
          l->dp, l->pp, l->tp, bd->span_ns * 1e-9, bd->stage_span_ns * 1e-9);
  fprintf(f, "  %-28s %12s %8s\n", "term", "stage-s", "share");
  for (int t = 0; t < COST_N_TERMS; t++)
    fprintf(f, "  %-28s %12.3f %7.1f%%\n", cost_term_names[t], bd->term_ns[t] * 1e-9, 100.0 * bd->term_ns[t] / total);
  fprintf(f, "  %-28s %12.3f %7.1f%%\n", "= busy (sum of terms)", bd->busy_ns * 1e-9, 100.0 * bd->busy_ns / total);
  fprintf(f, "  %-28s %12.3f %7.1f%%\n", "pipeline bubble", bd->bubble_ns * 1e-9, 100.0 * bd->bubble_ns / total);
  fprintf(f, "  %-28s %12.3f %7.1f%%\n", "idle (nothing in flight)", bd->idle_ns * 1e-9, 100.0 * bd->idle_ns / total);
  fprintf(f, "  %-28s %12.3f %7.1f%%  (inside busy)\n", "preemption recompute", bd->recompute_ns * 1e-9,
          100.0 * bd->recompute_ns / total);
  fprintf(f, "  GPU busy:");
  for (int g = 0; g < bd->n_gpus; g++) fprintf(f, "%s gpu%d %.1f%%", g && g % 8 == 0 ? "\n           " : "", g,
                                               100.0 * bd->gpu_busy_frac[g]);
  fprintf(f, "\n  events %lld, steps %lld, cost calls %lld, preemptions %lld (recomputed %lld tokens), "
          "prefix-cache hits %lld tokens of %lld prompt tokens, largest batch %lld requests\n",
          (long long)c->n_events, (long long)c->n_steps, (long long)c->n_stage_calls, (long long)c->n_preemptions,
          (long long)c->n_recompute_tokens, (long long)c->n_cached_tokens,
          (long long)(c->n_cached_tokens + c->n_prefill_tokens), (long long)c->max_batch);
}

/* A CSV number: 9 decimals, or an empty field for NaN (no platform-dependent "-nan"). */
static void report_csv_num(FILE *f, double x, int last) {
  if (isnan(x)) fputs(last ? "\n" : ",", f);
  else fprintf(f, last ? "%.9f\n" : "%.9f,", x);
}

int report_requests_csv(const char *path, const struct sim_req_result *reqs, int64_t n) {
  FILE *f = fopen(path, "w");
  if (!f) return err_set(ERR_IO, "--requests-csv %s: cannot open for writing", path);
  fprintf(f, "idx,replica,ok,in_tok,out_tok,n_preempt,start_ns,first_token_ns,penult_token_ns,done_ns,"
             "ttft_s,tpot_s,latency_s\n");
  for (int64_t i = 0; i < n; i++) {
    const struct sim_req_result *r = &reqs[i];
    double lat = (r->done_ns - r->start_ns) * 1e-9;
    double ttft = sim_req_ttft_s(r), tpot = sim_req_tpot_s(r);
    fprintf(f, "%lld,%d,%d,%d,%d,%d,%lld,%lld,%lld,%lld,", (long long)i, r->replica, r->ok, r->in_tok, r->out_tok,
            r->n_preempt, (long long)r->start_ns, (long long)r->first_tok_ns, (long long)r->penult_tok_ns,
            (long long)r->done_ns);
    report_csv_num(f, ttft, 0);
    report_csv_num(f, tpot, 0);
    report_csv_num(f, lat, 1);
  }
  if (fclose(f) != 0) return err_set(ERR_IO, "--requests-csv %s: write failed", path);
  return ERR_OK;
}
