/* kern_common: helpers shared by the CUDA launchers: error checks that name file:line, bf16
 * packing, the tensor-core mma wrapper. Internal to kernels/ (not part of the C ABI). */
#ifndef SERVESIM_KERN_COMMON_CUH
#define SERVESIM_KERN_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

extern "C" {
#include "common/err.h"
}
#include "kernels/kernels.h"

/* Returns ERR_DEVICE from the enclosing launcher with file:line and CUDA's reason. */
#define KERN_CUDA(call)                                                                  \
  do {                                                                                   \
    cudaError_t kern_e_ = (call);                                                        \
    if (kern_e_ != cudaSuccess)                                                          \
      return err_set(ERR_DEVICE, "%s:%d: %s: %s", __FILE__, __LINE__, #call,             \
                     cudaGetErrorString(kern_e_));                                       \
  } while (0)
/* After a <<<>>> launch: a bad configuration shows up here, not at the launch. */
#define KERN_LAUNCHED() KERN_CUDA(cudaGetLastError())
#define KERN_REQUIRE(cond, ...)                                                          \
  do {                                                                                   \
    if (!(cond)) return err_set(ERR_INPUT, __VA_ARGS__);                                 \
  } while (0)

/* Blocks of 256 threads for a grid-stride loop over n items, at most 65535 blocks. */
static inline int kern_grid_256(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return (int)(blocks < 65535 ? blocks : 65535);
}

static __device__ __forceinline__ float kern_bf2f(uint16_t h) {
  return __uint_as_float((uint32_t)h << 16);
}
static __device__ __forceinline__ uint16_t kern_f2bf(float f) {
  __nv_bfloat16 b = __float2bfloat16_rn(f);
  return *reinterpret_cast<uint16_t *>(&b);
}
static __device__ __forceinline__ float kern_silu(float x) { return x / (1.0f + __expf(-x)); }

/* d += a (16x16 bf16, row) * b (16x8 bf16, col), fp32 accumulators; sm_80 and later. */
static __device__ __forceinline__ void kern_mma_bf16(float d[4], const uint32_t a[4],
                                                     uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* d = a * b, the same mma starting from zero accumulators (no registers to clear first). */
static __device__ __forceinline__ void kern_mma_bf16_first(float d[4], const uint32_t a[4],
                                                           uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%10,%10,%10};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(0.f));
}

/* The global timer (ns; the kernels' trace builds stamp it). */
static __device__ __forceinline__ unsigned long long kern_globaltimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

static inline int kern_cdiv(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

/* Programmatic dependent launch (Hopper, sm_90+; no-ops below). A kernel launched with
 * kern_pdl_on() may be scheduled while the kernel before it in the stream still runs, as soon
 * as every block of that kernel has called kern_pdl_trigger(); it must call kern_pdl_wait()
 * before it reads anything the earlier kernels write, or writes anything they read (the wait
 * returns once the earlier kernel has completed and its writes are visible). So a GEMM can
 * stream its weights, which no kernel writes, during the previous kernel's tail. Triggering is
 * harmless for a kernel whose successor was launched the ordinary way. */
static __device__ __forceinline__ void kern_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
static __device__ __forceinline__ void kern_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
/* kern_pdl_on() (kernels.h) says whether launches on the current device use it. */

/* An integer tuning switch from the environment: its value (atoi), or dflt when unset or empty.
 * Each caller reads it once and keeps its own range rule. */
static inline int kern_env_int(const char *name, int dflt) {
  const char *e = getenv(name);
  return e && *e ? atoi(e) : dflt;
}
/* The same with values below lo read as dflt. */
static inline int kern_env_int_min(const char *name, int dflt, int lo) {
  const int v = kern_env_int(name, dflt);
  return v < lo ? dflt : v;
}

/* The launchers' per-device caches (occupancy, attributes set on a function) hold
 * KERN_MAX_DEVICES slots; kern_device_slot() gives the current device's, devices past the last
 * sharing it. ERR_DEVICE when the current device cannot be read. */
enum { KERN_MAX_DEVICES = 64 };
static inline int kern_device_slot(int *slot) {
  int dev = 0;
  KERN_CUDA(cudaGetDevice(&dev));
  *slot = dev >= 0 && dev < KERN_MAX_DEVICES ? dev : KERN_MAX_DEVICES - 1;
  return 0;
}

/* Compute capability of the current device as 10 x major + minor (90 on an H100 or H200), read
 * once per device: the switches of the Hopper-only paths (PDL, cluster split-K, wgmma) ask it.
 * 0 when it cannot be read. */
static inline int kern_device_cc(void) {
  static int cc[KERN_MAX_DEVICES]; /* per device: 0 not read yet, -1 unreadable */
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= KERN_MAX_DEVICES) return 0;
  if (!cc[dev]) {
    int major = 0, minor = 0;
    cc[dev] = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess
                  ? 10 * major + minor
                  : -1;
  }
  return cc[dev] > 0 ? cc[dev] : 0;
}

/* The launch attribute that groups blocks into thread block clusters of (1, 1, cluster_z). */
static inline cudaLaunchAttribute kern_cluster_attr(int cluster_z) {
  cudaLaunchAttribute a;
  a.id = cudaLaunchAttributeClusterDimension;
  a.val.clusterDim.x = 1;
  a.val.clusterDim.y = 1;
  a.val.clusterDim.z = (unsigned)cluster_z;
  return a;
}

/* Clusters of (1, 1, cluster_z) blocks of fn (block threads, smem dynamic bytes) the current
 * device holds at once (cudaOccupancyMaxActiveClusters, sm_90+): a cluster's blocks share one
 * GPC, so where an SM holds one block, fewer than SMs / cluster_z clusters fit -- what a split-K
 * grid's waves must count. *clusters >= 1 on success (1 where the device reports none fit). */
template <typename... Params>
static int kern_cluster_capacity(void (*fn)(Params...), dim3 block, size_t smem, int cluster_z, int *clusters) {
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr[1] = {kern_cluster_attr(cluster_z)};
  cfg.gridDim = dim3(1, 1, (unsigned)cluster_z);
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  int n = 0;
  KERN_CUDA(cudaOccupancyMaxActiveClusters(&n, fn, &cfg));
  *clusters = n > 0 ? n : 1;
  return 0;
}

/* Launches fn<<<grid, block, smem, st>>>(args...), with programmatic dependent launch where
 * kern_pdl_on(), and as thread block clusters of (1, 1, cluster_z) blocks when cluster_z > 1
 * (sm_90+; grid.z must be a multiple); ERR_DEVICE with CUDA's reason on a bad launch. */
template <typename... Params, typename... Args>
static int kern_launch_ex(void (*fn)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                          int cluster_z, Args... args) {
  const int pdl = kern_pdl_on();
  if (pdl || cluster_z > 1) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[2];
    int n = 0;
    if (pdl) {
      attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr[n++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (cluster_z > 1) attr[n++] = kern_cluster_attr(cluster_z);
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cfg.attrs = attr;
    cfg.numAttrs = (unsigned)n;
    KERN_CUDA(cudaLaunchKernelEx(&cfg, fn, args...));
  } else {
    fn<<<grid, block, smem, st>>>(args...);
  }
  KERN_LAUNCHED();
  return 0;
}
template <typename... Params, typename... Args>
static int kern_launch_pdl(void (*fn)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                           Args... args) {
  return kern_launch_ex(fn, grid, block, smem, st, 1, args...);
}

#endif
