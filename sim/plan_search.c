/* plan_search: per-candidate evaluation and the two searches built on it.
 *
 * Highest sustained load: start from the nominal load (already simulated), double or halve until
 * the SLO flips (the bracket), then bisect. Every step is a pure function of the candidate and
 * the previous answers, so the sequence of loads tried, and the answer, is deterministic. A rate
 * factor bisects until hi - lo <= tol * lo; a concurrency bisects on integers until hi = lo + 1.
 * The search assumes the SLO holds below some load and fails above it; where a simulation is not
 * monotone (a preemption storm at one load only), it reports one boundary, not every one.
 *
 * Fewest GPUs: the smallest GPU count with any candidate meeting the SLO at the nominal load. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "sim/plan.h"

static int plan_search_eval(const struct plan_evaluator *ev, void *cs, const struct plan_cand *c,
                            const struct plan_opts *o, double load, struct plan_outcome *out,
                            struct plan_metrics *m, int *ok) {
  int rc = ev->eval(ev->ctx, cs, c, load, &o->slo, m);
  out->n_sims++;
  if (rc) {
    out->status = rc;
    snprintf(out->err, sizeof out->err, "load %g: %s", load, err_msg());
    return rc;
  }
  *ok = plan_slo_met(&o->slo, m);
  return ERR_OK;
}

/* The load bracket: lo is the highest load known to meet the SLO (m_lo its metrics), hi the
 * lowest known to fail; 0 = none yet. */
struct plan_bracket {
  double lo, hi;
  struct plan_metrics m_lo;
};

static void plan_bracket_note(struct plan_bracket *b, double x, int ok,
                              const struct plan_metrics *m) {
  if (ok) {
    b->lo = x;
    b->m_lo = *m;
  } else {
    b->hi = x;
  }
}

/* Simulates load x and narrows the bracket with the answer. */
static int plan_search_try(const struct plan_evaluator *ev, void *cs, const struct plan_cand *c,
                           const struct plan_opts *o, double x, struct plan_outcome *out,
                           struct plan_bracket *b) {
  struct plan_metrics m;
  int ok, rc = plan_search_eval(ev, cs, c, o, x, out, &m, &ok);
  if (rc) return rc;
  plan_bracket_note(b, x, ok, &m);
  return ERR_OK;
}

static int plan_search_loads(const struct plan_evaluator *ev, void *cs,
                             const struct plan_cand *c, const struct plan_opts *o,
                             struct plan_outcome *out) {
  int ok = 0, rc;
  if ((rc = plan_search_eval(ev, cs, c, o, ev->load_nominal, out, &out->m, &ok))) {
    /* the nominal failure keeps the bare message: it is the candidate's, not a load's */
    snprintf(out->err, sizeof out->err, "%s", err_msg());
    return rc;
  }
  out->slo_ok = ok;
  if (!o->search_rate || o->slo.n == 0) return ERR_OK;

  const int integer = ev->load_kind == PLAN_LOAD_CONCURRENCY;
  const double lmin = o->load_min, lmax = o->load_max;
  struct plan_bracket b;
  memset(&b, 0, sizeof b);
  double x = ev->load_nominal;
  if (x >= lmin && x <= lmax) {
    plan_bracket_note(&b, x, ok, &out->m);
  } else { /* nominal outside the bracket's limits: start from the nearer limit */
    x = x < lmin ? lmin : lmax;
    if ((rc = plan_search_try(ev, cs, c, o, x, out, &b))) return rc;
  }

  /* Bracket: grow while the SLO holds, shrink while it fails. */
  while (b.hi == 0) {
    if (b.lo >= lmax) {
      out->rate_status = PLAN_RATE_AT_CAP;
      out->max_load = b.lo;
      out->m_max = b.m_lo;
      return ERR_OK;
    }
    x = b.lo * 2 > lmax ? lmax : b.lo * 2;
    if ((rc = plan_search_try(ev, cs, c, o, x, out, &b))) return rc;
  }
  while (b.lo == 0) {
    if (b.hi <= lmin) {
      out->rate_status = PLAN_RATE_BELOW_MIN;
      out->max_load = 0;
      return ERR_OK;
    }
    x = integer ? floor(b.hi / 2) : b.hi / 2;
    if (x < lmin) x = lmin;
    if ((rc = plan_search_try(ev, cs, c, o, x, out, &b))) return rc;
  }

  /* Bisection between lo (meets) and hi (fails). */
  for (int it = 0; it < o->rate_max_iters; it++) {
    if (integer ? b.hi - b.lo <= 1 : b.hi - b.lo <= o->rate_tol * b.lo) break;
    x = integer ? b.lo + floor((b.hi - b.lo) / 2) : 0.5 * (b.lo + b.hi);
    if ((rc = plan_search_try(ev, cs, c, o, x, out, &b))) return rc;
  }
  out->rate_status = PLAN_RATE_FOUND;
  out->max_load = b.lo;
  out->m_max = b.m_lo;
  return ERR_OK;
}

int plan_search_candidate(const struct plan_evaluator *ev, const struct plan_cand *c,
                          const struct plan_opts *o, struct plan_outcome *out) {
  void *cs = NULL;
  int rc;
  memset(out, 0, sizeof *out);
  out->evaluated = 1;
  if (ev->cand_begin && (rc = ev->cand_begin(ev->ctx, c, &cs))) {
    out->status = rc;
    snprintf(out->err, sizeof out->err, "%s", err_msg());
    return rc;
  }
  rc = plan_search_loads(ev, cs, c, o, out);
  if (ev->cand_end) ev->cand_end(ev->ctx, cs);
  return rc;
}

void plan_search_fewest_gpus(struct plan_result *r) {
  r->fewest_gpus = 0;
  r->fewest_cand = -1;
  for (int i = 0; i < r->n_cand; i++) {
    const struct plan_outcome *o = &r->out[i];
    if (!r->cand[i].feasible || !o->evaluated || o->status) continue;
    if (r->opts.slo.n && !o->slo_ok) continue;
    int g = r->cand[i].n_gpus;
    if (r->fewest_cand < 0 || g < r->fewest_gpus) {
      r->fewest_gpus = g;
      r->fewest_cand = i;
    } else if (g == r->fewest_gpus &&
               plan_rank_score(r, i, PLAN_OBJ_TPUT_GPU) >
                   plan_rank_score(r, r->fewest_cand, PLAN_OBJ_TPUT_GPU)) {
      /* ties at one count go to the higher throughput per GPU; equal scores keep the lower id */
      r->fewest_cand = i;
    }
  }
}
