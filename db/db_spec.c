/* db_spec: hardware, models and layout verdicts: the things runs and measurements refer to.
 * Hardware and models are upserted by name so a run only has to name them. */
#include <math.h>
#include <string.h>

#include "common/err.h"
#include "db/db_int.h"

/* INSERT .. ON CONFLICT DO UPDATE .. RETURNING gives the id of a new or an existing row in one
 * statement; coalesce keeps what was stored first, so a later writer with less detail (a
 * measurement naming only the hardware) never erases the spec a run stored. */
static int db_upsert(struct db *db, const char *sql, const char *name, const char *a,
                     const char *b, int64_t *id, const char *what) {
  if (!name || !*name) return db_fail(db, ERR_INPUT, "%s: empty name", what);
  sqlite3_stmt *st;
  int rc = db_prepare(db, sql, &st, what);
  if (rc) return rc;
  db_bind_text(st, 1, name);
  db_bind_text(st, 2, a);
  db_bind_text(st, 3, b);
  if (sqlite3_step(st) == SQLITE_ROW)
    *id = sqlite3_column_int64(st, 0);
  else
    rc = db_sqlerr(db, what);
  sqlite3_finalize(st);
  return rc;
}

int db_hardware_id(struct db *db, const char *name, const char *gpu, const char *spec_json,
                   int64_t *id) {
  return db_upsert(db,
                   "INSERT INTO hardware (name, gpu, spec_json) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (name) DO UPDATE SET gpu = coalesce(hardware.gpu, excluded.gpu), "
                   "spec_json = coalesce(hardware.spec_json, excluded.spec_json) "
                   "RETURNING hardware_id",
                   name, gpu, spec_json, id, "storing hardware");
}

int db_model_id(struct db *db, const char *name, const char *quant, const char *config_json,
                int64_t *id) {
  return db_upsert(db,
                   "INSERT INTO models (name, quant, config_json) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (name) DO UPDATE SET quant = coalesce(models.quant, excluded.quant), "
                   "config_json = coalesce(models.config_json, excluded.config_json) "
                   "RETURNING model_id",
                   name, quant, config_json, id, "storing model");
}

int db_put_hardware(struct db *db, const char *name, const char *gpu, const char *spec_json,
                    int64_t *hardware_id) {
  int64_t id = 0;
  int rc = db_sp_begin(db);
  if (rc) return rc;
  rc = db_sp_end(db, db_hardware_id(db, name, gpu, spec_json, &id));
  if (!rc && hardware_id) *hardware_id = id;
  return rc;
}

int db_put_model(struct db *db, const char *name, const char *quant, const char *config_json,
                 int64_t *model_id) {
  int64_t id = 0;
  int rc = db_sp_begin(db);
  if (rc) return rc;
  rc = db_sp_end(db, db_model_id(db, name, quant, config_json, &id));
  if (!rc && model_id) *model_id = id;
  return rc;
}

static int db_layout_row(struct db *db, const struct db_layout *l, int64_t *id) {
  int64_t model_id, hw_id;
  int rc;
  if ((rc = db_model_id(db, l->model, NULL, NULL, &model_id))) return rc;
  if ((rc = db_hardware_id(db, l->hardware, NULL, NULL, &hw_id))) return rc;
  sqlite3_stmt *st;
  /* A newer verdict for the same layout replaces the old one (the rules or specs changed). */
  rc = db_prepare(db,
                  "INSERT INTO layouts (model_id, hardware_id, n_gpus, tp, pp, dp, ep, ok, "
                  "weight_bytes_rank, kv_bytes_token_rank, kv_blocks, kv_tokens, max_concurrency, "
                  "fails, tool_version, git_commit, created_at) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) "
                  "ON CONFLICT (model_id, hardware_id, n_gpus, tp, pp, dp, ep) DO UPDATE SET "
                  "ok = excluded.ok, weight_bytes_rank = excluded.weight_bytes_rank, "
                  "kv_bytes_token_rank = excluded.kv_bytes_token_rank, "
                  "kv_blocks = excluded.kv_blocks, kv_tokens = excluded.kv_tokens, "
                  "max_concurrency = excluded.max_concurrency, fails = excluded.fails, "
                  "tool_version = excluded.tool_version, git_commit = excluded.git_commit, "
                  "created_at = excluded.created_at RETURNING layout_id",
                  &st, "storing a layout");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, model_id);
  sqlite3_bind_int64(st, 2, hw_id);
  sqlite3_bind_int(st, 3, l->n_gpus);
  sqlite3_bind_int(st, 4, l->tp);
  sqlite3_bind_int(st, 5, l->pp);
  sqlite3_bind_int(st, 6, l->dp);
  sqlite3_bind_int(st, 7, l->ep);
  sqlite3_bind_int(st, 8, l->ok);
  db_bind_i64(st, 9, l->weight_bytes_rank);
  db_bind_i64(st, 10, l->kv_bytes_token_rank);
  db_bind_i64(st, 11, l->kv_blocks);
  db_bind_i64(st, 12, l->kv_tokens);
  db_bind_f64(st, 13, l->max_concurrency);
  db_bind_text(st, 14, l->fails);
  db_bind_text(st, 15, l->prov.tool_version);
  db_bind_text(st, 16, l->prov.git_commit);
  db_bind_text(st, 17, l->prov.created_at);
  if (sqlite3_step(st) == SQLITE_ROW)
    *id = sqlite3_column_int64(st, 0);
  else
    rc = db_sqlerr(db, "storing a layout");
  sqlite3_finalize(st);
  return rc;
}

int db_put_layout(struct db *db, const struct db_layout *l, int64_t *layout_id) {
  int64_t id = 0;
  int rc = db_sp_begin(db);
  if (rc) return rc;
  rc = db_sp_end(db, db_layout_row(db, l, &id));
  if (!rc && layout_id) *layout_id = id;
  return rc;
}
