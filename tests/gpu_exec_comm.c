/* gpu_exec_comm: NCCL through exec/comm.c on every visible GPU (up to 8), one thread per rank
 * joined from a unique id. Closed-form expectations: rank r contributes r + 1 to a bf16
 * all-reduce (sum n(n+1)/2, exact in bf16 for n <= 8), and contributes the bytes r + 1 to an
 * all-gather (slot r holds r + 1). Exit 77 without a GPU. */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/err.h"
#include "exec/comm.h"
#include "exec/runner.h"
#include "kernels/ref_bf16.h"

#define N_ELEMS 4096

static uint8_t id[COMM_ID_BYTES];
static int n_ranks;
static int ok_ar[8], ok_ag[8], rcs[8];

static void *rank_main(void *p) {
  int r = (int)(intptr_t)p, rc;
  struct comm c;
  cudaSetDevice(r);
  cudaStream_t s;
  cudaStreamCreate(&s);
  if ((rc = comm_init(&c, id, r, n_ranks))) {
    rcs[r] = rc;
    fprintf(stderr, "rank %d: %s\n", r, err_msg());
    return NULL;
  }
  bf16_t *h = malloc(N_ELEMS * 2), *d;
  uint8_t *g = malloc((size_t)n_ranks * 64), *dg, *ds;
  for (int i = 0; i < N_ELEMS; i++) h[i] = ref_f32_to_bf16((float)(r + 1));
  cudaMalloc((void **)&d, N_ELEMS * 2);
  cudaMalloc((void **)&dg, (size_t)n_ranks * 64);
  cudaMalloc((void **)&ds, 64);
  cudaMemcpy(d, h, N_ELEMS * 2, cudaMemcpyHostToDevice);
  cudaMemset(ds, r + 1, 64);
  rc = comm_allreduce_bf16(&c, d, N_ELEMS, s);
  if (!rc) rc = comm_allgather(&c, ds, dg, 64, s);
  cudaStreamSynchronize(s);
  cudaMemcpy(h, d, N_ELEMS * 2, cudaMemcpyDeviceToHost);
  cudaMemcpy(g, dg, (size_t)n_ranks * 64, cudaMemcpyDeviceToHost);
  float want = n_ranks * (n_ranks + 1) / 2.0f;
  ok_ar[r] = 1;
  for (int i = 0; i < N_ELEMS; i++) ok_ar[r] &= ref_bf16_to_f32(h[i]) == want;
  ok_ag[r] = 1;
  for (int q = 0; q < n_ranks; q++)
    for (int i = 0; i < 64; i++) ok_ag[r] &= g[q * 64 + i] == q + 1;
  rcs[r] = rc;
  comm_destroy(&c);
  cudaFree(d), cudaFree(dg), cudaFree(ds);
  free(h), free(g);
  cudaStreamDestroy(s);
  return NULL;
}

int main(void) {
  int n = runner_device_count();
  if (n < 1) CHECK_SKIP("no CUDA device");
  n_ranks = n > 8 ? 8 : n;
  CHECK(comm_unique_id(id) == ERR_OK);
  pthread_t th[8];
  for (int r = 0; r < n_ranks; r++) pthread_create(&th[r], NULL, rank_main, (void *)(intptr_t)r);
  for (int r = 0; r < n_ranks; r++) pthread_join(th[r], NULL);
  for (int r = 0; r < n_ranks; r++) {
    CHECK_MSG(rcs[r] == ERR_OK, "rank %d failed", r);
    CHECK_MSG(ok_ar[r], "rank %d: all-reduce of r+1 over %d ranks is not %d", r, n_ranks, n_ranks * (n_ranks + 1) / 2);
    CHECK_MSG(ok_ag[r], "rank %d: all-gather slots are not r+1", r);
  }
  char v[32];
  comm_nccl_version(v, sizeof v);
  printf("NCCL %s, %d ranks\n", v, n_ranks);
  return check_report("gpu_exec_comm");
}
