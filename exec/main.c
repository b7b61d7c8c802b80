/* servesim-exec: the live executor's command line.
 *
 *   servesim-exec generate --model M -tp N --batch B --prompt-len P --output-len O
 *                          [--weights random|DIR] [--db F] [--seed S] [--router-skew X]
 *                          [--max-num-batched-tokens T] [--enforce-eager] [--hardware H]
 *   servesim-exec profile  --model M -tp N [--db F] [--weights ...] [--hardware H] [--quick]
 *   servesim-exec verify   [--model qwen3-moe-tiny] [-tp N] [--steps 32] [--seed S]
 *
 * Flags follow vLLM's names where vLLM has one. Before touching a GPU the layout is checked with
 * the simulator's own rules (sim/layout.h), so a layout vLLM would reject fails here the same
 * way, with exit status 1. Results reach the database only once the whole run succeeded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "exec/generate.h"
#include "exec/profile.h"
#include "exec/record.h"
#include "exec/runner.h"
#include "exec/safetensors.h"
#include "exec/verify.h"
#include "exec/weights.h"
#include "sim/cli_args.h"
#include "sim/hw.h"
#include "sim/layout.h"
#include "sim/model.h"

struct opts {
  const char *cmd, *model, *weights, *db, *hardware;
  int tp, batch, prompt_len, output_len, max_tok, eager, steps, quick, layers, top_k;
  uint64_t seed;
  double skew;
};

static int usage(void) {
  fprintf(stderr,
          "usage: servesim-exec generate --model M -tp N --batch B --prompt-len P --output-len O\n"
          "                              [--weights random|DIR] [--db FILE] [--seed S] [--router-skew X]\n"
          "                              [--max-num-batched-tokens T] [--enforce-eager] [--hardware H|auto]\n"
          "       servesim-exec profile  --model M -tp N [--db FILE] [--weights random|DIR] [--quick]\n"
          "       servesim-exec verify   [--model M] [-tp N] [--steps N] [--seed S] [--enforce-eager]\n"
          "                              [--layers N] [--top-k K]   (diagnostic model overrides)\n");
  return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof *o);
  o->cmd = argv[1];
  o->tp = 1;
  o->batch = 1;
  o->prompt_len = 1024;
  o->output_len = 128;
  o->max_tok = 8192;
  o->steps = 32;
  o->seed = 1;
  o->weights = "random";
  o->db = NULL;
  o->hardware = "auto";
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rc;
#define NEED_VALUE() \
  if (!v) return err_set(ERR_INPUT, "%s needs a value", a)
#define INT_FLAG(name, field, lo, hi)                                  \
  if (!strcmp(a, name)) {                                              \
    NEED_VALUE();                                                      \
    if ((rc = cli_args_int(name, v, lo, hi, &o->field))) return rc;    \
    i++;                                                               \
    continue;                                                          \
  }
    INT_FLAG("-tp", tp, 1, 64)
    INT_FLAG("--tensor-parallel-size", tp, 1, 64)
    INT_FLAG("--batch", batch, 1, 4096)
    INT_FLAG("--prompt-len", prompt_len, 1, 1 << 20)
    INT_FLAG("--output-len", output_len, 1, 1 << 20)
    INT_FLAG("--max-num-batched-tokens", max_tok, 1, 1 << 20)
    INT_FLAG("--steps", steps, 1, VERIFY_MAX_STEPS)
    INT_FLAG("--layers", layers, 1, 1000)
    INT_FLAG("--top-k", top_k, 1, 1024)
#undef INT_FLAG
    if (!strcmp(a, "--seed")) {
      NEED_VALUE();
      int64_t seed;
      if ((rc = cli_args_i64(a, v, 0, 0x7fffffffL, &seed))) return rc;
      o->seed = (uint64_t)seed;
      i++;
    } else if (!strcmp(a, "--router-skew")) {
      NEED_VALUE();
      if ((rc = cli_args_double(a, v, 0, 100, &o->skew))) return rc;
      i++;
    } else if (!strcmp(a, "--model") || !strcmp(a, "--weights") || !strcmp(a, "--db") || !strcmp(a, "--hardware")) {
      NEED_VALUE();
      if (!strcmp(a, "--model")) o->model = v;
      else if (!strcmp(a, "--weights")) o->weights = v;
      else if (!strcmp(a, "--db")) o->db = v;
      else o->hardware = v;
      i++;
    } else if (!strcmp(a, "--enforce-eager")) {
      o->eager = 1;
    } else if (!strcmp(a, "--quick")) {
      o->quick = 1;
    } else {
      return err_set(ERR_INPUT, "unknown flag '%s' for %s", a, o->cmd);
    }
#undef NEED_VALUE
  }
  if (!strcmp(o->hardware, "auto")) {
    /* the spec of the card this runs on: H200 or H100 (SXM), the lent machines */
    char gpu[128], drv[64], rt[32];
    runner_device_info(gpu, sizeof gpu, drv, sizeof drv, rt, sizeof rt);
    o->hardware = strstr(gpu, "H200") ? "h200-sxm" : "h100-sxm";
  }
  if (!o->model) {
    if (!strcmp(o->cmd, "verify")) o->model = "qwen3-moe-tiny";
    else return err_set(ERR_INPUT, "%s needs --model", o->cmd);
  }
  return ERR_OK;
}

/* The simulator's verdict on the layout (vLLM's rules) before any GPU is touched. */
static int check_layout(const struct opts *o, const struct model_spec *m, int max_model_len) {
  struct hw_spec h;
  int rc = hw_load(o->hardware, &h);
  if (rc) return rc;
  struct layout l = {o->tp, 1, 1, 0};
  struct engine e;
  engine_defaults(&e, m, &h);
  e.max_model_len = max_model_len;
  e.max_num_batched_tokens = o->max_tok;
  struct layout_verdict v;
  rc = layout_check(m, &h, o->tp, &l, &e, &v);
  if (rc == ERR_LAYOUT)
    return err_set(ERR_LAYOUT, "layout -tp %d of %s on %s does not fit: %s: %s", o->tp, m->name, h.name,
                   v.n_fails ? v.fails[0].rule : "?", v.n_fails ? v.fails[0].detail : err_msg());
  return rc;
}

static void fill_run(struct db_run *run, const struct opts *o, const struct model_spec *m, const char *kind,
                     char *workload, int wl_n, char *cfg_json, int cfg_n) {
  db_run_init(run);
  run->kind = kind;
  run->model = m->name;
  run->model_quant = "gptq-int4";
  run->hardware = o->hardware;
  run->n_gpus = o->tp;
  run->tp = o->tp;
  run->pp = 1;
  run->dp = 1;
  run->ep = 1;
  run->seed = (int64_t)o->seed;
  if (!strcmp(kind, "live"))
    snprintf(workload, (size_t)wl_n, "generate batch=%d in=%d out=%d", o->batch, o->prompt_len, o->output_len);
  else
    snprintf(workload, (size_t)wl_n, "profile%s", o->quick ? " quick" : "");
  run->workload = workload;
  snprintf(cfg_json, (size_t)cfg_n,
           "{\"command\":\"%s\",\"model\":\"%s\",\"tensor_parallel_size\":%d,\"batch\":%d,\"prompt_len\":%d,"
           "\"output_len\":%d,\"max_num_batched_tokens\":%d,\"enforce_eager\":%s,\"weights\":\"%s\","
           "\"router_skew\":%g,\"seed\":%llu}",
           o->cmd, m->name, o->tp, o->batch, o->prompt_len, o->output_len, o->max_tok, o->eager ? "true" : "false",
           strcmp(o->weights, "random") ? "checkpoint" : "random", o->skew, (unsigned long long)o->seed);
  run->config_json = cfg_json;
  rec_provenance(&run->prov);
}

static int cmd_generate(const struct opts *o, const struct model_spec *m, struct st_ckpt *ck) {
  int max_ctx = o->prompt_len + o->output_len;
  int rc = check_layout(o, m, max_ctx);
  if (rc) return rc;
  int max_tok = o->max_tok < o->batch ? o->batch : o->max_tok;
  struct eng_cfg cfg = {m, o->tp, 0, o->batch, max_ctx, max_tok, o->seed, (float)o->skew, ck, !o->eager};
  struct gen_job job;
  memset(&job, 0, sizeof job);
  job.cfg = (struct gen_cfg){o->batch, o->prompt_len, o->output_len, o->seed};
  job.n_layers = m->n_layers;
  job.n_experts = m->n_experts;
  if ((rc = runner_run(&cfg, gen_rank, &job)) || !runner_reports(o->tp)) {
    free(job.res.hits);
    return rc;
  }
  const struct gen_result *x = &job.res;
  printf("model %s  -tp %d  batch %d  prompt %d  output %d  (%s weights, cuda graphs %s)\n", m->name, o->tp, o->batch,
         o->prompt_len, o->output_len, ck ? "checkpoint" : "random", o->eager ? "off" : "on");
  printf("prefill:   %.1f ms in %d steps (GPU %.1f ms)\n", x->prefill_ms, x->n_prefill_steps, x->prefill_gpu_ms);
  printf("TTFT:      avg %.1f ms, max %.1f ms\n", x->ttft_avg_ms, x->ttft_max_ms);
  printf("decode:    %.3f ms per token (median of %d steps; p10 %.3f, p90 %.3f; GPU %.3f ms)\n", x->decode_ms_med,
         x->n_decode_steps, x->decode_ms_p10, x->decode_ms_p90, x->decode_gpu_ms_med);
  printf("throughput: %.1f output tokens/s\n", o->batch / (x->decode_ms_med / 1e3));
  printf("router GEMV (self-checked against cuBLAS at start-up): %s; programmatic dependent launch: %s\n",
         x->router_gemv ? "on" : "off", x->pdl ? "on" : "off");
  printf("sequence 0 tokens: %d %d %d %d ...\n", x->first_tokens[1], x->first_tokens[2], x->first_tokens[3],
         x->first_tokens[4]);
  fflush(stdout);
  if (o->db) {
    struct rec r;
    memset(&r, 0, sizeof r);
    r.hits = x->hits;
    r.hits_layers = m->n_layers;
    r.hits_experts = m->n_experts;
    rc = gen_record(&job, o->tp, &r);
    if (!rc) {
      struct db_run run;
      char wl[128], cj[1024];
      fill_run(&run, o, m, "live", wl, sizeof wl, cj, sizeof cj);
      int64_t id;
      rc = rec_write(o->db, &run, &r, &id);
      if (!rc) printf("recorded run %lld in %s\n", (long long)id, o->db);
    }
    rec_free(&r);   /* frees hits */
    return rc;
  }
  free(job.res.hits);
  return ERR_OK;
}

static int cmd_profile(const struct opts *o, const struct model_spec *m, struct st_ckpt *ck) {
  struct prof_job job;
  memset(&job, 0, sizeof job);
  job.quick = o->quick;
  job.n_layers = m->n_layers;
  job.n_experts = m->n_experts;
  int rc = check_layout(o, m, prof_max_ctx(&job));
  if (rc) return rc;
  struct eng_cfg cfg = {m, o->tp, 0, prof_max_seqs(&job), prof_max_ctx(&job), prof_max_tok(&job), o->seed,
                        (float)o->skew, ck, 1};
  if ((rc = runner_run(&cfg, prof_rank, &job)) || !runner_reports(o->tp)) {
    rec_free(&job.rec);
    return rc;
  }
  prof_print(&job, stdout);
  if (o->db) {
    struct db_run run;
    char wl[128], cj[1024];
    fill_run(&run, o, m, "profile", wl, sizeof wl, cj, sizeof cj);
    int64_t id;
    rc = rec_write(o->db, &run, &job.rec, &id);
    if (!rc) printf("recorded profile run %lld (%d measurements) in %s\n", (long long)id, job.rec.n_meas, o->db);
  }
  rec_free(&job.rec);
  return rc;
}

static int cmd_verify(const struct opts *o) {
  struct verify_result *r = calloc(1, sizeof *r);
  if (!r) return err_set(ERR_NOMEM, "out of memory");
  verify_set_overrides(o->layers, o->top_k);
  int rc = verify_run(o->model, o->tp, o->steps, o->seed, !o->eager, r);
  if (!rc && r->n_rows >= 0 && runner_reports(o->tp)) {
    printf("verify %s -tp %d: %d rows, logits relative error %.3e (worst row %.3e), %s, %d near-tie rows\n",
           o->model, o->tp, r->n_rows, r->all_rel_err, r->max_rel_err,
           r->first_mismatch < 0 ? "greedy tokens identical" : "TOKENS DIFFER", r->n_ties);
    if (r->first_mismatch >= 0)
      printf("first mismatch at row %d: gpu %d, reference %d\n", r->first_mismatch, r->gpu_tokens[r->first_mismatch],
             r->ref_tokens[r->first_mismatch]);
    for (int i = 0; i < r->n_rows && i < 2 * VERIFY_MAX_STEPS + 4; i++)
      printf("row %2d: rel err %.2e, ref top-2 gap %.4f, tokens gpu %d ref %d\n", i, r->row_rel_err[i], r->row_ref_gap[i],
             r->gpu_tokens[i], r->ref_tokens[i]);
    if (!(r->all_rel_err < 1e-2) || r->first_mismatch >= 0)
      rc = err_set(ERR_INTERNAL, "verify failed: logits relative error %.3e (limit 1e-2), first token mismatch row %d",
                   r->all_rel_err, r->first_mismatch);
  }
  free(r);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return usage();
  if (strcmp(argv[1], "generate") && strcmp(argv[1], "profile") && strcmp(argv[1], "verify")) {
    err_set(ERR_INPUT, "unknown command '%s' (generate, profile, verify)", argv[1]);
    err_print("servesim-exec");
    return 2;
  }
  runner_set_argv(argc, argv);
  struct opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc) {
    err_print("servesim-exec");
    return err_exit_code(rc);
  }
  if (!strcmp(o.cmd, "verify")) {
    rc = cmd_verify(&o);
  } else {
    struct model_spec m;
    struct st_ckpt *ck = NULL;
    if (!(rc = model_load(o.model, &m)) && strcmp(o.weights, "random")) rc = st_open(o.weights, &ck);
    if (!rc) rc = !strcmp(o.cmd, "generate") ? cmd_generate(&o, &m, ck) : cmd_profile(&o, &m, ck);
    st_close(ck);
  }
  if (rc && runner_child_status()) return runner_child_status();   /* the rank printed why */
  if (rc) {
    err_print("servesim-exec");
    return err_exit_code(rc);
  }
  return 0;
}
