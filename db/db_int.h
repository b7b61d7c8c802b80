/* db_int: what the db/ files share and nothing outside db/ should use: the handle's layout,
 * the embedded schema, SQLite error capture, NULL-aware binding and the per-call savepoint. */
#ifndef SERVESIM_DB_INT_H
#define SERVESIM_DB_INT_H

#include <stdint.h>

#include "db/db.h"

struct db {
  sqlite3 *h;
  char *path;          /* as given to db_open (strdup) */
  int in_txn;          /* inside db_begin .. db_commit/db_rollback */
  char msg[768];       /* last error, also copied to err_msg() */
};

extern const char db_schema_sql[]; /* db/schema.sql, NUL-terminated (generated db_schema.c) */

/* Records "PATH: <sqlite errmsg> (what)" as this handle's and the thread's error; returns ERR_DB. */
int db_sqlerr(struct db *db, const char *what);
/* Records a formatted error of the given code with the "PATH: " prefix; returns code. */
int db_fail(struct db *db, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int db_exec(struct db *db, const char *sql, const char *what);
int db_prepare(struct db *db, const char *sql, sqlite3_stmt **st, const char *what);

/* Binding with the NULL conventions of db.h: NULL/"" string, DB_UNSET integer, NAN double. */
void db_bind_text(sqlite3_stmt *st, int i, const char *s);
void db_bind_i64(sqlite3_stmt *st, int i, int64_t v);
void db_bind_f64(sqlite3_stmt *st, int i, double v);

/* Every db_put_* runs between these: a SAVEPOINT that is the whole transaction when no
 * db_begin is open and nests inside one otherwise. db_sp_end releases on rc == ERR_OK and
 * rolls the savepoint back otherwise; it returns rc, or ERR_DB if the release itself failed. */
int db_sp_begin(struct db *db);
int db_sp_end(struct db *db, int rc);

/* Upserts by name; return the id in *id. Must run inside a savepoint. */
int db_hardware_id(struct db *db, const char *name, const char *gpu, const char *spec_json,
                   int64_t *id);
int db_model_id(struct db *db, const char *name, const char *quant, const char *config_json,
                int64_t *id);

#endif
