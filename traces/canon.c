/* canon: the project's own trace CSV, read and written.
 *
 *   arrival_s,input_tokens,output_tokens[,prefix_id,prefix_tokens]
 *   0.000000000,4808,10
 *
 * arrival_s is seconds from the trace start written with exactly 9 decimals, i.e. the int64 ns
 * value printed as a fixed-point number: readable in a spreadsheet, and read back exactly (the
 * reader parses the digits as integers; no double). The prefix columns appear when any request
 * has a prefix group (prefix_id -1 = none; prefix_tokens <= input_tokens). Columns may come in
 * any order; an unknown column is an error so a typo cannot silently drop data. Rows must not go
 * back in time (ties are fine) unless the reader is asked to sort. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "traces/formats.h"

static int canon_row(struct trace_rd *rd, const struct csvrow *c, const int *col) {
  int64_t ns, in, out, pid = -1, ptok = 0;
  const char *why;
  const char *f_t = c->field[col[0]], *f_in = c->field[col[1]], *f_out = c->field[col[2]];
  if ((why = numparse_sec_ns(f_t, &ns)))
    return trace_read_bad(rd, c->line_no, "arrival_s '%.40s': %s", f_t, why);
  if (ns < 0) return trace_read_bad(rd, c->line_no, "arrival_s '%.40s': negative", f_t);
  if ((why = numparse_i64(f_in, INT32_MIN, INT32_MAX, &in)))
    return trace_read_bad(rd, c->line_no, "input_tokens '%.40s': %s", f_in, why);
  if ((why = numparse_i64(f_out, INT32_MIN, INT32_MAX, &out)))
    return trace_read_bad(rd, c->line_no, "output_tokens '%.40s': %s", f_out, why);
  if (col[3] >= 0 && (why = numparse_i64(c->field[col[3]], -1, INT32_MAX, &pid)))
    return trace_read_bad(rd, c->line_no, "prefix_id '%.40s': %s", c->field[col[3]], why);
  if (col[4] >= 0 && (why = numparse_i64(c->field[col[4]], 0, INT32_MAX, &ptok)))
    return trace_read_bad(rd, c->line_no, "prefix_tokens '%.40s': %s", c->field[col[4]], why);
  if (ptok > 0 && pid < 0)
    return trace_read_bad(rd, c->line_no, "prefix_tokens %lld without a prefix_id", (long long)ptok);
  if (ptok > in && in >= 0)
    return trace_read_bad(rd, c->line_no, "prefix_tokens %lld > input_tokens %lld",
                          (long long)ptok, (long long)in);
  struct trace_req r = {.arrival_ns = ns, .in_tok = (int32_t)in, .out_tok = (int32_t)out,
                        .prefix_id = (int32_t)pid, .prefix_tok = (int32_t)ptok};
  return trace_read_add(rd, c->line_no, &r);
}

int canon_read(struct trace_rd *rd) {
  static const char *const names[] = {"arrival_s", "input_tokens", "output_tokens", "prefix_id",
                                      "prefix_tokens"};
  static const int required[] = {1, 1, 1, 0, 0};
  return trace_read_csv(rd, "canonical", names, required, 5, 1, canon_row);
}

/* Writes v in decimal at p; returns the end. fprintf would cost ~4x on a million rows. */
static char *put_u64(char *p, uint64_t v) {
  char tmp[24];
  int n = 0;
  do tmp[n++] = (char)('0' + v % 10);
  while ((v /= 10));
  while (n) *p++ = tmp[--n];
  return p;
}

static char *put_i64(char *p, int64_t v) {
  if (v < 0) {
    *p++ = '-';
    return put_u64(p, (uint64_t)0 - (uint64_t)v);
  }
  return put_u64(p, (uint64_t)v);
}

int canon_write_fp(const struct trace *t, FILE *f, const char *name) {
  int prefixed = 0;
  for (int64_t i = 0; i < t->n && !prefixed; i++)
    prefixed = t->reqs[i].prefix_id >= 0 || t->reqs[i].prefix_tok != 0;
  fputs(prefixed ? "arrival_s,input_tokens,output_tokens,prefix_id,prefix_tokens\n"
                 : "arrival_s,input_tokens,output_tokens\n",
        f);
  enum { BUF = 1 << 16, ROW_MAX = 128 };
  char buf[BUF]; /* (BUF) rows are flushed before one could overflow it */
  char *p = buf;
  for (int64_t i = 0; i < t->n; i++) {
    const struct trace_req *r = &t->reqs[i];
    uint64_t a = r->arrival_ns < 0 ? (uint64_t)0 - (uint64_t)r->arrival_ns : (uint64_t)r->arrival_ns;
    if (r->arrival_ns < 0) *p++ = '-';
    p = put_u64(p, a / 1000000000u);
    *p++ = '.';
    uint64_t frac = a % 1000000000u;
    for (int d = 8; d >= 0; d--) {
      p[d] = (char)('0' + frac % 10);
      frac /= 10;
    }
    p += 9;
    *p++ = ',';
    p = put_i64(p, r->in_tok);
    *p++ = ',';
    p = put_i64(p, r->out_tok);
    if (prefixed) {
      *p++ = ',';
      p = put_i64(p, r->prefix_id);
      *p++ = ',';
      p = put_i64(p, r->prefix_tok);
    }
    *p++ = '\n';
    if (p - buf > BUF - ROW_MAX) {
      if (fwrite(buf, 1, (size_t)(p - buf), f) != (size_t)(p - buf)) break;
      p = buf;
    }
  }
  if (p > buf) fwrite(buf, 1, (size_t)(p - buf), f);
  if (fflush(f) != 0 || ferror(f))
    return err_set(ERR_IO, "%s: write failed: %s", name, strerror(errno));
  return ERR_OK;
}

int canon_write(const struct trace *t, const char *path) {
  if (!strcmp(path, "-")) return canon_write_fp(t, stdout, "<stdout>");
  FILE *f = fopen(path, "wb");
  if (!f) {
    int e = errno;
    return err_set(e == ENOENT ? ERR_NOENT : ERR_IO, "%s: cannot create: %s", path, strerror(e));
  }
  int rc = canon_write_fp(t, f, path);
  if (fclose(f) != 0 && !rc) rc = err_set(ERR_IO, "%s: write failed: %s", path, strerror(errno));
  return rc;
}
