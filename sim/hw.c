/* hw: specs/hardware/<name>.json -> struct hw_spec.
 *
 * Every numeric value in a hardware file must carry its provenance: a "sources" object maps each
 * top-level key (and "tier:<name>" for each interconnect tier) to the datasheet, measurement or
 * estimate it came from. A value without a source is rejected, so the specs cannot silently
 * collect guesses. Tiers are listed fastest first; a tier's domain is a run of consecutive GPU
 * ids, and domain sizes must grow down the list and divide the server's GPU count. */
#include "sim/hw.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "sim/specjson.h"

static int hw_resolve_path(const char *path_or_name, char *out, int out_len) {
  struct stat st;
  if (!path_or_name || !path_or_name[0]) return err_set(ERR_INPUT, "--hardware: empty name");
  if (stat(path_or_name, &st) == 0 && S_ISREG(st.st_mode)) {
    snprintf(out, (size_t)out_len, "%s", path_or_name);
    return ERR_OK;
  }
  if (strchr(path_or_name, '/') || strstr(path_or_name, ".json"))
    return err_set(ERR_NOENT, "%s: no such file", path_or_name);
  return specjson_find_spec("hardware", path_or_name, ".json", out, out_len);
}

/* A number that must be present, positive unless zero_ok, and sourced. */
static int hw_num(const cJSON *root, const cJSON *src, const char *key, int zero_ok, double *out,
                  const char *path) {
  int rc = specjson_num(root, key, 1, 0, out, path);
  if (rc) return rc;
  if (*out < 0 || (!zero_ok && *out == 0))
    return err_set(ERR_INPUT, "%s: %s = %g must be %s", path, key, *out,
                   zero_ok ? ">= 0" : "> 0");
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(src, key);
  if (!cJSON_IsString(s) || !s->valuestring[0])
    return err_set(ERR_INPUT, "%s: %s has no entry in \"sources\" (every value names its source)",
                   path, key);
  return ERR_OK;
}

static int hw_read_tier(const cJSON *t, const cJSON *src, struct hw_tier *tier, const char *path,
                        int idx) {
  char ctx[640];  /* the spec path (up to 511 bytes) and the tier index */
  snprintf(ctx, sizeof ctx, "%s: tiers[%d]", path, idx);
  int rc;
  if ((rc = specjson_str(t, "name", 1, NULL, tier->name, sizeof tier->name, ctx))) return rc;
  int64_t dom;
  if ((rc = specjson_int(t, "domain_size", 1, 0, &dom, ctx))) return rc;
  if (dom < 1 || dom > 4096) return err_set(ERR_INPUT, "%s: domain_size %lld out of range", ctx, (long long)dom);
  tier->domain_size = (int)dom;
  if ((rc = specjson_num(t, "bw_GBps", 1, 0, &tier->bw_GBps, ctx))) return rc;
  if ((rc = specjson_num(t, "latency_us", 1, 0, &tier->latency_us, ctx))) return rc;
  if ((rc = specjson_num(t, "allreduce_busbw_GBps", 1, 0, &tier->allreduce_busbw_GBps, ctx))) return rc;
  if ((rc = specjson_bool(t, "nvlink", 0, &tier->nvlink, ctx))) return rc;
  if (tier->bw_GBps <= 0 || tier->latency_us < 0 || tier->allreduce_busbw_GBps <= 0)
    return err_set(ERR_INPUT, "%s: bw_GBps and allreduce_busbw_GBps must be > 0, latency_us >= 0", ctx);
  char key[48];
  snprintf(key, sizeof key, "tier:%s", tier->name);
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(src, key);
  if (!cJSON_IsString(s) || !s->valuestring[0])
    return err_set(ERR_INPUT, "%s: tier '%s' has no \"%s\" entry in \"sources\"", path, tier->name, key);
  return ERR_OK;
}

int hw_load(const char *path_or_name, struct hw_spec *h) {
  memset(h, 0, sizeof *h);
  char path[512];
  int rc = hw_resolve_path(path_or_name, path, sizeof path);
  if (rc) return rc;
  cJSON *root = NULL;
  if ((rc = specjson_load(path, &root))) return rc;
  const cJSON *src = cJSON_GetObjectItemCaseSensitive(root, "sources");
  if (!cJSON_IsObject(src)) {
    rc = err_set(ERR_INPUT, "%s: missing \"sources\" object (every value names its source)", path);
    goto fail;
  }
  if ((rc = specjson_str(root, "name", 1, NULL, h->name, sizeof h->name, path))) goto fail;
  if ((rc = specjson_str(root, "gpu", 1, NULL, h->gpu, sizeof h->gpu, path))) goto fail;
  double v;
  if ((rc = hw_num(root, src, "mem_bytes", 0, &v, path))) goto fail;
  h->mem_bytes = (int64_t)v;
  if ((rc = hw_num(root, src, "hbm_GBps", 0, &h->hbm_GBps, path))) goto fail;
  if ((rc = hw_num(root, src, "hbm_eff", 0, &h->hbm_eff, path))) goto fail;
  if ((rc = hw_num(root, src, "tflops_bf16", 0, &h->tflops_bf16, path))) goto fail;
  if ((rc = hw_num(root, src, "tflops_fp8", 1, &h->tflops_fp8, path))) goto fail;
  if ((rc = hw_num(root, src, "tflops_int8", 1, &h->tflops_int8, path))) goto fail;
  if ((rc = hw_num(root, src, "mma_eff", 0, &h->mma_eff, path))) goto fail;
  if ((rc = hw_num(root, src, "n_sms", 0, &v, path))) goto fail;
  h->n_sms = (int)v;
  if ((rc = hw_num(root, src, "gpus_per_node", 0, &v, path))) goto fail;
  h->gpus_per_node = (int)v;
  if ((rc = hw_num(root, src, "kernel_launch_us", 0, &h->kernel_launch_us, path))) goto fail;
  if ((rc = hw_num(root, src, "eager_launch_us", 0, &h->eager_launch_us, path))) goto fail;
  if (h->hbm_eff > 1 || h->mma_eff > 1) {
    rc = err_set(ERR_INPUT, "%s: hbm_eff and mma_eff are fractions in (0, 1]", path);
    goto fail;
  }
  const cJSON *tiers = cJSON_GetObjectItemCaseSensitive(root, "tiers");
  if (!cJSON_IsArray(tiers) || cJSON_GetArraySize(tiers) < 1 ||
      cJSON_GetArraySize(tiers) > HW_MAX_TIERS) {
    rc = err_set(ERR_INPUT, "%s: \"tiers\" must be a list of 1 to %d interconnect tiers", path,
                 HW_MAX_TIERS);
    goto fail;
  }
  const cJSON *t;
  cJSON_ArrayForEach(t, tiers) {
    struct hw_tier *tier = &h->tiers[h->n_tiers];
    if ((rc = hw_read_tier(t, src, tier, path, h->n_tiers))) goto fail;
    if (h->gpus_per_node % tier->domain_size ||
        (h->n_tiers > 0 && tier->domain_size <= h->tiers[h->n_tiers - 1].domain_size)) {
      rc = err_set(ERR_INPUT,
                   "%s: tier '%s' domain_size %d must divide gpus_per_node %d and exceed the tier before",
                   path, tier->name, tier->domain_size, h->gpus_per_node);
      goto fail;
    }
    h->n_tiers++;
  }
  if (h->tiers[h->n_tiers - 1].domain_size != h->gpus_per_node) {
    rc = err_set(ERR_INPUT, "%s: the last tier must span all %d GPUs of the server", path,
                 h->gpus_per_node);
    goto fail;
  }
  cJSON_Delete(root);
  return ERR_OK;
fail:
  cJSON_Delete(root);
  return rc;
}

int hw_tier_for(const struct hw_spec *h, int first_gpu, int count) {
  if (count < 1 || first_gpu < 0) return -1;
  int last = first_gpu + count - 1;
  for (int i = 0; i < h->n_tiers; i++) {
    int d = h->tiers[i].domain_size;
    if (first_gpu / d == last / d) return i;
  }
  return -1;
}
