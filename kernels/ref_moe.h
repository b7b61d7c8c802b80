/* ref_moe: the fused-MoE pipeline in plain C, step by step as the CUDA launchers run it
 * (route -> align -> gate_up + SiLU*up -> down -> combine), with the same bf16 rounding points,
 * so each CUDA stage can be checked alone and the executor's C forward can reuse it.
 * Expert weights are in checkpoint layout, stacked over the rank's local experts:
 *   qw_gate, qw_up int32 [E_l][H/8][I]; s_gate, s_up fp16 [E_l][H/128][I];
 *   qw_down int32 [E_l][I/8][H];        s_down fp16 [E_l][I/128][H]. */
#ifndef SERVESIM_REF_MOE_H
#define SERVESIM_REF_MOE_H

#include <stdint.h>

#include "kernels/ref_bf16.h"

struct ref_moe_weights {
  const int32_t *qw_gate, *qw_up, *qw_down;
  const uint16_t *s_gate, *s_up, *s_down;
};

/* Softmax (float) over logits bf16 [T, E], top-k by weight (ties: lower id), optional
 * renormalisation: topk_ids int32 [T, k], topk_w float [T, k]. */
void ref_moe_route(int32_t *topk_ids, float *topk_w, const bf16_t *logits, int T, int E, int k,
                   int renorm);
/* Counting sort of the pairs p = t*k + j whose expert is in [e0, e1) (kernels.h semantics):
 * expert_off int32 [e1-e0+1], sorted_pair int32 [T*k], pair_row int32 [T*k] (-1 if remote). */
void ref_moe_align(int32_t *expert_off, int32_t *sorted_pair, int32_t *pair_row,
                   const int32_t *topk_ids, int T, int k, int e0, int e1);
/* h bf16 [rows, I] (sorted rows) = bf16(silu(x Wg) * (x Wu)), float accumulation. */
void ref_moe_gate_up_silu(bf16_t *h, const bf16_t *x, const struct ref_moe_weights *w,
                          const int32_t *expert_off, const int32_t *sorted_pair, int k, int H,
                          int I, int n_local);
/* y bf16 [rows, H] (sorted rows) = h Wd of the row's expert. */
void ref_moe_down(bf16_t *y, const bf16_t *h, const struct ref_moe_weights *w,
                  const int32_t *expert_off, int I, int H, int n_local);
/* out bf16 [T, H] = sum_j topk_w[t,j] * y[pair_row[t*k+j]] over local slots (float sum). */
void ref_moe_combine(bf16_t *out, const bf16_t *y, const int32_t *pair_row, const float *topk_w,
                     int T, int k, int H);
/* The whole MoE block of one rank from routing decisions: out bf16 [T, H]. Returns 0, or -1
 * when a temporary could not be allocated. */
int ref_moe_forward(bf16_t *out, const bf16_t *x, const int32_t *topk_ids, const float *topk_w,
                    const struct ref_moe_weights *w, int T, int k, int H, int I, int e0, int e1);

#endif
