"""What the PyTorch peer scripts share: timing one call the same way on the CPU and on CUDA."""

import statistics
import time


def timed(torch, device, fn, reps, warmup):
    """Median milliseconds of `reps` calls of fn after `warmup` calls, synchronizing CUDA around each."""
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def run(doc, measure, table, reps, warmup, rounds):
    """The scripts' command line: `measure` (device, out, reps, warmup, rounds) or `table` (jmh, peers, out)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    m.add_argument("--out", required=True)
    m.add_argument("--reps", type=int, default=reps)
    m.add_argument("--warmup", type=int, default=warmup)
    m.add_argument("--rounds", type=int, default=rounds)
    t = sub.add_parser("table")
    t.add_argument("--jmh", required=True)
    t.add_argument("--peers", required=True)
    t.add_argument("--out")
    args = parser.parse_args()
    measure(args) if args.command == "measure" else table(args)
