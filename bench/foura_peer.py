#!/usr/bin/env python3
"""FouRA side by side: spectral-peft's FouRABenchmark (JMH) next to the PyTorch composition users write.

    # 1. Time the peer (torch; CPU or CUDA), writing a JSON file:
    python3 bench/foura_peer.py measure --device cpu --out foura-peer.json [--reps 20] [--rounds 3]

    # 2. The table (standard library only):
    python3 bench/foura_peer.py table --jmh jmh.json --peers foura-peer.json [--out table.md]

The peer computes DESIGN.md's FouRA (unitary DFT or orthonormal DCT-II, NONE gate, alpha = 1) per call the
way the unofficial FouRA code is shaped: the transform of x, complex low-rank matmuls, the gate, the inverse
transform of the result.
  - `fft`: x -> torch.fft.fft (ortho) -> @ A^T -> gate -> @ B^T -> torch.fft.ifft (ortho) -> real part. It
    computes exactly our function (checked below against a direct evaluation before timing).
  - `rfft`: the same with torch.fft.rfft / irfft on the half spectrum (A and B act on d/2+1 bins), the
    cheaper shape the unofficial code uses; a different function of the same cost class, timed only.
  - DCT: the orthonormal DCT-II as a d x d matrix product on each side (torch has no DCT).
Rows: forward (y += adapter(x)) and forward+backward (autograd: dL/dA, dL/dB and dL/dx for L = <y, g>; our
`trainingStep` rows, which also refold the factors from the updated A and B, are set beside the peer's
forward+backward),
d = 4096, r = 16 and 64, T = 1, 16, 256, 4096. Times are medians over `--reps` calls after warm-up,
repeated over `--rounds` rounds; the table reports the median and the spread (min-max over rounds) of each.
"""

import json
import math
import statistics
import sys
import time

from peer_timing import run, timed

D = 4096
RANKS = [16, 64]
TOKENS = [1, 16, 256, 4096]
TRANSFORMS = ["DFT", "DCT"]


def key(transform, rank, tokens, op):
    return f"{op} {transform} r={rank} T={tokens}"


def dct_matrix(torch, d, device):
    k = torch.arange(d, dtype=torch.float64, device=device).unsqueeze(1)
    j = torch.arange(d, dtype=torch.float64, device=device).unsqueeze(0)
    c = torch.cos(math.pi * (2 * j + 1) * k / (2 * d)) * math.sqrt(2.0 / d)
    c[0] /= math.sqrt(2.0)
    return c.float()


def make_forward(torch, transform, shape, a, b, c_mat):
    """y_delta(x) as the composition: shape is 'fft' or 'rfft' for the DFT."""
    if transform == "DCT":
        return lambda x: ((x @ c_mat.T) @ a.T) @ b.T @ c_mat
    if shape == "fft":
        ac, bc = a.to(torch.complex64), b.to(torch.complex64)
        return lambda x: torch.fft.ifft((torch.fft.fft(x, norm="ortho") @ ac.T) @ bc.T, norm="ortho").real
    ah, bh = a[:, : D // 2 + 1].to(torch.complex64), b[: D // 2 + 1].to(torch.complex64)
    return lambda x: torch.fft.irfft((torch.fft.rfft(x, norm="ortho") @ ah.T) @ bh.T, n=D, norm="ortho")


def check_fft_matches_definition(torch):
    """The `fft` composition is DESIGN.md's DFT FouRA: compare with y = Re(F^-1 B A F x) on a small case."""
    d, r = 12, 3
    g = torch.Generator().manual_seed(1)
    a, b, x = torch.randn(r, d, generator=g), torch.randn(d, r, generator=g), torch.randn(2, d, generator=g)
    f = torch.fft.fft(torch.eye(d, dtype=torch.complex128), norm="ortho")  # unitary DFT matrix
    expected = (torch.linalg.inv(f) @ b.to(torch.complex128) @ a.to(torch.complex128) @ f @ x.T.to(torch.complex128)).real.T
    ac, bc = a.to(torch.complex64), b.to(torch.complex64)
    got = torch.fft.ifft((torch.fft.fft(x, norm="ortho") @ ac.T) @ bc.T, norm="ortho").real
    err = float((got.double() - expected).norm() / expected.norm())
    if err > 1e-5:
        raise SystemExit(f"the fft composition is not FouRA's DFT definition: relative error {err}")


def measure(args):
    import torch

    torch.manual_seed(0)
    check_fft_matches_definition(torch)
    device = args.device
    results = {}
    c_mat = dct_matrix(torch, D, device)
    for transform in TRANSFORMS:
        for rank in RANKS:
            a = torch.randn(rank, D, device=device)
            b = torch.randn(D, rank, device=device)
            for tokens in TOKENS:
                x = torch.randn(tokens, D, device=device)
                y = torch.randn(tokens, D, device=device)
                g = torch.randn(tokens, D, device=device)
                shapes = ["fft", "rfft"] if transform == "DFT" else ["matrix"]
                for shape in shapes:
                    f = make_forward(torch, transform, shape, a, b, c_mat)

                    def forward():
                        with torch.no_grad():
                            y.add_(f(x))

                    pa = a.clone().requires_grad_(True)
                    pb = b.clone().requires_grad_(True)
                    px = x.clone().requires_grad_(True)
                    fg = make_forward(torch, transform, shape, pa, pb, c_mat)

                    def forward_backward():
                        out = y + fg(px)
                        (out * g).sum().backward()
                        pa.grad = pb.grad = px.grad = None

                    for op, fn in (("forward", forward), ("forwardBackward", forward_backward)):
                        reps = args.reps if tokens < 4096 else max(3, args.reps // 4)
                        rounds = [timed(torch, device, fn, reps, args.warmup) for _ in range(args.rounds)]
                        k = key(transform, rank, tokens, op) + ("" if shape == "matrix" else f" {shape}")
                        results[k] = {"ms": statistics.median(rounds), "min_ms": min(rounds), "max_ms": max(rounds)}
                        print(f"{k}: {results[k]['ms']:.3f} ms", file=sys.stderr, flush=True)
    meta = {"device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "reps": args.reps, "rounds": args.rounds, "date": time.strftime("%Y-%m-%d")}
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump({"meta": meta, "results": results}, out, indent=1)


def jmh_rows(path):
    """(transform, rank, tokens, op) -> (median ms, backend) from JMH's json (SampleTime, us)."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for r in json.load(f):
            if not r["benchmark"].endswith(("FouRABenchmark.forward", "FouRABenchmark.forwardBackward",
                                            "FouRABenchmark.trainingStep")):
                continue
            p = r["params"]
            op = r["benchmark"].rsplit(".", 1)[1]
            median_us = r["primaryMetric"]["scorePercentiles"]["50.0"]
            rows[(p["transform"], int(p["rank"]), int(p["tokens"]), op)] = (median_us / 1e3, p["backend"])
    return rows


def table(args):
    with open(args.peers, encoding="utf-8") as f:
        peers = json.load(f)
    ours = jmh_rows(args.jmh)
    meta = peers["meta"]
    lines = [f"FouRA, d = {D}, NONE gate, float32; peer: torch {meta['torch']} on {meta['device']} "
             f"({meta['threads']} threads), {meta['rounds']} rounds of {meta['reps']} calls, {meta['date']}.", "",
             "| op | transform | r | T | ours (ms) | peer fft / matrix (ms) | peer rfft (ms) | peer / ours |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (transform, rank, tokens, op), (ms, backend) in sorted(ours.items()):
        # a training step (our refold + forward + backward) against the peer's forward + backward, which has no fold
        base = key(transform, rank, tokens, "forwardBackward" if op == "trainingStep" else op)
        exact = peers["results"].get(base + (" fft" if transform == "DFT" else ""))
        half = peers["results"].get(base + " rfft")
        best = min(v["ms"] for v in (exact, half) if v) if (exact or half) else None
        fmt = lambda v: "–" if v is None else f"{v['ms']:.3f} ({v['min_ms']:.3f}–{v['max_ms']:.3f})"
        ratio = "–" if best is None else f"{best / ms:.2f}×"
        lines.append(f"| {op} | {transform} | {rank} | {tokens} | {ms:.3f} | {fmt(exact)} | {fmt(half)} | {ratio} |")
    lines += ["", "peer / ours: the faster peer shape over our JMH median (above 1: ours is faster)."]
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text)
    print(text)


def main():
    run(__doc__, measure, table, reps=20, warmup=5, rounds=3)

if __name__ == "__main__":
    main()
