/* bench_sim_1m: simulator speed on a 1,000,000-request Poisson trace with Azure-like lengths.
 *
 * Qwen3-235B-A22B-GPTQ-Int4 on 8x A100 40GB PCIe, -tp 8 --enable-expert-parallel, roofline cost
 * model, vLLM defaults for the card. Lengths are (input, output) pairs resampled from the Azure
 * 2023 conversation trace (shared/traces); arrivals are Poisson at --rate (default 1.5 req/s, under
 * this deployment's capacity so the queue stays bounded). Prints the wall time of sim_run alone
 * (one thread, CLOCK_MONOTONIC), events/s, requests/s, simulated tokens/s and peak RSS
 * (getrusage ru_maxrss). Targets (issue #3): <= 10 s on one core, peak memory < 1 GB. The run is
 * single-threaded, so its CPU time (CLOCK_PROCESS_CPUTIME_ID) is the time it takes on one free
 * core; wall time is printed beside it because a shared machine stretches it.
 *
 *   bench_sim_1m [--requests N] [--rate R] [--trace FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/err.h"
#include "sim/cost_roofline.h"
#include "sim/hw.h"
#include "sim/layout.h"
#include "sim/model.h"
#include "sim/sim.h"
#include "traces/gen.h"
#include "traces/trace.h"

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

int main(int argc, char **argv) {
  int64_t n_req = 1000000;
  double rate = 1.5;
  char path[1024];
  const char *shared = getenv("SERVESIM_SHARED");
  snprintf(path, sizeof path, "%s/traces/azure_llm_2023_conv_first30min.csv",
           shared ? shared : SERVESIM_SOURCE_DIR "/../shared");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--requests") && i + 1 < argc) n_req = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--rate") && i + 1 < argc) rate = atof(argv[++i]);
    else if (!strcmp(argv[i], "--trace") && i + 1 < argc) snprintf(path, sizeof path, "%s", argv[++i]);
    else {
      fprintf(stderr, "usage: bench_sim_1m [--requests N] [--rate R] [--trace FILE]\n");
      return 2;
    }
  }
  struct model_spec m;
  struct hw_spec h;
  struct layout l = {.tp = 8, .pp = 1, .dp = 1, .ep = 1};
  struct engine e;
  struct layout_verdict v;
  struct cost_model cm = {0};
  struct trace lengths, t;
  trace_init(&lengths);
  trace_init(&t);
  int rc;
  if ((rc = model_load("qwen3-235b-a22b-gptq-int4", &m)) || (rc = hw_load("a100-40g-pcie", &h))) goto fail;
  engine_defaults(&e, &m, &h);
  if ((rc = layout_check(&m, &h, 8, &l, &e, &v))) goto fail;
  struct cost_roofline_opts co;
  cost_roofline_opts_default(&co);
  if ((rc = cost_roofline_create(&m, &h, &l, &e, &co, &cm))) goto fail;

  struct trace_read_opts ro;
  trace_read_opts_default(&ro);
  if ((rc = trace_read(path, &ro, &lengths))) goto fail;
  struct gen_opts g;
  gen_opts_default(&g);
  g.arrival = GEN_POISSON;
  g.rate_rps = rate;
  g.n_req = n_req;
  g.lengths_from = &lengths;
  g.seed = 1;
  double t0 = now_s();
  if ((rc = gen_run(&g, &t))) goto fail;
  double t_gen = now_s() - t0;

  struct sim_config cfg;
  sim_config_default(&cfg);
  cfg.model = &m;
  cfg.hw = &h;
  cfg.layout = l;
  cfg.engine = e;
  cfg.kv_blocks = v.mem.kv_blocks;
  cfg.cost = &cm;
  cfg.seed = 1;
  cfg.mode = SIM_OPEN_LOOP;
  struct sim_result res = {0};
  t0 = now_s();
  double c0 = cpu_s();
  rc = sim_run(&cfg, &t, &res);
  double t_cpu = cpu_s() - c0;
  double t_sim = now_s() - t0;
  if (rc) goto fail;

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const struct sim_counts *c = &res.counts;
  printf("bench_sim_1m: %lld requests, Poisson %.3g req/s, Azure conv lengths (%s, %lld pairs)\n",
         (long long)t.n, rate, path, (long long)lengths.n);
  printf("  deployment: %s on 8 x %s, tp=8 ep, cost %s, KV %lld blocks, max_num_seqs %d, budget %d\n", m.name,
         h.name, cm.name, (long long)v.mem.kv_blocks, e.max_num_seqs, e.max_num_batched_tokens);
  printf("  generate: %.3f s\n", t_gen);
  printf("  sim_run:  %.3f s CPU (%.3f s wall), %lld events (%.3g events/s), %.3g requests/s, %lld steps, "
         "%lld tokens (%.3g tok/s), per CPU second\n",
         t_cpu, t_sim, (long long)c->n_events, c->n_events / t_cpu, t.n / t_cpu, (long long)c->n_steps,
         (long long)c->n_tokens, c->n_tokens / t_cpu);
  printf("  simulated: %.0f s of serving, %lld ok, %lld failed, %lld preemptions, largest batch %lld, "
         "output %.1f tok/s, mean TTFT %.3f s, mean TPOT %.4f s\n",
         res.bd.span_ns * 1e-9, (long long)res.metrics.es.succeed, (long long)res.metrics.es.failed,
         (long long)c->n_preemptions, (long long)c->max_batch, res.metrics.vllm.out_tps, res.metrics.vllm.ttft.mean,
         res.metrics.vllm.tpot.mean);
  printf("  peak RSS: %.1f MB (ru_maxrss)\n", ru.ru_maxrss / 1024.0);
  printf("  targets: sim_run <= 10 s on one core: %s; peak RSS < 1 GB: %s\n", t_cpu <= 10 ? "met" : "MISSED",
         ru.ru_maxrss < 1024 * 1024 ? "met" : "MISSED");
  cost_destroy(&cm);
  trace_free(&t);
  trace_free(&lengths);
  return 0;
fail:
  fprintf(stderr, "bench_sim_1m: %s\n", err_msg());
  cost_destroy(&cm);
  trace_free(&t);
  trace_free(&lengths);
  return 2;
}
