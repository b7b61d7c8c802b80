/* comm: alpha-beta collective models per interconnect tier (see comm.h).
 *
 * Ring all-reduce on n ranks takes 2(n-1) steps. NCCL's tuning model (NVIDIA/nccl
 * src/graph/tuning.cc) prices it as baseLat[proto] + steps * hwLat[link][proto] + bytes/busBw,
 * and picks the protocol with the least time: LL (8-byte stores carrying 4 data bytes, so half
 * the bus bandwidth: "busBw * .5") wins small messages, Simple wins large ones. We keep that
 * structure and its constants, except the PCIe per-hop LL latency, which NCCL's table puts at
 * 1.0 us but measurements put higher (see COMM_PCIE_LL_HOP_US). */
#include "sim/comm.h"

#include <math.h>
#include <stddef.h>

/* NCCL tuning.cc, Ring: baseLat {LL 6.6, LL128 14.0, Simple 8.4} us. */
#define COMM_RING_LL_BASE_US 6.6
#define COMM_RING_SIMPLE_BASE_US 8.4
/* NCCL tuning.cc hwLat, Ring, NVLink: LL 0.6 us, Simple 3.4 us per step. */
#define COMM_NVL_LL_HOP_US 0.6
#define COMM_NVL_SIMPLE_HOP_US 3.4
/* PCIe per-step LL latency. NCCL's table says 1.0 us, giving 6.6 + 14 * 1.0 = 20.6 us for an
 * 8-GPU all-reduce; nccl-tests on 8 PCIe GPUs measure 42.1 us at 8 bytes (NVIDIA/nccl issue
 * 1530, 8x RTX 4090 PCIe) and 54.2 us (NVIDIA/nccl issue 1439, 8x RTX 3090 PCIe).
 * (42.1 - 6.6) / 14 = 2.5 us per step, the lower (faster) of the two measurements. */
#define COMM_PCIE_LL_HOP_US 2.5
/* Simple per step on PCIe: NCCL's 5.7 us plus the same measured excess over its LL figure
 * (2.5 - 1.0 us). */
#define COMM_PCIE_SIMPLE_HOP_US 7.2
/* vLLM custom all-reduce (csrc/custom_all_reduce.cuh): one kernel, each rank reads its peers'
 * buffers over NVLink; one-shot below 256 KiB (or always at 2 GPUs), two-shot (reduce-scatter +
 * all-gather through peer memory) up to 8 MiB, NCCL beyond. Fixed cost: one kernel launch plus
 * a cross-GPU barrier, taken as two NVLink LL steps plus the base of an LL ring (estimate). */
#define COMM_CUSTOM_AR_MAX_BYTES (8.0 * 1024 * 1024)
#define COMM_CUSTOM_AR_ONESHOT_BYTES (256.0 * 1024)

void comm_group_init(struct comm_group *g, const struct hw_spec *h, int first_gpu, int n) {
  g->n_ranks = n < 1 ? 1 : n;
  int t = hw_tier_for(h, first_gpu, g->n_ranks);
  if (t < 0) t = h->n_tiers > 0 ? h->n_tiers - 1 : -1;
  g->tier = t;
  const struct hw_tier *tr = t >= 0 ? &h->tiers[t] : NULL;
  g->nvlink = tr ? tr->nvlink : 0;
  g->ll_base_us = COMM_RING_LL_BASE_US;
  g->simple_base_us = COMM_RING_SIMPLE_BASE_US;
  g->ll_hop_us = g->nvlink ? COMM_NVL_LL_HOP_US : COMM_PCIE_LL_HOP_US;
  g->simple_hop_us = g->nvlink ? COMM_NVL_SIMPLE_HOP_US : COMM_PCIE_SIMPLE_HOP_US;
  /* Without a tier (a spec with none) assume PCIe Gen4: 20 GB/s all-reduce busbw (nccl-tests
   * issue 178), 25 GB/s point-to-point. */
  g->busbw_GBps = tr && tr->allreduce_busbw_GBps > 0 ? tr->allreduce_busbw_GBps : 20.0;
  g->ll_busbw_GBps = 0.5 * g->busbw_GBps;
  g->p2p_GBps = tr && tr->bw_GBps > 0 ? tr->bw_GBps : 25.0;
  g->p2p_lat_us = tr && tr->latency_us > 0 ? tr->latency_us : 10.0;
  g->custom_ar = g->nvlink && g->n_ranks >= 2 && g->n_ranks <= 8 && g->n_ranks % 2 == 0;
}

static double comm_ring_us(const struct comm_group *g, int steps, double wire_bytes) {
  /* wire_bytes: bytes each rank moves over its link in the whole collective. 1e3 converts
   * GB/s to bytes/us. */
  double ll = g->ll_base_us + steps * g->ll_hop_us + wire_bytes / (g->ll_busbw_GBps * 1e3);
  double simple =
      g->simple_base_us + steps * g->simple_hop_us + wire_bytes / (g->busbw_GBps * 1e3);
  return ll < simple ? ll : simple;
}

double comm_allreduce_us(const struct comm_group *g, double n_bytes) {
  int n = g->n_ranks;
  if (n <= 1 || n_bytes <= 0) return 0.0;
  /* Bus bandwidth is defined (nccl-tests PERFORMANCE.md) so that t = bytes * 2(n-1)/n / busbw. */
  double wire = n_bytes * 2.0 * (n - 1) / n;
  double nccl = comm_ring_us(g, 2 * (n - 1), wire);
  if (g->custom_ar && n_bytes <= COMM_CUSTOM_AR_MAX_BYTES) {
    double fixed = g->ll_base_us + 2 * g->ll_hop_us;
    double custom = (n == 2 || n_bytes <= COMM_CUSTOM_AR_ONESHOT_BYTES)
                        ? fixed + n_bytes * (n - 1) / (g->p2p_GBps * 1e3)
                        : fixed + 2 * g->ll_hop_us + wire / (g->p2p_GBps * 1e3);
    /* vLLM uses it whenever eligible, not only when faster. */
    return custom;
  }
  return nccl;
}

double comm_allgather_us(const struct comm_group *g, double n_bytes_rank) {
  int n = g->n_ranks;
  if (n <= 1 || n_bytes_rank <= 0) return 0.0;
  return comm_ring_us(g, n - 1, n_bytes_rank * (n - 1));
}

double comm_broadcast_us(const struct comm_group *g, double n_bytes) {
  int n = g->n_ranks;
  if (n <= 1 || n_bytes <= 0) return 0.0;
  return comm_ring_us(g, n - 1, n_bytes);
}

double comm_p2p_us(const struct comm_group *g, double n_bytes) {
  if (n_bytes <= 0) return 0.0;
  return g->p2p_lat_us + n_bytes / (g->p2p_GBps * 1e3);
}
