/* ref_layer: the small pieces around a decoder layer in plain C: embedding gather, dense bf16
 * linear (lm_head, router), greedy argmax. */
#ifndef SERVESIM_REF_LAYER_H
#define SERVESIM_REF_LAYER_H

#include <stdint.h>

#include "kernels/ref_bf16.h"

/* out bf16 [T, H] = table bf16 [V, H] rows ids int32 [T]; an id outside [0, V) gives zeros. */
void ref_layer_embed(bf16_t *out, const bf16_t *table, const int32_t *ids, int T, int H, int V);
/* y bf16 [M, N] = x bf16 [M, K] * w^T, w bf16 [N, K]; float accumulation. */
void ref_layer_linear(bf16_t *y, const bf16_t *x, const bf16_t *w, int M, int K, int N);
/* ids int32 [T] = argmax over logits bf16 [T, V] (first index among ties; NaN never wins). */
void ref_layer_argmax(int32_t *ids, const bf16_t *logits, int T, int V);

#endif
