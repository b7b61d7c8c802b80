/* model: a Hugging Face config.json read into the numbers the simulator and executor need.
 *
 * model_load() takes a directory holding config.json, a path to a .json file, or a name under
 * specs/models/ (SERVESIM_SOURCE_DIR or the build's source dir). quantization_config decides
 * the weight format: gptq (bits, group_size, desc_act, sym), fp8 (weight_block_size), or none
 * (the torch_dtype, bf16). Derived sizes (parameter counts, per-rank bytes) live here too. */
#ifndef SERVESIM_MODEL_H
#define SERVESIM_MODEL_H

#include <stdint.h>

#define MODEL_MAX_LAYERS 256

enum model_quant { MODEL_QUANT_NONE = 0, MODEL_QUANT_GPTQ = 1, MODEL_QUANT_FP8 = 2 };

struct model_quant_cfg {
  int method;         /* enum model_quant */
  int bits;           /* gptq: 4 or 8 */
  int group_size;     /* gptq: 128 typical; -1 = per-channel */
  int desc_act;       /* gptq: act-order (g_idx permuted) */
  int sym;            /* gptq: symmetric (zero 8 for 4-bit) */
  int fp8_block_n;    /* fp8 block quantization: weight_block_size[0] (0 = per-tensor) */
  int fp8_block_k;    /* weight_block_size[1] */
};

struct model_spec {
  char name[128];           /* spec name or the directory's last component */
  char arch[64];            /* architectures[0], e.g. Qwen3MoeForCausalLM */
  int hidden;               /* hidden_size */
  int n_layers;             /* num_hidden_layers */
  int n_heads;              /* num_attention_heads */
  int n_kv_heads;           /* num_key_value_heads */
  int head_dim;             /* head_dim (or hidden / n_heads) */
  int intermediate;         /* intermediate_size: dense MLP width */
  int moe_intermediate;     /* moe_intermediate_size: per-expert width (0 if dense) */
  int n_experts;            /* num_experts (0 = dense model) */
  int top_k;                /* num_experts_per_tok */
  int norm_topk_prob;       /* renormalise top-k weights */
  int decoder_sparse_step;  /* MoE every k-th layer */
  int n_moe_layers;         /* derived: layers whose MLP is MoE */
  int vocab;                /* vocab_size */
  int max_pos;              /* max_position_embeddings */
  double rope_theta;
  double rms_eps;
  int tie_embed;            /* tie_word_embeddings */
  int qk_norm;              /* per-head RMSNorm on q and k (Qwen3) */
  int attention_bias;
  int dtype_bytes;          /* torch_dtype: 2 for bf16/fp16 */
  struct model_quant_cfg quant;
  char model_type[32];      /* model_type, e.g. qwen3_moe */
  char path[512];           /* the config.json actually read */
  unsigned char mlp_only[MODEL_MAX_LAYERS]; /* mlp_only_layers: 1 = dense MLP in a MoE model */
};

struct model_params {
  double total;             /* all parameters */
  double active;            /* touched per token (top_k experts) */
  double experts;           /* all expert weights */
  double attention;         /* q, k, v, o (+ norms) */
  double router;
  double embed_lm_head;
  double dense_mlp;         /* dense MLP layers (whole of a dense model) */
};

int model_load(const char *path_or_name, struct model_spec *m);
/* Resolves a spec name to its config.json path under specs/models; ERR_NOENT if none. */
int model_resolve_path(const char *path_or_name, char *out, int out_len);
void model_count_params(const struct model_spec *m, struct model_params *p);
/* Bytes of one quantized linear K x N with this model's weight format (scales included). */
double model_linear_bytes(const struct model_spec *m, int64_t k, int64_t n, int quantized);
int model_is_moe(const struct model_spec *m);
int model_layer_is_moe(const struct model_spec *m, int layer);

#endif
