/* comm: alpha-beta models of the collectives a step runs (all-reduce, all-gather, all-to-all,
 * point-to-point), per interconnect tier of the hardware spec.
 *
 * A group of GPUs talks over the first tier whose domain holds all of them (hw_tier_for): on an
 * 8x A100 PCIe box a TP=2 group on a bridge pair uses NVLink, TP=4 and TP=8 cross PCIe. The ring
 * model is NCCL's own tuning model (src/graph/tuning.cc: base latency + steps x per-hop latency,
 * per protocol; LL at half the bus bandwidth) with per-hop latencies raised to match measured
 * small-message all-reduce times on PCIe hosts (see comm.c). vLLM's custom all-reduce replaces
 * NCCL only when every pair in the group is NVLink-connected (vLLM 0.9.x custom_all_reduce.py). */
#ifndef SERVESIM_COMM_H
#define SERVESIM_COMM_H

#include "sim/hw.h"

struct comm_group {
  int n_ranks;               /* GPUs in the group; 1 = no communication */
  int tier;                  /* index into hw_spec.tiers of the link class used */
  int nvlink;                /* the tier is NVLink-class */
  int custom_ar;             /* vLLM custom all-reduce eligible (all pairs NVLink, n in 2..8 even) */
  double ll_base_us, ll_hop_us;         /* LL protocol: fixed + per ring step latency */
  double simple_base_us, simple_hop_us; /* Simple protocol: fixed + per ring step latency */
  double busbw_GBps;         /* Simple-protocol all-reduce bus bandwidth (large messages) */
  double ll_busbw_GBps;      /* LL-protocol bus bandwidth: half of the above (NCCL tuning.cc) */
  double p2p_lat_us;         /* point-to-point message latency on the tier */
  double p2p_GBps;           /* point-to-point bandwidth on the tier, one direction */
};

/* GPUs [first_gpu, first_gpu + n) of one server. A span no tier holds uses the last tier. */
void comm_group_init(struct comm_group *g, const struct hw_spec *h, int first_gpu, int n);
/* Ring all-reduce of n_bytes per rank: the cheaper of NCCL's LL and Simple protocols, or vLLM's
 * custom all-reduce (one-shot up to 256 KiB per vLLM's heuristic, two-shot up to 8 MiB). */
double comm_allreduce_us(const struct comm_group *g, double n_bytes);
/* All-gather where each rank contributes n_bytes_rank (ring: n-1 steps). */
double comm_allgather_us(const struct comm_group *g, double n_bytes_rank);
/* Ring broadcast of n_bytes from one rank to the others (pipelined: n-1 steps of latency). */
double comm_broadcast_us(const struct comm_group *g, double n_bytes);
/* One message of n_bytes between two GPUs of the group's tier. */
double comm_p2p_us(const struct comm_group *g, double n_bytes);

#endif
