/* interp: piecewise-linear curves and row surfaces over sorted arrays (see interp.h). */
#include "sim/interp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct interp_pt {
  double r, x, y;
};

static int interp_pt_cmp(const void *a, const void *b) {
  const struct interp_pt *p = a, *q = b;
  if (p->r != q->r) return p->r < q->r ? -1 : 1;
  if (p->x != q->x) return p->x < q->x ? -1 : 1;
  if (p->y != q->y) return p->y < q->y ? -1 : 1;
  return 0;
}

/* Fills t from pts[0..n) sorted by x, merging equal x into the mean of their y. */
static int interp1_from_sorted(struct interp1 *t, const struct interp_pt *pts, int n) {
  memset(t, 0, sizeof *t);
  if (n == 0) return ERR_OK;
  t->x = malloc((size_t)n * sizeof *t->x);
  t->y = malloc((size_t)n * sizeof *t->y);
  if (!t->x || !t->y) {
    interp1_free(t);
    return err_set(ERR_NOMEM, "interp: %d points", n);
  }
  for (int i = 0; i < n;) {
    int j = i;
    double sum = 0;
    while (j < n && pts[j].x == pts[i].x) sum += pts[j++].y;
    t->x[t->n] = pts[i].x;
    t->y[t->n] = sum / (j - i);
    t->n++;
    i = j;
  }
  return ERR_OK;
}

static int interp_check(const double *v, int n, const char *what) {
  for (int i = 0; i < n; i++)
    if (!isfinite(v[i])) return err_set(ERR_INPUT, "interp: %s[%d] is not a finite number", what, i);
  return ERR_OK;
}

int interp1_build(struct interp1 *t, const double *x, const double *y, int n) {
  memset(t, 0, sizeof *t);
  if (n < 0) return err_set(ERR_INPUT, "interp: %d points", n);
  int rc;
  if ((rc = interp_check(x, n, "x")) || (rc = interp_check(y, n, "y"))) return rc;
  if (n == 0) return ERR_OK;
  struct interp_pt *pts = malloc((size_t)n * sizeof *pts);
  if (!pts) return err_set(ERR_NOMEM, "interp: %d points", n);
  for (int i = 0; i < n; i++) pts[i] = (struct interp_pt){0, x[i], y[i]};
  qsort(pts, (size_t)n, sizeof *pts, interp_pt_cmp);
  rc = interp1_from_sorted(t, pts, n);
  free(pts);
  return rc;
}

/* Index i with x[i] <= q < x[i+1], for x[0] <= q < x[n-1]. */
static int interp_bracket(const double *x, int n, double q) {
  int lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    int mid = lo + (hi - lo) / 2;
    if (x[mid] <= q) lo = mid;
    else hi = mid;
  }
  return lo;
}

double interp1_eval(const struct interp1 *t, double x, int *outside) {
  if (outside) *outside = 0;
  if (!t || t->n == 0) return NAN;
  if (x <= t->x[0]) {
    if (x < t->x[0] && outside) *outside = INTERP_BELOW_X;
    return t->y[0];
  }
  if (x >= t->x[t->n - 1]) {
    if (x > t->x[t->n - 1] && outside) *outside = INTERP_ABOVE_X;
    return t->y[t->n - 1];
  }
  int i = interp_bracket(t->x, t->n, x);
  if (x == t->x[i]) return t->y[i];
  double f = (x - t->x[i]) / (t->x[i + 1] - t->x[i]);
  return t->y[i] + f * (t->y[i + 1] - t->y[i]);
}

void interp1_free(struct interp1 *t) {
  if (!t) return;
  free(t->x);
  free(t->y);
  memset(t, 0, sizeof *t);
}

int interp2_build(struct interp2 *t, const double *r, const double *x, const double *y, int n) {
  memset(t, 0, sizeof *t);
  if (n < 0) return err_set(ERR_INPUT, "interp: %d points", n);
  int rc;
  if ((rc = interp_check(r, n, "r")) || (rc = interp_check(x, n, "x")) || (rc = interp_check(y, n, "y")))
    return rc;
  if (n == 0) return ERR_OK;
  struct interp_pt *pts = malloc((size_t)n * sizeof *pts);
  if (!pts) return err_set(ERR_NOMEM, "interp: %d points", n);
  for (int i = 0; i < n; i++) pts[i] = (struct interp_pt){r[i], x[i], y[i]};
  qsort(pts, (size_t)n, sizeof *pts, interp_pt_cmp);
  int n_rows = 0;
  for (int i = 0; i < n; i++)
    if (i == 0 || pts[i].r != pts[i - 1].r) n_rows++;
  t->r = malloc((size_t)n_rows * sizeof *t->r);
  t->rows = calloc((size_t)n_rows, sizeof *t->rows);
  if (!t->r || !t->rows) {
    free(pts);
    interp2_free(t);
    return err_set(ERR_NOMEM, "interp: %d rows", n_rows);
  }
  for (int i = 0; i < n;) {
    int j = i;
    while (j < n && pts[j].r == pts[i].r) j++;
    t->r[t->n_rows] = pts[i].r;
    if ((rc = interp1_from_sorted(&t->rows[t->n_rows], pts + i, j - i))) {
      free(pts);
      interp2_free(t);
      return rc;
    }
    t->n_rows++;
    i = j;
  }
  free(pts);
  return ERR_OK;
}

double interp2_eval(const struct interp2 *t, double r, double x, int *outside) {
  if (outside) *outside = 0;
  if (!t || t->n_rows == 0) return NAN;
  int o0 = 0, o1 = 0;
  if (r <= t->r[0] || r >= t->r[t->n_rows - 1]) {
    int last = r >= t->r[t->n_rows - 1] && r > t->r[0];
    double v = interp1_eval(&t->rows[last ? t->n_rows - 1 : 0], x, &o0);
    if (outside) {
      *outside = o0;
      if (r < t->r[0]) *outside |= INTERP_BELOW_R;
      if (r > t->r[t->n_rows - 1]) *outside |= INTERP_ABOVE_R;
    }
    return v;
  }
  int i = interp_bracket(t->r, t->n_rows, r);
  double v0 = interp1_eval(&t->rows[i], x, &o0);
  if (r == t->r[i]) {
    if (outside) *outside = o0;
    return v0;
  }
  double v1 = interp1_eval(&t->rows[i + 1], x, &o1);
  if (outside) *outside = o0 | o1;
  double f = (r - t->r[i]) / (t->r[i + 1] - t->r[i]);
  return v0 + f * (v1 - v0);
}

void interp2_free(struct interp2 *t) {
  if (!t) return;
  for (int i = 0; i < t->n_rows; i++) interp1_free(&t->rows[i]);
  free(t->rows);
  free(t->r);
  memset(t, 0, sizeof *t);
}
