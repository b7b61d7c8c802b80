/* gen: synthetic request lists — an arrival process times a length distribution.
 *
 * Arrivals: closed loop (every request at 0: evalscope's `--number` requests created at once;
 * the simulator admits `--parallel` of them at a time), Poisson at a rate, or Gamma renewal at a
 * rate with a given inter-arrival CV (shape 1/cv^2; cv 1 is Poisson, cv > 1 burstier). The first
 * request arrives at 0 and each gap is rounded to the ns once, so times are exact integers.
 * Lengths: uniform in [min, max] for input and output (evalscope's --min/--max-prompt-length and
 * --min/--max-tokens; min = max gives fixed lengths), or (input, output) pairs resampled with
 * replacement from a trace or length file, which keeps their correlation: "Azure-like" or
 * "ShareGPT-like" lengths. Arrivals and lengths use separate streams derived from the seed, so
 * the same seed gives the same lengths under any arrival process. */
#ifndef SERVESIM_GEN_H
#define SERVESIM_GEN_H

#include <stdint.h>

#include "traces/trace.h"

enum gen_arrival { GEN_CLOSED = 0, GEN_POISSON, GEN_GAMMA };

/* evalscope's random dataset decodes random token ids to text without re-encoding, so the
 * server counts more prompt tokens than asked: the seed's four runs average 1078.44 for 1024
 * (bench/RESULTS.md). The default --prompt-inflation of `servesim simulate`, `bench` and `plan`. */
#define GEN_EVALSCOPE_PROMPT_INFLATION 0.053

struct gen_opts {
  int arrival;                  /* enum gen_arrival */
  double rate_rps;              /* mean request rate (Poisson, Gamma) */
  double cv;                    /* inter-arrival coefficient of variation (Gamma); 0 = even gaps */
  int64_t n_req;                /* requests to generate */
  int32_t in_min, in_max;       /* prompt tokens, uniform inclusive */
  int32_t out_min, out_max;     /* output tokens, uniform inclusive */
  int32_t prefix_tok;           /* evalscope --prefix-length: a shared prefix (group 0) prepended */
  double in_inflation;          /* uniform lengths only: each prompt grows by llround(in * this),
                                 * prefix included (--prompt-inflation; 0 = off) */
  const struct trace *lengths_from; /* if set, resample (in, out) pairs from it instead */
  uint64_t seed;
};

/* Closed loop, 100 requests, 1024 in / 1024 out fixed, seed 0. */
void gen_opts_default(struct gen_opts *o);
/* Fills t (initialised here). ERR_INPUT naming the bad option, ERR_NOMEM. */
int gen_run(const struct gen_opts *o, struct trace *t);
const char *gen_arrival_name(int arrival);

#endif
