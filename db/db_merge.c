/* db_merge: loads a dump into a database that already has rows, renumbering ids (servesim db
 * import --merge). Every profiling session's dump numbers its rows from 1, so two of them
 * cannot be loaded as they are into one database; the calibrated cost model wants them all.
 *
 * The dump is first loaded into a scratch database of its own (so it is validated and migrated
 * exactly as a plain import), which is then attached and copied table by table, parents before
 * children:
 *  - a table's own INTEGER PRIMARY KEY gets a fresh id, and old -> new goes into a map;
 *  - a foreign-key column is translated through its parent table's map;
 *  - a row equal on a UNIQUE key to one already present (hardware and models by name, a layout
 *    verdict by its layout) is not copied: its id maps to the existing row (first writer wins,
 *    as the upserts of db_put_* do);
 *  - any other conflict (a request index twice in one run cannot arise from a valid dump) fails.
 * All in one transaction: a failure loads nothing. Written for any schema whose foreign keys
 * reference INTEGER PRIMARY KEYs, which db/schema.sql keeps to. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "db/db_int.h"

#define DB_MERGE_MAX_TABLES 64
#define DB_MERGE_MAX_COLS 64

struct db_merge_table {
  char name[64];
  int n_cols;
  char col[DB_MERGE_MAX_COLS][64];
  char parent[DB_MERGE_MAX_COLS][64]; /* FK target table per column, "" if none */
  int ipk;                            /* column index of the INTEGER PRIMARY KEY, -1 if none */
  int n_uniq;                         /* columns of the first UNIQUE constraint (0 if none) */
  int uniq[8];
  int placed;
};

static int db_merge_tables(struct db *db, struct db_merge_table *t, int *n_out) {
  sqlite3_stmt *st;
  int rc = db_prepare(db,
                      "SELECT name FROM main.sqlite_schema WHERE type = 'table' AND name NOT LIKE "
                      "'sqlite_%' ORDER BY name", &st, "reading the schema");
  if (rc) return rc;
  int n = 0;
  while (sqlite3_step(st) == SQLITE_ROW && n < DB_MERGE_MAX_TABLES) {
    memset(&t[n], 0, sizeof t[n]);
    snprintf(t[n].name, sizeof t[n].name, "%s", (const char *)sqlite3_column_text(st, 0));
    t[n].ipk = -1;
    n++;
  }
  sqlite3_finalize(st);
  for (int i = 0; i < n && !rc; i++) {
    struct db_merge_table *m = &t[i];
    /* Columns; a sole "INTEGER" pk column is the rowid alias. */
    char *q = sqlite3_mprintf("SELECT name, upper(type), pk, (SELECT count(*) FROM "
                              "pragma_table_info(%Q) WHERE pk > 0) FROM pragma_table_info(%Q) "
                              "ORDER BY cid", m->name, m->name);
    rc = db_prepare(db, q, &st, "reading columns");
    sqlite3_free(q);
    if (rc) break;
    while (sqlite3_step(st) == SQLITE_ROW && m->n_cols < DB_MERGE_MAX_COLS) {
      int c = m->n_cols++;
      snprintf(m->col[c], sizeof m->col[c], "%s", (const char *)sqlite3_column_text(st, 0));
      if (sqlite3_column_int(st, 2) == 1 && sqlite3_column_int(st, 3) == 1 &&
          !strcmp((const char *)sqlite3_column_text(st, 1), "INTEGER"))
        m->ipk = c;
    }
    sqlite3_finalize(st);
    /* WITHOUT ROWID tables have no rowid alias even with an INTEGER pk. */
    q = sqlite3_mprintf("SELECT sql LIKE '%%WITHOUT ROWID%%' FROM main.sqlite_schema WHERE name = %Q",
                        m->name);
    if ((rc = db_prepare(db, q, &st, "reading the schema")) == ERR_OK) {
      if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0)) m->ipk = -1;
      sqlite3_finalize(st);
    }
    sqlite3_free(q);
    if (rc) break;
    q = sqlite3_mprintf("SELECT \"from\", \"table\" FROM pragma_foreign_key_list(%Q)", m->name);
    rc = db_prepare(db, q, &st, "reading foreign keys");
    sqlite3_free(q);
    if (rc) break;
    while (sqlite3_step(st) == SQLITE_ROW)
      for (int c = 0; c < m->n_cols; c++)
        if (!strcmp(m->col[c], (const char *)sqlite3_column_text(st, 0)))
          snprintf(m->parent[c], sizeof m->parent[c], "%s", (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    /* The first UNIQUE constraint (origin 'u'), in index order. */
    q = sqlite3_mprintf("SELECT ii.name FROM pragma_index_list(%Q) il, pragma_index_info(il.name) ii "
                        "WHERE il.origin = 'u' AND il.name = (SELECT name FROM pragma_index_list(%Q) "
                        "WHERE origin = 'u' ORDER BY name LIMIT 1) ORDER BY ii.seqno",
                        m->name, m->name);
    rc = db_prepare(db, q, &st, "reading unique keys");
    sqlite3_free(q);
    if (rc) break;
    while (sqlite3_step(st) == SQLITE_ROW && m->n_uniq < 8)
      for (int c = 0; c < m->n_cols; c++)
        if (!strcmp(m->col[c], (const char *)sqlite3_column_text(st, 0))) m->uniq[m->n_uniq++] = c;
    sqlite3_finalize(st);
  }
  *n_out = n;
  return rc;
}

/* Looks up the new id of parent row `old`; *found = 0 when the parent kept no mapping. */
static int db_merge_lookup(struct db *db, sqlite3_stmt *get, const char *parent, int64_t old,
                           int64_t *new_id, int *found) {
  sqlite3_bind_text(get, 1, parent, -1, SQLITE_STATIC);
  sqlite3_bind_int64(get, 2, old);
  int s = sqlite3_step(get);
  *found = s == SQLITE_ROW;
  if (*found) *new_id = sqlite3_column_int64(get, 0);
  sqlite3_reset(get);
  return s == SQLITE_ROW || s == SQLITE_DONE ? ERR_OK : db_sqlerr(db, "merge map");
}

/* One column value of a row being copied: the dump's value, or a translated id. */
struct db_merge_cell {
  sqlite3_value *v; /* used when !is_id; valid until the next step of the source query */
  int is_id;
  int64_t id;
};

static void db_merge_bind(sqlite3_stmt *st, int i, const struct db_merge_cell *c) {
  if (c->is_id)
    sqlite3_bind_int64(st, i, c->id);
  else if (c->v)
    sqlite3_bind_value(st, i, c->v);
  else
    sqlite3_bind_null(st, i);
}

static int db_merge_copy(struct db *db, const struct db_merge_table *m, sqlite3_stmt *get,
                         sqlite3_stmt *put, int64_t *n_rows) {
  char cols[4096] = "", marks[512] = "", where[1024] = "";
  size_t lc = 0, lm = 0, lw = 0;
  for (int c = 0; c < m->n_cols; c++) {
    lc += (size_t)snprintf(cols + lc, sizeof cols - lc, "%s\"%s\"", c ? ", " : "", m->col[c]);
    lm += (size_t)snprintf(marks + lm, sizeof marks - lm, "%s?%d", c ? ", " : "", c + 1);
  }
  for (int u = 0; u < m->n_uniq; u++)
    lw += (size_t)snprintf(where + lw, sizeof where - lw, "%s\"%s\" IS ?%d", u ? " AND " : "",
                           m->col[m->uniq[u]], u + 1);
  if (lc >= sizeof cols || lm >= sizeof marks || lw >= sizeof where)
    return db_fail(db, ERR_INTERNAL, "merge: table %s too wide", m->name);
  sqlite3_stmt *sel = NULL, *ins = NULL, *find = NULL;
  /* Source rows in id order, so renumbered rows keep their relative order. */
  char *q = sqlite3_mprintf("SELECT %s FROM src.\"%w\" ORDER BY %s", cols, m->name,
                            m->ipk >= 0 ? "rowid" : "1");
  int rc = db_prepare(db, q, &sel, "merge: reading the dump");
  sqlite3_free(q);
  if (rc) return rc;
  q = sqlite3_mprintf("INSERT INTO main.\"%w\" (%s) VALUES (%s)%s", m->name, cols, marks,
                      m->n_uniq ? " ON CONFLICT DO NOTHING" : "");
  rc = db_prepare(db, q, &ins, "merge: inserting");
  sqlite3_free(q);
  if (!rc && m->n_uniq && m->ipk >= 0) {
    q = sqlite3_mprintf("SELECT \"%w\" FROM main.\"%w\" WHERE %s", m->col[m->ipk], m->name, where);
    rc = db_prepare(db, q, &find, "merge: matching unique keys");
    sqlite3_free(q);
  }
  struct db_merge_cell cell[DB_MERGE_MAX_COLS];
  int s = SQLITE_DONE;
  while (!rc && (s = sqlite3_step(sel)) == SQLITE_ROW) {
    int64_t old_id = m->ipk >= 0 ? sqlite3_column_int64(sel, m->ipk) : 0;
    for (int c = 0; c < m->n_cols && !rc; c++) {
      sqlite3_value *v = sqlite3_column_value(sel, c);
      cell[c] = (struct db_merge_cell){.v = v, .is_id = 0, .id = 0};
      if (c == m->ipk && !m->parent[c][0]) {
        cell[c].v = NULL; /* NULL: SQLite assigns a fresh id */
      } else if (m->parent[c][0] && sqlite3_value_type(v) != SQLITE_NULL) {
        int found = 0;
        cell[c].is_id = 1;
        rc = db_merge_lookup(db, get, m->parent[c], sqlite3_value_int64(v), &cell[c].id, &found);
        if (!rc && !found)
          rc = db_fail(db, ERR_INPUT, "merge: %s.%s = %lld has no row in %s", m->name, m->col[c],
                       (long long)sqlite3_value_int64(v), m->parent[c]);
      }
    }
    if (rc) break;
    for (int c = 0; c < m->n_cols; c++) db_merge_bind(ins, c + 1, &cell[c]);
    if (sqlite3_step(ins) != SQLITE_DONE) {
      char what[128];
      snprintf(what, sizeof what, "merge: inserting into %s", m->name);
      rc = db_sqlerr(db, what);
      break;
    }
    sqlite3_reset(ins);
    int inserted = sqlite3_changes(db->h) == 1;
    int64_t new_id = sqlite3_last_insert_rowid(db->h);
    *n_rows += inserted;
    if (m->ipk < 0) continue;
    if (m->parent[m->ipk][0]) new_id = cell[m->ipk].id; /* pk is itself a translated FK */
    if (!inserted && find) { /* same unique key already here: reuse that row */
      for (int u = 0; u < m->n_uniq; u++) db_merge_bind(find, u + 1, &cell[m->uniq[u]]);
      if (sqlite3_step(find) == SQLITE_ROW) {
        new_id = sqlite3_column_int64(find, 0);
      } else {
        rc = db_fail(db, ERR_DB, "merge: %s: a unique row vanished", m->name);
      }
      sqlite3_reset(find);
      if (rc) break;
    }
    sqlite3_bind_text(put, 1, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(put, 2, old_id);
    sqlite3_bind_int64(put, 3, new_id);
    if (sqlite3_step(put) != SQLITE_DONE) rc = db_sqlerr(db, "merge map");
    sqlite3_reset(put);
  }
  if (!rc && s != SQLITE_DONE) rc = db_sqlerr(db, "merge: reading the dump");
  sqlite3_finalize(sel);
  sqlite3_finalize(ins);
  sqlite3_finalize(find);
  return rc;
}

/* Parents before children: repeatedly place every table whose parents are placed. */
static int db_merge_order(struct db *db, struct db_merge_table *t, int n, int *order) {
  int k = 0;
  for (int pass = 0; pass < n && k < n; pass++)
    for (int i = 0; i < n; i++) {
      if (t[i].placed) continue;
      int ready = 1;
      for (int c = 0; c < t[i].n_cols && ready; c++) {
        if (!t[i].parent[c][0] || !strcmp(t[i].parent[c], t[i].name)) continue;
        for (int j = 0; j < n; j++)
          if (!strcmp(t[j].name, t[i].parent[c]) && !t[j].placed) ready = 0;
      }
      if (ready) {
        t[i].placed = 1;
        order[k++] = i;
      }
    }
  if (k < n) return db_fail(db, ERR_INTERNAL, "merge: foreign keys form a cycle");
  return ERR_OK;
}

int db_import_merge(const char *path, const char *dump_file, int64_t *n_rows) {
  const char *tmpdir = getenv("TMPDIR");
  char scratch[512];
  snprintf(scratch, sizeof scratch, "%s/servesim-merge-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  int fd = mkstemp(scratch);
  if (fd < 0) return err_set(ERR_IO, "%s: %s", scratch, strerror(errno));
  close(fd);
  unlink(scratch); /* db_import_sql creates it as a database */
  int rc = db_import_sql(scratch, dump_file, NULL);
  struct db *db = NULL;
  int64_t rows = 0;
  if (rc) goto out;
  if ((rc = db_open(path, &db))) goto out;
  char *q = sqlite3_mprintf("ATTACH %Q AS src", scratch);
  rc = db_exec(db, q, "attaching the dump");
  sqlite3_free(q);
  if (rc) goto out;
  struct db_merge_table *t = calloc(DB_MERGE_MAX_TABLES, sizeof *t);
  int order[DB_MERGE_MAX_TABLES], n = 0;
  sqlite3_stmt *get = NULL, *put = NULL;
  if (!t) {
    rc = err_set(ERR_NOMEM, "out of memory");
    goto detach;
  }
  if ((rc = db_merge_tables(db, t, &n)) || (rc = db_merge_order(db, t, n, order))) goto detach;
  if ((rc = db_begin(db))) goto detach;
  rc = db_exec(db, "CREATE TEMP TABLE db_merge_map (tbl TEXT, old INTEGER, new INTEGER, "
                   "PRIMARY KEY (tbl, old)) WITHOUT ROWID", "merge map");
  if (!rc) rc = db_prepare(db, "SELECT new FROM temp.db_merge_map WHERE tbl = ?1 AND old = ?2",
                           &get, "merge map");
  if (!rc) rc = db_prepare(db, "INSERT INTO temp.db_merge_map VALUES (?1, ?2, ?3)", &put,
                           "merge map");
  for (int i = 0; i < n && !rc; i++) rc = db_merge_copy(db, &t[order[i]], get, put, &rows);
  sqlite3_finalize(get);
  sqlite3_finalize(put);
  if (rc) {
    db_rollback(db);
    err_wrap(rc, "merging %s", dump_file);
  } else {
    rc = db_commit(db);
  }
  db_exec(db, "DROP TABLE IF EXISTS temp.db_merge_map", "merge map");
detach:
  free(t);
  sqlite3_exec(db->h, "DETACH src", NULL, NULL, NULL);
out:
  db_close(db);
  unlink(scratch);
  char side[560];
  snprintf(side, sizeof side, "%s-wal", scratch);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", scratch);
  unlink(side);
  if (!rc && n_rows) *n_rows = rows;
  return rc;
}
