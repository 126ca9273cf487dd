#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Instructions per command, in user space, of client_bench rows run under callgrind: a deterministic
complement to the timings, which are noisy on a shared machine. client_bench starts and stops the
instrumentation at its measurement window, so set-up and warm-up are not counted; the kernel's share
(system calls) is not either: see the turns/op column of client_bench for that.

Usage: bench/callgrind_client.py [--bin build/bench-dev/bench/client_bench] [--top 8] [ROW_FILTER ...]
A ROW_FILTER must select one row (see client_bench --filter; end it with '$' to match a name's end).
Default rows: GET d=3 through redring (explicit, auto, one at a time) and hiredis.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

DEFAULT_ROWS = [
    "GET d=3 redring explicit 1024",
    "GET d=3 redring auto 1k$",
    "GET d=3 redring auto 1k ignore",
    "GET d=3 redring auto 100k$",
    "GET d=100 redring auto 1k$",
    "GET d=3 redring 1 ignore",
    "GET d=3 hiredis 1024",
    "GET d=3 hiredis 1$",
]


def short(fn):
    """A readable function name: no argument lists, template arguments or namespaces."""
    fn = fn.split(" [", 1)[0]
    if fn.startswith("???:"):
        fn = fn[4:]
    elif ":" in fn and "/" in fn.split(":", 1)[0]:
        fn = fn.split(":", 1)[1]  # file:function
    out, depth = [], 0
    for ch in fn:  # drop everything inside <...> and (...)
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    name = "".join(out).replace("[clone .actor]", "(coroutine)").replace("[clone .part.0]", "")
    name = re.sub(r"\s+", " ", name).strip()
    parts = [p for p in name.split("::") if p]
    return "::".join(parts[-2:]) if len(parts) > 1 else name


def run(binary, row, outdir, top, extra=()):
    tag = re.sub(r"[^A-Za-z0-9]+", "_", row).strip("_")
    out = os.path.join(outdir, tag + ".callgrind")
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
           binary, "--filter", row, "--reps", "1", "--seconds", "1", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    rows = re.findall(r"rep 1/1 +(.+?) {2,}.* ops (\d+)$", p.stderr, re.M)
    if len(rows) != 1:
        sys.exit(f"filter {row!r} must select exactly one row, got {[r[0] for r in rows]}")
    name, ops = rows[0][0], int(rows[0][1])
    total = int(re.search(r"Collected : (\d+)", p.stderr).group(1))
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", out], capture_output=True, text=True).stdout
    funcs = []
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+) \([\d. %]+\)\s+(.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            funcs.append((int(m.group(1).replace(",", "")), short(m.group(2))))
    funcs.sort(reverse=True)
    return name, ops, total, funcs[:top]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--bin", default=os.path.join(here, "..", "build", "bench-dev", "bench", "client_bench"))
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--cluster", action="store_true", help="client_bench --cluster (for the 'redring cluster' rows)")
    ap.add_argument("rows", nargs="*", default=DEFAULT_ROWS)
    a = ap.parse_args()
    outdir = tempfile.mkdtemp(prefix="redring-callgrind-")
    print("| row | instructions/command | top functions (instructions/command) |")
    print("|---|---|---|")
    for row in a.rows:
        name, ops, total, funcs = run(a.bin, row, outdir, a.top, ["--cluster"] if a.cluster else [])
        tops = ", ".join(f"{f} {ir / ops:.0f}" for ir, f in funcs)
        print(f"| {name} | {total / ops:.0f} | {tops} |", flush=True)
    print(f"\ncallgrind outputs: {outdir} (callgrind_annotate FILE)")


if __name__ == "__main__":
    main()
