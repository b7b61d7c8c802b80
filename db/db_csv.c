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

#include <csv.h>

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
#define DB_CSV_MAX_FIELDS 64

struct db_csv_line {
  char *fbuf;            /* the line's fields, NUL-separated */
  size_t fbuf_len;
  char *field[DB_CSV_MAX_FIELDS];
  int n_fields;
};

static void db_csv_on_field(void *s, size_t len, void *data) {
  struct db_csv_line *c = data;
  if (c->n_fields < DB_CSV_MAX_FIELDS) {
    char *dst = c->fbuf + c->fbuf_len;
    if (len) memcpy(dst, s, len);
    dst[len] = '\0';
    c->field[c->n_fields] = dst;
    c->fbuf_len += len + 1;
  }
  c->n_fields++;
}

static void db_csv_on_row(int term, void *data) { (void)term; (void)data; }

/* Splits one line; fbuf must hold len + DB_CSV_MAX_FIELDS + 1 bytes. */
static int db_csv_split(const char *file, int line, char *text, size_t len,
                        struct db_csv_line *c) {
  struct csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0)
    return err_set(ERR_NOMEM, "%s: out of memory for the CSV parser", file);
  c->fbuf_len = 0;
  c->n_fields = 0;
  int bad = csv_parse(&p, text, len, db_csv_on_field, db_csv_on_row, c) != len ||
            csv_fini(&p, db_csv_on_field, db_csv_on_row, c) != 0;
  const char *why = bad ? csv_strerror(csv_error(&p)) : NULL;
  csv_free(&p);
  if (bad) return err_set(ERR_INPUT, "%s:%d: malformed CSV: %s", file, line, why);
  if (c->n_fields > DB_CSV_MAX_FIELDS)
    return err_set(ERR_INPUT, "%s:%d: %d fields, at most %d", file, line, c->n_fields,
                   DB_CSV_MAX_FIELDS);
  return ERR_OK;
}

static int db_csv_value(const char *file, int line, const struct db_csv_col *col, char *s,
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
        return err_set(ERR_INPUT, "%s:%d: column %s: '%s' is not an integer", file, line,
                       col->name, s);
      *(int64_t *)(base + col->off) = v;
      break;
    }
    default: {
      double v = strtod(s, &end);
      if (errno || *end || isnan(v))
        return err_set(ERR_INPUT, "%s:%d: column %s: '%s' is not a number", file, line,
                       col->name, s);
      *(double *)(base + col->off) = v;
      break;
    }
  }
  return ERR_OK;
}

static int db_csv_rows(struct db *db, const char *file, FILE *f, int64_t *n_rows) {
  char *text = NULL, *fbuf = NULL;
  size_t cap = 0, fcap = 0;
  ssize_t got;
  int line = 0, rc = ERR_OK, n_head = 0;
  int map[DB_CSV_MAX_FIELDS]; /* field index -> db_csv_cols index */
  struct db_provenance here;
  db_provenance_fill(&here);
  struct db_csv_line c;
  while (!rc && (got = getline(&text, &cap, f)) >= 0) {
    line++;
    size_t len = (size_t)got;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = '\0';
    if (!len) continue;
    if (fcap < len + DB_CSV_MAX_FIELDS + 1) {
      free(fbuf);
      fcap = 2 * (len + DB_CSV_MAX_FIELDS + 1);
      if (!(fbuf = malloc(fcap))) {
        rc = err_set(ERR_NOMEM, "%s:%d: out of memory", file, line);
        break;
      }
    }
    c.fbuf = fbuf;
    if ((rc = db_csv_split(file, line, text, len, &c))) break;
    if (!n_head) { /* the header */
      int seen_kind = 0, seen_lat = 0, seen_count = 0;
      for (int i = 0; i < c.n_fields && !rc; i++) {
        map[i] = -1;
        for (size_t j = 0; j < DB_CSV_NCOLS; j++)
          if (!strcmp(c.field[i], db_csv_cols[j].name)) map[i] = (int)j;
        for (int k = 0; k < i && map[i] >= 0; k++)
          if (map[k] == map[i])
            rc = err_set(ERR_INPUT, "%s:%d: column %s appears twice", file, line, c.field[i]);
        if (map[i] < 0)
          rc = err_set(ERR_INPUT, "%s:%d: unknown column '%s' (measurements columns, with "
                       "hardware and model by name)", file, line, c.field[i]);
        seen_kind |= !strcmp(c.field[i], "kind");
        seen_lat |= !strcmp(c.field[i], "lat_us_median");
        seen_count |= !strcmp(c.field[i], "count");
      }
      if (!rc && !(seen_kind && seen_lat && seen_count))
        rc = err_set(ERR_INPUT, "%s:%d: the header needs kind, lat_us_median and count", file,
                     line);
      n_head = c.n_fields;
      continue;
    }
    if (c.n_fields != n_head) {
      rc = err_set(ERR_INPUT, "%s:%d: %d fields, the header has %d", file, line, c.n_fields,
                   n_head);
      break;
    }
    struct db_measurement m;
    db_measurement_init(&m);
    m.prov = here;
    for (int i = 0; i < c.n_fields && !rc; i++)
      rc = db_csv_value(file, line, &db_csv_cols[map[i]], c.field[i], &m);
    if (rc) break;
    if ((rc = db_put_measurement(db, &m))) {
      /* db_errmsg is "PATH: reason (context)": name the CSV line instead of the database. */
      rc = err_set(rc, "%s:%d: %s", file, line, db_errmsg(db) + strlen(db_path(db)) + 2);
      break;
    }
    (*n_rows)++;
  }
  if (!rc && ferror(f)) rc = err_set(ERR_IO, "%s: read error", file);
  if (!rc && !n_head) rc = err_set(ERR_INPUT, "%s: empty file (no header row)", file);
  free(text);
  free(fbuf);
  return rc;
}

int db_import_csv(struct db *db, const char *csv_file, int64_t *n_rows) {
  FILE *f = fopen(csv_file, "rb");
  if (!f) {
    int e = errno;
    return err_set(e == ENOENT ? ERR_NOENT : ERR_IO, "%s: %s", csv_file, strerror(e));
  }
  int64_t rows = 0;
  int rc = db_begin(db);
  if (!rc) {
    if ((rc = db_csv_rows(db, csv_file, f, &rows)))
      db_rollback(db);
    else
      rc = db_commit(db);
  }
  fclose(f);
  if (!rc && n_rows) *n_rows = rows;
  return rc;
}
