/* plan: the capacity planner behind `servesim plan`.
 *
 * A search space (hardware specs x GPU counts x TP/PP/DP/EP layouts x engine knobs) is
 * enumerated into candidates in one fixed order (plan_space.c); layout_check rejects the ones
 * vLLM cannot run, with its reasons. Every feasible candidate is simulated on the workload by an
 * evaluator, a function pointer (plan_eval.c wires it to sim_run; tests pass closed-form ones),
 * at the nominal load and, with an SLO, along a bracket-and-bisection search for the highest
 * load it sustains (plan_search.c). Candidates run on a thread pool (plan_pool.c) and, in an MPI
 * build launched by mpirun, round-robin across ranks (plan_mpi.c); each candidate's outcome
 * depends only on the candidate (its own seed) and lands in its own slot, so the answer is
 * byte-identical for any thread or rank count. plan_slo.c parses and judges the SLO; plan_rank.c
 * orders the outcomes per objective and finds the Pareto frontier; plan_report.c prints the
 * table and JSON, plan_db.c stores the rows; plan.c drives it all. */
#ifndef SERVESIM_PLAN_H
#define SERVESIM_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "sim/hw.h"
#include "sim/layout.h"
#include "sim/model.h"

#define PLAN_MAX_HW 8
#define PLAN_MAX_GPU_COUNTS 64
#define PLAN_MAX_KNOB 16
#define PLAN_MAX_SLO 8
#define PLAN_MAX_GPUS 1024
#define PLAN_MAX_LAYOUTS 32

/* ---- the search space ---- */

enum plan_ep_mode { PLAN_EP_BOTH = 0, PLAN_EP_OFF = 1, PLAN_EP_ON = 2 };

struct plan_space {
  int n_hw;
  struct hw_spec hw[PLAN_MAX_HW];
  struct engine engine[PLAN_MAX_HW]; /* per hardware: the card's defaults + the user's flags */
  int n_gpu_counts;
  int gpu_counts[PLAN_MAX_GPU_COUNTS]; /* ascending, unique */
  int ep_mode;                         /* enum plan_ep_mode */
  int tp, pp, dp;                      /* > 0 pins that dimension; 0 enumerates it */
  int n_layouts;                       /* > 0: only these layouts (--layout, as servesim bench) */
  struct layout layouts[PLAN_MAX_LAYOUTS];
  /* Engine knob grids crossed with every layout; an empty list keeps engine[hw]'s value. */
  int n_seqs;
  int seqs[PLAN_MAX_KNOB];             /* --max-num-seqs values */
  int n_mbt;
  int mbt[PLAN_MAX_KNOB];              /* --max-num-batched-tokens values */
  int n_graphs;
  int graphs[2];                       /* 1 = CUDA graphs, 0 = --enforce-eager */
};

/* One point of the space. */
struct plan_cand {
  int id;                    /* index in enumeration order */
  int hw_idx;                /* into plan_space.hw */
  int n_gpus;
  int knob_idx;              /* index into the seqs x mbt x graphs grid (0 when no grid) */
  struct layout layout;
  struct engine engine;      /* resolved: knobs applied */
  uint64_t seed;             /* derived from the candidate's identity, not its index */
  int feasible;              /* verdict.n_fails == 0 */
  struct layout_verdict verdict;
};

/* Parses "8", "1-8", "4,8" or "1-4,8" into ascending unique counts. */
int plan_space_parse_gpus(const char *s, int *counts, int max_counts, int *n_counts);
/* Parses "on,off" / "off" / "on" for --cuda-graphs. */
int plan_space_parse_onoff(const char *flag, const char *s, int *vals, int *n_vals);
/* Parses "128,256,512" into positive ints. */
int plan_space_parse_ints(const char *flag, const char *s, int *vals, int max_vals, int *n_vals);
/* Enumerates hardware, count, tp, pp, dp, ep, seqs, mbt, graphs (outermost first), running
 * layout_check on each. *out is malloc'd (n_out entries); the caller frees it. */
int plan_space_enumerate(const struct plan_space *s, const struct model_spec *m, uint64_t seed,
                         struct plan_cand **out, int *n_out);
/* "TP4xPP2xDP1" plus " EP" when expert parallel is on. */
void plan_space_layout_str(const struct plan_cand *c, char *buf, int buf_len);

/* ---- metrics and the SLO ---- */

enum plan_metric { PLAN_M_TTFT = 0, PLAN_M_TPOT, PLAN_M_LATENCY, PLAN_M_N };
enum plan_stat { PLAN_S_MEAN = 0, PLAN_S_P50, PLAN_S_P90, PLAN_S_P95, PLAN_S_P99, PLAN_S_N };
extern const char *const plan_metric_names[PLAN_M_N];
extern const char *const plan_stat_names[PLAN_S_N];

/* What one simulation of a candidate reports (evalscope's definitions). POD: it crosses MPI. */
struct plan_metrics {
  int64_t n_req;             /* requests in the workload */
  int64_t n_done;            /* requests that completed */
  double duration_s;         /* first arrival to last completion */
  double out_tok_s;          /* output tokens / duration */
  double total_tok_s;        /* (prompt + output) tokens / duration */
  double req_s;              /* completed requests / duration */
  double q_s[PLAN_M_N][PLAN_S_N]; /* seconds: TTFT, TPOT, latency x mean, p50 .. p99 */
  double goodput_req_s;      /* requests meeting every SLO threshold / duration */
  double slo_frac;           /* fraction of requests meeting every SLO threshold */
  int64_t n_preempt;         /* preemptions (recompute) */
};

struct plan_slo_term {
  int metric;                /* enum plan_metric */
  int stat;                  /* enum plan_stat */
  double limit_s;
};

struct plan_slo {
  int n;
  struct plan_slo_term t[PLAN_MAX_SLO];
};

/* "ttft_p99=2s,tpot_p99=100ms,latency_mean=30s": metric ttft|tpot|latency (e2e), stat
 * mean|p50|p90|p95|p99, a value with unit s|ms|us (seconds when none). */
int plan_slo_parse(const char *s, struct plan_slo *slo);
/* 1 when every term holds (an empty SLO always holds); NaN never meets a limit. */
int plan_slo_met(const struct plan_slo *slo, const struct plan_metrics *m);
/* Per-request thresholds for goodput: the limit of each metric's terms (the smallest if a
 * metric appears twice), or 0 when the SLO does not constrain that metric. */
void plan_slo_thresholds(const struct plan_slo *slo, double thr_s[PLAN_M_N]);
/* "ttft_p99<=2s,tpot_p99<=0.1s" */
void plan_slo_str(const struct plan_slo *slo, char *buf, int buf_len);

/* ---- the evaluator: one simulation of one candidate ---- */

enum plan_load_kind {
  PLAN_LOAD_RATE = 0,        /* open loop: load scales the arrival rate (1 = as given) */
  PLAN_LOAD_CONCURRENCY = 1  /* closed loop: load is the number of requests in flight */
};

struct plan_evaluator {
  /* Optional: builds per-candidate state (e.g. its cost model) once for all the loads the rate
   * search tries; *cs is passed to eval and released by cand_end. NULL = no such state. */
  int (*cand_begin)(void *ctx, const struct plan_cand *c, void **cs);
  void (*cand_end)(void *ctx, void *cs);
  /* Simulates c at load; fills *m. Called from many threads at once with distinct candidates:
   * must touch no shared mutable state. The result may depend only on (c, load, slo). */
  int (*eval)(void *ctx, void *cs, const struct plan_cand *c, double load,
              const struct plan_slo *slo, struct plan_metrics *m);
  void *ctx;
  int load_kind;             /* enum plan_load_kind */
  double load_nominal;       /* 1 for a rate factor; --parallel for a closed loop */
  double rate_req_s;         /* mean arrival rate at load 1 (reporting only; 0 if closed loop) */
  char workload[256];        /* description for the report */
  char cost_model[32];       /* "roofline", "constant": for the report and the database */
};

/* ---- search options and results ---- */

enum plan_objective {
  PLAN_OBJ_TPUT_GPU = 0,     /* output tokens/s per GPU, higher is better */
  PLAN_OBJ_TTFT,             /* p99 TTFT, lower */
  PLAN_OBJ_TPOT,             /* p99 TPOT, lower */
  PLAN_OBJ_GOODPUT,          /* requests/s meeting the SLO, higher */
  PLAN_OBJ_COST,             /* $ per million output tokens, lower (needs --gpu-hour-cost) */
  PLAN_OBJ_RATE,             /* highest sustained load under the SLO, higher (needs a search) */
  PLAN_OBJ_N
};
extern const char *const plan_objective_names[PLAN_OBJ_N];
int plan_objective_parse(const char *s, int *obj);

struct plan_opts {
  struct plan_slo slo;
  int search_rate;           /* find each candidate's highest load under the SLO */
  double rate_tol;           /* bisection stops when (hi - lo) <= tol * lo (rate loads) */
  int rate_max_iters;        /* bisection steps at most, after the bracket */
  double load_min, load_max; /* the bracket's limits (rate factors, or concurrencies) */
  int n_threads;             /* >= 1 */
  double gpu_hour_cost;      /* $ per GPU-hour; 0 = no cost objective */
  int objective;             /* the table's order */
  int pareto_metric;         /* latency axis of the frontier: enum plan_metric ... */
  int pareto_stat;           /* ... at this statistic (default TPOT p99) */
  uint64_t seed;
  int progress;              /* -1 auto (tty), 0 off, 1 on */
};

void plan_opts_default(struct plan_opts *o);

enum plan_rate_status {
  PLAN_RATE_NONE = 0,        /* not searched */
  PLAN_RATE_FOUND,           /* lo meets the SLO, hi does not, within tolerance */
  PLAN_RATE_BELOW_MIN,       /* fails even at load_min: max_load = 0 */
  PLAN_RATE_AT_CAP           /* still meets at load_max: max_load = load_max (a lower bound) */
};

/* A candidate's outcome. POD (gathered across MPI ranks as bytes). */
struct plan_outcome {
  int evaluated;             /* 1 once this candidate ran (feasible ones only) */
  int status;                /* ERR_OK or the evaluator's code */
  char err[256];             /* the evaluator's err_msg() when status != ERR_OK */
  struct plan_metrics m;     /* at the nominal load */
  int slo_ok;                /* m meets the SLO */
  int rate_status;           /* enum plan_rate_status */
  double max_load;           /* highest load meeting the SLO (factor or concurrency) */
  int n_sims;                /* simulations this candidate took */
  struct plan_metrics m_max; /* at max_load (when max_load > 0) */
};

struct plan_result {
  struct plan_space space;
  struct plan_opts opts;
  char model[128];
  int load_kind;
  double load_nominal, rate_req_s;
  char workload[256];
  char cost_model[32];
  int n_cand;
  struct plan_cand *cand;    /* (n_cand) enumeration order, rejected ones included */
  struct plan_outcome *out;  /* (n_cand) filled for feasible candidates */
  int n_feasible;
  int n_ranked;
  int *ranked;               /* (n_ranked) candidate ids, best first by opts.objective */
  int best[PLAN_OBJ_N];      /* best candidate id per objective, -1 when none */
  int n_pareto;
  int *pareto;               /* (n_pareto) frontier ids, highest throughput first */
  int fewest_gpus;           /* smallest count with a candidate meeting the SLO, 0 if none */
  int fewest_cand;           /* that candidate (best by throughput/GPU at that count), -1 */
  int64_t n_sims;            /* simulations run in all */
  double wall_s;             /* search wall time (not printed in deterministic outputs) */
};

/* The whole search: enumerate, evaluate (threads, MPI ranks), rank. On MPI ranks other than 0
 * the result holds only the enumeration; *is_root says whether this process reports. */
int plan_run(const struct plan_space *s, const struct model_spec *m,
             const struct plan_evaluator *ev, const struct plan_opts *o, struct plan_result *r,
             int *is_root);
void plan_result_free(struct plan_result *r);

/* ---- pieces (exposed for tests and the benchmark) ---- */

/* plan_pool.c: runs task(ctx, i) for i in [0, n_tasks) on n_threads threads (the caller's
 * thread included). Every task runs even if one fails; returns the status and message of the
 * failed task of lowest index (deterministic for any thread count), ERR_OK if none. */
int plan_pool_run(int n_tasks, int n_threads, int (*task)(void *ctx, int i), void *ctx);
/* The machine's online cores (>= 1). */
int plan_pool_ncpu(void);

/* plan_search.c: evaluates c at the nominal load and, with o->search_rate and an SLO, searches
 * its highest load under the SLO. Fills *out (status included); returns its status. */
int plan_search_candidate(const struct plan_evaluator *ev, const struct plan_cand *c,
                          const struct plan_opts *o, struct plan_outcome *out);
/* Fewest GPUs: the smallest n_gpus with an evaluated candidate meeting the SLO (any feasible
 * one without an SLO); fills r->fewest_gpus and r->fewest_cand. */
void plan_search_fewest_gpus(struct plan_result *r);

/* plan_rank.c: an objective's value for a candidate, oriented so that higher is better
 * (-inf when undefined: not evaluated, failed, no cost given, no search). */
double plan_rank_score(const struct plan_result *r, int id, int objective);
/* The objective's value in its natural unit (tok/s/GPU, seconds, req/s, $/Mtok, load); NaN
 * when undefined. */
double plan_rank_value(const struct plan_result *r, int id, int objective);
/* Fills r->ranked, r->best and r->pareto from r->out. */
int plan_rank(struct plan_result *r);

/* plan_mpi.c: process-level split. Without MPI (or when not launched by mpirun) these describe
 * a single process. plan_mpi_init must come before any thread starts. */
int plan_mpi_init(int *argc, char ***argv);
int plan_mpi_rank(void);
int plan_mpi_size(void);
/* Ranks on this host (to divide the cores between them). */
int plan_mpi_local_size(void);
/* Candidate i is computed on rank i % size. Gathers every rank's outcomes into rank 0's out
 * (n entries, indexed by candidate id). */
int plan_mpi_gather(struct plan_outcome *out, int n);
/* Broadcasts rank 0's status so every rank exits alike. */
int plan_mpi_bcast_int(int v);
void plan_mpi_finalize(void);
int plan_mpi_available(void); /* 1 in an MPI build */
/* This process's rank as the launcher's environment says, before MPI starts (0 when none): lets
 * ranks other than 0 keep quiet about bad flags that every rank finds alike. */
int plan_mpi_launch_rank(void);

/* ---- plan_eval.c: the evaluator that runs sim_run ---- */

struct plan_eval_cache;

enum plan_eval_cost { PLAN_COST_ROOFLINE = 0, PLAN_COST_CONSTANT = 1 };

struct trace;
struct plan_eval_ctx {
  const struct model_spec *model;
  const struct plan_space *space;  /* hardware specs, by plan_cand.hw_idx */
  const struct trace *trace;       /* the workload at load 1; closed loop: its --number requests */
  int closed_loop;                 /* 1: evalscope closed loop, load = concurrency */
  int parallel;                    /* closed loop: the nominal concurrency (--parallel) */
  int cost_kind;                   /* enum plan_eval_cost */
  int64_t const_fixed_ns, const_per_tok_ns; /* PLAN_COST_CONSTANT's step = fixed + per_tok * n */
  double route_skew;               /* roofline: Zipf exponent of expert popularity; < 0 default */
  uint64_t route_seed;             /* roofline: routing table seed, shared by every candidate so
                                    * all see the same expert popularity (as servesim bench) */
  int dispatch;                    /* enum dispatch_policy across DP replicas */
  struct plan_eval_cache *cache;   /* cost models shared by candidates (plan_eval_init makes it) */
};

/* Fills ev to simulate through ctx (which must outlive ev); describes the workload. Allocates
 * ctx's cost-model cache: release it with plan_eval_release. */
int plan_eval_init(struct plan_evaluator *ev, struct plan_eval_ctx *ctx);
void plan_eval_release(struct plan_eval_ctx *ctx);
/* The key under which candidates share a cost model: c's engine with max_num_seqs cleared (no
 * cost model reads it: tests/test_plan.c checks the roofline's step times do not move with it). */
void plan_eval_cost_key(const struct plan_cand *c, struct engine *key);
/* The evaluator's functions (thread-safe: cost models come from the shared cache, built once
 * per key; each call owns its trace copy). */
int plan_eval_begin(void *ctx, const struct plan_cand *c, void **cs);
int plan_eval_sim(void *ctx, void *cs, const struct plan_cand *c, double load,
                  const struct plan_slo *slo, struct plan_metrics *m);

/* plan_report.c */
void plan_report_table(FILE *f, const struct plan_result *r, int top_n);
/* JSON document (cJSON); the caller frees the string. */
char *plan_report_json(const struct plan_result *r);
/* One candidate as a compact JSON object (the database's config_json); caller frees. */
char *plan_report_cand_json(const struct plan_result *r, int id);

#endif
