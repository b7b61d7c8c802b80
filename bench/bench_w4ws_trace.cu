/* bench_w4ws_trace: a per-chunk timeline of one block of the warp-specialised wgmma W4A16 kernel
 * (kernels/kern_w4a16_wgmma.cu, the default from 17 rows on Hopper; traced here up to 256). This program compiles that
 * kernel itself with W4WS_TRACE defined, so the library's kernel has no trace code. Block (0, 0, 0)
 * stamps the SM clock when its producer has a free slot for chunk c, when consumer warp 0 sees
 * chunk c land, when it has dequantised it, when it has issued its wgmma and when chunk c-1's wgmma
 * are retired, the same four for consumer warp 4 (the second warpgroup); plus the block's start,
 * the end of its main loop and its end; and for each K split of tile (0, 0), its dependency wait,
 * its main loop and the split-K epilogue's barriers (ws_trace_ep).
 *
 * Usage: bench_w4ws_trace K N M (e.g. 4096 9216 256). Environment switches of the kernel apply
 * (SERVESIM_W4WS_CFG, _SPLITS, _SK, _RB, _TAIL, _ROWS, _WG). With stream-K, block 0's pieces
 * follow each other in the chunk column (ring positions). Then one more launch on its own, every
 * block stamping the global timer at its start, its first chunk's landing, its main loop's end and
 * its end: the grid's spread of each (min / median / max) and block 0's SM clock rate; with
 * stream-K also each block's pieces (first landing, loop end, an owner's partials added, end):
 * each kind's loop time a chunk and end stretch, and the five blocks that end last. Exit 77
 * without a compute capability 9.0 GPU. */
#define W4WS_TRACE 1
#include "kernels/kern_w4a16_wgmma.cu"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/bench_cuda.h"

int main(int argc, char **argv) {
  const int K = argc == 4 ? atoi(argv[1]) : 0, N = argc == 4 ? atoi(argv[2]) : 0, M = argc == 4 ? atoi(argv[3]) : 0;
  if (K <= 0 || K % 128 || N <= 0 || N % 16 || M < 17 || M > 256) {
    fprintf(stderr, "usage: bench_w4ws_trace K N M   (K a multiple of 128, N of 16, M = 17..256)\n");
    return 2;
  }
  cudaDeviceProp prop;
  bench_cuda_need_device("bench_w4ws_trace");
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (prop.major != 9 || prop.minor != 0 || !kern_w4::w4a16_wgmma_available()) {
    fprintf(stderr, "bench_w4ws_trace: needs a compute capability 9.0 GPU with the wgmma path on\n");
    return 77;
  }
  uint16_t *x, *y;
  uint8_t *q, *sc;
  BENCH_CUDA(cudaMalloc(&x, (size_t)M * K * 2));
  BENCH_CUDA(cudaMalloc(&y, (size_t)M * N * 2));
  BENCH_CUDA(cudaMalloc(&q, (size_t)K * N / 2));
  BENCH_CUDA(cudaMalloc(&sc, (size_t)K / 128 * N * 2));
  BENCH_CUDA(cudaMemset(x, 0x3c, (size_t)M * K * 2));
  BENCH_CUDA(cudaMemset(q, 0x5a, (size_t)K * N / 2));
  BENCH_CUDA(cudaMemset(sc, 0x3c, (size_t)K / 128 * N * 2));
  kern_w4::W4Args a = {};
  a.y = y;
  a.x = x;
  a.qrep = (const uint4 *)q;
  a.srep = (const uint32_t *)sc;
  a.M = M;
  a.K = K;
  a.N = N;
  /* the stream-K workspace: flags (zeroed once; the kernel leaves them zero) and partial slots */
  kern_w4::W4Ws ws = {};
  ws.max_flags = 16384;
  ws.part_floats = (int64_t)prop.multiProcessorCount * 2 * 64 * 256;
  BENCH_CUDA(cudaMalloc(&ws.cnt, (size_t)ws.max_flags * 4));
  BENCH_CUDA(cudaMemset(ws.cnt, 0, (size_t)ws.max_flags * 4));
  BENCH_CUDA(cudaMalloc(&ws.part, (size_t)ws.part_floats * 4));
  cudaStream_t st;
  BENCH_CUDA(cudaStreamCreate(&st));
  for (int i = 0; i < 3; i++)
    if (kern_w4::w4a16_wgmma_launch(a, prop.multiProcessorCount, ws, st)) {
      fprintf(stderr, "bench_w4ws_trace: launch failed: %s\n", err_msg());
      return 1;
    }
  BENCH_CUDA(cudaStreamSynchronize(st));
  static long long buf[10][kern_w4::kWsTraceChunks];
  BENCH_CUDA(cudaMemcpyFromSymbol(buf, kern_w4::ws_trace_buf, sizeof buf));
  const long long t0 = buf[4][0];
  int n = 0;
  while (n < kern_w4::kWsTraceChunks && buf[1][n] > t0 && buf[1][n] - t0 < 100000000LL) n++;
  printf("device %s; K=%d N=%d M=%d; block (0,0,0): %d chunks; SM cycles from the block's start\n", prop.name, K, N, M, n);
  printf("chunk | slot free | landed | dequantised | issued | c-1 retired | landed - prev landed | warp 4: landed | dequantised | issued | c-1 retired\n");
  for (int c = 0; c < n; c++)
    printf("%3d | %7lld | %7lld | %7lld | %7lld | %7lld | %5lld | %7lld | %7lld | %7lld | %7lld\n", c, buf[0][c] - t0, buf[1][c] - t0,
           buf[5][c] - t0, buf[2][c] - t0, buf[3][c] - t0, c ? buf[1][c] - buf[1][c - 1] : 0, buf[6][c] - t0, buf[7][c] - t0,
           buf[8][c] - t0, buf[9][c] - t0);
  printf("loop done %lld, end %lld\n", buf[4][1] - t0, buf[4][2] - t0);
  /* the K splits of tile (0, 0): SM cycles from each block's dependency wait's return; the global
   * timer (ns) relative to split 0's, across SMs */
  static long long ep[kern_w4::kW4gMaxSplits][10];
  BENCH_CUDA(cudaMemcpyFromSymbol(ep, kern_w4::ws_trace_ep, sizeof ep));
  printf("split | loop done | block barrier | cluster barrier 1 | summed, stored | cluster barrier 2 | wait returned ns | end ns\n");
  for (int z = 0; z < kern_w4::kW4gMaxSplits; z++) {
    if (!ep[z][1]) continue;
    printf("%d", z);
    for (int k = 3; k < 8; k++) printf(" | %6lld", ep[z][k] ? ep[z][k] - ep[z][1] : -1);
    printf(" | %6lld | %6lld\n", ep[z][8] - ep[0][8], ep[z][9] ? ep[z][9] - ep[0][8] : -1);
  }
  /* the whole grid, one more launch on its own (no predecessor to overlap): every block's stamps */
  static long long blk[kern_w4::kWsTraceBlocks][4][2];
  static long long pc[kern_w4::kWsTraceBlocks][kern_w4::kWsTracePieces][5];
  memset(blk, 0, sizeof blk);
  memset(pc, 0, sizeof pc);
  BENCH_CUDA(cudaMemcpyToSymbol(kern_w4::ws_trace_blk, blk, sizeof blk));
  BENCH_CUDA(cudaMemcpyToSymbol(kern_w4::ws_trace_piece, pc, sizeof pc));
  if (kern_w4::w4a16_wgmma_launch(a, prop.multiProcessorCount, ws, st)) {
    fprintf(stderr, "bench_w4ws_trace: launch failed: %s\n", err_msg());
    return 1;
  }
  BENCH_CUDA(cudaStreamSynchronize(st));
  BENCH_CUDA(cudaMemcpyFromSymbol(blk, kern_w4::ws_trace_blk, sizeof blk));
  int nb = 0;
  while (nb < kern_w4::kWsTraceBlocks && blk[nb][3][0]) nb++;
  if (nb == 0) return 0;
  long long g0 = blk[0][0][0], gend = 0;
  for (int b = 0; b < nb; b++) {
    g0 = blk[b][0][0] < g0 ? blk[b][0][0] : g0;
    gend = blk[b][3][0] > gend ? blk[b][3][0] : gend;
  }
  /* per stamp k (relative to the earliest start) and per stretch (loop: 1 -> 2, epilogue: 2 -> 3),
   * the minimum, median and maximum over the blocks, in ns */
  static long long v[kern_w4::kWsTraceBlocks];
  auto stats = [&](const char *what, auto get) {
    for (int b = 0; b < nb; b++) v[b] = get(b);
    std::sort(v, v + nb);
    printf("%-28s min %7lld  median %7lld  max %7lld ns\n", what, v[0], v[nb / 2], v[nb - 1]);
  };
  printf("grid: %d blocks (stamped ones, linear index), %lld ns from the first start to the last end; block 0's SM clock "
         "%.3f GHz\n",
         nb, gend - g0, (double)(blk[0][3][1] - blk[0][0][1]) / (double)(blk[0][3][0] - blk[0][0][0]));
  const char *names[4] = {"start", "first chunk landed", "main loop done", "end"};
  for (int k = 0; k < 4; k++) stats(names[k], [&](int b) { return blk[b][k][0] - g0; });
  stats("loop (landed -> done)", [&](int b) { return blk[b][2][0] - blk[b][1][0]; });
  stats("epilogue (done -> end)", [&](int b) { return blk[b][3][0] - blk[b][2][0]; });
  /* stream-K: each block's pieces (kernels/wsk_plan.h), the kinds' loop and end stretches, and
   * the blocks that end last */
  BENCH_CUDA(cudaMemcpyFromSymbol(pc, kern_w4::ws_trace_piece, sizeof pc));
  if (!pc[0][0][1]) return 0;
  static const char *kinds[4] = {"whole", "owner", "part", "split"};
  for (int kind = 0; kind < 3; kind++) {
    int m = 0;
    static long long lp[kern_w4::kWsTraceBlocks * kern_w4::kWsTracePieces], ep[kern_w4::kWsTraceBlocks * kern_w4::kWsTracePieces],
        wt[kern_w4::kWsTraceBlocks * kern_w4::kWsTracePieces];
    for (int b = 0; b < nb; b++)
      for (int i = 0; i < kern_w4::kWsTracePieces; i++)
        if (pc[b][i][1] && pc[b][i][0] / 65536 == kind) {
          const long long n = pc[b][i][0] % 65536;
          lp[m] = n ? (pc[b][i][2] - pc[b][i][1]) / n : 0;
          wt[m] = kind == 1 ? pc[b][i][3] - pc[b][i][2] : 0;
          ep[m++] = pc[b][i][4] - (kind == 1 ? pc[b][i][3] : pc[b][i][2]);
        }
    if (!m) continue;
    std::sort(lp, lp + m);
    std::sort(ep, ep + m);
    std::sort(wt, wt + m);
    printf("%-5s pieces %4d: loop ns a chunk %lld / %lld / %lld; ", kinds[kind], m, lp[0], lp[m / 2], lp[m - 1]);
    if (kind == 1) printf("partials waited for and added %lld / %lld / %lld ns; ", wt[0], wt[m / 2], wt[m - 1]);
    printf("%s %lld / %lld / %lld ns (min / median / max)\n", kind == 2 ? "partial written" : "output stored", ep[0],
           ep[m / 2], ep[m - 1]);
  }
  static int order[kern_w4::kWsTraceBlocks];
  for (int b = 0; b < nb; b++) order[b] = b;
  std::sort(order, order + nb, [&](int x, int y) { return blk[x][3][0] > blk[y][3][0]; });
  printf("the last blocks to end (ns from the first start): block: end; pieces kind/chunks landed..loop done..end\n");
  for (int r = 0; r < 5 && r < nb; r++) {
    const int b = order[r];
    printf("%4d: %lld;", b, blk[b][3][0] - g0);
    for (int i = 0; i < kern_w4::kWsTracePieces && pc[b][i][1]; i++)
      printf(" %s/%lld %lld..%lld..%lld", kinds[pc[b][i][0] / 65536], pc[b][i][0] % 65536, pc[b][i][1] - g0, pc[b][i][2] - g0,
             pc[b][i][4] - g0);
    printf("\n");
  }
  return 0;
}
