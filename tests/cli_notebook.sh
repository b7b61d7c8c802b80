#!/usr/bin/env bash
# cli_notebook: notebooks/runs.ipynb executes headless against a small database made with the
# CLI (servesim db init, then rows through Python's sqlite3 with the schema's constraints on) and
# draws its figures. Skips (77) when Jupyter's nbconvert, ipykernel, pandas or matplotlib are
# missing (scripts/setup.sh installs them).
source "$(dirname "$0")/cli_lib.sh"
SRC=${SERVESIM_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: no $PY"; exit 77; }
"$PY" -c "import matplotlib, pandas, ipykernel, nbformat" 2>/dev/null \
  || { echo "SKIP: python3 lacks matplotlib, pandas, ipykernel or nbformat"; exit 77; }
"$PY" -m jupyter nbconvert --version >/dev/null 2>&1 || { echo "SKIP: no jupyter nbconvert"; exit 77; }

export JUPYTER_RUNTIME_DIR=$TMP/rt JUPYTER_DATA_DIR=$TMP/data IPYTHONDIR=$TMP/ipy MPLCONFIGDIR=$TMP/mpl

DB=$TMP/nb.db
"$BIN" db init --db "$DB" >/dev/null || { echo "FAIL: servesim db init"; exit 1; }
"$PY" - "$DB" <<'EOF' || { echo "FAIL: filling the database"; exit 1; }
import random, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("PRAGMA foreign_keys = ON")
rng = random.Random(7)
prov = ("0.1.0", "test", "host", "NVIDIA H100 80GB HBM3", "550.54", "12.4", "2.21.5", "2026-11-28T00:00:00Z")
con.execute("INSERT INTO models VALUES (1, 'qwen3-235b-a22b-gptq-int4', 'gptq-int4', NULL)")
con.execute("INSERT INTO hardware VALUES (1, 'a100-40g-pcie', 'NVIDIA A100-PCIE-40GB', NULL)")
con.execute("INSERT INTO hardware VALUES (2, 'h100-sxm', 'NVIDIA H100 80GB HBM3', NULL)")
for run_id, (tp, pp, ep, ttft, tpot) in enumerate([(8, 1, 8, 0.9, 0.060), (4, 2, 1, 1.4, 0.045)], 1):
    con.execute("INSERT INTO runs (run_id, kind, model_id, hardware_id, n_gpus, tp, pp, dp, ep, "
                "config_json, tool_version, git_commit, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, "simulated", 1, 1, 8, tp, pp, 1, ep, "{}", "0.1.0", "test", prov[-1]))
    for i in range(200):
        t = ttft * rng.uniform(0.5, 2.0)
        p = tpot * rng.uniform(0.8, 1.3)
        con.execute("INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run_id, i, i * 10**8, i * 10**8, None, None, 1024, 1024, 0, None, 1,
                     t, p, t + 1022 * p, t + 1022 * p))
    con.execute("INSERT INTO run_summaries (run_id, concurrency, n_requests, n_succeeded, n_failed, "
                "output_tok_s, ttft_avg_s, tpot_avg_s) VALUES (?, 50, 200, 200, 0, ?, ?, ?)",
                (run_id, 800.0 + run_id, ttft, tpot))
    con.execute("INSERT INTO run_metrics VALUES (?, 'Output token throughput (tok/s)', ?)", (run_id, 800.0 + run_id))
cols = "(kind, op, impl, dtype, hardware_id, m, n, k, tokens, experts, topk, batch, ctx_len, q_len, " \
       "n_bytes, ranks, lat_us_median, lat_us_p10, lat_us_p90, count, tool_version, git_commit, " \
       "host, gpu_name, driver_version, cuda_version, nccl_version, created_at)"
def meas(kind, op, impl, shape, lat):
    s = dict(m=None, n=None, k=None, tokens=None, experts=None, topk=None, batch=None,
             ctx_len=None, q_len=None, n_bytes=None, ranks=None)
    s.update(shape)
    row = (kind, op, impl, "int4", 2, s["m"], s["n"], s["k"], s["tokens"], s["experts"], s["topk"],
           s["batch"], s["ctx_len"], s["q_len"], s["n_bytes"], s["ranks"], lat, lat * 0.95, lat * 1.1, 50) + \
          ("0.1.0", "test") + prov[2:]
    con.execute(f"INSERT INTO measurements {cols} VALUES ({','.join('?' * len(row))})", row)
for m in (1, 4, 16, 64, 256):
    meas("gemm", "qkv", "w4a16", dict(m=m, n=9216, k=4096), 6.0 + 0.2 * m)
    meas("moe", "fused", "w4a16", dict(tokens=m, experts=128, topk=8), 20.0 + 1.5 * m)
for ctx in (512, 2048, 8192):
    meas("attention", "decode", "paged", dict(batch=16, ctx_len=ctx, q_len=1), 5.0 + ctx / 200)
for b in (8192, 524288, 33554432):
    meas("allreduce", None, "nccl", dict(n_bytes=b, ranks=4), 43.0 + b / 2.5e5)
con.execute("INSERT INTO runs (run_id, kind, model_id, hardware_id, n_gpus, tp, pp, dp, ep, "
            "config_json, tool_version, git_commit, created_at) VALUES (3,'profile',1,2,4,4,1,1,1,'{}','0.1.0','test',?)",
            (prov[-1],))
for layer in range(4):
    for e in range(16):
        con.execute("INSERT INTO expert_hits VALUES (3, ?, ?, ?)", (layer, e, rng.randint(0, 100)))
con.commit()
EOF

OUT=$TMP/out.ipynb
if SERVESIM_DB=$DB timeout 240 "$PY" -m jupyter nbconvert --to notebook --execute \
     --ExecutePreprocessor.timeout=120 --output "$OUT" "$SRC/notebooks/runs.ipynb" >"$TMP/log" 2>&1; then
  ok
else
  fail "nbconvert --execute: $(tail -20 "$TMP/log")"
fi
if [ -f "$OUT" ]; then
  # Every code cell ran without an error, and the three figures with data were drawn.
  "$PY" - "$OUT" <<'EOF' && ok || fail "executed notebook content"
import json, sys
nb = json.load(open(sys.argv[1]))
code = [c for c in nb["cells"] if c["cell_type"] == "code"]
errors = [o for c in code for o in c["outputs"] if o.get("output_type") == "error"]
pngs = sum(1 for c in code for o in c["outputs"] if "image/png" in o.get("data", {}))
text = json.dumps(nb)
assert all(c["execution_count"] for c in code), "a code cell did not run"
assert not errors, errors
assert pngs >= 3, f"{pngs} figures"
assert "schema version 1" in text and "Output token throughput" in text
print(f"notebook: {len(code)} cells ran, {pngs} figures")
EOF
fi
# A missing database is a clear error, not a new empty file (the setup cell alone, no kernel).
"$PY" - "$SRC/notebooks/runs.ipynb" "$TMP/none.db" >"$TMP/log2" 2>&1 <<'EOF'
import json, os, sys
os.environ["SERVESIM_DB"] = sys.argv[2]
cell = next(c for c in json.load(open(sys.argv[1]))["cells"] if c.get("id") == "setup")
try:
    exec("".join(cell["source"]))
except FileNotFoundError as e:
    print("refused:", e)
    sys.exit(0)
sys.exit("the setup cell accepted a missing database")
EOF
if [ $? -eq 0 ] && grep -q "none.db: no such database" "$TMP/log2" && [ ! -e "$TMP/none.db" ]; then
  ok
else
  fail "missing database: $(tail -3 "$TMP/log2")"
fi
cli_done
