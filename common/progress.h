/* progress: a one-line progress bar on stderr for work that takes more than a moment.
 *
 * Drawn only when stderr is a terminal (never into logs, pipes or test output) and only once
 * the work has run for PROGRESS_DELAY_MS, so quick runs print nothing. progress_add() is safe
 * from any number of threads: the count is atomic and one mutex serialises the redraw, which
 * happens at most every PROGRESS_REDRAW_MS. SERVESIM_NO_PROGRESS=1 turns it off. */
#ifndef SERVESIM_PROGRESS_H
#define SERVESIM_PROGRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define PROGRESS_DELAY_MS 500
#define PROGRESS_REDRAW_MS 100

struct progress {
  int enabled;               /* 1 draws, 0 silent, -1 ended (progress_end ran) */
  int drawn;                 /* something is on the line: progress_end clears it */
  char label[48];            /* "plan", shown before the bar */
  char unit[24];             /* "candidates", shown after the count */
  _Atomic int64_t total;
  _Atomic int64_t done;
  int64_t t_start_ns;        /* CLOCK_MONOTONIC */
  int64_t t_drawn_ns;        /* last redraw */
  pthread_mutex_t mu;        /* serialises redraws */
};

/* force: -1 = decide from isatty(stderr), 0 = off, 1 = on (tests draw into a pipe). */
void progress_start(struct progress *p, const char *label, const char *unit, int64_t total,
                    int force);
/* Adds n finished units; may redraw. */
void progress_add(struct progress *p, int64_t n);
/* Grows the total (a search that discovers more work, e.g. rate bisection steps). */
void progress_add_total(struct progress *p, int64_t n);
/* Clears the line if anything was drawn; safe to call twice. */
void progress_end(struct progress *p);
/* Renders the line into buf (no redraw): the bar's text, exposed for tests. */
void progress_format(const struct progress *p, int64_t now_ns, char *buf, int buf_len);

#endif
