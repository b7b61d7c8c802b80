/* mooncake: reader for the Mooncake (Kimi, FAST'25) JSONL trace, one request per line:
 *   {"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [ids...]}
 * timestamp is milliseconds from the trace start; hash_ids are prefix-block hashes of 512 tokens
 * (the same id at the same position means the same prompt prefix up to that block).
 *
 * Prefix groups, derived here because trace_req has room for two numbers, not the id list:
 * - prefix_id: the request's first block, renumbered densely in order of first appearance
 *   (0, 1, 2...). Requests with the same prefix_id start with the same 512-token block (e.g. a
 *   shared system prompt).
 * - prefix_tok: 512 x the number of leading blocks that some earlier request already had, capped
 *   at input_length: the prompt tokens an unbounded prefix cache would hit. 0 for the first
 *   request of a group. A finite cache hits less; the simulator decides that.
 * A request without hash_ids gets prefix_id -1. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/hash.h"
#include "traces/formats.h"

/* Open-addressing set of block ids with a group number per root block; load factor <= 1/2. */
struct idset {
  uint64_t *key;     /* (cap) id + 1, 0 = empty slot */
  int32_t *group;    /* (cap) dense prefix group of a root block, -1 otherwise */
  int64_t cap, n;
};

static int64_t idset_slot(const struct idset *s, uint64_t id) {
  uint64_t mask = (uint64_t)s->cap - 1, i = hash_mix64(id) & mask;
  while (s->key[i] && s->key[i] != id + 1) i = (i + 1) & mask;
  return (int64_t)i;
}

static int idset_grow(struct idset *s) {
  int64_t cap = s->cap ? s->cap * 2 : 1 << 14;
  struct idset t = {calloc((size_t)cap, sizeof(uint64_t)), malloc((size_t)cap * sizeof(int32_t)),
                    cap, s->n};
  if (!t.key || !t.group) {
    free(t.key);
    free(t.group);
    return err_set(ERR_NOMEM, "mooncake: out of memory for %lld block ids", (long long)s->n);
  }
  for (int64_t i = 0; i < s->cap; i++)
    if (s->key[i]) {
      int64_t j = idset_slot(&t, s->key[i] - 1);
      t.key[j] = s->key[i];
      t.group[j] = s->group[i];
    }
  free(s->key);
  free(s->group);
  *s = t;
  return ERR_OK;
}

/* Slot of id, inserting it (group -1) if new; *fresh = 1 when it was new. */
static int idset_put(struct idset *s, uint64_t id, int64_t *slot, int *fresh) {
  if (2 * (s->n + 1) > s->cap) {
    int rc = idset_grow(s);
    if (rc) return rc;
  }
  int64_t i = idset_slot(s, id);
  *fresh = !s->key[i];
  if (*fresh) {
    s->key[i] = id + 1;
    s->group[i] = -1;
    s->n++;
  }
  *slot = i;
  return ERR_OK;
}

static const char *json_int(const cJSON *v, int64_t lo, int64_t hi, int64_t *out) {
  if (!cJSON_IsNumber(v)) return "not a number";
  double d = v->valuedouble;
  if (d != floor(d)) return "not an integer";
  if (d < (double)lo || d > (double)hi) return d < 0 ? "negative" : "out of range";
  *out = (int64_t)d;
  return 0;
}

/* Parses one line; bad rows go through trace_read_bad. */
static int mooncake_line(struct trace_rd *rd, int64_t line_no, const char *s, size_t len,
                         struct idset *seen, int32_t *n_groups) {
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
  if (!j) {
    long col = end ? (long)(end - s) + 1 : 0;
    const char *ep = cJSON_GetErrorPtr();
    if (ep && ep >= s && ep <= s + len) col = (long)(ep - s) + 1;
    return trace_read_bad(rd, line_no, "invalid JSON near column %ld", col);
  }
  int rc = ERR_OK;
  const char *why;
  int64_t in, out;
  const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
  const cJSON *ji = cJSON_GetObjectItemCaseSensitive(j, "input_length");
  const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "output_length");
  const cJSON *hs = cJSON_GetObjectItemCaseSensitive(j, "hash_ids");
  if (!cJSON_IsObject(j)) {
    rc = trace_read_bad(rd, line_no, "not a JSON object");
  } else if (!ts || !ji || !jo) {
    rc = trace_read_bad(rd, line_no, "missing field '%s'",
                        !ts ? "timestamp" : !ji ? "input_length" : "output_length");
  } else if (!cJSON_IsNumber(ts) || !isfinite(ts->valuedouble) || ts->valuedouble < 0 ||
             ts->valuedouble > 9.2e12) {
    rc = trace_read_bad(rd, line_no, "timestamp: %s",
                        !cJSON_IsNumber(ts) ? "not a number" : "negative or out of range");
  } else if ((why = json_int(ji, INT32_MIN, INT32_MAX, &in))) {
    rc = trace_read_bad(rd, line_no, "input_length: %s", why);
  } else if ((why = json_int(jo, INT32_MIN, INT32_MAX, &out))) {
    rc = trace_read_bad(rd, line_no, "output_length: %s", why);
  } else if (hs && !cJSON_IsArray(hs)) {
    rc = trace_read_bad(rd, line_no, "hash_ids: not an array");
  } else {
    /* Integral ms below 2^53 are exact in a double, so ms * 1e6 is exact in int64. */
    double ms = ts->valuedouble;
    int64_t ns = ms == floor(ms) ? (int64_t)ms * 1000000 : (int64_t)llround(ms * 1e6);
    struct trace_req r = {.arrival_ns = ns, .in_tok = (int32_t)in, .out_tok = (int32_t)out,
                          .prefix_id = -1, .prefix_tok = 0};
    int64_t k = 0, pos = 0, id;
    int hit_run = 1, bad = 0;
    const cJSON *h;
    cJSON_ArrayForEach(h, hs) { /* validate every id before the set changes */
      if ((why = json_int(h, 0, INT64_MAX / 2, &id))) {
        rc = trace_read_bad(rd, line_no, "hash_ids[%lld]: %s", (long long)pos, why);
        bad = 1;
        break;
      }
      pos++;
    }
    if (!bad) {
      pos = 0;
      cJSON_ArrayForEach(h, hs) {
        int64_t slot;
        int fresh;
        json_int(h, 0, INT64_MAX / 2, &id);
        if ((rc = idset_put(seen, (uint64_t)id, &slot, &fresh))) break;
        if (hit_run && !fresh) k++;
        else hit_run = 0;
        if (pos == 0) {
          if (seen->group[slot] < 0) seen->group[slot] = (*n_groups)++;
          r.prefix_id = seen->group[slot];
        }
        pos++;
      }
      if (!rc) {
        int64_t ptok = k * MOONCAKE_BLOCK_TOK;
        r.prefix_tok = (int32_t)(ptok < in ? ptok : in < 0 ? 0 : in);
        rc = trace_read_add(rd, line_no, &r);
      }
    }
  }
  cJSON_Delete(j);
  return rc;
}

int mooncake_read(struct trace_rd *rd) {
  FILE *f = fopen(rd->path, "rb");
  if (!f) {
    int e = errno;
    return err_set(e == ENOENT ? ERR_NOENT : ERR_IO, "%s: %s", rd->path, strerror(e));
  }
  setvbuf(f, NULL, _IOFBF, 1 << 20);
  struct idset seen = {0};
  int32_t n_groups = 0;
  char *line = NULL; /* (cap) getline buffer */
  size_t cap = 0;
  int64_t line_no = 0;
  int rc = ERR_OK;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    line_no++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    size_t i = 0;
    while (i < (size_t)len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i == (size_t)len) continue; /* blank line */
    if ((rc = mooncake_line(rd, line_no, line, (size_t)len, &seen, &n_groups))) break;
  }
  if (!rc && ferror(f)) rc = err_set(ERR_IO, "%s: read error", rd->path);
  free(line);
  free(seen.key);
  free(seen.group);
  fclose(f);
  return rc;
}
