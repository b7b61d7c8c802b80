/* bench_calib_steps: step-level check of the cost models against whole steps the executor timed.
 *
 * servesim-exec profile times whole engine steps (prefill, decode, mixed batches, described in
 * extra_json) besides the single ops. This program replays each such step through the roofline
 * and through the calibrated model built from the same database's op rows, and prints measured
 * vs predicted time, so the residual of the op-level calibration shows at step level (the
 * steps themselves are never used for pricing). The executor is a C engine, not vLLM: its host
 * path has no Python scheduler, so both models run with the per-step and per-request host
 * constants at 0 (cost_roofline_opts cpu_step_us, cpu_req_us); launch gaps stay.
 * Usage: bench_calib_steps DB [hardware]   (hardware default h100-sxm: its GPU's rows are read) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sim/calib.h"
#include "sim/cost_calib.h"

static int64_t bench_step(struct cost_model *cm, const struct calib_meas *r, struct cost_breakdown *bd) {
  static struct cost_req reqs[1024]; /* (prefill chunks + decodes) */
  int n = 0, tok = 0;
  for (int p = 0; p < r->step_prefill && n < 1024; p++, n++) reqs[n] = (struct cost_req){r->step_prefill_len, 0};
  tok += r->step_prefill * r->step_prefill_len;
  for (int d = 0; d < r->step_decode && n < 1024; d++, n++, tok++)
    reqs[n] = (struct cost_req){1, r->step_decode_ctx - 1}; /* the exec decodes position ctx-1 */
  struct cost_step st = {.reqs = reqs, .n_reqs = n, .n_tok = tok, .n_decode = r->step_decode, .n_sample = n, .stage = 0};
  memset(bd, 0, sizeof *bd);
  return cm->stage_ns(cm->state, &st, NULL, bd);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench_calib_steps DB [hardware]\n");
    return 2;
  }
  const char *db_path = argv[1], *hname = argc > 2 ? argv[2] : "h100-sxm";
  struct hw_spec h;
  struct calib_set set;
  if (hw_load(hname, &h) || calib_set_load(&set, db_path, &h)) {
    err_print("bench_calib_steps");
    return 2;
  }
  char src[512];
  calib_set_describe(&set, src, sizeof src);
  printf("%s: %s\n\n", db_path, src);
  int done[4096] = {0}, n_steps = 0;
  double sum_abs_cal = 0, sum_abs_rl = 0;
  for (int i = 0; i < set.n && i < 4096; i++) {
    const struct calib_meas *r0 = &set.rows[i];
    if (r0->kind != CALIB_STEP || done[i]) continue;
    /* one group per (model, tp): one pair of models */
    struct model_spec m;
    if (model_load(r0->model, &m)) {
      fprintf(stderr, "bench_calib_steps: step rows of model '%s': %s (skipped)\n", r0->model, err_msg());
      for (int j = i; j < set.n && j < 4096; j++)
        if (set.rows[j].kind == CALIB_STEP && !strcmp(set.rows[j].model, r0->model)) done[j] = 1;
      continue;
    }
    struct layout l = {.tp = r0->tp, .pp = 1, .dp = 1, .ep = 0};
    struct engine e;
    engine_defaults(&e, &m, &h);
    struct cost_roofline_opts o;
    cost_roofline_opts_default(&o);
    o.cpu_step_us = 0, o.cpu_req_us = 0;
    struct cost_model rl, cal;
    if (cost_roofline_create(&m, &h, &l, &e, &o, &rl) || cost_calib_create(&m, &h, &l, &e, &set, &o, &cal)) {
      err_print("bench_calib_steps");
      return 2;
    }
    printf("%s, tp=%d on %s (host constants 0)\n", m.name, l.tp, h.name);
    printf("| step | prefill | decodes x ctx | measured ms | calibrated ms | error | roofline ms | error |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int j = i; j < set.n && j < 4096; j++) {
      const struct calib_meas *r = &set.rows[j];
      if (r->kind != CALIB_STEP || done[j] || r->tp != r0->tp || strcmp(r->model, r0->model)) continue;
      done[j] = 1;
      struct cost_breakdown bd;
      double t_cal = (double)bench_step(&cal, r, &bd), t_rl = (double)bench_step(&rl, r, &bd);
      double e_cal = (t_cal - r->t_ns) / r->t_ns, e_rl = (t_rl - r->t_ns) / r->t_ns;
      printf("| %d | %d x %d | %d x %d | %.3f | %.3f | %+.1f%% | %.3f | %+.1f%% |\n", n_steps + 1, r->step_prefill,
             r->step_prefill_len, r->step_decode, r->step_decode_ctx, r->t_ns / 1e6, t_cal / 1e6, 100 * e_cal,
             t_rl / 1e6, 100 * e_rl);
      sum_abs_cal += fabs(e_cal), sum_abs_rl += fabs(e_rl);
      n_steps++;
    }
    char line[2048];
    cost_calib_summary(&cal, line, sizeof line);
    printf("%s\n\n", line);
    cost_destroy(&rl);
    cost_destroy(&cal);
  }
  if (n_steps) printf("mean |error| over %d steps: calibrated %.1f%%, roofline %.1f%%\n", n_steps,
                      100 * sum_abs_cal / n_steps, 100 * sum_abs_rl / n_steps);
  else printf("no step rows with a batch description in %s for %s\n", db_path, h.name);
  calib_set_free(&set);
  return 0;
}
