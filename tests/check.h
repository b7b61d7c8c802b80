/* check: the tiny assertion layer every CPU test uses. A failed CHECK prints file:line and the
 * expression and marks the test failed; check_report() returns the process status, so a test
 * that prints a failure can never exit 0 (the llm.c slip DESIGN.md warns about). */
#ifndef SERVESIM_TESTS_CHECK_H
#define SERVESIM_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures, check_count;

#define CHECK(cond)                                                        \
  do {                                                                     \
    check_count++;                                                         \
    if (!(cond)) {                                                         \
      check_failures++;                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)

#define CHECK_MSG(cond, ...)                                               \
  do {                                                                     \
    check_count++;                                                         \
    if (!(cond)) {                                                         \
      check_failures++;                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fputc('\n', stderr);                                                 \
    }                                                                      \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                              \
  do {                                                                     \
    double check_a_ = (a), check_b_ = (b);                                 \
    check_count++;                                                         \
    if (!(fabs(check_a_ - check_b_) <= (tol))) {                           \
      check_failures++;                                                    \
      fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g vs %s = %.9g (tol %g)\n", __FILE__, \
              __LINE__, #a, check_a_, #b, check_b_, (double)(tol));        \
    }                                                                      \
  } while (0)

/* Skip (ctest SKIP_RETURN_CODE 77) with a reason, e.g. no GPU or no shared/ traces. */
#define CHECK_SKIP(...)                                                    \
  do {                                                                     \
    fprintf(stderr, "SKIP: " __VA_ARGS__);                                 \
    fputc('\n', stderr);                                                   \
    return 77;                                                             \
  } while (0)

static inline int check_report(const char *name) {
  if (check_failures) {
    fprintf(stderr, "%s: %d of %d checks FAILED\n", name, check_failures, check_count);
    return 1;
  }
  printf("%s: %d checks passed\n", name, check_count);
  return 0;
}

#endif
