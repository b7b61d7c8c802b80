/* trace_stats: summary figures of a trace — count, span, rate, inter-arrival CV, token-length
 * means and percentiles — as the shared traces' README reports them, so the two can be compared.
 * Percentiles interpolate linearly between order statistics (numpy's default). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "traces/trace.h"

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static double pct(const int32_t *sorted, int64_t n, double p) {
  double pos = p / 100.0 * (double)(n - 1);
  int64_t lo = (int64_t)floor(pos);
  int64_t hi = lo + 1 < n ? lo + 1 : n - 1;
  return sorted[lo] + (pos - (double)lo) * (sorted[hi] - sorted[lo]);
}

/* vals is scratch (n), sorted in place. */
static void dist_of(int32_t *vals, int64_t n, struct trace_dist *d) {
  memset(d, 0, sizeof *d);
  if (!n) return;
  for (int64_t i = 0; i < n; i++) d->sum += vals[i];
  d->mean = (double)d->sum / (double)n;
  qsort(vals, (size_t)n, sizeof *vals, cmp_i32);
  d->min = vals[0];
  d->max = vals[n - 1];
  d->p50 = pct(vals, n, 50);
  d->p99 = pct(vals, n, 99);
}

int trace_stats_compute(const struct trace *t, struct trace_stats *s) {
  memset(s, 0, sizeof *s);
  int64_t n = t->n;
  s->n = n;
  if (!n) return ERR_OK;
  int32_t *vals = malloc((size_t)n * sizeof *vals); /* (n) scratch for percentiles */
  if (!vals) return err_set(ERR_NOMEM, "trace stats: out of memory for %lld rows", (long long)n);
  const struct trace_req *r = t->reqs;
  s->span_ns = r[n - 1].arrival_ns - r[0].arrival_ns;
  if (s->span_ns > 0) s->rate_rps = (double)(n - 1) / ((double)s->span_ns * 1e-9);
  if (n > 1) {
    /* Two passes: mean first, then the variance about it (no catastrophic cancellation). */
    double mean = (double)s->span_ns * 1e-9 / (double)(n - 1), var = 0;
    for (int64_t i = 1; i < n; i++) {
      double g = (double)(r[i].arrival_ns - r[i - 1].arrival_ns) * 1e-9 - mean;
      var += g * g;
    }
    var /= (double)(n - 1);
    s->iat_mean_s = mean;
    s->iat_cv = mean > 0 ? sqrt(var) / mean : 0;
  }
  for (int64_t i = 0; i < n; i++) {
    vals[i] = r[i].in_tok;
    if (r[i].prefix_id >= 0) s->n_prefixed++;
    s->prefix_tok_sum += r[i].prefix_tok;
  }
  dist_of(vals, n, &s->in_tok);
  for (int64_t i = 0; i < n; i++) vals[i] = r[i].out_tok;
  dist_of(vals, n, &s->out_tok);
  free(vals);
  return ERR_OK;
}
