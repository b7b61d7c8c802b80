/* specjson: reading the spec files (model config.json, hardware JSON) with cJSON, with errors
 * that name the file and the line.
 *
 * cJSON reports a parse failure as a pointer into the text; specjson_load turns it into
 * "file:line: malformed JSON near '...'" so a user can open the file at the right place.
 * The getters fail with "file: key 'x' must be ..." when a present key has the wrong type;
 * an absent key yields the default (or ERR_INPUT when required). */
#ifndef SERVESIM_SPECJSON_H
#define SERVESIM_SPECJSON_H

#include <stdint.h>

#include <cjson/cJSON.h>

/* Reads and parses path; *out owns the tree (cJSON_Delete). ERR_NOENT, ERR_IO or ERR_INPUT. */
int specjson_load(const char *path, cJSON **out);
/* Path of a shipped spec: <root>/specs/<subdir>/<name><suffix>, root = $SERVESIM_SOURCE_DIR,
 * else the source dir compiled in. ERR_NOENT naming the path tried when neither exists. */
int specjson_find_spec(const char *subdir, const char *name, const char *suffix, char *out,
                       int out_len);
/* Line (1-based) of byte offset `off` in text. */
int specjson_line_of(const char *text, long off);

/* Integer-valued key. required=1: absent -> ERR_INPUT. Non-integral or out-of-range -> ERR_INPUT. */
int specjson_int(const cJSON *obj, const char *key, int required, int64_t def, int64_t *out,
                 const char *path);
int specjson_num(const cJSON *obj, const char *key, int required, double def, double *out,
                 const char *path);
/* true/false (also accepts 0/1); absent -> def. */
int specjson_bool(const cJSON *obj, const char *key, int def, int *out, const char *path);
/* Copies a string value into out (truncated to out_len - 1); absent -> def. */
int specjson_str(const cJSON *obj, const char *key, int required, const char *def, char *out,
                 int out_len, const char *path);

#endif
