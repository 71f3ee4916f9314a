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
