/* trace: a workload as an array of requests (arrival time, input and output tokens, prefix).
 *
 * Every reader (Azure CSV, BurstGPT CSV, Mooncake JSONL, the canonical CSV, a length-only CSV)
 * and generator (evalscope random, Poisson, Gamma; traces/gen.h) produces this one form; the
 * simulator and executor consume only this. Times are int64 nanoseconds from the first arrival
 * (0 for closed loop). Readers stream the file line by line and grow `reqs` geometrically, so a
 * million rows cost one pass and about 24 MB.
 *
 * Rows that cannot run (0 input or 0 output tokens: BurstGPT marks failed requests that way)
 * are never dropped silently: they are counted in n_failed with their line numbers, and kept out
 * of `reqs` unless the caller asks to keep them (trace_read_opts.keep_failed). Malformed rows are
 * an ERR_INPUT "file:line: reason", or, with on_bad_row = TRACE_BAD_SKIP, counted in n_bad. */
#ifndef SERVESIM_TRACE_H
#define SERVESIM_TRACE_H

#include <stdint.h>
#include <stdio.h>

struct trace_req {
  int64_t arrival_ns;        /* relative to the trace start */
  int32_t in_tok;            /* prompt tokens */
  int32_t out_tok;           /* output tokens (>= 1 for a request that can run) */
  int32_t prefix_id;         /* shared-prefix group (-1 = none) */
  int32_t prefix_tok;        /* tokens of the prompt shared with that group */
};

enum trace_format {
  TRACE_FMT_AUTO = 0,   /* detect from extension and header */
  TRACE_FMT_AZURE,      /* TIMESTAMP,ContextTokens,GeneratedTokens (absolute wall-clock) */
  TRACE_FMT_BURSTGPT,   /* Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type */
  TRACE_FMT_MOONCAKE,   /* JSONL {timestamp ms, input_length, output_length, hash_ids} */
  TRACE_FMT_CANONICAL,  /* arrival_s,input_tokens,output_tokens[,prefix_id,prefix_tokens] */
  TRACE_FMT_LENGTHS,    /* num_prefill_tokens,num_decode_tokens (ShareGPT lengths; arrivals 0) */
  TRACE_FMT_GENERATED   /* made by traces/gen.c, not read */
};

struct trace {
  struct trace_req *reqs;    /* (n) sorted by arrival_ns (ties keep file order) */
  int64_t n;
  int64_t cap;
  int64_t n_bad;             /* malformed rows skipped under on_bad_row = TRACE_BAD_SKIP */
  char source[256];          /* file or generator description */
  /* Added by the traces owner (fields above are stable): */
  int format;                /* enum trace_format it came from */
  int64_t origin_ns;         /* the first arrival in the source's own clock (Azure: Unix ns,
                                BurstGPT: ns since 00:00 of day 0, Mooncake: ns from its 0) */
  int64_t n_failed;          /* rows with 0 input or 0 output tokens (failed requests) */
  int64_t *failed_line;      /* (n_failed) 1-based file line of each failed row */
  int64_t failed_cap;
  int failed_kept;           /* 1: failed rows are also in reqs (keep_failed) */
  char first_bad[512];       /* "file:line: reason" of the first skipped malformed row */
};

void trace_init(struct trace *t);
/* Frees the arrays and re-initialises; trace_free(NULL) is harmless. */
void trace_free(struct trace *t);
/* Appends one request (amortised O(1), capacity doubles). ERR_NOMEM on failure. */
int trace_push(struct trace *t, const struct trace_req *r);
/* Makes room for n_total requests at once (generators know their size). */
int trace_reserve(struct trace *t, int64_t n_total);
/* Records a failed row's line number (see n_failed). */
int trace_note_failed(struct trace *t, int64_t line);
/* Prints what a read left out or kept specially, one line each on f: "servesim: SRC: skipped N
 * malformed rows (first: file:line: reason)" and "servesim: SRC: N failed requests (0 input or
 * output tokens) left out, lines a,b,c...". Prints nothing for a clean trace. Every command that
 * reads a trace should call it, so no row disappears silently. */
void trace_print_dropped(const struct trace *t, FILE *f);
/* Stable sort by arrival_ns (ties keep their order); O(n log n) with one n-sized buffer. */
int trace_sort(struct trace *t);
/* "The same traffic, speedup times faster": arrival_ns * den / num, rounded half up with exact
 * 128-bit integer arithmetic. num, den >= 1. */
int trace_scale(struct trace *t, int64_t num, int64_t den);
/* Parses a decimal speedup ("2", "1.5", "0.25") exactly into num/den for trace_scale. */
int trace_scale_parse(const char *s, int64_t *num, int64_t *den);

/* ---- reading (traces/trace_read.c dispatches to the per-format readers) ---- */
enum trace_bad_row { TRACE_BAD_FAIL = 0, TRACE_BAD_SKIP = 1 };

struct trace_read_opts {
  int format;        /* enum trace_format; TRACE_FMT_AUTO detects */
  int on_bad_row;    /* enum trace_bad_row */
  int keep_failed;   /* 1: keep 0-token (failed) rows in reqs as well as listing them */
  int sort;          /* 1: accept rows out of time order and sort them; 0: such a row is bad */
};

void trace_read_opts_default(struct trace_read_opts *o);
/* Reads path into t (initialised here). ERR_NOENT if missing, ERR_INPUT "file:line: reason" for
 * a malformed row (fail mode) or an unrecognised format, ERR_IO, ERR_NOMEM. On error t is empty. */
int trace_read(const char *path, const struct trace_read_opts *o, struct trace *t);
/* Detects the format from the extension and the first line. ERR_NOENT / ERR_INPUT. */
int trace_read_detect(const char *path, int *format);
const char *trace_read_format_name(int format);
/* "auto", "azure", "burstgpt", "mooncake", "canonical", "lengths" -> enum; -1 if unknown. */
int trace_read_format_parse(const char *name);

/* ---- the canonical CSV (traces/canon.c) ----
 * Header `arrival_s,input_tokens,output_tokens` plus `,prefix_id,prefix_tokens` when any request
 * has a prefix group. arrival_s is written with exactly 9 decimals (integer ns), so write then
 * read gives back the same int64 values. */
int canon_write(const struct trace *t, const char *path);   /* "-" = stdout */
int canon_write_fp(const struct trace *t, FILE *f, const char *name);

/* ---- summary statistics (traces/trace_stats.c) ---- */
struct trace_dist {
  double mean, p50, p99;     /* percentiles interpolate linearly between ranks (numpy default) */
  int64_t min, max;
  int64_t sum;
};

struct trace_stats {
  int64_t n;
  int64_t span_ns;           /* last arrival - first arrival */
  double rate_rps;           /* (n - 1) / span, 0 when span is 0 */
  double iat_mean_s, iat_cv; /* inter-arrival mean and coefficient of variation */
  struct trace_dist in_tok, out_tok;
  int64_t n_prefixed;        /* requests with prefix_id >= 0 */
  int64_t prefix_tok_sum;    /* sum of prefix_tok: prompt tokens an unbounded prefix cache hits */
};

int trace_stats_compute(const struct trace *t, struct trace_stats *s);

#endif
