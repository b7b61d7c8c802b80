/* cli_args: the one parser of the flags shared by check, simulate, bench and plan.
 *
 * vLLM's own names (so a `vllm serve` line pastes in) plus servesim's --model, --hardware,
 * --gpus, --json, --db. Both `--flag value` and `--flag=value` work. A subcommand owns the loop:
 *
 *   struct cli_args a; cli_args_init(&a);
 *   for (int i = 0; i < argc;) {
 *     int n = cli_args_parse_one(&a, argc, argv, i);
 *     if (n < 0) { err_print("servesim check"); return 2; }   // bad value, flag named
 *     if (n == 0) n = my_own_flag(argc, argv, i);             // 0 again: unknown flag
 *     if (n == 0) { cli_args_unknown(argv[i]); err_print(...); return 2; }
 *     i += n;
 *   }
 *   ... model/hw loaded, then cli_args_engine(&a, &model, &hw, &engine) applies vLLM's defaults
 *   for that model and card (engine_defaults) and the user's overrides.
 * cli_args_value() splits --flag=value / --flag value for the subcommand's own flags;
 * cli_args_wants_help() is the --help check of the commands with subcommands (db, trace).
 * cli_args_int/_i64/_u64/_double are the one number parser of every command (check, simulate,
 * bench, plan, trace, db): the same syntax and the same one-line error everywhere. */
#ifndef SERVESIM_CLI_ARGS_H
#define SERVESIM_CLI_ARGS_H

/* The largest GPU count (and TP, PP, DP size) a command line may ask for. */
#define CLI_MAX_GPUS 4096

#include <stdint.h>

#include "sim/hw.h"
#include "sim/layout.h"

struct cli_args {
  const char *model;            /* --model: name under specs/models, a directory or config.json */
  const char *hardware;         /* --hardware: name under specs/hardware or a .json path */
  const char *db;               /* --db (default "servesim.db") */
  int gpus;                     /* --gpus (0 = tp * pp * dp) */
  int json;                     /* --json: machine-readable output */
  struct layout layout;         /* -tp/-pp/-dp (1) and --enable-expert-parallel (0) */
  int tp_set, pp_set, dp_set;   /* the user gave the flag (for searches like check --all) */
  /* Engine overrides; 0 / -1 = not given, the card's vLLM default applies. */
  double gpu_mem_util;          /* --gpu-memory-utilization (0 = unset) */
  int max_model_len;            /* --max-model-len */
  int max_num_seqs;             /* --max-num-seqs */
  int max_num_batched_tokens;   /* --max-num-batched-tokens */
  int block_size;               /* --block-size */
  int kv_dtype_bytes;           /* --kv-cache-dtype: 0 auto, 1 fp8 / fp8_e4m3 / fp8_e5m2 */
  char kv_cache_dtype[16];      /* the flag's text ("auto") */
  int enforce_eager;            /* --enforce-eager (-1 unset) */
  int enable_prefix_caching;    /* --enable-prefix-caching / --no-enable-prefix-caching (-1) */
};

void cli_args_init(struct cli_args *a);
/* Consumes argv[i] (and its value) if it is a common flag: returns the number of argv entries
 * taken (1 or 2), 0 if argv[i] is not a common flag, -1 (ERR_INPUT set, naming the flag) on a
 * missing or bad value. */
int cli_args_parse_one(struct cli_args *a, int argc, char **argv, int i);
/* For a subcommand's own flags: if argv[i] is `name` or `name=...`, sets *value and returns the
 * entries taken (1 or 2); 0 if argv[i] is another flag; -1 (ERR_INPUT) if the value is missing. */
int cli_args_value(int argc, char **argv, int i, const char *name, const char **value);
/* For a command with subcommands (db, trace): 1 if argv[0] is -h, --help or help, or any later
 * argument is -h or --help, so `servesim db list --help` prints the usage; else 0. */
int cli_args_wants_help(int argc, char **argv);
/* Sets ERR_INPUT "unknown flag 'x'" (or "unexpected argument") and returns ERR_INPUT. */
int cli_args_unknown(const char *arg);
/* Numbers of a flag's value. The whole value must be the number (strtoll / strtod syntax, base 10:
 * leading blanks and a sign pass, trailing text does not) and lie in [lo, hi]; else ERR_INPUT is
 * set as one line naming the flag and the value, "FLAG: 'VALUE' is not an integer in [LO, HI]"
 * (or "... >= LO" when hi is the type's maximum), and ERR_INPUT returned; *out is then unchanged. */
int cli_args_i64(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out);
int cli_args_int(const char *flag, const char *s, int lo, int hi, int *out);
/* A seed: any 64-bit unsigned value, decimal or 0x-prefixed hexadecimal; no sign. */
int cli_args_u64(const char *flag, const char *s, uint64_t *out);
/* A finite double in [lo, hi]; pass -HUGE_VAL / HUGE_VAL for an open side. Out-of-range text
 * (1e999, 1e-999: errno ERANGE) is refused rather than rounded to inf or 0. */
int cli_args_double(const char *flag, const char *s, double lo, double hi, double *out);
/* Engine knobs: vLLM's defaults for this model and card (engine_defaults: max_model_len from the
 * model), then the user's overrides. */
void cli_args_engine(const struct cli_args *a, const struct model_spec *m, const struct hw_spec *h,
                     struct engine *e);

#endif
