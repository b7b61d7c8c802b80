/* bench_w4p_trace: a per-block timeline of the preload W4A16 kernel (kernels/kern_w4a16_preload.cu)
 * inside a chain of calls, the way bench_kernels times it: 20 calls (or one a weight copy)
 * captured in one CUDA graph under programmatic dependent launch, weights rotated over copies
 * larger than twice the L2.
 * This program compiles that kernel itself with W4P_TRACE defined, so the library's kernel has
 * no trace code; each block's thread 0 stamps the global timer (ns) at its start, when its
 * dependency wait returns, when warp 0 has issued its first chunk's mmas (that chunk's weights
 * and activations are in), when warp 0's main loop is done, and at its end.
 *
 * For the last call of a replay (call 19 of 20, or the last of a longer chain) against the call
 * before it, it prints the percentiles over blocks of those five moments, counted from the end
 * of that previous call (its last block's end stamp), and of the phases of each block: start ->
 * wait returned, wait -> first chunk, first chunk -> loop done (activations, dequantisation,
 * mmas), loop done -> end (reduction, store, cluster). A shape the kernel does not take at M
 * rows (no plan: qkv at 9..16 rows, which the split-K kernel runs) gets a "no plan" row.
 * Weights and activations are constants (the timing does not depend on their values).
 * A second table follows: for each chunk u of warp 0, when it had issued that chunk's mmas
 * (the chunk's weights and activations in), counted from that block's wait, p50 / p90 over the
 * blocks -- the pace of the loop after the wait, chunk by chunk.
 *
 * Usage: bench_w4p_trace [M] (default 1; 1..16). Exit 77 without a GPU. Environment switches of
 * the kernel apply (SERVESIM_W4P_CFG, _TRIGGER; _WL1 to the library's kernel only, not to the
 * variants below, whose weight loads always skip L1). SERVESIM_W4P_TRACE_P (1..8 rows only) traces a
 * variant instead of the library's kernel, with the library's plan: 1 no activation loads, 2 no
 * math, 3 neither (kern_w4a16_preload.cu's W4P_NO_X, W4P_NO_MATH), 4 the weights loaded after
 * the wait (W4P_W_AFTER). */
#define W4P_TRACE 1
#include "kernels/kern_w4a16_preload.cu"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bench_w4p.h"

namespace {

struct TrShape {
  const char *name;
  int K, N;
};

/* Launches call a of a chain: the library's launcher (p = 0) or variant p with its plan */
int tr_launch(const kern_w4::W4Args &a, int p, int sms, cudaStream_t st) {
  int launched = 0;
  if (p == 0) return kern_w4::w4a16_preload_launch(a, sms, st, &launched) || !launched;
  const w4p_plan_t pl = bench_w4p_plan("bench_w4p_trace", a.M, a.K, a.N, sms);
  if (pl.cfg < 0) return 1;
  kern_w4::w4p_trace_last_blocks = pl.blocks;
  return bench_w4p_launch(bench_w4p_kernel(pl.cfg, w4p_plan_row_tiles(a.M), p), pl, a, 0, st);
}

/* the second table's rows, printed after the first */
std::vector<std::string> g_chunk_rows;

void tr_shape(const TrShape &s, int M, int p, int sms, size_t l2, cudaStream_t st) {
  if (bench_w4p_plan("bench_w4p_trace", M, s.K, s.N, sms).cfg < 0) {
    printf("| %s | %d | no plan (the split-K kernel runs) | | | | | | | | | | | | |\n", s.name, M);
    g_chunk_rows.push_back("| " + std::string(s.name) + " | " + std::to_string(M) + " | no plan |");
    return;
  }
  BenchW4pBufs bufs = bench_w4p_alloc(M, s.K, s.N, l2);
  const int calls = bench_w4p_calls(bufs);
  auto launch = [&](int i) {
    kern_w4::W4Args a = bench_w4p_args(bufs, i);
    a.topk = i; /* the call index, for the trace slot */
    if (tr_launch(a, p, sms, st)) {
      fprintf(stderr, "bench_w4p_trace: %s M=%d: the preload kernel did not launch (%s)\n", s.name, M, err_msg());
      exit(1);
    }
  };
  cudaGraphExec_t exec = bench_graph_capture(st, calls, launch);
  { /* chunk stamps of an earlier shape must not pass for this one's (warp 0 may have fewer chunks) */
    void *cb = NULL;
    BENCH_CUDA(cudaGetSymbolAddress(&cb, kern_w4::w4p_trace_chunk));
    BENCH_CUDA(cudaMemset(cb, 0, sizeof kern_w4::w4p_trace_chunk));
  }
  cudaEvent_t e0, e1;
  BENCH_CUDA(cudaEventCreate(&e0));
  BENCH_CUDA(cudaEventCreate(&e1));
  for (int r = 0; r < 5; r++) BENCH_CUDA(cudaGraphLaunch(exec, st));
  const double us = bench_graph_replay_us(exec, st, e0, e1); /* the replay the trace holds */
  const int nb = kern_w4::w4p_trace_last_blocks;
  if (nb > kern_w4::kW4pTraceBlocks) {
    fprintf(stderr, "bench_w4p_trace: %s: %d blocks, the trace holds %d\n", s.name, nb, kern_w4::kW4pTraceBlocks);
    exit(1);
  }
  constexpr int NS = kern_w4::kW4pTraceStamps;
  static unsigned long long buf[2][kern_w4::kW4pTraceBlocks][NS];
  BENCH_CUDA(cudaMemcpyFromSymbol(buf, kern_w4::w4p_trace_buf, sizeof buf));
  /* the last call but one in slot 0, the last (an odd index: bench_w4p_calls) in slot 1 */
  unsigned long long prev_end = 0, prev_start = ~0ull;
  for (int b = 0; b < nb; b++) {
    prev_end = std::max(prev_end, buf[0][b][NS - 1]);
    prev_start = std::min(prev_start, buf[0][b][0]);
  }
  std::vector<double> at[NS], ph[NS - 1];
  unsigned long long cur_end = 0;
  for (int b = 0; b < nb; b++) {
    /* the first-chunk stamp (2) is left from an earlier call, or 0, where warp 0 has no chunks
     * (more warps than groups: down at TP=4); such blocks are left out of its columns */
    const bool first = buf[1][b][2] >= buf[1][b][1];
    for (int k = 0; k < NS; k++)
      if (k != 2 || first) at[k].push_back(((double)buf[1][b][k] - (double)prev_end) / 1000.0);
    for (int k = 0; k < NS - 1; k++)
      if ((k != 1 && k != 2) || first) ph[k].push_back(((double)buf[1][b][k + 1] - (double)buf[1][b][k]) / 1000.0);
    cur_end = std::max(cur_end, buf[1][b][NS - 1]);
  }
  printf("| %s | %d | %d | %.2f | %.2f | %.2f |", s.name, M, nb, us / calls, (double)(prev_end - prev_start) / 1000.0,
         ((double)cur_end - (double)prev_end) / 1000.0);
  for (int k = 0; k < NS; k++)
    if (at[k].empty()) printf(" - |");
    else printf(" %.2f / %.2f / %.2f |", bench_pct(at[k], 10), bench_pct(at[k], 50), bench_pct(at[k], 90));
  for (int k = 0; k < NS - 1; k++)
    if (ph[k].empty()) printf(" - |");
    else printf(" %.2f / %.2f |", bench_pct(ph[k], 50), bench_pct(ph[k], 90));
  printf("\n");
  /* the second table: chunk u of warp 0, from the block's wait (slot 1, the last call) */
  constexpr int NC = kern_w4::kW4pTraceChunks;
  static unsigned long long chunk[2][kern_w4::kW4pTraceBlocks][NC];
  BENCH_CUDA(cudaMemcpyFromSymbol(chunk, kern_w4::w4p_trace_chunk, sizeof chunk));
  char cell[64];
  std::string row = "| " + std::string(s.name) + " | " + std::to_string(M) + " |";
  for (int u = 0; u < NC; u++) {
    std::vector<double> v;
    for (int b = 0; b < nb; b++)
      if (chunk[1][b][u] >= buf[1][b][1]) v.push_back(((double)chunk[1][b][u] - (double)buf[1][b][1]) / 1000.0);
    if (v.empty()) snprintf(cell, sizeof cell, " - |");
    else snprintf(cell, sizeof cell, " %.2f / %.2f |", bench_pct(v, 50), bench_pct(v, 90));
    row += cell;
  }
  g_chunk_rows.push_back(row);
  cudaGraphExecDestroy(exec);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  bench_w4p_free(bufs);
}

} // namespace

int main(int argc, char **argv) {
  int M;
  cudaDeviceProp prop;
  cudaStream_t st;
  if (int rc = bench_w4p_start(argc, argv, "bench_w4p_trace", &M, &prop, &st)) return rc;
  const int p = kern_env_int("SERVESIM_W4P_TRACE_P", 0);
  if (p < 0 || p > 4 || (p > 0 && M > 8)) {
    fprintf(stderr, "bench_w4p_trace: SERVESIM_W4P_TRACE_P=%d: 0..4, and 0 above 8 rows\n", p);
    return 2;
  }
  static const char *const variant[] = {"the library's kernel", "no activation loads", "no math",
                                        "neither activations nor math", "weights loaded after the wait"};
  printf("device: %s, %d SMs; programmatic dependent launch: %s; %s\n", prop.name, prop.multiProcessorCount,
         kern_pdl_on() ? "on" : "off", variant[p]);
  printf("times in us; moments counted from the end of the previous call (its last block); p10 / p50 / p90 over blocks\n\n");
  printf("| shape | M | blocks | us a call (graph) | previous call's span | end - previous end | start | wait returned | first chunk "
         "| loop done | end | start -> wait p50 / p90 | wait -> first chunk | first chunk -> loop | loop -> end |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  const TrShape shapes[] = {{"qkv", 4096, 9216}, {"o_proj", 8192, 4096}, {"gate_up", 4096, 3072}, {"down", 1536, 4096},
                            {"qkv TP=2", 4096, 4608}, {"down TP=4", 384, 4096}};
  for (const TrShape &s : shapes) tr_shape(s, M, p, prop.multiProcessorCount, (size_t)prop.l2CacheSize, st);
  printf("\nwarp 0's chunk u issued (its weights and activations in), us after its block's wait returned, p50 / p90 "
         "over blocks (- : warp 0 has no chunk u)\n\n| shape | M |");
  for (int u = 0; u < kern_w4::kW4pTraceChunks; u++) printf(" %d |", u);
  printf("\n|---|---|");
  for (int u = 0; u < kern_w4::kW4pTraceChunks; u++) printf("---|");
  printf("\n");
  for (const std::string &r : g_chunk_rows) printf("%s\n", r.c_str());
  cudaStreamDestroy(st);
  return 0;
}
