/* model: Hugging Face config.json -> struct model_spec, parameter counts, linear byte sizes.
 *
 * Only the keys that shape compute and memory are read; unknown keys are ignored, as
 * transformers does. Qwen3 / Qwen3-MoE (and Qwen2-style dense) architectures are the target;
 * quantization_config decides the weight format (gptq, fp8 block, or none). */
#include "sim/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "sim/specjson.h"

static int model_is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int model_is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int model_resolve_path(const char *path_or_name, char *out, int out_len) {
  if (!path_or_name || !path_or_name[0]) return err_set(ERR_INPUT, "--model: empty model name");
  if (model_is_dir(path_or_name)) {
    int n = snprintf(out, (size_t)out_len, "%s/config.json", path_or_name);
    if (n < 0 || n >= out_len) return err_set(ERR_INPUT, "%s: path too long", path_or_name);
    if (!model_is_file(out)) return err_set(ERR_NOENT, "%s: no such file", out);
    return ERR_OK;
  }
  if (model_is_file(path_or_name)) {
    snprintf(out, (size_t)out_len, "%s", path_or_name);
    return ERR_OK;
  }
  /* Something that looks like a path but is not there: say so rather than search specs. */
  if (strchr(path_or_name, '/') || strstr(path_or_name, ".json"))
    return err_set(ERR_NOENT, "%s: no such file or directory", path_or_name);
  return specjson_find_spec("models", path_or_name, "/config.json", out, out_len);
}

static int model_get_int(const cJSON *o, const char *key, int required, int def, int lo, int hi,
                         int *out, const char *path) {
  int64_t v;
  int rc = specjson_int(o, key, required, def, &v, path);
  if (rc) return rc;
  if (v < lo || v > hi)
    return err_set(ERR_INPUT, "%s: %s = %lld is out of range [%d, %d]", path, key, (long long)v,
                   lo, hi);
  *out = (int)v;
  return ERR_OK;
}

static int model_read_quant(const cJSON *root, struct model_spec *m, const char *path) {
  struct model_quant_cfg *q = &m->quant;
  memset(q, 0, sizeof *q);
  const cJSON *qc = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
  if (!qc || cJSON_IsNull(qc)) return ERR_OK;
  if (!cJSON_IsObject(qc)) return err_set(ERR_INPUT, "%s: quantization_config must be an object", path);
  char method[32];
  int rc = specjson_str(qc, "quant_method", 1, NULL, method, sizeof method, path);
  if (rc) return err_wrap(rc, "quantization_config");
  if (!strcmp(method, "gptq")) {
    q->method = MODEL_QUANT_GPTQ;
    if ((rc = model_get_int(qc, "bits", 1, 4, 2, 8, &q->bits, path))) return rc;
    if (q->bits != 4 && q->bits != 8)
      return err_set(ERR_INPUT, "%s: gptq bits = %d: only 4 and 8 are supported (vLLM Marlin)",
                     path, q->bits);
    if ((rc = model_get_int(qc, "group_size", 0, 128, -1, 1 << 20, &q->group_size, path))) return rc;
    if (q->group_size == 0 || (q->group_size < 0 && q->group_size != -1))
      return err_set(ERR_INPUT, "%s: gptq group_size = %d: must be positive or -1", path,
                     q->group_size);
    if ((rc = specjson_bool(qc, "desc_act", 0, &q->desc_act, path))) return rc;
    if ((rc = specjson_bool(qc, "sym", 1, &q->sym, path))) return rc;
    return ERR_OK;
  }
  if (!strcmp(method, "fp8")) {
    q->method = MODEL_QUANT_FP8;
    q->bits = 8;
    const cJSON *wb = cJSON_GetObjectItemCaseSensitive(qc, "weight_block_size");
    if (wb && !cJSON_IsNull(wb)) {
      if (!cJSON_IsArray(wb) || cJSON_GetArraySize(wb) != 2)
        return err_set(ERR_INPUT, "%s: weight_block_size must be [block_n, block_k]", path);
      const cJSON *bn = cJSON_GetArrayItem(wb, 0), *bk = cJSON_GetArrayItem(wb, 1);
      if (!cJSON_IsNumber(bn) || !cJSON_IsNumber(bk) || bn->valuedouble < 1 ||
          bk->valuedouble < 1 || bn->valuedouble > 65536 || bk->valuedouble > 65536 ||
          bn->valuedouble != floor(bn->valuedouble) || bk->valuedouble != floor(bk->valuedouble))
        return err_set(ERR_INPUT, "%s: weight_block_size must hold two positive integers", path);
      q->fp8_block_n = (int)bn->valuedouble;
      q->fp8_block_k = (int)bk->valuedouble;
    }
    return ERR_OK;
  }
  return err_set(ERR_INPUT, "%s: quant_method '%s' is not supported (gptq, fp8, or none)", path,
                 method);
}

static int model_dtype_bytes(const char *dtype, int *out, const char *path) {
  if (!dtype[0] || !strcmp(dtype, "bfloat16") || !strcmp(dtype, "float16") ||
      !strcmp(dtype, "auto"))
    *out = 2;
  else if (!strcmp(dtype, "float32"))
    *out = 4;
  else
    return err_set(ERR_INPUT, "%s: torch_dtype '%s' is not supported", path, dtype);
  return ERR_OK;
}

int model_load(const char *path_or_name, struct model_spec *m) {
  memset(m, 0, sizeof *m);
  char path[512];
  int rc = model_resolve_path(path_or_name, path, sizeof path);
  if (rc) return rc;
  cJSON *root = NULL;
  if ((rc = specjson_load(path, &root))) return rc;
  snprintf(m->path, sizeof m->path, "%s", path);

  /* Name: the spec name, else the directory holding config.json. */
  char dir[512];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && !strcmp(slash + 1, "config.json")) {
    *slash = '\0';
    slash = strrchr(dir, '/');
    snprintf(m->name, sizeof m->name, "%.127s", slash ? slash + 1 : dir);
  } else {
    snprintf(m->name, sizeof m->name, "%.127s", slash ? slash + 1 : dir);
    char *dot = strrchr(m->name, '.');
    if (dot && !strcmp(dot, ".json")) *dot = '\0';
  }

  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
  if (arch && cJSON_IsArray(arch) && cJSON_IsString(cJSON_GetArrayItem(arch, 0)))
    snprintf(m->arch, sizeof m->arch, "%s", cJSON_GetArrayItem(arch, 0)->valuestring);
  if ((rc = specjson_str(root, "model_type", 0, "", m->model_type, sizeof m->model_type, path)))
    goto fail;

  const int big = 1 << 24;
  if ((rc = model_get_int(root, "hidden_size", 1, 0, 1, big, &m->hidden, path))) goto fail;
  if ((rc = model_get_int(root, "num_hidden_layers", 1, 0, 1, MODEL_MAX_LAYERS, &m->n_layers, path)))
    goto fail;
  if ((rc = model_get_int(root, "num_attention_heads", 1, 0, 1, 4096, &m->n_heads, path))) goto fail;
  if ((rc = model_get_int(root, "num_key_value_heads", 0, m->n_heads, 1, 4096, &m->n_kv_heads, path)))
    goto fail;
  if (m->n_heads % m->n_kv_heads) {
    rc = err_set(ERR_INPUT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                 path, m->n_heads, m->n_kv_heads);
    goto fail;
  }
  if (m->hidden % m->n_heads && !cJSON_GetObjectItemCaseSensitive(root, "head_dim")) {
    rc = err_set(ERR_INPUT, "%s: no head_dim and hidden_size %d is not a multiple of %d heads", path,
                 m->hidden, m->n_heads);
    goto fail;
  }
  if ((rc = model_get_int(root, "head_dim", 0, m->hidden / m->n_heads, 1, 4096, &m->head_dim, path)))
    goto fail;
  if ((rc = model_get_int(root, "intermediate_size", 0, 0, 0, big, &m->intermediate, path))) goto fail;
  if ((rc = model_get_int(root, "num_experts", 0, 0, 0, 65536, &m->n_experts, path))) goto fail;
  if ((rc = model_get_int(root, "moe_intermediate_size", m->n_experts > 0, 0, 0, big,
                          &m->moe_intermediate, path)))
    goto fail;
  if ((rc = model_get_int(root, "num_experts_per_tok", m->n_experts > 0, 0, 0, 65536, &m->top_k, path)))
    goto fail;
  if (m->n_experts > 0 && (m->top_k < 1 || m->top_k > m->n_experts || m->moe_intermediate < 1)) {
    rc = err_set(ERR_INPUT, "%s: num_experts_per_tok %d / moe_intermediate_size %d invalid for %d experts",
                 path, m->top_k, m->moe_intermediate, m->n_experts);
    goto fail;
  }
  if ((rc = specjson_bool(root, "norm_topk_prob", 0, &m->norm_topk_prob, path))) goto fail;
  if ((rc = model_get_int(root, "decoder_sparse_step", 0, 1, 1, MODEL_MAX_LAYERS,
                          &m->decoder_sparse_step, path)))
    goto fail;
  const cJSON *mlp_only = cJSON_GetObjectItemCaseSensitive(root, "mlp_only_layers");
  if (mlp_only && !cJSON_IsNull(mlp_only)) {
    if (!cJSON_IsArray(mlp_only)) {
      rc = err_set(ERR_INPUT, "%s: mlp_only_layers must be a list of layer indices", path);
      goto fail;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, mlp_only) {
      if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= m->n_layers ||
          it->valuedouble != floor(it->valuedouble)) {
        rc = err_set(ERR_INPUT, "%s: mlp_only_layers holds %g, not a layer index in [0, %d)", path,
                     cJSON_IsNumber(it) ? it->valuedouble : -1.0, m->n_layers);
        goto fail;
      }
      m->mlp_only[(int)it->valuedouble] = 1;
    }
  }
  if ((rc = model_get_int(root, "vocab_size", 1, 0, 1, 1 << 26, &m->vocab, path))) goto fail;
  if ((rc = model_get_int(root, "max_position_embeddings", 0, 4096, 1, 1 << 30, &m->max_pos, path)))
    goto fail;
  if ((rc = specjson_num(root, "rope_theta", 0, 10000.0, &m->rope_theta, path))) goto fail;
  if ((rc = specjson_num(root, "rms_norm_eps", 0, 1e-6, &m->rms_eps, path))) goto fail;
  if ((rc = specjson_bool(root, "tie_word_embeddings", 0, &m->tie_embed, path))) goto fail;
  if ((rc = specjson_bool(root, "attention_bias", 0, &m->attention_bias, path))) goto fail;
  char dtype[32];
  if ((rc = specjson_str(root, "torch_dtype", 0, "bfloat16", dtype, sizeof dtype, path))) goto fail;
  if ((rc = model_dtype_bytes(dtype, &m->dtype_bytes, path))) goto fail;
  /* Qwen3 (dense and MoE) normalises q and k per head before RoPE; Qwen2 does not. */
  m->qk_norm = !strncmp(m->model_type, "qwen3", 5) || !strncmp(m->arch, "Qwen3", 5);
  for (int l = 0; l < m->n_layers; l++) m->n_moe_layers += model_layer_is_moe(m, l);
  if (m->n_experts == 0 && m->intermediate < 1) {
    rc = err_set(ERR_INPUT, "%s: dense model without intermediate_size", path);
    goto fail;
  }
  if (m->n_moe_layers < m->n_layers && m->intermediate < 1) {
    rc = err_set(ERR_INPUT, "%s: %d dense MLP layers but no intermediate_size", path,
                 m->n_layers - m->n_moe_layers);
    goto fail;
  }
  if ((rc = model_read_quant(root, m, path))) goto fail;
  cJSON_Delete(root);
  return ERR_OK;
fail:
  cJSON_Delete(root);
  return rc;
}

int model_is_moe(const struct model_spec *m) { return m->n_experts > 0; }

/* transformers' Qwen3Moe rule: a layer is sparse unless listed in mlp_only_layers, and only
 * every decoder_sparse_step-th layer (1-based) is. */
int model_layer_is_moe(const struct model_spec *m, int layer) {
  if (m->n_experts <= 0 || layer < 0 || layer >= m->n_layers || m->mlp_only[layer]) return 0;
  int step = m->decoder_sparse_step > 0 ? m->decoder_sparse_step : 1;
  return (layer + 1) % step == 0;
}

void model_count_params(const struct model_spec *m, struct model_params *p) {
  memset(p, 0, sizeof *p);
  double h = m->hidden, q = (double)m->n_heads * m->head_dim, kv = (double)m->n_kv_heads * m->head_dim;
  /* q, k, v, o; biases when attention_bias; q/k per-head norms; the two layer RMSNorms. */
  double attn = h * q + 2 * h * kv + q * h + 2 * h;
  if (m->attention_bias) attn += q + 2 * kv;
  if (m->qk_norm) attn += 2.0 * m->head_dim;
  p->attention = attn * m->n_layers + h; /* + the final norm */
  double expert = 3.0 * h * m->moe_intermediate; /* gate, up, down */
  p->experts = expert * m->n_experts * m->n_moe_layers;
  p->router = h * m->n_experts * m->n_moe_layers;
  p->dense_mlp = 3.0 * h * m->intermediate * (m->n_layers - m->n_moe_layers);
  p->embed_lm_head = (double)m->vocab * h * (m->tie_embed ? 1 : 2);
  p->total = p->attention + p->experts + p->router + p->dense_mlp + p->embed_lm_head;
  double active_experts = m->n_experts ? p->experts * m->top_k / m->n_experts : 0;
  p->active = p->attention + active_experts + p->router + p->dense_mlp + p->embed_lm_head;
}

double model_linear_bytes(const struct model_spec *m, int64_t k, int64_t n, int quantized) {
  double kn = (double)k * (double)n;
  if (!quantized || m->quant.method == MODEL_QUANT_NONE) return kn * m->dtype_bytes;
  if (m->quant.method == MODEL_QUANT_GPTQ) {
    /* GPTQ checkpoint layout: qweight int32 [K*bits/32, N], qzeros int32 [groups, N*bits/32],
     * scales fp16 [groups, N], g_idx int32 [K]. groups = ceil(K / group_size), 1 per-channel. */
    int g = m->quant.group_size;
    double groups = g > 0 ? (double)((k + g - 1) / g) : 1.0;
    double qweight = kn * m->quant.bits / 8.0;
    double qzeros = groups * ceil((double)n * m->quant.bits / 32.0) * 4.0;
    double scales = groups * (double)n * 2.0;
    double g_idx = (double)k * 4.0;
    return qweight + qzeros + scales + g_idx;
  }
  /* FP8: e4m3 weights plus fp32 scales, one per [block_n x block_k] tile or one per tensor. */
  int bn = m->quant.fp8_block_n, bk = m->quant.fp8_block_k;
  double scales = (bn > 0 && bk > 0) ? (double)((n + bn - 1) / bn) * (double)((k + bk - 1) / bk) * 4.0
                                     : 4.0;
  return kn + scales;
}
