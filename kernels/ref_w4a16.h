/* ref_w4a16: GPTQ sym int4 (group 128) in plain C: quantize, dequantize, the reference GEMM and
 * the "tile" repack layout the CUDA GEMM reads (kernels/kernels.h describes it).
 *
 * Checkpoint layout (FACTS.md): qweight int32 [K/8, N], nibble i of word (r, n) is the weight of
 * row k = 8r + i, column n (lowest row in the lowest nibble); scales fp16 [K/128, N];
 * w = scale * (q - 8) (stored zero 7, effective 8).
 *
 * Tile layout: qrep int32 [N/16][K/64][8][4][4], srep bf16 [K/128][N/16][8][2]. Weight (k, n) of
 * column tile nt = n/16 (row r = n%16, g = r%8, hi = r/8) and k chunk kc = k/64 (k16 step
 * s = (k%64)/16, l = k%16, t = (l%8)/2, b = l/8 + 2*(l%2)) sits in word
 * ((nt*K/64 + kc)*8 + g)*16 + 4s + t at nibble 2b + hi. Why: that word is lane g*4+t's A
 * fragment of step s (mma.m16n8k16, and each warp's slice of wgmma's m64 A: rows g and g+8,
 * logical k 2t, 2t+1, 2t+8, 2t+9 = l), the step's k in plain order as wgmma needs, and
 * (x >> 4r & 0x000f000f) | 0x43004300 is fragment register r as bf16 (128 + q); the 16 bytes
 * of lane 4g+t are the step-t words of lanes 4g..4g+3, which hold the real k 16t..16t+15 the
 * mma.sync kernels pair with one lane's contiguous activations (kernels/w4g_layout.h). */
#ifndef SERVESIM_REF_W4A16_H
#define SERVESIM_REF_W4A16_H

#include <stdint.h>

#include "kernels/ref_bf16.h"

#define REF_W4A16_GROUP 128

float ref_w4a16_f16_to_f32(uint16_t h);
uint16_t ref_w4a16_f32_to_f16(float f);

/* Quantizes w float [K, N] into qweight int32 [K/8, N] and scales fp16 [K/128, N]
 * (scale = 2*max|w|/15 per group and column, q = clamp(round(w/scale) + 8, 0, 15)). */
void ref_w4a16_quantize(int32_t *qweight, uint16_t *scales, const float *w, int K, int N);
/* Fills qweight with uniform random nibbles and scales with fp16 values in [lo, hi). */
void ref_w4a16_random(int32_t *qweight, uint16_t *scales, int K, int N, uint64_t seed, float lo,
                      float hi);
/* w float [K, N] = scale * (q - 8). */
void ref_w4a16_dequant(float *w, const int32_t *qweight, const uint16_t *scales, int K, int N);
/* Nibble q in 0..15 of weight (k, n). */
int ref_w4a16_get(const int32_t *qweight, int N, int k, int n);

/* y bf16 [M, N] = x bf16 [M, K] * dequant(W) with float accumulation. */
void ref_w4a16_gemm(bf16_t *y, const bf16_t *x, const int32_t *qweight, const uint16_t *scales,
                    int M, int K, int N);

/* Word index and nibble shift of weight (k, n) in the tile layout. */
int64_t ref_w4a16_tile_word(int K, int k, int n, int *shift);
/* Tile layout from checkpoint layout (scales rounded fp16 -> bf16). K%128 == 0, N%16 == 0. */
void ref_w4a16_repack(int32_t *qrep, bf16_t *srep, const int32_t *qweight,
                      const uint16_t *scales, int K, int N);
/* Checkpoint qweight back from the tile layout (exact inverse of the nibble permutation). */
void ref_w4a16_unrepack(int32_t *qweight, const int32_t *qrep, int K, int N);
/* Combined column c of the gate_up tile (2I columns) -> source: returns 0 for gate, 1 for up,
 * and the column inside that matrix in *col. Tile nt holds gate 8nt..8nt+7 then up 8nt..8nt+7. */
int ref_w4a16_gate_up_col(int c, int *col);
/* Tile layout of the interleaved gate/up pair: qrep int32 [K*2I/8], srep bf16 [K/128*2I]. */
void ref_w4a16_repack_gate_up(int32_t *qrep, bf16_t *srep, const int32_t *qw_gate,
                              const uint16_t *s_gate, const int32_t *qw_up,
                              const uint16_t *s_up, int K, int I);

#endif
