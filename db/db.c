/* db: open/close, schema migrations, transactions, error capture and provenance for the SQLite
 * store (see db/db.h for the contract and db/schema.sql for the tables). */
#include "db/db_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

/* Busy timeout: a writer waits this long for another process's transaction (the executor's
 * profile and a notebook reading the same file) before reporting SQLITE_BUSY. */
#define DB_BUSY_TIMEOUT_MS 10000
#define DB_MAX_MIGRATIONS 64

/* ---- errors ---- */

int db_fail(struct db *db, int code, const char *fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  snprintf(db->msg, sizeof db->msg, "%s: %s", db->path, detail);
  return err_set(code, "%s", db->msg);
}

int db_sqlerr(struct db *db, const char *what) {
  return db_fail(db, ERR_DB, "%s (%s)", db->h ? sqlite3_errmsg(db->h) : "no handle", what);
}

int db_exec(struct db *db, const char *sql, const char *what) {
  if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK) return db_sqlerr(db, what);
  return ERR_OK;
}

int db_prepare(struct db *db, const char *sql, sqlite3_stmt **st, const char *what) {
  if (sqlite3_prepare_v2(db->h, sql, -1, st, NULL) != SQLITE_OK) {
    *st = NULL;
    return db_sqlerr(db, what);
  }
  return ERR_OK;
}

const char *db_errmsg(const struct db *db) { return db ? db->msg : "no database"; }
const char *db_path(const struct db *db) { return db ? db->path : ""; }
sqlite3 *db_handle(struct db *db) { return db->h; }

/* ---- binding ---- */

void db_bind_text(sqlite3_stmt *st, int i, const char *s) {
  if (!s || !*s)
    sqlite3_bind_null(st, i);
  else
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

void db_bind_i64(sqlite3_stmt *st, int i, int64_t v) {
  if (v == DB_UNSET)
    sqlite3_bind_null(st, i);
  else
    sqlite3_bind_int64(st, i, v);
}

void db_bind_f64(sqlite3_stmt *st, int i, double v) {
  if (isnan(v))
    sqlite3_bind_null(st, i);
  else
    sqlite3_bind_double(st, i, v);
}

/* ---- migrations: db/schema.sql split at "-- @migration N:" lines ---- */

struct db_migration {
  int version;
  const char *sql; /* points into db_schema_sql */
  size_t len;
};

static const char db_marker[] = "-- @migration ";

/* Splits the embedded schema; the list is validated once (versions 1, 2, ... in order), and a
 * malformed schema.sql is a build bug, so it aborts with the offending version. */
static int db_migrations(const struct db_migration **out) {
  static struct db_migration list[DB_MAX_MIGRATIONS];
  static int n = -1;
  if (n >= 0) {
    *out = list;
    return n;
  }
  int count = 0;
  const char *p = db_schema_sql;
  while ((p = strstr(p, db_marker))) {
    if (p != db_schema_sql && p[-1] != '\n') { /* only a marker at the start of a line counts */
      p += sizeof db_marker - 1;
      continue;
    }
    int v = atoi(p + sizeof db_marker - 1);
    ERR_ASSERT(count < DB_MAX_MIGRATIONS, "schema.sql has more than %d migrations",
               DB_MAX_MIGRATIONS);
    ERR_ASSERT(v == count + 1, "schema.sql: migration %d follows %d (must count 1, 2, ...)", v,
               count);
    list[count].version = v;
    list[count].sql = p;
    if (count > 0) list[count - 1].len = (size_t)(p - list[count - 1].sql);
    count++;
    p += sizeof db_marker - 1;
  }
  ERR_ASSERT(count > 0, "schema.sql has no '%s1:' line", db_marker);
  list[count - 1].len = strlen(list[count - 1].sql);
  n = count;
  *out = list;
  return n;
}

int db_schema_latest(void) {
  const struct db_migration *m;
  return db_migrations(&m);
}

static int db_user_version(struct db *db, int *v) {
  sqlite3_stmt *st;
  int rc = db_prepare(db, "PRAGMA user_version", &st, "reading the schema version");
  if (rc) return rc;
  if (sqlite3_step(st) != SQLITE_ROW) {
    rc = db_sqlerr(db, "reading the schema version");
  } else {
    *v = sqlite3_column_int(st, 0);
  }
  sqlite3_finalize(st);
  return rc;
}

int db_schema_version(struct db *db) {
  int v = -1;
  return db_user_version(db, &v) ? -1 : v;
}

/* Applies one migration and stamps its version in the same transaction: a failure leaves the
 * database at the previous version, never half-migrated. BEGIN IMMEDIATE takes the write lock
 * first, and the version is read again under it, so two processes opening a new file at once
 * do not both migrate it. */
static int db_apply(struct db *db, const struct db_migration *m) {
  int rc = db_exec(db, "BEGIN IMMEDIATE", "starting a migration");
  if (rc) return rc;
  int v = 0;
  if ((rc = db_user_version(db, &v))) goto fail;
  if (v >= m->version) return db_exec(db, "COMMIT", "migration done elsewhere");
  char *sql = malloc(m->len + 64);
  if (!sql) {
    rc = db_fail(db, ERR_NOMEM, "out of memory for migration %d", m->version);
    goto fail;
  }
  memcpy(sql, m->sql, m->len);
  snprintf(sql + m->len, 64, ";\nPRAGMA user_version = %d;", m->version);
  char *emsg = NULL;
  if (sqlite3_exec(db->h, sql, NULL, NULL, &emsg) != SQLITE_OK) {
    rc = db_fail(db, ERR_DB, "migration %d failed: %s", m->version, emsg ? emsg : "?");
    sqlite3_free(emsg);
    free(sql);
    goto fail;
  }
  free(sql);
  if ((rc = db_exec(db, "COMMIT", "committing a migration"))) goto fail;
  return ERR_OK;
fail:
  if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static int db_migrate_to(struct db *db, int target) {
  const struct db_migration *list;
  int n = db_migrations(&list);
  int v = 0, rc;
  if ((rc = db_user_version(db, &v))) return rc;
  for (int i = 0; i < n && i < target; i++)
    if (list[i].version > v && (rc = db_apply(db, &list[i]))) return rc;
  return ERR_OK;
}

int db_migrate(struct db *db) { return db_migrate_to(db, db_schema_latest()); }

/* ---- open / close ---- */

int db_open_ex(const char *path, int flags, int max_version, struct db **out) {
  *out = NULL;
  if (!path || !*path) return err_set(ERR_INPUT, "database path is empty");
  int latest = db_schema_latest();
  if (max_version <= 0 || max_version > latest) max_version = latest;
  if ((flags & DB_OPEN_MUST_EXIST) && access(path, F_OK) != 0)
    return err_set(ERR_NOENT, "%s: no such database (servesim db init --db %s creates one)", path,
                   path);
  struct db *db = calloc(1, sizeof *db);
  if (!db || !(db->path = strdup(path))) {
    free(db);
    return err_set(ERR_NOMEM, "%s: out of memory opening the database", path);
  }
  int rc;
  int oflags = (flags & DB_OPEN_READONLY) ? SQLITE_OPEN_READONLY
                                          : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path, &db->h, oflags, NULL) != SQLITE_OK) {
    rc = db_sqlerr(db, "opening");
    goto fail;
  }
  sqlite3_extended_result_codes(db->h, 1);
  sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
  /* The first real read: a file that is not SQLite fails here with "file is not a database". */
  int v = 0;
  if ((rc = db_user_version(db, &v))) goto fail;
  if (v > latest) {
    rc = db_fail(db, ERR_DB, "schema version %d is newer than this build's %d (update servesim)",
                 v, latest);
    goto fail;
  }
  if ((rc = db_exec(db, "PRAGMA foreign_keys = ON", "enabling foreign keys"))) goto fail;
  if (!(flags & DB_OPEN_READONLY)) {
    /* WAL: readers (notebooks) never block the writer; NORMAL sync is durable against a crash
     * of the process and loses at most the last transaction on power loss, at a fraction of
     * FULL's fsync cost per run. */
    if ((rc = db_exec(db, "PRAGMA journal_mode = WAL", "setting WAL journal mode"))) goto fail;
    if ((rc = db_exec(db, "PRAGMA synchronous = NORMAL", "setting synchronous"))) goto fail;
    if ((rc = db_migrate_to(db, max_version))) goto fail;
  } else if (v < latest) {
    rc = db_fail(db, ERR_DB, "schema version %d is older than %d and the database is read-only",
                 v, latest);
    goto fail;
  }
  *out = db;
  return ERR_OK;
fail:
  db_close(db);
  return rc;
}

int db_open(const char *path, struct db **out) { return db_open_ex(path, 0, 0, out); }

void db_close(struct db *db) {
  if (!db) return;
  if (db->h) {
    if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(db->h);
  }
  free(db->path);
  free(db);
}

/* ---- transactions ---- */

int db_begin(struct db *db) {
  if (db->in_txn || !sqlite3_get_autocommit(db->h))
    return db_fail(db, ERR_INTERNAL, "db_begin inside an open transaction");
  int rc = db_exec(db, "BEGIN IMMEDIATE", "begin");
  if (!rc) db->in_txn = 1;
  return rc;
}

int db_commit(struct db *db) {
  db->in_txn = 0;
  if (sqlite3_get_autocommit(db->h))
    return db_fail(db, ERR_DB, "commit: the transaction was already rolled back");
  int rc = db_exec(db, "COMMIT", "commit");
  if (rc && !sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

int db_rollback(struct db *db) {
  if (!db) return ERR_OK;
  db->in_txn = 0;
  if (sqlite3_get_autocommit(db->h)) return ERR_OK;
  return db_exec(db, "ROLLBACK", "rollback");
}

int db_sp_begin(struct db *db) { return db_exec(db, "SAVEPOINT db_put", "savepoint"); }

int db_sp_end(struct db *db, int rc) {
  if (rc == ERR_OK) {
    if (sqlite3_exec(db->h, "RELEASE db_put", NULL, NULL, NULL) == SQLITE_OK) return ERR_OK;
    rc = db_sqlerr(db, "commit");
  }
  /* Undo this call only; the first error's message is kept. Some errors (SQLITE_FULL, IOERR)
   * may have rolled the whole transaction back already, and then these are no-ops. */
  sqlite3_exec(db->h, "ROLLBACK TO db_put", NULL, NULL, NULL);
  sqlite3_exec(db->h, "RELEASE db_put", NULL, NULL, NULL);
  if (!db->in_txn && !sqlite3_get_autocommit(db->h))
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* ---- provenance ---- */

void db_provenance_fill(struct db_provenance *p) {
  memset(p, 0, sizeof *p);
  snprintf(p->tool_version, sizeof p->tool_version, "%s", SERVESIM_VERSION);
  snprintf(p->git_commit, sizeof p->git_commit, "%s", SERVESIM_GIT_COMMIT);
  if (gethostname(p->host, sizeof p->host - 1) != 0) snprintf(p->host, sizeof p->host, "unknown");
  /* SOURCE_DATE_EPOCH (the reproducible-builds convention) pins the time, so a test or a
   * regenerated dump can be byte-identical. */
  time_t t = time(NULL);
  const char *sde = getenv("SOURCE_DATE_EPOCH");
  if (sde && *sde) {
    char *end;
    errno = 0;
    long long v = strtoll(sde, &end, 10);
    if (!errno && !*end && v >= 0) t = (time_t)v;
  }
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(p->created_at, sizeof p->created_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
