/* dispatch: DP replica selection. See dispatch.h. */
#include "sim/dispatch.h"

#include <string.h>

#include "common/err.h"

int dispatch_init(struct dispatch *d, int policy, int n_replicas) {
  memset(d, 0, sizeof *d);
  if (n_replicas < 1 || n_replicas > DISPATCH_MAX_REPLICAS)
    return err_set(ERR_INPUT, "--data-parallel-size %d out of range 1..%d", n_replicas, DISPATCH_MAX_REPLICAS);
  if (policy != DISPATCH_ROUND_ROBIN && policy != DISPATCH_LEAST_OUTSTANDING)
    return err_set(ERR_INPUT, "dispatch: unknown policy %d", policy);
  d->policy = policy;
  d->n_replicas = n_replicas;
  return ERR_OK;
}

int dispatch_pick(struct dispatch *d) {
  int r = 0;
  if (d->policy == DISPATCH_ROUND_ROBIN) {
    r = d->rr_next;
    d->rr_next = (d->rr_next + 1) % d->n_replicas;
  } else {
    for (int i = 1; i < d->n_replicas; i++)
      if (d->outstanding[i] < d->outstanding[r]) r = i;
  }
  d->outstanding[r]++;
  return r;
}

void dispatch_done(struct dispatch *d, int replica) { d->outstanding[replica]--; }

int dispatch_parse(const char *name) {
  if (!strcmp(name, "rr") || !strcmp(name, "round-robin") || !strcmp(name, "round_robin"))
    return DISPATCH_ROUND_ROBIN;
  if (!strcmp(name, "lor") || !strcmp(name, "least-outstanding") || !strcmp(name, "least_outstanding"))
    return DISPATCH_LEAST_OUTSTANDING;
  return -1;
}

const char *dispatch_name(int policy) {
  return policy == DISPATCH_LEAST_OUTSTANDING ? "least-outstanding" : "round-robin";
}
