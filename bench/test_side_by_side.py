"""Tests of side_by_side.py's `table` step on synthetic JMH and peers files (standard library only).

Run from the repository root:  python3 -m unittest bench/test_side_by_side.py
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

import side_by_side as sbs  # noqa: E402

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


if __name__ == "__main__":
    unittest.main()
