/* test_plan: the planner end to end on the real specs, layout rules and simulator.
 *
 * - The seed's space (Qwen3-235B GPTQ-Int4 on 8x A100 40GB PCIe): the enumeration has every
 *   TP x PP x DP x EP point, and TP=8 without expert parallel is rejected with vLLM's error.
 * - Known answers under the constant cost model (every stage-step costs F + P * tokens): with
 *   one client at a time, a token needs one step on each of the pp stages, so mean TPOT is exactly
 *   pp * (F + P) and mean TTFT pp * (F + P * prompt), whatever TP, DP or EP; the best TPOT is
 *   therefore the first feasible PP=1 candidate, and the fewest GPUs under a TPOT SLO between
 *   1x and 2x (F + P) is the smallest count with a feasible PP=1 layout.
 * - Thread-count independence: the whole report (JSON and table) of a search with an SLO and
 *   the rate search is byte-identical on 1, 2 and 4 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sim/cli_args.h"
#include "sim/cost_roofline.h"
#include "sim/plan.h"
#include "tests/check.h"
#include "traces/gen.h"
#include "traces/trace.h"

#define F_NS 5000000LL /* 5 ms per stage-step */
#define P_NS 100000LL  /* 0.1 ms per token */

static int space_init(struct plan_space *s, const struct model_spec *m, const char *hw_list[],
                      int n_hw, const char *gpus) {
  memset(s, 0, sizeof *s);
  struct cli_args a;
  cli_args_init(&a);
  for (int i = 0; i < n_hw; i++) {
    int rc = hw_load(hw_list[i], &s->hw[i]);
    if (rc) return rc;
    cli_args_engine(&a, m, &s->hw[i], &s->engine[i]);
  }
  s->n_hw = n_hw;
  return plan_space_parse_gpus(gpus, s->gpu_counts, PLAN_MAX_GPU_COUNTS, &s->n_gpu_counts);
}

static int find_cand(const struct plan_cand *c, int n, int tp, int pp, int dp, int ep) {
  for (int i = 0; i < n; i++)
    if (c[i].layout.tp == tp && c[i].layout.pp == pp && c[i].layout.dp == dp && c[i].layout.ep == ep)
      return i;
  return -1;
}

static void test_seed_space(void) {
  struct model_spec m;
  struct plan_space *s = calloc(1, sizeof *s);
  const char *hw[] = {"a100-40g-pcie"};
  CHECK(model_load("qwen3-235b-a22b-gptq-int4", &m) == ERR_OK);
  CHECK(space_init(s, &m, hw, 1, "8") == ERR_OK);
  struct plan_cand *c = NULL;
  int n = 0;
  CHECK(plan_space_enumerate(s, &m, 7, &c, &n) == ERR_OK);
  /* (tp, pp, dp) with tp * pp * dp = 8: 10 triples; EP on each, except where tp * dp = 1 (PP=8,
   * where EP over one rank is the same deployment) */
  CHECK_MSG(n == 19, "%d candidates", n);
  int tp8 = find_cand(c, n, 8, 1, 1, 0), ep8 = find_cand(c, n, 8, 1, 1, 1);
  CHECK(tp8 >= 0 && ep8 >= 0 && find_cand(c, n, 1, 8, 1, 1) < 0);
  if (tp8 >= 0) {
    CHECK(!c[tp8].feasible && c[tp8].verdict.n_fails > 0);
    int named = 0;
    for (int q = 0; q < c[tp8].verdict.n_fails; q++)
      named |= strstr(c[tp8].verdict.fails[q].detail, "size_k must divisible by BLOCK_SIZE_K") != NULL;
    CHECK_MSG(named, "TP=8 rejection should quote vLLM's error: %s", c[tp8].verdict.fails[0].detail);
  }
  if (ep8 >= 0) CHECK(c[ep8].feasible);
  if (tp8 >= 0 && find_cand(c, n, 4, 2, 1, 0) >= 0) CHECK(c[find_cand(c, n, 4, 2, 1, 0)].feasible);
  /* seeds: distinct per candidate, and a candidate keeps its seed in a larger space */
  for (int i = 1; i < n; i++) CHECK(c[i].seed != c[i - 1].seed);
  uint64_t seed_ep8 = ep8 >= 0 ? c[ep8].seed : 0;
  free(c);

  /* the acceptance grid: 3 x 3 knobs, innermost, in flag order */
  s->n_seqs = 3;
  s->seqs[0] = 128, s->seqs[1] = 256, s->seqs[2] = 512;
  s->n_mbt = 3;
  s->mbt[0] = 2048, s->mbt[1] = 4096, s->mbt[2] = 8192;
  CHECK(plan_space_enumerate(s, &m, 7, &c, &n) == ERR_OK);
  CHECK_MSG(n == 19 * 9, "%d candidates", n);
  CHECK(c[0].engine.max_num_seqs == 128 && c[0].engine.max_num_batched_tokens == 2048);
  CHECK(c[1].engine.max_num_seqs == 128 && c[1].engine.max_num_batched_tokens == 4096);
  CHECK(c[3].engine.max_num_seqs == 256 && c[8].engine.max_num_batched_tokens == 8192);
  for (int i = 0; i < n; i++) CHECK(c[i].id == i && c[i].n_gpus == 8);
  s->n_seqs = s->n_mbt = 0;
  free(c);
  CHECK(plan_space_enumerate(s, &m, 7, &c, &n) == ERR_OK);
  s->gpu_counts[0] = 4, s->gpu_counts[1] = 8, s->n_gpu_counts = 2;
  struct plan_cand *c2 = NULL;
  int n2 = 0;
  CHECK(plan_space_enumerate(s, &m, 7, &c2, &n2) == ERR_OK);
  int ep8b = -1;
  for (int i = 0; i < n2; i++)
    if (c2[i].n_gpus == 8 && c2[i].layout.tp == 8 && c2[i].layout.ep) ep8b = i;
  CHECK(ep8b >= 0 && c2[ep8b].seed == seed_ep8);
  /* pinning -tp 4 keeps only TP=4 points */
  s->tp = 4;
  free(c);
  CHECK(plan_space_enumerate(s, &m, 7, &c, &n) == ERR_OK);
  for (int i = 0; i < n; i++) CHECK(c[i].layout.tp == 4);
  CHECK(n > 0);
  free(c);
  free(c2);
  free(s);
}

/* One plan over qwen3-30b-a3b-gptq-int4 on 1-4 GPUs of two cards, constant cost. */
static int run_plan(const struct trace *tr, int closed, int parallel, const char *slo, int threads,
                    struct plan_space *s, struct model_spec *m, struct plan_result *r) {
  const char *hw[] = {"a100-40g-pcie", "h100-sxm"};
  int rc;
  if ((rc = model_load("qwen3-30b-a3b-gptq-int4", m))) return rc;
  if ((rc = space_init(s, m, hw, 2, "1-4"))) return rc;
  static struct plan_eval_ctx ctx; /* outlives the evaluator; one run at a time */
  ctx = (struct plan_eval_ctx){.model = m, .space = s, .trace = tr, .closed_loop = closed,
                               .parallel = parallel, .cost_kind = PLAN_COST_CONSTANT,
                               .const_fixed_ns = F_NS, .const_per_tok_ns = P_NS};
  struct plan_evaluator ev;
  if ((rc = plan_eval_init(&ev, &ctx))) return rc;
  struct plan_opts o;
  plan_opts_default(&o);
  o.n_threads = threads;
  o.progress = 0;
  o.rate_tol = 0.05;
  o.gpu_hour_cost = 2.0;
  if (closed) o.load_min = 1, o.load_max = (double)tr->n;
  if (slo && (rc = plan_slo_parse(slo, &o.slo))) return rc;
  int is_root;
  rc = plan_run(s, m, &ev, &o, r, &is_root);
  plan_eval_release(&ctx);
  return rc;
}

static void test_known_answers(void) {
  struct gen_opts g;
  gen_opts_default(&g);
  g.arrival = GEN_CLOSED;
  g.n_req = 6;
  g.in_min = g.in_max = 100;
  g.out_min = g.out_max = 20;
  struct trace tr;
  CHECK(gen_run(&g, &tr) == ERR_OK);
  struct plan_space *s = calloc(1, sizeof *s);
  struct model_spec m;
  struct plan_result r;
  /* TPOT SLO between 1x and 2x a PP=1 step: only PP=1 candidates meet it */
  double step_s = (F_NS + P_NS) * 1e-9;
  char slo[64];
  snprintf(slo, sizeof slo, "tpot_mean=%.6fs", 1.5 * step_s);
  int rc = run_plan(&tr, 1, 1, slo, 2, s, &m, &r);
  CHECK_MSG(rc == ERR_OK, "plan_run: %s", err_msg());
  if (rc) {
    free(s);
    trace_free(&tr);
    return;
  }
  CHECK(r.n_feasible > 0 && r.n_ranked > 0);
  int first_pp1 = -1, fewest = 0;
  for (int i = 0; i < r.n_cand; i++) {
    const struct plan_cand *c = &r.cand[i];
    if (!c->feasible || r.out[i].status) continue;
    const struct plan_metrics *pm = &r.out[i].m;
    int pp = c->layout.pp;
    CHECK_MSG(fabs(pm->q_s[PLAN_M_TPOT][PLAN_S_MEAN] - pp * step_s) < 1e-9,
              "cand %d pp %d: mean TPOT %.9f want %.9f", i, pp, pm->q_s[PLAN_M_TPOT][PLAN_S_MEAN],
              pp * step_s);
    CHECK_MSG(fabs(pm->q_s[PLAN_M_TTFT][PLAN_S_MEAN] - pp * (F_NS + 100 * P_NS) * 1e-9) < 1e-9,
              "cand %d pp %d: mean TTFT %.9f", i, pp, pm->q_s[PLAN_M_TTFT][PLAN_S_MEAN]);
    CHECK(pm->n_done == 6 && r.out[i].slo_ok == (pp == 1));
    /* six requests of 20 tokens, back to back: out tok/s = 120 / (6 * (TTFT + 19 TPOT)) */
    double dur = 6 * (pp * (F_NS + 100 * P_NS) * 1e-9 + 19 * pp * step_s);
    CHECK_MSG(fabs(pm->out_tok_s - 120 / dur) < 1e-6 * (120 / dur), "cand %d: %.6f tok/s want %.6f", i,
              pm->out_tok_s, 120 / dur);
    if (pp == 1 && first_pp1 < 0) first_pp1 = i;
    if (pp == 1 && (fewest == 0 || c->n_gpus < fewest)) fewest = c->n_gpus;
  }
  CHECK(first_pp1 >= 0);
  CHECK_MSG(r.best[PLAN_OBJ_TPOT] == first_pp1, "best TPOT %d want %d", r.best[PLAN_OBJ_TPOT], first_pp1);
  CHECK_MSG(r.fewest_gpus == fewest, "fewest GPUs %d want %d", r.fewest_gpus, fewest);
  /* the highest concurrency under the SLO: 6 clients share one step per token on one replica,
   * so TPOT grows with clients; every PP=1 candidate sustains at least 1 client */
  for (int i = 0; i < r.n_cand; i++)
    if (r.cand[i].feasible && !r.out[i].status && r.cand[i].layout.pp == 1)
      CHECK(r.out[i].rate_status != PLAN_RATE_NONE && r.out[i].max_load >= 1);
  /* cost per million output tokens: gpus * $2/h over tok/s */
  int b = r.best[PLAN_OBJ_COST];
  CHECK(b >= 0 && fabs(plan_rank_value(&r, b, PLAN_OBJ_COST) -
                       r.cand[b].n_gpus * 2.0 / 3600 / r.out[b].m.out_tok_s * 1e6) < 1e-9);
  plan_result_free(&r);
  free(s);
  trace_free(&tr);
}

/* The report of one search as text: JSON then the table (everything the user sees). */
static char *report_text(const struct plan_result *r) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  char *js = plan_report_json(r);
  fputs(js, f);
  free(js);
  plan_report_table(f, r, 0);
  fclose(f);
  return buf;
}

static void test_thread_independence(void) {
  struct gen_opts g;
  gen_opts_default(&g);
  g.arrival = GEN_POISSON;
  g.rate_rps = 4;
  g.n_req = 30;
  g.in_min = 50, g.in_max = 400;
  g.out_min = 5, g.out_max = 40;
  g.seed = 11;
  struct trace tr;
  CHECK(gen_run(&g, &tr) == ERR_OK);
  char *text[3] = {NULL, NULL, NULL};
  int threads[3] = {1, 2, 4};
  int64_t sims = 0;
  for (int k = 0; k < 3; k++) {
    struct plan_space *s = calloc(1, sizeof *s);
    struct model_spec m;
    struct plan_result r;
    int rc = run_plan(&tr, 0, 0, "ttft_p99=0.5s,tpot_p90=40ms", threads[k], s, &m, &r);
    CHECK_MSG(rc == ERR_OK, "threads %d: %s", threads[k], err_msg());
    if (!rc) {
      text[k] = report_text(&r);
      if (k == 0) sims = r.n_sims;
      /* the rate search ran: more simulations than candidates */
      CHECK(r.n_sims > r.n_feasible);
    }
    plan_result_free(&r);
    free(s);
  }
  CHECK(sims > 0);
  for (int k = 1; k < 3; k++) {
    CHECK_MSG(text[0] && text[k] && strcmp(text[0], text[k]) == 0,
              "report with %d threads differs from 1 thread", threads[k]);
  }
  for (int k = 0; k < 3; k++) free(text[k]);
  trace_free(&tr);
}

/* plan_eval shares one cost model among candidates that differ only in max_num_seqs. That is
 * right only while no cost model reads max_num_seqs: check the roofline's step times do not
 * move with it, for steps of every kind (prefill chunks, decodes, mixed). */
static void test_cost_key(void) {
  struct model_spec m;
  struct hw_spec h;
  struct cli_args a;
  CHECK(model_load("qwen3-235b-a22b-gptq-int4", &m) == ERR_OK);
  CHECK(hw_load("a100-40g-pcie", &h) == ERR_OK);
  cli_args_init(&a);
  struct layout ls[2] = {{.tp = 8, .pp = 1, .dp = 1, .ep = 1}, {.tp = 4, .pp = 2, .dp = 1, .ep = 0}};
  struct cost_req reqs[64];
  for (int i = 0; i < 64; i++) reqs[i] = (struct cost_req){.n_new = i % 5 ? 1 : 300, .n_ctx = 37 * i};
  for (int li = 0; li < 2; li++) {
    struct cost_model cm[2];
    int seqs[2] = {128, 512};
    for (int k = 0; k < 2; k++) {
      struct engine e;
      cli_args_engine(&a, &m, &h, &e);
      e.max_num_seqs = seqs[k];
      struct cost_roofline_opts o;
      cost_roofline_opts_default(&o);
      CHECK(cost_roofline_create(&m, &h, &ls[li], &e, &o, &cm[k]) == ERR_OK);
    }
    int same = 1;
    for (int n = 1; n <= 64; n += 7)
      for (int stage = 0; stage < ls[li].pp; stage++) {
        struct cost_step st = {.reqs = reqs, .n_reqs = n, .stage = stage};
        for (int i = 0; i < n; i++) {
          st.n_tok += reqs[i].n_new;
          st.n_decode += reqs[i].n_new == 1;
          st.n_sample++;
        }
        struct rng r0, r1;
        rng_seed(&r0, 1);
        rng_seed(&r1, 1);
        same &= cm[0].stage_ns(cm[0].state, &st, &r0, NULL) == cm[1].stage_ns(cm[1].state, &st, &r1, NULL);
      }
    CHECK_MSG(same, "the roofline's step time depends on max_num_seqs (layout %d): plan_eval_cost_key "
              "must keep max_num_seqs in the key", li);
    cost_destroy(&cm[0]);
    cost_destroy(&cm[1]);
  }
}

int main(void) {
  test_cost_key();
  test_seed_space();
  test_known_answers();
  test_thread_independence();
  return check_report("test_plan");
}
