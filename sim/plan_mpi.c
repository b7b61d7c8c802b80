/* plan_mpi: splitting the planner's candidates across MPI ranks (`mpirun -n K servesim plan`).
 *
 * Built with SERVESIM_HAVE_MPI when CMake finds MPI; otherwise every function describes one
 * process. Even in an MPI build, MPI is initialised only when a launcher started this process
 * (mpirun / mpiexec set OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK): a plain `servesim plan`
 * never pays MPI's start-up or needs a runtime. Only the main thread calls MPI
 * (MPI_THREAD_FUNNELED); worker threads only simulate.
 *
 * Candidate i belongs to rank i % size. Outcomes are plain structs sent as bytes: every rank
 * runs the same binary on the same host type, so the layout agrees. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sim/plan.h"

#ifdef SERVESIM_HAVE_MPI
#include <mpi.h>

static int plan_mpi_on, plan_mpi_rank_v, plan_mpi_size_v = 1, plan_mpi_local_v = 1;

static int plan_mpi_launched(void) {
  static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

int plan_mpi_available(void) { return 1; }

int plan_mpi_launch_rank(void) {
  static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) return atoi(v);
  }
  return 0;
}

int plan_mpi_init(int *argc, char ***argv) {
  if (plan_mpi_on || !plan_mpi_launched()) return ERR_OK;
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return err_set(ERR_DEVICE, "plan: MPI_Init_thread failed");
  plan_mpi_on = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &plan_mpi_rank_v);
  MPI_Comm_size(MPI_COMM_WORLD, &plan_mpi_size_v);
  /* Ranks sharing this host split its cores (see cli_plan's default --threads). */
  MPI_Comm local;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, plan_mpi_rank_v, MPI_INFO_NULL,
                          &local) == MPI_SUCCESS) {
    MPI_Comm_size(local, &plan_mpi_local_v);
    MPI_Comm_free(&local);
  }
  return ERR_OK;
}

int plan_mpi_rank(void) { return plan_mpi_rank_v; }
int plan_mpi_size(void) { return plan_mpi_size_v; }
int plan_mpi_local_size(void) { return plan_mpi_local_v; }

int plan_mpi_gather(struct plan_outcome *out, int n) {
  if (!plan_mpi_on || plan_mpi_size_v == 1) return ERR_OK;
  const int size = plan_mpi_size_v, rank = plan_mpi_rank_v;
  const int osz = (int)sizeof *out;
  /* Rank r owns ids r, r + size, ...: count(r) = ceil((n - r) / size). */
  int mine = n > rank ? (n - rank + size - 1) / size : 0;
  struct plan_outcome *send = malloc((size_t)(mine ? mine : 1) * sizeof *send);
  int *counts = NULL, *displs = NULL;
  struct plan_outcome *recv = NULL;
  int rc = ERR_OK;
  if (!send) return err_set(ERR_NOMEM, "plan: out of memory gathering outcomes");
  for (int k = 0; k < mine; k++) send[k] = out[rank + k * size];
  if (rank == 0) {
    counts = malloc((size_t)size * sizeof *counts);
    displs = malloc((size_t)size * sizeof *displs);
    recv = malloc((size_t)(n ? n : 1) * sizeof *recv);
    if (!counts || !displs || !recv) {
      rc = err_set(ERR_NOMEM, "plan: out of memory gathering outcomes");
      /* still take part in the collective below, sending into nothing, so no rank hangs */
    }
    int off = 0;
    for (int r = 0; counts && displs && r < size; r++) {
      int c = n > r ? (n - r + size - 1) / size : 0;
      counts[r] = c * osz;
      displs[r] = off;
      off += c * osz;
    }
  }
  if (MPI_Gatherv(send, mine * osz, MPI_BYTE, recv, counts, displs, MPI_BYTE, 0,
                  MPI_COMM_WORLD) != MPI_SUCCESS && rc == ERR_OK)
    rc = err_set(ERR_DEVICE, "plan: MPI_Gatherv of %d outcomes failed", n);
  if (rank == 0 && rc == ERR_OK) {
    for (int r = 0, pos = 0; r < size; r++) {
      int c = counts[r] / osz;
      for (int k = 0; k < c; k++) out[r + k * size] = recv[pos++];
    }
  }
  free(send);
  free(counts);
  free(displs);
  free(recv);
  return rc;
}

int plan_mpi_bcast_int(int v) {
  if (plan_mpi_on && plan_mpi_size_v > 1) MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return v;
}

void plan_mpi_finalize(void) {
  if (plan_mpi_on) MPI_Finalize();
  plan_mpi_on = 0;
  plan_mpi_rank_v = 0;
  plan_mpi_size_v = plan_mpi_local_v = 1;
}

#else /* one process: no MPI in this build */

int plan_mpi_available(void) { return 0; }
int plan_mpi_launch_rank(void) { return 0; }
int plan_mpi_init(int *argc, char ***argv) { return ERR_OK; }
int plan_mpi_rank(void) { return 0; }
int plan_mpi_size(void) { return 1; }
int plan_mpi_local_size(void) { return 1; }
int plan_mpi_gather(struct plan_outcome *out, int n) { return ERR_OK; }
int plan_mpi_bcast_int(int v) { return v; }
void plan_mpi_finalize(void) {}

#endif
