/* cli_simulate: `servesim simulate` (one run) and `servesim bench` (an evalscope perf sweep).
 *
 *   servesim simulate --model M --hardware H <vLLM flags>
 *       (--trace FILE [--parallel N] | --dataset random --number M --parallel N ... |
 *        --poisson RATE --number M [--lengths-from FILE])
 *       [--json] [--requests-csv F] [--breakdown] [--seed S] [--slo ttft=2s,tpot=100ms,e2el=60s]
 *       [--cost roofline|constant] [--dispatch rr|lor] [--db F]
 *   servesim bench <same> --parallel 1 10 50 100 --number 10 20 100 200 --dataset random
 *       --min-prompt-length 1024 --max-prompt-length 1024 --min-tokens 1024 --max-tokens 1024
 *       [--layout "tp=8,ep" --layout "tp=4,pp=2" ...]
 *
 * Layouts: vLLM's -tp/-pp/-dp/--enable-expert-parallel give one; each --layout "k=v,..." (keys
 * tp, pp, dp, ep; a bare "ep" turns expert parallel on) adds one, and bench compares them.
 * evalscope's random dataset decodes random token ids to text without re-encoding, so the server
 * counts more prompt tokens than asked: --prompt-inflation (default 0.053, the seed's measured
 * mean 1078.4 / 1024 over its four runs) scales random-dataset prompts; 0 turns it off. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "db/db.h"
#include "sim/cli.h"
#include "sim/cli_args.h"
#include "sim/cost.h"
#include "sim/dispatch.h"
#include "sim/report.h"
#include "sim/sim.h"
#include "traces/gen.h"
#include "traces/trace.h"
#if __has_include("sim/cost_roofline.h")
#include "sim/cost_roofline.h"
#define CLI_HAVE_ROOFLINE 1
#else
#define CLI_HAVE_ROOFLINE 0
#endif
#if __has_include("sim/cost_calib.h") && CLI_HAVE_ROOFLINE
#include "sim/cost_calib.h"
#define CLI_HAVE_CALIB 1
#else
#define CLI_HAVE_CALIB 0
#endif

#define CLI_MAX_RUNS 32
#define CLI_MAX_LAYOUTS 8

struct simcli {
  struct cli_args a;
  int bench;
  int db_given;
  /* workload */
  const char *trace_path, *trace_format, *dataset, *lengths_from;
  int on_bad_row;                /* enum trace_bad_row for --trace */
  int64_t number[CLI_MAX_RUNS];
  int n_number;
  int parallel[CLI_MAX_RUNS];
  int n_parallel;
  double poisson_rps;
  int min_prompt, max_prompt, min_tokens, max_tokens, prefix_len;
  double inflation;
  /* run */
  const char *cost;
  double const_step_us, const_tok_us;
  double route_skew;         /* --route-skew (roofline MoE routing Zipf exponent); < 0 = default */
  int dispatch;
  uint64_t seed;
  struct metrics_slo slo;
  const char *requests_csv;
  int breakdown;
  struct layout layouts[CLI_MAX_LAYOUTS];
  char layout_names[CLI_MAX_LAYOUTS][48];
  int n_layouts;
};

static const char *cli_prog(const struct simcli *c) { return c->bench ? "servesim bench" : "servesim simulate"; }

static void cli_usage(FILE *f, int bench) {
  fprintf(f,
          "usage: servesim %s --model M --hardware H [-tp N] [-pp N] [-dp N] [--enable-expert-parallel]\n"
          "         [--max-num-seqs N] [--max-num-batched-tokens N] [--max-model-len N] [--block-size N]\n"
          "         [--gpu-memory-utilization F] [--kv-cache-dtype auto|fp8] [--enforce-eager] [--gpus N]\n"
          "  workload (one of):\n"
          "    --dataset random --number M --parallel N  evalscope closed loop (random lengths:\n"
          "        --min-prompt-length --max-prompt-length --min-tokens --max-tokens [--prefix-length]\n"
          "        [--prompt-inflation F, default 0.053])\n"
          "    --trace FILE [--trace-format F] [--on-bad-row fail|skip] [--parallel N]\n"
          "                                   replay arrivals (closed loop with --parallel)\n"
          "    --poisson RATE --number M [--lengths-from FILE]  open-loop Poisson arrivals\n"
          "  --cost roofline|calibrated|constant [--constant-step-us U --constant-token-us U] [--route-skew Z]\n"
          "      (calibrated reads servesim-exec measurements from --db, default servesim.db)\n"
          "  --dispatch rr|lor (DP replicas: round robin | least outstanding requests)\n"
          "  --seed S  --slo ttft=2s,tpot=100ms,e2el=60s  --json  --breakdown  --requests-csv FILE  --db FILE\n"
          "%s",
          bench ? "bench" : "simulate",
          bench ? "  bench: --parallel 1 10 50 100 --number 10 20 100 200 (one run each);\n"
                  "         --layout \"tp=8,ep\" --layout \"tp=4,pp=2\" compares layouts;\n"
                  "         --requests-csv FILE writes FILE.<layout>.p<concurrency>.csv (e.g. FILE.tp8-ep.p10.csv)\n"
                : "");
}

/* ---- flag parsing ---- */

/* A duration "2s", "150ms", "800us" or a bare number of milliseconds (vLLM's --goodput unit). */
static int cli_parse_duration_s(const char *flag, const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || !(v > 0)) return err_set(ERR_INPUT, "%s: '%s' is not a positive duration", flag, s);
  if (!*end || !strcmp(end, "ms")) *out = v * 1e-3;
  else if (!strcmp(end, "s")) *out = v;
  else if (!strcmp(end, "us")) *out = v * 1e-6;
  else return err_set(ERR_INPUT, "%s: unit '%s' in '%s' (use s, ms or us)", flag, end, s);
  return ERR_OK;
}

static int cli_parse_slo(const char *s, struct metrics_slo *slo) {
  char buf[256];
  if (strlen(s) >= sizeof buf) return err_set(ERR_INPUT, "--slo: value too long");
  strcpy(buf, s);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *eq = strchr(tok, '=');
    if (!eq) return err_set(ERR_INPUT, "--slo: '%s' is not key=value (keys ttft, tpot, e2el)", tok);
    *eq = '\0';
    double *dst = !strcmp(tok, "ttft") ? &slo->ttft_s : !strcmp(tok, "tpot") ? &slo->tpot_s
                  : !strcmp(tok, "e2el") ? &slo->e2el_s : NULL;
    if (!dst) return err_set(ERR_INPUT, "--slo: unknown key '%s' (ttft, tpot, e2el)", tok);
    int rc = cli_parse_duration_s("--slo", eq + 1, dst);
    if (rc) return rc;
  }
  return ERR_OK;
}

static void cli_layout_name(const struct layout *l, char *buf, size_t n) {
  int k = snprintf(buf, n, "tp=%d", l->tp);
  if (l->pp > 1) k += snprintf(buf + k, n - (size_t)k, ",pp=%d", l->pp);
  if (l->dp > 1) k += snprintf(buf + k, n - (size_t)k, ",dp=%d", l->dp);
  if (l->ep) snprintf(buf + k, n - (size_t)k, ",ep");
}

/* Values after a list flag: every following argument that is a plain positive integer. */
static int cli_parse_list(int argc, char **argv, int i, const char *flag, int64_t *out, int *n_out) {
  const char *eqv = strchr(argv[i], '=');
  int taken = 1;
  *n_out = 0;
  if (eqv) { /* --parallel=1,10,50 */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", eqv + 1);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
      if (*n_out >= CLI_MAX_RUNS) return err_set(ERR_INPUT, "%s: at most %d values", flag, CLI_MAX_RUNS);
      int rc = cli_args_i64(flag, tok, 1, INT32_MAX, &out[(*n_out)++]);
      if (rc) return -1;
    }
  } else {
    while (i + taken < argc && isdigit((unsigned char)argv[i + taken][0])) {
      if (*n_out >= CLI_MAX_RUNS) return err_set(ERR_INPUT, "%s: at most %d values", flag, CLI_MAX_RUNS), -1;
      if (cli_args_i64(flag, argv[i + taken], 1, INT32_MAX, &out[(*n_out)++])) return -1;
      taken++;
    }
  }
  if (*n_out == 0) return err_set(ERR_INPUT, "%s: needs at least one positive integer", flag), -1;
  return taken;
}

static int cli_parse(struct simcli *c, int argc, char **argv) {
  cli_args_init(&c->a);
  c->inflation = GEN_EVALSCOPE_PROMPT_INFLATION;
  c->cost = CLI_HAVE_ROOFLINE ? "roofline" : "constant";
  c->const_step_us = 20000;
  c->route_skew = -1;
  c->const_tok_us = 20;
  c->min_prompt = c->max_prompt = 1024;
  c->min_tokens = c->max_tokens = 1024;
  c->dispatch = DISPATCH_ROUND_ROBIN;
  for (int i = 0; i < argc;) {
    const char *arg = argv[i], *v = NULL;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) return 1;
    if (!strncmp(arg, "--db", 4) && (arg[4] == '\0' || arg[4] == '=')) c->db_given = 1;
    int n = cli_args_parse_one(&c->a, argc, argv, i);
    if (n < 0) return -1;
    if (n > 0) { i += n; continue; }
    int64_t list[CLI_MAX_RUNS];
    int rc = 0;
#define VAL(name) ((n = cli_args_value(argc, argv, i, name, &v)) != 0)
    if (!strncmp(arg, "--parallel", 10) && (arg[10] == '\0' || arg[10] == '=')) {
      n = cli_parse_list(argc, argv, i, "--parallel", list, &c->n_parallel);
      for (int k = 0; k < c->n_parallel; k++) c->parallel[k] = (int)list[k];
    } else if (!strncmp(arg, "--number", 8) && (arg[8] == '\0' || arg[8] == '=')) {
      n = cli_parse_list(argc, argv, i, "--number", c->number, &c->n_number);
    } else if (!strcmp(arg, "-n")) {
      n = cli_parse_list(argc, argv, i, "-n", c->number, &c->n_number);
    } else if (VAL("--trace")) { if (n > 0) c->trace_path = v;
    } else if (VAL("--trace-format")) { if (n > 0) c->trace_format = v;
    } else if (VAL("--on-bad-row")) {
      if (n > 0) {
        if (!strcmp(v, "fail")) c->on_bad_row = TRACE_BAD_FAIL;
        else if (!strcmp(v, "skip")) c->on_bad_row = TRACE_BAD_SKIP;
        else rc = err_set(ERR_INPUT, "--on-bad-row: '%s' is not fail or skip", v);
      }
    } else if (VAL("--dataset")) {
      if (n > 0) {
        c->dataset = v;
        if (strcmp(v, "random")) rc = err_set(ERR_INPUT, "--dataset '%s': only 'random' is built in (use --trace FILE)", v);
      }
    } else if (VAL("--lengths-from")) { if (n > 0) c->lengths_from = v;
    } else if (VAL("--poisson")) { if (n > 0) rc = cli_args_double("--poisson", v, 1e-9, HUGE_VAL, &c->poisson_rps);
    } else if (VAL("--min-prompt-length")) { if (n > 0) rc = cli_args_int("--min-prompt-length", v, 1, 10000000, &c->min_prompt);
    } else if (VAL("--max-prompt-length")) { if (n > 0) rc = cli_args_int("--max-prompt-length", v, 1, 10000000, &c->max_prompt);
    } else if (VAL("--min-tokens")) { if (n > 0) rc = cli_args_int("--min-tokens", v, 1, 10000000, &c->min_tokens);
    } else if (VAL("--max-tokens")) { if (n > 0) rc = cli_args_int("--max-tokens", v, 1, 10000000, &c->max_tokens);
    } else if (VAL("--prefix-length")) { if (n > 0) rc = cli_args_int("--prefix-length", v, 0, 10000000, &c->prefix_len);
    } else if (VAL("--prompt-inflation")) { if (n > 0) rc = cli_args_double("--prompt-inflation", v, 0, HUGE_VAL, &c->inflation);
    } else if (VAL("--cost")) {
      if (n > 0) {
        c->cost = v;
        if (strcmp(v, "roofline") && strcmp(v, "constant") && strcmp(v, "calibrated"))
          rc = err_set(ERR_INPUT, "--cost '%s': use roofline, calibrated or constant", v);
      }
    } else if (VAL("--constant-step-us")) { if (n > 0) rc = cli_args_double("--constant-step-us", v, 0, HUGE_VAL, &c->const_step_us);
    } else if (VAL("--constant-token-us")) { if (n > 0) rc = cli_args_double("--constant-token-us", v, 0, HUGE_VAL, &c->const_tok_us);
    } else if (VAL("--route-skew")) { if (n > 0) rc = cli_args_double("--route-skew", v, 0, HUGE_VAL, &c->route_skew);
    } else if (VAL("--dispatch")) {
      if (n > 0 && (c->dispatch = dispatch_parse(v)) < 0)
        rc = err_set(ERR_INPUT, "--dispatch '%s': use rr (round robin) or lor (least outstanding requests)", v);
    } else if (VAL("--seed")) { if (n > 0) rc = cli_args_u64("--seed", v, &c->seed);
    } else if (VAL("--slo")) { if (n > 0) rc = cli_parse_slo(v, &c->slo);
    } else if (VAL("--requests-csv")) { if (n > 0) c->requests_csv = v;
    } else if (VAL("--layout")) {
      if (n > 0) {
        if (c->n_layouts >= CLI_MAX_LAYOUTS) rc = err_set(ERR_INPUT, "--layout: at most %d layouts", CLI_MAX_LAYOUTS);
        else rc = layout_parse(v, CLI_MAX_GPUS, &c->layouts[c->n_layouts++]);
      }
    } else if (!strcmp(arg, "--breakdown")) {
      c->breakdown = 1;
      n = 1;
    } else {
      n = 0;
    }
#undef VAL
    if (n < 0 || rc) return -1;
    if (n == 0) {
      cli_args_unknown(arg);
      return -1;
    }
    i += n;
  }
  if (c->n_layouts == 0) {
    c->layouts[0] = c->a.layout;
    c->n_layouts = 1;
  } else if (c->a.tp_set || c->a.pp_set || c->a.dp_set || c->a.layout.ep) {
    return err_set(ERR_INPUT, "give the layout by -tp/-pp/-dp/--enable-expert-parallel or by --layout, not both"), -1;
  }
  for (int k = 0; k < c->n_layouts; k++) cli_layout_name(&c->layouts[k], c->layout_names[k], sizeof c->layout_names[k]);
  if (!c->a.model) return err_set(ERR_INPUT, "--model is required"), -1;
  if (!c->a.hardware) return err_set(ERR_INPUT, "--hardware is required"), -1;
  int n_src = (c->trace_path != NULL) + (c->dataset != NULL) + (c->poisson_rps > 0);
  if (n_src != 1)
    return err_set(ERR_INPUT, "give exactly one workload: --trace FILE, --dataset random or --poisson RATE"), -1;
  if (c->min_prompt > c->max_prompt)
    return err_set(ERR_INPUT, "--min-prompt-length %d exceeds --max-prompt-length %d", c->min_prompt, c->max_prompt), -1;
  if (c->min_tokens > c->max_tokens)
    return err_set(ERR_INPUT, "--min-tokens %d exceeds --max-tokens %d", c->min_tokens, c->max_tokens), -1;
  if (c->dataset) {
    if (c->n_parallel == 0) { c->parallel[0] = 1; c->n_parallel = 1; }
    if (c->n_number == 0) return err_set(ERR_INPUT, "--dataset random needs --number"), -1;
    if (c->n_number != c->n_parallel)
      return err_set(ERR_INPUT, "--parallel has %d values but --number has %d: give one number per concurrency",
                     c->n_parallel, c->n_number), -1;
  }
  if (c->poisson_rps > 0 && c->n_number != 1)
    return err_set(ERR_INPUT, "--poisson needs one --number (requests to generate)"), -1;
  if (c->poisson_rps > 0 && c->n_parallel)
    return err_set(ERR_INPUT, "--parallel is for closed loops (--dataset random, --trace); --poisson is open loop"), -1;
  if (c->lengths_from && !(c->poisson_rps > 0))
    return err_set(ERR_INPUT, "--lengths-from goes with --poisson (a --trace brings its own lengths)"), -1;
  if (c->trace_path && c->n_parallel > 1 && c->n_number != c->n_parallel && c->n_number != 0)
    return err_set(ERR_INPUT, "--parallel has %d values but --number has %d", c->n_parallel, c->n_number), -1;
  if (!c->bench && (c->n_parallel > 1 || c->n_layouts > 1))
    return err_set(ERR_INPUT, "simulate runs one workload on one layout: use servesim bench for sweeps"), -1;
  return 0;
}

/* ---- workload ---- */

/* The files a workload reads. A command reads them once, before its first run, not once per
 * layout and concurrency: the I/O is not repeated and dropped rows are reported once. */
struct cli_files {
  struct trace trace;        /* --trace FILE */
  struct trace lengths;      /* --lengths-from FILE */
};

static void cli_files_free(struct cli_files *f) {
  trace_free(&f->trace);
  trace_free(&f->lengths);
}

static int cli_files_read(const struct simcli *c, struct cli_files *f) {
  int rc;
  trace_init(&f->trace);
  trace_init(&f->lengths);
  struct trace_read_opts o;
  trace_read_opts_default(&o);
  if (c->lengths_from && (rc = trace_read(c->lengths_from, &o, &f->lengths))) return rc;
  if (!c->trace_path) return ERR_OK;
  if (c->trace_format && (o.format = trace_read_format_parse(c->trace_format)) < 0)
    return err_set(ERR_INPUT, "--trace-format '%s' is unknown", c->trace_format);
  o.on_bad_row = c->on_bad_row;
  if ((rc = trace_read(c->trace_path, &o, &f->trace))) return rc;
  trace_print_dropped(&f->trace, stderr); /* skipped or failed rows: never a silent drop */
  return ERR_OK;
}

/* Run k of the sweep: the requests, and closed-loop concurrency (0 = open loop). */
static int cli_workload(const struct simcli *c, const struct cli_files *f, int k, struct trace *t, int *parallel) {
  int rc;
  *parallel = 0;
  trace_init(t);
  if (c->trace_path) {
    int64_t m = f->trace.n;
    if (c->n_parallel) {
      *parallel = c->parallel[k];
      if (c->n_number && c->number[c->n_number > k ? k : 0] < m)
        m = c->number[c->n_number > k ? k : 0]; /* evalscope --number: the first M requests */
    }
    if ((rc = trace_reserve(t, m > 0 ? m : 1))) return rc;
    if (m > 0) memcpy(t->reqs, f->trace.reqs, (size_t)m * sizeof *t->reqs);
    t->n = m;
    t->format = f->trace.format;
    snprintf(t->source, sizeof t->source, "%s", f->trace.source);
    return ERR_OK;
  }
  struct gen_opts g;
  gen_opts_default(&g);
  g.seed = rng_derive(c->seed, (uint64_t)k);
  g.in_min = c->min_prompt;
  g.in_max = c->max_prompt;
  g.out_min = c->min_tokens;
  g.out_max = c->max_tokens;
  g.prefix_tok = c->prefix_len;
  if (c->dataset) {
    g.arrival = GEN_CLOSED;
    g.n_req = c->number[k];
    *parallel = c->parallel[k];
  } else {
    g.arrival = GEN_POISSON;
    g.rate_rps = c->poisson_rps;
    g.n_req = c->number[0];
    if (c->lengths_from) g.lengths_from = &f->lengths;
  }
  g.in_inflation = c->inflation;
  return gen_run(&g, t);
}

/* The workload as stored with the run (the runs table's workload column). */
static void cli_workload_desc(const struct simcli *c, int parallel, int64_t n, char *buf, size_t len) {
  if (c->trace_path && parallel)
    snprintf(buf, len, "trace %s (%lld requests, closed loop parallel=%d)", c->trace_path, (long long)n, parallel);
  else if (c->trace_path)
    snprintf(buf, len, "trace %s (%lld requests, open loop)", c->trace_path, (long long)n);
  else if (c->dataset)
    snprintf(buf, len, "evalscope random parallel=%d number=%lld in=%d..%d out=%d..%d inflation=%g seed=%llu",
             parallel, (long long)n, c->min_prompt, c->max_prompt, c->min_tokens, c->max_tokens, c->inflation,
             (unsigned long long)c->seed);
  else
    snprintf(buf, len, "poisson %.6g req/s number=%lld lengths %s seed=%llu", c->poisson_rps, (long long)n,
             c->lengths_from ? c->lengths_from : "uniform", (unsigned long long)c->seed);
}

/* ---- one layout ---- */

struct cli_deploy {
  struct model_spec m;
  struct hw_spec h;
  struct layout l;
  struct engine e;
  struct layout_verdict v;
  struct cost_model cm;
  int n_gpus;
};

#if CLI_HAVE_ROOFLINE
static int cli_roofline_create(const struct simcli *c, struct cli_deploy *d) {
  struct cost_roofline_opts o;
  cost_roofline_opts_default(&o);
  if (c->route_skew >= 0) o.route_skew = c->route_skew;
  o.route_seed = rng_derive(c->seed, 0x726f757465ULL); /* "route" */
  return cost_roofline_create(&d->m, &d->h, &d->l, &d->e, &o, &d->cm);
}
#endif

static int cli_deploy_init(const struct simcli *c, const struct layout *l, struct cli_deploy *d) {
  memset(d, 0, sizeof *d);
  int rc;
  if ((rc = model_load(c->a.model, &d->m))) return rc;
  if ((rc = hw_load(c->a.hardware, &d->h))) return rc;
  d->l = *l;
  cli_args_engine(&c->a, &d->m, &d->h, &d->e);
  d->n_gpus = c->a.gpus > 0 ? c->a.gpus : layout_n_gpus(l);
  rc = layout_check(&d->m, &d->h, d->n_gpus, l, &d->e, &d->v);
  if (rc) return rc;
  if (!strcmp(c->cost, "constant")) {
    cost_constant_init(&d->cm, llround(c->const_step_us * 1e3), llround(c->const_tok_us * 1e3));
    if (!d->cm.stage_ns) return err_set(ERR_NOMEM, "out of memory for the cost model");
    return ERR_OK;
  }
#if CLI_HAVE_CALIB
  if (!strcmp(c->cost, "calibrated")) {
    struct cost_roofline_opts o;
    cost_roofline_opts_default(&o);
    if (c->route_skew >= 0) o.route_skew = c->route_skew;
    o.route_seed = rng_derive(c->seed, 0x726f757465ULL);
    /* measurements come from the store (--db, default servesim.db) */
    return cost_calib_create_db(&d->m, &d->h, &d->l, &d->e, c->a.db, &o, &d->cm);
  }
#else
  if (!strcmp(c->cost, "calibrated"))
    return err_set(ERR_INPUT, "--cost calibrated is not built in this version: use --cost roofline");
#endif
#if CLI_HAVE_ROOFLINE
  return cli_roofline_create(c, d);
#else
  return err_set(ERR_INPUT, "--cost roofline is not built in this version: use --cost constant");
#endif
}

static void cli_deploy_free(struct cli_deploy *d) { cost_destroy(&d->cm); }

/* The calibrated model says how much of the time came from measurements. */
static void cli_calib_line(FILE *f, const struct cli_deploy *d) {
#if CLI_HAVE_CALIB
  if (d->cm.name && !strcmp(d->cm.name, "calibrated")) {
    char buf[2048];
    cost_calib_summary(&d->cm, buf, sizeof buf);
    fprintf(f, "%s\ncalibrated from: %s\n", buf, cost_calib_source(&d->cm));
  }
#else
  (void)f;
  (void)d;
#endif
}

static void cli_deploy_header(FILE *f, const struct cli_deploy *d, const char *name) {
  fprintf(f, "deployment: %s on %d x %s, %s, cost model %s\n", d->m.name, d->n_gpus, d->h.name, name, d->cm.name);
  fprintf(f, "engine: max_num_seqs %d, max_num_batched_tokens %d, block %d, max_model_len %d, "
             "KV %lld blocks/replica (%lld tokens)\n",
          d->e.max_num_seqs, d->e.max_num_batched_tokens, d->e.block_size, d->e.max_model_len,
          (long long)d->v.mem.kv_blocks, (long long)d->v.mem.kv_tokens);
}

static int cli_run_one(const struct simcli *c, const struct cli_deploy *d, const struct trace *t, int parallel,
                       struct sim_result *res) {
  struct sim_config cfg;
  sim_config_default(&cfg);
  cfg.model = &d->m;
  cfg.hw = &d->h;
  cfg.layout = d->l;
  cfg.engine = d->e;
  cfg.kv_blocks = d->v.mem.kv_blocks;
  cfg.cost = &d->cm;
  cfg.seed = c->seed;
  cfg.mode = parallel > 0 ? SIM_CLOSED_LOOP : SIM_OPEN_LOOP;
  cfg.parallel = parallel;
  cfg.dispatch = c->dispatch;
  cfg.slo = c->slo;
  res->reqs = malloc((size_t)(t->n > 0 ? t->n : 1) * sizeof *res->reqs);
  if (!res->reqs) return err_set(ERR_NOMEM, "out of memory for %lld request results", (long long)t->n);
  return sim_run(&cfg, t, res);
}

static int cli_db_save(const struct simcli *c, const struct cli_deploy *d, const char *workload, int parallel,
                       const struct sim_result *res) {
  struct db *db = NULL;
  int rc = db_open(c->a.db, &db);
  if (rc) return rc;
  struct db_run run;
  db_run_init(&run);
  run.kind = "simulated";
  run.label = c->bench ? "bench" : "simulate";
  run.model = d->m.name;
  run.hardware = d->h.name;
  run.n_gpus = d->n_gpus;
  run.tp = d->l.tp;
  run.pp = d->l.pp;
  run.dp = d->l.dp;
  run.ep = layout_ep_size(&d->l);
  run.workload = workload;
  run.cost_model = d->cm.name;
  run.seed = (int64_t)c->seed;
  char cfg_json[1024];
  snprintf(cfg_json, sizeof cfg_json,
           "{\"tp\": %d, \"pp\": %d, \"dp\": %d, \"ep\": %d, \"max_num_seqs\": %d, \"max_num_batched_tokens\": %d, "
           "\"block_size\": %d, \"max_model_len\": %d, \"kv_blocks\": %lld, \"parallel\": %d, \"dispatch\": \"%s\", "
           "\"cost\": \"%s\", \"seed\": %llu}",
           d->l.tp, d->l.pp, d->l.dp, d->l.ep, d->e.max_num_seqs, d->e.max_num_batched_tokens, d->e.block_size,
           d->e.max_model_len, (long long)d->v.mem.kv_blocks, parallel, dispatch_name(c->dispatch), d->cm.name,
           (unsigned long long)c->seed);
  run.config_json = cfg_json;
  db_provenance_fill(&run.prov);
  int64_t n = res->n_reqs;
  struct db_request_row *rows = calloc((size_t)(n > 0 ? n : 1), sizeof *rows);
  if (!rows) { db_close(db); return err_set(ERR_NOMEM, "out of memory for database rows"); }
  for (int64_t i = 0; i < n; i++) {
    const struct sim_req_result *r = &res->reqs[i];
    struct db_request_row *w = &rows[i];
    w->idx = i;
    /* closed loop: evalscope creates every request at t=0; the semaphore sets its start */
    w->arrival_ns = parallel > 0 ? 0 : r->start_ns;
    w->start_ns = r->start_ns;
    w->first_token_ns = r->first_tok_ns >= 0 ? r->first_tok_ns : DB_UNSET;
    w->last_token_ns = r->ok ? r->done_ns : DB_UNSET;
    w->in_tok = r->in_tok;
    w->out_tok = r->out_tok;
    w->n_preempt = r->n_preempt;
    w->replica = r->replica;
    w->ok = r->ok;
    w->latency_s = (r->done_ns - r->start_ns) * 1e-9;
    w->e2e_s = (r->done_ns - w->arrival_ns) * 1e-9;
    w->ttft_s = sim_req_ttft_s(r);
    w->tpot_s = sim_req_tpot_s(r);
  }
  const struct metrics *m = &res->metrics;
  struct db_summary s;
  db_summary_init(&s);
  s.concurrency = parallel > 0 ? parallel : DB_UNSET;
  s.n_requests = m->es.total;
  s.n_succeeded = m->es.succeed;
  s.n_failed = m->es.failed;
  s.duration_s = m->es.time_s;
  s.output_tok_s = m->es.out_tps;
  s.total_tok_s = m->es.total_tps;
  s.request_s = m->es.req_tps;
  s.ttft_avg_s = m->es.avg_ttft_s;
  s.tpot_avg_s = m->es.avg_tpot_s;
  s.latency_avg_s = m->es.avg_latency_s;
  s.itl_avg_s = m->vllm.itl.mean;
  s.ttft_p99_s = m->vllm.ttft.p99;
  s.tpot_p99_s = m->vllm.tpot.p99;
  s.latency_p99_s = m->vllm.e2el.p99;
  s.goodput_req_s = m->vllm.has_goodput ? m->vllm.goodput_rps : NAN;
  int64_t run_id = 0;
  /* run, requests, summary and metrics commit together or not at all */
  if ((rc = db_begin(db))) { free(rows); db_close(db); return rc; }
  rc = db_save_run(db, &run, rows, n, &s, &run_id);
  free(rows);
  /* the remaining evalscope keys and the percentile table as named metrics */
  struct { const char *k; double v; } extra[] = {
      {"Average input tokens per request", m->es.avg_in_tok},
      {"Average output tokens per request", m->es.avg_out_tok},
      {"Average package latency (s)", m->es.avg_pkg_latency_s},
      {"Average package per request", m->es.avg_pkg_per_req},
      {"Pipeline bubble (stage-s)", res->bd.bubble_ns * 1e-9},
      {"Idle (stage-s)", res->bd.idle_ns * 1e-9},
      {"Preemption recompute (stage-s)", res->bd.recompute_ns * 1e-9}};
  for (size_t k = 0; !rc && k < sizeof extra / sizeof extra[0]; k++) rc = db_put_metric(db, run_id, extra[k].k, extra[k].v);
  for (int col = 0; !rc && col < MPCT_N_COLS; col++)
    for (int p = 0; !rc && p < METRICS_N_PCT; p++) {
      char key[64];
      snprintf(key, sizeof key, "%s p%d", metrics_pct_names[col], metrics_pcts[p]);
      rc = db_put_metric(db, run_id, key, m->pct[col][p]);
    }
  for (int t = 0; !rc && t < COST_N_TERMS; t++) {
    char key[64];
    snprintf(key, sizeof key, "%s (stage-s)", cost_term_names[t]);
    rc = db_put_metric(db, run_id, key, res->bd.term_ns[t] * 1e-9);
  }
  if (!rc) rc = db_commit(db);
  else db_rollback(db);
  db_close(db);
  return rc;
}

/* ---- commands ---- */

static int cli_fail(const struct simcli *c, int rc) {
  err_print(cli_prog(c));
  return err_exit_code(rc);
}

static int cli_layout_rejected(const struct simcli *c, const struct cli_deploy *d, const char *name) {
  fprintf(stderr, "%s: layout %s cannot run:\n", cli_prog(c), name);
  for (int k = 0; k < d->v.n_fails; k++) fprintf(stderr, "  %s: %s\n", d->v.fails[k].rule, d->v.fails[k].detail);
  return 1;
}

int cli_simulate(int argc, char **argv) {
  struct simcli c = {0};
  int p = cli_parse(&c, argc, argv);
  if (p == 1) { cli_usage(stdout, 0); return 0; }
  if (p < 0) return cli_fail(&c, ERR_INPUT);
  struct cli_deploy d;
  int rc = cli_deploy_init(&c, &c.layouts[0], &d);
  if (rc == ERR_LAYOUT) { int x = cli_layout_rejected(&c, &d, c.layout_names[0]); cli_deploy_free(&d); return x; }
  if (rc) { cli_deploy_free(&d); return cli_fail(&c, rc); }
  struct cli_files files;
  struct trace t;
  int parallel;
  struct sim_result res = {0};
  char desc[512];
  trace_init(&t);
  if ((rc = cli_files_read(&c, &files))) goto out;
  if ((rc = cli_workload(&c, &files, 0, &t, &parallel))) goto out;
  cli_workload_desc(&c, parallel, t.n, desc, sizeof desc);
  if ((rc = cli_run_one(&c, &d, &t, parallel, &res))) goto out;
  if (c.requests_csv && (rc = report_requests_csv(c.requests_csv, res.reqs, res.n_reqs))) goto out;
  if (c.db_given && (rc = cli_db_save(&c, &d, desc, parallel, &res))) goto out;
  if (c.a.json) {
    printf("{\n    \"summary\": ");
    report_evalscope_json(stdout, &res.metrics.es, 4);
    printf(",\n    \"percentiles\": ");
    report_percentiles_json(stdout, &res.metrics, 4);
    printf(",\n    \"vllm\": ");
    report_vllm_json(stdout, &res.metrics, 4);
    printf(",\n    \"breakdown\": ");
    report_breakdown_json(stdout, &res, 4);
    printf("\n}\n");
  } else {
    cli_deploy_header(stdout, &d, c.layout_names[0]);
    printf("workload: %s\n\n", desc);
    report_summary_table(stdout, &res.metrics.es);
    printf("\n");
    report_percentile_table(stdout, &res.metrics);
    printf("\n");
    report_vllm(stdout, &res.metrics);
    if (c.breakdown) {
      printf("\n");
      report_breakdown(stdout, &res, &d.l);
    }
    cli_calib_line(stdout, &d);
  }
out:
  free(res.reqs);
  trace_free(&t);
  cli_files_free(&files);
  cli_deploy_free(&d);
  if (rc) return cli_fail(&c, rc);
  return 0;
}

int cli_bench(int argc, char **argv) {
  struct simcli c = {0};
  c.bench = 1;
  int p = cli_parse(&c, argc, argv);
  if (p == 1) { cli_usage(stdout, 1); return 0; }
  if (p < 0) return cli_fail(&c, ERR_INPUT);
  if (c.poisson_rps > 0 || (c.trace_path && c.n_parallel == 0)) {
    err_set(ERR_INPUT, "bench is a closed-loop sweep: give --parallel (with --dataset random or --trace)");
    return cli_fail(&c, ERR_INPUT);
  }
  int n_runs = c.n_parallel;
  int rc = 0;
  /* summaries[layout][run] kept for the comparison table */
  static const int cap = CLI_MAX_LAYOUTS * CLI_MAX_RUNS;
  struct metrics_evalscope *sum = calloc((size_t)cap, sizeof *sum);
  int *ok_layout = calloc(CLI_MAX_LAYOUTS, sizeof *ok_layout);
  if (!sum || !ok_layout) { free(sum); free(ok_layout); return cli_fail(&c, err_set(ERR_NOMEM, "out of memory")); }
  int any_rejected = 0;
  struct cli_files files;
  rc = cli_files_read(&c, &files);
  if (c.a.json && !rc) printf("[\n");
  int first_json = 1;
  for (int L = 0; L < c.n_layouts && !rc; L++) {
    struct cli_deploy d;
    rc = cli_deploy_init(&c, &c.layouts[L], &d);
    if (rc == ERR_LAYOUT) {
      cli_layout_rejected(&c, &d, c.layout_names[L]);
      cli_deploy_free(&d);
      any_rejected = 1;
      rc = 0;
      continue;
    }
    if (rc) { cli_deploy_free(&d); break; }
    ok_layout[L] = 1;
    if (c.a.json && c.n_layouts > 1)
      printf("%s    {\n        \"layout\": \"%s\",\n        \"results\": [\n", first_json ? "" : ",\n", c.layout_names[L]);
    else if (!c.a.json) {
      cli_deploy_header(stdout, &d, c.layout_names[L]);
      printf("%-11s %8s %8s %12s %12s %10s %10s %10s %9s\n", "concurrency", "requests", "failed", "output tok/s",
             "total tok/s", "latency s", "TTFT s", "TPOT s", "in tok");
    }
    for (int k = 0; k < n_runs && !rc; k++) {
      struct trace t;
      int parallel;
      struct sim_result res = {0};
      char desc[512];
      rc = cli_workload(&c, &files, k, &t, &parallel);
      if (!rc) rc = cli_run_one(&c, &d, &t, parallel, &res);
      if (!rc) {
        cli_workload_desc(&c, parallel, t.n, desc, sizeof desc);
        sum[L * CLI_MAX_RUNS + k] = res.metrics.es;
        if (c.db_given) rc = cli_db_save(&c, &d, desc, parallel, &res);
        if (c.requests_csv && !rc) {
          /* FILE.<layout>.p<concurrency>.csv, the layout spelt without '=' and ',' */
          char path[1024], lname[64];
          int w = 0;
          for (const char *ch = c.layout_names[L]; *ch && w < (int)sizeof lname - 1; ch++)
            if (*ch != '=') lname[w++] = *ch == ',' ? '-' : *ch;
          lname[w] = '\0';
          snprintf(path, sizeof path, "%s.%s.p%d.csv", c.requests_csv, lname, parallel);
          rc = report_requests_csv(path, res.reqs, res.n_reqs);
        }
      }
      if (!rc) {
        const struct metrics_evalscope *es = &res.metrics.es;
        if (c.a.json) {
          int ind = c.n_layouts > 1 ? 12 : 4;
          printf("%s%*s", (c.n_layouts > 1 ? k == 0 : first_json) ? "" : ",\n", ind, "");
          report_evalscope_json(stdout, es, ind);
          first_json = 0;
        } else {
          printf("%-11lld %8lld %8lld %12.1f %12.1f %10.2f %10.3f %10.4f %9.1f\n", (long long)es->concurrency,
                 (long long)es->total, (long long)es->failed, es->out_tps, es->total_tps, es->avg_latency_s,
                 es->avg_ttft_s, es->avg_tpot_s, es->avg_in_tok);
          if (c.breakdown) {
            report_breakdown(stdout, &res, &d.l);
            printf("\n");
          }
        }
      }
      free(res.reqs);
      trace_free(&t);
    }
    if (c.a.json && c.n_layouts > 1) printf("\n        ]\n    }");
    else if (!c.a.json) {
      cli_calib_line(stdout, &d);
      printf("\n");
    }
    first_json = 0;
    cli_deploy_free(&d);
  }
  if (c.a.json && !rc) printf("\n]\n");
  /* comparison: who leads at each concurrency */
  int n_ok = 0;
  for (int L = 0; L < c.n_layouts; L++) n_ok += ok_layout[L];
  if (!rc && !c.a.json && n_ok > 1) {
    printf("Comparison (output tok/s | avg TTFT s | avg TPOT s):\n%-11s", "concurrency");
    for (int L = 0; L < c.n_layouts; L++)
      if (ok_layout[L]) printf(" | %-30s", c.layout_names[L]);
    printf(" | best output tok/s\n");
    for (int k = 0; k < n_runs; k++) {
      printf("%-11d", c.parallel[k]);
      int best = -1;
      for (int L = 0; L < c.n_layouts; L++) {
        if (!ok_layout[L]) continue;
        const struct metrics_evalscope *es = &sum[L * CLI_MAX_RUNS + k];
        printf(" | %9.1f %9.3f %10.4f", es->out_tps, es->avg_ttft_s, es->avg_tpot_s);
        if (best < 0 || es->out_tps > sum[best * CLI_MAX_RUNS + k].out_tps) best = L;
      }
      printf(" | %s\n", best >= 0 ? c.layout_names[best] : "-");
    }
  }
  cli_files_free(&files);
  free(sum);
  free(ok_layout);
  if (rc) return cli_fail(&c, rc);
  return any_rejected && n_ok == 0 ? 1 : 0;
}
