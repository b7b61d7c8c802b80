/* test_plan_search: the planner's pieces that need no simulator, against closed-form answers:
 * list and SLO parsing, the thread pool (every index once, lowest failure reported), the rate
 * search on evaluators whose SLO boundary is known exactly (rate factors within tolerance,
 * concurrencies exactly, both ends of the bracket), ranking and the Pareto frontier on
 * hand-made outcomes, and the fewest-GPU answer. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/progress.h"
#include "sim/plan.h"
#include "tests/check.h"

/* ---- fake evaluators ---- */

/* Open loop: TTFT p99 = base / (1 - load / cap) below cap, infinite above (an M/M/1-like knee).
 * Under ttft_p99 <= L the boundary is load* = cap * (1 - base / L). base and cap come from the
 * candidate's layout so different candidates have different answers. */
static double fake_base(const struct plan_cand *c) { return 0.1 * c->layout.pp; }
static double fake_cap(const struct plan_cand *c) { return 2.0 * c->layout.tp; }

static int fake_rate_eval(void *ctx, void *cs, const struct plan_cand *c, double load,
                          const struct plan_slo *slo, struct plan_metrics *m) {
  memset(m, 0, sizeof *m);
  m->n_req = m->n_done = 100;
  double cap = fake_cap(c);
  double ttft = load < cap ? fake_base(c) / (1 - load / cap) : INFINITY;
  for (int s = 0; s < PLAN_S_N; s++) m->q_s[PLAN_M_TTFT][s] = ttft;
  m->out_tok_s = 100 * load;
  if (ctx) atomic_fetch_add((_Atomic int *)ctx, 1);
  return ERR_OK;
}

/* Closed loop: TPOT p99 = 0.02 + 0.001 * clients * pp: under tpot_p99 <= L the largest
 * concurrency is floor((L - 0.02) / (0.001 pp)). */
static int fake_conc_eval(void *ctx, void *cs, const struct plan_cand *c, double load,
                          const struct plan_slo *slo, struct plan_metrics *m) {
  memset(m, 0, sizeof *m);
  m->n_req = m->n_done = 100;
  double tpot = 0.02 + 0.001 * load * c->layout.pp;
  for (int s = 0; s < PLAN_S_N; s++) m->q_s[PLAN_M_TPOT][s] = tpot;
  m->out_tok_s = load / tpot;
  return ERR_OK;
}

static int fake_fail_eval(void *ctx, void *cs, const struct plan_cand *c, double load,
                          const struct plan_slo *slo, struct plan_metrics *m) {
  return err_set(ERR_NOMEM, "fake pool ran dry at load %g (raise --knob)", load);
}

static struct plan_cand fake_cand(int tp, int pp) {
  struct plan_cand c;
  memset(&c, 0, sizeof c);
  c.layout = (struct layout){.tp = tp, .pp = pp, .dp = 1, .ep = 0};
  c.n_gpus = tp * pp;
  c.feasible = 1;
  return c;
}

/* ---- pool ---- */
struct pool_ctx {
  int *slot;
  _Atomic int calls;
};
static int pool_task(void *ctx, int i) {
  struct pool_ctx *p = ctx;
  p->slot[i] += i * i + 1; /* += catches an index run twice */
  atomic_fetch_add(&p->calls, 1);
  if (i == 37 || i == 91) return err_set(ERR_INPUT, "task %d failed", i);
  return ERR_OK;
}

static void test_parse(void) {
  int c[PLAN_MAX_GPU_COUNTS], n;
  CHECK(plan_space_parse_gpus("8", c, PLAN_MAX_GPU_COUNTS, &n) == ERR_OK && n == 1 && c[0] == 8);
  CHECK(plan_space_parse_gpus("1-4", c, PLAN_MAX_GPU_COUNTS, &n) == ERR_OK && n == 4 && c[0] == 1 &&
        c[3] == 4);
  CHECK(plan_space_parse_gpus("8,4,2-4", c, PLAN_MAX_GPU_COUNTS, &n) == ERR_OK && n == 4 &&
        c[0] == 2 && c[1] == 3 && c[2] == 4 && c[3] == 8);
  CHECK(plan_space_parse_gpus("0", c, PLAN_MAX_GPU_COUNTS, &n) == ERR_INPUT);
  CHECK(plan_space_parse_gpus("4-2", c, PLAN_MAX_GPU_COUNTS, &n) == ERR_INPUT);
  CHECK(plan_space_parse_gpus("4,", c, PLAN_MAX_GPU_COUNTS, &n) == ERR_INPUT);
  CHECK(plan_space_parse_gpus("x", c, PLAN_MAX_GPU_COUNTS, &n) == ERR_INPUT);
  CHECK(strstr(err_msg(), "--gpus") != NULL);
  CHECK(plan_space_parse_gpus("1-100", c, PLAN_MAX_GPU_COUNTS, &n) == ERR_INPUT);
  int v[PLAN_MAX_KNOB];
  CHECK(plan_space_parse_ints("--max-num-seqs", "128,256,512", v, PLAN_MAX_KNOB, &n) == ERR_OK &&
        n == 3 && v[2] == 512);
  CHECK(plan_space_parse_ints("--max-num-seqs", "128,128", v, PLAN_MAX_KNOB, &n) == ERR_INPUT);
  CHECK(plan_space_parse_ints("--max-num-seqs", "12x", v, PLAN_MAX_KNOB, &n) == ERR_INPUT);
  CHECK(strstr(err_msg(), "--max-num-seqs") != NULL);
  CHECK(plan_space_parse_onoff("--cuda-graphs", "on,off", v, &n) == ERR_OK && n == 2 && v[0] == 1 &&
        v[1] == 0);
  CHECK(plan_space_parse_onoff("--cuda-graphs", "on,on", v, &n) == ERR_INPUT);
  CHECK(plan_space_parse_onoff("--cuda-graphs", "yes", v, &n) == ERR_INPUT);

  struct plan_slo slo;
  CHECK(plan_slo_parse("ttft_p99=2s,tpot_p99=100ms", &slo) == ERR_OK && slo.n == 2);
  CHECK(slo.t[0].metric == PLAN_M_TTFT && slo.t[0].stat == PLAN_S_P99);
  CHECK_NEAR(slo.t[0].limit_s, 2.0, 1e-12);
  CHECK(slo.t[1].metric == PLAN_M_TPOT);
  CHECK_NEAR(slo.t[1].limit_s, 0.1, 1e-12);
  CHECK(plan_slo_parse("e2e_mean=500us", &slo) == ERR_OK && slo.t[0].metric == PLAN_M_LATENCY &&
        slo.t[0].stat == PLAN_S_MEAN);
  CHECK_NEAR(slo.t[0].limit_s, 5e-4, 1e-15);
  /* a bare number is milliseconds, as in simulate/bench --slo and vLLM's --goodput */
  CHECK(plan_slo_parse("tpot_p99=100", &slo) == ERR_OK && fabs(slo.t[0].limit_s - 0.1) < 1e-12);
  CHECK(plan_slo_parse("ttft_p99=2s", &slo) == ERR_OK && fabs(slo.t[0].limit_s - 2.0) < 1e-12);
  CHECK(plan_slo_parse("ttft_p99=2h", &slo) == ERR_INPUT);
  CHECK(plan_slo_parse("ttft_p42=2", &slo) == ERR_INPUT);
  CHECK(plan_slo_parse("itl=2", &slo) == ERR_INPUT);
  CHECK(plan_slo_parse("ttft_p99=-1", &slo) == ERR_INPUT);
  CHECK(plan_slo_parse("ttft_p99=2s,tpot_p90=0.05s", &slo) == ERR_OK);
  double thr[PLAN_M_N];
  plan_slo_thresholds(&slo, thr);
  CHECK(thr[PLAN_M_TTFT] == 2 && thr[PLAN_M_TPOT] == 0.05 && thr[PLAN_M_LATENCY] == 0);
  struct plan_metrics m;
  memset(&m, 0, sizeof m);
  m.n_req = m.n_done = 10;
  m.q_s[PLAN_M_TTFT][PLAN_S_P99] = 2.0;
  m.q_s[PLAN_M_TPOT][PLAN_S_P90] = 0.05;
  CHECK(plan_slo_met(&slo, &m)); /* limits are inclusive */
  m.q_s[PLAN_M_TPOT][PLAN_S_P90] = NAN;
  CHECK(!plan_slo_met(&slo, &m));
  m.q_s[PLAN_M_TPOT][PLAN_S_P90] = 0.01;
  m.n_done = 9; /* a lost request fails any SLO */
  CHECK(!plan_slo_met(&slo, &m));
  int obj;
  CHECK(plan_objective_parse("goodput", &obj) == ERR_OK && obj == PLAN_OBJ_GOODPUT);
  CHECK(plan_objective_parse("speed", &obj) == ERR_INPUT);
}

static void test_pool(void) {
  const int n = 200;
  for (int th = 1; th <= 8; th *= 2) {
    struct pool_ctx p = {.slot = calloc(n, sizeof(int))};
    atomic_init(&p.calls, 0);
    int rc = plan_pool_run(n, th, pool_task, &p);
    CHECK_MSG(rc == ERR_INPUT, "threads %d rc %d", th, rc);
    CHECK_MSG(strcmp(err_msg(), "task 37 failed") == 0, "threads %d: the message must be the "
              "lowest failure's: %s", th, err_msg());
    CHECK(atomic_load(&p.calls) == n);
    int bad = 0;
    for (int i = 0; i < n; i++) bad += p.slot[i] != i * i + 1;
    CHECK_MSG(bad == 0, "threads %d: %d slots wrong", th, bad);
    free(p.slot);
  }
  CHECK(plan_pool_run(0, 4, pool_task, NULL) == ERR_OK);
  CHECK(plan_pool_ncpu() >= 1);
}

static void test_rate_search(void) {
  struct plan_opts o;
  plan_opts_default(&o);
  CHECK(plan_slo_parse("ttft_p99=1s", &o.slo) == ERR_OK);
  _Atomic int calls;
  atomic_init(&calls, 0);
  struct plan_evaluator ev = {.eval = fake_rate_eval, .ctx = (void *)&calls,
                              .load_kind = PLAN_LOAD_RATE, .load_nominal = 1};
  /* boundaries on both sides of the nominal load: tp=1 -> cap 2, base 0.1 -> 1.8; tp=4, pp=2 ->
   * cap 8, base 0.2 -> 6.4; tp=1, pp=5 -> cap 2, base 0.5 -> 1.0 exactly at nominal */
  int tps[] = {1, 4, 1, 2}, pps[] = {1, 2, 5, 9};
  for (int k = 0; k < 4; k++) {
    struct plan_cand c = fake_cand(tps[k], pps[k]);
    double want = fake_cap(&c) * (1 - fake_base(&c) / 1.0);
    struct plan_outcome out;
    atomic_store(&calls, 0);
    CHECK(plan_search_candidate(&ev, &c, &o, &out) == ERR_OK);
    CHECK(out.n_sims == atomic_load(&calls));
    CHECK_MSG(out.rate_status == PLAN_RATE_FOUND, "case %d status %d", k, out.rate_status);
    /* lo always meets the SLO, so it never overshoots; bisection gets within tol */
    CHECK_MSG(out.max_load <= want * (1 + 1e-12) && out.max_load >= want * (1 - o.rate_tol),
              "case %d: max_load %g want %g", k, out.max_load, want);
    CHECK(out.m_max.q_s[PLAN_M_TTFT][PLAN_S_P99] <= 1.0);
    CHECK(out.slo_ok == (want >= 1.0));
    /* deterministic: the same candidate gives the same outcome bytes */
    struct plan_outcome again;
    CHECK(plan_search_candidate(&ev, &c, &o, &again) == ERR_OK);
    CHECK(memcmp(&out, &again, sizeof out) == 0);
  }
  /* below the bracket: base 0.1 * pp with pp = 20 never meets 1 s */
  struct plan_cand slow = fake_cand(1, 20);
  struct plan_outcome out;
  CHECK(plan_search_candidate(&ev, &slow, &o, &out) == ERR_OK);
  CHECK(out.rate_status == PLAN_RATE_BELOW_MIN && out.max_load == 0 && !out.slo_ok);
  /* at the cap: tp = 1000 has cap 2000 > load_max 64 */
  struct plan_cand fast = fake_cand(1000, 1);
  CHECK(plan_search_candidate(&ev, &fast, &o, &out) == ERR_OK);
  CHECK(out.rate_status == PLAN_RATE_AT_CAP && out.max_load == o.load_max);
  /* no SLO: one simulation, no search */
  struct plan_opts none = o;
  none.slo.n = 0;
  CHECK(plan_search_candidate(&ev, &slow, &none, &out) == ERR_OK);
  CHECK(out.n_sims == 1 && out.rate_status == PLAN_RATE_NONE && out.slo_ok);

  /* closed loop: integer answers exactly */
  struct plan_evaluator cev = {.eval = fake_conc_eval, .load_kind = PLAN_LOAD_CONCURRENCY,
                               .load_nominal = 10};
  struct plan_opts co;
  plan_opts_default(&co);
  co.load_min = 1;
  co.load_max = 1000;
  CHECK(plan_slo_parse("tpot_p99=0.1s", &co.slo) == ERR_OK);
  for (int pp = 1; pp <= 8; pp++) {
    struct plan_cand c = fake_cand(1, pp);
    /* the largest n with 0.02 + 0.001 n pp <= 0.1, counted with the evaluator's arithmetic */
    int want = 0;
    while (0.02 + 0.001 * (want + 1) * pp <= 0.1) want++;
    CHECK(plan_search_candidate(&cev, &c, &co, &out) == ERR_OK);
    CHECK_MSG(out.rate_status == PLAN_RATE_FOUND && out.max_load == want,
              "pp %d: max concurrency %g want %d (status %d)", pp, out.max_load, want, out.rate_status);
  }
  /* an evaluator failure is recorded with its message */
  struct plan_evaluator fev = {.eval = fake_fail_eval, .load_kind = PLAN_LOAD_RATE, .load_nominal = 1};
  struct plan_cand c1 = fake_cand(1, 1);
  CHECK(plan_search_candidate(&fev, &c1, &o, &out) == ERR_NOMEM);
  CHECK(out.status == ERR_NOMEM && strstr(out.err, "raise --knob") != NULL);
}

/* A hand-made result: five candidates with known metrics. */
static void test_rank(void) {
  struct plan_result r;
  memset(&r, 0, sizeof r);
  plan_opts_default(&r.opts);
  r.opts.gpu_hour_cost = 3.6; /* $0.001 per GPU-second */
  CHECK(plan_slo_parse("tpot_p99=0.05s", &r.opts.slo) == ERR_OK);
  r.n_cand = 6;
  r.cand = calloc((size_t)r.n_cand, sizeof *r.cand);
  r.out = calloc((size_t)r.n_cand, sizeof *r.out);
  /* id: gpus, tok/s, tpot p99, ttft p99, goodput */
  const struct {
    int gpus, feasible;
    double tput, tpot, ttft, good;
  } t[] = {
      {8, 1, 800, 0.040, 1.0, 3.0},  /* 100/GPU, tpot .040 */
      {8, 1, 960, 0.060, 0.5, 2.0},  /* 120/GPU, tpot .060: frontier (best throughput) */
      {4, 1, 320, 0.030, 2.0, 1.0},  /* 80/GPU, tpot .030: frontier (best tpot) */
      {4, 1, 400, 0.045, 0.8, 1.5},  /* 100/GPU, tpot .045: dominated by id 0 (same tput) */
      {8, 0, 0, 0, 0, 0},            /* rejected */
      {4, 1, 440, 0.040, 0.9, 1.5},  /* 110/GPU, tpot .040: frontier, dominates id 0 */
  };
  for (int i = 0; i < r.n_cand; i++) {
    r.cand[i].id = i;
    r.cand[i].n_gpus = t[i].gpus;
    r.cand[i].feasible = t[i].feasible;
    if (!t[i].feasible) continue;
    r.out[i].evaluated = 1;
    r.out[i].m.n_req = r.out[i].m.n_done = 10;
    r.out[i].m.out_tok_s = t[i].tput;
    r.out[i].m.q_s[PLAN_M_TPOT][PLAN_S_P99] = t[i].tpot;
    r.out[i].m.q_s[PLAN_M_TTFT][PLAN_S_P99] = t[i].ttft;
    r.out[i].m.goodput_req_s = t[i].good;
    r.out[i].slo_ok = plan_slo_met(&r.opts.slo, &r.out[i].m);
  }
  CHECK(plan_rank(&r) == ERR_OK);
  CHECK(r.n_ranked == 5);
  int want_rank[] = {1, 5, 0, 3, 2}; /* by tok/s/GPU: 120, 110, 100 (id 0 before 3), 100, 80 */
  for (int i = 0; i < 5 && i < r.n_ranked; i++)
    CHECK_MSG(r.ranked[i] == want_rank[i], "rank %d: id %d want %d", i, r.ranked[i], want_rank[i]);
  CHECK(r.best[PLAN_OBJ_TPUT_GPU] == 1);
  CHECK(r.best[PLAN_OBJ_TPOT] == 2);
  CHECK(r.best[PLAN_OBJ_TTFT] == 1);
  CHECK(r.best[PLAN_OBJ_GOODPUT] == 0);
  CHECK(r.best[PLAN_OBJ_RATE] == -1); /* nobody searched */
  /* cost per million output tokens = gpus * $0.001/s / (tok/s) * 1e6: lowest at 120 tok/s/GPU */
  CHECK(r.best[PLAN_OBJ_COST] == 1);
  CHECK_NEAR(plan_rank_value(&r, 1, PLAN_OBJ_COST), 8 * 0.001 / 960 * 1e6, 1e-9);
  CHECK(isnan(plan_rank_value(&r, 4, PLAN_OBJ_TPUT_GPU)));
  /* frontier: highest throughput first, each with strictly lower TPOT than the previous */
  int want_par[] = {1, 5, 2};
  CHECK_MSG(r.n_pareto == 3, "frontier has %d points", r.n_pareto);
  for (int i = 0; i < 3 && i < r.n_pareto; i++) CHECK(r.pareto[i] == want_par[i]);
  /* fewest GPUs under tpot_p99 <= 0.05: ids 2, 3, 5 have 4 GPUs; 5 has the best tok/s/GPU */
  plan_search_fewest_gpus(&r);
  CHECK(r.fewest_gpus == 4 && r.fewest_cand == 5);
  /* ranking by TPOT instead */
  r.opts.objective = PLAN_OBJ_TPOT;
  CHECK(plan_rank(&r) == ERR_OK);
  CHECK(r.ranked[0] == 2 && r.ranked[r.n_ranked - 1] == 1);
  free(r.cand);
  free(r.out);
  free(r.ranked);
  free(r.pareto);
}

static void test_progress(void) {
  struct progress p;
  progress_start(&p, "plan", "candidates", 10, 0);
  for (int i = 0; i < 4; i++) progress_add(&p, 1);
  char line[256];
  progress_format(&p, p.t_start_ns + 2000000000LL, line, sizeof line);
  CHECK_MSG(strstr(line, "4/10 candidates") && strstr(line, "[############..................]") &&
                strstr(line, "eta 3 s"),
            "%s", line);
  progress_add_total(&p, 10);
  progress_format(&p, p.t_start_ns, line, sizeof line);
  CHECK_MSG(strstr(line, "4/20"), "%s", line);
  progress_end(&p);
  progress_end(&p); /* harmless twice */
}

int main(void) {
  test_parse();
  test_pool();
  test_rate_search();
  test_rank();
  test_progress();
  return check_report("test_plan_search");
}
