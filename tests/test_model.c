/* test_model: config.json loading (every shipped spec, malformed and missing files), parameter
 * counts against FACTS.md's figures for Qwen3-235B-A22B, and GPTQ / FP8 linear sizes worked out
 * by hand from the checkpoint format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/err.h"
#include "sim/layout.h"
#include "sim/model.h"

static const char *test_tmpdir(void) {
  static char dir[256];
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/servesim_test_model_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return "/tmp";
  }
  return dir;
}

static void test_write(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void test_params_235b(void) {
  struct model_spec m;
  int rc = model_load("qwen3-235b-a22b", &m);
  CHECK_MSG(rc == ERR_OK, "%s", err_msg());
  if (rc) return;
  CHECK(m.hidden == 4096 && m.n_layers == 94 && m.n_heads == 64 && m.n_kv_heads == 4);
  CHECK(m.head_dim == 128 && m.n_experts == 128 && m.top_k == 8 && m.moe_intermediate == 1536);
  CHECK(m.n_moe_layers == 94 && m.qk_norm == 1 && m.tie_embed == 0 && m.vocab == 151936);
  CHECK(m.quant.method == MODEL_QUANT_NONE && m.dtype_bytes == 2);
  CHECK(strcmp(m.name, "qwen3-235b-a22b") == 0);
  struct model_params p;
  model_count_params(&m, &p);
  /* FACTS.md: experts 227.10B, attention 6.70B, router 49.3M, embed + lm_head 1.245B,
   * total 235.09B, active 22.19B (rounded as FACTS.md prints them). */
  CHECK_NEAR(p.experts / 1e9, 227.10, 0.005);
  CHECK_NEAR(p.attention / 1e9, 6.70, 0.005);
  CHECK_NEAR(p.router / 1e6, 49.3, 0.05);
  CHECK_NEAR(p.embed_lm_head / 1e9, 1.245, 0.0005);
  CHECK_NEAR(p.total / 1e9, 235.09, 0.005);
  CHECK_NEAR(p.active / 1e9, 22.19, 0.005);
  CHECK(p.dense_mlp == 0);
}

static void test_params_others(void) {
  struct model_spec m;
  struct model_params p;
  /* Qwen3-30B-A3B: ~30.5B total, ~3.3B active (Qwen's model card). */
  CHECK(model_load("qwen3-30b-a3b", &m) == ERR_OK);
  model_count_params(&m, &p);
  CHECK_NEAR(p.total / 1e9, 30.5, 0.1);
  CHECK_NEAR(p.active / 1e9, 3.3, 0.1);
  /* Qwen3-32B dense: 32.8B parameters (model card), all active. */
  CHECK(model_load("qwen3-32b", &m) == ERR_OK);
  CHECK(!model_is_moe(&m) && m.n_moe_layers == 0 && model_layer_is_moe(&m, 0) == 0);
  model_count_params(&m, &p);
  CHECK_NEAR(p.total / 1e9, 32.8, 0.1);
  CHECK(p.active == p.total && p.experts == 0);
  /* The tiny test model: every GPTQ dimension a multiple of 128 (Marlin tiles). */
  CHECK(model_load("qwen3-moe-tiny", &m) == ERR_OK);
  CHECK(m.hidden % 128 == 0 && m.moe_intermediate % 128 == 0 && m.n_heads * m.head_dim % 128 == 0);
  CHECK(m.quant.method == MODEL_QUANT_GPTQ && m.quant.group_size == 128 && m.n_experts == 16);
}

static void test_quant_formats(void) {
  struct model_spec m;
  CHECK(model_load("qwen3-235b-a22b-gptq-int4", &m) == ERR_OK);
  CHECK(m.quant.method == MODEL_QUANT_GPTQ && m.quant.bits == 4 && m.quant.group_size == 128);
  CHECK(m.quant.sym == 1 && m.quant.desc_act == 0);
  /* One expert gate_proj, K 4096 x N 1536, by hand: qweight 4096*1536/2 = 3,145,728; qzeros
   * 32 groups x 192 int32 = 24,576; scales 32 x 1536 fp16 = 98,304; g_idx 4096 int32 = 16,384. */
  CHECK_NEAR(model_linear_bytes(&m, 4096, 1536, 1), 3145728.0 + 24576 + 98304 + 16384, 0.5);
  CHECK_NEAR(model_linear_bytes(&m, 4096, 1536, 0), 4096.0 * 1536 * 2, 0.5);
  /* Whole checkpoint on one rank: FACTS.md computes about 124.5 GB. */
  struct layout l1 = {1, 1, 1, 0};
  CHECK_NEAR(layout_weight_bytes_stage(&m, &l1, 0) / 1e9, 124.5, 0.3);

  CHECK(model_load("qwen3-235b-a22b-fp8", &m) == ERR_OK);
  CHECK(m.quant.method == MODEL_QUANT_FP8 && m.quant.fp8_block_n == 128 && m.quant.fp8_block_k == 128);
  /* fp8: 1 byte per weight + one fp32 scale per 128 x 128 tile: 32 x 12 tiles. */
  CHECK_NEAR(model_linear_bytes(&m, 4096, 1536, 1), 4096.0 * 1536 + 32 * 12 * 4, 0.5);
  CHECK(model_load("qwen3-30b-a3b-gptq-int4", &m) == ERR_OK);
  CHECK(m.quant.method == MODEL_QUANT_GPTQ && m.hidden == 2048 && m.n_layers == 48);
}

static void test_bad_inputs(void) {
  const char *d = test_tmpdir();
  char path[600], dirpath[512];
  struct model_spec m;
  /* Malformed JSON on line 3: the message names the file and that line. */
  snprintf(path, sizeof path, "%s/bad.json", d);
  test_write(path, "{\n  \"hidden_size\": 64,\n  \"num_hidden_layers\": ,\n}\n");
  int rc = model_load(path, &m);
  CHECK(rc == ERR_INPUT && err_exit_code(rc) == 2);
  char want[700];
  snprintf(want, sizeof want, "%s:3:", path);
  CHECK_MSG(strstr(err_msg(), want) != NULL, "got '%s'", err_msg());
  /* An empty file is malformed at line 1. */
  snprintf(path, sizeof path, "%s/empty.json", d);
  test_write(path, "");
  CHECK(model_load(path, &m) == ERR_INPUT);
  snprintf(want, sizeof want, "%s:1:", path);
  CHECK_MSG(strstr(err_msg(), want) != NULL, "got '%s'", err_msg());
  /* Missing file, missing spec name. */
  snprintf(path, sizeof path, "%s/nope.json", d);
  CHECK(model_load(path, &m) == ERR_NOENT);
  CHECK(strstr(err_msg(), "nope.json") != NULL);
  CHECK(model_load("no-such-model-name", &m) == ERR_NOENT);
  CHECK(strstr(err_msg(), "no-such-model-name") != NULL);
  /* A directory holding config.json is accepted and named after the directory. */
  snprintf(dirpath, sizeof dirpath, "%s/mini", d);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "mkdir -p %s", dirpath);
  CHECK(system(cmd) == 0);
  snprintf(path, sizeof path, "%s/config.json", dirpath);
  test_write(path, "{\"hidden_size\": 128, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
                   " \"intermediate_size\": 256, \"vocab_size\": 1000}");
  rc = model_load(dirpath, &m);
  CHECK_MSG(rc == ERR_OK, "%s", err_msg());
  CHECK(strcmp(m.name, "mini") == 0 && m.head_dim == 32 && m.n_kv_heads == 4 && !model_is_moe(&m));
  /* Wrong types and missing required keys. */
  test_write(path, "{\"hidden_size\": \"big\", \"num_hidden_layers\": 2}");
  CHECK(model_load(dirpath, &m) == ERR_INPUT && strstr(err_msg(), "hidden_size") != NULL);
  test_write(path, "{\"hidden_size\": 128, \"num_attention_heads\": 4, \"vocab_size\": 10}");
  CHECK(model_load(dirpath, &m) == ERR_INPUT && strstr(err_msg(), "num_hidden_layers") != NULL);
  /* Unsupported quantization is refused, not treated as bf16. */
  test_write(path, "{\"hidden_size\": 128, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
                   " \"intermediate_size\": 256, \"vocab_size\": 1000,"
                   " \"quantization_config\": {\"quant_method\": \"awq\"}}");
  CHECK(model_load(dirpath, &m) == ERR_INPUT && strstr(err_msg(), "awq") != NULL);
  /* mlp_only_layers and decoder_sparse_step pick the dense layers. */
  test_write(path, "{\"hidden_size\": 128, \"num_hidden_layers\": 4, \"num_attention_heads\": 4,"
                   " \"intermediate_size\": 256, \"vocab_size\": 1000, \"num_experts\": 8,"
                   " \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 64,"
                   " \"decoder_sparse_step\": 2, \"mlp_only_layers\": [3]}");
  rc = model_load(dirpath, &m);
  CHECK_MSG(rc == ERR_OK, "%s", err_msg());
  CHECK(model_layer_is_moe(&m, 1) && !model_layer_is_moe(&m, 0) && !model_layer_is_moe(&m, 3));
  CHECK(m.n_moe_layers == 1);
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  CHECK(system(cmd) == 0);
}

int main(void) {
  test_params_235b();
  test_params_others();
  test_quant_formats();
  test_bad_inputs();
  return check_report("test_model");
}
