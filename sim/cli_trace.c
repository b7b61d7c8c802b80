/* cli_trace: `servesim trace stats | convert | scale | gen` — read any supported trace format,
 * summarise it, write it as the canonical CSV, speed it up, or generate a synthetic one.
 * Bad input is one line on stderr naming the file:line or the flag, exit 2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sim/cli.h"
#include "sim/cli_args.h"
#include "traces/gen.h"
#include "traces/trace.h"

#define PROG "servesim"

static void usage(FILE *f) {
  fprintf(f,
          "usage: servesim trace <command> ...\n"
          "  stats   FILE [read options] [--json] [--list-failed]\n"
          "  convert FILE [read options] [-o OUT.csv]\n"
          "  scale   FILE (--speedup X | --to-rate R) [read options] [-o OUT.csv]\n"
          "  gen     random|poisson|gamma [--number N] [--rate R] [--cv C] [--seed S]\n"
          "          [--min-prompt-length A --max-prompt-length B --min-tokens C --max-tokens D]\n"
          "          [--prefix-length P] [--lengths-from FILE [read options]] [-o OUT.csv]\n"
          "read options: --format auto|azure|burstgpt|mooncake|canonical|lengths\n"
          "              --on-bad-row fail|skip   --keep-failed   --sort\n"
          "OUT defaults to stdout ('-'); output is the canonical CSV\n"
          "(arrival_s,input_tokens,output_tokens[,prefix_id,prefix_tokens]).\n");
}

/* "--name value" or "--name=value": returns 1 and sets *val when argv[*i] is that flag. */
static int flag_val(int argc, char **argv, int *i, const char *name, const char **val, int *rc) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n)) return 0;
  if (a[n] == '=') {
    *val = a + n + 1;
    return 1;
  }
  if (a[n]) return 0;
  if (*i + 1 >= argc) {
    *rc = err_set(ERR_INPUT, "%s: missing value", name);
    *val = NULL;
    return 1;
  }
  *val = argv[++*i];
  return 1;
}

/* Read options shared by every subcommand that reads a trace. Returns 1 if argv[*i] was one. */
static int read_flag(int argc, char **argv, int *i, struct trace_read_opts *o, int *rc) {
  const char *v;
  if (flag_val(argc, argv, i, "--format", &v, rc)) {
    if (!v) return 1;
    int f = trace_read_format_parse(v);
    if (f < 0)
      *rc = err_set(ERR_INPUT, "--format '%s': want auto, azure, burstgpt, mooncake, canonical "
                    "or lengths", v);
    else o->format = f;
    return 1;
  }
  if (flag_val(argc, argv, i, "--on-bad-row", &v, rc)) {
    if (!v) return 1;
    if (!strcmp(v, "fail")) o->on_bad_row = TRACE_BAD_FAIL;
    else if (!strcmp(v, "skip")) o->on_bad_row = TRACE_BAD_SKIP;
    else *rc = err_set(ERR_INPUT, "--on-bad-row '%s': want fail or skip", v);
    return 1;
  }
  if (!strcmp(argv[*i], "--keep-failed")) {
    o->keep_failed = 1;
    return 1;
  }
  if (!strcmp(argv[*i], "--sort")) {
    o->sort = 1;
    return 1;
  }
  return 0;
}

static void print_failed_lines(FILE *f, const struct trace *t, int64_t limit) {
  int64_t n = t->n_failed < limit ? t->n_failed : limit;
  for (int64_t i = 0; i < n; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)t->failed_line[i]);
  if (t->n_failed > n) fprintf(f, ",... (%lld more; --list-failed shows all)", (long long)(t->n_failed - n));
}

static int fail(int rc) {
  err_print(PROG);
  return err_exit_code(rc);
}

static void print_dist_json(const char *name, const struct trace_dist *d) {
  printf("  \"%s\": {\"mean\": %.4f, \"p50\": %.4f, \"p99\": %.4f, \"min\": %lld, \"max\": %lld},\n",
         name, d->mean, d->p50, d->p99, (long long)d->min, (long long)d->max);
}

static int cmd_stats(int argc, char **argv) {
  struct trace_read_opts o;
  trace_read_opts_default(&o);
  const char *file = NULL;
  int json = 0, list_failed = 0, rc = ERR_OK;
  for (int i = 0; i < argc && !rc; i++) {
    if (read_flag(argc, argv, &i, &o, &rc)) continue;
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--list-failed")) list_failed = 1;
    else if (argv[i][0] == '-' && argv[i][1]) rc = err_set(ERR_INPUT, "trace stats: unknown flag '%s'", argv[i]);
    else if (file) rc = err_set(ERR_INPUT, "trace stats: one FILE only ('%s' and '%s')", file, argv[i]);
    else file = argv[i];
  }
  if (!rc && !file) rc = err_set(ERR_INPUT, "trace stats: missing FILE");
  if (rc) return fail(rc);
  struct trace t;
  struct trace_stats s;
  if ((rc = trace_read(file, &o, &t)) || (rc = trace_stats_compute(&t, &s))) {
    trace_free(&t);
    return fail(rc);
  }
  if (t.n_bad) { /* failed rows are listed on stdout below, so only the skip summary here */
    int64_t n_failed = t.n_failed;
    t.n_failed = 0;
    trace_print_dropped(&t, stderr);
    t.n_failed = n_failed;
  }
  int64_t lim = list_failed ? INT64_MAX : 20;
  if (json) {
    printf("{\n  \"file\": \"");
    for (const char *p = file; *p; p++) /* JSON-escape the path */
      if (*p == '"' || *p == '\\') printf("\\%c", *p);
      else if ((unsigned char)*p < 0x20) printf("\\u%04x", *p);
      else putchar(*p);
    printf("\",\n  \"format\": \"%s\",\n  \"requests\": %lld,\n  \"failed\": %lld,\n",
           trace_read_format_name(t.format), (long long)s.n, (long long)t.n_failed);
    printf("  \"failed_kept\": %s,\n  \"failed_lines\": [", t.failed_kept ? "true" : "false");
    for (int64_t i = 0; i < t.n_failed && i < lim; i++)
      printf("%s%lld", i ? ", " : "", (long long)t.failed_line[i]);
    printf("],\n  \"bad_rows\": %lld,\n  \"span_s\": %.9f,\n  \"rate_rps\": %.6f,\n",
           (long long)t.n_bad, (double)s.span_ns * 1e-9, s.rate_rps);
    printf("  \"iat_mean_s\": %.6f,\n  \"iat_cv\": %.6f,\n", s.iat_mean_s, s.iat_cv);
    print_dist_json("input_tokens", &s.in_tok);
    print_dist_json("output_tokens", &s.out_tok);
    printf("  \"prefixed\": %lld,\n  \"prefix_tokens_mean\": %.4f\n}\n", (long long)s.n_prefixed,
           s.n ? (double)s.prefix_tok_sum / (double)s.n : 0.0);
  } else {
    printf("file           %s (%s)\n", file, trace_read_format_name(t.format));
    printf("requests       %lld\n", (long long)s.n);
    printf("failed         %lld (0 input or output tokens; %s)", (long long)t.n_failed,
           t.failed_kept ? "kept in the trace" : "not in the trace");
    if (t.n_failed) {
      printf(" lines ");
      fflush(stdout);
      print_failed_lines(stdout, &t, lim);
    }
    printf("\nbad rows       %lld%s\n", (long long)t.n_bad, t.n_bad ? " (skipped)" : "");
    printf("span           %.3f s   rate %.3f req/s   inter-arrival mean %.4f s  cv %.3f\n",
           (double)s.span_ns * 1e-9, s.rate_rps, s.iat_mean_s, s.iat_cv);
    printf("input tokens   mean %.1f  median %.1f  p99 %.1f  min %lld  max %lld\n", s.in_tok.mean,
           s.in_tok.p50, s.in_tok.p99, (long long)s.in_tok.min, (long long)s.in_tok.max);
    printf("output tokens  mean %.1f  median %.1f  p99 %.1f  min %lld  max %lld\n", s.out_tok.mean,
           s.out_tok.p50, s.out_tok.p99, (long long)s.out_tok.min, (long long)s.out_tok.max);
    if (s.n_prefixed)
      printf("prefix         %lld requests in groups; %.1f%% of prompt tokens hit an unbounded "
             "prefix cache\n", (long long)s.n_prefixed,
             s.in_tok.sum ? 100.0 * (double)s.prefix_tok_sum / (double)s.in_tok.sum : 0.0);
  }
  trace_free(&t);
  return 0;
}

/* convert and scale: read, optionally scale, write canonical. */
static int cmd_rewrite(int argc, char **argv, int scale) {
  struct trace_read_opts o;
  trace_read_opts_default(&o);
  const char *file = NULL, *out = "-", *speedup = NULL, *v;
  double to_rate = 0;
  int rc = ERR_OK;
  const char *cmd = scale ? "trace scale" : "trace convert";
  for (int i = 0; i < argc && !rc; i++) {
    if (read_flag(argc, argv, &i, &o, &rc)) continue;
    if (flag_val(argc, argv, &i, "-o", &v, &rc) || flag_val(argc, argv, &i, "--output", &v, &rc)) {
      if (v) out = v;
    } else if (scale && flag_val(argc, argv, &i, "--speedup", &v, &rc)) {
      speedup = v;
    } else if (scale && flag_val(argc, argv, &i, "--to-rate", &v, &rc)) {
      if (v && !(rc = cli_args_double("--to-rate", v, -HUGE_VAL, HUGE_VAL, &to_rate)) && !(to_rate > 0))
        rc = err_set(ERR_INPUT, "--to-rate: '%s' is not a number > 0", v);
    } else if (argv[i][0] == '-' && argv[i][1]) {
      rc = err_set(ERR_INPUT, "%s: unknown flag '%s'", cmd, argv[i]);
    } else if (file) {
      rc = err_set(ERR_INPUT, "%s: one FILE only ('%s' and '%s')", cmd, file, argv[i]);
    } else {
      file = argv[i];
    }
  }
  if (!rc && !file) rc = err_set(ERR_INPUT, "%s: missing FILE", cmd);
  if (!rc && scale && !speedup == !(to_rate > 0))
    rc = err_set(ERR_INPUT, "trace scale: give exactly one of --speedup X or --to-rate R");
  int64_t num = 1, den = 1;
  if (!rc && speedup) rc = trace_scale_parse(speedup, &num, &den);
  if (rc) return fail(rc);
  struct trace t;
  if ((rc = trace_read(file, &o, &t))) return fail(rc);
  trace_print_dropped(&t, stderr);
  if (scale && to_rate > 0) {
    struct trace_stats s;
    if (!(rc = trace_stats_compute(&t, &s)) && !(s.rate_rps > 0))
      rc = err_set(ERR_INPUT, "%s: --to-rate needs a trace that spans time (its span is 0)", file);
    /* The one inexact step: a rate ratio becomes a 9-digit fixed-point speedup. */
    if (!rc) num = llround(to_rate / s.rate_rps * 1e9);
    if (!rc && num < 1) rc = err_set(ERR_INPUT, "--to-rate %g: too slow for this trace", to_rate);
  }
  if (!rc && scale) rc = trace_scale(&t, num, den);
  if (!rc) rc = canon_write(&t, out);
  if (!rc && strcmp(out, "-"))
    fprintf(stderr, "servesim: wrote %lld requests to %s\n", (long long)t.n, out);
  trace_free(&t);
  return rc ? fail(rc) : 0;
}

static int cmd_gen(int argc, char **argv) {
  struct gen_opts g;
  gen_opts_default(&g);
  struct trace_read_opts o;
  trace_read_opts_default(&o);
  const char *out = "-", *lengths = NULL, *v;
  int rc = ERR_OK, have_range = 0, have_rate = 0, have_cv = 0;
  if (argc < 1)
    return fail(err_set(ERR_INPUT, "trace gen: missing kind (random, poisson or gamma)"));
  if (!strcmp(argv[0], "random")) g.arrival = GEN_CLOSED;
  else if (!strcmp(argv[0], "poisson")) g.arrival = GEN_POISSON;
  else if (!strcmp(argv[0], "gamma")) g.arrival = GEN_GAMMA;
  else return fail(err_set(ERR_INPUT, "trace gen: unknown kind '%s' (random, poisson or gamma)", argv[0]));
  for (int i = 1; i < argc && !rc; i++) {
    int64_t x;
    if (read_flag(argc, argv, &i, &o, &rc)) continue;
    if (flag_val(argc, argv, &i, "-o", &v, &rc) || flag_val(argc, argv, &i, "--output", &v, &rc)) {
      if (v) out = v;
    } else if (flag_val(argc, argv, &i, "--number", &v, &rc) || flag_val(argc, argv, &i, "-n", &v, &rc)) {
      if (v) rc = cli_args_i64("--number", v, 1, (int64_t)1 << 31, &g.n_req);
    } else if (flag_val(argc, argv, &i, "--rate", &v, &rc)) {
      if (v) rc = cli_args_double("--rate", v, -HUGE_VAL, HUGE_VAL, &g.rate_rps);
      have_rate = 1;
    } else if (flag_val(argc, argv, &i, "--cv", &v, &rc)) {
      if (v) rc = cli_args_double("--cv", v, -HUGE_VAL, HUGE_VAL, &g.cv);
      have_cv = 1;
    } else if (flag_val(argc, argv, &i, "--seed", &v, &rc)) {
      if (v) rc = cli_args_u64("--seed", v, &g.seed);
    } else if (flag_val(argc, argv, &i, "--min-prompt-length", &v, &rc)) {
      if (v && !(rc = cli_args_i64("--min-prompt-length", v, 1, INT32_MAX, &x))) g.in_min = (int32_t)x;
      have_range = 1;
    } else if (flag_val(argc, argv, &i, "--max-prompt-length", &v, &rc)) {
      if (v && !(rc = cli_args_i64("--max-prompt-length", v, 1, INT32_MAX, &x))) g.in_max = (int32_t)x;
      have_range = 1;
    } else if (flag_val(argc, argv, &i, "--min-tokens", &v, &rc)) {
      if (v && !(rc = cli_args_i64("--min-tokens", v, 1, INT32_MAX, &x))) g.out_min = (int32_t)x;
      have_range = 1;
    } else if (flag_val(argc, argv, &i, "--max-tokens", &v, &rc)) {
      if (v && !(rc = cli_args_i64("--max-tokens", v, 1, INT32_MAX, &x))) g.out_max = (int32_t)x;
      have_range = 1;
    } else if (flag_val(argc, argv, &i, "--prefix-length", &v, &rc)) {
      if (v && !(rc = cli_args_i64("--prefix-length", v, 0, INT32_MAX, &x))) g.prefix_tok = (int32_t)x;
    } else if (flag_val(argc, argv, &i, "--lengths-from", &v, &rc)) {
      lengths = v;
    } else {
      rc = err_set(ERR_INPUT, "trace gen %s: unknown flag or argument '%s'", argv[0], argv[i]);
    }
  }
  if (!rc && have_range && lengths)
    rc = err_set(ERR_INPUT, "--lengths-from cannot be combined with --min/--max-prompt-length or "
                 "--min/--max-tokens");
  if (!rc && g.arrival == GEN_CLOSED && have_rate)
    rc = err_set(ERR_INPUT, "--rate: 'trace gen random' is closed loop (all arrive at 0); use poisson or gamma");
  if (!rc && g.arrival != GEN_CLOSED && !have_rate)
    rc = err_set(ERR_INPUT, "trace gen %s: --rate is required", argv[0]);
  if (!rc && g.arrival == GEN_GAMMA && !have_cv)
    rc = err_set(ERR_INPUT, "trace gen gamma: --cv is required");
  if (!rc && g.arrival != GEN_GAMMA && have_cv)
    rc = err_set(ERR_INPUT, "--cv: only 'trace gen gamma' takes a CV");
  if (rc) return fail(rc);
  struct trace src, t;
  trace_init(&src);
  trace_init(&t);
  if (lengths) {
    if ((rc = trace_read(lengths, &o, &src))) return fail(err_wrap(rc, "--lengths-from"));
    trace_print_dropped(&src, stderr);
    g.lengths_from = &src;
  }
  rc = gen_run(&g, &t);
  if (!rc) rc = canon_write(&t, out);
  if (!rc && strcmp(out, "-"))
    fprintf(stderr, "servesim: wrote %lld requests (%s) to %s\n", (long long)t.n, t.source, out);
  trace_free(&t);
  trace_free(&src);
  return rc ? fail(rc) : 0;
}

int cli_trace(int argc, char **argv) {
  if (argc < 1)
    return fail(err_set(ERR_INPUT, "trace: missing command (stats, convert, scale, gen; --help)"));
  const char *cmd = argv[0];
  if (cli_args_wants_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "stats")) return cmd_stats(argc - 1, argv + 1);
  if (!strcmp(cmd, "convert")) return cmd_rewrite(argc - 1, argv + 1, 0);
  if (!strcmp(cmd, "scale")) return cmd_rewrite(argc - 1, argv + 1, 1);
  if (!strcmp(cmd, "gen")) return cmd_gen(argc - 1, argv + 1);
  return fail(err_set(ERR_INPUT, "trace: unknown command '%s' (stats, convert, scale, gen; --help)", cmd));
}
