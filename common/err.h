/* err: status codes and the one-line error message every module returns through.
 *
 * Every fallible call returns an int status (ERR_OK = 0). The detail lives in a thread-local
 * buffer set by err_set() and read by err_msg(), as sqlite3_errmsg() does: callers that only
 * propagate a failure return the code unchanged and never touch the message. The CLI prints
 * err_msg() on one line and maps the code to an exit status with err_exit_code(). */
#ifndef SERVESIM_ERR_H
#define SERVESIM_ERR_H

#include <stdio.h>

enum {
  ERR_OK = 0,
  ERR_INPUT = 1,   /* malformed input: JSON, CSV, a flag or its value; exit 2 */
  ERR_NOENT = 2,   /* missing file or unknown name; exit 2 */
  ERR_IO = 3,      /* read/write failure, full disk; exit 2 */
  ERR_NOMEM = 4,   /* host allocation failed or a pool ran dry; exit 2 */
  ERR_DB = 5,      /* SQLite failure; exit 2 */
  ERR_LAYOUT = 6,  /* the deployment cannot run (rule failed); exit 1 */
  ERR_DEVICE = 7,  /* CUDA / NCCL failure, GPU out of memory; exit 2 */
  ERR_INTERNAL = 8 /* invariant broken: a bug; exit 3 */
};

/* Sets the thread's message (printf format) and returns code, so `return err_set(...)` works. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to the current message (adds context on the way up); returns code. */
int err_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *err_msg(void);
void err_clear(void);
/* Process exit status for a status code: 0 ok, 1 layout rejected, 2 bad input/env, 3 bug. */
int err_exit_code(int code);
/* Prints "servesim: <message>" on stderr, one line. */
void err_print(const char *prog);

/* Invariant check: prints file:line and the formatted values, then aborts. For bugs, not input. */
#define ERR_ASSERT(cond, ...)                                                          \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);     \
      fprintf(stderr, __VA_ARGS__);                                                    \
      fputc('\n', stderr);                                                             \
      abort();                                                                         \
    }                                                                                  \
  } while (0)

#include <stdlib.h>

#endif
