/* kern_layer: embedding gather, greedy argmax, and the bf16 dense linear through cuBLAS
 * (lm_head, router gate, and the benchmark's baseline). */
#include <cublas_v2.h>
#include <stdlib.h>

#include "kernels/kern_common.cuh"

namespace {

__global__ void embed_kernel(uint16_t *out, const uint16_t *table, const int32_t *ids, int H, int V) {
  kern_pdl_trigger();
  const int t = blockIdx.x;
  const int id = ids[t];
  uint4 *o = reinterpret_cast<uint4 *>(out + (size_t)t * H);
  const uint4 *src = reinterpret_cast<const uint4 *>(table + (size_t)(id >= 0 && id < V ? id : 0) * H);
  for (int c = threadIdx.x; c < H / 8; c += blockDim.x) o[c] = (id >= 0 && id < V) ? src[c] : make_uint4(0, 0, 0, 0);
}

/* One block per row; ties and NaN as in ref_layer_argmax: larger value wins, then lower index. */
__global__ void argmax_kernel(int32_t *ids, const uint16_t *logits, int V) {
  const uint16_t *row = logits + (size_t)blockIdx.x * V;
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float x = kern_bf2f(row[v]);
    if (x > bv || (x == bv && v < bi)) { bv = x; bi = v; } /* NaN compares false: skipped */
  }
  for (int o = 16; o; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
  }
  __shared__ float sv[32];
  __shared__ int si[32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
      if (sv[w] > bv || (sv[w] == bv && si[w] < bi)) { bv = sv[w]; bi = si[w]; }
    ids[blockIdx.x] = bi == 0x7fffffff ? 0 : bi; /* an all-NaN row yields 0, as the reference */
  }
}

} // namespace

extern "C" {

int kern_pdl_on(void) {
  static int env = -1;
  if (env < 0) {
    const char *e = getenv("SERVESIM_PDL");
    env = !(e && e[0] == '0');
  }
  return env && kern_device_cc() >= 90;
}

int kern_embed(bf16_t *out, const bf16_t *table, const int32_t *ids, int T, int H, int V,
               kern_stream_t stream) {
  KERN_REQUIRE(T >= 0 && V > 0, "kern_embed: T = %d, V = %d", T, V);
  KERN_REQUIRE(H > 0 && H % 8 == 0, "kern_embed: H = %d is not a multiple of 8", H);
  if (T == 0) return 0;
  embed_kernel<<<T, 256, 0, (cudaStream_t)stream>>>(out, table, ids, H, V);
  KERN_LAUNCHED();
  return 0;
}

int kern_argmax(int32_t *ids, const bf16_t *logits, int T, int V, kern_stream_t stream) {
  KERN_REQUIRE(T >= 0 && V > 0, "kern_argmax: T = %d, V = %d", T, V);
  if (T == 0) return 0;
  argmax_kernel<<<T, 1024, 0, (cudaStream_t)stream>>>(ids, logits, V);
  KERN_LAUNCHED();
  return 0;
}

int kern_linear_bf16(kern_blas_t blas, bf16_t *y, const bf16_t *x, const bf16_t *w, int M, int K,
                     int N, kern_stream_t stream) {
  KERN_REQUIRE(M >= 0 && K > 0 && N > 0, "kern_linear_bf16: M = %d, K = %d, N = %d", M, K, N);
  if (M == 0) return 0;
  cublasHandle_t h = (cublasHandle_t)blas;
  cublasStatus_t s = cublasSetStream(h, (cudaStream_t)stream);
  if (s != CUBLAS_STATUS_SUCCESS) return err_set(ERR_DEVICE, "%s:%d: cublasSetStream: status %d", __FILE__, __LINE__, (int)s);
  /* Row-major y[M,N] = x[M,K] w[N,K]^T is column-major y^T[N,M] = w[N,K] (as K x N col-major,
   * transposed) times x^T (K x M col-major). */
  const float one = 1.f, zero = 0.f;
  s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w, CUDA_R_16BF, K, x, CUDA_R_16BF, K, &zero, y,
                   CUDA_R_16BF, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    return err_set(ERR_DEVICE, "%s:%d: cublasGemmEx(M=%d, K=%d, N=%d): status %d", __FILE__, __LINE__, M, K, N, (int)s);
  return 0;
}

} /* extern "C" */
