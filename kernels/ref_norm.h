/* ref_norm: RMSNorm (optionally with the fused residual add) and the per-head q/k RMSNorm +
 * neox RoPE of Qwen3 attention, in plain C with float math (kernels.h gives the semantics). */
#ifndef SERVESIM_REF_NORM_H
#define SERVESIM_REF_NORM_H

#include <stdint.h>

#include "kernels/ref_bf16.h"

/* out bf16 [T, H]; x bf16 [T, H]; residual bf16 [T, H] or NULL (updated in place); w [H]. */
void ref_rmsnorm(bf16_t *out, const bf16_t *x, bf16_t *residual, const bf16_t *w, int T, int H,
                 float eps);
/* RoPE inverse frequency of pair i (of D/2): theta^(-2i/D), computed in double, then float,
 * so the CUDA kernel can use the identical value. */
float ref_norm_rope_inv_freq(int i, int D, float theta);
/* In place on qkv bf16 [T, (nq + 2*nkv) * D]: RMSNorm of each q head (q_w [D]) and k head
 * (k_w [D]), then neox RoPE at positions int32 [T]. */
void ref_qk_norm_rope(bf16_t *qkv, const bf16_t *q_w, const bf16_t *k_w, const int32_t *positions,
                      int T, int nq, int nkv, int D, float eps, float theta);

#endif
