/* kernels: C-ABI launchers of the CUDA kernels that run one Qwen3-MoE GPTQ-Int4 layer.
 *
 * Plain C (no CUDA headers needed): streams are `kern_stream_t` (the same type as cudaStream_t),
 * the cuBLAS handle is `kern_blas_t` (the same type as cublasHandle_t). bf16 tensors are
 * uint16_t (bf16_t) device pointers, fp16 GPTQ scales too. Every buffer is device memory unless
 * the comment says host. Shapes are row-major, written [rows, cols].
 *
 * Every launcher enqueues work on `stream` and returns an int status (common/err.h): 0 ok,
 * ERR_INPUT for shapes it does not support (the message, through err_msg(), names the value),
 * ERR_DEVICE when a CUDA/cuBLAS call failed (the message names file:line and the CUDA error).
 * Nothing synchronises; nothing allocates device memory: workspaces are passed in, sized by the
 * matching *_workspace_bytes function. All kernels are deterministic (no float atomics).
 *
 * Weights: GPTQ sym int4, group 128, desc_act false (FACTS.md). The GEMMs do not read the
 * checkpoint's qweight [K/8, N] directly: kern_gptq_repack runs once at load and rewrites
 * qweight + scales into the "tile" layout below, in which each lane of a warp reads the
 * operand fragments of a k64 chunk's four m16n8k16 steps with one 16-byte load (the mma.sync
 * kernels) or four 4-byte loads (the Hopper wgmma kernels). The layout is:
 *   qrep   int32 [N/16][K/64][8][4][4]  one int32 = 8 nibbles = a lane's A fragment of one
 *          m16n8k16 tile (rows = output columns n, reduction = k); see kernels/ref_w4a16.h for
 *          the exact nibble -> (n, k) map (ref_w4a16_repack / ref_w4a16_unrepack) and
 *          kernels/w4g_layout.h for how the mma.sync and wgmma kernels read it.
 *   srep   bf16  [K/128][N/16][8][2]        scale of columns (n16*16 + g, n16*16 + g + 8) as a pair.
 * Both sizes equal the checkpoint's (K*N/2 bytes of int4, K/128*N*2 bytes of scales).
 * Supported: K % 128 == 0, N % 16 == 0. Every Qwen3-MoE linear at TP 1, 2, 4 and the attention
 * linears at TP 8 qualify; the experts' down_proj at TP=8 without EP (K = 1536/8 = 192, groups
 * split across ranks) is rejected with ERR_INPUT, as vLLM's Marlin path rejects it.
 */
#ifndef SERVESIM_KERNELS_H
#define SERVESIM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ref_bf16.h" /* bf16_t */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *kern_stream_t;   /* == cudaStream_t */
typedef struct cublasContext *kern_blas_t;   /* == cublasHandle_t */

/* ---- GPTQ int4 weights ---------------------------------------------------------------- */

/* Rewrites one checkpoint linear into the tile layout (run once per linear at load).
 *   qrep   int32 [K*N/8] out (tile layout);  srep bf16 [K/128*N] out (scales as bf16)
 *   qweight int32 [K/8, N] (checkpoint); scales fp16 [K/128, N] (checkpoint).
 * qzeros are not read: sym checkpoints store zero 7 (effective 8) everywhere. */
int kern_gptq_repack(int32_t *qrep, bf16_t *srep, const int32_t *qweight, const uint16_t *scales,
                     int K, int N, kern_stream_t stream);

/* The same for an expert's gate_proj + up_proj pair, interleaved so that the GEMM epilogue
 * sees gate column i and up column i in one thread (fused SiLU(gate) * up):
 *   qrep int32 [K*2I/8]; srep bf16 [K/128*2I]; qw_gate, qw_up int32 [K/8, I];
 *   s_gate, s_up fp16 [K/128, I]. Requires I % 8 == 0 and K % 128 == 0.
 * For stacked experts call once per expert with qrep + e*K*2I/8 and srep + e*K/128*2I. */
int kern_gptq_repack_gate_up(int32_t *qrep, bf16_t *srep, const int32_t *qw_gate,
                             const uint16_t *s_gate, const int32_t *qw_up, const uint16_t *s_up,
                             int K, int I, kern_stream_t stream);

/* Workspace for kern_w4a16_gemm's split-K and (Hopper, 17 rows and more) stream-K schedules
 * (partials + arrival counters / flags). Allocate once for the largest M and N used,
 * cudaMemset it to 0 ONCE after allocation: the kernels leave the counters at zero again. One
 * workspace must not be used by two streams concurrently. Without one (NULL), or with one too
 * small, the GEMMs still run, with less parallel schedules. At least ~21 MB (the stream-K slots
 * of 160 SMs' tiles of up to 256 x 128 floats); more for N above ~10240. */
size_t kern_w4a16_workspace_bytes(int max_M, int max_N);

/* y = x * W (GPTQ int4, fp32 accumulation on tensor cores, bf16 out).
 *   y bf16 [M, N] out; x bf16 [M, K]; qrep/srep: tile layout of W [K, N].
 * Any M >= 1 (M = 0 is a no-op). x, qrep, srep and y 16-byte aligned (the Hopper path for
 * 17 rows and more reads the first three by TMA and writes y in 16-byte rows; ERR_INPUT
 * otherwise). */
int kern_w4a16_gemm(bf16_t *y, const bf16_t *x, const int32_t *qrep, const bf16_t *srep, int M,
                    int K, int N, void *workspace, size_t workspace_bytes, kern_stream_t stream);

/* ---- bf16 dense (cuBLAS): lm_head, router, the benchmark's baseline --------------------- */

/* y = x * w^T with fp32 accumulation: y bf16 [M, N] out; x bf16 [M, K]; w bf16 [N, K]
 * (PyTorch Linear layout [out, in], e.g. lm_head.weight [V, H], mlp.gate.weight [E, H]). */
int kern_linear_bf16(kern_blas_t blas, bf16_t *y, const bf16_t *x, const bf16_t *w, int M, int K,
                     int N, kern_stream_t stream);

/* ---- MoE -------------------------------------------------------------------------------- */

/* Softmax over E router logits, top-k (ties: lower expert id first), and when renorm != 0
 * divide the k weights by their sum (norm_topk_prob). Softmax in fp32.
 *   topk_ids int32 [T, k] out (descending weight); topk_w float [T, k] out;
 *   logits bf16 [T, E]. E <= 1024, k <= 32. */
int kern_moe_route(int32_t *topk_ids, float *topk_w, const bf16_t *logits, int T, int E, int k,
                   int renorm, kern_stream_t stream);

/* Groups the (token, slot) pairs whose expert this rank owns, experts [e0, e1), by expert.
 * Pair index p = t*k + j. Order inside an expert is ascending p (deterministic).
 *   expert_off int32 [e1-e0+1] out: rows of local expert e are [expert_off[e], expert_off[e+1])
 *   sorted_pair int32 [T*k] out: sorted row r -> pair index (only the first expert_off[E_l] used)
 *   pair_row int32 [T*k] out: pair index -> sorted row, or -1 when the expert is not local.
 *   hits uint64 [e1-e0] in/out, or NULL: hits[e] += pairs routed to local expert e (the
 *   executor's expert hit counts, without a kernel of their own).
 * One block; T*k <= 1<<20, e1 - e0 <= 256. */
int kern_moe_align(int32_t *expert_off, int32_t *sorted_pair, int32_t *pair_row,
                   const int32_t *topk_ids, int T, int k, int e0, int e1, uint64_t *hits,
                   kern_stream_t stream);

/* Grouped W4A16 GEMM over local experts with the SiLU(gate) * up epilogue:
 *   h bf16 [T*k, I] out, row r = sorted row r (rows >= expert_off[E_l] untouched);
 *   x bf16 [T, H] (token t of row r is sorted_pair[r] / k);
 *   qrep/srep: E_l stacked gate_up tiles (kern_gptq_repack_gate_up), expert e at
 *   qrep + e*H*2I/8, srep + e*H/128*2I. Experts with no rows cost nothing.
 *   x_sorted: NULL, or bf16 [T*k, H] scratch (e.g. kern_moe_w4a16_down's output, free until
 *   then; 16-byte aligned) into which the Hopper wgmma path first gathers the rows in expert
 *   order (from 17 tile rows an expert: the mean T*k / E_l plus half a standard deviation of
 *   a random routing's count, kernels/moe_plan.h; SERVESIM_W4_WGMMA_MOE_FROM); NULL keeps the
 *   mma.sync tiles, which gather as they load. */
int kern_moe_w4a16_gate_up_silu(bf16_t *h, const bf16_t *x, const int32_t *qrep,
                                const bf16_t *srep, const int32_t *expert_off,
                                const int32_t *sorted_pair, int T, int k, int H, int I,
                                int n_local_experts, bf16_t *x_sorted, kern_stream_t stream);

/* Grouped W4A16 GEMM for down_proj: y bf16 [T*k, H] out (sorted rows); h bf16 [T*k, I]
 * (sorted rows, from gate_up); qrep/srep: E_l stacked tiles (kern_gptq_repack of down_proj,
 * K = I, N = H), expert e at qrep + e*I*H/8, srep + e*I/128*H. On Hopper from 17 tile rows an
 * expert (as above; SERVESIM_W4_WGMMA_MOE_FROM) with 16-byte aligned buffers, both grouped
 * GEMMs run the wgmma kernel, where the expected cost says in two launches (each expert's
 * remainder rows in a second, shorter tile; kernels/moe_plan.h); otherwise the mma.sync tiles. */
int kern_moe_w4a16_down(bf16_t *y, const bf16_t *h, const int32_t *qrep, const bf16_t *srep,
                        const int32_t *expert_off, int T, int k, int I, int H,
                        int n_local_experts, kern_stream_t stream);

/* out[t] = sum over slots j with pair_row[t*k+j] >= 0 of topk_w[t,j] * y[pair_row[t*k+j]]
 * (fp32 sum, bf16 out; a token with no local expert gets zeros: the EP all-reduce follows).
 *   out bf16 [T, H]; y bf16 [T*k, H] sorted rows; pair_row int32 [T*k]; topk_w float [T, k]. */
int kern_moe_combine(bf16_t *out, const bf16_t *y, const int32_t *pair_row, const float *topk_w,
                     int T, int k, int H, kern_stream_t stream);

/* ---- norms, rope, embedding, sampling ------------------------------------------------------ */

/* RMSNorm with optional fused residual add (vLLM's fused_add_rms_norm):
 *   residual == NULL: out = x / rms(x) * w
 *   residual != NULL: r = bf16(x + residual); residual = r (in place); out = r / rms(r) * w
 * out bf16 [T, H] (may alias x); x bf16 [T, H]; residual bf16 [T, H] or NULL; w bf16 [H].
 * H % 8 == 0, H <= 16384. */
int kern_rmsnorm(bf16_t *out, const bf16_t *x, bf16_t *residual, const bf16_t *w, int T, int H,
                 float eps, kern_stream_t stream);

/* In place on the qkv GEMM output qkv bf16 [T, (nq + 2*nkv) * D] (q heads, then k, then v):
 * per-head RMSNorm of each q head (weight q_w bf16 [D]) and k head (k_w bf16 [D]), then neox
 * RoPE (rotate halves: x[i], x[i + D/2]) at position positions[t] (int32 [T]) with
 * inv_freq[i] = theta^(-2i/D). v is untouched. D even, D <= 256. */
int kern_qk_norm_rope(bf16_t *qkv, const bf16_t *q_w, const bf16_t *k_w, const int32_t *positions,
                      int T, int nq, int nkv, int D, float eps, float theta, kern_stream_t stream);
/* The same, then the token's finished k heads and its v heads stored into the paged cache as
 * kern_kv_write_paged (below) stores them (bit-identical; a negative slot skips the token):
 * one kernel instead of two per layer. */
int kern_qk_norm_rope_kv_write(bf16_t *qkv, const bf16_t *q_w, const bf16_t *k_w, const int32_t *positions,
                               bf16_t *k_cache, bf16_t *v_cache, const int32_t *slot_mapping, int T, int nq,
                               int nkv, int D, float eps, float theta, kern_stream_t stream);

/* Paged KV cache, block size KERN_KV_BLOCK tokens. Per layer:
 *   k_cache, v_cache bf16 [num_blocks, KERN_KV_BLOCK, nkv, D]
 * Token slot s lives in block s / 16 at offset s % 16.
 * Copies k and v of token t from qkv [T, (nq+2nkv)*D] into slot slot_mapping[t] (int32 [T];
 * a negative slot skips the token, as vLLM's padding slots do). */
#define KERN_KV_BLOCK 16
int kern_kv_write_paged(bf16_t *k_cache, bf16_t *v_cache, const bf16_t *qkv,
                        const int32_t *slot_mapping, int T, int nq, int nkv, int D,
                        kern_stream_t stream);

/* Workspace of kern_attn_paged (split-context partials); 0 means none is needed. */
size_t kern_attn_workspace_bytes(int T, int nq, int D, int max_context);

/* Paged attention for decode and chunked prefill alike (GQA, causal by position):
 * token t (a query) of sequence seq = token_seq[t] attends the keys at positions
 * 0 .. positions[t] of that sequence, read from the paged cache through
 * block_tables[seq, pos / 16] -- so write the chunk's own K/V (kern_kv_write_paged) first.
 * A decode token has positions[t] = context_len - 1; a prefill chunk of n new tokens after c
 * cached ones has positions c .. c+n-1, which gives causal masking inside the chunk.
 *   out bf16 [T, nq, D]; qkv bf16 [T, (nq+2nkv)*D] (q is read from it, after qk_norm_rope);
 *   block_tables int32 [S, max_blocks]; token_seq int32 [T]; positions int32 [T];
 *   max_context >= 1 + max positions[t] (host value: sizes the split over the context).
 *   scale = 1/sqrt(D) normally. nq % nkv == 0, D == 128 (Qwen3), 64 or 32. */
int kern_attn_paged(bf16_t *out, const bf16_t *qkv, const bf16_t *k_cache, const bf16_t *v_cache,
                    const int32_t *block_tables, int max_blocks, const int32_t *token_seq,
                    const int32_t *positions, int T, int nq, int nkv, int D, int max_context,
                    float scale, void *workspace, size_t workspace_bytes, kern_stream_t stream);

/* out[t] = table[ids[t]]: out bf16 [T, H]; table bf16 [V, H]; ids int32 [T]. An id outside
 * [0, V) yields a zero row (the launcher cannot see device ids; tests check this). */
int kern_embed(bf16_t *out, const bf16_t *table, const int32_t *ids, int T, int H, int V,
               kern_stream_t stream);

/* Greedy sampling: ids[t] = argmax_v logits[t, v] (first index among ties; NaN never wins).
 *   ids int32 [T] out; logits bf16 [T, V]. */
int kern_argmax(int32_t *ids, const bf16_t *logits, int T, int V, kern_stream_t stream);

/* Whether the W4A16 GEMMs on the current device launch with programmatic dependent launch
 * (Hopper and later; SERVESIM_PDL=0 turns it off for A/B timing): each GEMM's blocks may then
 * be scheduled during the previous kernel's tail and stream their first weights before they
 * wait for its results. The other kernels only signal early (kern_common.cuh). */
int kern_pdl_on(void);

#ifdef __cplusplus
}
#endif

#endif
