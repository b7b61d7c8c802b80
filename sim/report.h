/* report: prints a run — evalscope's summary and percentile table (text grid or JSON with its
 * key names), vLLM benchmark_serving's block, "where the time goes", and the per-request CSV.
 *
 * Numbers in JSON follow evalscope's output: Python's round(x, 4) printed as json.dumps would
 * (shortest form, at least one decimal: 1024.0, 40.014), NaN as NaN. */
#ifndef SERVESIM_REPORT_H
#define SERVESIM_REPORT_H

#include <stdio.h>

#include "sim/layout.h"
#include "sim/metrics.h"
#include "sim/sim.h"

/* x rounded to 4 decimals, Python style, into buf (>= 40 bytes). */
const char *report_num4(char *buf, size_t n, double x);
/* One evalscope summary object ({...} with its 15 keys in order); indent = spaces before keys. */
void report_evalscope_json(FILE *f, const struct metrics_evalscope *es, int indent);
/* evalscope's benchmark_percentile.json: a list of {"Percentiles": "10%", "TTFT (s)": ...}. */
void report_percentiles_json(FILE *f, const struct metrics *m, int indent);
/* vLLM's block (ms) and the breakdown as JSON objects (for simulate --json). */
void report_vllm_json(FILE *f, const struct metrics *m, int indent);
void report_breakdown_json(FILE *f, const struct sim_result *res, int indent);
/* Text: evalscope's "Benchmarking summary" grid and "Percentile results" table. */
void report_summary_table(FILE *f, const struct metrics_evalscope *es);
void report_percentile_table(FILE *f, const struct metrics *m);
/* Text: vLLM benchmark_serving's result block. */
void report_vllm(FILE *f, const struct metrics *m);
/* Text: where the time goes (cost terms, bubble, idle, recompute), busy fraction per GPU,
 * event and step counts. */
void report_breakdown(FILE *f, const struct sim_result *res, const struct layout *l);
/* Per-request CSV: times in ns from the run start (-1: none) plus the derived seconds (empty:
 * none, e.g. the TTFT of a rejected request). */
int report_requests_csv(const char *path, const struct sim_req_result *reqs, int64_t n);

#endif
