/* test_sched: vLLM V1 scheduling table cases — token budget, chunked prefill, max_num_seqs,
 * recompute preemption (newest first, back to the FRONT of the waiting queue, no admissions on a
 * preempting step), and PP micro-batches over disjoint request sets. */
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "sim/sched.h"

static struct seq seqs[16];
static struct sched S;
static struct sched_batch B;

static void setup(int n, const int *in_tok, int out_tok, int64_t kv_blocks, int max_seqs, int budget) {
  sched_destroy(&S);
  sched_batch_destroy(&B);
  for (int i = 0; i < n; i++) seq_init(&seqs[i], in_tok[i], out_tok);
  CHECK(sched_init(&S, seqs, kv_blocks, 16, 0, max_seqs, budget, 16) == 0);
  CHECK(sched_batch_init(&B, max_seqs) == 0);
  for (int i = 0; i < n; i++) CHECK(sched_add(&S, i) == 0);
}

/* "id:n_new,id:n_new,..." of the last batch */
static const char *batch_str(void) {
  static char buf[256];
  int k = 0;
  buf[0] = '\0';
  for (int i = 0; i < B.n; i++) k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%d:%d", i ? "," : "", B.ids[i], B.n_new[i]);
  return buf;
}

static const char *waiting_str(void) {
  static char buf[256];
  int k = 0;
  buf[0] = '\0';
  for (int64_t i = 0; i < S.w_n; i++)
    k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%d", i ? "," : "", S.waiting[(S.w_head + i) % S.w_cap]);
  return buf;
}

#define STEP_IS(want)                                                                     \
  do {                                                                                    \
    sched_step(&S, &B);                                                                   \
    CHECK_MSG(!strcmp(batch_str(), want), "batch [%s], want [%s]", batch_str(), want);    \
    CHECK_MSG(sched_check(&S) == 0, "%s", err_msg());                                     \
  } while (0)

int main(void) {
  /* token budget: 100 + 100 + the first 50 of the third prompt; the fourth waits */
  int in4[4] = {100, 100, 100, 100};
  setup(4, in4, 5, 1000, 8, 250);
  STEP_IS("0:100,1:100,2:50");
  CHECK(B.n_tok == 250 && B.n_sample == 2 && B.sample[2] == 0);
  sched_complete(&S, &B);
  /* decodes of 0 and 1 first, then the rest of 2's prompt, then 3 within the budget */
  STEP_IS("0:1,1:1,2:50,3:100");
  CHECK(B.n_decode == 2 && B.n_ctx[2] == 50 && B.n_ctx[0] == 100);
  sched_complete(&S, &B);

  /* chunked prefill of one long prompt: 2048, 2048, 904; a token only after the last chunk */
  int in1[1] = {5000};
  setup(1, in1, 3, 1000, 8, 2048);
  STEP_IS("0:2048");
  CHECK(B.sample[0] == 0);
  sched_complete(&S, &B);
  STEP_IS("0:2048");
  sched_complete(&S, &B);
  STEP_IS("0:904");
  CHECK(B.sample[0] == 1 && B.n_ctx[0] == 4096);
  sched_complete(&S, &B);
  CHECK(seqs[0].n_out == 1);
  STEP_IS("0:1");
  sched_complete(&S, &B);
  STEP_IS("0:1");
  sched_complete(&S, &B);
  CHECK(seqs[0].status == SEQ_FINISHED && S.n_running == 0 && S.kv.n_free == 1000);

  /* max_num_seqs caps the running set */
  int in5[5] = {10, 10, 10, 10, 10};
  setup(5, in5, 4, 1000, 3, 4096);
  STEP_IS("0:10,1:10,2:10");
  CHECK(S.w_n == 2 && S.n_running == 3);
  sched_complete(&S, &B);

  /* preemption: 4 prompts of 32 tokens fill an 8-block pool; each decode needs a third block */
  int in32[4] = {32, 32, 32, 32};
  setup(4, in32, 10, 8, 8, 4096);
  STEP_IS("0:32,1:32,2:32,3:32");
  CHECK(S.kv.n_free == 0);
  sched_complete(&S, &B);
  /* request 0 evicts 3 (the newest); 1 takes the last free block; 2 finds no victim but itself
   * and evicts itself: 2 ends up in FRONT of 3 */
  STEP_IS("0:1,1:1");
  CHECK(B.n_preempted == 2 && S.n_preemptions == 2);
  CHECK_MSG(!strcmp(waiting_str(), "2,3"), "waiting [%s], want [2,3]", waiting_str());
  CHECK(seqs[3].status == SEQ_WAITING && seqs[3].n_computed == 0 && seqs[3].n_recompute == 32 &&
        seqs[3].n_preempt == 1 && seqs[3].n_out == 1);
  sched_complete(&S, &B);
  /* 2 needs 33 tokens = 3 blocks, 2 are free: it stays at the front, nothing is admitted */
  STEP_IS("0:1,1:1");
  CHECK_MSG(!strcmp(waiting_str(), "2,3"), "waiting [%s]", waiting_str());
  /* finish 0 and 1, then 2 recomputes prompt + its generated token (33) */
  for (;;) {
    sched_complete(&S, &B);
    if (seqs[0].status == SEQ_FINISHED) break;
    sched_step(&S, &B);
  }
  CHECK(seqs[1].status == SEQ_FINISHED && S.kv.n_free == 8);
  STEP_IS("2:33,3:33");
  CHECK(B.n_recompute_tok == 64 && B.n_sample == 2);
  sched_complete(&S, &B);
  CHECK(seqs[2].n_out == 2);

  /* a waiting request is not admitted on a step that preempted */
  int in3[3] = {32, 32, 16};
  setup(2, in3, 10, 4, 8, 4096);
  STEP_IS("0:32,1:32");
  sched_complete(&S, &B);
  seq_init(&seqs[2], 16, 4);
  CHECK(sched_add(&S, 2) == 0);
  STEP_IS("0:1");  /* 1 evicted; 2 (one block would fit now) must wait for the next step */
  CHECK_MSG(!strcmp(waiting_str(), "1,2"), "waiting [%s]", waiting_str());

  /* PP: micro-batches in flight hold disjoint requests (decodes whose token is out are skipped) */
  int inpp[4] = {100, 100, 100, 100};
  setup(4, inpp, 5, 1000, 8, 200);
  struct sched_batch B2;
  CHECK(sched_batch_init(&B2, 8) == 0);
  STEP_IS("0:100,1:100");           /* micro-batch 1 */
  sched_step(&S, &B2);              /* micro-batch 2 while 1 is in flight */
  CHECK(B2.n == 2 && B2.ids[0] == 2 && B2.ids[1] == 3);
  sched_complete(&S, &B);           /* micro-batch 1 returns: 0 and 1 have their first token */
  STEP_IS("0:1,1:1");               /* 2 and 3 are still in flight: skipped */
  struct sched_batch B3;
  CHECK(sched_batch_init(&B3, 8) == 0);
  sched_step(&S, &B3);              /* everyone is in flight: nothing to run */
  CHECK(B3.n == 0);
  sched_complete(&S, &B2);
  sched_step(&S, &B3);
  CHECK(B3.n == 2 && B3.ids[0] == 2 && B3.ids[1] == 3 && B3.n_new[0] == 1);
  sched_batch_destroy(&B2);
  sched_batch_destroy(&B3);

  /* prefix caching: 1 shares its first 96 tokens (6 blocks) with 0; admitted after 0 was
   * scheduled, it computes only the rest and attends over the 96 cached tokens */
  sched_destroy(&S);
  sched_batch_destroy(&B);
  seq_init(&seqs[0], 200, 3);
  seq_init(&seqs[1], 150, 3);
  seq_set_prefix(&seqs[0], 0, 7, 96, 16);
  seq_set_prefix(&seqs[1], 1, 7, 96, 16);
  CHECK(sched_init(&S, seqs, 100, 16, 1, 8, 4096, 16) == 0);
  CHECK(sched_batch_init(&B, 8) == 0);
  CHECK(sched_add(&S, 0) == 0);
  STEP_IS("0:200");
  CHECK(B.n_hit_tok == 0);
  CHECK(sched_add(&S, 1) == 0);
  sched_complete(&S, &B);
  STEP_IS("0:1,1:54");
  CHECK(B.n_hit_tok == 96 && B.n_ctx[1] == 96 && S.n_hit_tok == 96);
  CHECK(S.kv.n_free == 100 - 13 - 4);  /* 0 holds 13 blocks, 1 adds 4 of its own */
  sched_complete(&S, &B);

  sched_destroy(&S);
  sched_batch_destroy(&B);
  return check_report("test_sched");
}
