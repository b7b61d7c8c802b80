/* cost_roofline: roofline step costs from model, hardware and layout (see cost_roofline.h).
 *
 * What one stage of one step costs, per rank (every rank of a TP group does the same work; under
 * EP the step waits for the most loaded rank):
 *   per layer  QKV GEMM, q/k RMSNorm + RoPE, KV-cache write, attention over the actual context
 *              lengths, O GEMM, TP all-reduce, RMSNorms, router GEMM + top-k, MoE alignment,
 *              expert GEMMs (gate_up, SiLU*mul, down) for the experts that got tokens, top-k sum,
 *              then the MoE all-reduce (TP, or EP with DP=1) or dispatch/combine (EP with DP>1);
 *   per step   embedding (+ its TP all-reduce) on the first stage; final norm, lm_head, logits
 *              all-gather and sampling on the last; the PP hand-off on the others; CUDA-graph
 *              padding and per-kernel gaps, or eager launches; host time of the step.
 * A kernel costs max(bytes / (HBM GB/s * hbm_eff), FLOPs / (TFLOP/s * mma_eff)) plus its fixed
 * latency. Constants below carry their sources; the hardware ones come from specs/hardware. */
#include "sim/cost_roofline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sim/comm.h"
#include "sim/moe_route.h"

/* Marlin reaches within ~10% of FP16 tensor-core throughput at large batch ("prefill of batch
 * >= 1024 ~10% slower than FP16": Frantar et al., MARLIN, arXiv 2408.11743), so int4 GEMMs get
 * 0.9 of the bf16 rate once compute-bound; below that they are weight-read bound. */
#define CRL_MARLIN_MMA_FRAC 0.9
/* Fixed latency of one int4 GEMM kernel beyond its weight-read time: measured on the lent H100
 * (FACTS.md table, PyTorch int4 GEMM, M=1): time minus weight-read floor is 14.4, 14.3, 14.8 and
 * 14.4 us for the four Qwen3 shapes, nearly shape-independent. Used for every quantized GEMM. */
#define CRL_W4_GEMM_FIXED_US 14.4
/* FlashAttention-2 forward reaches 50-73% of A100 peak (Dao, FlashAttention-2, arXiv 2307.08691,
 * fig. 4-5); short (1-2k) causal sequences sit at the low end: 0.5 of peak. */
#define CRL_ATTN_MMA_FRAC 0.5
/* Host time per step and stage, serial with the GPU in vLLM 0.9.2 (no async scheduling): the
 * engine core schedules, broadcasts the batch to the workers, each stage's workers update their
 * request state and prepare inputs, the sampled ids are synced back and the outputs processed.
 * FITTED: 5.8 ms, by least squares on the relative TPOT error of the seed's two concurrency-1
 * rows (EP=8: one stage per step; TP=4 x PP=2: two stages, each paying it). No other row was
 * used. Published range: vLLM's multi-step RFC (issue 6854) measured 4-13 ms of GPU idle per
 * decode step waiting on the host; V1 Llama-3.2-1B serving (vLLM PR 17866) ~1.5 ms at TP=1. */
#define CRL_CPU_STEP_US 5800.0
/* Per request in the step, itemized estimate for vLLM 0.9.2 (Python): schedule + KV block
 * allocation ~15 us (the scheduler alone: 12.7 us/request, openfabric-systems/simllm PR 204),
 * update_from_output + stop checks ~30 us, worker _update_states/_prepare_inputs ~15 us,
 * pickling the scheduler output to the workers and the outputs back ~10 us, min_tokens stop-id
 * masking ~5 us, output serialization to the API server ~5 us: 80 us. Not fitted. Same order as
 * ai-dynamo/aiconfigurator PR 1164, whose vLLM decode-overhead calibration (H200, Qwen3-8B,
 * batch 1-62) implies ~100 us per request per step beyond kernel time. */
#define CRL_CPU_REQ_US 80.0
/* Host dispatch per layer under piecewise CUDA graphs: attention runs outside the graph, so each
 * layer costs a graph replay plus the attention op's Python path (~4 torch op dispatches at
 * ~10 us each: estimate). Only binds when a layer's GPU time is shorter. */
#define CRL_CPU_LAYER_GRAPH_US 40.0
/* Extra host latency per pipeline-stage boundary beyond the per-stage host step above (gloo
 * metadata of send_tensor_dict); 0 by default: the seed's PP gap at concurrency 1 is explained
 * by each stage paying the host step. Kept as a knob (cost_roofline_opts.pp_stage_us). */
#define CRL_PP_STAGE_US 0.0
/* Sampler bytes per logit: vLLM serves with the model's generation_config.json defaults
 * (--generation-config auto; Qwen3: temperature 0.6, top_k 20, top_p 0.95), and V1's PyTorch
 * top-k/top-p path sorts every row of fp32 logits with int64 indices (CUB radix sort: 4 digit
 * passes x (4 + 8) bytes x read+write = 96 bytes), plus ~4 fp32 passes (temperature, softmax,
 * cumsum/mask, sample) = 16 bytes. Every TP rank samples the full vocabulary. 8 eager kernels. */
#define CRL_SAMPLER_BYTES_PER_LOGIT 112.0
#define CRL_SAMPLER_KERNELS 8
/* Kernels per layer besides GEMMs and attention: 2 fused add+RMSNorm, q-norm, k-norm, RoPE,
 * KV-cache write, top-k softmax, 2 MoE align/sort, SiLU*mul, top-k weighted sum; plus the router
 * GEMM (vLLM Qwen3MoeDecoderLayer, 0.9.x). */
#define CRL_SMALL_KERNELS_MOE 11
#define CRL_SMALL_KERNELS_DENSE 8
/* vLLM captures CUDA graphs for [1, 2, 4] + multiples of 8 up to 512 tokens (V1: the count of
 * scheduled tokens, prefill chunks included); larger steps run eager. */
#define CRL_GRAPH_MAX 512
/* vLLM's fused_marlin_moe block_size_m choice: the first of 8, 16, 32, 48, 64 with
 * M * top_k / E / block < 0.9 (fused_marlin_moe.py, 0.9.x). */
static const int cost_roofline_marlin_blocks[] = {8, 16, 32, 48, 64};

struct cost_roofline_stage {
  int n_layers, n_moe, n_dense;
  int first, last;
  struct comm_group tp;      /* this stage's TP group */
  struct comm_group moe;     /* MoE all-reduce group (TP), or the DP group (EP with DP > 1) */
  struct comm_group pp;      /* link to the next stage (valid when !last) */
};

struct cost_roofline_state {
  /* model, per rank */
  double H;                  /* hidden */
  int qh, kvh, hd;           /* q heads, kv heads (replicated when tp > n_kv), head dim per rank */
  double qkv_n, o_k;         /* QKV output width, O input width per rank */
  double qkv_bytes, o_bytes; /* weight bytes per rank */
  int dense_w4;              /* attention / expert linears quantized (GPTQ: Marlin kernels) */
  double dense_I;            /* dense MLP width per rank (mlp_only layers or dense models) */
  double dense_gu_bytes, dense_dn_bytes;
  int E, topk, ep_size, ep_dp;
  double I_rank;             /* expert intermediate width per rank */
  double exp_gu_bytes, exp_dn_bytes;
  double router_bytes;
  double kv_tok_bytes;       /* K+V bytes per token per layer per rank */
  double lm_head_bytes;
  double vocab_rank;
  int tp, pp, dp;
  /* hardware: bytes per ns, FLOPs per ns */
  double bw, peak, w4_rate, attn_rate, launch_ns, eager_ns, l2_bytes;
  /* host */
  double cpu_step_ns, cpu_req_ns, pp_stage_ns, cpu_layer_ns;
  int enforce_eager;
  struct moe_route_table route;
  struct cost_roofline_stage *st;      /* (pp) */
};

int cost_roofline_graph_size(int n_tok) {
  if (n_tok <= 0) return 0;
  if (n_tok <= 2) return n_tok;
  if (n_tok <= 4) return 4;
  if (n_tok > CRL_GRAPH_MAX) return 0;
  return (n_tok + 7) / 8 * 8;
}

void cost_roofline_opts_default(struct cost_roofline_opts *o) {
  memset(o, 0, sizeof *o);
  o->route_skew = 0.0;
  o->route_seed = 0x5eed;
  o->route_samples = 48;
  o->cpu_step_us = -1;
  o->cpu_req_us = -1;
  o->pp_stage_us = -1;
}

/* One GEMM kernel of m rows: K x N weights of w_bytes, bf16 activations in and out. Tensor-core
 * MMAs work on 16-row tiles, so the FLOPs count padded rows. */
static double cost_roofline_gemm_ns(const struct cost_roofline_state *c, double m, double k, double n, double w_bytes, int w4) {
  if (m <= 0) return 0;
  double rows = ceil(m / 16.0) * 16.0;
  double flops = 2.0 * rows * k * n;
  double bytes = w_bytes + m * (k + n) * 2.0;
  double t_mem = bytes / c->bw, t_mma = flops / (w4 ? c->w4_rate : c->peak);
  return (t_mem > t_mma ? t_mem : t_mma) + (w4 ? CRL_W4_GEMM_FIXED_US * 1e3 : 0.0);
}

static int cost_roofline_marlin_block(const struct cost_roofline_state *c, int n_tok) {
  double per = (double)n_tok * c->topk / c->E;
  for (int i = 0; i < 5; i++)
    if (per / cost_roofline_marlin_blocks[i] < 0.9) return cost_roofline_marlin_blocks[i];
  return 64;
}

/* Routing-table callback: one rank's expert GEMMs (gate_up, down; the SiLU between them is priced
 * with the small kernels) for its local experts' token counts. Weights are read only for experts
 * with tokens; each expert's rows are padded to the kernel's block (and to 16 for the MMAs). */
static double cost_roofline_moe_rank_ns(const void *ctx, int n_tok, const int32_t *counts, int n_local) {
  const struct cost_roofline_state *c = ctx;
  int blk = cost_roofline_marlin_block(c, n_tok);
  double mma_rows_per_blk = blk < 16 ? 16 : blk;
  double active = 0, rows = 0, mma_rows = 0;
  for (int e = 0; e < n_local; e++) {
    if (counts[e] == 0) continue;
    active += 1;
    rows += counts[e];
    mma_rows += ceil((double)counts[e] / blk) * mma_rows_per_blk;
  }
  double bytes = active * (c->exp_gu_bytes + c->exp_dn_bytes) +
                 rows * (c->H + 2 * c->I_rank + c->I_rank + c->H) * 2.0;
  double flops = 2.0 * mma_rows * (c->H * 2 * c->I_rank + c->I_rank * c->H);
  double rate = c->dense_w4 ? c->w4_rate : c->peak;
  double t_mem = bytes / c->bw, t_mma = flops / rate;
  return t_mem > t_mma ? t_mem : t_mma;
}

static double cost_roofline_l2_bytes(const struct hw_spec *h) {
  /* L2 sizes from NVIDIA datasheets: A100 40 MB, H100/H200/H20 50 MB, L40S 96 MB. */
  if (strstr(h->gpu, "H100") || strstr(h->gpu, "H200") || strstr(h->gpu, "H20")) return 50e6;
  if (strstr(h->gpu, "L40")) return 96e6;
  return 40e6;
}

static void cost_roofline_destroy(void *state) {
  struct cost_roofline_state *c = state;
  if (!c) return;
  moe_route_table_free(&c->route);
  free(c->st);
  free(c);
}

static int64_t cost_roofline_stage_ns(void *state, const struct cost_step *step, struct rng *rng,
                            struct cost_breakdown *bd);

int cost_roofline_create(const struct model_spec *m, const struct hw_spec *h, const struct layout *l,
                         const struct engine *e, const struct cost_roofline_opts *o,
                         struct cost_model *out) {
  memset(out, 0, sizeof *out);
  struct cost_roofline_opts def;
  if (!o) {
    cost_roofline_opts_default(&def);
    o = &def;
  }
  struct layout_rank r;
  layout_rank_init(m, l, &r);
  const int tp = r.tp, pp = r.pp, dp = r.dp, ep = r.ep;
  if (m->n_heads % tp != 0 || m->n_layers < pp || m->hidden <= 0 || m->head_dim <= 0)
    return err_set(ERR_INPUT, "cost_roofline: cannot split %s over tp=%d pp=%d (heads %d, layers %d)",
                   m->name, tp, pp, m->n_heads, m->n_layers);
  if (h->hbm_GBps <= 0 || h->tflops_bf16 <= 0)
    return err_set(ERR_INPUT, "cost_roofline: hardware %s lacks hbm_GBps or tflops_bf16", h->name);
  if (model_is_moe(m) && (ep > m->n_experts || m->moe_intermediate % (ep > 1 ? 1 : tp) != 0))
    return err_set(ERR_INPUT, "cost_roofline: %d experts of width %d do not split over ep=%d tp=%d",
                   m->n_experts, m->moe_intermediate, ep, tp);
  struct cost_roofline_state *c = calloc(1, sizeof *c);
  if (!c) return err_set(ERR_NOMEM, "cost_roofline: state");
  c->st = calloc((size_t)pp, sizeof *c->st);
  if (!c->st) {
    free(c);
    return err_set(ERR_NOMEM, "cost_roofline: stages");
  }
  c->tp = tp, c->pp = pp, c->dp = dp;
  c->H = r.H;
  c->hd = r.hd;
  c->qh = r.qh;
  c->kvh = r.kvh;
  c->qkv_n = r.qkv_n;
  c->o_k = r.o_k;
  c->dense_w4 = m->quant.method == MODEL_QUANT_GPTQ;
  int quant = m->quant.method != MODEL_QUANT_NONE;
  c->qkv_bytes = model_linear_bytes(m, m->hidden, (int64_t)c->qkv_n, quant);
  c->o_bytes = model_linear_bytes(m, (int64_t)c->o_k, m->hidden, quant);
  c->dense_I = r.dense_I;
  c->dense_gu_bytes = model_linear_bytes(m, m->hidden, (int64_t)(2 * c->dense_I), quant);
  c->dense_dn_bytes = model_linear_bytes(m, (int64_t)c->dense_I, m->hidden, quant);
  c->E = r.E;
  c->topk = r.topk;
  c->ep_size = r.ep;
  c->ep_dp = r.ep_dp; /* MoE only: a dense model has no MoE stage to route */
  c->I_rank = r.I_rank;
  c->exp_gu_bytes = model_linear_bytes(m, m->hidden, (int64_t)(2 * c->I_rank), quant);
  c->exp_dn_bytes = model_linear_bytes(m, (int64_t)c->I_rank, m->hidden, quant);
  c->router_bytes = (double)m->hidden * c->E * m->dtype_bytes;
  int kv_b = e->kv_dtype_bytes > 0 ? e->kv_dtype_bytes : m->dtype_bytes;
  c->kv_tok_bytes = 2.0 * c->kvh * c->hd * kv_b;
  c->vocab_rank = ceil((double)m->vocab / tp);
  c->lm_head_bytes = c->vocab_rank * m->hidden * m->dtype_bytes;
  c->bw = h->hbm_GBps * (h->hbm_eff > 0 ? h->hbm_eff : 0.85); /* GB/s = bytes/ns */
  c->peak = h->tflops_bf16 * 1e3 * (h->mma_eff > 0 ? h->mma_eff : 0.7); /* FLOPs/ns */
  c->w4_rate = c->peak * CRL_MARLIN_MMA_FRAC;
  if (m->quant.method == MODEL_QUANT_FP8 && h->tflops_fp8 > 0)
    c->w4_rate = h->tflops_fp8 * 1e3 * (h->mma_eff > 0 ? h->mma_eff : 0.7);
  c->attn_rate = h->tflops_bf16 * 1e3 * CRL_ATTN_MMA_FRAC;
  c->launch_ns = (h->kernel_launch_us > 0 ? h->kernel_launch_us : 3.0) * 1e3;
  c->eager_ns = (h->eager_launch_us > 0 ? h->eager_launch_us : 8.0) * 1e3;
  c->l2_bytes = cost_roofline_l2_bytes(h);
  c->cpu_step_ns = (o->cpu_step_us >= 0 ? o->cpu_step_us : CRL_CPU_STEP_US) * 1e3;
  c->cpu_req_ns = (o->cpu_req_us >= 0 ? o->cpu_req_us : CRL_CPU_REQ_US) * 1e3;
  c->pp_stage_ns = (o->pp_stage_us >= 0 ? o->pp_stage_us : CRL_PP_STAGE_US) * 1e3;
  c->cpu_layer_ns = CRL_CPU_LAYER_GRAPH_US * 1e3;
  c->enforce_eager = e->enforce_eager;

  for (int s = 0; s < pp; s++) {
    struct cost_roofline_stage *st = &c->st[s];
    layout_stage_counts(m, pp, s, &st->n_layers, &st->n_moe, &st->n_dense);
    st->first = s == 0;
    st->last = s == pp - 1;
    /* Replica 0's GPUs (rank = dp*(pp*tp) + stage*tp + tp_rank): replicas are identical. */
    comm_group_init(&st->tp, h, s * tp, tp);
    if (c->ep_dp) {
      /* The EP group spans every replica's TP group of this stage: its GPU range runs from
       * replica 0's to replica dp-1's. */
      int lo = s * tp, hi = (dp - 1) * pp * tp + s * tp + tp - 1;
      comm_group_init(&st->moe, h, lo, hi - lo + 1);
      st->moe.n_ranks = dp; /* the DP group: one rank per replica */
    } else {
      st->moe = st->tp;
    }
    if (!st->last) comm_group_init(&st->pp, h, s * tp, 2 * tp);
  }

  if (model_is_moe(m)) {
    struct moe_route_cfg rc = {.n_experts = c->E, .top_k = c->topk, .n_ranks = ep,
                               .skew = o->route_skew, .seed = o->route_seed,
                               .samples = o->route_samples > 0 ? o->route_samples : 48};
    int max_tok = e->max_num_batched_tokens > 0 ? e->max_num_batched_tokens : 8192;
    if (max_tok < CRL_GRAPH_MAX) max_tok = CRL_GRAPH_MAX;
    max_tok *= c->ep_dp ? dp : 1;
    int rcode = moe_route_table_build(&c->route, &rc, max_tok, cost_roofline_moe_rank_ns, c);
    if (rcode) {
      cost_roofline_destroy(c);
      return rcode;
    }
  }
  out->name = "roofline";
  out->state = c;
  out->stage_ns = cost_roofline_stage_ns;
  out->destroy = cost_roofline_destroy;
  return ERR_OK;
}

/* Small memory-bound kernel: its bytes at HBM speed (its fixed latency is the launch gap). */
static double cost_roofline_mem_ns(const struct cost_roofline_state *c, double bytes) { return bytes / c->bw; }

static int64_t cost_roofline_stage(const struct cost_roofline_state *c, const struct cost_step *step,
                                   struct cost_breakdown *bd, struct cost_roofline_launch *lp) {
  int s = step->stage < 0 ? 0 : (step->stage >= c->pp ? c->pp - 1 : step->stage);
  const struct cost_roofline_stage *st = &c->st[s];
  double t[COST_N_TERMS] = {0};
  int T = step->n_tok;
  int graph = !c->enforce_eager ? cost_roofline_graph_size(T) : 0;
  double Tp = graph > 0 ? graph : T; /* rows every graph-captured op runs on */
  double kernels = 0;                /* kernel launches on this stage */

  if (T > 0 && st->n_layers > 0) {
    /* Attention over actual context lengths. Prefill chunks: causal FLOPs over ctx + chunk.
     * Decodes: KV bytes read. FlashAttention-2 packs a KV head's query group into one CTA only
     * when max_seqlen_q == 1 (flash_api.cpp, seqlenq_ngroups_swapped); in a step that also holds
     * a prefill chunk every query head re-reads its KV head, which L2 absorbs only while the
     * layer's decode KV fits in it. */
    double flops = 0, kv = 0, kv_dec = 0;
    int any_prefill = 0;
    for (int32_t i = 0; i < step->n_reqs; i++) {
      double n_new = step->reqs[i].n_new, ctx = step->reqs[i].n_ctx;
      if (n_new == 1 && ctx > 0) {
        kv_dec += (ctx + 1) * c->kv_tok_bytes;
      } else {
        any_prefill = 1;
        flops += 4.0 * c->qh * c->hd * n_new * (ctx + (n_new + 1) / 2.0);
        kv += (ctx + n_new) * c->kv_tok_bytes;
      }
    }
    double reread = 0;
    int group = c->qh / c->kvh;
    if (any_prefill && group > 1 && kv_dec > c->l2_bytes) reread = (group - 1) * (kv_dec - c->l2_bytes);
    double q_o_bytes = (double)T * (c->qkv_n + c->o_k) * 2.0;
    double attn_mem = (kv + kv_dec + reread + q_o_bytes) / c->bw, attn_mma = flops / c->attn_rate;
    double attn = attn_mem > attn_mma ? attn_mem : attn_mma;

    double qkv = cost_roofline_gemm_ns(c, Tp, c->H, c->qkv_n, c->qkv_bytes, c->dense_w4);
    double o = cost_roofline_gemm_ns(c, Tp, c->o_k, c->H, c->o_bytes, c->dense_w4);
    double act = Tp * c->H * 2.0;
    double norms = cost_roofline_mem_ns(c, 2 * 3 * act +                            /* 2 add+RMSNorm */
                                     Tp * (c->qh + c->kvh) * c->hd * 2.0 * 4 + /* q/k norm, RoPE */
                                     Tp * c->kvh * c->hd * 2.0 * 2 * 2);    /* cache write */
    /* one TP all-reduce of the step's hidden states (0 without TP): after attention, after
     * the MLP or MoE, after the embedding */
    double ar_tp = c->tp > 1 ? comm_allreduce_us(&st->tp, act) * 1e3 : 0;
    int n_l = st->n_layers;
    t[COST_ATTN] += n_l * attn;
    t[COST_DENSE_GEMM] += n_l * (qkv + o);
    t[COST_NORM_MISC] += n_l * norms;
    t[COST_ALLREDUCE] += n_l * ar_tp;
    kernels += n_l * (1 + 2) + n_l * 6; /* attention, QKV, O, 6 norm/rope/cache kernels */
    if (lp) lp->k_attn = lp->k_qkv = lp->k_o = n_l;

    if (st->n_moe > 0) {
      double T_moe = Tp * (c->ep_dp ? c->dp : 1);
      double mx, mean;
      moe_route_lookup(&c->route, (int)T_moe, &mx, &mean);
      double fixed = c->dense_w4 ? 2 * CRL_W4_GEMM_FIXED_US * 1e3 : 0;
      double rows_local = T_moe * c->topk / c->ep_size; /* expert rows on a rank, on average */
      double router = cost_roofline_gemm_ns(c, Tp, c->H, c->E, c->router_bytes, 0);
      double misc = router + cost_roofline_mem_ns(c, Tp * c->E * 2.0 + Tp * c->topk * 8.0 + /* top-k */
                                               2 * Tp * c->topk * 4.0 +            /* align */
                                               rows_local * c->I_rank * 2.0 * 3 +  /* SiLU*mul */
                                               rows_local * c->H * 2.0 + act);     /* sum */
      double comm;
      if (c->ep_dp) {
        /* vLLM 0.9.x default all2all backend ("naive", VLLM_ALL2ALL_BACKEND): dispatch
         * broadcasts each DP rank's hidden states and router logits to the others in turn,
         * combine all-reduces the whole expert output over the DP group and keeps its slice;
         * inside a replica the TP all-reduce still follows. */
        double per_rank = act + Tp * c->E * 4.0;
        comm = c->dp * comm_broadcast_us(&st->moe, per_rank) * 1e3 +
               comm_allreduce_us(&st->moe, act * c->dp) * 1e3;
        t[COST_ALL2ALL] += st->n_moe * comm;
        t[COST_ALLREDUCE] += st->n_moe * ar_tp; /* the TP all-reduce inside a replica */
      } else if (st->moe.n_ranks > 1) {
        comm = comm_allreduce_us(&st->moe, act) * 1e3;
        t[COST_ALLREDUCE] += st->n_moe * comm;
      }
      t[COST_MOE_GEMM] += st->n_moe * (mean + fixed);
      t[COST_EXPERT_IMBALANCE] += st->n_moe * (mx - mean);
      t[COST_NORM_MISC] += st->n_moe * misc;
      kernels += st->n_moe * (2 + 1 + (CRL_SMALL_KERNELS_MOE - 6)); /* 2 GEMMs, router, rest */
      if (lp) lp->k_moe = st->n_moe * (2 + 4); /* GEMMs, 2 align/sort, SiLU*mul, weighted sum */
    }
    if (st->n_dense > 0) {
      double gu = cost_roofline_gemm_ns(c, Tp, c->H, 2 * c->dense_I, c->dense_gu_bytes, c->dense_w4);
      double dn = cost_roofline_gemm_ns(c, Tp, c->dense_I, c->H, c->dense_dn_bytes, c->dense_w4);
      double silu = cost_roofline_mem_ns(c, Tp * c->dense_I * 2.0 * 3);
      t[COST_DENSE_GEMM] += st->n_dense * (gu + dn);
      t[COST_NORM_MISC] += st->n_dense * silu;
      t[COST_ALLREDUCE] += st->n_dense * ar_tp;
      kernels += st->n_dense * (2 + (CRL_SMALL_KERNELS_DENSE - 6));
      if (lp) lp->k_gu = lp->k_dn = st->n_dense;
    }
    if (st->first) { /* vocab-parallel embedding: masked gather, then an all-reduce over TP */
      t[COST_LM_HEAD] += cost_roofline_mem_ns(c, 2 * act);
      t[COST_ALLREDUCE] += ar_tp;
      kernels += 1;
    }
  }

  /* Launch gaps (GPU side, graphs) or host-bound eager launches; piecewise graphs still dispatch
   * attention per layer from the host. Sampling below is always eager. */
  double gpu = 0;
  for (int k = 0; k < COST_N_TERMS; k++) gpu += t[k];
  /* Every kernel leaves a gap on the GPU (graph replay or stream launch alike); when the host
   * cannot issue work as fast as the GPU runs it, the excess shows as launch time too. */
  double launch = kernels * c->launch_ns;
  double host = graph > 0 ? st->n_layers * c->cpu_layer_ns : kernels * c->eager_ns;
  if (host > gpu + launch) launch += host - (gpu + launch);
  if (lp) lp->gap_ns = c->launch_ns, lp->k_all = kernels, lp->host_ns = host, lp->gpu_ns = gpu;
  double fixed = 0; /* launch time added after the host/GPU comparison (lp->fixed_ns) */

  if (st->last && step->n_reqs > 0) {
    /* Final norm, lm_head on each request's last position (V1 logits_indices), logits
     * all-gather over TP (every rank samples), sampler passes. */
    double n = step->n_reqs;
    double lm = cost_roofline_gemm_ns(c, n, c->H, c->vocab_rank, c->lm_head_bytes, 0) +
                cost_roofline_mem_ns(c, 3 * n * c->H * 2.0);
    double ag = c->tp > 1 ? comm_allgather_us(&st->tp, n * c->vocab_rank * 2.0) * 1e3 : 0;
    double samp = cost_roofline_mem_ns(c, CRL_SAMPLER_BYTES_PER_LOGIT * n * c->vocab_rank * c->tp);
    double samp_launch = CRL_SAMPLER_KERNELS * c->eager_ns;
    t[COST_LM_HEAD] += lm + ag + (samp > samp_launch ? samp : samp_launch);
    fixed += 2 * c->launch_ns; /* norm + lm_head */
  } else if (!st->last) {
    /* PP hand-off: hidden states and residual (2 x T x hidden bf16); with TP each rank sends its
     * 1/tp slice over the link between the stages and the receivers all-gather (vLLM
     * send_tensor_dict with all_gather_group), plus the host latency per boundary. */
    double bytes = 2.0 * Tp * c->H * 2.0;
    double x = comm_p2p_us(&st->pp, bytes / c->tp) * 1e3;
    if (c->tp > 1) x += 2 * comm_allgather_us(&st->tp, bytes / 2 / c->tp) * 1e3;
    t[COST_PP_XFER] += x + c->pp_stage_ns;
  }
  /* Host time of the step, serial with the GPU work in vLLM 0.9.2 (no async scheduling): every
   * stage's workers update their request state and prepare inputs before launching (with PP the
   * receiving stage starts only when the sender's metadata arrives). */
  fixed += c->cpu_step_ns + c->cpu_req_ns * step->n_reqs;
  if (lp) lp->fixed_ns = fixed;
  t[COST_LAUNCH] += launch + fixed;

  int64_t total = 0;
  for (int k = 0; k < COST_N_TERMS; k++) {
    int64_t v = (int64_t)llround(t[k]);
    total += v;
    if (bd) bd->ns[k] += v;
  }
  return total;
}

static int64_t cost_roofline_stage_ns(void *state, const struct cost_step *step, struct rng *rng,
                                      struct cost_breakdown *bd) {
  (void)rng;
  return cost_roofline_stage(state, step, bd, NULL);
}

int64_t cost_roofline_stage_launch_ns(const struct cost_model *rl, const struct cost_step *step,
                                      struct cost_breakdown *bd, struct cost_roofline_launch *lp) {
  if (lp) memset(lp, 0, sizeof *lp);
  if (!rl || rl->stage_ns != cost_roofline_stage_ns) return -err_set(ERR_INPUT, "cost_roofline_stage_launch_ns: not a roofline model");
  return cost_roofline_stage(rl->state, step, bd, lp);
}
