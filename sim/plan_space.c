/* plan_space: the planner's search space. Parses the list flags (--gpus 1-8, --max-num-seqs
 * 128,256) and enumerates every (hardware, GPU count, TP, PP, DP, EP, knobs) point in one fixed
 * order (hardware, then GPU count, then layout_enumerate's layout order, then knobs), judging each
 * with layout_check so rejected points carry vLLM's reasons. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "sim/plan.h"

static int plan_space_cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Parses one decimal int in [1, max] from s..end. */
static int plan_space_int(const char *flag, const char *s, const char *end, int max, int *v) {
  if (s == end) return err_set(ERR_INPUT, "%s: empty value", flag);
  long x = 0;
  for (const char *p = s; p < end; p++) {
    if (*p < '0' || *p > '9')
      return err_set(ERR_INPUT, "%s: '%.*s' is not a positive integer", flag, (int)(end - s), s);
    x = x * 10 + (*p - '0');
    if (x > max) return err_set(ERR_INPUT, "%s: %.*s exceeds %d", flag, (int)(end - s), s, max);
  }
  if (x < 1) return err_set(ERR_INPUT, "%s: %.*s must be at least 1", flag, (int)(end - s), s);
  *v = (int)x;
  return ERR_OK;
}

int plan_space_parse_gpus(const char *s, int *counts, int max_counts, int *n_counts) {
  int n = 0;
  if (!s || !*s) return err_set(ERR_INPUT, "--gpus: empty value");
  const char *p = s;
  while (*p) {
    const char *comma = strchr(p, ',');
    const char *end = comma ? comma : p + strlen(p);
    const char *dash = memchr(p, '-', (size_t)(end - p));
    int lo, hi, rc;
    if (dash) {
      if ((rc = plan_space_int("--gpus", p, dash, PLAN_MAX_GPUS, &lo))) return rc;
      if ((rc = plan_space_int("--gpus", dash + 1, end, PLAN_MAX_GPUS, &hi))) return rc;
      if (hi < lo) return err_set(ERR_INPUT, "--gpus: range %d-%d runs backwards", lo, hi);
    } else {
      if ((rc = plan_space_int("--gpus", p, end, PLAN_MAX_GPUS, &lo))) return rc;
      hi = lo;
    }
    for (int g = lo; g <= hi; g++) {
      if (n >= max_counts)
        return err_set(ERR_INPUT, "--gpus: more than %d GPU counts in '%s'", max_counts, s);
      counts[n++] = g;
    }
    p = comma ? comma + 1 : end;
    if (comma && !*p) return err_set(ERR_INPUT, "--gpus: trailing ',' in '%s'", s);
  }
  qsort(counts, (size_t)n, sizeof *counts, plan_space_cmp_int);
  int u = 0;
  for (int i = 0; i < n; i++)
    if (u == 0 || counts[u - 1] != counts[i]) counts[u++] = counts[i];
  *n_counts = u;
  return ERR_OK;
}

int plan_space_parse_ints(const char *flag, const char *s, int *vals, int max_vals, int *n_vals) {
  int n = 0, rc;
  if (!s || !*s) return err_set(ERR_INPUT, "%s: empty value", flag);
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *end = comma ? comma : p + strlen(p);
    if (n >= max_vals) return err_set(ERR_INPUT, "%s: more than %d values", flag, max_vals);
    if ((rc = plan_space_int(flag, p, end, 1 << 30, &vals[n]))) return rc;
    for (int i = 0; i < n; i++)
      if (vals[i] == vals[n]) return err_set(ERR_INPUT, "%s: %d listed twice", flag, vals[n]);
    n++;
    if (!comma) break;
    p = comma + 1;
  }
  *n_vals = n;
  return ERR_OK;
}

int plan_space_parse_onoff(const char *flag, const char *s, int *vals, int *n_vals) {
  int n = 0;
  if (!s || !*s) return err_set(ERR_INPUT, "%s: empty value", flag);
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    int v;
    if (len == 2 && !strncmp(p, "on", 2))
      v = 1;
    else if (len == 3 && !strncmp(p, "off", 3))
      v = 0;
    else
      return err_set(ERR_INPUT, "%s: '%.*s' is not on or off", flag, (int)len, p);
    if (n == 2 || (n == 1 && vals[0] == v))
      return err_set(ERR_INPUT, "%s: '%s' repeats a value", flag, s);
    vals[n++] = v;
    if (!comma) break;
    p = comma + 1;
  }
  *n_vals = n;
  return ERR_OK;
}

static int plan_space_listed(const struct plan_space *s, const struct layout *l) {
  for (int i = 0; i < s->n_layouts; i++) {
    const struct layout *x = &s->layouts[i];
    if (x->tp == l->tp && x->pp == l->pp && x->dp == l->dp && x->ep == l->ep) return 1;
  }
  return 0;
}

void plan_space_layout_str(const struct plan_cand *c, char *buf, int buf_len) {
  snprintf(buf, (size_t)buf_len, "TP%dxPP%dxDP%d%s", c->layout.tp, c->layout.pp, c->layout.dp,
           c->layout.ep ? " EP" : "");
}

/* FNV-1a over the candidate's identity: the same point gets the same seed in any search space,
 * so adding a GPU count or a knob value never changes the other candidates' answers. */
static uint64_t plan_space_fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

static uint64_t plan_space_seed(uint64_t seed, const struct hw_spec *h, const struct plan_cand *c) {
  uint64_t x = 0xcbf29ce484222325ULL;
  x = plan_space_fnv(x, h->name, strlen(h->name));
  int32_t id[8] = {c->n_gpus, c->layout.tp, c->layout.pp, c->layout.dp, c->layout.ep,
                   c->engine.max_num_seqs, c->engine.max_num_batched_tokens,
                   c->engine.enforce_eager};
  for (int i = 0; i < 8; i++) { /* byte order fixed: little-endian digits of each field */
    unsigned char le[4] = {(unsigned char)id[i], (unsigned char)(id[i] >> 8),
                           (unsigned char)(id[i] >> 16), (unsigned char)(id[i] >> 24)};
    x = plan_space_fnv(x, le, 4);
  }
  return rng_derive(seed, x);
}

static int plan_space_push(struct plan_cand **v, int *n, int *cap, const struct plan_cand *c) {
  if (*n == *cap) {
    int ncap = *cap ? *cap * 2 : 64;
    struct plan_cand *nv = realloc(*v, (size_t)ncap * sizeof *nv);
    if (!nv) return err_set(ERR_NOMEM, "plan: out of memory enumerating %d candidates", ncap);
    *v = nv;
    *cap = ncap;
  }
  (*v)[(*n)++] = *c;
  return ERR_OK;
}

int plan_space_enumerate(const struct plan_space *s, const struct model_spec *m, uint64_t seed,
                         struct plan_cand **out, int *n_out) {
  struct plan_cand *v = NULL;
  struct layout *ls = NULL; /* [cap_ls] one GPU count's layouts, in layout_enumerate's order */
  int n = 0, cap = 0, cap_ls = 0, rc = ERR_OK;
  *out = NULL;
  *n_out = 0;
  if (s->n_hw < 1) return err_set(ERR_INPUT, "plan: no hardware given (--hardware)");
  if (s->n_gpu_counts < 1) return err_set(ERR_INPUT, "plan: no GPU count given (--gpus)");
  int n_seqs = s->n_seqs ? s->n_seqs : 1, n_mbt = s->n_mbt ? s->n_mbt : 1;
  int n_graphs = s->n_graphs ? s->n_graphs : 1;
  /* A --layout list is tried as listed, EP over one rank included; with both EP settings and no
   * list, EP over one rank is plain TP=1 and trying it twice would only repeat a row. */
  enum layout_enum_ep ep_set = !model_is_moe(m) || s->ep_mode == PLAN_EP_OFF ? LAYOUT_ENUM_EP_OFF
                               : s->ep_mode == PLAN_EP_ON                   ? LAYOUT_ENUM_EP_ON
                               : s->n_layouts                              ? LAYOUT_ENUM_EP_EVERY
                                                                            : LAYOUT_ENUM_EP_BOTH;
  for (int hi = 0; hi < s->n_hw; hi++) {
    const struct hw_spec *h = &s->hw[hi];
    for (int gi = 0; gi < s->n_gpu_counts; gi++) {
      int g = s->gpu_counts[gi];
      int n_ls = layout_enumerate(g, ep_set, NULL, 0);
      if (n_ls > cap_ls) {
        struct layout *nls = realloc(ls, (size_t)n_ls * sizeof *nls);
        if (!nls) {
          rc = err_set(ERR_NOMEM, "plan: out of memory listing the %d layouts of %d GPUs", n_ls, g);
          goto fail;
        }
        ls = nls;
        cap_ls = n_ls;
      }
      layout_enumerate(g, ep_set, ls, cap_ls);
      for (int li = 0; li < n_ls; li++) {
        const struct layout *l = &ls[li];
        if ((s->tp && l->tp != s->tp) || (s->pp && l->pp != s->pp) || (s->dp && l->dp != s->dp))
          continue;
        if (s->n_layouts && !plan_space_listed(s, l)) continue;
        for (int k = 0; k < n_seqs * n_mbt * n_graphs; k++) {
          struct plan_cand c;
          memset(&c, 0, sizeof c);
          c.hw_idx = hi;
          c.n_gpus = g;
          c.knob_idx = k;
          c.layout = *l;
          c.engine = s->engine[hi];
          /* knob index: seqs outermost, then mbt, then graphs */
          int ki_seq = k / (n_mbt * n_graphs), ki_mbt = (k / n_graphs) % n_mbt, ki_gr = k % n_graphs;
          if (s->n_seqs) c.engine.max_num_seqs = s->seqs[ki_seq];
          if (s->n_mbt) c.engine.max_num_batched_tokens = s->mbt[ki_mbt];
          if (s->n_graphs) c.engine.enforce_eager = !s->graphs[ki_gr];
          c.seed = plan_space_seed(seed, h, &c);
          int lrc = layout_check(m, h, g, &c.layout, &c.engine, &c.verdict);
          if (lrc != ERR_OK && lrc != ERR_LAYOUT) {
            char lay[64];
            plan_space_layout_str(&c, lay, sizeof lay);
            rc = err_wrap(lrc, "plan: checking %s on %d x %s", lay, g, h->name);
            goto fail;
          }
          /* layout_check's contract: ERR_LAYOUT iff it listed a failed rule. */
          c.feasible = lrc == ERR_OK && c.verdict.n_fails == 0;
          c.id = n;
          if ((rc = plan_space_push(&v, &n, &cap, &c))) goto fail;
        }
      }
    }
  }
  free(ls);
  *out = v;
  *n_out = n;
  return ERR_OK;
fail:
  free(ls);
  free(v);
  return rc;
}
