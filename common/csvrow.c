/* csvrow: streaming CSV rows through libcsv, one row per physical line.
 *
 * Every CSV we read (trace formats, measurement imports) has one record per line, so each line
 * is parsed on its own and the row is closed with csv_fini. That pins each row to an exact line
 * number for error messages, turns an unterminated quote into a bad row instead of swallowing
 * the rest of the file, and lets CRLF and LF files read alike. The cost is one csv_fini per line (a few ns). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/csvrow.h"

static void on_field(void *s, size_t len, void *data) {
  struct csvrow *c = data;
  /* fbuf holds at least line length + MAX_FIELDS + 1 bytes, and fields never exceed the line. */
  if (c->n_fields < CSVROW_MAX_FIELDS) {
    char *dst = c->fbuf + c->fbuf_len;
    if (len) memcpy(dst, s, len);
    dst[len] = '\0';
    c->field[c->n_fields] = dst;
    c->fbuf_len += len + 1;
  }
  c->n_fields++;
}

static void on_row(int term, void *data) { (void)term; (void)data; }

int csvrow_open(struct csvrow *c, const char *path, int flags) {
  memset(c, 0, sizeof *c);
  c->path = path;
  c->flags = flags;
  c->f = fopen(path, "rb");
  if (!c->f) {
    int e = errno;
    return err_set(e == ENOENT ? ERR_NOENT : ERR_IO, "%s: %s", path, strerror(e));
  }
  setvbuf(c->f, NULL, _IOFBF, 1 << 20);
  if (csv_init(&c->p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
    fclose(c->f);
    c->f = NULL;
    return err_set(ERR_NOMEM, "%s: libcsv init failed", path);
  }
  return ERR_OK;
}

void csvrow_close(struct csvrow *c) {
  if (!c) return;
  if (c->f) {
    fclose(c->f);
    csv_free(&c->p);
  }
  free(c->line);
  free(c->fbuf);
  memset(c, 0, sizeof *c);
}

int csvrow_next(struct csvrow *c, int *got) {
  *got = 0;
  for (;;) {
    errno = 0;
    ssize_t len = getline(&c->line, &c->line_cap, c->f);
    if (len < 0) {
      if (ferror(c->f)) return err_set(ERR_IO, "%s: read error: %s", c->path, strerror(errno));
      return ERR_OK; /* end of file */
    }
    c->line_no++;
    char *s = c->line;
    if ((c->flags & CSVROW_SKIP_BOM) && c->line_no == 1 && len >= 3 &&
        !memcmp(s, "\xEF\xBB\xBF", 3)) { /* UTF-8 BOM */
      s += 3;
      len -= 3;
    }
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r')) s[--len] = '\0';
    if ((size_t)len != strlen(s)) { /* a NUL byte inside the line: binary or corrupt */
      c->n_fields = 0;
      c->parse_bad = 1;
      c->bad_why = "a NUL byte in the line";
      *got = 1;
      return ERR_OK;
    }
    ssize_t lead = 0; /* an empty line is skipped; with CSVROW_BLANK_WS, one of blanks too */
    if (c->flags & CSVROW_BLANK_WS)
      while (lead < len && (s[lead] == ' ' || s[lead] == '\t')) lead++;
    if (lead == len) continue;
    size_t need = (size_t)len + CSVROW_MAX_FIELDS + 1;
    if (need > c->fbuf_cap) {
      char *p = realloc(c->fbuf, need);
      if (!p) return err_set(ERR_NOMEM, "%s:%lld: out of memory", c->path, (long long)c->line_no);
      c->fbuf = p;
      c->fbuf_cap = need;
    }
    c->fbuf_len = 0;
    c->n_fields = 0;
    c->parse_bad = 0;
    c->bad_why = NULL;
    size_t used = csv_parse(&c->p, s, (size_t)len, on_field, on_row, c);
    if (used != (size_t)len || csv_fini(&c->p, on_field, on_row, c) != 0) {
      /* libcsv keeps state after an error: start it afresh for the next line. */
      c->parse_bad = 1;
      c->bad_why = csv_strerror(csv_error(&c->p));
      csv_free(&c->p);
      if (csv_init(&c->p, CSV_STRICT | CSV_STRICT_FINI) != 0)
        return err_set(ERR_NOMEM, "%s: libcsv init failed", c->path);
    }
    *got = 1;
    return ERR_OK;
  }
}

int csvrow_find(const struct csvrow *c, const char *name) {
  int n = c->n_fields < CSVROW_MAX_FIELDS ? c->n_fields : CSVROW_MAX_FIELDS;
  for (int i = 0; i < n; i++) {
    const char *f = c->field[i];
    while (*f == ' ' || *f == '\t') f++;
    size_t len = strlen(f);
    while (len && (f[len - 1] == ' ' || f[len - 1] == '\t')) len--;
    if (len == strlen(name) && !strncasecmp(f, name, len)) return i;
  }
  return -1;
}
