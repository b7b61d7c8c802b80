/* test_evq: the event heap pops in (time, push order), time never goes back, a full heap names
 * its knob, and a push into the past is refused. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "common/rng.h"
#include "sim/evq.h"

int main(void) {
  struct evq q;
  CHECK(evq_init(&q, 5000, "test.cap") == 0);
  struct rng r;
  rng_seed(&r, 1);
  /* 4000 events with many equal times: pops must be sorted by time, ties by push order */
  for (int i = 0; i < 4000; i++) CHECK(evq_push(&q, rng_range(&r, 0, 50), 1, i) == 0);
  struct evq_event ev, prev = {-1, 0, 0, -1};
  int n = 0, bad = 0;
  while (evq_pop(&q, &ev)) {
    if (ev.t_ns < prev.t_ns || (ev.t_ns == prev.t_ns && ev.obj < prev.obj)) {
      if (!bad) fprintf(stderr, "out of order: now t=%lld obj=%d after t=%lld obj=%d\n", (long long)ev.t_ns,
                        ev.obj, (long long)prev.t_ns, prev.obj);
      bad++;
    }
    prev = ev;
    n++;
  }
  CHECK_MSG(bad == 0, "%d events out of order", bad);
  CHECK(n == 4000 && q.n_popped == 4000 && q.peak == 4000);
  CHECK(q.now_ns == prev.t_ns);

  /* interleaved push/pop as a simulation does: pushes at now + d keep time monotone */
  int64_t last = q.now_ns;
  CHECK(evq_push(&q, last, 2, 0) == 0);
  for (int i = 0; i < 20000; i++) {
    CHECK(evq_pop(&q, &ev) == 1);
    CHECK_MSG(ev.t_ns >= last, "time went back: %lld after %lld", (long long)ev.t_ns, (long long)last);
    last = ev.t_ns;
    int k = (int)rng_range(&r, 0, 2);
    for (int j = 0; j < k && evq_size(&q) < 4000; j++) evq_push(&q, last + rng_range(&r, 0, 1000), 2, i);
    if (evq_size(&q) == 0) evq_push(&q, last + 1, 2, i);
  }

  /* the past is refused */
  CHECK(evq_push(&q, q.now_ns - 1, 3, 0) == ERR_INTERNAL);
  CHECK(strstr(err_msg(), "before now") != NULL);
  evq_free(&q);

  /* a full heap fails loudly, naming the knob to raise */
  CHECK(evq_init(&q, 2, "sim_config.max_events") == 0);
  CHECK(evq_push(&q, 1, 0, 0) == 0 && evq_push(&q, 1, 0, 1) == 0);
  CHECK(evq_push(&q, 1, 0, 2) == ERR_NOMEM);
  CHECK(strstr(err_msg(), "sim_config.max_events") != NULL);
  CHECK(evq_pop(&q, &ev) == 1 && ev.obj == 0);
  CHECK(evq_pop(&q, &ev) == 1 && ev.obj == 1);
  CHECK(evq_pop(&q, &ev) == 0);
  evq_free(&q);
  evq_free(NULL);
  return check_report("test_evq");
}
