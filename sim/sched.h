/* sched: vLLM V1's continuous-batching scheduler for one replica (policy only: no time, no GPU).
 *
 * Each call of sched_step builds one batch the way vllm/v1/core/sched/scheduler.py does:
 *  1. running requests first, in admission order, each taking min(remaining, budget) tokens of
 *     max_num_batched_tokens (a prefill is chunked when the budget runs short; a decode takes 1);
 *     a request whose KV cannot grow evicts the newest running request (recompute preemption:
 *     its KV is freed, it restarts from token 0 and goes to the FRONT of the waiting queue) until
 *     it fits or evicts itself;
 *  2. then, only when nothing was preempted this step, waiting requests in order while the budget
 *     lasts and fewer than max_num_seqs are running; a request's leading blocks found in the
 *     prefix cache count as computed (see kv.h).
 * Scheduling advances n_computed at once (as V1 does), so with pipeline parallelism a request
 * whose sampled token is still in flight has nothing to schedule and is skipped: up to PP batches
 * run over disjoint decode sets. (A long prompt's next chunk may follow its previous chunk into
 * the next micro-batch, as in vLLM.) Victims are chosen among requests not in flight.
 *
 * Queues are fixed arrays of request ids: a ring buffer for waiting, an ordered array for running. */
#ifndef SERVESIM_SCHED_H
#define SERVESIM_SCHED_H

#include <stdint.h>

#include "sim/kv.h"
#include "sim/seq.h"

struct sched {
  struct seq *seqs;          /* shared request pool, indexed by request id (not owned) */
  struct kv kv;              /* this replica's block pool (owned) */
  int32_t *waiting;          /* (w_cap) ring buffer of ids */
  int64_t w_cap, w_head, w_n;
  int32_t *running;          /* (max_num_seqs) ids in admission order */
  int32_t n_running;
  int32_t max_num_seqs;
  int32_t max_batched_tok;   /* max_num_batched_tokens */
  int64_t n_preemptions;     /* evictions so far */
  int64_t n_hit_tok;         /* prompt tokens found in the prefix cache at admission */
};

/* One scheduled batch. Arrays sized max_num_seqs by sched_batch_init. */
struct sched_batch {
  int32_t *ids;              /* (cap) request ids */
  int32_t *n_new;            /* (cap) tokens computed this step */
  int32_t *n_ctx;            /* (cap) tokens already in KV before this step */
  uint8_t *sample;           /* (cap) 1 if this step yields a token for the request */
  int32_t n, cap;
  int32_t n_tok;             /* sum of n_new */
  int32_t n_decode;          /* entries with n_new == 1 and n_ctx > 0 */
  int32_t n_sample;
  int32_t n_recompute_tok;   /* of n_tok, tokens recomputed after a preemption */
  int32_t n_preempted;       /* evictions while building this batch */
  int32_t n_hit_tok;         /* prefix-cache hits of the requests admitted in this batch */
};

/* w_cap: most requests this replica can ever hold waiting (the workload's request count). */
int sched_init(struct sched *s, struct seq *seqs, int64_t kv_blocks, int block_size, int prefix_caching,
               int max_num_seqs, int max_num_batched_tokens, int64_t w_cap);
void sched_destroy(struct sched *s);
int sched_batch_init(struct sched_batch *b, int cap);
void sched_batch_destroy(struct sched_batch *b);

/* A new request joins the back of the waiting queue. ERR_NOMEM if the ring is full. */
int sched_add(struct sched *s, int32_t id);
/* Builds the next batch into b (b->n == 0: nothing can run now). */
void sched_step(struct sched *s, struct sched_batch *b);
/* The batch finished its last stage: requests leave flight, sampled ones gain a token, finished
 * ones free their KV and leave the running set (their status becomes SEQ_FINISHED). */
void sched_complete(struct sched *s, const struct sched_batch *b);
/* Checks that each queued request is in the right state and the block pool adds up. */
int sched_check(const struct sched *s);

#endif
