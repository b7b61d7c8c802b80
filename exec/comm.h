/* comm: the tensor-parallel communicator of one rank (NCCL).
 *
 * Ranks join from a unique id (ncclGetUniqueId on rank 0, shared by any means), so the same code
 * serves one process with a thread per GPU (what servesim-exec does today) and one process per
 * GPU or host later. The caller selects the rank's device before comm_init. NCCL failures come
 * back as ERR_DEVICE with NCCL's own message. */
#ifndef SERVESIM_EXEC_COMM_H
#define SERVESIM_EXEC_COMM_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>
#include <stdint.h>

#define COMM_ID_BYTES 128

struct comm {
  void *nccl;            /* ncclComm_t; NULL when size == 1 (collectives become no-ops) */
  int rank, size;
};

int comm_unique_id(uint8_t id[COMM_ID_BYTES]);
int comm_init(struct comm *c, const uint8_t id[COMM_ID_BYTES], int rank, int size);
void comm_destroy(struct comm *c);
/* Aborts the communicator: unblocks a rank stuck in a collective after a peer failed. Safe to
 * call from another thread. */
void comm_abort(struct comm *c);
/* In-place sum over ranks of n bf16 values (device buffer) on stream (cudaStream_t). */
int comm_allreduce_bf16(struct comm *c, void *buf, size_t n, void *stream);
/* recv [size][n_bytes] = every rank's send [n_bytes] (device buffers). */
int comm_allgather(struct comm *c, const void *send, void *recv, size_t n_bytes, void *stream);
/* Returns once every rank called it (a one-element all-reduce, synchronised). */
int comm_barrier(struct comm *c);
/* "2.28.9" */
void comm_nccl_version(char *out, int n);

#ifdef __cplusplus
}
#endif

#endif
