/* cli_args: shared flag parsing for the simulation subcommands (vLLM's flag names), and the one
 * number parser of every command's flag values. */
#include "sim/cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void cli_args_init(struct cli_args *a) {
  memset(a, 0, sizeof *a);
  a->db = "servesim.db";
  a->layout.tp = a->layout.pp = a->layout.dp = 1;
  a->enforce_eager = -1;
  a->enable_prefix_caching = -1;
  strcpy(a->kv_cache_dtype, "auto");
}

int cli_args_value(int argc, char **argv, int i, const char *name, const char **value) {
  const char *arg = argv[i];
  size_t n = strlen(name);
  if (strncmp(arg, name, n)) return 0;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return 1;
  }
  if (arg[n] != '\0') return 0;
  if (i + 1 >= argc) return err_set(ERR_INPUT, "%s: missing value", name), -1;
  *value = argv[i + 1];
  return 2;
}

int cli_args_wants_help(int argc, char **argv) {
  if (argc < 1) return 0;
  if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "help")) return 1;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
  return 0;
}

int cli_args_unknown(const char *arg) {
  if (arg[0] == '-') return err_set(ERR_INPUT, "unknown flag '%s'", arg);
  return err_set(ERR_INPUT, "unexpected argument '%s'", arg);
}

int cli_args_i64(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end || errno || v < lo || v > hi) {
    if (hi == INT64_MAX) return err_set(ERR_INPUT, "%s: '%s' is not an integer >= %lld", flag, s, (long long)lo);
    return err_set(ERR_INPUT, "%s: '%s' is not an integer in [%lld, %lld]", flag, s, (long long)lo,
                   (long long)hi);
  }
  *out = v;
  return ERR_OK;
}

int cli_args_int(const char *flag, const char *s, int lo, int hi, int *out) {
  int64_t v = 0;
  int rc = cli_args_i64(flag, s, lo, hi, &v);
  if (!rc) *out = (int)v;
  return rc;
}

int cli_args_u64(const char *flag, const char *s, uint64_t *out) {
  const char *p = s;
  while (isspace((unsigned char)*p)) p++;
  /* strtoull takes "-1" as 2^64 - 1: a sign is refused here, not wrapped. Hex only with "0x", so
   * a leading zero never turns the digits octal. */
  int base = p[0] == '0' && (p[1] == 'x' || p[1] == 'X') ? 16 : 10;
  char *end;
  errno = 0;
  unsigned long long v = *p == '-' || *p == '+' ? 0 : strtoull(p, &end, base);
  if (*p == '-' || *p == '+' || end == p || *end || errno)
    return err_set(ERR_INPUT, "%s: '%s' is not an integer in [0, %llu] (decimal or 0x hex)", flag, s,
                   (unsigned long long)UINT64_MAX);
  *out = v;
  return ERR_OK;
}

int cli_args_double(const char *flag, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  /* !(v >= lo && v <= hi) also refuses NaN. */
  if (end == s || *end || errno || !isfinite(v) || !(v >= lo && v <= hi)) {
    if (isfinite(lo) && isfinite(hi))
      return err_set(ERR_INPUT, "%s: '%s' is not a number in [%g, %g]", flag, s, lo, hi);
    if (isfinite(lo)) return err_set(ERR_INPUT, "%s: '%s' is not a number >= %g", flag, s, lo);
    if (isfinite(hi)) return err_set(ERR_INPUT, "%s: '%s' is not a number <= %g", flag, s, hi);
    return err_set(ERR_INPUT, "%s: '%s' is not a finite number", flag, s);
  }
  *out = v;
  return ERR_OK;
}

/* Flags that take a value: long name, optional short alias. */
enum cli_args_key {
  K_MODEL, K_HW, K_DB, K_GPUS, K_TP, K_PP, K_DP, K_UTIL, K_MAXLEN, K_SEQS, K_BATCHED, K_BLOCK, K_KVDT
};
static const struct {
  const char *name, *alias;
  int key;
} cli_args_valued[] = {
    {"--model", NULL, K_MODEL},
    {"--hardware", NULL, K_HW},
    {"--db", NULL, K_DB},
    {"--gpus", NULL, K_GPUS},
    {"--tensor-parallel-size", "-tp", K_TP},
    {"--pipeline-parallel-size", "-pp", K_PP},
    {"--data-parallel-size", "-dp", K_DP},
    {"--gpu-memory-utilization", NULL, K_UTIL},
    {"--max-model-len", NULL, K_MAXLEN},
    {"--max-num-seqs", NULL, K_SEQS},
    {"--max-num-batched-tokens", NULL, K_BATCHED},
    {"--block-size", NULL, K_BLOCK},
    {"--kv-cache-dtype", NULL, K_KVDT},
};

static int cli_args_set(struct cli_args *a, int key, const char *flag, const char *v) {
  switch (key) {
    case K_MODEL:
    case K_HW:
    case K_DB:
      if (!v[0]) return err_set(ERR_INPUT, "%s: empty value", flag), -1;
      if (key == K_MODEL) a->model = v;
      if (key == K_HW) a->hardware = v;
      if (key == K_DB) a->db = v;
      return 0;
    case K_GPUS: return cli_args_int(flag, v, 1, CLI_MAX_GPUS, &a->gpus) ? -1 : 0;
    case K_TP:
    case K_PP:
    case K_DP: {
      int *dst = key == K_TP ? &a->layout.tp : key == K_PP ? &a->layout.pp : &a->layout.dp;
      if (cli_args_int(flag, v, 1, CLI_MAX_GPUS, dst)) return -1;
      if (key == K_TP) a->tp_set = 1;
      if (key == K_PP) a->pp_set = 1;
      if (key == K_DP) a->dp_set = 1;
      const int64_t gpus = (int64_t)a->layout.tp * a->layout.pp * a->layout.dp;
      if (gpus > CLI_MAX_GPUS)
        return err_set(ERR_INPUT, "%s %s: -tp %d x -pp %d x -dp %d is %lld GPUs, more than %d", flag, v, a->layout.tp,
                       a->layout.pp, a->layout.dp, (long long)gpus, CLI_MAX_GPUS), -1;
      return 0;
    }
    case K_UTIL: {
      /* vLLM's (0, 1]: the shared parser's closed range, then 0 refused in the same words. */
      double u = 0;
      if (cli_args_double(flag, v, 0, 1, &u) || !(u > 0))
        return err_set(ERR_INPUT, "%s: '%s' is not a number in (0, 1]", flag, v), -1;
      a->gpu_mem_util = u;
      return 0;
    }
    case K_MAXLEN: return cli_args_int(flag, v, 1, INT_MAX / 2, &a->max_model_len) ? -1 : 0;
    case K_SEQS: return cli_args_int(flag, v, 1, 1 << 20, &a->max_num_seqs) ? -1 : 0;
    case K_BATCHED: return cli_args_int(flag, v, 1, 1 << 24, &a->max_num_batched_tokens) ? -1 : 0;
    case K_BLOCK: {
      /* vLLM's --block-size choices. */
      static const int ok[] = {1, 8, 16, 32, 64, 128};
      int b = 0;
      if (cli_args_int(flag, v, 1, 128, &b)) return -1;
      for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
        if (b == ok[k]) {
          a->block_size = b;
          return 0;
        }
      return err_set(ERR_INPUT, "%s: %d is not one of vLLM's choices 1, 8, 16, 32, 64, 128", flag, b), -1;
    }
    case K_KVDT:
      if (!strcmp(v, "auto"))
        a->kv_dtype_bytes = 0;
      else if (!strcmp(v, "fp8") || !strcmp(v, "fp8_e4m3") || !strcmp(v, "fp8_e5m2"))
        a->kv_dtype_bytes = 1;
      else
        return err_set(ERR_INPUT, "%s: '%s' is not one of auto, fp8, fp8_e4m3, fp8_e5m2", flag, v), -1;
      snprintf(a->kv_cache_dtype, sizeof a->kv_cache_dtype, "%s", v);
      return 0;
  }
  return err_set(ERR_INTERNAL, "%s: unhandled flag", flag), -1;
}

int cli_args_parse_one(struct cli_args *a, int argc, char **argv, int i) {
  const char *arg = argv[i];
  /* Switches: no value; `--flag=x` on them is an error rather than silently ignored. */
  static const struct {
    const char *name;
    int which;
  } sw[] = {{"--enable-expert-parallel", 0}, {"--enforce-eager", 1}, {"--enable-prefix-caching", 2},
            {"--no-enable-prefix-caching", 3}, {"--json", 4}};
  for (size_t k = 0; k < sizeof sw / sizeof sw[0]; k++) {
    size_t n = strlen(sw[k].name);
    if (strncmp(arg, sw[k].name, n)) continue;
    if (arg[n] == '=') return err_set(ERR_INPUT, "%s takes no value", sw[k].name), -1;
    if (arg[n]) continue;
    switch (sw[k].which) {
      case 0: a->layout.ep = 1; break;
      case 1: a->enforce_eager = 1; break;
      case 2: a->enable_prefix_caching = 1; break;
      case 3: a->enable_prefix_caching = 0; break;
      case 4: a->json = 1; break;
    }
    return 1;
  }
  for (size_t k = 0; k < sizeof cli_args_valued / sizeof cli_args_valued[0]; k++) {
    const char *v = NULL;
    const char *flag = cli_args_valued[k].name;
    int n = cli_args_value(argc, argv, i, flag, &v);
    if (n == 0 && cli_args_valued[k].alias) {
      flag = cli_args_valued[k].alias;
      n = cli_args_value(argc, argv, i, flag, &v);
    }
    if (n < 0) return -1;
    if (n == 0) continue;
    if (cli_args_set(a, cli_args_valued[k].key, flag, v)) return -1;
    return n;
  }
  return 0;
}

void cli_args_engine(const struct cli_args *a, const struct model_spec *m, const struct hw_spec *h,
                     struct engine *e) {
  engine_defaults(e, m, h);
  if (a->gpu_mem_util > 0) e->gpu_mem_util = a->gpu_mem_util;
  if (a->max_model_len > 0) e->max_model_len = a->max_model_len;
  if (a->max_num_seqs > 0) e->max_num_seqs = a->max_num_seqs;
  if (a->max_num_batched_tokens > 0) e->max_num_batched_tokens = a->max_num_batched_tokens;
  if (a->block_size > 0) e->block_size = a->block_size;
  if (a->kv_dtype_bytes > 0) e->kv_dtype_bytes = a->kv_dtype_bytes;
  if (a->enforce_eager >= 0) e->enforce_eager = a->enforce_eager;
  if (a->enable_prefix_caching >= 0) e->enable_prefix_caching = a->enable_prefix_caching;
}
