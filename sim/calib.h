/* calib: the measurement set behind the calibrated cost model, read from the SQLite store once.
 *
 * servesim-exec profile writes timed GPU ops into the measurements table (db/schema.sql). This
 * module reads the rows of one GPU (by hardware name, then by the GPU's marketing name) into a
 * flat array of the shapes the cost model can use, converting each row once: GEMMs by (M, K, N)
 * and weight dtype, the fused MoE by rows (tokens x top-k) and active experts with its (K, N),
 * paged attention by batch, context and query length with the measured model's heads per rank
 * (from the models table's config.json, else the spec of that name), all-reduces by bytes and
 * ranks; whole engine steps with their batch (prefill chunks and decodes, from extra_json), kept
 * to check predictions against, never to price from. Rows the model does not use (p2p, the
 * concentrated-routing MoE points, steps without a batch description) are counted, not kept. The set also keeps the provenance of what it read (GPU, driver, CUDA, NCCL,
 * commits, dates, profile runs) so a calibrated run can say what it was calibrated from.
 *
 * The set does not depend on the simulated model or layout: one set serves every cost model
 * built from it (cost_calib_create copies what it needs). */
#ifndef SERVESIM_CALIB_H
#define SERVESIM_CALIB_H

#include <stdint.h>

#include "db/db.h"
#include "sim/hw.h"

enum calib_kind {
  CALIB_GEMM = 0,
  CALIB_MOE,                 /* fused MoE: align, gate_up + SiLU, down, combine; uniform routing */
  CALIB_ATTN_DECODE,         /* paged attention, one new token per sequence */
  CALIB_ATTN_PREFILL,        /* paged attention over a prompt chunk */
  CALIB_ALLREDUCE,
  CALIB_STEP,                /* a whole engine step (validation: not used for pricing) */
  CALIB_N_KINDS
};

extern const char *const calib_kind_names[CALIB_N_KINDS];

struct calib_meas {
  int kind;                  /* enum calib_kind */
  char dtype[8];             /* weight dtype for GEMM / MoE: "int4", "bf16", "fp8" */
  double m, k, n;            /* GEMM (m x k) @ (k x n); MoE: k = hidden, n = expert width per rank */
  double rows, active;       /* MoE: tokens x top-k expert rows, experts with >= 1 row */
  double batch, ctx, q_len;  /* attention: sequences, tokens attended per sequence, new tokens */
  int qh, kvh, hd;           /* attention: q / kv heads per rank and head dim; 0 = unknown */
  double n_bytes;            /* all-reduce bytes per rank */
  int ranks;                 /* all-reduce group size */
  int step_prefill, step_prefill_len, step_decode, step_decode_ctx; /* step: its batch (extra_json) */
  int tp;                    /* TP size the row was measured under (1 when unset) */
  int engine_path;           /* decode attention: 1 = the variant the executor's decode steps ran
                              * (op "decode_split_heads", in profiles up to 55de95a) */
  char model[64];            /* measured model's name ("" = none) */
  double t_ns;               /* median latency */
  int64_t run_id;            /* profile run (DB_UNSET = none) */
};

struct calib_set {
  struct calib_meas *rows;   /* (n) in measurement_id order */
  int n, cap;
  int n_by_kind[CALIB_N_KINDS];
  int n_unused;              /* rows read but of a kind or op the cost model does not use */
  /* provenance of what was read */
  char gpu_name[128], driver[32], cuda[32], nccl[32];
  char commits[4][16];       /* distinct commits (short), first four */
  int n_commits;
  char first_at[32], last_at[32];
  int n_runs;                /* distinct profile runs */
  int64_t run_ids[64];       /* distinct run ids seen (first 64) */
};

void calib_set_init(struct calib_set *s);
/* Adds one measurement row. heads, kv_heads, head_dim: the measured model's (whole model, before
 * TP; 0 = unknown) for attention rows. A row of an unused kind is counted in n_unused. Decode
 * attention timed both as the library kernel (op "decode") and as the path the engine's decode
 * steps take ("decode_split_heads") at the same run, model, TP, batch and context keeps only the
 * latter, in either order; the other counts as unused (averaging the two priced no kernel that
 * runs).
 * ERR_INPUT for a usable kind with a missing shape or a non-positive latency, ERR_NOMEM. */
int calib_set_add(struct calib_set *s, const struct db_measurement *m, int heads, int kv_heads, int head_dim);
/* Reads every measurement of h's GPU from the database at db_path (which must exist; opened
 * read-only). ERR_NOENT, ERR_DB, ERR_INPUT (a bad row, named by its measurement_id), ERR_NOMEM. */
int calib_set_load(struct calib_set *s, const char *db_path, const struct hw_spec *h);
/* One line: counts per kind, GPU, driver, CUDA, NCCL, commits, dates, runs. */
void calib_set_describe(const struct calib_set *s, char *buf, int len);
void calib_set_free(struct calib_set *s);

#endif
