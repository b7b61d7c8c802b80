/* gen: synthetic traces — closed-loop, Poisson or Gamma arrivals with uniform or resampled
 * lengths (see gen.h). One pass, one allocation: a million requests take tens of ms. */
#include "traces/gen.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"

void gen_opts_default(struct gen_opts *o) {
  memset(o, 0, sizeof *o);
  o->arrival = GEN_CLOSED;
  o->n_req = 100;
  o->in_min = o->in_max = 1024;
  o->out_min = o->out_max = 1024;
}

const char *gen_arrival_name(int arrival) {
  switch (arrival) {
    case GEN_CLOSED: return "closed";
    case GEN_POISSON: return "poisson";
    case GEN_GAMMA: return "gamma";
    default: return "unknown";
  }
}

static int gen_check(const struct gen_opts *o) {
  if (o->n_req < 1 || o->n_req > ((int64_t)1 << 31))
    return err_set(ERR_INPUT, "--number %lld: must be 1 .. 2^31", (long long)o->n_req);
  if (o->arrival != GEN_CLOSED && !(o->rate_rps > 0 && isfinite(o->rate_rps)))
    return err_set(ERR_INPUT, "--rate %g: must be a positive number of requests per second",
                   o->rate_rps);
  if (o->arrival == GEN_GAMMA && !(o->cv >= 0 && o->cv <= 1000))
    return err_set(ERR_INPUT, "--cv %g: must be in [0, 1000]", o->cv);
  if (o->prefix_tok < 0) return err_set(ERR_INPUT, "--prefix-length %d: negative", o->prefix_tok);
  if (!(o->in_inflation >= 0 && o->in_inflation <= 100))
    return err_set(ERR_INPUT, "--prompt-inflation %g: must be in [0, 100]", o->in_inflation);
  if (o->lengths_from) {
    if (o->lengths_from->n < 1)
      return err_set(ERR_INPUT, "--lengths-from %s: no requests to resample",
                     o->lengths_from->source);
    return ERR_OK;
  }
  if (o->in_min < 1 || o->in_max < o->in_min)
    return err_set(ERR_INPUT, "--min-prompt-length %d / --max-prompt-length %d: need 1 <= min <= max",
                   o->in_min, o->in_max);
  if (o->out_min < 1 || o->out_max < o->out_min)
    return err_set(ERR_INPUT, "--min-tokens %d / --max-tokens %d: need 1 <= min <= max", o->out_min,
                   o->out_max);
  if ((int64_t)o->in_max + o->prefix_tok > INT32_MAX)
    return err_set(ERR_INPUT, "--prefix-length %d: prompt would exceed 2^31 tokens", o->prefix_tok);
  if (((double)o->in_max + o->prefix_tok) * (1 + o->in_inflation) > INT32_MAX)
    return err_set(ERR_INPUT, "--prompt-inflation %g: prompt would exceed 2^31 tokens", o->in_inflation);
  return ERR_OK;
}

int gen_run(const struct gen_opts *o, struct trace *t) {
  trace_init(t);
  int rc = gen_check(o);
  if (rc) return rc;
  if ((rc = trace_reserve(t, o->n_req))) return rc;
  struct rng ra, rl; /* arrivals, lengths: independent streams */
  rng_seed(&ra, rng_derive(o->seed, 1));
  rng_seed(&rl, rng_derive(o->seed, 2));
  double mean_gap_s = o->arrival == GEN_CLOSED ? 0 : 1.0 / o->rate_rps;
  double shape = o->cv > 0 ? 1.0 / (o->cv * o->cv) : 0, scale = shape > 0 ? mean_gap_s / shape : 0;
  const struct trace *src = o->lengths_from;
  int64_t t_ns = 0;
  for (int64_t i = 0; i < o->n_req; i++) {
    if (i > 0 && o->arrival != GEN_CLOSED) {
      double gap_s = o->arrival == GEN_POISSON ? rng_exp(&ra, mean_gap_s)
                     : shape > 0              ? rng_gamma(&ra, shape, scale)
                                              : mean_gap_s;
      double gap_ns = gap_s * 1e9;
      if (!(gap_ns < 9.0e18) || (double)t_ns + gap_ns > 9.0e18)
        return err_set(ERR_INPUT, "--rate %g: the trace runs past the int64 ns range (292 years)",
                       o->rate_rps);
      t_ns += (int64_t)llround(gap_ns);
    }
    struct trace_req r = {.arrival_ns = t_ns, .prefix_id = -1, .prefix_tok = 0};
    if (src) {
      const struct trace_req *s = &src->reqs[rng_range(&rl, 0, src->n - 1)];
      r.in_tok = s->in_tok;
      r.out_tok = s->out_tok;
    } else {
      r.in_tok = (int32_t)rng_range(&rl, o->in_min, o->in_max);
      r.out_tok = (int32_t)rng_range(&rl, o->out_min, o->out_max);
    }
    if (o->prefix_tok > 0) {
      r.prefix_id = 0;
      r.prefix_tok = o->prefix_tok;
      r.in_tok = r.in_tok > INT32_MAX - o->prefix_tok ? INT32_MAX : r.in_tok + o->prefix_tok;
    }
    if (!src && o->in_inflation > 0) r.in_tok += (int32_t)llround(r.in_tok * o->in_inflation);
    t->reqs[t->n++] = r;
  }
  t->format = TRACE_FMT_GENERATED;
  int len = snprintf(t->source, sizeof t->source, "%s", gen_arrival_name(o->arrival));
  if (o->arrival != GEN_CLOSED)
    len += snprintf(t->source + len, sizeof t->source - (size_t)len, " rate=%g", o->rate_rps);
  if (o->arrival == GEN_GAMMA)
    len += snprintf(t->source + len, sizeof t->source - (size_t)len, " cv=%g", o->cv);
  if (src)
    snprintf(t->source + len, sizeof t->source - (size_t)len, " n=%lld seed=%llu lengths=%.120s",
             (long long)o->n_req, (unsigned long long)o->seed, src->source);
  else
    snprintf(t->source + len, sizeof t->source - (size_t)len,
             " n=%lld seed=%llu in=[%d,%d] out=[%d,%d]", (long long)o->n_req,
             (unsigned long long)o->seed, o->in_min, o->in_max, o->out_min, o->out_max);
  return ERR_OK;
}
