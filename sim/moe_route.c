/* moe_route: Monte-Carlo table of the MoE step cost under a routing model (see moe_route.h). */
#include "sim/moe_route.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"

/* Draw budget per grid point: samples * n_tok * top_k picks at most this many. Large token counts
 * average over many tokens already, so a few draws suffice there. */
#define MOE_ROUTE_PICKS_PER_POINT 65536
#define MOE_ROUTE_MIN_SAMPLES 6

struct moe_route_work {
  const struct moe_route_cfg *c;
  double *cdf;               /* (E) cumulative popularity, cdf[E-1] = 1 */
  double *w;                 /* (E) popularity weights */
  int32_t *counts;           /* (E) tokens per expert in one draw */
  unsigned char *taken;      /* (E) picked by the current token */
  int uniform;
};

/* One token's top-k experts, added to counts. */
static void moe_route_token(struct moe_route_work *wk, struct rng *r, int32_t *picked) {
  const struct moe_route_cfg *c = wk->c;
  int E = c->n_experts;
  for (int j = 0; j < c->top_k; j++) {
    int e = -1;
    for (int tries = 0; tries < 64 && e < 0; tries++) {
      int cand;
      if (wk->uniform) {
        cand = (int)rng_range(r, 0, E - 1);
      } else {
        double u = rng_uniform(r);
        int lo = 0, hi = E - 1; /* first index with cdf > u */
        while (lo < hi) {
          int mid = (lo + hi) / 2;
          if (wk->cdf[mid] > u) hi = mid;
          else lo = mid + 1;
        }
        cand = lo;
      }
      if (!wk->taken[cand]) e = cand;
    }
    if (e < 0) { /* extreme skew: draw among the experts left, by weight */
      double tot = 0;
      for (int i = 0; i < E; i++) tot += wk->taken[i] ? 0 : wk->w[i];
      double u = rng_uniform(r) * tot;
      for (int i = 0; i < E; i++) {
        if (wk->taken[i]) continue;
        e = i;
        u -= wk->w[i];
        if (u < 0) break;
      }
    }
    wk->taken[e] = 1;
    picked[j] = e;
    wk->counts[e]++;
  }
  for (int j = 0; j < c->top_k; j++) wk->taken[picked[j]] = 0;
}

int moe_route_table_build(struct moe_route_table *tb, const struct moe_route_cfg *c, int max_tok,
                          moe_rank_cost_fn cost, const void *ctx) {
  memset(tb, 0, sizeof *tb);
  int E = c->n_experts, R = c->n_ranks < 1 ? 1 : c->n_ranks;
  if (E < 1 || c->top_k < 1 || c->top_k > E || R > E || c->skew < 0 || max_tok < 1)
    return err_set(ERR_INPUT, "moe_route: bad routing model (experts %d, top_k %d, ranks %d, skew %g)",
                   E, c->top_k, R, c->skew);
  /* Grid: 1..64, then 6.25% steps up to max_tok. */
  int cap = 64 + 8 + (int)(log((double)max_tok + 1) / log(1.0625)) + 2;
  tb->tok = malloc(sizeof(int32_t) * cap);
  tb->max_ns = malloc(sizeof(double) * cap);
  tb->mean_ns = malloc(sizeof(double) * cap);
  tb->active = malloc(sizeof(double) * cap);
  struct moe_route_work wk = {.c = c};
  wk.cdf = malloc(sizeof(double) * E);
  wk.w = malloc(sizeof(double) * E);
  wk.counts = malloc(sizeof(int32_t) * E);
  wk.taken = calloc((size_t)E, 1);
  int32_t *perm = malloc(sizeof(int32_t) * E);
  int32_t *picked = malloc(sizeof(int32_t) * c->top_k);
  if (!tb->tok || !tb->max_ns || !tb->mean_ns || !tb->active || !wk.cdf || !wk.w || !wk.counts ||
      !wk.taken || !perm || !picked) {
    free(wk.cdf), free(wk.w), free(wk.counts), free(wk.taken), free(perm), free(picked);
    moe_route_table_free(tb);
    return err_set(ERR_NOMEM, "moe_route: table allocation");
  }
  int n = 0;
  for (int t = 1; t <= max_tok && t <= 64; t++) tb->tok[n++] = t;
  for (double t = 64; n < cap - 1;) {
    t *= 1.0625;
    int ti = (int)ceil(t);
    if (ti >= max_tok) break;
    if (ti > tb->tok[n - 1]) tb->tok[n++] = ti;
  }
  if (tb->tok[n - 1] < max_tok) tb->tok[n++] = max_tok;
  tb->n_pts = n;

  /* Popularity: Zipf weights over a seeded random permutation of the experts. */
  struct rng r;
  rng_seed(&r, rng_derive(c->seed, 0x6d6f65));
  for (int i = 0; i < E; i++) perm[i] = i;
  for (int i = E - 1; i > 0; i--) {
    int j = (int)rng_range(&r, 0, i);
    int32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  wk.uniform = c->skew == 0;
  double tot = 0;
  for (int i = 0; i < E; i++) tot += wk.w[perm[i]] = pow(i + 1.0, -c->skew);
  double acc = 0;
  for (int i = 0; i < E; i++) wk.cdf[i] = (acc += wk.w[i] / tot);
  wk.cdf[E - 1] = 1.0;

  /* vLLM 0.9.x determine_expert_map: E / R experts per rank, the first E % R ranks one more. */
  int base = E / R, rem = E % R;
  for (int p = 0; p < n; p++) {
    int T = tb->tok[p];
    int S = MOE_ROUTE_PICKS_PER_POINT / (T * c->top_k);
    if (S > c->samples) S = c->samples;
    if (S < MOE_ROUTE_MIN_SAMPLES) S = MOE_ROUTE_MIN_SAMPLES;
    /* Common random numbers: every grid point replays the same stream, so neighbouring points
     * share most of their draws and the curve is smooth in T. */
    rng_seed(&r, rng_derive(c->seed, 1));
    double sum_max = 0, sum_mean = 0, sum_act = 0;
    for (int s = 0; s < S; s++) {
      memset(wk.counts, 0, sizeof(int32_t) * E);
      for (int t = 0; t < T; t++) moe_route_token(&wk, &r, picked);
      double mx = 0, mean = 0;
      for (int k = 0; k < R; k++) {
        int first = k * base + (k < rem ? k : rem), n_local = base + (k < rem);
        double v = cost(ctx, T, wk.counts + first, n_local);
        if (v > mx) mx = v;
        mean += v / R;
      }
      int act = 0;
      for (int e = 0; e < E; e++) act += wk.counts[e] > 0;
      sum_max += mx, sum_mean += mean, sum_act += act;
    }
    tb->max_ns[p] = sum_max / S;
    tb->mean_ns[p] = sum_mean / S;
    tb->active[p] = sum_act / S;
  }
  /* Monotone in T (more tokens never cheaper); max >= mean survives the running maximum. */
  for (int p = 1; p < n; p++) {
    if (tb->max_ns[p] < tb->max_ns[p - 1]) tb->max_ns[p] = tb->max_ns[p - 1];
    if (tb->mean_ns[p] < tb->mean_ns[p - 1]) tb->mean_ns[p] = tb->mean_ns[p - 1];
    if (tb->active[p] < tb->active[p - 1]) tb->active[p] = tb->active[p - 1];
  }
  free(wk.cdf), free(wk.w), free(wk.counts), free(wk.taken), free(perm), free(picked);
  return ERR_OK;
}

static int moe_route_seg(const struct moe_route_table *tb, int n_tok, double *f) {
  int n = tb->n_pts;
  if (n_tok <= tb->tok[0] || n == 1) {
    *f = 0;
    return 0;
  }
  int i;
  if (n_tok <= 64 && n_tok <= tb->tok[n - 1]) {
    i = n_tok - 1; /* exact grid below 65 */
    *f = 0;
    return i;
  }
  int lo = 0, hi = n - 1;
  if (n_tok >= tb->tok[n - 1]) {
    lo = n - 2;
  } else {
    while (hi - lo > 1) {
      int mid = (lo + hi) / 2;
      if (tb->tok[mid] <= n_tok) lo = mid;
      else hi = mid;
    }
  }
  *f = (double)(n_tok - tb->tok[lo]) / (tb->tok[lo + 1] - tb->tok[lo]);
  return lo;
}

void moe_route_lookup(const struct moe_route_table *tb, int n_tok, double *max_ns, double *mean_ns) {
  double f;
  int i = moe_route_seg(tb, n_tok, &f);
  if (f == 0) {
    *max_ns = tb->max_ns[i];
    *mean_ns = tb->mean_ns[i];
    return;
  }
  *max_ns = tb->max_ns[i] + f * (tb->max_ns[i + 1] - tb->max_ns[i]);
  *mean_ns = tb->mean_ns[i] + f * (tb->mean_ns[i + 1] - tb->mean_ns[i]);
}

double moe_route_active(const struct moe_route_table *tb, int n_tok) {
  double f;
  int i = moe_route_seg(tb, n_tok, &f);
  return f == 0 ? tb->active[i] : tb->active[i] + f * (tb->active[i + 1] - tb->active[i]);
}

void moe_route_table_free(struct moe_route_table *tb) {
  if (!tb) return;
  free(tb->tok), free(tb->max_ns), free(tb->mean_ns), free(tb->active);
  memset(tb, 0, sizeof *tb);
}
