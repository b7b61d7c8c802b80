/* test_traces: trace readers on small files written here (every malformed-row case must give
 * ERR_INPUT at the right file:line, skip mode must count), exact number parsing, the canonical
 * write -> read round trip, time scaling, and the generators' statistics and determinism.
 * The real traces in ../shared are tested by test_traces_shared.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/rng.h"
#include "tests/check.h"
#include "traces/formats.h"
#include "traces/gen.h"
#include "traces/trace.h"

_Static_assert(sizeof(struct trace_req) == 24, "trace_req must stay 24 bytes (1M requests = 24 MB)");

static char tmpdir[256];

/* Writes text to tmpdir/name and returns the path (static buffer per call slot). */
static const char *put_file(const char *name, const char *text) {
  static char paths[8][512];
  static int slot;
  char *p = paths[slot++ % 8];
  snprintf(p, 512, "%s/%s", tmpdir, name);
  FILE *f = fopen(p, "wb");
  if (!f) {
    perror(p);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
  return p;
}

/* Reads path with default options plus on_bad_row; returns the status. */
static int read_with(const char *path, int on_bad_row, struct trace *t) {
  struct trace_read_opts o;
  trace_read_opts_default(&o);
  o.on_bad_row = on_bad_row;
  return trace_read(path, &o, t);
}

/* The read fails with ERR_INPUT and the message starts "path:line:". */
static void expect_bad_at(const char *path, int line, const char *why_substr) {
  struct trace t;
  int rc = read_with(path, TRACE_BAD_FAIL, &t);
  char want[600];
  snprintf(want, sizeof want, "%s:%d: ", path, line);
  CHECK_MSG(rc == ERR_INPUT, "%s: rc %d, msg %s", path, rc, err_msg());
  CHECK_MSG(!strncmp(err_msg(), want, strlen(want)), "want prefix '%s', got '%s'", want, err_msg());
  if (why_substr) CHECK_MSG(strstr(err_msg(), why_substr) != NULL, "want '%s' in '%s'", why_substr, err_msg());
  CHECK(t.n == 0 && t.reqs == NULL); /* nothing half-read leaks out */
  trace_free(&t);
}

static void test_numparse(void) {
  int64_t v;
  /* 2000-03-01 is 11017 days after the epoch (30 years incl. 7 leap days, then Jan + Feb 2000). */
  CHECK(!numparse_datetime_ns("1970-01-01 00:00:00", &v) && v == 0);
  CHECK(!numparse_datetime_ns("2000-03-01 00:00:00", &v) && v == 11017LL * 86400 * 1000000000);
  /* 1700000000 s is 2023-11-14 22:13:20 UTC, so 2023-11-16 00:00:00 is 1700092800 s. */
  CHECK(!numparse_datetime_ns("2023-11-16 18:17:03.9799600", &v) &&
        v == (1700092800LL + 18 * 3600 + 17 * 60 + 3) * 1000000000 + 979960000);
  CHECK(!numparse_datetime_ns("2023-11-16T20:17:03.97996+02:00", &v) &&
        v == (1700092800LL + 18 * 3600 + 17 * 60 + 3) * 1000000000 + 979960000);
  CHECK(!numparse_datetime_ns("2024-02-29 00:00:00Z", &v));
  CHECK(numparse_datetime_ns("2023-02-29 00:00:00", &v) != NULL);
  CHECK(numparse_datetime_ns("2023-11-16 24:00:00", &v) != NULL);
  CHECK(numparse_datetime_ns("2023-11-16 18:17:03.1234567890", &v) != NULL);
  CHECK(numparse_datetime_ns("2023-11-16", &v) != NULL);
  CHECK(numparse_datetime_ns("2023-11-16 18:17:03 junk", &v) != NULL);

  CHECK(!numparse_sec_ns("12.5", &v) && v == 12500000000LL);
  CHECK(!numparse_sec_ns("0.000000001", &v) && v == 1);
  CHECK(!numparse_sec_ns("3", &v) && v == 3000000000LL);
  CHECK(!numparse_sec_ns("1.0000000005", &v) && v == 1000000001LL); /* 10th digit rounds */
  CHECK(!numparse_sec_ns("1e-3", &v) && v == 1000000);
  CHECK(numparse_sec_ns("1.2.3", &v) != NULL);
  CHECK(numparse_sec_ns("", &v) != NULL);
  CHECK(numparse_sec_ns("abc", &v) != NULL);
  CHECK(numparse_sec_ns("9500000000", &v) != NULL);
  CHECK(!numparse_sec_ns("9000000000.5", &v) && v == 9000000000500000000LL);

  CHECK(!numparse_i64(" 472 ", 0, 1000, &v) && v == 472);
  CHECK(!numparse_i64("472.0", 0, 1000, &v) && v == 472);
  CHECK(numparse_i64("472.5", 0, 1000, &v) != NULL);
  CHECK(numparse_i64("12x", 0, 1000, &v) != NULL);
  CHECK(numparse_i64("-3", 0, 1000, &v) != NULL);
  CHECK(numparse_i64("99999999999999999999999", INT64_MIN, INT64_MAX, &v) != NULL);
}

static void test_azure(void) {
  const char *p = put_file("az.csv",
                           "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
                           "2023-11-16 18:17:03.9799600,4808,10\r\n"
                           "2023-11-16 18:17:04.0319600,3180,8\r\n"
                           "2023-11-16 18:17:04.0319600,100,0\r\n"   /* failed: 0 output */
                           "\r\n"                                     /* blank: not a row */
                           "2023-11-16 18:17:05.0000001,7,1\r\n");
  struct trace t;
  CHECK(read_with(p, TRACE_BAD_FAIL, &t) == ERR_OK);
  CHECK(t.format == TRACE_FMT_AZURE);
  CHECK(t.n == 3 && t.n_failed == 1 && t.failed_line[0] == 4 && t.n_bad == 0);
  if (t.n == 3) {
    CHECK(t.reqs[0].arrival_ns == 0 && t.reqs[0].in_tok == 4808 && t.reqs[0].out_tok == 10);
    CHECK(t.reqs[1].arrival_ns == 52000000);
    CHECK(t.reqs[2].arrival_ns == 1020040100); /* 05.0000001 - 03.9799600, to the 100 ns tick */
    CHECK(t.reqs[0].prefix_id == -1 && t.reqs[0].prefix_tok == 0);
  }
  trace_free(&t);

  expect_bad_at(put_file("az_num.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                       "2023-11-16 18:17:03.9799600,4808,10\n"
                                       "2023-11-16 18:17:04.0319600,31x0,8\n"),
                3, "ContextTokens");
  expect_bad_at(put_file("az_col.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                       "2023-11-16 18:17:03.9799600,4808,10\n"
                                       "2023-11-16 18:17:04.0319600,3180,8\n"
                                       "2023-11-16 18:17:04.0319600,3180\n"),
                4, "expected 3 columns, got 2");
  expect_bad_at(put_file("az_neg.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                       "2023-11-16 18:17:03.9799600,-5,10\n"),
                2, "negative");
  expect_bad_at(put_file("az_ts.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                      "2023-11-16 18:17:03.9799600,5,10\n"
                                      "2023-13-16 18:17:03.9799600,5,10\n"),
                3, "TIMESTAMP");
  expect_bad_at(put_file("az_back.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                        "2023-11-16 18:17:04.0000000,5,10\n"
                                        "2023-11-16 18:17:04.0000000,6,10\n"
                                        "2023-11-16 18:17:03.0000000,7,10\n"),
                4, "back in time");
  expect_bad_at(put_file("az_quote.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                         "2023-11-16 18:17:04.0000000,\"5,10\n"),
                2, NULL);
  expect_bad_at(put_file("az_hdr.csv", "TIMESTAMP,ContextTokens,Tokens\n1,2,3\n"), 1, NULL);

  /* --sort accepts the out-of-order file; ties keep file order; times relative to the earliest. */
  struct trace_read_opts o;
  trace_read_opts_default(&o);
  o.sort = 1;
  char path[512];
  snprintf(path, sizeof path, "%s/az_back.csv", tmpdir);
  CHECK(trace_read(path, &o, &t) == ERR_OK && t.n == 3);
  if (t.n == 3)
    CHECK(t.reqs[0].in_tok == 7 && t.reqs[1].in_tok == 5 && t.reqs[2].in_tok == 6 &&
          t.reqs[0].arrival_ns == 0 && t.reqs[1].arrival_ns == 1000000000);
  trace_free(&t);

  /* skip mode: two bad rows out of five are counted, the first one named */
  p = put_file("az_skip.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                              "2023-11-16 18:17:03.0,1,1\n"
                              "2023-11-16 18:17:04.0,x,1\n"
                              "2023-11-16 18:17:05.0,3,3\n"
                              "2023-11-16 18:17:06.0,4\n"
                              "2023-11-16 18:17:07.0,5,5\n");
  CHECK(read_with(p, TRACE_BAD_SKIP, &t) == ERR_OK);
  CHECK(t.n == 3 && t.n_bad == 2);
  char want[600];
  snprintf(want, sizeof want, "%s:3: ", p);
  CHECK_MSG(!strncmp(t.first_bad, want, strlen(want)), "first_bad '%s'", t.first_bad);
  trace_free(&t);
}

static void test_burstgpt(void) {
  const char *p = put_file("bg.csv",
                           "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                           "5,ChatGPT,472,18,490,Conversation log\n"
                           "45,ChatGPT,0,0,0,Conversation log\n"
                           "46,GPT-4,100,20,120,API log\n");
  struct trace t;
  CHECK(read_with(p, TRACE_BAD_FAIL, &t) == ERR_OK);
  CHECK(t.format == TRACE_FMT_BURSTGPT && t.n == 2 && t.n_failed == 1 && t.failed_line[0] == 3);
  if (t.n == 2) CHECK(t.reqs[1].arrival_ns == 41000000000LL && t.reqs[1].in_tok == 100);
  CHECK(t.origin_ns == 5000000000LL);
  trace_free(&t);
  struct trace_read_opts o;
  trace_read_opts_default(&o);
  o.keep_failed = 1;
  CHECK(trace_read(p, &o, &t) == ERR_OK && t.n == 3 && t.n_failed == 1 && t.failed_kept);
  /* the report every command prints names the failed row's line */
  FILE *f = tmpfile();
  char text[512] = {0};
  if (f) {
    trace_print_dropped(&t, f);
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
  }
  CHECK_MSG(strstr(text, "1 failed request (0 input or output tokens) kept") && strstr(text, "lines 3\n"),
            "report '%s'", text);
  trace_free(&t);
  expect_bad_at(put_file("bg_tot.csv",
                         "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                         "5,ChatGPT,472,18,491,Conversation log\n"),
                2, "Total tokens");
}

static void test_mooncake(void) {
  const char *p = put_file("mc.jsonl",
                           "{\"timestamp\": 0, \"input_length\": 1000, \"output_length\": 5, \"hash_ids\": [0, 1]}\n"
                           "{\"timestamp\": 0, \"input_length\": 1500, \"output_length\": 6, \"hash_ids\": [0, 1, 2]}\n"
                           "{\"timestamp\": 7, \"input_length\": 600, \"output_length\": 7, \"hash_ids\": [3, 4]}\n"
                           "{\"timestamp\": 9, \"input_length\": 700, \"output_length\": 8, \"hash_ids\": [0, 9]}\n"
                           "{\"timestamp\": 9, \"input_length\": 10, \"output_length\": 8}\n");
  struct trace t;
  CHECK(read_with(p, TRACE_BAD_FAIL, &t) == ERR_OK);
  CHECK(t.format == TRACE_FMT_MOONCAKE && t.n == 5);
  if (t.n == 5) {
    const struct trace_req *r = t.reqs;
    CHECK(r[0].prefix_id == 0 && r[0].prefix_tok == 0);
    CHECK(r[1].prefix_id == 0 && r[1].prefix_tok == 1024); /* blocks 0, 1 seen before */
    CHECK(r[2].prefix_id == 1 && r[2].prefix_tok == 0 && r[2].arrival_ns == 7000000);
    CHECK(r[3].prefix_id == 0 && r[3].prefix_tok == 512);
    CHECK(r[4].prefix_id == -1 && r[4].prefix_tok == 0);
  }
  trace_free(&t);
  const char *good = "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 5}\n";
  char buf[1024];
  snprintf(buf, sizeof buf, "%s%s{\"timestamp\": 1, \"input_length\": 10, \"output_length\": 5\n", good, good);
  expect_bad_at(put_file("mc_json.jsonl", buf), 3, "invalid JSON");
  snprintf(buf, sizeof buf, "%s{\"timestamp\": 1, \"input_length\": 10}\n", good);
  expect_bad_at(put_file("mc_miss.jsonl", buf), 2, "output_length");
  snprintf(buf, sizeof buf, "%s{\"timestamp\": 1, \"input_length\": -10, \"output_length\": 5}\n", good);
  expect_bad_at(put_file("mc_neg.jsonl", buf), 2, "negative");
  snprintf(buf, sizeof buf, "%s{\"timestamp\": 1, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": [1, \"x\"]}\n", good);
  expect_bad_at(put_file("mc_hash.jsonl", buf), 2, "hash_ids[1]");
  snprintf(buf, sizeof buf, "%s[1, 2]\n", good);
  expect_bad_at(put_file("mc_arr.jsonl", buf), 2, "object");
}

static void test_canonical(void) {
  /* format by hand: 9 decimals, integer ns exactly */
  struct trace t;
  trace_init(&t);
  struct trace_req a = {1500000000, 10, 20, -1, 0}, b = {1500000001, 11, 21, -1, 0};
  trace_push(&t, &a);
  trace_push(&t, &b);
  char path[512];
  snprintf(path, sizeof path, "%s/c1.csv", tmpdir);
  CHECK(canon_write(&t, path) == ERR_OK);
  trace_free(&t);
  FILE *f = fopen(path, "rb");
  char text[256] = {0};
  if (f) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
  }
  CHECK_MSG(!strcmp(text, "arrival_s,input_tokens,output_tokens\n1.500000000,10,20\n1.500000001,11,21\n"),
            "got '%s'", text);

  /* round trip of a generated trace with prefixes: every field comes back identical */
  struct gen_opts g;
  gen_opts_default(&g);
  g.arrival = GEN_GAMMA;
  g.rate_rps = 37.3;
  g.cv = 3;
  g.n_req = 20000;
  g.in_min = 1;
  g.in_max = 5000;
  g.out_min = 1;
  g.out_max = 900;
  g.prefix_tok = 64;
  g.seed = 7;
  struct trace w, r;
  CHECK(gen_run(&g, &w) == ERR_OK);
  snprintf(path, sizeof path, "%s/c2.csv", tmpdir);
  CHECK(canon_write(&w, path) == ERR_OK);
  CHECK(read_with(path, TRACE_BAD_FAIL, &r) == ERR_OK);
  CHECK(r.format == TRACE_FMT_CANONICAL);
  CHECK(r.n == w.n && r.n_bad == 0 && r.n_failed == 0);
  if (r.n == w.n) CHECK(!memcmp(r.reqs, w.reqs, (size_t)w.n * sizeof *w.reqs));
  trace_free(&r);
  trace_free(&w);

  /* columns in another order are fine; an unknown column is not */
  const char *p = put_file("c3.csv", "output_tokens,arrival_s,input_tokens\n5,0.25,7\n");
  CHECK(read_with(p, TRACE_BAD_FAIL, &t) == ERR_OK && t.n == 1);
  if (t.n == 1) CHECK(t.reqs[0].arrival_ns == 250000000 && t.reqs[0].in_tok == 7 && t.reqs[0].out_tok == 5);
  trace_free(&t);
  p = put_file("c4.csv", "arrival_s,input_tokens,output_tokens,prefx_id\n0,1,1,0\n");
  CHECK(read_with(p, TRACE_BAD_FAIL, &t) == ERR_INPUT && strstr(err_msg(), "prefx_id"));
  expect_bad_at(put_file("c5.csv", "arrival_s,input_tokens,output_tokens\n0,1,1\n-1,1,1\n"), 3, "negative");
  expect_bad_at(put_file("c6.csv", "arrival_s,input_tokens,output_tokens,prefix_id,prefix_tokens\n"
                                   "0,10,1,0,11\n"), 2, "prefix_tokens");
  expect_bad_at(put_file("c7.csv", "arrival_s,input_tokens,output_tokens\n0,1,1\n1,2,3,4\n"), 3, "columns");

  /* missing file: ERR_NOENT naming it; unrecognised header: ERR_INPUT at line 1 */
  snprintf(path, sizeof path, "%s/no_such_trace.csv", tmpdir);
  CHECK(read_with(path, TRACE_BAD_FAIL, &t) == ERR_NOENT && strstr(err_msg(), "no_such_trace.csv"));
  p = put_file("weird.csv", "a,b,c\n1,2,3\n");
  CHECK(read_with(p, TRACE_BAD_FAIL, &t) == ERR_INPUT && strstr(err_msg(), "weird.csv:1:"));
  p = put_file("empty.csv", "");
  CHECK(read_with(p, TRACE_BAD_FAIL, &t) == ERR_INPUT);
  /* explicit --format on a file of another format: header error, no crash */
  struct trace_read_opts o;
  trace_read_opts_default(&o);
  o.format = TRACE_FMT_BURSTGPT;
  snprintf(path, sizeof path, "%s/c1.csv", tmpdir);
  CHECK(trace_read(path, &o, &t) == ERR_INPUT && strstr(err_msg(), "c1.csv:1: BurstGPT header"));
  o.format = TRACE_FMT_MOONCAKE;
  CHECK(trace_read(path, &o, &t) == ERR_INPUT && strstr(err_msg(), "c1.csv:1:"));
}

static void test_scale_sort(void) {
  struct trace t;
  trace_init(&t);
  int64_t at[] = {0, 3, 5, 1000000001};
  for (int i = 0; i < 4; i++) {
    struct trace_req r = {at[i], i + 1, 1, -1, 0};
    trace_push(&t, &r);
  }
  int64_t num, den;
  CHECK(trace_scale_parse("2", &num, &den) == ERR_OK);
  CHECK(trace_scale(&t, num, den) == ERR_OK);
  /* halves, rounded half up: 3/2 -> 2, 5/2 -> 3, 1000000001/2 -> 500000001 */
  CHECK(t.reqs[0].arrival_ns == 0 && t.reqs[1].arrival_ns == 2 && t.reqs[2].arrival_ns == 3 &&
        t.reqs[3].arrival_ns == 500000001);
  CHECK(trace_scale_parse("0.5", &num, &den) == ERR_OK && trace_scale(&t, num, den) == ERR_OK);
  CHECK(t.reqs[3].arrival_ns == 1000000002);
  CHECK(trace_scale_parse("0", &num, &den) == ERR_INPUT);
  CHECK(trace_scale_parse("fast", &num, &den) == ERR_INPUT);
  trace_free(&t);

  /* stable sort of 10k shuffled requests with many ties */
  struct rng r;
  rng_seed(&r, 3);
  trace_init(&t);
  for (int i = 0; i < 10000; i++) {
    struct trace_req q = {rng_range(&r, 0, 99), i, 1, -1, 0};
    trace_push(&t, &q);
  }
  CHECK(trace_sort(&t) == ERR_OK);
  int ok = 1;
  for (int64_t i = 1; i < t.n; i++)
    if (t.reqs[i].arrival_ns < t.reqs[i - 1].arrival_ns ||
        (t.reqs[i].arrival_ns == t.reqs[i - 1].arrival_ns && t.reqs[i].in_tok < t.reqs[i - 1].in_tok))
      ok = 0;
  CHECK(ok && t.n == 10000);
  trace_free(&t);
  trace_free(NULL);

  /* stats on a hand-made trace: inputs 1..10 (p50 5.5, p99 9.91 by linear interpolation),
   * arrivals 0, 1, 3 s (gaps 1 and 2 s: mean 1.5, sample cv sqrt(0.5)/1.5) */
  trace_init(&t);
  for (int i = 1; i <= 10; i++) {
    struct trace_req q = {i <= 3 ? (int64_t)(i == 1 ? 0 : i == 2 ? 1 : 3) * 1000000000 : 3000000000LL,
                          11 - i, 2 * i, i % 2 ? 0 : -1, i % 2};
    trace_push(&t, &q);
  }
  struct trace_stats st;
  CHECK(trace_stats_compute(&t, &st) == ERR_OK);
  CHECK(st.n == 10 && st.span_ns == 3000000000LL);
  CHECK_NEAR(st.in_tok.mean, 5.5, 1e-12);
  CHECK_NEAR(st.in_tok.p50, 5.5, 1e-12);
  CHECK_NEAR(st.in_tok.p99, 9.91, 1e-9);
  CHECK(st.in_tok.min == 1 && st.in_tok.max == 10 && st.out_tok.max == 20);
  CHECK(st.n_prefixed == 5 && st.prefix_tok_sum == 5);
  CHECK_NEAR(st.rate_rps, 3.0, 1e-12); /* (n - 1) / span */
  trace_free(&t);
}

static void gaps_moments(const struct trace *t, double *rate, double *cv) {
  double sum = 0, sum2 = 0;
  int64_t n = t->n - 1;
  for (int64_t i = 1; i < t->n; i++) {
    double g = (double)(t->reqs[i].arrival_ns - t->reqs[i - 1].arrival_ns) * 1e-9;
    sum += g;
    sum2 += g * g;
  }
  double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
  *rate = 1.0 / mean;
  *cv = sqrt(var) / mean;
}

static void test_gen(void) {
  struct gen_opts g;
  struct trace t, u;
  double rate, cv;

  gen_opts_default(&g);
  g.arrival = GEN_POISSON;
  g.rate_rps = 10;
  g.n_req = 200000;
  CHECK(gen_run(&g, &t) == ERR_OK && t.n == 200000);
  gaps_moments(&t, &rate, &cv);
  CHECK_NEAR(rate, 10, 0.1);   /* sd of the mean gap ~ 1/sqrt(n) = 0.2% */
  CHECK_NEAR(cv, 1.0, 0.02);
  CHECK(t.reqs[0].arrival_ns == 0);
  /* fixed lengths by default: 1024 / 1024 */
  CHECK(t.reqs[0].in_tok == 1024 && t.reqs[t.n - 1].out_tok == 1024);
  trace_free(&t);

  double cvs[] = {0.5, 2.0, 4.0};
  for (int k = 0; k < 3; k++) {
    gen_opts_default(&g);
    g.arrival = GEN_GAMMA;
    g.rate_rps = 5;
    g.cv = cvs[k];
    g.n_req = 200000;
    g.seed = 11 + k;
    CHECK(gen_run(&g, &t) == ERR_OK);
    gaps_moments(&t, &rate, &cv);
    CHECK_NEAR(rate, 5, 5 * 0.01 * (1 + cvs[k])); /* sd of the mean gap: cv / sqrt(n) */
    CHECK_NEAR(cv, cvs[k], 0.05 * cvs[k]);
    trace_free(&t);
  }
  g.cv = 0; /* even gaps */
  g.n_req = 5;
  CHECK(gen_run(&g, &t) == ERR_OK && t.reqs[4].arrival_ns == 800000000);
  trace_free(&t);

  /* evalscope random: closed loop, lengths uniform in range, both ends reached */
  gen_opts_default(&g);
  g.n_req = 100000;
  g.in_min = 100;
  g.in_max = 200;
  g.out_min = 5;
  g.out_max = 9;
  g.seed = 5;
  CHECK(gen_run(&g, &t) == ERR_OK);
  int in_range = 1, lo_in = 0, hi_in = 0, lo_out = 0, hi_out = 0, all_zero = 1;
  double s_in = 0;
  for (int64_t i = 0; i < t.n; i++) {
    const struct trace_req *r = &t.reqs[i];
    if (r->in_tok < 100 || r->in_tok > 200 || r->out_tok < 5 || r->out_tok > 9) in_range = 0;
    lo_in |= r->in_tok == 100;
    hi_in |= r->in_tok == 200;
    lo_out |= r->out_tok == 5;
    hi_out |= r->out_tok == 9;
    all_zero &= r->arrival_ns == 0;
    s_in += r->in_tok;
  }
  CHECK(in_range && lo_in && hi_in && lo_out && hi_out && all_zero);
  CHECK_NEAR(s_in / (double)t.n, 150, 0.5);

  /* determinism: same seed, same requests and same bytes; another seed differs */
  CHECK(gen_run(&g, &u) == ERR_OK && u.n == t.n && !memcmp(u.reqs, t.reqs, (size_t)t.n * sizeof *t.reqs));
  trace_free(&u);
  g.seed = 6;
  CHECK(gen_run(&g, &u) == ERR_OK && memcmp(u.reqs, t.reqs, (size_t)t.n * sizeof *t.reqs));
  trace_free(&u);
  trace_free(&t);

  /* lengths stream independent of arrivals: same seed gives the same lengths under Poisson */
  gen_opts_default(&g);
  g.in_min = 1;
  g.in_max = 1000;
  g.n_req = 1000;
  CHECK(gen_run(&g, &t) == ERR_OK);
  g.arrival = GEN_POISSON;
  g.rate_rps = 3;
  CHECK(gen_run(&g, &u) == ERR_OK);
  int same = 1;
  for (int64_t i = 0; i < t.n; i++) same &= t.reqs[i].in_tok == u.reqs[i].in_tok;
  CHECK(same);
  trace_free(&t);
  trace_free(&u);

  /* resampling: a two-pair source gives only those pairs, about half each */
  struct trace src;
  trace_init(&src);
  struct trace_req a = {0, 10, 100, -1, 0}, b = {0, 20, 200, -1, 0};
  trace_push(&src, &a);
  trace_push(&src, &b);
  gen_opts_default(&g);
  g.lengths_from = &src;
  g.n_req = 10000;
  CHECK(gen_run(&g, &t) == ERR_OK);
  int pairs_ok = 1, n10 = 0;
  for (int64_t i = 0; i < t.n; i++) {
    pairs_ok &= (t.reqs[i].in_tok == 10 && t.reqs[i].out_tok == 100) ||
                (t.reqs[i].in_tok == 20 && t.reqs[i].out_tok == 200);
    n10 += t.reqs[i].in_tok == 10;
  }
  CHECK(pairs_ok);
  CHECK_NEAR(n10, 5000, 250);
  trace_free(&t);

  /* evalscope prompt inflation: uniform prompts grow by llround(in * x), the prefix included
   * (1024 * 0.053 = 54.27 -> 1078; (1024 + 100) * 0.053 = 59.57 -> 1184); resampled pairs keep
   * their lengths */
  gen_opts_default(&g);
  g.n_req = 3;
  g.in_inflation = 0.053;
  CHECK(gen_run(&g, &t) == ERR_OK && t.reqs[0].in_tok == 1078 && t.reqs[2].in_tok == 1078 && t.reqs[1].out_tok == 1024);
  trace_free(&t);
  g.prefix_tok = 100;
  CHECK(gen_run(&g, &t) == ERR_OK && t.reqs[1].in_tok == 1184 && t.reqs[1].prefix_tok == 100);
  trace_free(&t);
  g.prefix_tok = 0;
  g.lengths_from = &src;
  CHECK(gen_run(&g, &t) == ERR_OK && (t.reqs[0].in_tok == 10 || t.reqs[0].in_tok == 20));
  trace_free(&t);
  trace_free(&src);

  /* bad options are ERR_INPUT naming the flag */
  gen_opts_default(&g);
  g.arrival = GEN_POISSON;
  CHECK(gen_run(&g, &t) == ERR_INPUT && strstr(err_msg(), "--rate"));
  gen_opts_default(&g);
  g.in_min = 10;
  g.in_max = 5;
  CHECK(gen_run(&g, &t) == ERR_INPUT && strstr(err_msg(), "prompt-length"));
  gen_opts_default(&g);
  g.n_req = 0;
  CHECK(gen_run(&g, &t) == ERR_INPUT && strstr(err_msg(), "--number"));
  gen_opts_default(&g);
  g.in_inflation = -0.1;
  CHECK(gen_run(&g, &t) == ERR_INPUT && strstr(err_msg(), "--prompt-inflation"));
  g.in_inflation = 50;
  g.in_max = 100000000;
  CHECK(gen_run(&g, &t) == ERR_INPUT && strstr(err_msg(), "--prompt-inflation"));
}

/* Random byte edits of small valid files in every format: each read must end in ERR_OK or
 * ERR_INPUT (never a crash, never another code), and ERR_INPUT must name the file and a line. */
static void test_mutations(void) {
  static const char *const seeds[] = {
      "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:17:03.9799600,4808,10\r\n"
      "2023-11-16 18:17:04.0319600,3180,8\r\n",
      "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
      "5,ChatGPT,472,18,490,Conversation log\n45,ChatGPT,0,0,0,Conversation log\n",
      "{\"timestamp\": 0, \"input_length\": 1000, \"output_length\": 5, \"hash_ids\": [0, 1]}\n"
      "{\"timestamp\": 3, \"input_length\": 1500, \"output_length\": 6, \"hash_ids\": [0, 1, 2]}\n",
      "arrival_s,input_tokens,output_tokens,prefix_id,prefix_tokens\n0.000000000,10,1,0,5\n"
      "0.500000000,20,2,0,5\n",
      "num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\r\n26,5,31,0.19\r\n"};
  static const char *const names[] = {"m.csv", "m.csv", "m.jsonl", "m.csv", "m.csv"};
  static const char alphabet[] = "0123456789,.-\"{}[]: \n\rxe";
  struct rng r;
  rng_seed(&r, 99);
  int ok = 1;
  for (int it = 0; it < 400; it++) {
    int k = it % 5;
    char buf[512];
    size_t len = strlen(seeds[k]);
    memcpy(buf, seeds[k], len + 1);
    int n_edit = (int)rng_range(&r, 1, 3);
    for (int e = 0; e < n_edit; e++) {
      size_t at = (size_t)rng_range(&r, 0, (int64_t)len - 1);
      int op = (int)rng_range(&r, 0, 2);
      char c = alphabet[rng_range(&r, 0, (int64_t)sizeof alphabet - 2)];
      if (op == 0) buf[at] = c;                                         /* replace */
      else if (op == 1 && len > 2) memmove(buf + at, buf + at + 1, len-- - at); /* delete */
      else if (len < sizeof buf - 2) {                                   /* insert */
        memmove(buf + at + 1, buf + at, len++ - at + 1);
        buf[at] = c;
      }
    }
    const char *p = put_file(names[k], buf);
    for (int mode = 0; mode < 2; mode++) {
      struct trace t;
      int rc = read_with(p, mode ? TRACE_BAD_SKIP : TRACE_BAD_FAIL, &t);
      if (rc != ERR_OK && rc != ERR_INPUT) ok = 0;
      if (rc == ERR_INPUT && strncmp(err_msg(), p, strlen(p))) ok = 0;
      if (rc == ERR_OK)
        for (int64_t i = 0; i < t.n; i++)
          if (t.reqs[i].in_tok < 0 || t.reqs[i].out_tok < 0 || t.reqs[i].arrival_ns < 0) ok = 0;
      if (!ok) {
        fprintf(stderr, "mutation %d mode %d: rc %d msg %s\n--\n%s--\n", it, mode, rc, err_msg(), buf);
        break;
      }
      trace_free(&t);
    }
    if (!ok) break;
  }
  CHECK(ok);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "%s/servesim_test_traces_XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_numparse();
  test_azure();
  test_burstgpt();
  test_mooncake();
  test_canonical();
  test_scale_sort();
  test_gen();
  test_mutations();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmpdir);
  return check_report("test_traces");
}
