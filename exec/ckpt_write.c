/* ckpt_write: random GPTQ checkpoints in the Hugging Face safetensors format (see ckpt_write.h). */
#include "exec/ckpt_write.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "exec/safetensors.h"
#include "exec/weights.h"
#include "exec/wsynth.h"

enum ckw_part { CKW_BF16, CKW_QWEIGHT, CKW_QZEROS, CKW_SCALES, CKW_GIDX };

struct ckw_tensor {
  char name[200];   /* as the builders below: prefix + suffix fit */
  int dtype, ndim, part;
  int64_t shape[2];
  int shard;
  int layer, kind, expert;
  int64_t k_glob;              /* inputs of the GPTQ linear (scales' exponent, g_idx) */
  int64_t n_bytes, off;        /* offset inside its shard's data section */
};

struct ckw_list {
  struct ckw_tensor *t;
  int n, cap;
};

static int ckw_add(struct ckw_list *L, const char *name, int dtype, int part, int64_t r, int64_t c, int ndim,
                   int shard, int layer, int kind, int expert, int64_t k_glob) {
  if (L->n == L->cap) {
    int ncap = L->cap ? L->cap * 2 : 256;
    struct ckw_tensor *nt = realloc(L->t, (size_t)ncap * sizeof *nt);
    if (!nt) return err_set(ERR_NOMEM, "out of memory");
    L->t = nt;
    L->cap = ncap;
  }
  struct ckw_tensor *t = &L->t[L->n++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->dtype = dtype;
  t->part = part;
  t->ndim = ndim;
  t->shape[0] = r;
  t->shape[1] = c;
  t->shard = shard;
  t->layer = layer;
  t->kind = kind;
  t->expert = expert;
  t->k_glob = k_glob;
  t->n_bytes = (ndim == 2 ? r * c : c) * st_dtype_size(dtype);
  return ERR_OK;
}

static int ckw_add_q(struct ckw_list *L, const char *prefix, int64_t K, int64_t N, int g, int shard, int layer,
                     int kind, int expert) {
  char name[200];
  int rc;
  snprintf(name, sizeof name, "%s.qweight", prefix);
  if ((rc = ckw_add(L, name, ST_I32, CKW_QWEIGHT, K / 8, N, 2, shard, layer, kind, expert, K))) return rc;
  snprintf(name, sizeof name, "%s.qzeros", prefix);
  if ((rc = ckw_add(L, name, ST_I32, CKW_QZEROS, K / g, N / 8, 2, shard, layer, kind, expert, K))) return rc;
  snprintf(name, sizeof name, "%s.scales", prefix);
  if ((rc = ckw_add(L, name, ST_F16, CKW_SCALES, K / g, N, 2, shard, layer, kind, expert, K))) return rc;
  snprintf(name, sizeof name, "%s.g_idx", prefix);
  return ckw_add(L, name, ST_I32, CKW_GIDX, 1, K, 1, shard, layer, kind, expert, K);
}

/* Fills one tensor's bytes from wsynth.h. */
static void ckw_fill(const struct ckw_tensor *t, uint64_t seed, float skew, int n_experts, int g, uint8_t *buf) {
  int64_t rows = t->ndim == 2 ? t->shape[0] : 1, cols = t->shape[1];
  uint64_t tid = ws_tensor_id(t->layer, t->kind, t->expert < 0 ? 0 : t->expert);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      uint64_t idx = (uint64_t)(r * cols + c);
      switch (t->part) {
        case CKW_BF16: {
          uint16_t v = ws_bf16_value(seed, t->layer, t->kind, r, idx, n_experts, skew);
          memcpy(buf + idx * 2, &v, 2);
          break;
        }
        case CKW_QWEIGHT: {
          uint32_t v = ws_qweight(seed, tid, idx);
          memcpy(buf + idx * 4, &v, 4);
          break;
        }
        case CKW_QZEROS: {
          uint32_t v = WS_QZEROS_SYM4;
          memcpy(buf + idx * 4, &v, 4);
          break;
        }
        case CKW_SCALES: {
          uint16_t v = ws_scale_fp16(ws_hash(seed, tid, WS_PART_SCALES, idx), t->k_glob, tid);
          memcpy(buf + idx * 2, &v, 2);
          break;
        }
        case CKW_GIDX: {
          int32_t v = (int32_t)(c / g);
          memcpy(buf + idx * 4, &v, 4);
          break;
        }
      }
    }
}

static int ckw_build_list(const struct model_spec *m, int n_shards, struct ckw_list *L) {
  int H = m->hidden, D = m->head_dim, E = m->n_experts, I = m->moe_intermediate, g = m->quant.group_size, rc;
  int last = n_shards - 1;
  char name[200];
  if ((rc = ckw_add(L, "model.embed_tokens.weight", ST_BF16, CKW_BF16, m->vocab, H, 2, 0, -1, WS_EMBED, -1, 0)))
    return rc;
  for (int l = 0; l < m->n_layers; l++) {
    int s = (int)((int64_t)l * n_shards / m->n_layers);
    wt_hf_name(name, sizeof name, l, "input_layernorm", -1, "weight");
    if ((rc = ckw_add(L, name, ST_BF16, CKW_BF16, 1, H, 1, s, l, WS_IN_LN, -1, 0))) return rc;
    wt_hf_name(name, sizeof name, l, "post_attention_layernorm", -1, "weight");
    if ((rc = ckw_add(L, name, ST_BF16, CKW_BF16, 1, H, 1, s, l, WS_POST_LN, -1, 0))) return rc;
    wt_hf_name(name, sizeof name, l, "self_attn.q_norm", -1, "weight");
    if ((rc = ckw_add(L, name, ST_BF16, CKW_BF16, 1, D, 1, s, l, WS_Q_NORM, -1, 0))) return rc;
    wt_hf_name(name, sizeof name, l, "self_attn.k_norm", -1, "weight");
    if ((rc = ckw_add(L, name, ST_BF16, CKW_BF16, 1, D, 1, s, l, WS_K_NORM, -1, 0))) return rc;
    wt_hf_name(name, sizeof name, l, "mlp.gate", -1, "weight");
    if ((rc = ckw_add(L, name, ST_BF16, CKW_BF16, E, H, 2, s, l, WS_ROUTER, -1, 0))) return rc;
    char pre[200];
    snprintf(pre, sizeof pre, "model.layers.%d.self_attn.q_proj", l);
    if ((rc = ckw_add_q(L, pre, H, (int64_t)m->n_heads * D, g, s, l, WS_Q, -1))) return rc;
    snprintf(pre, sizeof pre, "model.layers.%d.self_attn.k_proj", l);
    if ((rc = ckw_add_q(L, pre, H, (int64_t)m->n_kv_heads * D, g, s, l, WS_K, -1))) return rc;
    snprintf(pre, sizeof pre, "model.layers.%d.self_attn.v_proj", l);
    if ((rc = ckw_add_q(L, pre, H, (int64_t)m->n_kv_heads * D, g, s, l, WS_V, -1))) return rc;
    snprintf(pre, sizeof pre, "model.layers.%d.self_attn.o_proj", l);
    if ((rc = ckw_add_q(L, pre, (int64_t)m->n_heads * D, H, g, s, l, WS_O, -1))) return rc;
    for (int e = 0; e < E; e++) {
      snprintf(pre, sizeof pre, "model.layers.%d.mlp.experts.%d.gate_proj", l, e);
      if ((rc = ckw_add_q(L, pre, H, I, g, s, l, WS_GATE, e))) return rc;
      snprintf(pre, sizeof pre, "model.layers.%d.mlp.experts.%d.up_proj", l, e);
      if ((rc = ckw_add_q(L, pre, H, I, g, s, l, WS_UP, e))) return rc;
      snprintf(pre, sizeof pre, "model.layers.%d.mlp.experts.%d.down_proj", l, e);
      if ((rc = ckw_add_q(L, pre, I, H, g, s, l, WS_DOWN, e))) return rc;
    }
  }
  if ((rc = ckw_add(L, "model.norm.weight", ST_BF16, CKW_BF16, 1, H, 1, last, -1, WS_FINAL_NORM, -1, 0))) return rc;
  if (!m->tie_embed &&
      (rc = ckw_add(L, "lm_head.weight", ST_BF16, CKW_BF16, m->vocab, H, 2, last, -1, WS_LM_HEAD, -1, 0)))
    return rc;
  return ERR_OK;
}

static int ckw_write_shard(const char *path, const struct ckw_list *L, int shard, uint64_t seed, float skew,
                           int n_experts, int g) {
  cJSON *hdr = cJSON_CreateObject();
  cJSON *meta = cJSON_AddObjectToObject(hdr, "__metadata__");
  cJSON_AddStringToObject(meta, "format", "pt");
  int64_t off = 0, max_bytes = 0;
  for (int i = 0; i < L->n; i++) {
    struct ckw_tensor *t = &L->t[i];
    if (t->shard != shard) continue;
    cJSON *o = cJSON_AddObjectToObject(hdr, t->name);
    cJSON_AddStringToObject(o, "dtype", st_dtype_name(t->dtype));
    cJSON *sh = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; d < t->ndim; d++)
      cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)(t->ndim == 2 ? t->shape[d] : t->shape[1])));
    cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
    cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + t->n_bytes)));
    t->off = off;
    off += t->n_bytes;
    if (t->n_bytes > max_bytes) max_bytes = t->n_bytes;
  }
  char *text = cJSON_PrintUnformatted(hdr);
  cJSON_Delete(hdr);
  if (!text) return err_set(ERR_NOMEM, "out of memory");
  size_t tl = strlen(text), padded = (tl + 7) / 8 * 8;  /* data section 8-byte aligned */
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(text);
    return err_set(ERR_IO, "%s: %s", path, strerror(errno));
  }
  uint8_t len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
  int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, tl, f) == tl;
  for (size_t i = tl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
  free(text);
  uint8_t *buf = malloc((size_t)(max_bytes ? max_bytes : 1));
  if (!buf) {
    fclose(f);
    return err_set(ERR_NOMEM, "out of memory");
  }
  for (int i = 0; ok && i < L->n; i++) {
    const struct ckw_tensor *t = &L->t[i];
    if (t->shard != shard) continue;
    ckw_fill(t, seed, skew, n_experts, g, buf);
    ok = fwrite(buf, 1, (size_t)t->n_bytes, f) == (size_t)t->n_bytes;
  }
  free(buf);
  if (fclose(f) != 0) ok = 0;
  return ok ? ERR_OK : err_set(ERR_IO, "%s: write failed", path);
}

int ckw_write_random(const char *dir, const struct model_spec *m, uint64_t seed, float skew, int n_shards) {
  if (n_shards < 1 || n_shards > 9999) return err_set(ERR_INPUT, "n_shards %d out of range", n_shards);
  struct ckw_list L = {0};
  int rc = ckw_build_list(m, n_shards, &L);
  char path[4096], file[64];
  cJSON *index = NULL;
  if (rc) goto done;
  index = cJSON_CreateObject();
  cJSON *meta = cJSON_AddObjectToObject(index, "metadata");
  int64_t total = 0;
  for (int i = 0; i < L.n; i++) total += L.t[i].n_bytes;
  cJSON_AddNumberToObject(meta, "total_size", (double)total);
  cJSON *wm = cJSON_AddObjectToObject(index, "weight_map");
  for (int s = 0; s < n_shards && !rc; s++) {
    snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    rc = ckw_write_shard(path, &L, s, seed, skew, m->n_experts, m->quant.group_size);
  }
  for (int i = 0; i < L.n && !rc; i++) {
    snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", L.t[i].shard + 1, n_shards);
    cJSON_AddStringToObject(wm, L.t[i].name, file);
  }
  if (!rc) {
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    char *text = cJSON_Print(index);
    FILE *f = text ? fopen(path, "w") : NULL;
    if (!f) rc = err_set(ERR_IO, "%s: cannot write", path);
    else {
      if (fputs(text, f) == EOF || fputc('\n', f) == EOF) rc = err_set(ERR_IO, "%s: write failed", path);
      if (fclose(f) != 0 && !rc) rc = err_set(ERR_IO, "%s: write failed", path);
    }
    free(text);
  }
done:
  cJSON_Delete(index);
  free(L.t);
  return rc;
}
