#!/usr/bin/env python3
"""Side by side: spectral-peft's timings (from JMH) next to Hugging Face PEFT's FourierFT.

Two steps, run from the repository root:

    # 1. On the GPU machine (torch with CUDA; peft optional, no Java needed), time the peers:
    python3 bench/side_by_side.py measure --out peers.json [--reps 50] [--quick] [--device cuda|cpu]

    # 2. Anywhere (standard library only), build the comparison table:
    python3 bench/side_by_side.py table --jmh jmh.json --peers peers.json \
        [--memory memory.json] [--out table.md]

`measure` times, in float32 on the current CUDA device (CUDA events around each repetition, after
warm-up, median over the repetitions):
  - PEFT's `get_delta_weight` (a real FourierFT layer built with `get_peft_model`) for 768x768,
    4096x4096 and 4096x11008 (d_out x d_in) at n = 1000 and 10000, with its peak device memory;
  - a loop of `get_delta_weight` over 64 distinct adapted 4096x4096 layers (n = 1000);
  - the adapted layer's forward and the base `F.linear` alone at d = 4096 for T = 1, 16, 256, 4096;
  - floors: `torch.fft.irfft2` per shape, and the device-to-device copy bandwidth (1 GiB).
Without peft it falls back to an independent implementation of the same formula and labels the
source "formula". `--quick` uses fewer repetitions and skips n = 10000.

`--device cpu` times the same things in PyTorch on the CPU (wall clock around each repetition, all of
torch's threads), for comparing our CPU backend with PEFT on a machine without a GPU; there is no peak
memory and no cuFFT floor there, and the targets (which are for the GPU) are not judged. For the
comparison itself on the CPU, bench/cpu_side_by_side.py runs both sides in alternating rounds, each in
fresh processes and to a steady state (time_steady below), and reports the spread of the ratio.

`table` reads JMH's `-rf json` output (float32 rows of the backend matching the peers file's device:
cuda, or cpu for a CPU peers file), the peers file and optionally the Java side's memory.json, and
prints one markdown table of our time, the peer's time, their ratio, our time over the floor and
whether each target is met (plus a short memory table when memory.json is given). Missing entries
print "–" with a footnote saying why.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time

# --- what is compared -------------------------------------------------------------------------

SEED = 777  # PEFT's default random_loc_seed
SCALING = 150.0  # PEFT's default scaling
ADAPTER = "default"  # PEFT's default adapter name
SHAPES = ["768x768", "4096x4096", "4096x11008"]  # d_out x d_in
NS = [1000, 10000]
QUICK_NS = [1000]
BATCH_LAYERS = 64
D = 4096  # batch and forward layer size
FORWARD_N = 1000
TOKENS = [1, 16, 256, 4096]
FLOAT_BYTES = 4

# Inputs rotate over copies that together exceed this, several times an H100's (50 MB) or
# H200's (60 MB) L2, so a timed call does not find its inputs in L2.
ROTATE_BYTES = 256 << 20
MAX_COPIES = 128
COPY_BYTES = 1 << 30

# Targets (float32 medians).
TARGET_SHAPE, TARGET_N = "4096x4096", 1000
TARGET_PEER_OVER_OURS = 3.0
TARGET_OURS_OVER_FLOOR = 1.5
TARGET_BATCH = 5.0
TARGET_FORWARD_SMALL = 10.0  # at T <= 64
SMALL_T = 64

DASH = "–"
DEVICES = ("cuda", "cpu")


def parse_shape(shape):
    """'4096x11008' -> (4096, 11008), i.e. (d_out, d_in)."""
    d_out, d_in = shape.split("x")
    return int(d_out), int(d_in)


# Keys naming one peer measurement; `measure` records skips and failures under them and
# `table` looks its reasons up under the same keys.
def key_delta(shape, n):
    return f"delta_weight {shape} n={n}"


def key_irfft2(shape):
    return f"irfft2 {shape}"


def key_forward(tokens):
    return f"forward T={tokens}"


KEY_BATCH = "batch"
KEY_COPY = "copy"


def command_line(argv):
    return "python3 bench/side_by_side.py " + shlex.join(argv)


# =============================================================================================
# measure (torch is imported here only, so that `table` and the tests run without it)
# =============================================================================================

_START = time.monotonic()


def progress(message):
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


def copies_for(nbytes):
    """How many copies of an input of `nbytes` to rotate over (their total exceeds ROTATE_BYTES,
    capped at MAX_COPIES: tiny inputs rotate together with large weights anyway)."""
    return max(2, min(MAX_COPIES, ROTATE_BYTES // max(1, nbytes) + 1))


def summarize(times_ms):
    return {
        "ms": statistics.median(times_ms),
        "min_ms": min(times_ms),
        "max_ms": max(times_ms),
        "reps": len(times_ms),
    }


def time_gpu(torch, fn, reps, warmup):
    """Median GPU time of fn(i). The device is synchronized before each repetition so that every
    one starts idle and includes its launch latency, as a JMH call that synchronizes does."""
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    times = []
    for i in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn(warmup + i)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return summarize(times)


def time_cpu(fn, reps, warmup):
    """Median wall time of fn(i) on the CPU (torch's CPU operations are synchronous)."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(reps):
        start = time.perf_counter()
        fn(warmup + i)
        times.append((time.perf_counter() - start) * 1e3)
    return summarize(times)


# The warm-up and timing rule of bench/cpu_side_by_side.py; jmh/org/spectralpeft/bench/CpuSideBySide.java
# applies the same rule to our side (plus: the JIT compiler idle in the last windows).
STEADY_RULE = {
    "min_warmup_s": 3.0,  # warm up at least this long
    "max_warmup_s": 15.0,  # and at most this long (the result then says steady: false)
    "window_s": 0.5,  # warm-up windows last at least this long
    "window_calls": 3,  # and hold at least this many calls
    "tolerance": 0.03,  # steady: the last three windows' medians within 3 % of each other
    "min_time_s": 3.0,  # then time at least this long
    "min_reps": 10,  # and at least this many calls
}


def quantile(values, q):
    """The q-quantile (0 <= q <= 1) of values, interpolating linearly between the closest ranks."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


def time_steady(fn, rule=None, clock=time.perf_counter):
    """Wall time of fn(i) in steady state, by STEADY_RULE (or `rule`, which overrides some of its keys):
    warm-up windows until the last three windows' medians agree within the tolerance (after the minimum
    warm-up; at most the maximum), then timed calls, one clock reading around each. Returns the median
    ("ms") with p10, p90, min, max, the number of timed calls, and the warm-up's length, calls, window
    medians and whether it reached the steady state."""
    r = dict(STEADY_RULE, **(rule or {}))
    windows, calls, steady = [], 0, False
    start = clock()
    while True:
        times = []
        w0 = clock()
        while len(times) < r["window_calls"] or clock() - w0 < r["window_s"]:
            t0 = clock()
            fn(calls)
            times.append((clock() - t0) * 1e3)
            calls += 1
        windows.append(statistics.median(times))
        elapsed = clock() - start
        if elapsed >= r["min_warmup_s"] and len(windows) >= 3:
            last = windows[-3:]
            if max(last) <= min(last) * (1 + r["tolerance"]):
                steady = True
                break
        if elapsed >= r["max_warmup_s"]:
            break
    times = []
    t_start = clock()
    while len(times) < r["min_reps"] or clock() - t_start < r["min_time_s"]:
        t0 = clock()
        fn(calls + len(times))
        times.append((clock() - t0) * 1e3)
    return {
        "ms": statistics.median(times),
        "p10_ms": quantile(times, 0.1),
        "p90_ms": quantile(times, 0.9),
        "min_ms": min(times),
        "max_ms": max(times),
        "reps": len(times),
        "warmup_s": elapsed,
        "warmup_calls": calls,
        "windows_ms": windows,
        "steady": steady,
    }


def cpu_name():
    """The CPU's model name from /proc/cpuinfo (else the platform's), with the thread count."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def peak_bytes(torch, fn):
    """Peak device bytes allocated while fn() runs, above what was allocated before."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    del out
    return peak


_RANDPERM_CACHE = {}


class _MemoRandperm:
    """While active, torch.randperm with a seeded CPU generator returns a cached result for the
    same arguments and seed. Building 64 adapted layers of one shape otherwise repeats the same
    16.7M-element permutation (about a second of CPU each); the indices are identical either way."""

    def __init__(self, torch):
        self.torch = torch
        self.original = torch.randperm
        self.cache = _RANDPERM_CACHE

    def __enter__(self):
        original, cache = self.original, self.cache

        def randperm(*args, **kwargs):
            generator = kwargs.get("generator")
            if generator is None or generator.device.type != "cpu":
                return original(*args, **kwargs)
            rest = tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "generator"))
            key = (args, rest, generator.initial_seed())
            if key not in cache:
                cache[key] = original(*args, **kwargs)
            return cache[key].clone()

        self.torch.randperm = randperm
        return self

    def __exit__(self, *exc):
        self.torch.randperm = self.original
        return False


def build_peft_layers(torch, peft, d_out, d_in, n, count, device):
    """`count` real PEFT FourierFT layers (d_out x d_in, n coefficients) with random spectra.
    Returns (model, layers); keep the model alive while the layers are used."""
    nn = torch.nn

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(d_in, d_out, device=device) for _ in range(count))

        def forward(self, x):
            return [layer(x) for layer in self.layers]

    config = peft.FourierFTConfig(
        target_modules=[f"layers.{i}" for i in range(count)],
        n_frequency=n,
        scaling=SCALING,
        random_loc_seed=SEED,
        init_weights=False,
    )
    with _MemoRandperm(torch):
        model = peft.get_peft_model(Stack(), config).to(device)
    layers = [m for m in model.modules() if hasattr(m, "fourierft_spectrum") and hasattr(m, "get_delta_weight")]
    if len(layers) != count:
        raise RuntimeError(f"expected {count} FourierFT layers, found {len(layers)}")
    # Random spectra whatever the PEFT version's initialization (zeros when init_weights is true).
    generator = torch.Generator(device=device).manual_seed(1234)
    with torch.no_grad():
        for layer in layers:
            layer.fourierft_spectrum[ADAPTER].normal_(generator=generator)
    return model, layers


class FormulaLayer:
    """Fallback peer when peft cannot be imported: the same ΔW formula written independently,
    ΔW = Re(IFFT2(dense spectrum)) * scaling, with the coefficients at randperm(seed)[:n]."""

    def __init__(self, torch, d_out, d_in, n, device, indices_cache):
        self.torch = torch
        self.d_out, self.d_in = d_out, d_in
        key = (d_out, d_in, n)
        if key not in indices_cache:
            flat = torch.randperm(d_out * d_in, generator=torch.Generator().manual_seed(SEED))[:n]
            indices_cache[key] = ((flat // d_in).to(device), (flat % d_in).to(device))
        self.rows, self.cols = indices_cache[key]
        self.spectrum = torch.randn(n, device=device)
        bound = 1.0 / math.sqrt(d_in)
        self.weight = torch.empty(d_out, d_in, device=device).uniform_(-bound, bound)
        self.bias = torch.empty(d_out, device=device).uniform_(-bound, bound)

    def get_delta_weight(self, adapter=ADAPTER):
        torch = self.torch
        dense = torch.zeros(self.d_out, self.d_in, device=self.spectrum.device)
        dense[self.rows, self.cols] = self.spectrum
        return torch.fft.ifft2(dense).real * SCALING

    def __call__(self, x):
        F = self.torch.nn.functional
        return F.linear(x, self.weight, self.bias) + F.linear(x, self.get_delta_weight())


def build_layers(torch, peft, d_out, d_in, n, count, device, indices_cache):
    if peft is not None:
        return build_peft_layers(torch, peft, d_out, d_in, n, count, device)
    return None, [FormulaLayer(torch, d_out, d_in, n, device, indices_cache) for _ in range(count)]


def base_params(layer):
    """The base linear's weight and bias of a PEFT layer or a FormulaLayer."""
    if hasattr(layer, "get_base_layer"):
        base = layer.get_base_layer()
        return base.weight, base.bias
    return layer.weight, layer.bias


def measure(args, argv):
    device = args.device
    on_gpu = device == "cuda"
    try:
        import torch
    except ImportError as e:
        sys.exit(f"measure needs torch{' with CUDA' if on_gpu else ''}: {e}")
    if on_gpu and not torch.cuda.is_available():
        sys.exit("measure needs a CUDA device (torch.cuda.is_available() is false); --device cpu times on the CPU")
    try:
        import peft

        source, peft_version, peft_problem = "peft", peft.__version__, None
    except Exception as e:  # noqa: BLE001 - any import failure means: use the formula
        peft, source, peft_version, peft_problem = None, "formula", None, f"{type(e).__name__}: {e}"
        progress(f"peft not importable ({peft_problem}); timing the formula instead")

    reps = min(args.reps, 10) if args.quick else args.reps
    warmup = 2 if args.quick else 5
    ns = QUICK_NS if args.quick else NS
    timed = (lambda fn, r, w: time_gpu(torch, fn, r, w)) if on_gpu else time_cpu
    out = {
        "command": command_line(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device_type": device,
        "device": torch.cuda.get_device_name(0) if on_gpu else cpu_name(),
        "device_memory_bytes": torch.cuda.get_device_properties(0).total_memory if on_gpu else None,
        "torch_threads": None if on_gpu else torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "peft": peft_version,
        "peft_import_error": peft_problem,
        "source": source,
        "dtype": "float32",
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32) if on_gpu else None,
        "grad_enabled": False,
        "reps": reps,
        "warmup": warmup,
        "quick": args.quick,
        "seed": SEED,
        "scaling": SCALING,
        "copy": None,
        "irfft2": [],
        "delta_weight": [],
        "batch": None,
        "forward": [],
        "skipped": {},
        "errors": {},
    }

    def attempt(key, what):
        """Runs one measurement; a failure is recorded and the rest go on."""
        try:
            with torch.no_grad():
                what()
        except Exception as e:  # noqa: BLE001
            out["errors"][key] = f"{type(e).__name__}: {e}"
            progress(f"{key} failed: {out['errors'][key]}")
        if on_gpu:
            torch.cuda.empty_cache()

    # Copy bandwidth, counted as read + write bytes.
    def copy():
        src = torch.empty(COPY_BYTES // FLOAT_BYTES, device=device).uniform_()
        dst = torch.empty_like(src)
        t = timed(lambda i: dst.copy_(src), reps, warmup)
        out["copy"] = dict(t, bytes=COPY_BYTES, gbps=2 * COPY_BYTES / (t["ms"] * 1e-3) / 1e9)
        progress(f"copy {COPY_BYTES / 2**30:g} GiB: {t['ms']:.3f} ms, {out['copy']['gbps']:.0f} GB/s")

    progress(f"device {out['device']}, torch {out['torch']}, source {source}, reps {reps}")
    attempt(KEY_COPY, copy)

    # torch irfft2 per shape: a fallback floor (PyTorch may copy a C2R input before transforming).
    for shape in SHAPES:
        d_out, d_in = parse_shape(shape)

        def irfft2(shape=shape, d_out=d_out, d_in=d_in):
            size = d_out * (d_in // 2 + 1) * 8
            inputs = [torch.randn(d_out, d_in // 2 + 1, dtype=torch.complex64, device=device)
                      for _ in range(copies_for(size))]
            t = timed(lambda i: torch.fft.irfft2(inputs[i % len(inputs)], s=(d_out, d_in)), reps, warmup)
            out["irfft2"].append(dict(t, shape=shape, copies=len(inputs)))
            progress(f"irfft2 {shape}: {t['ms']:.3f} ms")

        attempt(key_irfft2(shape), irfft2)

    # get_delta_weight per shape and n. Its inputs are the spectrum and indices (kilobytes) and
    # its output is allocated per call, so there is nothing to rotate.
    indices_cache = {}
    for shape in SHAPES:
        d_out, d_in = parse_shape(shape)
        for n in NS:
            if n not in ns:
                out["skipped"][key_delta(shape, n)] = "skipped with --quick"
                continue

            def delta(shape=shape, d_out=d_out, d_in=d_in, n=n):
                model, layers = build_layers(torch, peft, d_out, d_in, n, 1, device, indices_cache)
                layer = layers[0]
                layer.get_delta_weight(ADAPTER)  # first call (cuFFT plan) outside the peak
                peak = peak_bytes(torch, lambda: layer.get_delta_weight(ADAPTER)) if on_gpu else None
                t = timed(lambda i: layer.get_delta_weight(ADAPTER), reps, warmup)
                out["delta_weight"].append(dict(t, shape=shape, n=n, peak_bytes=peak,
                                                output_bytes=d_out * d_in * FLOAT_BYTES))
                progress(f"get_delta_weight {shape} n={n}: {t['ms']:.3f} ms"
                         + (f", peak {peak / 1e6:.1f} MB" if peak is not None else ""))

            attempt(key_delta(shape, n), delta)

    # 64 distinct 4096x4096 layers: the batch loop, then the forward (rotating over them).
    stack = {}

    def build_stack():
        progress(f"building {BATCH_LAYERS} adapted {D}x{D} layers")
        stack["model"], stack["layers"] = build_layers(torch, peft, D, D, FORWARD_N, BATCH_LAYERS, device,
                                                       indices_cache)

    build_key = f"build {BATCH_LAYERS} layers"
    attempt(build_key, build_stack)
    if "layers" in stack:
        layers = stack["layers"]

        def batch():
            def loop(i):
                for layer in layers:
                    layer.get_delta_weight(ADAPTER)

            t = timed(loop, reps, max(1, warmup // 2))
            out["batch"] = dict(t, layers=BATCH_LAYERS, d=D, n=FORWARD_N)
            progress(f"get_delta_weight loop over {BATCH_LAYERS} layers: {t['ms']:.2f} ms")

        attempt(KEY_BATCH, batch)

        F = torch.nn.functional
        for tokens in TOKENS:
            def forward(tokens=tokens):
                xs = [torch.randn(tokens, D, device=device) for _ in range(copies_for(tokens * D * FLOAT_BYTES))]
                params = [base_params(layer) for layer in layers]

                def full(i):
                    layers[i % len(layers)](xs[i % len(xs)])

                def base(i):
                    w, b = params[i % len(params)]
                    F.linear(xs[i % len(xs)], w, b)

                full_t = timed(full, reps, warmup)
                base_t = timed(base, reps, warmup)
                out["forward"].append({"tokens": tokens, "d": D, "n": FORWARD_N, "x_copies": len(xs),
                                       "layers_rotated": len(layers), "full": full_t, "base": base_t})
                progress(f"forward T={tokens}: full {full_t['ms']:.3f} ms, base {base_t['ms']:.3f} ms")

            attempt(key_forward(tokens), forward)
        stack.clear()
        del layers
    else:
        for key in [KEY_BATCH] + [key_forward(t) for t in TOKENS]:
            out["errors"].setdefault(key, out["errors"].get(build_key, "layers not built"))

    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    progress(f"wrote {args.out} ({len(out['errors'])} failed, {len(out['skipped'])} skipped)")


# =============================================================================================
# table (standard library only)
# =============================================================================================

# JMH score units to milliseconds per operation; throughput units are inverted.
_TIME_UNITS = {"s/op": 1e3, "ms/op": 1.0, "us/op": 1e-3, "µs/op": 1e-3, "ns/op": 1e-6}
_RATE_UNITS = {"ops/s": 1e3, "ops/ms": 1.0, "ops/us": 1e-3, "ops/µs": 1e-3, "ops/ns": 1e-6}


def jmh_median_ms(entry):
    """The median (percentile 50.0, else the score) of one JMH result, in ms per operation."""
    metric = entry.get("primaryMetric") or {}
    unit = metric.get("scoreUnit", "")
    value = (metric.get("scorePercentiles") or {}).get("50.0", metric.get("score"))
    if value is None:
        return None
    value = float(value)
    if unit in _TIME_UNITS:
        return value * _TIME_UNITS[unit]
    if unit in _RATE_UNITS and value > 0:
        return _RATE_UNITS[unit] / value
    raise ValueError(f"unknown JMH score unit {unit!r} in {entry.get('benchmark')}")


class Jmh:
    def __init__(self, entries):
        self.entries = entries or []

    def find(self, benchmark, **params):
        """The first result of `benchmark` (its class.method) whose params include `params`."""
        for entry in self.entries:
            name = entry.get("benchmark", "")
            if name != benchmark and not name.endswith("." + benchmark):
                continue
            have = entry.get("params") or {}
            if all(self._matches(have, k, v) for k, v in params.items()):
                return entry
        return None

    @staticmethod
    def _matches(have, key, value):
        if key in have:
            return str(have[key]) == str(value)
        # A result without a dtype param comes from a benchmark that only ran float32.
        return key == "dtype" and value == "float32"

    def ms(self, benchmark, **params):
        entry = self.find(benchmark, **params)
        return None if entry is None else jmh_median_ms(entry)

    def describe(self, benchmark, **params):
        return benchmark + " " + ", ".join(f"{k}={v}" for k, v in params.items())


class Peers:
    def __init__(self, data):
        self.data = data or {}
        self.label = "PEFT" if self.data.get("source", "peft") == "peft" else "formula"
        # Which of our backends to compare with: the device the peers ran on (files from before
        # --device existed are GPU runs).
        self.backend = self.data.get("device_type", "cuda")
        if self.backend not in DEVICES:
            raise ValueError(f"peers file: unknown device_type {self.backend!r}")

    def _find(self, section, **match):
        for entry in self.data.get(section) or []:
            if all(str(entry.get(k)) == str(v) for k, v in match.items()):
                return entry
        return None

    def delta(self, shape, n):
        return self._find("delta_weight", shape=shape, n=n)

    def irfft2_ms(self, shape):
        entry = self._find("irfft2", shape=shape)
        return None if entry is None else entry["ms"]

    def batch_ms(self):
        entry = self.data.get("batch")
        return None if not entry else entry["ms"]

    def forward(self, tokens):
        return self._find("forward", tokens=tokens)

    def copy_gbps(self):
        entry = self.data.get("copy")
        return None if not entry else entry.get("gbps")

    def why_missing(self, key):
        if key in (self.data.get("skipped") or {}):
            return f"{self.label}: {key} not measured ({self.data['skipped'][key]})"
        if key in (self.data.get("errors") or {}):
            return f"{self.label}: {key} failed ({self.data['errors'][key]})"
        if not self.data:
            return "no peers data"
        return f"no {self.label} measurement for {key} in the peers file"


class Row:
    """One line of the table. Values are ms (None when missing, with the reason in why[field])."""

    def __init__(self, case):
        self.case = case
        self.ours = self.peer = self.floor = None
        self.floor_note = None  # footnote on the floor's source
        self.has_floor = True  # False: the floor columns do not apply (left empty)
        self.more = ""
        self.target = ""
        self.checks = []  # one bool or None per target condition
        self.why = {}

    @property
    def peer_over_ours(self):
        return _ratio(self.peer, self.ours)

    @property
    def ours_over_floor(self):
        return _ratio(self.ours, self.floor)

    @property
    def met(self):
        """'yes', 'no', '–' (a value needed is missing) or '' (no target)."""
        if not self.checks:
            return ""
        if any(c is False for c in self.checks):
            return "no"
        if any(c is None for c in self.checks):
            return DASH
        return "yes"


def _ratio(a, b):
    if a is None or b is None or b <= 0 or a <= 0:
        return None
    return a / b


def _check(value, ok):
    return None if value is None else bool(ok(value))


def build_rows(jmh, peers):
    """The table's rows from a Jmh and a Peers."""
    rows = []
    bw = peers.copy_gbps()
    backend = peers.backend
    judged = backend == "cuda"  # the targets are GPU targets

    def floor_c2r(shape):
        """(ms, note): JMH's bare C2R if present, else torch irfft2 (a looser fallback)."""
        ms = jmh.ms("FloorBenchmark.bareC2R", backend=backend, shape=shape)
        if ms is not None:
            return ms, None
        ms = peers.irfft2_ms(shape)
        if ms is not None:
            if not judged:
                return ms, "floor is torch irfft2 on the same CPU (PyTorch's own real inverse FFT of the half spectrum)"
            return ms, ("floor is torch irfft2 (no JMH FloorBenchmark.bareC2R result); PyTorch may copy "
                        "the C2R input first, so it is a looser floor than a bare cuFFT C2R")
        return None, None

    # materialize
    for shape in SHAPES:
        d_out, d_in = parse_shape(shape)
        for n in NS:
            row = Row(f"materialize {shape} n={n}")
            params = dict(backend=backend, shape=shape, n=n, dtype="float32")
            row.ours = jmh.ms("MaterializeBenchmark.materialize", **params)
            if row.ours is None:
                row.why["ours"] = "no JMH result: " + jmh.describe("MaterializeBenchmark.materialize", **params)
            entry = peers.delta(shape, n)
            row.peer = None if entry is None else entry["ms"]
            if row.peer is None:
                row.why["peer"] = peers.why_missing(key_delta(shape, n))
            row.floor, row.floor_note = floor_c2r(shape)
            if row.floor is None:
                row.why["floor"] = f"no C2R floor for {shape} (neither JMH FloorBenchmark.bareC2R nor torch irfft2)"
            copy_ms = jmh.ms("FloorBenchmark.deviceCopy", backend=backend, shape=shape)
            if copy_ms is not None:
                row.more = f"copy floor {fmt_ms(copy_ms)} ms"
            elif bw:
                copy_ms = 2 * d_out * d_in * FLOAT_BYTES / (bw * 1e9) * 1e3
                row.more = f"copy floor {fmt_ms(copy_ms)} ms (from {bw:.0f} GB/s)"
            if judged and (shape, n) == (TARGET_SHAPE, TARGET_N):
                row.target = (f"{peers.label}/ours ≥ {TARGET_PEER_OVER_OURS:g}, "
                              f"ours/floor ≤ {TARGET_OURS_OVER_FLOOR:g}")
                row.checks = [_check(row.peer_over_ours, lambda r: r >= TARGET_PEER_OVER_OURS),
                              _check(row.ours_over_floor, lambda r: r <= TARGET_OURS_OVER_FLOOR)]
            rows.append(row)

    # a batch of 64 layers
    row = Row(f"materialize {BATCH_LAYERS} layers {D}x{D} n={FORWARD_N}")
    params = dict(backend=backend, layers=BATCH_LAYERS, d=D, n=FORWARD_N)
    row.ours = jmh.ms("BatchMaterializeBenchmark.materializeBatch", **params)
    if row.ours is None:
        row.why["ours"] = "no JMH result: " + jmh.describe("BatchMaterializeBenchmark.materializeBatch", **params)
    row.peer = peers.batch_ms()
    if row.peer is None:
        row.why["peer"] = peers.why_missing(KEY_BATCH)
    single, note = floor_c2r(f"{D}x{D}")
    if single is not None:
        row.floor = BATCH_LAYERS * single
        row.floor_note = note
        row.more = f"floor = {BATCH_LAYERS} × one {D}x{D} C2R"
    else:
        row.why["floor"] = f"no C2R floor for {D}x{D}"
    if judged:
        row.target = f"{peers.label}/ours ≥ {TARGET_BATCH:g}"
        row.checks = [_check(row.peer_over_ours, lambda r: r >= TARGET_BATCH)]
    rows.append(row)

    # unmaterialized forward
    for tokens in TOKENS:
        row = Row(f"forward T={tokens} d={D} n={FORWARD_N}")
        row.has_floor = False
        params = dict(backend=backend, tokens=tokens, d=D, n=FORWARD_N, dtype="float32")
        row.ours = jmh.ms("ForwardBackwardBenchmark.forward", **params)
        if row.ours is None:
            row.why["ours"] = "no JMH result: " + jmh.describe("ForwardBackwardBenchmark.forward", **params)
        entry = peers.forward(tokens)
        if entry is None:
            row.why["peer"] = peers.why_missing(key_forward(tokens))
        else:
            full, base = entry["full"]["ms"], entry["base"]["ms"]
            if full > base:
                row.peer = full - base
            else:
                row.why["peer"] = f"{peers.label} full layer not slower than the base alone at T={tokens} (noise)"
            more = f"full {fmt_ms(full)}, base {fmt_ms(base)}"
            if row.ours is not None:
                more += f", full/(base+ours) {fmt_ratio(full / (base + row.ours))}"
            row.more = more
        if judged:
            small = tokens <= SMALL_T
            row.target = f"{peers.label}/ours {'≥ ' + format(TARGET_FORWARD_SMALL, 'g') if small else '> 1'}"
            row.checks = [_check(row.peer_over_ours,
                                 (lambda r: r >= TARGET_FORWARD_SMALL) if small else (lambda r: r > 1))]
        rows.append(row)
    return rows


def build_memory_rows(memory, peers):
    """(case, ours, peer, bound, why) per float32 entry of memory.json; bytes, None when missing."""
    rows = []
    for entry in (memory or {}).get("entries") or []:
        if entry.get("dtype", "float32") != "float32":
            continue
        op, shape, n = entry.get("op", "?"), entry.get("shape", "?"), entry.get("n", "?")
        ours = entry.get("peak_bytes")
        parts = [entry.get(k) for k in ("output_bytes", "half_spectrum_bytes", "workspace_bytes")]
        bound = None if any(p is None for p in parts) else sum(parts)
        peer_entry = peers.delta(shape, n) if op == "materialize" else None
        peer = None if peer_entry is None else peer_entry.get("peak_bytes")
        why = {}
        if ours is None:
            why["ours"] = "no peak_bytes in memory.json"
        if peer is None:
            why["peer"] = (peers.why_missing(key_delta(shape, n)) if op == "materialize"
                           else f"no {peers.label} counterpart for {op}")
        if bound is None:
            why["bound"] = "memory.json lacks output, half-spectrum or workspace bytes"
        rows.append({"case": f"{op} {shape} n={n}", "ours": ours, "peer": peer, "bound": bound, "why": why})
    return rows


# --- rendering --------------------------------------------------------------------------------

def fmt_ms(x):
    """Three significant digits, no exponent."""
    if x is None:
        return None
    if x == 0:
        return "0"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.{2 - math.floor(math.log10(x))}f}"


def fmt_ratio(r):
    if r is None:
        return None
    return f"{r:.0f}" if r >= 100 else f"{r:.1f}" if r >= 10 else f"{r:.2f}"


class Footnotes:
    def __init__(self):
        self.items = []

    def ref(self, text):
        if text not in self.items:
            self.items.append(text)
        return f"[{self.items.index(text) + 1}]"

    def render(self):
        return [f"[{i}] {text}" for i, text in enumerate(self.items, 1)]


def _cell(value, reason, notes):
    if value is not None:
        return value
    return f"{DASH} {notes.ref(reason)}" if reason else DASH


def _dependent_reason(row, *fields):
    """A ratio is missing because one of its inputs is: point at that input's footnote."""
    for f in fields:
        if f in row.why:
            return row.why[f]
    return None


def render(rows, memory_rows, header_lines, peer_label, notes=None, backend="cuda"):
    notes = notes or Footnotes()
    out = list(header_lines) + [""]
    out.append(f"| case | ours ms | {peer_label} ms | {peer_label}/ours | floor ms | ours/floor | more | target | met? |")
    out.append("|---|---:|---:|---:|---:|---:|---|---|---|")
    for row in rows:
        floor = fmt_ms(row.floor)
        if floor is not None and row.floor_note:
            floor += " " + notes.ref(row.floor_note)
        cells = [
            row.case,
            _cell(fmt_ms(row.ours), row.why.get("ours"), notes),
            _cell(fmt_ms(row.peer), row.why.get("peer"), notes),
            _cell(fmt_ratio(row.peer_over_ours), _dependent_reason(row, "peer", "ours"), notes),
            _cell(floor, row.why.get("floor"), notes) if row.has_floor else "",
            (_cell(fmt_ratio(row.ours_over_floor), _dependent_reason(row, "ours", "floor"), notes)
             if row.has_floor else ""),
            row.more,
            row.target,
            row.met,
        ]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    if backend == "cuda":
        out.append("- floor: a bare cuFFT C2R 2-D transform of d_out × (d_in/2+1) into d_out × d_in (JMH "
                   "FloorBenchmark.bareC2R; torch irfft2 where a footnote says so). copy floor: a device-to-device "
                   "copy of the output's size (JMH FloorBenchmark.deviceCopy, else 2 × output bytes, read and "
                   "write, at the peers' measured copy bandwidth).")
    else:
        out.append("- floor: torch's irfft2 of d_out × (d_in/2+1) into d_out × d_in on the same CPU. copy floor: "
                   "2 × output bytes (read and write) at the memory-to-memory copy bandwidth torch measured.")
        out.append("- CPU run: our CPU backend (pure Java, JTransforms) against PEFT on PyTorch's CPU backend, "
                   "both with every core; the targets are GPU targets and are not judged here.")
    out.append(f"- forward rows: {peer_label} ms is the adapter part, the adapted layer's forward minus the base "
               f"F.linear alone, which is what our unmaterialized forward (y += x·ΔWᵀ) replaces; the base matmul "
               f"is the framework's in both cases, so full/(base+ours) compares whole layers.")
    out.append(f"- met?: \"{DASH}\" means a value the target needs is missing; empty means no target.")
    if memory_rows:
        out.append("")
        out.append(f"| peak device memory | ours MB | {peer_label} get_delta_weight MB | {peer_label}/ours "
                   f"| output + half spectrum + workspace MB | ours ≤ that? |")
        out.append("|---|---:|---:|---:|---:|---|")
        for m in memory_rows:
            ours, peer, bound = m["ours"], m["peer"], m["bound"]
            within = DASH if ours is None or bound is None else ("yes" if ours <= bound else "no")
            cells = [
                m["case"],
                _cell(fmt_ms(None if ours is None else ours / 1e6), m["why"].get("ours"), notes),
                _cell(fmt_ms(None if peer is None else peer / 1e6), m["why"].get("peer"), notes),
                _cell(fmt_ratio(_ratio(peer, ours)), m["why"].get("peer") or m["why"].get("ours"), notes),
                _cell(fmt_ms(None if bound is None else bound / 1e6), m["why"].get("bound"), notes),
                within,
            ]
            out.append("| " + " | ".join(cells) + " |")
    if notes.items:
        out.append("")
        out.extend(notes.render())
    return "\n".join(out) + "\n"


def header(jmh_path, jmh_entries, peers, memory, argv):
    data = peers.data
    where = "GPU" if peers.backend == "cuda" else "CPU"
    lines = [f"## spectral-peft vs {peers.label} FourierFT ({where}, float32, medians)", ""]
    lines.append(f"- device: {data.get('device', 'unknown')} (peers file)"
                 + (f", torch threads {data['torch_threads']}" if data.get("torch_threads") else ""))
    if memory and memory.get("device") and memory.get("device") != data.get("device"):
        lines.append(f"- memory.json device: {memory['device']} (differs from the peers file's)")
    versions = f"- torch {data.get('torch', '?')}" + (f" (CUDA {data.get('cuda', '?')})" if peers.backend == "cuda" else "")
    if peers.label == "PEFT":
        versions += f", peft {data.get('peft', '?')} (peer: PEFT's FourierFT layer, get_delta_weight and forward)"
    else:
        reason = data.get("peft_import_error") or "peft not importable"
        versions += f"; peer is the ΔW formula in torch, not PEFT ({reason})"
    lines.append(versions)
    jmh_info = f"- JMH results: {jmh_path}"
    try:
        mtime = datetime.datetime.fromtimestamp(os.path.getmtime(jmh_path), datetime.timezone.utc)
        jmh_info += f", file dated {mtime:%Y-%m-%d %H:%M} UTC"
    except OSError:
        pass
    if jmh_entries:
        first = jmh_entries[0]
        for key, label in (("jmhVersion", "JMH"), ("jdkVersion", "JDK")):
            if first.get(key):
                jmh_info += f", {label} {first[key]}"
    lines.append(jmh_info)
    if data.get("command"):
        lines.append(f"- peers: `{data['command']}`" + (f" at {data['date']}" if data.get("date") else ""))
    lines.append(f"- table: `{command_line(argv)}`")
    return lines


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"cannot read {what} {path}: {e}")


def table(args, argv):
    jmh_entries = load_json(args.jmh, "JMH results")
    if not isinstance(jmh_entries, list):
        sys.exit(f"{args.jmh}: expected JMH's -rf json output (a list of results)")
    try:
        peers = Peers(load_json(args.peers, "peers file"))
    except ValueError as e:
        sys.exit(f"{args.peers}: {e}")
    memory = load_json(args.memory, "memory file") if args.memory else None
    try:
        rows = build_rows(Jmh(jmh_entries), peers)
    except ValueError as e:
        sys.exit(f"{args.jmh}: {e}")
    memory_rows = build_memory_rows(memory, peers) if memory is not None else []
    text = render(rows, memory_rows, header(args.jmh, jmh_entries, peers, memory, argv), peers.label,
                  backend=peers.backend)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    return text


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="time PEFT FourierFT and the floors on the GPU (needs torch + CUDA)")
    m.add_argument("--out", required=True, help="peers JSON to write")
    m.add_argument("--device", choices=DEVICES, default="cuda",
                   help="where to time the peers: cuda (default) or cpu (compared with our CPU backend)")
    m.add_argument("--reps", type=int, default=50, help="timed repetitions per measurement (default 50)")
    m.add_argument("--quick", action="store_true", help="at most 10 repetitions, and skip n=10000")
    t = sub.add_parser("table", help="build the markdown table (standard library only)")
    t.add_argument("--jmh", required=True, help="JMH -rf json results")
    t.add_argument("--peers", required=True, help="the JSON written by measure")
    t.add_argument("--memory", help="memory.json from the Java side (optional)")
    t.add_argument("--out", help="also write the table here")
    args = parser.parse_args(argv)
    if args.command == "measure":
        if args.reps < 1:
            parser.error("--reps must be at least 1")
        measure(args, argv)
    else:
        table(args, argv)


if __name__ == "__main__":
    main()
