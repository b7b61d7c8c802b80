#!/usr/bin/env bash
# cli_sass: scripts/sass.py, the SASS and ncu stall-sample reader (kernels/NOTES.md item 23).
# - decode: control fields this test encodes itself (every field at an odd value, read back),
#   and two instructions of the wgmma kernel's SASS as cuobjdump printed them on the H200. There
#   every weight LDG set scoreboard 5, and the step's first dequantisation waited on it.
# - --loops: a backward branch's body size and instruction mix.
# - stalls: totals by reason, the top instruction and a range, on a CSV in ncu's layout.
# - pdl: loads placed before a function's first dependency wait, on a listing this test writes.
# - Bad input: one stderr line and exit 2.
# - dump: compiles a kernel for sm_90a and reads it back, where nvcc and the fetched cuobjdump
#   exist; CI has neither, so that part is skipped there.
source "$(dirname "$0")/cli_lib.sh"
command -v python3 >/dev/null || { echo "cli_sass: no python3" >&2; exit 77; }
SASS="$(dirname "$0")/../scripts/sass.py"
RUN_BIN=python3

# An instruction word of chosen fields: stall 11, yield 1, sets 3, read-guard 6, waits on
# scoreboards 0 and 5, reuse 0xa.
hi=$(( (11 << 41) | (1 << 45) | (3 << 46) | (6 << 49) | (0x21 << 52) | (0xa << 58) ))
{
  echo "	code for sm_90a"
  echo "		Function : _Z4testPi"
  printf '        /*0000*/                   IMAD.MOV.U32 R1, RZ, RZ, c[0x0][0x28] ;   /* 0x00000a00ff017624 */\n'
  printf '                                                                 /* 0x%016x */\n' "$hi"
  # a loop: 0x0010 .. 0x0030 branches back to 0x0010
  printf '        /*0010*/                   IADD3 R2, R2, 0x1, RZ ;   /* 0x0000000102027810 */\n'
  printf '                                                                 /* 0x000fca0007ffe0ff */\n'
  printf '        /*0020*/                   ISETP.GE.AND P0, PT, R2, 0x10, PT ;   /* 0x000000100200780c */\n'
  printf '                                                                 /* 0x000fda0003f06270 */\n'
  printf '        /*0030*/               @!P0 BRA 0x10 ;   /* 0xfffffffc00008947 */\n'
  printf '                                                                 /* 0x000fea000383ffff */\n'
  echo "		Function : _Z15w4ws_from_h200v"
  printf '        /*07e0*/               @P0 LDG.E.CONSTANT R125, desc[UR14][R6.64] ;                      /* 0x0000000e067d0981 */\n'
  printf '                                                                                                 /* 0x000f62000c1e9900 */\n'
  printf '        /*0d40*/                   SHF.R.U32.HI R91, RZ, 0x8, R125 ;                             /* 0x00000008ff5b7819 */\n'
  printf '                                                                                                 /* 0x020fe2000001167d */\n'
} >"$TMP/k.sass"

run 0 "$SASS" decode "$TMP/k.sass" --fn _Z4testPi --from 0 --to 0
has "     0 S11 Y W3 R6 M100001 ua  IMAD.MOV.U32 R1, RZ, RZ, c[0x0][0x28]" out
[ "$(grep -c '^ ' "$TMP/out")" -eq 1 ] && ok || fail "--from 0 --to 0 printed more than one instruction: $(cat "$TMP/out")"
run 0 "$SASS" decode "$TMP/k.sass" --fn w4ws_from_h200
has "   126 S01 Y W5 R- M000000 u0  @P0 LDG.E.CONSTANT R125" out
has "   212 S01 Y W- R- M100000 u0  SHF.R.U32.HI R91, RZ, 0x8, R125" out
run 0 "$SASS" decode "$TMP/k.sass" --fn _Z4testPi --loops
has "loop 1..3: 3 instructions (BRA 1, IADD3 1, ISETP 1)" out
run 0 "$SASS" decode "$TMP/k.sass" --grep "LDG"
has "@P0 LDG.E.CONSTANT" out
[ "$(grep -c '^ ' "$TMP/out")" -eq 1 ] && ok || fail "--grep LDG matched more than the LDG: $(cat "$TMP/out")"
gzip -c "$TMP/k.sass" >"$TMP/k.sass.gz"
run 0 "$SASS" decode "$TMP/k.sass.gz" --fn w4ws_from_h200 --from 200
has "   212 S01" out

# ncu's source page: a kernel-name row, the header, one row an instruction
{
  echo '"Kernel Name","k"'
  echo '"Address","Source","Warp Stall Sampling (All Samples)","Instructions Executed","stall_long_sb","stall_wait","stall_long_sb (Not Issued)"'
  echo '"0x0","  LDG.E R1, [R2.64]","2","100","0","2","0"'
  echo '"0x10","  SHF.R.U32.HI R3, RZ, 0x8, R1","30","100","27","3","27"'
  echo '"0x20","  HGMMA.64x128x16.F32.BF16 R24, R88, gdesc[UR8], R24","8","400","0","8","0"'
} >"$TMP/src.csv"
run 0 "$SASS" stalls "$TMP/src.csv" --top 1 --range 1-2
has "samples 40: long_sb:27 wait:13" out
has "     1     30  75.0%  SHF.R.U32.HI R3, RZ, 0x8, R1" out
has "ex=100 long_sb:27 wait:3" out
has "range 1-2: samples 38: long_sb:27 wait:11" out
[ "$(grep -c 'LDG' "$TMP/out")" -eq 0 ] && ok || fail "--top 1 printed more than one instruction"
# a graph workload's page (ncu_profile.sh CHAIN=1) has no executions column: ex=-
{
  echo '"Kernel Name","k"'
  echo '"Address","Source","Warp Stall Sampling (All Samples)","stall_long_sb","stall_wait","stall_long_sb (Not Issued)"'
  echo '"0x0","  LDG.E R1, [R2.64]","2","0","2","0"'
  echo '"0x10","  SHF.R.U32.HI R3, RZ, 0x8, R1","30","27","3","27"'
  echo '"0x20","  HGMMA.64x128x16.F32.BF16 R24, R88, gdesc[UR8], R24","8","0","8","0"'
} >"$TMP/src-graph.csv"
run 0 "$SASS" stalls "$TMP/src-graph.csv" --top 1
has "samples 40: long_sb:27 wait:13" out
has "ex=- long_sb:27 wait:3" out

# pdl: loads before a function's first dependency wait (ACQBULK), in listing order
ins() { # index TEXT: one instruction as cuobjdump prints it (any words)
  printf '        /*%04x*/                   %s ;   /* 0x0000000000000000 */\n' $(($1 * 16)) "$2"
  printf '                                                                 /* 0x000fe20000000000 */\n'
}
{
  echo "	code for sm_90a"
  echo "		Function : _Z5earlyv"                   # an activation read before the wait: a hazard
  ins 0 "LDG.E.NA.128.CONSTANT R4, desc[UR4][R2.64]"   # weights skipping L1: fine
  ins 1 "@P0 LDG.E.128.STRONG.GPU R8, desc[UR4][R6.64]"
  ins 2 "LDGSTS.E.BYPASS.128 [R3], desc[UR4][R2.64]"
  ins 3 "ACQBULK"
  ins 4 "LDG.E.128 R12, desc[UR4][R6.64]"                # after the wait: fine
  echo "		Function : _Z4nc16v"                    # 16-byte .nc keeping L1: for review
  ins 0 "LDG.E.128.CONSTANT R4, desc[UR4][R2.64]"
  ins 1 "LDG.E.CONSTANT R5, desc[UR4][R2.64]"          # a scale (4 bytes): fine
  ins 2 "ACQBULK"
  echo "		Function : _Z6nowaitv"                  # no dependency wait: not checked
  ins 0 "LDG.E.128 R4, desc[UR4][R2.64]"
  echo "		Function : _Z5twicev"                   # only the first wait counts; copies counted
  ins 0 "UTMALDG.2D [UR8], [UR12]"
  ins 1 "@!P1 UBLKCP.S.G [UR8], [UR10], UR4"
  ins 2 "LDG.E R6, desc[UR4][R2.64]"                   # 4 bytes, coherent: a hazard too
  ins 3 "ACQBULK"
  ins 4 "LDG.E.64 R8, desc[UR4][R2.64]"                # between the two waits: fine
  ins 5 "ACQBULK"
} >"$TMP/pdl.sass"
run 3 "$SASS" pdl "$TMP/pdl.sass"
has "hazard: _Z5earlyv:      1  @P0 LDG.E.128.STRONG.GPU R8" out
has "hazard: _Z5twicev:      2  LDG.E R6" out
has "review: _Z4nc16v:      0  LDG.E.128.CONSTANT R4" out
has "3 function(s) with a dependency wait; before it: 2 coherent load(s) (hazards), 1 16-byte .nc load(s) keeping L1 (review), 3 cp.async or tensor copies" out
[ "$(grep -c '^hazard\|^review' "$TMP/out")" -eq 3 ] && ok || fail "pdl listed other loads: $(cat "$TMP/out")"
grep -v "_Z5earlyv\|LDG.E.128.STRONG\|LDG.E R6" "$TMP/pdl.sass" >"$TMP/pdl-ok.sass"
run 0 "$SASS" pdl "$TMP/pdl-ok.sass"
has "0 coherent load(s) (hazards)" out

# bad input: one line, exit 2
expect_err 2 "no such file" python3 "$SASS" decode "$TMP/none.sass"
expect_err 2 "no function name contains 'nosuch'" python3 "$SASS" decode "$TMP/k.sass" --fn nosuch
expect_err 2 "unknown flag --bogus" python3 "$SASS" decode "$TMP/k.sass" --bogus
expect_err 2 "--from: not a number" python3 "$SASS" decode "$TMP/k.sass" --from x
expect_err 2 "--range needs A-B" python3 "$SASS" stalls "$TMP/src.csv" --range 5
expect_err 2 "no functions found" python3 "$SASS" decode "$TMP/src.csv"
expect_err 2 "no 'Address' / 'Source' header" python3 "$SASS" stalls "$TMP/k.sass"
expect_err 2 "no such file" python3 "$SASS" pdl "$TMP/none.sass"
expect_err 2 "no functions found" python3 "$SASS" pdl "$TMP/src.csv"
expect_err 2 "usage" python3 "$SASS" frobnicate
expect_err 2 "usage" python3 "$SASS"

# dump: only where nvcc and the fetched (or given) cuobjdump exist
CUOBJ=${SASS_CUOBJDUMP:-$(dirname "$0")/../.deps-sass/usr/bin/cuobjdump}
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
if [ -x "$CUOBJ" ] && [ -x "$NVCC" ]; then
  cat >"$TMP/t.cu" <<'EOF'
__global__ void sum_rows(const unsigned *p, unsigned *o, int n) {
  unsigned s = 0;
  for (int i = 0; i < n; i++) s += __ldg(p + i * 32 + threadIdx.x);
  o[threadIdx.x] = s;
}
EOF
  PATH=$(dirname "$NVCC"):$PATH SASS_CUOBJDUMP=$CUOBJ run 0 "$SASS" dump "$TMP/t.cu" --fn sum_rows --grep "LDG|EXIT"
  has "LDG.E.CONSTANT" out
  has "EXIT" out
  # every LDG sets a scoreboard (W0..W5), none is "-"
  grep "LDG" "$TMP/out" | grep -qv " W[0-5] " && fail "an LDG without a scoreboard: $(grep LDG "$TMP/out")" || ok
else
  echo "cli_sass: dump not checked (no nvcc or no cuobjdump at $CUOBJ: scripts/sass.py fetch)"
fi
cli_done
