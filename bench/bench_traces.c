/* bench_traces: the trace path the simulator benchmark leans on — generate a 1,000,000-request
 * Poisson trace with Azure-like lengths (resampled from the Azure conv trace when
 * $SERVESIM_SHARED/traces has it, uniform 2..14050 / 7..1000 otherwise), write it as the
 * canonical CSV, read it back, and compute its stats. Prints the median of 5 runs per step,
 * rows per second and the peak RSS; figures go to bench/RESULTS.md.
 * usage: bench_traces [n_req (default 1000000)] [tmp dir (default $TMPDIR or /tmp)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "traces/gen.h"
#include "traces/trace.h"

enum { REPS = 5 };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v) {
  qsort(v, REPS, sizeof *v, cmp_d);
  return v[REPS / 2];
}

static int die(int rc) {
  err_print("bench_traces");
  return err_exit_code(rc);
}

int main(int argc, char **argv) {
  int64_t n = argc > 1 ? atoll(argv[1]) : 1000000;
  const char *tmp = argc > 2 ? argv[2] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char src_path[1024], out_path[1024];
  const char *shared = getenv("SERVESIM_SHARED");
  snprintf(src_path, sizeof src_path, "%s/traces/azure_llm_2023_conv_first30min.csv",
           shared ? shared : SERVESIM_SOURCE_DIR "/../shared");
  snprintf(out_path, sizeof out_path, "%s/bench_traces_%d.csv", tmp, (int)getpid());

  struct trace src;
  int have_src = trace_read(src_path, NULL, &src) == ERR_OK;
  struct gen_opts g;
  gen_opts_default(&g);
  g.arrival = GEN_POISSON;
  g.rate_rps = 100;
  g.n_req = n;
  g.seed = 1;
  if (have_src) g.lengths_from = &src;
  else {
    g.in_min = 2, g.in_max = 14050, g.out_min = 7, g.out_max = 1000;
  }

  double t_gen[REPS], t_write[REPS], t_read[REPS], t_stats[REPS];
  int rc;
  for (int k = 0; k < REPS; k++) {
    struct trace t, r;
    struct trace_stats s;
    double t0 = now_s();
    if ((rc = gen_run(&g, &t))) return die(rc);
    double t1 = now_s();
    if ((rc = canon_write(&t, out_path))) return die(rc);
    double t2 = now_s();
    if ((rc = trace_read(out_path, NULL, &r))) return die(rc);
    double t3 = now_s();
    if ((rc = trace_stats_compute(&r, &s))) return die(rc);
    double t4 = now_s();
    if (r.n != t.n || memcmp(r.reqs, t.reqs, (size_t)t.n * sizeof *t.reqs)) {
      fprintf(stderr, "bench_traces: round trip mismatch\n");
      return 3;
    }
    t_gen[k] = t1 - t0, t_write[k] = t2 - t1, t_read[k] = t3 - t2, t_stats[k] = t4 - t3;
    trace_free(&t);
    trace_free(&r);
  }
  FILE *f = fopen(out_path, "rb");
  long bytes = 0;
  if (f) {
    fseek(f, 0, SEEK_END);
    bytes = ftell(f);
    fclose(f);
  }
  unlink(out_path);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double mg = median(t_gen), mw = median(t_write), mr = median(t_read), ms = median(t_stats);
  printf("requests %lld, lengths %s, sizeof(trace_req) %zu B, file %.1f MB\n", (long long)n,
         have_src ? "resampled from Azure conv" : "uniform (no shared trace)", sizeof(struct trace_req),
         (double)bytes / 1e6);
  printf("generate  %8.1f ms  %6.1f M req/s\n", mg * 1e3, (double)n / mg / 1e6);
  printf("write csv %8.1f ms  %6.1f M rows/s\n", mw * 1e3, (double)n / mw / 1e6);
  printf("read csv  %8.1f ms  %6.1f M rows/s\n", mr * 1e3, (double)n / mr / 1e6);
  printf("stats     %8.1f ms\n", ms * 1e3);
  printf("peak RSS  %8.1f MB\n", (double)ru.ru_maxrss / 1024.0);
  if (have_src) trace_free(&src);
  return 0;
}
