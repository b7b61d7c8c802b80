/* verify: the GPU forward against the C reference on a tiny model.
 *
 * Both run the same schedule: sequence 0 prefills 45 tokens in two chunks (24, then 21 after
 * the cached 24); the next step mixes sequence 1's 20-token prefill with sequence 0's first
 * decode; then both decode for the remaining steps (CUDA graphs on the GPU side). Steps stay at
 * or under 32 tokens; bigger steps are the business of the kernel tests and `profile`.
 * The GPU side is fed the reference's greedy tokens (teacher forcing), so each step compares the
 * two implementations on the same input, and its own greedy token must equal the reference's.
 * Why: two correct bf16 implementations round differently in about one element in a few hundred
 * (here measured: logits relative error ~5e-3), so where the reference's two best logits lie
 * within two bf16 steps, or a router's k-th and (k+1)-th expert do, greedy order is decided by
 * rounding; free-running, one such tie rewrites every later token. Such near-ties are counted
 * (n_ties) and reported, not failed; any other differing token is a failure. Each side feeds back its own greedy tokens, so a divergence
 * shows as a token mismatch rather than being hidden. Logits are compared per sampled row by
 * relative L2 error, the GPU's assembled from every rank's vocabulary slice. */
#ifndef SERVESIM_EXEC_VERIFY_H
#define SERVESIM_EXEC_VERIFY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VERIFY_MAX_STEPS 256

struct verify_result {
  int n_steps;                 /* decode steps of sequence 0 */
  int n_rows;                  /* sampled rows compared; -1 in a process that only hosted ranks */
  double max_rel_err;          /* max over rows of |gpu - ref|_2 / |ref|_2 */
  double all_rel_err;          /* the same over all compared logits at once */
  int first_mismatch;          /* row of the first differing token that is no near-tie; -1 if none */
  int n_ties;                  /* rows whose tokens differ at a reference near-tie */
  int32_t ref_tokens[2 * VERIFY_MAX_STEPS + 4];
  int32_t gpu_tokens[2 * VERIFY_MAX_STEPS + 4];
  double row_rel_err[2 * VERIFY_MAX_STEPS + 4];
  double row_ref_gap[2 * VERIFY_MAX_STEPS + 4];   /* reference top-1 minus top-2 logit */
};

/* model: name or path (qwen3-moe-tiny). n_steps <= VERIFY_MAX_STEPS. */
/* cuda_graphs: 0 runs every GPU step eagerly (isolates graph capture from kernel errors). */
int verify_run(const char *model, int tp, int n_steps, uint64_t seed, int cuda_graphs, struct verify_result *r);
/* Diagnostic overrides of the model (0 = keep): layers, experts per token. With top_k equal to
 * the expert count routing has no discrete choice left, which separates arithmetic error from
 * routing flips at near-ties. */
void verify_set_overrides(int n_layers, int top_k);

#ifdef __cplusplus
}
#endif

#endif
