#!/usr/bin/env python3
"""Results of a JMH run that was cut short, rebuilt from its text log.

JMH writes its `-rf json` file only when the whole run ends, so a run stopped by a time limit loses
every result, although the log already printed each finished benchmark's "Result" block. This reads
those blocks back into the same JSON shape (benchmark, params, mode, primaryMetric with score,
scoreUnit and, in sampling mode, scorePercentiles), so `side_by_side.py table` and the other readers
take them as they are. The log prints three decimals in the run's unit, so recovered figures are that
precise and no more; each entry says it was recovered ("recoveredFrom": the log's path).

    python3 bench/jmh_log.py run.log --out jmh.json     (refuses to overwrite an existing --out)
"""

import argparse
import json
import os
import re
import sys

_BENCHMARK = re.compile(r"^# Benchmark: (\S+)\s*$")
_PARAMETERS = re.compile(r"^# Parameters: \((.*)\)\s*$")
_MODE = re.compile(r"^# Benchmark mode: (.+?)\s*$")
_RESULT = re.compile(r'^Result "([^"]+)":\s*$')
_PERCENTILE = re.compile(r"^\s*p\((\d+(?:\.\d+)?)\)\s*=\s*([-+0-9.eE,]+|NaN)\s+(\S+)\s*$")
_MEAN = re.compile(r"^\s*mean =\s*([-+0-9.eE,]+|NaN)\s+±\(99\.9%\)\s+(\S+)\s+(\S+)\s*$")
_SCORE = re.compile(r"^\s*([-+0-9.eE,]+|NaN)\s+±\(99\.9%\)\s+(\S+)\s+(\S+)\s+\[[^\]]+\]\s*$")

_MODES = {"Sampling time": "sample", "Average time, time/op": "avgt", "Throughput, ops/time": "thrpt",
          "Single shot invocation time": "ss"}


def _number(text):
    return float("nan") if text == "NaN" else float(text.replace(",", ""))


def _params(text):
    out = {}
    for part in text.split(", "):
        key, sep, value = part.partition(" = ")
        if sep:
            out[key.strip()] = value.strip()
    return out


def results_from_log(lines, source="log"):
    """The finished benchmarks of a JMH text log, as a list in JMH's JSON result shape."""
    results = []
    benchmark = params = mode = None
    current = None
    for line in lines:
        line = line.rstrip("\n")
        m = _BENCHMARK.match(line)
        if m:
            benchmark, params, current = m.group(1), {}, None
            continue
        m = _PARAMETERS.match(line)
        if m:
            params = _params(m.group(1))
            continue
        m = _MODE.match(line)
        if m:
            mode = _MODES.get(m.group(1), m.group(1))
            continue
        m = _RESULT.match(line)
        if m:
            current = None
            if m.group(1) == benchmark:
                current = {"benchmark": benchmark, "mode": mode, "params": dict(params or {}),
                           "primaryMetric": {"scorePercentiles": {}}, "recoveredFrom": source}
                results.append(current)
            continue
        if current is None:
            continue
        metric = current["primaryMetric"]
        m = _MEAN.match(line) or _SCORE.match(line)
        if m and "score" not in metric:
            metric["score"], metric["scoreError"], metric["scoreUnit"] = \
                _number(m.group(1)), _number(m.group(2)), m.group(3)
            continue
        m = _PERCENTILE.match(line)
        if m:
            metric["scorePercentiles"][repr(float(m.group(1)))] = _number(m.group(2))  # JMH's keys: "50.0", "99.99"
            metric.setdefault("scoreUnit", m.group(3))
    # a Result block without a score (the log ended inside it) is not a result
    return [r for r in results if "score" in r["primaryMetric"]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("log", help="JMH's text output")
    parser.add_argument("--out", required=True, help="JSON to write (must not exist)")
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and os.path.getsize(args.out) > 0:
        sys.exit(f"{args.out} exists and is not empty; not overwritten")
    with open(args.log, encoding="utf-8", errors="replace") as f:
        results = results_from_log(f, source=args.log)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, args.out)
    print(f"{len(results)} results recovered from {args.log}", file=sys.stderr)


if __name__ == "__main__":
    main()
