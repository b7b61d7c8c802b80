/* plan_pool: a parallel-for over candidate indices on a fixed set of threads.
 *
 * Workers claim the next index from one atomic counter, so a slow candidate (a long rate search)
 * never leaves cores idle behind a static split. Which thread runs which index varies from run
 * to run; determinism comes from the tasks writing only their own slot, indexed by i, and from
 * reporting the failure of lowest index (its code and message) rather than the first to happen. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/err.h"
#include "sim/plan.h"

struct plan_pool {
  int n_tasks;
  int (*task)(void *ctx, int i);
  void *ctx;
  _Atomic int next;
  int first_fail;            /* lowest failed index, n_tasks when none (under mu) */
  int first_rc;
  char first_msg[1024];      /* its err_msg(): messages are thread-local, so copied here */
  pthread_mutex_t mu;
};

static void plan_pool_work(struct plan_pool *p) {
  for (;;) {
    int i = atomic_fetch_add(&p->next, 1);
    if (i >= p->n_tasks) return;
    int rc = p->task(p->ctx, i);
    if (rc) {
      pthread_mutex_lock(&p->mu);
      if (i < p->first_fail) {
        p->first_fail = i;
        p->first_rc = rc;
        snprintf(p->first_msg, sizeof p->first_msg, "%s", err_msg());
      }
      pthread_mutex_unlock(&p->mu);
    }
  }
}

static void *plan_pool_thread(void *arg) {
  plan_pool_work(arg);
  return NULL;
}

int plan_pool_ncpu(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : (int)n;
}

int plan_pool_run(int n_tasks, int n_threads, int (*task)(void *ctx, int i), void *ctx) {
  if (n_tasks <= 0) return ERR_OK;
  if (n_threads < 1) n_threads = 1;
  if (n_threads > n_tasks) n_threads = n_tasks;
  struct plan_pool p = {.n_tasks = n_tasks, .task = task, .ctx = ctx};
  atomic_init(&p.next, 0);
  p.first_fail = n_tasks;
  pthread_mutex_init(&p.mu, NULL);
  pthread_t *th = calloc((size_t)n_threads, sizeof *th);
  if (!th) {
    pthread_mutex_destroy(&p.mu);
    return err_set(ERR_NOMEM, "plan: out of memory for %d threads", n_threads);
  }
  /* The calling thread is worker 0; a failed pthread_create only means fewer workers. */
  int started = 0;
  for (int t = 1; t < n_threads; t++)
    if (pthread_create(&th[started], NULL, plan_pool_thread, &p) == 0) started++;
  plan_pool_work(&p);
  for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
  free(th);
  pthread_mutex_destroy(&p.mu);
  if (p.first_fail == n_tasks) return ERR_OK;
  return err_set(p.first_rc, "%s", p.first_msg);
}
