/* sim: the discrete-event serving simulator — one run of a workload through one deployment.
 *
 * sim_run replays a trace through DP replicas (each a vLLM V1 engine: sched + kv, with PP stages)
 * and fills a sim_result: per-request timings, evalscope / vLLM metrics, and where the time went.
 * Two workload modes: open loop (requests arrive at the trace's arrival times) and evalscope's
 * closed loop (`--parallel N --number M`: all M requests exist at t=0, a semaphore admits N, the
 * next one starts the instant one finishes; trace arrival times are ignored).
 *
 * Step timing: stage k of a micro-batch starts when stage k is free and stage k-1 finished it; a
 * token exists when the last stage finishes (first token: end of the step holding the last
 * prefill chunk). Per stage and step the cost model is called once.
 *
 * Reentrant and thread-safe: no globals, every buffer belongs to the run; the cost model's state
 * must not be shared between concurrent runs unless its stage_ns is pure (roofline, constant). */
#ifndef SERVESIM_SIM_H
#define SERVESIM_SIM_H

#include <math.h>
#include <stdint.h>

#include "sim/cost.h"
#include "sim/hw.h"
#include "sim/layout.h"
#include "sim/metrics.h"
#include "sim/model.h"
#include "traces/trace.h"

enum sim_mode { SIM_OPEN_LOOP = 0, SIM_CLOSED_LOOP = 1 };

#define SIM_MAX_GPUS 1024
#define SIM_MAX_PP 64

struct sim_config {
  const struct model_spec *model;  /* informational (may be NULL): the cost model holds the physics */
  const struct hw_spec *hw;        /* informational (may be NULL) */
  struct layout layout;            /* tp, pp, dp, ep */
  struct engine engine;            /* max_num_seqs, max_num_batched_tokens, block_size, max_model_len
                                    * must be resolved (non-zero; engine_defaults does it) */
  int64_t kv_blocks;               /* KV blocks per replica (layout_check's mem_plan.kv_blocks) */
  const struct cost_model *cost;
  uint64_t seed;
  int mode;                        /* enum sim_mode */
  int parallel;                    /* closed loop: concurrency N */
  int dispatch;                    /* enum dispatch_policy */
  struct metrics_slo slo;          /* goodput thresholds (unset = none) */
  int64_t max_events;              /* event heap capacity; 0 = sized from the workload */
  int64_t itl_cap;                 /* ITL samples kept exactly; 0 = 1<<22; beyond, a histogram */
  int check_invariants;            /* 1: check scheduler/KV invariants after every batch (tests) */
};

/* One request's outcome (times in ns from the run's t=0). */
struct sim_req_result {
  int64_t start_ns;                /* client start: trace arrival, or semaphore admission */
  int64_t first_tok_ns;            /* first token (evalscope chunk_times[0]); -1 if none */
  int64_t penult_tok_ns;           /* second-to-last token (chunk_times[-2]); -1 if < 2 tokens */
  int64_t done_ns;                 /* last token (completed_time), or the rejection time */
  int32_t in_tok, out_tok;         /* prompt tokens, tokens generated */
  int32_t n_preempt;               /* evictions suffered */
  int16_t replica;                 /* DP replica (-1 if rejected before dispatch) */
  int16_t ok;                      /* 1 succeeded, 0 failed (rejected) */
};

/* One request's TTFT in seconds (NAN when it produced no token) and evalscope's per-request
 * TPOT: time from the first to the second-to-last token over output - 2 (NAN under 3 tokens).
 * The per-request CSV and the database rows both print these. */
static inline double sim_req_ttft_s(const struct sim_req_result *r) {
  return r->first_tok_ns >= 0 ? (r->first_tok_ns - r->start_ns) * 1e-9 : NAN;
}
static inline double sim_req_tpot_s(const struct sim_req_result *r) {
  return r->out_tok > 2 ? (r->penult_tok_ns - r->first_tok_ns) * 1e-9 / (r->out_tok - 2) : NAN;
}

/* Where the time goes, summed over every (replica, stage). */
struct sim_breakdown {
  int64_t term_ns[COST_N_TERMS];   /* cost model terms over all stage-steps */
  int64_t busy_ns;                 /* stage time spent computing (= sum of terms) */
  int64_t bubble_ns;               /* stage idle while its replica had a batch in flight */
  int64_t idle_ns;                 /* stage idle while its replica had nothing in flight */
  int64_t recompute_ns;            /* share of busy time recomputing preempted tokens */
  int64_t span_ns;                 /* run length (first arrival .. last event) */
  int64_t stage_span_ns;           /* span_ns * dp * pp: busy + bubble + idle */
  int n_gpus;
  double gpu_busy_frac[SIM_MAX_GPUS]; /* (n_gpus) rank = dp*(pp*tp) + stage*tp + tp_rank */
};

struct sim_counts {
  int64_t n_events;                /* events popped */
  int64_t n_event_peak;            /* largest heap occupancy */
  int64_t n_steps;                 /* batches run (per replica, summed) */
  int64_t n_stage_calls;           /* cost model calls */
  int64_t n_preemptions;
  int64_t n_tokens;                /* tokens generated */
  int64_t n_prefill_tokens;        /* prompt tokens computed (recompute included) */
  int64_t n_recompute_tokens;
  int64_t n_cached_tokens;         /* prompt tokens served from the prefix cache */
  int64_t max_batch;               /* largest batch (requests) */
};

struct sim_result {
  /* in: optional caller-owned per-request array of trace->n entries (NULL: kept internally) */
  struct sim_req_result *reqs;
  /* out */
  int64_t n_reqs;
  struct metrics metrics;
  struct sim_breakdown bd;
  struct sim_counts counts;
};

/* Fills cfg with defaults (PP=TP=DP=1, vLLM engine defaults for a large card, closed loop
 * parallel 1, round robin); the caller sets kv_blocks and cost. */
void sim_config_default(struct sim_config *cfg);
/* Runs the workload. res->reqs may point to a caller array of tr->n results. Returns ERR_OK, or
 * ERR_INPUT (bad config or trace), ERR_NOMEM (a pool ran dry: the message names the knob),
 * ERR_INTERNAL (an invariant broke: a bug). */
int sim_run(const struct sim_config *cfg, const struct trace *tr, struct sim_result *res);

#endif
