/* seq: request state helpers. See seq.h. */
#include "sim/seq.h"

#include <string.h>

void seq_init(struct seq *s, int32_t in_tok, int32_t out_tok) {
  memset(s, 0, sizeof *s);
  s->in_tok = in_tok;
  s->out_tok = out_tok;
  s->status = SEQ_PENDING;
  s->replica = -1;
  kv_seq_init(&s->kv, -1, -1, 0, 0);
}

void seq_set_prefix(struct seq *s, int32_t id, int32_t group, int32_t group_tok, int block_size) {
  kv_seq_init(&s->kv, id, group, group_tok, block_size);
}

const char *seq_status_name(int status) {
  switch (status) {
    case SEQ_PENDING: return "pending";
    case SEQ_WAITING: return "waiting";
    case SEQ_RUNNING: return "running";
    case SEQ_FINISHED: return "finished";
    case SEQ_FAILED: return "failed";
  }
  return "?";
}
