#!/usr/bin/env python3
"""sass.py: read Hopper SASS and Nsight Compute stall samples without device time.

  scripts/sass.py fetch
      Debian 12's non-free cuobjdump (nvidia-cuda-toolkit 11.8) into .deps-sass (git-ignored).
      This machine has CUDA 13's nvcc and ptxas but no disassembler.
  scripts/sass.py dump SRC.cu [--fn SUBSTR] [--from I] [--to I] [--grep RE] [-- NVCC_ARGS...]
      Compiles SRC.cu for sm_90a (nvcc -cubin, -O3, the repository's include paths). CUDA 11.8's
      cuobjdump refuses CUDA 13's ELF header, so the header is rewritten to the CUDA 11 layout
      first (OS ABI 51, ABI version 7, e_flags 0x5a055a: sm_90, 64-bit, unified texture mode;
      the code itself is unchanged). Then disassembles and decodes as `decode` does.
  scripts/sass.py decode SASS[.gz] [--fn SUBSTR] [--from I] [--to I] [--grep RE]
      Decodes `cuobjdump -sass` text, e.g. from the device. One line an instruction: its index
      (address / 16) and the control fields of its second 64-bit word, then the instruction.
      The fields are: S stall cycles (bits 41-44), the yield bit (45, Y when set), W the
      scoreboard it sets when done (46-48), R the scoreboard that guards its operands being
      read (49-51), M the scoreboards it waits on (52-57, bit i = scoreboard i), and the reuse
      flags (58-61). "-" means none (7). With --fn, only the first function whose name
      contains SUBSTR; --loops adds each backward branch's body size and instruction mix.
  scripts/sass.py stalls SRC.csv[.gz] [--top N] [--range A-B ...]
      Summarises `ncu --import R --page source --csv --print-source sass`:
      - the kernel's samples by stall reason;
      - the N instructions with the most samples (index, share, source, executions, top
        reasons);
      - for each --range of instruction indices, its samples by reason.
  scripts/sass.py pdl SRC.cu|SASS[.gz] [-- NVCC_ARGS...]
      The programmatic-dependent-launch hazard check (kernels/NOTES.md items 27, 28): in every
      function that waits for the previous kernel (ACQBULK, griddepcontrol.wait), the loads
      placed before its first wait, in the listing's order (not the control flow's):
      - coherent global loads (LDG without .CONSTANT): the kernels read the previous kernel's
        output that way (w4_ld_act), so one here is an early activation read -- a hazard;
      - 16-byte ld.global.nc loads that do not skip L1 (LDG .128 .CONSTANT without .NA): the
        kernels' weights skip L1, so these are weights loaded by __ldg (the preload kernel's
        W4P_W_L1 instances) or activations by __ldg, which ptxas may hoist (item 27) -- listed
        for review;
      - cp.async (LDGSTS) and tensor copies (UTMALDG, UBLKCP), which move weights too: counted.
      A .cu file is compiled as `dump` does; anything else is read as `cuobjdump -sass` text.
      Exit 3 if there is a hazard, else 0 (1 and 2 as below).
Errors: one line on stderr naming the file or argument, exit 2 (1 when a tool it runs fails)."""
import csv
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPS = os.path.join(ROOT, ".deps-sass")  # not .deps: that folder travels to the device
CUOBJDUMP = os.environ.get("SASS_CUOBJDUMP", os.path.join(DEPS, "usr", "bin", "cuobjdump"))


class Fail(Exception):
    """A one-line error for the user; .code is the exit status."""

    def __init__(self, msg, code=2):
        super().__init__(msg)
        self.code = code


def open_text(path):
    if not os.path.isfile(path):
        raise Fail(f"sass.py: {path}: no such file")
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path, encoding="utf-8", errors="replace")


def control(hi):
    """The control fields of an instruction's second 64-bit word."""
    return {"stall": (hi >> 41) & 0xF, "yield": (hi >> 45) & 1, "wb": (hi >> 46) & 7, "rb": (hi >> 49) & 7,
            "wait": (hi >> 52) & 0x3F, "reuse": (hi >> 58) & 0xF}


def fmt_control(c):
    sb = lambda v: "-" if v == 7 else str(v)
    return f"S{c['stall']:02d} {'Y' if c['yield'] else '-'} W{sb(c['wb'])} R{sb(c['rb'])} M{c['wait']:06b} u{c['reuse']:x}"


INSN = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s*(.*?)\s*;?\s*/\* (0x[0-9a-f]{16}) \*/\s*$")
HI = re.compile(r"^\s*/\* (0x[0-9a-f]{16}) \*/\s*$")


def parse_functions(text):
    """{name: [(index, text, hi word)]} in the order cuobjdump prints them."""
    funcs, cur, lines = {}, None, text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.search(r"Function : (\S+)", line)
        if m:
            cur = m.group(1)
            funcs[cur] = []
        else:
            m = INSN.match(line)
            if m and cur is not None and i + 1 < len(lines):
                h = HI.match(lines[i + 1])
                if h:
                    funcs[cur].append((int(m.group(1), 16) // 16, m.group(2), int(h.group(1), 16)))
                    i += 1
        i += 1
    return funcs


def opcode(text):
    parts = text.split()
    if parts and parts[0].startswith("@"):
        parts = parts[1:]
    return parts[0].split(".")[0] if parts else ""


def loops(insns):
    """Each backward branch: (target index, branch index, body size, opcode counts)."""
    out = []
    at = {idx: k for k, (idx, _, _) in enumerate(insns)}
    for k, (idx, text, _) in enumerate(insns):
        m = re.search(r"\bBRA (?:`\(\.L_x_\d+\) )?(0x[0-9a-f]+)", text)
        if not m:
            continue
        tgt = int(m.group(1), 16) // 16
        if tgt < idx and tgt in at:
            body = insns[at[tgt]:k + 1]
            mix = {}
            for _, t, _ in body:
                op = opcode(t)
                mix[op] = mix.get(op, 0) + 1
            out.append((tgt, idx, len(body), mix))
    return out


def decode(text, fn=None, lo=None, hi=None, grep=None, show_loops=False, out=sys.stdout):
    funcs = parse_functions(text)
    if not funcs:
        raise Fail("sass.py: no functions found (is this `cuobjdump -sass` output?)")
    names = [n for n in funcs if fn is None or fn in n]
    if not names:
        raise Fail(f"sass.py: no function name contains '{fn}' ({len(funcs)} functions)")
    if fn is not None:
        names = names[:1]
    rx = re.compile(grep) if grep else None
    for name in names:
        print(f"== {name}", file=out)
        for idx, t, h in funcs[name]:
            if (lo is not None and idx < lo) or (hi is not None and idx > hi):
                continue
            if rx and not rx.search(t):
                continue
            print(f"{idx:6d} {fmt_control(control(h))}  {t}", file=out)
        if show_loops:
            for tgt, end, size, mix in loops(funcs[name]):
                top = ", ".join(f"{k} {v}" for k, v in sorted(mix.items(), key=lambda x: (-x[1], x[0]))[:12])
                print(f"loop {tgt}..{end}: {size} instructions ({top})", file=out)


def to_cuda11_elf(data):
    """CUDA 13's cubin header in CUDA 11's layout (sm_90), so that 11.8's cuobjdump reads it."""
    if data[:4] != b"\x7fELF":
        raise Fail("sass.py: nvcc's output is not an ELF cubin")
    b = bytearray(data)
    b[7], b[8] = 51, 7
    struct.pack_into("<I", b, 48, 0x5A055A)
    return bytes(b)


def run_tool(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise Fail(f"sass.py: {cmd[0]}: not found", 1)
    if r.returncode != 0:
        first = (r.stderr.strip().split("\n") or [""])[0]
        raise Fail(f"sass.py: {os.path.basename(cmd[0])} failed ({r.returncode}): {first}", 1)
    return r.stdout


def dump(src, nvcc_args, **kw):
    decode(compile_sass(src, nvcc_args), **kw)


EARLY_LDG = re.compile(r"^LDG\b(?!.*\.CONSTANT)")
EARLY_NC = re.compile(r"^LDG(?=\S*\.128)(?=\S*\.CONSTANT)(?!\S*\.NA)\S*")
EARLY_COPY = re.compile(r"^(LDGSTS|UTMALDG|UBLKCP)\b")


def pdl_check(text, out=sys.stdout):
    """The loads placed before each function's first dependency wait: coherent ones (hazards,
    printed; their count returned), 16-byte .nc ones keeping L1 (printed for review) and copies
    (counted)."""
    waiting, found, review, copies = 0, 0, 0, 0
    funcs = parse_functions(text)
    if not funcs:
        raise Fail("sass.py: no functions found (is this `cuobjdump -sass` output?)")
    for name, insns in funcs.items():
        first = next((i for i, (_, t, _) in enumerate(insns) if opcode(t) == "ACQBULK"), None)
        if first is None:
            continue
        waiting += 1
        for idx, t, _ in insns[:first]:
            body = t.split(None, 1)[1] if t.startswith("@") and " " in t else t
            if EARLY_LDG.match(body):
                print(f"hazard: {name}: {idx:6d}  {t}", file=out)
                found += 1
            elif EARLY_NC.match(body):
                print(f"review: {name}: {idx:6d}  {t}", file=out)
                review += 1
            elif EARLY_COPY.match(body):
                copies += 1
    print(f"{waiting} function(s) with a dependency wait; before it: {found} coherent load(s) (hazards), {review} "
          f"16-byte .nc load(s) keeping L1 (review), {copies} cp.async or tensor copies", file=out)
    return found


def compile_sass(src, nvcc_args):
    """cuobjdump -sass text of SRC.cu compiled for sm_90a."""
    if not os.path.isfile(src):
        raise Fail(f"sass.py: {src}: no such file")
    if not os.access(CUOBJDUMP, os.X_OK):
        raise Fail(f"sass.py: {CUOBJDUMP}: no cuobjdump (run `scripts/sass.py fetch`, or set SASS_CUOBJDUMP)")
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    with tempfile.TemporaryDirectory() as d:
        cubin = os.path.join(d, "k.cubin")
        run_tool([nvcc, "-std=c++17", "-arch=sm_90a", "-O3", "--expt-relaxed-constexpr", "-I" + ROOT,
                  "-I" + os.path.join(ROOT, "kernels"), "-cubin", "-o", cubin] + nvcc_args + [src])
        with open(cubin, "rb") as f:
            data = to_cuda11_elf(f.read())
        with open(cubin, "wb") as f:
            f.write(data)
        return run_tool([CUOBJDUMP, "-sass", cubin])


def fetch():
    os.makedirs(os.path.join(DEPS, "lists", "partial"), exist_ok=True)
    os.makedirs(os.path.join(DEPS, "cache", "archives", "partial"), exist_ok=True)
    src = os.path.join(DEPS, "sources.list")
    with open(src, "w") as f:
        f.write("deb http://deb.debian.org/debian bookworm non-free\n")
    opts = ["-o", f"Dir::Etc::SourceList={src}", "-o", "Dir::Etc::SourceParts=/dev/null", "-o",
            f"Dir::State::Lists={os.path.join(DEPS, 'lists')}", "-o", f"Dir::Cache={os.path.join(DEPS, 'cache')}"]
    run_tool(["apt-get"] + opts + ["update"])
    r = subprocess.run(["apt-get"] + opts + ["download", "nvidia-cuda-toolkit"], cwd=DEPS, capture_output=True, text=True)
    debs = [f for f in os.listdir(DEPS) if f.startswith("nvidia-cuda-toolkit_") and f.endswith(".deb")]
    if not debs:
        raise Fail(f"sass.py: apt-get download nvidia-cuda-toolkit failed: {(r.stderr.strip().split(chr(10)) or [''])[-1]}", 1)
    run_tool(["dpkg", "-x", os.path.join(DEPS, sorted(debs)[-1]), DEPS])
    print(f"cuobjdump: {CUOBJDUMP}")


def stalls(path, top=30, ranges=(), out=sys.stdout):
    with open_text(path) as f:
        rows = list(csv.reader(f))
    hdr_at = next((k for k, r in enumerate(rows[:5]) if "Source" in r and "Address" in r), None)
    if hdr_at is None:
        raise Fail(f"sass.py: {path}: no 'Address' / 'Source' header row (an `ncu --page source --csv` export?)")
    hdr, data = rows[hdr_at], rows[hdr_at + 1:]
    ix = {h: k for k, h in enumerate(hdr)}
    if "Warp Stall Sampling (All Samples)" not in ix:
        raise Fail(f"sass.py: {path}: no 'Warp Stall Sampling (All Samples)' column (profile with --set full)")
    has_ex = "Instructions Executed" in ix  # (absent from a graph workload's page: ncu_profile.sh CHAIN=1)
    reasons = [h for h in hdr if h.startswith("stall_") and "Not Issued" not in h]

    def num(r, col):
        v = r[ix[col]].replace(",", "") if ix[col] < len(r) else ""
        try:
            return int(float(v))
        except ValueError:
            return 0

    def summary(sel):
        tot = sum(num(r, "Warp Stall Sampling (All Samples)") for r in sel)
        by = sorted(((sum(num(r, s) for r in sel), s[6:]) for s in reasons), reverse=True)
        return tot, " ".join(f"{k}:{v}" for v, k in by if v)

    tot, by = summary(data)
    print(f"samples {tot}: {by}", file=out)
    order = sorted(range(len(data)), key=lambda k: -num(data[k], "Warp Stall Sampling (All Samples)"))
    for k in order[:top]:
        r = data[k]
        s = num(r, "Warp Stall Sampling (All Samples)")
        if s == 0:
            break
        why = sorted(((num(r, x), x[6:]) for x in reasons), reverse=True)[:3]
        print(f"{k:6d} {s:6d} {100.0 * s / max(tot, 1):5.1f}%  {r[ix['Source']].strip()[:64]:64s} "
              f"ex={num(r, 'Instructions Executed') if has_ex else '-'} " + " ".join(f"{w}:{v}" for v, w in why if v), file=out)
    for lo, hi in ranges:
        t, b = summary(data[lo:hi + 1])
        print(f"range {lo}-{hi}: samples {t}: {b}", file=out)


def main(argv):
    if len(argv) >= 2 and argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(argv) < 2:
        raise Fail("sass.py: usage: sass.py fetch | dump SRC.cu | decode SASS | stalls CSV | pdl SRC.cu|SASS "
                   "(--help for more)")
    cmd, args = argv[1], argv[2:]
    extra = []
    if "--" in args:
        k = args.index("--")
        args, extra = args[:k], args[k + 1:]
    opts, pos = {}, []
    flags = {"--fn": str, "--from": int, "--to": int, "--grep": str, "--top": int}
    k = 0
    while k < len(args):
        a = args[k]
        if a in flags:
            if k + 1 >= len(args):
                raise Fail(f"sass.py: {a} needs a value")
            try:
                opts[a] = flags[a](args[k + 1])
            except ValueError:
                raise Fail(f"sass.py: {a}: not a number: {args[k + 1]}")
            k += 2
        elif a == "--range":
            if k + 1 >= len(args) or not re.fullmatch(r"\d+-\d+", args[k + 1]):
                raise Fail("sass.py: --range needs A-B (instruction indices)")
            opts.setdefault("--range", []).append(tuple(int(x) for x in args[k + 1].split("-")))
            k += 2
        elif a == "--loops":
            opts[a] = True
            k += 1
        elif a.startswith("-"):
            raise Fail(f"sass.py: unknown flag {a}")
        else:
            pos.append(a)
            k += 1
    kw = {"fn": opts.get("--fn"), "lo": opts.get("--from"), "hi": opts.get("--to"), "grep": opts.get("--grep"),
          "show_loops": opts.get("--loops", False)}
    if cmd == "fetch" and not pos:
        fetch()
    elif cmd == "decode" and len(pos) == 1:
        with open_text(pos[0]) as f:
            decode(f.read(), **kw)
    elif cmd == "dump" and len(pos) == 1:
        dump(pos[0], extra, **kw)
    elif cmd == "stalls" and len(pos) == 1:
        stalls(pos[0], opts.get("--top", 30), opts.get("--range", []))
    elif cmd == "pdl" and len(pos) == 1:
        if pos[0].endswith(".cu"):
            text = compile_sass(pos[0], extra)
        else:
            with open_text(pos[0]) as f:
                text = f.read()
        return 3 if pdl_check(text) else 0
    else:
        raise Fail(f"sass.py: usage: sass.py fetch | dump SRC.cu | decode SASS | stalls CSV | pdl SRC.cu|SASS "
                   f"(got '{cmd}' with {len(pos)} file(s))")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Fail as e:
        print(str(e), file=sys.stderr)
        sys.exit(e.code)
    except BrokenPipeError:
        sys.exit(0)
