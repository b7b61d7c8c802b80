/* db_dump: a deterministic SQL dump of the store and its loader (servesim db export / import).
 *
 * The dump is what gets committed under db/measurements/, so the same content must give the
 * same bytes: tables in name order, rows in primary-key order, each value printed one way only
 * (integers in decimal, reals in the shortest form that reads back to the same double, text as
 * a quoted literal), and nothing that varies between runs (no date, no host, no tool version)
 * in the header. The loader accepts only CREATE and INSERT statements (transaction control and
 * PRAGMAs are skipped), so a dump can add rows but never drop or change any. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "db/db_int.h"

/* ---- export ---- */

static int db_is_plain_name(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9')) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_'))
      return 0;
  return 1;
}

static void db_put_name(FILE *out, const char *s) {
  if (db_is_plain_name(s)) {
    fputs(s, out);
    return;
  }
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"') fputc('"', out);
    fputc(*s, out);
  }
  fputc('"', out);
}

/* Shortest of %.15g..%.17g that reads back to exactly v; always with a '.' or exponent so the
 * value stays REAL on import even in a column without REAL affinity. */
static void db_put_real(FILE *out, double v) {
  char buf[40];
  if (isinf(v)) {
    fputs(v > 0 ? "1e999" : "-1e999", out); /* SQLite reads an overflowing literal as inf */
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  fputs(buf, out);
  if (!strpbrk(buf, ".eE")) fputs(".0", out);
}

static void db_put_hex(FILE *out, const unsigned char *p, int n) {
  fputs("X'", out);
  for (int i = 0; i < n; i++) fprintf(out, "%02x", p[i]);
  fputc('\'', out);
}

/* Text as '...' with quotes doubled. Newlines and tabs stay literal (legal inside an SQL string,
 * and readable in a diff); any other control byte, which a checkout could mangle (\r) or a
 * terminal hide, goes out as CAST(X'..' AS TEXT). */
static void db_put_text(FILE *out, const unsigned char *p, int n) {
  for (int i = 0; i < n; i++)
    if (p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') {
      fputs("CAST(", out);
      db_put_hex(out, p, n);
      fputs(" AS TEXT)", out);
      return;
    }
  fputc('\'', out);
  for (int i = 0; i < n; i++) {
    if (p[i] == '\'') fputc('\'', out);
    fputc(p[i], out);
  }
  fputc('\'', out);
}

/* sqlite_schema keeps each CREATE with its leading keywords normalised (upper case, IF NOT
 * EXISTS removed), so these prefixes are the only forms to expect. IF NOT EXISTS makes the
 * dump loadable into a database whose schema was already created by db_open. */
static void db_put_create(FILE *out, const char *sql) {
  static const char *const prefixes[] = {"CREATE TABLE ", "CREATE UNIQUE INDEX ",
                                         "CREATE INDEX ", "CREATE VIEW ", "CREATE TRIGGER "};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
    size_t len = strlen(prefixes[i]);
    if (!strncmp(sql, prefixes[i], len) && strncmp(sql + len, "IF NOT EXISTS", 13)) {
      fprintf(out, "%sIF NOT EXISTS %s;\n", prefixes[i], sql + len);
      return;
    }
  }
  fprintf(out, "%s;\n", sql);
}

/* ORDER BY clause for a table: its primary key columns in key order, else rowid. */
static int db_order_by(struct db *db, const char *table, char *buf, size_t cap) {
  sqlite3_stmt *st;
  char *q = sqlite3_mprintf("SELECT name, pk FROM pragma_table_info(%Q) WHERE pk > 0 ORDER BY pk",
                            table);
  int rc = db_prepare(db, q, &st, "reading table columns");
  sqlite3_free(q);
  if (rc) return rc;
  size_t len = 0;
  buf[0] = '\0';
  while (sqlite3_step(st) == SQLITE_ROW) {
    char *col = sqlite3_mprintf("%s\"%w\"", len ? ", " : "", (const char *)sqlite3_column_text(st, 0));
    len += (size_t)snprintf(buf + len, cap > len ? cap - len : 0, "%s", col);
    sqlite3_free(col);
  }
  sqlite3_finalize(st);
  if (len >= cap) return db_fail(db, ERR_INTERNAL, "table %s: primary key too long", table);
  if (!len) snprintf(buf, cap, "rowid");
  return ERR_OK;
}

static int db_dump_rows(struct db *db, const char *table, FILE *out) {
  char order[512];
  int rc = db_order_by(db, table, order, sizeof order);
  if (rc) return rc;
  char *q = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY %s", table, order);
  sqlite3_stmt *st;
  rc = db_prepare(db, q, &st, "reading a table");
  sqlite3_free(q);
  if (rc) return rc;
  int n_cols = sqlite3_column_count(st), s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    fputs("INSERT INTO ", out);
    db_put_name(out, table);
    fputs(" VALUES(", out);
    for (int i = 0; i < n_cols; i++) {
      if (i) fputc(',', out);
      switch (sqlite3_column_type(st, i)) {
        case SQLITE_NULL: fputs("NULL", out); break;
        case SQLITE_INTEGER: fprintf(out, "%lld", (long long)sqlite3_column_int64(st, i)); break;
        case SQLITE_FLOAT: db_put_real(out, sqlite3_column_double(st, i)); break;
        case SQLITE_TEXT:
          db_put_text(out, sqlite3_column_text(st, i), sqlite3_column_bytes(st, i));
          break;
        default:
          db_put_hex(out, sqlite3_column_blob(st, i), sqlite3_column_bytes(st, i));
          break;
      }
    }
    fputs(");\n", out);
  }
  if (s != SQLITE_DONE) rc = db_sqlerr(db, "reading a table");
  sqlite3_finalize(st);
  return rc;
}

int db_export_sql(struct db *db, const char *table, FILE *out) {
  sqlite3_stmt *st;
  int rc;
  if (table) {
    if ((rc = db_prepare(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 "
                             "AND name NOT LIKE 'sqlite_%'", &st, "looking up a table")))
      return rc;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (!found)
      return db_fail(db, ERR_INPUT, "no table '%s' (servesim db list tables shows them)", table);
  }
  /* One read transaction: the dump is a consistent snapshot even while a writer runs (WAL). */
  if ((rc = db_exec(db, "BEGIN", "starting the export"))) return rc;
  fprintf(out, "-- servesim database dump (servesim db export); load it with servesim db import\n");
  fprintf(out, "PRAGMA user_version = %d;\nBEGIN TRANSACTION;\n", db_schema_version(db));
  /* Tables by name; the loader defers foreign-key checks to its commit, so a child table may
   * come before its parent. Indexes, views and triggers after all rows (faster to load).
   * With a table named, every table it references (transitively, whole) comes too, so the
   * dump loads on its own: measurements bring hardware, models and runs. */
  rc = db_prepare(db,
                  "WITH RECURSIVE need (name) AS (SELECT ?1 WHERE ?1 IS NOT NULL UNION "
                  "SELECT f.\"table\" FROM need, pragma_foreign_key_list(need.name) AS f) "
                  "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL "
                  "AND name NOT LIKE 'sqlite_%' AND (?1 IS NULL OR tbl_name IN need) "
                  "ORDER BY type <> 'table', type, name",
                  &st, "reading the schema");
  if (!rc) {
    if (table) sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int s;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
      const char *type = (const char *)sqlite3_column_text(st, 0);
      const char *name = (const char *)sqlite3_column_text(st, 1);
      db_put_create(out, (const char *)sqlite3_column_text(st, 2));
      if (!strcmp(type, "table")) rc = db_dump_rows(db, name, out);
    }
    if (!rc && s != SQLITE_DONE) rc = db_sqlerr(db, "reading the schema");
    sqlite3_finalize(st);
  }
  fputs("COMMIT;\n", out);
  sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
  if (!rc && (fflush(out) != 0 || ferror(out)))
    rc = db_fail(db, ERR_IO, "writing the dump: %s", strerror(errno));
  return rc;
}

/* ---- import ---- */

static int db_read_file(const char *file, char **text, size_t *len) {
  FILE *f = fopen(file, "rb");
  if (!f) {
    int e = errno;
    return err_set(e == ENOENT ? ERR_NOENT : ERR_IO, "%s: %s", file, strerror(e));
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (!buf) return err_set(ERR_NOMEM, "%s: out of memory reading it", file);
  if (bad) {
    free(buf);
    return err_set(ERR_IO, "%s: read error", file);
  }
  if (memchr(buf, '\0', n)) {
    free(buf);
    return err_set(ERR_INPUT, "%s: not an SQL text file (contains NUL bytes)", file);
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return ERR_OK;
}

/* Skips whitespace and comments from p, counting newlines into *line; returns the first byte
 * of the next token. */
static const char *db_skip_space(const char *p, int *line) {
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f')
      if (*p++ == '\n') (*line)++;
    if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n') p++;
    } else if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      const char *end = e ? e + 2 : p + strlen(p);
      for (; p < end; p++)
        if (*p == '\n') (*line)++;
    } else {
      return p;
    }
  }
}

static int db_count_lines(const char *from, const char *to, int line) {
  for (; from < to; from++)
    if (*from == '\n') line++;
  return line;
}

/* The dump's schema version: the value of a "PRAGMA user_version = N" before any CREATE or
 * INSERT; 0 when there is none (a dump from elsewhere: taken as this build's version). */
static int db_dump_version(const char *text) {
  int line = 1;
  const char *p = db_skip_space(text, &line);
  while (*p && !strncasecmp(p, "PRAGMA", 6)) {
    const char *q = p + 6;
    while (*q == ' ' || *q == '\t') q++;
    if (!strncasecmp(q, "user_version", 12)) {
      q += 12;
      while (*q == ' ' || *q == '\t' || *q == '=') q++;
      return atoi(q);
    }
    const char *semi = strchr(p, ';');
    if (!semi) break;
    p = db_skip_space(semi + 1, &line);
  }
  return 0;
}

/* The end (just past the ';') of the statement starting at p, NULL if it never ends:
 * sqlite3_complete knows about semicolons inside strings, comments and trigger bodies. */
static const char *db_stmt_end(const char *p) {
  for (const char *q = strchr(p, ';'); q; q = strchr(q + 1, ';')) {
    size_t n = (size_t)(q - p) + 1;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    int done = sqlite3_complete(s);
    free(s);
    if (done) return q + 1;
  }
  return NULL;
}

static int db_keyword_is(const char *p, const char *kw) {
  size_t n = strlen(kw);
  return !strncasecmp(p, kw, n) && !((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
                                     p[n] == '_');
}

static int db_import_stmts(struct db *db, const char *file, const char *text, int64_t *n_rows) {
  const char *p = text;
  int line = 1, n_stmts = 0, rc = ERR_OK;
  while (!rc) {
    p = db_skip_space(p, &line);
    if (!*p) break;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    if (sqlite3_prepare_v2(db->h, p, -1, &st, &tail) != SQLITE_OK) {
      const char *msg = sqlite3_errmsg(db->h);
      /* A plain CREATE (e.g. from the sqlite3 shell's .dump) of an object the schema already
       * made is fine: the rows that follow go into the existing table. */
      const char *end;
      if (db_keyword_is(p, "CREATE") && strstr(msg, "already exists") && (end = db_stmt_end(p))) {
        line = db_count_lines(p, end, line);
        p = end;
        n_stmts++;
        continue;
      }
      return err_set(ERR_INPUT, "%s:%d: %s", file, line, msg);
    }
    if (!st) break; /* only a comment or whitespace left */
    n_stmts++;
    if (db_keyword_is(p, "CREATE") || db_keyword_is(p, "INSERT")) {
      if (sqlite3_step(st) != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(db->h);
        int dup = ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE;
        rc = err_set(ERR_INPUT, "%s:%d: %s%s", file, line, sqlite3_errmsg(db->h),
                     dup ? " (rows with these ids are already there: import --merge renumbers)"
                         : "");
      } else if (db_keyword_is(p, "INSERT")) {
        *n_rows += sqlite3_changes(db->h);
      }
    } else if (!(db_keyword_is(p, "BEGIN") || db_keyword_is(p, "COMMIT") ||
                 db_keyword_is(p, "END") || db_keyword_is(p, "PRAGMA"))) {
      int n = 0;
      while (n < 12 && ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z'))) n++;
      rc = err_set(ERR_INPUT, "%s:%d: import accepts only CREATE and INSERT statements, not %.*s",
                   file, line, n, p);
    }
    sqlite3_finalize(st);
    line = db_count_lines(p, tail, line);
    p = tail;
  }
  if (!rc && n_stmts == 0) rc = err_set(ERR_INPUT, "%s: no SQL statements in it", file);
  return rc;
}

int db_import_sql(const char *path, const char *dump_file, int64_t *n_rows) {
  char *text = NULL;
  size_t len;
  int64_t rows = 0;
  int rc = db_read_file(dump_file, &text, &len);
  if (rc) return rc;
  int version = db_dump_version(text), latest = db_schema_latest();
  if (version < 0 || version > latest) {
    free(text);
    return err_set(ERR_INPUT, "%s: dump of schema version %d, this build knows 1..%d", dump_file,
                   version, latest);
  }
  if (version == 0) version = latest;
  struct db *db = NULL;
  if ((rc = db_open_ex(path, 0, version, &db))) goto out;
  int have = db_schema_version(db);
  if (have != version) {
    rc = db_fail(db, ERR_INPUT, "is at schema version %d but the dump %s is at %d: import it "
                 "into a new database", have, dump_file, version);
    goto out;
  }
  if ((rc = db_begin(db))) goto out;
  /* Rows may reference rows later in the dump (tables go in name order): check foreign keys
   * once, at commit. */
  if (!(rc = db_exec(db, "PRAGMA defer_foreign_keys = ON", "deferring foreign keys")))
    rc = db_import_stmts(db, dump_file, text, &rows);
  if (rc) {
    db_rollback(db);
    goto out;
  }
  if ((rc = db_commit(db))) {
    err_wrap(rc, "loading %s", dump_file);
    goto out;
  }
  rc = db_migrate(db);
out:
  db_close(db);
  free(text);
  if (!rc && n_rows) *n_rows = rows;
  return rc;
}
