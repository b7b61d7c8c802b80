/* record: in-memory results of a servesim-exec run, written in one transaction (record.h). */
#include "exec/record.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "exec/comm.h"
#include "exec/runner.h"

void rec_meas_init(struct rec_meas *m, const char *kind, const char *op, const char *impl, const char *dtype) {
  memset(m, 0, sizeof *m);
  snprintf(m->kind, sizeof m->kind, "%s", kind);
  snprintf(m->op, sizeof m->op, "%s", op);
  snprintf(m->impl, sizeof m->impl, "%s", impl);
  snprintf(m->dtype, sizeof m->dtype, "%s", dtype);
  m->m = m->n = m->k = m->tokens = m->experts = m->topk = m->batch = m->ctx_len = m->q_len = DB_UNSET;
  m->n_bytes = m->ranks = DB_UNSET;
  m->tokens_per_expert = m->med_us = m->p10_us = m->p90_us = NAN;
}

int rec_add(struct rec *r, const struct rec_meas *m) {
  if (r->n_meas == r->cap_meas) {
    int nc = r->cap_meas ? 2 * r->cap_meas : 64;
    struct rec_meas *nm = realloc(r->meas, (size_t)nc * sizeof *nm);
    if (!nm) return err_set(ERR_NOMEM, "out of memory");
    r->meas = nm;
    r->cap_meas = nc;
  }
  r->meas[r->n_meas++] = *m;
  return ERR_OK;
}

void rec_metric(struct rec *r, const char *key, double value) {
  if (r->n_metrics >= (int)(sizeof r->metrics / sizeof r->metrics[0])) return;
  snprintf(r->metrics[r->n_metrics].key, sizeof r->metrics[0].key, "%s", key);
  r->metrics[r->n_metrics++].value = value;
}

void rec_free(struct rec *r) {
  free(r->meas);
  free(r->hits);
  memset(r, 0, sizeof *r);
}

static int rec_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void rec_stats(double *v, int n, double *med, double *p10, double *p90) {
  if (n <= 0) {
    *med = *p10 = *p90 = NAN;
    return;
  }
  qsort(v, (size_t)n, sizeof *v, rec_cmp);
  *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  *p10 = v[(int)(0.1 * (n - 1) + 0.5)];
  *p90 = v[(int)(0.9 * (n - 1) + 0.5)];
}

void rec_provenance(struct db_provenance *p) {
  db_provenance_fill(p);
  const char *c = getenv("SERVESIM_GIT_COMMIT");
  if (c && *c) snprintf(p->git_commit, sizeof p->git_commit, "%s", c);
  runner_device_info(p->gpu_name, sizeof p->gpu_name, p->driver_version, sizeof p->driver_version, p->cuda_version,
                     sizeof p->cuda_version);
  comm_nccl_version(p->nccl_version, sizeof p->nccl_version);
}

int rec_write(const char *db_path, struct db_run *run, const struct rec *r, int64_t *run_id) {
  struct db *db = NULL;
  int rc = db_open(db_path, &db);
  if (rc) return rc;
  if ((rc = db_begin(db))) goto done;
  if ((rc = db_put_run(db, run, run_id))) goto fail;
  for (int i = 0; i < r->n_metrics; i++)
    if ((rc = db_put_metric(db, *run_id, r->metrics[i].key, r->metrics[i].value))) goto fail;
  for (int i = 0; i < r->n_meas; i++) {
    const struct rec_meas *x = &r->meas[i];
    struct db_measurement m;
    db_measurement_init(&m);
    m.kind = x->kind;
    m.op = x->op;
    m.impl = x->impl;
    m.dtype = x->dtype;
    m.hardware = run->hardware;
    m.model = run->model;
    m.run_id = *run_id;
    m.m = x->m, m.n = x->n, m.k = x->k, m.tokens = x->tokens, m.experts = x->experts, m.topk = x->topk;
    m.batch = x->batch, m.ctx_len = x->ctx_len, m.q_len = x->q_len, m.n_bytes = x->n_bytes, m.ranks = x->ranks;
    m.tp = run->tp;
    m.ep = run->ep;
    m.quant_group = 128;
    m.tokens_per_expert = x->tokens_per_expert;
    m.lat_us_median = x->med_us;
    m.lat_us_p10 = x->p10_us;
    m.lat_us_p90 = x->p90_us;
    m.count = x->count;
    m.extra_json = x->extra[0] ? x->extra : NULL;
    m.prov = run->prov;
    if ((rc = db_put_measurement(db, &m))) goto fail;
  }
  if (r->hits && (rc = db_put_expert_hits(db, *run_id, r->hits_layers, r->hits_experts, r->hits))) goto fail;
  rc = db_commit(db);
  goto done;
fail:
  db_rollback(db);
done:
  db_close(db);
  return rc;
}
