/* comm: NCCL communicators per rank from a unique id (see comm.h). */
#include "exec/comm.h"

#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static int comm_check(ncclResult_t r, ncclComm_t comm, const char *what, int line) {
  if (r == ncclSuccess || r == ncclInProgress) return ERR_OK;
  const char *last = comm ? ncclGetLastError(comm) : ncclGetLastError(NULL);
  return err_set(ERR_DEVICE, "exec/comm.c:%d: NCCL %s failed: %s%s%s", line, what, ncclGetErrorString(r),
                 last && *last ? ": " : "", last ? last : "");
}

int comm_unique_id(uint8_t id[COMM_ID_BYTES]) {
  ncclUniqueId uid;
  _Static_assert(sizeof uid == COMM_ID_BYTES, "ncclUniqueId size");
  int rc = comm_check(ncclGetUniqueId(&uid), NULL, "ncclGetUniqueId", __LINE__);
  if (!rc) memcpy(id, &uid, COMM_ID_BYTES);
  return rc;
}

int comm_init(struct comm *c, const uint8_t id[COMM_ID_BYTES], int rank, int size) {
  memset(c, 0, sizeof *c);
  c->rank = rank;
  c->size = size;
  if (size == 1) return ERR_OK;
  ncclUniqueId uid;
  memcpy(&uid, id, COMM_ID_BYTES);
  ncclComm_t comm;
  int rc = comm_check(ncclCommInitRank(&comm, size, uid, rank), NULL, "ncclCommInitRank", __LINE__);
  if (rc) return err_wrap(rc, "rank %d of %d", rank, size);
  c->nccl = comm;
  return ERR_OK;
}

void comm_destroy(struct comm *c) {
  if (c && c->nccl) ncclCommDestroy((ncclComm_t)c->nccl);
  if (c) c->nccl = NULL;
}

void comm_abort(struct comm *c) {
  if (c && c->nccl) ncclCommAbort((ncclComm_t)c->nccl);
  if (c) c->nccl = NULL;
}

int comm_allreduce_bf16(struct comm *c, void *buf, size_t n, void *stream) {
  if (c->size == 1) return ERR_OK;
  return comm_check(ncclAllReduce(buf, buf, n, ncclBfloat16, ncclSum, (ncclComm_t)c->nccl, (cudaStream_t)stream),
                    (ncclComm_t)c->nccl, "all-reduce", __LINE__);
}

int comm_allgather(struct comm *c, const void *send, void *recv, size_t n_bytes, void *stream) {
  if (c->size == 1) {
    if (send == recv) return ERR_OK;
    cudaError_t e = cudaMemcpyAsync(recv, send, n_bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)stream);
    return e == cudaSuccess ? ERR_OK : err_set(ERR_DEVICE, "exec/comm.c: cudaMemcpyAsync: %s", cudaGetErrorString(e));
  }
  return comm_check(ncclAllGather(send, recv, n_bytes, ncclUint8, (ncclComm_t)c->nccl, (cudaStream_t)stream),
                    (ncclComm_t)c->nccl, "all-gather", __LINE__);
}

void comm_nccl_version(char *out, int n) {
  int v = 0;
  ncclGetVersion(&v);
  snprintf(out, (size_t)n, "%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
}

int comm_barrier(struct comm *c) {
  if (c->size == 1) return ERR_OK;
  float *d = NULL;
  cudaStream_t s = NULL;
  if (cudaMalloc((void **)&d, sizeof(float)) != cudaSuccess || cudaStreamCreate(&s) != cudaSuccess) {
    if (d) cudaFree(d);
    return err_set(ERR_DEVICE, "exec/comm.c: barrier: cannot allocate");
  }
  int rc = comm_check(ncclAllReduce(d, d, 1, ncclFloat32, ncclSum, (ncclComm_t)c->nccl, s), (ncclComm_t)c->nccl,
                      "barrier all-reduce", __LINE__);
  cudaError_t e = cudaStreamSynchronize(s);
  if (!rc && e != cudaSuccess) rc = err_set(ERR_DEVICE, "exec/comm.c: barrier: %s", cudaGetErrorString(e));
  cudaStreamDestroy(s);
  cudaFree(d);
  return rc;
}
