/* csvrow: a streaming CSV reader through libcsv that yields one row per physical line, with its
 * line number, so every error can say file:line. Shared by the trace readers (traces/) and the
 * measurements import (db/db_csv.c); what a malformed row means is up to the caller.
 *
 * Lines end in LF or CRLF; empty lines are skipped (and still counted). A line libcsv rejects
 * (an unterminated quote, a stray quote) or one holding a NUL byte comes back with parse_bad set
 * instead of ending the read. Quoted fields may hold commas, not newlines. */
#ifndef SERVESIM_CSVROW_H
#define SERVESIM_CSVROW_H

#include <csv.h>
#include <stdint.h>
#include <stdio.h>

/* Fields kept per row; a row may have more (n_fields counts them all), callers set their cap. */
#define CSVROW_MAX_FIELDS 64

/* csvrow_open flags: the trace readers take exports as they come from spreadsheets and logs. */
#define CSVROW_SKIP_BOM 1       /* drop a UTF-8 byte-order mark in front of the first line */
#define CSVROW_BLANK_WS 2       /* a line of only blanks and tabs is empty (skipped) */

struct csvrow {
  FILE *f;
  const char *path;
  int flags;                  /* CSVROW_* */
  char *line;                 /* (line_cap) current physical line, getline buffer */
  size_t line_cap;
  char *fbuf;                 /* (fbuf_cap) field bytes, each NUL-terminated */
  size_t fbuf_cap, fbuf_len;
  int64_t line_no;            /* 1-based line of the row just returned */
  int n_fields;               /* fields in the row (may exceed CSVROW_MAX_FIELDS) */
  char *field[CSVROW_MAX_FIELDS]; /* (min(n_fields, MAX)) pointers into fbuf */
  int parse_bad;              /* 1: the line is not CSV (libcsv rejected it, or a NUL byte) */
  const char *bad_why;        /* with parse_bad: why, e.g. libcsv's csv_strerror text */
  struct csv_parser p;
};

/* ERR_NOENT naming the file if it does not exist, ERR_IO otherwise. */
int csvrow_open(struct csvrow *c, const char *path, int flags);
/* Next non-empty line as a row: *got = 1, or 0 at end of file. ERR_IO / ERR_NOMEM. */
int csvrow_next(struct csvrow *c, int *got);
void csvrow_close(struct csvrow *c);
/* Index of the header field named `name` (case-insensitive, blanks trimmed), or -1. */
int csvrow_find(const struct csvrow *c, const char *name);

#endif
