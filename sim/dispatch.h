/* dispatch: the data-parallel front end that assigns each arriving request to a replica.
 *
 * Policy only (no time). Round robin cycles through replicas; least outstanding requests picks
 * the replica with the fewest requests assigned and not yet finished (lowest index on ties), as
 * a DP load balancer does. With one replica both policies return 0. */
#ifndef SERVESIM_DISPATCH_H
#define SERVESIM_DISPATCH_H

#include <stdint.h>

enum dispatch_policy { DISPATCH_ROUND_ROBIN = 0, DISPATCH_LEAST_OUTSTANDING = 1 };

#define DISPATCH_MAX_REPLICAS 64

struct dispatch {
  int policy;
  int n_replicas;
  int rr_next;
  int64_t outstanding[DISPATCH_MAX_REPLICAS];  /* (n_replicas) assigned, not finished */
};

int dispatch_init(struct dispatch *d, int policy, int n_replicas);
int dispatch_pick(struct dispatch *d);       /* assigns one request; returns its replica */
void dispatch_done(struct dispatch *d, int replica);
/* "rr" / "round-robin" or "lor" / "least-outstanding"; -1 if unknown. */
int dispatch_parse(const char *name);
const char *dispatch_name(int policy);

#endif
