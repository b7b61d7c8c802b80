/* lengths: reader for a length-only CSV, such as the ShareGPT first-turn lengths file
 * (num_prefill_tokens, num_decode_tokens; other columns ignored). It has no arrival times, so
 * every request arrives at 0: read as a trace it is a closed-loop request list, and it is what
 * `trace gen --lengths-from` resamples (input, output) pairs from. */
#include "common/err.h"
#include "traces/formats.h"

static int lengths_row(struct trace_rd *rd, const struct csvrow *c, const int *col) {
  int64_t in, out;
  const char *why;
  const char *f_in = c->field[col[0]], *f_out = c->field[col[1]];
  if ((why = numparse_i64(f_in, INT32_MIN, INT32_MAX, &in)))
    return trace_read_bad(rd, c->line_no, "num_prefill_tokens '%.40s': %s", f_in, why);
  if ((why = numparse_i64(f_out, INT32_MIN, INT32_MAX, &out)))
    return trace_read_bad(rd, c->line_no, "num_decode_tokens '%.40s': %s", f_out, why);
  struct trace_req r = {.arrival_ns = 0, .in_tok = (int32_t)in, .out_tok = (int32_t)out,
                        .prefix_id = -1, .prefix_tok = 0};
  return trace_read_add(rd, c->line_no, &r);
}

int lengths_read(struct trace_rd *rd) {
  static const char *const names[] = {"num_prefill_tokens", "num_decode_tokens"};
  static const int required[] = {1, 1};
  return trace_read_csv(rd, "lengths", names, required, 2, 0, lengths_row);
}
