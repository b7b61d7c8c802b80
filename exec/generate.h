/* generate: a fixed batch run to completion on the live engine (servesim-exec generate).
 *
 * B sequences of P random prompt tokens are prefilled with chunked prefill (vLLM's scheduler
 * shape: sequences in order, each step up to max_num_batched_tokens tokens, a sequence's last
 * chunk sampled), then decoded together for O - 1 steps (the first output token comes from the
 * prefill). Reported: prefill time, TTFT per sequence (wall clock from the start of the first
 * prefill step to the end of the step that sampled its first token), and the time per decode
 * step (= per output token of every sequence), wall clock and CUDA-event GPU time. */
#ifndef SERVESIM_EXEC_GENERATE_H
#define SERVESIM_EXEC_GENERATE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "exec/engine.h"
#include "exec/record.h"

struct gen_cfg {
  int batch, prompt_len, output_len;
  uint64_t seed;
};

struct gen_result {
  double prefill_ms;           /* wall, all prefill steps */
  int n_prefill_steps;
  double ttft_avg_ms, ttft_max_ms;
  double decode_ms_med, decode_ms_p10, decode_ms_p90;   /* wall per decode step */
  double decode_gpu_ms_med;    /* CUDA events per decode step */
  double prefill_gpu_ms;       /* CUDA events, all prefill steps */
  int n_decode_steps;
  int32_t first_tokens[8];     /* of sequence 0, for a glance */
  int64_t *hits;               /* [L, E], rank 0 */
  int router_gemv;             /* the router GEMV passed its self-check and is on (engine.h) */
  int pdl;                     /* the W4A16 GEMMs used programmatic dependent launch (kernels.h) */
};

/* Runs on one rank (runner_fn shape with arg = struct gen_job). */
struct gen_job {
  struct gen_cfg cfg;
  struct gen_result res;       /* written by rank 0 */
  int n_layers, n_experts;
};
int gen_rank(void *arg, int rank, struct eng *e, struct comm *c);
/* Adds the run's figures to r (metrics and step measurements). */
int gen_record(const struct gen_job *job, int tp, struct rec *r);

#ifdef __cplusplus
}
#endif

#endif
