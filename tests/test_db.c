/* test_db: the SQLite store. Open/migrate (twice, idempotent), user_version, WAL and foreign
 * keys, every put and the measurement reader, all-or-nothing writes (a constraint violation on
 * the 3rd request, a full disk simulated with max_page_count, a failing migration), and the
 * export -> import -> export round trip giving identical bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "db/db.h"
#include "tests/check.h"

static char dir[64];

static const char *tmp_path(const char *name) {
  static char buf[4][160];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static int64_t scalar(struct db *db, const char *sql) {
  sqlite3_stmt *st;
  int64_t v = -999;
  if (sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "scalar: %s: %s\n", sql, sqlite3_errmsg(db_handle(db)));
    return v;
  }
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static char *scalar_text(struct db *db, const char *sql) {
  sqlite3_stmt *st;
  static char buf[256];
  buf[0] = '\0';
  if (sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL) != SQLITE_OK) return buf;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return buf;
}

static void make_run(struct db_run *r) {
  db_run_init(r);
  r->kind = "simulated";
  r->label = "sweep 'a'";
  r->model = "qwen3-235b-a22b-gptq-int4";
  r->model_quant = "gptq-int4";
  r->model_json = "{\"num_hidden_layers\": 94, \"num_experts\": 128}";
  r->hardware = "a100-40g-pcie";
  r->n_gpus = 8;
  r->tp = 8;
  r->ep = 8;
  r->workload = "evalscope random parallel=10 number=20 in=1024 out=1024";
  r->cost_model = "roofline";
  r->seed = 42;
  r->config_json = "{\"tp\": 8, \"enable_expert_parallel\": true}";
  db_provenance_fill(&r->prov);
}

/* n rows; row i has idx i, times that grow with i, and a tpot that is NAN for 1-token outputs. */
static struct db_request_row *make_rows(int64_t n) {
  struct db_request_row *rows = calloc((size_t)n, sizeof *rows);
  for (int64_t i = 0; i < n; i++) {
    rows[i].idx = i;
    rows[i].arrival_ns = i * 1000;
    rows[i].start_ns = i * 1000 + 5;
    rows[i].first_token_ns = i * 1000 + 500000;
    rows[i].last_token_ns = i * 1000 + 9000000;
    rows[i].in_tok = 1024 + (int32_t)(i % 70);
    rows[i].out_tok = (i % 9 == 0) ? 1 : 1024;
    rows[i].n_preempt = (int32_t)(i % 3);
    rows[i].replica = DB_UNSET;
    rows[i].ok = 1;
    rows[i].ttft_s = 0.0005 + i * 1e-9;
    rows[i].tpot_s = rows[i].out_tok < 2 ? NAN : 0.0085 / 1022;
    rows[i].latency_s = 0.008995;
    rows[i].e2e_s = 0.009;
  }
  return rows;
}

static void test_open_migrate(void) {
  const char *path = tmp_path("a.db");
  struct db *db = NULL;
  CHECK(db_open(path, &db) == ERR_OK);
  CHECK(db_schema_latest() >= 1);
  CHECK(db_schema_version(db) == db_schema_latest());
  CHECK(scalar(db, "PRAGMA user_version") == db_schema_latest());
  CHECK(scalar(db, "PRAGMA foreign_keys") == 1);
  CHECK(!strcmp(scalar_text(db, "PRAGMA journal_mode"), "wal"));
  const char *tables[] = {"hardware", "models",  "layouts",     "measurements", "runs",
                          "requests", "run_summaries", "run_metrics", "expert_hits"};
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    char q[128];
    snprintf(q, sizeof q, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='%s'",
             tables[i]);
    CHECK_MSG(scalar(db, q) == 1, "table %s missing", tables[i]);
  }
  int64_t n_objects = scalar(db, "SELECT count(*) FROM sqlite_schema");
  int64_t hw = 0;
  CHECK(db_put_hardware(db, "h100-sxm", "NVIDIA H100 80GB HBM3", "{\"mem\": 80}", &hw) == ERR_OK);
  CHECK(hw > 0);
  db_close(db);
  /* Second open: nothing to migrate, nothing lost, nothing created twice. */
  CHECK(db_open(path, &db) == ERR_OK);
  CHECK(db_schema_version(db) == db_schema_latest());
  CHECK(scalar(db, "SELECT count(*) FROM sqlite_schema") == n_objects);
  CHECK(scalar(db, "SELECT count(*) FROM hardware") == 1);
  /* Upsert by name keeps the first spec and returns the same id. */
  int64_t hw2 = 0;
  CHECK(db_put_hardware(db, "h100-sxm", NULL, "{\"mem\": 81}", &hw2) == ERR_OK);
  CHECK(hw2 == hw);
  CHECK(!strcmp(scalar_text(db, "SELECT spec_json FROM hardware"), "{\"mem\": 80}"));
  db_close(db);
  db_close(NULL); /* harmless */
  CHECK(db_rollback(NULL) == ERR_OK);
}

static void test_open_errors(void) {
  struct db *db = (struct db *)1;
  CHECK(db_open_ex(tmp_path("missing.db"), DB_OPEN_MUST_EXIST, 0, &db) == ERR_NOENT);
  CHECK(db == NULL);
  CHECK(strstr(err_msg(), "missing.db") != NULL);
  CHECK(access(tmp_path("missing.db"), F_OK) != 0); /* not created */

  const char *junk = tmp_path("junk.db");
  FILE *f = fopen(junk, "wb");
  for (int i = 0; i < 200; i++) fputs("this is not an sqlite database at all\n", f);
  fclose(f);
  CHECK(db_open(junk, &db) == ERR_DB);
  CHECK_MSG(strstr(err_msg(), "junk.db") && strstr(err_msg(), "not a database"), "%s", err_msg());

  /* A database from a newer build is refused, not "migrated" backwards. */
  const char *newer = tmp_path("newer.db");
  sqlite3 *h;
  CHECK(sqlite3_open(newer, &h) == SQLITE_OK);
  CHECK(sqlite3_exec(h, "PRAGMA user_version = 999", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(h);
  CHECK(db_open(newer, &db) == ERR_DB);
  CHECK_MSG(strstr(err_msg(), "999") && strstr(err_msg(), "newer"), "%s", err_msg());

  /* A migration that fails part way (its 1st table already exists) leaves the file as it was:
   * version 0 and none of the migration's other tables. */
  const char *clash = tmp_path("clash.db");
  CHECK(sqlite3_open(clash, &h) == SQLITE_OK);
  CHECK(sqlite3_exec(h, "CREATE TABLE runs (x INTEGER)", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(h);
  CHECK(db_open(clash, &db) == ERR_DB);
  CHECK_MSG(strstr(err_msg(), "migration 1"), "%s", err_msg());
  CHECK(sqlite3_open(clash, &h) == SQLITE_OK);
  sqlite3_stmt *st;
  CHECK(sqlite3_prepare_v2(h, "SELECT (SELECT count(*) FROM sqlite_schema), "
                              "(SELECT user_version FROM pragma_user_version)", -1, &st,
                           NULL) == SQLITE_OK);
  CHECK(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 1); /* only the clashing table */
  CHECK(sqlite3_column_int(st, 1) == 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
}

struct collect {
  int n;
  int64_t ids[8];
  double median[8];
  int64_t m[8], tokens[8];
  char op[8][16], hw[8][32], gpu[8][128];
  int null_k[8];
};

static int collect_fn(void *ctx, const struct db_measurement *m) {
  struct collect *c = ctx;
  if (c->n == 8) return 99;
  int i = c->n++;
  c->ids[i] = m->measurement_id;
  c->median[i] = m->lat_us_median;
  c->m[i] = m->m;
  c->tokens[i] = m->tokens;
  c->null_k[i] = m->k == DB_UNSET && isnan(m->tokens_per_expert) && isnan(m->lat_us_p90);
  snprintf(c->op[i], sizeof c->op[i], "%s", m->op ? m->op : "(null)");
  snprintf(c->hw[i], sizeof c->hw[i], "%s", m->hardware ? m->hardware : "(null)");
  snprintf(c->gpu[i], sizeof c->gpu[i], "%s", m->prov.gpu_name);
  return 0;
}

static void test_measurements(void) {
  struct db *db;
  CHECK(db_open(tmp_path("m.db"), &db) == ERR_OK);
  struct db_measurement m;
  db_measurement_init(&m);
  m.kind = "gemm";
  m.op = "qkv";
  m.impl = "w4a16";
  m.dtype = "int4";
  m.hardware = "h100-sxm";
  m.model = "qwen3-235b-a22b-gptq-int4";
  m.m = 16;
  m.n = 9216;
  m.k = 4096;
  m.quant_group = 128;
  m.lat_us_median = 7.25;
  m.lat_us_p10 = 7.0;
  m.count = 50;
  db_provenance_fill(&m.prov);
  snprintf(m.prov.gpu_name, sizeof m.prov.gpu_name, "NVIDIA H100 80GB HBM3");
  snprintf(m.prov.nccl_version, sizeof m.prov.nccl_version, "2.28.9");
  int64_t id1 = 0, id2 = 0;
  CHECK(db_put_measurement_id(db, &m, &id1) == ERR_OK);
  struct db_measurement a = m;
  a.kind = "allreduce";
  a.op = NULL;
  a.m = a.n = a.k = DB_UNSET;
  a.n_bytes = 8192;
  a.ranks = 4;
  a.lat_us_median = 43.0;
  a.hardware = "a100-40g-pcie";
  snprintf(a.prov.gpu_name, sizeof a.prov.gpu_name, "NVIDIA A100-PCIE-40GB");
  CHECK(db_put_measurement_id(db, &a, &id2) == ERR_OK);
  CHECK(id2 == id1 + 1);
  struct db_measurement moe = m;
  moe.kind = "moe";
  moe.m = moe.n = moe.k = DB_UNSET;
  moe.tokens = 8;
  moe.experts = 128;
  moe.topk = 8;
  moe.tokens_per_expert = 1.0;
  moe.lat_us_median = 55.5;
  CHECK(db_put_measurement(db, &moe) == ERR_OK);

  /* Bad rows: an unknown kind (caught before SQL), a zero count (the schema's CHECK). */
  struct db_measurement bad = m;
  bad.kind = "conv";
  CHECK(db_put_measurement(db, &bad) == ERR_INPUT);
  CHECK(strstr(db_errmsg(db), "conv") != NULL);
  bad = m;
  bad.count = 0;
  CHECK(db_put_measurement(db, &bad) == ERR_DB);
  CHECK_MSG(strstr(err_msg(), "CHECK constraint") && strstr(err_msg(), "m.db"), "%s", err_msg());
  bad = m;
  bad.lat_us_median = NAN; /* NOT NULL */
  CHECK(db_put_measurement(db, &bad) == ERR_DB);
  CHECK(scalar(db, "SELECT count(*) FROM measurements") == 3);

  struct collect c = {0};
  CHECK(db_get_measurements(db, "gemm", NULL, collect_fn, &c) == ERR_OK);
  CHECK(c.n == 1);
  CHECK(c.ids[0] == id1 && c.median[0] == 7.25 && c.m[0] == 16);
  CHECK(!strcmp(c.op[0], "qkv") && !strcmp(c.hw[0], "h100-sxm"));
  CHECK(!strcmp(c.gpu[0], "NVIDIA H100 80GB HBM3"));
  memset(&c, 0, sizeof c);
  /* The GPU filter matches the hardware name or the GPU name. */
  CHECK(db_get_measurements(db, NULL, "h100-sxm", collect_fn, &c) == ERR_OK);
  CHECK(c.n == 2 && c.tokens[1] == 8);
  memset(&c, 0, sizeof c);
  CHECK(db_get_measurements(db, NULL, "NVIDIA A100-PCIE-40GB", collect_fn, &c) == ERR_OK);
  CHECK(c.n == 1 && c.ids[0] == id2 && c.null_k[0] && !strcmp(c.op[0], "(null)"));
  memset(&c, 0, sizeof c);
  CHECK(db_get_measurements(db, "p2p", NULL, collect_fn, &c) == ERR_OK);
  CHECK(c.n == 0);
  CHECK(scalar(db, "SELECT count(*) FROM hardware") == 2);
  CHECK(scalar(db, "SELECT count(*) FROM models") == 1);
  memset(&c, 0, sizeof c);
  c.n = 7; /* room for one row; the callback returns 99 on the 2nd, which stops the walk */
  CHECK(db_get_measurements(db, NULL, NULL, collect_fn, &c) == 99);
  CHECK(c.n == 8);

  /* Read-only: reads work, writes fail with ERR_DB, nothing changes. */
  struct db *ro;
  CHECK(db_open_ex(tmp_path("m.db"), DB_OPEN_READONLY, 0, &ro) == ERR_OK);
  memset(&c, 0, sizeof c);
  CHECK(db_get_measurements(ro, "moe", NULL, collect_fn, &c) == ERR_OK && c.n == 1);
  CHECK(db_put_measurement(ro, &m) == ERR_DB);
  CHECK_MSG(strstr(err_msg(), "readonly"), "%s", err_msg());
  db_close(ro);
  CHECK(scalar(db, "SELECT count(*) FROM measurements") == 3);

  /* Expert hits accumulate over calls; a run that does not exist is refused (FK). */
  struct db_run r;
  make_run(&r);
  r.kind = "profile";
  int64_t run = 0;
  CHECK(db_put_run(db, &r, &run) == ERR_OK);
  int64_t hits[2 * 4] = {5, 0, 3, 8, 1, 1, 1, 13}; /* (2 layers, 4 experts) */
  CHECK(db_put_expert_hits(db, run, 2, 4, hits) == ERR_OK);
  CHECK(db_put_expert_hits(db, run, 2, 4, hits) == ERR_OK);
  CHECK(scalar(db, "SELECT count FROM expert_hits WHERE layer = 1 AND expert = 3") == 26);
  CHECK(scalar(db, "SELECT sum(count) FROM expert_hits") == 2 * 32);
  CHECK(db_put_expert_hits(db, run + 100, 2, 4, hits) == ERR_DB);
  CHECK_MSG(strstr(err_msg(), "FOREIGN KEY"), "%s", err_msg());
  CHECK(scalar(db, "SELECT count(*) FROM expert_hits") == 8);
  db_close(db);
}

static void test_runs(void) {
  struct db *db;
  CHECK(db_open(tmp_path("r.db"), &db) == ERR_OK);
  struct db_run r;
  make_run(&r);
  const int64_t n = 1000;
  struct db_request_row *rows = make_rows(n);
  struct db_summary s;
  db_summary_init(&s);
  s.concurrency = 10;
  s.n_requests = s.n_succeeded = n;
  s.output_tok_s = 1234.5;
  s.ttft_avg_s = 0.25;
  int64_t run = 0;
  CHECK(db_save_run(db, &r, rows, n, &s, &run) == ERR_OK);
  CHECK(run == 1);
  CHECK(scalar(db, "SELECT count(*) FROM requests WHERE run_id = 1") == n);
  CHECK(scalar(db, "SELECT count(*) FROM requests WHERE tpot_s IS NULL") == (n + 8) / 9);
  CHECK(scalar(db, "SELECT count(*) FROM requests WHERE replica IS NULL") == n);
  CHECK(scalar(db, "SELECT sum(n_preempt) FROM requests") == 333 + 2 * 333);
  CHECK(scalar(db, "SELECT concurrency FROM run_summaries WHERE run_id = 1") == 10);
  CHECK(scalar(db, "SELECT goodput_req_s IS NULL FROM run_summaries") == 1);
  CHECK(scalar(db, "SELECT seed FROM runs") == 42);
  CHECK(!strcmp(scalar_text(db, "SELECT json_extract(config_json, '$.tp') FROM runs"), "8"));
  CHECK(!strcmp(scalar_text(db, "SELECT r.label || '|' || m.quant || '|' || h.name FROM runs r "
                                "JOIN models m USING (model_id) JOIN hardware h USING (hardware_id)"),
                "sweep 'a'|gptq-int4|a100-40g-pcie"));
  CHECK(db_put_metric(db, run, "Output token throughput (tok/s)", 1234.5) == ERR_OK);
  CHECK(db_put_metric(db, run, "Output token throughput (tok/s)", 1300.0) == ERR_OK); /* replaces */
  CHECK(db_put_metric(db, run, "TTFT p99 (s)", NAN) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM run_metrics") == 2);
  CHECK(scalar(db, "SELECT value FROM run_metrics WHERE key LIKE 'Output%'") == 1300);
  CHECK(db_put_metric(db, run, "", 1.0) == ERR_INPUT);
  /* db_put_metrics: all or none (the 3rd key is empty). */
  struct db_metric kv[3] = {{"a", 1.0}, {"b", 2.0}, {"", 3.0}};
  CHECK(db_put_metrics(db, run, kv, 3) == ERR_INPUT);
  CHECK(scalar(db, "SELECT count(*) FROM run_metrics") == 2);
  CHECK(db_put_metrics(db, run, kv, 2) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM run_metrics") == 4);
  /* db_save_run inside the caller's transaction: a savepoint; the caller's rollback undoes it,
   * and a failed db_save_run leaves the caller's earlier writes in place. */
  CHECK(db_begin(db) == ERR_OK);
  int64_t inner = 0;
  CHECK(db_put_metric(db, run, "c", 3.0) == ERR_OK);
  CHECK(db_save_run(db, &r, rows, 10, &s, &inner) == ERR_OK);
  CHECK(inner == run + 1);
  CHECK(db_put_metrics(db, inner, kv, 2) == ERR_OK);
  rows[2].idx = 1;
  CHECK(db_save_run(db, &r, rows, 10, &s, &inner) == ERR_DB);
  rows[2].idx = 2;
  CHECK(scalar(db, "SELECT count(*) FROM runs") == 2);
  CHECK(scalar(db, "SELECT count(*) FROM run_metrics") == 7);
  CHECK(db_rollback(db) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM runs") == 1);
  CHECK(scalar(db, "SELECT count(*) FROM run_metrics") == 4);

  /* Invalid runs never reach the table. */
  struct db_run bad = r;
  bad.kind = "dreamed";
  int64_t id = 0;
  CHECK(db_put_run(db, &bad, &id) == ERR_INPUT);
  bad = r;
  bad.config_json = "{not json";
  CHECK(db_put_run(db, &bad, &id) == ERR_DB);
  bad = r;
  bad.tp = 0;
  CHECK(db_put_run(db, &bad, &id) == ERR_DB);
  CHECK(scalar(db, "SELECT count(*) FROM runs") == 1);

  /* All or nothing: the 3rd request repeats idx 1, so the whole run is rolled back. */
  int64_t runs_before = scalar(db, "SELECT count(*) FROM runs");
  int64_t models_before = scalar(db, "SELECT count(*) FROM models");
  rows[2].idx = 1;
  r.model = "a-model-only-this-run-names";
  CHECK(db_save_run(db, &r, rows, n, &s, &id) == ERR_DB);
  CHECK_MSG(strstr(err_msg(), "UNIQUE") && strstr(err_msg(), "request 1"), "%s", err_msg());
  CHECK(scalar(db, "SELECT count(*) FROM runs") == runs_before);
  CHECK(scalar(db, "SELECT count(*) FROM requests WHERE run_id <> 1") == 0);
  CHECK(scalar(db, "SELECT count(*) FROM models") == models_before);
  CHECK(scalar(db, "SELECT count(*) FROM run_summaries") == 1);
  rows[2].idx = 2;

  /* The same, bracketed by the caller: a failed put leaves the transaction usable, and the
   * caller's rollback removes the run that did go in. */
  CHECK(db_begin(db) == ERR_OK);
  CHECK(db_begin(db) == ERR_INTERNAL); /* not nestable */
  CHECK(db_put_run(db, &r, &id) == ERR_OK);
  CHECK(db_put_requests(db, id + 7, rows, 3) == ERR_DB); /* no such run: FK */
  CHECK(db_put_requests(db, id, rows, 3) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM requests WHERE run_id = (SELECT max(run_id) FROM runs)") == 3);
  CHECK(db_rollback(db) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM runs") == runs_before);
  CHECK(scalar(db, "SELECT count(*) FROM requests") == n);

  /* A full disk (max_page_count a few pages above the current size): the write fails with
   * ERR_DB naming the file, and no part of the run stays. The database stays usable. */
  int64_t pages = scalar(db, "PRAGMA page_count");
  char q[96];
  snprintf(q, sizeof q, "PRAGMA max_page_count = %lld", (long long)pages + 8);
  CHECK(scalar(db, q) == pages + 8);
  const int64_t big_n = 20000;
  struct db_request_row *big = make_rows(big_n);
  CHECK(db_save_run(db, &r, big, big_n, &s, &id) == ERR_DB);
  CHECK_MSG(strstr(err_msg(), "full") && strstr(err_msg(), "r.db"), "%s", err_msg());
  CHECK(scalar(db, "SELECT count(*) FROM runs") == runs_before);
  CHECK(scalar(db, "SELECT count(*) FROM requests") == n);
  CHECK(scalar(db, "SELECT count(*) FROM run_summaries") == 1);
  CHECK(scalar(db, "PRAGMA max_page_count = 1000000") == 1000000);
  CHECK(db_save_run(db, &r, big, big_n, &s, &id) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM requests") == n + big_n);
  CHECK(scalar(db, "PRAGMA foreign_key_check") == -999); /* no rows: no violation */
  free(big);
  free(rows);

  /* Layout verdicts: one row per key, the newer replaces the older. */
  struct db_layout l = {.model = "qwen3-235b-a22b-gptq-int4", .hardware = "a100-40g-pcie",
                        .n_gpus = 8, .tp = 8, .pp = 1, .dp = 1, .ep = 1, .ok = 0,
                        .weight_bytes_rank = 15600000000, .kv_bytes_token_rank = 48128,
                        .kv_blocks = DB_UNSET, .kv_tokens = DB_UNSET, .max_concurrency = NAN,
                        .fails = "moe-block-k: size_k must divisible by BLOCK_SIZE_K (192 vs 128)"};
  db_provenance_fill(&l.prov);
  int64_t lid = 0, lid2 = 0;
  CHECK(db_put_layout(db, &l, &lid) == ERR_OK);
  l.ok = 1;
  l.fails = NULL;
  CHECK(db_put_layout(db, &l, &lid2) == ERR_OK);
  CHECK(lid == lid2);
  CHECK(scalar(db, "SELECT count(*) FROM layouts") == 1);
  CHECK(scalar(db, "SELECT ok FROM layouts") == 1 && scalar(db, "SELECT fails IS NULL FROM layouts") == 1);
  db_close(db);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  *len = fread(buf, 1, (size_t)n, f);
  buf[*len] = '\0';
  fclose(f);
  return buf;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
}

static int export_to(const char *db_path, const char *out_path) {
  struct db *db;
  int rc = db_open(db_path, &db);
  if (rc) return rc;
  FILE *f = fopen(out_path, "wb");
  rc = db_export_sql(db, NULL, f);
  fclose(f);
  db_close(db);
  return rc;
}

static void test_dump_roundtrip(void) {
  const char *src = tmp_path("src.db"), *dst = tmp_path("dst.db");
  struct db *db;
  CHECK(db_open(src, &db) == ERR_OK);
  struct db_run r;
  make_run(&r);
  /* Text that a dump must quote and keep: quotes, newlines, a CR, a tab, UTF-8. */
  r.label = "it's a \"label\"\nline 2\r\n\ttab µs ✓";
  r.hardware_json = "{\n  \"name\": \"a100\",\n  \"note\": \"it's\"\n}";
  struct db_request_row *rows = make_rows(50);
  rows[3].ttft_s = 0.1;           /* shortest round trip */
  rows[4].ttft_s = 1e-300;
  rows[5].ttft_s = 123456789.0;   /* integral REAL must stay REAL */
  rows[6].tpot_s = INFINITY;
  rows[7].arrival_ns = INT64_MAX;
  struct db_summary s;
  db_summary_init(&s);
  s.n_requests = 50;
  s.output_tok_s = 2.0 / 3.0;
  int64_t run;
  CHECK(db_save_run(db, &r, rows, 50, &s, &run) == ERR_OK);
  free(rows);
  CHECK(db_put_metric(db, run, "Average time per output token (s)", 0.0123) == ERR_OK);
  struct db_measurement m;
  db_measurement_init(&m);
  m.kind = "attention";
  m.hardware = "h100-sxm";
  m.batch = 16;
  m.ctx_len = 2048;
  m.q_len = 1;
  m.lat_us_median = 31.0;
  m.count = 20;
  m.run_id = run;
  m.extra_json = "{\"heads\": [64, 4]}";
  db_provenance_fill(&m.prov);
  CHECK(db_put_measurement(db, &m) == ERR_OK);
  int64_t hits[3] = {1, 2, 3};
  CHECK(db_put_expert_hits(db, run, 1, 3, hits) == ERR_OK);
  db_close(db);

  const char *d1 = tmp_path("d1.sql"), *d2 = tmp_path("d2.sql");
  CHECK(export_to(src, d1) == ERR_OK);
  int64_t n_rows = 0;
  CHECK(db_import_sql(dst, d1, &n_rows) == ERR_OK);
  /* 1 hardware + 1 extra hardware + 1 model + 1 run + 50 requests + 1 summary + 1 metric +
   * 1 measurement + 3 hits */
  CHECK_MSG(n_rows == 60, "imported %lld rows", (long long)n_rows);
  CHECK(export_to(dst, d2) == ERR_OK);
  size_t l1 = 0, l2 = 0;
  char *b1 = slurp(d1, &l1), *b2 = slurp(d2, &l2);
  CHECK(b1 && b2 && l1 > 1000 && l1 == l2 && !memcmp(b1, b2, l1));
  /* The content, not just the bytes, survived. */
  CHECK(db_open(dst, &db) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM runs WHERE label = 'it''s a \"label\"' || char(10) || "
                   "'line 2' || char(13, 10, 9) || 'tab µs ✓'") == 1);
  CHECK(scalar(db, "SELECT typeof(ttft_s) = 'real' AND ttft_s = 123456789.0 FROM requests WHERE idx = 5") == 1);
  CHECK(scalar(db, "SELECT ttft_s = 0.1 FROM requests WHERE idx = 3") == 1);
  CHECK(scalar(db, "SELECT tpot_s > 1e308 FROM requests WHERE idx = 6") == 1);
  CHECK(scalar(db, "SELECT arrival_ns = 9223372036854775807 FROM requests WHERE idx = 7") == 1);
  CHECK(scalar(db, "SELECT count(*) FROM requests WHERE tpot_s IS NULL") == 6);
  db_close(db);
  CHECK(strstr(b1, "PRAGMA user_version = ") == strstr(b1, "PRAGMA")); /* the version first */
  CHECK(strstr(b1, "0.1,") != NULL && strstr(b1, "0.10000000000000001") == NULL);
  CHECK(strstr(b1, "CREATE TABLE IF NOT EXISTS runs") != NULL);
  free(b2);

  /* Importing the same dump again collides on primary keys: an error naming the dump's line,
   * and the database keeps exactly what it had. */
  CHECK(db_import_sql(dst, d1, NULL) == ERR_INPUT);
  CHECK_MSG(strstr(err_msg(), "d1.sql:") && strstr(err_msg(), "UNIQUE"), "%s", err_msg());
  CHECK(export_to(dst, d2) == ERR_OK);
  b2 = slurp(d2, &l2);
  CHECK(l1 == l2 && !memcmp(b1, b2, l1));
  free(b1);
  free(b2);

  /* --merge: the same dump again, renumbered: every row of it twice except hardware and
   * models (matched by name), foreign keys pointing at the new copies. */
  int64_t n_merged = 0;
  CHECK(db_import_merge(dst, d1, &n_merged) == ERR_OK);
  CHECK_MSG(n_merged == 57, "merged %lld rows", (long long)n_merged); /* 60 - 2 hw - 1 model */
  CHECK(db_open(dst, &db) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM runs") == 2);
  CHECK(scalar(db, "SELECT count(*) FROM hardware") == 2);
  CHECK(scalar(db, "SELECT count(*) FROM requests WHERE run_id = 2") == 50);
  CHECK(scalar(db, "SELECT count(*) FROM run_summaries WHERE run_id = 2") == 1);
  CHECK(scalar(db, "SELECT run_id FROM measurements WHERE measurement_id = 2") == 2);
  CHECK(scalar(db, "SELECT sum(count) FROM expert_hits WHERE run_id = 2") == 6);
  CHECK(scalar(db, "SELECT count(DISTINCT label) FROM runs") == 1);
  CHECK(scalar(db, "SELECT count(*) FROM measurements m JOIN hardware h USING (hardware_id) "
                   "WHERE h.name = 'h100-sxm'") == 2);
  CHECK(scalar(db, "PRAGMA foreign_key_check") == -999);
  db_close(db);
  /* A plain import of colliding ids says --merge exists. */
  CHECK(db_import_sql(dst, d1, NULL) == ERR_INPUT);
  CHECK_MSG(strstr(err_msg(), "--merge"), "%s", err_msg());
  /* A merge that fails (a bad dump) adds nothing. */
  write_file(d2, "INSERT INTO runs VALUES(1,'simulated',NULL,1,1,1,1,1,1,1,NULL,NULL,NULL,'{}','v','c',NULL,NULL,NULL,NULL,NULL,'t');\n");
  CHECK(db_import_merge(dst, d2, NULL) != ERR_OK);
  CHECK(db_open(dst, &db) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM runs") == 2);
  db_close(db);

  /* A one-table dump holds that table only. */
  CHECK(db_open(src, &db) == ERR_OK);
  FILE *f = fopen(d2, "wb");
  CHECK(db_export_sql(db, "measurements", f) == ERR_OK);
  fclose(f);
  /* ... with the tables it references (whole), and loads into an empty database on its own. */
  b2 = slurp(d2, &l2);
  CHECK(strstr(b2, "INSERT INTO measurements VALUES(1,'attention'") != NULL);
  CHECK(strstr(b2, "INSERT INTO hardware VALUES(2,'h100-sxm'") != NULL);
  CHECK(strstr(b2, "INSERT INTO runs VALUES(1,") != NULL);
  CHECK(strstr(b2, "CREATE TABLE IF NOT EXISTS models") != NULL);
  CHECK(strstr(b2, "requests") == NULL && strstr(b2, "expert_hits") == NULL);
  free(b2);
  int64_t n_one = 0;
  CHECK(db_import_sql(tmp_path("one.db"), d2, &n_one) == ERR_OK);
  CHECK_MSG(n_one == 5, "%lld rows", (long long)n_one); /* 2 hardware, 1 model, 1 run, 1 row */
  f = fopen(d2, "wb");
  CHECK(db_export_sql(db, "nope", f) == ERR_INPUT);
  fclose(f);
  db_close(db);
}

static void test_import_errors(void) {
  const char *path = tmp_path("imp.db"), *sql = tmp_path("bad.sql");
  CHECK(db_import_sql(path, tmp_path("nope.sql"), NULL) == ERR_NOENT);
  CHECK(strstr(err_msg(), "nope.sql") != NULL);

  write_file(sql, "PRAGMA user_version = 1;\nBEGIN TRANSACTION;\n"
                  "INSERT INTO hardware VALUES(1,'x',NULL,NULL);\n"
                  "INSERT INTO hardware VALUES(2,'y',NULL,NULL)\n"
                  "INSERT INTO hardware VALUES(3,'z',NULL,NULL);\nCOMMIT;\n");
  CHECK(db_import_sql(path, sql, NULL) == ERR_INPUT);
  CHECK_MSG(strstr(err_msg(), "bad.sql:4:") && strstr(err_msg(), "syntax error"), "%s", err_msg());
  struct db *db;
  CHECK(db_open(path, &db) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM hardware") == 0); /* row 1 rolled back */
  db_close(db);

  write_file(sql, "INSERT INTO hardware VALUES(1,'x',NULL,NULL);\n-- comment\n\nDROP TABLE runs;\n");
  CHECK(db_import_sql(path, sql, NULL) == ERR_INPUT);
  CHECK_MSG(strstr(err_msg(), "bad.sql:4:") && strstr(err_msg(), "DROP"), "%s", err_msg());

  /* A child row whose parent never comes: the deferred FK check fails the commit. */
  write_file(sql, "INSERT INTO run_metrics VALUES(77,'k',1.0);\n");
  CHECK(db_import_sql(path, sql, NULL) == ERR_DB);
  CHECK_MSG(strstr(err_msg(), "FOREIGN KEY") && strstr(err_msg(), "bad.sql"), "%s", err_msg());

  write_file(sql, "-- nothing here\n");
  CHECK(db_import_sql(path, sql, NULL) == ERR_INPUT);
  write_file(sql, "PRAGMA user_version = 4000;\n");
  CHECK(db_import_sql(path, sql, NULL) == ERR_INPUT);
  CHECK(strstr(err_msg(), "4000") != NULL);
  CHECK(db_open(path, &db) == ERR_OK);
  CHECK(scalar(db, "SELECT count(*) FROM hardware") + scalar(db, "SELECT count(*) FROM run_metrics") == 0);
  db_close(db);

  /* A plain CREATE TABLE of an existing table (sqlite3 shell .dump style) is accepted. */
  write_file(sql, "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n"
                  "CREATE TABLE hardware (hardware_id INTEGER PRIMARY KEY, name TEXT);\n"
                  "INSERT INTO hardware VALUES(5,'l40s','NVIDIA L40S',NULL);\nCOMMIT;\n");
  int64_t n = 0;
  CHECK(db_import_sql(path, sql, &n) == ERR_OK);
  CHECK(n == 1);

  /* CSV: a good file loads; a bad value names its line and loads nothing. */
  const char *csv = tmp_path("m.csv");
  write_file(csv, "kind,op,hardware,m,n,k,lat_us_median,lat_us_p10,count,extra_json\n"
                  "gemm,qkv,h100-sxm,1,9216,4096,20.0,19.5,50,\"{\"\"src\"\": \"\"torch, int4\"\"}\"\n"
                  "gemm,o_proj,h100-sxm,1,4096,8192,19.3,,50,\n");
  CHECK(db_open(path, &db) == ERR_OK);
  CHECK(db_import_csv(db, csv, &n) == ERR_OK);
  CHECK(n == 2);
  CHECK(scalar(db, "SELECT count(*) FROM measurements WHERE lat_us_p10 IS NULL AND n = 4096") == 1);
  CHECK(!strcmp(scalar_text(db, "SELECT json_extract(extra_json, '$.src') FROM measurements "
                                "WHERE op = 'qkv'"), "torch, int4"));
  CHECK(scalar(db, "SELECT count(*) FROM measurements WHERE tool_version IS NOT NULL") == 2);
  write_file(csv, "kind,m,lat_us_median,count\ngemm,1,2.0,5\ngemm,x1,2.0,5\n");
  CHECK(db_import_csv(db, csv, &n) == ERR_INPUT);
  CHECK_MSG(strstr(err_msg(), "m.csv:3:") && strstr(err_msg(), "column m"), "%s", err_msg());
  write_file(csv, "kind,m,lat_us_median,count\ngemm,1,2.0,5\nsoftmax,1,2.0,5\n");
  CHECK(db_import_csv(db, csv, &n) == ERR_INPUT);
  CHECK_MSG(strstr(err_msg(), "m.csv:3:") && strstr(err_msg(), "softmax"), "%s", err_msg());
  write_file(csv, "kind,mm,lat_us_median,count\n");
  CHECK(db_import_csv(db, csv, &n) == ERR_INPUT);
  CHECK(strstr(err_msg(), "'mm'") != NULL);
  write_file(csv, "kind,m,lat_us_median,count\ngemm,1,2.0\n");
  CHECK(db_import_csv(db, csv, &n) == ERR_INPUT);
  write_file(csv, "kind,m,lat_us_median,count\ngemm,\"1,2.0,5\n");
  CHECK(db_import_csv(db, csv, &n) == ERR_INPUT);
  CHECK(strstr(err_msg(), "m.csv:2:") != NULL);
  CHECK(scalar(db, "SELECT count(*) FROM measurements") == 2);
  db_close(db);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/servesim_test_db.XXXXXX");
  if (!mkdtemp(dir)) CHECK_SKIP("cannot create a temporary directory");
  setenv("SOURCE_DATE_EPOCH", "1795000000", 1);
  test_open_migrate();
  test_open_errors();
  test_measurements();
  test_runs();
  test_dump_roundtrip();
  test_import_errors();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_report("test_db");
}
