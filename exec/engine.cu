/* engine: one rank of the live executor (engine.h): lifetime and the forward step on the GPU.
 *
 * Per layer, as the C reference (exec/ref_forward.c) and vLLM run it:
 *   RMSNorm (+residual) -> qkv W4A16 GEMM -> q/k RMSNorm + RoPE + paged KV write -> paged
 *   attention -> o_proj W4A16 GEMM -> all-reduce -> RMSNorm (+residual) -> router (bf16 GEMM)
 *   -> softmax/top-k/renorm -> align by expert -> grouped gate_up+SiLU -> grouped down ->
 *   weighted combine -> all-reduce.
 * Then final RMSNorm, the sampled rows, the vocab-parallel lm_head, a local argmax and an
 * all-gather of (max, argmax) pairs: greedy tokens without moving a [batch, vocab] tensor. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/err.h"
}
#include "exec/engine_int.h"
#include "kernels/kernels.h"

/* sel [n, H] = h rows sample_idx [n] */
__global__ static void eng_gather_rows_kernel(bf16_t *sel, const bf16_t *h, const int32_t *idx, int H) {
  const bf16_t *src = h + (int64_t)idx[blockIdx.x] * H;
  bf16_t *dst = sel + (int64_t)blockIdx.x * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = src[i];
}

/* pairs [n, 2] = (float bits of the local max logit, global token id) */
__global__ static void eng_argmax_pairs_kernel(int32_t *pairs, const bf16_t *logits, const int32_t *ids, int n, int v_loc,
                                       int v0) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uint32_t u = (uint32_t)logits[(int64_t)i * v_loc + ids[i]] << 16;
  pairs[2 * i] = (int32_t)u;
  pairs[2 * i + 1] = ids[i] + v0;
}

/* Router logits y [T, E] = x [T, H] w^T (w [E, H]) for small T: one block of 4 warps per
 * (expert, token), each warp a quarter of H with all its 16-byte loads issued before use, fp32
 * accumulation, bf16 out (kern_linear_bf16's semantics). cuBLAS takes 15-19 us for
 * 1 x 4096 x 128 (measured); 128 blocks reading 8 KB each take a few us. H % 32 == 0. */
#define ENG_GEMV_UNROLL 4
__global__ static void __launch_bounds__(128) eng_router_gemv_kernel(bf16_t *y, const bf16_t *x, const bf16_t *w, int H, int E) {
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int e = blockIdx.x, t = blockIdx.y;
  int q = H / 8 / 4; /* uint4 per warp */
  const uint4 *xr = (const uint4 *)(x + (int64_t)t * H) + warp * q, *wr = (const uint4 *)(w + (int64_t)e * H) + warp * q;
  float acc = 0.f;
  for (int i0 = 0; i0 < q; i0 += 32 * ENG_GEMV_UNROLL) {
    uint4 a[ENG_GEMV_UNROLL], b[ENG_GEMV_UNROLL];
#pragma unroll
    for (int u = 0; u < ENG_GEMV_UNROLL; u++) {
      int i = i0 + u * 32 + lane;
      a[u] = i < q ? xr[i] : make_uint4(0, 0, 0, 0);
      b[u] = i < q ? wr[i] : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < ENG_GEMV_UNROLL; u++) {
      const __nv_bfloat162 *pa = (const __nv_bfloat162 *)&a[u], *pb = (const __nv_bfloat162 *)&b[u];
#pragma unroll
      for (int j = 0; j < 4; j++) {
        float2 fa = __bfloat1622float2(pa[j]), fb = __bfloat1622float2(pb[j]);
        acc = fmaf(fa.x, fb.x, acc);
        acc = fmaf(fa.y, fb.y, acc);
      }
    }
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  __shared__ float part[4];
  if (lane == 0) part[warp] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    __nv_bfloat16 v = __float2bfloat16_rn((part[0] + part[1]) + (part[2] + part[3]));
    y[(int64_t)t * E + e] = *(bf16_t *)&v;
  }
}

int eng_router(eng *e, const bf16_t *router, int T, kern_stream_t s) {
  const wt_dims *d = &e->d;
  if (e->router_gemv && T <= ENG_GEMV_MAX_T) {
    dim3 grid(d->n_experts, T);
    eng_router_gemv_kernel<<<grid, 128, 0, (cudaStream_t)s>>>(e->rlogits, e->h, router, d->hidden, d->n_experts);
    return ERR_OK;
  }
  return kern_linear_bf16((kern_blas_t)e->blas, e->rlogits, e->h, router, T, d->hidden, d->n_experts, s);
}

int eng_attention(eng *e, const bf16_t *kc, const bf16_t *vc, int T, int max_context, kern_stream_t s) {
  const wt_dims *d = &e->d;
  int D = d->head_dim;
  return kern_attn_paged(e->attn, e->qkv, kc, vc, e->block_tables, e->kv.max_blocks, e->token_seq, e->positions, T,
                         d->hq_loc, d->hkv_loc, D, max_context, 1.0f / sqrtf((float)D), e->attn_ws, e->attn_ws_bytes, s);
}

int eng_forward_device(eng *e, int T, int n_sample, int max_context) {
  const wt_dims *d = &e->d;
  kern_stream_t s = (kern_stream_t)e->stream;
  int H = d->hidden, D = d->head_dim, E = d->n_experts, k = d->top_k, nq = d->hq_loc, nkv = d->hkv_loc;
  float eps = (float)e->m.rms_eps, theta = (float)e->m.rope_theta;
  ENG_TRY(kern_embed(e->resid, e->w.embed, e->tokens, T, H, d->vocab, s));
  for (int l = 0; l < d->n_layers; l++) {
    const gw_layer *L = &e->w.layers[l];
    bf16_t *kc = e->k_cache + l * e->kv_layer_elems, *vc = e->v_cache + l * e->kv_layer_elems;
    if (l == 0) ENG_TRY(kern_rmsnorm(e->h, e->resid, NULL, L->input_ln, T, H, eps, s));
    else ENG_TRY(kern_rmsnorm(e->h, e->delta, e->resid, L->input_ln, T, H, eps, s));
    ENG_TRY(kern_w4a16_gemm(e->qkv, e->h, L->qkv_q, L->qkv_s, T, H, d->qkv_n, e->gemm_ws, e->gemm_ws_bytes, s));
    ENG_TRY(kern_qk_norm_rope_kv_write(e->qkv, L->q_norm, L->k_norm, e->positions, kc, vc, e->slots, T, nq, nkv, D,
                                       eps, theta, s));
    ENG_TRY(eng_attention(e, kc, vc, T, max_context, s));
    ENG_TRY(kern_w4a16_gemm(e->delta, e->attn, L->o_q, L->o_s, T, nq * D, H, e->gemm_ws, e->gemm_ws_bytes, s));
    ENG_TRY(comm_allreduce_bf16(e->comm, e->delta, (size_t)T * H, e->stream));
    ENG_TRY(kern_rmsnorm(e->h, e->delta, e->resid, L->post_ln, T, H, eps, s));
    ENG_TRY(eng_router(e, L->router, T, s));
    ENG_TRY(kern_moe_route(e->topk_ids, e->topk_w, e->rlogits, T, E, k, e->m.norm_topk_prob, s));
    ENG_TRY(kern_moe_align(e->expert_off, e->sorted_pair, e->pair_row, e->topk_ids, T, k, 0, E,
                           (uint64_t *)(e->hits + (int64_t)l * E), s));
    /* ymoe (down's output, free until then) as the scratch gate_up's rows are gathered into */
    ENG_TRY(kern_moe_w4a16_gate_up_silu(e->hmid, e->h, L->w13_q, L->w13_s, e->expert_off, e->sorted_pair, T, k, H,
                                        d->inter_loc, E, e->ymoe, s));
    ENG_TRY(kern_moe_w4a16_down(e->ymoe, e->hmid, L->w2_q, L->w2_s, e->expert_off, T, k, d->inter_loc, H, E, s));
    ENG_TRY(kern_moe_combine(e->delta, e->ymoe, e->pair_row, e->topk_w, T, k, H, s));
    ENG_TRY(comm_allreduce_bf16(e->comm, e->delta, (size_t)T * H, e->stream));
  }
  ENG_TRY(kern_rmsnorm(e->h, e->delta, e->resid, e->w.final_ln, T, H, eps, s));
  if (n_sample > 0) {
    eng_gather_rows_kernel<<<n_sample, 256, 0, e->stream>>>(e->sel, e->h, e->sample_idx, H);
    ENG_TRY(kern_linear_bf16((kern_blas_t)e->blas, e->logits, e->sel, e->w.lm_head, n_sample, H, d->v_loc, s));
    ENG_TRY(kern_argmax(e->ids, e->logits, n_sample, d->v_loc, s));
    eng_argmax_pairs_kernel<<<(n_sample + 127) / 128, 128, 0, e->stream>>>(e->pairs, e->logits, e->ids, n_sample, d->v_loc,
                                                                   d->v0);
    ENG_TRY(comm_allgather(e->comm, e->pairs, e->gathered, (size_t)n_sample * 8, e->stream));
  }
  ENG_CUDA(cudaGetLastError());
  return ERR_OK;
}

static eng_graph *eng_find_graph(eng *e, int T) {
  for (int i = 0; i < ENG_MAX_GRAPHS; i++)
    if (e->graphs[i].n_tok == T) return &e->graphs[i];
  return NULL;
}

/* Captures the decode step of T sequences. Inputs live in fixed buffers, so the graph replays
 * with new tokens and positions; the attention is sized for the full KV capacity. */
static int eng_capture(eng *e, int T, eng_graph **out) {
  eng_graph *slot = NULL;
  for (int i = 0; i < ENG_MAX_GRAPHS && !slot; i++)
    if (e->graphs[i].n_tok == 0) slot = &e->graphs[i];
  if (!slot) {
    *out = NULL;   /* table full: the caller runs eagerly */
    return ERR_OK;
  }
  cudaGraph_t graph;
  ENG_CUDA(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal));
  int rc = eng_forward_device(e, T, T, e->cap_ctx);
  cudaError_t ce = cudaStreamEndCapture(e->stream, &graph);
  if (rc) return rc;
  if (ce != cudaSuccess) return err_set(ERR_DEVICE, "CUDA graph capture of decode batch %d: %s", T, cudaGetErrorString(ce));
  ce = cudaGraphInstantiate(&slot->exec, graph, 0);
  cudaGraphDestroy(graph);
  if (ce != cudaSuccess) return err_set(ERR_DEVICE, "CUDA graph instantiate (decode batch %d): %s", T, cudaGetErrorString(ce));
  slot->n_tok = T;
  *out = slot;
  return ERR_OK;
}

static int eng_is_decode(const batch *b) {
  if (b->n_sample != b->n_tok) return 0;
  for (int i = 0; i < b->n_sample; i++)
    if (b->sample_idx[i] != i) return 0;
  return 1;
}

int eng_step(eng *e, const batch *b, int32_t *next, bf16_t *logits) {
  int T = b->n_tok, ns = b->n_sample, tp = e->cfg.tp;
  if (T < 1 || T > e->cfg.max_tok)
    return err_set(ERR_INPUT, "step of %d tokens outside [1, max_num_batched_tokens %d]", T, e->cfg.max_tok);
  if (ns > e->kv.max_seqs) return err_set(ERR_INPUT, "%d sampled rows exceed max_num_seqs %d", ns, e->kv.max_seqs);
  if (b->max_context > e->cap_ctx)
    return err_set(ERR_INPUT, "context %d exceeds the KV capacity %d", b->max_context, e->cap_ctx);
  /* one pinned staging copy, one upload */
  int mt = e->cfg.max_tok;
  memcpy(e->h_in + 0 * mt, b->tokens, (size_t)T * 4);
  memcpy(e->h_in + 1 * mt, b->positions, (size_t)T * 4);
  memcpy(e->h_in + 2 * mt, b->token_seq, (size_t)T * 4);
  memcpy(e->h_in + 3 * mt, b->slots, (size_t)T * 4);
  memcpy(e->h_in + 4 * mt, b->sample_idx, (size_t)(ns > 0 ? ns : 0) * 4);
  ENG_CUDA(cudaEventRecord(e->ev0, e->stream));
  ENG_CUDA(cudaMemcpyAsync(e->tokens, e->h_in, (size_t)5 * mt * 4, cudaMemcpyHostToDevice, e->stream));
  eng_graph *g = NULL;
  int decode = eng_is_decode(b);
  if (decode && e->cfg.cuda_graphs) {
    g = eng_find_graph(e, T);
    if (!g) ENG_TRY(eng_capture(e, T, &g));
  }
  if (g) ENG_CUDA(cudaGraphLaunch(g->exec, e->stream));
  else ENG_TRY(eng_forward_device(e, T, ns, b->max_context));
  int64_t vl = e->d.v_loc;
  if (ns > 0) {
    ENG_CUDA(cudaMemcpyAsync(e->h_gathered, e->gathered, (size_t)tp * ns * 8, cudaMemcpyDeviceToHost, e->stream));
    if (logits) {
      if ((int64_t)e->d.vocab != vl * tp)
        return err_set(ERR_INPUT, "full logits need vocab %d divisible by tp %d", e->d.vocab, tp);
      ENG_TRY(comm_allgather(e->comm, e->logits, e->logits_all, (size_t)(ns * vl * 2), e->stream));
      ENG_CUDA(cudaMemcpyAsync(e->h_logits, e->logits_all, (size_t)(tp * ns * vl * 2), cudaMemcpyDeviceToHost,
                               e->stream));
    }
  }
  ENG_CUDA(cudaEventRecord(e->ev1, e->stream));
  ENG_CUDA(cudaEventSynchronize(e->ev1));
  float ms = 0;
  ENG_CUDA(cudaEventElapsedTime(&ms, e->ev0, e->ev1));
  e->last_ms = ms;
  /* Greedy over ranks: highest logit, ties to the lower rank (= lower token id). */
  for (int i = 0; i < ns; i++) {
    float best = -INFINITY;
    int best_id = -1;
    for (int r = 0; r < tp; r++) {
      const int32_t *p = e->h_gathered + ((int64_t)r * ns + i) * 2;
      float v;
      memcpy(&v, &p[0], 4);
      if (best_id < 0 || v > best) {
        best = v;
        best_id = p[1];
      }
    }
    next[i] = best_id;
  }
  if (logits && ns > 0)   /* [tp][ns][v_loc] -> [ns][V] */
    for (int r = 0; r < tp; r++)
      for (int i = 0; i < ns; i++)
        memcpy(logits + (int64_t)i * e->d.vocab + r * vl, e->h_logits + ((int64_t)r * ns + i) * vl, (size_t)vl * 2);
  return ERR_OK;
}

/* ---- start-up self-check of the decode fast paths ---- */

/* Runs the router GEMV next to the library GEMM it replaces (cuBLAS) on random data in this
 * engine's own buffers and enables it only when they agree (NMSE <= 1e-5: the same arithmetic
 * up to fp32 summation order). So the fast path can never silently change results on a device
 * where it was not validated; eng_fast_paths reports whether it is on. */
static int eng_selfcheck(eng *e) {
  const wt_dims *d = &e->d;
  kern_stream_t s = (kern_stream_t)e->stream;
  int T = e->kv.max_seqs < 4 ? e->kv.max_seqs : 4;
  int64_t n_h = (int64_t)T * d->hidden, n_r = (int64_t)T * d->n_experts;
  bf16_t *rnd = (bf16_t *)malloc((size_t)n_h * 2), *a = (bf16_t *)malloc((size_t)n_r * 2),
         *b = (bf16_t *)malloc((size_t)n_r * 2);
  int rc = ERR_OK;
  if (!rnd || !a || !b) {
    free(rnd), free(a), free(b);
    return err_set(ERR_NOMEM, "out of memory");
  }
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < n_h; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    rnd[i] = ref_f32_to_bf16((float)((int64_t)(x >> 40) - (1 << 23)) / (float)(1 << 23));
  }
  e->router_gemv = 0;
  if (d->hidden % 32 == 0) {
    ENG_CUDA(cudaMemcpy(e->h, rnd, (size_t)n_h * 2, cudaMemcpyHostToDevice));
    ENG_CUDA(cudaDeviceSynchronize());   /* the pageable upload completes before e->stream reads it */
    /* e->stream is non-blocking: synchronise it before each plain cudaMemcpy reads results */
    if (!(rc = eng_router(e, e->w.layers[0].router, T, s))) {
      ENG_CUDA(cudaStreamSynchronize(e->stream));
      ENG_CUDA(cudaMemcpy(a, e->rlogits, (size_t)n_r * 2, cudaMemcpyDeviceToHost));
      e->router_gemv = 1;
      if (!(rc = eng_router(e, e->w.layers[0].router, T, s))) {
        ENG_CUDA(cudaStreamSynchronize(e->stream));
        ENG_CUDA(cudaMemcpy(b, e->rlogits, (size_t)n_r * 2, cudaMemcpyDeviceToHost));
        e->router_gemv = ref_bf16_nmse(b, a, n_r) <= 1e-5; /* GEMV against cuBLAS */
      }
    }
  }
  if (rc) e->router_gemv = 0;
  cudaError_t ce = cudaStreamSynchronize(e->stream);
  free(rnd), free(a), free(b);
  if (!rc && ce != cudaSuccess) rc = err_set(ERR_DEVICE, "fast-path self-check: %s", cudaGetErrorString(ce));
  return rc;
}

void eng_fast_paths(const eng *e, int *router_gemv) { *router_gemv = e->router_gemv; }

/* ---- lifetime ---- */

static void *eng_carve(uint8_t *base, int64_t *off, int64_t n_bytes) {
  *off = (*off + 255) / 256 * 256;
  void *p = base ? base + *off : NULL;
  *off += n_bytes;
  return p;
}

/* Lays out (base == NULL: sizes) every activation buffer and the KV cache. */
static int64_t eng_carve_all(eng *e, uint8_t *base) {
  const wt_dims *d = &e->d;
  int64_t mt = e->cfg.max_tok, ms = e->kv.max_seqs, H = d->hidden, k = d->top_k, off = 0;
  e->tokens = (int32_t *)eng_carve(base, &off, 5 * mt * 4);   /* tokens, positions, seq, slots, sample */
  e->positions = e->tokens ? e->tokens + mt : NULL;
  e->token_seq = e->tokens ? e->tokens + 2 * mt : NULL;
  e->slots = e->tokens ? e->tokens + 3 * mt : NULL;
  e->sample_idx = e->tokens ? e->tokens + 4 * mt : NULL;
  e->block_tables = (int32_t *)eng_carve(base, &off, (int64_t)e->kv.n_blocks * 4);
  e->resid = (bf16_t *)eng_carve(base, &off, mt * H * 2);
  e->delta = (bf16_t *)eng_carve(base, &off, mt * H * 2);
  e->h = (bf16_t *)eng_carve(base, &off, mt * H * 2);
  e->qkv = (bf16_t *)eng_carve(base, &off, mt * d->qkv_n * 2);
  e->attn = (bf16_t *)eng_carve(base, &off, mt * d->hq_loc * d->head_dim * 2);
  e->rlogits = (bf16_t *)eng_carve(base, &off, mt * d->n_experts * 2);
  e->topk_ids = (int32_t *)eng_carve(base, &off, mt * k * 4);
  e->topk_w = (float *)eng_carve(base, &off, mt * k * 4);
  e->expert_off = (int32_t *)eng_carve(base, &off, (int64_t)(d->n_experts + 1) * 4);
  e->sorted_pair = (int32_t *)eng_carve(base, &off, mt * k * 4);
  e->pair_row = (int32_t *)eng_carve(base, &off, mt * k * 4);
  e->hmid = (bf16_t *)eng_carve(base, &off, mt * k * d->inter_loc * 2);
  e->ymoe = (bf16_t *)eng_carve(base, &off, mt * k * H * 2);
  e->sel = (bf16_t *)eng_carve(base, &off, ms * H * 2);
  e->logits = (bf16_t *)eng_carve(base, &off, ms * d->v_loc * 2);
  e->ids = (int32_t *)eng_carve(base, &off, ms * 4);
  e->pairs = (int32_t *)eng_carve(base, &off, ms * 8);
  e->gathered = (int32_t *)eng_carve(base, &off, (int64_t)e->cfg.tp * ms * 8);
  e->logits_all = (bf16_t *)eng_carve(base, &off, (int64_t)e->cfg.tp * ms * d->v_loc * 2);
  e->hits = (unsigned long long *)eng_carve(base, &off, (int64_t)d->n_layers * d->n_experts * 8);
  e->gemm_ws = eng_carve(base, &off, (int64_t)e->gemm_ws_bytes);
  e->attn_ws = eng_carve(base, &off, (int64_t)e->attn_ws_bytes);
  e->blas_ws = eng_carve(base, &off, 32 << 20);
  e->k_cache = (bf16_t *)eng_carve(base, &off, (int64_t)d->n_layers * e->kv_layer_elems * 2);
  e->v_cache = (bf16_t *)eng_carve(base, &off, (int64_t)d->n_layers * e->kv_layer_elems * 2);
  return off;
}

int eng_create(const eng_cfg *cfg, comm *cm, eng **out) {
  *out = NULL;
  eng *e = (eng *)calloc(1, sizeof *e);
  if (!e) return err_set(ERR_NOMEM, "out of memory");
  e->cfg = *cfg;
  e->m = *cfg->m;
  e->comm = cm;
  int rc = wt_dims_init(cfg->m, cfg->tp, cfg->rank, &e->d);
  if (rc) {
    free(e);
    return rc;
  }
  if ((rc = batch_kv_init(&e->kv, cfg->max_seqs, cfg->max_ctx))) {
    free(e);
    return rc;
  }
  const wt_dims *d = &e->d;
  e->cap_ctx = e->kv.max_blocks * BATCH_KV_BLOCK;
  e->kv_layer_elems = (int64_t)e->kv.n_blocks * BATCH_KV_BLOCK * d->hkv_loc * d->head_dim;
  int max_n = d->qkv_n > d->hidden ? d->qkv_n : d->hidden;
  e->gemm_ws_bytes = kern_w4a16_workspace_bytes(cfg->max_tok, max_n);
  e->attn_ws_bytes = kern_attn_workspace_bytes(cfg->max_tok, d->hq_loc, d->head_dim, e->cap_ctx);
  ENG_CUDA(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking));
  ENG_CUDA(cudaEventCreate(&e->ev0));
  ENG_CUDA(cudaEventCreate(&e->ev1));
  if (cublasCreate(&e->blas) != CUBLAS_STATUS_SUCCESS) {
    eng_destroy(e);
    return err_set(ERR_DEVICE, "cublasCreate failed on rank %d", cfg->rank);
  }
  cublasSetStream(e->blas, e->stream);
  /* weights first: the biggest allocation, and the one whose failure message matters */
  if ((rc = gw_create(&e->w, d, cfg->ckpt, cfg->seed, cfg->skew, e->stream))) {
    eng_destroy(e);
    return rc;
  }
  e->act_bytes = eng_carve_all(e, NULL);
  cudaError_t ce = cudaMalloc(&e->act_base, (size_t)e->act_bytes);
  if (ce != cudaSuccess) {
    e->act_base = NULL;
    size_t fb = 0, tb = 0;
    cudaMemGetInfo(&fb, &tb);
    eng_destroy(e);
    return err_set(ERR_DEVICE,
                   "GPU out of memory on rank %d: KV cache and activations need %.2f GB (%d seqs x %d tokens, %d tokens per step), %.2f GB free after %.2f GB of weights",
                   cfg->rank, e->act_bytes / 1e9, cfg->max_seqs, cfg->max_ctx, cfg->max_tok, fb / 1e9,
                   gw_rank_bytes(d) / 1e9);
  }
  eng_carve_all(e, (uint8_t *)e->act_base);
  /* the split-K counters and expert hits start at zero; the KV cache too, so unused slots are
   * finite (attention never reads them, but a memcheck run should see defined data) */
  ENG_CUDA(cudaMemset(e->act_base, 0, (size_t)e->act_bytes));
  /* the memset runs on the legacy stream, which does not order work on the non-blocking
   * e->stream: finish it before any kernel reads the zeroed split-K counters */
  ENG_CUDA(cudaDeviceSynchronize());
  ENG_CUDA(cudaMemcpy(e->block_tables, e->kv.block_tables, (size_t)e->kv.n_blocks * 4, cudaMemcpyHostToDevice));
  if (cublasSetWorkspace(e->blas, e->blas_ws, 32 << 20) != CUBLAS_STATUS_SUCCESS) {
    eng_destroy(e);
    return err_set(ERR_DEVICE, "cublasSetWorkspace failed on rank %d", cfg->rank);
  }
  ENG_CUDA(cudaMallocHost(&e->h_in, (size_t)5 * cfg->max_tok * 4));
  ENG_CUDA(cudaMallocHost(&e->h_gathered, (size_t)cfg->tp * cfg->max_seqs * 8));
  ENG_CUDA(cudaMallocHost(&e->h_logits, (size_t)cfg->tp * cfg->max_seqs * d->v_loc * 2));
  memset(e->h_in, 0, (size_t)5 * cfg->max_tok * 4);
  if ((rc = eng_selfcheck(e))) {
    eng_destroy(e);
    return rc;
  }
  *out = e;
  return ERR_OK;
}

void eng_destroy(eng *e) {
  if (!e) return;
  for (int i = 0; i < ENG_MAX_GRAPHS; i++)
    if (e->graphs[i].n_tok) cudaGraphExecDestroy(e->graphs[i].exec);
  gw_destroy(&e->w);
  if (e->act_base) cudaFree(e->act_base);
  if (e->h_in) cudaFreeHost(e->h_in);
  if (e->h_gathered) cudaFreeHost(e->h_gathered);
  if (e->h_logits) cudaFreeHost(e->h_logits);
  if (e->blas) cublasDestroy(e->blas);
  if (e->ev0) cudaEventDestroy(e->ev0);
  if (e->ev1) cudaEventDestroy(e->ev1);
  if (e->stream) cudaStreamDestroy(e->stream);
  batch_kv_free(&e->kv);
  free(e);
}

double eng_last_step_ms(const eng *e) { return e->last_ms; }
const batch_kv *eng_kv(const eng *e) { return &e->kv; }
int64_t eng_weight_bytes(const eng *e) { return e->w.n_bytes; }
int64_t eng_kv_bytes(const eng *e) { return 2 * (int64_t)e->d.n_layers * e->kv_layer_elems * 2; }

int eng_vocab(const eng *e) { return e->d.vocab; }
int eng_max_tok(const eng *e) { return e->cfg.max_tok; }

int eng_expert_hits(eng *e, int64_t *hits) {
  int64_t n = (int64_t)e->d.n_layers * e->d.n_experts;
  ENG_CUDA(cudaStreamSynchronize(e->stream));
  ENG_CUDA(cudaMemcpy(hits, e->hits, (size_t)n * 8, cudaMemcpyDeviceToHost));
  return ERR_OK;
}

void eng_reset_hits(eng *e) {
  cudaMemsetAsync(e->hits, 0, (size_t)e->d.n_layers * e->d.n_experts * 8, e->stream);
  cudaStreamSynchronize(e->stream);
}
