/* engine: one tensor-parallel rank of the live executor: its GPU weights, paged KV cache,
 * activation buffers, cuBLAS handle, stream and communicator, and the Qwen3-MoE forward step.
 *
 * Every rank runs the same sequence of eng_step calls (lockstep, as vLLM's workers do): the two
 * all-reduces per layer and the sampling all-gather pair them up. A step takes a struct batch
 * (prefill chunks and decodes mixed) and returns the greedy next token of each sampled row,
 * identical on every rank. Decode-only steps are captured once per batch size into a CUDA graph
 * (with the attention sized for the whole KV capacity, so one graph serves every context
 * length) and replayed: launch overhead of ~1,400 kernels per step at 94 layers otherwise
 * dominates small-batch decode. */
#ifndef SERVESIM_EXEC_ENGINE_H
#define SERVESIM_EXEC_ENGINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "exec/batch.h"
#include "exec/comm.h"
#include "kernels/ref_bf16.h"
#include "sim/model.h"

struct st_ckpt;

struct eng_cfg {
  const struct model_spec *m;
  int tp, rank;
  int max_seqs;              /* sequence slots of the KV cache */
  int max_ctx;               /* tokens per sequence the KV cache holds */
  int max_tok;               /* tokens per step (--max-num-batched-tokens) */
  uint64_t seed;             /* random weights */
  float skew;                /* router skew of random weights (wsynth.h) */
  const struct st_ckpt *ckpt;/* NULL: random weights */
  int cuda_graphs;           /* capture decode steps (0 = --enforce-eager) */
};

struct eng;

/* Creates the rank on the current CUDA device. comm must outlive the engine. */
int eng_create(const struct eng_cfg *cfg, struct comm *comm, struct eng **out);
void eng_destroy(struct eng *e);
/* One forward step. next int32 [n_sample] out (host). logits: NULL, or bf16 [n_sample, V] out
 * (host): the whole vocabulary, gathered from every rank's lm_head slice (needs V % tp == 0;
 * every rank must ask, the gather is a collective). */
int eng_step(struct eng *e, const struct batch *b, int32_t *next, bf16_t *logits);
/* GPU time of the last step (CUDA events around it, uploads and the token read-back included). */
double eng_last_step_ms(const struct eng *e);
const struct batch_kv *eng_kv(const struct eng *e);
/* Expert hits summed over all steps so far: int64 [L, E] host out. */
int eng_expert_hits(struct eng *e, int64_t *hits);
void eng_reset_hits(struct eng *e);
int64_t eng_weight_bytes(const struct eng *e);
int64_t eng_kv_bytes(const struct eng *e);
int eng_vocab(const struct eng *e);
/* Whether the router GEMV passed the start-up self-check against cuBLAS (and is on). */
void eng_fast_paths(const struct eng *e, int *router_gemv);
int eng_max_tok(const struct eng *e);

#ifdef __cplusplus
}
#endif

#endif
