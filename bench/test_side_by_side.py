"""Tests of side_by_side.py's `table` step on synthetic JMH and peers files, and of cpu_side_by_side.py's
ratios, spreads and verdicts over rounds and of the steady-state timing rule (standard library only).

Run from the repository root:  python3 -m unittest bench/test_side_by_side.py   (or: python3 bench/test_side_by_side.py)
"""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import cpu_side_by_side as cpu  # noqa: E402
import side_by_side as sbs  # noqa: E402
import jmh_log  # noqa: E402

PKG = "org.spectralpeft.bench."


def jmh_entry(benchmark, params, unit, median, score=None):
    """One JMH -rf json result; `score` (the mean) differs from the median on purpose."""
    return {
        "jmhVersion": "1.37",
        "benchmark": PKG + benchmark,
        "mode": "sample",
        "jdkVersion": "17.0.9",
        "params": {k: str(v) for k, v in params.items()},
        "primaryMetric": {
            "score": median * 3 if score is None else score,
            "scoreUnit": unit,
            "scorePercentiles": {"0.0": median / 2, "50.0": median, "90.0": median * 2, "100.0": median * 4},
        },
    }


def synthetic_jmh():
    mat = "MaterializeBenchmark.materialize"
    fwd = "ForwardBackwardBenchmark.forward"
    big = dict(backend="cuda", shape="4096x4096", n=1000, dtype="float32")
    return [
        # 200 us median -> 0.2 ms; the mean (600 us) must not be used.
        jmh_entry(mat, big, "us/op", 200.0),
        # Same case in bfloat16 and on the CPU: must be ignored.
        jmh_entry(mat, dict(big, dtype="bfloat16"), "us/op", 1.0),
        jmh_entry(mat, dict(big, backend="cpu"), "ms/op", 900.0),
        jmh_entry(mat, dict(backend="cuda", shape="4096x11008", n=1000, dtype="float32"), "ms/op", 0.5),
        jmh_entry("FloorBenchmark.bareC2R", dict(backend="cuda", shape="4096x4096"), "us/op", 160.0),
        jmh_entry("FloorBenchmark.deviceCopy", dict(backend="cuda", shape="4096x4096"), "us/op", 50.0),
        jmh_entry("BatchMaterializeBenchmark.materializeBatch", dict(backend="cuda", layers=64, d=4096, n=1000),
                  "ms/op", 40.0),
        jmh_entry(fwd, dict(backend="cuda", tokens=1, d=4096, n=1000, dtype="float32"), "us/op", 10.0),
        # T=16 has no result at all.
        jmh_entry(fwd, dict(backend="cuda", tokens=256, d=4096, n=1000, dtype="float32"), "us/op", 100.0),
        jmh_entry(fwd, dict(backend="cuda", tokens=4096, d=4096, n=1000, dtype="float32"), "ms/op", 5.0),
    ]


def synthetic_peers():
    def t(ms):
        return {"ms": ms, "min_ms": ms * 0.9, "max_ms": ms * 1.2, "reps": 50}

    return {
        "command": "python3 bench/side_by_side.py measure --out peers.json",
        "date": "2025-01-01T00:00:00+00:00",
        "device": "NVIDIA H100 80GB HBM3",
        "torch": "2.5.1",
        "cuda": "12.4",
        "peft": "0.14.0",
        "source": "peft",
        "copy": {"ms": 0.7, "bytes": 1 << 30, "gbps": 3000.0},
        "irfft2": [dict(t(0.3), shape="4096x11008"), dict(t(0.12), shape="4096x4096")],
        "delta_weight": [
            dict(t(1.0), shape="4096x4096", n=1000, peak_bytes=400_000_000, output_bytes=67_108_864),
            dict(t(2.0), shape="4096x11008", n=1000, peak_bytes=900_000_000, output_bytes=180_355_072),
        ],
        "batch": dict(t(100.0), layers=64, d=4096, n=1000),
        "forward": [
            {"tokens": 1, "full": t(0.6), "base": t(0.05)},
            {"tokens": 16, "full": t(0.7), "base": t(0.06)},
            {"tokens": 4096, "full": t(8.0), "base": t(4.0)},
        ],
        "skipped": {"forward T=256": "skipped with --quick", "delta_weight 768x768 n=10000": "skipped with --quick"},
        "errors": {},
    }


def rows_by_case(rows):
    return {row.case: row for row in rows}


class TableTest(unittest.TestCase):
    def setUp(self):
        self.rows = rows_by_case(sbs.build_rows(sbs.Jmh(synthetic_jmh()), sbs.Peers(synthetic_peers())))

    def test_units_and_median(self):
        row = self.rows["materialize 4096x4096 n=1000"]
        self.assertAlmostEqual(row.ours, 0.2)  # 200 us/op median, not the 600 us mean
        self.assertAlmostEqual(row.floor, 0.16)  # JMH bare C2R preferred over torch irfft2 (0.12)
        self.assertIsNone(row.floor_note)
        self.assertIn("copy floor 0.0500 ms", row.more)
        self.assertAlmostEqual(self.rows["forward T=1 d=4096 n=1000"].ours, 0.01)
        self.assertAlmostEqual(self.rows["materialize 4096x11008 n=1000"].ours, 0.5)

    def test_jmh_units(self):
        def ms(unit, value):
            return sbs.jmh_median_ms({"primaryMetric": {"score": value, "scoreUnit": unit}})

        self.assertAlmostEqual(ms("ns/op", 5e6), 5.0)
        self.assertAlmostEqual(ms("s/op", 0.002), 2.0)
        self.assertAlmostEqual(ms("ops/s", 500.0), 2.0)  # throughput is inverted
        with self.assertRaises(ValueError):
            ms("furlongs/op", 1.0)

    def test_ratios_and_verdicts(self):
        mat = self.rows["materialize 4096x4096 n=1000"]
        self.assertAlmostEqual(mat.peer_over_ours, 5.0)  # 1.0 / 0.2 >= 3
        self.assertAlmostEqual(mat.ours_over_floor, 1.25)  # 0.2 / 0.16 <= 1.5
        self.assertEqual(mat.met, "yes")

        batch = self.rows["materialize 64 layers 4096x4096 n=1000"]
        self.assertAlmostEqual(batch.peer_over_ours, 2.5)  # 100 / 40 < 5
        self.assertEqual(batch.met, "no")
        self.assertAlmostEqual(batch.floor, 64 * 0.16)

        t1 = self.rows["forward T=1 d=4096 n=1000"]
        self.assertAlmostEqual(t1.peer, 0.55)  # adapter part: full - base
        self.assertAlmostEqual(t1.peer_over_ours, 55.0)
        self.assertEqual(t1.met, "yes")
        self.assertIn("full/(base+ours) 10.0", t1.more)  # 0.6 / (0.05 + 0.01)

        t4096 = self.rows["forward T=4096 d=4096 n=1000"]
        self.assertAlmostEqual(t4096.peer_over_ours, 0.8)  # 4 / 5, not > 1
        self.assertEqual(t4096.met, "no")

    def test_missing_entries(self):
        self.assertIsNone(self.rows["materialize 768x768 n=1000"].ours)
        self.assertEqual(self.rows["forward T=16 d=4096 n=1000"].met, sbs.DASH)  # no JMH result
        self.assertEqual(self.rows["forward T=256 d=4096 n=1000"].met, sbs.DASH)  # peer skipped
        self.assertEqual(self.rows["materialize 768x768 n=1000"].met, "")  # no target on this row
        # No JMH floor for 4096x11008: torch irfft2 stands in, with a note.
        wide = self.rows["materialize 4096x11008 n=1000"]
        self.assertAlmostEqual(wide.floor, 0.3)
        self.assertIn("torch irfft2", wide.floor_note)

    def test_rendered_table(self):
        with tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for name, data in (("jmh", synthetic_jmh()), ("peers", synthetic_peers()),
                               ("memory", {"device": "NVIDIA H100 80GB HBM3", "entries": [
                                   {"op": "materialize", "shape": "4096x4096", "n": 1000, "dtype": "float32",
                                    "peak_bytes": 140_000_000, "output_bytes": 67_108_864,
                                    "half_spectrum_bytes": 67_141_632, "workspace_bytes": 10_000_000},
                                   {"op": "materialize", "shape": "768x768", "n": 1000, "dtype": "float32",
                                    "peak_bytes": 9_000_000, "output_bytes": 2_359_296,
                                    "half_spectrum_bytes": 2_365_440, "workspace_bytes": 0},
                                   {"op": "materialize", "shape": "768x768", "n": 1000, "dtype": "bfloat16",
                                    "peak_bytes": 1, "output_bytes": 1, "half_spectrum_bytes": 1,
                                    "workspace_bytes": 1}]})):
                paths[name] = os.path.join(tmp, name + ".json")
                with open(paths[name], "w", encoding="utf-8") as f:
                    json.dump(data, f)
            out_path = os.path.join(tmp, "table.md")
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                sbs.main(["table", "--jmh", paths["jmh"], "--peers", paths["peers"],
                          "--memory", paths["memory"], "--out", out_path])
            with open(out_path, encoding="utf-8") as f:
                written = f.read()
        text = printed.getvalue()
        self.assertEqual(text, written)
        lines = text.splitlines()
        self.assertIn("- device: NVIDIA H100 80GB HBM3 (peers file)", lines)
        self.assertTrue(any("torch 2.5.1" in l and "peft 0.14.0" in l for l in lines))
        self.assertTrue(any(l.startswith("- table: `python3 bench/side_by_side.py table --jmh ") for l in lines))

        def row(prefix):
            matches = [l for l in lines if l.startswith("| " + prefix + " |") and l.count("|") == 10]
            self.assertEqual(len(matches), 1, prefix)
            return [c.strip() for c in matches[0].strip("|").split("|")]

        # case, ours, PEFT, PEFT/ours, floor, ours/floor, more, target, met?
        big = row("materialize 4096x4096 n=1000")
        self.assertEqual(big[1:6], ["0.200", "1.00", "5.00", "0.160", "1.25"])
        self.assertEqual(big[8], "yes")
        self.assertEqual(row("materialize 64 layers 4096x4096 n=1000")[8], "no")
        self.assertEqual(row("forward T=4096 d=4096 n=1000")[8], "no")
        self.assertEqual(row("forward T=1 d=4096 n=1000")[4:6], ["", ""])  # no floor for the forward

        small = row("materialize 768x768 n=1000")
        self.assertTrue(small[1].startswith(sbs.DASH + " ["))
        note = small[1].split("[")[1].rstrip("]")
        self.assertIn(f"[{note}] no JMH result: MaterializeBenchmark.materialize backend=cuda, shape=768x768",
                      text)
        skipped = row("materialize 768x768 n=10000")
        self.assertTrue(skipped[2].startswith(sbs.DASH + " ["))
        self.assertIn("delta_weight 768x768 n=10000 not measured (skipped with --quick)", text)
        self.assertTrue(row("materialize 4096x11008 n=1000")[4].startswith("0.300 ["))  # irfft2 floor, noted

        # Memory table (rows of 6 cells): float32 entries only; PEFT's peak from the peers file.
        mem_lines = [l for l in lines if l.startswith("| materialize 4096x4096 n=1000 |") and l.count("|") == 7]
        self.assertEqual(len(mem_lines), 1)
        cells = [c.strip() for c in mem_lines[0].strip("|").split("|")]
        self.assertEqual(cells[1:], ["140", "400", "2.86", "144", "yes"])
        mem_small = [l for l in lines if l.startswith("| materialize 768x768 n=1000 |") and l.count("|") == 7]
        self.assertEqual(len(mem_small), 1)
        self.assertTrue(mem_small[0].rstrip(" |").endswith("no"))  # 9 MB > 4.7 MB bound

    def test_empty_inputs(self):
        rows = sbs.build_rows(sbs.Jmh([]), sbs.Peers({}))
        text = sbs.render(rows, [], ["header"], "PEFT")
        self.assertTrue(all(r.ours is None and r.peer is None for r in rows))
        self.assertTrue(all(r.met in ("", sbs.DASH) for r in rows))
        self.assertIn("no peers data", text)

    def test_formula_source_label(self):
        peers = synthetic_peers()
        peers.update(source="formula", peft=None, peft_import_error="ModuleNotFoundError: No module named 'peft'")
        p = sbs.Peers(peers)
        text = sbs.render(sbs.build_rows(sbs.Jmh(synthetic_jmh()), p), [],
                          sbs.header("missing.json", [], p, None, ["table"]), p.label)
        self.assertIn("| formula ms | formula/ours |", text)
        self.assertIn("not PEFT (ModuleNotFoundError", text)

    def test_cpu_peers_compare_with_the_cpu_backend_and_judge_no_target(self):
        peers = synthetic_peers()
        peers.update(device_type="cpu", device="Some CPU, 2 logical CPUs", torch_threads=2, cuda=None)
        p = sbs.Peers(peers)
        rows = rows_by_case(sbs.build_rows(sbs.Jmh(synthetic_jmh()), p))
        big = rows["materialize 4096x4096 n=1000"]
        self.assertAlmostEqual(big.ours, 900.0)  # the backend=cpu result, not the cuda one
        self.assertAlmostEqual(big.floor, 0.12)  # torch irfft2: no JMH bare C2R on the CPU
        self.assertIn("same CPU", big.floor_note)
        self.assertIsNone(rows["forward T=1 d=4096 n=1000"].ours)  # no cpu forward result
        self.assertTrue(all(r.met == "" and r.target == "" for r in rows.values()))  # GPU targets
        text = sbs.render(list(rows.values()), [], sbs.header("missing.json", [], p, None, ["table"]), p.label,
                          backend=p.backend)
        self.assertIn("(CPU, float32, medians)", text)
        self.assertIn("torch threads 2", text)
        self.assertNotIn("CUDA", text.split("\n| case")[0])
        self.assertIn("not judged here", text)
        self.assertNotIn("cuFFT", text)

    def test_unknown_device_type_is_refused(self):
        with self.assertRaises(ValueError):
            sbs.Peers(dict(synthetic_peers(), device_type="tpu"))

    def test_no_torch_import(self):
        # `table` must work without torch: importing the module must not import it.
        code = f"import sys; sys.path.insert(0, {HERE!r}); import side_by_side; print('torch' in sys.modules)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        self.assertEqual(result.stdout.strip(), "False")


class FakeClock:
    """A clock that only the timed function advances."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class SteadyTimingTest(unittest.TestCase):
    RULE = dict(min_warmup_s=0.02, max_warmup_s=1.0, window_s=0.005, window_calls=3, tolerance=0.03,
                min_time_s=0.01, min_reps=5)

    def test_warms_up_until_steady_then_times(self):
        clock = FakeClock()

        def fn(i):  # from 3 ms down by 0.1 ms a call (never three windows alike), then 1 ms from call 20 on
            clock.now += 0.001 * (3 - 0.1 * i) if i < 20 else 0.001

        t = sbs.time_steady(fn, self.RULE, clock=clock)
        self.assertTrue(t["steady"])
        self.assertAlmostEqual(t["windows_ms"][0], 2.9)  # calls 0-2
        self.assertTrue(all(abs(w - 1.0) < 1e-9 for w in t["windows_ms"][-3:]))
        self.assertGreaterEqual(t["warmup_s"], self.RULE["min_warmup_s"])
        self.assertAlmostEqual(t["ms"], 1.0)  # no slow warm-up call among the timed ones
        self.assertAlmostEqual(t["max_ms"], 1.0)
        self.assertGreaterEqual(t["reps"], 10)  # 10 ms of 1 ms calls

    def test_gives_up_at_the_warmup_limit_and_says_so(self):
        clock = FakeClock()

        def fn(i):  # ever slower: never steady
            clock.now += 0.001 * (1 + i / 5)

        t = sbs.time_steady(fn, dict(self.RULE, max_warmup_s=0.1), clock=clock)
        self.assertFalse(t["steady"])
        self.assertGreaterEqual(t["warmup_s"], 0.1)
        self.assertGreaterEqual(t["reps"], self.RULE["min_reps"])

    def test_quantile(self):
        self.assertEqual(sbs.quantile([3, 1, 2], 0.5), 2)
        self.assertAlmostEqual(sbs.quantile([1, 2, 3, 4], 0.5), 2.5)
        self.assertAlmostEqual(sbs.quantile([0, 10], 0.1), 1.0)
        self.assertEqual(sbs.quantile([5], 0.9), 5)


def ours_file(entries):
    return {"side": "ours", "java": "Java 17", "backend": "cpu (2 threads)", "jvm_args": ["-Xmx4g"],
            "rule": dict(sbs.STEADY_RULE), "entries": entries}


def peft_file(entries):
    return {"side": "peft", "torch": "2.13.0+cpu", "peft": "0.21.0", "torch_threads": 2, "python": "3.11",
            "rule": dict(sbs.STEADY_RULE), "entries": entries}


def timing(ms, steady=True):
    return {"ms": ms, "steady": steady}


CHECK = {"norm": 3.0, "first": [0.1, 0.2, 0.3, 0.4]}


def cpu_round(mat_ours, mat_fresh, mat_peft, fwd_ours, fwd_fresh, full, base, merged, steady=True):
    """One round of synthetic files: materialize 768x768 n=1000 float32 and forward T=1."""
    mat = dict(op="materialize", shape="768x768", n=1000, dtype="float32", check=CHECK)
    fwd = dict(op="forward", tokens=1, d=4096, n=1000, dtype="float32", check=CHECK)
    return {
        "ours": ours_file([dict(mat, output="preallocated", **timing(mat_ours, steady)),
                           dict(mat, output="fresh", **timing(mat_fresh)),
                           dict(fwd, output="preallocated", **timing(fwd_ours)),
                           dict(fwd, output="fresh", **timing(fwd_fresh))]),
        "peft": peft_file([dict(mat, **timing(mat_peft)),
                           dict(fwd, full=timing(full), base=timing(base), merged=timing(merged))]),
    }


CPU_CASES = ["materialize:768x768:1000:float32", "forward:1:4096:1000"]


class CpuRoundsTest(unittest.TestCase):
    def test_verdict_only_where_the_spread_does_not_include_one(self):
        self.assertEqual(cpu.verdict(1.2, 3.0, 3), "ours ahead")
        self.assertEqual(cpu.verdict(0.5, 0.9, 3), "PEFT ahead")
        self.assertEqual(cpu.verdict(0.9, 1.1, 3), "inconclusive")
        self.assertEqual(cpu.verdict(1.0, 1.5, 3), "inconclusive")  # touching 1 is not ahead
        self.assertEqual(cpu.verdict(0.5, 1.0, 3), "inconclusive")
        self.assertEqual(cpu.verdict(2.0, 2.0, 1), "inconclusive (one round)")  # no spread
        self.assertEqual(cpu.verdict(None, None, 0), "inconclusive")

    def test_ratio_is_the_median_of_per_round_ratios(self):
        c = cpu.compare([1.0, 2.0, 4.0], [3.0, 3.0, 3.0])  # ratios 3, 1.5, 0.75
        self.assertAlmostEqual(c["ratio"], 1.5)
        self.assertAlmostEqual(c["lo"], 0.75)
        self.assertAlmostEqual(c["hi"], 3.0)
        self.assertAlmostEqual(c["ours"], 2.0)
        self.assertAlmostEqual(c["peft"], 3.0)
        self.assertEqual(c["rounds"], 3)
        self.assertEqual(c["verdict"], "inconclusive")  # the spread crosses 1

    def test_rounds_missing_a_side_are_left_out(self):
        c = cpu.compare([1.0, None, 1.0, 1.0], [2.0, 2.0, None, 3.0])
        self.assertEqual(c["rounds"], 2)
        self.assertEqual(c["ratios"], [2.0, 3.0])
        self.assertEqual(c["verdict"], "ours ahead")
        empty = cpu.compare([None], [None])
        self.assertIsNone(empty["ratio"])
        self.assertEqual(empty["verdict"], "inconclusive")

    def test_rows_from_rounds(self):
        rounds = [cpu_round(4.0, 5.0, 3.0, 0.1, 0.2, 300.0, 5.0, 5.2),
                  cpu_round(4.4, 5.5, 2.9, 0.1, 0.2, 310.0, 4.0, 4.3, steady=False),
                  cpu_round(4.2, 5.2, 3.1, 0.1, 0.2, 305.0, 4.5, 4.6)]
        rows = {r["title"]: r for r in cpu.build_rows(CPU_CASES, rounds)}
        mat = rows["materialize 768×768 n=1000 float32, ours into a preallocated output"]
        self.assertAlmostEqual(mat["ours"], 4.2)
        self.assertAlmostEqual(mat["peft"], 3.0)
        self.assertEqual(mat["verdict"], "PEFT ahead")  # 0.75, 0.66, 0.74
        self.assertEqual(mat["unsteady"], 1)
        fresh = rows["materialize 768×768 n=1000 float32, ours into a fresh output per call"]
        self.assertAlmostEqual(fresh["ratio"], 3.1 / 5.2)  # median of 3 / 5, 2.9 / 5.5, 3.1 / 5.2

        adapter = [r for t, r in rows.items() if t.startswith("forward T=1") and "adapter part" in t]
        self.assertEqual(len(adapter), 2)
        self.assertTrue(all(cpu.FORWARD_NOTE in r["title"] for r in adapter))
        inplace = next(r for r in adapter if "in place" in r["title"])
        self.assertAlmostEqual(inplace["ratios"][0], (300.0 - 5.0) / 0.1)  # PEFT's adapter part: full - base
        self.assertEqual(inplace["verdict"], "ours ahead")

        merged = next(r for t, r in rows.items() if "PEFT merged" in t)
        self.assertAlmostEqual(merged["ratios"][0], 5.2 / (5.0 + 0.1))  # merged / (base + ours in place)
        self.assertAlmostEqual(merged["ratios"][1], 4.3 / (4.0 + 0.1))
        self.assertEqual(merged["verdict"], "inconclusive")  # 1.02, 1.05, 1.00 (touches 1)
        self.assertAlmostEqual(merged["agree"], 0.0)

    def test_adapter_part_needs_the_full_forward_slower_than_the_base(self):
        rounds = [cpu_round(4.0, 5.0, 3.0, 0.1, 0.2, 4.0, 5.0, 5.2)]  # full < base: noise
        rows = cpu.build_rows(CPU_CASES, rounds)
        inplace = next(r for r in rows if "in place" in r["title"] and "adapter" in r["title"])
        self.assertIsNone(inplace["ratio"])
        self.assertEqual(inplace["rounds"], 0)

    def test_agreement(self):
        same = cpu.agreement(CHECK, CHECK, 9)
        self.assertEqual(same, 0.0)
        off = cpu.agreement(dict(CHECK, first=[0.1, 0.2, 0.3, 0.5]), CHECK, 9)
        self.assertAlmostEqual(off, 0.1 / (3.0 / 3))  # 0.1 off, against an RMS of 3 / sqrt(9)
        self.assertIsNone(cpu.agreement(None, CHECK, 9))

    def test_rendered_table_and_files(self):
        rounds = [cpu_round(4.0, 5.0, 3.0, 0.1, 0.2, 300.0, 5.0, 5.2),
                  cpu_round(4.4, 5.5, 2.9, 0.1, 0.2, 310.0, 4.0, 4.3)]
        rounds[1]["ours"]["entries"][0]["check"] = {"norm": 3.5, "first": CHECK["first"]}  # outputs differ
        with tempfile.TemporaryDirectory() as tmp:
            for r, data in enumerate(rounds, 1):
                os.makedirs(os.path.join(tmp, f"round-{r}"))
                for side in ("ours", "peft"):
                    with open(os.path.join(tmp, f"round-{r}", f"{side}.json"), "w", encoding="utf-8") as f:
                        json.dump(data[side], f)
            with open(os.path.join(tmp, "run.json"), "w", encoding="utf-8") as f:
                json.dump({"cases": CPU_CASES, "date": "Thu Nov 26 12:00:00 UTC 2026", "machine": "Some CPU",
                           "command": "python3 bench/cpu_side_by_side.py run --rounds 2 --out x"}, f)
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                cpu.main(["table", "--out", tmp])
            with open(os.path.join(tmp, "table.md"), encoding="utf-8") as f:
                written = f.read()
            with open(os.path.join(tmp, "summary.json"), encoding="utf-8") as f:
                summary = json.load(f)
        text = printed.getvalue()
        self.assertEqual(text, written)
        self.assertEqual(len(summary["rows"]), 5)  # 2 materialize rows, 3 forward rows
        self.assertIn("2 rounds", text)
        self.assertIn("- run: Thu Nov 26 12:00:00 UTC 2026", text)
        self.assertIn("peft 0.21.0, torch 2.13.0+cpu with 2 threads", text)
        lines = [l for l in text.splitlines() if l.startswith("| materialize 768×768 n=1000 float32, ours into a p")]
        self.assertEqual(len(lines), 1)
        cells = [c.strip() for c in lines[0].strip("|").split("|")]
        # case, ours, PEFT, PEFT/ours, spread, per round, verdict
        self.assertEqual(cells[1:], ["4.20", "2.95", "0.70", "0.66–0.75", "0.75, 0.66", "PEFT ahead"])
        self.assertIn("[1]", cells[0])  # the outputs-differ note
        self.assertIn("outputs differ", text)


SAMPLED_LOG = """\
# Benchmark mode: Sampling time
# Benchmark: org.spectralpeft.bench.ForwardBackwardBenchmark.backward
# Parameters: (backend = cuda, d = 4096, dtype = float32, n = 1000, tokens = 1)

Result "org.spectralpeft.bench.ForwardBackwardBenchmark.backward":
  N = 10093
  mean =     49.277 \u00b1(99.9%) 1.882 us/op

  Percentiles, us/op:
      p(0.0000) =     38.848 us/op
     p(50.0000) =     47.616 us/op
     p(99.9900) =   5723.820 us/op
    p(100.0000) =   5775.360 us/op

# Benchmark mode: Average time, time/op
# Benchmark: org.spectralpeft.bench.MaterializeBenchmark.materialize
# Parameters: (backend = cuda, dtype = float32, n = 1000, shape = 4096x4096)

Result "org.spectralpeft.bench.MaterializeBenchmark.materialize":
  0.095 \u00b1(99.9%) 0.002 ms/op [Average]
  (min, avg, max) = (0.093, 0.095, 0.099), stdev = 0.001

# Benchmark mode: Sampling time
# Benchmark: org.spectralpeft.bench.ForwardBackwardBenchmark.forward
# Parameters: (backend = cuda, d = 4096, dtype = float32, n = 1000, tokens = 4096)

# Warmup Iteration   1: 281.600 us/op
"""


class JmhLogTest(unittest.TestCase):
    """jmh_log.py: the results a JMH log printed before its run was cut short, in JMH's JSON shape."""

    def test_finished_benchmarks_are_read_back_and_the_unfinished_one_is_not(self):
        results = jmh_log.results_from_log(SAMPLED_LOG.splitlines(True), source="run.log")
        self.assertEqual([r["benchmark"] for r in results],
                         [PKG + "ForwardBackwardBenchmark.backward", PKG + "MaterializeBenchmark.materialize"])
        backward, materialize = results
        self.assertEqual(backward["params"], {"backend": "cuda", "d": "4096", "dtype": "float32", "n": "1000",
                                              "tokens": "1"})
        self.assertEqual(backward["mode"], "sample")
        self.assertEqual(backward["primaryMetric"]["scorePercentiles"],
                         {"0.0": 38.848, "50.0": 47.616, "99.99": 5723.82, "100.0": 5775.36})
        self.assertAlmostEqual(sbs.jmh_median_ms(backward), 0.047616)
        self.assertEqual(materialize["mode"], "avgt")
        self.assertEqual(materialize["primaryMetric"]["score"], 0.095)
        self.assertEqual(materialize["primaryMetric"]["scoreUnit"], "ms/op")
        self.assertAlmostEqual(sbs.jmh_median_ms(materialize), 0.095)
        self.assertEqual(backward["recoveredFrom"], "run.log")

    def test_the_table_finds_recovered_results(self):
        results = jmh_log.results_from_log(SAMPLED_LOG.splitlines(True))
        jmh = sbs.Jmh(results)
        self.assertAlmostEqual(jmh.ms("ForwardBackwardBenchmark.backward", backend="cuda", tokens=1, d=4096,
                                      n=1000, dtype="float32"), 0.047616)
        self.assertIsNone(jmh.find("ForwardBackwardBenchmark.forward", backend="cuda", tokens=4096))

    def test_the_command_refuses_to_overwrite_its_output(self):
        with tempfile.TemporaryDirectory() as d:
            log, out = os.path.join(d, "run.log"), os.path.join(d, "jmh.json")
            with open(log, "w", encoding="utf-8") as f:
                f.write(SAMPLED_LOG)
            with open(out, "w", encoding="utf-8") as f:
                f.write("[1]")
            with self.assertRaises(SystemExit):
                jmh_log.main([log, "--out", out])
            with open(out, encoding="utf-8") as f:
                self.assertEqual(f.read(), "[1]")
            os.remove(out)
            with contextlib.redirect_stderr(io.StringIO()):
                jmh_log.main([log, "--out", out])
            with open(out, encoding="utf-8") as f:
                self.assertEqual(len(json.load(f)), 2)


if __name__ == "__main__":
    unittest.main()
