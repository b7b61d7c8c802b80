#!/usr/bin/env bash
# cli_trace: `servesim trace` end to end — exit codes and one-line errors naming file:line or the
# flag, skip-mode summaries, failed-row reports, byte-identical generation per seed, convert
# round trips and scaling. Real-trace checks run only when $SERVESIM_SHARED/traces exists.
source "$(dirname "$0")/cli_lib.sh"

# expect RC STDERR_REGEX -- command...: exit status and a single stderr line matching the regex
expect() {
  local want_rc=$1 re=$2; shift 3
  "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  [ "$rc" = "$want_rc" ] || fail "$*: exit $rc, want $want_rc (stderr: $(head -c 300 "$TMP/err"))"
  if [ -n "$re" ]; then
    grep -Eq -- "$re" "$TMP/err" || fail "$*: stderr '$(cat "$TMP/err")' does not match /$re/"
    [ "$want_rc" = 0 ] || [ "$(wc -l <"$TMP/err")" = 1 ] || fail "$*: want one stderr line, got: $(cat "$TMP/err")"
  fi
}

# ---- bad input: exit 2, one line naming the file:line or the flag ----
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:17:03.9799600,4808,10\r\n2023-11-16 18:17:04.0319600,31x0,8\r\n2023-11-16 18:17:05.0000000,5,5\r\n' >"$TMP/bad.csv"
expect 2 "bad\.csv:3: ContextTokens '31x0'" -- "$BIN" trace stats "$TMP/bad.csv"
expect 2 "bad\.csv:3:" -- "$BIN" trace convert "$TMP/bad.csv" -o "$TMP/x.csv"
expect 2 "bad\.csv:3:" -- "$BIN" trace stats "$TMP/bad.csv" --on-bad-row=fail
expect 0 "skipped 1 malformed row \(first: .*bad\.csv:3:" -- "$BIN" trace stats "$TMP/bad.csv" --on-bad-row skip
grep -q "^requests *2$" "$TMP/out" || fail "skip mode: want 2 requests, got $(cat "$TMP/out")"
printf '{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": 1, "input_length": 5,\n' >"$TMP/bad.jsonl"
expect 2 "bad\.jsonl:2: invalid JSON" -- "$BIN" trace stats "$TMP/bad.jsonl"
expect 2 "no_such\.csv" -- "$BIN" trace stats "$TMP/no_such.csv"
expect 2 "unknown flag '--bogus'" -- "$BIN" trace stats "$TMP/bad.csv" --bogus
expect 2 "--on-bad-row 'maybe'" -- "$BIN" trace stats "$TMP/bad.csv" --on-bad-row maybe
expect 2 "--format 'xml'" -- "$BIN" trace stats "$TMP/bad.csv" --format xml
expect 2 "--rate is required" -- "$BIN" trace gen poisson --number 10
expect 2 "--cv is required" -- "$BIN" trace gen gamma --rate 1 --number 10
expect 2 "--number: 'ten'" -- "$BIN" trace gen random --number ten
expect 2 "unknown kind 'zipf'" -- "$BIN" trace gen zipf
expect 2 "prompt-length" -- "$BIN" trace gen random --min-prompt-length 10 --max-prompt-length 5
expect 2 "--speedup '0'" -- "$BIN" trace scale "$TMP/bad.csv" --speedup 0
expect 2 "unknown command 'frobnicate'" -- "$BIN" trace frobnicate

# ---- generation: same seed, same bytes; another seed, other bytes ----
gen() { "$BIN" trace gen poisson --rate 50 --number 20000 --min-prompt-length 1 --max-prompt-length 4096 \
  --min-tokens 1 --max-tokens 512 "$@"; }
gen --seed 9 -o "$TMP/g1.csv" 2>/dev/null || fail "gen seed 9"
gen --seed 9 -o "$TMP/g2.csv" 2>/dev/null || fail "gen seed 9 again"
gen --seed 10 -o "$TMP/g3.csv" 2>/dev/null || fail "gen seed 10"
cmp -s "$TMP/g1.csv" "$TMP/g2.csv" || fail "same seed gave different bytes"
cmp -s "$TMP/g1.csv" "$TMP/g3.csv" && fail "different seeds gave the same bytes"
[ "$(wc -l <"$TMP/g1.csv")" = 20001 ] || fail "gen: want header + 20000 rows"
# canonical -> canonical is the identity on bytes
"$BIN" trace convert "$TMP/g1.csv" -o "$TMP/g4.csv" 2>/dev/null || fail "convert canonical"
cmp -s "$TMP/g1.csv" "$TMP/g4.csv" || fail "canonical convert round trip changed bytes"
# scale 2x: every arrival halved (rounded half up to the ns), lengths unchanged
"$BIN" trace scale "$TMP/g1.csv" --speedup 2 -o "$TMP/g5.csv" 2>/dev/null || fail "scale"
awk -F, 'NR == FNR { if (FNR > 1) { split($1, p, "."); a[FNR] = p[1] * 1000000000 + p[2]; l[FNR] = $2 "," $3 } next }
         FNR > 1 { split($1, p, "."); ns = p[1] * 1000000000 + p[2];
                   if (ns != int((a[FNR] + 1) / 2) || $2 "," $3 != l[FNR]) { bad++ } }
         END { exit bad > 0 }' "$TMP/g1.csv" "$TMP/g5.csv" || fail "scale --speedup 2 did not halve arrivals exactly"
# closed loop: every arrival 0, lengths fixed when min = max
"$BIN" trace gen random --number 50 --min-prompt-length 1024 --max-prompt-length 1024 \
  --min-tokens 128 --max-tokens 128 -o "$TMP/r.csv" 2>/dev/null || fail "gen random"
[ "$(grep -c '^0\.000000000,1024,128$' "$TMP/r.csv")" = 50 ] || fail "gen random: want 50 rows 0,1024,128"

# ---- the real traces ----
S=${SERVESIM_SHARED:-}/traces
if [ -d "$S" ]; then
  "$BIN" trace stats "$S/azure_llm_2023_conv_first30min.csv" >"$TMP/out" 2>"$TMP/err" || fail "stats azure conv"
  grep -Eq "^requests +10108$" "$TMP/out" || fail "azure conv: $(cat "$TMP/out")"
  grep -Eq "mean 1243\.3 " "$TMP/out" || fail "azure conv input mean"
  # BurstGPT: 17 failed rows reported (stdout by stats, stderr by convert), never silent
  "$BIN" trace stats "$S/burstgpt_1_first400rows.csv" --json >"$TMP/out" 2>"$TMP/err" || fail "stats burstgpt"
  grep -q '"requests": 383,' "$TMP/out" && grep -q '"failed": 17,' "$TMP/out" \
    && grep -q '"failed_lines": \[22, 40,' "$TMP/out" || fail "burstgpt json: $(cat "$TMP/out")"
  "$BIN" trace convert "$S/burstgpt_1_first400rows.csv" -o "$TMP/b.csv" 2>"$TMP/err" || fail "convert burstgpt"
  grep -q "17 failed requests .* left out .*lines 22,40," "$TMP/err" || fail "convert burstgpt: $(cat "$TMP/err")"
  [ "$(wc -l <"$TMP/b.csv")" = 384 ] || fail "burstgpt convert: want 383 rows"
  "$BIN" trace convert "$S/burstgpt_1_first400rows.csv" --keep-failed -o "$TMP/b400.csv" 2>/dev/null
  [ "$(wc -l <"$TMP/b400.csv")" = 401 ] || fail "burstgpt --keep-failed: want 400 rows"
  # Mooncake -> canonical keeps prefix groups; converting again is byte-identical
  "$BIN" trace convert "$S/mooncake_fast25_conversation_first30min.jsonl" -o "$TMP/m.csv" 2>/dev/null || fail "convert mooncake"
  head -1 "$TMP/m.csv" | grep -q "^arrival_s,input_tokens,output_tokens,prefix_id,prefix_tokens$" || fail "mooncake header"
  "$BIN" trace convert "$TMP/m.csv" -o "$TMP/m2.csv" 2>/dev/null && cmp -s "$TMP/m.csv" "$TMP/m2.csv" || fail "mooncake round trip"
  # Azure conv 2x faster: span 1799.9 s -> 899.95 s
  "$BIN" trace scale "$S/azure_llm_2023_conv_first30min.csv" --speedup 2 -o "$TMP/s.csv" 2>/dev/null || fail "scale azure"
  "$BIN" trace stats "$TMP/s.csv" --json | grep -Eq '"span_s": 899\.9[45]' || fail "scaled span"
  # ShareGPT lengths drive the generator: means within 2% of 248.2 / 324.9
  "$BIN" trace gen poisson --rate 10 --number 100000 --lengths-from "$S/sharegpt_v3_first_turn_lengths_resampled.csv" \
    -o "$TMP/sg.csv" 2>/dev/null || fail "gen --lengths-from sharegpt"
  "$BIN" trace stats "$TMP/sg.csv" --json | awk -F'[:,]' '/"input_tokens"/ { i = $3 } /"output_tokens"/ { o = $3 }
    END { exit !(i > 248.2 * 0.98 && i < 248.2 * 1.02 && o > 324.9 * 0.98 && o < 324.9 * 1.02) }' \
    || fail "sharegpt-driven means off"
  expect 2 "lengths-from cannot be combined" -- "$BIN" trace gen random --lengths-from "$S/sharegpt_v3_first_turn_lengths_resampled.csv" --max-tokens 5
else
  echo "note: $S missing; real-trace checks skipped" >&2
fi

cli_done
