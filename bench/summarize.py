#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns parse_bench's JSON output (--benchmark_out=FILE --benchmark_out_format=json) into the
Markdown tables of bench/README.md: per-benchmark medians, then the ratios the targets are set on.

Usage: bench/summarize.py results.json
"""
import json
import statistics
import sys
from collections import defaultdict

PARSE_IMPLS = ["redring", "redring_needed", "redring_copy", "hiredis", "hiredis_noalloc"]
REDRING_IMPLS = ["redring", "redring_needed", "redring_copy"]


def medians(path):
    """run_name -> {"items": replies or commands per second, "bytes": bytes per second} (medians)."""
    with open(path) as f:
        data = json.load(f)
    runs = defaultdict(lambda: {"items": [], "bytes": []})
    aggregated = {}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            sys.exit(f"{b['name']}: {b.get('error_message')}")
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                aggregated[name] = {"items": b["items_per_second"], "bytes": b["bytes_per_second"]}
        else:
            runs[name]["items"].append(b["items_per_second"])
            runs[name]["bytes"].append(b["bytes_per_second"])
    out = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in runs.items()}
    out.update(aggregated)  # prefer the library's own medians when present
    return out, data.get("context", {})


def fmt_ratio(x, target):
    mark = "ok" if x >= target else "MISS"
    return f"{x:.3f}× ({mark})" if x < 1 else f"{x:.2f}× ({mark})"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    m, ctx = medians(sys.argv[1])
    corpora = sorted({n.split("/")[1] for n in m if n.startswith("parse/")})
    cmds = sorted({n.split("/")[1] for n in m if n.startswith("encode/")})

    print(f"Host: {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs at "
          f"{ctx.get('mhz_per_cpu', '?')} MHz, {ctx.get('date', '')}\n")
    print("Parse medians: ns/reply, M replies/s, GB/s (10^9 bytes/s).\n")
    print("| corpus | " + " | ".join(i for i in PARSE_IMPLS if f"parse/{corpora[0]}/{i}" in m) + " |")
    print("|---|" + "---|" * sum(f"parse/{corpora[0]}/{i}" in m for i in PARSE_IMPLS))
    for c in corpora:
        cells = []
        for i in PARSE_IMPLS:
            r = m.get(f"parse/{c}/{i}")
            if r is None:
                continue
            cells.append(f"{1e9 / r['items']:.1f} ns · {r['items'] / 1e6:.2f} M/s · {r['bytes'] / 1e9:.2f} GB/s")
        print(f"| {c} | " + " | ".join(cells) + " |")

    print("\nEncode medians: ns/command, M commands/s.\n")
    print("| command | redring | hiredis | redring / hiredis (target ≥ 3×) |")
    print("|---|---|---|---|")
    for c in cmds:
        rr, hi = m.get(f"encode/{c}/redring"), m.get(f"encode/{c}/hiredis")
        if rr and hi:
            print(f"| {c} | {1e9 / rr['items']:.1f} ns · {rr['items'] / 1e6:.1f} M/s | "
                  f"{1e9 / hi['items']:.1f} ns · {hi['items'] / 1e6:.1f} M/s | "
                  f"{fmt_ratio(rr['items'] / hi['items'], 3)} |")

    impls = [i for i in REDRING_IMPLS if f"parse/{corpora[0]}/{i}" in m]
    print("\nParse ratios of median replies/s; targets: impl / hiredis_noalloc ≥ 2×, C6 / C3 ≥ 0.7×, "
          "C7 / C3 ≥ 0.95×.\n")
    print("| ratio | " + " | ".join(impls) + " |")
    print("|---|" + "---|" * len(impls))
    for c in corpora:
        hn = m.get(f"parse/{c}/hiredis_noalloc")
        if hn:
            print(f"| {c}: impl / hiredis_noalloc | " +
                  " | ".join(fmt_ratio(m[f"parse/{c}/{i}"]["items"] / hn["items"], 2) for i in impls) + " |")
    for c, target in (("C6", 0.7), ("C7", 0.95)):
        if f"parse/{c}/redring" in m and "parse/C3/redring" in m:
            print(f"| {c} / C3 (same impl) | " +
                  " | ".join(fmt_ratio(m[f"parse/{c}/{i}"]["items"] / m[f"parse/C3/{i}"]["items"], target)
                             for i in impls) + " |")


if __name__ == "__main__":
    main()
