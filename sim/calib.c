/* calib: the measurement set read from the SQLite store (see calib.h). */
#include "sim/calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "sim/model.h"

const char *const calib_kind_names[CALIB_N_KINDS] = {
    [CALIB_GEMM] = "gemm",
    [CALIB_MOE] = "moe",
    [CALIB_ATTN_DECODE] = "attention decode",
    [CALIB_ATTN_PREFILL] = "attention prefill",
    [CALIB_ALLREDUCE] = "allreduce",
    [CALIB_STEP] = "step",
};

void calib_set_init(struct calib_set *s) { memset(s, 0, sizeof *s); }

void calib_set_free(struct calib_set *s) {
  if (!s) return;
  free(s->rows);
  memset(s, 0, sizeof *s);
}

static void calib_copy(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

/* Provenance of one row into the set's summary. */
static void calib_note_prov(struct calib_set *s, const struct db_measurement *m) {
  const struct db_provenance *p = &m->prov;
  if (!s->gpu_name[0] && p->gpu_name[0]) calib_copy(s->gpu_name, sizeof s->gpu_name, p->gpu_name);
  if (!s->driver[0] && p->driver_version[0]) calib_copy(s->driver, sizeof s->driver, p->driver_version);
  if (!s->cuda[0] && p->cuda_version[0]) calib_copy(s->cuda, sizeof s->cuda, p->cuda_version);
  if (!s->nccl[0] && p->nccl_version[0]) calib_copy(s->nccl, sizeof s->nccl, p->nccl_version);
  if (p->git_commit[0]) {
    char c[16];
    snprintf(c, sizeof c, "%.7s", p->git_commit);
    int seen = 0;
    for (int i = 0; i < s->n_commits; i++) seen |= !strcmp(s->commits[i], c);
    if (!seen && s->n_commits < 4) strcpy(s->commits[s->n_commits++], c);
  }
  /* ISO 8601 UTC strings order as text */
  if (p->created_at[0]) {
    if (!s->first_at[0] || strcmp(p->created_at, s->first_at) < 0) calib_copy(s->first_at, sizeof s->first_at, p->created_at);
    if (!s->last_at[0] || strcmp(p->created_at, s->last_at) > 0) calib_copy(s->last_at, sizeof s->last_at, p->created_at);
  }
  if (m->run_id != DB_UNSET) {
    int seen = 0, lim = s->n_runs < 64 ? s->n_runs : 64;
    for (int i = 0; i < lim; i++) seen |= s->run_ids[i] == m->run_id;
    if (!seen) {
      if (s->n_runs < 64) s->run_ids[s->n_runs] = m->run_id;
      s->n_runs++;
    }
  }
}

static int calib_bad(const struct db_measurement *m, const char *what) {
  return err_set(ERR_INPUT, "measurement %lld (%s %s): %s", (long long)m->measurement_id, m->kind,
                 m->op ? m->op : "", what);
}

/* Active experts of a MoE row: extra_json's active_experts, else rows / tokens_per_expert. */
static double calib_moe_active(const struct db_measurement *m, double rows) {
  if (m->extra_json) {
    cJSON *j = cJSON_Parse(m->extra_json);
    const cJSON *a = j ? cJSON_GetObjectItemCaseSensitive(j, "active_experts") : NULL;
    double v = cJSON_IsNumber(a) ? a->valuedouble : NAN;
    cJSON_Delete(j);
    if (v >= 1) return v;
  }
  if (m->tokens_per_expert > 0) return rows / m->tokens_per_expert;
  return NAN;
}

/* Same decode-attention point of the same profile run (variant aside)? */
static int calib_decode_twin(const struct calib_meas *a, const struct calib_meas *b) {
  return a->kind == CALIB_ATTN_DECODE && b->kind == CALIB_ATTN_DECODE && a->run_id == b->run_id && a->tp == b->tp &&
         a->batch == b->batch && a->ctx == b->ctx && !strcmp(a->model, b->model);
}

/* servesim-exec profile up to 55de95a timed decode attention twice when its split-heads fast
 * path was on (the committed H100 dump): the library kernel ("decode") and the path decode steps
 * actually took ("decode_split_heads"); since b1c518c the kernel picks its head split itself and
 * the profile writes one "decode" row per point. Only the
 * latter describes the engine; the two differ by up to 2.5x (either way), and their mean in util
 * space priced a kernel that never runs. Drops the library row of r's point, or r itself when it
 * is the library row and the engine's row is already in. Returns 1 when r is to be dropped. */
static int calib_keep_engine_path(struct calib_set *s, const struct calib_meas *r) {
  int drop_r = 0;
  for (int i = 0; i < s->n;) {
    const struct calib_meas *q = &s->rows[i];
    if (calib_decode_twin(q, r) && q->engine_path != r->engine_path) {
      if (!r->engine_path) {
        drop_r = 1;
      } else {
        /* keep measurement_id order: close the gap */
        memmove(&s->rows[i], &s->rows[i + 1], (size_t)(s->n - i - 1) * sizeof *s->rows);
        s->n--;
        s->n_by_kind[CALIB_ATTN_DECODE]--;
        s->n_unused++;
        continue;
      }
    }
    i++;
  }
  return drop_r;
}

int calib_set_add(struct calib_set *s, const struct db_measurement *m, int heads, int kv_heads, int head_dim) {
  struct calib_meas r;
  memset(&r, 0, sizeof r);
  r.run_id = m->run_id;
  r.tp = m->tp > 0 ? (int)m->tp : 1;
  calib_copy(r.model, sizeof r.model, m->model);
  const char *kind = m->kind ? m->kind : "";
  const char *op = m->op ? m->op : "";
  calib_copy(r.dtype, sizeof r.dtype, m->dtype);
  if (!strcmp(kind, "gemm")) {
    r.kind = CALIB_GEMM;
    if (m->m < 1 || m->k < 1 || m->n < 1) return calib_bad(m, "gemm row needs m, k and n");
    r.m = (double)m->m, r.k = (double)m->k, r.n = (double)m->n;
  } else if (!strcmp(kind, "moe")) {
    /* The concentrated-routing points (every token on the same top-k experts) are the far end of
     * tokens per expert; serving traffic follows the routing model, so only uniform points are
     * used and the others are counted as unused. */
    if (strcmp(op, "fused_moe")) {
      s->n_unused++;
      return ERR_OK;
    }
    r.kind = CALIB_MOE;
    if (m->tokens < 1 || m->topk < 1 || m->k < 1 || m->n < 1) return calib_bad(m, "moe row needs tokens, topk, k and n");
    r.k = (double)m->k, r.n = (double)m->n;
    r.rows = (double)m->tokens * (double)m->topk;
    r.active = calib_moe_active(m, r.rows);
    if (!(r.active >= 1)) return calib_bad(m, "moe row needs active_experts (extra_json) or tokens_per_expert");
  } else if (!strcmp(kind, "attention")) {
    if (m->batch < 1 || m->ctx_len < 1 || m->q_len < 1) return calib_bad(m, "attention row needs batch, ctx_len and q_len");
    r.kind = m->q_len == 1 ? CALIB_ATTN_DECODE : CALIB_ATTN_PREFILL;
    r.engine_path = r.kind == CALIB_ATTN_DECODE && !strcmp(op, "decode_split_heads");
    r.batch = (double)m->batch, r.ctx = (double)m->ctx_len, r.q_len = (double)m->q_len;
    int tp = m->tp > 0 ? (int)m->tp : 1;
    if (heads > 0 && kv_heads > 0 && head_dim > 0 && heads % tp == 0) {
      r.qh = heads / tp;
      r.kvh = kv_heads >= tp ? kv_heads / tp : 1; /* KV heads replicated when tp > kv heads */
      r.hd = head_dim;
    }
  } else if (!strcmp(kind, "allreduce")) {
    r.kind = CALIB_ALLREDUCE;
    if (m->n_bytes < 1 || m->ranks < 2) return calib_bad(m, "allreduce row needs n_bytes and ranks >= 2");
    r.n_bytes = (double)m->n_bytes, r.ranks = (int)m->ranks;
  } else if (!strcmp(kind, "step")) {
    /* servesim-exec's steps describe their batch in extra_json; without it a step cannot be
     * replayed through the cost model */
    cJSON *j = m->extra_json ? cJSON_Parse(m->extra_json) : NULL;
    const char *keys[4] = {"prefill_chunks", "prefill_len", "decodes", "decode_ctx"};
    int v[4], have = j != NULL;
    for (int i = 0; i < 4 && have; i++) {
      const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
      have = cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble < 1e7;
      if (have) v[i] = x->valueint;
    }
    cJSON_Delete(j);
    if (!have || (v[0] * v[1] + v[2]) <= 0 || (v[2] > 0 && v[3] < 1)) {
      s->n_unused++;
      return ERR_OK;
    }
    r.kind = CALIB_STEP;
    r.step_prefill = v[0], r.step_prefill_len = v[1], r.step_decode = v[2], r.step_decode_ctx = v[3];
  } else {
    s->n_unused++;
    return ERR_OK;
  }
  if (!(m->lat_us_median > 0) || !isfinite(m->lat_us_median)) return calib_bad(m, "latency must be > 0");
  r.t_ns = m->lat_us_median * 1e3;
  if (r.kind == CALIB_ATTN_DECODE && calib_keep_engine_path(s, &r)) {
    s->n_unused++;
    return ERR_OK;
  }
  if (s->n == s->cap) {
    int nc = s->cap ? 2 * s->cap : 256;
    struct calib_meas *nr = realloc(s->rows, (size_t)nc * sizeof *nr);
    if (!nr) return err_set(ERR_NOMEM, "calib: %d measurements", nc);
    s->rows = nr;
    s->cap = nc;
  }
  s->rows[s->n++] = r;
  s->n_by_kind[r.kind]++;
  calib_note_prov(s, m);
  return ERR_OK;
}

/* ---- loading ---- */

/* Heads of a measured model, cached by name for the walk. */
struct calib_heads {
  char name[128];
  int heads, kv_heads, head_dim;
};

struct calib_load {
  struct calib_set *s;
  struct db *db;
  const char *skip_hw;       /* second pass: rows of this hardware name were read already */
  struct calib_heads cache[16];
  int n_cache;
};

static void calib_heads_from_json(const char *text, struct calib_heads *h) {
  cJSON *j = cJSON_Parse(text);
  if (!j) return;
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "num_attention_heads");
  const cJSON *kv = cJSON_GetObjectItemCaseSensitive(j, "num_key_value_heads");
  const cJSON *hd = cJSON_GetObjectItemCaseSensitive(j, "head_dim");
  const cJSON *hid = cJSON_GetObjectItemCaseSensitive(j, "hidden_size");
  if (cJSON_IsNumber(a) && a->valueint > 0) {
    h->heads = a->valueint;
    h->kv_heads = cJSON_IsNumber(kv) && kv->valueint > 0 ? kv->valueint : h->heads;
    if (cJSON_IsNumber(hd) && hd->valueint > 0) h->head_dim = hd->valueint;
    else if (cJSON_IsNumber(hid)) h->head_dim = hid->valueint / h->heads;
  }
  cJSON_Delete(j);
}

/* The measured model's heads: its config.json in the models table, else the spec of that name
 * (servesim-exec names its model by spec name), else unknown (0). */
static const struct calib_heads *calib_heads_of(struct calib_load *L, const char *model) {
  static const struct calib_heads none = {"", 0, 0, 0};
  if (!model || !*model) return &none;
  for (int i = 0; i < L->n_cache; i++)
    if (!strcmp(L->cache[i].name, model)) return &L->cache[i];
  struct calib_heads h = {"", 0, 0, 0};
  calib_copy(h.name, sizeof h.name, model);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db_handle(L->db), "SELECT config_json FROM models WHERE name = ?1", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT)
      calib_heads_from_json((const char *)sqlite3_column_text(st, 0), &h);
  }
  sqlite3_finalize(st);
  if (h.heads == 0) {
    struct model_spec ms;
    if (model_load(model, &ms) == ERR_OK) h.heads = ms.n_heads, h.kv_heads = ms.n_kv_heads, h.head_dim = ms.head_dim;
    err_clear();
  }
  if (L->n_cache < 16) {
    L->cache[L->n_cache] = h;
    return &L->cache[L->n_cache++];
  }
  L->cache[15] = h;
  return &L->cache[15];
}

static int calib_load_row(void *ctx, const struct db_measurement *m) {
  struct calib_load *L = ctx;
  if (L->skip_hw && m->hardware && !strcmp(m->hardware, L->skip_hw)) return ERR_OK;
  const struct calib_heads *h = &(struct calib_heads){"", 0, 0, 0};
  if (m->kind && !strcmp(m->kind, "attention")) h = calib_heads_of(L, m->model);
  return calib_set_add(L->s, m, h->heads, h->kv_heads, h->head_dim);
}

int calib_set_load(struct calib_set *s, const char *db_path, const struct hw_spec *h) {
  calib_set_init(s);
  struct db *db = NULL;
  int rc = db_open_ex(db_path, DB_OPEN_MUST_EXIST | DB_OPEN_READONLY, 0, &db);
  if (rc) return rc;
  struct calib_load L = {.s = s, .db = db};
  /* Rows stamped with this hardware spec's name, then rows whose GPU name matches the spec's
   * marketing name under another hardware name (a profile run with a different --hardware). */
  rc = db_get_measurements(db, NULL, h->name, calib_load_row, &L);
  if (!rc && h->gpu[0] && strcmp(h->gpu, h->name)) {
    L.skip_hw = h->name;
    rc = db_get_measurements(db, NULL, h->gpu, calib_load_row, &L);
  }
  if (rc == ERR_INPUT) {
    char msg[512]; /* err_msg() is the buffer err_set writes: copy it first */
    snprintf(msg, sizeof msg, "%s", err_msg());
    rc = err_set(ERR_INPUT, "%s: %s", db_path, msg);
  }
  db_close(db);
  if (rc) calib_set_free(s);
  return rc;
}

void calib_set_describe(const struct calib_set *s, char *buf, int len) {
  if (len <= 0) return;
  char commits[80] = "";
  for (int i = 0; i < s->n_commits; i++) {
    size_t l = strlen(commits);
    snprintf(commits + l, sizeof commits - l, "%s%s", i ? "," : "", s->commits[i]);
  }
  int n = snprintf(buf, (size_t)len,
                   "%d measurements (gemm %d, moe %d, attention %d+%d, allreduce %d, step %d; %d unused)", s->n,
                   s->n_by_kind[CALIB_GEMM], s->n_by_kind[CALIB_MOE], s->n_by_kind[CALIB_ATTN_DECODE],
                   s->n_by_kind[CALIB_ATTN_PREFILL], s->n_by_kind[CALIB_ALLREDUCE], s->n_by_kind[CALIB_STEP],
                   s->n_unused);
  /* only what the rows say: unknown provenance fields are left out, not printed as "?" */
  if (n > 0 && n < len && s->n_runs > 0)
    n += snprintf(buf + n, (size_t)(len - n), " from %d profile run%s", s->n_runs, s->n_runs == 1 ? "" : "s");
  if (n > 0 && n < len && s->gpu_name[0])
    n += snprintf(buf + n, (size_t)(len - n), " on %s (driver %s, CUDA %s, NCCL %s)", s->gpu_name,
                  s->driver[0] ? s->driver : "-", s->cuda[0] ? s->cuda : "-", s->nccl[0] ? s->nccl : "-");
  if (n > 0 && n < len && commits[0]) n += snprintf(buf + n, (size_t)(len - n), ", commit %s", commits);
  if (n > 0 && n < len && s->first_at[0]) {
    if (strcmp(s->first_at, s->last_at)) snprintf(buf + n, (size_t)(len - n), ", %s..%s", s->first_at, s->last_at);
    else snprintf(buf + n, (size_t)(len - n), ", %s", s->first_at);
  }
}
