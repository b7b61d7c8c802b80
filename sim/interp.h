/* interp: piecewise-linear interpolation over sorted arrays, for the calibrated cost model.
 *
 * A curve (interp1) is a set of (x, y) points sorted by x; a query between two points gets the
 * straight line between them, a query beyond the ends gets the end value held flat (never a
 * slope carried past the data), and the answer says which happened. A surface (interp2) is a
 * set of such curves, one per row key r (sorted), interpolated linearly between the two rows
 * that bracket the query's r and held flat beyond the first and last rows; each row keeps its
 * own x range, so an incomplete grid works. Callers pass keys already in the space they want to
 * be linear in (the cost model uses log shapes).
 *
 * Built once (allocation at build time only); evaluation is a binary search, no allocation. */
#ifndef SERVESIM_INTERP_H
#define SERVESIM_INTERP_H

/* Bits of the `outside` answer: which end a query was held flat at. 0 = inside the data. */
enum {
  INTERP_BELOW_X = 1,
  INTERP_ABOVE_X = 2,
  INTERP_BELOW_R = 4,
  INTERP_ABOVE_R = 8
};

struct interp1 {
  int n;                     /* points after merging equal x */
  double *x;                 /* (n) strictly increasing */
  double *y;                 /* (n) mean of the y values given at that x */
};

struct interp2 {
  int n_rows;
  double *r;                 /* (n_rows) strictly increasing row keys */
  struct interp1 *rows;      /* (n_rows) */
};

/* Copies n points (any order), sorts them by x (ties broken by y, so the input order does not
 * matter) and merges points of equal x into their mean. n = 0 gives an empty curve.
 * ERR_INPUT for a NaN or infinite value, ERR_NOMEM. */
int interp1_build(struct interp1 *t, const double *x, const double *y, int n);
/* Value at x; *outside (may be NULL) gets INTERP_BELOW_X / INTERP_ABOVE_X or 0. An empty curve
 * returns NAN. A query equal to a point returns that point's y exactly. */
double interp1_eval(const struct interp1 *t, double x, int *outside);
void interp1_free(struct interp1 *t);

/* Points (r[i], x[i], y[i]); rows are the distinct r values. */
int interp2_build(struct interp2 *t, const double *r, const double *x, const double *y, int n);
/* Linear in r between the bracketing rows' curve values at x; *outside ORs every clamp. */
double interp2_eval(const struct interp2 *t, double r, double x, int *outside);
void interp2_free(struct interp2 *t);

#endif
