/* cost_calib: the roofline's step with measured ops re-priced in util space (see cost_calib.h).
 *
 * At create the measurement set is grouped into families (rows of one op with equal fixed shape,
 * e.g. the int4 GEMMs of K=4096, N=9216), each row turned into a util = SOL / measured time,
 * and each family into a sorted curve over log shape (interp.c). Every op the layout runs is then
 * bound to a family: the family of its exact shape, else the nearest one within a factor of two
 * per dimension (flagged as held flat: a neighbouring shape), else none (roofline fallback).
 * A step asks the roofline for its terms, then rebuilds the four re-priced terms from the bound
 * families, and the launch term without the per-kernel gaps of the measured ops (the profile
 * times each op alone, so its launch latency is already in the measurement; adding the
 * roofline's hw kernel_launch_us per kernel again counted it twice, 2.1 ms of a 15 ms H100
 * decode step). Counters record where each op's time came from. */
#include "sim/cost_calib.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sim/comm.h"
#include "sim/interp.h"
#include "sim/moe_route.h"

const char *const cost_calib_op_names[CCAL_N_OPS] = {
    [CCAL_GEMM] = "gemm", [CCAL_MOE] = "moe", [CCAL_ATTN] = "attention", [CCAL_ALLREDUCE] = "allreduce"};

/* vLLM captures CUDA graphs up to 512 tokens (as cost_roofline.c); the MoE table reaches at
 * least that far. */
#define CCAL_GRAPH_MAX 512
/* A neighbouring family may stand in for a missing shape when each fixed dimension is within
 * this factor (flagged as held flat). Beyond it, util is not expected to transfer: TP=8's
 * 192-wide expert slices run a different tile shape than TP=2's 768. */
#define CCAL_NEIGHBOUR_FACTOR 2.0

/* One family: the utils of one op at one fixed shape, over log of its free shape key(s). */
struct ccal_fam {
  int kind;                  /* enum calib_kind */
  double key[3];             /* gemm/moe: k, n; attention: qh, kvh, hd; allreduce: ranks */
  struct interp1 u1;         /* log util over log x (all but decode) */
  struct interp2 u2;         /* decode: log util over (log batch, log ctx) */
  double kv_max;             /* prefill: longest measured context */
};

/* An op of the layout bound to a family. */
struct ccal_bind {
  int fam;                   /* index into fams, -1 = none (roofline fallback) */
  int exact;                 /* 0: a neighbouring shape's family (every query held flat) */
};

/* Held-flat notes: which key went beyond the measured range, how far. */
enum {
  NOTE_GEMM_M_LO, NOTE_GEMM_M_HI, NOTE_MOE_LO, NOTE_MOE_HI, NOTE_DEC_CTX_LO, NOTE_DEC_CTX_HI,
  NOTE_DEC_B_LO, NOTE_DEC_B_HI, NOTE_PRE_Q_LO, NOTE_PRE_Q_HI, NOTE_PRE_KV_HI, NOTE_AR_LO, NOTE_AR_HI,
  NOTE_N
};
static const struct {
  const char *what;
  int hi;
} ccal_notes[NOTE_N] = {
    [NOTE_GEMM_M_LO] = {"gemm M", 0},           [NOTE_GEMM_M_HI] = {"gemm M", 1},
    [NOTE_MOE_LO] = {"moe expert rows", 0},      [NOTE_MOE_HI] = {"moe expert rows", 1},
    [NOTE_DEC_CTX_LO] = {"attention ctx", 0},    [NOTE_DEC_CTX_HI] = {"attention ctx", 1},
    [NOTE_DEC_B_LO] = {"decode batch", 0},       [NOTE_DEC_B_HI] = {"decode batch", 1},
    [NOTE_PRE_Q_LO] = {"prefill chunk", 0},      [NOTE_PRE_Q_HI] = {"prefill chunk", 1},
    [NOTE_PRE_KV_HI] = {"prefill ctx", 1},       [NOTE_AR_LO] = {"allreduce bytes", 0},
    [NOTE_AR_HI] = {"allreduce bytes", 1},
};

struct ccal_note {
  int64_t n;
  double edge;               /* end of the measured range */
  double seen;               /* furthest query beyond it */
};

/* Accumulates one term's ops. */
struct ccal_acc {
  double sol_all, sol_fallback;
  double ns[3];
  double n[3];
};

struct ccal {
  struct cost_model rl;      /* the roofline underneath */
  /* model and layout, per rank */
  double H, hd, qh, kvh, qkv_n, o_k, dense_I, I_rank, kv_b; /* kv_b: KV-cache bytes per element */
  int E, topk, ep, ep_dp, tp, pp, dp, quant, enforce_eager;
  struct model_spec ms;      /* copy of the model (weight format for SOL bytes) */
  double w_qkv, w_o, w_gu, w_dn, w_egu, w_edn; /* weight bytes per rank of each GEMM / expert */
  double bw, rate;           /* bytes/ns and FLOPs/ns at the achievable ceilings */
  int *n_layers, *n_moe, *n_dense; /* (pp) per stage */
  struct comm_group *tp_group;     /* (pp) */
  /* families and bindings */
  struct ccal_fam *fams;     /* (n_fams) */
  int n_fams;
  struct ccal_bind b_qkv, b_o, b_gu, b_dn, b_moe, b_dec, b_pre, b_ar;
  struct moe_route_table route; /* calibrated rank costs under the routing model (b_moe only) */
  int have_route;
  /* counters */
  struct cost_calib_stats st;
  struct ccal_note notes[NOTE_N];
  char why[CCAL_N_OPS][160]; /* why an op class falls back (set at create) */
  char shape_note[CCAL_N_OPS][160]; /* which op used a neighbouring shape */
  char source[512];
};

/* ---- speed of light at the achievable ceilings ----
 * Memory time plus MMA time, not their max: a max has a kink at the ridge point that real
 * kernels do not have at the same place, and interpolating util across it is wrong by ~10% on a
 * smooth curve with points a factor two apart; the sum is smooth (1.2% on the same curve, see
 * tests/test_cost_calib.c). Util is interpolated as log(util) over log shape: where a fixed
 * latency dominates, util grows as a power of the size, which log-log interpolation follows
 * exactly (linear util was 19% off between decode points 4x apart, log util 3%). */

static double ccal_max(double a, double b) { return a > b ? a : b; }

static double ccal_sol_gemm(const struct ccal *c, double m, double w_bytes, double k, double n) {
  double bytes = w_bytes + m * (k + n) * 2.0, flops = 2.0 * m * k * n;
  return bytes / c->bw + flops / c->rate;
}

/* One rank's fused MoE: weights of the active experts, activations in and out of both GEMMs. */
static double ccal_sol_moe(const struct ccal *c, double rows, double active, double w_exp, double k, double n) {
  double bytes = active * w_exp + rows * (k + 2 * n + n + k) * 2.0;
  double flops = 2.0 * rows * 3.0 * k * n;
  return bytes / c->bw + flops / c->rate;
}

/* Attention of n_q query tokens over kv attended tokens (summed over sequences): KV read once,
 * q/k/v in and o out; FLOPs of QK^T and PV. */
static double ccal_sol_attn(const struct ccal *c, double qh, double kvh, double hd, double n_q, double kv_read,
                            double qk_pairs) {
  double kv_tok = 2.0 * kvh * hd * c->kv_b; /* K and V of one token, this family's heads */
  double bytes = kv_read * kv_tok + n_q * ((qh + 2 * kvh) * hd + qh * hd) * 2.0;
  double flops = 4.0 * qh * hd * qk_pairs;
  return bytes / c->bw + flops / c->rate;
}

static double ccal_sol_decode(const struct ccal *c, double qh, double kvh, double hd, double batch, double sum_att) {
  return ccal_sol_attn(c, qh, kvh, hd, batch, sum_att, sum_att);
}

/* A chunk of n_new tokens after ctx cached ones: causal, so the chunk's i-th token sees ctx + i. */
static double ccal_sol_chunk(const struct ccal *c, double qh, double kvh, double hd, double n_new, double ctx) {
  return ccal_sol_attn(c, qh, kvh, hd, n_new, ctx + n_new, n_new * (ctx + (n_new + 1) / 2.0));
}

/* Ring all-reduce at the group's bus bandwidth: 2 (n-1)/n of the bytes cross each link. Not
 * comm_allreduce_us: its protocol switches (LL / Simple / custom) are steps in bytes where real
 * NCCL's are elsewhere, and util interpolated across a step is wrong on both sides. */
static double ccal_sol_allreduce(const struct ccal *c, int stage, double bytes) {
  const struct comm_group *g = &c->tp_group[stage];
  double busbw = g->busbw_GBps > 0 ? g->busbw_GBps : 1.0; /* GB/s = bytes/ns */
  return 2.0 * (g->n_ranks - 1) / g->n_ranks * bytes / busbw;
}

/* ---- families ---- */

static double ccal_w_bytes(const struct model_spec *m, double k, double n, int quant) {
  return model_linear_bytes(m, (int64_t)k, (int64_t)n, quant);
}

static int ccal_row_key(const struct calib_meas *r, double key[3]) {
  key[0] = key[1] = key[2] = 0;
  switch (r->kind) {
  case CALIB_GEMM:
  case CALIB_MOE: key[0] = r->k, key[1] = r->n; break;
  case CALIB_ATTN_DECODE:
  case CALIB_ATTN_PREFILL: key[0] = r->qh, key[1] = r->kvh, key[2] = r->hd; break;
  case CALIB_ALLREDUCE: key[0] = r->ranks; break;
  default: return 0;
  }
  return 1;
}

static const char *ccal_model_dtype(const struct model_spec *m) {
  if (m->quant.method == MODEL_QUANT_GPTQ) return m->quant.bits == 8 ? "int8" : "int4";
  if (m->quant.method == MODEL_QUANT_FP8) return "fp8";
  return "bf16";
}

/* Does row r belong to the model's view at all (weight dtype, group size)? */
static int ccal_row_usable(const struct ccal *c, const struct calib_meas *r, const char *dtype) {
  if (r->kind == CALIB_GEMM || r->kind == CALIB_MOE) return !strcmp(r->dtype, dtype);
  if (r->kind == CALIB_ALLREDUCE) return r->ranks == c->tp;
  return r->kind == CALIB_ATTN_DECODE || r->kind == CALIB_ATTN_PREFILL;
}

/* util and keys of one row under its family's fixed shape. */
static void ccal_row_util(const struct ccal *c, const struct calib_meas *r, const double key[3], double *rk,
                          double *x, double *u) {
  *rk = 0;
  double qh = key[0] > 0 ? key[0] : c->qh, kvh = key[1] > 0 ? key[1] : c->kvh, hd = key[2] > 0 ? key[2] : c->hd;
  double sol = 0;
  switch (r->kind) {
  case CALIB_GEMM:
    sol = ccal_sol_gemm(c, r->m, ccal_w_bytes(&c->ms, r->k, r->n, c->quant), r->k, r->n);
    *x = log(r->m);
    break;
  case CALIB_MOE: {
    double w = ccal_w_bytes(&c->ms, r->k, 2 * r->n, c->quant) + ccal_w_bytes(&c->ms, r->n, r->k, c->quant);
    sol = ccal_sol_moe(c, r->rows, r->active, w, r->k, r->n);
    *x = log(r->rows);
    break;
  }
  case CALIB_ATTN_DECODE:
    sol = ccal_sol_decode(c, qh, kvh, hd, r->batch, r->batch * r->ctx);
    *rk = log(r->batch);
    *x = log(r->ctx);
    break;
  case CALIB_ATTN_PREFILL:
    sol = r->batch * ccal_sol_chunk(c, qh, kvh, hd, r->q_len, ccal_max(0, r->ctx - r->q_len));
    *x = log(r->q_len);
    break;
  case CALIB_ALLREDUCE:
    sol = ccal_sol_allreduce(c, 0, r->n_bytes);
    *x = log(r->n_bytes);
    break;
  }
  *u = log(sol / r->t_ns);
}

static int ccal_same_key(const double a[3], const double b[3]) { return a[0] == b[0] && a[1] == b[1] && a[2] == b[2]; }

static int ccal_build_fams(struct ccal *c, const struct calib_set *s) {
  const char *dtype = ccal_model_dtype(&c->ms);
  int n = s ? s->n : 0;
  c->fams = calloc((size_t)(n > 0 ? n : 1), sizeof *c->fams);
  double *rk = malloc((size_t)(n > 0 ? n : 1) * sizeof *rk), *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x),
         *u = malloc((size_t)(n > 0 ? n : 1) * sizeof *u);
  char *done = calloc((size_t)(n > 0 ? n : 1), 1);
  int rc = ERR_OK;
  if (!c->fams || !rk || !x || !u || !done) rc = err_set(ERR_NOMEM, "cost_calib: %d measurements", n);
  /* Families in order of their first row, so the build is deterministic for a given set. */
  for (int i = 0; i < n && !rc; i++) {
    const struct calib_meas *r0 = &s->rows[i];
    double key[3];
    if (done[i] || !ccal_row_key(r0, key) || !ccal_row_usable(c, r0, dtype)) continue;
    struct ccal_fam *f = &c->fams[c->n_fams];
    f->kind = r0->kind;
    memcpy(f->key, key, sizeof key);
    int np = 0;
    for (int j = i; j < n; j++) {
      const struct calib_meas *r = &s->rows[j];
      double kj[3];
      if (done[j] || r->kind != r0->kind || !ccal_row_key(r, kj) || !ccal_same_key(kj, key) ||
          !ccal_row_usable(c, r, dtype))
        continue;
      done[j] = 1;
      ccal_row_util(c, r, key, &rk[np], &x[np], &u[np]);
      if (r->kind == CALIB_ATTN_PREFILL && r->ctx > f->kv_max) f->kv_max = r->ctx;
      np++;
    }
    rc = f->kind == CALIB_ATTN_DECODE ? interp2_build(&f->u2, rk, x, u, np) : interp1_build(&f->u1, x, u, np);
    if (!rc) c->n_fams++;
  }
  free(rk), free(x), free(u), free(done);
  return rc;
}

/* Binds an op of shape `want` to the exact family, else the nearest with every nonzero fixed
 * dimension within CCAL_NEIGHBOUR_FACTOR (ties: first built), else none. For attention a family
 * of unknown heads (key 0) is the last resort. */
static struct ccal_bind ccal_bind(const struct ccal *c, int kind, const double want[3]) {
  struct ccal_bind b = {-1, 0};
  double best = INFINITY;
  int unknown = -1;
  for (int i = 0; i < c->n_fams; i++) {
    const struct ccal_fam *f = &c->fams[i];
    if (f->kind != kind) continue;
    if (ccal_same_key(f->key, want)) return (struct ccal_bind){i, 1};
    if (f->key[0] == 0 && f->key[1] == 0 && f->key[2] == 0) {
      if (unknown < 0) unknown = i;
      continue;
    }
    double d = 0;
    int ok = 1;
    for (int a = 0; a < 3; a++) {
      if (want[a] == 0 && f->key[a] == 0) continue;
      if (want[a] <= 0 || f->key[a] <= 0) { ok = 0; break; }
      double l = fabs(log(f->key[a] / want[a]));
      if (l > log(CCAL_NEIGHBOUR_FACTOR) + 1e-12) ok = 0;
      d += l;
    }
    /* attention: the head dim must match (it sets the kernel's tile shape) */
    if (ok && (kind == CALIB_ATTN_DECODE || kind == CALIB_ATTN_PREFILL) && f->key[2] != want[2]) ok = 0;
    if (ok && d < best) best = d, b.fam = i;
  }
  if (b.fam < 0 && unknown >= 0) b.fam = unknown;
  return b;
}

/* ---- evaluation ---- */

static void ccal_note(struct ccal *c, int note, double edge, double q) {
  struct ccal_note *n = &c->notes[note];
  if (n->n == 0 || (ccal_notes[note].hi ? q > n->seen : q < n->seen)) n->seen = q;
  n->edge = edge;
  n->n++;
}

/* util of a bound 1-D family at x (log key); *how and, when counting, the held-flat notes. */
static double ccal_u1(struct ccal *c, const struct ccal_bind *b, double key, int note_lo, int note_hi, int *how,
                      int count) {
  const struct ccal_fam *f = &c->fams[b->fam];
  int out = 0;
  double u = exp(interp1_eval(&f->u1, log(key), &out));
  *how = (out || !b->exact) ? CCAL_FLAT : CCAL_INSIDE;
  if (count && out) {
    if (out & INTERP_BELOW_X) ccal_note(c, note_lo, exp(f->u1.x[0]), key);
    if (out & INTERP_ABOVE_X) ccal_note(c, note_hi, exp(f->u1.x[f->u1.n - 1]), key);
  }
  return u;
}

/* The op helpers below return the calibrated time (NAN with *how = CCAL_FALLBACK when the
 * op's family has no measurement) and, through sol when not NULL, the op's speed-of-light time
 * they divide by util: the step pricer needs both. */
static double ccal_gemm(struct ccal *c, const struct ccal_bind *b, double m, double k, double n, double w, int *how,
                        int count, double *sol) {
  const double t_sol = ccal_sol_gemm(c, m, w, k, n);
  if (sol) *sol = t_sol;
  if (b->fam < 0) {
    *how = CCAL_FALLBACK;
    return NAN;
  }
  double u = ccal_u1(c, b, m, NOTE_GEMM_M_LO, NOTE_GEMM_M_HI, how, count);
  return t_sol / u;
}

static double ccal_moe(struct ccal *c, double rows, double active, int *how, int count) {
  if (c->b_moe.fam < 0) {
    *how = CCAL_FALLBACK;
    return NAN;
  }
  if (active <= 0 || rows <= 0) {
    *how = CCAL_INSIDE;
    return 0;
  }
  double u = ccal_u1(c, &c->b_moe, rows, NOTE_MOE_LO, NOTE_MOE_HI, how, count);
  return ccal_sol_moe(c, rows, active, c->w_egu + c->w_edn, c->H, c->I_rank) / u;
}

/* Decodes of a step: batch sequences attending sum_att tokens in all. */
static double ccal_decode(struct ccal *c, double batch, double sum_att, int *how, int count, double *sol) {
  const double t_sol = ccal_sol_decode(c, c->qh, c->kvh, c->hd, batch, sum_att);
  if (sol) *sol = t_sol;
  if (c->b_dec.fam < 0) {
    *how = CCAL_FALLBACK;
    return NAN;
  }
  const struct ccal_fam *f = &c->fams[c->b_dec.fam];
  double ctx = sum_att / batch;
  int out = 0;
  double u = exp(interp2_eval(&f->u2, log(batch), log(ctx), &out));
  *how = (out || !c->b_dec.exact) ? CCAL_FLAT : CCAL_INSIDE;
  if (count && out) {
    /* the edges of the nearest row (the first or last row beyond the row range) */
    int row = 0;
    while (row + 1 < f->u2.n_rows && f->u2.r[row + 1] <= log(batch)) row++;
    const struct interp1 *r = &f->u2.rows[row];
    if (out & INTERP_BELOW_X) ccal_note(c, NOTE_DEC_CTX_LO, exp(r->x[0]), ctx);
    if (out & INTERP_ABOVE_X) ccal_note(c, NOTE_DEC_CTX_HI, exp(r->x[r->n - 1]), ctx);
    if (out & INTERP_BELOW_R) ccal_note(c, NOTE_DEC_B_LO, exp(f->u2.r[0]), batch);
    if (out & INTERP_ABOVE_R) ccal_note(c, NOTE_DEC_B_HI, exp(f->u2.r[f->u2.n_rows - 1]), batch);
  }
  return t_sol / u;
}

static double ccal_chunk(struct ccal *c, double n_new, double ctx, int *how, int count, double *sol) {
  const double t_sol = ccal_sol_chunk(c, c->qh, c->kvh, c->hd, n_new, ctx);
  if (sol) *sol = t_sol;
  if (c->b_pre.fam < 0) {
    *how = CCAL_FALLBACK;
    return NAN;
  }
  const struct ccal_fam *f = &c->fams[c->b_pre.fam];
  double u = ccal_u1(c, &c->b_pre, n_new, NOTE_PRE_Q_LO, NOTE_PRE_Q_HI, how, count);
  /* measured chunks start at context 0: a chunk reaching past the longest measured context is
   * held flat in context too */
  if (ctx + n_new > f->kv_max) {
    *how = CCAL_FLAT;
    if (count) ccal_note(c, NOTE_PRE_KV_HI, f->kv_max, ctx + n_new);
  }
  return t_sol / u;
}

static double ccal_allreduce(struct ccal *c, int stage, double bytes, int *how, int count, double *sol) {
  const double t_sol = ccal_sol_allreduce(c, stage, bytes);
  if (sol) *sol = t_sol;
  if (c->b_ar.fam < 0) {
    *how = CCAL_FALLBACK;
    return NAN;
  }
  double u = ccal_u1(c, &c->b_ar, bytes, NOTE_AR_LO, NOTE_AR_HI, how, count);
  return t_sol / u;
}

static void ccal_acc_add(struct ccal_acc *a, double count, double sol, double ns, int how) {
  if (count <= 0) return;
  a->sol_all += count * sol;
  a->n[how] += count;
  if (how == CCAL_FALLBACK) a->sol_fallback += count * sol;
  else a->ns[how] += count * ns;
}

/* The term's calibrated value: measured ops plus the roofline's time (r_ns) for the share of the
 * term whose ops have no measurement. No measured op: the roofline's term unchanged. */
static double ccal_acc_finish(struct ccal *c, int cls, const struct ccal_acc *a, double r_ns) {
  struct cost_calib_stats *st = &c->st;
  if (a->n[CCAL_INSIDE] + a->n[CCAL_FLAT] == 0) {
    st->ns[cls][CCAL_FALLBACK] += r_ns;
    st->n[cls][CCAL_FALLBACK] += (int64_t)a->n[CCAL_FALLBACK];
    return r_ns;
  }
  double share = a->sol_all > 0 ? r_ns * (a->sol_fallback / a->sol_all) : 0;
  for (int h = 0; h < 2; h++) {
    st->ns[cls][h] += a->ns[h];
    st->n[cls][h] += (int64_t)a->n[h];
  }
  st->ns[cls][CCAL_FALLBACK] += share;
  st->n[cls][CCAL_FALLBACK] += (int64_t)a->n[CCAL_FALLBACK];
  return a->ns[CCAL_INSIDE] + a->ns[CCAL_FLAT] + share;
}

/* Routing-table callback: one rank's calibrated fused MoE for its local experts' counts. */
static double ccal_moe_rank_ns(const void *ctx, int n_tok, const int32_t *counts, int n_local) {
  (void)n_tok;
  struct ccal *c = (struct ccal *)ctx;
  double rows = 0, active = 0;
  for (int e = 0; e < n_local; e++)
    if (counts[e] > 0) rows += counts[e], active += 1;
  int how;
  return ccal_moe(c, rows, active, &how, 0);
}

static int64_t ccal_stage_ns(void *state, const struct cost_step *step, struct rng *rng,
                             struct cost_breakdown *bd) {
  struct ccal *c = state;
  (void)rng;
  struct cost_breakdown rb;
  struct cost_roofline_launch lp;
  memset(&rb, 0, sizeof rb);
  cost_roofline_stage_launch_ns(&c->rl, step, &rb, &lp);
  double t[COST_N_TERMS];
  for (int k = 0; k < COST_N_TERMS; k++) t[k] = (double)rb.ns[k];
  int s = step->stage < 0 ? 0 : (step->stage >= c->pp ? c->pp - 1 : step->stage);
  int T = step->n_tok, n_l = c->n_layers[s], n_moe = c->n_moe[s], n_dense = c->n_dense[s];
  int graph = !c->enforce_eager ? cost_roofline_graph_size(T) : 0;
  double Tp = graph > 0 ? graph : T; /* rows the graph-captured ops run on, as the roofline */
  int how;
  double v, sol;
  /* Kernels whose time now comes from a measurement: each op was timed alone, its own launch
   * latency inside, so the roofline's per-kernel gap is not added again for them (below). */
  double k_meas = 0;
  if (T > 0 && n_l > 0) {
    /* dense GEMMs: QKV and O every layer, gate_up and down in dense-MLP layers */
    struct ccal_acc a = {0};
    v = ccal_gemm(c, &c->b_qkv, Tp, c->H, c->qkv_n, c->w_qkv, &how, 1, &sol);
    ccal_acc_add(&a, n_l, sol, v, how);
    if (how != CCAL_FALLBACK) k_meas += lp.k_qkv;
    v = ccal_gemm(c, &c->b_o, Tp, c->o_k, c->H, c->w_o, &how, 1, &sol);
    ccal_acc_add(&a, n_l, sol, v, how);
    if (how != CCAL_FALLBACK) k_meas += lp.k_o;
    if (n_dense > 0) {
      v = ccal_gemm(c, &c->b_gu, Tp, c->H, 2 * c->dense_I, c->w_gu, &how, 1, &sol);
      ccal_acc_add(&a, n_dense, sol, v, how);
      if (how != CCAL_FALLBACK) k_meas += lp.k_gu;
      v = ccal_gemm(c, &c->b_dn, Tp, c->dense_I, c->H, c->w_dn, &how, 1, &sol);
      ccal_acc_add(&a, n_dense, sol, v, how);
      if (how != CCAL_FALLBACK) k_meas += lp.k_dn;
    }
    t[COST_DENSE_GEMM] = ccal_acc_finish(c, CCAL_GEMM, &a, t[COST_DENSE_GEMM]);

    /* attention: the decodes as one batch, each prefill chunk on its own */
    struct ccal_acc at = {0};
    double n_dec = 0, sum_att = 0;
    for (int32_t i = 0; i < step->n_reqs; i++) {
      double n_new = step->reqs[i].n_new, ctx = step->reqs[i].n_ctx;
      if (n_new == 1 && ctx > 0) {
        n_dec += 1;
        sum_att += ctx + 1;
      } else if (n_new > 0) {
        v = ccal_chunk(c, n_new, ctx, &how, 1, &sol);
        ccal_acc_add(&at, n_l, sol, v, how);
      }
    }
    if (n_dec > 0) {
      v = ccal_decode(c, n_dec, sum_att, &how, 1, &sol);
      ccal_acc_add(&at, n_l, sol, v, how);
    }
    t[COST_ATTN] = ccal_acc_finish(c, CCAL_ATTN, &at, t[COST_ATTN]);
    /* one attention kernel a layer in the roofline: its gap goes only when no part of the
     * step's attention kept the roofline's time */
    if (at.n[CCAL_FALLBACK] == 0 && at.n[CCAL_INSIDE] + at.n[CCAL_FLAT] > 0) k_meas += lp.k_attn;

    /* MoE: the most loaded rank's fused MoE (mean rank + imbalance, as the roofline splits it) */
    if (n_moe > 0) {
      double r_moe = t[COST_MOE_GEMM] + t[COST_EXPERT_IMBALANCE];
      double T_moe = Tp * (c->ep_dp ? c->dp : 1);
      if (c->have_route) {
        double mx, mean;
        moe_route_lookup(&c->route, (int)T_moe, &mx, &mean);
        double rows = T_moe * c->topk / c->ep; /* expert rows on a rank, on average */
        ccal_u1(c, &c->b_moe, rows, NOTE_MOE_LO, NOTE_MOE_HI, &how, 1); /* the coverage notes */
        t[COST_MOE_GEMM] = n_moe * mean;
        t[COST_EXPERT_IMBALANCE] = n_moe * (mx - mean);
        c->st.ns[CCAL_MOE][how] += n_moe * mx;
        c->st.n[CCAL_MOE][how] += n_moe;
        /* The measured fused MoE includes the align, SiLU*mul (fused into gate_up) and top-k sum
         * kernels, which the roofline prices under norms/misc: take its bytes for them back out. */
        double act = Tp * c->H * 2.0;
        double overlap = n_moe * (2 * Tp * c->topk * 4.0 + rows * c->I_rank * 2.0 * 3 + rows * c->H * 2.0 + act) / c->bw;
        t[COST_NORM_MISC] = ccal_max(0, t[COST_NORM_MISC] - overlap);
        k_meas += lp.k_moe; /* the same kernels: GEMMs, align/sort, SiLU*mul, weighted sum */
      } else {
        c->st.ns[CCAL_MOE][CCAL_FALLBACK] += r_moe;
        c->st.n[CCAL_MOE][CCAL_FALLBACK] += n_moe;
      }
    }

    /* all-reduces over the TP group: one per layer after attention, one per MoE / dense MLP
     * layer, one for the embedding on the first stage (as the roofline) */
    if (c->tp > 1) {
      struct ccal_acc ar = {0};
      double act = Tp * c->H * 2.0;
      double n_ar = n_l + n_moe + n_dense + (s == 0 ? 1 : 0);
      v = ccal_allreduce(c, s, act, &how, 1, &sol);
      ccal_acc_add(&ar, n_ar, sol, v, how);
      t[COST_ALLREDUCE] = ccal_acc_finish(c, CCAL_ALLREDUCE, &ar, t[COST_ALLREDUCE]);
    }
  }
  /* Launch term, rebuilt as the roofline builds it (cost_roofline.h) with the measured ops'
   * gaps left out: the gaps of the kernels still priced by the roofline (norms, router, top-k,
   * embedding, fallback ops), the host dispatch time beyond the GPU's (now the calibrated GPU
   * time), lm_head gaps and vLLM's per-step and per-request CPU time. All-reduces carry no gap
   * in the roofline. Nothing measured: the roofline's term exactly (same expression). */
  double gpu = lp.gpu_ns;
  for (int k = 0; k < COST_N_TERMS; k++)
    if (k != COST_LAUNCH) gpu += t[k] - (double)rb.ns[k]; /* lm_head / PP terms are unchanged */
  double launch = (lp.k_all - k_meas) * lp.gap_ns;
  if (lp.host_ns > gpu + launch) launch += lp.host_ns - (gpu + launch);
  t[COST_LAUNCH] = launch + lp.fixed_ns;
  int64_t total = 0;
  for (int k = 0; k < COST_N_TERMS; k++) {
    int64_t x = (int64_t)llround(t[k]);
    total += x;
    if (bd) bd->ns[k] += x;
    if (k != COST_ATTN && k != COST_DENSE_GEMM && k != COST_MOE_GEMM && k != COST_EXPERT_IMBALANCE &&
        k != COST_ALLREDUCE)
      c->st.other_ns += x;
  }
  return total;
}

/* ---- create / destroy ---- */

static void ccal_destroy(void *state) {
  struct ccal *c = state;
  if (!c) return;
  cost_destroy(&c->rl);
  for (int i = 0; i < c->n_fams; i++) {
    interp1_free(&c->fams[i].u1);
    interp2_free(&c->fams[i].u2);
  }
  free(c->fams);
  if (c->have_route) moe_route_table_free(&c->route);
  free(c->n_layers);
  free(c->n_moe);
  free(c->n_dense);
  free(c->tp_group);
  free(c);
}

/* Appends one reason to an op class's line (two at most: enough to say what to measure). */
static void ccal_why(char *buf, size_t len, const char *one) {
  size_t l = strlen(buf);
  if (strstr(buf, "; ") || strstr(buf, one)) return;
  snprintf(buf + l, len - l, "%s%s", l ? "; " : "", one);
}

static void ccal_bind_gemm(struct ccal *c, struct ccal_bind *b, double k, double n, const char *what) {
  double want[3] = {k, n, 0};
  *b = ccal_bind(c, CALIB_GEMM, want);
  char one[160];
  if (b->fam < 0) {
    snprintf(one, sizeof one, "no %s gemm rows for %.0fx%.0f (%s)", ccal_model_dtype(&c->ms), k, n, what);
    ccal_why(c->why[CCAL_GEMM], sizeof c->why[0], one);
  } else if (!b->exact && !c->shape_note[CCAL_GEMM][0]) {
    snprintf(c->shape_note[CCAL_GEMM], sizeof c->shape_note[0], "%s %.0fx%.0f from the nearest measured shape %.0fx%.0f",
             what, k, n, c->fams[b->fam].key[0], c->fams[b->fam].key[1]);
  }
}

int cost_calib_create(const struct model_spec *m, const struct hw_spec *h, const struct layout *l,
                      const struct engine *e, const struct calib_set *set,
                      const struct cost_roofline_opts *ro, struct cost_model *out) {
  memset(out, 0, sizeof *out);
  struct cost_roofline_opts def;
  if (!ro) {
    cost_roofline_opts_default(&def);
    ro = &def;
  }
  struct ccal *c = calloc(1, sizeof *c);
  if (!c) return err_set(ERR_NOMEM, "cost_calib: state");
  int rc = cost_roofline_create(m, h, l, e, ro, &c->rl);
  if (rc) {
    free(c);
    return rc;
  }
  c->ms = *m;
  struct layout_rank r; /* the same per-rank widths as the roofline underneath */
  layout_rank_init(m, l, &r);
  const int tp = r.tp, pp = r.pp, dp = r.dp;
  c->tp = tp, c->pp = pp, c->dp = dp;
  c->H = r.H;
  c->hd = r.hd;
  c->qh = r.qh;
  c->kvh = r.kvh;
  c->qkv_n = r.qkv_n;
  c->o_k = r.o_k;
  c->dense_I = r.dense_I;
  c->quant = m->quant.method != MODEL_QUANT_NONE;
  int moe = model_is_moe(m);
  c->ep = r.ep;
  c->ep_dp = r.ep_dp;
  c->E = r.E;
  c->topk = r.topk;
  c->I_rank = r.I_rank;
  c->w_qkv = ccal_w_bytes(m, c->H, c->qkv_n, c->quant);
  c->w_o = ccal_w_bytes(m, c->o_k, c->H, c->quant);
  c->w_gu = ccal_w_bytes(m, c->H, 2 * c->dense_I, c->quant);
  c->w_dn = ccal_w_bytes(m, c->dense_I, c->H, c->quant);
  c->w_egu = ccal_w_bytes(m, c->H, 2 * c->I_rank, c->quant);
  c->w_edn = ccal_w_bytes(m, c->I_rank, c->H, c->quant);
  int kv_b = e->kv_dtype_bytes > 0 ? e->kv_dtype_bytes : m->dtype_bytes;
  c->kv_b = kv_b;
  c->bw = h->hbm_GBps * (h->hbm_eff > 0 ? h->hbm_eff : 0.85);
  c->rate = h->tflops_bf16 * 1e3 * (h->mma_eff > 0 ? h->mma_eff : 0.7);
  if (m->quant.method == MODEL_QUANT_FP8 && h->tflops_fp8 > 0)
    c->rate = h->tflops_fp8 * 1e3 * (h->mma_eff > 0 ? h->mma_eff : 0.7);
  c->enforce_eager = e->enforce_eager;
  c->n_layers = calloc((size_t)pp, sizeof *c->n_layers);
  c->n_moe = calloc((size_t)pp, sizeof *c->n_moe);
  c->n_dense = calloc((size_t)pp, sizeof *c->n_dense);
  c->tp_group = calloc((size_t)pp, sizeof *c->tp_group);
  if (!c->n_layers || !c->n_moe || !c->n_dense || !c->tp_group) {
    rc = err_set(ERR_NOMEM, "cost_calib: stages");
    goto fail;
  }
  for (int s = 0; s < pp; s++) {
    layout_stage_counts(m, pp, s, &c->n_layers[s], &c->n_moe[s], &c->n_dense[s]);
    comm_group_init(&c->tp_group[s], h, s * tp, tp); /* replica 0's GPUs, as the roofline */
  }
  if ((rc = ccal_build_fams(c, set))) goto fail;

  /* bind the layout's ops */
  ccal_bind_gemm(c, &c->b_qkv, c->H, c->qkv_n, "qkv");
  ccal_bind_gemm(c, &c->b_o, c->o_k, c->H, "o_proj");
  int any_dense = 0;
  for (int s = 0; s < pp; s++) any_dense |= c->n_dense[s] > 0;
  if (any_dense) {
    ccal_bind_gemm(c, &c->b_gu, c->H, 2 * c->dense_I, "mlp gate_up");
    ccal_bind_gemm(c, &c->b_dn, c->dense_I, c->H, "mlp down");
  } else {
    c->b_gu.fam = c->b_dn.fam = -1;
  }
  double want_moe[3] = {c->H, c->I_rank, 0};
  c->b_moe = moe ? ccal_bind(c, CALIB_MOE, want_moe) : (struct ccal_bind){-1, 0};
  if (moe && c->b_moe.fam >= 0 && !c->b_moe.exact)
    snprintf(c->shape_note[CCAL_MOE], sizeof c->shape_note[0], "moe width %.0f from the nearest measured %.0f",
             c->I_rank, c->fams[c->b_moe.fam].key[1]);
  if (moe && c->b_moe.fam < 0)
    snprintf(c->why[CCAL_MOE], sizeof c->why[0], "no %s moe rows for hidden %.0f, expert width %.0f per rank",
             ccal_model_dtype(m), c->H, c->I_rank);
  double want_attn[3] = {c->qh, c->kvh, c->hd};
  c->b_dec = ccal_bind(c, CALIB_ATTN_DECODE, want_attn);
  c->b_pre = ccal_bind(c, CALIB_ATTN_PREFILL, want_attn);
  if (c->b_dec.fam < 0 && c->b_pre.fam < 0)
    snprintf(c->why[CCAL_ATTN], sizeof c->why[0], "no attention rows for head dim %.0f", c->hd);
  else if (c->b_dec.fam < 0)
    snprintf(c->why[CCAL_ATTN], sizeof c->why[0], "no decode attention rows for head dim %.0f", c->hd);
  else if (c->b_pre.fam < 0)
    snprintf(c->why[CCAL_ATTN], sizeof c->why[0], "no prefill attention rows for head dim %.0f", c->hd);
  int fa = c->b_dec.fam >= 0 && !c->b_dec.exact ? c->b_dec.fam : (c->b_pre.fam >= 0 && !c->b_pre.exact ? c->b_pre.fam : -1);
  if (fa >= 0) {
    if (c->fams[fa].key[0] == 0)
      snprintf(c->shape_note[CCAL_ATTN], sizeof c->shape_note[0], "attention rows of a model with unknown heads");
    else
      snprintf(c->shape_note[CCAL_ATTN], sizeof c->shape_note[0],
               "attention %.0f/%.0f heads per rank from the measured %.0f/%.0f", c->qh, c->kvh, c->fams[fa].key[0],
               c->fams[fa].key[1]);
  }
  double want_ar[3] = {tp, 0, 0};
  c->b_ar = tp > 1 ? ccal_bind(c, CALIB_ALLREDUCE, want_ar) : (struct ccal_bind){-1, 0};
  if (tp > 1 && c->b_ar.fam < 0)
    snprintf(c->why[CCAL_ALLREDUCE], sizeof c->why[0], "no allreduce rows for %d ranks", tp);

  if (moe && c->b_moe.fam >= 0) {
    /* the same routing model and grid as the roofline's table, priced with calibrated ranks */
    struct moe_route_cfg rc_cfg = {.n_experts = c->E, .top_k = c->topk, .n_ranks = c->ep,
                                   .skew = ro->route_skew, .seed = ro->route_seed,
                                   .samples = ro->route_samples > 0 ? ro->route_samples : 48};
    int max_tok = e->max_num_batched_tokens > 0 ? e->max_num_batched_tokens : 8192;
    if (max_tok < CCAL_GRAPH_MAX) max_tok = CCAL_GRAPH_MAX;
    max_tok *= c->ep_dp ? dp : 1;
    if ((rc = moe_route_table_build(&c->route, &rc_cfg, max_tok, ccal_moe_rank_ns, c))) goto fail;
    c->have_route = 1;
  }
  if (set) calib_set_describe(set, c->source, sizeof c->source);
  out->name = "calibrated";
  out->state = c;
  out->stage_ns = ccal_stage_ns;
  out->destroy = ccal_destroy;
  return ERR_OK;
fail:
  ccal_destroy(c);
  return rc;
}

int cost_calib_create_db(const struct model_spec *m, const struct hw_spec *h, const struct layout *l,
                         const struct engine *e, const char *db_path,
                         const struct cost_roofline_opts *ro, struct cost_model *out) {
  struct calib_set s;
  int rc = calib_set_load(&s, db_path, h);
  if (rc) {
    memset(out, 0, sizeof *out);
    return rc;
  }
  rc = cost_calib_create(m, h, l, e, &s, ro, out);
  calib_set_free(&s);
  return rc;
}

/* ---- counters and the report line ---- */

static struct ccal *ccal_of(const struct cost_model *cm) {
  return cm && cm->stage_ns == ccal_stage_ns ? (struct ccal *)cm->state : NULL;
}

int cost_calib_stats(const struct cost_model *cm, struct cost_calib_stats *out) {
  const struct ccal *c = ccal_of(cm);
  if (!c) return err_set(ERR_INPUT, "cost_calib_stats: not a calibrated cost model");
  *out = c->st;
  return ERR_OK;
}

void cost_calib_stats_reset(struct cost_model *cm) {
  struct ccal *c = ccal_of(cm);
  if (!c) return;
  memset(&c->st, 0, sizeof c->st);
  memset(c->notes, 0, sizeof c->notes);
}

const char *cost_calib_source(const struct cost_model *cm) {
  const struct ccal *c = ccal_of(cm);
  return c ? c->source : "";
}

static void ccal_cat(char *buf, int len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ccal_cat(char *buf, int len, const char *fmt, ...) {
  size_t l = strlen(buf);
  if ((int)l >= len - 1) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + l, (size_t)len - l, fmt, ap);
  va_end(ap);
}

/* A fraction as a whole percentage, "<1%" / ">99%" rather than a rounded 0% or 100% that is not. */
static void ccal_pct(char out[16], double f) {
  double p = 100 * f;
  if (p > 0 && p < 0.5) snprintf(out, 16, "<1%%");
  else if (p < 100 && p > 99.5) snprintf(out, 16, ">99%%");
  else snprintf(out, 16, "%.0f%%", p);
}

void cost_calib_summary(const struct cost_model *cm, char *buf, int len) {
  if (len <= 0) return;
  buf[0] = '\0';
  const struct ccal *c = ccal_of(cm);
  if (!c) return;
  const struct cost_calib_stats *st = &c->st;
  double tot[3] = {0, 0, 0};
  for (int k = 0; k < CCAL_N_OPS; k++)
    for (int h = 0; h < 3; h++) tot[h] += st->ns[k][h];
  double all = tot[0] + tot[1] + tot[2];
  if (all <= 0) {
    ccal_cat(buf, len, "calibrated: no op priced yet");
    return;
  }
  char p_meas[16], p_in[16], p_flat[16], p_fb[16];
  ccal_pct(p_meas, (tot[0] + tot[1]) / all), ccal_pct(p_in, tot[0] / all), ccal_pct(p_flat, tot[1] / all);
  ccal_pct(p_fb, tot[2] / all);
  ccal_cat(buf, len, "calibrated: %s of op time from measurements (%s inside the measured range, %s held flat "
                     "beyond it), %s roofline fallback",
           p_meas, p_in, p_flat, p_fb);
  /* why: the classes that fell back, largest first */
  int first = 1;
  for (int k = 0; k < CCAL_N_OPS; k++) {
    if (st->ns[k][CCAL_FALLBACK] <= 0) continue;
    double part = st->ns[k][CCAL_FALLBACK] / (st->ns[k][0] + st->ns[k][1] + st->ns[k][2]);
    const char *why = c->why[k][0] ? c->why[k] : "part of the term has no measured op";
    char p[16];
    ccal_pct(p, part);
    ccal_cat(buf, len, "%s%s %s: %s", first ? " (" : "; ", cost_calib_op_names[k], p, why);
    first = 0;
  }
  if (!first) ccal_cat(buf, len, ")");
  first = 1;
  for (int i = 0; i < NOTE_N; i++) {
    const struct ccal_note *n = &c->notes[i];
    if (n->n == 0) continue;
    ccal_cat(buf, len, "%s%s %s %.0f (to %.0f)", first ? "; held flat: " : ", ", ccal_notes[i].what,
             ccal_notes[i].hi ? ">" : "<", n->edge, n->seen);
    first = 0;
  }
  for (int k = 0; k < CCAL_N_OPS; k++)
    if (c->shape_note[k][0]) ccal_cat(buf, len, "%s%s", first ? "; held flat: " : ", ", c->shape_note[k]), first = 0;
  double step = all + st->other_ns;
  char p_other[16];
  ccal_pct(p_other, step > 0 ? st->other_ns / step : 0);
  ccal_cat(buf, len, "; roofline-only terms (host, launch, norms, lm_head, PP, all-to-all): %s of step time", p_other);
}

/* ---- single-op prices ---- */

double cost_calib_gemm_ns(const struct cost_model *cm, double m, double k, double n, int *how) {
  struct ccal *c = ccal_of(cm);
  int h = CCAL_FALLBACK;
  double v = NAN;
  if (c && m > 0) {
    const struct ccal_bind *b = NULL;
    if (k == c->H && n == c->qkv_n) b = &c->b_qkv;
    else if (k == c->o_k && n == c->H) b = &c->b_o;
    else if (k == c->H && n == 2 * c->dense_I) b = &c->b_gu;
    else if (k == c->dense_I && n == c->H) b = &c->b_dn;
    struct ccal_bind any = {-1, 0};
    if (!b || b->fam < 0) {
      /* a shape the layout does not run: bind it the same way, without counting */
      double want[3] = {k, n, 0};
      any = ccal_bind(c, CALIB_GEMM, want);
      b = &any;
    }
    if (b->fam >= 0) {
      v = ccal_gemm(c, b, m, k, n, ccal_w_bytes(&c->ms, k, n, c->quant), &h, 0, NULL);
    }
  }
  if (how) *how = h;
  return v;
}

double cost_calib_moe_ns(const struct cost_model *cm, double rows, double active, int *how) {
  struct ccal *c = ccal_of(cm);
  int h = CCAL_FALLBACK;
  double v = c ? ccal_moe(c, rows, active, &h, 0) : NAN;
  if (how) *how = h;
  return v;
}

double cost_calib_attn_decode_ns(const struct cost_model *cm, double batch, double ctx, int *how) {
  struct ccal *c = ccal_of(cm);
  int h = CCAL_FALLBACK;
  double v = c && batch > 0 && ctx > 0 ? ccal_decode(c, batch, batch * ctx, &h, 0, NULL) : NAN;
  if (how) *how = h;
  return v;
}

double cost_calib_attn_prefill_ns(const struct cost_model *cm, double n_new, double ctx, int *how) {
  struct ccal *c = ccal_of(cm);
  int h = CCAL_FALLBACK;
  double v = c && n_new > 0 && ctx >= 0 ? ccal_chunk(c, n_new, ctx, &h, 0, NULL) : NAN;
  if (how) *how = h;
  return v;
}

double cost_calib_allreduce_ns(const struct cost_model *cm, double n_bytes, int *how) {
  struct ccal *c = ccal_of(cm);
  int h = CCAL_FALLBACK;
  double v = c && n_bytes > 0 ? ccal_allreduce(c, 0, n_bytes, &h, 0, NULL) : NAN;
  if (how) *how = h;
  return v;
}
