/* test_sim: the simulator loop with the constant cost model — exact hand-computed timings for
 * one request (plain, chunked, PP=2 with chunks following each other through the pipeline),
 * invariants under KV pressure (every request finishes once, blocks all return, time is
 * monotone), closed-loop admission, DP dispatch, and determinism. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "common/rng.h"
#include "sim/dispatch.h"
#include "sim/sim.h"

#define F_NS 1000000   /* constant model: fixed cost per stage-step */
#define C_NS 10000     /* per token */

static void one_req_trace(struct trace *t, int in_tok, int out_tok) {
  trace_init(t);
  struct trace_req r = {.arrival_ns = 0, .in_tok = in_tok, .out_tok = out_tok, .prefix_id = -1};
  trace_push(t, &r);
}

static int run_one(int in_tok, int out_tok, int pp, int budget, struct sim_req_result *out) {
  struct cost_model cm;
  cost_constant_init(&cm, F_NS, C_NS);
  struct sim_config cfg;
  sim_config_default(&cfg);
  cfg.layout.pp = pp;
  cfg.engine.max_num_batched_tokens = budget;
  cfg.kv_blocks = 10000;
  cfg.cost = &cm;
  cfg.check_invariants = 1;
  struct trace t;
  one_req_trace(&t, in_tok, out_tok);
  struct sim_result res = {.reqs = out};
  int rc = sim_run(&cfg, &t, &res);
  if (rc) fprintf(stderr, "sim_run: %s\n", err_msg());
  trace_free(&t);
  cost_destroy(&cm);
  return rc;
}

static void test_one_request(void) {
  struct sim_req_result o;
  /* PP=1, prompt fits the budget: TTFT = one step over 100 tokens, then 4 decodes */
  CHECK(run_one(100, 5, 1, 2048, &o) == 0);
  int64_t step_p = F_NS + 100 * C_NS, step_d = F_NS + C_NS;
  CHECK_MSG(o.first_tok_ns == step_p, "ttft %lld want %lld", (long long)o.first_tok_ns, (long long)step_p);
  CHECK_MSG(o.done_ns == step_p + 4 * step_d, "latency %lld want %lld", (long long)o.done_ns,
            (long long)(step_p + 4 * step_d));
  CHECK(o.penult_tok_ns == step_p + 3 * step_d);
  CHECK(o.ok == 1 && o.out_tok == 5 && o.n_preempt == 0);

  /* chunked prefill: 5000 tokens in chunks of 2048, 2048, 904 */
  CHECK(run_one(5000, 2, 1, 2048, &o) == 0);
  int64_t ttft = 3 * (int64_t)F_NS + 5000LL * C_NS;
  CHECK_MSG(o.first_tok_ns == ttft, "chunked ttft %lld want %lld", (long long)o.first_tok_ns, (long long)ttft);
  CHECK(o.done_ns == ttft + step_d);

  /* PP=2: every step crosses both stages */
  CHECK(run_one(100, 5, 2, 2048, &o) == 0);
  CHECK_MSG(o.first_tok_ns == 2 * step_p, "pp2 ttft %lld want %lld", (long long)o.first_tok_ns, (long long)(2 * step_p));
  CHECK(o.done_ns == 2 * step_p + 4 * 2 * step_d);

  /* PP=2 with chunks: chunk 2 enters stage 0 right behind chunk 1 (vLLM advances
   * num_computed_tokens at schedule time); chunk 3 waits for a free micro-batch slot */
  CHECK(run_one(5000, 1, 2, 2048, &o) == 0);
  int64_t c1 = F_NS + 2048LL * C_NS, c3 = F_NS + 904LL * C_NS;
  int64_t b1_end = 2 * c1;               /* chunk 1: stage 0 then stage 1 */
  int64_t b2_s1_end = c1 + c1 + c1;      /* chunk 2: stage 0 [c1,2c1], stage 1 [2c1,3c1] */
  int64_t b3_s0_end = b1_end + c3;       /* chunk 3 scheduled when batch 1 returns */
  int64_t b3_end = (b3_s0_end > b2_s1_end ? b3_s0_end : b2_s1_end) + c3;
  CHECK_MSG(o.first_tok_ns == b3_end, "pp2 chunked ttft %lld want %lld", (long long)o.first_tok_ns, (long long)b3_end);
  CHECK(o.done_ns == o.first_tok_ns);    /* one output token */
}

/* A random open-loop workload through a small KV pool: preemptions must happen and every
 * invariant must hold. */
static void make_random_trace(struct trace *t, int n, uint64_t seed) {
  trace_init(t);
  struct rng r;
  rng_seed(&r, seed);
  int64_t at = 0;
  for (int i = 0; i < n; i++) {
    at += (int64_t)rng_exp(&r, 2e6);
    struct trace_req q = {.arrival_ns = at, .in_tok = (int32_t)rng_range(&r, 1, 600),
                          .out_tok = (int32_t)rng_range(&r, 1, 300), .prefix_id = -1};
    trace_push(t, &q);
  }
}

/* An open-loop run on the constant cost model cm at pipeline depth pp, else sim_config_default. */
static void open_loop_cfg(struct sim_config *cfg, const struct cost_model *cm, int pp) {
  sim_config_default(cfg);
  cfg->mode = SIM_OPEN_LOOP;
  cfg->layout.pp = pp;
  cfg->cost = cm;
}

static void test_invariants_under_pressure(void) {
  struct trace t;
  make_random_trace(&t, 400, 7);
  struct cost_model cm;
  cost_constant_init(&cm, F_NS, C_NS);
  for (int pp = 1; pp <= 3; pp++) {
    struct sim_config cfg;
    open_loop_cfg(&cfg, &cm, pp);
    cfg.layout.dp = 2;
    cfg.engine.max_num_seqs = 32;
    cfg.engine.max_num_batched_tokens = 512;
    cfg.kv_blocks = 120; /* 1920 tokens: far less than 32 requests need */
    cfg.check_invariants = 1;
    struct sim_req_result *o = calloc((size_t)t.n, sizeof *o);
    struct sim_result res = {.reqs = o};
    int rc = sim_run(&cfg, &t, &res);
    CHECK_MSG(rc == 0, "pp=%d: %s", pp, err_msg());
    int64_t ok = 0, toks = 0;
    for (int64_t i = 0; i < t.n; i++) {
      ok += o[i].ok;
      toks += o[i].out_tok;
      CHECK_MSG(!o[i].ok || o[i].out_tok == t.reqs[i].out_tok, "req %lld made %d of %d tokens", (long long)i,
                o[i].out_tok, t.reqs[i].out_tok);
      CHECK_MSG(!o[i].ok || (o[i].first_tok_ns >= o[i].start_ns && o[i].done_ns >= o[i].first_tok_ns),
                "req %lld times start %lld first %lld done %lld", (long long)i, (long long)o[i].start_ns,
                (long long)o[i].first_tok_ns, (long long)o[i].done_ns);
    }
    /* the peak of a 600+300 request is 57 blocks: everything fits alone, nothing is rejected */
    CHECK_MSG(ok == t.n, "pp=%d: %lld of %lld succeeded", pp, (long long)ok, (long long)t.n);
    CHECK(res.counts.n_tokens == toks);
    CHECK_MSG(res.counts.n_preemptions > 0, "pp=%d: a 120-block pool must preempt", pp);
    CHECK(res.counts.n_recompute_tokens > 0);
    /* busy + bubble + idle account for every stage's span */
    CHECK(res.bd.busy_ns + res.bd.bubble_ns + res.bd.idle_ns == res.bd.stage_span_ns);
    int64_t terms = 0;
    for (int k = 0; k < COST_N_TERMS; k++) terms += res.bd.term_ns[k];
    CHECK_MSG(terms == res.bd.busy_ns, "terms %lld busy %lld", (long long)terms, (long long)res.bd.busy_ns);
    CHECK(res.bd.n_gpus == 2 * pp);
    free(o);
  }
  cost_destroy(&cm);
  trace_free(&t);
}

/* Closed loop: N clients; the next request starts exactly when one finishes. */
static void test_closed_loop(void) {
  struct trace t;
  trace_init(&t);
  for (int i = 0; i < 6; i++) {
    struct trace_req q = {.arrival_ns = 0, .in_tok = 50, .out_tok = 3, .prefix_id = -1};
    trace_push(&t, &q);
  }
  struct cost_model cm;
  cost_constant_init(&cm, F_NS, C_NS);
  struct sim_config cfg;
  sim_config_default(&cfg);
  cfg.parallel = 2;
  cfg.kv_blocks = 1000;
  cfg.cost = &cm;
  struct sim_req_result o[6];
  struct sim_result res = {.reqs = o};
  CHECK(sim_run(&cfg, &t, &res) == 0);
  /* requests 0 and 1 run together: prefill of 100 tokens, then 2 decodes of 2 tokens */
  int64_t p2 = F_NS + 100 * C_NS, d2 = F_NS + 2 * C_NS;
  CHECK(o[0].start_ns == 0 && o[1].start_ns == 0);
  CHECK_MSG(o[0].done_ns == p2 + 2 * d2, "done %lld want %lld", (long long)o[0].done_ns, (long long)(p2 + 2 * d2));
  CHECK(o[2].start_ns == o[0].done_ns && o[3].start_ns == o[1].done_ns);
  CHECK(res.metrics.es.concurrency == 2 && res.metrics.es.succeed == 6);
  /* evalscope time: last completion - start of the first completion */
  CHECK_NEAR(res.metrics.es.time_s, (double)o[5].done_ns * 1e-9, 1e-12);
  cost_destroy(&cm);
  trace_free(&t);
}

static void test_dispatch(void) {
  struct dispatch d;
  CHECK(dispatch_init(&d, DISPATCH_ROUND_ROBIN, 3) == 0);
  CHECK(dispatch_pick(&d) == 0 && dispatch_pick(&d) == 1 && dispatch_pick(&d) == 2 && dispatch_pick(&d) == 0);
  CHECK(dispatch_init(&d, DISPATCH_LEAST_OUTSTANDING, 3) == 0);
  CHECK(dispatch_pick(&d) == 0 && dispatch_pick(&d) == 1 && dispatch_pick(&d) == 2);
  dispatch_done(&d, 1);
  CHECK(dispatch_pick(&d) == 1);  /* the only one with 0 outstanding */
  CHECK(dispatch_pick(&d) == 0);  /* all at 1: lowest index */
  CHECK(dispatch_parse("lor") == DISPATCH_LEAST_OUTSTANDING && dispatch_parse("x") == -1);
  CHECK(dispatch_init(&d, 0, 0) != 0);
}

static void test_determinism_and_errors(void) {
  struct trace t;
  make_random_trace(&t, 300, 11);
  struct cost_model cm;
  cost_constant_init(&cm, F_NS, C_NS);
  struct sim_config cfg;
  open_loop_cfg(&cfg, &cm, 2);
  cfg.kv_blocks = 200;
  struct sim_req_result *a = calloc((size_t)t.n, sizeof *a), *b = calloc((size_t)t.n, sizeof *b);
  struct sim_result ra = {.reqs = a}, rb = {.reqs = b};
  CHECK(sim_run(&cfg, &t, &ra) == 0);
  CHECK(sim_run(&cfg, &t, &rb) == 0);
  CHECK(memcmp(a, b, (size_t)t.n * sizeof *a) == 0);
  CHECK(memcmp(&ra.metrics, &rb.metrics, sizeof ra.metrics) == 0);
  /* a pool of 2 blocks (32 tokens): requests whose prompt + output - 1 exceed it are rejected
   * at arrival, the rest run; none hangs */
  cfg.kv_blocks = 2;
  int64_t too_big = 0;
  for (int64_t i = 0; i < t.n; i++) too_big += t.reqs[i].in_tok + t.reqs[i].out_tok - 1 > 32;
  CHECK(too_big > 0 && too_big < t.n);
  CHECK(sim_run(&cfg, &t, &ra) == 0);
  CHECK_MSG(ra.metrics.es.failed == too_big, "failed %lld want %lld", (long long)ra.metrics.es.failed, (long long)too_big);
  /* an empty prompt or zero output tokens (a failed row kept by a reader) is a failed request,
   * not an error of the run */
  cfg.kv_blocks = 200;
  t.reqs[3].in_tok = 0;
  t.reqs[7].out_tok = 0;
  CHECK(sim_run(&cfg, &t, &ra) == 0);
  CHECK_MSG(ra.metrics.es.failed == 2 && ra.reqs[3].ok == 0 && ra.reqs[7].ok == 0 && ra.reqs[8].ok == 1,
            "failed %lld", (long long)ra.metrics.es.failed);
  t.reqs[3].in_tok = 10;
  t.reqs[7].out_tok = 10;
  /* an unsorted open-loop trace is an input error naming the requests */
  cfg.kv_blocks = 200;
  t.reqs[5].arrival_ns = 0;
  CHECK(sim_run(&cfg, &t, &ra) == ERR_INPUT);
  CHECK(strstr(err_msg(), "sorted") != NULL);
  /* a heap too small names its knob */
  t.reqs[5].arrival_ns = t.reqs[4].arrival_ns;
  cfg.max_events = 1;
  CHECK(sim_run(&cfg, &t, &ra) == ERR_NOMEM);
  CHECK(strstr(err_msg(), "max_events") != NULL);
  free(a);
  free(b);
  cost_destroy(&cm);
  trace_free(&t);
}

/* Reentrancy: four threads run the same simulation at once (the planner's use) and must each get
 * exactly the single-threaded result. */
struct thread_job {
  const struct sim_config *cfg;
  const struct trace *t;
  struct sim_req_result *out;
  struct metrics m;
  int rc;
};

static void *thread_run(void *arg) {
  struct thread_job *j = arg;
  struct sim_result res = {.reqs = j->out};
  j->rc = sim_run(j->cfg, j->t, &res);
  memcpy(&j->m, &res.metrics, sizeof j->m); /* padding included, for memcmp */
  return NULL;
}

static void test_threads(void) {
  struct trace t;
  make_random_trace(&t, 300, 21);
  struct cost_model cm;
  cost_constant_init(&cm, F_NS, C_NS);
  struct sim_config cfg;
  open_loop_cfg(&cfg, &cm, 2);
  cfg.layout.dp = 3;
  cfg.dispatch = DISPATCH_LEAST_OUTSTANDING;
  cfg.kv_blocks = 100;
  struct thread_job ref = {.cfg = &cfg, .t = &t, .out = calloc((size_t)t.n, sizeof(struct sim_req_result))};
  thread_run(&ref);
  CHECK(ref.rc == 0);
  struct thread_job jobs[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (struct thread_job){.cfg = &cfg, .t = &t, .out = calloc((size_t)t.n, sizeof(struct sim_req_result)), .rc = -1};
    CHECK(pthread_create(&th[i], NULL, thread_run, &jobs[i]) == 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK(jobs[i].rc == 0);
    CHECK_MSG(memcmp(jobs[i].out, ref.out, (size_t)t.n * sizeof *ref.out) == 0, "thread %d differs", i);
    CHECK(memcmp(&jobs[i].m, &ref.m, sizeof ref.m) == 0);
    free(jobs[i].out);
  }
  free(ref.out);
  cost_destroy(&cm);
  trace_free(&t);
}

/* Requests of 4 prefix groups sharing 512-token prompt prefixes: with prefix caching the cache
 * serves prompt tokens, fewer are computed, TTFT drops; invariants hold either way. */
static void test_prefix_caching(void) {
  struct trace t;
  trace_init(&t);
  struct rng r;
  rng_seed(&r, 5);
  int64_t at = 0;
  for (int i = 0; i < 200; i++) {
    at += (int64_t)rng_exp(&r, 20e6);
    struct trace_req q = {.arrival_ns = at, .in_tok = 512 + (int32_t)rng_range(&r, 1, 300),
                          .out_tok = (int32_t)rng_range(&r, 1, 50), .prefix_id = (int32_t)(i % 4), .prefix_tok = 512};
    trace_push(&t, &q);
  }
  struct cost_model cm;
  cost_constant_init(&cm, F_NS, C_NS);
  struct sim_result res[2];
  for (int caching = 0; caching <= 1; caching++) {
    struct sim_config cfg;
    open_loop_cfg(&cfg, &cm, 1);
    cfg.engine.enable_prefix_caching = caching;
    cfg.kv_blocks = 400;
    cfg.check_invariants = 1;
    res[caching] = (struct sim_result){0};
    int rc = sim_run(&cfg, &t, &res[caching]);
    CHECK_MSG(rc == 0, "caching=%d: %s", caching, err_msg());
    CHECK(res[caching].metrics.es.succeed == t.n);
  }
  CHECK(res[0].counts.n_cached_tokens == 0);
  /* every request after the first of its group can hit its 32 shared blocks */
  CHECK_MSG(res[1].counts.n_cached_tokens >= (t.n - 4) * 512 * 9 / 10, "cached %lld",
            (long long)res[1].counts.n_cached_tokens);
  CHECK(res[1].counts.n_prefill_tokens + res[1].counts.n_cached_tokens ==
        res[0].counts.n_prefill_tokens + res[0].counts.n_cached_tokens);
  CHECK(res[1].metrics.es.avg_ttft_s < res[0].metrics.es.avg_ttft_s);
  cost_destroy(&cm);
  trace_free(&t);
}

int main(void) {
  test_one_request();
  test_prefix_caching();
  test_invariants_under_pressure();
  test_closed_loop();
  test_dispatch();
  test_determinism_and_errors();
  test_threads();
  return check_report("test_sim");
}
