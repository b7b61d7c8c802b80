/* cli_check: `servesim check`, which parallel layouts vLLM 0.9 can run for a model on a machine,
 * and why the others cannot.
 *
 * One layout (the vLLM flags given) prints its memory plan and every failed rule; `--all`
 * enumerates every TP x PP x DP (x expert parallel for MoE models) for the GPU count and prints
 * one verdict line each. `--json` prints the same as one JSON document. Exit status: 0 the
 * layout runs (with --all: at least one does), 1 rejected (none does), 2 bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "sim/cli.h"
#include "sim/cli_args.h"
#include "sim/hw.h"
#include "sim/layout.h"
#include "sim/model.h"

#define CHECK_PROG "servesim check"
#define CHECK_GB 1e9

static void check_usage(FILE *f) {
  fprintf(f,
          "usage: servesim check --model M --hardware H [--gpus N] [-tp N] [-pp N] [-dp N]\n"
          "                      [--enable-expert-parallel] [--all] [--json] [engine flags]\n"
          "  --model M       name under specs/models, a directory with config.json, or a .json file\n"
          "  --hardware H    name under specs/hardware or a .json file\n"
          "  --gpus N        GPUs to use (default tp x pp x dp; with --all, the server's count)\n"
          "  --all           list every layout for the GPU count with its verdict\n"
          "  --json          machine-readable output\n"
          "  engine flags (vLLM's): --gpu-memory-utilization, --max-model-len, --max-num-seqs,\n"
          "    --max-num-batched-tokens, --block-size, --kv-cache-dtype, --enforce-eager,\n"
          "    --enable-prefix-caching / --no-enable-prefix-caching\n"
          "exit status: 0 runs, 1 rejected, 2 bad input\n");
}

static void check_quant_text(const struct model_spec *m, char *out, size_t n) {
  const struct model_quant_cfg *q = &m->quant;
  if (q->method == MODEL_QUANT_GPTQ)
    snprintf(out, n, "gptq int%d, group %d%s%s", q->bits, q->group_size, q->sym ? ", sym" : "",
             q->desc_act ? ", act-order" : "");
  else if (q->method == MODEL_QUANT_FP8 && q->fp8_block_n > 0)
    snprintf(out, n, "fp8, weight_block_size [%d, %d]", q->fp8_block_n, q->fp8_block_k);
  else if (q->method == MODEL_QUANT_FP8)
    snprintf(out, n, "fp8, per-tensor scales");
  else
    snprintf(out, n, "%s", m->dtype_bytes == 4 ? "fp32" : "bf16/fp16");
}

static void check_layout_text(const struct layout *l, int moe, char *out, size_t n) {
  snprintf(out, n, "-tp %d -pp %d -dp %d%s", l->tp, l->pp, l->dp,
           moe && l->ep ? " --enable-expert-parallel" : "");
}

/* ---- JSON ---- */

static cJSON *check_json_verdict(const struct model_spec *m, const struct layout *l,
                                 const struct layout_verdict *v) {
  cJSON *o = cJSON_CreateObject();
  cJSON *lo = cJSON_AddObjectToObject(o, "layout");
  cJSON_AddNumberToObject(lo, "tensor_parallel_size", l->tp);
  cJSON_AddNumberToObject(lo, "pipeline_parallel_size", l->pp);
  cJSON_AddNumberToObject(lo, "data_parallel_size", l->dp);
  cJSON_AddBoolToObject(lo, "enable_expert_parallel", l->ep);
  cJSON_AddNumberToObject(lo, "expert_parallel_size", layout_ep_size(l));
  cJSON_AddBoolToObject(o, "runs", v->n_fails == 0);
  const struct mem_plan *p = &v->mem;
  cJSON *mo = cJSON_AddObjectToObject(o, "memory_per_gpu");
  cJSON_AddNumberToObject(mo, "budget_bytes", (double)p->budget_bytes_rank);
  cJSON_AddNumberToObject(mo, "weight_bytes", (double)p->weight_bytes_rank);
  cJSON_AddNumberToObject(mo, "activation_bytes", (double)p->activation_bytes_rank);
  cJSON_AddNumberToObject(mo, "non_torch_bytes", (double)p->overhead_bytes_rank);
  cJSON_AddNumberToObject(mo, "kv_cache_bytes", (double)(p->kv_bytes_free_rank > 0 ? p->kv_bytes_free_rank : 0));
  cJSON_AddNumberToObject(mo, "kv_bytes_per_token", (double)p->kv_bytes_token_rank);
  cJSON *kv = cJSON_AddObjectToObject(o, "kv_cache");
  cJSON_AddNumberToObject(kv, "blocks", (double)p->kv_blocks);
  cJSON_AddNumberToObject(kv, "tokens", (double)p->kv_tokens);
  cJSON_AddNumberToObject(kv, "max_model_len", p->max_model_len);
  cJSON_AddNumberToObject(kv, "concurrent_sequences_at_max_model_len", p->max_concurrency);
  cJSON *rk = cJSON_AddObjectToObject(o, "per_rank");
  cJSON_AddNumberToObject(rk, "q_heads", p->q_heads_rank);
  cJSON_AddNumberToObject(rk, "kv_heads", p->kv_heads_rank);
  cJSON_AddNumberToObject(rk, "layers_max", p->layers_stage_max);
  if (model_is_moe(m)) {
    cJSON_AddNumberToObject(rk, "experts", p->experts_rank);
    cJSON_AddNumberToObject(rk, "moe_intermediate", p->moe_inter_rank);
  }
  cJSON *fa = cJSON_AddArrayToObject(o, "failed_rules");
  for (int i = 0; i < v->n_fails; i++) {
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "rule", v->fails[i].rule);
    cJSON_AddStringToObject(f, "detail", v->fails[i].detail);
    cJSON_AddItemToArray(fa, f);
  }
  cJSON *na = cJSON_AddArrayToObject(o, "notes");
  for (int i = 0; i < v->n_notes; i++) {
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "rule", v->notes[i].rule);
    cJSON_AddStringToObject(f, "detail", v->notes[i].detail);
    cJSON_AddItemToArray(na, f);
  }
  return o;
}

static cJSON *check_json_header(const struct model_spec *m, const struct hw_spec *h, int gpus,
                                const struct engine *e) {
  struct model_params pr;
  model_count_params(m, &pr);
  char q[96];
  check_quant_text(m, q, sizeof q);
  cJSON *o = cJSON_CreateObject();
  cJSON *mo = cJSON_AddObjectToObject(o, "model");
  cJSON_AddStringToObject(mo, "name", m->name);
  cJSON_AddStringToObject(mo, "config", m->path);
  cJSON_AddStringToObject(mo, "weights", q);
  cJSON_AddNumberToObject(mo, "params_total", pr.total);
  cJSON_AddNumberToObject(mo, "params_active", pr.active);
  cJSON *ho = cJSON_AddObjectToObject(o, "hardware");
  cJSON_AddStringToObject(ho, "name", h->name);
  cJSON_AddStringToObject(ho, "gpu", h->gpu);
  cJSON_AddNumberToObject(ho, "mem_bytes", (double)h->mem_bytes);
  cJSON_AddNumberToObject(o, "gpus", gpus);
  cJSON *eo = cJSON_AddObjectToObject(o, "engine");
  cJSON_AddNumberToObject(eo, "gpu_memory_utilization", e->gpu_mem_util);
  cJSON_AddNumberToObject(eo, "max_model_len", e->max_model_len);
  cJSON_AddNumberToObject(eo, "max_num_seqs", e->max_num_seqs);
  cJSON_AddNumberToObject(eo, "max_num_batched_tokens", e->max_num_batched_tokens);
  cJSON_AddNumberToObject(eo, "block_size", e->block_size);
  cJSON_AddNumberToObject(eo, "kv_cache_dtype_bytes", e->kv_dtype_bytes);
  cJSON_AddBoolToObject(eo, "enforce_eager", e->enforce_eager);
  cJSON_AddBoolToObject(eo, "enable_prefix_caching", e->enable_prefix_caching);
  return o;
}

static int check_print_json(cJSON *o) {
  char *s = cJSON_Print(o);
  cJSON_Delete(o);
  if (!s) return err_set(ERR_NOMEM, "out of memory printing JSON");
  puts(s);
  free(s);
  return ERR_OK;
}

/* ---- text ---- */

/* "15.68 GB", or "12.3 MB" below 0.1 GB so a tiny model's plan is still readable. */
static const char *check_bytes(int64_t b, char *buf, size_t n) {
  if (b < 0) b = 0;
  if ((double)b < 0.1 * CHECK_GB)
    snprintf(buf, n, "%.1f MB", b / 1e6);
  else
    snprintf(buf, n, "%.2f GB", b / CHECK_GB);
  return buf;
}

static void check_print_one(const struct model_spec *m, const struct hw_spec *h, int gpus,
                            const struct layout *l, const struct engine *e,
                            const struct layout_verdict *v) {
  struct model_params pr;
  model_count_params(m, &pr);
  char q[96], lt[96];
  check_quant_text(m, q, sizeof q);
  check_layout_text(l, model_is_moe(m), lt, sizeof lt);
  const struct mem_plan *p = &v->mem;
  printf("servesim check: %s on %d x %s (%s)\n", m->name, gpus, h->name, h->gpu);
  printf("  model        %.2fB parameters (%.2fB active), %s, %d layers", pr.total / 1e9,
         pr.active / 1e9, q, m->n_layers);
  if (model_is_moe(m)) printf(", %d experts top-%d", m->n_experts, m->top_k);
  printf("\n  layout       %s  (%d GPUs)\n", lt, layout_n_gpus(l));
  printf("  per GPU      %d of %d q heads, %d KV head%s%s, %d layers", p->q_heads_rank,
         m->n_heads, p->kv_heads_rank, p->kv_heads_rank == 1 ? "" : "s",
         l->tp > m->n_kv_heads ? " (replicated)" : "", p->layers_stage_max);
  if (model_is_moe(m))
    printf(", %d experts x %d wide (%s)", p->experts_rank, p->moe_inter_rank,
           layout_ep_size(l) > 1 ? "whole experts, expert parallel" : "TP-split");
  printf("\n  engine       gpu-memory-utilization %.2f, max-model-len %d, max-num-seqs %d,\n"
         "               max-num-batched-tokens %d, block-size %d, kv-cache %d-byte, %s\n",
         e->gpu_mem_util, p->max_model_len, e->max_num_seqs, e->max_num_batched_tokens,
         e->block_size, e->kv_dtype_bytes, e->enforce_eager ? "eager" : "CUDA graphs");
  printf("  memory/GPU   %.2f GB budget (%.2f GB x %.2f)\n", p->budget_bytes_rank / CHECK_GB,
         h->mem_bytes / CHECK_GB, e->gpu_mem_util);
  char b[32];
  printf("    weights    %s\n", check_bytes(p->weight_bytes_rank, b, sizeof b));
  printf("    activation %s (estimated profile-run peak)\n",
         check_bytes(p->activation_bytes_rank, b, sizeof b));
  printf("    non-torch  %s (estimated NCCL/cuBLAS buffers)\n",
         check_bytes(p->overhead_bytes_rank, b, sizeof b));
  printf("    KV cache   %s, %lld bytes per token\n", check_bytes(p->kv_bytes_free_rank, b, sizeof b),
         (long long)p->kv_bytes_token_rank);
  printf("  KV capacity  %lld blocks x %d = %lld tokens; %.2f sequences at max-model-len %d%s\n",
         (long long)p->kv_blocks, e->block_size, (long long)p->kv_tokens, p->max_concurrency,
         p->max_model_len, l->dp > 1 ? " (per data-parallel replica)" : "");
  if (v->n_fails == 0)
    printf("  verdict      RUNS\n");
  else
    printf("  verdict      REJECTED: %d rule%s failed\n", v->n_fails, v->n_fails == 1 ? "" : "s");
  for (int i = 0; i < v->n_fails; i++) printf("    FAIL [%s] %s\n", v->fails[i].rule, v->fails[i].detail);
  for (int i = 0; i < v->n_notes; i++) printf("    note [%s] %s\n", v->notes[i].rule, v->notes[i].detail);
}

/* ---- --all ---- */

static int check_all_list(const struct model_spec *m, const struct hw_spec *h, int gpus,
                          const struct engine *e, int json, const struct layout *ls, int n);

static int check_all(const struct model_spec *m, const struct hw_spec *h, int gpus,
                     const struct engine *e, int json) {
  /* Expert parallel only changes anything for a MoE model over more than one rank. */
  enum layout_enum_ep ep_set = model_is_moe(m) ? LAYOUT_ENUM_EP_BOTH : LAYOUT_ENUM_EP_OFF;
  int n = layout_enumerate(gpus, ep_set, NULL, 0); /* count, then list every one */
  struct layout *ls = malloc(sizeof *ls * (size_t)(n > 0 ? n : 1)); /* (n) */
  if (!ls) return err_set(ERR_NOMEM, "check --all: %d layouts", n);
  layout_enumerate(gpus, ep_set, ls, n);
  int rc = check_all_list(m, h, gpus, e, json, ls, n);
  free(ls);
  return rc;
}

static int check_all_list(const struct model_spec *m, const struct hw_spec *h, int gpus,
                          const struct engine *e, int json, const struct layout *ls, int n) {
  int n_ok = 0;
  cJSON *root = json ? check_json_header(m, h, gpus, e) : NULL;
  cJSON *arr = json ? cJSON_AddArrayToObject(root, "layouts") : NULL;
  if (!json) {
    struct model_params pr;
    model_count_params(m, &pr);
    printf("servesim check --all: %s (%.2fB parameters) on %d x %s (%s), %d layouts\n", m->name,
           pr.total / 1e9, gpus, h->name, h->gpu, n);
    printf("%-4s %-4s %-4s %-4s %-9s %10s %12s %8s  %s\n", "TP", "PP", "DP", "EP", "verdict",
           "weights/GPU", "KV tokens", "seqs@max", "failed rules");
  }
  for (int i = 0; i < n; i++) {
    struct layout_verdict v;
    int rc = layout_check(m, h, gpus, &ls[i], e, &v);
    if (rc != ERR_OK && rc != ERR_LAYOUT) {
      cJSON_Delete(root);
      return rc;
    }
    n_ok += v.n_fails == 0;
    if (json) {
      cJSON_AddItemToArray(arr, check_json_verdict(m, &ls[i], &v));
      continue;
    }
    char rules[256] = "";
    size_t used = 0;
    for (int k = 0; k < v.n_fails && used < sizeof rules - 1; k++) {
      int w = snprintf(rules + used, sizeof rules - used, "%s%s", k ? ", " : "", v.fails[k].rule);
      if (w < 0) break;
      used += (size_t)w;
    }
    char ep[8];
    snprintf(ep, sizeof ep, "%s", ls[i].ep ? "on" : (model_is_moe(m) ? "off" : "-"));
    printf("%-4d %-4d %-4d %-4s %-9s %8.2f GB %12lld %8.2f  %s\n", ls[i].tp, ls[i].pp, ls[i].dp,
           ep, v.n_fails ? "rejected" : "runs", v.mem.weight_bytes_rank / CHECK_GB,
           (long long)v.mem.kv_tokens, v.mem.max_concurrency, v.n_fails ? rules : "-");
  }
  if (json) {
    cJSON_AddNumberToObject(root, "layouts_that_run", n_ok);
    int rc = check_print_json(root);
    if (rc) return rc;
  } else {
    printf("%d of %d layouts run. KV tokens and sequences are per data-parallel replica;\n"
           "`servesim check ... -tp N -pp N -dp N` explains one layout in full.\n",
           n_ok, n);
  }
  return n_ok > 0 ? ERR_OK : ERR_LAYOUT;
}

int cli_check(int argc, char **argv) {
  struct cli_args a;
  cli_args_init(&a);
  int all = 0;
  for (int i = 0; i < argc;) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      check_usage(stdout);
      return 0;
    }
    int n = cli_args_parse_one(&a, argc, argv, i);
    if (n < 0) {
      err_print(CHECK_PROG);
      return 2;
    }
    if (n == 0 && !strcmp(argv[i], "--all")) {
      all = 1;
      n = 1;
    }
    if (n == 0) {
      cli_args_unknown(argv[i]);
      err_print(CHECK_PROG);
      return 2;
    }
    i += n;
  }
  if (!a.model || !a.hardware) {
    err_set(ERR_INPUT, "%s is required (servesim check --help)", !a.model ? "--model" : "--hardware");
    err_print(CHECK_PROG);
    return 2;
  }
  struct model_spec m;
  struct hw_spec h;
  int rc = model_load(a.model, &m);
  if (!rc) rc = hw_load(a.hardware, &h);
  if (rc) {
    err_print(CHECK_PROG);
    return err_exit_code(rc);
  }
  struct engine e;
  cli_args_engine(&a, &m, &h, &e);
  if (all) {
    int gpus = a.gpus > 0 ? a.gpus
               : (a.tp_set || a.pp_set || a.dp_set) ? layout_n_gpus(&a.layout)
                                                    : h.gpus_per_node;
    rc = check_all(&m, &h, gpus, &e, a.json);
    if (rc != ERR_OK && rc != ERR_LAYOUT) err_print(CHECK_PROG);
    return err_exit_code(rc);
  }
  int gpus = a.gpus > 0 ? a.gpus : layout_n_gpus(&a.layout);
  struct layout_verdict v;
  rc = layout_check(&m, &h, gpus, &a.layout, &e, &v);
  if (rc != ERR_OK && rc != ERR_LAYOUT) {
    err_print(CHECK_PROG);
    return err_exit_code(rc);
  }
  if (a.json) {
    cJSON *root = check_json_header(&m, &h, gpus, &e);
    cJSON_AddItemToObject(root, "verdict", check_json_verdict(&m, &a.layout, &v));
    int prc = check_print_json(root);
    if (prc) {
      err_print(CHECK_PROG);
      return err_exit_code(prc);
    }
  } else {
    check_print_one(&m, &h, gpus, &a.layout, &e, &v);
  }
  return err_exit_code(rc);
}
