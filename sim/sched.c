/* sched: vLLM V1 scheduling over fixed id queues. See sched.h for the policy. */
#include "sim/sched.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int sched_init(struct sched *s, struct seq *seqs, int64_t kv_blocks, int block_size, int prefix_caching,
               int max_num_seqs, int max_num_batched_tokens, int64_t w_cap) {
  memset(s, 0, sizeof *s);
  if (max_num_seqs < 1) return err_set(ERR_INPUT, "--max-num-seqs %d must be >= 1", max_num_seqs);
  if (max_num_batched_tokens < 1)
    return err_set(ERR_INPUT, "--max-num-batched-tokens %d must be >= 1", max_num_batched_tokens);
  int rc = kv_init(&s->kv, kv_blocks, block_size, prefix_caching);
  if (rc) return rc;
  if (w_cap < 1) w_cap = 1;
  s->seqs = seqs;
  s->waiting = malloc((size_t)w_cap * sizeof *s->waiting);
  s->running = malloc((size_t)max_num_seqs * sizeof *s->running);
  if (!s->waiting || !s->running) {
    sched_destroy(s);
    return err_set(ERR_NOMEM, "sched: cannot allocate queues for %lld requests", (long long)w_cap);
  }
  s->w_cap = w_cap;
  s->max_num_seqs = max_num_seqs;
  s->max_batched_tok = max_num_batched_tokens;
  return ERR_OK;
}

void sched_destroy(struct sched *s) {
  if (!s) return;
  kv_destroy(&s->kv);
  free(s->waiting);
  free(s->running);
  s->waiting = s->running = NULL;
}

int sched_batch_init(struct sched_batch *b, int cap) {
  memset(b, 0, sizeof *b);
  b->ids = malloc((size_t)cap * sizeof *b->ids);
  b->n_new = malloc((size_t)cap * sizeof *b->n_new);
  b->n_ctx = malloc((size_t)cap * sizeof *b->n_ctx);
  b->sample = malloc((size_t)cap);
  if (!b->ids || !b->n_new || !b->n_ctx || !b->sample) {
    sched_batch_destroy(b);
    return err_set(ERR_NOMEM, "sched: cannot allocate a batch of %d", cap);
  }
  b->cap = cap;
  return ERR_OK;
}

void sched_batch_destroy(struct sched_batch *b) {
  if (!b) return;
  free(b->ids);
  free(b->n_new);
  free(b->n_ctx);
  free(b->sample);
  memset(b, 0, sizeof *b);
}

static void sched_push_front(struct sched *s, int32_t id) {
  s->w_head = (s->w_head + s->w_cap - 1) % s->w_cap;
  s->waiting[s->w_head] = id;
  s->w_n++;
}

int sched_add(struct sched *s, int32_t id) {
  if (s->w_n >= s->w_cap)
    return err_set(ERR_NOMEM, "sched: waiting queue full at %lld requests", (long long)s->w_cap);
  s->waiting[(s->w_head + s->w_n) % s->w_cap] = id;
  s->w_n++;
  s->seqs[id].status = SEQ_WAITING;
  return ERR_OK;
}

/* Evicts running[idx]: KV freed, progress lost, back to the front of the waiting queue. */
static void sched_preempt(struct sched *s, int32_t idx) {
  int32_t id = s->running[idx];
  struct seq *q = &s->seqs[id];
  kv_free(&s->kv, &q->kv, q->n_computed); /* its full blocks stay cached for the recompute */
  if (q->n_computed > q->n_recompute) q->n_recompute = q->n_computed;
  q->n_computed = 0;
  q->n_preempt++;
  q->status = SEQ_WAITING;
  memmove(&s->running[idx], &s->running[idx + 1], (size_t)(s->n_running - idx - 1) * sizeof(int32_t));
  s->n_running--;
  sched_push_front(s, id);
  s->n_preemptions++;
}

/* Newest running request that is not in flight (a request in a pipeline stage cannot lose its
 * KV mid-step); -1 if none. */
static int32_t sched_victim(const struct sched *s) {
  for (int32_t i = s->n_running - 1; i >= 0; i--)
    if (s->seqs[s->running[i]].n_inflight == 0) return i;
  return -1;
}

static void sched_take(struct sched *s, struct sched_batch *b, int32_t id, int32_t n_new) {
  struct seq *q = &s->seqs[id];
  int32_t k = b->n++;
  int32_t rec = n_new < q->n_recompute ? n_new : q->n_recompute;
  b->ids[k] = id;
  b->n_new[k] = n_new;
  b->n_ctx[k] = q->n_computed;
  q->n_recompute -= rec;
  q->n_computed += n_new;
  q->n_inflight++;
  /* a token comes out when this chunk completes every known token */
  b->sample[k] = (uint8_t)(q->n_computed == seq_num_tokens(q));
  b->n_tok += n_new;
  b->n_recompute_tok += rec;
  b->n_sample += b->sample[k];
  if (n_new == 1 && b->n_ctx[k] > 0) b->n_decode++;
}

void sched_step(struct sched *s, struct sched_batch *b) {
  b->n = b->n_tok = b->n_decode = b->n_sample = b->n_recompute_tok = b->n_preempted = b->n_hit_tok = 0;
  int32_t budget = s->max_batched_tok;

  /* 1. running requests, oldest first */
  int32_t i = 0;
  while (i < s->n_running && budget > 0 && b->n < b->cap) {
    int32_t id = s->running[i];
    struct seq *q = &s->seqs[id];
    int32_t n_new = seq_remaining(q);
    if (n_new <= 0) { /* its token is in flight (PP): skip */
      i++;
      continue;
    }
    if (n_new > budget) n_new = budget;
    int ok = 1;
    while (!kv_can_allocate(&s->kv, &q->kv, (int64_t)q->n_computed + n_new)) {
      int32_t v = sched_victim(s);
      if (v < 0) { ok = 0; break; }
      int self = (s->running[v] == id);
      sched_preempt(s, v);
      b->n_preempted++;
      if (self) { ok = 0; break; }
    }
    if (!ok) break;
    kv_allocate(&s->kv, &q->kv, (int64_t)q->n_computed + n_new);
    sched_take(s, b, id, n_new);
    budget -= n_new;
    i++;
  }

  /* 2. waiting requests, only on a step without preemption (as vLLM V1) */
  if (b->n_preempted == 0) {
    while (s->w_n > 0 && budget > 0 && s->n_running < s->max_num_seqs && b->n < b->cap) {
      int32_t id = s->waiting[s->w_head];
      struct seq *q = &s->seqs[id];
      /* a waiting request holds no KV (n_computed == 0): its cached prefix counts as computed */
      int32_t hit_free, hit = kv_prefix_hit(&s->kv, &q->kv, seq_num_tokens(q), &hit_free);
      int32_t hit_tok = hit * s->kv.block_size;
      int32_t n_new = seq_num_tokens(q) - hit_tok;
      if (n_new > budget) n_new = budget;
      if (!kv_can_admit(&s->kv, hit, hit_free, (int64_t)hit_tok + n_new)) break;
      s->w_head = (s->w_head + 1) % s->w_cap;
      s->w_n--;
      if (hit) {
        kv_take_hit(&s->kv, &q->kv, hit);
        q->n_computed = hit_tok;
        q->n_recompute = q->n_recompute > hit_tok ? q->n_recompute - hit_tok : 0;
        s->n_hit_tok += hit_tok;
        b->n_hit_tok += hit_tok;
      }
      kv_allocate(&s->kv, &q->kv, (int64_t)q->n_computed + n_new);
      q->status = SEQ_RUNNING;
      s->running[s->n_running++] = id;
      sched_take(s, b, id, n_new);
      budget -= n_new;
    }
  }
}

void sched_complete(struct sched *s, const struct sched_batch *b) {
  int any_done = 0;
  for (int32_t k = 0; k < b->n; k++) {
    struct seq *q = &s->seqs[b->ids[k]];
    q->n_inflight--;
    if (!b->sample[k]) continue;
    q->n_out++;
    if (q->n_out >= q->out_tok) {
      q->status = SEQ_FINISHED;
      kv_free(&s->kv, &q->kv, 0);
      any_done = 1;
    }
  }
  if (!any_done) return;
  int32_t w = 0; /* keep admission order: stable compaction */
  for (int32_t r = 0; r < s->n_running; r++)
    if (s->seqs[s->running[r]].status != SEQ_FINISHED) s->running[w++] = s->running[r];
  s->n_running = w;
}

int sched_check(const struct sched *s) {
  int64_t held = 0; /* block references: shared prefix blocks count once per holder */
  for (int32_t r = 0; r < s->n_running; r++) {
    const struct seq *q = &s->seqs[s->running[r]];
    if (q->status != SEQ_RUNNING)
      return err_set(ERR_INTERNAL, "sched: running[%d] = request %d has status %s", r, s->running[r],
                     seq_status_name(q->status));
    if (q->kv.n_blocks < kv_blocks_for(&s->kv, q->n_computed))
      return err_set(ERR_INTERNAL, "sched: request %d holds %d blocks for %d tokens", s->running[r],
                     q->kv.n_blocks, q->n_computed);
    held += q->kv.n_blocks;
  }
  for (int64_t w = 0; w < s->w_n; w++) {
    int32_t id = s->waiting[(s->w_head + w) % s->w_cap];
    const struct seq *q = &s->seqs[id];
    if (q->status != SEQ_WAITING || q->kv.n_blocks != 0)
      return err_set(ERR_INTERNAL, "sched: waiting request %d has status %s and %d blocks", id,
                     seq_status_name(q->status), q->kv.n_blocks);
  }
  int64_t refs = kv_refs(&s->kv);
  if (held != refs)
    return err_set(ERR_INTERNAL, "sched: running requests hold %lld block references, the pool counts %lld",
                   (long long)held, (long long)refs);
  return kv_check(&s->kv);
}
