/* cli_plan: `servesim plan`, the capacity planner's command line.
 *
 * Parses the search space (lists of hardware, GPU counts and engine knobs), the workload (a trace
 * file, or evalscope's random dataset in a closed loop or at a Poisson rate, as `servesim bench`
 * takes it), the SLO and the objectives; loads the specs; runs plan_run; prints the table or
 * JSON and optionally stores rows in SQLite. Under mpirun every rank parses the same flags and
 * enumerates the same space; only rank 0 prints and writes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "sim/cli.h"
#include "sim/cli_args.h"
#include "sim/dispatch.h"
#include "sim/plan.h"
#include "sim/plan_db.h"
#include "traces/gen.h"
#include "traces/trace.h"

#define CLI_PLAN_PROG "servesim plan"

static void cli_plan_usage(FILE *f) {
  fprintf(f,
          "usage: servesim plan --model M --hardware H[,H2...] --gpus N|A-B|A,B [options]\n"
          "search space:\n"
          "  --gpus 8 | 1-8 | 4,8            GPU counts to try\n"
          "  --hardware a100-40g-pcie,h100-sxm   hardware specs (names under specs/hardware)\n"
          "  -tp/-pp/-dp N                   pin one dimension (default: every divisor)\n"
          "  --layout tp=8,ep --layout tp=4,pp=2   only these layouts (servesim bench's grammar;\n"
          "                                  --gpus defaults to their GPU counts)\n"
          "  --expert-parallel on,off        try EP on, off or both (default both;\n"
          "                                  --enable-expert-parallel = on only)\n"
          "  --max-num-seqs 128,256,512      engine knob grid (default: the card's vLLM default)\n"
          "  --max-num-batched-tokens 2048,4096,8192\n"
          "  --cuda-graphs on,off            (--enforce-eager = off)\n"
          "  other vLLM engine flags apply to every candidate (--gpu-memory-utilization, ...)\n"
          "workload (one of; the flags and conventions of servesim bench, so the numbers agree):\n"
          "  --dataset random --parallel N --number M   evalscope closed loop; random lengths from\n"
          "      --min-prompt-length --max-prompt-length --min-tokens --max-tokens (1024 each),\n"
          "      [--prefix-length P] [--prompt-inflation F (0.053)]\n"
          "  --trace FILE [--trace-format F] [--on-bad-row fail|skip] [--speedup X]   open loop at\n"
          "      the trace's arrival times; with --parallel N [--number M]: closed loop over it\n"
          "  --poisson RATE --number M [--lengths-from FILE]   open loop, Poisson arrivals\n"
          "objectives and search:\n"
          "  --slo ttft_p99=2s,tpot_p99=100ms   SLO for goodput, the rate search, fewest GPUs\n"
          "  --gpu-hour-cost 2.5              $ per GPU-hour: cost per million output tokens\n"
          "  --objective throughput|ttft|tpot|goodput|cost|rate   table order (throughput)\n"
          "  --pareto tpot_p99                the frontier's latency axis (METRIC_STAT)\n"
          "  --no-rate-search                 skip the highest-load search under the SLO\n"
          "  --rate-tol 0.02  --load-max X    bisection tolerance; bracket limit (x the trace's rate,\n"
          "                                   default 64; clients, default --number)\n"
          "  --cost roofline|constant [--constant-step-us U --constant-token-us U] [--route-skew Z]\n"
          "  --dispatch rr|lor                DP replicas: round robin | least outstanding requests\n"
          "  --threads N (default: cores / MPI ranks on this host)   --seed S (0)\n"
          "output: --json  --top N (20; 0 = all)  --db FILE  --no-progress\n"
          "MPI: mpirun -n K servesim plan ... splits the candidates across ranks (same answer)\n");
  fprintf(f, "MPI: %s\n", plan_mpi_available() ? "built in" : "not in this build (one process)");
}

struct cli_plan_opts {
  struct cli_args a;
  const char *hardware, *gpus, *seqs, *mbt, *graphs, *epmode;
  const char *trace, *format, *on_bad_row, *speedup, *dataset, *db, *lengths_from;
  int parallel, have_parallel;
  int64_t number;
  double poisson_rps;
  int in_min, in_max, out_min, out_max, prefix_len;
  double inflation;
  int top_n, json, no_progress, threads;
  int load_max_set;
  int n_layouts;
  struct layout layouts[PLAN_MAX_LAYOUTS];                /* --load-max given: else 64 x the rate, or --number clients */
  int cost_kind;
  double const_step_us, const_tok_us, route_skew;
  int dispatch;
  struct plan_opts po;
};

/* One plan-specific flag at argv[i]: returns entries taken (> 0), 0 if not ours, -1 on error. */
static int cli_plan_flag(struct cli_plan_opts *o, int argc, char **argv, int i) {
  const char *v = NULL;
  int n, rc = ERR_OK;
  const char *a = argv[i];
  /* switches */
  if (!strcmp(a, "--no-rate-search")) return o->po.search_rate = 0, 1;
  if (!strcmp(a, "--no-progress")) return o->no_progress = 1, 1;
  if (!strcmp(a, "--progress")) return o->no_progress = -1, 1;
  if (!strcmp(a, "--json")) return o->json = 1, 1;
  if ((n = cli_args_value(argc, argv, i, "--layout", &v)) != 0) {
    if (n < 0) return -1;
    if (o->n_layouts == PLAN_MAX_LAYOUTS)
      return err_set(ERR_INPUT, "--layout: at most %d layouts", PLAN_MAX_LAYOUTS), -1;
    if (layout_parse(v, PLAN_MAX_GPUS, &o->layouts[o->n_layouts])) return -1;
    o->n_layouts++;
    return n;
  }
  /* Lists: intercepted before the shared parser, which takes one value per flag. */
  static const char *const lists[] = {"--hardware", "--gpus", "--max-num-seqs",
                                      "--max-num-batched-tokens", "--cuda-graphs",
                                      "--expert-parallel", "--db"};
  const char **dst[] = {&o->hardware, &o->gpus, &o->seqs, &o->mbt, &o->graphs, &o->epmode, &o->db};
  for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++) {
    if ((n = cli_args_value(argc, argv, i, lists[k], &v)) != 0) {
      if (n > 0) *dst[k] = v;
      return n;
    }
  }
  static const char *const strs[] = {"--trace", "--trace-format", "--on-bad-row", "--speedup",
                                     "--dataset", "--lengths-from"};
  const char **sdst[] = {&o->trace, &o->format, &o->on_bad_row, &o->speedup, &o->dataset,
                         &o->lengths_from};
  for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
    if ((n = cli_args_value(argc, argv, i, strs[k], &v)) != 0) {
      if (n > 0) *sdst[k] = v;
      return n;
    }
  }
  if ((n = cli_args_value(argc, argv, i, "--parallel", &v)) != 0) {
    if (n > 0) rc = cli_args_int("--parallel", v, 1, 1 << 20, &o->parallel), o->have_parallel = 1;
  } else if ((n = cli_args_value(argc, argv, i, "--number", &v)) != 0) {
    int x = 0;
    if (n > 0 && !(rc = cli_args_int("--number", v, 1, 1 << 30, &x))) o->number = x;
  } else if ((n = cli_args_value(argc, argv, i, "--poisson", &v)) != 0) {
    if (n > 0 && !(rc = cli_args_double("--poisson", v, 0, HUGE_VAL, &o->poisson_rps)) && !(o->poisson_rps > 0))
      rc = err_set(ERR_INPUT, "--poisson: must be a positive rate, got '%s'", v);
  } else if ((n = cli_args_value(argc, argv, i, "--prompt-inflation", &v)) != 0) {
    if (n > 0) rc = cli_args_double("--prompt-inflation", v, 0, HUGE_VAL, &o->inflation);
  } else if ((n = cli_args_value(argc, argv, i, "--min-prompt-length", &v)) != 0) {
    if (n > 0) rc = cli_args_int("--min-prompt-length", v, 1, 1 << 24, &o->in_min);
  } else if ((n = cli_args_value(argc, argv, i, "--max-prompt-length", &v)) != 0) {
    if (n > 0) rc = cli_args_int("--max-prompt-length", v, 1, 1 << 24, &o->in_max);
  } else if ((n = cli_args_value(argc, argv, i, "--min-tokens", &v)) != 0) {
    if (n > 0) rc = cli_args_int("--min-tokens", v, 1, 1 << 24, &o->out_min);
  } else if ((n = cli_args_value(argc, argv, i, "--max-tokens", &v)) != 0) {
    if (n > 0) rc = cli_args_int("--max-tokens", v, 1, 1 << 24, &o->out_max);
  } else if ((n = cli_args_value(argc, argv, i, "--prefix-length", &v)) != 0) {
    if (n > 0) rc = cli_args_int("--prefix-length", v, 0, 1 << 24, &o->prefix_len);
  } else if ((n = cli_args_value(argc, argv, i, "--slo", &v)) != 0) {
    if (n > 0) rc = plan_slo_parse(v, &o->po.slo);
  } else if ((n = cli_args_value(argc, argv, i, "--gpu-hour-cost", &v)) != 0) {
    if (n > 0 && !(rc = cli_args_double("--gpu-hour-cost", v, 0, HUGE_VAL, &o->po.gpu_hour_cost)) &&
        !(o->po.gpu_hour_cost > 0))
      rc = err_set(ERR_INPUT, "--gpu-hour-cost: must be positive, got '%s'", v);
  } else if ((n = cli_args_value(argc, argv, i, "--objective", &v)) != 0) {
    if (n > 0) rc = plan_objective_parse(v, &o->po.objective);
  } else if ((n = cli_args_value(argc, argv, i, "--pareto", &v)) != 0) {
    if (n > 0) {
      /* reuse the SLO grammar: "tpot_p99" -> "tpot_p99=1" */
      char buf[64];
      struct plan_slo tmp;
      snprintf(buf, sizeof buf, "%s=1", v);
      if (strchr(v, '=') || plan_slo_parse(buf, &tmp))
        rc = err_set(ERR_INPUT, "--pareto: '%s' is not METRIC_STAT (e.g. tpot_p99, ttft_p90)", v);
      else
        o->po.pareto_metric = tmp.t[0].metric, o->po.pareto_stat = tmp.t[0].stat;
    }
  } else if ((n = cli_args_value(argc, argv, i, "--rate-tol", &v)) != 0) {
    if (n > 0 && !(rc = cli_args_double("--rate-tol", v, 0, HUGE_VAL, &o->po.rate_tol)) &&
        !(o->po.rate_tol > 0 && o->po.rate_tol < 1))
      rc = err_set(ERR_INPUT, "--rate-tol: must be in (0, 1), got '%s'", v);
  } else if ((n = cli_args_value(argc, argv, i, "--load-max", &v)) != 0) {
    if (n > 0 && !(rc = cli_args_double("--load-max", v, 1, HUGE_VAL, &o->po.load_max))) o->load_max_set = 1;
  } else if ((n = cli_args_value(argc, argv, i, "--threads", &v)) != 0) {
    if (n > 0) rc = cli_args_int("--threads", v, 1, 4096, &o->threads);
  } else if ((n = cli_args_value(argc, argv, i, "--top", &v)) != 0) {
    if (n > 0) rc = cli_args_int("--top", v, 0, 1 << 30, &o->top_n);
  } else if ((n = cli_args_value(argc, argv, i, "--seed", &v)) != 0) {
    if (n > 0) rc = cli_args_u64("--seed", v, &o->po.seed);
  } else if ((n = cli_args_value(argc, argv, i, "--cost", &v)) != 0) {
    if (n > 0) {
      if (!strcmp(v, "roofline"))
        o->cost_kind = PLAN_COST_ROOFLINE;
      else if (!strcmp(v, "constant"))
        o->cost_kind = PLAN_COST_CONSTANT;
      else
        rc = err_set(ERR_INPUT, "--cost: '%s' is not roofline or constant", v);
    }
  } else if ((n = cli_args_value(argc, argv, i, "--constant-step-us", &v)) != 0) {
    if (n > 0) rc = cli_args_double("--constant-step-us", v, 0, HUGE_VAL, &o->const_step_us);
  } else if ((n = cli_args_value(argc, argv, i, "--constant-token-us", &v)) != 0) {
    if (n > 0) rc = cli_args_double("--constant-token-us", v, 0, HUGE_VAL, &o->const_tok_us);
  } else if ((n = cli_args_value(argc, argv, i, "--route-skew", &v)) != 0) {
    if (n > 0) rc = cli_args_double("--route-skew", v, 0, HUGE_VAL, &o->route_skew);
  } else if ((n = cli_args_value(argc, argv, i, "--dispatch", &v)) != 0) {
    if (n > 0 && (o->dispatch = dispatch_parse(v)) < 0)
      rc = err_set(ERR_INPUT, "--dispatch: '%s' is not rr (round robin) or lor (least outstanding)", v);
  }
  if (n < 0) return -1;
  return rc ? -1 : n;
}

/* Splits "a,b,c" and loads each hardware spec. */
static int cli_plan_hardware(const char *list, struct plan_space *s) {
  const char *p = list;
  s->n_hw = 0;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char name[512];
    if (len == 0 || len >= sizeof name) return err_set(ERR_INPUT, "--hardware: bad list '%s'", list);
    if (s->n_hw == PLAN_MAX_HW) return err_set(ERR_INPUT, "--hardware: more than %d specs", PLAN_MAX_HW);
    memcpy(name, p, len);
    name[len] = '\0';
    for (int i = 0; i < s->n_hw; i++)
      if (!strcmp(s->hw[i].name, name)) return err_set(ERR_INPUT, "--hardware: '%s' listed twice", name);
    int rc = hw_load(name, &s->hw[s->n_hw]);
    if (rc) return err_wrap(rc, "--hardware %s", name);
    s->n_hw++;
    if (!comma) break;
    p = comma + 1;
  }
  return ERR_OK;
}

/* The workload, built as `servesim bench` builds its run 0 (generator seed rng_derive(seed, 0),
 * evalscope's prompt inflation, --number cutting a trace), so a candidate's figures here equal
 * bench's for the same layout and flags. */
static int cli_plan_workload(struct cli_plan_opts *o, struct trace *t, int *closed) {
  int rc;
  int n_kinds = !!o->trace + !!o->dataset + (o->poisson_rps > 0);
  if (n_kinds != 1)
    return err_set(ERR_INPUT, n_kinds ? "give one workload: --trace, --dataset random or --poisson"
                                      : "no workload: give --trace FILE, --dataset random or --poisson RATE");
  if (o->have_parallel && o->poisson_rps > 0)
    return err_set(ERR_INPUT, "--parallel (closed loop) and --poisson (open loop) exclude each other");
  if (!o->trace && (o->speedup || o->format || o->on_bad_row))
    return err_set(ERR_INPUT, "%s applies to --trace only",
                   o->speedup ? "--speedup" : o->format ? "--trace-format" : "--on-bad-row");
  if (o->lengths_from && !(o->poisson_rps > 0))
    return err_set(ERR_INPUT, "--lengths-from applies to --poisson only");
  if (o->dataset && strcmp(o->dataset, "random"))
    return err_set(ERR_INPUT, "--dataset: '%s' is not built in (random; or --trace FILE)", o->dataset);
  if (o->trace) {
    struct trace_read_opts ro;
    trace_read_opts_default(&ro);
    if (o->format && (ro.format = trace_read_format_parse(o->format)) < 0)
      return err_set(ERR_INPUT, "--trace-format: unknown '%s'", o->format);
    if (o->on_bad_row) {
      if (!strcmp(o->on_bad_row, "skip"))
        ro.on_bad_row = TRACE_BAD_SKIP;
      else if (strcmp(o->on_bad_row, "fail"))
        return err_set(ERR_INPUT, "--on-bad-row: '%s' is not fail or skip", o->on_bad_row);
    }
    if ((rc = trace_read(o->trace, &ro, t))) return rc;
    if (o->speedup) {
      int64_t num, den;
      if ((rc = trace_scale_parse(o->speedup, &num, &den)) || (rc = trace_scale(t, num, den)))
        return err_wrap(rc, "--speedup");
    }
    if (o->number && o->number < t->n) t->n = o->number; /* evalscope --number: the first M */
    *closed = o->have_parallel;
    return ERR_OK;
  }
  struct gen_opts g;
  struct trace lengths;
  trace_init(&lengths);
  gen_opts_default(&g);
  g.seed = rng_derive(o->po.seed, 0);
  g.in_min = o->in_min;
  g.in_max = o->in_max;
  g.out_min = o->out_min;
  g.out_max = o->out_max;
  g.prefix_tok = o->prefix_len;
  if (o->number) g.n_req = o->number;
  if (o->dataset) {
    g.arrival = GEN_CLOSED;
    if (!o->have_parallel) o->parallel = 1;
    *closed = 1;
  } else {
    g.arrival = GEN_POISSON;
    g.rate_rps = o->poisson_rps;
    *closed = 0;
    if (o->lengths_from) {
      struct trace_read_opts ro;
      trace_read_opts_default(&ro);
      if ((rc = trace_read(o->lengths_from, &ro, &lengths))) return err_wrap(rc, "--lengths-from");
      g.lengths_from = &lengths;
    }
  }
  g.in_inflation = o->inflation; /* evalscope's random prompts count a few percent longer */
  rc = gen_run(&g, t);
  trace_free(&lengths);
  return rc;
}

int cli_plan(int argc, char **argv) {
  struct cli_plan_opts o;
  memset(&o, 0, sizeof o);
  cli_args_init(&o.a);
  plan_opts_default(&o.po);
  o.top_n = 20;
  /* servesim bench's defaults, so the same flags mean the same run */
  o.const_step_us = 20000;
  o.const_tok_us = 20;
  o.route_skew = -1;
  o.inflation = GEN_EVALSCOPE_PROMPT_INFLATION;
  o.in_min = o.in_max = o.out_min = o.out_max = 1024;
  o.dispatch = DISPATCH_ROUND_ROBIN;
  struct plan_space *space = NULL;
  struct model_spec model;
  struct trace tr;
  struct plan_result res;
  int rc = ERR_OK, is_root = plan_mpi_launch_rank() == 0, mpi_up = 0;
  struct plan_eval_ctx *ectx_live = NULL; /* its cost-model cache is released at the end */
  trace_init(&tr);
  memset(&res, 0, sizeof res);

  for (int i = 0; i < argc;) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      cli_plan_usage(stdout);
      return 0;
    }
    int n = cli_plan_flag(&o, argc, argv, i);
    if (n == 0) n = cli_args_parse_one(&o.a, argc, argv, i);
    if (n == 0) {
      cli_args_unknown(argv[i]);
      n = -1;
    }
    if (n < 0) {
      rc = ERR_INPUT;
      goto out;
    }
    i += n;
  }
  if (o.a.json) o.json = 1;
  if (!o.a.model) {
    rc = err_set(ERR_INPUT, "--model is required (a name under specs/models or a config.json)");
    goto out;
  }
  if (!o.hardware) {
    rc = err_set(ERR_INPUT, "--hardware is required (one or more specs, comma-separated)");
    goto out;
  }
  space = calloc(1, sizeof *space);
  if (!space) {
    rc = err_set(ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = model_load(o.a.model, &model))) {
    err_wrap(rc, "--model %s", o.a.model);
    goto out;
  }
  if ((rc = cli_plan_hardware(o.hardware, space))) goto out;
  if (!o.gpus && !o.n_layouts) {
    rc = err_set(ERR_INPUT, "--gpus is required (8, 1-8 or 4,8)");
    goto out;
  }
  if (o.gpus) {
    if ((rc = plan_space_parse_gpus(o.gpus, space->gpu_counts, PLAN_MAX_GPU_COUNTS, &space->n_gpu_counts)))
      goto out;
  } else { /* the listed layouts' own GPU counts */
    char list[PLAN_MAX_LAYOUTS * 8] = "";
    for (int k = 0, off = 0; k < o.n_layouts; k++)
      off += snprintf(list + off, sizeof list - (size_t)off, "%s%d", k ? "," : "", layout_n_gpus(&o.layouts[k]));
    if ((rc = plan_space_parse_gpus(list, space->gpu_counts, PLAN_MAX_GPU_COUNTS, &space->n_gpu_counts))) goto out;
  }
  space->n_layouts = o.n_layouts;
  memcpy(space->layouts, o.layouts, sizeof o.layouts);
  if (o.seqs && (rc = plan_space_parse_ints("--max-num-seqs", o.seqs, space->seqs, PLAN_MAX_KNOB, &space->n_seqs)))
    goto out;
  if (o.mbt && (rc = plan_space_parse_ints("--max-num-batched-tokens", o.mbt, space->mbt, PLAN_MAX_KNOB,
                                           &space->n_mbt)))
    goto out;
  if (o.graphs) {
    if (o.a.enforce_eager > 0) {
      rc = err_set(ERR_INPUT, "give --cuda-graphs or --enforce-eager, not both");
      goto out;
    }
    if ((rc = plan_space_parse_onoff("--cuda-graphs", o.graphs, space->graphs, &space->n_graphs))) goto out;
  }
  space->ep_mode = o.a.layout.ep ? PLAN_EP_ON : PLAN_EP_BOTH;
  if (o.epmode) {
    int v[2], nv;
    if (o.a.layout.ep) {
      rc = err_set(ERR_INPUT, "give --expert-parallel or --enable-expert-parallel, not both");
      goto out;
    }
    if ((rc = plan_space_parse_onoff("--expert-parallel", o.epmode, v, &nv))) goto out;
    space->ep_mode = nv == 2 ? PLAN_EP_BOTH : v[0] ? PLAN_EP_ON : PLAN_EP_OFF;
  }
  space->tp = o.a.tp_set ? o.a.layout.tp : 0;
  space->pp = o.a.pp_set ? o.a.layout.pp : 0;
  space->dp = o.a.dp_set ? o.a.layout.dp : 0;
  for (int h = 0; h < space->n_hw; h++)
    cli_args_engine(&o.a, &model, &space->hw[h], &space->engine[h]);

  int closed = 0;
  if ((rc = cli_plan_workload(&o, &tr, &closed))) goto out;
  if (o.cost_kind == PLAN_COST_CONSTANT && !(o.const_step_us + o.const_tok_us > 0)) {
    rc = err_set(ERR_INPUT, "--constant-step-us / --constant-token-us: a step must take some time");
    goto out;
  }
  struct plan_eval_ctx ectx = {.model = &model, .space = space, .trace = &tr, .closed_loop = closed,
                               .parallel = o.parallel, .cost_kind = o.cost_kind,
                               .const_fixed_ns = llround(o.const_step_us * 1e3),
                               .const_per_tok_ns = llround(o.const_tok_us * 1e3),
                               .route_skew = o.route_skew,
                               .route_seed = rng_derive(o.po.seed, 0x726f757465ULL), /* "route", as bench */
                               .dispatch = o.dispatch};
  struct plan_evaluator ev;
  ectx_live = &ectx;
  if ((rc = plan_eval_init(&ev, &ectx))) goto out;
  if (closed) {
    /* Clients beyond the request count change nothing: cap the concurrency search there. */
    o.po.load_min = 1;
    if (!o.load_max_set || o.po.load_max > (double)tr.n) o.po.load_max = (double)tr.n;
  } else if (ev.rate_req_s <= 0 && o.po.search_rate && o.po.slo.n) {
    fprintf(stderr, CLI_PLAN_PROG ": note: the trace's arrivals span no time; no rate search\n");
    o.po.search_rate = 0;
  }
  if (o.po.objective == PLAN_OBJ_COST && !(o.po.gpu_hour_cost > 0)) {
    rc = err_set(ERR_INPUT, "--objective cost needs --gpu-hour-cost");
    goto out;
  }
  if ((o.po.objective == PLAN_OBJ_GOODPUT || o.po.objective == PLAN_OBJ_RATE) && !o.po.slo.n) {
    rc = err_set(ERR_INPUT, "--objective %s needs --slo", plan_objective_names[o.po.objective]);
    goto out;
  }
  if (o.po.objective == PLAN_OBJ_RATE && !o.po.search_rate) {
    rc = err_set(ERR_INPUT, "--objective rate needs the rate search (drop --no-rate-search)");
    goto out;
  }
  o.po.progress = o.no_progress > 0 ? 0 : o.no_progress < 0 ? 1 : -1;

  /* MPI starts only now: bad flags above exit on every rank alike without touching MPI. */
  if ((rc = plan_mpi_init(NULL, NULL))) goto out;
  mpi_up = 1;
  if (o.threads)
    o.po.n_threads = o.threads;
  else {
    int local = plan_mpi_local_size();
    o.po.n_threads = plan_pool_ncpu() / (local > 0 ? local : 1);
    if (o.po.n_threads < 1) o.po.n_threads = 1;
  }
  rc = plan_run(space, &model, &ev, &o.po, &res, &is_root);
  /* every rank leaves with rank 0's verdict */
  rc = plan_mpi_bcast_int(rc);
  if (rc || !is_root) goto out;

  if (o.json) {
    char *js = plan_report_json(&res);
    if (!js) {
      rc = err_set(ERR_NOMEM, "out of memory writing JSON");
      goto out;
    }
    fputs(js, stdout);
    fputc('\n', stdout);
    free(js);
  } else {
    plan_report_table(stdout, &res, o.top_n);
  }
  fflush(stdout);
  fprintf(stderr, CLI_PLAN_PROG ": %d candidates, %lld simulations in %.2f s on %d thread(s) x %d rank(s)\n",
          res.n_cand, (long long)res.n_sims, res.wall_s, o.po.n_threads, plan_mpi_size());
  if (o.db && (rc = plan_db_store(o.db, &res, &model))) goto out;
  /* exit 1 when an SLO was given and nothing meets it, as `check` exits 1 for a rejected layout */
  if (o.po.slo.n && res.fewest_cand < 0) {
    fflush(stdout);
    err_set(ERR_LAYOUT, "no candidate meets the SLO");
    rc = ERR_LAYOUT;
  }

out:
  if (rc && is_root) err_print(CLI_PLAN_PROG);
  plan_eval_release(ectx_live);
  if (mpi_up) plan_mpi_finalize();
  plan_result_free(&res);
  trace_free(&tr);
  free(space);
  return err_exit_code(rc);
}
