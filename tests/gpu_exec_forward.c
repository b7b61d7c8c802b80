/* gpu_exec_forward: the tiny Qwen3-MoE on the GPU against the C reference forward (32 decode
 * steps after a chunked prefill and a mixed prefill+decode step, CUDA graphs on): relative L2
 * error of all compared logits under 1e-2 and identical greedy tokens; then TP=2 (when two GPUs are visible) must
 * give the same tokens as one GPU. Exit 77 without a GPU. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "exec/runner.h"
#include "exec/verify.h"

static struct verify_result r1, r2;

int main(void) {
  int n = runner_device_count();
  if (n < 1) CHECK_SKIP("no CUDA device");
  int rc = verify_run("qwen3-moe-tiny", 1, 32, 1, 1, &r1);
  CHECK_MSG(rc == ERR_OK, "%s", err_msg());
  if (!rc) {
    printf("tp 1: %d rows, logits relative error %.3e (worst row %.3e), first mismatch %d\n", r1.n_rows,
           r1.all_rel_err, r1.max_rel_err, r1.first_mismatch);
    CHECK(r1.n_rows == 2 * 32 + 1);
    CHECK_MSG(r1.all_rel_err < 1e-2, "relative error %.3e", r1.all_rel_err);
    CHECK_MSG(r1.first_mismatch < 0, "row %d: gpu %d ref %d", r1.first_mismatch, r1.gpu_tokens[r1.first_mismatch],
              r1.ref_tokens[r1.first_mismatch]);
  }
  if (n >= 2) {
    rc = verify_run("qwen3-moe-tiny", 2, 32, 1, 1, &r2);
    CHECK_MSG(rc == ERR_OK, "%s", err_msg());
    if (!rc) {
      printf("tp 2: %d rows, logits relative error %.3e (worst row %.3e), first mismatch %d\n", r2.n_rows,
             r2.all_rel_err, r2.max_rel_err, r2.first_mismatch);
      CHECK_MSG(r2.all_rel_err < 1e-2, "tp 2 relative error %.3e", r2.all_rel_err);
      CHECK(r2.n_rows == r1.n_rows && memcmp(r2.gpu_tokens, r1.gpu_tokens, sizeof(int32_t) * (size_t)r1.n_rows) == 0);
    }
  } else {
    printf("one GPU: TP=2 equivalence not run\n");
  }
  return check_report("gpu_exec_forward");
}
