/* verify: GPU forward vs the C reference forward on a tiny model (see verify.h). */
#include "exec/verify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "exec/batch.h"
#include "exec/ref_forward.h"
#include "exec/runner.h"
#include "exec/weights.h"
#include "sim/model.h"

#define VERIFY_P0 45
#define VERIFY_CHUNK 24 /* seq 0's prompt is prefilled in two chunks: 24 + 21 tokens */
#define VERIFY_P1 20

/* The schedule, driven by a step function shared by both sides. */
struct verify_side {
  int (*step)(void *ctx, const struct batch *b, int32_t *next, bf16_t *logits_rows);
  void *ctx;
};

struct verify_out {
  int V;
  int n_rows;
  bf16_t *logits;              /* [rows, V] */
  int32_t *tokens;             /* [rows] */
};

/* forced: NULL to feed back this side's own greedy tokens, else the token to feed after each
 * sampled row (teacher forcing with the reference's tokens). */
static int verify_schedule(const struct verify_side *side, const struct batch_kv *kv, int n_steps, int V,
                           const int32_t *forced, struct verify_out *out) {
  int32_t p0[VERIFY_P0], p1[VERIFY_P1], last0 = 0, last1 = 0, next[2];
  for (int i = 0; i < VERIFY_P0; i++) p0[i] = (i * 131 + 7) % V;
  for (int i = 0; i < VERIFY_P1; i++) p1[i] = (i * 17 + 400) % V;
  struct batch b;
  int rc = batch_init(&b, 64);
  if (rc) return rc;
  bf16_t *lg = malloc((size_t)2 * V * 2);
  if (!lg) {
    batch_free(&b);
    return err_set(ERR_NOMEM, "out of memory");
  }
  int ctx0 = 0, ctx1 = 0, row = 0;
  /* step 0: seq 0 chunk 1 (no sample); step 1: seq 0 chunk 2 (after cached context, sampled);
   * step 2: seq 1 prefill mixed with seq 0's first decode; then both decode. */
  for (int s = 0; s < n_steps + 2 && !rc; s++) {
    struct batch_chunk ch[2];
    int n = 0;
    if (s == 0) {
      ch[n++] = (struct batch_chunk){0, 0, VERIFY_CHUNK, p0, 0};
    } else if (s == 1) {
      ch[n++] = (struct batch_chunk){0, VERIFY_CHUNK, VERIFY_P0 - VERIFY_CHUNK, p0 + VERIFY_CHUNK, 1};
    } else if (s == 2) {
      ch[n++] = (struct batch_chunk){1, 0, VERIFY_P1, p1, 1};
      ch[n++] = (struct batch_chunk){0, ctx0, 1, &last0, 1};
    } else {
      ch[n++] = (struct batch_chunk){0, ctx0, 1, &last0, 1};
      ch[n++] = (struct batch_chunk){1, ctx1, 1, &last1, 1};
    }
    if ((rc = batch_build(&b, kv, ch, n)) || (rc = side->step(side->ctx, &b, next, lg))) break;
    for (int i = 0, k = 0; i < n; i++) {
      int seq = ch[i].seq;
      if (seq == 0) ctx0 += ch[i].n_new;
      else ctx1 += ch[i].n_new;
      if (!ch[i].sample) continue;
      int32_t feed = forced ? forced[row] : next[k];
      if (seq == 0) last0 = feed;
      else last1 = feed;
      memcpy(out->logits + (int64_t)row * V, lg + (int64_t)k * V, (size_t)V * 2);
      out->tokens[row++] = next[k++];
    }
  }
  out->n_rows = row;
  free(lg);
  batch_free(&b);
  return rc;
}

static int verify_ref_step(void *ctx, const struct batch *b, int32_t *next, bf16_t *logits) {
  return ref_fwd_step(ctx, b, logits, next);
}

/* GPU side: every rank runs the schedule; each writes its vocabulary slice of the logits. */
struct verify_gpu {
  int n_steps, V;
  const int32_t *forced;       /* the reference's tokens, fed to the GPU side */
  struct verify_out out;       /* filled by rank 0 */
};

struct verify_gpu_ctx {
  struct eng *e;
};

static int verify_gpu_step(void *p, const struct batch *b, int32_t *next, bf16_t *logits) {
  struct verify_gpu_ctx *c = p;
  return eng_step(c->e, b, next, logits);   /* the whole vocabulary, gathered over ranks */
}

static int verify_gpu_rank(void *arg, int rank, struct eng *e, struct comm *cm) {
  struct verify_gpu *g = arg;
  struct verify_gpu_ctx c = {e};
  struct verify_out o = {g->V, 0, calloc((size_t)(2 * g->n_steps + 4) * g->V, 2),
                         calloc((size_t)(2 * g->n_steps + 4), 4)};
  if (!o.logits || !o.tokens) {
    free(o.logits);
    free(o.tokens);
    return err_set(ERR_NOMEM, "out of memory");
  }
  struct verify_side side = {verify_gpu_step, &c};
  int rc = verify_schedule(&side, eng_kv(e), g->n_steps, g->V, g->forced, &o);
  if (!rc && rank == 0) {   /* every rank holds the same gathered logits; rank 0 keeps them */
    memcpy(g->out.logits, o.logits, (size_t)o.n_rows * g->V * 2);
    memcpy(g->out.tokens, o.tokens, (size_t)o.n_rows * 4);
    g->out.n_rows = o.n_rows;
  }
  free(o.logits);
  free(o.tokens);
  return rc;
}

static int verify_layers, verify_top_k;

void verify_set_overrides(int n_layers, int top_k) {
  verify_layers = n_layers;
  verify_top_k = top_k;
}

int verify_run(const char *model, int tp, int n_steps, uint64_t seed, int cuda_graphs, struct verify_result *res) {
  memset(res, 0, sizeof *res);
  res->first_mismatch = -1;
  if (n_steps < 1 || n_steps > VERIFY_MAX_STEPS)
    return err_set(ERR_INPUT, "--steps %d outside 1..%d", n_steps, VERIFY_MAX_STEPS);
  struct model_spec m;
  int rc = model_load(model, &m);
  if (rc) return rc;
  if (verify_layers > 0 && verify_layers <= m.n_layers) m.n_layers = m.n_moe_layers = verify_layers;
  if (verify_top_k > 0 && verify_top_k <= m.n_experts) m.top_k = verify_top_k;
  if (m.hidden > 1024 || m.n_layers > 8 || m.vocab > 65536)
    return err_set(ERR_INPUT, "verify runs the C reference: model %s is too large (a tiny model like qwen3-moe-tiny)",
                   m.name);
  struct wt_dims d;
  if ((rc = wt_dims_init(&m, 1, 0, &d))) return rc;
  int V = m.vocab, rows_cap = 2 * n_steps + 4, max_ctx = VERIFY_P0 + n_steps + 16;
  uint8_t *hbuf = calloc(1, (size_t)wt_rank_bytes(&d));
  struct verify_out ref = {V, 0, calloc((size_t)rows_cap * V, 2), calloc((size_t)rows_cap, 4)};
  struct verify_gpu g = {n_steps, V, NULL, {V, 0, calloc((size_t)rows_cap * V, 2), calloc((size_t)rows_cap, 4)}};
  struct wt_rank w = {0};
  struct ref_fwd rf;
  memset(&rf, 0, sizeof rf);
  if (!hbuf || !ref.logits || !ref.tokens || !g.out.logits || !g.out.tokens) {
    rc = err_set(ERR_NOMEM, "out of memory");
    goto done;
  }
  /* the GPU side, same seed: identical weights synthesized on each device */
  struct eng_cfg cfg = {&m, tp, 0, 2, max_ctx, 64, seed, 0.0f, NULL, cuda_graphs};
  /* the parent of rank processes only waits: the ranks compute the reference (every rank
   * needs its tokens) and rank 0 compares */
  if (!runner_reports(tp) && !runner_is_rank_process()) {
    rc = runner_run(&cfg, verify_gpu_rank, &g);
    res->n_rows = -1;
    goto done;
  }
  /* the reference */
  if ((rc = wt_layout(&d, hbuf, &w))) goto done;
  wt_synth_host(&d, seed, 0.0f, &w);
  if ((rc = ref_fwd_init(&rf, &m, &w, 2, max_ctx, 64))) goto done;
  struct verify_side rside = {verify_ref_step, &rf};
  if ((rc = verify_schedule(&rside, &rf.kv, n_steps, V, NULL, &ref))) goto done;
  g.forced = ref.tokens;
  if ((rc = runner_run(&cfg, verify_gpu_rank, &g))) goto done;
  if (!runner_reports(tp)) {
    res->n_rows = -1;
    goto done;
  }
  if (g.out.n_rows != ref.n_rows) {
    rc = err_set(ERR_INTERNAL, "verify: %d GPU rows vs %d reference rows", g.out.n_rows, ref.n_rows);
    goto done;
  }
  res->n_steps = n_steps;
  res->n_rows = ref.n_rows;
  double all_num = 0, all_den = 0;
  for (int r = 0; r < ref.n_rows; r++) {
    double num = 0, den = 0;
    for (int v = 0; v < V; v++) {
      double a = ref_bf16_to_f32(g.out.logits[(int64_t)r * V + v]), b = ref_bf16_to_f32(ref.logits[(int64_t)r * V + v]);
      num += (a - b) * (a - b);
      den += b * b;
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    all_num += num;
    all_den += den;
    float t1 = -INFINITY, t2 = -INFINITY;
    for (int v = 0; v < V; v++) {
      float b = ref_bf16_to_f32(ref.logits[(int64_t)r * V + v]);
      if (b > t1) t2 = t1, t1 = b;
      else if (b > t2) t2 = b;
    }
    if (r < 2 * VERIFY_MAX_STEPS + 4) {
      res->row_rel_err[r] = rel;
      res->row_ref_gap[r] = t1 - t2;
    }
    if (!(rel <= res->max_rel_err)) res->max_rel_err = rel;   /* NaN propagates as the max */
    if (g.out.tokens[r] != ref.tokens[r]) {
      /* a near-tie: the reference's top two logits within two bf16 steps of each other, where
       * greedy order is decided by rounding, not by the model */
      if (t1 - t2 <= 2.0f * ldexpf(1.0f, ilogbf(fabsf(t1)) - 7)) res->n_ties++;
      else if (res->first_mismatch < 0) res->first_mismatch = r;
    }
    if (r < 2 * VERIFY_MAX_STEPS + 4) {
      res->ref_tokens[r] = ref.tokens[r];
      res->gpu_tokens[r] = g.out.tokens[r];
    }
  }
  res->all_rel_err = all_den > 0 ? sqrt(all_num / all_den) : sqrt(all_num);
done:
  ref_fwd_free(&rf);
  wt_layout_free(&w);
  free(hbuf);
  free(ref.logits);
  free(ref.tokens);
  free(g.out.logits);
  free(g.out.tokens);
  return rc;
}
