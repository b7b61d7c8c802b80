/* gpu_weights: one rank's weights resident on its GPU, in the layout the kernels read.
 *
 * Norms, router, embedding and lm_head are bf16 as in the checkpoint. Every GPTQ linear is
 * repacked once at load (kern_gptq_repack*, kernels.h) into the tensor-core tile layout with
 * bf16 scales; gate and up of an expert are interleaved into one tile so the grouped GEMM's
 * epilogue computes SiLU(gate) * up. Loading goes one layer at a time through a checkpoint-
 * layout staging area on the device: with random weights the synthesis kernel (wsynth.h, the
 * same values as the host) writes it directly, so nothing crosses PCIe; from a checkpoint, one
 * layer's slice is read into pinned host memory and copied up. One cudaMalloc holds it all. */
#ifndef SERVESIM_EXEC_GPU_WEIGHTS_H
#define SERVESIM_EXEC_GPU_WEIGHTS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "exec/weights.h"
#include "kernels/ref_bf16.h"

struct st_ckpt;

struct gw_layer {
  bf16_t *input_ln, *post_ln;  /* [H] */
  bf16_t *q_norm, *k_norm;     /* [D] */
  bf16_t *router;              /* [E, H] */
  int32_t *qkv_q;              /* tile layout of [H, qkv_n]: H * qkv_n / 8 words */
  bf16_t *qkv_s;               /* [H/128 * qkv_n] */
  int32_t *o_q;                /* tile layout of [hq_loc D, H] */
  bf16_t *o_s;
  int32_t *w13_q;              /* [E][H * 2 I_loc / 8] interleaved gate/up tiles */
  bf16_t *w13_s;               /* [E][H/128 * 2 I_loc] */
  int32_t *w2_q;               /* [E][I_loc * H / 8] */
  bf16_t *w2_s;                /* [E][I_loc/128 * H] */
};

struct gw_rank {
  struct wt_dims d;
  bf16_t *embed;               /* [V, H] */
  bf16_t *final_ln;            /* [H] */
  bf16_t *lm_head;             /* [v_loc, H] */
  struct gw_layer *layers;     /* host array [L] of device pointers */
  void *base;                  /* the one device allocation */
  int64_t n_bytes;
};

int64_t gw_rank_bytes(const struct wt_dims *d);
/* Allocates and fills the rank's weights on the current device. ckpt == NULL: random weights
 * (seed, skew as wsynth.h). stream: cudaStream_t. Out of memory -> ERR_DEVICE naming the need. */
int gw_create(struct gw_rank *g, const struct wt_dims *d, const struct st_ckpt *ckpt, uint64_t seed, float skew,
              void *stream);
void gw_destroy(struct gw_rank *g);

#ifdef __cplusplus
}
#endif

#endif
