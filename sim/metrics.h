/* metrics: load-test metrics from per-request timings, as evalscope 0.17.0 and vLLM's
 * benchmark_serving compute them.
 *
 * evalscope (perf/utils/benchmark_util.py, db_util.py of that era), per successful request:
 *   latency = completed - start; TTFT = chunk_times[0] - start;
 *   n_chunks = len(chunk_times) - 2, chunk time = chunk_times[-2] - chunk_times[0],
 *   TPOT = chunk time / n_chunks (one chunk: n_chunks = 1, chunk time = latency).
 * Here a chunk is a token (vLLM streams one token per SSE chunk), so len(chunk_times) = output
 * tokens; with exactly 2 tokens n_chunks = 0 and evalscope would divide by zero: TPOT is 0 then.
 * Summary: time = last completion - start of the first request to complete; throughputs divide
 * by it; averages over successful requests; "Average package latency" = total chunk time / total
 * n_chunks; "Average package per request" = total n_chunks / succeeded.
 * Percentile table: p in {10,25,50,66,75,80,90,95,98,99}, value = sorted[int(n * p / 100)] (no
 * interpolation) of TTFT, ITL (every gap between chunks), TPOT (= chunk time / output tokens, as
 * the table computes it), latency, input and output tokens, per-request output and total tok/s.
 *
 * vLLM benchmark_serving: mean / median / std / p90 / p99 with numpy's linear interpolation of
 * TTFT, TPOT = (latency - TTFT) / (output - 1) (requests with > 1 token), ITL and E2E latency;
 * duration = last completion - first start; goodput = requests meeting every given SLO
 * (metric <= SLO) per second of duration (vLLM's --goodput).
 *
 * ITL samples go into one preallocated array while they fit (exact), then into a fixed log
 * histogram (relative resolution 1/128); metrics.itl_exact says which. */
#ifndef SERVESIM_METRICS_H
#define SERVESIM_METRICS_H

#include <stdint.h>
#include <stdio.h>

#define METRICS_N_PCT 10
extern const int metrics_pcts[METRICS_N_PCT];

/* Goodput thresholds in seconds; <= 0 means not set. */
struct metrics_slo {
  double ttft_s, tpot_s, e2el_s;
};

/* The 15 keys of evalscope's summary, in its order. */
struct metrics_evalscope {
  double time_s;             /* Time taken for tests (s) */
  int64_t concurrency;       /* Number of concurrency */
  int64_t total;             /* Total requests */
  int64_t succeed;           /* Succeed requests */
  int64_t failed;            /* Failed requests */
  double out_tps;            /* Output token throughput (tok/s) */
  double total_tps;          /* Total token throughput (tok/s) */
  double req_tps;            /* Request throughput (req/s) */
  double avg_latency_s;      /* Average latency (s) */
  double avg_ttft_s;         /* Average time to first token (s) */
  double avg_tpot_s;         /* Average time per output token (s) */
  double avg_in_tok;         /* Average input tokens per request */
  double avg_out_tok;        /* Average output tokens per request */
  double avg_pkg_latency_s;  /* Average package latency (s) */
  double avg_pkg_per_req;    /* Average package per request */
};

/* evalscope's percentile table: [metric][percentile]; NAN where the index falls outside. */
enum metrics_pct_col {
  MPCT_TTFT = 0, MPCT_ITL, MPCT_TPOT, MPCT_LATENCY, MPCT_IN_TOK, MPCT_OUT_TOK, MPCT_OUT_TPS,
  MPCT_TOTAL_TPS, MPCT_N_COLS
};
extern const char *const metrics_pct_names[MPCT_N_COLS];

struct metrics_dist {
  int64_t n;
  double mean, median, std, p90, p99; /* seconds */
};

struct metrics_vllm {
  double duration_s;
  int64_t completed, total_in, total_out;
  double req_tps, out_tps, total_tps;
  int has_goodput;
  double goodput_rps;
  struct metrics_dist ttft, tpot, itl, e2el;
};

struct metrics {
  struct metrics_evalscope es;
  double pct[MPCT_N_COLS][METRICS_N_PCT];
  struct metrics_vllm vllm;
  int itl_exact;             /* 1: ITL percentiles from every sample; 0: from the histogram */
  int64_t n_itl;
};

/* Per-request input to metrics_compute (a view of sim_req_result's fields). */
struct metrics_req {
  int64_t start_ns, first_tok_ns, penult_tok_ns, done_ns;
  int32_t in_tok, out_tok;
  int ok;
};

#define METRICS_HIST_BINS (64 * 128)

/* ITL sample store: exact up to cap, then a histogram. */
struct metrics_itl {
  int64_t *samples;          /* (cap) gaps in ns */
  int64_t cap, n;            /* n counts every sample added, exact or not */
  int64_t *hist;             /* (METRICS_HIST_BINS) allocated on overflow */
  double sum_ns;             /* for the exact mean when the histogram is in use */
};

int metrics_itl_init(struct metrics_itl *it, int64_t cap);
void metrics_itl_free(struct metrics_itl *it);
/* Slow path of metrics_itl_add: the histogram (allocated on the first overflow). */
int metrics_itl_add_hist(struct metrics_itl *it, int64_t gap_ns);
/* Records one inter-token gap; inline because the simulator calls it once per token. */
static inline int metrics_itl_add(struct metrics_itl *it, int64_t gap_ns) {
  it->sum_ns += (double)gap_ns;
  if (it->n < it->cap && !it->hist) {
    it->samples[it->n++] = gap_ns;
    return 0;
  }
  return metrics_itl_add_hist(it, gap_ns);
}
/* Sorts v ascending (LSD radix on the IEEE-754 bits: O(n), no comparison callback); tmp holds
 * n values. Negative values and NaN sort as the bit order implies (NaN last). */
void metrics_sort_doubles(double *v, double *tmp, int64_t n);

/* Computes everything from n requests (any order). itl may be NULL (no ITL samples). */
int metrics_compute(const struct metrics_req *reqs, int64_t n, struct metrics_itl *itl,
                    int64_t concurrency, const struct metrics_slo *slo, struct metrics *out);
/* numpy.percentile(sorted, p) with linear interpolation; sorted ascending, n >= 1. */
double metrics_percentile_linear(const double *sorted, int64_t n, double p);
/* evalscope's sorted[int(n * p / 100)]; NAN if out of range. */
double metrics_percentile_index(const double *sorted, int64_t n, int p);

#endif
