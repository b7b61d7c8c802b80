/* numparse: strict parsing of the numbers trace files hold — token counts, decimal seconds and
 * wall-clock timestamps — into integers, without going through a double where exactness matters
 * (Azure's 100 ns ticks must survive: a double holds Unix-epoch ns only to ~256 ns). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "traces/formats.h"

static const char *skip_blank(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  return s;
}

static int rest_blank(const char *s) { return *skip_blank(s) == '\0'; }

const char *numparse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  s = skip_blank(s);
  int neg = 0;
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  if (!isdigit((unsigned char)*s)) return *s ? "not an integer" : "empty field";
  uint64_t v = 0;
  int big = 0;
  for (; isdigit((unsigned char)*s); s++) {
    if (v > (UINT64_MAX - 9) / 10) big = 1;
    else v = v * 10 + (uint64_t)(*s - '0');
  }
  if (*s == '.') { /* "472.0" is an integer; "472.5" is not */
    s++;
    while (*s == '0') s++;
    if (isdigit((unsigned char)*s)) return "not an integer";
  }
  if (!rest_blank(s)) return "not an integer";
  if (big || v > (uint64_t)INT64_MAX) return "out of range";
  int64_t x = neg ? -(int64_t)v : (int64_t)v;
  if (x < lo || x > hi) return x < 0 && lo >= 0 ? "negative" : "out of range";
  *out = x;
  return 0;
}

const char *numparse_sec_ns(const char *s, int64_t *ns) {
  s = skip_blank(s);
  if (!*s) return "empty field";
  if (strpbrk(s, "eE")) { /* exponent form: rare in traces, rounded once to the ns */
    char *end;
    double v = strtod(s, &end);
    if (end == s || !rest_blank(end) || !isfinite(v)) return "not a number";
    if (fabs(v) > 9.2e9) return "out of range";
    *ns = (int64_t)llround(v * 1e9);
    return 0;
  }
  int neg = 0;
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
    return "not a number";
  int64_t sec = 0;
  for (; isdigit((unsigned char)*s); s++) {
    sec = sec * 10 + (*s - '0');
    if (sec > 9000000000LL) return "out of range"; /* int64 ns holds ~292 years */
  }
  int64_t frac = 0;
  int nd = 0, round_up = 0;
  if (*s == '.') {
    s++;
    for (; isdigit((unsigned char)*s); s++, nd++) {
      if (nd < 9) frac = frac * 10 + (*s - '0');
      else if (nd == 9) round_up = *s >= '5';
    }
  }
  if (!rest_blank(s)) return "not a number";
  for (int i = nd; i < 9; i++) frac *= 10;
  int64_t v = sec * 1000000000LL + frac + round_up;
  *ns = neg ? -v : v;
  return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date: shift the year to start in March so the
 * leap day is last, count whole 400-year eras, then days within the era. */
static int64_t civil_days(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;                                 /* [0, 399] */
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
  return era * 146097 + doe - 719468;
}

static int read_digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i])) return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

const char *numparse_datetime_ns(const char *s, int64_t *ns) {
  static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const char *p = skip_blank(s);
  int y, mo, d, h, mi, se;
  if (read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo) || *p++ != '-' ||
      read_digits(&p, 2, &d) || (*p != ' ' && *p != 'T'))
    return "not a timestamp (want YYYY-MM-DD HH:MM:SS.fffffff)";
  p++;
  if (read_digits(&p, 2, &h) || *p++ != ':' || read_digits(&p, 2, &mi) || *p++ != ':' ||
      read_digits(&p, 2, &se))
    return "not a timestamp (want YYYY-MM-DD HH:MM:SS.fffffff)";
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
      h > 23 || mi > 59 || se > 59)
    return "timestamp field out of range";
  if (y < 1900 || y > 2200) return "year outside 1900-2200 (int64 ns range)";
  int64_t frac = 0;
  if (*p == '.') {
    p++;
    int nd = 0;
    for (; isdigit((unsigned char)*p); p++, nd++) {
      if (nd >= 9) return "more than 9 fractional digits";
      frac = frac * 10 + (*p - '0');
    }
    if (!nd) return "no digits after the decimal point";
    for (; nd < 9; nd++) frac *= 10;
  }
  int64_t off_s = 0;
  if (*p == 'Z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1, oh, om;
    if (read_digits(&p, 2, &oh)) return "bad time-zone offset";
    if (*p == ':') p++;
    if (read_digits(&p, 2, &om) || oh > 23 || om > 59) return "bad time-zone offset";
    off_s = sign * (oh * 3600 + om * 60);
  }
  if (!rest_blank(p)) return "trailing characters after the timestamp";
  int64_t sec = civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off_s;
  *ns = sec * 1000000000LL + frac;
  return 0;
}
