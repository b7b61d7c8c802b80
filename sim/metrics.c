/* metrics: evalscope 0.17.0 and vLLM benchmark_serving metrics. See metrics.h for the formulas. */
#include "sim/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

const int metrics_pcts[METRICS_N_PCT] = {10, 25, 50, 66, 75, 80, 90, 95, 98, 99};
const char *const metrics_pct_names[MPCT_N_COLS] = {
    "TTFT (s)", "ITL (s)", "TPOT (s)", "Latency (s)", "Input tokens", "Output tokens",
    "Output (tok/s)", "Total (tok/s)"};

int metrics_itl_init(struct metrics_itl *it, int64_t cap) {
  memset(it, 0, sizeof *it);
  if (cap < 0) cap = 0;
  if (cap) {
    it->samples = malloc((size_t)cap * sizeof *it->samples);
    if (!it->samples) return err_set(ERR_NOMEM, "metrics: cannot allocate %lld ITL samples", (long long)cap);
  }
  it->cap = cap;
  return ERR_OK;
}

void metrics_itl_free(struct metrics_itl *it) {
  if (!it) return;
  free(it->samples);
  free(it->hist);
  memset(it, 0, sizeof *it);
}

static int metrics_cmp_double_fwd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Log histogram bin: exact below 128 ns, then 128 bins per power of two (integer math only, so
 * the same on every machine). */
static int metrics_bin(int64_t v) {
  if (v < 128) return v < 0 ? 0 : (int)v;
  int e = 63 - __builtin_clzll((uint64_t)v);
  int top = (int)(v >> (e - 7)); /* 128 .. 255 */
  return (e - 6) * 128 + (top - 128);
}

static double metrics_bin_mid(int bin) {
  if (bin < 128) return bin;
  int e = bin / 128 + 6, top = bin % 128 + 128;
  double lo = ldexp((double)top, e - 7), w = ldexp(1.0, e - 7);
  return lo + w / 2;
}

int metrics_itl_add_hist(struct metrics_itl *it, int64_t gap_ns) {
  if (!it->hist) { /* overflow: fold the exact samples into the histogram once */
    it->hist = calloc(METRICS_HIST_BINS, sizeof *it->hist);
    if (!it->hist) return err_set(ERR_NOMEM, "metrics: cannot allocate the ITL histogram");
    for (int64_t i = 0; i < it->n; i++) it->hist[metrics_bin(it->samples[i])]++;
  }
  it->hist[metrics_bin(gap_ns)]++;
  it->n++;
  return ERR_OK;
}

/* Order-preserving map of a double's bits to an unsigned key. */
static inline uint64_t metrics_key(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return (u >> 63) ? ~u : (u | 0x8000000000000000ULL);
}

/* Inverse of metrics_key: a[0..n) keys back into the doubles v[0..n) (a may alias v). */
static void metrics_unkey(const uint64_t *a, double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint64_t k = a[i], u = (k >> 63) ? (k & 0x7fffffffffffffffULL) : ~k;
    memcpy(&v[i], &u, sizeof u);
  }
}

void metrics_sort_doubles(double *v, double *tmp, int64_t n) {
  if (n < 2) return;
  /* 4 passes of 16 bits; a pass whose digit is the same for every key is skipped */
  uint64_t *a = (uint64_t *)v, *b = (uint64_t *)tmp;
  for (int64_t i = 0; i < n; i++) a[i] = metrics_key(v[i]);
  static const int bits = 16;
  size_t *count = malloc(((size_t)1 << bits) * sizeof *count);
  if (!count) { /* no memory for the counts: fall back to a comparison sort */
    metrics_unkey(a, v, n);
    qsort(v, (size_t)n, sizeof *v, metrics_cmp_double_fwd);
    return;
  }
  for (int shift = 0; shift < 64; shift += bits) {
    memset(count, 0, ((size_t)1 << bits) * sizeof *count);
    for (int64_t i = 0; i < n; i++) count[(a[i] >> shift) & 0xffff]++;
    if (count[(a[0] >> shift) & 0xffff] == (size_t)n) continue;
    size_t sum = 0;
    for (size_t d = 0; d < ((size_t)1 << bits); d++) {
      size_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; i++) b[count[(a[i] >> shift) & 0xffff]++] = a[i];
    uint64_t *t = a;
    a = b;
    b = t;
  }
  free(count);
  metrics_unkey(a, v, n); /* a may be tmp after an odd number of passes */
}

double metrics_percentile_linear(const double *sorted, int64_t n, double p) {
  if (n <= 0) return NAN;
  double rank = p / 100.0 * (double)(n - 1);
  int64_t lo = (int64_t)floor(rank);
  int64_t hi = lo + 1 < n ? lo + 1 : n - 1;
  double f = rank - (double)lo;
  return sorted[lo] + (sorted[hi] - sorted[lo]) * f;
}

double metrics_percentile_index(const double *sorted, int64_t n, int p) {
  int64_t idx = n * p / 100;
  if (idx < 0 || idx >= n) return NAN;
  return sorted[idx];
}

/* Sorts v[0..n) and fills a vLLM distribution (mean, median, std, p90, p99). */
static void metrics_dist_fill(double *v, double *tmp, int64_t n, struct metrics_dist *d) {
  memset(d, 0, sizeof *d);
  d->n = n;
  if (n == 0) return;
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) s += v[i];
  d->mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) s2 += (v[i] - d->mean) * (v[i] - d->mean);
  d->std = sqrt(s2 / (double)n); /* numpy.std: population */
  metrics_sort_doubles(v, tmp, n);
  d->median = metrics_percentile_linear(v, n, 50);
  d->p90 = metrics_percentile_linear(v, n, 90);
  d->p99 = metrics_percentile_linear(v, n, 99);
}

static void metrics_pct_fill(double *v, double *tmp, int64_t n, double out[METRICS_N_PCT]) {
  metrics_sort_doubles(v, tmp, n);
  for (int k = 0; k < METRICS_N_PCT; k++) out[k] = metrics_percentile_index(v, n, metrics_pcts[k]);
}

/* Value at sorted position idx of the histogram. */
static double metrics_hist_at(const struct metrics_itl *it, int64_t idx) {
  int64_t c = 0;
  for (int b = 0; b < METRICS_HIST_BINS; b++) {
    c += it->hist[b];
    if (c > idx) return metrics_bin_mid(b) * 1e-9;
  }
  return NAN;
}

static void metrics_itl_stats(struct metrics_itl *it, struct metrics *m) {
  int64_t n = it->n;
  m->n_itl = n;
  m->itl_exact = it->hist == NULL;
  struct metrics_dist *d = &m->vllm.itl;
  memset(d, 0, sizeof *d);
  d->n = n;
  for (int k = 0; k < METRICS_N_PCT; k++) m->pct[MPCT_ITL][k] = NAN;
  if (n == 0) return;
  if (!it->hist) {
    /* exact: every gap converted to seconds in place (the samples are not needed after), sorted */
    double *v = (double *)it->samples, *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) return; /* no memory: ITL stays NAN */
    for (int64_t i = 0; i < n; i++) v[i] = (double)it->samples[i] * 1e-9;
    metrics_dist_fill(v, tmp, n, d);
    for (int k = 0; k < METRICS_N_PCT; k++) m->pct[MPCT_ITL][k] = metrics_percentile_index(v, n, metrics_pcts[k]);
    free(tmp);
    it->cap = 0; /* the samples are seconds now: no more adds */
    return;
  }
  d->mean = it->sum_ns / (double)n * 1e-9;
  double s2 = 0;
  for (int b = 0; b < METRICS_HIST_BINS; b++)
    if (it->hist[b]) {
      double x = metrics_bin_mid(b) * 1e-9 - d->mean;
      s2 += (double)it->hist[b] * x * x;
    }
  d->std = sqrt(s2 / (double)n);
  double ranks[3] = {50, 90, 99}, *outs[3] = {&d->median, &d->p90, &d->p99};
  for (int k = 0; k < 3; k++) {
    double r = ranks[k] / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(r);
    double a = metrics_hist_at(it, lo), b = metrics_hist_at(it, lo + 1 < n ? lo + 1 : n - 1);
    *outs[k] = a + (b - a) * (r - (double)lo);
  }
  for (int k = 0; k < METRICS_N_PCT; k++) {
    int64_t idx = n * metrics_pcts[k] / 100;
    m->pct[MPCT_ITL][k] = idx < n ? metrics_hist_at(it, idx) : NAN;
  }
}

/* A request's latency (start to last token) and time to its first token, in seconds. */
static inline double metrics_lat_s(const struct metrics_req *r) { return (double)(r->done_ns - r->start_ns) * 1e-9; }
static inline double metrics_ttft_s(const struct metrics_req *r) { return (double)(r->first_tok_ns - r->start_ns) * 1e-9; }

int metrics_compute(const struct metrics_req *reqs, int64_t n, struct metrics_itl *itl,
                    int64_t concurrency, const struct metrics_slo *slo, struct metrics *out) {
  memset(out, 0, sizeof *out);
  struct metrics_evalscope *es = &out->es;
  struct metrics_vllm *vl = &out->vllm;
  es->concurrency = concurrency;
  es->total = n;
  for (int c = 0; c < MPCT_N_COLS; c++)
    for (int k = 0; k < METRICS_N_PCT; k++) out->pct[c][k] = NAN;

  /* evalscope's clock starts at the start of the first request it processed (the first to
   * complete) and stops at the last completion */
  int64_t first_done = INT64_MAX, first_done_start = 0, last_done = INT64_MIN, first_start = INT64_MAX;
  double sum_lat = 0, sum_ttft = 0, sum_tpot = 0, sum_chunk_time = 0;
  int64_t sum_in = 0, sum_out = 0, sum_chunks = 0;
  for (int64_t i = 0; i < n; i++) {
    const struct metrics_req *r = &reqs[i];
    if (r->done_ns < first_done) {
      first_done = r->done_ns;
      first_done_start = r->start_ns;
    }
    if (r->done_ns > last_done) last_done = r->done_ns;
    if (r->start_ns < first_start) first_start = r->start_ns;
    if (!r->ok) {
      es->failed++;
      continue;
    }
    es->succeed++;
    double lat = metrics_lat_s(r);
    double ttft, chunk_time, tpot;
    int64_t chunks;
    if (r->out_tok > 1) {
      ttft = metrics_ttft_s(r);
      chunks = r->out_tok - 2;
      chunk_time = (double)(r->penult_tok_ns - r->first_tok_ns) * 1e-9;
      tpot = chunks > 0 ? chunk_time / (double)chunks : 0.0;
    } else {
      ttft = lat;
      chunks = 1;
      chunk_time = lat;
      tpot = lat;
    }
    sum_lat += lat;
    sum_ttft += ttft;
    sum_tpot += tpot;
    sum_chunk_time += chunk_time;
    sum_chunks += chunks;
    sum_in += r->in_tok;
    sum_out += r->out_tok;
  }
  if (n > 0) es->time_s = (double)(last_done - first_done_start) * 1e-9;
  int64_t ns = es->succeed;
  if (ns > 0) {
    es->avg_latency_s = sum_lat / (double)ns;
    es->avg_ttft_s = sum_ttft / (double)ns;
    es->avg_tpot_s = sum_tpot / (double)ns;
    es->avg_in_tok = (double)sum_in / (double)ns;
    es->avg_out_tok = (double)sum_out / (double)ns;
    es->avg_pkg_per_req = (double)sum_chunks / (double)ns;
    es->avg_pkg_latency_s = sum_chunks ? sum_chunk_time / (double)sum_chunks : 0;
    if (es->time_s > 0) {
      es->out_tps = (double)sum_out / es->time_s;
      es->total_tps = (double)(sum_in + sum_out) / es->time_s;
      es->req_tps = (double)ns / es->time_s;
    }
  } else {
    /* evalscope leaves its -1 sentinels when nothing succeeded */
    es->avg_latency_s = es->avg_ttft_s = es->avg_tpot_s = es->avg_in_tok = es->avg_out_tok = -1;
    es->avg_pkg_per_req = es->avg_pkg_latency_s = es->out_tps = es->total_tps = es->req_tps = -1;
  }

  /* vLLM benchmark_serving */
  vl->completed = ns;
  vl->total_in = sum_in;
  vl->total_out = sum_out;
  vl->duration_s = n > 0 ? (double)(last_done - first_start) * 1e-9 : 0;
  if (vl->duration_s > 0) {
    vl->req_tps = (double)ns / vl->duration_s;
    vl->out_tps = (double)sum_out / vl->duration_s;
    vl->total_tps = (double)(sum_in + sum_out) / vl->duration_s;
  }

  /* one scratch array, refilled per metric */
  double *v = malloc((size_t)(ns > 0 ? ns : 1) * sizeof *v), *tmp = malloc((size_t)(ns > 0 ? ns : 1) * sizeof *tmp);
  if (!v || !tmp) {
    free(v);
    free(tmp);
    return err_set(ERR_NOMEM, "metrics: cannot allocate %lld samples", (long long)ns);
  }
  int64_t good = 0;
  for (int col = 0; col < MPCT_N_COLS; col++) {
    if (col == MPCT_ITL) continue;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
      const struct metrics_req *r = &reqs[i];
      if (!r->ok) continue;
      double lat = metrics_lat_s(r);
      double x = 0;
      switch (col) {
        case MPCT_TTFT: x = r->out_tok > 1 ? metrics_ttft_s(r) : lat; break;
        case MPCT_TPOT: {
          double ct = r->out_tok > 1 ? (double)(r->penult_tok_ns - r->first_tok_ns) * 1e-9 : lat;
          x = r->out_tok > 0 ? ct / r->out_tok : NAN;
          break;
        }
        case MPCT_LATENCY: x = lat; break;
        case MPCT_IN_TOK: x = r->in_tok; break;
        case MPCT_OUT_TOK: x = r->out_tok; break;
        case MPCT_OUT_TPS: x = lat > 0 ? r->out_tok / lat : NAN; break;
        case MPCT_TOTAL_TPS: x = lat > 0 ? (r->in_tok + r->out_tok) / lat : NAN; break;
      }
      v[k++] = x;
    }
    metrics_pct_fill(v, tmp, k, out->pct[col]);
  }
  /* vLLM distributions: TTFT, TPOT (> 1 token), E2EL; goodput on the same per-request values */
  for (int pass = 0; pass < 3; pass++) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
      const struct metrics_req *r = &reqs[i];
      if (!r->ok) continue;
      double lat = metrics_lat_s(r);
      double ttft = metrics_ttft_s(r);
      if (pass == 0) v[k++] = ttft;
      else if (pass == 1) { if (r->out_tok > 1) v[k++] = (lat - ttft) / (r->out_tok - 1); }
      else v[k++] = lat;
    }
    metrics_dist_fill(v, tmp, k, pass == 0 ? &vl->ttft : pass == 1 ? &vl->tpot : &vl->e2el);
  }
  if (slo && (slo->ttft_s > 0 || slo->tpot_s > 0 || slo->e2el_s > 0)) {
    vl->has_goodput = 1;
    for (int64_t i = 0; i < n; i++) {
      const struct metrics_req *r = &reqs[i];
      if (!r->ok) continue;
      double lat = metrics_lat_s(r);
      double ttft = metrics_ttft_s(r);
      double tpot = r->out_tok > 1 ? (lat - ttft) / (r->out_tok - 1) : 0;
      if (slo->ttft_s > 0 && ttft > slo->ttft_s) continue;
      if (slo->tpot_s > 0 && tpot > slo->tpot_s) continue;
      if (slo->e2el_s > 0 && lat > slo->e2el_s) continue;
      good++;
    }
    vl->goodput_rps = vl->duration_s > 0 ? (double)good / vl->duration_s : 0;
  }
  free(v);
  free(tmp);
  if (itl) metrics_itl_stats(itl, out);
  return ERR_OK;
}
