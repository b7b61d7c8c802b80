/* test_ws_cost: the wgmma W4A16 kernel's schedule model (kernels/ws_cost.h) on the CPU.
 * - ws_cost_splits is the cheapest allowed split by ws_cost_split (the fewest splits among equals),
 *   against brute force on random grids and cluster capacities;
 * - ws_cost_schedule takes an allowed forced split (and then never stream-K), takes stream-K only
 *   where the workspace holds its flags and slots, and costs what it took;
 * - on the H200's capacities (one block an SM: 132 SMs, clusters of 2..8 fit 132, 117, 120,
 *   110, 102, 105, 120 blocks; the 64-row kernel, two blocks an SM: 264, 264, 237, 248, 235, 234,
 *   224, 240 -- both as SERVESIM_W4WS_LOG printed them there), the Qwen3-235B shapes at 128 and
 *   256 rows take the schedules and tile heights they were measured with (kernels/NOTES.md
 *   items 14, 16 and 29, bench/RESULTS.md): 128 rows of 64 columns (one consumer warpgroup)
 *   for gate_up, down, o_proj/2, gate_up/2, down/2, qkv/4 and o_proj/4 at 128 and 256 rows,
 *   for qkv/2 at 128 and gate_up/4 at 256; 256 rows for qkv at TP=1; 64 rows for down at TP=4
 *   and gate_up at TP=4 with 128 rows; 128 rows of 192 columns (three consumer warpgroups) for
 *   o_proj at TP=1 with 128 rows; 128 x 128 elsewhere. A change of the constants that moves a
 *   choice fails here first, before a GPU says whether it is faster;
 * - ws_cost_stage_weights64 picks the 64-row kernel that brings its weights through the stages
 *   for the small grids it was measured faster on (test_stage_weights64);
 * - ws_cost_narrow64 picks 64-column tiles at 17..64 rows for the shapes they were measured
 *   faster on and not for those they lost at (test_narrow64);
 * - ws_cost_schedule_ksl costs a K-sliced tile as its busiest slice, and ws_cost_pick_slices puts
 *   the K-sliced tiles where the H200 sweep of kernels/NOTES.md item 30 measured them faster
 *   (test_slices). */
#include <stdlib.h>

#include "common/rng.h"
#include "kernels/ws_cost.h"
#include "tests/check.h"

static const int64_t kCap1[WS_COST_MAX_SPLITS + 1] = {0, 132, 132, 117, 120, 110, 102, 105, 120};
static const int64_t kCap2[WS_COST_MAX_SPLITS + 1] = {0, 264, 264, 237, 248, 235, 234, 224, 240};
/* the 64-column 64-row kernel (three blocks an SM), as SERVESIM_W4WS_LOG printed it on the H200;
 * the 128 x 64 kernel (two blocks an SM) printed kCap2's */
static const int64_t kCap3[WS_COST_MAX_SPLITS + 1] = {0, 396, 396, 372, 368, 345, 372, 329, 360};
static const int64_t kFlags = 16384, kFloats = (int64_t)160 * 256 * 128; /* the default workspace's room */

static void test_splits_brute(void) {
  struct rng r;
  rng_seed(&r, 11);
  for (int it = 0; it < 5000; it++) {
    const int q = rng_range(&r, 0, 1) ? 4 : 1;
    const int KC = q * (int)rng_range(&r, 1, 64);
    /* a quarter of the draws past 400 tiles: the wgmma path takes any row count since the
     * seventeenth session (qkv at 4096 rows: 9216 tiles of 64 rows) */
    const int64_t tiles = it % 4 == 3 ? rng_range(&r, 401, 20000) : rng_range(&r, 1, 400);
    int64_t cap[WS_COST_MAX_SPLITS + 1] = {0}; /* whole clusters of s, at least one */
    for (int s = 1; s <= WS_COST_MAX_SPLITS; s++) cap[s] = s * rng_range(&r, 1, 264 / s);
    const int sum_div = it % 2 ? 2 : 1; /* the 64 x 64 tiles count their cluster sum at half */
    int best = 1;
    int64_t bc = INT64_MAX;
    for (int s = 1; s <= WS_COST_MAX_SPLITS; s++) {
      if (!ws_cost_split_ok(s, KC, q)) continue;
      const int64_t c = ws_cost_split(tiles, KC, cap, q, s, sum_div);
      if (c < bc) bc = c, best = s;
    }
    const int got = ws_cost_splits(tiles, KC, cap, q, sum_div);
    CHECK_MSG(got == best, "tiles %lld KC %d q %d sum / %d: %d splits, brute force %d", (long long)tiles, KC, q, sum_div,
              got, best);
    CHECK(ws_cost_split_ok(got, KC, q) || got == 1);
  }
  /* the cost by hand: down at TP=1 in 64 x 64 tiles, 64 tiles of 24 chunks split 5 ways (320
   * blocks, one wave of kCap3's 345): 4 x 5 chunks + 6 + the sum's 8 + 4 x 4, or half of it */
  CHECK(ws_cost_split(64, 24, kCap3, 1, 5, 1) == 50 && ws_cost_split(64, 24, kCap3, 1, 5, 2) == 38);
  CHECK(ws_cost_split(64, 24, kCap3, 1, 6, 2) == 2 * (16 + 6 + 14)); /* 384 blocks: two waves */
  CHECK(ws_cost_split(64, 24, kCap3, 1, 1, 2) == 96 + 6);             /* no split, no sum */
  /* a split needs two quanta a split */
  CHECK(ws_cost_split_ok(3, 24, 4) && !ws_cost_split_ok(4, 24, 4) && !ws_cost_split_ok(9, 1000, 1) && !ws_cost_split_ok(0, 64, 1));
}

static void test_schedule_rules(void) {
  /* forced split: taken when allowed, never stream-K then */
  WsCostSched s = ws_cost_schedule(128, 2, 144, 64, 4, kCap1, 5, 2, 132, kFlags, kFloats);
  CHECK(s.splits == 5 && s.sk_blocks == 0 && s.blocks == 144 * 5 && s.cost_qc == ws_cost_split(144, 64, kCap1, 4, 5, 1));
  s = ws_cost_schedule(128, 2, 144, 64, 4, kCap1, 9, 0, 132, kFlags, kFloats); /* 9: not allowed, the model's */
  CHECK(s.splits == ws_cost_splits(144, 64, kCap1, 4, 1));
  s = ws_cost_schedule(128, 2, 144, 64, 4, kCap1, 9, 2, 132, kFlags, kFloats); /* any force: no stream-K */
  CHECK(s.splits == ws_cost_splits(144, 64, kCap1, 4, 1) && s.sk_blocks == 0);
  /* stream-K always (mode 2), but only with room: flags and rows / 2 x 256 floats a block */
  s = ws_cost_schedule(128, 2, 48, 64, 4, kCap1, 0, 2, 132, kFlags, kFloats);
  CHECK(s.sk_blocks == 132 && s.blocks == 132 && s.cost_qc == ws_cost_sk(48 * 16, 132, 4));
  s = ws_cost_schedule(128, 2, 48, 64, 4, kCap1, 0, 2, 132, 0, 0); /* no workspace */
  CHECK(s.sk_blocks == 0 && s.blocks == 48 * s.splits);
  s = ws_cost_schedule(256, 2, 48, 64, 4, kCap1, 0, 2, 132, kFlags, (int64_t)132 * 128 * 256 - 1); /* one float short */
  CHECK(s.sk_blocks == 0);
  /* three consumer warpgroups: slots of rows / 2 x 384 floats */
  CHECK(WS_COST_SK_SLOT_FLOATS(128, 3) == 64 * 384 && WS_COST_SK_SLOT_FLOATS(256, 2) == 128 * 256);
  s = ws_cost_schedule(128, 3, 48, 64, 4, kCap1, 0, 2, 132, kFlags, (int64_t)132 * 64 * 384);
  CHECK(s.sk_blocks == 132);
  s = ws_cost_schedule(128, 3, 48, 64, 4, kCap1, 0, 2, 132, kFlags, (int64_t)132 * 64 * 384 - 1);
  CHECK(s.sk_blocks == 0);
  s = ws_cost_schedule(128, 2, 48, 64, 4, kCap1, 0, 2, 132, 131, kFloats); /* one flag short */
  CHECK(s.sk_blocks == 0);
  /* fewer quanta than SMs: one block a quantum */
  s = ws_cost_schedule(128, 2, 2, 16, 4, kCap1, 0, 2, 132, kFlags, kFloats);
  CHECK(s.sk_blocks == 8);
  /* the rule (mode 1) never takes stream-K for 64-row tiles */
  s = ws_cost_schedule(64, 2, 288, 64, 1, kCap2, 0, 1, 132, kFlags, kFloats);
  CHECK(s.sk_blocks == 0);
  /* the tile: ties keep 128 x 128; no 256-row schedule below 129 rows */
  WsCostSched a = {1, 0, 100, 40}, b = {1, 0, 100, 30}, c = {1, 0, 100, 20}, w = {1, 0, 100, 1000};
  int nwg = 0;
  CHECK(ws_cost_pick_tile(&a, &b, NULL, &w, NULL, 0, 132, &nwg) == 128 && nwg == 2); /* 0.75 x 40 = 30: a tie */
  a.cost_qc = 39;
  CHECK(ws_cost_pick_tile(&a, &b, NULL, &w, NULL, 0, 132, &nwg) == 64 && nwg == 2);
  a.blocks = 132; /* one 64-row block on every SM still counts 0.75 */
  CHECK(ws_cost_pick_tile(&a, &b, NULL, &w, NULL, 0, 132, &nwg) == 64);
  a.blocks = 133; /* two 64-row blocks share an SM: 1.5 x 39 */
  CHECK(ws_cost_pick_tile(&a, &b, NULL, &w, NULL, 0, 132, &nwg) == 128);
  CHECK(ws_cost_pick_tile(&a, &b, &c, &w, NULL, 0, 132, &nwg) == 128); /* 1.5 x 20 = 30: a tie */
  c.cost_qc = 19;
  CHECK(ws_cost_pick_tile(&a, &b, &c, &w, NULL, 0, 132, &nwg) == 256 && nwg == 2);
  /* 256 rows only where cheaper than both others: 64 rows (0.75 x 30 = 22.5) under 256 (1.5 x
   * 16 = 24) under 128 (30) keeps 64 */
  WsCostSched a30 = {1, 0, 100, 30}, c16 = {1, 0, 100, 16};
  CHECK(ws_cost_pick_tile(&a30, &b, &c16, &w, NULL, 0, 132, &nwg) == 64 && nwg == 2);
  /* a 192-column chunk counts 1.175 of a 128-column one: 4.7 x 24 = 112.8 against 4 x 28.5 = 114
   * (c: 6 x 19) wins, 4.7 x 25 = 117.5 does not; equal costs keep 128 columns */
  w.cost_qc = 24;
  CHECK(ws_cost_pick_tile(&a, &b, &c, &w, NULL, 0, 132, &nwg) == 128 && nwg == 3);
  CHECK(ws_cost_pick_tile(&a, &b, &c, NULL, NULL, 0, 132, &nwg) == 256 && nwg == 2); /* no 192-column schedule */
  w.cost_qc = 25;
  CHECK(ws_cost_pick_tile(&a, &b, &c, &w, NULL, 0, 132, &nwg) == 256 && nwg == 2);
  WsCostSched b40 = {1, 0, 100, 47}, w40 = {1, 0, 100, 40};
  CHECK(ws_cost_pick_tile(&a, &b40, NULL, &w40, NULL, 0, 132, &nwg) == 128 && nwg == 2); /* 4 x 47 = 4.7 x 40 */
  /* a 64-column chunk counts 0.875 of a 128-column one: 3.5 x 34 = 119 against 4 x 30 = 120 wins,
   * 3.5 x 35 = 122.5 does not; nor does a schedule of more than WS_COST_NARROW_MAX_CHUNKS chunks
   * a block (KC 96 in 2 splits: 48; 97: 49, rounded up), nor stream-K */
  WsCostSched a100 = {1, 0, 200, 100}, b30 = {1, 0, 100, 30}, n34 = {2, 0, 200, 34};
  CHECK(ws_cost_pick_tile(&a100, &b30, NULL, NULL, &n34, 96, 132, &nwg) == 128 && nwg == 1);
  CHECK(ws_cost_pick_tile(&a100, &b30, NULL, NULL, &n34, 97, 132, &nwg) == 128 && nwg == 2);
  CHECK(ws_cost_pick_tile(&a100, &b30, NULL, NULL, NULL, 96, 132, &nwg) == 128 && nwg == 2);
  n34.cost_qc = 35;
  CHECK(ws_cost_pick_tile(&a100, &b30, NULL, NULL, &n34, 96, 132, &nwg) == 128 && nwg == 2);
  n34.cost_qc = 34;
  n34.sk_blocks = 132;
  CHECK(ws_cost_pick_tile(&a100, &b30, NULL, NULL, &n34, 96, 132, &nwg) == 128 && nwg == 2);
}

/* one shape at M rows as kern_w4a16_wgmma.cu plans it: 64-row tiles in quanta of 1 (its loop
 * steps 2 chunks), 128 / 256 in quanta of 4 where K is a multiple of 256; the 128 x 192 tiles
 * never stream-K (their clusters fit as the 128 x 128 ones do: one block an SM) */
static int pick_at(int M, int K, int N, WsCostSched *s64, WsCostSched *s128, WsCostSched *s256, WsCostSched *s128w3,
                   WsCostSched *s128w1, int *nwg) {
  const int KC = K / 64, q = K % 256 == 0 ? 4 : 1, tx = (N + 127) / 128, tx3 = (N + 191) / 192, tx1 = (N + 63) / 64;
  *s64 = ws_cost_schedule(64, 2, (int64_t)tx * ((M + 63) / 64), KC, 1, kCap2, 0, 1, 132, kFlags, kFloats);
  *s128 = ws_cost_schedule(128, 2, (int64_t)tx * ((M + 127) / 128), KC, q, kCap1, 0, 1, 132, kFlags, kFloats);
  *s256 = ws_cost_schedule(256, 2, (int64_t)tx * ((M + 255) / 256), KC, q, kCap1, 0, 1, 132, kFlags, kFloats);
  *s128w3 = ws_cost_schedule(128, 3, (int64_t)tx3 * ((M + 127) / 128), KC, q, kCap1, 0, 0, 132, kFlags, kFloats);
  *s128w1 = ws_cost_schedule(128, 1, (int64_t)tx1 * ((M + 127) / 128), KC, q, kCap2, 0, 0, 132, kFlags, kFloats);
  return ws_cost_pick_tile(s64, s128, M > 128 ? s256 : NULL, s128w3, s128w1, KC, 132, nwg);
}

static void test_qwen3_h200(void) {
  static const struct {
    const char *name;
    int K, N, rows128, rows256; /* the tile height taken at 128 and at 256 rows */
    int nwg128, nwg256;         /* and its consumer warpgroups (3: 192 columns, 1: 64) */
  } shapes[] = {
      {"qkv", 4096, 9216, 128, 256, 2, 2},      {"o_proj", 8192, 4096, 128, 128, 3, 2},
      {"gate_up", 4096, 3072, 128, 128, 1, 1},  {"down", 1536, 4096, 128, 128, 1, 1},
      {"qkv/2", 4096, 4608, 128, 128, 1, 2},    {"o_proj/2", 4096, 4096, 128, 128, 1, 1},
      {"gate_up/2", 4096, 1536, 128, 128, 1, 1}, {"down/2", 768, 4096, 128, 128, 1, 1},
      {"qkv/4", 4096, 2304, 128, 128, 1, 1},    {"o_proj/4", 2048, 4096, 128, 128, 1, 1},
      {"gate_up/4", 4096, 768, 64, 128, 2, 1},  {"down/4", 384, 4096, 64, 64, 2, 2},
  };
  WsCostSched s64, s128, s256, s128w3, s128w1;
  int nwg = 0;
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    const int p128 = pick_at(128, shapes[i].K, shapes[i].N, &s64, &s128, &s256, &s128w3, &s128w1, &nwg);
    CHECK_MSG(p128 == shapes[i].rows128 && nwg == shapes[i].nwg128,
              "%s at 128 rows: %d-row tiles of %d columns, measured best %d x %d", shapes[i].name, p128, 64 * nwg,
              shapes[i].rows128, 64 * shapes[i].nwg128);
    const int p256 = pick_at(256, shapes[i].K, shapes[i].N, &s64, &s128, &s256, &s128w3, &s128w1, &nwg);
    CHECK_MSG(p256 == shapes[i].rows256 && nwg == shapes[i].nwg256,
              "%s at 256 rows: %d-row tiles of %d columns, measured best %d x %d", shapes[i].name, p256, 64 * nwg,
              shapes[i].rows256, 64 * shapes[i].nwg256);
  }
  /* the schedules logged on the H200 (SERVESIM_W4WS_LOG=1) for qkv and gate_up at 256 rows, o_proj
   * at 128 (the 128 x 192 tiles without stream-K) */
  pick_at(256, 4096, 9216, &s64, &s128, &s256, &s128w3, &s128w1, &nwg);
  CHECK(s128.sk_blocks == 132 && s128.cost_qc == 302 && s256.sk_blocks == 132 && s256.cost_qc == 158);
  pick_at(256, 4096, 3072, &s64, &s128, &s256, &s128w3, &s128w1, &nwg);
  CHECK(s128.sk_blocks == 0 && s128.splits == 2 && s128.cost_qc == 146);
  CHECK(s256.sk_blocks == 0 && s256.splits == 4 && s256.cost_qc == 90);
  CHECK(s128w3.sk_blocks == 0 && s128w3.splits == 3 && s128w3.cost_qc == 118);
  pick_at(128, 8192, 4096, &s64, &s128, &s256, &s128w3, &s128w1, &nwg);
  CHECK(s128.cost_qc == 198 && s128w3.sk_blocks == 0 && s128w3.splits == 5 && s128w3.cost_qc == 142);
  /* down at TP=4 (K = 384): 32 tiles of 128 rows leave 100 SMs idle; 64 of 64 rows fit one an SM */
  pick_at(128, 384, 4096, &s64, &s128, &s256, &s128w3, &s128w1, &nwg);
  CHECK(s128.blocks == 32 && s64.blocks == 64 && s64.cost_qc == s128.cost_qc);
  /* past 2048 rows (kernels/NOTES.md item 37): o_proj and down at 4096 rows take the unsplit 256 x
   * 128 grid (512 tiles, four waves 97% full) rather than stream-K, as measured faster there
   * (o_proj 334 us against 513); qkv at 2048 rows (576 tiles, five waves 87% full) keeps
   * stream-K, measured faster (199 against 208) */
  CHECK(pick_at(4096, 8192, 4096, &s64, &s128, &s256, &s128w3, &s128w1, &nwg) == 256 && nwg == 2);
  CHECK(s256.sk_blocks == 0 && s256.splits == 1 && s256.blocks == 512);
  CHECK(pick_at(4096, 384, 4096, &s64, &s128, &s256, &s128w3, &s128w1, &nwg) == 256 && nwg == 2);
  CHECK(s256.sk_blocks == 0 && s256.splits == 1);
  CHECK(pick_at(2048, 4096, 9216, &s64, &s128, &s256, &s128w3, &s128w1, &nwg) == 256 && nwg == 2);
  CHECK(s256.sk_blocks == 132);
}

/* ws_cost_stage_weights64: the stages kernel for split grids of at most one block for every two
 * SMs, SERVESIM_W4WS_CFG 2 / 3 always / never, never against a stream-K schedule; and at 17..64
 * rows on the H200 (the register kernel's capacities standing in for the stages kernel's, which
 * were not logged) the two shapes it was measured faster at, gate_up and down at TP=4, and none
 * of the ten it was not (kernels/NOTES.md item 24). */
static void test_stage_weights64(void) {
  WsCostSched reg = {4, 0, 66, 40}, stg = {4, 0, 66, 40}, sk = {1, 132, 132, 30};
  CHECK(ws_cost_stage_weights64(&reg, &stg, 132, 0) == 1); /* 66 blocks on 132 SMs */
  stg.blocks = 67;
  CHECK(ws_cost_stage_weights64(&reg, &stg, 132, 0) == 0);
  CHECK(ws_cost_stage_weights64(&reg, &stg, 132, 2) == 1 && ws_cost_stage_weights64(&reg, &stg, 132, 1) == 0);
  stg.blocks = 8;
  CHECK(ws_cost_stage_weights64(&reg, &stg, 132, 3) == 0);
  CHECK(ws_cost_stage_weights64(&sk, &stg, 132, 0) == 0 && ws_cost_stage_weights64(&sk, &stg, 132, 2) == 0);
  CHECK(ws_cost_stage_weights64(&reg, &sk, 132, 2) == 0);
  static const struct {
    const char *name;
    int K, N, stages;
  } shapes[] = {
      {"qkv", 4096, 9216, 0},      {"o_proj", 8192, 4096, 0},   {"gate_up", 4096, 3072, 0}, {"down", 1536, 4096, 0},
      {"qkv/2", 4096, 4608, 0},    {"o_proj/2", 4096, 4096, 0}, {"gate_up/2", 4096, 1536, 0}, {"down/2", 768, 4096, 0},
      {"qkv/4", 4096, 2304, 0},    {"o_proj/4", 2048, 4096, 0}, {"gate_up/4", 4096, 768, 1}, {"down/4", 384, 4096, 1},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    const int64_t tiles = (shapes[i].N + 127) / 128;
    const int KC = shapes[i].K / 64;
    const WsCostSched r = ws_cost_schedule(64, 2, tiles, KC, 1, kCap2, 0, 1, 132, kFlags, kFloats);
    const WsCostSched t = ws_cost_schedule(64, 2, tiles, KC, 1, kCap2, 0, 0, 132, kFlags, kFloats);
    CHECK_MSG(ws_cost_stage_weights64(&r, &t, 132, 0) == shapes[i].stages, "%s at 64 rows: %d blocks, stages %d, measured %d",
              shapes[i].name, (int)t.blocks, ws_cost_stage_weights64(&r, &t, 132, 0), shapes[i].stages);
  }
}

/* ws_cost_narrow64: SERVESIM_W4WS_WG 1 / 2 always / never, never against stream-K, the
 * thresholds at their edges; and at 17..64 rows on the H200 the Qwen3 shapes and slices
 * (kernels/NOTES.md item 29, two runs each), as ws_run64 asks it (after the stages kernel's rule):
 * the 64 x 64 tiles where they were 0.35-1.1 us faster (down, o_proj/2, o_proj/4, qkv/4) and
 * down/2 with 4 splits (0.2-0.5), the 64 x 128 ones where the narrow tiles lost 0.2-2.7 us (qkv,
 * qkv/2, gate_up, gate_up/2) or tied (o_proj), the stages kernel at gate_up/4 and down/4; and the
 * narrow tiles' splits: half the cluster sum's count gives down 5, o_proj/4 5 and down/2 4
 * (measured faster than the full count's 4, 4 and 3), qkv/4 still 8 and o_proj/2 still 5. */
static void test_narrow64(void) {
  WsCostSched wide = {4, 0, 116, 50}, narrow = {4, 0, 232, 53}, sk = {1, 132, 132, 30};
  CHECK(ws_cost_narrow64(&wide, &narrow, 132, 0) == 1); /* 116 blocks >= 7/8 of 132; 53 <= 1.06 x 50 */
  CHECK(ws_cost_narrow64(&wide, &narrow, 132, 2) == 0 && ws_cost_narrow64(&wide, &narrow, 132, 1) == 1);
  wide.blocks = 115;
  CHECK(ws_cost_narrow64(&wide, &narrow, 132, 0) == 0 && ws_cost_narrow64(&wide, &narrow, 132, 1) == 1);
  narrow.splits = 5; /* a deeper split: the wide grid's blocks do not matter */
  CHECK(ws_cost_narrow64(&wide, &narrow, 132, 0) == 1);
  wide.blocks = 116;
  narrow.splits = 4;
  narrow.cost_qc = 54;
  CHECK(ws_cost_narrow64(&wide, &narrow, 132, 0) == 0);
  narrow.cost_qc = 53;
  narrow.splits = 3; /* one way fewer */
  CHECK(ws_cost_narrow64(&wide, &narrow, 132, 0) == 1);
  narrow.splits = 2;
  CHECK(ws_cost_narrow64(&wide, &narrow, 132, 0) == 0);
  narrow.splits = 4;
  CHECK(ws_cost_narrow64(&sk, &narrow, 132, 0) == 0 && ws_cost_narrow64(&wide, &sk, 132, 0) == 0);
  enum { WIDE, NARROW, STAGES };
  static const struct {
    const char *name;
    int K, N, tile, splits; /* splits: the narrow schedule's */
  } shapes[] = {
      {"qkv", 4096, 9216, WIDE, 2},      {"o_proj", 8192, 4096, WIDE, 5},   {"gate_up", 4096, 3072, WIDE, 6},
      {"down", 1536, 4096, NARROW, 5},   {"qkv/2", 4096, 4608, WIDE, 4},    {"o_proj/2", 4096, 4096, NARROW, 5},
      {"gate_up/2", 4096, 1536, WIDE, 8}, {"down/2", 768, 4096, NARROW, 4}, {"qkv/4", 4096, 2304, NARROW, 8},
      {"o_proj/4", 2048, 4096, NARROW, 5}, {"gate_up/4", 4096, 768, STAGES, 8}, {"down/4", 384, 4096, STAGES, 3},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    const int KC = shapes[i].K / 64;
    const WsCostSched w = ws_cost_schedule(64, 2, (shapes[i].N + 127) / 128, KC, 1, kCap2, 0, 1, 132, kFlags, kFloats);
    const WsCostSched t = ws_cost_schedule(64, 2, (shapes[i].N + 127) / 128, KC, 1, kCap2, 0, 0, 132, kFlags, kFloats);
    const WsCostSched n = ws_cost_schedule(64, 1, (shapes[i].N + 63) / 64, KC, 1, kCap3, 0, 0, 132, kFlags, kFloats);
    const int tile = ws_cost_stage_weights64(&w, &t, 132, 0) ? STAGES : ws_cost_narrow64(&w, &n, 132, 0) ? NARROW : WIDE;
    CHECK_MSG(tile == shapes[i].tile && n.splits == shapes[i].splits,
              "%s at 64 rows: wide %d blocks cost %d, narrow %d splits cost %d: tile %d, measured best %d (%d splits)",
              shapes[i].name, (int)w.blocks, (int)w.cost_qc, n.splits, (int)n.cost_qc, tile, shapes[i].tile, shapes[i].splits);
  }
}

/* the kernel's dispatch of one shape at M rows on the H200's capacities (kern_w4a16_wgmma.cu's
 * ws_run64 for 17..64 rows, ws_launch_mid past that): the K-sliced tile taken (WS_SLICES_*) and
 * its split, or WS_SLICES_NONE and the pick's */
static int slices_at(int M, int K, int N, int *splits) {
  const int KC = K / 64, tx = (N + 127) / 128, tx1 = (N + 63) / 64;
  const WsCostSched p64 = ws_cost_schedule(64, 2, (int64_t)tx * ((M + 63) / 64), KC, 1, kCap2, 0, 1, 132, kFlags, kFloats);
  const WsCostSched k4 = ws_cost_schedule_ksl(64, 4, 4, (int64_t)tx1 * ((M + 63) / 64), KC, 1, kCap1, 0, 0, 0, 0, 0);
  WsCostSched cur, k2, k2s;
  int pick;
  if (M <= 64) {
    const WsCostSched pt = ws_cost_schedule(64, 2, (int64_t)tx * ((M + 63) / 64), KC, 1, kCap2, 0, 0, 132, kFlags, kFloats);
    const WsCostSched pn = ws_cost_schedule(64, 1, (int64_t)tx1 * ((M + 63) / 64), KC, 1, kCap3, 0, 0, 132, kFlags, kFloats);
    const int kind = ws_cost_stage_weights64(&p64, &pt, 132, 0) ? 1 : ws_cost_narrow64(&p64, &pn, 132, 0) ? 2 : 0;
    cur = kind == 1 ? pt : kind == 2 ? pn : p64;
    k2s = ws_cost_schedule_ksl(64, 2, 2, (int64_t)tx1 * ((M + 63) / 64), KC, 1, kCap2, 0, 0, 0, 0, 0);
    pick = ws_cost_pick_slices(ws_cost_tile_weight(64, kind == 2 ? 1 : 2, cur.blocks, 132), &cur, NULL, &k4, &k2s);
  } else {
    WsCostSched s64, s128, s256, s128w3, s128w1;
    int nwg = 2;
    const int rows = pick_at(M, K, N, &s64, &s128, &s256, &s128w3, &s128w1, &nwg);
    cur = nwg == 3 ? s128w3 : nwg == 1 ? s128w1 : rows == 256 ? s256 : rows == 64 ? s64 : s128;
    /* (the two-slice 128 x 64 tiles step 4 chunks where K is a multiple of 512: quanta of 4 a slice) */
    k2 = ws_cost_schedule_ksl(128, 2, 2, (int64_t)tx1 * ((M + 127) / 128), KC, K % 512 == 0 ? 4 : 1, kCap1, 0, 0, 0, 0, 0);
    pick = ws_cost_pick_slices(ws_cost_tile_weight(rows, nwg, cur.blocks, 132), &cur, &k2, &k4, NULL);
  }
  *splits = pick == WS_SLICES_K2 ? k2.splits : pick == WS_SLICES_K4_64 ? k4.splits : pick == WS_SLICES_K2_64 ? k2s.splits : cur.splits;
  return pick;
}

/* ws_cost_schedule_ksl and ws_cost_pick_slices by hand (the extra charge of a cluster split,
 * ties, the order among equals, tiles not planned), ws_cost_tile_weight against
 * ws_cost_pick_tile's weights; and the Qwen3-235B shapes and slices at 32, 64, 128 and 256 rows
 * on the H200, as the sweep of every allowed split measured them (kernels/NOTES.md item 30,
 * bench/RESULTS.md): the K-sliced tiles at down and o_proj at every TP from 32 to 128 rows and
 * at 256 (o_proj at TP=1/2 with 128 x 128 or 64-column tiles there), gate_up at TP=1 up to 64
 * rows and TP=2 at 128, qkv at TP=2 up to 64, gate_up at TP=4 at 256; none for qkv at TP=1,
 * where they lost. The fitted weights leave two measured gains out: gate_up at TP=4 up to 64
 * rows (the two-slice 64 x 64 tiles with 8 splits 4.4-4.6 us against the stages kernel's
 * 5.0-5.3) and qkv at TP=4 up to 64 rows (6 splits, 0.4-0.6 us less). The 64 x 64 tiles'
 * capacities stand in as kCap1 (four slices, one block an SM) and kCap2 (two slices, two blocks
 * an SM): not logged for those kernels; the device asks its occupancy calculator. */
static void test_slices(void) {
  /* a slice's chunks: KC = 24 in two slices is 12 a slice; split 3 ways, 4 a slice a split;
   * 64 rows with two slices count the cluster sum at half, with four the whole */
  WsCostSched k = ws_cost_schedule_ksl(128, 2, 2, 64, 24, 1, kCap1, 3, 1, 132, kFlags, kFloats);
  CHECK(k.splits == 3 && k.sk_blocks == 0 && k.cost_qc == ws_cost_split(64, 12, kCap1, 1, 3, 1));
  k = ws_cost_schedule_ksl(64, 2, 2, 64, 25, 1, kCap2, 3, 2, 132, kFlags, kFloats); /* 25 chunks: 13 a slice */
  CHECK(k.splits == 3 && k.sk_blocks == 0 && k.cost_qc == ws_cost_split(64, 13, kCap2, 1, 3, 2));
  k = ws_cost_schedule_ksl(64, 4, 4, 64, 24, 1, kCap1, 3, 0, 0, 0, 0);
  CHECK(k.splits == 3 && k.cost_qc == ws_cost_split(64, 6, kCap1, 1, 3, 1));
  CHECK(!ws_cost_split_ok(4, 6, 1)); /* a split of 4 would leave a slice one chunk a split */
  k = ws_cost_schedule_ksl(64, 4, 4, 64, 24, 1, kCap1, 4, 0, 0, 0, 0);
  CHECK(k.splits == ws_cost_splits(64, 6, kCap1, 1, 1));
  /* never stream-K, even where stream-K is asked for everywhere and the workspace holds it */
  k = ws_cost_schedule_ksl(128, 2, 2, 48, 64, 4, kCap1, 0, 2, 132, kFlags, kFloats);
  CHECK(k.sk_blocks == 0 && k.blocks == 48 * k.splits);
  CHECK(ws_cost_schedule(128, 2, 48, 64, 4, kCap1, 0, 2, 132, kFlags, kFloats).sk_blocks > 0); /* (without slices it is) */
  /* 4-chunk steps (quanta of 4 a slice, kern_w4a16_wgmma.cu taking K a multiple of 512 there):
   * every split the model allows is one the kernel runs in whole 4 KSL-chunk quanta, at least
   * two a split */
  for (int KC = 8; KC <= 256; KC += 8)
    for (int tiles = 1; tiles <= 300; tiles += 13) {
      const WsCostSched m = ws_cost_schedule_ksl(128, 2, 2, tiles, KC, 4, kCap1, 0, 0, 0, 0, 0);
      CHECK_MSG(m.splits == 1 || 2 * m.splits * 8 <= KC, "KC %d tiles %d: %d splits, fewer than two 8-chunk quanta each", KC, tiles,
                m.splits);
      for (int f = 1; f <= WS_COST_MAX_SPLITS; f++)
        if (ws_cost_split_ok(f, KC / 2, 4))
          CHECK(ws_cost_schedule_ksl(128, 2, 2, tiles, KC, 4, kCap1, f, 0, 0, 0, 0).splits == f && 2 * f * 8 <= KC);
    }
  /* the weights ws_cost_pick_tile has always used */
  CHECK(ws_cost_tile_weight(128, 2, 500, 132) == 40 && ws_cost_tile_weight(256, 2, 10, 132) == 60);
  CHECK(ws_cost_tile_weight(128, 3, 10, 132) == 47 && ws_cost_tile_weight(128, 1, 10, 132) == 35);
  CHECK(ws_cost_tile_weight(64, 2, 132, 132) == 30 && ws_cost_tile_weight(64, 2, 133, 132) == 60);
  CHECK(ws_cost_tile_weight(64, 1, 10, 132) == WS_COST_W_NARROW64);
  /* by hand: cur split, 40 x (50 + 6) = 2240; k2 unsplit, 43 x 52 = 2236, wins */
  WsCostSched cur = {2, 0, 128, 50}, k2 = {1, 0, 128, 52}, k4 = {1, 0, 128, 1000}, k2s = {1, 0, 128, 1000};
  CHECK(ws_cost_pick_slices(40, &cur, &k2, &k4, &k2s) == WS_SLICES_K2);
  k2.splits = 2; /* the same extra charge on its own split: 43 x 58 */
  CHECK(ws_cost_pick_slices(40, &cur, &k2, &k4, &k2s) == WS_SLICES_NONE);
  k2.splits = 1;
  cur.sk_blocks = 132; /* a stream-K pick has no cluster sum: 40 x 50 = 2000 */
  CHECK(ws_cost_pick_slices(40, &cur, &k2, &k4, &k2s) == WS_SLICES_NONE);
  cur.sk_blocks = 0;
  cur.splits = 1;
  cur.cost_qc = 56; /* unsplit: 2240 against 2236 */
  CHECK(ws_cost_pick_slices(40, &cur, &k2, &k4, &k2s) == WS_SLICES_K2);
  k2.cost_qc = 1000;
  k4.cost_qc = 38; /* 58 x 38 = 2204 */
  CHECK(ws_cost_pick_slices(40, &cur, &k2, &k4, &k2s) == WS_SLICES_K4_64);
  k2s.cost_qc = 38; /* equal to k4: the earlier wins */
  CHECK(ws_cost_pick_slices(40, &cur, &k2, &k4, &k2s) == WS_SLICES_K4_64);
  k2s.cost_qc = 37;
  CHECK(ws_cost_pick_slices(40, &cur, &k2, &k4, &k2s) == WS_SLICES_K2_64);
  CHECK(ws_cost_pick_slices(40, &cur, &k2, &k4, NULL) == WS_SLICES_K4_64);
  CHECK(ws_cost_pick_slices(40, &cur, NULL, NULL, NULL) == WS_SLICES_NONE);
  WsCostSched c58 = {1, 0, 128, 58}, t40 = {1, 0, 128, 40}; /* 40 x 58 = 58 x 40: a tie keeps cur */
  CHECK(ws_cost_pick_slices(40, &c58, NULL, &t40, NULL) == WS_SLICES_NONE);
  enum { N_ = WS_SLICES_NONE, K2 = WS_SLICES_K2, K4 = WS_SLICES_K4_64, S2 = WS_SLICES_K2_64 };
  static const struct {
    const char *name;
    int K, N, pick[4], splits[4]; /* at 32, 64, 128, 256 rows; splits of the K-sliced tile taken */
  } shapes[] = {
      {"qkv", 4096, 9216, {N_, N_, N_, N_}, {0, 0, 0, 0}},        {"o_proj", 8192, 4096, {K4, K4, K2, N_}, {2, 2, 2, 0}},
      {"gate_up", 4096, 3072, {S2, S2, N_, N_}, {4, 4, 0, 0}},    {"down", 1536, 4096, {K4, K4, K4, K2}, {1, 1, 1, 1}},
      {"qkv/2", 4096, 4608, {S2, S2, N_, N_}, {3, 3, 0, 0}},      {"o_proj/2", 4096, 4096, {K4, K4, K2, N_}, {2, 2, 2, 0}},
      {"gate_up/2", 4096, 1536, {N_, N_, K2, N_}, {0, 0, 4, 0}},  {"down/2", 768, 4096, {K4, K4, K4, K2}, {1, 1, 1, 1}},
      {"qkv/4", 4096, 2304, {N_, N_, N_, N_}, {0, 0, 0, 0}},      {"o_proj/4", 2048, 4096, {K4, K4, K4, K2}, {2, 2, 1, 1}},
      {"gate_up/4", 4096, 768, {N_, N_, N_, K2}, {0, 0, 0, 4}},   {"down/4", 384, 4096, {K4, K4, K2, K2}, {1, 1, 1, 1}},
  };
  static const int Ms[4] = {32, 64, 128, 256};
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
    for (int m = 0; m < 4; m++) {
      int splits = 0;
      const int got = slices_at(Ms[m], shapes[i].K, shapes[i].N, &splits);
      CHECK_MSG(got == shapes[i].pick[m] && (got == WS_SLICES_NONE || splits == shapes[i].splits[m]),
                "%s at %d rows: K slices %d (%d splits), measured best %d (%d splits)", shapes[i].name, Ms[m], got, splits,
                shapes[i].pick[m], shapes[i].splits[m]);
    }
}

int main(void) {
  test_splits_brute();
  test_schedule_rules();
  test_qwen3_h200();
  test_stage_weights64();
  test_narrow64();
  test_slices();
  return check_report("test_ws_cost");
}
