/* runner: a thread, a GPU, a communicator and an engine per TP rank (see runner.h). */
#include "exec/runner.h"

#include <cuda_runtime_api.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "exec/weights.h"

struct runner_shared {
  const struct eng_cfg *cfg;
  runner_fn fn;
  void *arg;
  uint8_t id[COMM_ID_BYTES];
  struct comm *comms;       /* [tp] */
  pthread_mutex_t mu;
  int failed, first_rc, n_done;
  char msg[1024];
};

struct runner_thread {
  struct runner_shared *sh;
  int rank;
  pthread_t th;
};

static void runner_fail(struct runner_shared *sh, int rank, int rc) {
  pthread_mutex_lock(&sh->mu);
  if (!sh->failed) {
    sh->failed = 1;
    sh->first_rc = rc;
    snprintf(sh->msg, sizeof sh->msg, "rank %d: %s", rank, err_msg());
  }
  pthread_mutex_unlock(&sh->mu);
}

static void *runner_main(void *p) {
  struct runner_thread *t = p;
  struct runner_shared *sh = t->sh;
  struct eng *e = NULL;
  int rc;
  cudaError_t ce = cudaSetDevice(t->rank);
  if (ce != cudaSuccess) {
    rc = err_set(ERR_DEVICE, "cudaSetDevice(%d): %s", t->rank, cudaGetErrorString(ce));
    goto done;
  }
  if ((rc = comm_init(&sh->comms[t->rank], sh->id, t->rank, sh->cfg->tp))) goto done;
  struct eng_cfg cfg = *sh->cfg;
  cfg.rank = t->rank;
  if ((rc = eng_create(&cfg, &sh->comms[t->rank], &e))) goto done;
  rc = sh->fn(sh->arg, t->rank, e, &sh->comms[t->rank]);
done:
  if (rc) runner_fail(sh, t->rank, rc);
  eng_destroy(e);
  pthread_mutex_lock(&sh->mu);
  sh->n_done++;
  pthread_mutex_unlock(&sh->mu);
  return NULL;
}

int runner_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

void runner_device_info(char *gpu, int gpu_n, char *driver, int driver_n, char *runtime, int runtime_n) {
  struct cudaDeviceProp prop;
  snprintf(gpu, (size_t)gpu_n, "unknown");
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) snprintf(gpu, (size_t)gpu_n, "%s", prop.name);
  int v = 0;
  cudaRuntimeGetVersion(&v);
  snprintf(runtime, (size_t)runtime_n, "%d.%d", v / 1000, (v % 1000) / 10);
  /* the kernel driver's version (what nvidia-smi prints): the first "N.N[.N]" token of
   * /proc/driver/nvidia/version, whose wording varies ("... Kernel Module for x86_64  580.159.04");
   * the CUDA driver API number otherwise */
  FILE *f = fopen("/proc/driver/nvidia/version", "r");
  char line[512] = "";
  driver[0] = '\0';
  if (f && fgets(line, sizeof line, f)) {
    char *save = NULL;
    for (char *tok = strtok_r(line, " \t\n", &save); tok && !driver[0]; tok = strtok_r(NULL, " \t\n", &save)) {
      int digits = 0, dots = 0, ok = 1;
      for (const char *c = tok; *c && ok; c++) {
        if (*c >= '0' && *c <= '9') digits++;
        else if (*c == '.' && digits) dots++;
        else ok = 0;
      }
      if (ok && dots >= 1 && tok[strlen(tok) - 1] != '.') snprintf(driver, (size_t)driver_n, "%s", tok);
    }
  }
  if (!driver[0]) {
    int dv = 0;
    cudaDriverGetVersion(&dv);
    snprintf(driver, (size_t)driver_n, "cuda-driver-api %d.%d", dv / 1000, (dv % 1000) / 10);
  }
  if (f) fclose(f);
}

static int runner_argc;
static char **runner_argv;
static int runner_env_rank = -1, runner_env_world = 0, runner_failed_status;

void runner_set_argv(int argc, char **argv) {
  runner_argc = argc;
  runner_argv = argv;
  const char *r = getenv("SERVESIM_EXEC_RANK"), *w = getenv("SERVESIM_EXEC_WORLD");
  if (r && w) {
    runner_env_rank = atoi(r);
    runner_env_world = atoi(w);
  }
}

int runner_reports(int tp) {
  if (runner_env_rank >= 0) return runner_env_rank == 0;
  return !(runner_argv && tp > 1);
}

int runner_child_status(void) { return runner_failed_status; }
int runner_is_rank_process(void) { return runner_env_rank >= 0; }

static void runner_hex(const uint8_t *id, char *out) {
  for (int i = 0; i < COMM_ID_BYTES; i++) snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int runner_unhex(const char *s, uint8_t *id) {
  if (!s || strlen(s) != 2 * COMM_ID_BYTES) return -1;
  for (int i = 0; i < COMM_ID_BYTES; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    id[i] = (uint8_t)v;
  }
  return 0;
}

/* A rank process: this rank only, on this thread; a closing barrier so rank 0 reports only
 * after every rank finished its work. */
static int runner_rank_process(const struct eng_cfg *cfg, runner_fn fn, void *arg) {
  int rank = runner_env_rank, rc;
  uint8_t id[COMM_ID_BYTES];
  if (runner_env_world != cfg->tp || runner_unhex(getenv("SERVESIM_EXEC_NCCL_ID"), id))
    return err_set(ERR_INTERNAL, "rank process %d: SERVESIM_EXEC_WORLD/NCCL_ID do not match -tp %d", rank, cfg->tp);
  cudaError_t ce = cudaSetDevice(rank);
  if (ce != cudaSuccess) return err_set(ERR_DEVICE, "rank %d: cudaSetDevice: %s", rank, cudaGetErrorString(ce));
  struct comm c;
  if ((rc = comm_init(&c, id, rank, cfg->tp))) return err_wrap(rc, "rank %d", rank);
  struct eng_cfg rcfg = *cfg;
  rcfg.rank = rank;
  struct eng *e = NULL;
  if (!(rc = eng_create(&rcfg, &c, &e))) rc = fn(arg, rank, e, &c);
  if (!rc) rc = comm_barrier(&c);
  eng_destroy(e);
  comm_destroy(&c);
  return rc ? err_wrap(rc, "rank %d", rank) : ERR_OK;
}

/* The parent: start tp rank processes (this program, same arguments), wait for all. */
static int runner_spawn(int tp) {
  uint8_t id[COMM_ID_BYTES];
  int rc = comm_unique_id(id);   /* starts NCCL's bootstrap root in this process, which stays */
  if (rc) return rc;
  char hex[2 * COMM_ID_BYTES + 1], num[16], world[16];
  runner_hex(id, hex);
  snprintf(world, sizeof world, "%d", tp);
  fflush(stdout);
  fflush(stderr);
  pid_t *pids = calloc((size_t)tp, sizeof *pids);
  if (!pids) return err_set(ERR_NOMEM, "out of memory");
  for (int r = 0; r < tp; r++) {
    pid_t p = fork();
    if (p < 0) {
      rc = err_set(ERR_IO, "fork: %s", strerror(errno));
      for (int q = 0; q < r; q++) kill(pids[q], SIGKILL);
      break;
    }
    if (p == 0) {
      snprintf(num, sizeof num, "%d", r);
      setenv("SERVESIM_EXEC_RANK", num, 1);
      setenv("SERVESIM_EXEC_WORLD", world, 1);
      setenv("SERVESIM_EXEC_NCCL_ID", hex, 1);
      execv("/proc/self/exe", runner_argv);
      fprintf(stderr, "servesim-exec: rank %d: exec /proc/self/exe: %s\n", r, strerror(errno));
      _exit(2);
    }
    pids[r] = p;
  }
  int alive = rc ? 0 : tp;
  double failed_at = -1;
  while (alive > 0) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p > 0) {
      for (int r = 0; r < tp; r++)
        if (pids[r] == p) pids[r] = 0;
      alive--;
      int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
      if (code && !runner_failed_status) {
        runner_failed_status = code;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        failed_at = now.tv_sec + now.tv_nsec * 1e-9;
      }
      continue;
    }
    if (failed_at >= 0) {
      /* peers may sit in a collective with a dead rank: give them a few seconds, then stop them */
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec + now.tv_nsec * 1e-9 - failed_at > 5.0)
        for (int r = 0; r < tp; r++)
          if (pids[r] > 0) kill(pids[r], SIGKILL);
    }
    usleep(20000);
  }
  free(pids);
  if (rc) return rc;
  return runner_failed_status ? err_set(runner_failed_status == 1 ? ERR_LAYOUT : ERR_DEVICE,
                                        "a rank process failed (exit status %d)", runner_failed_status)
                              : ERR_OK;
}

int runner_run(const struct eng_cfg *cfg, runner_fn fn, void *arg) {
  int tp = cfg->tp;
  if (runner_env_rank >= 0) return runner_rank_process(cfg, fn, arg);
  /* the split rules once, here, so a model that cannot be split tp ways fails with one message
   * instead of one per rank */
  struct wt_dims d;
  int rc0 = wt_dims_init(cfg->m, tp, 0, &d);
  if (rc0) return rc0;
  int n_dev = runner_device_count();
  if (n_dev < tp)
    return err_set(ERR_DEVICE, "-tp %d needs %d GPUs, %d visible (CUDA_VISIBLE_DEVICES?)", tp, tp, n_dev);
  if (runner_argv && tp > 1) return runner_spawn(tp);
  struct runner_shared sh;
  memset(&sh, 0, sizeof sh);
  sh.cfg = cfg;
  sh.fn = fn;
  sh.arg = arg;
  pthread_mutex_init(&sh.mu, NULL);
  sh.comms = calloc((size_t)tp, sizeof *sh.comms);
  struct runner_thread *th = calloc((size_t)tp, sizeof *th);
  if (!sh.comms || !th) {
    free(sh.comms);
    free(th);
    return err_set(ERR_NOMEM, "out of memory");
  }
  int rc = tp > 1 ? comm_unique_id(sh.id) : ERR_OK;
  if (rc) {
    free(sh.comms);
    free(th);
    return rc;
  }
  for (int r = 0; r < tp; r++) {
    th[r].sh = &sh;
    th[r].rank = r;
    pthread_create(&th[r].th, NULL, runner_main, &th[r]);
  }
  /* Watch: once a rank failed, give the others a few seconds to notice on their own, then
   * abort the communicators so none stays blocked in a collective. */
  int aborted = 0;
  double failed_at = -1;
  for (;;) {
    pthread_mutex_lock(&sh.mu);
    int done = sh.n_done, failed = sh.failed;
    pthread_mutex_unlock(&sh.mu);
    if (done == tp) break;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double t = now.tv_sec + now.tv_nsec * 1e-9;
    if (failed && failed_at < 0) failed_at = t;
    if (failed && !aborted && t - failed_at > 5.0) {
      for (int r = 0; r < tp; r++) comm_abort(&sh.comms[r]);
      aborted = 1;
    }
    usleep(20000);
  }
  for (int r = 0; r < tp; r++) pthread_join(th[r].th, NULL);
  for (int r = 0; r < tp; r++) comm_destroy(&sh.comms[r]);
  rc = sh.failed ? err_set(sh.first_rc, "%s", sh.msg) : ERR_OK;
  pthread_mutex_destroy(&sh.mu);
  free(sh.comms);
  free(th);
  return rc;
}
