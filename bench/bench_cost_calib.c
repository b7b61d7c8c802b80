/* bench_cost_calib: what the calibrated cost model costs on top of the roofline: create time
 * (loading the measurement set from SQLite, building the families and the calibrated routing
 * table) and stage_ns calls per second, on the seed scenario's model with a measurement set of
 * the size servesim-exec profile writes (GEMM, MoE, attention, all-reduce grids).
 * Usage: bench_cost_calib [model] [hardware] [tp]  (defaults: qwen3-235b-a22b-gptq-int4 h100-sxm 4)
 * The latencies are made up (a fixed latency plus bytes and FLOPs at 80% of the spec's rates):
 * this measures speed, not accuracy (tests/test_cost_calib.c checks accuracy). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/rng.h"
#include "db/db.h"
#include "sim/cost_calib.h"

static double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench_meas(struct db_measurement *m, const char *kind, const char *op, const struct hw_spec *h,
                       const char *model, int tp) {
  db_measurement_init(m);
  m->kind = kind, m->op = op, m->dtype = "int4", m->hardware = h->name, m->model = model, m->tp = tp;
  m->count = 10;
  db_provenance_fill(&m->prov);
}

/* Writes the exec profile's grids for this model and TP into a fresh database at path. */
static int bench_fill(const char *path, const struct model_spec *ms, const struct hw_spec *h, int tp) {
  struct db *db = NULL;
  int rc = db_open(path, &db);
  if (rc) return rc;
  double bw = h->hbm_GBps * 0.8e3, fl = h->tflops_bf16 * 0.8e6; /* bytes/us, FLOPs/us */
  int qh = ms->n_heads / tp, kvh = ms->n_kv_heads >= tp ? ms->n_kv_heads / tp : 1;
  double H = ms->hidden, qkv_n = (qh + 2.0 * kvh) * ms->head_dim, o_k = (double)qh * ms->head_dim;
  double I = (double)ms->moe_intermediate / tp;
  static const int Ms[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
  static const int Ts[] = {1, 4, 16, 64, 256, 1024, 4096, 8192};
  static const int Bs[] = {1, 4, 16, 64}, Cs[] = {128, 512, 1024, 2048, 4096}, Qs[] = {256, 1024, 2048, 4096};
  struct db_measurement m;
  if ((rc = db_begin(db))) goto out;
  for (int i = 0; i < 14 && !rc; i++) {
    double shapes[2][2] = {{H, qkv_n}, {o_k, H}};
    for (int g = 0; g < 2 && !rc; g++) {
      bench_meas(&m, "gemm", g ? "o_proj" : "qkv", h, ms->name, tp);
      m.m = Ms[i], m.k = (int64_t)shapes[g][0], m.n = (int64_t)shapes[g][1];
      m.lat_us_median = 14 + shapes[g][0] * shapes[g][1] / 2 / bw + 2.0 * Ms[i] * shapes[g][0] * shapes[g][1] / fl;
      rc = db_put_measurement(db, &m);
    }
  }
  for (int i = 0; i < 8 && !rc; i++) {
    char extra[64];
    double act = round(ms->n_experts * (1 - pow(1 - (double)ms->top_k / ms->n_experts, Ts[i])));
    bench_meas(&m, "moe", "fused_moe", h, ms->name, tp);
    m.tokens = Ts[i], m.experts = ms->n_experts, m.topk = ms->top_k, m.k = (int64_t)H, m.n = (int64_t)I;
    snprintf(extra, sizeof extra, "{\"active_experts\":%d}", (int)act);
    m.extra_json = extra;
    m.lat_us_median = 30 + act * 3 * H * I / 2 / bw + 6.0 * Ts[i] * ms->top_k * H * I / fl;
    rc = db_put_measurement(db, &m);
  }
  for (int b = 0; b < 4 && !rc; b++)
    for (int c = 0; c < 5 && !rc; c++) {
      bench_meas(&m, "attention", "decode", h, ms->name, tp);
      m.batch = Bs[b], m.ctx_len = Cs[c], m.q_len = 1;
      m.lat_us_median = 8 + (double)Bs[b] * Cs[c] * 4.0 * kvh * ms->head_dim / bw;
      rc = db_put_measurement(db, &m);
    }
  for (int q = 0; q < 4 && !rc; q++) {
    bench_meas(&m, "attention", "prefill", h, ms->name, tp);
    m.batch = 1, m.ctx_len = Qs[q], m.q_len = Qs[q];
    m.lat_us_median = 10 + 2.0 * qh * ms->head_dim * (double)Qs[q] * Qs[q] / fl;
    rc = db_put_measurement(db, &m);
  }
  for (double bytes = 8192; bytes <= 256.0 * 1048576 && !rc; bytes *= 4) {
    bench_meas(&m, "allreduce", "allreduce", h, ms->name, tp);
    m.n_bytes = (int64_t)bytes, m.ranks = tp;
    m.lat_us_median = 20 + bytes / 3e5;
    rc = db_put_measurement(db, &m);
  }
  rc = rc ? (db_rollback(db), rc) : db_commit(db);
out:
  db_close(db);
  return rc;
}

/* n calls over a fixed mix of steps: decode batches of 1..256 at 500..8000 context, one in four
 * with a prefill chunk. Returns ns per call; *sum keeps the compiler honest. */
static double bench_calls(struct cost_model *cm, int n, int64_t *sum) {
  static struct cost_req reqs[300];
  struct rng r;
  rng_seed(&r, 42);
  double t0 = bench_now_s();
  for (int i = 0; i < n; i++) {
    int n_dec = (int)rng_range(&r, 1, 256), k = 0, tok = 0;
    for (; k < n_dec; k++, tok++) reqs[k] = (struct cost_req){1, (int32_t)rng_range(&r, 500, 8000)};
    if (i % 4 == 0) reqs[k++] = (struct cost_req){512, 1024}, tok += 512;
    struct cost_step st = {.reqs = reqs, .n_reqs = k, .n_tok = tok, .n_decode = n_dec, .n_sample = k, .stage = 0};
    *sum += cm->stage_ns(cm->state, &st, NULL, NULL);
  }
  return (bench_now_s() - t0) * 1e9 / n;
}

int main(int argc, char **argv) {
  const char *mname = argc > 1 ? argv[1] : "qwen3-235b-a22b-gptq-int4";
  const char *hname = argc > 2 ? argv[2] : "h100-sxm";
  int tp = argc > 3 ? atoi(argv[3]) : 4;
  struct model_spec m;
  struct hw_spec h;
  if (model_load(mname, &m) || hw_load(hname, &h) || tp < 1) {
    err_print("bench_cost_calib");
    return 2;
  }
  char dir[] = "/tmp/bench_cost_calib.XXXXXX", path[64];
  if (!mkdtemp(dir)) return 2;
  snprintf(path, sizeof path, "%s/cal.db", dir);
  if (bench_fill(path, &m, &h, tp)) {
    err_print("bench_cost_calib");
    return 2;
  }
  struct layout l = {.tp = tp, .pp = 1, .dp = 1, .ep = 0};
  struct engine e;
  engine_defaults(&e, &m, &h);
  struct cost_model rl, cal;
  double t0 = bench_now_s();
  int rc = cost_roofline_create(&m, &h, &l, &e, NULL, &rl);
  double t_rl = bench_now_s() - t0;
  t0 = bench_now_s();
  if (!rc) rc = cost_calib_create_db(&m, &h, &l, &e, path, NULL, &cal);
  double t_cal = bench_now_s() - t0;
  if (rc) {
    err_print("bench_cost_calib");
    return 2;
  }
  const int n = 200000;
  int64_t sum = 0;
  double ns_rl = bench_calls(&rl, n, &sum), ns_cal = bench_calls(&cal, n, &sum);
  char line[1024];
  cost_calib_summary(&cal, line, sizeof line);
  printf("%s on %s, tp=%d, %s\n", m.name, h.name, tp, cost_calib_source(&cal));
  printf("create: roofline %.1f ms, calibrated %.1f ms (load + families + calibrated routing table + its roofline)\n",
         t_rl * 1e3, t_cal * 1e3);
  printf("stage_ns: roofline %.0f ns/call, calibrated %.0f ns/call (%d calls each, mean %.2f ms/step)\n", ns_rl, ns_cal,
         n, sum / 2.0 / n / 1e6);
  printf("%s\n", line);
  cost_destroy(&rl);
  cost_destroy(&cal);
  unlink(path);
  char wal[80];
  snprintf(wal, sizeof wal, "%s-wal", path), unlink(wal);
  snprintf(wal, sizeof wal, "%s-shm", path), unlink(wal);
  rmdir(dir);
  return 0;
}
