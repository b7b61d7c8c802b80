/* trace_read: format detection, dispatch to the per-format readers, and the row rules they all
 * share (bad-row policy, time order, failed requests, making times relative to the first row). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "traces/formats.h"

static const char *const fmt_names[] = {"auto",      "azure",   "burstgpt", "mooncake",
                                        "canonical", "lengths", "generated"};

void trace_read_opts_default(struct trace_read_opts *o) {
  memset(o, 0, sizeof *o);
  o->format = TRACE_FMT_AUTO;
  o->on_bad_row = TRACE_BAD_FAIL;
}

const char *trace_read_format_name(int format) {
  if (format < 0 || format > TRACE_FMT_GENERATED) return "unknown";
  return fmt_names[format];
}

int trace_read_format_parse(const char *name) {
  for (int i = 0; i < TRACE_FMT_GENERATED; i++)
    if (!strcasecmp(name, fmt_names[i])) return i;
  return -1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcasecmp(s + n - m, suffix);
}

static int has_word(const char *line, const char *word) {
  size_t m = strlen(word);
  for (const char *p = line; *p; p++)
    if (!strncasecmp(p, word, m)) return 1;
  return 0;
}

int trace_read_detect(const char *path, int *format) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    return err_set(e == ENOENT ? ERR_NOENT : ERR_IO, "%s: %s", path, strerror(e));
  }
  char line[4096];
  const char *first = NULL;
  while (fgets(line, sizeof line, f)) { /* the first non-blank line */
    const char *p = line;
    if (!memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;
    while (*p == ' ' || *p == '\t') p++;
    if (*p && *p != '\n' && *p != '\r') {
      first = p;
      break;
    }
  }
  fclose(f);
  if (ends_with(path, ".jsonl") || ends_with(path, ".json") || (first && *first == '{')) {
    *format = TRACE_FMT_MOONCAKE;
    return ERR_OK;
  }
  if (!first) return err_set(ERR_INPUT, "%s:1: empty file, no header", path);
  /* Header words, most specific first. */
  if (has_word(first, "arrival_s")) *format = TRACE_FMT_CANONICAL;
  else if (has_word(first, "ContextTokens") && has_word(first, "GeneratedTokens"))
    *format = TRACE_FMT_AZURE;
  else if (has_word(first, "Request tokens") && has_word(first, "Response tokens"))
    *format = TRACE_FMT_BURSTGPT;
  else if (has_word(first, "num_prefill_tokens") && has_word(first, "num_decode_tokens"))
    *format = TRACE_FMT_LENGTHS;
  else
    return err_set(ERR_INPUT,
                   "%s:1: unrecognised trace header (want Azure TIMESTAMP,ContextTokens,"
                   "GeneratedTokens; BurstGPT; canonical arrival_s,input_tokens,output_tokens; "
                   "or Mooncake .jsonl): use --format",
                   path);
  return ERR_OK;
}

int trace_read_bad(struct trace_rd *rd, int64_t line, const char *fmt, ...) {
  char reason[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  if (rd->o->on_bad_row != TRACE_BAD_SKIP)
    return err_set(ERR_INPUT, "%s:%lld: %s", rd->path, (long long)line, reason);
  if (rd->t->n_bad++ == 0)
    snprintf(rd->t->first_bad, sizeof rd->t->first_bad, "%s:%lld: %s", rd->path, (long long)line,
             reason);
  return ERR_OK;
}

int trace_read_add(struct trace_rd *rd, int64_t line, const struct trace_req *r) {
  if (r->in_tok < 0 || r->out_tok < 0)
    return trace_read_bad(rd, line, "negative token count (input %d, output %d)", r->in_tok,
                          r->out_tok);
  /* Ties are normal (Mooncake shares millisecond stamps); going backwards is not, unless the
   * caller asked to sort. */
  if (rd->have_last && r->arrival_ns < rd->last_abs_ns && !rd->o->sort)
    return trace_read_bad(rd, line,
                          "arrival goes back in time (%lld ns before the previous row); "
                          "use --sort to accept an unsorted trace",
                          (long long)(rd->last_abs_ns - r->arrival_ns));
  if (!rd->have_last || r->arrival_ns < rd->min_abs_ns) rd->min_abs_ns = r->arrival_ns;
  if (!rd->have_last || r->arrival_ns > rd->last_abs_ns) rd->last_abs_ns = r->arrival_ns;
  rd->have_last = 1;
  int failed = r->in_tok == 0 || r->out_tok == 0;
  if (failed) {
    int rc = trace_note_failed(rd->t, line);
    if (rc) return rc;
    if (!rd->o->keep_failed) return ERR_OK;
  }
  return trace_push(rd->t, r);
}

int trace_read(const char *path, const struct trace_read_opts *o, struct trace *t) {
  struct trace_read_opts def;
  if (!o) {
    trace_read_opts_default(&def);
    o = &def;
  }
  trace_init(t);
  int format = o->format, rc;
  if (format == TRACE_FMT_AUTO) {
    rc = trace_read_detect(path, &format);
    if (rc) return rc;
  } else if (format < TRACE_FMT_AZURE || format > TRACE_FMT_LENGTHS) {
    return err_set(ERR_INPUT, "%s: cannot read format %d", path, format);
  }
  struct trace_rd rd = {.path = path, .o = o, .t = t};
  t->format = format;
  t->failed_kept = o->keep_failed;
  snprintf(t->source, sizeof t->source, "%s", path);
  switch (format) {
    case TRACE_FMT_AZURE: rd.shift_to_first = 1; rc = azure_read(&rd); break;
    case TRACE_FMT_BURSTGPT: rd.shift_to_first = 1; rc = burstgpt_read(&rd); break;
    case TRACE_FMT_MOONCAKE: rd.shift_to_first = 1; rc = mooncake_read(&rd); break;
    case TRACE_FMT_CANONICAL: rc = canon_read(&rd); break;
    default: rc = lengths_read(&rd); break;
  }
  if (!rc && o->sort) rc = trace_sort(t);
  if (rc) {
    trace_free(t);
    return rc;
  }
  if (rd.shift_to_first && rd.have_last) {
    t->origin_ns = rd.min_abs_ns;
    for (int64_t i = 0; i < t->n; i++) t->reqs[i].arrival_ns -= rd.min_abs_ns;
  }
  return ERR_OK;
}

int trace_read_csv(struct trace_rd *rd, const char *kind, const char *const *names,
                   const int *required, int n_need, int strict_cols,
                   int (*row_fn)(struct trace_rd *rd, const struct csvrow *c, const int *col)) {
  struct csvrow c;
  int col[TRACE_CSV_MAX_COLS], got;
  int rc = csvrow_open(&c, rd->path, CSVROW_SKIP_BOM | CSVROW_BLANK_WS);
  if (rc) return rc;
  if ((rc = csvrow_next(&c, &got))) goto done;
  if (!got) {
    rc = err_set(ERR_INPUT, "%s:1: empty file, no header", rd->path);
    goto done;
  }
  int n_cols = c.n_fields;
  if (c.parse_bad || n_cols > TRACE_CSV_MAX_COLS) {
    rc = err_set(ERR_INPUT, "%s:%lld: malformed %s header", rd->path, (long long)c.line_no, kind);
    goto done;
  }
  for (int i = 0; i < n_need; i++) {
    col[i] = csvrow_find(&c, names[i]);
    if (col[i] < 0 && required[i]) {
      rc = err_set(ERR_INPUT, "%s:%lld: %s header has no '%s' column", rd->path,
                   (long long)c.line_no, kind, names[i]);
      goto done;
    }
  }
  if (strict_cols) {
    for (int j = 0; j < n_cols; j++) {
      int known = 0;
      for (int i = 0; i < n_need; i++) known |= col[i] == j;
      if (!known) {
        rc = err_set(ERR_INPUT, "%s:%lld: unknown %s column '%.60s'", rd->path,
                     (long long)c.line_no, kind, c.field[j]);
        goto done;
      }
    }
  }
  while (!(rc = csvrow_next(&c, &got)) && got) {
    if (c.parse_bad) rc = trace_read_bad(rd, c.line_no, "malformed CSV line");
    else if (c.n_fields != n_cols)
      rc = trace_read_bad(rd, c.line_no, "expected %d columns, got %d", n_cols, c.n_fields);
    else rc = row_fn(rd, &c, col);
    if (rc) break;
  }
done:
  csvrow_close(&c);
  return rc;
}
