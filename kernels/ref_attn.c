/* ref_attn: plain-C paged KV write and paged GQA attention. */
#include "kernels/ref_attn.h"

#include <math.h>
#include <stdlib.h>

#define REF_ATTN_BLOCK 16

void ref_kv_write_paged(bf16_t *k_cache, bf16_t *v_cache, const bf16_t *qkv,
                        const int32_t *slot_mapping, int T, int nq, int nkv, int D) {
  int64_t row = (int64_t)(nq + 2 * nkv) * D;
  for (int t = 0; t < T; t++) {
    int s = slot_mapping[t];
    if (s < 0) continue;
    for (int h = 0; h < nkv; h++)
      for (int d = 0; d < D; d++) {
        int64_t dst = ((int64_t)s * nkv + h) * D + d; /* [blk][off] == slot */
        k_cache[dst] = qkv[t * row + (int64_t)(nq + h) * D + d];
        v_cache[dst] = qkv[t * row + (int64_t)(nq + nkv + h) * D + d];
      }
  }
}

void ref_attn_paged(bf16_t *out, const bf16_t *qkv, const bf16_t *k_cache, const bf16_t *v_cache,
                    const int32_t *block_tables, int max_blocks, const int32_t *token_seq,
                    const int32_t *positions, int T, int nq, int nkv, int D, float scale) {
  int64_t row = (int64_t)(nq + 2 * nkv) * D;
  int group = nq / nkv;
  int max_pos = 0;
  for (int t = 0; t < T; t++) max_pos = positions[t] > max_pos ? positions[t] : max_pos;
  float *p = malloc(sizeof(float) * (size_t)(max_pos + 1));
  float *acc = malloc(sizeof(float) * (size_t)D);
  if (!p || !acc) abort();
  for (int t = 0; t < T; t++) {
    const int32_t *bt = block_tables + (int64_t)token_seq[t] * max_blocks;
    int n_keys = positions[t] + 1;
    for (int h = 0; h < nq; h++) {
      int kvh = h / group;
      const bf16_t *q = qkv + t * row + (int64_t)h * D;
      float mx = -INFINITY;
      for (int j = 0; j < n_keys; j++) {
        int64_t slot = (int64_t)bt[j / REF_ATTN_BLOCK] * REF_ATTN_BLOCK + j % REF_ATTN_BLOCK;
        const bf16_t *kr = k_cache + (slot * nkv + kvh) * D;
        float s = 0;
        for (int d = 0; d < D; d++) s += ref_bf16_to_f32(q[d]) * ref_bf16_to_f32(kr[d]);
        p[j] = s * scale;
        mx = fmaxf(mx, p[j]);
      }
      float sum = 0;
      for (int d = 0; d < D; d++) acc[d] = 0;
      for (int j = 0; j < n_keys; j++) {
        int64_t slot = (int64_t)bt[j / REF_ATTN_BLOCK] * REF_ATTN_BLOCK + j % REF_ATTN_BLOCK;
        const bf16_t *vr = v_cache + (slot * nkv + kvh) * D;
        float e = expf(p[j] - mx);
        sum += e;
        for (int d = 0; d < D; d++) acc[d] += e * ref_bf16_to_f32(vr[d]);
      }
      for (int d = 0; d < D; d++)
        out[((int64_t)t * nq + h) * D + d] = ref_f32_to_bf16(acc[d] / sum);
    }
  }
  free(p);
  free(acc);
}
