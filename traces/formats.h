/* formats: what the per-format trace readers share (private to traces/).
 *
 * - numparse.c: strict number parsing (integers, decimal seconds to integer ns, wall-clock
 *   timestamps) with no double rounding on the exact paths.
 * - common/csvrow.c (shared with db/): a streaming libcsv reader that yields one row per
 *   physical line, with its line number, so every error can say file:line.
 * - trace_read.c: the bad-row policy and the time-order / failed-row rules every reader applies.
 * - azure.c, burstgpt.c, mooncake.c, canon.c, lengths.c: one reader per format. */
#ifndef SERVESIM_TRACES_FORMATS_H
#define SERVESIM_TRACES_FORMATS_H

#include <stdint.h>
#include <stdio.h>

#include "common/csvrow.h"
#include "traces/trace.h"

/* ---- numparse.c: each returns 0 or a static reason string for the error message ---- */
/* Decimal integer in [lo, hi]; surrounding blanks allowed; "12.0" (zero fraction) accepted
 * because spreadsheet exports write integers that way. */
const char *numparse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* Decimal seconds ("12", "12.5", "12.123456789") to integer ns, exactly; digits past the 9th are
 * rounded half up. Exponent forms ("1e-3") go through strtod and are rounded to the ns. */
const char *numparse_sec_ns(const char *s, int64_t *ns);
/* "YYYY-MM-DD HH:MM:SS[.f{1,9}][Z|+HH:MM|-HH:MM]" (or a 'T' separator) to Unix-epoch ns, UTC
 * unless an offset is given. Exact integer arithmetic (civil date to day count). */
const char *numparse_datetime_ns(const char *s, int64_t *ns);

/* Header columns a trace CSV may have; a wider header is malformed. */
#define TRACE_CSV_MAX_COLS 16

/* ---- trace_read.c: the rules every reader applies ---- */
struct trace_rd {
  const char *path;
  const struct trace_read_opts *o;
  struct trace *t;
  int shift_to_first;         /* 1: make arrivals relative to the first row (real traces) */
  int have_last;
  int64_t last_abs_ns;        /* previous row's arrival in the source clock */
  int64_t min_abs_ns;         /* earliest arrival of any row, failed rows included */
};

/* A malformed row at `line`: ERR_INPUT "path:line: reason" in fail mode, else counted (n_bad,
 * first_bad) and ERR_OK so the reader moves on. */
int trace_read_bad(struct trace_rd *rd, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds one parsed row whose arrival is in the source's clock: negative tokens and rows out of
 * time order are bad rows; 0 input or 0 output tokens is a failed request (listed; kept only
 * with keep_failed). */
int trace_read_add(struct trace_rd *rd, int64_t line, const struct trace_req *r);

/* The CSV skeleton every CSV reader shares: opens path, reads the header, finds the `n_need`
 * columns named in need (names[i] may be NULL for an optional column: col[i] = -1 if absent;
 * `kind` names the format in the header error), checks each row's column count and CSV syntax
 * (bad rows otherwise), and calls row_fn with col[i] = the field index of names[i]. If
 * strict_cols, a header column not in names is an error. */
int trace_read_csv(struct trace_rd *rd, const char *kind, const char *const *names,
                   const int *required, int n_need, int strict_cols,
                   int (*row_fn)(struct trace_rd *rd, const struct csvrow *c, const int *col));

/* ---- the readers: each fills rd->t (already initialised) ---- */
int azure_read(struct trace_rd *rd);
int burstgpt_read(struct trace_rd *rd);
int mooncake_read(struct trace_rd *rd);
int canon_read(struct trace_rd *rd);
int lengths_read(struct trace_rd *rd);

/* Mooncake prefix blocks are 512 tokens (the trace's README). */
#define MOONCAKE_BLOCK_TOK 512

#endif
