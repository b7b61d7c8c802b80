/* burstgpt: reader for the BurstGPT CSV (Wang et al., KDD 2025): Timestamp (seconds from 00:00
 * of the trace's first day), Model, Request tokens, Response tokens, Total tokens, Log Type.
 * `Response tokens == 0` marks a failed request: trace_read_add lists it in n_failed /
 * failed_line and keeps it out of the runnable trace unless keep_failed. Total tokens must
 * equal request + response (true on every row of the published file), so a shifted or
 * corrupted row is caught rather than replayed with wrong lengths. */
#include "common/err.h"
#include "traces/formats.h"

static int burstgpt_row(struct trace_rd *rd, const struct csvrow *c, const int *col) {
  int64_t ts, in, out, total;
  const char *why;
  const char *f_ts = c->field[col[0]], *f_in = c->field[col[1]], *f_out = c->field[col[2]];
  if ((why = numparse_sec_ns(f_ts, &ts)))
    return trace_read_bad(rd, c->line_no, "Timestamp '%.40s': %s", f_ts, why);
  if (ts < 0) return trace_read_bad(rd, c->line_no, "Timestamp '%.40s': negative", f_ts);
  if ((why = numparse_i64(f_in, INT32_MIN, INT32_MAX, &in)))
    return trace_read_bad(rd, c->line_no, "Request tokens '%.40s': %s", f_in, why);
  if ((why = numparse_i64(f_out, INT32_MIN, INT32_MAX, &out)))
    return trace_read_bad(rd, c->line_no, "Response tokens '%.40s': %s", f_out, why);
  if (col[3] >= 0) {
    const char *f_tot = c->field[col[3]];
    if ((why = numparse_i64(f_tot, INT64_MIN, INT64_MAX, &total)))
      return trace_read_bad(rd, c->line_no, "Total tokens '%.40s': %s", f_tot, why);
    if (total != in + out)
      return trace_read_bad(rd, c->line_no, "Total tokens %lld != Request %lld + Response %lld",
                            (long long)total, (long long)in, (long long)out);
  }
  struct trace_req r = {.arrival_ns = ts, .in_tok = (int32_t)in, .out_tok = (int32_t)out,
                        .prefix_id = -1, .prefix_tok = 0};
  return trace_read_add(rd, c->line_no, &r);
}

int burstgpt_read(struct trace_rd *rd) {
  static const char *const names[] = {"Timestamp", "Request tokens", "Response tokens",
                                      "Total tokens"};
  static const int required[] = {1, 1, 1, 0};
  return trace_read_csv(rd, "BurstGPT", names, required, 4, 0, burstgpt_row);
}
