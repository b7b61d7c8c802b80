/* db_run: runs (simulated, live, profile), their per-request results, summaries and named
 * metrics. Requests go in through one prepared statement reused for every row: the cost of a
 * row is then a bind and a step, about a microsecond, not a parse. */
#include <math.h>
#include <string.h>

#include "common/err.h"
#include "db/db_int.h"

void db_run_init(struct db_run *r) {
  memset(r, 0, sizeof *r);
  r->n_gpus = r->tp = r->pp = r->dp = r->ep = 1;
  r->seed = DB_UNSET;
}

void db_summary_init(struct db_summary *s) {
  s->concurrency = DB_UNSET;
  s->n_requests = s->n_succeeded = s->n_failed = 0;
  s->duration_s = s->output_tok_s = s->total_tok_s = s->request_s = NAN;
  s->ttft_avg_s = s->tpot_avg_s = s->latency_avg_s = s->itl_avg_s = NAN;
  s->ttft_p99_s = s->tpot_p99_s = s->latency_p99_s = NAN;
  s->goodput_req_s = NAN;
}

static int db_run_row(struct db *db, const struct db_run *r, int64_t *id) {
  if (!r->kind || (strcmp(r->kind, "simulated") && strcmp(r->kind, "live") &&
                   strcmp(r->kind, "profile")))
    return db_fail(db, ERR_INPUT, "run kind '%s' is not simulated, live or profile",
                   r->kind ? r->kind : "(null)");
  if (!r->config_json || !*r->config_json)
    return db_fail(db, ERR_INPUT, "a run needs its configuration as JSON (config_json)");
  int64_t model_id, hw_id;
  int rc;
  if ((rc = db_model_id(db, r->model, r->model_quant, r->model_json, &model_id))) return rc;
  if ((rc = db_hardware_id(db, r->hardware, r->prov.gpu_name, r->hardware_json, &hw_id)))
    return rc;
  sqlite3_stmt *st;
  rc = db_prepare(db,
                  "INSERT INTO runs (kind, label, model_id, hardware_id, n_gpus, tp, pp, dp, ep, "
                  "workload, cost_model, seed, config_json, tool_version, git_commit, host, "
                  "gpu_name, driver_version, cuda_version, nccl_version, created_at) VALUES "
                  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
                  "?18, ?19, ?20, ?21)",
                  &st, "storing a run");
  if (rc) return rc;
  int i = 1;
  db_bind_text(st, i++, r->kind);
  db_bind_text(st, i++, r->label);
  sqlite3_bind_int64(st, i++, model_id);
  sqlite3_bind_int64(st, i++, hw_id);
  const int sizes[] = {r->n_gpus, r->tp, r->pp, r->dp, r->ep};
  for (size_t j = 0; j < 5; j++) sqlite3_bind_int(st, i++, sizes[j]);
  db_bind_text(st, i++, r->workload);
  db_bind_text(st, i++, r->cost_model);
  db_bind_i64(st, i++, r->seed);
  db_bind_text(st, i++, r->config_json);
  const char *prov[] = {r->prov.tool_version,   r->prov.git_commit,   r->prov.host,
                        r->prov.gpu_name,       r->prov.driver_version, r->prov.cuda_version,
                        r->prov.nccl_version,   r->prov.created_at};
  for (size_t j = 0; j < sizeof prov / sizeof prov[0]; j++) db_bind_text(st, i++, prov[j]);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = db_sqlerr(db, "storing a run");
  else
    *id = sqlite3_last_insert_rowid(db->h);
  sqlite3_finalize(st);
  return rc;
}

int db_put_run(struct db *db, const struct db_run *r, int64_t *run_id) {
  int64_t id = 0;
  int rc = db_sp_begin(db);
  if (rc) return rc;
  rc = db_sp_end(db, db_run_row(db, r, &id));
  if (!rc) *run_id = id;
  return rc;
}

static int db_request_rows(struct db *db, int64_t run_id, const struct db_request_row *rows,
                           int64_t n) {
  sqlite3_stmt *st;
  int rc = db_prepare(db,
                      "INSERT INTO requests (run_id, idx, arrival_ns, start_ns, first_token_ns, "
                      "last_token_ns, in_tok, out_tok, n_preempt, replica, ok, ttft_s, tpot_s, "
                      "latency_s, e2e_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                      "?12, ?13, ?14, ?15)",
                      &st, "storing requests");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  for (int64_t r = 0; r < n; r++) {
    const struct db_request_row *q = &rows[r];
    sqlite3_bind_int64(st, 2, q->idx);
    sqlite3_bind_int64(st, 3, q->arrival_ns);
    sqlite3_bind_int64(st, 4, q->start_ns);
    db_bind_i64(st, 5, q->first_token_ns);
    db_bind_i64(st, 6, q->last_token_ns);
    sqlite3_bind_int(st, 7, q->in_tok);
    sqlite3_bind_int(st, 8, q->out_tok);
    sqlite3_bind_int(st, 9, q->n_preempt);
    db_bind_i64(st, 10, q->replica);
    sqlite3_bind_int(st, 11, q->ok);
    db_bind_f64(st, 12, q->ttft_s);
    db_bind_f64(st, 13, q->tpot_s);
    db_bind_f64(st, 14, q->latency_s);
    db_bind_f64(st, 15, q->e2e_s);
    if (sqlite3_step(st) != SQLITE_DONE) {
      char what[96];
      snprintf(what, sizeof what, "storing request %lld of run %lld", (long long)q->idx,
               (long long)run_id);
      rc = db_sqlerr(db, what);
      break;
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  return rc;
}

int db_put_requests(struct db *db, int64_t run_id, const struct db_request_row *rows, int64_t n) {
  int rc = db_sp_begin(db);
  if (rc) return rc;
  return db_sp_end(db, db_request_rows(db, run_id, rows, n));
}

static int db_summary_row(struct db *db, int64_t run_id, const struct db_summary *s) {
  sqlite3_stmt *st;
  int rc = db_prepare(db,
                      "INSERT OR REPLACE INTO run_summaries (run_id, concurrency, n_requests, "
                      "n_succeeded, n_failed, duration_s, output_tok_s, total_tok_s, request_s, "
                      "ttft_avg_s, tpot_avg_s, latency_avg_s, itl_avg_s, ttft_p99_s, tpot_p99_s, "
                      "latency_p99_s, goodput_req_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                      "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                      &st, "storing a run summary");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  db_bind_i64(st, 2, s->concurrency);
  sqlite3_bind_int64(st, 3, s->n_requests);
  sqlite3_bind_int64(st, 4, s->n_succeeded);
  sqlite3_bind_int64(st, 5, s->n_failed);
  const double f[] = {s->duration_s,    s->output_tok_s, s->total_tok_s,   s->request_s,
                      s->ttft_avg_s,    s->tpot_avg_s,   s->latency_avg_s, s->itl_avg_s,
                      s->ttft_p99_s,    s->tpot_p99_s,   s->latency_p99_s, s->goodput_req_s};
  for (int j = 0; j < 12; j++) db_bind_f64(st, 6 + j, f[j]);
  if (sqlite3_step(st) != SQLITE_DONE) rc = db_sqlerr(db, "storing a run summary");
  sqlite3_finalize(st);
  return rc;
}

int db_put_summary(struct db *db, int64_t run_id, const struct db_summary *s) {
  int rc = db_sp_begin(db);
  if (rc) return rc;
  return db_sp_end(db, db_summary_row(db, run_id, s));
}

static int db_metric_row(struct db *db, int64_t run_id, const char *key, double value) {
  if (!key || !*key) return db_fail(db, ERR_INPUT, "run %lld: a metric needs a key",
                                    (long long)run_id);
  sqlite3_stmt *st;
  int rc = db_prepare(db, "INSERT OR REPLACE INTO run_metrics (run_id, key, value) "
                          "VALUES (?1, ?2, ?3)", &st, "storing a metric");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  db_bind_text(st, 2, key);
  db_bind_f64(st, 3, value);
  if (sqlite3_step(st) != SQLITE_DONE) {
    char what[160];
    snprintf(what, sizeof what, "storing metric '%.100s' of run %lld", key, (long long)run_id);
    rc = db_sqlerr(db, what);
  }
  sqlite3_finalize(st);
  return rc;
}

int db_put_metric(struct db *db, int64_t run_id, const char *key, double value) {
  int rc = db_sp_begin(db);
  if (rc) return rc;
  return db_sp_end(db, db_metric_row(db, run_id, key, value));
}

int db_save_run(struct db *db, const struct db_run *r, const struct db_request_row *rows,
                int64_t n, const struct db_summary *s, int64_t *run_id) {
  /* Its own transaction, or a savepoint inside the caller's db_begin (who then stores more of
   * the run, e.g. its metrics, and commits it all at once). */
  int outer = db->in_txn;
  int64_t id = 0;
  int rc = outer ? db_sp_begin(db) : db_begin(db);
  if (rc) return rc;
  if ((rc = db_put_run(db, r, &id)) || (rc = db_put_requests(db, id, rows, n)) ||
      (s && (rc = db_put_summary(db, id, s)))) {
    if (outer) return db_sp_end(db, rc);
    db_rollback(db);
    return rc;
  }
  if ((rc = outer ? db_sp_end(db, ERR_OK) : db_commit(db))) return rc;
  if (run_id) *run_id = id;
  return ERR_OK;
}

int db_put_metrics(struct db *db, int64_t run_id, const struct db_metric *kv, int n) {
  int rc = db_sp_begin(db);
  if (rc) return rc;
  for (int i = 0; i < n && !rc; i++) rc = db_metric_row(db, run_id, kv[i].key, kv[i].value);
  return db_sp_end(db, rc);
}
