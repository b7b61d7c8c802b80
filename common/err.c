/* err: thread-local one-line error messages and status-to-exit-code mapping. */
#include "common/err.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char err_buf[1024];

int err_set(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
  return code;
}

int err_wrap(int code, const char *fmt, ...) {
  char prefix[256], old[sizeof err_buf];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err_buf, sizeof old);
  snprintf(err_buf, sizeof err_buf, "%.255s: %.760s", prefix, old);
  return code;
}

const char *err_msg(void) { return err_buf[0] ? err_buf : "unknown error"; }

void err_clear(void) { err_buf[0] = '\0'; }

int err_exit_code(int code) {
  switch (code) {
    case ERR_OK: return 0;
    case ERR_LAYOUT: return 1;
    case ERR_INTERNAL: return 3;
    default: return 2;
  }
}

void err_print(const char *prog) {
  /* One line: newlines inside a message (e.g. from SQLite) are flattened. */
  char line[sizeof err_buf];
  snprintf(line, sizeof line, "%s", err_msg());
  for (char *p = line; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  fprintf(stderr, "%s: %s\n", prog ? prog : "servesim", line);
}
