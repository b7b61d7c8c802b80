/* test_common: err messages and codes; rng determinism and distribution moments. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "tests/check.h"

int main(void) {
  /* err: set, wrap, exit codes */
  CHECK(err_set(ERR_INPUT, "file %s:%d: bad", "a.csv", 3) == ERR_INPUT);
  CHECK(strcmp(err_msg(), "file a.csv:3: bad") == 0);
  err_wrap(ERR_INPUT, "reading trace");
  CHECK(strcmp(err_msg(), "reading trace: file a.csv:3: bad") == 0);
  CHECK(err_exit_code(ERR_OK) == 0 && err_exit_code(ERR_LAYOUT) == 1 && err_exit_code(ERR_INPUT) == 2);

  /* rng: same seed same stream, different seeds differ */
  struct rng a, b;
  rng_seed(&a, 42);
  rng_seed(&b, 42);
  for (int i = 0; i < 1000; i++) CHECK(rng_u64(&a) == rng_u64(&b));
  rng_seed(&b, 43);
  CHECK(rng_u64(&a) != rng_u64(&b));

  /* moments: uniform mean 0.5, exp mean, gamma mean k*theta and var k*theta^2 */
  const int n = 200000;
  double su = 0, se = 0, sg = 0, sg2 = 0;
  int64_t lo_seen = 0, hi_seen = 0;
  for (int i = 0; i < n; i++) {
    su += rng_uniform(&a);
    se += rng_exp(&a, 2.0);
    double g = rng_gamma(&a, 0.25, 4.0);
    sg += g;
    sg2 += g * g;
    int64_t x = rng_range(&a, 3, 7);
    CHECK(x >= 3 && x <= 7);
    lo_seen += x == 3;
    hi_seen += x == 7;
  }
  CHECK_NEAR(su / n, 0.5, 0.01);
  CHECK_NEAR(se / n, 2.0, 0.03);
  double gm = sg / n, gv = sg2 / n - gm * gm;
  CHECK_NEAR(gm, 1.0, 0.03);
  CHECK_NEAR(gv, 4.0, 0.3);
  CHECK(lo_seen > n / 6 && hi_seen > n / 6);
  return check_report("test_common");
}
