#!/usr/bin/env python3
"""CPU side by side in alternating rounds: our CPU backend against Hugging Face PEFT's FourierFT on PyTorch's CPU.

Run from the repository root:

    # the Python environment of PEFT's side (torch, numpy, peft 0.21.0), once:
    python3 bench/cpu_side_by_side.py venv --path .venv-bench [-- PIP ARGS...]
    # the rounds and the table (3 rounds of the core cases: about 16 minutes on 2 cores; --cases full, 22):
    .venv-bench/bin/python bench/cpu_side_by_side.py run --rounds 3 --out cpu-sbs
    # the table again from a finished (or interrupted) run's directory:
    python3 bench/cpu_side_by_side.py table --out cpu-sbs

`run` builds the Java side with Maven (offline when the local repository has the artifacts, else with the
network; --classpath skips the build) and copies target/classes and target/test-classes into OUT/classpath,
so that a rebuild during the run does not change what is timed. Then each round runs

  1. our side in a fresh JVM: org.spectralpeft.bench.CpuSideBySide (jmh/org/spectralpeft/bench/) times
     materialize and the unmaterialized forward, each into a preallocated output and into a fresh output per
     call, and
  2. PEFT's side in a fresh Python process (this script's `peft` step): real PEFT FourierFT layers built by
     bench/side_by_side.py (get_peft_model), timed by its time_steady: PEFT's own get_delta_weight, the
     adapted layer's forward, the base F.linear alone, and F.linear with the merged weight W + ΔW precomputed.

Both sides time by the same rule (side_by_side.STEADY_RULE): warm-up windows until the last three windows'
medians agree within 3 % (and, on the JVM, the JIT compiler is idle), then at least 3 s and 10 timed calls;
the round's figure is their median. The table gives, per case, the median over rounds of each side's figure,
the median over rounds of the ratio PEFT/ours, its spread (min–max over rounds), and a verdict only where
the spread does not include 1. Both sides get the same deterministic inputs and record the norm and first
values of their ΔW (or x·ΔWᵀ), which the table checks against each other.

Everything but the `peft` step (which needs torch and peft) uses the standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import side_by_side as sbs  # noqa: E402

MAIN_CLASS = "org.spectralpeft.bench.CpuSideBySide"
D = 4096
FORWARD_N = 1000

# Cases as "materialize:SHAPE:N:DTYPE" (SHAPE d_out x d_in) and "forward:T:D:N", the same strings on both sides.
CASES = {
    "full": ["materialize:768x768:1000:float32", "materialize:4096x4096:1000:float32",
             "materialize:4096x11008:1000:float32", "materialize:768x768:10000:float32",
             "materialize:4096x4096:10000:float32", "materialize:768x768:1000:bfloat16",
             "materialize:4096x4096:1000:bfloat16", f"forward:1:{D}:{FORWARD_N}", f"forward:256:{D}:{FORWARD_N}"],
    "core": ["materialize:768x768:1000:float32", "materialize:4096x4096:1000:float32",
             "materialize:4096x11008:1000:float32", f"forward:1:{D}:{FORWARD_N}", f"forward:256:{D}:{FORWARD_N}"],
    "quick": ["materialize:768x768:1000:float32", f"forward:1:{D}:{FORWARD_N}"],
}

# The rule's keys as command-line options of both sides (--min-warmup-s ...).
RULE_OPTIONS = [k for k in sbs.STEADY_RULE]

# Checks of the two sides' outputs against each other (relative to the output's RMS).
AGREE = {"float32": 1e-4, "bfloat16": 2e-2}

PEFT_LABEL = "PEFT"
FORWARD_NOTE = "PEFT's unmerged forward re-materializes ΔW"


def progress(message):
    sbs.progress(message)


def parse_case(case):
    """'materialize:4096x11008:1000:float32' -> dict(op, shape, d_out, d_in, n, dtype);
    'forward:1:4096:1000' -> dict(op, tokens, d, n, dtype)."""
    parts = case.split(":")
    if parts[0] == "materialize" and len(parts) == 4:
        d_out, d_in = sbs.parse_shape(parts[1])
        if parts[3] not in AGREE:
            raise ValueError(f"dtype must be one of {sorted(AGREE)}: {case}")
        return {"op": "materialize", "shape": parts[1], "d_out": d_out, "d_in": d_in, "n": int(parts[2]),
                "dtype": parts[3]}
    if parts[0] == "forward" and len(parts) == 4:
        return {"op": "forward", "tokens": int(parts[1]), "d": int(parts[2]), "n": int(parts[3]), "dtype": "float32"}
    raise ValueError(f"a case is materialize:SHAPE:N:DTYPE or forward:T:D:N, got {case!r}")


def case_title(c):
    if c["op"] == "materialize":
        return f"materialize {c['d_out']}×{c['d_in']} n={c['n']} {c['dtype']}"
    return f"forward T={c['tokens']} d={c['d']} n={c['n']}"


# =============================================================================================
# the numbers: per-round ratios, their spread and the verdict (standard library only)
# =============================================================================================

def verdict(lo, hi, rounds):
    """'ours ahead' when every round's PEFT/ours ratio is above 1, 'PEFT ahead' when every one is below 1,
    else 'inconclusive' (also with fewer than two rounds: one round has no spread)."""
    if rounds < 2 or lo is None or hi is None:
        return "inconclusive (one round)" if rounds == 1 else "inconclusive"
    if lo > 1:
        return "ours ahead"
    if hi < 1:
        return "PEFT ahead"
    return "inconclusive"


def compare(ours, peft):
    """ours and peft: one figure (ms) per round, None where a round lacks it. Uses the rounds that have
    both; returns ours and PEFT (medians over those rounds), ratio (median of the per-round PEFT/ours),
    lo and hi (the ratios' min and max), ratios, rounds and verdict."""
    pairs = [(o, p) for o, p in zip(ours, peft) if o is not None and p is not None and o > 0 and p > 0]
    ratios = [p / o for o, p in pairs]
    lo, hi = (min(ratios), max(ratios)) if ratios else (None, None)
    return {
        "ours": statistics.median(o for o, _ in pairs) if pairs else None,
        "peft": statistics.median(p for _, p in pairs) if pairs else None,
        "ratio": statistics.median(ratios) if ratios else None,
        "lo": lo,
        "hi": hi,
        "ratios": ratios,
        "rounds": len(pairs),
        "verdict": verdict(lo, hi, len(pairs)),
    }


def _find(entries, **match):
    for e in entries or []:
        if all(str(e.get(k)) == str(v) for k, v in match.items()):
            return e
    return None


def _ms(entry):
    return None if entry is None else entry.get("ms")


def agreement(ours_check, peft_check, size):
    """Largest difference between the two sides' outputs, relative to the output's RMS: of the norms and
    of the first values. None when either check is missing."""
    if not ours_check or not peft_check:
        return None
    rms = peft_check["norm"] / max(1, size) ** 0.5
    if rms <= 0:
        return None
    diffs = [abs(ours_check["norm"] - peft_check["norm"]) / peft_check["norm"]]
    diffs += [abs(a - b) / rms for a, b in zip(ours_check["first"], peft_check["first"])]
    return max(diffs)


def build_rows(cases, rounds):
    """The table's rows. rounds: one dict per round with the two sides' files, "ours" and "peft" (either
    may be None). Each row: case, title, ours_what, peft_what, and compare()'s fields, plus unsteady (how
    many of the row's measurements, over rounds, did not reach the steady state) and agree."""
    rows = []
    for case in cases:
        c = parse_case(case)
        ours_entries = [(r.get("ours") or {}).get("entries") for r in rounds]
        peft_entries = [(r.get("peft") or {}).get("entries") for r in rounds]
        title = case_title(c)
        if c["op"] == "materialize":
            key = dict(op="materialize", shape=c["shape"], n=c["n"], dtype=c["dtype"])
            size = c["d_out"] * c["d_in"]
            peft = [_find(e, **key) for e in peft_entries]
            for output, what in (("preallocated", "ours into a preallocated output"),
                                 ("fresh", "ours into a fresh output per call")):
                ours = [_find(e, output=output, **key) for e in ours_entries]
                row = compare([_ms(e) for e in ours], [_ms(e) for e in peft])
                row.update(case=case, title=f"{title}, {what}", ours_what=f"materialize, {output} output",
                           peft_what="get_delta_weight",
                           unsteady=_unsteady(ours) + _unsteady(peft),
                           agree=_agree(ours, peft, size), dtype=c["dtype"])
                rows.append(row)
        else:
            key = dict(op="forward", tokens=c["tokens"], d=c["d"], n=c["n"])
            size = c["tokens"] * c["d"]
            peft = [_find(e, **key) for e in peft_entries]
            full = [None if e is None else e.get("full") for e in peft]
            base = [None if e is None else e.get("base") for e in peft]
            merged = [None if e is None else e.get("merged") for e in peft]
            adapter = [None if f is None or b is None or f["ms"] <= b["ms"] else f["ms"] - b["ms"]
                       for f, b in zip(full, base)]
            inplace = [_find(e, output="preallocated", **key) for e in ours_entries]
            fresh = [_find(e, output="fresh", **key) for e in ours_entries]
            for ours, what, output in ((inplace, "ours into y in place", "preallocated"),
                                       (fresh, "ours into a fresh y per call", "fresh")):
                row = compare([_ms(e) for e in ours], adapter)
                row.update(case=case, title=f"{title}, adapter part ({FORWARD_NOTE}), {what}",
                           ours_what=f"forward y += x·ΔWᵀ, {output} y", peft_what="layer forward − base F.linear",
                           unsteady=_unsteady(ours) + _unsteady(full) + _unsteady(base),
                           agree=_agree(ours, peft, size), dtype="float32")
                rows.append(row)
            composed = [None if o is None or b is None else o["ms"] + b["ms"] for o, b in zip(inplace, base)]
            row = compare(composed, [_ms(m) for m in merged])
            row.update(case=case, title=f"{title}, whole layer against PEFT merged: F.linear(x, W + ΔW) vs "
                                        f"F.linear(x, W) + ours",
                       ours_what="torch F.linear(x, W) + forward in place", peft_what="F.linear(x, W + ΔW)",
                       unsteady=_unsteady(inplace) + _unsteady(base) + _unsteady(merged),
                       agree=_agree(inplace, peft, size), dtype="float32")
            rows.append(row)
    return rows


def _unsteady(entries):
    return sum(1 for e in entries if e is not None and e.get("steady") is False)


def _agree(ours_entries, peft_entries, size):
    """The worst agreement() over the rounds that have both checks."""
    worst = None
    for o, p in zip(ours_entries, peft_entries):
        a = agreement(None if o is None else o.get("check"), None if p is None else p.get("check"), size)
        if a is not None:
            worst = a if worst is None else max(worst, a)
    return worst


def fmt_spread(row):
    if row["lo"] is None:
        return sbs.DASH
    return f"{sbs.fmt_ratio(row['lo'])}–{sbs.fmt_ratio(row['hi'])}"


def render(rows, meta, rounds_data):
    rounds = len(rounds_data)
    out = [f"CPU side by side with PEFT, {rounds} round{'s' if rounds != 1 else ''} "
           f"(medians in ms; PEFT/ours above 1: ours faster)", ""]
    out.extend(header_lines(meta, rounds_data))
    out.append("")
    out.append(f"| case | ours ms | {PEFT_LABEL} ms | {PEFT_LABEL}/ours | spread over rounds | per round | verdict |")
    out.append("|---|---:|---:|---:|---|---|---|")
    notes = sbs.Footnotes()
    for row in rows:
        title = row["title"]
        if row["unsteady"]:
            title += " " + notes.ref(f"{row['unsteady']} of the row's measurements (over all rounds) did not reach "
                                     "the steady state within the warm-up limit; their timed calls still count")
        if row["agree"] is not None and row["agree"] > AGREE[row["dtype"]]:
            title += " " + notes.ref("the two sides' outputs differ by more than the tolerance (see the check note)")
        per_round = ", ".join(sbs.fmt_ratio(r) for r in row["ratios"]) or sbs.DASH
        cells = [title, sbs.fmt_ms(row["ours"]) or sbs.DASH, sbs.fmt_ms(row["peft"]) or sbs.DASH,
                 sbs.fmt_ratio(row["ratio"]) or sbs.DASH, fmt_spread(row), per_round, row["verdict"]]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.extend(note_lines(rows))
    if notes.items:
        out.append("")
        out.extend(notes.render())
    return "\n".join(out) + "\n"


def header_lines(meta, rounds_data):
    ours = next((r["ours"] for r in rounds_data if r.get("ours")), {}) or {}
    peft = next((r["peft"] for r in rounds_data if r.get("peft")), {}) or {}
    lines = []
    if meta.get("date"):
        lines.append(f"- run: {meta['date']}" + (f" to {meta['finished']}" if meta.get("finished") else ""))
    if meta.get("machine"):
        lines.append(f"- machine: {meta['machine']}")
    if ours:
        lines.append(f"- ours: {ours.get('java', '?')}, {ours.get('backend', '?')}, JVM options "
                     f"{' '.join(ours.get('jvm_args') or []) or '(none)'}")
    if peft:
        lines.append(f"- PEFT: peft {peft.get('peft', '?')}, torch {peft.get('torch', '?')} with "
                     f"{peft.get('torch_threads', '?')} threads, Python {peft.get('python', '?')}")
    rule = (ours.get("rule") or peft.get("rule") or {})
    if rule:
        lines.append("- timing, both sides: warm-up windows (≥ {window_s:g} s and ≥ {window_calls} calls each) for "
                     "≥ {min_warmup_s:g} s until the last three windows' medians agree within {tol:g} % (ours also: "
                     "the JIT compiler idle in them), at most {max_warmup_s:g} s; then ≥ {min_time_s:g} s and ≥ "
                     "{min_reps} timed calls, their median. Each round: a fresh JVM for ours, then a fresh Python "
                     "process for PEFT".format(tol=100 * rule.get("tolerance", 0),
                                               **{k: rule.get(k, 0) for k in sbs.STEADY_RULE}))
    if meta.get("command"):
        lines.append(f"- command: `{meta['command']}`")
    if meta.get("ours_command"):
        lines.append(f"- our side, each round: `{meta['ours_command']}`")
    if meta.get("peft_command"):
        lines.append(f"- PEFT's side, each round: `{meta['peft_command']}`")
    return lines


def note_lines(rows):
    lines = [
        "- PEFT/ours: the median over rounds of each round's ratio; spread: its min–max over rounds; verdict only "
        "where the spread does not include 1. ours ms and PEFT ms: medians over rounds of each round's median.",
        "- materialize: PEFT is its layer's own get_delta_weight (it allocates the dense spectrum, the complex FFT "
        "output and ΔW on every call; in bfloat16 it computes in float32 and casts). Ours: ΔW into one output "
        "array reused by every call (preallocated), or into a new zero-filled array per call (fresh, as PEFT "
        "allocates).",
        f"- forward, adapter part ({FORWARD_NOTE} on every call): PEFT is its FourierFT layer's forward minus the "
        "base F.linear(x, W, b) alone (both timed in the same process). Ours: the unmaterialized y += x·ΔWᵀ, "
        "into y in place (as into the base layer's output) or into a new zero-filled y per call.",
        "- forward, whole layer against PEFT merged: PEFT is F.linear(x, W + ΔW, b) with the weight merged "
        "beforehand by PEFT's own merge (W += ΔW in place, as merge_and_unload leaves it: the fastest a PEFT user "
        "can do at inference); ours is composed as the framework's "
        "base F.linear(x, W, b) (timed in the PEFT process, same round) plus our unmaterialized forward into its "
        "output in place (timed in the JVM), the sum of the two medians.",
        "- inputs: coefficient k = cos(k), x[j] = sin(j) (row-major), PEFT's index set (random_loc_seed 777) "
        "and scaling 150, on both sides.",
    ]
    worst = {}
    for row in rows:
        if row["agree"] is not None:
            worst[row["dtype"]] = max(worst.get(row["dtype"], 0.0), row["agree"])
    if worst:
        parts = [f"{dtype}: {value:.1e} (tolerance {AGREE[dtype]:g})" for dtype, value in sorted(worst.items())]
        lines.append("- check: the two sides' ΔW (materialize) and x·ΔWᵀ (forward) agree; largest difference of "
                     "their norms and first values, relative to the output's RMS, over all cases and rounds: "
                     + "; ".join(parts) + ".")
    return lines


# =============================================================================================
# run: the rounds
# =============================================================================================

# Turns on the CPU backend's vector loops (README, "The CPU backend's vector loops"), as a user who wants
# its best speed would.
VECTOR_MODULE = "--add-modules jdk.incubator.vector"


def default_heap():
    """-Xmx of 70 % of the machine's memory, at most 24g (native-build/run-benchmarks.sh's rule)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mib = int(line.split()[1]) * 7 // 10 // 1024
                    return f"-Xmx{min(mib, 24 * 1024)}m"
    except OSError:
        pass
    return "-Xmx4g"


def memory_gb():
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 ** 2
    except OSError:
        pass
    return None


def run_logged(cmd, log_path, cwd=None, env=None):
    """Runs cmd, its output to log_path and to stderr; returns the exit status."""
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env)
        for line in proc.stdout:
            log.write(line)
            sys.stderr.write("    " + line)
        return proc.wait()


def maven(args, log):
    """Maven offline first (no network needed when the local repository has the artifacts), else online."""
    base = ["mvn", "-B", "-q"]
    if run_logged(base + ["-o"] + args, log, cwd=REPO) == 0:
        return
    progress("offline Maven failed (artifacts missing from the local repository?): retrying with the network")
    if run_logged(base + args, log, cwd=REPO) != 0:
        sys.exit(f"Maven failed: {shlex.join(base + args)} (see {log})")


def build_classpath(out_dir):
    """Builds the classes and copies them into OUT/classpath; returns the classpath."""
    dest = os.path.join(out_dir, "classpath")
    os.makedirs(dest, exist_ok=True)
    progress("building the Java side (mvn test-compile)")
    maven(["-DskipTests", "test-compile"], os.path.join(dest, "build.log"))
    deps_file = os.path.join(dest, "deps.txt")
    maven(["dependency:build-classpath", "-Dmdep.includeScope=test", f"-Dmdep.outputFile={deps_file}"],
          os.path.join(dest, "deps.log"))
    for name in ("classes", "test-classes"):
        target = os.path.join(dest, name)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(os.path.join(REPO, "target", name), target)
    with open(deps_file, encoding="utf-8") as f:
        deps = f.read().strip()
    return ":".join([os.path.join(dest, "classes"), os.path.join(dest, "test-classes"), deps])


def shown_args(argv):
    """argv with a --classpath value shortened (it lists every jar)."""
    shown, skip = [], False
    for a in argv:
        if skip:
            shown.append("CLASSPATH")
            skip = False
        elif a == "--classpath":
            shown.append(a)
            skip = True
        elif a.startswith("--classpath="):
            shown.append("--classpath=CLASSPATH")
        else:
            shown.append(a)
    return shown


def rule_args(args):
    out = []
    for key in RULE_OPTIONS:
        value = getattr(args, key)
        if value is not None:
            out += ["--" + key.replace("_", "-"), str(value)]
    return out


def java_version(java):
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        return (result.stderr or result.stdout).splitlines()[0]
    except (OSError, IndexError):
        return None


def run(args, argv):
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    cases = args.case or CASES[args.cases]
    for case in cases:
        parse_case(case)
    python = args.python or sys.executable
    probe = subprocess.run([python, "-c", "import torch, peft; print(torch.__version__, peft.__version__)"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        sys.exit(f"PEFT's side needs torch and peft in {python}: make the environment with "
                 f"`python3 bench/cpu_side_by_side.py venv --path .venv-bench` and pass --python "
                 f".venv-bench/bin/python\n{probe.stderr.strip()}")
    classpath = args.classpath or build_classpath(out_dir)
    java = args.java or (os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME")
                         else "java")
    java_opts = shlex.split(os.environ.get("JAVA_OPTS") or default_heap() + " " + VECTOR_MODULE)
    extra = rule_args(args)
    mem = memory_gb()
    meta = {
        "command": shlex.join([sys.executable, "bench/cpu_side_by_side.py"] + shown_args(argv)),
        "date": subprocess.run(["date"], capture_output=True, text=True, check=False).stdout.strip()
        or datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": sbs.cpu_name() + (f", {mem:.1f} GiB memory" if mem else "") + f", {platform.platform()}",
        "jdk": java_version(java),
        "cases": cases,
        "rounds": args.rounds,
        "ours_command": shlex.join([java] + java_opts + ["-cp", "CLASSPATH", MAIN_CLASS, "OUT/round-R/ours.json"]
                                   + extra + cases),
        "peft_command": shlex.join([python, "bench/cpu_side_by_side.py", "peft", "--out", "OUT/round-R/peft.json"]
                                   + extra + sum((["--case", c] for c in cases), [])),
    }
    write_json(os.path.join(out_dir, "run.json"), meta)
    started = time.monotonic()
    for r in range(1, args.rounds + 1):
        round_dir = os.path.join(out_dir, f"round-{r}")
        os.makedirs(round_dir, exist_ok=True)
        ours_json, peft_json = os.path.join(round_dir, "ours.json"), os.path.join(round_dir, "peft.json")
        for stale in (ours_json, peft_json):
            if os.path.exists(stale):
                os.remove(stale)
        progress(f"round {r}/{args.rounds}: ours (JVM)")
        rc = run_logged([java] + java_opts + ["-cp", classpath, MAIN_CLASS, ours_json] + extra + cases,
                        os.path.join(round_dir, "ours.log"), cwd=REPO)
        if rc != 0:
            progress(f"round {r}: our side failed (exit {rc}; see {round_dir}/ours.log)")
        progress(f"round {r}/{args.rounds}: PEFT (Python)")
        rc = run_logged([python, os.path.abspath(__file__), "peft", "--out", peft_json] + extra
                        + sum((["--case", c] for c in cases), []), os.path.join(round_dir, "peft.log"), cwd=REPO)
        if rc != 0:
            progress(f"round {r}: PEFT's side failed (exit {rc}; see {round_dir}/peft.log)")
    meta["finished"] = subprocess.run(["date"], capture_output=True, text=True, check=False).stdout.strip()
    meta["minutes"] = round((time.monotonic() - started) / 60, 1)
    write_json(os.path.join(out_dir, "run.json"), meta)
    return table(out_dir)


def write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def load_rounds(out_dir):
    rounds = []
    r = 1
    while os.path.isdir(os.path.join(out_dir, f"round-{r}")):
        entry = {}
        for side in ("ours", "peft"):
            path = os.path.join(out_dir, f"round-{r}", f"{side}.json")
            try:
                with open(path, encoding="utf-8") as f:
                    entry[side] = json.load(f)
            except (OSError, ValueError):
                entry[side] = None
        rounds.append(entry)
        r += 1
    return rounds


def table(out_dir):
    try:
        with open(os.path.join(out_dir, "run.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"no run in {out_dir}: {e}")
    rounds = load_rounds(out_dir)
    rows = build_rows(meta["cases"], rounds)
    text = render(rows, meta, rounds)
    with open(os.path.join(out_dir, "table.md"), "w", encoding="utf-8") as f:
        f.write(text)
    write_json(os.path.join(out_dir, "summary.json"), {"meta": meta, "rows": rows})
    sys.stdout.write(text)
    return text


# =============================================================================================
# peft: PEFT's side of one round (needs torch and peft)
# =============================================================================================

def peft_side(args):
    import torch
    import peft

    rule = {k: getattr(args, k) for k in RULE_OPTIONS if getattr(args, k) is not None}
    full_rule = dict(sbs.STEADY_RULE, **rule)
    out = {
        "side": "peft",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": sbs.cpu_name(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "peft": peft.__version__,
        "python": platform.python_version(),
        "rule": full_rule,
        "entries": [],
        "errors": {},
    }
    F = torch.nn.functional

    def cosines(n):
        return torch.cos(torch.arange(n, dtype=torch.float64)).float()

    def check(t):
        t = t.detach().float()
        return {"norm": t.double().norm().item(), "first": t.reshape(t.shape[0], -1)[0, :4].tolist()}

    def layer_for(d_out, d_in, n):
        model, layers = sbs.build_peft_layers(torch, peft, d_out, d_in, n, 1, "cpu")
        layer = layers[0]
        layer.fourierft_spectrum[sbs.ADAPTER].copy_(cosines(n))
        return model, layer

    with torch.no_grad():
        for case in args.case:
            c = parse_case(case)
            try:
                if c["op"] == "materialize":
                    model, layer = layer_for(c["d_out"], c["d_in"], c["n"])
                    if c["dtype"] == "bfloat16":
                        model.to(torch.bfloat16)
                    delta = layer.get_delta_weight(sbs.ADAPTER)
                    want = torch.bfloat16 if c["dtype"] == "bfloat16" else torch.float32
                    if delta.dtype != want:
                        raise RuntimeError(f"get_delta_weight returned {delta.dtype}, expected {want}")
                    entry = dict(op="materialize", shape=c["shape"], n=c["n"], dtype=c["dtype"], check=check(delta))
                    del delta
                    entry.update(sbs.time_steady(lambda i: layer.get_delta_weight(sbs.ADAPTER), rule))
                    progress(f"PEFT {case}: get_delta_weight {entry['ms']:.4g} ms over {entry['reps']} calls "
                             f"(warm-up {entry['warmup_s']:.1f} s, {'steady' if entry['steady'] else 'NOT steady'})")
                else:
                    d, tokens = c["d"], c["tokens"]
                    model, layer = layer_for(d, d, c["n"])
                    x = torch.sin(torch.arange(tokens * d, dtype=torch.float64)).float().reshape(tokens, d)
                    w, b = sbs.base_params(layer)
                    entry = dict(op="forward", tokens=tokens, d=d, n=c["n"], dtype="float32",
                                 check=check(F.linear(x, layer.get_delta_weight(sbs.ADAPTER))))
                    for name in ("full", "base", "merged"):
                        if name == "full":
                            fn = lambda i: layer(x)  # noqa: E731
                        else:
                            if name == "merged":
                                # PEFT's own merge, W += ΔW in the base weight's storage (what merge_and_unload
                                # leaves), so that base and merged time F.linear on the same memory.
                                layer.merge()
                            fn = lambda i: F.linear(x, w, b)  # noqa: E731
                        entry[name] = sbs.time_steady(fn, rule)
                        progress(f"PEFT {case}: {name} {entry[name]['ms']:.4g} ms over {entry[name]['reps']} calls "
                                 f"(warm-up {entry[name]['warmup_s']:.1f} s, "
                                 f"{'steady' if entry[name]['steady'] else 'NOT steady'})")
                out["entries"].append(entry)
            except Exception as e:  # noqa: BLE001 - a failed case is recorded and the rest go on
                out["errors"][case] = f"{type(e).__name__}: {e}"
                progress(f"PEFT {case} failed: {out['errors'][case]}")
            finally:
                model = layer = None
            write_json(args.out, out)
    write_json(args.out, out)


# =============================================================================================
# venv: the Python environment of PEFT's side
# =============================================================================================

def make_venv(args):
    path = os.path.abspath(args.path)
    pip_args = args.pip_args[1:] if args.pip_args[:1] == ["--"] else args.pip_args
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    subprocess.run([os.path.join(path, "bin", "pip"), "install", *pip_args, "torch", "numpy", "peft==0.21.0"],
                   check=True)
    print(f"made {path}; run: {os.path.join(args.path, 'bin', 'python')} bench/cpu_side_by_side.py run "
          f"--rounds 3 --out cpu-sbs")


def add_rule_options(parser):
    for key in RULE_OPTIONS:
        kind = int if isinstance(sbs.STEADY_RULE[key], int) else float
        parser.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, default=None,
                            help=f"timing rule (default {sbs.STEADY_RULE[key]})")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="the rounds, then the table")
    r.add_argument("--out", required=True, help="directory for the rounds' files, table.md and summary.json")
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--cases", choices=sorted(CASES), default="core",
                   help="core (default: float32, n = 1000), full (also n = 10000 and bfloat16 outputs) or quick "
                        "(a smoke test)")
    r.add_argument("--case", action="append", help="a case instead of --cases (repeatable), e.g. "
                                                   "materialize:4096x4096:1000:float32 or forward:1:4096:1000")
    r.add_argument("--python", help="the Python with torch and peft for PEFT's side (default: this one)")
    r.add_argument("--java", help="the java to run (default: $JAVA_HOME/bin/java, else java); JVM options "
                                  "from JAVA_OPTS (default: -Xmx of 70 %% of the memory, at most 24g, and "
                                  + VECTOR_MODULE + ")")
    r.add_argument("--classpath", help="our classes and their dependencies (default: build with Maven)")
    add_rule_options(r)
    t = sub.add_parser("table", help="the table from a run's directory")
    t.add_argument("--out", required=True)
    p = sub.add_parser("peft", help="PEFT's side of one round (run calls it)")
    p.add_argument("--out", required=True)
    p.add_argument("--case", action="append", required=True)
    add_rule_options(p)
    v = sub.add_parser("venv", help="make the Python environment of PEFT's side")
    v.add_argument("--path", default=".venv-bench")
    v.add_argument("pip_args", nargs=argparse.REMAINDER, help="after --: extra pip install arguments")
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
        run(args, argv)
    elif args.command == "table":
        table(os.path.abspath(args.out))
    elif args.command == "peft":
        peft_side(args)
    else:
        make_venv(args)


if __name__ == "__main__":
    main()
