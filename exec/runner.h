/* runner: one tensor-parallel rank per GPU, each with its own NCCL communicator (joined from a
 * unique id) and engine, all running the same function in lockstep.
 *
 * Two ways to host the ranks:
 *   processes (the CLI: runner_set_argv was called): the process re-executes itself once per
 *     rank with SERVESIM_EXEC_RANK / _WORLD / _NCCL_ID in the environment, as a launcher would
 *     start ranks on several hosts. Needed because per-process CUDA state is per device: the
 *     kernels set each kernel's shared-memory limit once per process (the first device to run
 *     it), so a thread driving another GPU of the same process would launch with no limit set.
 *     Rank 0 reports and records; the parent only waits and passes the exit status on.
 *   threads (tests, or -tp 1): one thread per rank in this process.
 * Failure handling: the first rank to fail prints one message; peers blocked in a collective
 * are unblocked (communicators aborted, or the rank processes killed) after a few seconds, so a
 * failing run ends with one message and a non-zero status instead of hanging. */
#ifndef SERVESIM_EXEC_RUNNER_H
#define SERVESIM_EXEC_RUNNER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "exec/comm.h"
#include "exec/engine.h"

/* Runs on every rank's thread after its engine exists. Return ERR_OK or a status (err_set). */
typedef int (*runner_fn)(void *arg, int rank, struct eng *e, struct comm *c);

/* cfg's rank field is set per rank. In the process mode's parent this returns after every rank
 * process exited (see runner_reports). */
int runner_run(const struct eng_cfg *cfg, runner_fn fn, void *arg);
/* Registers the command line for the process mode (call first thing in main). */
void runner_set_argv(int argc, char **argv);
/* Whether this process prints and records the results of a tp-way run: the rank-0 process, or
 * the only process (threads). The parent of rank processes does not. */
int runner_reports(int tp);
/* In the parent of rank processes after a failure: the failing rank's exit status (it already
 * printed its message); 0 otherwise. */
int runner_child_status(void);
/* Whether this process is one rank of a multi-process run. */
int runner_is_rank_process(void);
/* Number of visible CUDA devices (0 when none or no driver). */
int runner_device_count(void);
/* GPU name, driver and runtime versions of device 0, for provenance. */
void runner_device_info(char *gpu, int gpu_n, char *driver, int driver_n, char *runtime, int runtime_n);

#ifdef __cplusplus
}
#endif

#endif
