/* wsynth: the value of every element of a random Qwen3-MoE GPTQ checkpoint, as a pure function
 * of (seed, tensor id, element index in the full Hugging Face tensor).
 *
 * Included by C (host synthesis, the checkpoint writer, the C reference) and by CUDA (the
 * on-GPU synthesis kernel), so a rank that synthesizes its TP slice on the device gets exactly
 * the bits the host would have written for that slice: no 120 GB host copy, and TP=1, TP=2 and
 * a written checkpoint all hold the same model. Only integer arithmetic and exactly
 * representable float operations are used, so host and device agree bit for bit.
 *
 * Value design (random but shaped like a trained model, so activations stay in range):
 *   qweight  nibbles symmetric around 8 (see ws_qweight); qzeros 7 (sym=true, effective zero 8);
 *   scales   fp16 in [2^e, 2^(e+1)) with e = -3 - ceil(log2 K)/2, so w has std ~ 0.9/sqrt(K)
 *            (a quarter of that for o_proj and down_proj);
 *   norms    1 +- 1/8; embeddings +-1 (as large as a sublayer output, so tokens stay distinct); lm_head +-1/64; router +-1/32 times the skew factor.
 * Router skew: row e of mlp.gate.weight is multiplied by 1 + skew * r(e)/(E-1), r a per-layer
 * permutation of the experts. Larger rows give wider logits, which win top-k more often: skew 0
 * is uniform routing, skew 1 makes the hottest expert's logits twice as wide as the coldest's. */
#ifndef SERVESIM_EXEC_WSYNTH_H
#define SERVESIM_EXEC_WSYNTH_H

#include <stdint.h>

#ifdef __CUDACC__
#define WS_HD __host__ __device__ static inline
#else
#define WS_HD static inline
#endif

/* Tensor kinds: the low bits of a tensor id. */
enum ws_kind {
  WS_EMBED = 1, WS_LM_HEAD, WS_FINAL_NORM, WS_IN_LN, WS_POST_LN, WS_Q_NORM, WS_K_NORM,
  WS_Q, WS_K, WS_V, WS_O, WS_ROUTER, WS_GATE, WS_UP, WS_DOWN
};
/* Parts of a GPTQ linear. */
enum ws_part { WS_PART_VALUE = 0, WS_PART_QWEIGHT = 1, WS_PART_SCALES = 2 };

WS_HD uint64_t ws_tensor_id(int layer, int kind, int expert) {
  return ((uint64_t)(uint32_t)(layer + 1) << 32) | ((uint64_t)(uint32_t)kind << 16) | (uint32_t)expert;
}

/* splitmix64 finaliser of a mix of the four inputs. */
WS_HD uint32_t ws_hash(uint64_t seed, uint64_t tid, int part, uint64_t idx) {
  uint64_t z = seed ^ (tid * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)part << 61) ^ (idx * 0xD1B54A32D192ED03ull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (uint32_t)(z >> 32);
}

/* Uniform in [-1, 1) with 24 bits: exact in float. */
WS_HD float ws_sym(uint32_t h) { return (float)(int32_t)(h >> 8) * (1.0f / 8388608.0f) - 1.0f; }

/* float -> bf16 bits, round to nearest even (the same code as kernels/ref_bf16.h). */
WS_HD uint16_t ws_f32_to_bf16(float f) {
  union { float f; uint32_t u; } v;
  v.f = f;
  uint32_t u = v.u;
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

/* ceil(log2(k)) for k >= 1. */
WS_HD int ws_log2_ceil(int64_t k) {
  int b = 0;
  while (((int64_t)1 << b) < k) b++;
  return b;
}

/* fp16 scale bits for a GPTQ linear with k inputs: [2^e, 2^(e+1)), e = -3 - ceil(log2 k)/2.
 * Only the top 4 mantissa bits are random. Why: the GPU kernels dequantise in bf16
 * ((q - 8) * scale rounded to 8 significant bits, as Marlin does) while the C reference uses
 * exact float weights. With a 5-significant-bit scale and |q - 8| <= 8 (3 bits) the product is
 * exact in bf16, so both sides multiply by the same weights and the comparison measures the
 * forward pass, not that rounding (which would otherwise flip ~1/4 of the bf16 roundings after
 * every GEMM). The value is also exact in bf16 itself (the kernels keep scales as bf16). */
WS_HD uint16_t ws_scale_fp16(uint32_t h, int64_t k, uint64_t tid) {
  /* Output projections (o_proj, down_proj) are 4x smaller: the sublayers add a quarter of the
   * residual's size, as in trained models, so the residual stream (and the routing it drives)
   * is not rewritten wholesale by every layer. */
  int kind = (int)((tid >> 16) & 0xffff);
  int e = -3 - ws_log2_ceil(k) / 2 - ((kind == WS_O || kind == WS_DOWN) ? 2 : 0);
  int biased = e + 15;
  if (biased < 1) biased = 1;
  return (uint16_t)((biased << 10) | (h & 0x3c0u));
}

WS_HD uint32_t ws_qweight(uint64_t seed, uint64_t tid, uint64_t idx) {
  uint32_t x = ws_hash(seed, tid, WS_PART_QWEIGHT, idx);
  uint32_t zero = ~(x | (x >> 1) | (x >> 2) | (x >> 3)) & 0x11111111u;
  return x | (zero << 3);
}

#define WS_QZEROS_SYM4 0x77777777u

/* Per-layer rank of expert e for the router skew: e * a + layer mod E with a odd and coprime to
 * E (the first odd a >= 37 that is). */
WS_HD int ws_expert_rank(int e, int layer, int n_experts) {
  int a = 37;
  for (;; a += 2) {
    int x = a, y = n_experts;
    while (y) { int t = x % y; x = y; y = t; }
    if (x == 1) break;
  }
  return (int)(((int64_t)e * a + layer) % n_experts);
}

/* bf16 bits of element idx of a non-quantized tensor. row = the tensor's first index (the
 * expert for the router), used only by the router's skew. */
WS_HD uint16_t ws_bf16_value(uint64_t seed, int layer, int kind, int64_t row, uint64_t idx,
                             int n_experts, float skew) {
  uint32_t h = ws_hash(seed, ws_tensor_id(layer, kind, 0), WS_PART_VALUE, idx);
  float v;
  switch (kind) {
    case WS_EMBED: v = ws_sym(h); break;
    case WS_LM_HEAD: v = ws_sym(h) * 0.015625f; break;
    case WS_ROUTER: {
      int r = ws_expert_rank((int)row, layer, n_experts);
      float f = 1.0f + skew * (float)r / (float)(n_experts > 1 ? n_experts - 1 : 1);
      v = ws_sym(h) * 0.03125f * f;
      break;
    }
    default: v = 1.0f + ws_sym(h) * 0.125f; break;   /* RMSNorm weights */
  }
  return ws_f32_to_bf16(v);
}

#endif
