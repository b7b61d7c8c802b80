/* seq: one request's serving state, as the scheduler sees it (vLLM's Request).
 *
 * Policy only: token counts and status, no time. n_computed counts KV tokens computed *or
 * scheduled* (vLLM V1 advances num_computed_tokens when it schedules), so a request whose last
 * sampled token is still in flight in a pipeline has nothing left to schedule and is skipped. */
#ifndef SERVESIM_SEQ_H
#define SERVESIM_SEQ_H

#include <stdint.h>

#include "sim/kv.h"

enum seq_status {
  SEQ_PENDING = 0,           /* not arrived yet */
  SEQ_WAITING,               /* in a replica's waiting queue (new or preempted) */
  SEQ_RUNNING,               /* in the running set (prefilling or decoding) */
  SEQ_FINISHED,              /* produced out_tok tokens; KV freed */
  SEQ_FAILED                 /* rejected: cannot fit max_model_len or the KV pool */
};

struct seq {
  int32_t in_tok;            /* prompt tokens as the server counts them */
  int32_t out_tok;           /* tokens to generate (ignore_eos, as evalscope runs) */
  int32_t n_out;             /* tokens generated so far */
  int32_t n_computed;        /* KV tokens computed or in flight */
  int32_t n_recompute;       /* tokens still to recompute after a preemption (breakdown) */
  int32_t n_inflight;        /* batches in flight holding this request (PP) */
  int32_t n_preempt;         /* times evicted */
  int16_t status;            /* enum seq_status */
  int16_t replica;           /* DP replica it was dispatched to */
  struct kv_seq kv;
};

void seq_init(struct seq *s, int32_t in_tok, int32_t out_tok);
/* Names the request for the prefix cache: its id, and the first group_tok prompt tokens it shares
 * with prefix group `group` (-1 = none). */
void seq_set_prefix(struct seq *s, int32_t id, int32_t group, int32_t group_tok, int block_size);
/* Tokens whose KV the next forward needs: the prompt plus every generated token. */
static inline int32_t seq_num_tokens(const struct seq *s) { return s->in_tok + s->n_out; }
/* Tokens not yet computed or scheduled (0 for a decode whose token is in flight). */
static inline int32_t seq_remaining(const struct seq *s) { return seq_num_tokens(s) - s->n_computed; }
/* Most KV tokens the request ever holds: the last sampled token is never fed back. */
static inline int64_t seq_peak_tokens(const struct seq *s) { return (int64_t)s->in_tok + s->out_tok - 1; }
const char *seq_status_name(int status);

#endif
