/* db: the SQLite store for measurements, runs, per-request results and run summaries.
 *
 * One opaque handle, open/close pair, every call returns an int status (ERR_OK or ERR_DB /
 * ERR_INPUT / ERR_NOENT / ERR_NOMEM) with the detail in err_msg() and db_errmsg(db), naming the
 * database file. db_close(NULL) is harmless.
 *
 * The schema lives in db/schema.sql (embedded into the binary at build time): a list of numbered
 * migrations, applied in order, each in its own transaction, recorded in PRAGMA user_version.
 * The database runs in WAL mode with foreign keys on and a busy timeout.
 *
 * Every db_put_* call is atomic: it runs inside a SAVEPOINT, so on its own it is one transaction,
 * and inside a caller's db_begin() it nests; a failure rolls the call back and leaves the outer
 * transaction usable (the caller decides to db_rollback or go on). To store a run with its
 * requests and summary so that a failure anywhere leaves nothing of it, either call db_save_run()
 * or bracket the puts yourself:
 *
 *   int64_t id;
 *   if ((rc = db_begin(db))) return rc;
 *   if ((rc = db_put_run(db, &run, &id)) || (rc = db_put_requests(db, id, rows, n)) ||
 *       (rc = db_put_summary(db, id, &sum))) { db_rollback(db); return rc; }
 *   return db_commit(db);
 *
 * Conventions: integer shape fields set to DB_UNSET (-1) and double fields set to NAN are stored
 * as NULL; NULL or "" strings are stored as NULL. Call db_measurement_init / db_run_init /
 * db_summary_init first so every field starts unset. Times of requests are int64 nanoseconds
 * relative to the run start; derived per-request metrics are seconds (evalscope's units). */
#ifndef SERVESIM_DB_H
#define SERVESIM_DB_H

#include <stdint.h>
#include <stdio.h>

#include "sqlite3.h"

struct db; /* opaque */

#define DB_UNSET (-1)
#define DB_DEFAULT_PATH "servesim.db"

/* ---- open, close, schema ---- */

/* Opens (creating if missing) and migrates to the newest schema version. */
int db_open(const char *path, struct db **out);
enum {
  DB_OPEN_MUST_EXIST = 1, /* a missing file is ERR_NOENT, not a new database */
  DB_OPEN_READONLY = 2    /* no migration; a database older than this build is ERR_DB */
};
/* db_open with flags, migrating only up to max_version (0 = newest). db_import_sql uses this to
 * load an older dump into a database at the dump's version before migrating it forward. */
int db_open_ex(const char *path, int flags, int max_version, struct db **out);
/* Applies any migrations the database lacks (after db_open_ex with an older max_version). */
int db_migrate(struct db *db);
void db_close(struct db *db);
/* Last error of this handle, "FILE: sqlite message (context)"; "" when none. */
const char *db_errmsg(const struct db *db);
const char *db_path(const struct db *db);
/* PRAGMA user_version of the open database, and the newest version this build knows. */
int db_schema_version(struct db *db);
int db_schema_latest(void);
/* The raw handle, for ad-hoc queries (tests, `db list`). Do not close it. */
sqlite3 *db_handle(struct db *db);

/* ---- transactions (BEGIN IMMEDIATE; not nestable: use savepoints through db_put_*) ---- */
int db_begin(struct db *db);
int db_commit(struct db *db);
int db_rollback(struct db *db); /* harmless when no transaction is open */

/* ---- provenance: who and what produced a row ---- */
struct db_provenance {
  char tool_version[32];   /* SERVESIM_VERSION */
  char git_commit[48];     /* SERVESIM_GIT_COMMIT */
  char host[128];          /* gethostname() */
  char created_at[32];     /* ISO 8601 UTC "2026-11-28T01:23:45Z"; SOURCE_DATE_EPOCH if set */
  char gpu_name[128];      /* cudaGetDeviceProperties name; "" for CPU-only runs */
  char driver_version[32]; /* NVIDIA driver, "550.54.15" */
  char cuda_version[32];   /* CUDA runtime, "12.4" */
  char nccl_version[32];   /* "2.21.5" */
};
/* Fills tool version, commit, host and time; clears the GPU fields (the executor fills them). */
void db_provenance_fill(struct db_provenance *p);

/* ---- hardware, models, layouts: upserted by name, returning the row id ---- */
/* spec_json / config_json may be NULL; a known name keeps its stored JSON (first writer wins). */
int db_put_hardware(struct db *db, const char *name, const char *gpu, const char *spec_json,
                    int64_t *hardware_id);
int db_put_model(struct db *db, const char *name, const char *quant, const char *config_json,
                 int64_t *model_id);

/* A `servesim check` verdict for one layout; replaces an earlier verdict for the same key
 * (model, hardware, n_gpus, tp, pp, dp, ep). */
struct db_layout {
  const char *model, *hardware; /* names (upserted) */
  int n_gpus, tp, pp, dp, ep;   /* ep: expert-parallel group size, 1 = off */
  int ok;                       /* 1 = runs, 0 = rejected */
  int64_t weight_bytes_rank, kv_bytes_token_rank, kv_blocks, kv_tokens; /* DB_UNSET = NULL */
  double max_concurrency;       /* NAN = NULL */
  const char *fails;            /* failed rules, "rule: detail" lines; NULL when ok */
  struct db_provenance prov;
};
int db_put_layout(struct db *db, const struct db_layout *l, int64_t *layout_id);

/* ---- measurements (servesim-exec profile; read back by the calibrated cost model) ---- */
#define DB_N_KINDS 7
extern const char *const db_kinds[DB_N_KINDS]; /* "gemm","moe","attention","allreduce",
                                                   "all2all","p2p","step" (schema CHECK) */
struct db_measurement {
  int64_t measurement_id;  /* filled by db_get_measurements; ignored by db_put_measurement */
  const char *kind;        /* one of db_kinds */
  const char *op;          /* what inside the kind: "qkv","o_proj","gate_up","down","lm_head",
                              "decode","prefill","mixed",...; NULL ok */
  const char *impl;        /* implementation: "w4a16","cublas-bf16","nccl","vllm-custom",... */
  const char *dtype;       /* "bf16","int4","fp8" */
  const char *hardware;    /* hardware name (upserted into hardware); NULL = none */
  const char *model;       /* model name (upserted into models); NULL = none */
  int64_t run_id;          /* the profile run it belongs to; DB_UNSET = none */
  /* shape; DB_UNSET = not applicable */
  int64_t m, n, k;         /* GEMM: (m x k) @ (k x n) */
  int64_t tokens;          /* tokens entering the op (MoE: before top-k) */
  int64_t experts;         /* experts on this rank (MoE) */
  int64_t topk;            /* experts per token */
  int64_t batch;           /* sequences (attention, step) */
  int64_t ctx_len;         /* context length per sequence (attention) */
  int64_t q_len;           /* new tokens per sequence (prefill chunk; 1 = decode) */
  int64_t n_bytes;         /* message bytes per rank (collectives, p2p) */
  int64_t ranks;           /* communicator size (collectives) */
  int64_t tp, ep;          /* parallel sizes the op ran under */
  int64_t quant_group;     /* int4 group size (128) */
  double tokens_per_expert;/* mean tokens per active expert (MoE); NAN = NULL */
  /* latency over `count` timed repeats, microseconds */
  double lat_us_median, lat_us_p10, lat_us_p90; /* median required; p10/p90 NAN = NULL */
  int64_t count;           /* >= 1 */
  const char *extra_json;  /* anything else as a JSON object (e.g. step batch composition) */
  struct db_provenance prov;
};
void db_measurement_init(struct db_measurement *m);
int db_put_measurement(struct db *db, const struct db_measurement *m);
/* Same, returning the new row id. */
int db_put_measurement_id(struct db *db, const struct db_measurement *m, int64_t *id);

/* Calls fn for each measurement of `kind` (NULL = all kinds) whose hardware name or GPU name
 * equals `gpu` (NULL = any), in measurement_id order. The strings in *m are valid only during
 * the call. A non-zero return from fn stops the walk and is returned. */
typedef int (*db_measurement_fn)(void *ctx, const struct db_measurement *m);
int db_get_measurements(struct db *db, const char *kind, const char *gpu, db_measurement_fn fn,
                        void *ctx);

/* Expert hit counts from real forward passes: counts is (n_layers, n_experts) row-major,
 * tokens routed to each expert summed over the run. Adds to existing counts of the run. */
int db_put_expert_hits(struct db *db, int64_t run_id, int n_layers, int n_experts,
                       const int64_t *counts);

/* ---- runs, their requests and summaries ---- */
struct db_run {
  const char *kind;          /* "simulated" | "live" | "profile" */
  const char *label;         /* free text, e.g. a sweep name; NULL ok */
  const char *model;         /* model name (upserted into models), required */
  const char *model_quant;   /* "bf16" | "fp8" | "gptq-int4"; NULL ok */
  const char *model_json;    /* its config.json text; NULL ok */
  const char *hardware;      /* hardware name (upserted into hardware), required */
  const char *hardware_json; /* its spec text; NULL ok */
  int n_gpus, tp, pp, dp, ep;/* ep: expert-parallel group size, 1 = off */
  const char *workload;      /* "evalscope random parallel=10 number=20 in=1024 out=1024",
                                "trace azure_code.csv x2", ... */
  const char *cost_model;    /* "roofline" | "calibrated"; NULL for live runs */
  int64_t seed;              /* DB_UNSET = none */
  const char *config_json;   /* the full configuration as a JSON object, required */
  struct db_provenance prov;
};
void db_run_init(struct db_run *r);
int db_put_run(struct db *db, const struct db_run *r, int64_t *run_id);

/* One finished (or failed) request. Times in ns from the run start; metrics in seconds. */
struct db_request_row {
  int64_t idx;               /* request index in the workload, unique per run */
  int64_t arrival_ns;        /* arrival (open loop) or creation (closed loop) */
  int64_t start_ns;          /* sent / admitted by the client (evalscope "start") */
  int64_t first_token_ns;    /* first output token; DB_UNSET if none */
  int64_t last_token_ns;     /* last output token = done; DB_UNSET if none */
  int32_t in_tok, out_tok;   /* prompt and generated tokens */
  int32_t n_preempt;         /* recompute preemptions suffered */
  int32_t replica;           /* DP replica that served it; DB_UNSET = n/a */
  int32_t ok;                /* 1 succeeded, 0 failed */
  double ttft_s;             /* first token - start */
  double tpot_s;             /* evalscope TPOT; NAN when out_tok < 2 */
  double latency_s;          /* done - start (evalscope latency) */
  double e2e_s;              /* done - arrival (includes client-side queueing) */
};
/* Inserts n rows with one prepared statement in one savepoint (1e5 rows well under 1 s). */
int db_put_requests(struct db *db, int64_t run_id, const struct db_request_row *rows, int64_t n);

/* The evalscope summary's common figures as columns; every other key through db_put_metric. */
struct db_summary {
  int64_t concurrency;       /* --parallel; DB_UNSET for open-loop replay */
  int64_t n_requests, n_succeeded, n_failed;
  double duration_s;         /* "Time taken for tests (s)" */
  double output_tok_s;       /* "Output token throughput (tok/s)" */
  double total_tok_s;        /* "Total token throughput (tok/s)" */
  double request_s;          /* "Request throughput (req/s)" */
  double ttft_avg_s, tpot_avg_s, latency_avg_s, itl_avg_s;
  double ttft_p99_s, tpot_p99_s, latency_p99_s;
  double goodput_req_s;      /* under --slo; NAN when no SLO */
};
void db_summary_init(struct db_summary *s);
int db_put_summary(struct db *db, int64_t run_id, const struct db_summary *s);
/* A named figure of a run, e.g. evalscope's "Average time to first token (s)" or "TTFT p90 (s)";
 * replaces an earlier value of the same key. NAN is stored as NULL. */
int db_put_metric(struct db *db, int64_t run_id, const char *key, double value);

/* Several metrics of a run in one savepoint: all or none. */
struct db_metric {
  const char *key;
  double value;
};
int db_put_metrics(struct db *db, int64_t run_id, const struct db_metric *kv, int n);

/* db_put_run + db_put_requests + db_put_summary (if s), all or nothing: its own transaction, or
 * inside a caller's db_begin a savepoint, so the caller can add the run's metrics and commit
 * the whole run at once (a failure after db_save_run then needs the caller's db_rollback). */
int db_save_run(struct db *db, const struct db_run *r, const struct db_request_row *rows,
                int64_t n, const struct db_summary *s, int64_t *run_id);

/* ---- dump and load (db/db_dump.c) ---- */
/* Writes a deterministic SQL dump: PRAGMA user_version, then for each table in name order its
 * CREATE statement (IF NOT EXISTS) and its rows as INSERTs ordered by primary key; indexes and
 * views last. table = NULL for all; a named table comes with every table it references through
 * foreign keys (whole), so its dump loads on its own. The same content gives the same bytes. */
int db_export_sql(struct db *db, const char *table, FILE *out);
/* Loads a dump written by db_export_sql into the database at `path` (created if missing), in one
 * transaction: a failure (file:line named) leaves the database unchanged. A dump of an older
 * schema version is loaded at that version, then migrated. *n_rows (may be NULL): rows added. */
int db_import_sql(const char *path, const char *dump_file, int64_t *n_rows);
/* Like db_import_sql into a database that already has rows: every row gets a fresh id and
 * foreign keys follow; a row equal on a UNIQUE key to one present (hardware or a model by name,
 * a layout verdict) maps to that row instead of being copied. One transaction. (db_merge.c) */
int db_import_merge(const char *path, const char *dump_file, int64_t *n_rows);
/* Loads measurements from CSV: a header row of measurements column names (any subset; kind and
 * lat_us_median and count required; hardware/model by name; missing provenance columns get the
 * importing build's), one transaction; errors name the CSV line. */
int db_import_csv(struct db *db, const char *csv_file, int64_t *n_rows);

/* ---- listing (db/db_table.c) ---- */
/* Runs sql (its ?1..?n bound to binds as text) and prints the rows as an aligned table, at most
 * limit rows (0 = all) and a line saying how many more there were. */
int db_table_print(struct db *db, const char *sql, const char *const *binds, int n_binds,
                   int64_t limit, FILE *out);

#endif
