/* cli_db: `servesim db init | import | export | list`: create or migrate the SQLite store, load
 * SQL dumps and measurement CSVs into it, write the deterministic dump that gets committed under
 * db/measurements/, and show its contents as readable tables.
 * Bad input (unknown subcommand or flag, missing file, malformed SQL or CSV) is one line on
 * stderr naming the flag or file:line, exit 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "db/db.h"
#include "sim/cli.h"
#include "sim/cli_args.h"

#define PROG "servesim db"

static void usage(FILE *f) {
  fprintf(f,
          "usage: servesim db <command> [--db FILE]   (FILE defaults to %s)\n"
          "  init                       create the database, or migrate it to schema version %d\n"
          "  import [--merge] FILE.sql|FILE.csv\n"
          "                             load a dump written by export (one transaction), or\n"
          "                             measurements from CSV (header = measurements columns);\n"
          "                             --merge renumbers the dump's ids to add it to rows\n"
          "                             already there (hardware and models matched by name)\n"
          "  export [-o OUT.sql] [--table T]\n"
          "                             deterministic SQL dump (same content, same bytes)\n"
          "  list [WHAT] [--run ID] [--kind K] [--limit N]\n"
          "                             WHAT: runs (default), summaries, metrics, requests,\n"
          "                             measurements, expert_hits, layouts, hardware, models,\n"
          "                             tables\n",
          DB_DEFAULT_PATH, db_schema_latest());
}

struct db_args {
  const char *db_path, *out, *table, *run, *kind;
  int64_t limit;
  int merge;           /* import --merge */
  const char *pos[16]; /* positionals after the subcommand */
  int n_pos;
};

/* "--name value" or "--name=value": returns 1 when argv[*i] is that flag. */
static int flag_val(int argc, char **argv, int *i, const char *name, const char **val, int *rc) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n) || (a[n] && a[n] != '=')) return 0;
  if (a[n] == '=') {
    *val = a + n + 1;
  } else if (*i + 1 >= argc) {
    *rc = err_set(ERR_INPUT, "%s: missing value", name);
  } else {
    *val = argv[++*i];
  }
  return 1;
}

static int parse_args(int argc, char **argv, struct db_args *a) {
  memset(a, 0, sizeof *a);
  a->db_path = DB_DEFAULT_PATH;
  a->limit = 50;
  const char *lim = NULL;
  int rc = ERR_OK;
  for (int i = 0; i < argc && !rc; i++) {
    const char *arg = argv[i];
    if (flag_val(argc, argv, &i, "--db", &a->db_path, &rc) ||
        flag_val(argc, argv, &i, "--output", &a->out, &rc) ||
        flag_val(argc, argv, &i, "-o", &a->out, &rc) ||
        flag_val(argc, argv, &i, "--table", &a->table, &rc) ||
        flag_val(argc, argv, &i, "--run", &a->run, &rc) ||
        flag_val(argc, argv, &i, "--kind", &a->kind, &rc) ||
        flag_val(argc, argv, &i, "--limit", &lim, &rc))
      continue;
    if (!strcmp(arg, "--merge")) {
      a->merge = 1;
      continue;
    }
    if (arg[0] == '-' && arg[1]) return err_set(ERR_INPUT, "unknown flag '%s' (servesim db --help)", arg);
    if (a->n_pos == (int)(sizeof a->pos / sizeof a->pos[0]))
      return err_set(ERR_INPUT, "too many arguments ('%s')", arg);
    a->pos[a->n_pos++] = arg;
  }
  if (rc) return rc;
  if (!*a->db_path) return err_set(ERR_INPUT, "--db: empty path");
  if (lim && (rc = cli_args_i64("--limit", lim, 0, INT64_MAX, &a->limit))) return rc;
  int64_t run;
  if (a->run && (rc = cli_args_i64("--run", a->run, 1, INT64_MAX, &run))) return rc;
  return ERR_OK;
}

static int cmd_init(const struct db_args *a) {
  if (a->merge) return err_set(ERR_INPUT, "--merge: only for import");
  if (a->n_pos) return err_set(ERR_INPUT, "init: unexpected argument '%s'", a->pos[0]);
  struct db *db;
  int rc = db_open(a->db_path, &db);
  if (rc) return rc;
  printf("%s: schema version %d\n", a->db_path, db_schema_version(db));
  db_close(db);
  return ERR_OK;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcasecmp(s + n - m, suffix);
}

static int cmd_import(const struct db_args *a) {
  if (!a->n_pos) return err_set(ERR_INPUT, "import: which file? (servesim db import FILE.sql)");
  /* Each file is its own transaction: a bad second file keeps the first one's rows. Missing
   * files are reported before anything is loaded. */
  for (int i = 0; i < a->n_pos; i++) {
    struct stat sb;
    if (access(a->pos[i], R_OK) != 0 || stat(a->pos[i], &sb) != 0)
      return err_set(errno == ENOENT ? ERR_NOENT : ERR_IO, "%s: %s", a->pos[i], strerror(errno));
    if (S_ISDIR(sb.st_mode)) return err_set(ERR_INPUT, "%s: is a directory, not a dump", a->pos[i]);
  }
  for (int i = 0; i < a->n_pos; i++) {
    int64_t n_rows = 0;
    int rc;
    if (ends_with(a->pos[i], ".csv")) {
      struct db *db;
      if ((rc = db_open(a->db_path, &db))) return rc;
      rc = db_import_csv(db, a->pos[i], &n_rows);
      db_close(db);
    } else if (a->merge) {
      rc = db_import_merge(a->db_path, a->pos[i], &n_rows);
    } else {
      rc = db_import_sql(a->db_path, a->pos[i], &n_rows);
    }
    if (rc) return rc;
    printf("%s: %lld rows from %s\n", a->db_path, (long long)n_rows, a->pos[i]);
  }
  return ERR_OK;
}

static int cmd_export(const struct db_args *a) {
  if (a->merge) return err_set(ERR_INPUT, "--merge: only for import");
  if (a->n_pos) return err_set(ERR_INPUT, "export: unexpected argument '%s' (-o OUT.sql?)", a->pos[0]);
  struct db *db;
  int rc = db_open_ex(a->db_path, DB_OPEN_MUST_EXIST, 0, &db);
  if (rc) return rc;
  if (!a->out || !strcmp(a->out, "-")) {
    rc = db_export_sql(db, a->table, stdout);
    db_close(db);
    return rc;
  }
  /* Written beside the target and renamed into place: a failed export never leaves a
   * truncated dump where a good one was (the committed file under db/measurements/). */
  size_t n = strlen(a->out) + 32;
  char *tmp = malloc(n);
  if (!tmp) {
    db_close(db);
    return err_set(ERR_NOMEM, "out of memory");
  }
  snprintf(tmp, n, "%s.tmp%ld", a->out, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    rc = err_set(ERR_IO, "%s: %s", a->out, strerror(errno));
  } else {
    rc = db_export_sql(db, a->table, f);
    if (fclose(f) != 0 && !rc) rc = err_set(ERR_IO, "%s: %s", a->out, strerror(errno));
    if (!rc && rename(tmp, a->out) != 0) rc = err_set(ERR_IO, "%s: %s", a->out, strerror(errno));
    if (rc) unlink(tmp);
  }
  free(tmp);
  db_close(db);
  return rc;
}

/* What `db list` can show: ?1 is --run (NULL = all), ?2 is --kind. */
static const struct {
  const char *what, *sql;
} lists[] = {
    {"runs",
     "SELECT r.run_id AS id, r.kind, r.label, mo.name AS model, h.name AS hardware, "
     "r.n_gpus AS gpus, r.tp, r.pp, r.dp, r.ep, r.cost_model AS cost, "
     "(SELECT count(*) FROM requests q WHERE q.run_id = r.run_id) AS requests, "
     "s.concurrency AS conc, s.output_tok_s AS out_tok_s, s.ttft_avg_s, s.tpot_avg_s, "
     "r.created_at FROM runs r JOIN models mo USING (model_id) JOIN hardware h USING "
     "(hardware_id) LEFT JOIN run_summaries s USING (run_id) "
     "WHERE (?1 IS NULL OR r.run_id = ?1) AND (?2 IS NULL OR r.kind = ?2) ORDER BY r.run_id"},
    {"summaries",
     "SELECT run_id, concurrency AS conc, n_requests AS n, n_succeeded AS ok, duration_s, "
     "output_tok_s, total_tok_s, request_s, ttft_avg_s, tpot_avg_s, latency_avg_s, ttft_p99_s, "
     "tpot_p99_s, goodput_req_s FROM run_summaries WHERE (?1 IS NULL OR run_id = ?1) "
     "AND ?2 IS NULL ORDER BY run_id"},
    {"metrics",
     "SELECT run_id, key, value FROM run_metrics WHERE (?1 IS NULL OR run_id = ?1) "
     "AND ?2 IS NULL ORDER BY run_id, key"},
    {"requests",
     "SELECT run_id, idx, arrival_ns / 1e9 AS arrival_s, in_tok, out_tok, ttft_s, tpot_s, "
     "latency_s, e2e_s, n_preempt AS preempt, replica, ok FROM requests "
     "WHERE (?1 IS NULL OR run_id = ?1) AND ?2 IS NULL ORDER BY run_id, idx"},
    {"measurements",
     "SELECT me.measurement_id AS id, me.kind, me.op, me.impl, me.dtype, h.name AS hardware, "
     "trim(coalesce(' m=' || me.m, '') || coalesce(' n=' || me.n, '') || "
     "coalesce(' k=' || me.k, '') || coalesce(' tokens=' || me.tokens, '') || "
     "coalesce(' experts=' || me.experts, '') || coalesce(' topk=' || me.topk, '') || "
     "coalesce(' tok/exp=' || me.tokens_per_expert, '') || coalesce(' batch=' || me.batch, '') || "
     "coalesce(' ctx=' || me.ctx_len, '') || coalesce(' q=' || me.q_len, '') || "
     "coalesce(' bytes=' || me.n_bytes, '') || coalesce(' ranks=' || me.ranks, '') || "
     "coalesce(' tp=' || me.tp, '') || coalesce(' ep=' || me.ep, '')) AS shape, "
     "me.lat_us_median AS median_us, me.lat_us_p10 AS p10_us, me.lat_us_p90 AS p90_us, "
     "me.count AS n, me.gpu_name AS gpu, me.git_commit AS git "
     "FROM measurements me LEFT JOIN hardware h USING (hardware_id) "
     "WHERE (?1 IS NULL OR me.run_id = ?1) AND (?2 IS NULL OR me.kind = ?2) "
     "ORDER BY me.measurement_id"},
    {"expert_hits",
     "SELECT run_id, layer, count(*) AS experts, sum(count) AS tokens, max(count) AS max_hits, "
     "min(count) AS min_hits, round(max(count) / avg(count), 3) AS max_over_mean "
     "FROM expert_hits WHERE (?1 IS NULL OR run_id = ?1) AND ?2 IS NULL "
     "GROUP BY run_id, layer ORDER BY run_id, layer"},
    {"layouts",
     "SELECT l.layout_id AS id, mo.name AS model, h.name AS hardware, l.n_gpus AS gpus, l.tp, "
     "l.pp, l.dp, l.ep, CASE l.ok WHEN 1 THEN 'runs' ELSE 'rejected' END AS verdict, "
     "round(l.weight_bytes_rank / 1e9, 2) AS weights_GB, l.kv_tokens, l.max_concurrency AS "
     "max_conc, substr(l.fails, 1, instr(l.fails || char(10), char(10)) - 1) AS first_fail "
     "FROM layouts l JOIN models mo USING (model_id) JOIN hardware h USING (hardware_id) "
     "WHERE ?1 IS NULL AND ?2 IS NULL ORDER BY mo.name, h.name, l.n_gpus, l.tp, l.pp, l.dp, l.ep"},
    {"hardware",
     "SELECT h.hardware_id AS id, h.name, h.gpu, h.spec_json IS NOT NULL AS has_spec, "
     "(SELECT count(*) FROM runs r WHERE r.hardware_id = h.hardware_id) AS runs, "
     "(SELECT count(*) FROM measurements m WHERE m.hardware_id = h.hardware_id) AS measurements "
     "FROM hardware h WHERE ?1 IS NULL AND ?2 IS NULL ORDER BY h.hardware_id"},
    {"models",
     "SELECT mo.model_id AS id, mo.name, mo.quant, "
     "json_extract(mo.config_json, '$.architectures[0]') AS architecture, "
     "json_extract(mo.config_json, '$.num_hidden_layers') AS layers, "
     "json_extract(mo.config_json, '$.num_experts') AS experts, "
     "(SELECT count(*) FROM runs r WHERE r.model_id = mo.model_id) AS runs "
     "FROM models mo WHERE ?1 IS NULL AND ?2 IS NULL ORDER BY mo.model_id"},
};

/* `db list tables`: every table with its row count, built from the schema. */
static int list_tables(struct db *db, int64_t limit) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db_handle(db),
                         "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE "
                         "'sqlite_%' ORDER BY name", -1, &st, NULL) != SQLITE_OK)
    return err_set(ERR_DB, "%s: %s", db_path(db), sqlite3_errmsg(db_handle(db)));
  char *sql = sqlite3_mprintf("%s", "");
  while (sql && sqlite3_step(st) == SQLITE_ROW) {
    char *next = sqlite3_mprintf("%s%sSELECT %Q AS \"table\", count(*) AS rows FROM \"%w\"", sql,
                                 *sql ? " UNION ALL " : "", sqlite3_column_text(st, 0),
                                 sqlite3_column_text(st, 0));
    sqlite3_free(sql);
    sql = next;
  }
  sqlite3_finalize(st);
  if (!sql) return err_set(ERR_NOMEM, "out of memory");
  int rc = db_table_print(db, sql, NULL, 0, limit, stdout);
  sqlite3_free(sql);
  return rc;
}

static int cmd_list(const struct db_args *a) {
  if (a->merge) return err_set(ERR_INPUT, "--merge: only for import");
  if (a->n_pos > 1) return err_set(ERR_INPUT, "list: one of runs, measurements, ... (got '%s')", a->pos[1]);
  const char *what = a->n_pos ? a->pos[0] : "runs";
  int which = -1;
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
    if (!strcmp(what, lists[i].what)) which = (int)i;
  if (which < 0 && strcmp(what, "tables"))
    return err_set(ERR_INPUT, "list: unknown '%s' (runs, summaries, metrics, requests, "
                   "measurements, expert_hits, layouts, hardware, models, tables)", what);
  /* Filters that a listing cannot honour are an error, not silently ignored. */
  if (which >= 0 && a->kind && strcmp(what, "runs") && strcmp(what, "measurements"))
    return err_set(ERR_INPUT, "--kind: list %s has no kind (runs and measurements do)", what);
  if (a->run && (which < 0 || !strcmp(what, "layouts") || !strcmp(what, "hardware") ||
                 !strcmp(what, "models")))
    return err_set(ERR_INPUT, "--run: list %s is not per run", what);
  struct db *db;
  int rc = db_open_ex(a->db_path, DB_OPEN_MUST_EXIST, 0, &db);
  if (rc) return rc;
  if (which < 0) {
    rc = list_tables(db, a->limit);
  } else {
    const char *binds[2] = {a->run, a->kind};
    rc = db_table_print(db, lists[which].sql, binds, 2, a->limit, stdout);
  }
  db_close(db);
  return rc;
}

int cli_db(int argc, char **argv) {
  if (argc < 1) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[0];
  if (cli_args_wants_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  struct db_args a;
  int rc = parse_args(argc - 1, argv + 1, &a);
  if (!rc) {
    if (!strcmp(cmd, "init"))
      rc = cmd_init(&a);
    else if (!strcmp(cmd, "import"))
      rc = cmd_import(&a);
    else if (!strcmp(cmd, "export"))
      rc = cmd_export(&a);
    else if (!strcmp(cmd, "list"))
      rc = cmd_list(&a);
    else
      rc = err_set(ERR_INPUT, "unknown command '%s' (init, import, export, list)", cmd);
  }
  if (rc) err_print(PROG);
  return err_exit_code(rc);
}
