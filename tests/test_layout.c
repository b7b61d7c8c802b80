/* test_layout: each vLLM rule firing and not firing, the memory plan against FACTS.md's
 * figures (weights per GPU ~15.6-15.7 GB, KV bytes per token per GPU 48,128 / 24,064), vLLM's
 * per-card defaults, pipeline layer split, the hardware spec's tier lookup, and the order in which
 * layouts are enumerated. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/err.h"
#include "sim/hw.h"
#include "sim/layout.h"
#include "sim/model.h"

static int has_rule(const struct layout_verdict *v, const char *rule) {
  for (int i = 0; i < v->n_fails; i++)
    if (!strcmp(v->fails[i].rule, rule)) return 1;
  return 0;
}

static const char *rule_detail(const struct layout_verdict *v, const char *rule) {
  for (int i = 0; i < v->n_fails; i++)
    if (!strcmp(v->fails[i].rule, rule)) return v->fails[i].detail;
  return "";
}

static int has_note(const struct layout_verdict *v, const char *rule) {
  for (int i = 0; i < v->n_notes; i++)
    if (!strcmp(v->notes[i].rule, rule)) return 1;
  return 0;
}

static int run(const struct model_spec *m, const struct hw_spec *h, int gpus, int tp, int pp,
               int dp, int ep, struct layout_verdict *v) {
  struct layout l = {tp, pp, dp, ep};
  struct engine e;
  engine_defaults(&e, m, h);
  return layout_check(m, h, gpus, &l, &e, v);
}

/* The seed's three layouts (FACTS.md "Why TP=8 fails"). */
static void test_seed_layouts(void) {
  struct model_spec m;
  struct hw_spec h;
  CHECK(model_load("qwen3-235b-a22b-gptq-int4", &m) == ERR_OK);
  CHECK(hw_load("a100-40g-pcie", &h) == ERR_OK);
  struct layout_verdict v;

  int rc = run(&m, &h, 8, 8, 1, 1, 0, &v);
  CHECK(rc == ERR_LAYOUT && err_exit_code(rc) == 1);
  CHECK(has_rule(&v, "moe-wna16-block-k"));
  const char *d = rule_detail(&v, "moe-wna16-block-k");
  CHECK_MSG(strstr(d, "size_k must divisible by BLOCK_SIZE_K") && strstr(d, "192") &&
                strstr(d, "128"),
            "%s", d);
  /* Attention at TP=8 is fine for Marlin: only the MoE rule fires. */
  CHECK(!has_rule(&v, "marlin-n") && !has_rule(&v, "marlin-k") && !has_rule(&v, "tp-heads"));
  CHECK(v.mem.kv_bytes_token_rank == 48128 && v.mem.kv_heads_rank == 1);

  rc = run(&m, &h, 8, 8, 1, 1, 1, &v);
  CHECK_MSG(rc == ERR_OK, "%s", err_msg());
  CHECK(v.mem.experts_rank == 16 && v.mem.moe_inter_rank == 1536);
  CHECK(v.mem.weight_bytes_rank > 15.0e9 && v.mem.weight_bytes_rank < 17.0e9);
  CHECK_NEAR(v.mem.weight_bytes_rank / 1e9, 15.65, 0.1);
  CHECK(v.mem.kv_bytes_token_rank == 48128);
  CHECK(v.mem.kv_blocks > 0 && v.mem.kv_tokens == v.mem.kv_blocks * 16);
  CHECK(v.mem.max_concurrency > 1 && v.mem.max_model_len == 40960);

  rc = run(&m, &h, 8, 4, 2, 1, 0, &v);
  CHECK_MSG(rc == ERR_OK, "%s", err_msg());
  CHECK(v.mem.kv_bytes_token_rank == 24064 && v.mem.layers_stage_max == 47);
  CHECK(has_note(&v, "tp-pcie")); /* 4 GPUs cross the PCIe tier on the seed's box */
  struct layout_verdict pair;
  run(&m, &h, 8, 2, 4, 1, 0, &pair);
  CHECK(!has_note(&pair, "tp-pcie")); /* a TP pair stays on its NVLink bridge */
  CHECK(v.mem.weight_bytes_rank > 15.0e9 && v.mem.weight_bytes_rank < 17.0e9);
  CHECK(v.mem.moe_inter_rank == 384);
  /* Same bytes per GPU for weights, half the KV per token: TP4xPP2 holds about twice the tokens. */
  struct layout_verdict ep;
  run(&m, &h, 8, 8, 1, 1, 1, &ep);
  CHECK(v.mem.kv_tokens > ep.mem.kv_tokens * 3 / 2);

  /* FP8 at TP=8: gate/up output per rank 192 vs block_n 128. */
  struct model_spec f;
  CHECK(model_load("qwen3-235b-a22b-fp8", &f) == ERR_OK);
  rc = run(&f, &h, 8, 8, 1, 1, 0, &v);
  CHECK(rc == ERR_LAYOUT && has_rule(&v, "fp8-moe-block-n"));
  d = rule_detail(&v, "fp8-moe-block-n");
  CHECK_MSG(strstr(d, "192") && strstr(d, "block_n = 128"), "%s", d);
  CHECK(has_note(&v, "fp8-hw")); /* A100: no FP8 tensor cores */
  /* FP8 with EP: no block rule (1536 % 128 == 0); ~236 GB of fp8 + bf16 embeddings over 8. */
  rc = run(&f, &h, 8, 8, 1, 1, 1, &v);
  CHECK(!has_rule(&v, "fp8-moe-block-n") && !has_rule(&v, "fp8-moe-block-k"));
  CHECK_NEAR(v.mem.weight_bytes_rank / 1e9, 29.6, 0.3);
  /* BF16 on 8 x 40 GB: weights alone exceed the budget. */
  struct model_spec b;
  CHECK(model_load("qwen3-235b-a22b", &b) == ERR_OK);
  rc = run(&b, &h, 8, 4, 2, 1, 0, &v);
  CHECK(rc == ERR_LAYOUT && has_rule(&v, "memory"));
  CHECK(strstr(rule_detail(&v, "memory"), "exceed") != NULL);
}

static void test_structural_rules(void) {
  struct model_spec m;
  struct hw_spec h;
  CHECK(model_load("qwen3-235b-a22b-gptq-int4", &m) == ERR_OK);
  CHECK(hw_load("h200-sxm", &h) == ERR_OK);
  struct layout_verdict v;
  /* GPU count must equal tp x pp x dp. */
  run(&m, &h, 8, 4, 1, 1, 0, &v);
  CHECK(has_rule(&v, "gpus"));
  run(&m, &h, 4, 4, 1, 1, 0, &v);
  CHECK(!has_rule(&v, "gpus"));
  /* 64 heads over tp 3 (and 4 KV heads neither dividing nor divided). */
  run(&m, &h, 3, 3, 1, 1, 0, &v);
  CHECK(has_rule(&v, "tp-heads") && has_rule(&v, "tp-kv-heads"));
  run(&m, &h, 2, 2, 1, 1, 0, &v);
  CHECK(!has_rule(&v, "tp-heads") && !has_rule(&v, "tp-kv-heads"));
  /* Beyond one server. */
  run(&m, &h, 16, 8, 2, 1, 0, &v);
  CHECK(has_rule(&v, "node"));
  /* PP beyond the tiny model's 4 layers; uneven split only notes. */
  struct model_spec t;
  CHECK(model_load("qwen3-moe-tiny", &t) == ERR_OK);
  run(&t, &h, 8, 1, 8, 1, 0, &v);
  CHECK(has_rule(&v, "pp-layers"));
  run(&t, &h, 3, 1, 3, 1, 0, &v);
  CHECK(!has_rule(&v, "pp-layers") && has_note(&v, "pp-uneven"));
  run(&t, &h, 4, 1, 4, 1, 0, &v);
  CHECK(!has_rule(&v, "pp-layers") && !has_note(&v, "pp-uneven"));
  /* EP size beyond the expert count (tiny: 16 experts; tp 2 x dp 8 = 16 ok... use dp to 32). */
  struct layout big = {2, 1, 16, 1};
  struct engine e;
  engine_defaults(&e, &t, &h);
  layout_check(&t, &h, 0, &big, &e, &v);
  CHECK(has_rule(&v, "ep-experts"));
  struct layout fine = {2, 1, 4, 1};
  layout_check(&t, &h, 0, &fine, &e, &v);
  CHECK(!has_rule(&v, "ep-experts") && v.mem.experts_rank == 2);
  /* Engine rules: max_model_len vs max_position_embeddings; seqs vs batched tokens. */
  struct layout one = {1, 1, 1, 0};
  e.max_model_len = 8192;
  layout_check(&t, &h, 1, &one, &e, &v);
  CHECK(has_rule(&v, "max-model-len"));
  e.max_model_len = t.max_pos;
  e.max_num_seqs = 10000; /* > 8192 batched tokens (H200 default) */
  layout_check(&t, &h, 1, &one, &e, &v);
  CHECK(has_rule(&v, "batched-tokens") && !has_rule(&v, "max-model-len"));
  engine_defaults(&e, &t, &h);
  CHECK(layout_check(&t, &h, 1, &one, &e, &v) == ERR_OK && v.n_fails == 0);
}

static void test_quant_rules(void) {
  struct model_spec m;
  struct hw_spec h;
  CHECK(model_load("qwen3-moe-tiny", &m) == ERR_OK);
  CHECK(hw_load("h100-sxm", &h) == ERR_OK);
  struct layout_verdict v;
  /* tiny: moe_intermediate 256. tp 2 -> 128 per rank: Marlin MoE fine. tp 4 -> 64: MoeWNA16
   * fallback and 64 % 128 fails; with EP the experts stay whole (256). */
  run(&m, &h, 2, 2, 1, 1, 0, &v);
  CHECK(!has_rule(&v, "moe-wna16-block-k") && !has_rule(&v, "marlin-k"));
  run(&m, &h, 4, 4, 1, 1, 0, &v);
  CHECK(has_rule(&v, "moe-wna16-block-k"));
  run(&m, &h, 4, 4, 1, 1, 1, &v);
  CHECK(!has_rule(&v, "moe-wna16-block-k"));
  /* Dense Marlin: tp 4 gives o_proj input 8/4 heads x 32 = 64 per rank, not a multiple of 128. */
  run(&m, &h, 4, 4, 1, 1, 1, &v);
  CHECK(has_rule(&v, "marlin-k"));
  run(&m, &h, 2, 2, 1, 1, 1, &v);
  CHECK(!has_rule(&v, "marlin-k") && !has_rule(&v, "marlin-n"));
  /* tp 8: one q head (32) + 2 x one KV head (32) = 96 outputs per rank, not a multiple of 64. */
  run(&m, &h, 8, 8, 1, 1, 1, &v);
  CHECK(has_rule(&v, "marlin-n") && strstr(rule_detail(&v, "marlin-n"), "= 96 ") != NULL);
  /* Asymmetric GPTQ is not Marlin-compatible: a note (plain GPTQ kernels), no tile rule. */
  struct model_spec asym = m;
  asym.quant.sym = 0;
  run(&asym, &h, 8, 8, 1, 1, 1, &v);
  CHECK(!has_rule(&v, "marlin-n") && has_note(&v, "gptq-no-marlin"));
  /* ... and its MoE goes to MoeWNA16: fine with whole experts (256 % 128), a note only. */
  CHECK(!has_rule(&v, "moe-wna16-block-k") && has_note(&v, "moe-wna16"));
  run(&asym, &h, 4, 4, 1, 1, 0, &v); /* 256 / 4 = 64 per rank: the CUDA kernel's K tile fails */
  CHECK(has_rule(&v, "moe-wna16-block-k"));
  /* Qwen3-32B dense at TP=8 in bf16: no quant rule; 25600 / 8 = 3200. */
  struct model_spec d;
  CHECK(model_load("qwen3-32b", &d) == ERR_OK);
  CHECK(run(&d, &h, 8, 8, 1, 1, 0, &v) == ERR_OK);
  CHECK(v.mem.kv_heads_rank == 1 && v.mem.experts_rank == 0);
  /* KV bytes for a dense model: 64 layers x 2 x 1 head x 128 x 2 bytes. */
  CHECK(v.mem.kv_bytes_token_rank == 64 * 2 * 1 * 128 * 2);
}

static void test_defaults_and_memory(void) {
  struct hw_spec a100, a100_80, h100, l40s;
  CHECK(hw_load("a100-40g-pcie", &a100) == ERR_OK);
  CHECK(hw_load("a100-80g-sxm", &a100_80) == ERR_OK);
  CHECK(hw_load("h100-sxm", &h100) == ERR_OK);
  CHECK(hw_load("l40s", &l40s) == ERR_OK);
  struct model_spec m, t;
  CHECK(model_load("qwen3-235b-a22b-gptq-int4", &m) == ERR_OK);
  CHECK(model_load("qwen3-moe-tiny", &t) == ERR_OK);
  struct engine e;
  engine_defaults(&e, &m, &a100);
  CHECK(e.max_num_batched_tokens == 2048 && e.max_num_seqs == 256 && e.block_size == 16);
  CHECK(e.gpu_mem_util == 0.9 && e.enable_prefix_caching == 1);
  /* max_model_len: the model's max_position_embeddings, as vLLM derives it (40960 in the
   * 235B config.json); none before a model is known. */
  CHECK(e.max_model_len == 40960);
  engine_defaults(&e, &t, &a100);
  CHECK(e.max_model_len == t.max_pos && t.max_pos != 40960);
  engine_defaults(&e, NULL, &a100);
  CHECK(e.max_model_len == 0 && e.max_num_seqs == 256);
  engine_defaults(&e, &m, &a100_80); /* 80 GB, but an A100: still the small defaults in 0.9 */
  CHECK(e.max_num_batched_tokens == 2048 && e.max_num_seqs == 256);
  engine_defaults(&e, &m, &h100);
  CHECK(e.max_num_batched_tokens == 8192 && e.max_num_seqs == 1024);
  engine_defaults(&e, &m, &l40s);
  CHECK(e.max_num_batched_tokens == 2048);

  /* KV capacity: a lower utilization gives fewer blocks; a short max_model_len over a small
   * budget shows the KV shortfall rule. */
  struct layout l = {4, 2, 1, 0};
  struct layout_verdict v9, v8;
  engine_defaults(&e, &m, &a100);
  CHECK(layout_check(&m, &a100, 8, &l, &e, &v9) == ERR_OK);
  e.gpu_mem_util = 0.8;
  CHECK(layout_check(&m, &a100, 8, &l, &e, &v8) == ERR_OK);
  CHECK(v8.mem.kv_blocks < v9.mem.kv_blocks);
  /* Budget arithmetic: free = budget - weights - activation - overhead (worst stage). */
  CHECK(v9.mem.kv_bytes_free_rank <= v9.mem.budget_bytes_rank - v9.mem.weight_bytes_rank -
                                         v9.mem.overhead_bytes_rank);
  CHECK(v9.mem.kv_blocks == v9.mem.kv_bytes_free_rank / (16 * v9.mem.kv_bytes_token_rank));
  /* A utilization leaving KV room for half of one 40960-token sequence: the KV rule fires. */
  double need = 40960.0 * v9.mem.kv_bytes_token_rank;
  e.gpu_mem_util = (v9.mem.budget_bytes_rank - v9.mem.kv_bytes_free_rank + need / 2) /
                   (double)a100.mem_bytes;
  struct layout_verdict vs;
  layout_check(&m, &a100, 8, &l, &e, &vs);
  CHECK(has_rule(&vs, "memory-kv") && !has_rule(&vs, "memory"));
  CHECK(strstr(rule_detail(&vs, "memory-kv"), "40960") != NULL);
  e.gpu_mem_util = 0.3;
  layout_check(&m, &a100, 8, &l, &e, &vs);
  CHECK(has_rule(&vs, "memory") && strstr(rule_detail(&vs, "memory"), "GB") != NULL);
  /* fp8 KV cache halves the bytes per token. */
  engine_defaults(&e, &m, &a100);
  e.kv_dtype_bytes = 1;
  layout_check(&m, &a100, 8, &l, &e, &vs);
  CHECK(vs.mem.kv_bytes_token_rank == 24064 / 2);
  CHECK(has_note(&vs, "kv-fp8-v0")); /* A100: no FlashAttention 3 */
  engine_defaults(&e, &m, &h100);
  e.kv_dtype_bytes = 1;
  layout_check(&m, &h100, 8, &l, &e, &vs);
  CHECK(!has_note(&vs, "kv-fp8-v0"));
}

static void test_stage_split_and_tiers(void) {
  int first, count, total = 0;
  /* vLLM's get_pp_indices: 94 over 4 -> [23, 24, 24, 23]: extras before the last stage. */
  int want[4] = {23, 24, 24, 23};
  for (int s = 0; s < 4; s++) {
    layout_stage_layers(94, 4, s, &first, &count);
    CHECK(count == want[s] && first == total);
    total += count;
  }
  CHECK(total == 94);
  layout_stage_layers(94, 2, 1, &first, &count);
  CHECK(first == 47 && count == 47);

  struct hw_spec h;
  CHECK(hw_load("a100-40g-pcie", &h) == ERR_OK);
  CHECK(h.n_tiers == 2 && h.tiers[0].domain_size == 2 && h.tiers[0].nvlink && !h.tiers[1].nvlink);
  CHECK(hw_tier_for(&h, 0, 2) == 0 && hw_tier_for(&h, 6, 2) == 0);
  CHECK(hw_tier_for(&h, 1, 2) == 1 && hw_tier_for(&h, 0, 4) == 1 && hw_tier_for(&h, 0, 8) == 1);
  CHECK(hw_tier_for(&h, 0, 16) == -1);
  CHECK(h.tiers[0].allreduce_busbw_GBps == 208 && h.tiers[1].allreduce_busbw_GBps == 20);
  CHECK(h.n_sms == 108 && h.hbm_GBps == 1555 && h.tflops_bf16 == 312 && h.tflops_fp8 == 0);
  const char *all[] = {"a100-40g-pcie", "a100-80g-sxm", "h100-sxm", "h200-sxm", "h20", "l40s"};
  for (int i = 0; i < 6; i++) {
    int rc = hw_load(all[i], &h);
    CHECK_MSG(rc == ERR_OK, "%s: %s", all[i], err_msg());
    CHECK(h.mem_bytes > 30e9 && h.hbm_GBps > 500 && h.tflops_bf16 > 100 && h.n_tiers >= 1);
    CHECK(strcmp(h.name, all[i]) == 0);
  }
}

static void test_hw_bad(void) {
  char path[128];
  snprintf(path, sizeof path, "/tmp/servesim_test_hw_%d.json", (int)getpid());
  FILE *f = fopen(path, "w");
  if (!f) return;
  /* A value without a source is refused. */
  fputs("{\"name\": \"x\", \"gpu\": \"X\", \"mem_bytes\": 1e10, \"hbm_GBps\": 1000,\n"
        "\"hbm_eff\": 0.9, \"tflops_bf16\": 100, \"tflops_fp8\": 0, \"tflops_int8\": 0,\n"
        "\"mma_eff\": 0.8, \"n_sms\": 10, \"gpus_per_node\": 2, \"kernel_launch_us\": 3,\n"
        "\"eager_launch_us\": 8, \"tiers\": [{\"name\": \"pcie\", \"domain_size\": 2,\n"
        "\"bw_GBps\": 25, \"latency_us\": 10, \"allreduce_busbw_GBps\": 20}],\n"
        "\"sources\": {\"mem_bytes\": \"a\"}}\n", f);
  fclose(f);
  struct hw_spec h;
  CHECK(hw_load(path, &h) == ERR_INPUT && strstr(err_msg(), "hbm_GBps") && strstr(err_msg(), "sources"));
  f = fopen(path, "w");
  fputs("{\"name\": \"x\",\n \"gpu\": [\n", f);
  fclose(f);
  CHECK(hw_load(path, &h) == ERR_INPUT);
  char want[160];
  snprintf(want, sizeof want, "%s:3:", path);
  CHECK_MSG(strstr(err_msg(), want) != NULL, "%s", err_msg());
  remove(path);
  CHECK(hw_load("no-such-gpu", &h) == ERR_NOENT && strstr(err_msg(), "no-such-gpu"));
}

/* layout_enumerate: the (TP, PP, DP) of 8 GPUs written out by hand, in the documented order, and
 * what each EP set adds; the count-then-fill contract; 12 GPUs checked against a brute force. */
static void test_enumerate(void) {
  static const int want8[10][3] = {{1, 1, 8}, {1, 2, 4}, {1, 4, 2}, {1, 8, 1}, {2, 1, 4},
                                   {2, 2, 2}, {2, 4, 1}, {4, 1, 2}, {4, 2, 1}, {8, 1, 1}};
  struct layout ls[64]; /* [64] more than any count below */
  CHECK(layout_enumerate(8, LAYOUT_ENUM_EP_OFF, ls, 64) == 10);
  for (int i = 0; i < 10; i++)
    CHECK_MSG(ls[i].tp == want8[i][0] && ls[i].pp == want8[i][1] && ls[i].dp == want8[i][2] &&
                  ls[i].ep == 0,
              "EP off, layout %d: tp %d pp %d dp %d ep %d", i, ls[i].tp, ls[i].pp, ls[i].dp, ls[i].ep);
  CHECK(layout_enumerate(8, LAYOUT_ENUM_EP_ON, ls, 64) == 10);
  for (int i = 0; i < 10; i++)
    CHECK(ls[i].tp == want8[i][0] && ls[i].pp == want8[i][1] && ls[i].ep == 1);
  /* Both: each layout off then on, except TP1 x PP8 x DP1 whose EP group is one rank. */
  CHECK(layout_enumerate(8, LAYOUT_ENUM_EP_BOTH, ls, 64) == 19);
  int k = 0;
  for (int i = 0; i < 10; i++) {
    CHECK(ls[k].tp == want8[i][0] && ls[k].pp == want8[i][1] && ls[k].ep == 0);
    k++;
    if (want8[i][0] * want8[i][2] == 1) continue;
    CHECK(ls[k].tp == want8[i][0] && ls[k].pp == want8[i][1] && ls[k].ep == 1);
    k++;
  }
  CHECK(k == 19);
  CHECK(layout_enumerate(8, LAYOUT_ENUM_EP_EVERY, ls, 64) == 20);
  CHECK(ls[6].tp == 1 && ls[6].pp == 8 && ls[6].ep == 0 && ls[7].tp == 1 && ls[7].pp == 8 &&
        ls[7].ep == 1);
  CHECK(layout_enumerate(1, LAYOUT_ENUM_EP_BOTH, ls, 64) == 1 && ls[0].tp == 1 && ls[0].ep == 0);
  CHECK(layout_enumerate(1, LAYOUT_ENUM_EP_EVERY, ls, 64) == 2 && ls[1].ep == 1);
  CHECK(layout_enumerate(0, LAYOUT_ENUM_EP_BOTH, ls, 64) == 0);
  /* Counting with no array, and a short array: the total comes back, only cap are written. */
  CHECK(layout_enumerate(8, LAYOUT_ENUM_EP_BOTH, NULL, 0) == 19);
  memset(ls, 0, sizeof ls);
  CHECK(layout_enumerate(8, LAYOUT_ENUM_EP_BOTH, ls, 3) == 19);
  CHECK(ls[2].tp == 1 && ls[2].pp == 2 && ls[2].ep == 0 && ls[3].tp == 0);
  /* 12 GPUs: every (tp, pp, dp) with tp * pp * dp = 12, ep 0 and 1, exactly once, sorted. */
  int n = layout_enumerate(12, LAYOUT_ENUM_EP_EVERY, ls, 64), brute = 0;
  for (int tp = 1; tp <= 12; tp++)
    for (int pp = 1; pp <= 12; pp++)
      for (int dp = 1; dp <= 12; dp++) brute += 2 * (tp * pp * dp == 12);
  CHECK_MSG(n == brute, "12 GPUs: %d layouts, %d by brute force", n, brute);
  for (int i = 0; i < n && i < 64; i++) {
    CHECK(layout_n_gpus(&ls[i]) == 12);
    if (i == 0) continue;
    const struct layout *a = &ls[i - 1], *b = &ls[i];
    int before = a->tp != b->tp ? a->tp < b->tp : a->pp != b->pp ? a->pp < b->pp : a->ep < b->ep;
    CHECK_MSG(before, "12 GPUs: layout %d out of order", i);
  }
}

/* The --layout grammar both servesim bench and servesim plan read. */
static void test_parse(void) {
  struct layout l;
  CHECK(layout_parse("tp=8,ep", 4096, &l) == ERR_OK && l.tp == 8 && l.pp == 1 && l.dp == 1 && l.ep == 1);
  CHECK(layout_parse(" tp=4 , pp=2 ", 4096, &l) == ERR_OK && l.tp == 4 && l.pp == 2 && l.dp == 1 && l.ep == 0);
  CHECK(layout_parse("dp=2,tp=2,pp=2,ep=1", 8, &l) == ERR_OK && l.tp == 2 && l.pp == 2 && l.dp == 2 && l.ep == 1);
  CHECK(layout_parse("ep=0,tp=2", 8, &l) == ERR_OK && l.tp == 2 && l.ep == 0);
  CHECK(layout_parse("pp=4", 4, &l) == ERR_OK && l.tp == 1 && l.pp == 4);
  static const struct {
    const char *s, *msg;
  } bad[] = {
      {"", "empty value"},
      {"tp=4,", "empty item"},
      {"tp=4,,pp=2", "empty item"},
      {"tp=4,xx=2", "'xx=2' is not tp=N"},
      {"tp", "'tp' is not tp=N"},
      {"tp=4,tp=2", "tp given twice"},
      {"ep,ep=0", "ep given twice"},
      {"tp=0", "tp=0 is not an integer from 1 to 16"},
      {"tp=", "tp has no value"},
      {"pp=2x", "pp=2x is not an integer"},
      {"tp=-2", "tp=-2 is not an integer"},
      {"ep=2", "ep=2 is not an integer from 0 to 1"},
      {"tp=99999999999999999999", "is not an integer from 1 to 16"},
      {"tp=4,pp=2,dp=4", "32 GPUs, more than 16"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const int rc = layout_parse(bad[i].s, 16, &l);
    CHECK_MSG(rc == ERR_INPUT && strstr(err_msg(), bad[i].msg) != NULL, "layout_parse('%s'): rc %d, '%s'", bad[i].s, rc,
              err_msg());
    if (*bad[i].s) CHECK_MSG(strstr(err_msg(), bad[i].s) != NULL, "the error names the value: %s", err_msg());
  }
}

int main(void) {
  test_parse();
  test_enumerate();
  test_seed_layouts();
  test_structural_rules();
  test_quant_rules();
  test_defaults_and_memory();
  test_stage_split_and_tiers();
  test_hw_bad();
  return check_report("test_layout");
}
