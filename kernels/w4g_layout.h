/* w4g_layout: the contract between the repacked int4 weights (ref_w4a16.h) and the wgmma W4A16
 * path (kern_w4a16_wgmma.cu), in plain C so that CI checks it (tests/test_w4g_layout.c emulates
 * what wgmma reads).
 *
 * Activations (wgmma's B operand) sit in shared memory in plain k order, K-major without
 * swizzle: 8-row core matrices of 16 bytes per row; element (n, k) of a k16 step at
 * start + (n / 8) * SBO + (n % 8) * 16 + (k / 8) * LBO + (k % 8) * 2, so each 16-byte piece of a
 * row (one k8 slice) is one copy.
 *
 * Weights (the A operand, registers): the repacked word of lane (g, t) for mma step s of a k64
 * chunk holds the real k 16t + 4s + {0,1} (nibbles 0, 4 for row g, 1, 5 for row g + 8) and
 * 16t + 4s + {2,3} (nibbles 2, 6 and 3, 7), where the mma fragment's logical k are 2t + {0,1}
 * and 2t + 8 + {0,1}. With B in plain order, lane t's word for step s must instead hold the
 * real k 16s + 2t + {0,1} and 16s + 8 + 2t + {0,1} -- the same 4 lanes' 16 words, transposed.
 * A word's bytes 0 and 2 hold its k {0,1} (rows g and g + 8 in each byte's two nibbles), bytes
 * 1 and 3 its k {2,3}; lane t's plain word for step s is made of the k pair 2t + {0,1} (bytes
 * 0, 2 for even t, 1, 3 for odd) of lane s's words t / 2 (into bytes 0, 2) and 2 + t / 2 (into
 * bytes 1, 3): one byte_perm. The kernel moves the parts with four quad shuffles;
 * w4g_natural_word is the reference. */
#ifndef SERVESIM_W4G_LAYOUT_H
#define SERVESIM_W4G_LAYOUT_H

#include <stdint.h>

#ifdef __CUDACC__
#define W4G_LAYOUT_HD __host__ __device__
#else
#define W4G_LAYOUT_HD
#endif

#define W4G_LBO 128 /* bytes between the two k-halves (cores) of a row group in a k16 step */
#define W4G_SBO 256 /* bytes between row groups of 8 */
#define W4G_SEL_LO 0x6240u /* byte_perm selector: bytes 0, 2 of a word and of the next */
#define W4G_SEL_HI 0x7351u /* bytes 1, 3 of each */

/* Bytes of one k16 step's block for bt rows (the descriptor start of step s is s times this). */
static inline W4G_LAYOUT_HD int w4g_step_bytes(int bt) { return bt / 8 * W4G_SBO; }

/* Byte offset of (row r, k8 slice j = 0..7 of the k64 chunk) in a stage of bt rows. */
static inline W4G_LAYOUT_HD uint32_t w4g_layout_off16(int bt, int r, int j) {
  return (uint32_t)((j >> 1) * w4g_step_bytes(bt) + (r >> 3) * W4G_SBO + (j & 1) * W4G_LBO + (r & 7) * 16);
}

/* CUDA's __byte_perm(a, b, sel) for selectors of byte indices 0..7 (no sign replication). */
static inline W4G_LAYOUT_HD uint32_t w4g_prmt(uint32_t a, uint32_t b, uint32_t sel) {
  const uint64_t v = ((uint64_t)b << 32) | a;
  uint32_t r = 0;
  for (int i = 0; i < 4; i++) r |= (uint32_t)((v >> (8 * ((sel >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
}

/* What lane `src` of a quad contributes to lane j's plain-order word: the k 2j + {0,1} half
 * (bytes 0, 2 when j is even, 1, 3 when odd) of its words j / 2 and 2 + j / 2. */
static inline W4G_LAYOUT_HD uint32_t w4g_part(const uint32_t w_src[4], int j) {
  return w4g_prmt(w_src[j >> 1], w_src[2 + (j >> 1)], (j & 1) ? W4G_SEL_HI : W4G_SEL_LO);
}

/* The plain-order word of lane t for step s, from the quad's repacked words w[lane][step]. */
static inline W4G_LAYOUT_HD uint32_t w4g_natural_word(const uint32_t w[4][4], int t, int s) {
  return w4g_part(w[s], t);
}

/* The output tile of the warp-specialised kernel (w4g_stage_rows / w4g_write_rows): [rows]
 * [128 columns] bf16, W4G_OUT_PITCH bytes a row (16 more than the row, so that the eight rows an
 * stmatrix writes fall on distinct banks). Consumer warp w holds columns 16w .. 16w + 15 of the
 * wgmma accumulators: lane (g, t) the columns 16w + g and 16w + g + 8 at the tokens 8i + 2t and
 * 8i + 2t + 1 of each group i. Its stmatrix .m8n8.x2.trans of group i stores two 8 x 8 matrices
 * (columns 16w .. + 7 and 16w + 8 .. + 15), each transposed: tile row 8i + k gets that token's 8
 * columns, at the address lane 8 m + k gives for matrix m -- w4g_out_row_off. The rows then leave
 * as 16-byte segments of 8 columns: item idx of the rows from 8 lo is tile row w4g_out_seg_row,
 * segment w4g_out_seg of it. */
#define W4G_OUT_PITCH (128 * 2 + 16)

static inline W4G_LAYOUT_HD int w4g_out_row(int lane, int i) { return 8 * i + (lane & 7); }
static inline W4G_LAYOUT_HD uint32_t w4g_out_col_off(int warp, int lane) {
  return (uint32_t)((warp * 16 + 8 * ((lane >> 3) & 1)) * 2);
}
static inline W4G_LAYOUT_HD uint32_t w4g_out_row_off(int warp, int lane, int i) {
  return (uint32_t)(w4g_out_row(lane, i) * W4G_OUT_PITCH) + w4g_out_col_off(warp, lane);
}
static inline W4G_LAYOUT_HD int w4g_out_seg_row(int lo, int idx) { return 8 * lo + (idx >> 4); }
static inline W4G_LAYOUT_HD int w4g_out_seg(int idx) { return idx & 15; } /* columns 8 seg .. 8 seg + 7 */

#endif
