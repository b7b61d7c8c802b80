#!/usr/bin/env bash
# cli_db: `servesim db init | import | export | list` end to end through the binary: a CSV of
# measurements and an SQL file with a run go in, the export reloads into a second database and
# exports to the same bytes, list shows what went in, and every kind of bad input exits 2 with
# one line on stderr naming the flag or file(:line).
source "$(dirname "$0")/cli_lib.sh"
export SOURCE_DATE_EPOCH=1795000000

DB=$TMP/a.db
"$BIN" db init --db "$DB" >"$TMP/out" 2>&1 || fail "db init: $(cat "$TMP/out")"
grep -q "schema version [1-9]" "$TMP/out" && ok || fail "init output: $(cat "$TMP/out")"
"$BIN" db init --db "$DB" >/dev/null 2>&1 && ok || fail "second init"
command -v sqlite3 >/dev/null && {
  [ "$(sqlite3 "$DB" 'PRAGMA journal_mode')" = wal ] && ok || fail "journal mode not WAL"
}

cat >"$TMP/m.csv" <<'EOF'
kind,op,impl,dtype,hardware,m,n,k,quant_group,lat_us_median,lat_us_p10,lat_us_p90,count,gpu_name
gemm,qkv,w4a16,int4,h100-sxm,1,9216,4096,128,6.1,6.0,6.4,50,NVIDIA H100 80GB HBM3
gemm,qkv,w4a16,int4,h100-sxm,16,9216,4096,128,7.9,7.7,8.3,50,NVIDIA H100 80GB HBM3
allreduce,,nccl,bf16,h100-sxm,,,,,43.0,42.0,45.5,100,NVIDIA H100 80GB HBM3
EOF
"$BIN" db import --db "$DB" "$TMP/m.csv" >"$TMP/out" 2>&1 || fail "csv import: $(cat "$TMP/out")"
grep -q "3 rows" "$TMP/out" && ok || fail "csv import output: $(cat "$TMP/out")"

# A run with a summary, metrics and 40 requests, written as the dump format would.
{
  echo "PRAGMA user_version = 1;"
  echo "INSERT INTO models VALUES(7,'qwen3-30b-a3b','bf16','{\"num_hidden_layers\": 48}');"
  echo "INSERT INTO hardware VALUES(9,'a100-40g-pcie','NVIDIA A100-PCIE-40GB',NULL);"
  echo "INSERT INTO runs VALUES(1,'simulated','it''s a sweep',7,9,8,4,2,1,1,'evalscope random parallel=10',"
  echo "  'roofline',42,'{\"tp\": 4, \"pp\": 2}','0.1.0','abc','host',NULL,NULL,NULL,NULL,'2026-11-28T00:00:00Z');"
  for i in $(seq 0 39); do
    echo "INSERT INTO requests VALUES(1,$i,$((i * 1000000)),$((i * 1000000)),NULL,NULL,1024,$((100 + i)),0,NULL,1,0.$((10 + i)),0.0$((20 + i)),$((3 + i % 5)).5,$((3 + i % 5)).5);"
  done
  echo "INSERT INTO run_summaries VALUES(1,10,40,40,0,30.5,1400.25,2800.5,1.31,0.3,0.04,4.5,0.04,0.49,0.059,7.5,NULL);"
  echo "INSERT INTO run_metrics VALUES(1,'Average time to first token (s)',0.3);"
} >"$TMP/run.sql"
"$BIN" db import --db "$DB" "$TMP/run.sql" >"$TMP/out" 2>&1 || fail "sql import: $(cat "$TMP/out")"
grep -q "45 rows" "$TMP/out" && ok || fail "sql import output: $(cat "$TMP/out")"

"$BIN" db list --db "$DB" >"$TMP/out" 2>&1 || fail "list runs: $(cat "$TMP/out")"
grep -q "it's a sweep" "$TMP/out" && grep -q "qwen3-30b-a3b" "$TMP/out" && grep -qE " 40 +10 " "$TMP/out" \
  && ok || fail "list runs output: $(cat "$TMP/out")"
"$BIN" db list measurements --db "$DB" --kind gemm >"$TMP/out" 2>&1 || fail "list measurements"
[ "$(grep -c 'qkv' "$TMP/out")" = 2 ] && grep -q "m=16 n=9216 k=4096" "$TMP/out" && ! grep -q allreduce "$TMP/out" \
  && ok || fail "list measurements output: $(cat "$TMP/out")"
"$BIN" db list requests --run 1 --limit 5 --db "$DB" >"$TMP/out" 2>&1 || fail "list requests"
grep -q "(35 more rows" "$TMP/out" && ok || fail "list requests limit: $(cat "$TMP/out")"
"$BIN" db list tables --db "$DB" >"$TMP/out" 2>&1 || fail "list tables"
grep -qE "^requests +40$" "$TMP/out" && grep -qE "^measurements +3$" "$TMP/out" && ok \
  || fail "list tables output: $(cat "$TMP/out")"
for w in summaries metrics expert_hits layouts hardware models; do
  "$BIN" db list "$w" --db "$DB" >/dev/null 2>"$TMP/err" && ok || fail "list $w: $(cat "$TMP/err")"
done

# Export -> import into a new database -> export: the same bytes; stdout and -o agree.
"$BIN" db export --db "$DB" -o "$TMP/d1.sql" 2>"$TMP/err" || fail "export: $(cat "$TMP/err")"
"$BIN" db export --db "$DB" >"$TMP/d1b.sql" 2>"$TMP/err" || fail "export stdout: $(cat "$TMP/err")"
cmp -s "$TMP/d1.sql" "$TMP/d1b.sql" && ok || fail "export -o and stdout differ"
"$BIN" db import --db "$TMP/b.db" "$TMP/d1.sql" >/dev/null 2>"$TMP/err" || fail "reimport: $(cat "$TMP/err")"
"$BIN" db export --db "$TMP/b.db" -o "$TMP/d2.sql" 2>"$TMP/err" || fail "export 2: $(cat "$TMP/err")"
cmp -s "$TMP/d1.sql" "$TMP/d2.sql" && ok || fail "round trip changed the dump: $(diff "$TMP/d1.sql" "$TMP/d2.sql" | head -5)"
"$BIN" db export --db "$DB" --table measurements -o "$TMP/m.sql" || fail "export --table"
grep -q "INSERT INTO measurements" "$TMP/m.sql" && ! grep -q "INSERT INTO requests" "$TMP/m.sql" && ok \
  || fail "export --table content"
"$BIN" db import --db "$TMP/m.db" "$TMP/m.sql" >"$TMP/out" 2>&1 && grep -q "7 rows" "$TMP/out" && ok \
  || fail "a one-table dump (3 measurements, 2 hardware, 1 model, 1 run) should load alone: $(cat "$TMP/out")"
# The dump also loads with the stock sqlite3 shell.
if command -v sqlite3 >/dev/null; then
  sqlite3 "$TMP/c.db" <"$TMP/d1.sql" 2>"$TMP/err" && [ "$(sqlite3 "$TMP/c.db" 'SELECT count(*) FROM requests')" = 40 ] \
    && ok || fail "sqlite3 shell load: $(cat "$TMP/err")"
fi

# Bad input: one line, exit 2.
expect_err 2 "unknown command 'frobnicate'" "$BIN" db frobnicate
expect_err 2 "unknown flag '--bogus'" "$BIN" db list --bogus
expect_err 2 "--db: missing value" "$BIN" db init --db
expect_err 2 "--limit: 'x'" "$BIN" db list --db "$DB" --limit x
expect_err 2 "--run: '0'" "$BIN" db list requests --db "$DB" --run 0
expect_err 2 "unknown 'widgets'" "$BIN" db list widgets --db "$DB"
expect_err 2 "--kind: list requests" "$BIN" db list requests --kind gemm --db "$DB"
expect_err 2 "nope.db: no such database" "$BIN" db list --db "$TMP/nope.db"
expect_err 2 "nope.db: no such database" "$BIN" db export --db "$TMP/nope.db"
[ ! -e "$TMP/nope.db" ] && ok || fail "list/export created a database"
expect_err 2 "missing.sql: No such file" "$BIN" db import --db "$DB" "$TMP/missing.sql"
expect_err 2 "import: which file" "$BIN" db import --db "$DB"
expect_err 2 "is a directory" "$BIN" db import --db "$DB" "$TMP"
expect_err 2 "unable to open database file" "$BIN" db init --db "$TMP/no/such/dir/x.db"
expect_err 2 "list: one of runs" "$BIN" db list runs extra --db "$DB"
expect_err 2 "no table 'nope'" "$BIN" db export --db "$DB" --table nope
printf 'INSERT INTO hardware VALUES(50,%s);\nINSERT INTO hardware VALUES(51,\n' "'x',NULL,NULL" >"$TMP/bad.sql"
expect_err 2 "bad.sql:2: .*incomplete input|bad.sql:2: .*syntax error" "$BIN" db import --db "$DB" "$TMP/bad.sql"
printf 'DELETE FROM runs;\n' >"$TMP/bad.sql"
expect_err 2 "bad.sql:1: import accepts only CREATE and INSERT statements, not DELETE" \
  "$BIN" db import --db "$DB" "$TMP/bad.sql"
expect_err 2 "d1.sql:[0-9]+: UNIQUE constraint failed.*--merge" "$BIN" db import --db "$DB" "$TMP/d1.sql"
printf 'kind,lat_us_median,count\ngemm,fast,3\n' >"$TMP/bad.csv"
expect_err 2 "bad.csv:2: column lat_us_median: 'fast' is not a number" "$BIN" db import --db "$DB" "$TMP/bad.csv"
head -c 4096 /dev/urandom >"$TMP/junk.db"
expect_err 2 "junk.db: file is not a database" "$BIN" db list --db "$TMP/junk.db"
# None of the failed imports changed the database.
"$BIN" db export --db "$DB" -o "$TMP/d3.sql" && cmp -s "$TMP/d1.sql" "$TMP/d3.sql" && ok \
  || fail "a failed import changed the database"
# --merge adds a second copy of everything but hardware and models (matched by name).
"$BIN" db import --merge --db "$DB" "$TMP/d1.sql" >"$TMP/out" 2>&1 && grep -q "46 rows" "$TMP/out" && ok \
  || fail "import --merge: $(cat "$TMP/out")"
"$BIN" db list tables --db "$DB" >"$TMP/out" 2>&1
grep -qE "^requests +80$" "$TMP/out" && grep -qE "^hardware +2$" "$TMP/out" && grep -qE "^runs +2$" "$TMP/out" \
  && ok || fail "after --merge: $(cat "$TMP/out")"
expect_err 2 "--merge: only for import" "$BIN" db export --merge --db "$DB"
"$BIN" db --help >/dev/null && ok || fail "db --help"
"$BIN" db >/dev/null 2>&1; [ $? -eq 2 ] && ok || fail "db without a command should exit 2"

cli_done
