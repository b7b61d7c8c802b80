/* test_kern_attn: the paged KV write (padding slots skipped) and paged attention against a
 * naive contiguous attention in double: a decode token, a prefill chunk after cached context
 * (causal inside the chunk), GQA head sharing, a shuffled block table. */
#include <string.h>

#include "kernels/ref_attn.h"
#include "tests/check.h"
#include "tests/kern_test_util.h"

enum { NQ = 4, NKV = 2, D = 64, ROW = (NQ + 2 * NKV) * D, NBLK = 8, MAXB = 4 };

int main(void) {
  struct rng r;
  rng_seed(&r, kt_seed("test_kern_attn"));
  /* two sequences: 0 with 37 tokens (3 blocks), 1 with 5 tokens (1 block) */
  const int len[2] = {37, 5};
  int32_t bt[2 * MAXB] = {5, 2, 7, 0, 3, 0, 0, 0};
  bf16_t *seq_qkv[2];
  bf16_t *kc = kt_alloc(2 * NBLK * 16 * NKV * D), *vc = kt_alloc(2 * NBLK * 16 * NKV * D);
  for (int s = 0; s < 2; s++) {
    seq_qkv[s] = kt_alloc(2 * (size_t)len[s] * ROW);
    kt_fill_bf16(&r, seq_qkv[s], (int64_t)len[s] * ROW, 1.0f);
    int32_t *slots = kt_alloc(4 * (size_t)len[s]);
    for (int p = 0; p < len[s]; p++) slots[p] = bt[s * MAXB + p / 16] * 16 + p % 16;
    ref_kv_write_paged(kc, vc, seq_qkv[s], slots, len[s], NQ, NKV, D);
    free(slots);
  }
  /* the write put token p's k head h at slot*NKV + h */
  int bad = 0;
  for (int p = 0; p < len[0]; p++)
    for (int h = 0; h < NKV; h++)
      for (int d = 0; d < D; d++) {
        int64_t slot = (int64_t)bt[p / 16] * 16 + p % 16;
        if (kc[(slot * NKV + h) * D + d] != seq_qkv[0][(int64_t)p * ROW + (NQ + h) * D + d]) bad++;
        if (vc[(slot * NKV + h) * D + d] != seq_qkv[0][(int64_t)p * ROW + (NQ + NKV + h) * D + d]) bad++;
      }
  CHECK_MSG(bad == 0, "kv write misplaced %d values", bad);
  /* a negative slot writes nothing */
  bf16_t *kc2 = kt_alloc(2 * NBLK * 16 * NKV * D);
  memcpy(kc2, kc, 2 * NBLK * 16 * NKV * D);
  int32_t neg = -1;
  ref_kv_write_paged(kc2, vc, seq_qkv[1], &neg, 1, NQ, NKV, D);
  CHECK(memcmp(kc2, kc, 2 * NBLK * 16 * NKV * D) == 0);

  /* queries: decode of seq 0 (position 36) and a chunk of seq 1 at positions 2..4 */
  enum { T = 4 };
  int32_t tseq[T] = {0, 1, 1, 1}, pos[T] = {36, 2, 3, 4};
  bf16_t q[T * ROW], out[T * NQ * D];
  for (int t = 0; t < T; t++) memcpy(q + t * ROW, seq_qkv[tseq[t]] + (int64_t)pos[t] * ROW, sizeof(bf16_t) * ROW);
  const float scale = 1.0f / sqrtf((float)D);
  ref_attn_paged(out, q, kc, vc, bt, MAXB, tseq, pos, T, NQ, NKV, D, scale);
  double want[T * NQ * D];
  for (int t = 0; t < T; t++)
    for (int h = 0; h < NQ; h++) {
      int kvh = h / (NQ / NKV);
      const bf16_t *base = seq_qkv[tseq[t]];
      double sc[64], mx = -1e300, sum = 0;
      for (int j = 0; j <= pos[t]; j++) {
        double s = 0;
        for (int d = 0; d < D; d++)
          s += (double)ref_bf16_to_f32(q[t * ROW + h * D + d]) * ref_bf16_to_f32(base[(int64_t)j * ROW + (NQ + kvh) * D + d]);
        sc[j] = s * scale;
        mx = sc[j] > mx ? sc[j] : mx;
      }
      for (int j = 0; j <= pos[t]; j++) sum += exp(sc[j] - mx);
      for (int d = 0; d < D; d++) {
        double a = 0;
        for (int j = 0; j <= pos[t]; j++)
          a += exp(sc[j] - mx) * ref_bf16_to_f32(base[(int64_t)j * ROW + (NQ + NKV + kvh) * D + d]);
        want[(t * NQ + h) * D + d] = a / sum;
      }
    }
  double e = kt_nmse_f64(out, want, T * NQ * D);
  CHECK_MSG(e <= KT_NMSE_BF16, "paged attention vs naive: nmse %.3g", e);
  /* causal: changing the key at position 4 leaves the query at position 2 unchanged */
  bf16_t out2[T * NQ * D];
  int64_t slot4 = (int64_t)bt[MAXB] * 16 + 4;
  for (int d = 0; d < D; d++) kc[(slot4 * NKV) * D + d] = ref_f32_to_bf16(5.0f);
  ref_attn_paged(out2, q, kc, vc, bt, MAXB, tseq, pos, T, NQ, NKV, D, scale);
  CHECK(memcmp(out2 + 1 * NQ * D, out + 1 * NQ * D, sizeof(bf16_t) * NQ * D) == 0);
  CHECK(memcmp(out2 + 3 * NQ * D, out + 3 * NQ * D, sizeof(bf16_t) * NQ * D) != 0);
  free(kc); free(vc); free(kc2); free(seq_qkv[0]); free(seq_qkv[1]);
  return check_report("test_kern_attn");
}
