/* plan_slo: the service-level objective the planner searches under (--slo), e.g.
 * "ttft_p99=2s,tpot_p99=100ms". A term bounds one statistic of one per-request metric over the
 * run; goodput counts the requests whose own TTFT / TPOT / latency stay under the limits (vLLM's
 * benchmark --goodput definition), so a percentile SLO and goodput share one set of numbers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sim/plan.h"

const char *const plan_metric_names[PLAN_M_N] = {"ttft", "tpot", "latency"};
const char *const plan_stat_names[PLAN_S_N] = {"mean", "p50", "p90", "p95", "p99"};

static int plan_slo_term(const char *s, size_t len, struct plan_slo_term *t) {
  char buf[96];
  if (len == 0 || len >= sizeof buf) return err_set(ERR_INPUT, "--slo: bad term '%.*s'", (int)len, s);
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *eq = strchr(buf, '=');
  char *us = strchr(buf, '_');
  if (!eq || !us || us > eq)
    return err_set(ERR_INPUT, "--slo: '%s' is not METRIC_STAT=VALUE (e.g. ttft_p99=2s)", buf);
  *us = '\0';
  *eq = '\0';
  const char *metric = buf, *stat = us + 1, *val = eq + 1;
  t->metric = -1;
  for (int i = 0; i < PLAN_M_N; i++)
    if (!strcmp(metric, plan_metric_names[i])) t->metric = i;
  if (!strcmp(metric, "e2e")) t->metric = PLAN_M_LATENCY; /* evalscope says latency, vLLM e2el */
  if (!strcmp(metric, "e2el")) t->metric = PLAN_M_LATENCY;
  if (t->metric < 0)
    return err_set(ERR_INPUT, "--slo: unknown metric '%s' (ttft, tpot or latency)", metric);
  t->stat = -1;
  for (int i = 0; i < PLAN_S_N; i++)
    if (!strcmp(stat, plan_stat_names[i])) t->stat = i;
  if (!strcmp(stat, "avg")) t->stat = PLAN_S_MEAN;
  if (t->stat < 0)
    return err_set(ERR_INPUT, "--slo: unknown statistic '%s' (mean, p50, p90, p95 or p99)", stat);
  char *end = NULL;
  double v = strtod(val, &end);
  if (end == val || !isfinite(v) || v <= 0)
    return err_set(ERR_INPUT, "--slo: '%s' needs a positive value with unit s, ms or us", val);
  /* A bare number is milliseconds, as in simulate/bench --slo and vLLM's --goodput. */
  double scale = 1e-3;
  if (!strcmp(end, "s"))
    scale = 1;
  else if (!strcmp(end, "us"))
    scale = 1e-6;
  else if (*end && strcmp(end, "ms"))
    return err_set(ERR_INPUT, "--slo: unknown unit '%s' in '%s' (s, ms or us)", end, val);
  t->limit_s = v * scale;
  return ERR_OK;
}

int plan_slo_parse(const char *s, struct plan_slo *slo) {
  memset(slo, 0, sizeof *slo);
  if (!s || !*s) return err_set(ERR_INPUT, "--slo: empty value");
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (slo->n == PLAN_MAX_SLO) return err_set(ERR_INPUT, "--slo: more than %d terms", PLAN_MAX_SLO);
    int rc = plan_slo_term(p, len, &slo->t[slo->n]);
    if (rc) return rc;
    slo->n++;
    if (!comma) break;
    p = comma + 1;
  }
  return ERR_OK;
}

int plan_slo_met(const struct plan_slo *slo, const struct plan_metrics *m) {
  for (int i = 0; i < slo->n; i++) {
    double v = m->q_s[slo->t[i].metric][slo->t[i].stat];
    if (!(v <= slo->t[i].limit_s)) return 0; /* NaN fails too */
  }
  /* A run that lost requests (never completed) serves nobody's SLO. */
  if (slo->n && m->n_done < m->n_req) return 0;
  return 1;
}

void plan_slo_thresholds(const struct plan_slo *slo, double thr_s[PLAN_M_N]) {
  for (int i = 0; i < PLAN_M_N; i++) thr_s[i] = 0;
  for (int i = 0; i < slo->n; i++) {
    double *t = &thr_s[slo->t[i].metric];
    if (*t == 0 || slo->t[i].limit_s < *t) *t = slo->t[i].limit_s;
  }
}

void plan_slo_str(const struct plan_slo *slo, char *buf, int buf_len) {
  int off = 0;
  buf[0] = '\0';
  for (int i = 0; i < slo->n && off < buf_len; i++)
    off += snprintf(buf + off, (size_t)(buf_len - off), "%s%s_%s<=%gs", i ? "," : "",
                    plan_metric_names[slo->t[i].metric], plan_stat_names[slo->t[i].stat],
                    slo->t[i].limit_s);
}
