-- servesim SQLite store: the schema, as an ordered list of migrations.
--
-- This file is the source of truth; db/CMakeLists.txt embeds it into the binary. db_open() splits
-- it at the "-- @migration N:" lines and applies every migration above the database's
-- PRAGMA user_version in order, each in its own transaction, then sets user_version to N.
-- Never edit a migration that has shipped: add a new one below (ALTER TABLE, new tables).
--
-- Units are in column names (_ns integer nanoseconds, _s / _us seconds / microseconds as REAL,
-- n_bytes). NULL means "not applicable" or "unknown". Times of rows are ISO 8601 UTC text.

-- @migration 1: hardware, models, layouts, measurements, runs, requests, summaries, expert hits

-- A GPU server kind: a specs/hardware name, or the GPU a profile ran on.
CREATE TABLE hardware (
  hardware_id INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,   -- "a100-40g-pcie", "h100-sxm"
  gpu         TEXT,                   -- marketing name, "NVIDIA A100-PCIE-40GB"
  spec_json   TEXT CHECK (spec_json IS NULL OR json_valid(spec_json))
);

-- A model: a specs/models name or a checkpoint path, with its Hugging Face config.json.
CREATE TABLE models (
  model_id    INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,   -- "qwen3-235b-a22b-gptq-int4"
  quant       TEXT,                   -- "bf16" | "fp8" | "gptq-int4"
  config_json TEXT CHECK (config_json IS NULL OR json_valid(config_json))
);

-- A `servesim check` verdict: does this layout of this model run on this hardware.
CREATE TABLE layouts (
  layout_id           INTEGER PRIMARY KEY,
  model_id            INTEGER NOT NULL REFERENCES models (model_id),
  hardware_id         INTEGER NOT NULL REFERENCES hardware (hardware_id),
  n_gpus              INTEGER NOT NULL CHECK (n_gpus >= 1),
  tp                  INTEGER NOT NULL CHECK (tp >= 1),
  pp                  INTEGER NOT NULL CHECK (pp >= 1),
  dp                  INTEGER NOT NULL CHECK (dp >= 1),
  ep                  INTEGER NOT NULL CHECK (ep >= 1),  -- expert-parallel group size, 1 = off
  ok                  INTEGER NOT NULL CHECK (ok IN (0, 1)),
  weight_bytes_rank   INTEGER,
  kv_bytes_token_rank INTEGER,
  kv_blocks           INTEGER,
  kv_tokens           INTEGER,
  max_concurrency     REAL,
  fails               TEXT,           -- "rule: detail" lines of every failed rule
  tool_version        TEXT NOT NULL,
  git_commit          TEXT NOT NULL,
  created_at          TEXT NOT NULL,
  UNIQUE (model_id, hardware_id, n_gpus, tp, pp, dp, ep)
);

-- A simulated or live load run, or a profile session (which owns measurements and expert hits).
CREATE TABLE runs (
  run_id         INTEGER PRIMARY KEY,
  kind           TEXT NOT NULL CHECK (kind IN ('simulated', 'live', 'profile')),
  label          TEXT,                -- free text, e.g. a sweep name
  model_id       INTEGER NOT NULL REFERENCES models (model_id),
  hardware_id    INTEGER NOT NULL REFERENCES hardware (hardware_id),
  n_gpus         INTEGER NOT NULL CHECK (n_gpus >= 1),
  tp             INTEGER NOT NULL CHECK (tp >= 1),
  pp             INTEGER NOT NULL CHECK (pp >= 1),
  dp             INTEGER NOT NULL CHECK (dp >= 1),
  ep             INTEGER NOT NULL CHECK (ep >= 1),
  workload       TEXT,                -- "evalscope random parallel=10 number=20 ...", a trace
  cost_model     TEXT,                -- "roofline" | "calibrated"; NULL for live runs
  seed           INTEGER,
  config_json    TEXT NOT NULL CHECK (json_valid(config_json)),  -- the full configuration
  tool_version   TEXT NOT NULL,
  git_commit     TEXT NOT NULL,
  host           TEXT,
  gpu_name       TEXT,
  driver_version TEXT,
  cuda_version   TEXT,
  nccl_version   TEXT,
  created_at     TEXT NOT NULL
);
CREATE INDEX runs_by_model ON runs (model_id, hardware_id);

-- One request of a run. Times are ns from the run start; metrics are seconds, as evalscope.
CREATE TABLE requests (
  run_id         INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  idx            INTEGER NOT NULL CHECK (idx >= 0),
  arrival_ns     INTEGER NOT NULL,
  start_ns       INTEGER NOT NULL,
  first_token_ns INTEGER,
  last_token_ns  INTEGER,
  in_tok         INTEGER NOT NULL CHECK (in_tok >= 0),
  out_tok        INTEGER NOT NULL CHECK (out_tok >= 0),
  n_preempt      INTEGER NOT NULL DEFAULT 0 CHECK (n_preempt >= 0),
  replica        INTEGER,             -- DP replica that served it
  ok             INTEGER NOT NULL CHECK (ok IN (0, 1)),
  ttft_s         REAL,
  tpot_s         REAL,
  latency_s      REAL,                -- done - start
  e2e_s          REAL,                -- done - arrival
  PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;

-- evalscope's summary of a run: the common figures as columns (queryable across runs).
CREATE TABLE run_summaries (
  run_id        INTEGER PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
  concurrency   INTEGER,              -- --parallel; NULL for open-loop replay
  n_requests    INTEGER NOT NULL,
  n_succeeded   INTEGER NOT NULL,
  n_failed      INTEGER NOT NULL,
  duration_s    REAL,                 -- "Time taken for tests (s)"
  output_tok_s  REAL,                 -- "Output token throughput (tok/s)"
  total_tok_s   REAL,                 -- "Total token throughput (tok/s)"
  request_s     REAL,                 -- "Request throughput (req/s)"
  ttft_avg_s    REAL,
  tpot_avg_s    REAL,
  latency_avg_s REAL,
  itl_avg_s     REAL,
  ttft_p99_s    REAL,
  tpot_p99_s    REAL,
  latency_p99_s REAL,
  goodput_req_s REAL                  -- under --slo; NULL without one
);

-- Every other figure of a run by name: evalscope's keys verbatim, percentiles, the time
-- breakdown ("breakdown.moe_gemm_s"), ...
CREATE TABLE run_metrics (
  run_id INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  value  REAL,
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- A timed operation on a GPU: median/p10/p90 latency over `count` repeats, with its shape and
-- where it came from. Read back by the calibrated cost model.
CREATE TABLE measurements (
  measurement_id    INTEGER PRIMARY KEY,
  kind              TEXT NOT NULL CHECK (kind IN ('gemm', 'moe', 'attention', 'allreduce',
                                                  'all2all', 'p2p', 'step')),
  op                TEXT,             -- "qkv", "o_proj", "gate_up", "down", "decode", ...
  impl              TEXT,             -- "w4a16", "cublas-bf16", "nccl", ...
  dtype             TEXT,             -- "bf16", "int4", "fp8"
  hardware_id       INTEGER REFERENCES hardware (hardware_id),
  model_id          INTEGER REFERENCES models (model_id),
  run_id            INTEGER REFERENCES runs (run_id) ON DELETE CASCADE,
  m                 INTEGER,          -- GEMM (m x k) @ (k x n)
  n                 INTEGER,
  k                 INTEGER,
  tokens            INTEGER,          -- tokens entering the op
  experts           INTEGER,          -- experts on the rank
  topk              INTEGER,
  tokens_per_expert REAL,             -- mean over active experts
  batch             INTEGER,          -- sequences
  ctx_len           INTEGER,          -- context per sequence
  q_len             INTEGER,          -- new tokens per sequence
  n_bytes           INTEGER,          -- message bytes per rank
  ranks             INTEGER,          -- communicator size
  tp                INTEGER,
  ep                INTEGER,
  quant_group       INTEGER,
  lat_us_median     REAL NOT NULL CHECK (lat_us_median >= 0),
  lat_us_p10        REAL,
  lat_us_p90        REAL,
  count             INTEGER NOT NULL CHECK (count >= 1),
  extra_json        TEXT CHECK (extra_json IS NULL OR json_valid(extra_json)),
  tool_version      TEXT NOT NULL,
  git_commit        TEXT NOT NULL,
  gpu_name          TEXT,
  driver_version    TEXT,
  cuda_version      TEXT,
  nccl_version      TEXT,
  host              TEXT,
  created_at        TEXT NOT NULL
);
CREATE INDEX measurements_by_kind ON measurements (kind, hardware_id);

-- Tokens routed to each expert of each layer, summed over a run's real forward passes.
CREATE TABLE expert_hits (
  run_id INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  layer  INTEGER NOT NULL CHECK (layer >= 0),
  expert INTEGER NOT NULL CHECK (expert >= 0),
  count  INTEGER NOT NULL CHECK (count >= 0),
  PRIMARY KEY (run_id, layer, expert)
) WITHOUT ROWID;
