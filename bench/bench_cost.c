/* bench_cost: speed of the roofline cost model (stage_ns calls per second) and its breakdown on
 * canonical steps of the seed scenario (Qwen3-235B-A22B-GPTQ-Int4, 8x A100 40GB PCIe).
 * Usage: bench_cost [model] [hardware]   (defaults: qwen3-235b-a22b-gptq-int4 a100-40g-pcie) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "sim/cost_roofline.h"

static double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Prints one step's breakdown: n_dec decodes at context ctx plus an optional prefill chunk. */
static void bench_show(const struct cost_model *cm, const char *what, int stage, int n_dec, int ctx,
                       int chunk, int chunk_ctx) {
  static struct cost_req reqs[1024]; /* (n_dec + 1) */
  int n = 0, tok = 0;
  for (int i = 0; i < n_dec; i++, n++, tok++) reqs[n] = (struct cost_req){1, ctx};
  if (chunk > 0) reqs[n++] = (struct cost_req){chunk, chunk_ctx}, tok += chunk;
  struct cost_step st = {.reqs = reqs, .n_reqs = n, .n_tok = tok, .n_decode = n_dec,
                         .n_sample = n_dec + (chunk > 0), .stage = stage};
  struct cost_breakdown bd = {{0}};
  int64_t ns = cm->stage_ns(cm->state, &st, NULL, &bd);
  printf("%-34s stage %d: %9.3f ms |", what, stage, ns / 1e6);
  for (int k = 0; k < COST_N_TERMS; k++)
    if (bd.ns[k]) printf(" %s %.2f", cost_term_names[k], bd.ns[k] / 1e6);
  printf("\n");
}

int main(int argc, char **argv) {
  const char *mname = argc > 1 ? argv[1] : "qwen3-235b-a22b-gptq-int4";
  const char *hname = argc > 2 ? argv[2] : "a100-40g-pcie";
  struct model_spec m;
  struct hw_spec h;
  if (model_load(mname, &m) || hw_load(hname, &h)) {
    err_print("bench_cost");
    return 2;
  }
  struct layout lays[2] = {{.tp = 8, .pp = 1, .dp = 1, .ep = 1}, {.tp = 4, .pp = 2, .dp = 1, .ep = 0}};
  const char *names[2] = {"EP=8 (tp=8, ep)", "TP=4 x PP=2"};
  for (int li = 0; li < 2; li++) {
    struct engine e;
    engine_defaults(&e, &m, &h);
    struct cost_roofline_opts o;
    cost_roofline_opts_default(&o);
    struct cost_model cm;
    double t0 = bench_now_s();
    if (cost_roofline_create(&m, &h, &lays[li], &e, &o, &cm)) {
      err_print("bench_cost");
      return 2;
    }
    double t_create = bench_now_s() - t0;
    printf("== %s: create %.1f ms\n", names[li], t_create * 1e3);
    for (int s = 0; s < lays[li].pp; s++) {
      bench_show(&cm, "decode b=1 ctx 1600", s, 1, 1600, 0, 0);
      bench_show(&cm, "decode b=10 ctx 1600", s, 10, 1600, 0, 0);
      bench_show(&cm, "decode b=50 ctx 1600", s, 50, 1600, 0, 0);
      bench_show(&cm, "decode b=100 ctx 1600", s, 100, 1600, 0, 0);
      bench_show(&cm, "prefill 1078", s, 0, 0, 1078, 0);
      bench_show(&cm, "prefill 2048", s, 0, 0, 2048, 0);
      bench_show(&cm, "b=100 decodes + 1078 prefill", s, 100, 1600, 1078, 0);
    }
    /* Speed: a mixed population of steps, as the serving loop produces them. */
    static struct cost_req reqs[256]; /* (256) */
    for (int i = 0; i < 256; i++) reqs[i] = (struct cost_req){1, 1000 + 7 * i};
    int64_t sink = 0;
    int n_calls = 2000000;
    t0 = bench_now_s();
    for (int i = 0; i < n_calls; i++) {
      int n = 1 + (i * 37) % 256;
      struct cost_step st = {.reqs = reqs, .n_reqs = n, .n_tok = n, .n_decode = n, .n_sample = n,
                             .stage = i % lays[li].pp};
      sink += cm.stage_ns(cm.state, &st, NULL, NULL);
    }
    double dt = bench_now_s() - t0;
    printf("speed: %d calls (1-256 decodes each, mean 128) in %.3f s = %.2f M calls/s (sink %lld)\n",
           n_calls, dt, n_calls / dt / 1e6, (long long)(sink % 1000));
    cost_destroy(&cm);
  }
  return 0;
}
