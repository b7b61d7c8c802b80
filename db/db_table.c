/* db_table: prints a query's result as an aligned text table (servesim db list).
 *
 * Rows are gathered first (up to the limit) so each column can be as wide as its widest cell;
 * numbers are right-aligned, REALs printed with 6 significant digits, NULL as "-". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "db/db_int.h"

#define DB_TABLE_MAX_COLS 32
#define DB_TABLE_CELL 96 /* longer text is cut with "..." so one wide JSON cannot wreck a table */

int db_table_print(struct db *db, const char *sql, const char *const *binds, int n_binds,
                   int64_t limit, FILE *out) {
  sqlite3_stmt *st;
  int rc = db_prepare(db, sql, &st, "listing");
  if (rc) return rc;
  for (int i = 0; i < n_binds; i++) db_bind_text(st, i + 1, binds[i]);
  int n_cols = sqlite3_column_count(st);
  if (n_cols > DB_TABLE_MAX_COLS) n_cols = DB_TABLE_MAX_COLS;
  int width[DB_TABLE_MAX_COLS], numeric[DB_TABLE_MAX_COLS];
  for (int c = 0; c < n_cols; c++) {
    width[c] = (int)strlen(sqlite3_column_name(st, c));
    numeric[c] = 1;
  }
  char *cells = NULL; /* (n_rows, n_cols, DB_TABLE_CELL) */
  int64_t n_rows = 0, cap = 0, n_more = 0;
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    if (limit > 0 && n_rows >= limit) {
      n_more++;
      continue;
    }
    if (n_rows == cap) {
      cap = cap ? 2 * cap : 64;
      char *nc = realloc(cells, (size_t)cap * n_cols * DB_TABLE_CELL);
      if (!nc) {
        free(cells);
        sqlite3_finalize(st);
        return db_fail(db, ERR_NOMEM, "out of memory listing %lld rows", (long long)cap);
      }
      cells = nc;
    }
    for (int c = 0; c < n_cols; c++) {
      char *cell = cells + ((size_t)n_rows * n_cols + c) * DB_TABLE_CELL;
      int type = sqlite3_column_type(st, c);
      if (type == SQLITE_NULL) {
        snprintf(cell, DB_TABLE_CELL, "-");
      } else if (type == SQLITE_INTEGER) {
        snprintf(cell, DB_TABLE_CELL, "%lld", (long long)sqlite3_column_int64(st, c));
      } else if (type == SQLITE_FLOAT) {
        snprintf(cell, DB_TABLE_CELL, "%.6g", sqlite3_column_double(st, c));
      } else {
        const char *t = (const char *)sqlite3_column_text(st, c);
        snprintf(cell, DB_TABLE_CELL, "%s", t ? t : "");
        if (t && strlen(t) >= DB_TABLE_CELL) memcpy(cell + DB_TABLE_CELL - 4, "...", 4);
        for (char *p = cell; *p; p++)
          if (*p == '\n' || *p == '\t' || *p == '\r') *p = ' ';
        numeric[c] = 0;
      }
      int w = (int)strlen(cell);
      if (w > width[c]) width[c] = w;
    }
    n_rows++;
  }
  if (s != SQLITE_DONE) rc = db_sqlerr(db, "listing");
  if (!rc) {
    for (int c = 0; c < n_cols; c++) {
      int w = numeric[c] ? width[c] : (c == n_cols - 1 ? 0 : -width[c]);
      fprintf(out, "%s%*s", c ? "  " : "", w, sqlite3_column_name(st, c));
    }
    fputc('\n', out);
    for (int c = 0; c < n_cols; c++) {
      fprintf(out, "%s", c ? "  " : "");
      for (int i = 0; i < width[c]; i++) fputc('-', out);
    }
    fputc('\n', out);
    for (int64_t r = 0; r < n_rows; r++) {
      for (int c = 0; c < n_cols; c++) {
        const char *cell = cells + ((size_t)r * n_cols + c) * DB_TABLE_CELL;
        /* the last column unpadded: no trailing blanks */
        if (c == n_cols - 1 && !numeric[c])
          fprintf(out, "%s%s", c ? "  " : "", cell);
        else
          fprintf(out, "%s%*s", c ? "  " : "", numeric[c] ? width[c] : -width[c], cell);
      }
      fputc('\n', out);
    }
    if (n_more)
      fprintf(out, "(%lld more rows; --limit 0 shows all)\n", (long long)n_more);
    else if (!n_rows)
      fprintf(out, "(no rows)\n");
  }
  free(cells);
  sqlite3_finalize(st);
  return rc;
}
