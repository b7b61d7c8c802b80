/* safetensors: parse, validate and mmap Hugging Face safetensors shards (see safetensors.h). */
#include "exec/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

/* A header larger than this is certainly corrupt (the 235B checkpoint's is ~1.5 MB per shard). */
#define ST_MAX_HEADER_BYTES (100LL << 20)

struct st_shard {
  char *path;
  uint8_t *map;                /* whole file, PROT_READ */
  size_t map_bytes;
};

struct st_ckpt {
  int n_shards;
  struct st_shard *shards;     /* [n_shards] */
  int n_tensors;
  struct st_tensor *tensors;   /* [n_tensors], sorted by name */
};

static const char *const st_dtype_names[ST_N_DTYPES] = {"BOOL", "U8",   "I8",  "I16", "F16",
                                                        "BF16", "I32",  "F32", "I64", "F64"};
static const int st_dtype_sizes[ST_N_DTYPES] = {1, 1, 1, 2, 2, 2, 4, 4, 8, 8};

int st_dtype_size(int dtype) { return dtype >= 0 && dtype < ST_N_DTYPES ? st_dtype_sizes[dtype] : 0; }
const char *st_dtype_name(int dtype) {
  return dtype >= 0 && dtype < ST_N_DTYPES ? st_dtype_names[dtype] : "?";
}

static int st_dtype_parse(const char *s) {
  for (int i = 0; i < ST_N_DTYPES; i++)
    if (strcmp(s, st_dtype_names[i]) == 0) return i;
  return -1;
}

static int st_cmp_tensor(const void *a, const void *b) {
  return strcmp(((const struct st_tensor *)a)->name, ((const struct st_tensor *)b)->name);
}

/* Reads a whole small file (the index JSON) into a NUL-terminated buffer. */
static int st_slurp(const char *path, char **out) {
  FILE *f = fopen(path, "rb");
  if (!f) return err_set(errno == ENOENT ? ERR_NOENT : ERR_IO, "%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (!buf) {
    fclose(f);
    return err_set(ERR_NOMEM, "%s: cannot allocate %ld bytes", path, n);
  }
  if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    fclose(f);
    return err_set(ERR_IO, "%s: short read", path);
  }
  buf[n] = '\0';
  fclose(f);
  *out = buf;
  return ERR_OK;
}

static int st_map_shard(struct st_shard *s, const char *why_tensor) {
  int fd = open(s->path, O_RDONLY);
  if (fd < 0) {
    if (why_tensor)
      return err_set(errno == ENOENT ? ERR_NOENT : ERR_IO, "%s: %s (shard of tensor %s)", s->path,
                     strerror(errno), why_tensor);
    return err_set(errno == ENOENT ? ERR_NOENT : ERR_IO, "%s: %s", s->path, strerror(errno));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    close(fd);
    return err_set(ERR_IO, "%s: %s", s->path, strerror(errno));
  }
  if (sb.st_size < 8) {
    close(fd);
    return err_set(ERR_INPUT, "%s: corrupt safetensors file: %lld bytes, shorter than the 8-byte header length",
                   s->path, (long long)sb.st_size);
  }
  void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return err_set(ERR_IO, "%s: mmap: %s", s->path, strerror(errno));
  s->map = p;
  s->map_bytes = (size_t)sb.st_size;
  return ERR_OK;
}

/* Parses one shard's header and appends its tensors (all of them when want == NULL). */
static int st_parse_shard(struct st_ckpt *c, int shard_idx, int *cap) {
  struct st_shard *s = &c->shards[shard_idx];
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | s->map[i];   /* little-endian u64 */
  if (hlen > (uint64_t)ST_MAX_HEADER_BYTES || 8 + hlen > s->map_bytes)
    return err_set(ERR_INPUT, "%s: corrupt safetensors header: length %llu exceeds the file (%zu bytes)",
                   s->path, (unsigned long long)hlen, s->map_bytes);
  cJSON *root = cJSON_ParseWithLength((const char *)s->map + 8, (size_t)hlen);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return err_set(ERR_INPUT, "%s: corrupt safetensors header: not a JSON object", s->path);
  }
  const uint8_t *data = s->map + 8 + hlen;
  uint64_t data_bytes = s->map_bytes - 8 - hlen;
  int rc = ERR_OK;
  for (cJSON *it = root->child; it; it = it->next) {
    if (strcmp(it->string, "__metadata__") == 0) continue;
    const char *name = it->string;
    cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
    cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2) {
      rc = err_set(ERR_INPUT, "%s: tensor %s: header entry needs dtype, shape and data_offsets[2]", s->path, name);
      break;
    }
    int dt = st_dtype_parse(jd->valuestring);
    if (dt < 0) {
      rc = err_set(ERR_INPUT, "%s: tensor %s: unknown dtype %s", s->path, name, jd->valuestring);
      break;
    }
    int ndim = cJSON_GetArraySize(js);
    if (ndim > ST_MAX_DIM) {
      rc = err_set(ERR_INPUT, "%s: tensor %s: %d dimensions (at most %d)", s->path, name, ndim, ST_MAX_DIM);
      break;
    }
    struct st_tensor t = {0};
    t.dtype = dt;
    t.ndim = ndim;
    int64_t n_elem = 1;
    for (int d = 0; d < ndim; d++) {
      cJSON *v = cJSON_GetArrayItem(js, d);
      if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15) {
        rc = err_set(ERR_INPUT, "%s: tensor %s: bad shape entry %d", s->path, name, d);
        break;
      }
      t.shape[d] = (int64_t)v->valuedouble;
      n_elem *= t.shape[d];
    }
    if (rc) break;
    double b0 = cJSON_GetArrayItem(jo, 0)->valuedouble, b1 = cJSON_GetArrayItem(jo, 1)->valuedouble;
    if (b0 < 0 || b1 < b0 || b1 > (double)data_bytes) {
      rc = err_set(ERR_INPUT, "%s: tensor %s: data_offsets [%.0f, %.0f] outside the data section (%llu bytes): truncated or corrupt shard",
                   s->path, name, b0, b1, (unsigned long long)data_bytes);
      break;
    }
    t.n_bytes = (int64_t)b1 - (int64_t)b0;
    if (t.n_bytes != n_elem * st_dtype_sizes[dt]) {
      rc = err_set(ERR_INPUT, "%s: tensor %s: %lld bytes for %lld elements of %s", s->path, name,
                   (long long)t.n_bytes, (long long)n_elem, st_dtype_names[dt]);
      break;
    }
    t.data = data + (int64_t)b0;
    t.shard = shard_idx;
    t.name = strdup(name);
    if (!t.name) {
      rc = err_set(ERR_NOMEM, "out of memory");
      break;
    }
    if (c->n_tensors == *cap) {
      int ncap = *cap ? *cap * 2 : 256;
      struct st_tensor *nt = realloc(c->tensors, (size_t)ncap * sizeof *nt);
      if (!nt) {
        free(t.name);
        rc = err_set(ERR_NOMEM, "out of memory");
        break;
      }
      c->tensors = nt;
      *cap = ncap;
    }
    c->tensors[c->n_tensors++] = t;
  }
  cJSON_Delete(root);
  return rc;
}

static int st_add_shard(struct st_ckpt *c, const char *path, int *idx) {
  for (int i = 0; i < c->n_shards; i++)
    if (strcmp(c->shards[i].path, path) == 0) {
      *idx = i;
      return ERR_OK;
    }
  struct st_shard *ns = realloc(c->shards, (size_t)(c->n_shards + 1) * sizeof *ns);
  if (!ns) return err_set(ERR_NOMEM, "out of memory");
  c->shards = ns;
  memset(&c->shards[c->n_shards], 0, sizeof *ns);
  c->shards[c->n_shards].path = strdup(path);
  if (!c->shards[c->n_shards].path) return err_set(ERR_NOMEM, "out of memory");
  *idx = c->n_shards++;
  return ERR_OK;
}

static int st_is_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int st_open(const char *path, struct st_ckpt **out) {
  *out = NULL;
  struct st_ckpt *c = calloc(1, sizeof *c);
  if (!c) return err_set(ERR_NOMEM, "out of memory");
  int rc = ERR_OK, cap = 0;
  char *index_text = NULL;
  cJSON *index = NULL;
  char buf[4096];
  if (!st_is_dir(path)) {
    int idx;
    if ((rc = st_add_shard(c, path, &idx)) || (rc = st_map_shard(&c->shards[idx], NULL)) ||
        (rc = st_parse_shard(c, idx, &cap)))
      goto fail;
  } else {
    snprintf(buf, sizeof buf, "%s/model.safetensors.index.json", path);
    if (access(buf, F_OK) != 0) {
      snprintf(buf, sizeof buf, "%s/model.safetensors", path);
      if (access(buf, F_OK) != 0) {
        rc = err_set(ERR_NOENT, "%s: no model.safetensors.index.json or model.safetensors", path);
        goto fail;
      }
      int idx;
      if ((rc = st_add_shard(c, buf, &idx)) || (rc = st_map_shard(&c->shards[idx], NULL)) ||
          (rc = st_parse_shard(c, idx, &cap)))
        goto fail;
    } else {
      if ((rc = st_slurp(buf, &index_text))) goto fail;
      index = cJSON_Parse(index_text);
      cJSON *wm = index ? cJSON_GetObjectItemCaseSensitive(index, "weight_map") : NULL;
      if (!cJSON_IsObject(wm)) {
        rc = err_set(ERR_INPUT, "%s: not a JSON object with a \"weight_map\" object", buf);
        goto fail;
      }
      char index_path[4096];
      snprintf(index_path, sizeof index_path, "%s", buf);
      /* Open each distinct shard once, in first-mention order; remember one tensor that names it
       * so a missing file's message says which weight needed it. */
      for (cJSON *it = wm->child; it; it = it->next) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/')) {
          rc = err_set(ERR_INPUT, "%s: weight_map[%s]: not a plain shard file name", index_path, it->string);
          goto fail;
        }
        snprintf(buf, sizeof buf, "%s/%s", path, it->valuestring);
        int before = c->n_shards, idx;
        if ((rc = st_add_shard(c, buf, &idx))) goto fail;
        if (c->n_shards > before) {
          if ((rc = st_map_shard(&c->shards[idx], it->string)) || (rc = st_parse_shard(c, idx, &cap)))
            goto fail;
        }
      }
      qsort(c->tensors, (size_t)c->n_tensors, sizeof *c->tensors, st_cmp_tensor);
      /* Every tensor the index promises must be in the shard it names. */
      for (cJSON *it = wm->child; it; it = it->next) {
        const struct st_tensor *t = st_find(c, it->string);
        snprintf(buf, sizeof buf, "%s/%s", path, it->valuestring);
        if (!t || strcmp(c->shards[t->shard].path, buf) != 0) {
          rc = err_set(ERR_INPUT, "%s: tensor %s listed in %s is missing from it (corrupt or wrong shard)",
                       buf, it->string, index_path);
          goto fail;
        }
      }
    }
  }
  qsort(c->tensors, (size_t)c->n_tensors, sizeof *c->tensors, st_cmp_tensor);
  for (int i = 1; i < c->n_tensors; i++)
    if (strcmp(c->tensors[i - 1].name, c->tensors[i].name) == 0) {
      rc = err_set(ERR_INPUT, "%s: tensor %s appears twice (also in %s)", c->shards[c->tensors[i].shard].path,
                   c->tensors[i].name, c->shards[c->tensors[i - 1].shard].path);
      goto fail;
    }
  cJSON_Delete(index);
  free(index_text);
  *out = c;
  return ERR_OK;
fail:
  cJSON_Delete(index);
  free(index_text);
  st_close(c);
  return rc;
}

void st_close(struct st_ckpt *c) {
  if (!c) return;
  for (int i = 0; i < c->n_tensors; i++) free(c->tensors[i].name);
  free(c->tensors);
  for (int i = 0; i < c->n_shards; i++) {
    if (c->shards[i].map) munmap(c->shards[i].map, c->shards[i].map_bytes);
    free(c->shards[i].path);
  }
  free(c->shards);
  free(c);
}

const struct st_tensor *st_find(const struct st_ckpt *c, const char *name) {
  int lo = 0, hi = c->n_tensors - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    int cmp = strcmp(c->tensors[mid].name, name);
    if (cmp == 0) return &c->tensors[mid];
    if (cmp < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

int st_get(const struct st_ckpt *c, const char *name, int dtype, int ndim, const int64_t *shape,
           const struct st_tensor **out) {
  const struct st_tensor *t = st_find(c, name);
  if (!t)
    return err_set(ERR_NOENT, "%s: tensor %s not found in the checkpoint",
                   c->n_shards ? c->shards[0].path : "checkpoint", name);
  const char *file = c->shards[t->shard].path;
  if (t->dtype != dtype)
    return err_set(ERR_INPUT, "%s: tensor %s: dtype %s, expected %s", file, name, st_dtype_names[t->dtype],
                   st_dtype_name(dtype));
  int ok = t->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
  if (!ok) {
    char got[96] = "", want[96] = "";
    for (int d = 0; d < t->ndim; d++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->shape[d]);
    for (int d = 0; d < ndim; d++)
      snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)shape[d]);
    return err_set(ERR_INPUT, "%s: tensor %s: shape [%s], expected [%s]", file, name, got, want);
  }
  *out = t;
  return ERR_OK;
}

int st_read_block(const struct st_ckpt *c, const struct st_tensor *t, int64_t row0, int64_t n_rows,
                  int64_t col0, int64_t n_cols, void *dst) {
  int64_t rows = t->ndim == 2 ? t->shape[0] : 1;
  int64_t cols = t->ndim == 2 ? t->shape[1] : t->ndim == 1 ? t->shape[0] : 1;
  if (t->ndim > 2 || row0 < 0 || col0 < 0 || n_rows < 0 || n_cols < 0 || row0 + n_rows > rows ||
      col0 + n_cols > cols)
    return err_set(ERR_INTERNAL, "%s: tensor %s: block rows [%lld,+%lld) cols [%lld,+%lld) outside [%lld,%lld]",
                   c->shards[t->shard].path, t->name, (long long)row0, (long long)n_rows, (long long)col0,
                   (long long)n_cols, (long long)rows, (long long)cols);
  int es = st_dtype_sizes[t->dtype];
  uint8_t *d = dst;
  for (int64_t r = 0; r < n_rows; r++)
    memcpy(d + r * n_cols * es, t->data + ((row0 + r) * cols + col0) * es, (size_t)(n_cols * es));
  return ERR_OK;
}

int st_n_tensors(const struct st_ckpt *c) { return c->n_tensors; }
const char *st_shard_path(const struct st_ckpt *c, int shard) { return c->shards[shard].path; }
