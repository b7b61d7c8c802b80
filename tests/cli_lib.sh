# tests/cli_lib.sh: the scaffolding every tests/cli_*.sh shares, sourced as
#   source "$(dirname "$0")/cli_lib.sh"
# It sets BIN (the servesim binary, from $SERVESIM_BIN), TMP (a scratch directory removed on
# exit), the failure/pass counters and the check helpers below. A test ends with `cli_done`,
# which prints one summary line and returns non-zero when any check failed, so the script's exit
# code is 0 (all passed) or 1 (a failure); a test that cannot run exits 77 (skipped) itself.
set -u
BIN=${SERVESIM_BIN:?SERVESIM_BIN must point at the servesim binary}
CLI_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/servesim_$CLI_NAME.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
RUN_BIN=$BIN            # what `run` executes; cli_exec points it at servesim-exec
fails=0; passes=0

ok()   { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# run EXPECTED_RC ARGS...: runs $RUN_BIN ARGS, keeps stdout in $TMP/out and stderr in $TMP/err.
run() {
  local want=$1; shift
  "$RUN_BIN" "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  [ "$rc" -eq "$want" ] || fail "exit $rc, wanted $want: $(basename "$RUN_BIN") $*  (stderr: $(head -c 300 "$TMP/err"))"
}
# has TEXT out|err: the last command's stdout or stderr contains TEXT (fixed string).
has() { grep -qF -- "$1" "$TMP/$2" || fail "'$1' not in $2 of the last command: $(head -c 300 "$TMP/$2")"; }
# one_line: the last command wrote exactly one line on stderr.
one_line() { [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "stderr is not one line: $(cat "$TMP/err")"; }

# expect_err CODE PATTERN CMD...: exit CODE, exactly one stderr line matching PATTERN (ERE).
expect_err() {
  local code=$1 pat=$2; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  local lines; lines=$(wc -l <"$TMP/err")
  if [ "$rc" -ne "$code" ]; then fail "$*: exit $rc, want $code ($(cat "$TMP/err"))"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$*: $lines stderr lines, want 1: $(cat "$TMP/err")"; return; fi
  if ! grep -qE -- "$pat" "$TMP/err"; then fail "$*: stderr '$(cat "$TMP/err")' lacks /$pat/"; return; fi
  ok
}

# cli_done: the closing summary line; returns 1 when any check failed, else 0.
cli_done() {
  if [ "$fails" -ne 0 ]; then
    echo "$CLI_NAME: $fails failure(s), $passes counted check(s) passed" >&2
    return 1
  fi
  if [ "$passes" -gt 0 ]; then echo "$CLI_NAME: all passed ($passes counted checks)"
  else echo "$CLI_NAME: all passed"; fi
}
