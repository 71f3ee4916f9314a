"""Tests of bench/route_decisions.py (standard library only): python3 -m unittest bench/test_route_decisions.py"""

import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import route_decisions  # noqa: E402


def entry(method, params, p50, unit="us/op"):
    return {"benchmark": "org.spectralpeft.bench.TLoRABenchmark." + method, "mode": "sample", "params": params,
            "primaryMetric": {"score": p50 * 1.1, "scoreUnit": unit, "scorePercentiles": {"50.0": p50}}}


CUT_LOG = """# Benchmark: org.spectralpeft.bench.TLoRABenchmark.forwardBackward
# Parameters: (backend = cuda, d = 1280, ring = 1, tokens = 4096)
# Benchmark mode: Sampling time

Result "org.spectralpeft.bench.TLoRABenchmark.forwardBackward":
  N = 300
  mean =   1450.000 ±(99.9%) 3.000 us/op

  Histogram, us/op:
  Percentiles, us/op:
      p(0.0000) =   1400.000 us/op
     p(50.0000) =   1420.000 us/op

# Benchmark: org.spectralpeft.bench.TLoRABenchmark.forwardBackward
# Parameters: (backend = cuda, d = 2048, ring = 1, tokens = 4096)
# Benchmark mode: Sampling time
"""


class RouteDecisionsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        os.makedirs(os.path.join(self.dir, "tlora-gram"))
        with open(os.path.join(self.dir, "tlora-gram", "jmh.json"), "w", encoding="utf-8") as f:
            json.dump([entry("forwardBackward", {"d": "1280", "ring": "1", "tokens": "4096"}, 1.62, "ms/op"),
                       entry("forwardBackward", {"d": "2048", "ring": "1", "tokens": "4096"}, 2920.0)], f)
        # the kronecker run was cut: no jmh.json, its log has one finished result
        with open(os.path.join(self.dir, "tlora-kronecker.log"), "w", encoding="utf-8") as f:
            f.write(CUT_LOG)

    def render(self):
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(0, route_decisions.main([self.dir]))
        return out.getvalue()

    def test_medians_in_microseconds_the_fastest_and_the_ratio(self):
        text = self.render()
        self.assertIn("| forwardBackward d=1280 tokens=4096 | 1620.0 | 1420.0 | tlora-kronecker | 1.14 |", text)

    def test_a_case_a_variant_did_not_reach_shows_a_dash(self):
        text = self.render()
        self.assertIn("| forwardBackward d=2048 tokens=4096 | 2920.0 | - | tlora-gram | 1.00 |", text)

    def test_decisions_without_results_say_so(self):
        text = self.render()
        self.assertEqual(len(route_decisions.DECISIONS) - 1, text.count("| (no results) |"))

    def test_out_is_never_overwritten(self):
        out = os.path.join(self.dir, "decisions.md")
        with open(out, "w", encoding="utf-8") as f:
            f.write("keep")
        with redirect_stdout(io.StringIO()), self.assertRaises(SystemExit):
            route_decisions.main([self.dir, "--out", out])
        with open(out, encoding="utf-8") as f:
            self.assertEqual("keep", f.read())

    def test_unknown_units_are_refused(self):
        with self.assertRaises(ValueError):
            route_decisions.median_us(entry("forward", {}, 1.0, "furlongs/op"))


if __name__ == "__main__":
    unittest.main()
