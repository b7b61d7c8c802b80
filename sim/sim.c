/* sim: the event loop joining workload, dispatcher, per-replica schedulers, PP stages and the
 * cost model. See sim.h for the model of time; the policy it drives lives in sched/kv/dispatch. */
#include "sim/sim.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "sim/dispatch.h"
#include "sim/evq.h"
#include "sim/sched.h"
#include "sim/seq.h"

/* EV_SCHEDULE runs a replica's scheduler after every arrival of the same instant has been
 * queued (its seq is larger), as vLLM's engine loop picks up everything that came in. */
enum { EV_ARRIVAL = 1, EV_STAGE_DONE = 2, EV_SCHEDULE = 3 };

struct sim_replica {
  struct sched sched;
  struct sched_batch slot[SIM_MAX_PP];   /* (pp) micro-batches in flight, FIFO from slot_head */
  int64_t *stage_dur_ns;                 /* (pp slots, pp stages) durations fixed at schedule */
  int64_t stage_free_ns[SIM_MAX_PP];     /* (pp) when each stage finishes its queued work */
  int64_t stage_busy_ns[SIM_MAX_PP];     /* (pp) */
  int n_inflight, slot_head;
  int sched_pending;                     /* an EV_SCHEDULE is in the heap */
  int64_t active_since_ns, active_ns;    /* time with >= 1 micro-batch in flight */
  struct rng rng;                        /* routing draws of the cost model */
};

struct sim_state {
  const struct sim_config *cfg;
  const struct trace *tr;
  struct sim_result *res;
  struct sim_req_result *rq;             /* (n) */
  struct seq *seqs;                      /* (n) */
  struct sim_replica *rep;               /* (dp) */
  struct cost_req *creq;                 /* (max_num_seqs) scratch for the cost call */
  struct metrics_itl itl;
  struct dispatch disp;
  struct evq q;
  int pp, dp;
  int64_t n, next_arrival, n_done;
  int64_t t_first_ns, t_last_ns;
  int64_t recompute_ns;
};

void sim_config_default(struct sim_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->layout = (struct layout){.tp = 1, .pp = 1, .dp = 1, .ep = 0};
  cfg->engine = (struct engine){.gpu_mem_util = 0.9, .max_model_len = 0, .max_num_seqs = 256,
                                .max_num_batched_tokens = 2048, .block_size = 16,
                                .kv_dtype_bytes = 2, .enforce_eager = 0, .enable_prefix_caching = 1};
  cfg->seed = 0;
  cfg->mode = SIM_CLOSED_LOOP;
  cfg->parallel = 1;
  cfg->dispatch = DISPATCH_ROUND_ROBIN;
}

/* ---- workload ---- */

/* Puts the next request of the workload into the heap: at its trace arrival (open loop) or now
 * (closed loop: a client slot just opened). One pending arrival at a time keeps the heap small. */
static int sim_push_arrival(struct sim_state *st) {
  if (st->next_arrival >= st->n) return ERR_OK;
  int64_t id = st->next_arrival++;
  int64_t t_ns = st->cfg->mode == SIM_OPEN_LOOP ? st->tr->reqs[id].arrival_ns : st->q.now_ns;
  st->rq[id].start_ns = t_ns;
  return evq_push(&st->q, t_ns, EV_ARRIVAL, (int32_t)id);
}

/* A request left the system (finished or rejected): in the closed loop its client sends the
 * next one at once, as evalscope's semaphore does. */
static int sim_request_left(struct sim_state *st) {
  st->n_done++;
  return st->cfg->mode == SIM_CLOSED_LOOP ? sim_push_arrival(st) : ERR_OK;
}

/* ---- replicas ---- */

static int sim_try_schedule(struct sim_state *st, int r);

static int sim_start_stage(struct sim_state *st, int r, int slot, int stage) {
  struct sim_replica *R = &st->rep[r];
  int64_t dur = R->stage_dur_ns[slot * st->pp + stage];
  int64_t start = st->q.now_ns > R->stage_free_ns[stage] ? st->q.now_ns : R->stage_free_ns[stage];
  R->stage_free_ns[stage] = start + dur;
  R->stage_busy_ns[stage] += dur;
  int32_t obj = (int32_t)(((int64_t)r * st->pp + slot) * st->pp + stage);
  return evq_push(&st->q, start + dur, EV_STAGE_DONE, obj);
}

/* Builds micro-batches while the replica has room for one more in flight (PP at most). */
static int sim_try_schedule(struct sim_state *st, int r) {
  struct sim_replica *R = &st->rep[r];
  const struct cost_model *cm = st->cfg->cost;
  while (R->n_inflight < st->pp) {
    int slot = (R->slot_head + R->n_inflight) % st->pp;
    struct sched_batch *b = &R->slot[slot];
    sched_step(&R->sched, b);
    st->res->counts.n_preemptions += b->n_preempted;
    if (b->n == 0) break;
    struct cost_step step = {.reqs = st->creq, .n_reqs = b->n, .n_tok = b->n_tok,
                             .n_decode = b->n_decode, .n_sample = b->n_sample};
    for (int32_t k = 0; k < b->n; k++) st->creq[k] = (struct cost_req){b->n_new[k], b->n_ctx[k]};
    for (int s = 0; s < st->pp; s++) {
      step.stage = s;
      struct cost_breakdown bd = {{0}};
      int64_t dur = cm->stage_ns(cm->state, &step, &R->rng, &bd);
      if (dur < 0)
        return err_set(ERR_INTERNAL, "cost model '%s' returned %lld ns for a stage", cm->name, (long long)dur);
      R->stage_dur_ns[slot * st->pp + s] = dur;
      for (int t = 0; t < COST_N_TERMS; t++) st->res->bd.term_ns[t] += bd.ns[t];
      /* recomputed tokens take their share of the step */
      if (b->n_recompute_tok && b->n_tok) st->recompute_ns += dur * b->n_recompute_tok / b->n_tok;
      st->res->counts.n_stage_calls++;
    }
    st->res->counts.n_steps++;
    st->res->counts.n_prefill_tokens += b->n_tok - b->n_decode;
    st->res->counts.n_recompute_tokens += b->n_recompute_tok;
    st->res->counts.n_cached_tokens += b->n_hit_tok;
    if (b->n > st->res->counts.max_batch) st->res->counts.max_batch = b->n;
    if (R->n_inflight == 0) R->active_since_ns = st->q.now_ns;
    R->n_inflight++;
    int rc = sim_start_stage(st, r, slot, 0);
    if (rc) return rc;
  }
  return ERR_OK;
}

/* The last stage finished the replica's oldest micro-batch: tokens come out now. */
static int sim_complete_batch(struct sim_state *st, int r, int slot) {
  struct sim_replica *R = &st->rep[r];
  if (slot != R->slot_head)
    return err_set(ERR_INTERNAL, "replica %d: micro-batch slot %d finished before slot %d", r, slot, R->slot_head);
  struct sched_batch *b = &R->slot[slot];
  int64_t now = st->q.now_ns;
  for (int32_t k = 0; k < b->n; k++) {
    if (!b->sample[k]) continue;
    int32_t id = b->ids[k];
    struct seq *q = &st->seqs[id];
    struct sim_req_result *o = &st->rq[id];
    if (q->n_out == 0) {
      o->first_tok_ns = now;
    } else {
      int rc = metrics_itl_add(&st->itl, now - o->done_ns);
      if (rc) return rc;
      o->penult_tok_ns = o->done_ns;
    }
    o->done_ns = now; /* the latest token until the last one */
    st->res->counts.n_tokens++;
  }
  sched_complete(&R->sched, b);
  for (int32_t k = 0; k < b->n; k++) {
    int32_t id = b->ids[k];
    struct seq *q = &st->seqs[id];
    if (!b->sample[k] || q->status != SEQ_FINISHED) continue;
    struct sim_req_result *o = &st->rq[id];
    if (o->ok)
      return err_set(ERR_INTERNAL, "request %d finished twice (at %lld ns)", id, (long long)now);
    o->ok = 1;
    o->out_tok = q->n_out;
    o->n_preempt = q->n_preempt;
    dispatch_done(&st->disp, r);
    int rc = sim_request_left(st);
    if (rc) return rc;
  }
  R->slot_head = (R->slot_head + 1) % st->pp;
  R->n_inflight--;
  if (R->n_inflight == 0) R->active_ns += now - R->active_since_ns;
  if (st->cfg->check_invariants) {
    int rc = sched_check(&R->sched);
    if (rc) return err_wrap(rc, "replica %d at %lld ns", r, (long long)now);
  }
  return sim_try_schedule(st, r);
}

static int sim_arrival(struct sim_state *st, int32_t id) {
  const struct sim_config *cfg = st->cfg;
  struct seq *q = &st->seqs[id];
  struct sim_req_result *o = &st->rq[id];
  int64_t now = st->q.now_ns;
  int rc;
  /* the next open-loop arrival enters the heap only now: the heap stays O(in flight) */
  if (cfg->mode == SIM_OPEN_LOOP && (rc = sim_push_arrival(st))) return rc;
  int64_t peak = seq_peak_tokens(q);
  int too_long = cfg->engine.max_model_len > 0 && (int64_t)q->in_tok + q->out_tok > cfg->engine.max_model_len;
  if (too_long || kv_blocks_for(&st->rep[0].sched.kv, peak) > cfg->kv_blocks || q->out_tok < 1 || q->in_tok < 1) {
    /* vLLM rejects these at the API (empty prompt, prompt + max_tokens over max_model_len) or at
     * start-up would not fit them in the KV pool; they count as failed requests */
    q->status = SEQ_FAILED;
    o->done_ns = now;
    o->first_tok_ns = -1;
    o->ok = 0;
    return sim_request_left(st);
  }
  int r = dispatch_pick(&st->disp);
  q->replica = (int16_t)r;
  o->replica = (int16_t)r;
  if ((rc = sched_add(&st->rep[r].sched, id))) return rc;
  struct sim_replica *R = &st->rep[r];
  if (R->n_inflight >= st->pp || R->sched_pending) return ERR_OK; /* picked up when a batch returns */
  R->sched_pending = 1;
  return evq_push(&st->q, now, EV_SCHEDULE, r);
}

/* ---- run ---- */

static int sim_check_config(const struct sim_config *cfg, const struct trace *tr) {
  const struct layout *l = &cfg->layout;
  if (!cfg->cost || !cfg->cost->stage_ns) return err_set(ERR_INPUT, "sim: no cost model");
  if (l->tp < 1 || l->pp < 1 || l->dp < 1)
    return err_set(ERR_INPUT, "sim: layout tp=%d pp=%d dp=%d must be >= 1", l->tp, l->pp, l->dp);
  if (l->pp > SIM_MAX_PP) return err_set(ERR_INPUT, "sim: --pipeline-parallel-size %d over %d", l->pp, SIM_MAX_PP);
  if (l->dp > DISPATCH_MAX_REPLICAS)
    return err_set(ERR_INPUT, "sim: --data-parallel-size %d over %d", l->dp, DISPATCH_MAX_REPLICAS);
  if (cfg->engine.max_num_seqs < 1 || cfg->engine.max_num_batched_tokens < 1 || cfg->engine.block_size < 1)
    return err_set(ERR_INPUT, "sim: engine max_num_seqs=%d max_num_batched_tokens=%d block_size=%d must be resolved (>= 1)",
                   cfg->engine.max_num_seqs, cfg->engine.max_num_batched_tokens, cfg->engine.block_size);
  if (cfg->kv_blocks < 1) return err_set(ERR_INPUT, "sim: %lld KV blocks per replica: the layout leaves no KV cache", (long long)cfg->kv_blocks);
  if (cfg->mode == SIM_CLOSED_LOOP && cfg->parallel < 1)
    return err_set(ERR_INPUT, "sim: --parallel %d must be >= 1", cfg->parallel);
  if (tr->n > INT32_MAX) return err_set(ERR_INPUT, "sim: %lld requests over the 2^31 limit", (long long)tr->n);
  for (int64_t i = 0; i < tr->n; i++) {
    const struct trace_req *q = &tr->reqs[i];
    if (q->in_tok < 0 || q->out_tok < 0)
      return err_set(ERR_INPUT, "%s: request %lld has %d input and %d output tokens", tr->source, (long long)i,
                     q->in_tok, q->out_tok);
    if (cfg->mode == SIM_OPEN_LOOP && i > 0 && q->arrival_ns < tr->reqs[i - 1].arrival_ns)
      return err_set(ERR_INPUT, "%s: request %lld arrives before request %lld: the trace must be sorted by arrival",
                     tr->source, (long long)i, (long long)i - 1);
  }
  return ERR_OK;
}

static void sim_state_free(struct sim_state *st) {
  if (st->rep)
    for (int r = 0; r < st->dp; r++) {
      sched_destroy(&st->rep[r].sched);
      for (int s = 0; s < st->pp; s++) sched_batch_destroy(&st->rep[r].slot[s]);
      free(st->rep[r].stage_dur_ns);
    }
  free(st->rep);
  free(st->seqs);
  free(st->creq);
  if (st->res && st->rq != st->res->reqs) free(st->rq);
  metrics_itl_free(&st->itl);
  evq_free(&st->q);
}

static void sim_fill_breakdown(struct sim_state *st) {
  struct sim_breakdown *bd = &st->res->bd;
  const struct layout *l = &st->cfg->layout;
  int64_t span = st->t_last_ns - st->t_first_ns;
  bd->span_ns = span;
  bd->stage_span_ns = span * st->dp * st->pp;
  bd->recompute_ns = st->recompute_ns;
  bd->n_gpus = layout_n_gpus(l);
  if (bd->n_gpus > SIM_MAX_GPUS) bd->n_gpus = SIM_MAX_GPUS;
  for (int r = 0; r < st->dp; r++) {
    struct sim_replica *R = &st->rep[r];
    for (int s = 0; s < st->pp; s++) {
      int64_t busy = R->stage_busy_ns[s];
      bd->busy_ns += busy;
      bd->bubble_ns += R->active_ns - busy;
      bd->idle_ns += span - R->active_ns;
      for (int t = 0; t < l->tp; t++) {
        int64_t g = (int64_t)r * (l->pp * l->tp) + (int64_t)s * l->tp + t;
        if (g < SIM_MAX_GPUS) bd->gpu_busy_frac[g] = span > 0 ? (double)busy / (double)span : 0;
      }
    }
  }
}

int sim_run(const struct sim_config *cfg, const struct trace *tr, struct sim_result *res) {
  struct sim_req_result *user_reqs = res->reqs;
  memset(res, 0, sizeof *res);
  res->reqs = user_reqs;
  int rc = sim_check_config(cfg, tr);
  if (rc) return rc;

  struct sim_state st = {0};
  st.cfg = cfg;
  st.tr = tr;
  st.res = res;
  st.n = tr->n;
  st.pp = cfg->layout.pp;
  st.dp = cfg->layout.dp;
  int64_t n = st.n > 0 ? st.n : 1;
  st.rq = user_reqs ? user_reqs : malloc((size_t)n * sizeof *st.rq);
  st.seqs = malloc((size_t)n * sizeof *st.seqs);
  st.rep = calloc((size_t)st.dp, sizeof *st.rep);
  st.creq = malloc((size_t)cfg->engine.max_num_seqs * sizeof *st.creq);
  if (!st.rq || !st.seqs || !st.rep || !st.creq) {
    rc = err_set(ERR_NOMEM, "sim: cannot allocate state for %lld requests", (long long)st.n);
    goto fail;
  }
  int64_t total_itl = 0;
  for (int64_t i = 0; i < st.n; i++) {
    const struct trace_req *t = &tr->reqs[i];
    seq_init(&st.seqs[i], t->in_tok, t->out_tok);
    seq_set_prefix(&st.seqs[i], (int32_t)i, t->prefix_id, t->prefix_tok, cfg->engine.block_size);
    st.rq[i] = (struct sim_req_result){.start_ns = t->arrival_ns, .first_tok_ns = -1, .penult_tok_ns = -1,
                                        .done_ns = -1, .in_tok = t->in_tok, .out_tok = 0,
                                        .replica = -1, .ok = 0};
    if (t->out_tok > 1) total_itl += t->out_tok - 1;
  }
  int64_t itl_cap = cfg->itl_cap > 0 ? cfg->itl_cap : ((int64_t)1 << 22);
  if ((rc = metrics_itl_init(&st.itl, total_itl < itl_cap ? total_itl : itl_cap))) goto fail;
  if ((rc = dispatch_init(&st.disp, cfg->dispatch, st.dp))) goto fail;
  for (int r = 0; r < st.dp; r++) {
    struct sim_replica *R = &st.rep[r];
    /* every request could wait on one replica (least-outstanding can pile them up) */
    if ((rc = sched_init(&R->sched, st.seqs, cfg->kv_blocks, cfg->engine.block_size,
                         cfg->engine.enable_prefix_caching, cfg->engine.max_num_seqs,
                         cfg->engine.max_num_batched_tokens, n)))
      goto fail;
    for (int s = 0; s < st.pp; s++)
      if ((rc = sched_batch_init(&R->slot[s], cfg->engine.max_num_seqs))) goto fail;
    R->stage_dur_ns = calloc((size_t)st.pp * st.pp, sizeof *R->stage_dur_ns);
    if (!R->stage_dur_ns) { rc = err_set(ERR_NOMEM, "sim: out of memory"); goto fail; }
    rng_seed(&R->rng, rng_derive(cfg->seed, (uint64_t)r));
  }
  /* In flight at once: one arrival (open loop) or N clients (closed loop; no more clients than
   * requests ever start), plus one stage event per micro-batch slot and one schedule event per
   * replica. */
  const int64_t clients = cfg->parallel < st.n ? cfg->parallel : st.n;
  int64_t cap = cfg->max_events > 0 ? cfg->max_events
                                    : 16 + (int64_t)st.dp * (st.pp + 1) + (cfg->mode == SIM_CLOSED_LOOP ? clients : 1);
  if ((rc = evq_init(&st.q, cap, "sim_config.max_events"))) goto fail;

  if (cfg->mode == SIM_CLOSED_LOOP) {
    for (int c = 0; c < cfg->parallel && st.next_arrival < st.n; c++)
      if ((rc = sim_push_arrival(&st))) goto fail;
  } else {
    if ((rc = sim_push_arrival(&st))) goto fail;
  }
  st.t_first_ns = cfg->mode == SIM_CLOSED_LOOP || st.n == 0 ? 0 : tr->reqs[0].arrival_ns;

  struct evq_event ev;
  while (evq_pop(&st.q, &ev)) {
    if (ev.type == EV_ARRIVAL) {
      rc = sim_arrival(&st, ev.obj);
    } else if (ev.type == EV_SCHEDULE) {
      st.rep[ev.obj].sched_pending = 0;
      rc = sim_try_schedule(&st, ev.obj);
    } else {
      int stage = ev.obj % st.pp, rest = ev.obj / st.pp;
      int slot = rest % st.pp, r = rest / st.pp;
      if (stage + 1 < st.pp)
        rc = sim_start_stage(&st, r, slot, stage + 1);
      else
        rc = sim_complete_batch(&st, r, slot);
    }
    if (rc) goto fail;
    st.t_last_ns = ev.t_ns;
  }
  res->counts.n_events = st.q.n_popped;
  res->counts.n_event_peak = st.q.peak;

  /* invariants: everyone left exactly once, nothing stuck, every KV block back */
  if (st.n_done != st.n) {
    rc = err_set(ERR_INTERNAL, "sim: %lld of %lld requests finished; the rest are stuck", (long long)st.n_done,
                 (long long)st.n);
    goto fail;
  }
  for (int r = 0; r < st.dp; r++) {
    struct sched *S = &st.rep[r].sched;
    if (S->kv.n_free != S->kv.n_blocks || S->n_running || S->w_n) {
      rc = err_set(ERR_INTERNAL, "sim: replica %d ends with %d of %d KV blocks free, %d running, %lld waiting", r,
                   S->kv.n_free, S->kv.n_blocks, S->n_running, (long long)S->w_n);
      goto fail;
    }
  }
  sim_fill_breakdown(&st);

  /* metrics read a compact view of the per-request results */
  struct metrics_req *mr = malloc((size_t)n * sizeof *mr);
  if (!mr) { rc = err_set(ERR_NOMEM, "sim: out of memory for metrics"); goto fail; }
  for (int64_t i = 0; i < st.n; i++) {
    const struct sim_req_result *o = &st.rq[i];
    mr[i] = (struct metrics_req){o->start_ns, o->first_tok_ns, o->penult_tok_ns, o->done_ns, o->in_tok,
                                 o->out_tok, o->ok};
  }
  int64_t conc = cfg->mode == SIM_CLOSED_LOOP ? cfg->parallel : 0;
  rc = metrics_compute(mr, st.n, &st.itl, conc, &cfg->slo, &res->metrics);
  free(mr);
  if (rc) goto fail;
  res->n_reqs = st.n;
  sim_state_free(&st);
  return ERR_OK;
fail:
  sim_state_free(&st);
  return rc;
}
