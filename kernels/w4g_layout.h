/* w4g_layout: where the wgmma W4A16 path (kern_w4a16_wgmma.cu) puts a k64 chunk of activations
 * in shared memory, in plain C so that CI checks the contract with the repacked weights
 * (tests/test_w4g_layout.c emulates wgmma's reading of it).
 *
 * wgmma reads B (k16 x n) K-major without swizzle: 8-row core matrices of 16 bytes per row;
 * element (n, vk) of a k16 step at start + (n / 8) * SBO + (n % 8) * 16 + (vk / 8) * LBO +
 * (vk % 8) * 2. The repacked weight word of lane (g, t) gives, for mma step s of the chunk,
 * logical k 2t + {0,1} and 2t + 8 + {0,1} the real k 16t + 4s + {0,1} and {2,3}
 * (ref_w4a16.h). So the bf16 pair p of a row (real k 2p, 2p + 1) goes to step s = (p / 2) % 4,
 * k-half h = p % 2, slot t = p / 8 of the row's 16 bytes. */
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

/* Byte offset of (row r, bf16 pair p of the k64 chunk) in a stage of bt rows. */
static inline W4G_LAYOUT_HD uint32_t w4g_layout_off(int bt, int r, int p) {
  const int t = p >> 3, s = (p >> 1) & 3, h = p & 1;
  return (uint32_t)(s * w4g_step_bytes(bt) + (r >> 3) * W4G_SBO + h * W4G_LBO + (r & 7) * 16 + t * 4);
}

#endif
