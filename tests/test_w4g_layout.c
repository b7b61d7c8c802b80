/* test_w4g_layout: the contract between the repacked int4 weights (ref_w4a16.h) and the wgmma
 * path (kernels/w4g_layout.h), checked on the CPU by emulating what the hardware reads: each
 * warp's A fragment registers as the kernel dequantises them from the tile words w4g_word of each
 * step (mma.m16n8k16 layout: rows g / g+8, logical k 2t, 2t+1, 2t+8, 2t+9), and B
 * from shared memory staged by w4g_layout_off16 through the descriptor's K-major, no-swizzle
 * addressing (PTX ISA: element (n, k) of a k16 step at (n/8)*SBO + (n%8)*16 + (k/8)*LBO +
 * (k%8)*2). The emulated product must equal the plain GEMM on the dequantised weights; the
 * words a lane's own 16 bytes hold (the mma.sync kernels' k order) must not -- so the test can
 * tell the two apart. And the way
 * out: the accumulators staged into the output tile by stmatrix .m8n8.x2.trans at
 * w4g_out_row_off (PTX ISA: lane l holds elements (l / 4, 2 (l % 4) + {0,1}) of each 8 x 8
 * matrix; with .trans memory row r of the matrix, addressed by lane 8 m + r, takes its column r),
 * then read out by w4g_out_seg_row / w4g_out_seg, must put every (token, column) where y wants
 * it, for whole tiles and for every K-split share, with each stmatrix's eight rows on distinct
 * banks. */
#include <math.h>
#include <string.h>

#include "kernels/ref_w4a16.h"
#include "kernels/w4g_layout.h"
#include "tests/check.h"
#include "tests/kern_test_util.h"

enum { K = 256, N = 64, BT = 64, M = 40, KC = K / 64, NT16 = N / 16 };

/* The kernel's dequantisation of nibble q with bf16 scale s: bf16((q - 8) * s). */
static float w4g_dq(int q, bf16_t s) { return ref_bf16_to_f32(ref_f32_to_bf16((float)(q - 8) * ref_bf16_to_f32(s))); }

/* Emulated D [N weight rows][BT tokens] over the whole K, the A words read as the kernel does or
 * (kernel_read 0) from the lane's own 16 bytes, which hold another k order. */
static void emulate(float *D, const int32_t *qrep, const bf16_t *srep, const bf16_t *x, int kernel_read) {
  static uint8_t smem[4 * BT * 128];
  memset(D, 0, sizeof(float) * N * BT);
  for (int c = 0; c < KC; c++) {
    /* stage the chunk in plain k order, 16 bytes a copy: rows past M repeat row M-1, as the
     * kernel does */
    memset(smem, 0, sizeof smem);
    for (int r = 0; r < BT; r++) {
      const int row = r < M ? r : M - 1;
      for (int j = 0; j < 8; j++) memcpy(smem + w4g_layout_off16(BT, r, j), x + (size_t)row * K + c * 64 + 8 * j, 16);
    }
    for (int s = 0; s < 4; s++) {
      /* A: warp w (weight tile nt = w) -> rows 16w..16w+15, logical k 0..15 of step s */
      float A[N][16];
      for (int w = 0; w < NT16; w++)
        for (int lane = 0; lane < 32; lane++) {
          const int g = lane >> 2, t = lane & 3;
          const uint32_t *chunk = (const uint32_t *)qrep + ((size_t)w * KC + c) * 128;
          /* what the kernel loads; or, wrongly, word s of the lane's own 16 bytes */
          const uint32_t q = kernel_read ? chunk[w4g_word(g, s, t)] : chunk[4 * lane + s];
          const bf16_t s_lo = srep[(((size_t)(c >> 1) * NT16 + w) * 8 + g) * 2],
                       s_hi = srep[(((size_t)(c >> 1) * NT16 + w) * 8 + g) * 2 + 1];
          for (int reg = 0; reg < 4; reg++) {
            const int row = 16 * w + g + ((reg & 1) ? 8 : 0), k0 = 2 * t + ((reg & 2) ? 8 : 0);
            const bf16_t sc = (reg & 1) ? s_hi : s_lo;
            A[row][k0] = w4g_dq((int)((q >> (4 * reg)) & 0xf), sc);         /* low half: nibble reg */
            A[row][k0 + 1] = w4g_dq((int)((q >> (4 * reg + 16)) & 0xf), sc); /* high half: nibble reg+4 */
          }
        }
      /* B through the descriptor addressing of step s */
      const uint8_t *start = smem + s * w4g_step_bytes(BT);
      for (int m = 0; m < N; m++)
        for (int n = 0; n < BT; n++) {
          float acc = 0;
          for (int vk = 0; vk < 16; vk++) {
            bf16_t b;
            memcpy(&b, start + (n >> 3) * W4G_SBO + (n & 7) * 16 + (vk >> 3) * W4G_LBO + (vk & 7) * 2, 2);
            acc += A[m][vk] * ref_bf16_to_f32(b);
          }
          D[m * BT + n] += acc;
        }
    }
  }
}

/* A distinct 16-bit payload for (token m, column n) of a 128 x 192 tile */
static uint16_t out_code(int m, int n) { return (uint16_t)(m * 192 + n); }

/* Stage groups lo .. hi - 1 of a bt-row tile as the 4 nwg consumer warps do, read them out as
 * the 128 nwg threads do, and check y; returns the number of misplaced values. */
static int emulate_out(int nwg, int bt, int lo, int hi) {
  static uint8_t tile[128 * (128 * 3 + 16)];
  static uint16_t y[128][192];
  const int pitch = w4g_out_pitch(nwg), cols = 64 * nwg;
  memset(tile, 0xee, sizeof tile);
  memset(y, 0xff, sizeof y);
  int bad = 0;
  for (int w = 0; w < 4 * nwg; w++)
    for (int i = lo; i < hi; i++) {
      uint32_t reg[32][2]; /* each lane's two registers: matrix 0 (columns g), 1 (columns g + 8) */
      for (int l = 0; l < 32; l++) {
        const int g = l >> 2, t = l & 3;
        for (int m = 0; m < 2; m++)
          reg[l][m] = (uint32_t)out_code(8 * i + 2 * t, 16 * w + 8 * m + g) |
                      (uint32_t)out_code(8 * i + 2 * t + 1, 16 * w + 8 * m + g) << 16;
      }
      for (int m = 0; m < 2; m++) {
        int banks = 0;
        for (int rr = 0; rr < 8; rr++) {
          const uint32_t at = w4g_out_row_off(nwg, w, 8 * m + rr, i);
          if (at + 16 > (uint32_t)bt * pitch) return -1;
          banks |= 1 << ((at / 16) % 8);
          for (int c = 0; c < 8; c++) { /* .trans: row rr, element c = matrix element (c, rr) */
            const int src = 4 * c + rr / 2;
            const uint16_t v = (uint16_t)(reg[src][m] >> (16 * (rr & 1)));
            memcpy(tile + at + 2 * c, &v, 2);
          }
        }
        if (banks != 0xff) bad++; /* the eight rows of one matrix not on distinct banks */
      }
    }
  for (int idx = 0; idx < 8 * nwg * 8 * (hi - lo); idx++) {
    const int r = w4g_out_seg_row(nwg, lo, idx), sg = w4g_out_seg(nwg, idx);
    if (r >= bt || 8 * sg + 8 > cols) return -1;
    memcpy(&y[r][8 * sg], tile + r * pitch + 16 * sg, 16);
  }
  for (int m = 0; m < 128; m++)
    for (int n = 0; n < 192; n++)
      bad += (m >= 8 * lo && m < 8 * hi && n < cols) ? y[m][n] != out_code(m, n) : y[m][n] != 0xffff;
  return bad;
}

int main(void) {
  struct rng r;
  rng_seed(&r, kt_seed("test_w4g_layout"));
  int32_t *qw = kt_alloc(4 * (size_t)K / 8 * N), *qrep = kt_alloc(4 * (size_t)K * N / 8);
  uint16_t *sc = kt_alloc(2 * (size_t)K / 128 * N);
  bf16_t *srep = kt_alloc(2 * (size_t)K / 128 * N), *x = kt_alloc(2 * (size_t)M * K);
  ref_w4a16_random(qw, sc, K, N, rng_u64(&r), 0.002f, 0.01f);
  ref_w4a16_repack(qrep, srep, qw, sc, K, N);
  kt_fill_bf16(&r, x, (int64_t)M * K, 1.0f);
  /* the plain product on the same dequantised weights */
  static float ref[N * BT], D[N * BT];
  for (int m = 0; m < N; m++)
    for (int n = 0; n < M; n++) {
      double acc = 0;
      for (int k = 0; k < K; k++) {
        const bf16_t s_bf = ref_f32_to_bf16(ref_w4a16_f16_to_f32(sc[(k / 128) * N + m]));
        acc += (double)w4g_dq(ref_w4a16_get(qw, N, k, m), s_bf) * ref_bf16_to_f32(x[(size_t)n * K + k]);
      }
      ref[m * BT + n] = (float)acc;
    }
  for (int kernel_read = 1; kernel_read >= 0; kernel_read--) {
    emulate(D, qrep, srep, x, kernel_read);
    double num = 0, den = 0;
    for (int m = 0; m < N; m++)
      for (int n = 0; n < M; n++) {
        const double e = D[m * BT + n] - ref[m * BT + n];
        num += e * e;
        den += (double)ref[m * BT + n] * ref[m * BT + n];
      }
    const double nmse = num / den;
    if (kernel_read) CHECK_MSG(nmse < 1e-10, "the wgmma operands do not reproduce the GEMM: nmse %.3g", nmse);
    else CHECK_MSG(nmse > 0.5, "a lane's own words should not match: nmse %.3g", nmse);
    printf("A words %s: nmse %.3g\n", kernel_read ? "w4g_word" : "a lane's own 16 bytes", nmse);
  }
  /* the output tile of one, two and three consumer warpgroups: whole tiles of 64 and 128 rows,
   * and each rank's share of 2..8 K splits */
  for (int nwg = 1; nwg <= 3; nwg++)
    for (int bt = 64; bt <= 128; bt *= 2) {
      const int G = bt / 8;
      const int e = emulate_out(nwg, bt, 0, G);
      CHECK_MSG(e == 0, "output tile of %d rows x %d columns: %d values misplaced (-1: past the tile)", bt, 64 * nwg, e);
      for (int splits = 2; splits <= 8; splits++)
        for (int rank = 0; rank < splits; rank++) {
          const int lo = rank * G / splits, hi = (rank + 1) * G / splits;
          const int es = emulate_out(nwg, bt, lo, hi);
          CHECK_MSG(es == 0, "output tile of %d rows x %d columns, share %d of %d: %d values misplaced", bt, 64 * nwg,
                    rank, splits, es);
        }
    }
  free(qw); free(qrep); free(sc); free(srep); free(x);
  return check_report("test_w4g_layout");
}
