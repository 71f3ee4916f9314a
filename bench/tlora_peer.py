#!/usr/bin/env python3
"""TLoRA side by side: spectral-peft's TLoRABenchmark (JMH) next to the authors' step and plain LoRA in PyTorch.

    # 1. Time the peers (torch; CPU or CUDA), writing a JSON file:
    python3 bench/tlora_peer.py measure --device cpu --out tlora-peer.json [--reps 5] [--rounds 3]

    # 2. The table (standard library only):
    python3 bench/tlora_peer.py table --jmh jmh.json --peers tlora-peer.json [--out table.md]

Peers, for a d x d layer with the authors' factorisation of d (1280 = [8, 10, 16], 2048 = [8, 16, 16]),
transform ring rank R = 1 and 4, a LoRA residual of rank 8, alpha = 1, float32:
  - `authors`: their step as their layer computes it on every call: T from the cores (a Kronecker product for
    R = 1, the ring's einsum contraction otherwise), W' = W0 @ T + s * (B @ A), y = F.linear(x, W'). Checked
    against a direct evaluation of T's definition before timing.
  - `lora`: plain LoRA of the same rank, y = F.linear(x, W0) + s * (x @ A^T) @ B^T: the speed everyone expects.
Rows: forward and forward+backward (autograd: the trainable parameters' gradients and dL/dx for L = <y, g>),
T = 1024 and 4096 tokens. Times are medians over `--reps` calls after warm-up, repeated over `--rounds` rounds.
"""

import json
import math
import statistics
import sys
import time

from peer_timing import run, timed

SHAPES = {1280: [8, 10, 16], 2048: [8, 16, 16]}
RINGS = [1, 4]
TOKENS = [1024, 4096]
RANK = 8


def key(d, ring, tokens, op, peer):
    return f"{op} d={d} R={ring} T={tokens} {peer}"


def ring_matrix(torch, cores):
    """T[(p1..pD), (q1..qD)] = tr(C1[p1, q1] ... CD[pD, qD]), cores (P, Q, R, R), C order."""
    out = cores[0]
    rows, cols = out.shape[0], out.shape[1]
    for d in range(1, len(cores)):
        out = torch.einsum("...mn,ijnt->...ijmt", out, cores[d])
        out = torch.movedim(out, 2 * d, d)
        rows *= cores[d].shape[0]
        cols *= cores[d].shape[1]
    return torch.einsum("...ii->...", out).reshape(rows, cols)


def transform_matrix(torch, cores, ring):
    if ring == 1:
        t = cores[0]
        for c in cores[1:]:
            t = torch.kron(t, c)
        return t
    return ring_matrix(torch, cores)


def check_ring_matrix(torch):
    """ring_matrix against tr(...) computed element by element on a small case."""
    g = torch.Generator().manual_seed(2)
    shape, ring = [2, 3], 2
    cores = [torch.randn(n, n, ring, ring, generator=g, dtype=torch.float64) for n in shape]
    t = ring_matrix(torch, cores)
    for i in range(6):
        for j in range(6):
            p, q = divmod(i, 3), divmod(j, 3)
            expected = torch.trace(cores[0][p[0], q[0]] @ cores[1][p[1], q[1]])
            if abs(float(t[i, j] - expected)) > 1e-12:
                raise SystemExit("ring_matrix does not follow the definition")


def measure(args):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    check_ring_matrix(torch)
    device = args.device
    s = 1.0 / math.sqrt(RANK)
    results = {}
    for d, shape in SHAPES.items():
        w0 = torch.randn(d, d, device=device) / math.sqrt(d)
        for ring in RINGS:
            cores = [(torch.randn(n, n, device=device) if ring == 1 else torch.randn(n, n, ring, ring, device=device) / ring)
                     .requires_grad_(True) for n in shape]
            a = (torch.randn(RANK, d, device=device) / math.sqrt(3 * d)).requires_grad_(True)
            b = (torch.randn(d, RANK, device=device) * 0.01).requires_grad_(True)
            for tokens in TOKENS:
                x = torch.randn(tokens, d, device=device).requires_grad_(True)
                g = torch.randn(tokens, d, device=device)

                def authors():
                    t = transform_matrix(torch, cores, ring)
                    return F.linear(x, w0 @ t + s * (b @ a))

                def lora():
                    return F.linear(x, w0) + s * (x @ a.T) @ b.T

                for peer, fn in (("authors", authors), ("lora", lora)):
                    def forward():
                        with torch.no_grad():
                            fn()

                    def forward_backward():
                        (fn() * g).sum().backward()
                        for p in cores + [a, b, x]:
                            p.grad = None

                    for op, call in (("forward", forward), ("forwardBackward", forward_backward)):
                        rounds = [timed(torch, device, call, args.reps, args.warmup) for _ in range(args.rounds)]
                        k = key(d, ring, tokens, op, peer)
                        results[k] = {"ms": statistics.median(rounds), "min_ms": min(rounds), "max_ms": max(rounds)}
                        print(f"{k}: {results[k]['ms']:.3f} ms", file=sys.stderr, flush=True)
    meta = {"device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "reps": args.reps, "rounds": args.rounds, "date": time.strftime("%Y-%m-%d")}
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump({"meta": meta, "results": results}, out, indent=1)


def table(args):
    with open(args.peers, encoding="utf-8") as f:
        peers = json.load(f)
    ours = {}
    with open(args.jmh, encoding="utf-8") as f:
        for r in json.load(f):
            if ".TLoRABenchmark." not in r["benchmark"]:
                continue
            p = r["params"]
            op = r["benchmark"].rsplit(".", 1)[1]
            ours[(int(p["d"]), int(p["ring"]), int(p["tokens"]), op)] = r["primaryMetric"]["scorePercentiles"]["50.0"] / 1e3
    meta = peers["meta"]
    lines = [f"TLoRA, d x d, LoRA residual rank {RANK}, float32; peers: torch {meta['torch']} on {meta['device']} "
             f"({meta['threads']} threads), {meta['rounds']} rounds of {meta['reps']} calls, {meta['date']}.", "",
             "| op | d | R | T | ours (ms) | authors' step (ms) | LoRA (ms) | authors / ours | ours / LoRA |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    fmt = lambda v: "–" if v is None else f"{v['ms']:.3g} ({v['min_ms']:.3g}–{v['max_ms']:.3g})"
    for (d, ring, tokens, op), ms in sorted(ours.items()):
        au = peers["results"].get(key(d, ring, tokens, op, "authors"))
        lo = peers["results"].get(key(d, ring, tokens, op, "lora"))
        lines.append(f"| {op} | {d} | {ring} | {tokens} | {ms:.3g} | {fmt(au)} | {fmt(lo)} | "
                     f"{'–' if au is None else format(au['ms'] / ms, '.2f') + '×'} | "
                     f"{'–' if lo is None else format(ms / lo['ms'], '.2f') + '×'} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text)
    print(text)


def main():
    run(__doc__, measure, table, reps=5, warmup=2, rounds=3)

if __name__ == "__main__":
    main()
