/* runner: starts one thread per tensor-parallel rank in this process, each on its own GPU with
 * its own NCCL communicator (joined from a unique id, as separate processes would) and engine,
 * and runs the same function on every rank in lockstep.
 *
 * Failure handling: the first rank to fail records its message; NCCL peers blocked in a
 * collective are then unblocked by aborting every communicator, so a failing run ends with one
 * message and a non-zero status instead of hanging. */
#ifndef SERVESIM_EXEC_RUNNER_H
#define SERVESIM_EXEC_RUNNER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "exec/comm.h"
#include "exec/engine.h"

/* Runs on every rank's thread after its engine exists. Return ERR_OK or a status (err_set). */
typedef int (*runner_fn)(void *arg, int rank, struct eng *e, struct comm *c);

/* cfg's rank field is set per thread. */
int runner_run(const struct eng_cfg *cfg, runner_fn fn, void *arg);
/* Number of visible CUDA devices (0 when none or no driver). */
int runner_device_count(void);
/* GPU name, driver and runtime versions of device 0, for provenance. */
void runner_device_info(char *gpu, int gpu_n, char *driver, int driver_n, char *runtime, int runtime_n);

#ifdef __cplusplus
}
#endif

#endif
