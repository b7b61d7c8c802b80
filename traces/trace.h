/* trace: a workload as an array of requests (arrival time, input and output tokens, prefix).
 *
 * Every reader (Azure CSV, BurstGPT CSV, Mooncake JSONL, the canonical CSV) and generator
 * (evalscope random, Poisson, Gamma) produces this one form; the simulator and executor
 * consume only this. Times are int64 nanoseconds from the first arrival (0 for closed loop). */
#ifndef SERVESIM_TRACE_H
#define SERVESIM_TRACE_H

#include <stdint.h>

struct trace_req {
  int64_t arrival_ns;        /* relative to the trace start */
  int32_t in_tok;            /* prompt tokens */
  int32_t out_tok;           /* output tokens (>= 1 for a request that can run) */
  int32_t prefix_id;         /* shared-prefix group (-1 = none) */
  int32_t prefix_tok;        /* tokens of the prompt shared with that group */
};

struct trace {
  struct trace_req *reqs;    /* (n) sorted by arrival_ns */
  int64_t n;
  int64_t cap;
  int64_t n_bad;             /* rows skipped under --on-bad-row=skip, or failed requests kept */
  char source[256];          /* file or generator description */
};

void trace_init(struct trace *t);
void trace_free(struct trace *t);
int trace_push(struct trace *t, const struct trace_req *r);

#endif
