/* safetensors: a read-only, memory-mapped view of a Hugging Face checkpoint.
 *
 * A checkpoint is one `model.safetensors` file or several shards listed by
 * `model.safetensors.index.json` (its "weight_map": tensor name -> shard file). Each shard is an
 * 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then
 * the raw tensor bytes. st_open() parses and validates every header up front (offsets inside
 * the file, byte counts equal to shape x dtype size, index entries present in their shard), so
 * a corrupt or missing shard fails at open with one line naming the file and the tensor, never
 * in the middle of a GPU upload. Data is mmap'd: reading a TP slice touches only its pages. */
#ifndef SERVESIM_EXEC_SAFETENSORS_H
#define SERVESIM_EXEC_SAFETENSORS_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIM 4

enum st_dtype { ST_BOOL, ST_U8, ST_I8, ST_I16, ST_F16, ST_BF16, ST_I32, ST_F32, ST_I64, ST_F64,
                ST_N_DTYPES };

struct st_tensor {
  char *name;
  int dtype;                   /* enum st_dtype */
  int ndim;
  int64_t shape[ST_MAX_DIM];
  int64_t n_bytes;
  const uint8_t *data;         /* inside the shard's mapping */
  int shard;                   /* index into st_ckpt.shard_paths */
};

struct st_ckpt;

/* path: a directory (index.json, else model.safetensors) or one .safetensors file. */
int st_open(const char *path, struct st_ckpt **out);
void st_close(struct st_ckpt *c);   /* NULL is harmless */

const struct st_tensor *st_find(const struct st_ckpt *c, const char *name);
/* Looks a tensor up and checks its dtype and shape (ndim entries); the error names the shard
 * file and the tensor. */
int st_get(const struct st_ckpt *c, const char *name, int dtype, int ndim, const int64_t *shape,
           const struct st_tensor **out);
/* Copies rows [row0, row0+n_rows) x columns [col0, col0+n_cols) of a 1-D or 2-D tensor into dst
 * (n_rows x n_cols, densely packed). A 1-D tensor is one row. Only those bytes are touched. */
int st_read_block(const struct st_ckpt *c, const struct st_tensor *t, int64_t row0, int64_t n_rows,
                  int64_t col0, int64_t n_cols, void *dst);

int st_n_tensors(const struct st_ckpt *c);
const char *st_shard_path(const struct st_ckpt *c, int shard);
int st_dtype_size(int dtype);
const char *st_dtype_name(int dtype);

#ifdef __cplusplus
}
#endif

#endif
