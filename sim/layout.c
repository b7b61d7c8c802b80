/* layout: vLLM 0.9.x's rules for a parallel layout, and the per-rank memory plan.
 *
 * Each rule reproduces a check vLLM (or a kernel it dispatches to) makes at start-up or on the
 * first batch, and its message names that constraint with the numbers of this model and layout,
 * quoting vLLM's own text where it has one. The memory plan follows vLLM V1's profile:
 *   KV budget = mem_bytes * gpu_memory_utilization - weights - activation peak - non-torch memory
 * per rank, then blocks = budget / (block_size * KV bytes per token of the rank's layers).
 * Weight bytes follow the checkpoint's format (GPTQ qweight + qzeros + scales + g_idx; fp8 plus
 * block scales; bf16), embeddings and lm_head vocab-parallel (split by TP), the router
 * replicated, experts TP-split or, with expert parallel, whole experts placed linearly. */
#include "sim/layout.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

#define LAYOUT_GiB (1024.0 * 1024.0 * 1024.0)
#define LAYOUT_GB 1e9

/* Non-PyTorch memory that vLLM's profile counts against the budget (cuBLAS workspaces, NCCL
 * buffers of each communicator the rank joins). An estimate, not a measurement: vLLM logs it
 * as "non_torch_memory", typically a few hundred MiB; we charge 0.25 GiB plus 0.25 GiB per
 * communicator (TP, PP, DP/EP). The CUDA context predates the baseline snapshot, so it is not
 * counted here but must fit, with the CUDA graphs, in the (1 - utilization) headroom. */
#define LAYOUT_NONTORCH_BASE_BYTES ((int64_t)(0.25 * LAYOUT_GiB))
#define LAYOUT_NONTORCH_COMM_BYTES ((int64_t)(0.25 * LAYOUT_GiB))
#define LAYOUT_CUDA_CTX_BYTES ((int64_t)(0.5 * LAYOUT_GiB))
/* CUDA graph pool for vLLM's 67 capture sizes (1, 2, 4, 8..512): vLLM logs ~0.3-1 GiB. */
#define LAYOUT_GRAPH_POOL_BYTES ((int64_t)(0.75 * LAYOUT_GiB))

/* Marlin's tiles (vLLM's GPTQ_MARLIN_MIN_THREAD_N / _K) and the MoeWNA16 CUDA kernel's K tile. */
#define LAYOUT_MARLIN_MIN_N 64
#define LAYOUT_MARLIN_MIN_K 128
#define LAYOUT_WNA16_BLOCK_K 128
/* vLLM picks the MoeWNA16 CUDA kernel when tokens * top_k / n_experts <= 6 (decode batches). */
#define LAYOUT_WNA16_CUDA_TOK_PER_EXPERT 6

void engine_defaults(struct engine *e, const struct model_spec *m, const struct hw_spec *h) {
  memset(e, 0, sizeof *e);
  e->gpu_mem_util = 0.9;
  e->max_model_len = m ? m->max_pos : 0;
  /* vLLM 0.9 (API server): cards under 70 GiB, and any A100, get the small defaults. */
  int small = !h || (double)h->mem_bytes < 70.0 * LAYOUT_GiB || strstr(h->gpu, "A100") != NULL;
  e->max_num_batched_tokens = small ? 2048 : 8192;
  e->max_num_seqs = small ? 256 : 1024;
  e->block_size = 16;
  e->kv_dtype_bytes = 2;
  e->enforce_eager = 0;
  e->enable_prefix_caching = 1;
}

int layout_enumerate(int n_gpus, enum layout_enum_ep ep_set, struct layout *out, int cap) {
  int n = 0;
  int ep_lo = ep_set == LAYOUT_ENUM_EP_ON ? 1 : 0, ep_hi = ep_set == LAYOUT_ENUM_EP_OFF ? 0 : 1;
  for (int tp = 1; tp <= n_gpus; tp++) {
    if (n_gpus % tp) continue;
    for (int pp = 1; pp <= n_gpus / tp; pp++) {
      if ((n_gpus / tp) % pp) continue;
      int dp = n_gpus / (tp * pp);
      for (int ep = ep_lo; ep <= ep_hi; ep++) {
        /* Under BOTH, EP over one rank would only repeat the ep = 0 layout just listed. */
        if (ep && ep_set == LAYOUT_ENUM_EP_BOTH && tp * dp == 1) continue;
        if (n < cap) out[n] = (struct layout){.tp = tp, .pp = pp, .dp = dp, .ep = ep};
        n++;
      }
    }
  }
  return n;
}

int layout_parse(const char *s, int max_gpus, struct layout *l) {
  *l = (struct layout){.tp = 1, .pp = 1, .dp = 1, .ep = 0};
  if (!s || !*s) return err_set(ERR_INPUT, "--layout: empty value");
  int seen[4] = {0, 0, 0, 0}; /* tp, pp, dp, ep */
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *b = p, *e = comma ? comma : p + strlen(p);
    while (b < e && (*b == ' ' || *b == '\t')) b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if (b == e) return err_set(ERR_INPUT, "--layout '%s': empty item", s);
    const char *eq = memchr(b, '=', (size_t)(e - b));
    const size_t klen = (size_t)((eq ? eq : e) - b);
    static const char *const keys[4] = {"tp", "pp", "dp", "ep"};
    int k = 0;
    while (k < 4 && !(klen == 2 && !strncmp(b, keys[k], 2))) k++;
    if (k == 4 || (k < 3 && !eq))
      return err_set(ERR_INPUT, "--layout '%s': '%.*s' is not tp=N, pp=N, dp=N or ep", s, (int)(e - b), b);
    if (seen[k]++) return err_set(ERR_INPUT, "--layout '%s': %s given twice", s, keys[k]);
    long v = 1;
    if (eq) {
      const char *d = eq + 1;
      if (d == e) return err_set(ERR_INPUT, "--layout '%s': %s has no value", s, keys[k]);
      v = 0;
      for (; d < e; d++) {
        if (*d < '0' || *d > '9' || v > max_gpus)
          return err_set(ERR_INPUT, "--layout '%s': %s=%.*s is not an integer from %d to %d", s, keys[k],
                         (int)(e - eq - 1), eq + 1, k == 3 ? 0 : 1, k == 3 ? 1 : max_gpus);
        v = v * 10 + (*d - '0');
      }
      if (k == 3 ? v > 1 : v < 1 || v > max_gpus)
        return err_set(ERR_INPUT, "--layout '%s': %s=%ld is not an integer from %d to %d", s, keys[k], v,
                       k == 3 ? 0 : 1, k == 3 ? 1 : max_gpus);
    }
    if (k == 0) l->tp = (int)v;
    else if (k == 1) l->pp = (int)v;
    else if (k == 2) l->dp = (int)v;
    else l->ep = (int)v;
    if (!comma) break;
    p = comma + 1;
  }
  if ((int64_t)l->tp * l->pp * l->dp > max_gpus)
    return err_set(ERR_INPUT, "--layout '%s': %lld GPUs, more than %d", s, (long long)l->tp * l->pp * l->dp, max_gpus);
  return ERR_OK;
}

void layout_rank_init(const struct model_spec *m, const struct layout *l, struct layout_rank *r) {
  const int tp = l->tp < 1 ? 1 : l->tp, pp = l->pp < 1 ? 1 : l->pp, dp = l->dp < 1 ? 1 : l->dp;
  const int moe = model_is_moe(m);
  memset(r, 0, sizeof *r);
  r->tp = tp, r->pp = pp, r->dp = dp;
  r->H = m->hidden;
  r->hd = m->head_dim;
  r->qh = m->n_heads / tp;
  r->kvh = m->n_kv_heads >= tp ? m->n_kv_heads / tp : 1;
  r->qkv_n = (double)(r->qh + 2 * r->kvh) * r->hd;
  r->o_k = (double)r->qh * r->hd;
  r->dense_I = (double)m->intermediate / tp;
  r->E = m->n_experts > 0 ? m->n_experts : 1;
  r->topk = m->top_k > 0 ? m->top_k : 1;
  r->ep = l->ep && moe ? tp * dp : 1;
  r->ep_dp = l->ep && moe && dp > 1;
  r->I_rank = r->ep > 1 ? m->moe_intermediate : (double)m->moe_intermediate / tp;
}

void layout_stage_counts(const struct model_spec *m, int pp, int stage, int *n_layers, int *n_moe, int *n_dense) {
  int first, count;
  layout_stage_layers(m->n_layers, pp, stage, &first, &count);
  *n_layers = count;
  *n_moe = *n_dense = 0;
  for (int i = first; i < first + count; i++) {
    if (model_layer_is_moe(m, i)) ++*n_moe;
    else ++*n_dense;
  }
}

int layout_ep_size(const struct layout *l) { return l->ep ? l->tp * l->dp : 1; }

int layout_n_gpus(const struct layout *l) { return l->tp * l->pp * l->dp; }

void layout_stage_layers(int n_layers, int pp, int stage, int *first, int *count) {
  if (pp < 1) pp = 1;
  int base = n_layers / pp, rem = n_layers % pp, start = 0;
  for (int s = 0; s <= stage && s < pp; s++) {
    /* Stages pp-1-rem .. pp-2 take one extra layer each (never the last, which has lm_head). */
    int extra = (rem > 0 && s >= pp - 1 - rem && s < pp - 1) ? 1 : 0;
    int n = base + extra;
    if (s == stage) {
      *first = start;
      *count = n;
      return;
    }
    start += n;
  }
  *first = start;
  *count = 0;
}

static int layout_ceil_div(int a, int b) { return b > 0 ? (a + b - 1) / b : a; }

/* Per-rank attention heads: q split by TP; KV heads split, or replicated when TP exceeds them. */
static int layout_q_heads(const struct model_spec *m, int tp) { return layout_ceil_div(m->n_heads, tp); }
static int layout_kv_heads(const struct model_spec *m, int tp) {
  return tp >= m->n_kv_heads ? 1 : layout_ceil_div(m->n_kv_heads, tp);
}

static int layout_experts_rank(const struct model_spec *m, const struct layout *l) {
  int ep = layout_ep_size(l);
  return ep > 1 ? layout_ceil_div(m->n_experts, ep) : m->n_experts;
}

static int layout_moe_inter_rank(const struct model_spec *m, const struct layout *l) {
  return layout_ep_size(l) > 1 ? m->moe_intermediate : layout_ceil_div(m->moe_intermediate, l->tp);
}

int64_t layout_weight_bytes_stage(const struct model_spec *m, const struct layout *l, int stage) {
  int first, count;
  layout_stage_layers(m->n_layers, l->pp, stage, &first, &count);
  int64_t H = m->hidden, hd = m->head_dim;
  int64_t q = (int64_t)layout_q_heads(m, l->tp) * hd, kv = (int64_t)layout_kv_heads(m, l->tp) * hd;
  double db = m->dtype_bytes;
  /* Attention: merged QKV (column-parallel) and o_proj (row-parallel), quantized with the rest. */
  double attn = model_linear_bytes(m, H, q, 1) + 2 * model_linear_bytes(m, H, kv, 1) +
                model_linear_bytes(m, q, H, 1);
  attn += db * (2 * H + (m->qk_norm ? 2 * hd : 0) + (m->attention_bias ? q + 2 * kv : 0));
  double moe = 0, dense = 0;
  if (model_is_moe(m)) {
    int64_t I = layout_moe_inter_rank(m, l);
    double expert = 2 * model_linear_bytes(m, H, I, 1) + model_linear_bytes(m, I, H, 1);
    moe = expert * layout_experts_rank(m, l) + db * H * m->n_experts; /* router replicated */
  }
  if (m->intermediate > 0) {
    int64_t I = layout_ceil_div(m->intermediate, l->tp);
    dense = 2 * model_linear_bytes(m, H, I, 1) + model_linear_bytes(m, I, H, 1);
  }
  double total = 0;
  for (int layer = first; layer < first + count; layer++)
    total += attn + (model_layer_is_moe(m, layer) ? moe : dense);
  /* VocabParallelEmbedding pads the vocabulary to a multiple of 64, then splits it by TP. */
  int64_t vocab_rank = layout_ceil_div(layout_ceil_div(m->vocab, 64) * 64, l->tp);
  double table = db * (double)vocab_rank * H;
  if (stage == 0) total += table;
  if (stage == l->pp - 1) {
    total += db * H; /* final norm */
    /* lm_head: its own matrix, or with tied embeddings a second copy only when PP splits them. */
    if (!m->tie_embed || l->pp > 1) total += table;
  }
  return (int64_t)total;
}

int64_t layout_kv_bytes_token_stage(const struct model_spec *m, const struct layout *l, int stage,
                                    int kv_dtype_bytes) {
  int first, count;
  layout_stage_layers(m->n_layers, l->pp, stage, &first, &count);
  return 2LL * count * layout_kv_heads(m, l->tp) * m->head_dim * kv_dtype_bytes;
}

/* Estimate of the PyTorch activation peak in vLLM's profile run (a forward over
 * max_num_batched_tokens dummy tokens, then the sampler over max_num_seqs rows):
 *   hidden: 4 live [M, H] tensors (residual, normed input, layer output, its copy)
 *   attention: qkv [M, (q+2kv)] and output [M, q]
 *   MoE: router logits fp32 [M, E], fused-MoE caches [M*top_k, 2I], [M*top_k, I], [M*top_k, H]
 *   dense MLP: [M, 2I] and [M, I]
 *   sampler (last stage): [max_num_seqs, vocab] at 16 bytes an element: the gathered bf16
 *     logits (2), their fp32 copy (4), probabilities (4), log-probabilities or sort scratch (4)
 *     and rounding for index tensors (2); vLLM's dummy sampler run allocates these at once.
 * The peak is hidden + the largest per-layer term, or the sampler's, whichever is larger. The
 * allocator's fragmentation is not modelled; vLLM reports this figure as "activation peak". */
int64_t layout_activation_bytes_stage(const struct model_spec *m, const struct layout *l,
                                      const struct engine *e, int stage) {
  double M = e->max_num_batched_tokens > 0 ? e->max_num_batched_tokens : 2048;
  double db = m->dtype_bytes, H = m->hidden, hd = m->head_dim;
  double q = layout_q_heads(m, l->tp) * hd, kv = layout_kv_heads(m, l->tp) * hd;
  double hidden = 4 * M * H * db;
  double attn = M * (q + 2 * kv) * db + M * q * db;
  double mlp = 0;
  if (model_is_moe(m)) {
    double I = layout_moe_inter_rank(m, l), mk = M * m->top_k;
    mlp = M * m->n_experts * 4.0 + mk * (2 * I + I + H) * db;
  }
  if (m->intermediate > 0 && m->n_moe_layers < m->n_layers) {
    double I = layout_ceil_div(m->intermediate, l->tp);
    double d = M * 3 * I * db;
    if (d > mlp) mlp = d;
  }
  double peak = hidden + (attn > mlp ? attn : mlp);
  if (stage == l->pp - 1) {
    double seqs = e->max_num_seqs > 0 ? e->max_num_seqs : 256;
    double sampler = seqs * m->vocab * 16.0;
    if (sampler > peak) peak = sampler;
  }
  return (int64_t)peak;
}

/* ---- rules ---- */

static void layout_add(struct layout_verdict *v, int note, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void layout_add(struct layout_verdict *v, int note, const char *rule, const char *fmt, ...) {
  struct layout_fail *f;
  if (note) {
    if (v->n_notes >= LAYOUT_MAX_NOTES) return;
    f = &v->notes[v->n_notes++];
  } else {
    if (v->n_fails >= LAYOUT_MAX_FAILS) return;
    f = &v->fails[v->n_fails++];
  }
  snprintf(f->rule, sizeof f->rule, "%s", rule);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->detail, sizeof f->detail, fmt, ap);
  va_end(ap);
}

/* Dense GPTQ Marlin (verify_marlin_supports_shape): per-partition N % 64 and K % 128. */
static void layout_marlin_linear(struct layout_verdict *v, const char *what, int64_t k, int64_t n,
                                 int tp) {
  if (n % LAYOUT_MARLIN_MIN_N)
    layout_add(v, 0, "marlin-n",
               "GPTQ Marlin: %s output_size_per_partition = %lld is not divisible by min_thread_n = "
               "%d (tp %d); reduce --tensor-parallel-size",
               what, (long long)n, LAYOUT_MARLIN_MIN_N, tp);
  if (k % LAYOUT_MARLIN_MIN_K)
    layout_add(v, 0, "marlin-k",
               "GPTQ Marlin: %s input_size_per_partition = %lld is not divisible by min_thread_k = "
               "%d (tp %d); reduce --tensor-parallel-size",
               what, (long long)k, LAYOUT_MARLIN_MIN_K, tp);
  /* vLLM also checks input_size_per_partition % group_size when group_size < input_size; with
   * Marlin's group sizes (<= 128) that is implied by the K % 128 check above. */
}

static void layout_rules_gptq(struct layout_verdict *v, const struct model_spec *m,
                              const struct layout *l) {
  int64_t H = m->hidden, hd = m->head_dim;
  int64_t q = (int64_t)layout_q_heads(m, l->tp) * hd, kv = (int64_t)layout_kv_heads(m, l->tp) * hd;
  const struct model_quant_cfg *qc = &m->quant;
  int g = qc->group_size;
  int marlin_cfg = (qc->bits == 4 || qc->bits == 8) && qc->sym &&
                   (g == -1 || g == 32 || g == 64 || g == 128);
  if (!marlin_cfg) {
    /* is_gptq_marlin_compatible() is false: vLLM keeps the plain GPTQ (exllama) kernels. */
    layout_add(v, 1, "gptq-no-marlin",
               "gptq bits %d, group_size %d, sym %d is not Marlin-compatible (bits 4/8, group "
               "-1/32/64/128, sym): vLLM uses the slower plain GPTQ kernels",
               qc->bits, g, qc->sym);
  } else {
    layout_marlin_linear(v, "qkv_proj", H, q + 2 * kv, l->tp);
    layout_marlin_linear(v, "o_proj", q, H, l->tp);
  }
  if (marlin_cfg && m->intermediate > 0 && m->n_moe_layers < m->n_layers) {
    int64_t I = layout_ceil_div(m->intermediate, l->tp);
    layout_marlin_linear(v, "gate_up_proj", H, 2 * I, l->tp);
    layout_marlin_linear(v, "down_proj", I, H, l->tp);
  }
  if (!model_is_moe(m)) return;
  /* Marlin MoE (check_moe_marlin_supports_layer): hidden % 128 and I_rank % max(64, group). */
  int64_t I = layout_moe_inter_rank(m, l);
  int64_t need = g > 64 ? g : 64;
  int marlin_ok = marlin_cfg && H % 128 == 0 && I % need == 0;
  if (marlin_ok) return;
  char why[128];
  if (marlin_cfg)
    snprintf(why, sizeof why, "Marlin MoE needs a multiple of max(64, group_size %d) = %lld", g,
             (long long)need);
  else
    snprintf(why, sizeof why, "the checkpoint is not Marlin-compatible");
  /* Fallback: MoeWNA16. Its CUDA kernel (decode-sized batches) tiles K by BLOCK_SIZE_K = 128. */
  int max_tok = LAYOUT_WNA16_CUDA_TOK_PER_EXPERT * m->n_experts / (m->top_k > 0 ? m->top_k : 1);
  const char *split = layout_ep_size(l) > 1 ? "with expert parallel" : "";
  char how[96];
  if (layout_ep_size(l) > 1)
    snprintf(how, sizeof how, "moe_intermediate_size %d %s", m->moe_intermediate, split);
  else
    snprintf(how, sizeof how, "moe_intermediate_size %d / tp %d", m->moe_intermediate, l->tp);
  if (I % LAYOUT_WNA16_BLOCK_K || H % LAYOUT_WNA16_BLOCK_K) {
    int64_t sk = I % LAYOUT_WNA16_BLOCK_K ? I : H;
    layout_add(v, 0, "moe-wna16-block-k",
               "MoE down_proj size_k = %s = %lld per rank; %s, so vLLM falls back to MoeWNA16, "
               "whose CUDA kernel tiles K by BLOCK_SIZE_K = %d: batches of <= %d tokens fail with "
               "'size_k must divisible by BLOCK_SIZE_K' (%lld vs %d, remainder %lld); use a "
               "smaller -tp or --enable-expert-parallel",
               how, (long long)I, why, LAYOUT_WNA16_BLOCK_K, max_tok, (long long)sk,
               LAYOUT_WNA16_BLOCK_K, (long long)(sk % LAYOUT_WNA16_BLOCK_K));
  } else {
    layout_add(v, 1, "moe-wna16",
               "Marlin MoE unsupported (%s = %lld per rank; %s): vLLM runs the slower MoeWNA16 "
               "kernels",
               how, (long long)I, why);
  }
}

static void layout_rules_fp8(struct layout_verdict *v, const struct model_spec *m,
                             const struct layout *l, const struct hw_spec *h) {
  int bn = m->quant.fp8_block_n, bk = m->quant.fp8_block_k;
  if (h && h->tflops_fp8 <= 0)
    layout_add(v, 1, "fp8-hw",
               "%s has no FP8 tensor cores: vLLM runs FP8 linears weight-only through Marlin "
               "('Your GPU does not have native support for FP8 computation')",
               h->gpu);
  if (bn <= 0 || bk <= 0) return; /* per-tensor scales: no tile constraint */
  int64_t hd = m->head_dim;
  int64_t q = (int64_t)layout_q_heads(m, l->tp) * hd, kv = (int64_t)layout_kv_heads(m, l->tp) * hd;
  /* Column-parallel: each output partition % block_n; row-parallel (tp > 1): input % block_k. */
  if (q % bn || kv % bn)
    layout_add(v, 0, "fp8-block-n",
               "FP8 qkv_proj: 'Weight output_partition_size = %lld is not divisible by weight "
               "quantization block_n = %d' (tp %d)",
               (long long)(q % bn ? q : kv), bn, l->tp);
  if (l->tp > 1 && q % bk)
    layout_add(v, 0, "fp8-block-k",
               "FP8 o_proj: 'Weight input_size_per_partition = %lld is not divisible by weight "
               "quantization block_k = %d' (tp %d)",
               (long long)q, bk, l->tp);
  if (m->intermediate > 0 && m->n_moe_layers < m->n_layers) {
    int64_t I = layout_ceil_div(m->intermediate, l->tp);
    if (I % bn)
      layout_add(v, 0, "fp8-block-n",
                 "FP8 gate_up_proj: 'Weight output_partition_size = %lld is not divisible by weight "
                 "quantization block_n = %d' (tp %d)",
                 (long long)I, bn, l->tp);
    if (l->tp > 1 && I % bk)
      layout_add(v, 0, "fp8-block-k",
                 "FP8 down_proj: 'Weight input_size_per_partition = %lld is not divisible by weight "
                 "quantization block_k = %d' (tp %d)",
                 (long long)I, bk, l->tp);
  }
  if (!model_is_moe(m)) return;
  int64_t I = layout_moe_inter_rank(m, l);
  int split = layout_ep_size(l) == 1 && l->tp > 1;
  if (I % bn)
    layout_add(v, 0, "fp8-moe-block-n",
               "FP8 MoE: 'The output_size of gate's and up's weight = %lld is not divisible by "
               "weight quantization block_n = %d' (moe_intermediate_size %d / tp %d = %lld vs "
               "weight_block_size [%d, %d]); use a smaller -tp or --enable-expert-parallel",
               (long long)I, bn, m->moe_intermediate, split ? l->tp : 1, (long long)I, bn, bk);
  if (split && I % bk)
    layout_add(v, 0, "fp8-moe-block-k",
               "FP8 MoE: 'The input_size of down's weight = %lld is not divisible by weight "
               "quantization block_k = %d'",
               (long long)I, bk);
}

static void layout_memory(struct layout_verdict *v, const struct model_spec *m,
                          const struct hw_spec *h, const struct layout *l, const struct engine *e) {
  struct mem_plan *p = &v->mem;
  int kvb = e->kv_dtype_bytes > 0 ? e->kv_dtype_bytes : m->dtype_bytes;
  int bs = e->block_size > 0 ? e->block_size : 16;
  int comms = (l->tp > 1) + (l->pp > 1) + (l->dp > 1);
  p->overhead_bytes_rank = LAYOUT_NONTORCH_BASE_BYTES + comms * LAYOUT_NONTORCH_COMM_BYTES;
  p->budget_bytes_rank = (int64_t)((double)h->mem_bytes * e->gpu_mem_util);
  int64_t min_blocks = -1;
  int worst = 0;
  for (int s = 0; s < l->pp; s++) {
    int64_t w = layout_weight_bytes_stage(m, l, s);
    int64_t a = layout_activation_bytes_stage(m, l, e, s);
    int64_t kv_tok = layout_kv_bytes_token_stage(m, l, s, kvb);
    int64_t free_b = p->budget_bytes_rank - w - a - p->overhead_bytes_rank;
    int64_t blocks = free_b > 0 && kv_tok > 0 ? free_b / (kv_tok * bs) : 0;
    if (w > p->weight_bytes_rank) p->weight_bytes_rank = w;
    if (a > p->activation_bytes_rank) p->activation_bytes_rank = a;
    if (kv_tok > p->kv_bytes_token_rank) p->kv_bytes_token_rank = kv_tok;
    /* V1 gives every stage the same block count: the smallest stage's. */
    if (min_blocks < 0 || blocks < min_blocks) {
      min_blocks = blocks;
      p->kv_bytes_free_rank = free_b;
      worst = s;
    }
  }
  p->kv_blocks = min_blocks < 0 ? 0 : min_blocks;
  p->kv_tokens = p->kv_blocks * bs;
  p->max_concurrency = p->max_model_len > 0 ? (double)p->kv_tokens / p->max_model_len : 0;

  int64_t w = layout_weight_bytes_stage(m, l, worst), a = layout_activation_bytes_stage(m, l, e, worst);
  if (p->kv_bytes_free_rank <= 0) {
    layout_add(v, 0, "memory",
               "weights %.2f GB + activation peak %.2f GB + non-torch %.2f GB per GPU exceed "
               "%.2f GB x gpu_memory_utilization %.2f = %.2f GB by %.2f GB (vLLM: 'No available "
               "memory for the cache blocks')",
               w / LAYOUT_GB, a / LAYOUT_GB, p->overhead_bytes_rank / LAYOUT_GB,
               h->mem_bytes / LAYOUT_GB, e->gpu_mem_util, p->budget_bytes_rank / LAYOUT_GB,
               -p->kv_bytes_free_rank / LAYOUT_GB);
  } else if (p->kv_tokens < p->max_model_len) {
    double need = (double)p->max_model_len * p->kv_bytes_token_rank;
    layout_add(v, 0, "memory-kv",
               "KV cache holds %lld tokens per GPU but max_model_len is %d: one sequence needs "
               "%.2f GB of KV, %.2f GB is available, short by %.2f GB (vLLM: 'larger than the "
               "available KV cache memory'); lower --max-model-len or raise "
               "--gpu-memory-utilization",
               (long long)p->kv_tokens, p->max_model_len, need / LAYOUT_GB,
               p->kv_bytes_free_rank / LAYOUT_GB, (need - p->kv_bytes_free_rank) / LAYOUT_GB);
  }
  double headroom = (double)h->mem_bytes * (1 - e->gpu_mem_util);
  double graphs = e->enforce_eager ? 0 : (double)LAYOUT_GRAPH_POOL_BYTES;
  if (headroom < LAYOUT_CUDA_CTX_BYTES + graphs)
    layout_add(v, 1, "graph-headroom",
               "only %.2f GB outside gpu_memory_utilization for the CUDA context (~%.1f GB) and "
               "CUDA graphs (~%.2f GB): capture may run out of memory",
               headroom / LAYOUT_GB, LAYOUT_CUDA_CTX_BYTES / LAYOUT_GB, graphs / LAYOUT_GB);
}

int layout_check(const struct model_spec *m, const struct hw_spec *h, int n_gpus,
                 const struct layout *l, const struct engine *e, struct layout_verdict *v) {
  memset(v, 0, sizeof *v);
  if (l->tp < 1 || l->pp < 1 || l->dp < 1)
    return err_set(ERR_INPUT, "tp, pp and dp must be >= 1 (got %d, %d, %d)", l->tp, l->pp, l->dp);
  struct mem_plan *p = &v->mem;
  p->max_model_len = e->max_model_len;
  p->q_heads_rank = layout_q_heads(m, l->tp);
  p->kv_heads_rank = layout_kv_heads(m, l->tp);
  p->experts_rank = model_is_moe(m) ? layout_experts_rank(m, l) : 0;
  p->moe_inter_rank = model_is_moe(m) ? layout_moe_inter_rank(m, l) : 0;
  int f0, c0;
  layout_stage_layers(m->n_layers, l->pp, 0, &f0, &c0);
  p->layers_stage_max = c0;

  int need = layout_n_gpus(l);
  if (n_gpus > 0 && need != n_gpus)
    layout_add(v, 0, "gpus",
               "tensor_parallel_size %d x pipeline_parallel_size %d x data_parallel_size %d = %d "
               "GPUs, but --gpus is %d",
               l->tp, l->pp, l->dp, need, n_gpus);
  if (h && need > h->gpus_per_node)
    layout_add(v, 0, "node",
               "%d GPUs needed but the %s spec describes one server of %d GPUs", need, h->name,
               h->gpus_per_node);
  if (m->n_heads % l->tp)
    layout_add(v, 0, "tp-heads",
               "Total number of attention heads (%d) must be divisible by tensor parallel size (%d)",
               m->n_heads, l->tp);
  if (l->tp >= m->n_kv_heads ? l->tp % m->n_kv_heads : m->n_kv_heads % l->tp)
    layout_add(v, 0, "tp-kv-heads",
               "num_key_value_heads %d and tensor_parallel_size %d: one must divide the other "
               "(QKVParallelLinear splits KV heads, or replicates them when tp exceeds them)",
               m->n_kv_heads, l->tp);
  if (l->pp > m->n_layers)
    layout_add(v, 0, "pp-layers",
               "pipeline_parallel_size %d exceeds num_hidden_layers %d: a stage would hold no layer",
               l->pp, m->n_layers);
  else if (m->n_layers % l->pp)
    layout_add(v, 1, "pp-uneven",
               "%d layers over %d stages: %d to %d per stage; the largest stage sets the pace",
               m->n_layers, l->pp, m->n_layers / l->pp, m->n_layers / l->pp + 1);
  if (l->ep && !model_is_moe(m))
    layout_add(v, 1, "ep-dense", "--enable-expert-parallel has no effect on a dense model");
  if (l->ep && model_is_moe(m)) {
    int ep = layout_ep_size(l);
    if (ep > m->n_experts)
      layout_add(v, 0, "ep-experts",
                 "expert-parallel size tp x dp = %d exceeds num_experts %d: some ranks would hold "
                 "no expert",
                 ep, m->n_experts);
    else if (m->n_experts % ep)
      layout_add(v, 1, "ep-uneven",
                 "%d experts over %d EP ranks: linear placement gives %d to %d per rank",
                 m->n_experts, ep, m->n_experts / ep, m->n_experts / ep + 1);
  }
  if (m->quant.method == MODEL_QUANT_GPTQ) layout_rules_gptq(v, m, l);
  if (m->quant.method == MODEL_QUANT_FP8) layout_rules_fp8(v, m, l, h);
  if (e->max_model_len > m->max_pos)
    layout_add(v, 0, "max-model-len",
               "User-specified max_model_len (%d) is greater than the derived max_model_len "
               "(max_position_embeddings=%d in the model's config.json)",
               e->max_model_len, m->max_pos);
  if (e->max_num_batched_tokens > 0 && e->max_num_seqs > e->max_num_batched_tokens)
    layout_add(v, 0, "batched-tokens",
               "max_num_batched_tokens (%d) must be greater than or equal to max_num_seqs (%d)",
               e->max_num_batched_tokens, e->max_num_seqs);
  /* The TP group (consecutive GPUs) talks over the first tier that holds it. vLLM's custom
   * all-reduce needs every pair NVLink-connected; otherwise each all-reduce goes through NCCL
   * at that tier's bus bandwidth, which on PCIe A100s dominates decode steps. */
  if (h && l->tp > 1) {
    int t = hw_tier_for(h, 0, l->tp);
    if (t >= 0 && !h->tiers[t].nvlink)
      layout_add(v, 1, "tp-pcie",
                 "the TP group of %d GPUs spans tier '%s' (all-reduce bus bandwidth %.0f GB/s): "
                 "vLLM's custom all-reduce is off, every all-reduce goes through NCCL",
                 l->tp, h->tiers[t].name, h->tiers[t].allreduce_busbw_GBps);
  }
  /* vLLM 0.9's V1 oracle: an fp8 KV cache needs FlashAttention 3 (Hopper); elsewhere the
   * engine falls back to V0, whose scheduler differs from the one servesim models. */
  if (h && e->kv_dtype_bytes == 1 && !strstr(h->gpu, "H100") && !strstr(h->gpu, "H20"))
    layout_add(v, 1, "kv-fp8-v0",
               "--kv-cache-dtype fp8 on %s: vLLM 0.9 supports it in V1 only with FlashAttention 3 "
               "(Hopper) and falls back to the V0 engine here",
               h->gpu);
  if (h) layout_memory(v, m, h, l, e);
  if (v->n_fails) return err_set(ERR_LAYOUT, "%s: %s", v->fails[0].rule, v->fails[0].detail);
  return ERR_OK;
}
