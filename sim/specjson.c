/* specjson: file loading and typed getters for spec JSON, errors naming file and line. */
#include "sim/specjson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#include <sys/stat.h>

/* Spec files are small (a config.json is ~1 KB); refuse anything absurd rather than slurp it. */
#define SPECJSON_MAX_BYTES (16L << 20)

int specjson_line_of(const char *text, long off) {
  int line = 1;
  for (long i = 0; i < off && text[i]; i++)
    if (text[i] == '\n') line++;
  return line;
}

int specjson_load(const char *path, cJSON **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return err_set(ERR_NOENT, "%s: no such file", path);
    return err_set(ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  }
  char *text = NULL;
  long n = 0;
  int rc = ERR_OK;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    rc = err_set(ERR_IO, "%s: cannot read (not a regular file?)", path);
    goto done;
  }
  if (n > SPECJSON_MAX_BYTES) {
    rc = err_set(ERR_INPUT, "%s: %ld bytes is too large for a spec file", path, n);
    goto done;
  }
  text = malloc((size_t)n + 1);
  if (!text) {
    rc = err_set(ERR_NOMEM, "%s: out of memory", path);
    goto done;
  }
  if (n > 0 && fread(text, 1, (size_t)n, f) != (size_t)n) {
    rc = err_set(ERR_IO, "%s: short read", path);
    goto done;
  }
  text[n] = '\0';
  if (strlen(text) != (size_t)n) {
    rc = err_set(ERR_INPUT, "%s:%d: NUL byte in JSON text", path,
                 specjson_line_of(text, (long)strlen(text)));
    goto done;
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
  if (!root) {
    long off = end ? (long)(end - text) : 0;
    if (off < 0 || off > n) off = 0;
    char near[24];
    int k = 0;
    for (const char *p = text + off; *p && *p != '\n' && k < (int)sizeof near - 1; p++) near[k++] = *p;
    near[k] = '\0';
    rc = err_set(ERR_INPUT, "%s:%d: malformed JSON near '%s'", path, specjson_line_of(text, off),
                 k ? near : "<end of file>");
    goto done;
  }
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    rc = err_set(ERR_INPUT, "%s:1: expected a JSON object at top level", path);
    goto done;
  }
  *out = root;
done:
  free(text);
  fclose(f);
  return rc;
}

int specjson_num(const cJSON *obj, const char *key, int required, double def, double *out,
                 const char *path) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!it || cJSON_IsNull(it)) {
    if (required) return err_set(ERR_INPUT, "%s: required key '%s' is missing", path, key);
    *out = def;
    return ERR_OK;
  }
  if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
    return err_set(ERR_INPUT, "%s: key '%s' must be a number", path, key);
  *out = it->valuedouble;
  return ERR_OK;
}

int specjson_int(const cJSON *obj, const char *key, int required, int64_t def, int64_t *out,
                 const char *path) {
  double v = 0;
  int rc = specjson_num(obj, key, required, (double)def, &v, path);
  if (rc) return rc;
  /* 2^53: beyond it a double no longer holds every integer, and no spec value is that big. */
  if (v != floor(v) || fabs(v) > 9007199254740992.0)
    return err_set(ERR_INPUT, "%s: key '%s' must be an integer, got %g", path, key, v);
  *out = (int64_t)v;
  return ERR_OK;
}

int specjson_bool(const cJSON *obj, const char *key, int def, int *out, const char *path) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!it || cJSON_IsNull(it)) {
    *out = def;
    return ERR_OK;
  }
  if (cJSON_IsBool(it)) {
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return ERR_OK;
  }
  if (cJSON_IsNumber(it) && (it->valuedouble == 0 || it->valuedouble == 1)) {
    *out = (int)it->valuedouble;
    return ERR_OK;
  }
  return err_set(ERR_INPUT, "%s: key '%s' must be true or false", path, key);
}

int specjson_str(const cJSON *obj, const char *key, int required, const char *def, char *out,
                 int out_len, const char *path) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!it || cJSON_IsNull(it)) {
    if (required) return err_set(ERR_INPUT, "%s: required key '%s' is missing", path, key);
    snprintf(out, (size_t)out_len, "%s", def ? def : "");
    return ERR_OK;
  }
  if (!cJSON_IsString(it)) return err_set(ERR_INPUT, "%s: key '%s' must be a string", path, key);
  snprintf(out, (size_t)out_len, "%s", it->valuestring);
  return ERR_OK;
}

int specjson_find_spec(const char *subdir, const char *name, const char *suffix, char *out,
                       int out_len) {
  const char *roots[2] = {getenv("SERVESIM_SOURCE_DIR"), SERVESIM_SOURCE_DIR};
  char first[1024] = "";
  for (int i = 0; i < 2; i++) {
    if (!roots[i] || !roots[i][0]) continue;
    char p[1024];
    int len = snprintf(p, sizeof p, "%s/specs/%s/%s%s", roots[i], subdir, name, suffix);
    if (len < 0 || len >= (int)sizeof p || len >= out_len) continue;
    if (!first[0]) snprintf(first, sizeof first, "%s", p);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
      snprintf(out, (size_t)out_len, "%s", p);
      return ERR_OK;
    }
  }
  return err_set(ERR_NOENT, "'%s': no such file, and no spec %s (looked for %s)", name,
                 first[0] ? first : subdir, first[0] ? "there" : "root");
}
