/* runner: a thread, a GPU, a communicator and an engine per TP rank (see runner.h). */
#include "exec/runner.h"

#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

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
  /* the kernel driver's version string (what nvidia-smi prints); the CUDA driver API number
   * otherwise */
  FILE *f = fopen("/proc/driver/nvidia/version", "r");
  char line[512] = "";
  if (f && fgets(line, sizeof line, f)) {
    const char *p = strstr(line, "Kernel Module");
    if (p) {
      p += strlen("Kernel Module");
      while (*p == ' ' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-') p++;
      int i = 0;
      while (p[i] && p[i] != ' ' && i < driver_n - 1) {
        driver[i] = p[i];
        i++;
      }
      driver[i] = '\0';
    }
  } else {
    int dv = 0;
    cudaDriverGetVersion(&dv);
    snprintf(driver, (size_t)driver_n, "cuda-driver-api %d.%d", dv / 1000, (dv % 1000) / 10);
  }
  if (f) fclose(f);
}

int runner_run(const struct eng_cfg *cfg, runner_fn fn, void *arg) {
  int tp = cfg->tp, n_dev = runner_device_count();
  if (n_dev < tp)
    return err_set(ERR_DEVICE, "-tp %d needs %d GPUs, %d visible (CUDA_VISIBLE_DEVICES?)", tp, tp, n_dev);
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
