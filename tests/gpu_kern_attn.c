/* gpu_kern_attn: q/k RMSNorm + RoPE, the paged KV write (bit-exact) and paged attention against
 * ref_*: a decode batch with contexts 1..1300 (several context parts, workspace merge), a
 * chunked prefill (cached context + causal chunk), GQA groups of 16 and 8, head_dim 128 and 64,
 * a shuffled block table. Label gpu; exit 77 without a GPU. */
#include <string.h>

#include "kernels/ref_attn.h"
#include "kernels/ref_norm.h"
#include "tests/check.h"
#include "tests/gpu_kern_util.h"
#include "tests/kern_test_util.h"

static void test_qk_norm_rope(struct rng *r, int T, int nq, int nkv, int D) {
  const int row = (nq + 2 * nkv) * D;
  bf16_t *qkv = kt_alloc(2 * (size_t)T * row), *g = kt_alloc(2 * (size_t)T * row), *qw = kt_alloc(2 * D), *kw = kt_alloc(2 * D);
  kt_fill_bf16(r, qkv, (int64_t)T * row, 3.0f);
  kt_fill_bf16(r, qw, D, 1.0f);
  kt_fill_bf16(r, kw, D, 1.0f);
  int32_t *pos = kt_alloc(4 * (size_t)T);
  for (int t = 0; t < T; t++) pos[t] = (int32_t)rng_range(r, 0, 40959);
  bf16_t *d_qkv = gk_up(qkv, 2 * (size_t)T * row), *d_qw = gk_up(qw, 2 * D), *d_kw = gk_up(kw, 2 * D);
  int32_t *d_pos = gk_up(pos, 4 * (size_t)T);
  ref_qk_norm_rope(qkv, qw, kw, pos, T, nq, nkv, D, 1e-6f, 1e6f);
  GK_KERN(kern_qk_norm_rope(d_qkv, d_qw, d_kw, d_pos, T, nq, nkv, D, 1e-6f, 1e6f, 0));
  gk_down(g, d_qkv, 2 * (size_t)T * row);
  double e = kt_nmse_bf16(g, qkv, (int64_t)T * row);
  CHECK_MSG(e <= KT_NMSE_BF16, "qk_norm_rope T=%d nq=%d nkv=%d D=%d: nmse %.3g", T, nq, nkv, D, e);
  cudaFree(d_qkv); cudaFree(d_qw); cudaFree(d_kw); cudaFree(d_pos);
  free(qkv); free(g); free(qw); free(kw); free(pos);
}

/* S sequences with lens[s] tokens in the cache; queries: the last q_new[s] tokens of each. */
static void test_attn(struct rng *r, int S, const int *lens, const int *q_new, int nq, int nkv, int D) {
  const int row = (nq + 2 * nkv) * D;
  int max_len = 0, total = 0, T = 0;
  for (int s = 0; s < S; s++) {
    max_len = lens[s] > max_len ? lens[s] : max_len;
    total += lens[s];
    T += q_new[s];
  }
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
  double e = kt_nmse_bf16(gout, out, (int64_t)T * nq * D);
  CHECK_MSG(e <= KT_NMSE_BF16, "attention S=%d T=%d nq=%d nkv=%d D=%d max_len=%d: nmse %.3g", S, T, nq, nkv, D, max_len, e);
  printf("attention S=%d T=%d nq=%d nkv=%d D=%d max_len=%d parts-ws=%zu B: nmse %.2g\n", S, T, nq, nkv, D, max_len,
         ws_bytes, e);
  if (ws_bytes) /* too small a workspace is refused, not overrun */
    CHECK(kern_attn_paged(d_out, d_q, d_kc, d_vc, d_bt, max_blocks, d_tseq, d_pos, T, nq, nkv, D, max_len, scale, ws,
                          ws_bytes - 1, 0) == ERR_INPUT);
  cudaFree(d_all); cudaFree(d_kc); cudaFree(d_vc); cudaFree(d_slots); cudaFree(d_q); cudaFree(d_out);
  cudaFree(d_bt); cudaFree(d_tseq); cudaFree(d_pos); cudaFree(ws);
  free(perm); free(bt); free(all); free(slots); free(tseq); free(pos); free(q); free(kc); free(vc); free(gk);
  free(out); free(gout);
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
  return check_report("gpu_kern_attn");
}
