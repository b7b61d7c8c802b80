/* trace: the request array itself — growth, failed-row bookkeeping, stable sort, time scaling. */
#include "traces/trace.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "traces/formats.h"

void trace_init(struct trace *t) {
  memset(t, 0, sizeof *t);
  t->format = TRACE_FMT_GENERATED;
}

void trace_free(struct trace *t) {
  if (!t) return;
  free(t->reqs);
  free(t->failed_line);
  trace_init(t);
}

int trace_reserve(struct trace *t, int64_t n_total) {
  if (n_total <= t->cap) return ERR_OK;
  if (n_total > INT64_MAX / (int64_t)sizeof(struct trace_req))
    return err_set(ERR_NOMEM, "trace: %lld requests do not fit in memory", (long long)n_total);
  struct trace_req *p = realloc(t->reqs, (size_t)n_total * sizeof *p);
  if (!p)
    return err_set(ERR_NOMEM, "trace: out of memory for %lld requests (%lld bytes)",
                   (long long)n_total, (long long)(n_total * (int64_t)sizeof *p));
  t->reqs = p;
  t->cap = n_total;
  return ERR_OK;
}

int trace_push(struct trace *t, const struct trace_req *r) {
  if (t->n == t->cap) {
    /* Doubling keeps a million pushes at ~20 reallocs; 4096 avoids tiny early steps. */
    int rc = trace_reserve(t, t->cap ? t->cap * 2 : 4096);
    if (rc) return rc;
  }
  t->reqs[t->n++] = *r;
  return ERR_OK;
}

int trace_note_failed(struct trace *t, int64_t line) {
  if (t->n_failed == t->failed_cap) {
    int64_t cap = t->failed_cap ? t->failed_cap * 2 : 64;
    int64_t *p = realloc(t->failed_line, (size_t)cap * sizeof *p);
    if (!p) return err_set(ERR_NOMEM, "trace: out of memory listing failed rows");
    t->failed_line = p;
    t->failed_cap = cap;
  }
  t->failed_line[t->n_failed++] = line;
  return ERR_OK;
}

/* Bottom-up merge sort: stable (qsort is not) and O(n log n) worst case. */
int trace_sort(struct trace *t) {
  int64_t n = t->n;
  int sorted = 1;
  for (int64_t i = 1; i < n && sorted; i++)
    if (t->reqs[i].arrival_ns < t->reqs[i - 1].arrival_ns) sorted = 0;
  if (sorted) return ERR_OK;
  struct trace_req *buf = malloc((size_t)n * sizeof *buf); /* (n) */
  if (!buf) return err_set(ERR_NOMEM, "trace: out of memory sorting %lld requests", (long long)n);
  struct trace_req *src = t->reqs, *dst = buf;
  for (int64_t w = 1; w < n; w *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * w) {
      int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      int64_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) dst[k++] = src[j].arrival_ns < src[i].arrival_ns ? src[j++] : src[i++];
      while (i < mid) dst[k++] = src[i++];
      while (j < hi) dst[k++] = src[j++];
    }
    struct trace_req *tmp = src;
    src = dst;
    dst = tmp;
  }
  if (src != t->reqs) {
    memcpy(t->reqs, src, (size_t)n * sizeof *src);
    free(src);
  } else {
    free(dst);
  }
  return ERR_OK;
}

int trace_scale(struct trace *t, int64_t num, int64_t den) {
  if (num < 1 || den < 1)
    return err_set(ERR_INPUT, "trace: speedup %lld/%lld must be positive", (long long)num,
                   (long long)den);
  /* 128-bit product: 1e18 ns times a den of 1e9 (a 9-decimal speedup) would overflow int64. */
  /* Sorted and non-negative, so the last arrival is the largest: check it before changing any. */
  if (t->n) {
    __int128 last = ((__int128)t->reqs[t->n - 1].arrival_ns * den * 2 + num) / (2 * (__int128)num);
    if (last > INT64_MAX)
      return err_set(ERR_INPUT, "trace: slowing down by %lld/%lld runs past the int64 ns range",
                     (long long)den, (long long)num);
  }
  for (int64_t i = 0; i < t->n; i++) {
    __int128 a = (__int128)t->reqs[i].arrival_ns * den;
    t->reqs[i].arrival_ns = (int64_t)((2 * a + num) / (2 * (__int128)num));
  }
  return ERR_OK;
}

int trace_scale_parse(const char *s, int64_t *num, int64_t *den) {
  int64_t v;
  const char *why = numparse_sec_ns(s, &v); /* decimal with 9 places = value x 1e9, exactly */
  if (why) return err_set(ERR_INPUT, "--speedup '%s': %s", s, why);
  if (v <= 0) return err_set(ERR_INPUT, "--speedup '%s': must be positive", s);
  *num = v;
  *den = 1000000000;
  return ERR_OK;
}

void trace_print_dropped(const struct trace *t, FILE *f) {
  if (t->n_bad)
    fprintf(f, "servesim: %s: skipped %lld malformed row%s (first: %s)\n", t->source,
            (long long)t->n_bad, t->n_bad == 1 ? "" : "s", t->first_bad);
  if (!t->n_failed) return;
  fprintf(f, "servesim: %s: %lld failed request%s (0 input or output tokens) %s, lines ", t->source,
          (long long)t->n_failed, t->n_failed == 1 ? "" : "s",
          t->failed_kept ? "kept (--keep-failed)" : "left out (--keep-failed keeps them)");
  int64_t n = t->n_failed < 20 ? t->n_failed : 20; /* a full BurstGPT file has thousands */
  for (int64_t i = 0; i < n; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)t->failed_line[i]);
  if (t->n_failed > n) fprintf(f, ",... (%lld more; trace stats --list-failed)", (long long)(t->n_failed - n));
  fputc('\n', f);
}
