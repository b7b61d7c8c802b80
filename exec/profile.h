/* profile: servesim-exec profile, the measurements that calibrate the simulator's cost model.
 *
 * On the engine's own weights and buffers, timed with CUDA events on the rank's stream, each
 * point the median (with p10/p90) of repeats after a warm-up:
 *   gemm       int4 W4A16 qkv and o_proj of layer 0 by M; bf16 router and lm_head by M
 *   moe        the fused MoE (align, grouped gate_up+SiLU, grouped down, combine) by tokens,
 *              with uniform routing and with every token on the same top-k experts (the two
 *              ends of tokens per expert)
 *   attention  paged decode by batch and context length; prefill chunks by length
 *   allreduce  NCCL bf16 all-reduce by bytes over the TP group
 *   step       whole decode, prefill and mixed steps through eng_step (graphs for decode)
 * plus the copy bandwidth of HBM (a run metric) and expert hit counts per layer from the
 * step measurements' real forward passes. Every rank runs the same sequence (the collectives
 * pair up); rank 0 keeps the numbers. */
#ifndef SERVESIM_EXEC_PROFILE_H
#define SERVESIM_EXEC_PROFILE_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "exec/engine.h"
#include "exec/record.h"

struct prof_job {
  int quick;                   /* fewer points and repeats */
  int n_layers, n_experts;
  struct rec rec;              /* rank 0's measurements */
  double hbm_copy_GBps;        /* 2 x bytes / time of a 1 GiB device copy */
  double allreduce_small_us;   /* median all-reduce of one token's hidden state (H bf16) */
  int tp;
};

int prof_max_seqs(const struct prof_job *j);
int prof_max_ctx(const struct prof_job *j);
int prof_max_tok(const struct prof_job *j);
int prof_rank(void *arg, int rank, struct eng *e, struct comm *c);
void prof_print(const struct prof_job *j, FILE *f);

#ifdef __cplusplus
}
#endif

#endif
