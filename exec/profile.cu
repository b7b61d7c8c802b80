/* profile: per-op and per-step timings of the live engine into records (see profile.h). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/err.h"
#include "common/rng.h"
}
#include "exec/engine_int.h"
#include "exec/profile.h"
#include "kernels/kernels.h"

#define PROF_MAX_REPS 64

int prof_max_seqs(const prof_job *j) { return 64; }
int prof_max_ctx(const prof_job *j) { return j->quick ? 2048 + 16 : 4096 + 16; }
int prof_max_tok(const prof_job *j) { return 8192; }

/* Times fn() reps times (after one warm-up) with CUDA events on e's stream; fills m's stats. */
template <typename F>
static int prof_time(eng *e, int reps, rec_meas *m, F fn) {
  cudaEvent_t a, b;
  ENG_CUDA(cudaEventCreate(&a));
  ENG_CUDA(cudaEventCreate(&b));
  double us[PROF_MAX_REPS];
  if (reps > PROF_MAX_REPS) reps = PROF_MAX_REPS;
  int rc = fn();
  for (int i = 0; i < reps && !rc; i++) {
    cudaEventRecord(a, e->stream);
    rc = fn();
    cudaEventRecord(b, e->stream);
    if (!rc) {
      cudaError_t ce = cudaEventSynchronize(b);
      if (ce != cudaSuccess) rc = err_set(ERR_DEVICE, "profile: %s", cudaGetErrorString(ce));
      float ms = 0;
      cudaEventElapsedTime(&ms, a, b);
      us[i] = ms * 1e3;
    }
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  if (rc) return rc;
  rec_stats(us, reps, &m->med_us, &m->p10_us, &m->p90_us);
  m->count = reps;
  return ERR_OK;
}

static int prof_add(prof_job *j, int rank, const rec_meas *m) { return rank == 0 ? rec_add(&j->rec, m) : ERR_OK; }

static int prof_gemms(prof_job *j, int rank, eng *e, int reps) {
  const wt_dims *d = &e->d;
  const gw_layer *L = &e->w.layers[0];
  static const int Ms[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
  static const int Mq[] = {1, 16, 64, 256, 1024, 4096};
  const int *ms = j->quick ? Mq : Ms;
  int n_m = j->quick ? 6 : 14;
  kern_stream_t s = (kern_stream_t)e->stream;
  for (int i = 0; i < n_m; i++) {
    int M = ms[i];
    /* the step's own buffers: qkv reads h [M, H] into qkv [M, qkv_n]; o_proj attn -> delta */
    struct {
      const char *op;
      const int32_t *q;
      const bf16_t *sc;
      int K, N;
      bf16_t *y;
      const bf16_t *x;
    } g[2] = {{"qkv", L->qkv_q, L->qkv_s, d->hidden, d->qkv_n, e->qkv, e->h},
              {"o_proj", L->o_q, L->o_s, d->hq_loc * d->head_dim, d->hidden, e->delta, e->attn}};
    for (int k = 0; k < 2; k++) {
      rec_meas m;
      rec_meas_init(&m, "gemm", g[k].op, "w4a16", "int4");
      m.m = M, m.n = g[k].N, m.k = g[k].K;
      ENG_TRY(prof_time(e, reps, &m, [&] {
        return kern_w4a16_gemm(g[k].y, g[k].x, g[k].q, g[k].sc, M, g[k].K, g[k].N, e->gemm_ws, e->gemm_ws_bytes, s);
      }));
      ENG_TRY(prof_add(j, rank, &m));
    }
    if (M <= 256) {
      rec_meas m;
      rec_meas_init(&m, "gemm", "lm_head", "cublas-bf16", "bf16");
      int Ml = M > e->kv.max_seqs ? e->kv.max_seqs : M;
      m.m = Ml, m.n = d->v_loc, m.k = d->hidden;
      ENG_TRY(prof_time(e, reps, &m, [&] {
        return kern_linear_bf16((kern_blas_t)e->blas, e->logits, e->sel, e->w.lm_head, Ml, d->hidden, d->v_loc, s);
      }));
      ENG_TRY(prof_add(j, rank, &m));
      rec_meas_init(&m, "gemm", "router", "cublas-bf16", "bf16");
      m.m = M, m.n = d->n_experts, m.k = d->hidden;
      ENG_TRY(prof_time(e, reps, &m, [&] {
        return kern_linear_bf16((kern_blas_t)e->blas, e->rlogits, e->h, L->router, M, d->hidden, d->n_experts, s);
      }));
      ENG_TRY(prof_add(j, rank, &m));
      if (e->router_gemv && M <= ENG_GEMV_MAX_T) {
        rec_meas_init(&m, "gemm", "router", "exec-gemv", "bf16");
        m.m = M, m.n = d->n_experts, m.k = d->hidden;
        ENG_TRY(prof_time(e, reps, &m, [&] { return eng_router(e, L->router, M, s); }));
        ENG_TRY(prof_add(j, rank, &m));
      }
    }
  }
  return ERR_OK;
}

/* The fused MoE on T tokens with host-made routing: concentrated = every token on experts
 * 0..k-1 (tokens per expert = T), else k distinct uniform experts per token. */
static int prof_moe(prof_job *j, int rank, eng *e, int reps) {
  const wt_dims *d = &e->d;
  const gw_layer *L = &e->w.layers[0];
  static const int Ts[] = {1, 4, 16, 64, 256, 1024, 4096, 8192};
  static const int Tq[] = {1, 16, 256, 4096};
  const int *ts = j->quick ? Tq : Ts;
  int n_t = j->quick ? 4 : 8, k = d->top_k, E = d->n_experts;
  int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)8192 * k);
  float *w = (float *)malloc(sizeof(float) * (size_t)8192 * k);
  int *hit = (int *)calloc((size_t)E, sizeof(int));
  if (!ids || !w || !hit) {
    free(ids), free(w), free(hit);
    return err_set(ERR_NOMEM, "out of memory");
  }
  kern_stream_t s = (kern_stream_t)e->stream;
  int rc = ERR_OK;
  for (int i = 0; i < n_t && !rc; i++) {
    int T = ts[i];
    if (T > e->cfg.max_tok) continue;
    for (int conc = 0; conc < 2 && !rc; conc++) {
      struct rng r;
      rng_seed(&r, 1000 + T);
      memset(hit, 0, sizeof(int) * (size_t)E);
      for (int t = 0; t < T; t++)
        for (int a = 0; a < k; a++) {
          int ex = a;
          if (!conc) {
            int dup;
            do {   /* k distinct experts per token */
              ex = (int)rng_range(&r, 0, E - 1);
              dup = 0;
              for (int b = 0; b < a; b++) dup |= ids[t * k + b] == ex;
            } while (dup);
          }
          ids[t * k + a] = ex;
          w[t * k + a] = 1.0f / k;
          hit[ex]++;
        }
      int active = 0;
      for (int x = 0; x < E; x++) active += hit[x] > 0;
      cudaMemcpy(e->topk_ids, ids, sizeof(int32_t) * (size_t)T * k, cudaMemcpyHostToDevice);
      cudaError_t ce = cudaMemcpy(e->topk_w, w, sizeof(float) * (size_t)T * k, cudaMemcpyHostToDevice);
      if (ce == cudaSuccess) ce = cudaDeviceSynchronize();   /* e->stream is non-blocking */
      if (ce != cudaSuccess) {
        rc = err_set(ERR_DEVICE, "profile moe upload: %s", cudaGetErrorString(ce));
        break;
      }
      rec_meas m;
      rec_meas_init(&m, "moe", conc ? "fused_moe_concentrated" : "fused_moe", "w4a16", "int4");
      m.tokens = T, m.experts = E, m.topk = k, m.k = d->hidden, m.n = d->inter_loc;
      m.tokens_per_expert = (double)T * k / active;
      snprintf(m.extra, sizeof m.extra, "{\"active_experts\":%d,\"routing\":\"%s\"}", active,
               conc ? "all tokens on experts 0..k-1" : "uniform, k distinct per token");
      rc = prof_time(e, reps, &m, [&] {
        int r2;
        if ((r2 = kern_moe_align(e->expert_off, e->sorted_pair, e->pair_row, e->topk_ids, T, k, 0, E, NULL, s)) ||
            (r2 = kern_moe_w4a16_gate_up_silu(e->hmid, e->h, L->w13_q, L->w13_s, e->expert_off, e->sorted_pair, T, k,
                                              d->hidden, d->inter_loc, E, e->ymoe, s)) ||
            (r2 = kern_moe_w4a16_down(e->ymoe, e->hmid, L->w2_q, L->w2_s, e->expert_off, T, k, d->inter_loc,
                                      d->hidden, E, s)))
          return r2;
        return kern_moe_combine(e->delta, e->ymoe, e->pair_row, e->topk_w, T, k, d->hidden, s);
      });
      if (!rc) rc = prof_add(j, rank, &m);
    }
  }
  free(ids), free(w), free(hit);
  return rc;
}

/* Uploads per-token (seq, position) for an attention call: batch sequences, q_len tokens each
 * ending at position ctx - 1. */
static int prof_attn_inputs(eng *e, int batch, int q_len, int ctx) {
  int T = batch * q_len;
  int32_t *h = (int32_t *)malloc(sizeof(int32_t) * 2 * (size_t)T);
  if (!h) return err_set(ERR_NOMEM, "out of memory");
  for (int s = 0; s < batch; s++)
    for (int i = 0; i < q_len; i++) {
      h[s * q_len + i] = s;
      h[T + s * q_len + i] = ctx - q_len + i;
    }
  cudaMemcpy(e->token_seq, h, sizeof(int32_t) * (size_t)T, cudaMemcpyHostToDevice);
  cudaError_t ce = cudaMemcpy(e->positions, h + T, sizeof(int32_t) * (size_t)T, cudaMemcpyHostToDevice);
  if (ce == cudaSuccess) ce = cudaDeviceSynchronize();   /* e->stream is non-blocking */
  free(h);
  return ce == cudaSuccess ? ERR_OK : err_set(ERR_DEVICE, "profile attention upload: %s", cudaGetErrorString(ce));
}

static int prof_attention(prof_job *j, int rank, eng *e, int reps) {
  const wt_dims *d = &e->d;
  kern_stream_t s = (kern_stream_t)e->stream;
  static const int Bs[] = {1, 4, 16, 64};
  static const int Cs[] = {128, 512, 1024, 2048, 4096};
  int n_c = j->quick ? 4 : 5;
  float scale = 1.0f / sqrtf((float)d->head_dim);
  for (int bi = 0; bi < 4; bi++)
    for (int ci = 0; ci < n_c; ci++) {
      int B = Bs[bi], C = Cs[ci];
      if (B > e->kv.max_seqs || C > e->cap_ctx) continue;
      ENG_TRY(prof_attn_inputs(e, B, 1, C));
      rec_meas m;
      rec_meas_init(&m, "attention", "decode", "paged", "bf16");
      m.batch = B, m.ctx_len = C, m.q_len = 1, m.tokens = B;
      ENG_TRY(prof_time(e, reps, &m, [&] {
        return kern_attn_paged(e->attn, e->qkv, e->k_cache, e->v_cache, e->block_tables, e->kv.max_blocks,
                               e->token_seq, e->positions, B, d->hq_loc, d->hkv_loc, d->head_dim, C, scale,
                               e->attn_ws, e->attn_ws_bytes, s);
      }));
      ENG_TRY(prof_add(j, rank, &m));
    }
  static const int Qs[] = {256, 1024, 2048, 4096};
  for (int qi = 0; qi < 4; qi++) {
    int Q = Qs[qi];
    if (Q > e->cap_ctx || Q > e->cfg.max_tok) continue;
    ENG_TRY(prof_attn_inputs(e, 1, Q, Q));
    rec_meas m;
    rec_meas_init(&m, "attention", "prefill", "paged", "bf16");
    m.batch = 1, m.ctx_len = Q, m.q_len = Q, m.tokens = Q;
    ENG_TRY(prof_time(e, reps / 2 > 2 ? reps / 2 : 3, &m, [&] {
      return kern_attn_paged(e->attn, e->qkv, e->k_cache, e->v_cache, e->block_tables, e->kv.max_blocks, e->token_seq,
                             e->positions, Q, d->hq_loc, d->hkv_loc, d->head_dim, Q, scale, e->attn_ws,
                             e->attn_ws_bytes, s);
    }));
    ENG_TRY(prof_add(j, rank, &m));
  }
  return ERR_OK;
}

static int prof_allreduce(prof_job *j, int rank, eng *e, comm *c, int reps) {
  if (c->size < 2) return ERR_OK;
  int64_t cap = (int64_t)e->cfg.max_tok * e->d.top_k * e->d.hidden * 2;   /* ymoe's bytes */
  for (int64_t bytes = 8192; bytes <= ((int64_t)256 << 20) && bytes <= cap; bytes *= 4) {
    rec_meas m;
    rec_meas_init(&m, "allreduce", "allreduce", "nccl", "bf16");
    m.n_bytes = bytes, m.ranks = c->size;
    ENG_TRY(prof_time(e, reps, &m, [&] { return comm_allreduce_bf16(c, e->ymoe, (size_t)bytes / 2, e->stream); }));
    ENG_TRY(prof_add(j, rank, &m));
  }
  /* one token's hidden state: what a batch-1 decode step all-reduces twice per layer */
  rec_meas m;
  rec_meas_init(&m, "allreduce", "allreduce", "nccl", "bf16");
  m.n_bytes = (int64_t)e->d.hidden * 2, m.ranks = c->size;
  snprintf(m.extra, sizeof m.extra, "{\"what\":\"one token's hidden state\"}");
  ENG_TRY(prof_time(e, reps * 2, &m, [&] { return comm_allreduce_bf16(c, e->ymoe, (size_t)e->d.hidden, e->stream); }));
  if (rank == 0) j->allreduce_small_us = m.med_us;
  return prof_add(j, rank, &m);
}

static int prof_hbm(prof_job *j, int rank, eng *e) {
  /* device copy of 1 GiB (or what the ymoe buffer holds): read + write bytes over time */
  int64_t cap = (int64_t)e->cfg.max_tok * e->d.top_k * e->d.hidden * 2 / 2;
  int64_t bytes = cap < ((int64_t)1 << 30) ? cap : ((int64_t)1 << 30);
  uint8_t *src = (uint8_t *)e->ymoe, *dst = src + bytes;
  rec_meas m;
  rec_meas_init(&m, "p2p", "hbm_copy", "cudaMemcpy", "bf16");
  m.n_bytes = bytes;
  ENG_TRY(prof_time(e, 10, &m, [&] {
    cudaError_t ce = cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyDeviceToDevice, e->stream);
    return ce == cudaSuccess ? ERR_OK : err_set(ERR_DEVICE, "%s", cudaGetErrorString(ce));
  }));
  if (rank == 0) j->hbm_copy_GBps = 2.0 * bytes / (m.med_us * 1e-6) / 1e9;
  return ERR_OK;
}

/* Whole steps through eng_step: real forward passes (their routing feeds the expert hits). */
static int prof_steps(prof_job *j, int rank, eng *e, int reps) {
  int cap = e->cfg.max_tok, V = e->d.vocab;
  batch b;
  ENG_TRY(batch_init(&b, cap));
  int32_t *tok = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap), *next = (int32_t *)malloc(sizeof(int32_t) * 64);
  batch_chunk ch[64];
  if (!tok || !next) {
    batch_free(&b);
    free(tok), free(next);
    return err_set(ERR_NOMEM, "out of memory");
  }
  for (int i = 0; i < cap; i++) tok[i] = (i * 7919 + 13) % V;
  int rc = ERR_OK;
  struct shape {
    const char *op;
    int n_prefill, prefill_len, n_decode, ctx;
  };
  const shape shapes[] = {
      {"prefill", 1, 1024, 0, 0},  {"prefill", 1, 4096, 0, 0},   {"prefill", 8, 1024, 0, 0},
      {"decode", 0, 0, 1, 1024},   {"decode", 0, 0, 16, 1024},   {"decode", 0, 0, 64, 1024},
      {"decode", 0, 0, 64, 2048},  {"mixed", 1, 512, 32, 1024},  {"mixed", 1, 2048, 63, 1024},
  };
  eng_reset_hits(e);
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0] && !rc; si++) {
    const shape *sh = &shapes[si];
    if (sh->n_prefill * sh->prefill_len + sh->n_decode > cap || sh->n_prefill + sh->n_decode > e->kv.max_seqs ||
        sh->prefill_len > e->cap_ctx || sh->ctx > e->cap_ctx)
      continue;
    int n = 0;
    for (int p = 0; p < sh->n_prefill; p++) ch[n++] = batch_chunk{p, 0, sh->prefill_len, tok + p * 16, 1};
    for (int q = 0; q < sh->n_decode; q++) ch[n++] = batch_chunk{sh->n_prefill + q, sh->ctx - 1, 1, tok + q, 1};
    if ((rc = batch_build(&b, &e->kv, ch, n))) break;
    double ms[PROF_MAX_REPS];
    int r = sh->n_prefill ? (reps / 4 > 3 ? reps / 4 : 3) : reps;
    if ((rc = eng_step(e, &b, next, NULL))) break;   /* warm-up (graph capture for decode) */
    for (int i = 0; i < r && !rc; i++) {
      rc = eng_step(e, &b, next, NULL);
      ms[i] = eng_last_step_ms(e) * 1e3;
    }
    if (rc) break;
    rec_meas m;
    rec_meas_init(&m, "step", sh->op, sh->n_prefill ? "exec" : "exec-graph", "int4");
    m.batch = sh->n_prefill + sh->n_decode;
    m.tokens = b.n_tok;
    m.ctx_len = sh->n_prefill ? sh->prefill_len : sh->ctx;
    m.q_len = sh->n_prefill ? sh->prefill_len : 1;
    rec_stats(ms, r, &m.med_us, &m.p10_us, &m.p90_us);
    m.count = r;
    snprintf(m.extra, sizeof m.extra,
             "{\"prefill_chunks\":%d,\"prefill_len\":%d,\"decodes\":%d,\"decode_ctx\":%d,\"timing\":\"cuda events around eng_step\"}",
             sh->n_prefill, sh->prefill_len, sh->n_decode, sh->ctx);
    rc = prof_add(j, rank, &m);
  }
  if (!rc && rank == 0) {
    j->rec.hits = (int64_t *)malloc(sizeof(int64_t) * (size_t)e->d.n_layers * e->d.n_experts);
    j->rec.hits_layers = e->d.n_layers;
    j->rec.hits_experts = e->d.n_experts;
    rc = j->rec.hits ? eng_expert_hits(e, j->rec.hits) : err_set(ERR_NOMEM, "out of memory");
  }
  batch_free(&b);
  free(tok), free(next);
  return rc;
}

int prof_rank(void *arg, int rank, eng *e, comm *c) {
  prof_job *j = (prof_job *)arg;
  int reps = j->quick ? 10 : 20;
  if (rank == 0) j->tp = c->size;
  ENG_TRY(prof_hbm(j, rank, e));
  ENG_TRY(prof_gemms(j, rank, e, reps));
  ENG_TRY(prof_moe(j, rank, e, reps));
  ENG_TRY(prof_attention(j, rank, e, reps));
  ENG_TRY(prof_allreduce(j, rank, e, c, reps));
  ENG_TRY(prof_steps(j, rank, e, reps));
  if (rank == 0) {
    rec_metric(&j->rec, "fast_path_router_gemv", e->router_gemv);
    rec_metric(&j->rec, "hbm_copy_GBps", j->hbm_copy_GBps);
    if (c->size > 1) rec_metric(&j->rec, "allreduce_hidden_us", j->allreduce_small_us);
  }
  return ERR_OK;
}

void prof_print(const prof_job *j, FILE *f) {
  fprintf(f, "HBM copy bandwidth: %.0f GB/s (read + write)\n", j->hbm_copy_GBps);
  if (j->tp > 1) fprintf(f, "all-reduce of one hidden state over %d GPUs: %.1f us\n", j->tp, j->allreduce_small_us);
  fprintf(f, "%-10s %-24s %8s %8s %8s %8s %8s %10s %10s\n", "kind", "op", "m/tok", "n", "k", "batch", "ctx", "median_us",
          "p90_us");
  for (int i = 0; i < j->rec.n_meas; i++) {
    const rec_meas *m = &j->rec.meas[i];
    long long mt = m->m != DB_UNSET ? m->m : m->tokens != DB_UNSET ? m->tokens : m->n_bytes;
    fprintf(f, "%-10s %-24s %8lld %8lld %8lld %8lld %8lld %10.1f %10.1f\n", m->kind, m->op, mt, (long long)m->n,
            (long long)m->k, (long long)m->batch, (long long)m->ctx_len, m->med_us, m->p90_us);
  }
}
