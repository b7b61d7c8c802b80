/* test_cost: physics and interface checks of the roofline cost model (sim/cost_roofline.c),
 * the collective models (sim/comm.c) and the routing table (sim/moe_route.c).
 * Specs are built here field by field (numbers from FACTS.md) so the test does not depend on
 * the spec loaders; expectations are derived from first principles, not copied from the code. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sim/comm.h"
#include "sim/cost_roofline.h"
#include "sim/moe_route.h"
#include "tests/check.h"

/* Qwen3-235B-A22B, GPTQ int4 group 128 (FACTS.md). */
static void test_model(struct model_spec *m) {
  memset(m, 0, sizeof *m);
  strcpy(m->name, "qwen3-235b-a22b-gptq-int4");
  m->hidden = 4096, m->n_layers = 94, m->n_heads = 64, m->n_kv_heads = 4, m->head_dim = 128;
  m->intermediate = 12288, m->moe_intermediate = 1536, m->n_experts = 128, m->top_k = 8;
  m->norm_topk_prob = 1, m->decoder_sparse_step = 1, m->n_moe_layers = 94, m->vocab = 151936;
  m->max_pos = 40960, m->dtype_bytes = 2, m->qk_norm = 1;
  m->quant = (struct model_quant_cfg){.method = MODEL_QUANT_GPTQ, .bits = 4, .group_size = 128, .sym = 1};
}

/* 8x A100 40GB PCIe with NVLink bridge pairs (FACTS.md). */
static void test_hw(struct hw_spec *h) {
  memset(h, 0, sizeof *h);
  strcpy(h->name, "a100-40g-pcie");
  strcpy(h->gpu, "NVIDIA A100-PCIE-40GB");
  h->mem_bytes = 40LL << 30, h->hbm_GBps = 1555, h->hbm_eff = 0.89, h->tflops_bf16 = 312;
  h->mma_eff = 0.77, h->n_sms = 108, h->gpus_per_node = 8, h->kernel_launch_us = 3;
  h->eager_launch_us = 8, h->n_tiers = 2;
  h->tiers[0] = (struct hw_tier){"nvlink-bridge", 2, 300, 8, 208, 1};
  h->tiers[1] = (struct hw_tier){"pcie", 8, 25, 15, 20, 0};
}

static void test_engine(struct engine *e) {
  memset(e, 0, sizeof *e);
  e->gpu_mem_util = 0.9, e->max_num_seqs = 256, e->max_num_batched_tokens = 2048;
  e->block_size = 16, e->kv_dtype_bytes = 2, e->enable_prefix_caching = 1;
}

static int64_t step_ns(const struct cost_model *cm, int stage, int n_dec, int ctx, int chunk,
                       struct cost_breakdown *bd) {
  static struct cost_req reqs[600]; /* (n_dec + 1) */
  int n = 0, tok = 0;
  for (int i = 0; i < n_dec; i++) reqs[n++] = (struct cost_req){1, ctx}, tok++;
  if (chunk > 0) reqs[n++] = (struct cost_req){chunk, 0}, tok += chunk;
  struct cost_step st = {.reqs = reqs, .n_reqs = n, .n_tok = tok, .n_decode = n_dec,
                         .n_sample = n, .stage = stage};
  if (bd) memset(bd, 0, sizeof *bd);
  return cm->stage_ns(cm->state, &st, NULL, bd);
}

static int make(struct cost_model *cm, int tp, int pp, int ep, double skew, int eager) {
  struct model_spec m;
  struct hw_spec h;
  struct engine e;
  test_model(&m), test_hw(&h), test_engine(&e);
  e.enforce_eager = eager;
  struct layout l = {.tp = tp, .pp = pp, .dp = 1, .ep = ep};
  struct cost_roofline_opts o;
  cost_roofline_opts_default(&o);
  o.route_skew = skew;
  return cost_roofline_create(&m, &h, &l, &e, &o, cm);
}

static void test_monotone_and_sum(void) {
  struct cost_model cm;
  CHECK(make(&cm, 8, 1, 1, 0, 0) == 0);
  int64_t prev = 0;
  for (int b = 1; b <= 600; b += (b < 40 ? 1 : 13)) { /* decodes: more requests never cheaper */
    struct cost_breakdown bd;
    int64_t ns = step_ns(&cm, 0, b, 1500, 0, &bd);
    int64_t sum = 0;
    for (int k = 0; k < COST_N_TERMS; k++) {
      CHECK_MSG(bd.ns[k] >= 0, "term %s negative at b=%d", cost_term_names[k], b);
      sum += bd.ns[k];
    }
    CHECK_MSG(sum == ns, "b=%d: terms sum %lld != total %lld", b, (long long)sum, (long long)ns);
    CHECK_MSG(ns >= prev, "b=%d costs %lld < %lld at fewer requests", b, (long long)ns, (long long)prev);
    prev = ns;
  }
  prev = 0;
  for (int chunk = 16; chunk <= 8192; chunk *= 2) { /* prefill chunks */
    int64_t ns = step_ns(&cm, 0, 0, 0, chunk, NULL);
    CHECK_MSG(ns > prev, "chunk %d not dearer than chunk %d", chunk, chunk / 2);
    prev = ns;
  }
  /* Longer contexts read more KV. */
  CHECK(step_ns(&cm, 0, 64, 8000, 0, NULL) > step_ns(&cm, 0, 64, 1000, 0, NULL));
  /* Deterministic: same call, same answer; a fresh model built the same way agrees. */
  struct cost_model cm2;
  CHECK(make(&cm2, 8, 1, 1, 0, 0) == 0);
  CHECK(step_ns(&cm, 0, 37, 1234, 0, NULL) == step_ns(&cm2, 0, 37, 1234, 0, NULL));
  CHECK(step_ns(&cm, 0, 5, 100, 700, NULL) == step_ns(&cm2, 0, 5, 100, 700, NULL));
  cost_destroy(&cm2);
  cost_destroy(&cm);
}

/* Decode at batch 1 on EP=8: the GPU must at least read the weights a token touches on the most
 * loaded rank (attention slice + at least one whole expert) at full HBM bandwidth, pay 2 PCIe
 * all-reduces per layer (>= 2(n-1) ring steps of >= 1 us each, NCCL's own PCIe figure), and it
 * cannot exceed that plus every term at a generous ceiling. */
static void test_decode_b1_band(void) {
  struct cost_model cm;
  CHECK(make(&cm, 8, 1, 1, 0, 0) == 0);
  struct cost_breakdown bd;
  double ns = (double)step_ns(&cm, 0, 1, 1000, 0, &bd);
  double layer_w = (4096.0 * (1024 + 256) + 1024.0 * 4096) * 0.5 /* int4 attention slice */
                   + 1.0 * (4096.0 * 3072 + 1536.0 * 4096) * 0.5; /* >= one expert */
  double floor_ns = 94 * layer_w / 1555.0 + 94 * 2 * (2 * 7 * 1000.0);
  /* Ceiling: weights of 3 experts/layer at 50% of HBM, 2 all-reduces of 100 us, 25 kernels of
   * 10 us per layer, 10 ms of host and sampling per step. */
  double ceil_ns = 94 * ((4096.0 * 1280 + 1024.0 * 4096) * 0.5 + 3 * (4096.0 * 3072 + 1536.0 * 4096) * 0.5) /
                       (0.5 * 1555.0) + 94 * (2 * 100e3 + 25 * 10e3) + 10e6;
  CHECK_MSG(ns > floor_ns && ns < ceil_ns, "decode b=1: %.3f ms outside [%.3f, %.3f] ms", ns / 1e6,
            floor_ns / 1e6, ceil_ns / 1e6);
  cost_destroy(&cm);
}

static void test_comm_tiers(void) {
  struct hw_spec h;
  test_hw(&h);
  struct comm_group pair, quad, oct, cross_pair;
  comm_group_init(&pair, &h, 0, 2);        /* GPUs 0,1: a bridge pair */
  comm_group_init(&cross_pair, &h, 1, 2);  /* GPUs 1,2: different pairs -> PCIe */
  comm_group_init(&quad, &h, 0, 4);
  comm_group_init(&oct, &h, 0, 8);
  CHECK(pair.tier == 0 && cross_pair.tier == 1 && quad.tier == 1 && oct.tier == 1);
  CHECK(pair.custom_ar && !quad.custom_ar && !oct.custom_ar); /* vLLM custom AR needs all-NVLink */
  for (double bytes = 8; bytes <= 64e6; bytes *= 4) {
    double tp = comm_allreduce_us(&pair, bytes), tc = comm_allreduce_us(&cross_pair, bytes);
    CHECK_MSG(tp < tc, "%g B: bridge pair %.2f us not faster than PCIe pair %.2f us", bytes, tp, tc);
    CHECK(comm_allreduce_us(&quad, bytes) < comm_allreduce_us(&oct, bytes));
    CHECK(comm_allreduce_us(&oct, bytes) <= comm_allreduce_us(&oct, bytes * 2));
  }
  /* Large messages approach the measured bus bandwidth: t -> bytes * 2(n-1)/n / busbw. */
  double big = 1e9, t = comm_allreduce_us(&oct, big);
  double ideal = big * 2 * 7 / 8 / (20.0 * 1e3);
  CHECK_MSG(t > ideal && t < ideal * 1.01, "8-GPU 1 GB all-reduce %.0f us vs bandwidth bound %.0f us", t, ideal);
  /* One rank: nothing to do. */
  struct comm_group one;
  comm_group_init(&one, &h, 3, 1);
  CHECK(comm_allreduce_us(&one, 1e6) == 0);
}

static void test_ep_imbalance(void) {
  double prev = -1;
  double skews[] = {0.0, 0.5, 1.0, 1.5};
  for (int i = 0; i < 4; i++) {
    struct cost_model cm;
    CHECK(make(&cm, 8, 1, 1, skews[i], 0) == 0);
    struct cost_breakdown bd;
    step_ns(&cm, 0, 256, 1000, 0, &bd);
    double imb = (double)bd.ns[COST_EXPERT_IMBALANCE];
    CHECK_MSG(imb >= 0, "imbalance %g < 0", imb);
    CHECK_MSG(imb > prev, "skew %.1f: imbalance %.0f ns not above %.0f at lower skew", skews[i], imb, prev);
    prev = imb;
    cost_destroy(&cm);
  }
  /* Without EP no rank waits for another: no imbalance term. */
  struct cost_model cm;
  CHECK(make(&cm, 4, 2, 0, 1.0, 0) == 0);
  struct cost_breakdown bd;
  step_ns(&cm, 0, 64, 1000, 0, &bd);
  CHECK(bd.ns[COST_EXPERT_IMBALANCE] == 0 && bd.ns[COST_ALL2ALL] == 0);
  cost_destroy(&cm);
}

/* Uniform routing: a token touches top_k of E experts, so the expected number of experts with
 * tokens after T tokens is E (1 - (1 - k/E)^T), exactly. */
static double route_n_local(const void *ctx, int n_tok, const int32_t *counts, int n_local) {
  (void)ctx, (void)n_tok, (void)counts;
  return n_local;
}

static double route_dummy(const void *ctx, int n_tok, const int32_t *counts, int n_local) {
  (void)ctx, (void)n_tok;
  double a = 0;
  for (int i = 0; i < n_local; i++) a += counts[i] > 0;
  return a;
}

static void test_route_table(void) {
  struct moe_route_cfg c = {.n_experts = 128, .top_k = 8, .n_ranks = 8, .skew = 0, .seed = 7, .samples = 64};
  struct moe_route_table tb;
  CHECK(moe_route_table_build(&tb, &c, 2048, route_dummy, NULL) == 0);
  int ts[] = {1, 4, 10, 30, 100};
  for (int i = 0; i < 5; i++) {
    double expect = 128 * (1 - pow(1 - 8.0 / 128, ts[i]));
    double got = moe_route_active(&tb, ts[i]);
    CHECK_MSG(fabs(got - expect) < 0.05 * expect + 0.3, "T=%d: %.2f active experts, expected %.2f", ts[i], got, expect);
    double mx, mean;
    moe_route_lookup(&tb, ts[i], &mx, &mean);
    CHECK(mx >= mean);
    CHECK_NEAR(mean * 8, got, 1e-6 * got + 1e-9); /* mean over 8 ranks of active-per-rank */
  }
  moe_route_table_free(&tb);
  /* 128 experts over 3 ranks: vLLM's placement gives 43, 43, 42; a cost that is the rank's
   * expert count shows the most loaded rank holds 43 and the mean is 128/3. */
  struct moe_route_cfg uneven = c;
  uneven.n_ranks = 3;
  CHECK(moe_route_table_build(&tb, &uneven, 16, route_n_local, NULL) == 0);
  double mx3, mean3;
  moe_route_lookup(&tb, 4, &mx3, &mean3);
  CHECK_NEAR(mx3, 43.0, 1e-9);
  CHECK_NEAR(mean3, 128.0 / 3, 1e-9);
  moe_route_table_free(&tb);
  struct moe_route_cfg bad = c;
  bad.n_ranks = 129; /* more ranks than experts: some rank would hold none */
  CHECK(moe_route_table_build(&tb, &bad, 64, route_dummy, NULL) != 0);
  moe_route_table_free(&tb); /* harmless on a table whose build failed */
}

static void test_graph_padding(void) {
  CHECK(cost_roofline_graph_size(1) == 1 && cost_roofline_graph_size(3) == 4);
  CHECK(cost_roofline_graph_size(5) == 8 && cost_roofline_graph_size(9) == 16);
  CHECK(cost_roofline_graph_size(512) == 512 && cost_roofline_graph_size(513) == 0);
  struct cost_model cm, eager;
  CHECK(make(&cm, 8, 1, 1, 0, 0) == 0);
  CHECK(make(&eager, 8, 1, 1, 0, 1) == 0);
  /* 9 decodes run padded to the 16-token graph: the GEMM terms equal those of 16 decodes. */
  struct cost_breakdown b9, b16;
  step_ns(&cm, 0, 9, 1000, 0, &b9);
  step_ns(&cm, 0, 16, 1000, 0, &b16);
  CHECK(b9.ns[COST_DENSE_GEMM] == b16.ns[COST_DENSE_GEMM]);
  CHECK(b9.ns[COST_MOE_GEMM] == b16.ns[COST_MOE_GEMM]);
  CHECK(b9.ns[COST_ATTN] < b16.ns[COST_ATTN]); /* attention runs on real requests only */
  /* Eager never beats graph replay; on a small model, where launches dominate, it loses. */
  CHECK(step_ns(&eager, 0, 1, 1000, 0, NULL) >= step_ns(&cm, 0, 1, 1000, 0, NULL));
  struct model_spec tiny;
  struct hw_spec h;
  struct engine e;
  test_model(&tiny), test_hw(&h), test_engine(&e);
  tiny.hidden = 512, tiny.n_layers = 4, tiny.n_heads = 8, tiny.n_kv_heads = 4, tiny.head_dim = 64;
  tiny.n_experts = 0, tiny.top_k = 0, tiny.moe_intermediate = 0, tiny.intermediate = 1024;
  tiny.vocab = 1000, tiny.quant.method = MODEL_QUANT_NONE;
  struct layout l1 = {.tp = 1, .pp = 1, .dp = 1, .ep = 0};
  struct cost_model tg, te;
  CHECK(cost_roofline_create(&tiny, &h, &l1, &e, NULL, &tg) == 0);
  e.enforce_eager = 1;
  CHECK(cost_roofline_create(&tiny, &h, &l1, &e, NULL, &te) == 0);
  CHECK(step_ns(&te, 0, 4, 100, 0, NULL) > step_ns(&tg, 0, 4, 100, 0, NULL));
  cost_destroy(&tg), cost_destroy(&te);
  /* Above 512 tokens both run eager: same cost. */
  CHECK(step_ns(&eager, 0, 0, 0, 1024, NULL) == step_ns(&cm, 0, 0, 0, 1024, NULL));
  cost_destroy(&eager);
  cost_destroy(&cm);
}

static void test_pp_stages(void) {
  struct cost_model cm;
  CHECK(make(&cm, 4, 2, 0, 0, 0) == 0);
  struct cost_breakdown b0, b1;
  step_ns(&cm, 0, 32, 1000, 0, &b0);
  step_ns(&cm, 1, 32, 1000, 0, &b1);
  CHECK(b0.ns[COST_PP_XFER] > 0 && b1.ns[COST_PP_XFER] == 0); /* only the sender hands off */
  CHECK(b1.ns[COST_LM_HEAD] > b0.ns[COST_LM_HEAD]);            /* lm_head lives on the last */
  /* Bad layouts are refused with a message, not priced. */
  struct model_spec m;
  struct hw_spec h;
  struct engine e;
  test_model(&m), test_hw(&h), test_engine(&e);
  struct layout bad = {.tp = 3, .pp = 1, .dp = 1, .ep = 0};
  struct cost_model x;
  CHECK(cost_roofline_create(&m, &h, &bad, &e, NULL, &x) != 0);
  cost_destroy(&cm);
}

/* DP=2 x TP=4 with expert parallel: dispatch/combine over the DP group appears, the TP
 * all-reduces stay, and a larger replica batch costs more. */
static void test_dp_ep(void) {
  struct model_spec m;
  struct hw_spec h;
  struct engine e;
  test_model(&m), test_hw(&h), test_engine(&e);
  struct layout l = {.tp = 4, .pp = 1, .dp = 2, .ep = 1};
  struct cost_model cm;
  CHECK(cost_roofline_create(&m, &h, &l, &e, NULL, &cm) == 0);
  struct cost_breakdown bd;
  int64_t a = step_ns(&cm, 0, 16, 1000, 0, &bd);
  CHECK(bd.ns[COST_ALL2ALL] > 0 && bd.ns[COST_ALLREDUCE] > 0);
  CHECK(step_ns(&cm, 0, 64, 1000, 0, NULL) > a);
  struct comm_group g;
  comm_group_init(&g, &h, 0, 8);
  CHECK(comm_broadcast_us(&g, 1e6) < comm_allreduce_us(&g, 1e6)); /* half the ring's steps */
  cost_destroy(&cm);
}

int main(void) {
  test_dp_ep();
  test_monotone_and_sum();
  test_decode_b1_band();
  test_comm_tiers();
  test_ep_imbalance();
  test_route_table();
  test_graph_padding();
  test_pp_stages();
  return check_report("test_cost");
}
