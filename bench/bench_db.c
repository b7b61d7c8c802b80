/* bench_db: how fast the SQLite store takes a simulated run's requests, and dumps and reloads
 * them. The target (issue 2, db brief): 1e5 request rows stored in under 1 s, so writing a
 * 1e6-request simulation to the database costs seconds, not minutes.
 *
 * usage: bench_db [N_REQUESTS (100000)] [DIR (/tmp)]. Prints one line per phase. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "db/db.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  const char *dir = argc > 2 ? argv[2] : "/tmp";
  if (n <= 0) {
    fprintf(stderr, "usage: bench_db [N_REQUESTS] [DIR]\n");
    return 2;
  }
  char path[512], dump[512], path2[512];
  snprintf(path, sizeof path, "%s/bench_db_%ld.db", dir, (long)getpid());
  snprintf(path2, sizeof path2, "%s/bench_db_%ld_b.db", dir, (long)getpid());
  snprintf(dump, sizeof dump, "%s/bench_db_%ld.sql", dir, (long)getpid());
  struct db_request_row *rows = calloc((size_t)n, sizeof *rows); /* (n) */
  for (long i = 0; i < n; i++) {
    rows[i] = (struct db_request_row){.idx = i, .arrival_ns = i * 7919, .start_ns = i * 7919,
                                      .first_token_ns = i * 7919 + 250000000,
                                      .last_token_ns = i * 7919 + 9000000000, .in_tok = 1024,
                                      .out_tok = 1024, .replica = DB_UNSET, .ok = 1,
                                      .ttft_s = 0.25 + i * 1e-7, .tpot_s = 0.0085,
                                      .latency_s = 9.0, .e2e_s = 9.0};
  }
  struct db *db;
  int rc = db_open(path, &db);
  if (rc) {
    err_print("bench_db");
    return 2;
  }
  struct db_run r;
  db_run_init(&r);
  r.kind = "simulated";
  r.model = "qwen3-235b-a22b-gptq-int4";
  r.hardware = "a100-40g-pcie";
  r.config_json = "{}";
  db_provenance_fill(&r.prov);
  struct db_summary s;
  db_summary_init(&s);
  s.n_requests = n;
  int64_t run;
  double t0 = now_s();
  rc = db_save_run(db, &r, rows, n, &s, &run);
  double t_save = now_s() - t0;
  if (rc) {
    err_print("bench_db");
    return 2;
  }
  printf("db_save_run: %ld requests in %.3f s (%.0f rows/s)\n", n, t_save, n / t_save);
  FILE *f = fopen(dump, "wb");
  t0 = now_s();
  rc = db_export_sql(db, NULL, f);
  fclose(f);
  double t_export = now_s() - t0;
  db_close(db);
  if (rc) {
    err_print("bench_db");
    return 2;
  }
  struct stat sb;
  printf("db_export_sql: %.3f s (%.1f MB)\n", t_export,
         stat(dump, &sb) == 0 ? sb.st_size / 1e6 : -1.0);
  t0 = now_s();
  rc = db_import_sql(path2, dump, NULL);
  double t_import = now_s() - t0;
  if (rc) {
    err_print("bench_db");
    return 2;
  }
  printf("db_import_sql: %.3f s (%.0f rows/s)\n", t_import, n / t_import);
  const char *sfx[] = {"", "-wal", "-shm"};
  char p[600];
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", path, sfx[i]);
    unlink(p);
    snprintf(p, sizeof p, "%s%s", path2, sfx[i]);
    unlink(p);
  }
  unlink(dump);
  free(rows);
  return 0;
}
