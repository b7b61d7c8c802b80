/* ref_layer: plain-C embedding gather, bf16 linear, argmax. */
#include "kernels/ref_layer.h"

#include <math.h>
#include <string.h>

void ref_layer_embed(bf16_t *out, const bf16_t *table, const int32_t *ids, int T, int H, int V) {
  for (int t = 0; t < T; t++) {
    if (ids[t] < 0 || ids[t] >= V)
      memset(out + (int64_t)t * H, 0, sizeof(bf16_t) * (size_t)H);
    else
      memcpy(out + (int64_t)t * H, table + (int64_t)ids[t] * H, sizeof(bf16_t) * (size_t)H);
  }
}

void ref_layer_linear(bf16_t *y, const bf16_t *x, const bf16_t *w, int M, int K, int N) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      float s = 0;
      for (int k = 0; k < K; k++)
        s += ref_bf16_to_f32(x[(int64_t)m * K + k]) * ref_bf16_to_f32(w[(int64_t)n * K + k]);
      y[(int64_t)m * N + n] = ref_f32_to_bf16(s);
    }
}

void ref_layer_argmax(int32_t *ids, const bf16_t *logits, int T, int V) {
  for (int t = 0; t < T; t++) {
    int best = -1;
    float bv = 0;
    for (int v = 0; v < V; v++) {
      float x = ref_bf16_to_f32(logits[(int64_t)t * V + v]);
      if (isnan(x)) continue;
      if (best < 0 || x > bv) { best = v; bv = x; }
    }
    ids[t] = best < 0 ? 0 : best;
  }
}
