/* ref_attn: paged KV cache write and paged attention (decode and chunked prefill) in plain C.
 * Cache layout (kernels.h): k_cache, v_cache bf16 [num_blocks, 16, nkv, D]; slot s is block
 * s/16, offset s%16. Token t attends keys 0..positions[t] of sequence token_seq[t]. */
#ifndef SERVESIM_REF_ATTN_H
#define SERVESIM_REF_ATTN_H

#include <stdint.h>

#include "kernels/ref_bf16.h"

void ref_kv_write_paged(bf16_t *k_cache, bf16_t *v_cache, const bf16_t *qkv,
                        const int32_t *slot_mapping, int T, int nq, int nkv, int D);
/* out bf16 [T, nq, D]; q from qkv bf16 [T, (nq+2nkv)*D]; block_tables int32 [S, max_blocks].
 * Float softmax and accumulation, one rounding at the end. */
void ref_attn_paged(bf16_t *out, const bf16_t *qkv, const bf16_t *k_cache, const bf16_t *v_cache,
                    const int32_t *block_tables, int max_blocks, const int32_t *token_seq,
                    const int32_t *positions, int T, int nq, int nkv, int D, float scale);

#endif
