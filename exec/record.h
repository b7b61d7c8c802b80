/* record: what servesim-exec measured, collected in memory during a run and written to the
 * SQLite store in one transaction at the end, so a run that fails anywhere (OOM, NCCL, a bad
 * shard) leaves nothing of itself in the database. Provenance (GPU, driver, CUDA runtime, NCCL,
 * commit, host, time) is stamped on the run and on every measurement. */
#ifndef SERVESIM_EXEC_RECORD_H
#define SERVESIM_EXEC_RECORD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "db/db.h"

struct rec_meas {
  char kind[16];               /* db_kinds */
  char op[32];
  char impl[32];
  char dtype[8];
  int64_t m, n, k, tokens, experts, topk, batch, ctx_len, q_len, n_bytes, ranks;
  double tokens_per_expert;
  double med_us, p10_us, p90_us;
  int64_t count;
  char extra[256];             /* JSON object or "" */
};

struct rec_metric {
  char key[64];
  double value;
};

struct rec {
  struct rec_meas *meas;
  int n_meas, cap_meas;
  struct rec_metric metrics[64];
  int n_metrics;
  int64_t *hits;               /* [L, E] or NULL */
  int hits_layers, hits_experts;
};

/* A measurement with every shape field unset (DB_UNSET / NAN). */
void rec_meas_init(struct rec_meas *m, const char *kind, const char *op, const char *impl, const char *dtype);
int rec_add(struct rec *r, const struct rec_meas *m);
void rec_metric(struct rec *r, const char *key, double value);
void rec_free(struct rec *r);
/* Median, 10th and 90th percentile of n samples (sorted in place). */
void rec_stats(double *v, int n, double *med, double *p10, double *p90);
/* Provenance of this machine and build; SERVESIM_GIT_COMMIT in the environment overrides the
 * commit stamped at configure time (a copied tree without .git). */
void rec_provenance(struct db_provenance *p);
/* Writes the run, its metrics, measurements and expert hits in one transaction. */
int rec_write(const char *db_path, struct db_run *run, const struct rec *r, int64_t *run_id);

#ifdef __cplusplus
}
#endif

#endif
