/* evq: binary min-heap over (t_ns, seq). See evq.h. */
#include "sim/evq.h"

#include <stdlib.h>

#include "common/err.h"

int evq_init(struct evq *q, int64_t cap, const char *knob) {
  *q = (struct evq){0};
  if (cap < 1) cap = 1;
  q->heap = malloc((size_t)cap * sizeof *q->heap);
  if (!q->heap) return err_set(ERR_NOMEM, "event queue: cannot allocate %lld events", (long long)cap);
  q->cap = cap;
  q->knob = knob ? knob : "event queue capacity";
  return ERR_OK;
}

void evq_free(struct evq *q) {
  if (!q) return;
  free(q->heap);
  q->heap = NULL;
  q->n = q->cap = 0;
}

/* a fires before b: earlier time, then earlier push. */
static inline int evq_before(const struct evq_event *a, const struct evq_event *b) {
  return a->t_ns < b->t_ns || (a->t_ns == b->t_ns && a->seq < b->seq);
}

int evq_push(struct evq *q, int64_t t_ns, int32_t type, int32_t obj) {
  if (t_ns < q->now_ns)
    return err_set(ERR_INTERNAL, "event queue: event type %d scheduled at %lld ns, before now %lld ns",
                   type, (long long)t_ns, (long long)q->now_ns);
  if (q->n >= q->cap)
    return err_set(ERR_NOMEM, "event queue full at %lld events: raise %s", (long long)q->cap, q->knob);
  struct evq_event ev = {t_ns, q->next_seq++, type, obj};
  int64_t i = q->n++;
  /* sift up: move parents down until ev's slot is found (one write per level) */
  while (i > 0) {
    int64_t p = (i - 1) >> 1;
    if (!evq_before(&ev, &q->heap[p])) break;
    q->heap[i] = q->heap[p];
    i = p;
  }
  q->heap[i] = ev;
  if (q->n > q->peak) q->peak = q->n;
  return ERR_OK;
}

int evq_pop(struct evq *q, struct evq_event *ev) {
  if (q->n == 0) return 0;
  *ev = q->heap[0];
  struct evq_event last = q->heap[--q->n];
  int64_t n = q->n, i = 0;
  /* sift down the former last element from the root */
  for (;;) {
    int64_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && evq_before(&q->heap[c + 1], &q->heap[c])) c++;
    if (!evq_before(&q->heap[c], &last)) break;
    q->heap[i] = q->heap[c];
    i = c;
  }
  if (n > 0) q->heap[i] = last;
  q->now_ns = ev->t_ns;
  q->n_popped++;
  return 1;
}
