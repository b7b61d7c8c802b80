#!/usr/bin/env python3
"""acceptance.py: issue 5's acceptance lines, read from one bench_kernels run.

  bench/acceptance.py BENCH_TXT [TESTS_TXT]

BENCH_TXT is bench_kernels' output (bench/bench_kernels.sh keeps it as $OUT/bench.txt); TESTS_TXT,
optional, is that script's $OUT/tests.txt (one "PASS name" or "FAIL name" line a test run). One
line a criterion, its figures and "met" or "not met":
  - kernel tests: every run in TESTS_TXT passed -- bench_kernels.sh's list, the GPU tests and the
    kernels' CPU reference tests (left out without TESTS_TXT);
  - the W4A16 GEMM at M <= 16 within 1.5x of the weight-read floor, for the four Qwen3-235B
    shapes at TP=1 (the table's "ratio to floor": int4 and scale bytes over the measured copy
    bandwidth), every M of 1..16 the table has;
  - no slower than cuBLAS bf16 at any M <= 256, every shape and TP slice in the table (a time
    equal to cuBLAS's, at the table's 0.1 us, counts as not slower);
  - the fused MoE at 8 tokens within 2x of reading the hit experts' weights (its "ratio to
    floor");
  - validation: bench_kernels checks every configuration before timing it (a failing row prints
    FAIL and no time; the run ends with "validation: all configurations passed").
A criterion whose points the table lacks (a partial run, e.g. --mid) is "not in the table". The
verdicts name the card from the table's "device:" line: the issue asks for an H100.

Exit 0 when every criterion is met, 1 when one is not met or not in the table, 2 on bad input
(an unreadable file, no GEMM table, or a table row that does not parse): one line on stderr
naming the file and line."""
import sys

TP1_SHAPES = ("qkv", "o_proj", "gate_up", "down")
FLOOR_RATIO_MAX = 1.5  # issue 5: within 1.5x of the weight-read floor at M <= 16
MOE_RATIO_MAX = 2.0  # issue 5: the fused MoE at 8 tokens within 2x of the hit experts' read
MOE_TOKENS = 8


class Fail(Exception):
    """A one-line error for the user; exit status 2."""


def read_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError as e:
        raise Fail(f"acceptance: {path}: {e.strerror}")


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_bench(path):
    """The device line, the GEMM rows (shape, tp, m, us, ratio, cublas), the MoE rows (tokens ->
    ratio), the rows that failed validation and the run's validation line."""
    device, gemm, moe, table, failed, valid = "", [], {}, None, [], None
    for no, line in enumerate(read_lines(path), 1):
        if line.startswith("device:"):
            device = line[len("device:"):].split(",")[0].strip()
            continue
        if line.startswith("validation:"):
            valid = line[len("validation:"):].strip()
            continue
        if not line.startswith("|"):
            if not line.strip():
                table = None  # (a blank line ends a table)
            continue
        c = cells(line)
        if c[0] == "shape":
            table = "gemm"
            continue
        if c[0] == "tokens":
            table = "moe"
            continue
        if set(line.replace("|", "").strip()) <= set("-: ") or table is None:
            continue
        if any(x.startswith("FAIL") for x in c):
            if table == "moe":
                failed.append(f"MoE at {c[0]} tokens")
            else:
                failed.append(f"{c[0]} TP={c[1]} M={c[4]}" if len(c) > 4 else f"line {no}")
            continue
        try:
            if table == "gemm":
                if len(c) < 11:
                    raise ValueError("too few columns")
                # | shape | TP | K | N | M | w4a16 us | GB/s | ratio to floor | floor us | cuBLAS bf16 us | ...
                gemm.append((c[0], int(c[1]), int(c[4]), float(c[5]), float(c[7]), float(c[9])))
            else:
                # | tokens | experts hit | us | GB/s | ratio to floor | floor us | check |
                if len(c) < 5:
                    raise ValueError("too few columns")
                moe[int(c[0])] = float(c[4])
        except ValueError as e:
            raise Fail(f"acceptance: {path}:{no}: a {table} table row that does not parse ({e})")
    if not gemm:
        raise Fail(f"acceptance: {path}: no W4A16 GEMM table (bench_kernels' '| shape | TP | ...' rows)")
    return device, gemm, moe, failed, valid


def parse_tests(path):
    passed, failed = 0, []
    for line in read_lines(path):
        if line.startswith("PASS "):
            passed += 1
        elif line.startswith("FAIL "):
            failed.append(line[5:].strip())
    return passed, failed


def verdict(ok):
    return "met" if ok else "not met"


def report(bench_path, tests_path=None, out=sys.stdout):
    device, gemm, moe, failed_rows, valid = parse_bench(bench_path)
    lines, all_met = [], True
    if tests_path is not None:
        passed, failed = parse_tests(tests_path)
        ok = passed > 0 and not failed
        all_met &= ok
        extra = f"; failed: {', '.join(failed)}" if failed else ("" if passed else "; no test ran")
        lines.append(f"kernel tests: {passed} passed, {len(failed)} failed{extra} -- {verdict(ok)}")

    # M <= 16 within 1.5x of the floor, the four TP=1 shapes
    small = [r for r in gemm if r[1] == 1 and r[0] in TP1_SHAPES and r[2] <= 16]
    have = {r[0] for r in small}
    if have != set(TP1_SHAPES):
        missing = ", ".join(s for s in TP1_SHAPES if s not in have)
        lines.append(f"W4A16 at M <= 16 within {FLOOR_RATIO_MAX}x of the floor: not in the table ({missing} at TP=1)")
        all_met = False
    else:
        worst = max(small, key=lambda r: r[4])
        ok = worst[4] <= FLOOR_RATIO_MAX
        all_met &= ok
        m1 = ", ".join(f"{s} {r[4]:.2f}x" for s in TP1_SHAPES for r in small if r[0] == s and r[2] == 1)
        lines.append(f"W4A16 at M <= 16 within {FLOOR_RATIO_MAX}x of the floor: worst {worst[4]:.2f}x ({worst[0]} M={worst[2]})"
                     + (f"; M=1: {m1}" if m1 else "") + f" -- {verdict(ok)}")

    # no slower than cuBLAS bf16 at M <= 256
    upto = [r for r in gemm if r[2] <= 256]
    over = [r for r in upto if r[3] > r[5]]
    ok = not over
    all_met &= ok
    listed = "; ".join(f"{r[0]} TP={r[1]} M={r[2]} {r[3]:.1f} against {r[5]:.1f} us" for r in over[:12])
    more = f" and {len(over) - 12} more" if len(over) > 12 else ""
    lines.append(f"W4A16 no slower than cuBLAS bf16 at M <= 256: {len(upto) - len(over)} of {len(upto)} points"
                 + (f"; over: {listed}{more}" if over else "") + f" -- {verdict(ok)}")

    # the fused MoE at 8 tokens
    if MOE_TOKENS not in moe:
        lines.append(f"fused MoE at {MOE_TOKENS} tokens within {MOE_RATIO_MAX}x of the hit experts' weights: not in the table")
        all_met = False
    else:
        ok = moe[MOE_TOKENS] <= MOE_RATIO_MAX
        all_met &= ok
        lines.append(f"fused MoE at {MOE_TOKENS} tokens within {MOE_RATIO_MAX}x of the hit experts' weights: "
                     f"{moe[MOE_TOKENS]:.2f}x -- {verdict(ok)}")

    # every configuration validated
    ok = not failed_rows and valid is not None and "all configurations passed" in valid
    all_met &= ok
    what = f"failed rows: {len(failed_rows)} ({'; '.join(failed_rows[:6])})" if failed_rows else \
        (f"'{valid}'" if valid is not None else "no validation line (a run cut short?)")
    lines.append(f"validation of every timed configuration: {what} -- {verdict(ok)}")

    print(f"issue 5 acceptance, {device or 'card not named in the table'} (the issue asks for an H100):", file=out)
    for line in lines:
        print(f"- {line}", file=out)
    return 0 if all_met else 1


def main(argv):
    if len(argv) not in (2, 3) or argv[1].startswith("-"):
        raise Fail("usage: bench/acceptance.py BENCH_TXT [TESTS_TXT]")
    return report(argv[1], argv[2] if len(argv) == 3 else None)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Fail as e:
        print(e, file=sys.stderr)
        sys.exit(2)
