/* test_metrics: evalscope 0.17.0 and vLLM benchmark_serving formulas on a hand-made set of
 * request timings; every expected value is worked out by hand in the comments. Also the JSON
 * number format (Python round(x, 4) as json prints it) and the ITL histogram fallback. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sim/metrics.h"
#include "sim/report.h"

#define S(x) ((int64_t)((x) * 1e9 + 0.5))

/* r0: start 0.0, tokens at 1.0 1.5 2.0 2.5          in 10
 * r1: start 0.5, one token at 3.0                    in 20
 * r2: start 1.0, tokens at 2.0 2.2 4.0               in 30
 * r3: start 0.2, rejected at 0.3 (failed)                        */
static const struct metrics_req reqs[4] = {
    {S(0.0), S(1.0), S(2.0), S(2.5), 10, 4, 1},
    {S(0.5), S(3.0), -1, S(3.0), 20, 1, 1},
    {S(1.0), S(2.0), S(2.2), S(4.0), 30, 3, 1},
    {S(0.2), -1, -1, S(0.3), 15, 0, 0},
};
static const double itl[5] = {0.5, 0.5, 0.5, 0.2, 1.8}; /* r0's 3 gaps, r2's 2 gaps */

static void test_formulas(int64_t itl_cap) {
  struct metrics_itl it;
  CHECK(metrics_itl_init(&it, itl_cap) == 0);
  for (int i = 0; i < 5; i++) CHECK(metrics_itl_add(&it, S(itl[i])) == 0);
  struct metrics_slo slo = {.ttft_s = 1.2};
  struct metrics m;
  CHECK(metrics_compute(reqs, 4, &it, 7, &slo, &m) == 0);
  const struct metrics_evalscope *es = &m.es;
  const double eps = 1e-9;
  /* evalscope's clock starts at the start of the first result it processed: r3 (done 0.3),
   * started 0.2; it stops at the last completion 4.0 */
  CHECK_NEAR(es->time_s, 3.8, eps);
  CHECK(es->concurrency == 7 && es->total == 4 && es->succeed == 3 && es->failed == 1);
  CHECK_NEAR(es->out_tps, 8 / 3.8, eps);               /* 4 + 1 + 3 tokens */
  CHECK_NEAR(es->total_tps, (60 + 8) / 3.8, eps);      /* failed r3's prompt is not counted */
  CHECK_NEAR(es->req_tps, 3 / 3.8, eps);
  CHECK_NEAR(es->avg_latency_s, (2.5 + 2.5 + 3.0) / 3, eps);
  /* TTFT: r0 1.0; r1 has one chunk so TTFT = latency 2.5; r2 1.0 */
  CHECK_NEAR(es->avg_ttft_s, 1.5, eps);
  /* TPOT: r0 (2.0-1.0)/(4-2) = 0.5; r1 one chunk: latency / 1 = 2.5; r2 (2.2-2.0)/(3-2) = 0.2 */
  CHECK_NEAR(es->avg_tpot_s, (0.5 + 2.5 + 0.2) / 3, eps);
  CHECK_NEAR(es->avg_in_tok, 20, eps);
  CHECK_NEAR(es->avg_out_tok, 8.0 / 3, eps);
  /* package latency: chunk times 1.0 + 2.5 + 0.2 over chunks 2 + 1 + 1 */
  CHECK_NEAR(es->avg_pkg_latency_s, 3.7 / 4, eps);
  CHECK_NEAR(es->avg_pkg_per_req, 4.0 / 3, eps);

  /* percentile table: sorted[int(n * p / 100)] */
  const double ttft_sorted[3] = {1.0, 1.0, 2.5}, lat_sorted[3] = {2.5, 2.5, 3.0}, out_sorted[3] = {1, 3, 4};
  for (int k = 0; k < METRICS_N_PCT; k++) {
    int p = metrics_pcts[k];
    CHECK_NEAR(m.pct[MPCT_TTFT][k], ttft_sorted[3 * p / 100], eps);
    CHECK_NEAR(m.pct[MPCT_LATENCY][k], lat_sorted[3 * p / 100], eps);
    CHECK_NEAR(m.pct[MPCT_OUT_TOK][k], out_sorted[3 * p / 100], eps);
  }
  /* TPOT column = chunk time / output tokens: r0 1.0/4, r1 2.5/1, r2 0.2/3 */
  CHECK_NEAR(m.pct[MPCT_TPOT][0], 0.2 / 3, eps);
  CHECK_NEAR(m.pct[MPCT_TPOT][9], 2.5, eps);
  /* per-request output rate: 4/2.5, 1/2.5, 3/3.0 -> sorted 0.4, 1.0, 1.6 */
  CHECK_NEAR(m.pct[MPCT_OUT_TPS][2], 1.0, eps);
  /* ITL sorted 0.2 0.5 0.5 0.5 1.8: p10 -> idx 0, p25 -> 1, p80 -> 4 */
  double tol = itl_cap >= 5 ? eps : 1.8 / 128;
  CHECK_NEAR(m.pct[MPCT_ITL][0], 0.2, tol);
  CHECK_NEAR(m.pct[MPCT_ITL][1], 0.5, tol);
  CHECK_NEAR(m.pct[MPCT_ITL][5], 1.8, tol);
  CHECK(m.itl_exact == (itl_cap >= 5) && m.n_itl == 5);

  /* vLLM: duration = last done 4.0 - first start 0.0 */
  const struct metrics_vllm *v = &m.vllm;
  CHECK_NEAR(v->duration_s, 4.0, eps);
  CHECK(v->completed == 3 && v->total_in == 60 && v->total_out == 8);
  CHECK_NEAR(v->out_tps, 2.0, eps);
  CHECK_NEAR(v->ttft.mean, 1.5, eps);
  CHECK_NEAR(v->ttft.median, 1.0, eps);
  /* TPOT over requests with > 1 token: r0 (2.5-1.0)/3 = 0.5, r2 (3.0-1.0)/2 = 1.0 */
  CHECK(v->tpot.n == 2);
  CHECK_NEAR(v->tpot.mean, 0.75, eps);
  CHECK_NEAR(v->tpot.p99, 0.5 + 0.5 * 0.99, eps);     /* linear between 0.5 and 1.0 */
  CHECK_NEAR(v->itl.mean, 3.5 / 5, eps);              /* exact even from the histogram */
  CHECK_NEAR(v->itl.p99, 0.5 + (1.8 - 0.5) * 0.96, itl_cap >= 5 ? eps : 2 * tol); /* rank 3.96 */
  CHECK_NEAR(v->e2el.median, 2.5, eps);
  /* goodput: TTFT <= 1.2 s holds for r0 and r2 -> 2 / 4.0 s */
  CHECK(v->has_goodput);
  CHECK_NEAR(v->goodput_rps, 0.5, eps);
  metrics_itl_free(&it);
}

static void test_percentile_helpers(void) {
  double v[4] = {1, 2, 3, 4};
  CHECK_NEAR(metrics_percentile_linear(v, 4, 50), 2.5, 1e-12);   /* numpy: 2.5 */
  CHECK_NEAR(metrics_percentile_linear(v, 4, 90), 3.7, 1e-12);   /* rank 2.7 */
  CHECK_NEAR(metrics_percentile_linear(v, 1, 99), 1, 1e-12);
  CHECK_NEAR(metrics_percentile_index(v, 4, 50), 3, 1e-12);      /* int(4 * 0.5) = 2 */
  CHECK_NEAR(metrics_percentile_index(v, 4, 99), 4, 1e-12);      /* int(3.96) = 3 */
  CHECK(isnan(metrics_percentile_index(v, 0, 10)));
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* the radix sort agrees with qsort on mixed signs, ties, zeros and wide magnitudes */
static void test_sort(void) {
  enum { N = 5000 };
  static double a[N], b[N], tmp[N];
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < N; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double v = (double)(x % 2000001) - 1000000.0;
    a[i] = (i % 7 == 0) ? 0.0 : (i % 11 == 0) ? 3.25 : v * ((i % 3) ? 1e-6 : 1e3);
    b[i] = a[i];
  }
  metrics_sort_doubles(a, tmp, N);
  qsort(b, N, sizeof *b, cmp_d);
  int bad = 0;
  for (int i = 0; i < N; i++) bad += a[i] != b[i];
  CHECK_MSG(bad == 0, "%d positions differ from qsort", bad);
}

static void test_json_numbers(void) {
  char b[64];
  CHECK(!strcmp(report_num4(b, sizeof b, 40.014), "40.014"));
  CHECK(!strcmp(report_num4(b, sizeof b, 1024.0), "1024.0"));
  CHECK(!strcmp(report_num4(b, sizeof b, 0.024849), "0.0248"));
  CHECK(!strcmp(report_num4(b, sizeof b, 255.91074), "255.9107"));
  CHECK(!strcmp(report_num4(b, sizeof b, 0.00001), "0.0"));
  CHECK(!strcmp(report_num4(b, sizeof b, NAN), "NaN"));
  /* the summary object carries evalscope's 15 keys in order, ints as ints */
  struct metrics_evalscope es = {.time_s = 1.5, .concurrency = 10, .total = 20, .succeed = 0, .failed = 20};
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  report_evalscope_json(f, &es, 0);
  fclose(f);
  const char *keys[15] = {"Time taken for tests (s)", "Number of concurrency", "Total requests", "Succeed requests",
                          "Failed requests", "Output token throughput (tok/s)", "Total token throughput (tok/s)",
                          "Request throughput (req/s)", "Average latency (s)", "Average time to first token (s)",
                          "Average time per output token (s)", "Average input tokens per request",
                          "Average output tokens per request", "Average package latency (s)",
                          "Average package per request"};
  const char *at = buf;
  for (int k = 0; k < 15; k++) {
    const char *hit = strstr(at, keys[k]);
    CHECK_MSG(hit != NULL, "key %d '%s' missing or out of order", k, keys[k]);
    if (hit) at = hit;
  }
  CHECK(strstr(buf, "\"Number of concurrency\": 10,") != NULL);
  CHECK(strstr(buf, "\"Time taken for tests (s)\": 1.5,") != NULL);
  CHECK(strstr(buf, "\"Average latency (s)\": -1,") != NULL); /* nothing succeeded */
  free(buf);
  es.succeed = 20;
  es.avg_latency_s = 25.58924;
  f = open_memstream(&buf, &len);
  report_evalscope_json(f, &es, 0);
  fclose(f);
  CHECK(strstr(buf, "\"Average latency (s)\": 25.5892,") != NULL);
  free(buf);
}

int main(void) {
  test_formulas(16);  /* every ITL kept */
  test_formulas(2);   /* ITL overflows into the histogram */
  test_percentile_helpers();
  test_sort();
  test_json_numbers();
  return check_report("test_metrics");
}
