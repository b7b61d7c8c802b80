/* test_cli_args: the shared flag parser: both spellings, short aliases, bad values naming the
 * flag, switches, unknown flags left to the caller, engine overrides over card defaults, and the
 * number parsers every command uses (ranges, seeds, one error line naming flag and value). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "sim/cli_args.h"

/* Runs the loop a subcommand runs; returns -1 on a bad value, or the index of the first
 * argument no parser took (argc when all were taken). */
static int parse_all(struct cli_args *a, int argc, char **argv) {
  cli_args_init(a);
  for (int i = 0; i < argc;) {
    int n = cli_args_parse_one(a, argc, argv, i);
    if (n < 0) return -1;
    if (n == 0) return i;
    i += n;
  }
  return argc;
}

int main(void) {
  struct cli_args a;
  char *ok[] = {"--model", "qwen3-moe-tiny", "--hardware=h100-sxm", "-tp", "4", "-pp=2",
                "--data-parallel-size", "1", "--enable-expert-parallel", "--gpus", "8",
                "--gpu-memory-utilization=0.85", "--max-model-len", "8192", "--max-num-seqs=64",
                "--max-num-batched-tokens", "4096", "--block-size", "32", "--kv-cache-dtype=fp8",
                "--enforce-eager", "--no-enable-prefix-caching", "--json", "--db", "x.db"};
  int n = (int)(sizeof ok / sizeof ok[0]);
  CHECK(parse_all(&a, n, ok) == n);
  CHECK(!strcmp(a.model, "qwen3-moe-tiny") && !strcmp(a.hardware, "h100-sxm") && !strcmp(a.db, "x.db"));
  CHECK(a.layout.tp == 4 && a.layout.pp == 2 && a.layout.dp == 1 && a.layout.ep == 1 && a.gpus == 8);
  CHECK(a.tp_set && a.pp_set && a.dp_set);
  CHECK(a.gpu_mem_util == 0.85 && a.max_model_len == 8192 && a.max_num_seqs == 64);
  CHECK(a.max_num_batched_tokens == 4096 && a.block_size == 32 && a.kv_dtype_bytes == 1);
  CHECK(a.enforce_eager == 1 && a.enable_prefix_caching == 0 && a.json == 1);

  struct hw_spec h;
  memset(&h, 0, sizeof h);
  strcpy(h.gpu, "NVIDIA H100 80GB HBM3");
  h.mem_bytes = 85000000000LL;
  struct model_spec m;
  CHECK(model_load("qwen3-moe-tiny", &m) == ERR_OK);
  struct engine e;
  cli_args_engine(&a, &m, &h, &e);
  CHECK(e.gpu_mem_util == 0.85 && e.max_model_len == 8192 && e.max_num_seqs == 64);
  CHECK(e.max_num_batched_tokens == 4096 && e.block_size == 32 && e.kv_dtype_bytes == 1);
  CHECK(e.enforce_eager == 1 && e.enable_prefix_caching == 0);
  char *none[] = {"--model", "m"};
  CHECK(parse_all(&a, 2, none) == 2);
  cli_args_engine(&a, &m, &h, &e); /* nothing given: the card's and the model's defaults */
  CHECK(e.max_num_seqs == 1024 && e.max_num_batched_tokens == 8192 && e.gpu_mem_util == 0.9);
  CHECK(e.max_model_len == m.max_pos);
  CHECK(a.layout.tp == 1 && a.layout.pp == 1 && a.layout.dp == 1 && !a.tp_set && a.gpus == 0);

  /* Bad values name the flag. */
  char *bad1[] = {"-tp", "x8"};
  CHECK(parse_all(&a, 2, bad1) == -1 && strstr(err_msg(), "-tp") != NULL);
  char *bad2[] = {"--tensor-parallel-size"};
  CHECK(parse_all(&a, 1, bad2) == -1 && strstr(err_msg(), "--tensor-parallel-size") && strstr(err_msg(), "missing"));
  char *bad3[] = {"--gpu-memory-utilization=1.5"};
  CHECK(parse_all(&a, 1, bad3) == -1 && strstr(err_msg(), "--gpu-memory-utilization"));
  char *bad4[] = {"--block-size", "24"};
  CHECK(parse_all(&a, 2, bad4) == -1 && strstr(err_msg(), "--block-size"));
  char *bad5[] = {"--kv-cache-dtype", "int4"};
  CHECK(parse_all(&a, 2, bad5) == -1 && strstr(err_msg(), "--kv-cache-dtype"));
  char *bad6[] = {"--enforce-eager=yes"};
  CHECK(parse_all(&a, 1, bad6) == -1 && strstr(err_msg(), "--enforce-eager"));
  char *bad7[] = {"-pp", "0"};
  CHECK(parse_all(&a, 2, bad7) == -1 && strstr(err_msg(), "-pp"));
  /* Unknown or prefix-sharing flags are not taken: the subcommand reports them. */
  char *unk[] = {"-tp", "2", "--tensor-parallel-sizes", "3", "--trace", "f.csv"};
  CHECK(parse_all(&a, 6, unk) == 2);
  CHECK(cli_args_unknown("--tensor-parallel-sizes") == ERR_INPUT &&
        strstr(err_msg(), "unknown flag '--tensor-parallel-sizes'"));
  char *jsonx[] = {"--jsonx"};
  CHECK(parse_all(&a, 1, jsonx) == 0);
  /* A subcommand's own flag through cli_args_value. */
  const char *v = NULL;
  char *own[] = {"--trace=f.csv", "--trace", "g.csv", "--trace"};
  CHECK(cli_args_value(4, own, 0, "--trace", &v) == 1 && !strcmp(v, "f.csv"));
  CHECK(cli_args_value(4, own, 1, "--trace", &v) == 2 && !strcmp(v, "g.csv"));
  CHECK(cli_args_value(4, own, 3, "--trace", &v) == -1);
  CHECK(cli_args_value(4, own, 0, "--tr", &v) == 0);

  /* Numbers: the whole value, inside the range, bounds included; on error *out is untouched and
   * the one line names the flag and the value. */
  int iv = 7;
  CHECK(cli_args_int("--top", "0", 0, 10, &iv) == ERR_OK && iv == 0);
  CHECK(cli_args_int("--top", "10", 0, 10, &iv) == ERR_OK && iv == 10);
  CHECK(cli_args_int("--top", "11", 0, 10, &iv) == ERR_INPUT && iv == 10);
  CHECK(!strcmp(err_msg(), "--top: '11' is not an integer in [0, 10]"));
  CHECK(cli_args_int("--top", "", 0, 10, &iv) == ERR_INPUT && strstr(err_msg(), "--top: ''"));
  CHECK(cli_args_int("--top", "3x", 0, 10, &iv) == ERR_INPUT && iv == 10);
  CHECK(cli_args_int("--top", "2.0", 0, 10, &iv) == ERR_INPUT);
  CHECK(cli_args_int("--top", "-1", 0, 10, &iv) == ERR_INPUT && !strchr(err_msg(), '\n'));
  int64_t lv = 0;
  CHECK(cli_args_i64("--run", "9223372036854775807", 1, INT64_MAX, &lv) == ERR_OK && lv == INT64_MAX);
  /* strtoll clamps an overflow to INT64_MAX: refused, not taken as the maximum */
  CHECK(cli_args_i64("--run", "9223372036854775808", 1, INT64_MAX, &lv) == ERR_INPUT);
  CHECK(!strcmp(err_msg(), "--run: '9223372036854775808' is not an integer >= 1"));
  /* an int flag whose text fits int64 but not int: the range catches it before the cast */
  CHECK(cli_args_int("--gpus", "4294967297", 1, 4096, &iv) == ERR_INPUT);
  uint64_t sv = 0;
  CHECK(cli_args_u64("--seed", "18446744073709551615", &sv) == ERR_OK && sv == UINT64_MAX);
  CHECK(cli_args_u64("--seed", "0x1f", &sv) == ERR_OK && sv == 31);
  CHECK(cli_args_u64("--seed", "010", &sv) == ERR_OK && sv == 10); /* decimal, never octal */
  CHECK(cli_args_u64("--seed", "18446744073709551616", &sv) == ERR_INPUT && sv == 10);
  CHECK(cli_args_u64("--seed", "-1", &sv) == ERR_INPUT && strstr(err_msg(), "--seed: '-1'"));
  CHECK(cli_args_u64("--seed", " -1", &sv) == ERR_INPUT && sv == 10);
  CHECK(cli_args_u64("--seed", "", &sv) == ERR_INPUT);
  double dv = 0;
  CHECK(cli_args_double("--rate", "2.5", 0, HUGE_VAL, &dv) == ERR_OK && dv == 2.5);
  CHECK(cli_args_double("--rate", "1e-3", 1e-3, 1, &dv) == ERR_OK && dv == 1e-3);
  CHECK(cli_args_double("--rate", "-0.5", 0, HUGE_VAL, &dv) == ERR_INPUT && dv == 1e-3);
  CHECK(!strcmp(err_msg(), "--rate: '-0.5' is not a number >= 0"));
  CHECK(cli_args_double("--f", "1.5", 0, 1, &dv) == ERR_INPUT && !strcmp(err_msg(), "--f: '1.5' is not a number in [0, 1]"));
  CHECK(cli_args_double("--cv", "nan", -HUGE_VAL, HUGE_VAL, &dv) == ERR_INPUT);
  CHECK(!strcmp(err_msg(), "--cv: 'nan' is not a finite number"));
  CHECK(cli_args_double("--cv", "inf", -HUGE_VAL, HUGE_VAL, &dv) == ERR_INPUT);
  CHECK(cli_args_double("--cv", "1e999", -HUGE_VAL, HUGE_VAL, &dv) == ERR_INPUT);
  CHECK(cli_args_double("--cv", "1e-999", -HUGE_VAL, HUGE_VAL, &dv) == ERR_INPUT && dv == 1e-3);
  CHECK(cli_args_double("--cv", "3 ", -HUGE_VAL, HUGE_VAL, &dv) == ERR_INPUT);
  CHECK(cli_args_double("--cv", "-2", -HUGE_VAL, HUGE_VAL, &dv) == ERR_OK && dv == -2);
  return check_report("test_cli_args");
}
