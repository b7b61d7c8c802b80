/* hw: a GPU server's hardware spec, read from specs/hardware/<name>.json.
 *
 * Memory and bandwidth, dense rates per dtype, and interconnect tiers. A tier is a link class
 * shared by consecutive domains of GPUs: on an 8x A100 PCIe box, tier 0 "nvlink-bridge" has
 * domain_size 2 (GPUs {0,1},{2,3},...), tier 1 "pcie" has domain_size 8. A group of GPUs
 * communicates over the first (fastest) tier whose domain holds all of them (hw_tier_for). */
#ifndef SERVESIM_HW_H
#define SERVESIM_HW_H

#include <stdint.h>

#define HW_MAX_TIERS 4

struct hw_tier {
  char name[32];             /* "nvlink", "nvlink-bridge", "pcie" */
  int domain_size;           /* GPUs per domain (consecutive ids) */
  double bw_GBps;            /* unidirectional point-to-point bandwidth per GPU, GB/s */
  double latency_us;         /* per-message latency (alpha) */
  double allreduce_busbw_GBps; /* measured/quoted NCCL all-reduce bus bandwidth, GB/s */
  int nvlink;                /* 1 if NVLink-class (vLLM custom all-reduce eligible) */
};

struct hw_spec {
  char name[64];
  char gpu[64];              /* marketing name, e.g. "NVIDIA A100-PCIE-40GB" */
  int64_t mem_bytes;         /* HBM capacity per GPU */
  double hbm_GBps;           /* datasheet HBM bandwidth, GB/s */
  double hbm_eff;            /* achievable fraction of hbm_GBps for streaming reads */
  double tflops_bf16;        /* dense tensor-core rates, TFLOP/s */
  double tflops_fp8;         /* 0 = unsupported */
  double tflops_int8;        /* TOPS */
  double mma_eff;            /* achievable fraction of peak for large GEMMs */
  int n_sms;
  int gpus_per_node;         /* GPUs in one server */
  double kernel_launch_us;   /* per-kernel fixed latency under CUDA graphs */
  double eager_launch_us;    /* per-kernel launch cost without graphs */
  int n_tiers;
  struct hw_tier tiers[HW_MAX_TIERS];
};

int hw_load(const char *path_or_name, struct hw_spec *h);
/* Index of the tier linking GPUs [first, first + count) (consecutive ranks); -1 if none. */
int hw_tier_for(const struct hw_spec *h, int first_gpu, int count);

#endif
