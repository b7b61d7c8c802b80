/* cost_calib: the calibrated step-cost model (sim/cost.h interface): the roofline's step, with
 * the ops that servesim-exec measured re-priced from the measurements.
 *
 * Util space, as AIConfigurator does it: for each measured op, util = SOL(shape) / measured
 * time, where SOL is the op's speed-of-light time on this GPU at its achievable ceilings (bytes
 * over hbm_GBps x hbm_eff plus FLOPs over the tensor rate x mma_eff: a sum, smooth at the ridge
 * point; for an all-reduce, the ring's bytes over the group's bus bandwidth). A query gets
 * log(util) interpolated linearly in log shape between measured points, held flat beyond the
 * measured range, and costs SOL(query) / util. So a
 * measured point is reproduced exactly and the SOL model carries the shape dependence between
 * points. Ops and their keys:
 *   GEMM        qkv, o_proj (and dense MLPs): by M within a family of equal (dtype, K, N)
 *   MoE         one rank's fused MoE: by expert rows (tokens x top-k reaching the rank) within
 *               a family of equal (dtype, hidden, expert width per rank); SOL carries the
 *               active experts' weight bytes, so a routing draw that touches more experts costs
 *               more at the same rows; the most loaded and the mean rank come from the same
 *               routing model as the roofline (moe_route), tabulated at create
 *   attention   decodes by (batch, mean context); each prefill chunk by its length, within a
 *               family of equal heads per rank and head dim
 *   all-reduce  by bytes within a family of equal group size
 * Per step and term (attention, dense GEMM, MoE + imbalance, all-reduce) the calibrated model
 * replaces the roofline's term by the sum of its ops' calibrated times; an op without any
 * measurement of its family keeps the roofline's time for it (its share of the roofline's term,
 * apportioned by SOL) and is counted as a fallback. The launch term is rebuilt without the
 * roofline's per-kernel gap for the kernels of measured ops (each op was timed alone, its launch
 * latency inside the measurement); fallback ops and the roofline-only kernels keep their gaps,
 * and the host terms stay. The other terms (norms, lm_head and sampling, PP transfer,
 * all-to-all) are the roofline's. With no usable measurement at all the model is the roofline
 * exactly.
 *
 * Every evaluation is counted: op time from measurements inside the measured range, held flat
 * beyond it (or taken from a neighbouring shape), or from the roofline; cost_calib_summary()
 * says which and why ("no allreduce rows for 8 ranks", "attention ctx > 4096"). The counters
 * make the model stateful: one instance per simulating thread.
 *
 * Loading happens once at create (calib_set); a step costs the roofline's step plus O(n_reqs)
 * binary searches, with no allocation and no I/O. */
#ifndef SERVESIM_COST_CALIB_H
#define SERVESIM_COST_CALIB_H

#include <stdint.h>

#include "sim/calib.h"
#include "sim/cost.h"
#include "sim/cost_roofline.h"

/* Builds the model from a loaded measurement set (not kept: what is needed is copied), on top
 * of a roofline built with ro (NULL = defaults). Fills out (name "calibrated"). Errors of
 * cost_roofline_create, ERR_NOMEM. */
int cost_calib_create(const struct model_spec *m, const struct hw_spec *h, const struct layout *l,
                      const struct engine *e, const struct calib_set *set,
                      const struct cost_roofline_opts *ro, struct cost_model *out);
/* Same, reading h's measurements from the SQLite database at db_path (calib_set_load). */
int cost_calib_create_db(const struct model_spec *m, const struct hw_spec *h, const struct layout *l,
                         const struct engine *e, const char *db_path,
                         const struct cost_roofline_opts *ro, struct cost_model *out);

/* Op classes the model re-prices. */
enum cost_calib_op { CCAL_GEMM = 0, CCAL_MOE, CCAL_ATTN, CCAL_ALLREDUCE, CCAL_N_OPS };
extern const char *const cost_calib_op_names[CCAL_N_OPS];

/* Where an op's time came from. */
enum cost_calib_how {
  CCAL_INSIDE = 0,           /* measurements, query inside the measured range */
  CCAL_FLAT = 1,             /* measurements, util held flat beyond the range or a neighbouring shape */
  CCAL_FALLBACK = 2          /* no measurement of this op: the roofline's time */
};

struct cost_calib_stats {
  double ns[CCAL_N_OPS][3];  /* op time (all layers) by enum cost_calib_how */
  int64_t n[CCAL_N_OPS][3];  /* op evaluations (kernels, all layers) by enum cost_calib_how */
  double other_ns;           /* step time in terms the model never re-prices */
};

/* Counters since create or the last reset. ERR_INPUT if cm is not a calibrated model. */
int cost_calib_stats(const struct cost_model *cm, struct cost_calib_stats *out);
void cost_calib_stats_reset(struct cost_model *cm);
/* One line for the run's report, e.g. "calibrated: 83% of op time from measurements (80%
 * inside the measured range, 3% held flat beyond it), 17% roofline fallback (no allreduce rows
 * for 8 ranks); held flat: attention ctx > 4096 (to 9034); roofline-only terms (host, launch,
 * norms, lm_head, PP, all-to-all): 41% of step time". */
void cost_calib_summary(const struct cost_model *cm, char *buf, int len);
/* What the model was calibrated from (calib_set_describe of its set). "" for other models. */
const char *cost_calib_source(const struct cost_model *cm);

/* Single-op prices in ns, as the step uses them (no counters touched). *how (may be NULL) gets
 * enum cost_calib_how; on CCAL_FALLBACK the result is NAN: there is no measurement to price the
 * op from, and the model does not invent one (the step then keeps the roofline's time). */
double cost_calib_gemm_ns(const struct cost_model *cm, double m, double k, double n, int *how);
/* One rank's fused MoE with `rows` expert rows spread over `active` experts of this layout's
 * expert shape. */
double cost_calib_moe_ns(const struct cost_model *cm, double rows, double active, int *how);
/* batch decodes attending ctx tokens each (this layout's heads per rank). */
double cost_calib_attn_decode_ns(const struct cost_model *cm, double batch, double ctx, int *how);
/* One prefill chunk of n_new tokens after ctx cached tokens. */
double cost_calib_attn_prefill_ns(const struct cost_model *cm, double n_new, double ctx, int *how);
/* All-reduce of n_bytes per rank over stage 0's TP group. */
double cost_calib_allreduce_ns(const struct cost_model *cm, double n_bytes, int *how);

#endif
