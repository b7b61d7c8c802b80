/* progress: terminal progress bar (see progress.h). */
#include "common/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_BAR_W 30

static int64_t progress_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void progress_start(struct progress *p, const char *label, const char *unit, int64_t total,
                    int force) {
  memset(p, 0, sizeof *p);
  const char *off = getenv("SERVESIM_NO_PROGRESS");
  if (force >= 0)
    p->enabled = force;
  else
    p->enabled = isatty(STDERR_FILENO) && !(off && *off && strcmp(off, "0"));
  snprintf(p->label, sizeof p->label, "%s", label ? label : "");
  snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
  atomic_store(&p->total, total);
  atomic_store(&p->done, 0);
  p->t_start_ns = progress_now_ns();
  pthread_mutex_init(&p->mu, NULL);
}

void progress_format(const struct progress *p, int64_t now_ns, char *buf, int buf_len) {
  int64_t done = atomic_load(&p->done), total_set = atomic_load(&p->total);
  int64_t total = total_set > 0 ? total_set : 1;
  if (done > total) done = total;
  int fill = (int)(done * PROGRESS_BAR_W / total);
  char bar[PROGRESS_BAR_W + 1];
  for (int i = 0; i < PROGRESS_BAR_W; i++) bar[i] = i < fill ? '#' : '.';
  bar[PROGRESS_BAR_W] = '\0';
  double el_s = (double)(now_ns - p->t_start_ns) * 1e-9;
  /* The ETA assumes the remaining units cost what the finished ones did on average. */
  char eta[32] = "";
  if (done > 0 && done < total) snprintf(eta, sizeof eta, ", eta %.0f s", el_s * (double)(total - done) / (double)done);
  snprintf(buf, (size_t)buf_len, "%s [%s] %lld/%lld %s %.1f s%s", p->label, bar, (long long)done,
           (long long)total_set, p->unit, el_s, eta);
}

static void progress_draw(struct progress *p, int64_t now_ns) {
  char line[256];
  progress_format(p, now_ns, line, sizeof line);
  /* \r and erase-to-end-of-line: the line shrinks cleanly when the ETA gets shorter. */
  fprintf(stderr, "\r%s\033[K", line);
  fflush(stderr);
  p->drawn = 1;
  p->t_drawn_ns = now_ns;
}

void progress_add(struct progress *p, int64_t n) {
  atomic_fetch_add(&p->done, n);
  if (p->enabled <= 0) return;
  int64_t now = progress_now_ns();
  if (now - p->t_start_ns < (int64_t)PROGRESS_DELAY_MS * 1000000) return;
  /* trylock: a worker never waits for another worker's redraw. */
  if (pthread_mutex_trylock(&p->mu) != 0) return;
  if (!p->drawn || now - p->t_drawn_ns >= (int64_t)PROGRESS_REDRAW_MS * 1000000) progress_draw(p, now);
  pthread_mutex_unlock(&p->mu);
}

void progress_add_total(struct progress *p, int64_t n) { atomic_fetch_add(&p->total, n); }

void progress_end(struct progress *p) {
  if (p->enabled > 0 && p->drawn) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
  }
  if (p->enabled >= 0) pthread_mutex_destroy(&p->mu);
  p->drawn = 0;
  p->enabled = -1; /* ended: a second call does nothing */
}
