/* evq: the simulator's event queue — a flat-array binary min-heap of small events.
 *
 * Time is int64 nanoseconds. Ties on time are broken by a sequence number assigned at push, so
 * two events at the same instant pop in the order they were pushed: runs are deterministic on
 * every platform (ROSS / ns-3 style). The heap is sized once (evq_init) from the workload; a push
 * into a full heap fails with ERR_NOMEM naming the knob, never reallocates: no malloc per event. */
#ifndef SERVESIM_EVQ_H
#define SERVESIM_EVQ_H

#include <stdint.h>

struct evq_event {
  int64_t t_ns;              /* when it fires */
  uint64_t seq;              /* push order: the tie-break */
  int32_t type;              /* caller's event kind */
  int32_t obj;               /* caller's object index (request, batch slot, ...) */
};

struct evq {
  struct evq_event *heap;    /* (cap) heap[0] is the earliest */
  int64_t n;
  int64_t cap;
  uint64_t next_seq;
  int64_t now_ns;            /* time of the last popped event: never decreases */
  int64_t n_popped;
  int64_t peak;              /* largest n seen: how much of cap a run needed */
  const char *knob;          /* what to raise when cap runs out, for the error message */
};

/* Allocates cap events. knob names the setting that sizes cap (e.g. "sim_config.max_events"). */
int evq_init(struct evq *q, int64_t cap, const char *knob);
void evq_free(struct evq *q);
/* Pushes an event at t_ns (>= now_ns: scheduling into the past is a bug and returns
 * ERR_INTERNAL); ERR_NOMEM when full. */
int evq_push(struct evq *q, int64_t t_ns, int32_t type, int32_t obj);
/* Pops the earliest event into *ev; returns 0 when empty, 1 when an event was popped. */
int evq_pop(struct evq *q, struct evq_event *ev);
static inline int64_t evq_size(const struct evq *q) { return q->n; }

#endif
