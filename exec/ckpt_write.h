/* ckpt_write: writes a random Qwen3-MoE GPTQ-Int4 checkpoint in the real Hugging Face format
 * (safetensors shards + model.safetensors.index.json, the tensor names and shapes a GPTQModel
 * export of Qwen3MoeForCausalLM has), with the values of wsynth.h. Tests use it to exercise the
 * loader end to end on small models; its values equal wt_synth_host's, so a loaded rank slice
 * can be compared bit for bit with a synthesized one. */
#ifndef SERVESIM_EXEC_CKPT_WRITE_H
#define SERVESIM_EXEC_CKPT_WRITE_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stdint.h>

#include "sim/model.h"

/* Writes dir/model-0000i-of-0000n.safetensors (n = n_shards, layers spread evenly) and the index.
 * dir must exist. */
int ckw_write_random(const char *dir, const struct model_spec *m, uint64_t seed, float skew, int n_shards);

#ifdef __cplusplus
}
#endif

#endif
