/* azure: reader for the Azure LLM inference trace CSV (Splitwise 2023; the 2024 week-long files
 * share the columns): TIMESTAMP (absolute wall-clock, 7 fractional digits, optional time-zone
 * offset), ContextTokens, GeneratedTokens. CRLF line endings. Arrivals become integer ns
 * relative to the first row, computed from the civil date without a double in the path. */
#include "common/err.h"
#include "traces/formats.h"

static int azure_row(struct trace_rd *rd, const struct csvrow *c, const int *col) {
  int64_t ts, in, out;
  const char *why;
  const char *f_ts = c->field[col[0]], *f_in = c->field[col[1]], *f_out = c->field[col[2]];
  if ((why = numparse_datetime_ns(f_ts, &ts)))
    return trace_read_bad(rd, c->line_no, "TIMESTAMP '%.40s': %s", f_ts, why);
  if ((why = numparse_i64(f_in, INT32_MIN, INT32_MAX, &in)))
    return trace_read_bad(rd, c->line_no, "ContextTokens '%.40s': %s", f_in, why);
  if ((why = numparse_i64(f_out, INT32_MIN, INT32_MAX, &out)))
    return trace_read_bad(rd, c->line_no, "GeneratedTokens '%.40s': %s", f_out, why);
  struct trace_req r = {.arrival_ns = ts, .in_tok = (int32_t)in, .out_tok = (int32_t)out,
                        .prefix_id = -1, .prefix_tok = 0};
  return trace_read_add(rd, c->line_no, &r);
}

int azure_read(struct trace_rd *rd) {
  static const char *const names[] = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"};
  static const int required[] = {1, 1, 1};
  return trace_read_csv(rd, "Azure", names, required, 3, 0, azure_row);
}
