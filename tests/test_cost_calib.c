/* test_cost_calib: the calibrated cost model (sim/cost_calib.c), its measurement loader
 * (sim/calib.c) and the sorted-array interpolation (sim/interp.c).
 *
 * A temporary SQLite database is filled with synthetic "measurements" generated from known
 * formulas (a fixed latency plus weight-read and FLOP terms at made-up rates, not the model's
 * own SOL), on the grids servesim-exec profile uses. The model must reproduce every formula at
 * the measured points, stay within a stated tolerance between them, flag queries beyond the
 * measured range, fall back to the roofline (and say so) where a family is missing, equal the
 * roofline exactly with an empty database, and be deterministic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/rng.h"
#include "db/db.h"
#include "sim/calib.h"
#include "sim/cost_calib.h"
#include "sim/cost_roofline.h"
#include "sim/interp.h"
#include "tests/check.h"

/* Qwen3-30B-A3B GPTQ int4 (FACTS.md): 48 layers, hidden 2048, 32 q / 4 kv heads of 128,
 * 128 experts of width 768, top-8. */
static void test_model(struct model_spec *m) {
  memset(m, 0, sizeof *m);
  strcpy(m->name, "qwen3-30b-a3b-gptq-int4");
  m->hidden = 2048, m->n_layers = 48, m->n_heads = 32, m->n_kv_heads = 4, m->head_dim = 128;
  m->intermediate = 6144, m->moe_intermediate = 768, m->n_experts = 128, m->top_k = 8;
  m->norm_topk_prob = 1, m->decoder_sparse_step = 1, m->n_moe_layers = 48, m->vocab = 151936;
  m->max_pos = 40960, m->dtype_bytes = 2, m->qk_norm = 1;
  m->quant = (struct model_quant_cfg){.method = MODEL_QUANT_GPTQ, .bits = 4, .group_size = 128, .sym = 1};
}

/* H100 SXM (FACTS.md), one NVLink tier. */
static void test_hw(struct hw_spec *h) {
  memset(h, 0, sizeof *h);
  strcpy(h->name, "h100-sxm");
  strcpy(h->gpu, "NVIDIA H100 80GB HBM3");
  h->mem_bytes = 80LL << 30, h->hbm_GBps = 3350, h->hbm_eff = 0.89, h->tflops_bf16 = 989, h->tflops_fp8 = 1979;
  h->mma_eff = 0.77, h->n_sms = 132, h->gpus_per_node = 8, h->kernel_launch_us = 2.5, h->eager_launch_us = 7;
  h->n_tiers = 1;
  h->tiers[0] = (struct hw_tier){"nvlink", 8, 450, 8, 340, 1};
}

static void test_engine(struct engine *e) {
  memset(e, 0, sizeof *e);
  e->gpu_mem_util = 0.9, e->max_num_seqs = 256, e->max_num_batched_tokens = 8192;
  e->block_size = 16, e->kv_dtype_bytes = 2, e->enable_prefix_caching = 1;
}

/* ---- the synthetic "GPU": known formulas, microseconds ---- */

/* int4 GEMM: 12 us fixed, weights (K*N/2 bytes + scales) at 2.9 TB/s, FLOPs at 610 TFLOP/s. */
static double f_gemm_us(double M, double K, double N) {
  return 12.0 + (K * N / 2 + K / 128 * N * 2) / 2.9e6 + 2 * M * K * N / 6.1e8;
}
/* fused MoE on T tokens, uniform routing over E experts, top-k: 40 us fixed, active experts'
 * weights at 2.6 TB/s, FLOPs at 450 TFLOP/s. */
static double f_active(double T) { return round(128.0 * (1 - pow(1 - 8.0 / 128, T))); }
static double f_moe_us(double rows, double active, double K, double N) {
  return 40.0 + active * 3 * K * N / 2 / 2.6e6 + 2 * rows * 3 * K * N / 4.5e8;
}
/* decode attention: 9 us fixed, KV (kvh=2 per rank at tp=2, hd 128, bf16) at 2.4 TB/s, plus a
 * per-sequence 0.3 us. */
static double f_dec_us(double B, double C) { return 9.0 + 0.3 * B + B * C * 2 * 2 * 128 * 2 / 2.4e6; }
/* prefill attention of Q tokens from context 0: 11 us fixed, causal FLOPs (16 q heads per
 * rank) at 380 TFLOP/s. */
static double f_pre_us(double Q) { return 11.0 + 4.0 * 16 * 128 * Q * (Q + 1) / 2 / 3.8e8; }
/* all-reduce over 2 ranks: 7 us fixed, bytes at 150 GB/s. */
static double f_ar_us(double bytes) { return 7.0 + bytes / 1.5e5; }

static const int gemm_ms[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
static const int moe_ts[] = {1, 4, 16, 64, 256, 1024, 4096, 8192};
static const int dec_bs[] = {1, 4, 16, 64};
static const int dec_cs[] = {128, 512, 1024, 2048, 4096};
static const int pre_qs[] = {256, 1024, 2048, 4096};
#define N_OF(a) ((int)(sizeof a / sizeof a[0]))

/* tp=2 per-rank shapes of the model: qkv 2048 x (16 + 2*2)*128, o 2048 x 2048, experts 768/2 */
#define QKV_N 2560.0
#define O_K 2048.0
#define H 2048.0
#define I_RANK 384.0

static void meas_base(struct db_measurement *m, const char *kind, const char *op, const char *hw) {
  db_measurement_init(m);
  m->kind = kind, m->op = op, m->impl = "synthetic", m->dtype = "int4";
  m->hardware = hw, m->model = "qwen3-30b-a3b-gptq-int4", m->tp = 2, m->ep = 1, m->quant_group = 128;
  m->count = 20;
  snprintf(m->prov.tool_version, sizeof m->prov.tool_version, "test");
  snprintf(m->prov.git_commit, sizeof m->prov.git_commit, "0123456789abcdef");
  snprintf(m->prov.created_at, sizeof m->prov.created_at, "2026-11-28T02:00:00Z");
  snprintf(m->prov.gpu_name, sizeof m->prov.gpu_name, "NVIDIA H100 80GB HBM3");
}

/* Fills db with the synthetic grid; with_ar = 0 leaves the all-reduce rows out. */
static int fill_db(struct db *db, int with_ar) {
  int rc = 0;
  struct db_measurement m;
  int64_t hw_id, model_id;
  const char *cfg = "{\"num_attention_heads\": 32, \"num_key_value_heads\": 4, \"head_dim\": 128, \"hidden_size\": 2048}";
  if ((rc = db_put_hardware(db, "h100-sxm", "NVIDIA H100 80GB HBM3", NULL, &hw_id))) return rc;
  if ((rc = db_put_model(db, "qwen3-30b-a3b-gptq-int4", "gptq-int4", cfg, &model_id))) return rc;
  for (int i = 0; i < N_OF(gemm_ms) && !rc; i++) {
    meas_base(&m, "gemm", "qkv", "h100-sxm");
    m.m = gemm_ms[i], m.k = (int64_t)H, m.n = (int64_t)QKV_N;
    m.lat_us_median = f_gemm_us(m.m, H, QKV_N);
    if ((rc = db_put_measurement(db, &m))) break;
    meas_base(&m, "gemm", "o_proj", "h100-sxm");
    m.m = gemm_ms[i], m.k = (int64_t)O_K, m.n = (int64_t)H;
    m.lat_us_median = f_gemm_us(m.m, O_K, H);
    rc = db_put_measurement(db, &m);
  }
  for (int i = 0; i < N_OF(moe_ts) && !rc; i++) {
    char extra[64];
    double T = moe_ts[i], act = f_active(T);
    meas_base(&m, "moe", "fused_moe", "h100-sxm");
    m.tokens = moe_ts[i], m.experts = 128, m.topk = 8, m.k = (int64_t)H, m.n = (int64_t)I_RANK;
    m.tokens_per_expert = T * 8 / act;
    snprintf(extra, sizeof extra, "{\"active_experts\":%d}", (int)act);
    m.extra_json = extra;
    m.lat_us_median = f_moe_us(T * 8, act, H, I_RANK);
    if ((rc = db_put_measurement(db, &m))) break;
    /* the concentrated end is read and counted, not used */
    meas_base(&m, "moe", "fused_moe_concentrated", "h100-sxm");
    m.tokens = moe_ts[i], m.experts = 128, m.topk = 8, m.k = (int64_t)H, m.n = (int64_t)I_RANK;
    m.tokens_per_expert = T;
    m.lat_us_median = 1e6; /* absurd on purpose: it must not leak into the curve */
    rc = db_put_measurement(db, &m);
  }
  for (int b = 0; b < N_OF(dec_bs) && !rc; b++)
    for (int c = 0; c < N_OF(dec_cs) && !rc; c++) {
      meas_base(&m, "attention", "decode", "h100-sxm");
      m.dtype = "bf16";
      m.batch = dec_bs[b], m.ctx_len = dec_cs[c], m.q_len = 1, m.tokens = dec_bs[b];
      m.lat_us_median = f_dec_us(dec_bs[b], dec_cs[c]);
      rc = db_put_measurement(db, &m);
    }
  for (int q = 0; q < N_OF(pre_qs) && !rc; q++) {
    meas_base(&m, "attention", "prefill", "h100-sxm");
    m.dtype = "bf16";
    m.batch = 1, m.ctx_len = pre_qs[q], m.q_len = pre_qs[q], m.tokens = pre_qs[q];
    m.lat_us_median = f_pre_us(pre_qs[q]);
    rc = db_put_measurement(db, &m);
  }
  for (double bytes = 4096; with_ar && bytes <= 64 * 1048576.0 && !rc; bytes *= 2) {
    meas_base(&m, "allreduce", "allreduce", "h100-sxm");
    m.dtype = "bf16";
    m.n_bytes = (int64_t)bytes, m.ranks = 2;
    m.lat_us_median = f_ar_us(bytes);
    rc = db_put_measurement(db, &m);
  }
  if (!rc) {
    /* another GPU's row must not be read; a row of this GPU under another hardware name must */
    meas_base(&m, "gemm", "qkv", "a100-40g-pcie");
    snprintf(m.prov.gpu_name, sizeof m.prov.gpu_name, "NVIDIA A100-PCIE-40GB");
    m.m = 3, m.k = (int64_t)H, m.n = (int64_t)QKV_N, m.lat_us_median = 1e6;
    rc = db_put_measurement(db, &m);
  }
  if (!rc) {
    /* a step without its batch cannot be replayed: counted as unused; one with it is kept */
    meas_base(&m, "step", "decode", "h100-sxm");
    m.batch = 4, m.lat_us_median = 1000;
    if (!(rc = db_put_measurement(db, &m))) {
      m.extra_json = "{\"prefill_chunks\":1,\"prefill_len\":512,\"decodes\":32,\"decode_ctx\":1024}";
      rc = db_put_measurement(db, &m);
    }
  }
  return rc;
}

static char tmpdir[256];

static int make_db(const char *name, int with_ar, int empty, char *path, size_t n) {
  snprintf(path, n, "%s/%s", tmpdir, name);
  struct db *db = NULL;
  int rc = db_open(path, &db);
  if (!rc && !empty) rc = fill_db(db, with_ar);
  db_close(db);
  return rc;
}

static int make_model(struct cost_model *cm, const char *db_path, int tp, int ep, int calibrated) {
  struct model_spec m;
  struct hw_spec h;
  struct engine e;
  test_model(&m), test_hw(&h), test_engine(&e);
  struct layout l = {.tp = tp, .pp = 1, .dp = 1, .ep = ep};
  struct cost_roofline_opts o;
  cost_roofline_opts_default(&o);
  o.route_samples = 16; /* a smaller Monte-Carlo table: the test compares models, not routing */
  if (!calibrated) return cost_roofline_create(&m, &h, &l, &e, &o, cm);
  return cost_calib_create_db(&m, &h, &l, &e, db_path, &o, cm);
}

static int64_t step_ns(const struct cost_model *cm, int n_dec, int ctx, int chunk, int chunk_ctx,
                       struct cost_breakdown *bd) {
  static struct cost_req reqs[600];
  int n = 0, tok = 0;
  for (int i = 0; i < n_dec; i++) reqs[n++] = (struct cost_req){1, ctx}, tok++;
  if (chunk > 0) reqs[n++] = (struct cost_req){chunk, chunk_ctx}, tok += chunk;
  struct cost_step st = {.reqs = reqs, .n_reqs = n, .n_tok = tok, .n_decode = n_dec, .n_sample = n, .stage = 0};
  memset(bd, 0, sizeof *bd);
  return cm->stage_ns(cm->state, &st, NULL, bd);
}

/* ---- interp ---- */

static void test_interp(void) {
  struct interp1 t;
  double x[] = {3, 1, 2, 2}, y[] = {30, 10, 18, 22};
  CHECK(interp1_build(&t, x, y, 4) == 0);
  CHECK(t.n == 3); /* x = 2 merged into the mean 20 */
  int out = -1;
  CHECK(interp1_eval(&t, 2, &out) == 20.0 && out == 0);
  CHECK_NEAR(interp1_eval(&t, 1.5, &out), 15.0, 1e-12);
  CHECK(out == 0);
  CHECK(interp1_eval(&t, 0, &out) == 10.0 && out == INTERP_BELOW_X); /* held flat, not extrapolated */
  CHECK(interp1_eval(&t, 9, &out) == 30.0 && out == INTERP_ABOVE_X);
  interp1_free(&t);
  struct interp1 e;
  CHECK(interp1_build(&e, NULL, NULL, 0) == 0);
  CHECK(isnan(interp1_eval(&e, 1, &out)));
  double bad[] = {NAN};
  CHECK(interp1_build(&e, bad, bad, 1) == ERR_INPUT);
  /* rows of different x ranges (an incomplete grid) */
  struct interp2 s;
  double r[] = {0, 0, 1, 1, 1}, xs[] = {0, 1, 0, 1, 2}, ys[] = {0, 10, 100, 110, 120};
  CHECK(interp2_build(&s, r, xs, ys, 5) == 0);
  CHECK(s.n_rows == 2);
  CHECK_NEAR(interp2_eval(&s, 0.5, 0.5, &out), 0.5 * 5 + 0.5 * 105, 1e-12);
  CHECK(out == 0);
  CHECK_NEAR(interp2_eval(&s, 0.5, 2, &out), 0.5 * 10 + 0.5 * 120, 1e-12);
  CHECK(out == INTERP_ABOVE_X); /* row 0 ends at x = 1 */
  CHECK_NEAR(interp2_eval(&s, 3, 1.5, &out), 115, 1e-12);
  CHECK(out == INTERP_ABOVE_R);
  interp2_free(&s);
}

/* ---- per-op: exact at measured points, close between, flagged outside ---- */

static double rel(double a, double b) { return fabs(a - b) / fabs(b); }

static void test_ops(const char *db_path) {
  struct cost_model cm;
  CHECK(make_model(&cm, db_path, 2, 0, 1) == 0);
  CHECK(!strcmp(cm.name, "calibrated"));
  int how;
  double worst_between = 0;
  for (int i = 0; i < N_OF(gemm_ms); i++) {
    double M = gemm_ms[i];
    double v = cost_calib_gemm_ns(&cm, M, H, QKV_N, &how);
    CHECK_MSG(rel(v, f_gemm_us(M, H, QKV_N) * 1e3) < 1e-9 && how == CCAL_INSIDE, "qkv M=%g: %g vs %g", M, v,
              f_gemm_us(M, H, QKV_N) * 1e3);
    v = cost_calib_gemm_ns(&cm, M, O_K, H, &how);
    CHECK_MSG(rel(v, f_gemm_us(M, O_K, H) * 1e3) < 1e-9 && how == CCAL_INSIDE, "o M=%g", M);
    if (i + 1 < N_OF(gemm_ms)) {
      double mid = round(sqrt(M * gemm_ms[i + 1] * 1.0)) + (M == 1 ? 0 : 1);
      v = cost_calib_gemm_ns(&cm, mid, H, QKV_N, &how);
      CHECK(how == CCAL_INSIDE);
      double r = rel(v, f_gemm_us(mid, H, QKV_N) * 1e3);
      if (r > worst_between) worst_between = r;
    }
  }
  /* Stated tolerance between measured points (factor-2 spacing in M): 3%. */
  CHECK_MSG(worst_between < 0.03, "gemm between points: worst relative error %.4f", worst_between);
  printf("gemm between measured M: worst relative error %.4f\n", worst_between);
  CHECK(!isnan(cost_calib_gemm_ns(&cm, 16384, H, QKV_N, &how)) && how == CCAL_FLAT);
  CHECK(isnan(cost_calib_gemm_ns(&cm, 16, 1000, 1000, &how)) && how == CCAL_FALLBACK); /* no such family */

  for (int i = 0; i < N_OF(moe_ts); i++) {
    double T = moe_ts[i], act = f_active(T);
    double v = cost_calib_moe_ns(&cm, T * 8, act, &how);
    CHECK_MSG(rel(v, f_moe_us(T * 8, act, H, I_RANK) * 1e3) < 1e-9 && how == CCAL_INSIDE, "moe T=%g: %g vs %g", T, v,
              f_moe_us(T * 8, act, H, I_RANK) * 1e3);
  }
  /* between: 100 tokens (tokens per expert between the 64- and 256-token points) */
  double v = cost_calib_moe_ns(&cm, 800, f_active(100), &how);
  CHECK(how == CCAL_INSIDE);
  CHECK_MSG(rel(v, f_moe_us(800, f_active(100), H, I_RANK) * 1e3) < 0.05, "moe between: %g vs %g", v,
            f_moe_us(800, f_active(100), H, I_RANK) * 1e3);

  double worst = 0;
  for (int b = 0; b < N_OF(dec_bs); b++)
    for (int c = 0; c < N_OF(dec_cs); c++) {
      double B = dec_bs[b], C = dec_cs[c];
      v = cost_calib_attn_decode_ns(&cm, B, C, &how);
      CHECK_MSG(rel(v, f_dec_us(B, C) * 1e3) < 1e-9 && how == CCAL_INSIDE, "decode B=%g C=%g", B, C);
      if (b + 1 < N_OF(dec_bs) && c + 1 < N_OF(dec_cs)) {
        double Bm = round(sqrt(B * dec_bs[b + 1])), Cm = round(sqrt(C * dec_cs[c + 1]));
        v = cost_calib_attn_decode_ns(&cm, Bm, Cm, &how);
        CHECK(how == CCAL_INSIDE);
        double r = rel(v, f_dec_us(Bm, Cm) * 1e3);
        if (r > worst) worst = r;
      }
    }
  /* Stated tolerance in the middle of a grid cell (batch x4, ctx x2-4): 10%. */
  CHECK_MSG(worst < 0.10, "decode between points: worst relative error %.4f", worst);
  printf("decode attention between grid points: worst relative error %.4f\n", worst);
  CHECK(!isnan(cost_calib_attn_decode_ns(&cm, 16, 8192, &how)) && how == CCAL_FLAT);
  for (int q = 0; q < N_OF(pre_qs); q++) {
    v = cost_calib_attn_prefill_ns(&cm, pre_qs[q], 0, &how);
    CHECK_MSG(rel(v, f_pre_us(pre_qs[q]) * 1e3) < 1e-9 && how == CCAL_INSIDE, "prefill Q=%d", pre_qs[q]);
  }
  CHECK(!isnan(cost_calib_attn_prefill_ns(&cm, 2048, 4096, &how)) && how == CCAL_FLAT); /* ctx beyond 4096 */
  worst = 0;
  for (double bytes = 4096; bytes <= 64 * 1048576.0; bytes *= 2) {
    v = cost_calib_allreduce_ns(&cm, bytes, &how);
    CHECK_MSG(rel(v, f_ar_us(bytes) * 1e3) < 1e-9 && how == CCAL_INSIDE, "allreduce %g bytes", bytes);
    if (bytes < 64 * 1048576.0) {
      double mid = bytes * 1.5;
      double r = rel(cost_calib_allreduce_ns(&cm, mid, &how), f_ar_us(mid) * 1e3);
      if (r > worst) worst = r;
    }
  }
  CHECK_MSG(worst < 0.05, "allreduce between points: worst relative error %.4f", worst);
  cost_destroy(&cm);
}

/* ---- per-step: terms rebuilt from the ops; the rest is the roofline's ---- */

static void test_step(const char *db_path) {
  struct cost_model cal, rl;
  CHECK(make_model(&cal, db_path, 2, 0, 1) == 0);
  CHECK(make_model(&rl, db_path, 2, 0, 0) == 0);
  struct cost_breakdown bc, br;
  /* 16 decodes attending 1024 tokens each: every op at a measured point */
  int64_t tc = step_ns(&cal, 16, 1023, 0, 0, &bc);
  int64_t tr = step_ns(&rl, 16, 1023, 0, 0, &br);
  const double L = 48;
  CHECK_NEAR((double)bc.ns[COST_DENSE_GEMM], L * (f_gemm_us(16, H, QKV_N) + f_gemm_us(16, O_K, H)) * 1e3, 1.0);
  CHECK_NEAR((double)bc.ns[COST_ATTN], L * f_dec_us(16, 1024) * 1e3, 1.0);
  /* all-reduces: after attention and after the MoE in every layer, plus the embedding's */
  CHECK_NEAR((double)bc.ns[COST_ALLREDUCE], (2 * L + 1) * f_ar_us(16 * H * 2) * 1e3, 1.0);
  /* MoE: the routing model's expectation; with TP (one rank holding all experts) near the
   * measured 16-token point */
  double moe = (double)(bc.ns[COST_MOE_GEMM] + bc.ns[COST_EXPERT_IMBALANCE]);
  CHECK_MSG(rel(moe, L * f_moe_us(128, f_active(16), H, I_RANK) * 1e3) < 0.05, "moe term %g vs %g", moe,
            L * f_moe_us(128, f_active(16), H, I_RANK) * 1e3);
  for (int k = 0; k < COST_N_TERMS; k++) {
    if (k == COST_ATTN || k == COST_DENSE_GEMM || k == COST_ALLREDUCE || k == COST_MOE_GEMM ||
        k == COST_EXPERT_IMBALANCE || k == COST_NORM_MISC || k == COST_LAUNCH) /* launch: test_launch */
      continue;
    CHECK_MSG(bc.ns[k] == br.ns[k], "term %s: %lld vs roofline %lld", cost_term_names[k], (long long)bc.ns[k],
              (long long)br.ns[k]);
  }
  CHECK(bc.ns[COST_NORM_MISC] <= br.ns[COST_NORM_MISC] && bc.ns[COST_NORM_MISC] >= 0);
  int64_t sum = 0;
  for (int k = 0; k < COST_N_TERMS; k++) sum += bc.ns[k];
  CHECK(sum == tc);
  CHECK(tc != tr);
  struct cost_calib_stats st;
  CHECK(cost_calib_stats(&cal, &st) == 0);
  for (int k = 0; k < CCAL_N_OPS; k++) CHECK_MSG(st.n[k][CCAL_INSIDE] > 0 && st.n[k][CCAL_FALLBACK] == 0, "op %d", k);
  CHECK(cost_calib_stats(&rl, &st) == ERR_INPUT);

  /* long contexts: attention beyond the measured 4096 is held flat and reported */
  cost_calib_stats_reset(&cal);
  step_ns(&cal, 8, 9000, 0, 0, &bc);
  CHECK(cost_calib_stats(&cal, &st) == 0);
  CHECK(st.n[CCAL_ATTN][CCAL_FLAT] == 48 && st.n[CCAL_ATTN][CCAL_INSIDE] == 0);
  char line[1024];
  cost_calib_summary(&cal, line, sizeof line);
  printf("%s\n", line);
  CHECK_MSG(strstr(line, "attention ctx > 4096 (to 9001)") != NULL, "summary: %s", line);
  CHECK(strstr(line, "100% of op time from measurements") != NULL);
  CHECK(strstr(cost_calib_source(&cal), "NVIDIA H100 80GB HBM3") != NULL);
  CHECK(strstr(cost_calib_source(&cal), "0123456") != NULL);
  cost_destroy(&cal);
  cost_destroy(&rl);
}

/* ---- launch gaps: not added again for ops priced from measurements ----
 * Each profiled op is timed alone, its launch latency inside the measured time. With every op of
 * a decode step measured, the launch term is the gaps of the kernels the roofline still prices
 * (per layer: 2 add+RMSNorm, q-norm, k-norm, RoPE, KV-cache write, router GEMM, top-k softmax;
 * the embedding; final norm + lm_head) plus the host constants, set here to values of the test's
 * own so the expectation does not borrow the defaults. Against the roofline: 9 gaps a layer
 * fewer (attention, QKV, O, and the fused MoE's 2 GEMMs, 2 align/sort, SiLU*mul, weighted sum).
 * A class that falls back keeps its gaps. */

/* The calibrated model (or the roofline) with the host constants of the test, over the full
 * synthetic set less its attention rows (drop_attn 1: all, 2: prefill only) and its MoE rows. */
static int make_launch_model(struct cost_model *cm, const char *db_path, int calibrated, int drop_attn, int drop_moe) {
  struct model_spec m;
  struct hw_spec h;
  struct engine e;
  test_model(&m), test_hw(&h), test_engine(&e);
  struct layout l = {.tp = 2, .pp = 1, .dp = 1, .ep = 0};
  struct cost_roofline_opts o;
  cost_roofline_opts_default(&o);
  o.route_samples = 16;
  o.cpu_step_us = 1000, o.cpu_req_us = 50;
  if (!calibrated) return cost_roofline_create(&m, &h, &l, &e, &o, cm);
  struct calib_set s;
  int rc = calib_set_load(&s, db_path, &h);
  if (rc) return rc;
  int n = 0;
  for (int i = 0; i < s.n; i++) {
    int k = s.rows[i].kind;
    if ((drop_attn == 1 && k == CALIB_ATTN_DECODE) || (drop_attn && k == CALIB_ATTN_PREFILL)) continue;
    if (drop_moe && k == CALIB_MOE) continue;
    s.rows[n++] = s.rows[i];
  }
  s.n = n;
  rc = cost_calib_create(&m, &h, &l, &e, &s, &o, cm);
  calib_set_free(&s);
  return rc;
}

static void test_launch(const char *db_path) {
  const double L = 48, gap_ns = 2.5e3, n_dec = 16;
  const double host_ns = 1000e3 + n_dec * 50e3;
  struct cost_model rl, cal;
  struct cost_breakdown br, bc;
  CHECK(make_launch_model(&rl, db_path, 0, 0, 0) == 0);
  step_ns(&rl, (int)n_dec, 1023, 0, 0, &br);
  /* the roofline's: 17 kernels a layer, the embedding, final norm + lm_head */
  CHECK_NEAR((double)br.ns[COST_LAUNCH], (L * 17 + 1 + 2) * gap_ns + host_ns, 1.0);

  const struct { int drop_attn, drop_moe; double k_meas; const char *what; } cases[] = {
      {0, 0, 1 + 2 + 6, "every op measured"},
      {1, 0, 2 + 6, "attention falls back"},
      {1, 1, 2, "attention and moe fall back"},
  };
  for (int i = 0; i < N_OF(cases); i++) {
    CHECK(make_launch_model(&cal, db_path, 1, cases[i].drop_attn, cases[i].drop_moe) == 0);
    int64_t tc = step_ns(&cal, (int)n_dec, 1023, 0, 0, &bc);
    double want = (L * (17 - cases[i].k_meas) + 1 + 2) * gap_ns + host_ns;
    CHECK_MSG(fabs((double)bc.ns[COST_LAUNCH] - want) <= 1.0, "%s: launch term %lld ns, want %.0f", cases[i].what,
              (long long)bc.ns[COST_LAUNCH], want);
    CHECK_NEAR((double)(br.ns[COST_LAUNCH] - bc.ns[COST_LAUNCH]), L * cases[i].k_meas * gap_ns, 1.0);
    int64_t sum = 0;
    for (int k = 0; k < COST_N_TERMS; k++) sum += bc.ns[k];
    CHECK(sum == tc);
    struct cost_calib_stats st;
    CHECK(cost_calib_stats(&cal, &st) == 0);
    CHECK(st.n[CCAL_ATTN][CCAL_FALLBACK] == (cases[i].drop_attn ? 48 : 0));
    cost_destroy(&cal);
  }
  /* a mixed step (8 decodes + a 300-token chunk) without prefill attention rows: the step's
   * attention is partly the roofline's, so its gap stays; the other ops' gaps go */
  CHECK(make_launch_model(&cal, db_path, 1, 2, 0) == 0);
  step_ns(&rl, 8, 1023, 300, 0, &br);
  step_ns(&cal, 8, 1023, 300, 0, &bc);
  struct cost_calib_stats st;
  CHECK(cost_calib_stats(&cal, &st) == 0);
  CHECK(st.n[CCAL_ATTN][CCAL_FALLBACK] == 48 && st.n[CCAL_ATTN][CCAL_INSIDE] == 48);
  CHECK_NEAR((double)(br.ns[COST_LAUNCH] - bc.ns[COST_LAUNCH]), L * (2 + 6) * gap_ns, 1.0);
  /* the parts the calibrated model rebuilds the term from */
  struct cost_roofline_launch lp;
  CHECK(cost_roofline_stage_launch_ns(&cal, NULL, NULL, &lp) < 0); /* not a roofline model */
  struct cost_req reqs[2] = {{1, 1023}, {300, 0}};
  struct cost_step one = {.reqs = reqs, .n_reqs = 2, .n_tok = 301, .n_decode = 1, .n_sample = 2, .stage = 0};
  struct cost_breakdown b2;
  memset(&b2, 0, sizeof b2);
  int64_t t2 = cost_roofline_stage_launch_ns(&rl, &one, &b2, &lp);
  CHECK(t2 > 0 && lp.k_all == L * 17 + 1 && lp.k_attn == L && lp.k_qkv == L && lp.k_o == L && lp.k_moe == L * 6);
  CHECK(lp.k_gu == 0 && lp.k_dn == 0 && lp.gap_ns == gap_ns && lp.host_ns < lp.gpu_ns);
  CHECK_NEAR(lp.fixed_ns, 2 * gap_ns + 1000e3 + 2 * 50e3, 1e-6);
  CHECK_NEAR((double)b2.ns[COST_LAUNCH], lp.k_all * gap_ns + lp.fixed_ns, 1.0);
  cost_destroy(&cal);
  cost_destroy(&rl);
}

/* ---- fallback: no all-reduce rows; TP=4 shapes only near the measured ones ---- */

static void test_fallback(const char *db_noar) {
  struct cost_model cal, rl;
  CHECK(make_model(&cal, db_noar, 2, 0, 1) == 0);
  CHECK(make_model(&rl, db_noar, 2, 0, 0) == 0);
  struct cost_breakdown bc, br;
  step_ns(&cal, 16, 1023, 0, 0, &bc);
  step_ns(&rl, 16, 1023, 0, 0, &br);
  CHECK(bc.ns[COST_ALLREDUCE] == br.ns[COST_ALLREDUCE]);
  CHECK_NEAR((double)bc.ns[COST_ATTN], 48 * f_dec_us(16, 1024) * 1e3, 1.0);
  struct cost_calib_stats st;
  cost_calib_stats(&cal, &st);
  CHECK(st.n[CCAL_ALLREDUCE][CCAL_FALLBACK] == 97 && st.ns[CCAL_ALLREDUCE][CCAL_FALLBACK] == (double)br.ns[COST_ALLREDUCE]);
  char line[1024];
  cost_calib_summary(&cal, line, sizeof line);
  printf("%s\n", line);
  CHECK_MSG(strstr(line, "no allreduce rows for 2 ranks") != NULL, "summary: %s", line);
  CHECK(strstr(line, "roofline fallback") != NULL);
  int how;
  CHECK(isnan(cost_calib_allreduce_ns(&cal, 65536, &how)) && how == CCAL_FALLBACK);
  cost_destroy(&cal);
  cost_destroy(&rl);

  /* TP=4: qkv 2048 x 1536 and o 1024 x 2048 lie within 2x of the measured TP=2 shapes: used,
   * flagged as held flat; experts 192 wide are 2x from 384: used, flagged. */
  CHECK(make_model(&cal, db_noar, 4, 0, 1) == 0);
  step_ns(&cal, 16, 1023, 0, 0, &bc);
  cost_calib_stats(&cal, &st);
  CHECK(st.n[CCAL_GEMM][CCAL_FLAT] == 96 && st.n[CCAL_GEMM][CCAL_INSIDE] == 0);
  CHECK(st.n[CCAL_ATTN][CCAL_FLAT] == 48); /* 8/1 heads per rank from the measured 16/2 */
  cost_calib_summary(&cal, line, sizeof line);
  printf("%s\n", line);
  CHECK_MSG(strstr(line, "from the nearest measured shape") != NULL, "summary: %s", line);
  cost_destroy(&cal);
}

/* ---- empty database: the roofline exactly, 100% fallback ---- */

static void test_empty(const char *db_empty) {
  struct cost_model cal, rl;
  CHECK(make_model(&cal, db_empty, 2, 1, 1) == 0);
  CHECK(make_model(&rl, db_empty, 2, 1, 0) == 0);
  struct rng r;
  /* identical steps, term by term */
  rng_seed(&r, 11);
  int mismatches = 0;
  for (int i = 0; i < 200; i++) {
    int n_dec = (int)rng_range(&r, 0, 300), ctx = (int)rng_range(&r, 1, 20000);
    int chunk = (int)rng_range(&r, 0, 3) ? 0 : (int)rng_range(&r, 1, 4096);
    int cctx = (int)rng_range(&r, 0, 5000);
    struct cost_breakdown bc, br;
    int64_t a = step_ns(&cal, n_dec, ctx, chunk, cctx, &bc);
    int64_t b = step_ns(&rl, n_dec, ctx, chunk, cctx, &br);
    mismatches += a != b || memcmp(&bc, &br, sizeof bc) != 0;
  }
  CHECK_MSG(mismatches == 0, "%d of 200 steps differ from the roofline", mismatches);
  struct cost_calib_stats st;
  cost_calib_stats(&cal, &st);
  for (int k = 0; k < CCAL_N_OPS; k++) CHECK(st.ns[k][CCAL_INSIDE] == 0 && st.ns[k][CCAL_FLAT] == 0);
  char line[1024];
  cost_calib_summary(&cal, line, sizeof line);
  printf("%s\n", line);
  CHECK_MSG(strstr(line, "0% of op time from measurements") != NULL && strstr(line, "100% roofline fallback") != NULL,
            "summary: %s", line);
  cost_destroy(&cal);
  cost_destroy(&rl);
}

/* ---- determinism ---- */

static void test_deterministic(const char *db_path) {
  struct cost_model a, b;
  CHECK(make_model(&a, db_path, 2, 1, 1) == 0);
  CHECK(make_model(&b, db_path, 2, 1, 1) == 0);
  struct rng r;
  rng_seed(&r, 3);
  int diff = 0;
  for (int i = 0; i < 300; i++) {
    int n_dec = (int)rng_range(&r, 0, 200), ctx = (int)rng_range(&r, 1, 12000);
    int chunk = (int)rng_range(&r, 0, 2) ? 0 : (int)rng_range(&r, 1, 8192 - 200);
    struct cost_breakdown x, y;
    int64_t ta = step_ns(&a, n_dec, ctx, chunk, 0, &x);
    int64_t tb = step_ns(&b, n_dec, ctx, chunk, 0, &y);
    diff += ta != tb || memcmp(&x, &y, sizeof x) != 0 || ta <= 0;
  }
  CHECK(diff == 0);
  char la[1024], lb[1024];
  cost_calib_summary(&a, la, sizeof la);
  cost_calib_summary(&b, lb, sizeof lb);
  CHECK(!strcmp(la, lb));
  printf("%s\n", la);
  cost_destroy(&a);
  cost_destroy(&b);
}

/* ---- loader: GPU filter, unused rows, bad rows, missing file ---- */

static void test_loader(const char *db_path) {
  struct hw_spec h;
  test_hw(&h);
  struct calib_set s;
  CHECK(calib_set_load(&s, db_path, &h) == 0);
  CHECK(s.n_by_kind[CALIB_GEMM] == 2 * N_OF(gemm_ms)); /* the A100 row is not read */
  CHECK(s.n_by_kind[CALIB_MOE] == N_OF(moe_ts));
  CHECK(s.n_by_kind[CALIB_ATTN_DECODE] == N_OF(dec_bs) * N_OF(dec_cs));
  CHECK(s.n_unused == N_OF(moe_ts) + 1); /* concentrated MoE points and the bare step row */
  CHECK(s.n_by_kind[CALIB_STEP] == 1);
  for (int i = 0; i < s.n; i++)
    if (s.rows[i].kind == CALIB_STEP)
      CHECK(s.rows[i].step_prefill == 1 && s.rows[i].step_prefill_len == 512 && s.rows[i].step_decode == 32 &&
            s.rows[i].step_decode_ctx == 1024 && s.rows[i].tp == 2 && !strcmp(s.rows[i].model, "qwen3-30b-a3b-gptq-int4"));
  CHECK(s.rows[0].kind == CALIB_GEMM);
  int found = 0;
  for (int i = 0; i < s.n; i++)
    if (s.rows[i].kind == CALIB_ATTN_DECODE) found = s.rows[i].qh == 16 && s.rows[i].kvh == 2 && s.rows[i].hd == 128;
  CHECK(found); /* heads per rank from the models table's config.json at tp=2 */
  calib_set_free(&s);

  /* the same GPU under another hardware name is read through the GPU's marketing name */
  struct hw_spec h2 = h;
  strcpy(h2.name, "h100-custom");
  CHECK(calib_set_load(&s, db_path, &h2) == 0);
  CHECK(s.n_by_kind[CALIB_GEMM] == 2 * N_OF(gemm_ms));
  calib_set_free(&s);

  char missing[512];
  snprintf(missing, sizeof missing, "%s/none.db", tmpdir);
  CHECK(calib_set_load(&s, missing, &h) == ERR_NOENT);
  CHECK(access(missing, F_OK) != 0); /* not created */

  /* a zero-latency row is refused, naming the row */
  char bad[512];
  snprintf(bad, sizeof bad, "%s/bad.db", tmpdir);
  struct db *db = NULL;
  CHECK(db_open(bad, &db) == 0);
  struct db_measurement m;
  meas_base(&m, "gemm", "qkv", "h100-sxm");
  m.m = 1, m.k = 2048, m.n = 2560, m.lat_us_median = 0;
  CHECK(db_put_measurement(db, &m) == 0);
  db_close(db);
  CHECK(calib_set_load(&s, bad, &h) == ERR_INPUT);
  CHECK_MSG(strstr(err_msg(), "measurement 1") && strstr(err_msg(), "bad.db"), "%s", err_msg());
  struct cost_model cm;
  struct model_spec ms;
  struct engine e;
  test_model(&ms), test_engine(&e);
  struct layout l = {.tp = 2, .pp = 1, .dp = 1, .ep = 0};
  CHECK(cost_calib_create_db(&ms, &h, &l, &e, bad, NULL, &cm) == ERR_INPUT);
  CHECK(cm.stage_ns == NULL);
}

/* servesim-exec profile times decode attention both as the library kernel ("decode") and as the
 * path decode steps take ("decode_split_heads", only when its self-check passed). The set keeps
 * only the engine's path at a point, whichever row comes first; other points, other runs and a
 * lone library row stay. (Both used to land in one curve, merged into their mean in util space:
 * 55 us at batch 1 x 1024 on the committed H100 dump, against 42 us run and 73 us not run.) */
static void test_engine_path(void) {
  struct calib_set s;
  calib_set_init(&s);
  struct db_measurement m;
  const char *ops[4] = {"decode", "decode_split_heads", "decode_split_heads", "decode"};
  const double t_us[4] = {73.0, 42.0, 40.0, 70.0};
  const int ctx[4] = {1024, 1024, 2048, 2048}; /* library first at 1024, engine first at 2048 */
  for (int i = 0; i < 4; i++) {
    meas_base(&m, "attention", ops[i], "h100-sxm");
    m.run_id = 4, m.batch = 1, m.ctx_len = ctx[i], m.q_len = 1, m.lat_us_median = t_us[i];
    CHECK(calib_set_add(&s, &m, 64, 4, 128) == 0);
  }
  /* a lone library row (another point) and a library row of another run stay */
  meas_base(&m, "attention", "decode", "h100-sxm");
  m.run_id = 4, m.batch = 4, m.ctx_len = 1024, m.q_len = 1, m.lat_us_median = 74.0;
  CHECK(calib_set_add(&s, &m, 64, 4, 128) == 0);
  m.run_id = 9, m.batch = 1, m.ctx_len = 1024, m.lat_us_median = 75.0;
  CHECK(calib_set_add(&s, &m, 64, 4, 128) == 0);
  CHECK(s.n == 4 && s.n_by_kind[CALIB_ATTN_DECODE] == 4 && s.n_unused == 2);
  double want_ns[4] = {42e3, 40e3, 74e3, 75e3}; /* measurement order kept */
  for (int i = 0; i < s.n && i < 4; i++) CHECK_NEAR(s.rows[i].t_ns, want_ns[i], 1e-9);
  CHECK(s.rows[0].engine_path && s.rows[1].engine_path && !s.rows[2].engine_path);
  calib_set_free(&s);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/test_cost_calib.XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "cannot create a temporary directory under %s\n", base ? base : "/tmp");
    return 1;
  }
  char full[512], noar[512], empty[512];
  CHECK(make_db("full.db", 1, 0, full, sizeof full) == 0);
  CHECK(make_db("noar.db", 0, 0, noar, sizeof noar) == 0);
  CHECK(make_db("empty.db", 0, 1, empty, sizeof empty) == 0);
  test_interp();
  test_engine_path();
  test_loader(full);
  test_ops(full);
  test_step(full);
  test_launch(full);
  test_fallback(noar);
  test_empty(empty);
  test_deterministic(full);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return check_report("test_cost_calib");
}
