/* db_meas: measurements (timed GPU operations with shape and provenance) and expert hit counts;
 * written by servesim-exec profile, read back by the calibrated cost model. */
#include <math.h>
#include <string.h>

#include "common/err.h"
#include "db/db_int.h"

const char *const db_kinds[DB_N_KINDS] = {"gemm",    "moe", "attention", "allreduce",
                                          "all2all", "p2p", "step"};

void db_measurement_init(struct db_measurement *m) {
  memset(m, 0, sizeof *m);
  m->run_id = DB_UNSET;
  m->m = m->n = m->k = DB_UNSET;
  m->tokens = m->experts = m->topk = m->batch = m->ctx_len = m->q_len = DB_UNSET;
  m->n_bytes = m->ranks = m->tp = m->ep = m->quant_group = DB_UNSET;
  m->tokens_per_expert = NAN;
  m->lat_us_median = m->lat_us_p10 = m->lat_us_p90 = NAN;
  m->count = 0;
}

/* The measurements columns this file reads and writes, in bind order (index + 1). */
#define DB_MEAS_COLS                                                                            \
  "kind, op, impl, dtype, hardware_id, model_id, run_id, m, n, k, tokens, experts, topk, "      \
  "tokens_per_expert, batch, ctx_len, q_len, n_bytes, ranks, tp, ep, quant_group, "             \
  "lat_us_median, lat_us_p10, lat_us_p90, count, extra_json, tool_version, git_commit, "        \
  "gpu_name, driver_version, cuda_version, nccl_version, host, created_at"

static int db_meas_row(struct db *db, const struct db_measurement *m, int64_t *id) {
  int known = 0;
  for (int i = 0; i < DB_N_KINDS && m->kind; i++) known |= !strcmp(m->kind, db_kinds[i]);
  if (!known)
    return db_fail(db, ERR_INPUT, "measurement kind '%s' is not one of gemm, moe, attention, "
                   "allreduce, all2all, p2p, step", m->kind ? m->kind : "(null)");
  int rc;
  int64_t hw_id = DB_UNSET, model_id = DB_UNSET;
  if (m->hardware && *m->hardware &&
      (rc = db_hardware_id(db, m->hardware, m->prov.gpu_name, NULL, &hw_id)))
    return rc;
  if (m->model && *m->model && (rc = db_model_id(db, m->model, NULL, NULL, &model_id))) return rc;
  sqlite3_stmt *st;
  rc = db_prepare(db,
                  "INSERT INTO measurements (" DB_MEAS_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                  "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, "
                  "?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35)",
                  &st, "storing a measurement");
  if (rc) return rc;
  int i = 1;
  db_bind_text(st, i++, m->kind);
  db_bind_text(st, i++, m->op);
  db_bind_text(st, i++, m->impl);
  db_bind_text(st, i++, m->dtype);
  db_bind_i64(st, i++, hw_id);
  db_bind_i64(st, i++, model_id);
  db_bind_i64(st, i++, m->run_id);
  const int64_t shape[] = {m->m, m->n, m->k, m->tokens, m->experts, m->topk};
  for (size_t j = 0; j < sizeof shape / sizeof shape[0]; j++) db_bind_i64(st, i++, shape[j]);
  db_bind_f64(st, i++, m->tokens_per_expert);
  const int64_t shape2[] = {m->batch, m->ctx_len, m->q_len, m->n_bytes,
                            m->ranks, m->tp,      m->ep,    m->quant_group};
  for (size_t j = 0; j < sizeof shape2 / sizeof shape2[0]; j++) db_bind_i64(st, i++, shape2[j]);
  db_bind_f64(st, i++, m->lat_us_median);
  db_bind_f64(st, i++, m->lat_us_p10);
  db_bind_f64(st, i++, m->lat_us_p90);
  sqlite3_bind_int64(st, i++, m->count);
  db_bind_text(st, i++, m->extra_json);
  const char *prov[] = {m->prov.tool_version, m->prov.git_commit,   m->prov.gpu_name,
                        m->prov.driver_version, m->prov.cuda_version, m->prov.nccl_version,
                        m->prov.host,           m->prov.created_at};
  for (size_t j = 0; j < sizeof prov / sizeof prov[0]; j++) db_bind_text(st, i++, prov[j]);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = db_sqlerr(db, "storing a measurement");
  else
    *id = sqlite3_last_insert_rowid(db->h);
  sqlite3_finalize(st);
  return rc;
}

int db_put_measurement_id(struct db *db, const struct db_measurement *m, int64_t *id) {
  int64_t row = 0;
  int rc = db_sp_begin(db);
  if (rc) return rc;
  rc = db_sp_end(db, db_meas_row(db, m, &row));
  if (!rc && id) *id = row;
  return rc;
}

int db_put_measurement(struct db *db, const struct db_measurement *m) {
  return db_put_measurement_id(db, m, NULL);
}

static const char *db_col_text(sqlite3_stmt *st, int i) {
  return (const char *)sqlite3_column_text(st, i); /* NULL for SQL NULL */
}

static int64_t db_col_i64(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? DB_UNSET : sqlite3_column_int64(st, i);
}

static double db_col_f64(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static void db_col_copy(char *dst, size_t cap, sqlite3_stmt *st, int i) {
  const char *s = db_col_text(st, i);
  snprintf(dst, cap, "%s", s ? s : "");
}

int db_get_measurements(struct db *db, const char *kind, const char *gpu, db_measurement_fn fn,
                        void *ctx) {
  sqlite3_stmt *st;
  int rc = db_prepare(db,
                      "SELECT me.measurement_id, me.kind, me.op, me.impl, me.dtype, h.name, "
                      "mo.name, me.run_id, me.m, me.n, me.k, me.tokens, me.experts, me.topk, "
                      "me.tokens_per_expert, me.batch, me.ctx_len, me.q_len, me.n_bytes, "
                      "me.ranks, me.tp, me.ep, me.quant_group, me.lat_us_median, me.lat_us_p10, "
                      "me.lat_us_p90, me.count, me.extra_json, me.tool_version, me.git_commit, "
                      "me.gpu_name, me.driver_version, me.cuda_version, me.nccl_version, "
                      "me.host, me.created_at "
                      "FROM measurements me LEFT JOIN hardware h USING (hardware_id) "
                      "LEFT JOIN models mo USING (model_id) "
                      "WHERE (?1 IS NULL OR me.kind = ?1) "
                      "AND (?2 IS NULL OR h.name = ?2 OR me.gpu_name = ?2) "
                      "ORDER BY me.measurement_id",
                      &st, "reading measurements");
  if (rc) return rc;
  db_bind_text(st, 1, kind);
  db_bind_text(st, 2, gpu);
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    struct db_measurement m;
    db_measurement_init(&m);
    int i = 0;
    m.measurement_id = sqlite3_column_int64(st, i++);
    m.kind = db_col_text(st, i++);
    m.op = db_col_text(st, i++);
    m.impl = db_col_text(st, i++);
    m.dtype = db_col_text(st, i++);
    m.hardware = db_col_text(st, i++);
    m.model = db_col_text(st, i++);
    m.run_id = db_col_i64(st, i++);
    m.m = db_col_i64(st, i++);
    m.n = db_col_i64(st, i++);
    m.k = db_col_i64(st, i++);
    m.tokens = db_col_i64(st, i++);
    m.experts = db_col_i64(st, i++);
    m.topk = db_col_i64(st, i++);
    m.tokens_per_expert = db_col_f64(st, i++);
    m.batch = db_col_i64(st, i++);
    m.ctx_len = db_col_i64(st, i++);
    m.q_len = db_col_i64(st, i++);
    m.n_bytes = db_col_i64(st, i++);
    m.ranks = db_col_i64(st, i++);
    m.tp = db_col_i64(st, i++);
    m.ep = db_col_i64(st, i++);
    m.quant_group = db_col_i64(st, i++);
    m.lat_us_median = db_col_f64(st, i++);
    m.lat_us_p10 = db_col_f64(st, i++);
    m.lat_us_p90 = db_col_f64(st, i++);
    m.count = sqlite3_column_int64(st, i++);
    m.extra_json = db_col_text(st, i++);
    db_col_copy(m.prov.tool_version, sizeof m.prov.tool_version, st, i++);
    db_col_copy(m.prov.git_commit, sizeof m.prov.git_commit, st, i++);
    db_col_copy(m.prov.gpu_name, sizeof m.prov.gpu_name, st, i++);
    db_col_copy(m.prov.driver_version, sizeof m.prov.driver_version, st, i++);
    db_col_copy(m.prov.cuda_version, sizeof m.prov.cuda_version, st, i++);
    db_col_copy(m.prov.nccl_version, sizeof m.prov.nccl_version, st, i++);
    db_col_copy(m.prov.host, sizeof m.prov.host, st, i++);
    db_col_copy(m.prov.created_at, sizeof m.prov.created_at, st, i++);
    if ((rc = fn(ctx, &m))) break;
  }
  if (!rc && s != SQLITE_DONE) rc = db_sqlerr(db, "reading measurements");
  sqlite3_finalize(st);
  return rc;
}

static int db_hits_rows(struct db *db, int64_t run_id, int n_layers, int n_experts,
                        const int64_t *counts) {
  if (n_layers < 0 || n_experts < 0)
    return db_fail(db, ERR_INPUT, "expert hits: %d layers x %d experts", n_layers, n_experts);
  sqlite3_stmt *st;
  int rc = db_prepare(db,
                      "INSERT INTO expert_hits (run_id, layer, expert, count) VALUES (?1, ?2, ?3, ?4) "
                      "ON CONFLICT (run_id, layer, expert) DO UPDATE SET count = expert_hits.count + excluded.count",
                      &st, "storing expert hits");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  for (int l = 0; l < n_layers && !rc; l++)
    for (int e = 0; e < n_experts; e++) {
      sqlite3_bind_int(st, 2, l);
      sqlite3_bind_int(st, 3, e);
      sqlite3_bind_int64(st, 4, counts[(int64_t)l * n_experts + e]);
      if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_sqlerr(db, "storing expert hits");
        break;
      }
      sqlite3_reset(st);
    }
  sqlite3_finalize(st);
  return rc;
}

int db_put_expert_hits(struct db *db, int64_t run_id, int n_layers, int n_experts,
                       const int64_t *counts) {
  int rc = db_sp_begin(db);
  if (rc) return rc;
  return db_sp_end(db, db_hits_rows(db, run_id, n_layers, n_experts, counts));
}
