#!/usr/bin/env python3
"""The decisions the GPU suite's check stage runs for: each opt-in route beside the default, case by case.

    python3 bench/route_decisions.py CHECK_DIR [--out decisions.md]

CHECK_DIR is the check/ folder of a `native-build/run-gpu-suite.sh check` run. Each variant there is a JMH run
of its own (check/<variant>/jmh.json; where a time limit cut the run, its results are read back from
check/<variant>.log as bench/jmh_log.py does). For each decision this prints a markdown table: a row per case,
the median (µs) of every variant, and the fastest variant with the first variant's time over its time (the first
variant is the default route, or for the small-T decision the SGEMMs).
A variant that did not run shows "-". Standard library only.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jmh_log  # noqa: E402  (beside this file)

# (title, the property or constant it sets, variants with the default first, the parameters that name a case)
DECISIONS = [
    ("TLoRA forward + backward at R = 1: the cores' gradients", "spectralpeft.tlora.cuda.gradient",
     ["tlora-gram", "tlora-kronecker"], ["d", "tokens"]),
    ("FouRA at T = 4096: the split of the thin products and the products into y and ∂x",
     "spectralpeft.foura.splitK, spectralpeft.foura.expand",
     ["split1-gemm", "split1-kernel", "split8-gemm", "split8-kernel"], ["transform", "tokens"]),
    ("FouRA's forward at small T: the one-launch kernel against the SGEMMs", "ForwardRoute.SMALL_DEFAULT_WORK",
     ["gemm", "small"], ["transform", "tokens"]),
    ("FourierFT's fused kernels: FFT passes of two or three radix-2 stages", "spectralpeft.fourierft.fftPass",
     ["fft-radix4", "fft-radix8"], ["d", "tokens"]),
]


def load_variant(check_dir, variant):
    """The variant's JMH results: its jmh.json, else the Result blocks of its log, else none."""
    path = os.path.join(check_dir, variant, "jmh.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    log = os.path.join(check_dir, variant + ".log")
    if os.path.exists(log):
        with open(log, encoding="utf-8", errors="replace") as f:
            return jmh_log.results_from_log(f.read().splitlines(), source=log)
    return []


def median_us(entry):
    """The entry's median in µs (sampling mode's p50, else its score)."""
    metric = entry["primaryMetric"]
    value = metric.get("scorePercentiles", {}).get("50.0", metric["score"])
    unit = metric["scoreUnit"].split("/")[0]
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}.get(unit)
    if scale is None:
        raise ValueError("unknown JMH unit " + metric["scoreUnit"])
    return value * scale


def case_of(entry, keys):
    """A case's name: the benchmark's method, then the parameters that distinguish the cases."""
    method = entry["benchmark"].rsplit(".", 1)[-1]
    params = entry.get("params", {})
    return (method,) + tuple(f"{k}={params[k]}" for k in keys if k in params)


def table(check_dir, title, setting, variants, keys):
    results = {v: {case_of(e, keys): median_us(e) for e in load_variant(check_dir, v)} for v in variants}
    cases = sorted({c for r in results.values() for c in r})
    lines = [f"### {title} ({setting})", "",
             "| case | " + " | ".join(variants) + " | fastest | first / fastest |",
             "|---|" + "---:|" * len(variants) + "---|---:|"]
    for case in cases:
        times = [results[v].get(case) for v in variants]
        cells = ["-" if t is None else f"{t:.1f}" for t in times]
        known = [(t, v) for t, v in zip(times, variants) if t is not None]
        fastest = min(known)[1] if known else "-"
        ratio = "-"
        if known and times[0] is not None:
            ratio = f"{times[0] / min(known)[0]:.2f}"
        lines.append(f"| {' '.join(case)} | " + " | ".join(cells) + f" | {fastest} | {ratio} |")
    if not cases:
        lines.append("| (no results) |" + " |" * (len(variants) + 2))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check_dir")
    parser.add_argument("--out", help="also write the tables here (refuses to overwrite)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.check_dir):
        parser.error(f"{args.check_dir} is not a folder")
    text = "\n".join(table(args.check_dir, *d) for d in DECISIONS)
    if args.out:
        if os.path.exists(args.out):
            parser.error(f"{args.out} exists; not overwriting it")
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
