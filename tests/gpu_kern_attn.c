/* gpu_kern_attn: q/k RMSNorm + RoPE, the paged KV write (bit-exact) and paged attention against
 * ref_*: decode batches with contexts 1..5000 (many context parts, workspace merge), parts sized
 * for a larger capacity than the contexts (as a CUDA graph captures them), a chunked prefill
 * (cached context + causal chunk), GQA groups of 16, 8, 5 and 1, each head split forced both
 * ways (SERVESIM_ATTN_HEADS) on the same shapes, head_dim 128, 64 and 32, a
 * shuffled block table; q/k norm + RoPE alone and fused with the cache write (bit-identical).
 * Label gpu; exit 77 without a GPU. */
#include <stdlib.h>
#include <string.h>

#include "kernels/attn_plan.h"
#include "kernels/ref_attn.h"
#include "kernels/ref_norm.h"
#include "tests/check.h"
#include "tests/gpu_kern_util.h"
#include "tests/kern_test_util.h"

static void test_qk_norm_rope(struct rng *r, int T, int nq, int nkv, int D) {
  const int row = (nq + 2 * nkv) * D;
  bf16_t *qkv = kt_alloc(2 * (size_t)T * row), *g = kt_alloc(2 * (size_t)T * row), *qw = kt_alloc(2 * D), *kw = kt_alloc(2 * D);
  kt_fill_bf16(r, qkv, (int64_t)T * row, 3.0f);
  bf16_t *in = kt_alloc(2 * (size_t)T * row);
  memcpy(in, qkv, 2 * (size_t)T * row);
  kt_fill_bf16(r, qw, D, 1.0f);
  kt_fill_bf16(r, kw, D, 1.0f);
  int32_t *pos = kt_alloc(4 * (size_t)T);
  for (int t = 0; t < T; t++) pos[t] = (int32_t)rng_range(r, 0, 40959);
  bf16_t *d_qkv = gk_up(qkv, 2 * (size_t)T * row), *d_qw = gk_up(qw, 2 * D), *d_kw = gk_up(kw, 2 * D);
  int32_t *d_pos = gk_up(pos, 4 * (size_t)T);
  ref_qk_norm_rope(qkv, qw, kw, pos, T, nq, nkv, D, 1e-6f, 1e6f);
  GK_KERN(kern_qk_norm_rope(d_qkv, d_qw, d_kw, d_pos, T, nq, nkv, D, 1e-6f, 1e6f, 0));
  gk_down(g, d_qkv, 2 * (size_t)T * row);
  double e = ref_bf16_nmse(g, qkv, (int64_t)T * row);
  CHECK_MSG(e <= KT_NMSE_BF16, "qk_norm_rope T=%d nq=%d nkv=%d D=%d: nmse %.3g", T, nq, nkv, D, e);
  /* fused with the cache write: qkv bit-identical to the unfused kernel's, and the cache
   * exactly what kern_kv_write_paged's reference makes of it; token 1 skipped (slot -1) */
  const int n_slots = 2 * T + 3;
  int32_t *slots = kt_alloc(4 * (size_t)T);
  for (int t = 0; t < T; t++) slots[t] = t == 1 ? -1 : (int32_t)((7 * t + 3) % n_slots);
  const size_t cache = 2 * (size_t)n_slots * nkv * D;
  bf16_t *kc = kt_alloc(cache), *vc = kt_alloc(cache), *gkc = kt_alloc(cache), *gvc = kt_alloc(cache),
         *g2 = kt_alloc(2 * (size_t)T * row);
  memset(kc, 0, cache);
  memset(vc, 0, cache);
  ref_kv_write_paged(kc, vc, g, slots, T, nq, nkv, D);
  int32_t *d_slots = gk_up(slots, 4 * (size_t)T);
  bf16_t *d_kc = gk_dev(cache), *d_vc = gk_dev(cache);
  GK_CUDA(cudaMemset(d_kc, 0, cache));
  GK_CUDA(cudaMemset(d_vc, 0, cache));
  GK_CUDA(cudaMemcpy(d_qkv, in, 2 * (size_t)T * row, cudaMemcpyHostToDevice));
  GK_KERN(kern_qk_norm_rope_kv_write(d_qkv, d_qw, d_kw, d_pos, d_kc, d_vc, d_slots, T, nq, nkv, D, 1e-6f, 1e6f, 0));
  gk_down(g2, d_qkv, 2 * (size_t)T * row);
  gk_down(gkc, d_kc, cache);
  gk_down(gvc, d_vc, cache);
  CHECK_MSG(memcmp(g2, g, 2 * (size_t)T * row) == 0, "qk_norm_rope_kv_write T=%d nq=%d: qkv differs from unfused", T, nq);
  CHECK_MSG(memcmp(gkc, kc, cache) == 0, "qk_norm_rope_kv_write T=%d nq=%d nkv=%d: K cache differs", T, nq, nkv);
  CHECK_MSG(memcmp(gvc, vc, cache) == 0, "qk_norm_rope_kv_write T=%d nq=%d nkv=%d: V cache differs", T, nq, nkv);
  cudaFree(d_slots); cudaFree(d_kc); cudaFree(d_vc);
  free(slots); free(kc); free(vc); free(gkc); free(gvc); free(g2); free(in);
  cudaFree(d_qkv); cudaFree(d_qw); cudaFree(d_kw); cudaFree(d_pos);
  free(qkv); free(g); free(qw); free(kw); free(pos);
}

/* S sequences with lens[s] tokens in the cache; queries: the last q_new[s] tokens of each.
 * cap > 0 passes max_context = cap (a CUDA graph sized for the KV capacity) instead of the
 * longest context, so the parts are sized for cap while the tokens' contexts are shorter. */
static void test_attn_cap(struct rng *r, int S, const int *lens, const int *q_new, int nq, int nkv, int D, int cap) {
  const int row = (nq + 2 * nkv) * D;
  int max_len = 0, total = 0, T = 0;
  for (int s = 0; s < S; s++) {
    max_len = lens[s] > max_len ? lens[s] : max_len;
    total += lens[s];
    T += q_new[s];
  }
  if (cap > max_len) max_len = cap;
  const int max_blocks = (max_len + 15) / 16 + 1, n_blocks = S * max_blocks;
  /* block table: a random permutation of the pool */
  int32_t *perm = kt_alloc(4 * (size_t)n_blocks), *bt = kt_alloc(4 * (size_t)n_blocks);
  for (int i = 0; i < n_blocks; i++) perm[i] = i;
  for (int i = n_blocks - 1; i > 0; i--) {
    int j = (int)rng_range(r, 0, i), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  memcpy(bt, perm, 4 * (size_t)n_blocks);
  /* all tokens' qkv rows, then write all to the cache (ref and GPU) */
  bf16_t *all = kt_alloc(2 * (size_t)total * row);
  kt_fill_bf16(r, all, (int64_t)total * row, 1.0f);
  int32_t *slots = kt_alloc(4 * (size_t)total), *tseq = kt_alloc(4 * (size_t)T), *pos = kt_alloc(4 * (size_t)T);
  bf16_t *q = kt_alloc(2 * (size_t)T * row);
  int i = 0, qi = 0;
  for (int s = 0; s < S; s++)
    for (int p = 0; p < lens[s]; p++, i++) {
      slots[i] = bt[s * max_blocks + p / 16] * 16 + p % 16;
      if (p >= lens[s] - q_new[s]) {
        memcpy(q + (size_t)qi * row, all + (size_t)i * row, 2 * (size_t)row);
        tseq[qi] = s;
        pos[qi] = p;
        qi++;
      }
    }
  const size_t cache = 2 * (size_t)n_blocks * 16 * nkv * D;
  bf16_t *kc = kt_alloc(cache), *vc = kt_alloc(cache), *gk = kt_alloc(cache), *out = kt_alloc(2 * (size_t)T * nq * D),
         *gout = kt_alloc(2 * (size_t)T * nq * D);
  ref_kv_write_paged(kc, vc, all, slots, total, nq, nkv, D);
  bf16_t *d_all = gk_up(all, 2 * (size_t)total * row), *d_kc = gk_dev(cache), *d_vc = gk_dev(cache);
  GK_CUDA(cudaMemcpy(d_kc, kc, cache, cudaMemcpyHostToDevice)); /* unused slots identical too */
  GK_CUDA(cudaMemcpy(d_vc, vc, cache, cudaMemcpyHostToDevice));
  GK_CUDA(cudaMemset(d_kc, 0, cache));
  GK_CUDA(cudaMemset(d_vc, 0, cache));
  memset(kc, 0, cache);
  memset(vc, 0, cache);
  ref_kv_write_paged(kc, vc, all, slots, total, nq, nkv, D);
  int32_t *d_slots = gk_up(slots, 4 * (size_t)total);
  GK_KERN(kern_kv_write_paged(d_kc, d_vc, d_all, d_slots, total, nq, nkv, D, 0));
  gk_down(gk, d_kc, cache);
  CHECK_MSG(memcmp(gk, kc, cache) == 0, "kv write K differs");
  gk_down(gk, d_vc, cache);
  CHECK_MSG(memcmp(gk, vc, cache) == 0, "kv write V differs");
  const float scale = 1.0f / sqrtf((float)D);
  ref_attn_paged(out, q, kc, vc, bt, max_blocks, tseq, pos, T, nq, nkv, D, scale);
  bf16_t *d_q = gk_up(q, 2 * (size_t)T * row), *d_out = gk_dev(2 * (size_t)T * nq * D);
  int32_t *d_bt = gk_up(bt, 4 * (size_t)n_blocks), *d_tseq = gk_up(tseq, 4 * (size_t)T), *d_pos = gk_up(pos, 4 * (size_t)T);
  size_t ws_bytes = kern_attn_workspace_bytes(T, nq, D, max_len);
  void *ws = ws_bytes ? gk_dev(ws_bytes) : NULL;
  GK_KERN(kern_attn_paged(d_out, d_q, d_kc, d_vc, d_bt, max_blocks, d_tseq, d_pos, T, nq, nkv, D, max_len, scale, ws,
                          ws_bytes, 0));
  gk_down(gout, d_out, 2 * (size_t)T * nq * D);
  double e = ref_bf16_nmse(gout, out, (int64_t)T * nq * D);
  CHECK_MSG(e <= KT_NMSE_BF16, "attention S=%d T=%d nq=%d nkv=%d D=%d max_len=%d: nmse %.3g", S, T, nq, nkv, D, max_len, e);
  printf("attention S=%d T=%d nq=%d nkv=%d D=%d max_len=%d parts-ws=%zu B: nmse %.2g\n", S, T, nq, nkv, D, max_len,
         ws_bytes, e);
  /* this call's exact need (kernels/attn_plan.h): one byte less is refused, not overrun */
  const int hpb = attn_plan_heads_per_block(T, nq, nkv, max_len, getenv("SERVESIM_ATTN_HEADS"));
  const size_t need = attn_plan_call_bytes(T, nq, D, attn_plan_parts((int64_t)T * (nq / hpb), max_len));
  CHECK(need <= ws_bytes);
  if (need)
    CHECK(kern_attn_paged(d_out, d_q, d_kc, d_vc, d_bt, max_blocks, d_tseq, d_pos, T, nq, nkv, D, max_len, scale, ws,
                          need - 1, 0) == ERR_INPUT);
  cudaFree(d_all); cudaFree(d_kc); cudaFree(d_vc); cudaFree(d_slots); cudaFree(d_q); cudaFree(d_out);
  cudaFree(d_bt); cudaFree(d_tseq); cudaFree(d_pos); cudaFree(ws);
  free(perm); free(bt); free(all); free(slots); free(tseq); free(pos); free(q); free(kc); free(vc); free(gk);
  free(out); free(gout);
}

static void test_attn(struct rng *r, int S, const int *lens, const int *q_new, int nq, int nkv, int D) {
  test_attn_cap(r, S, lens, q_new, nq, nkv, D, 0);
}

int main(void) {
  if (!gk_have_gpu()) CHECK_SKIP("no CUDA device");
  struct rng r;
  rng_seed(&r, kt_seed("gpu_kern_attn"));
  test_qk_norm_rope(&r, 7, 16, 1, 128);
  test_qk_norm_rope(&r, 3, 64, 4, 128);
  test_qk_norm_rope(&r, 2, 8, 2, 64);
  /* decode: 4 sequences, contexts 1, 17, 600, 1300 (1300 spans 3 parts of 512) */
  test_attn(&r, 4, (const int[]){1, 17, 600, 1300}, (const int[]){1, 1, 1, 1}, 16, 1, 128);
  /* chunked prefill: 20 cached + 45 new; and a fresh prompt of 33 */
  test_attn(&r, 2, (const int[]){65, 33}, (const int[]){45, 33}, 16, 1, 128);
  test_attn(&r, 2, (const int[]){700, 9}, (const int[]){3, 9}, 8, 1, 128);   /* TP=8 group */
  test_attn(&r, 2, (const int[]){530, 40}, (const int[]){2, 40}, 8, 2, 64);  /* 30B-like, D=64 */
  test_attn(&r, 1, (const int[]){77}, (const int[]){77}, 64, 4, 128);        /* TP=1 heads */
  /* batch-1 decode: the parts fill the GPU (128-key parts), G = 16 and G = 1 (split heads) */
  test_attn(&r, 1, (const int[]){1100}, (const int[]){1}, 16, 1, 128);
  test_attn(&r, 1, (const int[]){5000}, (const int[]){1}, 1, 1, 128);
  test_attn(&r, 3, (const int[]){129, 1, 257}, (const int[]){1, 1, 1}, 2, 2, 128); /* G = 1, nkv 2 */
  /* graph-style: parts sized for a capacity of 4096 keys, contexts of 1..700 */
  test_attn_cap(&r, 4, (const int[]){700, 1, 300, 129}, (const int[]){1, 1, 1, 1}, 16, 1, 128, 4096);
  test_attn_cap(&r, 2, (const int[]){40, 333}, (const int[]){40, 5}, 8, 1, 64, 2000); /* prefill + decode */
  /* head_dim 32 (the tiny test model) */
  test_attn(&r, 2, (const int[]){600, 30}, (const int[]){1, 30}, 4, 2, 32);
  /* each head choice forced on the same shapes (the rule picks one; both must be right), and a
   * group of 5 heads (Qwen3-14B's 40 / 8) on the 8-head block: rows 5..7 of the group unused */
  static const char *force[2] = {"split", "group"};
  for (int f = 0; f < 2; f++) {
    setenv("SERVESIM_ATTN_HEADS", force[f], 1);
    test_attn(&r, 3, (const int[]){1100, 77, 2000}, (const int[]){1, 1, 1}, 16, 1, 128);
    test_attn(&r, 2, (const int[]){300, 45}, (const int[]){1, 45}, 40, 8, 128);
  }
  unsetenv("SERVESIM_ATTN_HEADS");
  test_attn(&r, 2, (const int[]){700, 9}, (const int[]){1, 9}, 40, 8, 64);
  return check_report("gpu_kern_attn");
}
