/* gpu_weights: device-resident, repacked weights of one rank, synthesized on the GPU or loaded
 * from a checkpoint one layer at a time (see gpu_weights.h). */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/err.h"
#include "exec/safetensors.h"
}
#include "exec/gpu_weights.h"
#include "exec/wsynth.h"
#include "kernels/kernels.h"

#define GW_ALIGN 256
#define GW_CUDA(call)                                                                                   \
  do {                                                                                                  \
    cudaError_t gw_e_ = (call);                                                                         \
    if (gw_e_ != cudaSuccess)                                                                           \
      return err_set(ERR_DEVICE, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(gw_e_)); \
  } while (0)

/* ---- layout ---- */
struct gw_carver {
  uint8_t *base;
  int64_t off;
};

static void *gw_carve(gw_carver *c, int64_t n_bytes) {
  c->off = (c->off + GW_ALIGN - 1) / GW_ALIGN * GW_ALIGN;
  void *p = c->base ? c->base + c->off : NULL;
  c->off += n_bytes;
  return p;
}

static void gw_carve_all(const wt_dims *d, gw_carver *c, gw_rank *g) {
  int64_t H = d->hidden, D = d->head_dim, E = d->n_experts, Il = d->inter_loc, gs = d->group;
  g->embed = (bf16_t *)gw_carve(c, (int64_t)d->vocab * H * 2);
  g->final_ln = (bf16_t *)gw_carve(c, H * 2);
  g->lm_head = (bf16_t *)gw_carve(c, (int64_t)d->v_loc * H * 2);
  for (int l = 0; l < d->n_layers; l++) {
    gw_layer tmp, *L = g->layers ? &g->layers[l] : &tmp;
    L->input_ln = (bf16_t *)gw_carve(c, H * 2);
    L->post_ln = (bf16_t *)gw_carve(c, H * 2);
    L->q_norm = (bf16_t *)gw_carve(c, D * 2);
    L->k_norm = (bf16_t *)gw_carve(c, D * 2);
    L->router = (bf16_t *)gw_carve(c, E * H * 2);
    L->qkv_q = (int32_t *)gw_carve(c, H * d->qkv_n / 2);
    L->qkv_s = (bf16_t *)gw_carve(c, H / gs * d->qkv_n * 2);
    L->o_q = (int32_t *)gw_carve(c, d->hq_loc * D * H / 2);
    L->o_s = (bf16_t *)gw_carve(c, d->hq_loc * D / gs * H * 2);
    L->w13_q = (int32_t *)gw_carve(c, E * H * 2 * Il / 2);
    L->w13_s = (bf16_t *)gw_carve(c, E * H / gs * 2 * Il * 2);
    L->w2_q = (int32_t *)gw_carve(c, E * Il * H / 2);
    L->w2_s = (bf16_t *)gw_carve(c, E * Il / gs * H * 2);
  }
}

int64_t gw_rank_bytes(const wt_dims *d) {
  gw_carver c = {NULL, 0};
  gw_rank g;
  memset(&g, 0, sizeof g);
  gw_carve_all(d, &c, &g);
  return (c.off + GW_ALIGN - 1) / GW_ALIGN * GW_ALIGN;
}

/* ---- synthesis kernels: the device twins of wt_synth_q / wt_synth_bf16 (weights.c) ---- */

/* Block rows [k0, k0+kl) x cols [n0, n0+nl) of the full GPTQ tensor K_glob x N_glob into a
 * checkpoint-layout buffer with ld columns from column col_off. */
__global__ void gw_synth_q_kernel(uint64_t seed, uint64_t tid, int64_t K_glob, int64_t N_glob, int g, int64_t k0,
                                  int64_t kl, int64_t n0, int64_t nl, int32_t *qw, int32_t *qz, uint16_t *sc,
                                  int64_t ld, int64_t col_off) {
  int64_t n_qw = kl / 8 * nl, n_sc = kl / g * nl, n_qz = kl / g * (nl / 8);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n_qw + n_sc + n_qz;
       i += (int64_t)gridDim.x * blockDim.x) {
    if (i < n_qw) {
      int64_t r = i / nl, c = i % nl;
      qw[r * ld + col_off + c] = (int32_t)ws_qweight(seed, tid, (uint64_t)((k0 / 8 + r) * N_glob + n0 + c));
    } else if (i < n_qw + n_sc) {
      int64_t j = i - n_qw, gi = j / nl, c = j % nl;
      sc[gi * ld + col_off + c] =
          ws_scale_fp16(ws_hash(seed, tid, WS_PART_SCALES, (uint64_t)((k0 / g + gi) * N_glob + n0 + c)), K_glob, tid);
    } else {
      int64_t j = i - n_qw - n_sc, gi = j / (nl / 8), c = j % (nl / 8);
      qz[gi * (ld / 8) + col_off / 8 + c] = (int32_t)WS_QZEROS_SYM4;
    }
  }
}

__global__ void gw_synth_bf16_kernel(uint64_t seed, int layer, int kind, int64_t row0, int64_t n_rows, int64_t n_cols,
                                     int n_experts, float skew, uint16_t *dst) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n_rows * n_cols;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / n_cols, c = i % n_cols;
    dst[i] = ws_bf16_value(seed, layer, kind, row0 + r, (uint64_t)((row0 + r) * n_cols + c), n_experts, skew);
  }
}

static int gw_grid(int64_t n) {
  int64_t b = (n + 255) / 256;
  return (int)(b < 4096 ? (b > 0 ? b : 1) : 4096);
}

static int gw_synth_q(cudaStream_t s, uint64_t seed, uint64_t tid, int64_t K_glob, int64_t N_glob, int g, int64_t k0,
                      int64_t kl, int64_t n0, int64_t nl, int32_t *qw, int32_t *qz, uint16_t *sc, int64_t ld,
                      int64_t col_off) {
  int64_t n = kl / 8 * nl + kl / g * nl + kl / g * (nl / 8);
  gw_synth_q_kernel<<<gw_grid(n), 256, 0, s>>>(seed, tid, K_glob, N_glob, g, k0, kl, n0, nl, qw, qz, sc, ld, col_off);
  GW_CUDA(cudaGetLastError());
  return ERR_OK;
}

static int gw_synth_bf16(cudaStream_t s, uint64_t seed, int layer, int kind, int64_t row0, int64_t n_rows,
                         int64_t n_cols, int n_experts, float skew, bf16_t *dst) {
  gw_synth_bf16_kernel<<<gw_grid(n_rows * n_cols), 256, 0, s>>>(seed, layer, kind, row0, n_rows, n_cols, n_experts,
                                                                skew, dst);
  GW_CUDA(cudaGetLastError());
  return ERR_OK;
}

/* One layer's checkpoint-layout slice synthesized into the device staging layer L. */
static int gw_synth_layer(cudaStream_t s, const wt_dims *d, uint64_t seed, float skew, int l, wt_layer *L) {
  int H = d->hidden, D = d->head_dim, g = d->group, E = d->n_experts, rc;
  if ((rc = gw_synth_bf16(s, seed, l, WS_IN_LN, 0, 1, H, E, skew, L->input_ln)) ||
      (rc = gw_synth_bf16(s, seed, l, WS_POST_LN, 0, 1, H, E, skew, L->post_ln)) ||
      (rc = gw_synth_bf16(s, seed, l, WS_Q_NORM, 0, 1, D, E, skew, L->q_norm)) ||
      (rc = gw_synth_bf16(s, seed, l, WS_K_NORM, 0, 1, D, E, skew, L->k_norm)) ||
      (rc = gw_synth_bf16(s, seed, l, WS_ROUTER, 0, E, H, E, skew, L->router)))
    return rc;
  for (int i = 0; i < wt_layer_qslice_count(d); i++) {
    wt_qslice q;
    wt_layer_qslice(d, L, i, &q);
    if ((rc = gw_synth_q(s, seed, ws_tensor_id(l, q.kind, q.expert < 0 ? 0 : q.expert), q.K_glob, q.N_glob, g, q.k0,
                         q.kl, q.n0, q.nl, q.qweight, q.qzeros, q.scales, q.ld, q.col_off)))
      return rc;
  }
  return ERR_OK;
}

/* Staging layer (checkpoint layout, device) -> final repacked layer. */
static int gw_repack_layer(cudaStream_t s, const wt_dims *d, const wt_layer *S, gw_layer *L) {
  int64_t H = d->hidden, D = d->head_dim, E = d->n_experts, Il = d->inter_loc, g = d->group;
  int rc;
  GW_CUDA(cudaMemcpyAsync(L->input_ln, S->input_ln, H * 2, cudaMemcpyDeviceToDevice, s));
  GW_CUDA(cudaMemcpyAsync(L->post_ln, S->post_ln, H * 2, cudaMemcpyDeviceToDevice, s));
  GW_CUDA(cudaMemcpyAsync(L->q_norm, S->q_norm, D * 2, cudaMemcpyDeviceToDevice, s));
  GW_CUDA(cudaMemcpyAsync(L->k_norm, S->k_norm, D * 2, cudaMemcpyDeviceToDevice, s));
  GW_CUDA(cudaMemcpyAsync(L->router, S->router, E * H * 2, cudaMemcpyDeviceToDevice, s));
  kern_stream_t ks = (kern_stream_t)s;
  if ((rc = kern_gptq_repack(L->qkv_q, L->qkv_s, S->qkv.qweight, S->qkv.scales, (int)H, d->qkv_n, ks)) ||
      (rc = kern_gptq_repack(L->o_q, L->o_s, S->o.qweight, S->o.scales, d->hq_loc * d->head_dim, (int)H, ks)))
    return rc;
  int64_t s1w = H / 8 * Il, s1s = H / g * Il, s2w = Il / 8 * H, s2s = Il / g * H;
  for (int64_t e = 0; e < E; e++) {
    if ((rc = kern_gptq_repack_gate_up(L->w13_q + e * H * 2 * Il / 8, L->w13_s + e * H / g * 2 * Il,
                                       S->w1.qweight + e * s1w, S->w1.scales + e * s1s, S->w3.qweight + e * s1w,
                                       S->w3.scales + e * s1s, (int)H, (int)Il, ks)) ||
        (rc = kern_gptq_repack(L->w2_q + e * Il * H / 8, L->w2_s + e * Il / g * H, S->w2.qweight + e * s2w,
                               S->w2.scales + e * s2s, (int)Il, (int)H, ks)))
      return rc;
  }
  return ERR_OK;
}

int gw_create(gw_rank *g, const wt_dims *d, const st_ckpt *ckpt, uint64_t seed, float skew, void *stream) {
  memset(g, 0, sizeof *g);
  g->d = *d;
  cudaStream_t s = (cudaStream_t)stream;
  g->n_bytes = gw_rank_bytes(d);
  int64_t stage_bytes = wt_layer_bytes(d);
  size_t free_b = 0, total_b = 0;
  GW_CUDA(cudaMemGetInfo(&free_b, &total_b));
  if ((int64_t)free_b < g->n_bytes + stage_bytes)
    return err_set(ERR_DEVICE, "GPU out of memory: rank %d needs %.2f GB of weights + %.2f GB staging, %.2f GB free",
                   d->rank, g->n_bytes / 1e9, stage_bytes / 1e9, free_b / 1e9);
  g->layers = (gw_layer *)calloc((size_t)d->n_layers, sizeof *g->layers);
  if (!g->layers) return err_set(ERR_NOMEM, "out of memory");
  uint8_t *stage = NULL, *host_stage = NULL;
  wt_layer S, HS;
  int rc = ERR_OK;
  cudaError_t ce = cudaMalloc(&g->base, (size_t)g->n_bytes);
  if (ce != cudaSuccess) {
    g->base = NULL;
    rc = err_set(ERR_DEVICE, "GPU out of memory: cudaMalloc of %.2f GB for rank %d's weights: %s", g->n_bytes / 1e9,
                 d->rank, cudaGetErrorString(ce));
    goto fail;
  }
  ce = cudaMalloc(&stage, (size_t)stage_bytes);
  if (ce != cudaSuccess) {
    stage = NULL;
    rc = err_set(ERR_DEVICE, "GPU out of memory: staging %.2f GB: %s", stage_bytes / 1e9, cudaGetErrorString(ce));
    goto fail;
  }
  {
    gw_carver c = {(uint8_t *)g->base, 0};
    gw_carve_all(d, &c, g);
  }
  wt_layout_layer(d, stage, &S);
  if (ckpt) {
    ce = cudaMallocHost(&host_stage, (size_t)stage_bytes);
    if (ce != cudaSuccess) {
      host_stage = NULL;
      rc = err_set(ERR_NOMEM, "pinned host staging of %.2f GB: %s", stage_bytes / 1e9, cudaGetErrorString(ce));
      goto fail;
    }
    wt_layout_layer(d, host_stage, &HS);
    /* globals: embed / final norm / lm_head slice through a host mirror of just those rows */
    {
      int64_t H = d->hidden, nb = ((int64_t)d->vocab + d->v_loc) * H * 2 + H * 2;
      uint8_t *hb = (uint8_t *)malloc((size_t)nb);
      if (!hb) {
        rc = err_set(ERR_NOMEM, "out of host memory (%.2f GB for the embedding)", nb / 1e9);
        goto fail;
      }
      wt_rank hw;
      memset(&hw, 0, sizeof hw);
      hw.embed = (uint16_t *)hb;
      hw.lm_head = (uint16_t *)(hb + (int64_t)d->vocab * H * 2);
      hw.final_ln = (uint16_t *)(hb + ((int64_t)d->vocab + d->v_loc) * H * 2);
      rc = wt_load_globals(ckpt, d, &hw);
      if (!rc) {
        cudaMemcpy(g->embed, hw.embed, (size_t)d->vocab * H * 2, cudaMemcpyHostToDevice);
        cudaMemcpy(g->lm_head, hw.lm_head, (size_t)d->v_loc * H * 2, cudaMemcpyHostToDevice);
        ce = cudaMemcpy(g->final_ln, hw.final_ln, (size_t)H * 2, cudaMemcpyHostToDevice);
        if (ce != cudaSuccess) rc = err_set(ERR_DEVICE, "copying the embedding: %s", cudaGetErrorString(ce));
      }
      free(hb);
      if (rc) goto fail;
    }
  } else {
    if ((rc = gw_synth_bf16(s, seed, -1, WS_EMBED, 0, d->vocab, d->hidden, d->n_experts, skew, g->embed)) ||
        (rc = gw_synth_bf16(s, seed, -1, WS_FINAL_NORM, 0, 1, d->hidden, d->n_experts, skew, g->final_ln)) ||
        (rc = gw_synth_bf16(s, seed, -1, d->tie_embed ? WS_EMBED : WS_LM_HEAD, d->v0, d->v_loc, d->hidden,
                            d->n_experts, skew, g->lm_head)))
      goto fail;
  }
  for (int l = 0; l < d->n_layers; l++) {
    if (ckpt) {
      /* the previous layer's repack must finish reading the staging before it is overwritten */
      ce = cudaStreamSynchronize(s);
      if (ce != cudaSuccess) {
        rc = err_set(ERR_DEVICE, "layer %d: %s", l, cudaGetErrorString(ce));
        goto fail;
      }
      if ((rc = wt_load_layer(ckpt, d, l, &HS))) goto fail;
      ce = cudaMemcpyAsync(stage, host_stage, (size_t)stage_bytes, cudaMemcpyHostToDevice, s);
      if (ce != cudaSuccess) {
        rc = err_set(ERR_DEVICE, "layer %d upload: %s", l, cudaGetErrorString(ce));
        goto fail;
      }
    } else if ((rc = gw_synth_layer(s, d, seed, skew, l, &S))) {
      goto fail;
    }
    if ((rc = gw_repack_layer(s, d, &S, &g->layers[l]))) goto fail;
  }
  ce = cudaStreamSynchronize(s);
  if (ce != cudaSuccess) {
    rc = err_set(ERR_DEVICE, "weight synthesis/repack: %s", cudaGetErrorString(ce));
    goto fail;
  }
  cudaFree(stage);
  if (host_stage) cudaFreeHost(host_stage);
  return ERR_OK;
fail:
  if (stage) cudaFree(stage);
  if (host_stage) cudaFreeHost(host_stage);
  gw_destroy(g);
  return rc;
}

void gw_destroy(gw_rank *g) {
  if (!g) return;
  if (g->base) cudaFree(g->base);
  free(g->layers);
  memset(g, 0, sizeof *g);
}
