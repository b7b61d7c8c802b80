/* test_attn_plan: the block split of the paged attention kernel (kernels/attn_plan.h), which the
 * GPU kernel trusts for memory safety and coverage: every key of every token lies in a part the
 * grid has; a part never exceeds ATTN_PART_MAX keys; the workspace an engine sizes once for its
 * largest step covers every smaller call, either head choice, every kv-head count; the head rule
 * picks one head per block exactly below ATTN_TARGET_BLOCKS / 4 grouped blocks. */
#include "kernels/attn_plan.h"
#include "tests/check.h"

static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* Every token context n in 1..max_context of a call with `parts` parts: keys per part a multiple
 * of the quantum, <= ATTN_PART_MAX, and parts * keys >= n (no key left out). */
static int check_cover(int max_context, int parts) {
  int bad = 0;
  for (int n = 1; n <= max_context; n += n < 300 ? 1 : 37) {
    const int k = attn_plan_part_keys(n, parts);
    bad += k % ATTN_PART_QUANTUM != 0 || k > ATTN_PART_MAX || (int64_t)k * parts < n || k < 1;
  }
  return bad;
}

int main(void) {
  static const int ctxs[] = {1, 17, 128, 129, 512, 513, 600, 1152, 4096, 8193, 32768};
  static const int nqs[] = {1, 4, 8, 16, 32, 64};
  int n_calls = 0;
  for (size_t ci = 0; ci < sizeof ctxs / sizeof ctxs[0]; ci++) {
    const int C = ctxs[ci];
    for (size_t qi = 0; qi < sizeof nqs / sizeof nqs[0]; qi++) {
      const int nq = nqs[qi], D = 128, T_max = 300;
      const size_t ws = attn_plan_workspace_bytes(T_max, nq, D, C);
      for (int nkv = 1; nkv <= nq; nkv *= 2) {
        if (nq % nkv) continue;
        for (int T = 1; T <= T_max; T += T < 40 ? 1 : 13) {
          for (int f = 0; f < 3; f++) {
            const char *force = f == 0 ? NULL : f == 1 ? "split" : "group";
            const int hpb = attn_plan_heads_per_block(T, nq, nkv, C, force);
            const int parts = attn_plan_parts((int64_t)T * (nq / hpb), C);
            CHECK_MSG(hpb == 1 || hpb == nq / nkv, "heads per block %d of a group of %d", hpb, nq / nkv);
            CHECK_MSG(parts >= cdiv(C, ATTN_PART_MAX) && parts >= 1, "C=%d: %d parts", C, parts);
            CHECK_MSG(parts <= cdiv(C, ATTN_PART_QUANTUM) || parts == cdiv(C, ATTN_PART_MAX),
                      "C=%d: %d parts, finer than the quantum", C, parts);
            CHECK_MSG(attn_plan_call_bytes(T, nq, D, parts) <= ws,
                      "T=%d nq=%d nkv=%d C=%d force=%d: call needs %zu > workspace %zu", T, nq, nkv, C, f,
                      attn_plan_call_bytes(T, nq, D, parts), ws);
            n_calls++;
          }
        }
      }
    }
    for (int parts = 1; parts <= cdiv(C, ATTN_PART_QUANTUM) && parts <= 300; parts++)
      if (parts >= cdiv(C, ATTN_PART_MAX)) CHECK_MSG(check_cover(C, parts) == 0, "C=%d parts=%d: keys left out", C, parts);
  }
  /* the head rule at its line: 16 heads on one kv head, 1152 keys (9 quanta): grouped blocks
   * T * 9 < 128 <=> T <= 14 */
  CHECK(attn_plan_heads_per_block(1, 16, 1, 1152, NULL) == 1);
  CHECK(attn_plan_heads_per_block(14, 16, 1, 1152, NULL) == 1);
  CHECK(attn_plan_heads_per_block(15, 16, 1, 1152, NULL) == 16);
  CHECK(attn_plan_heads_per_block(64, 16, 1, 1152, NULL) == 16);
  CHECK(attn_plan_heads_per_block(1, 4, 4, 1152, NULL) == 1); /* no group to split: G = 1 */
  CHECK(attn_plan_heads_per_block(64, 16, 1, 1152, "split") == 1);
  CHECK(attn_plan_heads_per_block(1, 16, 1, 1152, "group") == 16);
  /* batch-1 decode over 1152 keys: one head per block, 9 parts of 128 keys -> 144 blocks */
  CHECK(attn_plan_parts(16, 1152) == 9);
  CHECK(attn_plan_part_keys(1025, 9) == 128);
  /* a prefill of 8192 tokens keeps the old 512-key bound: 8 parts at 4096 keys */
  CHECK(attn_plan_parts(8192, 4096) == 8);
  CHECK(attn_plan_workspace_bytes(8192, 16, 128, 128) == 0); /* one part: no workspace */
  CHECK(n_calls > 10000);
  return check_report("test_attn_plan");
}
