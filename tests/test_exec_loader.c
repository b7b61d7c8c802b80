/* test_exec_loader: the GPTQ checkpoint round trip on the CPU. A random tiny Qwen3-MoE
 * checkpoint is written in the real safetensors + index format (exec/ckpt_write.c), read back
 * through the loader for every rank of TP 1 and 2 (and TP 4 of a wider variant, where kv heads
 * are replicated), and compared with (a) the on-the-fly synthesis of the same slice -- which
 * shares the loader's slice list (wt_layer_qslice), so (r) checks the TP=1 weights against the
 * checkpoint's raw tensors with code of its own -- and (b) the TP=1 weights sliced by hand,
 * which pins the column/row-parallel rules. Then the faults: a missing
 * shard, a truncated shard, a corrupt header, an index naming a tensor its shard lacks, a
 * checkpoint of the wrong shape, and the TP=8 split of the 235B model's down_proj.
 * exec/ is configured only with CUDA, so its CPU files are compiled into this test directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/err.h"
#include "exec/batch.c"
#include "exec/ckpt_write.c"
#include "exec/safetensors.c"
#include "exec/weights.c"
#include "sim/model.h"

static int load_rank(struct st_ckpt *c, const struct model_spec *m, int tp, int rank, struct wt_rank *wl,
                     struct wt_rank *ws) {
  memset(wl, 0, sizeof *wl); /* free_rank is safe on them whatever fails */
  memset(ws, 0, sizeof *ws);
  struct wt_dims d;
  int rc = wt_dims_init(m, tp, rank, &d);
  if (rc) return rc;
  int64_t n = wt_rank_bytes(&d);
  uint8_t *a = calloc(1, (size_t)n), *b = calloc(1, (size_t)n);
  wt_layout(&d, a, wl);
  wt_layout(&d, b, ws);
  rc = wt_load(c, &d, wl);
  wt_synth_host(&d, 1234, 0.5f, ws);
  return rc;
}

static void free_rank(struct wt_rank *w) {
  free(w->base);
  wt_layout_free(w);
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* Whether the checkpoint tensor `name` (rows x n, es-byte elements) sits in dst, a buffer of ld
 * columns, from column col_off: the raw file bytes against what the loader placed. */
static int raw_placed(const struct st_ckpt *c, const char *name, const void *dst, int64_t ld, int64_t col_off, int es) {
  const struct st_tensor *t = st_find(c, name);
  if (!t || t->ndim != 2) return 0;
  const int64_t rows = t->shape[0], n = t->shape[1];
  for (int64_t r = 0; r < rows; r++)
    if (memcmp((const uint8_t *)dst + (r * ld + col_off) * es, t->data + r * n * es, (size_t)(n * es))) return 0;
  return 1;
}

/* (r) The TP=1 weights against the checkpoint's own tensors, read straight from the files, so
 * the slice list the loader and the synthesis share is checked by code that does not use it:
 * q/k/v at their column offsets in the fused buffer, o, and every expert's gate/up/down at its
 * stride -- qweight, qzeros and scales each. */
static void check_raw(const struct st_ckpt *c, const struct wt_rank *w) {
  const struct wt_dims *d = &w->d;
  const int64_t D = d->head_dim, H = d->hidden, g = d->group, I = d->inter;
  const int64_t hq = (int64_t)d->hq_loc * D, hkv = (int64_t)d->hkv_loc * D, ld = d->qkv_n;
  static const char *const parts[3] = {"qweight", "qzeros", "scales"};
  char name[256];
  int bad = 0;
  for (int l = 0; l < d->n_layers; l++) {
    const struct wt_layer *L = &w->layers[l];
    static const char *const attn[3] = {"q_proj", "k_proj", "v_proj"};
    const int64_t off[3] = {0, hq, hq + hkv};
    for (int i = 0; i < 3; i++)
      for (int p = 0; p < 3; p++) {
        snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.%s", l, attn[i], parts[p]);
        const void *dst = p == 0 ? (const void *)L->qkv.qweight : p == 1 ? (const void *)L->qkv.qzeros : (const void *)L->qkv.scales;
        bad += !raw_placed(c, name, dst, p == 1 ? ld / 8 : ld, p == 1 ? off[i] / 8 : off[i], p == 2 ? 2 : 4);
      }
    for (int p = 0; p < 3; p++) {
      snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.%s", l, parts[p]);
      const void *dst = p == 0 ? (const void *)L->o.qweight : p == 1 ? (const void *)L->o.qzeros : (const void *)L->o.scales;
      bad += !raw_placed(c, name, dst, p == 1 ? H / 8 : H, 0, p == 2 ? 2 : 4);
    }
    static const char *const mlp[3] = {"gate_proj", "up_proj", "down_proj"};
    for (int e = 0; e < d->n_experts; e++)
      for (int j = 0; j < 3; j++) {
        const struct wt_qexperts *x = j == 0 ? &L->w1 : j == 1 ? &L->w3 : &L->w2;
        const int64_t K = j < 2 ? H : I, N = j < 2 ? I : H;
        for (int p = 0; p < 3; p++) {
          snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.%s.%s", l, e, mlp[j], parts[p]);
          const void *dst = p == 0   ? (const void *)(x->qweight + e * (K / 8 * N))
                            : p == 1 ? (const void *)(x->qzeros + e * (K / g * (N / 8)))
                                     : (const void *)(x->scales + e * (K / g * N));
          bad += !raw_placed(c, name, dst, p == 1 ? N / 8 : N, 0, p == 2 ? 2 : 4);
        }
      }
  }
  CHECK_MSG(bad == 0, "%d checkpoint tensors are not where the TP=1 loader put them", bad);
}

static void run_cmd(const char *fmt, const char *dir) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, fmt, dir, dir);
  if (system(cmd) != 0) fprintf(stderr, "command failed: %s\n", cmd);
}

int main(void) {
  struct model_spec m;
  if (model_load("qwen3-moe-tiny", &m)) {
    fprintf(stderr, "%s\n", err_msg());
    return 1;
  }
  char dir[] = "/tmp/servesim_ckpt_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  CHECK(ckw_write_random(dir, &m, 1234, 0.5f, 3) == ERR_OK);

  struct st_ckpt *c = NULL;
  int rc = st_open(dir, &c);
  CHECK_MSG(rc == ERR_OK, "%s", err_msg());
  if (rc) return check_report("test_exec_loader");
  /* 4 layers x (5 bf16 + 4 GPTQ x 4 + 16 experts x 3 x 4) + embed, norm, lm_head */
  CHECK(st_n_tensors(c) == 4 * (5 + 16 + 16 * 12) + 3);
  const struct st_tensor *t = st_find(c, "model.layers.2.mlp.experts.7.down_proj.qweight");
  CHECK(t && t->dtype == ST_I32 && t->ndim == 2 && t->shape[0] == 256 / 8 && t->shape[1] == 256);

  /* (a) loaded slice == synthesized slice, every rank of tp 1 and 2. */
  struct wt_rank full, fulls;
  CHECK(load_rank(c, &m, 1, 0, &full, &fulls) == ERR_OK);
  CHECK(memcmp(full.base, fulls.base, (size_t)full.n_bytes) == 0);
  check_raw(c, &full);
  for (int r = 0; r < 2; r++) {
    struct wt_rank wl, ws;
    rc = load_rank(c, &m, 2, r, &wl, &ws);
    CHECK_MSG(rc == ERR_OK, "%s", err_msg());
    CHECK(memcmp(wl.base, ws.base, (size_t)wl.n_bytes) == 0);
    const struct wt_dims *d = &wl.d;
    /* (b) the slicing rules against the full weights. */
    CHECK(d->hq_loc == 4 && d->hkv_loc == 1 && d->kv_head0 == r && d->inter_loc == 128);
    int D = d->head_dim, H = d->hidden, Il = d->inter_loc, fqn = full.d.qkv_n;
    int ok_q = 1, ok_k = 1, ok_o = 1, ok_w2 = 1, ok_w1 = 1, ok_lm = 1;
    for (int l = 0; l < 4; l++) {
      const struct wt_layer *A = &wl.layers[l], *F = &full.layers[l];
      for (int row = 0; row < H / 8; row++) {
        for (int col = 0; col < d->hq_loc * D; col++)   /* q: columns of this rank's heads */
          ok_q &= A->qkv.qweight[row * d->qkv_n + col] == F->qkv.qweight[row * fqn + r * d->hq_loc * D + col];
        for (int col = 0; col < D; col++)               /* k: kv head r of 2 */
          ok_k &= A->qkv.qweight[row * d->qkv_n + d->hq_loc * D + col] ==
                  F->qkv.qweight[row * fqn + 8 * D + r * D + col];
      }
      for (int row = 0; row < d->hq_loc * D / 8; row++)  /* o: rows of this rank's heads */
        for (int col = 0; col < H; col++)
          ok_o &= A->o.qweight[row * H + col] == F->o.qweight[(r * d->hq_loc * D / 8 + row) * H + col];
      for (int e = 0; e < 16; e += 5) {
        for (int row = 0; row < Il / 8; row++)           /* down: rows of this rank's slice */
          for (int col = 0; col < H; col++)
            ok_w2 &= A->w2.qweight[(int64_t)e * (Il / 8) * H + row * H + col] ==
                     F->w2.qweight[(int64_t)e * (256 / 8) * H + (r * Il / 8 + row) * H + col];
        for (int g = 0; g < H / 128; g++)                /* gate scales: columns of this rank */
          for (int col = 0; col < Il; col++)
            ok_w1 &= A->w1.scales[(int64_t)e * (H / 128) * Il + g * Il + col] ==
                     F->w1.scales[(int64_t)e * (H / 128) * 256 + g * 256 + r * Il + col];
      }
    }
    for (int v = 0; v < d->v_loc; v++) ok_lm &= memcmp(wl.lm_head + (int64_t)v * H, full.lm_head + (int64_t)(d->v0 + v) * H, (size_t)H * 2) == 0;
    CHECK(ok_q && ok_k && ok_o && ok_w2 && ok_w1 && ok_lm);
    CHECK(d->v_loc == 512 && d->v0 == r * 512);
    free_rank(&wl);
    free_rank(&ws);
  }
  /* tp 4: o_proj rows per rank (2 heads x 32) are less than one GPTQ group: rejected. */
  struct wt_dims d4;
  CHECK(wt_dims_init(&m, 4, 3, &d4) == ERR_LAYOUT && contains(err_msg(), "group size"));
  CHECK(wt_dims_init(&m, 3, 0, &d4) == ERR_LAYOUT);
  /* tp 4 > n_kv 2 on a wider variant: kv heads replicated, rank r uses head r / 2. */
  struct model_spec mw = m;
  mw.head_dim = 64;
  mw.moe_intermediate = 512;
  CHECK(wt_dims_init(&mw, 4, 3, &d4) == ERR_OK && d4.hkv_loc == 1 && d4.kv_head0 == 1 && d4.hq_loc == 2);
  /* (c) that variant's checkpoint at tp 4: every rank's loaded slice equals its synthesized one,
   * and k / v come from kv head r / 2 of the full weights (replicated), q from heads 2r, 2r + 1,
   * o_proj from rows of those heads, expert down from rows [128 r, 128 r + 128). */
  {
    char dir4[] = "/tmp/servesim_ckpt4_XXXXXX";
    const int made = mkdtemp(dir4) != NULL;
    CHECK(made);
    CHECK(made && ckw_write_random(dir4, &mw, 1234, 0.5f, 2) == ERR_OK);
    struct st_ckpt *c4 = NULL;
    CHECK_MSG(made && st_open(dir4, &c4) == ERR_OK, "%s", err_msg());
    struct wt_rank f4, f4s;
    const int full4 = c4 && load_rank(c4, &mw, 1, 0, &f4, &f4s) == ERR_OK;
    CHECK_MSG(full4, "the wider variant at tp 1: %s", err_msg());
    if (full4) {
      CHECK(memcmp(f4.base, f4s.base, (size_t)f4.n_bytes) == 0);
      check_raw(c4, &f4);
      const int D = mw.head_dim, H = mw.hidden, nq = mw.n_heads * D, fqn = f4.d.qkv_n;
      for (int r = 0; r < 4; r++) {
        struct wt_rank wl, ws;
        rc = load_rank(c4, &mw, 4, r, &wl, &ws);
        CHECK_MSG(rc == ERR_OK, "tp 4 rank %d: %s", r, err_msg());
        if (rc) {
          free_rank(&wl);
          free_rank(&ws);
          continue;
        }
        CHECK_MSG(memcmp(wl.base, ws.base, (size_t)wl.n_bytes) == 0, "tp 4 rank %d: loaded != synthesized", r);
        const struct wt_dims *d = &wl.d;
        const int Il = d->inter_loc;
        int ok_q = 1, ok_k = 1, ok_v = 1, ok_o = 1, ok_w2 = 1;
        for (int l = 0; l < mw.n_layers; l++) {
          const struct wt_layer *A = &wl.layers[l], *F = &f4.layers[l];
          for (int row = 0; row < H / 8; row++)
            for (int col = 0; col < D; col++) {
              for (int h = 0; h < d->hq_loc; h++)
                ok_q &= A->qkv.qweight[row * d->qkv_n + h * D + col] ==
                        F->qkv.qweight[row * fqn + (r * d->hq_loc + h) * D + col];
              ok_k &= A->qkv.qweight[row * d->qkv_n + d->hq_loc * D + col] ==
                      F->qkv.qweight[row * fqn + nq + (r / 2) * D + col];
              ok_v &= A->qkv.qweight[row * d->qkv_n + (d->hq_loc + 1) * D + col] ==
                      F->qkv.qweight[row * fqn + nq + mw.n_kv_heads * D + (r / 2) * D + col];
            }
          for (int row = 0; row < d->hq_loc * D / 8; row++)
            for (int col = 0; col < H; col++)
              ok_o &= A->o.qweight[row * H + col] == F->o.qweight[(r * d->hq_loc * D / 8 + row) * H + col];
          for (int e = 0; e < mw.n_experts; e += 7)
            for (int row = 0; row < Il / 8; row++)
              for (int col = 0; col < H; col++)
                ok_w2 &= A->w2.qweight[(int64_t)e * (Il / 8) * H + row * H + col] ==
                         F->w2.qweight[(int64_t)e * (mw.moe_intermediate / 8) * H + (r * Il / 8 + row) * H + col];
        }
        CHECK_MSG(ok_q && ok_k && ok_v && ok_o && ok_w2, "tp 4 rank %d: q %d k %d v %d o %d down %d", r, ok_q, ok_k,
                  ok_v, ok_o, ok_w2);
        free_rank(&wl);
        free_rank(&ws);
      }
      free_rank(&f4);
      free_rank(&f4s);
    }
    st_close(c4);
    if (made) run_cmd("rm -rf %s", dir4);
  }
  free_rank(&full);
  free_rank(&fulls);
  st_close(c);

  /* Faults. Each must fail at open or load with a message naming the file and tensor. */
  char path[512];
  snprintf(path, sizeof path, "%s/model-00002-of-00003.safetensors", dir);
  run_cmd("cp %s/model-00002-of-00003.safetensors %s/keep.bin", dir);
  /* truncated shard */
  CHECK(truncate(path, 5000) == 0);
  rc = st_open(dir, &c);
  CHECK(rc == ERR_INPUT && contains(err_msg(), "model-00002-of-00003.safetensors"));
  /* missing shard */
  unlink(path);
  rc = st_open(dir, &c);
  CHECK_MSG(rc == ERR_NOENT && contains(err_msg(), "model-00002-of-00003.safetensors") &&
                contains(err_msg(), "model.layers."),
            "%s", err_msg());
  /* corrupt header length */
  run_cmd("cp %s/keep.bin %s/model-00002-of-00003.safetensors", dir);
  FILE *f = fopen(path, "r+b");
  CHECK(f != NULL);
  if (f) {
    uint8_t junk[8] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
    fwrite(junk, 1, 8, f);
    fclose(f);
  }
  rc = st_open(dir, &c);
  CHECK(rc == ERR_INPUT && contains(err_msg(), "header") && contains(err_msg(), "model-00002"));
  /* index names a tensor its shard lacks */
  run_cmd("cp %s/keep.bin %s/model-00002-of-00003.safetensors", dir);
  run_cmd("sed -i 's/\"model.norm.weight\"/\"model.norm.weightX\"/' %s/model.safetensors.index.json", dir);
  rc = st_open(dir, &c);
  CHECK_MSG(rc == ERR_INPUT && contains(err_msg(), "model.norm.weightX"), "%s", err_msg());
  run_cmd("sed -i 's/\"model.norm.weightX\"/\"model.norm.weight\"/' %s/model.safetensors.index.json", dir);
  /* a checkpoint of another shape: the loader names the tensor and both shapes */
  CHECK(st_open(dir, &c) == ERR_OK);
  struct model_spec m2 = m;
  m2.moe_intermediate = 384;
  struct wt_dims d2;
  CHECK(wt_dims_init(&m2, 1, 0, &d2) == ERR_OK);
  uint8_t *buf = calloc(1, (size_t)wt_rank_bytes(&d2));
  struct wt_rank w2;
  wt_layout(&d2, buf, &w2);
  rc = wt_load(c, &d2, &w2);
  CHECK_MSG(rc == ERR_INPUT && contains(err_msg(), "gate_proj.qweight") && contains(err_msg(), "shape"), "%s",
            err_msg());
  free(buf);
  wt_layout_free(&w2);
  st_close(c);
  /* single-file checkpoint */
  run_cmd("rm -f %s/*.safetensors %s/model.safetensors.index.json", dir);
  CHECK(ckw_write_random(dir, &m, 99, 0.0f, 1) == ERR_OK);
  run_cmd("mv %s/model-00001-of-00001.safetensors %s/model.safetensors", dir);
  unlink(strcat(strcpy(path, dir), "/model.safetensors.index.json"));
  CHECK(st_open(dir, &c) == ERR_OK && st_n_tensors(c) == 4 * (5 + 16 + 16 * 12) + 3);
  st_close(c);
  run_cmd("rm -rf %s %s", dir);

  /* The full-size model: TP=8 cannot split down_proj along groups (1536/8 = 192); TP=4 fits. */
  struct model_spec big;
  if (model_load("qwen3-235b-a22b-gptq-int4", &big) == ERR_OK) {
    struct wt_dims db;
    rc = wt_dims_init(&big, 8, 0, &db);
    CHECK(rc == ERR_LAYOUT && contains(err_msg(), "192"));
    CHECK(wt_dims_init(&big, 4, 0, &db) == ERR_OK);
    double gb = (double)wt_rank_bytes(&db) / 1e9;
    CHECK_MSG(gb > 29.0 && gb < 33.0, "235B per-rank bytes at tp 4: %.2f GB", gb);
    CHECK(db.hkv_loc == 1 && db.qkv_n == (16 + 2) * 128 && db.inter_loc == 384 && db.v_loc == 37984);
  }
  return check_report("test_exec_loader");
}
