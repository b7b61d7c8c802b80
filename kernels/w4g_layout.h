/* w4g_layout: the contract between the repacked int4 weights (ref_w4a16.h) and the W4A16 kernels
 * that read them (kern_w4a16*.cu), in plain C so that CI checks it (tests/test_w4g_layout.c
 * emulates what wgmma reads, tests/test_kern_w4a16.c what both kinds of kernel compute).
 *
 * Activations (wgmma's B operand) sit in shared memory in plain k order, K-major without
 * swizzle: 8-row core matrices of 16 bytes per row; element (n, k) of a k16 step at
 * start + (n / 8) * SBO + (n % 8) * 16 + (k / 8) * LBO + (k % 8) * 2, so each 16-byte piece of a
 * row (one k8 slice) is one copy.
 *
 * Weights (the A operand, registers): the word of lane (g, t) for k16 step s of a k64 chunk is
 * its m16n8k16 A fragment (rows g and g + 8, logical k 2t + {0,1} and 2t + 8 + {0,1}) with the
 * step's k in plain order -- real k 16s + logical -- which is what wgmma needs with B in plain
 * order: byte b holds logical k 8 (b % 2) + 2t + b / 2, row g in its low nibble and g + 8 in its
 * high, so (word >> 4r & 0x000f000f) | 0x43004300 is fragment register r as bf16 (128 + q). It
 * sits at word w4g_word(g, s, t) of the warp's 512 bytes of the chunk, so that the 16 bytes of
 * lane l = 4g + t (words 4l .. 4l + 3) are the step-t words of lanes (g, 0..3). The mma.sync
 * kernels read their activations 16 contiguous k a lane (lane t of a quad k 16t .. 16t + 15),
 * so their fragment of step s must cover the real k 16t + 4s + {0..3}: exactly what lane l's own
 * 16 bytes hold -- register r of step s is word 2 (s % 2) + r / 2 (from lane (g, 2 (s % 2)) or
 * (g, 2 (s % 2) + 1)) shifted right by 8 (s / 2) + 4 (r % 2) (w4g_piece_shift); one coalesced
 * 16-byte load a lane and no data movement. The wgmma kernels load their four words from four
 * lanes' pieces (four 32-bit loads). */
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

/* Bytes of one k16 step's block for bt rows (the descriptor start of step s is s times this). */
static inline W4G_LAYOUT_HD int w4g_step_bytes(int bt) { return bt / 8 * W4G_SBO; }

/* Byte offset of (row r, k8 slice j = 0..7 of the k64 chunk) in a stage of bt rows. */
static inline W4G_LAYOUT_HD uint32_t w4g_layout_off16(int bt, int r, int j) {
  return (uint32_t)((j >> 1) * w4g_step_bytes(bt) + (r >> 3) * W4G_SBO + (j & 1) * W4G_LBO + (r & 7) * 16);
}

/* Word (0..127) of lane (g, t)'s step-s word in the warp's 512 bytes of a chunk. */
static inline W4G_LAYOUT_HD int w4g_word(int g, int s, int t) { return g * 16 + t + 4 * s; }

/* The mma.sync kernels' fragment register r (0..3) of step s from a lane's own 16 bytes: word
 * w4g_piece_word(s, r) shifted right by w4g_piece_shift(s, r), low nibbles of bytes 0 and 2. */
static inline W4G_LAYOUT_HD int w4g_piece_word(int s, int r) { return 2 * (s & 1) + (r >> 1); }
static inline W4G_LAYOUT_HD int w4g_piece_shift(int s, int r) { return 8 * (s >> 1) + 4 * (r & 1); }

/* The output tile of the warp-specialised kernel (w4g_stage_rows / w4g_write_rows): [rows]
 * [64 nwg columns] bf16 for nwg consumer warpgroups (1, 2 or 3), w4g_out_pitch(nwg) bytes a row (16
 * more than the row, so that the eight rows an stmatrix writes fall on distinct banks: the pitch
 * is 4 words past a multiple of 32). Consumer warp w holds columns 16w .. 16w + 15 of the wgmma
 * accumulators: lane (g, t) the columns 16w + g and 16w + g + 8 at the tokens 8i + 2t and 8i + 2t
 * + 1 of each group i. Its stmatrix .m8n8.x2.trans of group i stores two 8 x 8 matrices (columns
 * 16w .. + 7 and 16w + 8 .. + 15), each transposed: tile row 8i + k gets that token's 8 columns,
 * at the address lane 8 m + k gives for matrix m -- w4g_out_row_off. The rows then leave as
 * 16-byte segments of 8 columns (8 nwg a row): item idx of the rows from 8 lo is tile row
 * w4g_out_seg_row, segment w4g_out_seg of it. */
#define W4G_OUT_PITCH(nwg) (128 * (nwg) + 16)
static inline W4G_LAYOUT_HD int w4g_out_pitch(int nwg) { return W4G_OUT_PITCH(nwg); }

static inline W4G_LAYOUT_HD int w4g_out_row(int lane, int i) { return 8 * i + (lane & 7); }
static inline W4G_LAYOUT_HD uint32_t w4g_out_col_off(int warp, int lane) {
  return (uint32_t)((warp * 16 + 8 * ((lane >> 3) & 1)) * 2);
}
static inline W4G_LAYOUT_HD uint32_t w4g_out_row_off(int nwg, int warp, int lane, int i) {
  return (uint32_t)(w4g_out_row(lane, i) * w4g_out_pitch(nwg)) + w4g_out_col_off(warp, lane);
}
static inline W4G_LAYOUT_HD int w4g_out_seg_row(int nwg, int lo, int idx) { return 8 * lo + idx / (8 * nwg); }
static inline W4G_LAYOUT_HD int w4g_out_seg(int nwg, int idx) { return idx % (8 * nwg); } /* columns 8 seg .. 8 seg + 7 */

#endif
