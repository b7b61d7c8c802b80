/* bench_kernels: times the W4A16 GEMM beside cuBLAS bf16 at the Qwen3-235B linear shapes (and
 * their TP=2/4 slices) for M = 1..4096, and the fused MoE (route, align, gate_up+SiLU, down,
 * combine) at 1..4096 tokens with 8 of 128 experts. Prints microseconds, achieved GB/s and the
 * ratio to the weight-read floor (int4 bytes + scales over the measured device copy bandwidth).
 *
 * Method (device/METHOD.md): every configuration is validated before it is timed -- the GEMM
 * against cuBLAS on the same weights dequantised to bf16 (NMSE <= 5e-4), the MoE against the C
 * reference on sampled tokens -- and a configuration that fails prints FAIL and no time.
 * Timing: CUDA events around batches of launches replayed as CUDA graphs, median over batches; weights rotate over
 * enough copies to exceed twice the L2 so that each launch reads them from HBM (a timed batch holds
 * at least as many calls as copies).
 * --attn: paged decode attention at the Qwen3-235B TP=4/TP=8 rank shapes (16 or 8 q heads, one
 * kv head, head_dim 128) by batch and context, with the kernel's automatic head split and with
 * each choice forced (SERVESIM_ATTN_HEADS), outputs compared between the choices.
 * --floor: a read-only kernel over the same weight bytes, the bound under this timing method, and
 *   the same chained with the least a call does after its wait (read x, write y: bk_chain).
 * --only SHAPE: the GEMM table for that shape only (qkv, o_proj, gate_up, down; every TP slice
 * of it), no MoE, e.g. under ncu.
 * --mid: the GEMM table for every shape and slice at M = 32, 64, 128, 256 only.
 * --m M[,M...]: the GEMM table at these row counts only, and the MoE table at these token counts.
 * --parts: the MoE table also times its two grouped GEMMs alone (gate_up with SiLU, down).
 * --small: the same at M = 1, 4, 8, 16 (the decode sizes, where the weight-read floor is the bar).
 * BK_PROFILE_CHAIN=1 (for `ncu --profile-from-start off --graph-profiling graph`): one extra
 *   replay of each W4A16 chain's graph, after the warm-up one, runs between cudaProfilerStart
 *   and Stop, so a profiler sees the chain as one workload, the calls overlapping as when timed
 *   (though slowed: kernels/NOTES.md item 25).
 * Usage: bench_kernels [--quick] [--moe [--parts] | --gemm | --mid | --small | --attn | --floor] [--only SHAPE] */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

extern "C" {
#include "common/err.h"
#include "common/rng.h"
#include "kernels/kernels.h"
#include "kernels/ref_bf16.h"
#include "kernels/ref_moe.h"
#include "kernels/ref_w4a16.h"
}
#include "kernels/kern_common.cuh" /* kern_pdl_trigger / kern_pdl_wait for the floor probe */

#include "bench/bench_cuda.h"
#define BK_KERN(call)                                                                          \
  do {                                                                                         \
    int rc_ = (call);                                                                          \
    if (rc_) {                                                                                 \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, err_msg());               \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

static double g_copy_gbs; /* measured device copy bandwidth, GB/s (read + write) */
static size_t g_l2_bytes;

/* bf16 W^T [N, K] from the tile layout's source (checkpoint qweight/scales): the same values
 * the W4A16 kernel multiplies with (bf16 scale times q-8, rounded to bf16). */
__global__ void bk_dequant(uint16_t *wt, const int32_t *qw, const uint16_t *sc, int K, int N) {
  const int64_t n_el = (int64_t)K * N;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n_el; i += (int64_t)gridDim.x * blockDim.x) {
    const int n = (int)(i / K), k = (int)(i % K);
    const int q = ((uint32_t)qw[(int64_t)(k / 8) * N + n] >> (4 * (k % 8))) & 0xf;
    const float s = __bfloat162float(__float2bfloat16_rn(__half2float(__ushort_as_half(sc[(int64_t)(k / 128) * N + n]))));
    __nv_bfloat16 w = __float2bfloat16_rn((float)(q - 8) * s);
    wt[i] = *reinterpret_cast<uint16_t *>(&w);
  }
}

__global__ void bk_fill_bf16(uint16_t *x, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    uint64_t z = (uint64_t)i * 0x9e3779b97f4a7c15ull + seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = ((float)(z >> 40) / 16777216.0f - 0.5f) * 3.4f; /* ~unit variance */
    __nv_bfloat16 b = __float2bfloat16_rn(u);
    x[i] = *reinterpret_cast<uint16_t *>(&b);
  }
}

/* ref_bf16_nmse of device arrays a against reference b; an all-zero reference counts as a
 * failure (INFINITY) here, since any output would match it. */
static double nmse_dev(const uint16_t *d_a, const uint16_t *d_b, int64_t n) {
  std::vector<uint16_t> a(n), b(n);
  BENCH_CUDA(cudaMemcpy(a.data(), d_a, n * 2, cudaMemcpyDeviceToHost));
  BENCH_CUDA(cudaMemcpy(b.data(), d_b, n * 2, cudaMemcpyDeviceToHost));
  if (std::all_of(b.begin(), b.end(), [](uint16_t v) { return (v & 0x7fff) == 0; })) return INFINITY;
  return ref_bf16_nmse(a.data(), b.data(), n);
}

static cudaStream_t g_st; /* every launch of the benchmark goes here (capturable) */

/* Median over batches of the mean time per call, microseconds. fn(i) launches call i on g_st.
 * Each batch is one CUDA graph of per_batch calls (captured once after an eager warm-up), as
 * a serving engine replays decode steps: the timing then holds the kernels' own time and the
 * graph's launch gaps, not the host's per-call launch cost. */
template <typename F>
static double time_us(F fn, int per_batch, int batches, bool profile = false) {
  cudaEvent_t a, b;
  BENCH_CUDA(cudaEventCreate(&a));
  BENCH_CUDA(cudaEventCreate(&b));
  cudaGraphExec_t exec = bench_graph_capture(g_st, per_batch, fn);
  BENCH_CUDA(cudaGraphLaunch(exec, g_st));
  if (profile) { /* one more replay, the profiler's (BK_PROFILE_CHAIN) */
    BENCH_CUDA(cudaStreamSynchronize(g_st));
    BENCH_CUDA(cudaProfilerStart());
    BENCH_CUDA(cudaGraphLaunch(exec, g_st));
    BENCH_CUDA(cudaStreamSynchronize(g_st));
    BENCH_CUDA(cudaProfilerStop());
  }
  std::vector<double> v;
  for (int bt = 0; bt < batches; bt++) v.push_back(bench_graph_replay_us(exec, g_st, a, b) / per_batch);
  BENCH_CUDA(cudaGetLastError());
  cudaGraphExecDestroy(exec);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return bench_pct(v, 50);
}

/* The copy ceiling: the better of cudaMemcpyAsync and a 16-byte-per-thread copy kernel. */
static void measure_copy(void) { g_copy_gbs = bench_copy_gbs(g_st); }

struct shape {
  const char *name;
  int tp, K, N;
};

static int g_pass = 1;

static void bench_gemm(cublasHandle_t blas, const shape &s, const std::vector<int> &Ms, void *ws, size_t ws_bytes,
                       struct rng *r) {
  const int K = s.K, N = s.N;
  const size_t q_bytes = (size_t)K * N / 2, s_bytes = (size_t)K / 128 * N * 2, w_bytes = q_bytes + s_bytes;
  const int copies = bench_copies(w_bytes, g_l2_bytes);
  const int bf_copies = bench_copies((size_t)K * N * 2, g_l2_bytes);
  std::vector<int32_t> hq((size_t)K / 8 * N);
  std::vector<uint16_t> hs((size_t)K / 128 * N);
  ref_w4a16_random(hq.data(), hs.data(), K, N, rng_u64(r), 0.001f, 0.01f);
  int32_t *d_q, *d_rep;
  uint16_t *d_s, *d_srep, *d_wt;
  BENCH_CUDA(cudaMalloc(&d_q, q_bytes));
  BENCH_CUDA(cudaMalloc(&d_s, s_bytes));
  BENCH_CUDA(cudaMalloc(&d_rep, q_bytes * copies));
  BENCH_CUDA(cudaMalloc(&d_srep, s_bytes * copies));
  BENCH_CUDA(cudaMalloc(&d_wt, (size_t)K * N * 2 * bf_copies));
  BENCH_CUDA(cudaMemcpy(d_q, hq.data(), q_bytes, cudaMemcpyHostToDevice));
  BENCH_CUDA(cudaMemcpy(d_s, hs.data(), s_bytes, cudaMemcpyHostToDevice));
  for (int c = 0; c < copies; c++)
    BK_KERN(kern_gptq_repack((int32_t *)((char *)d_rep + c * q_bytes), (uint16_t *)((char *)d_srep + c * s_bytes), d_q,
                             d_s, K, N, g_st));
  bk_dequant<<<4096, 256, 0, g_st>>>(d_wt, d_q, d_s, K, N);
  for (int c = 1; c < bf_copies; c++)
    BENCH_CUDA(cudaMemcpy((char *)d_wt + (size_t)c * K * N * 2, d_wt, (size_t)K * N * 2, cudaMemcpyDeviceToDevice));
  const int maxM = *std::max_element(Ms.begin(), Ms.end());
  uint16_t *d_x, *d_y, *d_yref;
  BENCH_CUDA(cudaMalloc(&d_x, (size_t)maxM * K * 2));
  BENCH_CUDA(cudaMalloc(&d_y, (size_t)maxM * N * 2));
  BENCH_CUDA(cudaMalloc(&d_yref, (size_t)maxM * N * 2));
  bk_fill_bf16<<<1024, 256, 0, g_st>>>(d_x, (int64_t)maxM * K, rng_u64(r));
  const double floor_us = w_bytes / (g_copy_gbs * 1e3);
  for (int M : Ms) {
    BENCH_CUDA(cudaMemset(d_y, 0xff, (size_t)M * N * 2));
    BK_KERN(kern_w4a16_gemm(d_y, d_x, d_rep, d_srep, M, K, N, ws, ws_bytes, g_st));
    BK_KERN(kern_linear_bf16(blas, d_yref, d_x, d_wt, M, K, N, g_st));
    BENCH_CUDA(cudaDeviceSynchronize());
    const double e = nmse_dev(d_y, d_yref, (int64_t)M * N);
    if (!(e <= 5e-4)) {
      printf("| %-8s | %d | %5d | %5d | %4d | FAIL: nmse %.3g vs cuBLAS on the dequantised weights |\n", s.name, s.tp,
             K, N, M, e);
      g_pass = 0;
      continue;
    }
    /* a batch touches every copy, so that no call finds its weights in L2 from the batch before */
    const int per = M >= 1024 ? 5 : 20, batches = M >= 1024 ? 5 : 15;
    const double us = time_us(
        [&](int i) {
          const int c = i % copies;
          kern_w4a16_gemm(d_y, d_x, (int32_t *)((char *)d_rep + c * q_bytes), (uint16_t *)((char *)d_srep + c * s_bytes),
                          M, K, N, ws, ws_bytes, g_st);
        },
        std::max(per, copies), batches, getenv("BK_PROFILE_CHAIN") != NULL);
    const double us_bf = time_us(
        [&](int i) {
          const int c = i % bf_copies;
          kern_linear_bf16(blas, d_yref, d_x, (uint16_t *)((char *)d_wt + (size_t)c * K * N * 2), M, K, N, g_st);
        },
        std::max(per, bf_copies), batches);
    const double tflops = 2.0 * M * K * N / (us * 1e6);
    printf("| %-8s | %d | %5d | %5d | %4d | %8.1f | %6.0f | %5.2f | %7.1f | %8.1f | %5.2f | %6.1f | %.1e |\n", s.name, s.tp,
           K, N, M, us, w_bytes / (us * 1e3), us / floor_us, floor_us, us_bf, us_bf / us, tflops, e);
  }
  cudaFree(d_q); cudaFree(d_s); cudaFree(d_rep); cudaFree(d_srep); cudaFree(d_wt);
  cudaFree(d_x); cudaFree(d_y); cudaFree(d_yref);
}

/* Fused MoE at T tokens, 8 of 128 experts, H=4096, I=1536 (TP=1, all experts local). */
/* Decode attention: B sequences of ctx tokens each (contiguous blocks), one query per sequence
 * at position ctx-1, the cache and the block tables as the engine holds them; the KV rows of a
 * rank's batch are small enough to stay in L2 between replays, so these are L2-warm times --
 * for comparing the head split choices, not a bandwidth figure. */
static void bench_attn(int quick) {
  const int D = 128, nkv = 1;
  const int Bs[] = {1, 4, 16, 64}, Cs[] = {512, 1024, 4096};
  const char *modes[3] = {NULL, "split", "group"};
  printf("\n| q heads | batch | context | auto us | one head per block us | grouped us | auto picks | max nmse between |\n");
  printf("|---|---|---|---|---|---|---|---|\n");
  for (int nq : {16, 8}) {
    for (int B : Bs) {
      for (int C : Cs) {
        if (quick && (C == 512 || nq == 8)) continue;
        const int max_blocks = (C + 15) / 16, n_blocks = B * max_blocks, row = (nq + 2 * nkv) * D;
        uint16_t *kc, *vc, *q, *out[3];
        int32_t *bt, *tseq, *pos;
        const size_t cache = (size_t)n_blocks * 16 * nkv * D * 2;
        BENCH_CUDA(cudaMalloc(&kc, cache));
        BENCH_CUDA(cudaMalloc(&vc, cache));
        BENCH_CUDA(cudaMalloc(&q, (size_t)B * row * 2));
        for (int i = 0; i < 3; i++) BENCH_CUDA(cudaMalloc(&out[i], (size_t)B * nq * D * 2));
        bk_fill_bf16<<<1024, 256, 0, g_st>>>(kc, (int64_t)(cache / 2), 11);
        bk_fill_bf16<<<1024, 256, 0, g_st>>>(vc, (int64_t)(cache / 2), 12);
        bk_fill_bf16<<<1024, 256, 0, g_st>>>(q, (int64_t)B * row, 13);
        std::vector<int32_t> h_bt(n_blocks), h_seq(B), h_pos(B, C - 1);
        for (int i = 0; i < n_blocks; i++) h_bt[i] = i;
        for (int b = 0; b < B; b++) h_seq[b] = b;
        BENCH_CUDA(cudaMalloc(&bt, n_blocks * 4));
        BENCH_CUDA(cudaMalloc(&tseq, B * 4));
        BENCH_CUDA(cudaMalloc(&pos, B * 4));
        BENCH_CUDA(cudaMemcpy(bt, h_bt.data(), n_blocks * 4, cudaMemcpyHostToDevice));
        BENCH_CUDA(cudaMemcpy(tseq, h_seq.data(), B * 4, cudaMemcpyHostToDevice));
        BENCH_CUDA(cudaMemcpy(pos, h_pos.data(), B * 4, cudaMemcpyHostToDevice));
        const size_t wsb = kern_attn_workspace_bytes(B, nq, D, C);
        void *ws = NULL;
        if (wsb) BENCH_CUDA(cudaMalloc(&ws, wsb));
        double us[3];
        for (int m = 0; m < 3; m++) {
          if (modes[m]) setenv("SERVESIM_ATTN_HEADS", modes[m], 1);
          else unsetenv("SERVESIM_ATTN_HEADS");
          auto fn = [&](int) {
            BK_KERN(kern_attn_paged(out[m], q, kc, vc, bt, max_blocks, tseq, pos, B, nq, nkv, D, C,
                                    1.0f / sqrtf((float)D), ws, wsb, g_st));
          };
          us[m] = time_us(fn, 20, 15);
        }
        unsetenv("SERVESIM_ATTN_HEADS");
        const double e1 = nmse_dev(out[1], out[2], (int64_t)B * nq * D), e0 = nmse_dev(out[0], out[2], (int64_t)B * nq * D);
        const double e = e1 > e0 ? e1 : e0;
        const bool ok = e <= 1e-5;
        if (!ok) g_pass = false;
        const char *pick = fabs(us[0] - us[1]) < fabs(us[0] - us[2]) ? "split" : "group";
        printf("| %d | %d | %d | %.1f | %.1f | %.1f | %s | %.1e%s |\n", nq, B, C, us[0], us[1], us[2], pick, e,
               ok ? "" : " FAIL");
        cudaFree(kc); cudaFree(vc); cudaFree(q); cudaFree(bt); cudaFree(tseq); cudaFree(pos); cudaFree(ws);
        for (int i = 0; i < 3; i++) cudaFree(out[i]);
      }
    }
  }
}

static void bench_moe(const std::vector<int> &Ts, struct rng *r, bool parts) {
  const int E = 128, k = 8, H = 4096, I = 1536;
  const size_t nqg = (size_t)H / 8 * I, nsg = (size_t)H / 128 * I, nqd = (size_t)I / 8 * H, nsd = (size_t)I / 128 * H;
  const size_t bytes_expert = (2 * nqg + nqd) * 4 + (2 * nsg + nsd) * 2;
  /* checkpoint weights on the host (for the reference), repacked on the device */
  std::vector<int32_t> qg(E * nqg), qu(E * nqg), qd(E * nqd);
  std::vector<uint16_t> sg(E * nsg), su(E * nsg), sd(E * nsd);
  for (int e = 0; e < E; e++) {
    ref_w4a16_random(&qg[e * nqg], &sg[e * nsg], H, I, rng_u64(r), 0.002f, 0.006f);
    ref_w4a16_random(&qu[e * nqg], &su[e * nsg], H, I, rng_u64(r), 0.002f, 0.006f);
    ref_w4a16_random(&qd[e * nqd], &sd[e * nsd], I, H, rng_u64(r), 0.002f, 0.006f);
  }
  int32_t *d_tmpq, *d_tmpq2, *d_q13, *d_q2;
  uint16_t *d_tmps, *d_tmps2, *d_s13, *d_s2;
  BENCH_CUDA(cudaMalloc(&d_tmpq, nqg * 4));
  BENCH_CUDA(cudaMalloc(&d_tmpq2, nqg * 4));
  BENCH_CUDA(cudaMalloc(&d_tmps, nsg * 2));
  BENCH_CUDA(cudaMalloc(&d_tmps2, nsg * 2));
  BENCH_CUDA(cudaMalloc(&d_q13, E * nqg * 8));
  BENCH_CUDA(cudaMalloc(&d_s13, E * nsg * 4));
  BENCH_CUDA(cudaMalloc(&d_q2, E * nqd * 4));
  BENCH_CUDA(cudaMalloc(&d_s2, E * nsd * 2));
  for (int e = 0; e < E; e++) {
    BENCH_CUDA(cudaMemcpy(d_tmpq, &qg[e * nqg], nqg * 4, cudaMemcpyHostToDevice));
    BENCH_CUDA(cudaMemcpy(d_tmpq2, &qu[e * nqg], nqg * 4, cudaMemcpyHostToDevice));
    BENCH_CUDA(cudaMemcpy(d_tmps, &sg[e * nsg], nsg * 2, cudaMemcpyHostToDevice));
    BENCH_CUDA(cudaMemcpy(d_tmps2, &su[e * nsg], nsg * 2, cudaMemcpyHostToDevice));
    BK_KERN(kern_gptq_repack_gate_up(d_q13 + e * 2 * nqg, d_s13 + e * 2 * nsg, d_tmpq, d_tmps, d_tmpq2, d_tmps2, H, I, g_st));
    BENCH_CUDA(cudaMemcpy(d_tmpq, &qd[e * nqd], nqd * 4, cudaMemcpyHostToDevice));
    BENCH_CUDA(cudaMemcpy(d_tmps, &sd[e * nsd], nsd * 2, cudaMemcpyHostToDevice));
    BK_KERN(kern_gptq_repack(d_q2 + e * nqd, d_s2 + e * nsd, d_tmpq, d_tmps, I, H, g_st));
  }
  BENCH_CUDA(cudaDeviceSynchronize());
  struct ref_moe_weights w = {qg.data(), qu.data(), qd.data(), sg.data(), su.data(), sd.data()};
  const int maxT = *std::max_element(Ts.begin(), Ts.end());
  const int SETS = 4; /* routing sets rotated between launches, so hit experts change */
  uint16_t *d_x, *d_logits, *d_h, *d_y, *d_out;
  int32_t *d_ids, *d_off, *d_sorted, *d_prow;
  float *d_w;
  BENCH_CUDA(cudaMalloc(&d_x, (size_t)maxT * H * 2));
  BENCH_CUDA(cudaMalloc(&d_logits, (size_t)SETS * maxT * E * 2));
  BENCH_CUDA(cudaMalloc(&d_h, (size_t)maxT * k * I * 2));
  BENCH_CUDA(cudaMalloc(&d_y, (size_t)maxT * k * H * 2));
  BENCH_CUDA(cudaMalloc(&d_out, (size_t)maxT * H * 2));
  BENCH_CUDA(cudaMalloc(&d_ids, (size_t)SETS * maxT * k * 4));
  BENCH_CUDA(cudaMalloc(&d_w, (size_t)SETS * maxT * k * 4));
  BENCH_CUDA(cudaMalloc(&d_off, (E + 1) * 4));
  BENCH_CUDA(cudaMalloc(&d_sorted, (size_t)maxT * k * 4));
  BENCH_CUDA(cudaMalloc(&d_prow, (size_t)maxT * k * 4));
  bk_fill_bf16<<<1024, 256, 0, g_st>>>(d_x, (int64_t)maxT * H, rng_u64(r));
  bk_fill_bf16<<<1024, 256, 0, g_st>>>(d_logits, (int64_t)SETS * maxT * E, rng_u64(r));
  printf("\n| tokens | experts hit | us | GB/s | ratio to floor | floor us (hit experts' weights) | check |%s\n",
         parts ? " gate_up us | down us |" : "");
  printf("|---|---|---|---|---|---|---|%s\n", parts ? "---|---|" : "");
  for (int T : Ts) {
    auto run = [&](int set) {
      kern_moe_route(d_ids + (size_t)set * maxT * k, d_w + (size_t)set * maxT * k, d_logits + (size_t)set * maxT * E, T, E,
                     k, 1, g_st);
      kern_moe_align(d_off, d_sorted, d_prow, d_ids + (size_t)set * maxT * k, T, k, 0, E, NULL, g_st);
      kern_moe_w4a16_gate_up_silu(d_h, d_x, d_q13, d_s13, d_off, d_sorted, T, k, H, I, E, d_y, g_st);
      kern_moe_w4a16_down(d_y, d_h, d_q2, d_s2, d_off, T, k, I, H, E, g_st);
      kern_moe_combine(d_out, d_y, d_prow, d_w + (size_t)set * maxT * k, T, k, H, g_st);
    };
    /* route every set once (set 0 last, so d_out holds set 0), then validate set 0 on up to
     * 3 sampled tokens against the C reference */
    BENCH_CUDA(cudaMemset(d_out, 0xff, (size_t)T * H * 2));
    for (int set = SETS - 1; set >= 0; set--) run(set);
    BENCH_CUDA(cudaDeviceSynchronize());
    BENCH_CUDA(cudaGetLastError());
    std::vector<int32_t> ids((size_t)T * k);
    std::vector<float> tw((size_t)T * k);
    BENCH_CUDA(cudaMemcpy(ids.data(), d_ids, ids.size() * 4, cudaMemcpyDeviceToHost));
    BENCH_CUDA(cudaMemcpy(tw.data(), d_w, tw.size() * 4, cudaMemcpyDeviceToHost));
    const int samples[3] = {0, T / 2, T - 1};
    double num = 0, den = 0;
    for (int si = 0; si < 3 && si < T; si++) {
      const int t = samples[si];
      std::vector<uint16_t> xt(H), ot(H), og(H);
      BENCH_CUDA(cudaMemcpy(xt.data(), d_x + (size_t)t * H, H * 2, cudaMemcpyDeviceToHost));
      BENCH_CUDA(cudaMemcpy(og.data(), d_out + (size_t)t * H, H * 2, cudaMemcpyDeviceToHost));
      ref_moe_forward(ot.data(), xt.data(), &ids[(size_t)t * k], &tw[(size_t)t * k], &w, 1, k, H, I, 0, E);
      for (int n = 0; n < H; n++) {
        double a = ref_bf16_to_f32(og[n]), b = ref_bf16_to_f32(ot[n]);
        num += a != a ? INFINITY : (a - b) * (a - b);
        den += b * b;
      }
    }
    const double e = num / den;
    if (!(e <= 5e-4)) {
      printf("| %d | - | FAIL: nmse %.3g vs ref_moe_forward |\n", T, e);
      g_pass = 0;
      continue;
    }
    /* distinct experts hit, averaged over the routing sets */
    double hit = 0;
    for (int set = 0; set < SETS; set++) {
      std::vector<int32_t> si((size_t)T * k);
      BENCH_CUDA(cudaMemcpy(si.data(), d_ids + (size_t)set * maxT * k, si.size() * 4, cudaMemcpyDeviceToHost));
      std::vector<char> used(E, 0);
      for (int32_t id : si) used[id] = 1;
      hit += std::count(used.begin(), used.end(), 1);
    }
    hit /= SETS;
    const double floor_us = hit * bytes_expert / (g_copy_gbs * 1e3);
    const int per = T >= 1024 ? 4 : 12, batches = T >= 1024 ? 5 : 11;
    const double us = time_us([&](int i) { run(i % SETS); }, per, batches);
    printf("| %d | %.1f | %.1f | %.0f | %.2f | %.1f | nmse %.1e |", T, hit, us, hit * bytes_expert / (us * 1e3),
           us / floor_us, floor_us, e);
    if (parts) { /* each grouped GEMM alone, on routing set 0 (the last run above left its offsets) */
      run(0);
      const double us_gu = time_us(
          [&](int) { kern_moe_w4a16_gate_up_silu(d_h, d_x, d_q13, d_s13, d_off, d_sorted, T, k, H, I, E, d_y, g_st); }, per,
          batches);
      const double us_dn = time_us([&](int) { kern_moe_w4a16_down(d_y, d_h, d_q2, d_s2, d_off, T, k, I, H, E, g_st); }, per,
                                   batches);
      printf(" %.1f | %.1f |", us_gu, us_dn);
    }
    printf("\n");
  }
  cudaFree(d_tmpq); cudaFree(d_tmpq2); cudaFree(d_tmps); cudaFree(d_tmps2); cudaFree(d_q13); cudaFree(d_s13);
  cudaFree(d_q2); cudaFree(d_s2); cudaFree(d_x); cudaFree(d_logits); cudaFree(d_h); cudaFree(d_y); cudaFree(d_out);
  cudaFree(d_ids); cudaFree(d_w); cudaFree(d_off); cudaFree(d_sorted); cudaFree(d_prow);
}


/* The read-only kernels' loop: this thread's grid-strided 16-byte pieces of p, U in flight,
 * folded into one word */
template <int U>
static __device__ __forceinline__ uint32_t bk_read_fold(const uint4 *__restrict__ p, int64_t n16) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  uint32_t acc = 0;
  for (int64_t base = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; base < n16; base += stride * U) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t i = base + u * stride;
      v[u] = i < n16 ? __ldg(p + i) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < U; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  return acc;
}

/* --floor: what a kernel that only reads the weights achieves under the same timing method --
 * the bound any W4A16 kernel's small-M time sits above. Each thread issues U 16-byte loads of
 * a grid-strided slice before using any, folds them into one word, and writes only if the word
 * takes an impossible value (so the loads cannot be dropped). pdl: launched with programmatic
 * dependent launch, triggering the next call at its start and loading before its wait, i.e.
 * consecutive calls' reads overlap as far as the hardware lets them. */
template <int U, bool PDL>
__global__ void __launch_bounds__(256) bk_stream(const uint4 *__restrict__ p, int64_t n16, uint32_t *sink) {
  if (PDL) kern_pdl_trigger();
  const uint32_t acc = bk_read_fold<U>(p, n16);
  if (PDL) kern_pdl_wait();
  if (acc == 0x9e3779b9u) sink[0] = acc;
}

/* The same bytes read the way the W4A16 kernels walk them: block b reads its own contiguous
 * slab (n16 / gridDim.x pieces), each warp 512 contiguous bytes per load, U loads in flight. */
template <int U>
__global__ void __launch_bounds__(256) bk_slab(const uint4 *__restrict__ p, int64_t n16, uint32_t *sink) {
  const int64_t per = (n16 + gridDim.x - 1) / gridDim.x, b0 = blockIdx.x * per;
  const int64_t b1 = b0 + per < n16 ? b0 + per : n16;
  uint32_t acc = 0;
  for (int64_t base = b0 + threadIdx.x; base < b1; base += (int64_t)blockDim.x * U) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t i = base + (int64_t)u * blockDim.x;
      v[u] = i < b1 ? __ldg(p + i) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < U; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;
}

/* bk_stream under programmatic dependent launch plus the least a GEMM call in a chain does after
 * its wait: read activations the previous call wrote (one 16-byte load a thread of x, the first
 * min(x16, 256) pieces: every block one L2 round trip; where K > N the pieces past y16 were never
 * written, zeros from the memset -- the load's latency is the point) and write an output that
 * depends on them (y, grid-strided), the next call's x -- the bound for a kernel that reads its
 * activations after the wait. */
template <int U>
__global__ void __launch_bounds__(256) bk_chain(const uint4 *__restrict__ p, int64_t n16, const uint4 *x, int x16,
                                                uint4 *y, int y16, uint32_t *sink) {
  kern_pdl_trigger();
  uint32_t acc = bk_read_fold<U>(p, n16);
  kern_pdl_wait();
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  if ((int)threadIdx.x < x16) {
    const uint4 v = x[threadIdx.x]; /* written by the previous call: not through the read-only path */
    acc += v.x ^ v.y ^ v.z ^ v.w;
  }
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < y16; i += stride)
    y[i] = make_uint4(acc, acc >> 1, acc >> 2, acc >> 3);
  if (acc == 0x9e3779b9u) sink[0] = acc;
}

/* fn on blocks x 256 threads on g_st under programmatic dependent launch, whatever SERVESIM_PDL
 * says (the floor probe's overlap is the point) */
template <class... P, class... A>
static void bk_launch_pdl(void (*fn)(P...), int blocks, A... args) {
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.gridDim = dim3(blocks);
  cfg.blockDim = dim3(256);
  cfg.stream = g_st;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  BENCH_CUDA(cudaLaunchKernelEx(&cfg, fn, args...));
}

template <int U, bool PDL>
static void bk_stream_launch(const uint4 *p, int64_t n16, uint32_t *sink, int blocks) {
  if (PDL) bk_launch_pdl(bk_stream<U, PDL>, blocks, p, n16, sink);
  else bk_stream<U, PDL><<<blocks, 256, 0, g_st>>>(p, n16, sink);
}

/* One read-only launch: kind 0 grid-stride, 1 grid-stride under programmatic dependent
 * launch, 2 per-block slabs; U loads in flight per thread (1, 2, 4 or 8). */
static void bk_read_launch(int kind, int U, const uint4 *p, int64_t n16, uint32_t *sink, int blocks) {
  switch (kind * 16 + U) {
    case 1: bk_stream_launch<1, false>(p, n16, sink, blocks); break;
    case 2: bk_stream_launch<2, false>(p, n16, sink, blocks); break;
    case 4: bk_stream_launch<4, false>(p, n16, sink, blocks); break;
    case 8: bk_stream_launch<8, false>(p, n16, sink, blocks); break;
    case 17: bk_stream_launch<1, true>(p, n16, sink, blocks); break;
    case 18: bk_stream_launch<2, true>(p, n16, sink, blocks); break;
    case 20: bk_stream_launch<4, true>(p, n16, sink, blocks); break;
    case 24: bk_stream_launch<8, true>(p, n16, sink, blocks); break;
    case 33: bk_slab<1><<<blocks, 256, 0, g_st>>>(p, n16, sink); break;
    case 34: bk_slab<2><<<blocks, 256, 0, g_st>>>(p, n16, sink); break;
    case 36: bk_slab<4><<<blocks, 256, 0, g_st>>>(p, n16, sink); break;
    case 40: bk_slab<8><<<blocks, 256, 0, g_st>>>(p, n16, sink); break;
    default: fprintf(stderr, "bench_kernels: no read kernel for kind %d, U %d\n", kind, U); exit(1);
  }
}

/* One dependent-chain launch (bk_chain), U = 1, 2, 4 or 8 */
static void bk_chain_launch_u(int U, const uint4 *p, int64_t n16, const uint4 *x, int x16, uint4 *y, int y16,
                              uint32_t *sink, int blocks) {
  void (*fn)(const uint4 *, int64_t, const uint4 *, int, uint4 *, int, uint32_t *) =
      U == 1 ? bk_chain<1> : U == 2 ? bk_chain<2> : U == 4 ? bk_chain<4> : bk_chain<8>;
  bk_launch_pdl(fn, blocks, p, n16, x, x16, y, y16, sink);
}

static void bench_floor(const std::vector<shape> &shapes, int sms) {
  printf("\n### Read-only floor probe (graph replay, weights rotated beyond 2x L2)\n");
  printf("\n| shape | TP | MB | floor us (copy bw) | empty kernel us | read us | blocks/SM | U | read GB/s | read / floor "
         "| read us, PDL overlap | blocks/SM | U | GB/s | / floor |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  uint32_t *sink;
  BENCH_CUDA(cudaMalloc(&sink, 4));
  const double empty_us = time_us([&](int) { bk_stream<1, false><<<sms, 256, 0, g_st>>>(NULL, 0, sink); }, 20, 15);
  const double empty_pdl = time_us([&](int) { bk_stream_launch<1, true>(NULL, 0, sink, sms); }, 20, 15);
  printf("(empty kernel, %d blocks: %.2f us per call; with programmatic dependent launch %.2f us)\n", sms, empty_us,
         empty_pdl);
  for (const shape &s : shapes) {
    const size_t w_bytes = (size_t)s.K * s.N / 2 + (size_t)s.K / 128 * s.N * 2;
    const int64_t n16 = (int64_t)(w_bytes / 16);
    const int copies = bench_copies(w_bytes, g_l2_bytes);
    uint4 *d;
    BENCH_CUDA(cudaMalloc(&d, n16 * 16 * copies));
    BENCH_CUDA(cudaMemset(d, 0x5a, n16 * 16 * copies));
    /* kind 0: grid-stride reads; 1: the same with programmatic dependent launch; 2: per-block slabs */
    double best[3] = {1e30, 1e30, 1e30};
    int bb[3] = {0, 0, 0}, bu[3] = {0, 0, 0};
    for (int kind = 0; kind < 3; kind++)
      for (int bps : {1, 2, 4, 8})
        for (int U : {1, 2, 4, 8}) {
          const int blocks = bps * sms;
          const double us = time_us(
              [&](int i) { bk_read_launch(kind, U, d + (size_t)(i % copies) * n16, n16, sink, blocks); },
              std::max(20, copies), 15);
          if (us < best[kind]) { best[kind] = us; bb[kind] = bps; bu[kind] = U; }
        }
    printf("(%s: per-block slabs, best %.2f us at %d blocks/SM, U = %d)\n", s.name, best[2], bb[2], bu[2]);
    BENCH_CUDA(cudaGetLastError());
    const double floor_us = w_bytes / (g_copy_gbs * 1e3);
    /* the dependent chain at one row: call i reads x from buffer i & 1, writes y to the other */
    uint4 *xy;
    const int x16 = s.K * 2 / 16, y16 = s.N * 2 / 16, xy16 = std::max(x16, y16);
    BENCH_CUDA(cudaMalloc(&xy, (size_t)2 * xy16 * 16));
    BENCH_CUDA(cudaMemset(xy, 0, (size_t)2 * xy16 * 16));
    double best_c = 1e30;
    int bb_c = 0, bu_c = 0;
    for (int bps : {1, 2, 4, 8})
      for (int U : {1, 2, 4, 8}) {
        const double us = time_us(
            [&](int i) {
              bk_chain_launch_u(U, d + (size_t)(i % copies) * n16, n16, xy + (size_t)(i & 1) * xy16, x16,
                                xy + (size_t)((i + 1) & 1) * xy16, y16, sink, bps * sms);
            },
            std::max(20, copies), 15);
        if (us < best_c) { best_c = us; bb_c = bps; bu_c = U; }
      }
    BENCH_CUDA(cudaGetLastError());
    cudaFree(xy);
    printf("(%s: dependent chain -- the PDL read plus x read after the wait and y written, one row -- best %.2f us = "
           "%.2fx the floor at %d blocks/SM, U = %d)\n", s.name, best_c, best_c / floor_us, bb_c, bu_c);
    printf("| %s | %d | %.2f | %.2f | %.2f | %.2f | %d | %d | %.0f | %.2f | %.2f | %d | %d | %.0f | %.2f |\n", s.name, s.tp,
           w_bytes / 1e6, floor_us, empty_us, best[0], bb[0], bu[0], w_bytes / (best[0] * 1e3), best[0] / floor_us,
           best[1], bb[1], bu[1], w_bytes / (best[1] * 1e3), best[1] / floor_us);
    cudaFree(d);
  }
  cudaFree(sink);
}

int main(int argc, char **argv) {
  int parts = 0, quick = 0, only_moe = 0, only_gemm = 0, only_attn = 0, tune = 0, tune_large = 0, floor_probe = 0, mid = 0, small = 0;
  const char *only_shape = NULL, *only_m = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--mid")) mid = only_gemm = 1;
    else if (!strcmp(argv[i], "--small")) small = only_gemm = 1;
    else if (!strcmp(argv[i], "--tune")) tune = 1;
    else if (!strcmp(argv[i], "--tune-large")) tune_large = only_gemm = 1;
    else if (!strcmp(argv[i], "--moe")) only_moe = 1;
    else if (!strcmp(argv[i], "--parts")) parts = 1;
    else if (!strcmp(argv[i], "--gemm")) only_gemm = 1;
    else if (!strcmp(argv[i], "--attn")) only_attn = 1;
    else if (!strcmp(argv[i], "--floor")) floor_probe = 1;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
      only_shape = argv[++i];
      only_gemm = 1;
      if (strcmp(only_shape, "qkv") && strcmp(only_shape, "o_proj") && strcmp(only_shape, "gate_up") &&
          strcmp(only_shape, "down")) {
        fprintf(stderr, "bench_kernels: --only %s: not a shape (qkv, o_proj, gate_up, down)\n", only_shape);
        return 2;
      }
    }
    else if (!strcmp(argv[i], "--m") && i + 1 < argc) {
      only_m = argv[++i];
    }
    else {
      fprintf(stderr, "bench_kernels: unknown flag %s (flags: --quick, --mid, --small, --tune, --tune-large, --moe, --parts, --gemm, --attn, --floor, --only SHAPE, --m M[,M...])\n", argv[i]);
      return 2;
    }
  }
  bench_cuda_need_device("bench_kernels");
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  g_l2_bytes = prop.l2CacheSize;
  BENCH_CUDA(cudaStreamCreate(&g_st)); /* blocking: ordered with the cudaMemcpy/cudaMemset calls */
  measure_copy();
  printf("device: %s, %d SMs, L2 %zu MiB, driver API %d, runtime %d\n", prop.name, prop.multiProcessorCount,
         g_l2_bytes >> 20, drv, rt);
  const char *var = getenv("SERVESIM_W4_VARIANT"), *mvar = getenv("SERVESIM_W4_VARIANT_MOE");
  const char *lvar = getenv("SERVESIM_W4_LARGE");
  const char *pvar = getenv("SERVESIM_PDL");
  printf("SERVESIM_W4_VARIANT=%s SERVESIM_W4_VARIANT_MOE=%s SERVESIM_W4_LARGE=%s SERVESIM_PDL=%s (programmatic dependent "
         "launch: %s)\n",
         var ? var : "(default)", mvar ? mvar : "(default)", lvar ? lvar : "(default)", pvar ? pvar : "(default)",
         kern_pdl_on() ? "on" : "off");
  printf("device-to-device copy: %.0f GB/s (read + write); floor = int4 weight + scale bytes / that\n", g_copy_gbs);
  struct rng r;
  rng_seed(&r, 20261128);
  if (floor_probe) {
    bench_floor({{"qkv", 1, 4096, 9216}, {"o_proj", 1, 8192, 4096}, {"gate_up", 1, 4096, 3072}, {"down", 1, 1536, 4096},
                 {"gate_up", 4, 4096, 768}, {"down", 4, 384, 4096}},
                prop.multiProcessorCount);
    return 0;
  }
  if (only_attn) {
    bench_attn(quick);
    printf("\nvalidation: %s\n", g_pass ? "all configurations passed" : "SOME CONFIGURATIONS FAILED");
    return g_pass ? 0 : 1;
  }
  if (only_m && !only_moe) only_gemm = 1; /* --m alone: the GEMM table; with --moe: the MoE table */
  std::vector<int> list_m; /* --m M[,M...] */
  for (const char *p = only_m; p && *p;) {
    char *end;
    const long m = strtol(p, &end, 10);
    if (end == p || m < 1 || m > 4096 || (*end && *end != ',')) {
      fprintf(stderr, "bench_kernels: --m %s: not a list of counts 1..4096\n", only_m);
      return 2;
    }
    list_m.push_back((int)m);
    p = *end ? end + 1 : end;
  }
  if (!only_moe) {
    cublasHandle_t blas;
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) {
      fprintf(stderr, "bench_kernels: cublasCreate failed\n");
      return 1;
    }
    const size_t ws_bytes = kern_w4a16_workspace_bytes(4096, 9216);
    void *ws;
    BENCH_CUDA(cudaMalloc(&ws, ws_bytes));
    BENCH_CUDA(cudaMemset(ws, 0, ws_bytes));
    std::vector<shape> shapes = {
        {"qkv", 1, 4096, 9216},   {"o_proj", 1, 8192, 4096}, {"gate_up", 1, 4096, 3072}, {"down", 1, 1536, 4096},
        {"qkv", 2, 4096, 4608},   {"o_proj", 2, 4096, 4096}, {"gate_up", 2, 4096, 1536}, {"down", 2, 768, 4096},
        {"qkv", 4, 4096, 2304},   {"o_proj", 4, 2048, 4096}, {"gate_up", 4, 4096, 768},  {"down", 4, 384, 4096},
    };
    std::vector<int> Ms = {1, 4, 16, 32, 64, 128, 256, 1024, 4096};
    if (quick) {
      Ms = {1, 4, 16, 64, 256};
      shapes.resize(4);
    }
    if (mid) /* every shape and slice at the sizes where cuBLAS bf16 is the bar */
      Ms = {32, 64, 128, 256};
    if (small) /* every shape and slice at decode sizes, where the weight-read floor is the bar */
      Ms = {1, 4, 8, 16};
    if (tune) { /* the decode sizes, for comparing SERVESIM_W4_VARIANT settings */
      Ms = {1, 8, 16};
      shapes.resize(4);
    }
    if (tune_large) { /* batches of 64..256, for comparing SERVESIM_W4_LARGE settings */
      Ms = {64, 128, 256};
      shapes.resize(4);
    }
    if (!list_m.empty()) Ms = list_m; /* --m 64,256: these row counts only */
    printf("\n| shape | TP | K | N | M | w4a16 us | GB/s | ratio to floor | floor us | cuBLAS bf16 us | speedup | TFLOP/s | nmse |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const shape &s : shapes)
      if (!only_shape || !strcmp(only_shape, s.name)) bench_gemm(blas, s, Ms, ws, ws_bytes, &r);
    cudaFree(ws);
    cublasDestroy(blas);
  }
  if (!only_gemm) {
    std::vector<int> Ts = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    if (quick) Ts = {1, 8, 64, 512};
    if (tune) Ts = {1, 8, 32};
    if (!list_m.empty()) Ts = list_m; /* --m: these token counts */
    bench_moe(Ts, &r, parts != 0);
  }
  printf("\nvalidation: %s\n", g_pass ? "all configurations passed" : "SOME CONFIGURATIONS FAILED");
  return g_pass ? 0 : 1;
}
