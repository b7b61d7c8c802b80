/* db_csv: loads measurements from a CSV file (servesim db import FILE.csv), for figures
 * measured outside servesim-exec (a Python script, nccl-tests) that should still calibrate the
 * simulator.
 *
 * The header names measurements columns, any subset in any order: kind, lat_us_median and
 * count are required; hardware and model are given by name (upserted); a missing provenance
 * column is filled with the importing servesim's (tool version, commit, host, time). One record
 * per physical line (quoted fields may hold commas, not newlines), so errors name the line. All
 * rows load in one transaction: one bad row loads none. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/csvrow.h"
#include "common/err.h"
#include "db/db_int.h"

enum { DB_CSV_TEXT, DB_CSV_INT, DB_CSV_REAL, DB_CSV_PROV };

struct db_csv_col {
  const char *name;
  int type;
  size_t off;  /* offsetof in struct db_measurement */
  size_t cap;  /* DB_CSV_PROV: the char array's size */
};

#define T(f) {#f, DB_CSV_TEXT, offsetof(struct db_measurement, f), 0}
#define I(f) {#f, DB_CSV_INT, offsetof(struct db_measurement, f), 0}
#define R(f) {#f, DB_CSV_REAL, offsetof(struct db_measurement, f), 0}
#define P(f)                                                                               \
  {#f, DB_CSV_PROV, offsetof(struct db_measurement, prov) + offsetof(struct db_provenance, f), \
   sizeof(((struct db_provenance *)0)->f)}
static const struct db_csv_col db_csv_cols[] = {
    T(kind),    T(op),        T(impl),          T(dtype),        T(hardware),
    T(model),   I(run_id),    I(m),             I(n),            I(k),
    I(tokens),  I(experts),   I(topk),          R(tokens_per_expert), I(batch),
    I(ctx_len), I(q_len),     I(n_bytes),       I(ranks),        I(tp),
    I(ep),      I(quant_group), R(lat_us_median), R(lat_us_p10), R(lat_us_p90),
    I(count),   T(extra_json), P(tool_version), P(git_commit),   P(gpu_name),
    P(driver_version), P(cuda_version), P(nccl_version), P(host), P(created_at)};
#undef T
#undef I
#undef R
#undef P
#define DB_CSV_NCOLS (sizeof db_csv_cols / sizeof db_csv_cols[0])
/* Fields a measurements CSV may have per line (more is an error). */
#define DB_CSV_MAX_FIELDS CSVROW_MAX_FIELDS

static int db_csv_value(const char *file, long long line, const struct db_csv_col *col, char *s,
                        struct db_measurement *m) {
  char *base = (char *)m, *end;
  if (!*s) return ERR_OK; /* empty = NULL / keep the default */
  errno = 0;
  switch (col->type) {
    case DB_CSV_TEXT: *(const char **)(base + col->off) = s; break;
    case DB_CSV_PROV: snprintf(base + col->off, col->cap, "%s", s); break;
    case DB_CSV_INT: {
      long long v = strtoll(s, &end, 10);
      if (errno || *end)
        return err_set(ERR_INPUT, "%s:%lld: column %s: '%s' is not an integer", file, line,
                       col->name, s);
      *(int64_t *)(base + col->off) = v;
      break;
    }
    default: {
      double v = strtod(s, &end);
      if (errno || *end || isnan(v))
        return err_set(ERR_INPUT, "%s:%lld: column %s: '%s' is not a number", file, line,
                       col->name, s);
      *(double *)(base + col->off) = v;
      break;
    }
  }
  return ERR_OK;
}

/* Loads the rows of the open CSV c (header first) into db as measurements. */
static int db_csv_rows(struct db *db, struct csvrow *c, int64_t *n_rows) {
  const char *file = c->path;
  int rc = ERR_OK, n_head = 0, got;
  int map[DB_CSV_MAX_FIELDS]; /* field index -> db_csv_cols index */
  struct db_provenance here;
  db_provenance_fill(&here);
  while (!rc && !(rc = csvrow_next(c, &got)) && got) {
    long long line = (long long)c->line_no;
    if (c->parse_bad) {
      rc = err_set(ERR_INPUT, "%s:%lld: malformed CSV: %s", file, line, c->bad_why);
      break;
    }
    if (c->n_fields > DB_CSV_MAX_FIELDS) {
      rc = err_set(ERR_INPUT, "%s:%lld: %d fields, at most %d", file, line, c->n_fields,
                   DB_CSV_MAX_FIELDS);
      break;
    }
    if (!n_head) { /* the header */
      int seen_kind = 0, seen_lat = 0, seen_count = 0;
      for (int i = 0; i < c->n_fields && !rc; i++) {
        map[i] = -1;
        for (size_t j = 0; j < DB_CSV_NCOLS; j++)
          if (!strcmp(c->field[i], db_csv_cols[j].name)) map[i] = (int)j;
        for (int k = 0; k < i && map[i] >= 0; k++)
          if (map[k] == map[i])
            rc = err_set(ERR_INPUT, "%s:%lld: column %s appears twice", file, line, c->field[i]);
        if (map[i] < 0)
          rc = err_set(ERR_INPUT, "%s:%lld: unknown column '%s' (measurements columns, with "
                       "hardware and model by name)", file, line, c->field[i]);
        seen_kind |= !strcmp(c->field[i], "kind");
        seen_lat |= !strcmp(c->field[i], "lat_us_median");
        seen_count |= !strcmp(c->field[i], "count");
      }
      if (!rc && !(seen_kind && seen_lat && seen_count))
        rc = err_set(ERR_INPUT, "%s:%lld: the header needs kind, lat_us_median and count", file,
                     line);
      n_head = c->n_fields;
      continue;
    }
    if (c->n_fields != n_head) {
      rc = err_set(ERR_INPUT, "%s:%lld: %d fields, the header has %d", file, line, c->n_fields,
                   n_head);
      break;
    }
    struct db_measurement m;
    db_measurement_init(&m);
    m.prov = here;
    for (int i = 0; i < c->n_fields && !rc; i++)
      rc = db_csv_value(file, line, &db_csv_cols[map[i]], c->field[i], &m);
    if (rc) break;
    if ((rc = db_put_measurement(db, &m))) {
      /* db_errmsg is "PATH: reason (context)": name the CSV line instead of the database. */
      rc = err_set(rc, "%s:%lld: %s", file, line, db_errmsg(db) + strlen(db_path(db)) + 2);
      break;
    }
    (*n_rows)++;
  }
  if (!rc && !n_head) rc = err_set(ERR_INPUT, "%s: empty file (no header row)", file);
  return rc;
}

int db_import_csv(struct db *db, const char *csv_file, int64_t *n_rows) {
  struct csvrow c;
  int rc = csvrow_open(&c, csv_file, 0);
  if (rc) return rc;
  int64_t rows = 0;
  if (!(rc = db_begin(db))) {
    if ((rc = db_csv_rows(db, &c, &rows)))
      db_rollback(db);
    else
      rc = db_commit(db);
  }
  csvrow_close(&c);
  if (!rc && n_rows) *n_rows = rows;
  return rc;
}
