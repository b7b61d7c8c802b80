/* test_exec_ref_forward: properties of the C reference forward of the tiny Qwen3-MoE that any
 * correct implementation must have, checked bit for bit:
 *   - chunked prefill (16 + 16 + 9 tokens) gives the logits of a one-shot prefill;
 *   - decoding token x after a prefill of P tokens gives the logits of a prefill of P + 1;
 *   - a sequence batched with another (a prefill chunk mixed with a decode) gives its logits alone;
 *   - expert hits count T * top_k per layer; a router skew moves them to the favoured experts.
 * All of it runs through the interleaved paged KV layout (batch.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "exec/batch.c"
#include "exec/ref_forward.c"
#include "exec/weights.c"
#include "exec/safetensors.c"
#include "sim/model.h"

#define P 41

static struct model_spec m;

static void make_weights(struct wt_rank *w, float skew) {
  struct wt_dims d;
  wt_dims_init(&m, 1, 0, &d);
  uint8_t *buf = calloc(1, (size_t)wt_rank_bytes(&d));
  wt_layout(&d, buf, w);
  wt_synth_host(&d, 7, skew, w);
}

/* Runs the chunks of one step; logits [n_sample, V]. */
static int step(struct ref_fwd *r, struct batch *b, const struct batch_chunk *ch, int n, bf16_t *logits,
                int32_t *next) {
  int rc = batch_build(b, &r->kv, ch, n);
  if (!rc) rc = ref_fwd_step(r, b, logits, next);
  if (rc) fprintf(stderr, "%s\n", err_msg());
  return rc;
}

/* Share of the hits that go to the quarter of the experts the router skew favours most
 * (wsynth.h ranks), averaged over layers: 0.25 when routing ignores the skew. */
static double hot_share(const int64_t *hits, int L, int E) {
  double acc = 0;
  for (int l = 0; l < L; l++) {
    double sum = 0, hot = 0;
    for (int e = 0; e < E; e++) {
      sum += (double)hits[l * E + e];
      if (ws_expert_rank(e, l, E) >= E - E / 4) hot += (double)hits[l * E + e];
    }
    acc += hot / sum;
  }
  return acc / L;
}

int main(void) {
  if (model_load("qwen3-moe-tiny", &m)) {
    fprintf(stderr, "%s\n", err_msg());
    return 1;
  }
  int V = m.vocab;
  struct wt_rank w;
  make_weights(&w, 0.0f);
  int32_t prompt[P + 1], prompt2[9];
  for (int i = 0; i <= P; i++) prompt[i] = (i * 37 + 11) % V;
  for (int i = 0; i < 9; i++) prompt2[i] = (i * 101 + 5) % V;
  bf16_t *la = malloc((size_t)4 * V * 2), *lb = malloc((size_t)4 * V * 2);
  int32_t na[4], nb[4];
  struct batch b;
  CHECK(batch_init(&b, 128) == ERR_OK);

  /* one-shot prefill of P tokens */
  struct ref_fwd r1;
  CHECK(ref_fwd_init(&r1, &m, &w, 4, 128, 128) == ERR_OK);
  struct batch_chunk c1 = {2, 0, P, prompt, 1};
  CHECK(step(&r1, &b, &c1, 1, la, na) == ERR_OK);
  CHECK(na[0] >= 0 && na[0] < V);
  int finite = 1, distinct = 0;
  for (int v = 0; v < V; v++) {
    float x = ref_bf16_to_f32(la[v]);
    finite &= x == x && x < 1e4f && x > -1e4f;
    distinct += la[v] != la[0];
  }
  CHECK(finite && distinct > V / 2);
  int64_t hits_total = 0;
  for (int e = 0; e < m.n_experts; e++) hits_total += r1.expert_hits[e];
  CHECK(hits_total == (int64_t)P * m.top_k);

  /* chunked prefill: 16 + 16 + 9 */
  struct ref_fwd r2;
  CHECK(ref_fwd_init(&r2, &m, &w, 4, 128, 128) == ERR_OK);
  struct batch_chunk cc[3] = {{2, 0, 16, prompt, 0}, {2, 16, 16, prompt + 16, 0}, {2, 32, 9, prompt + 32, 1}};
  for (int i = 0; i < 3; i++) CHECK(step(&r2, &b, &cc[i], 1, lb, nb) == ERR_OK);
  CHECK(memcmp(la, lb, (size_t)V * 2) == 0 && na[0] == nb[0]);

  /* decode one token on r2 == prefill of P + 1 on a fresh cache */
  struct batch_chunk cd = {2, P, 1, prompt + P, 1};
  CHECK(step(&r2, &b, &cd, 1, lb, nb) == ERR_OK);
  struct ref_fwd r3;
  CHECK(ref_fwd_init(&r3, &m, &w, 4, 128, 128) == ERR_OK);
  struct batch_chunk cf = {0, 0, P + 1, prompt, 1};
  CHECK(step(&r3, &b, &cf, 1, la, na) == ERR_OK);
  CHECK(memcmp(la, lb, (size_t)V * 2) == 0 && na[0] == nb[0]);

  /* mixed batch: decode of slot 0 (on r3, P + 1 cached) with a fresh 9-token prefill in slot 3 */
  int32_t tok = na[0];
  struct batch_chunk mix[2] = {{3, 0, 9, prompt2, 1}, {0, P + 1, 1, &tok, 1}};
  CHECK(step(&r3, &b, mix, 2, la, na) == ERR_OK);
  struct ref_fwd r4;
  CHECK(ref_fwd_init(&r4, &m, &w, 4, 128, 128) == ERR_OK);
  struct batch_chunk alone = {1, 0, 9, prompt2, 1};
  CHECK(step(&r4, &b, &alone, 1, lb, nb) == ERR_OK);
  CHECK(memcmp(la, lb, (size_t)V * 2) == 0 && na[0] == nb[0]);
  /* and the decode row equals the same decode done alone on r2 (same cache contents) */
  struct batch_chunk dec2 = {2, P + 1, 1, &tok, 1};
  CHECK(step(&r2, &b, &dec2, 1, lb, nb) == ERR_OK);
  CHECK(memcmp(la + V, lb, (size_t)V * 2) == 0 && na[1] == nb[0]);

  /* router skew: the hottest expert's share grows with the skew */
  double flat = hot_share(r1.expert_hits, m.n_layers, m.n_experts);
  struct wt_rank ws;
  make_weights(&ws, 4.0f);
  struct ref_fwd r5;
  CHECK(ref_fwd_init(&r5, &m, &ws, 4, 128, 128) == ERR_OK);
  CHECK(step(&r5, &b, &c1, 1, la, na) == ERR_OK);
  double skewed = hot_share(r5.expert_hits, m.n_layers, m.n_experts);
  CHECK_MSG(skewed > flat + 0.1, "hits on the favoured quarter of experts: skew 0 %.2f, skew 4 %.2f", flat, skewed);
  printf("hits on the favoured quarter of experts: skew 0 %.2f, skew 4 %.2f\n", flat, skewed);

  ref_fwd_free(&r1);
  ref_fwd_free(&r2);
  ref_fwd_free(&r3);
  ref_fwd_free(&r4);
  ref_fwd_free(&r5);
  batch_free(&b);
  free(w.base);
  wt_layout_free(&w);
  free(ws.base);
  wt_layout_free(&ws);
  free(la);
  free(lb);
  return check_report("test_exec_ref_forward");
}
