package org.spectralpeft.fourierft.cuda;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.spectralpeft.Backends;
import org.spectralpeft.bench.Bench;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.FftPlans.Direction;
import org.spectralpeft.cuda.internal.StageTimer;
import org.spectralpeft.cuda.internal.StreamScratch;
import org.spectralpeft.fourierft.FourierFTSpec;

/**
 * Where the GPU time of each benchmarked operation goes: for every configuration of the targets,
 * the wall time per call (median, stream synchronized, no timer), then the GPU time of each stage (every
 * kernel and cuFFT execution, timed with CUDA events by {@link StageTimer}) per call, and what is left
 * over: host work and the gaps between launches. Writes a markdown report.
 *
 * <p>usage: {@code StageProfile [REPORT.md]} (default stages.md); CUDA only: without a device it says so
 * and exits with status 2.
 */
public final class StageProfile {
    /**
     * Warm-up per operation: at least this many calls and this long, so the host path is JIT-compiled before
     * the wall time is taken (with 5 calls, the first operation's wall read 4× JMH's on an H200).
     */
    private static final int WARMUP_CALLS = 5;
    private static final long WARMUP_NANOS = 500_000_000L;
    private static final int WALL_CALLS = 41;
    private static final int TIMED_CALLS = 10;
    /** Device time the stream is held before each timed call, longer than queueing the largest call takes. */
    private static final long HOLD_NANOS = 20_000_000L;

    private final CudaFourierFT cuda;
    private final CudaStream stream;
    private final StringBuilder report = new StringBuilder();

    private StageProfile(CudaFourierFT cuda) {
        this.cuda = cuda;
        this.stream = cuda.createStream();
    }

    public static void main(String[] args) throws IOException {
        Path out = Path.of(args.length > 0 ? args[0] : "stages.md");
        var reason = Backends.cudaUnavailableReason();
        if (reason.isPresent()) {
            System.err.println("StageProfile needs a CUDA device: " + reason.get());
            System.exit(2);
        }
        try (CudaFourierFT cuda = Backends.fourierFTCuda()) {
            StageProfile p = new StageProfile(cuda);
            try {
                p.report.append("# Stage profile\n\n").append(cuda.description()).append("; kernels: ")
                        .append(cuda.kernelVariant()).append(".\n\nWall: median of ").append(WALL_CALLS)
                        .append(" calls, each ending in a stream synchronization, no timer. Stages: CUDA events "
                                + "around each kernel and cuFFT execution, summed over ").append(TIMED_CALLS)
                        .append(" calls, per call; each timed call is queued while the stream is held busy (")
                        .append(HOLD_NANOS / 1_000_000).append(" ms), so it runs without waiting for the host and a "
                                + "stage's time is the device's alone. Host and gaps = wall − GPU stages: what the "
                                + "host adds to a call. A cuFFT stage may be several kernels; memsets and "
                                + "stream-ordered allocations are not stages.\n");
                p.profileAll();
            } finally {
                p.stream.close();
            }
            Files.writeString(out, p.report, StandardCharsets.UTF_8);
            System.out.print(p.report);
        }
    }

    private void profileAll() {
        for (String shape : List.of("4096x4096", "4096x11008")) {
            for (int n : new int[] {1000, 10000}) {
                materialize(shape, n, DType.FLOAT32, 1);
            }
        }
        materialize("4096x4096", 1000, DType.BFLOAT16, 1);
        materialize("4096x4096", 1000, DType.FLOAT32, 64);
        merge("4096x4096", 1000, DType.BFLOAT16);
        gradCoefficients("4096x4096", 1000);
        bareC2R(4096, 4096);
        for (int tokens : new int[] {1, 16, 64, 256, 4096}) {
            forward(tokens);
        }
        for (int tokens : new int[] {1, 16, 256}) {
            backward(tokens);
        }
    }

    private void materialize(String shape, int n, DType dtype, int layers) {
        int[] s = Bench.shape(shape);
        FourierFTSpec spec = FourierFTSpec.fromSeed(s[0], s[1], n);
        try (DeviceBuffer coeffs = upload(Bench.gaussian(n * layers, 1))) {
            DeviceBuffer[] out = Bench.deviceBuffers(cuda, dtype, (long) layers * s[0] * s[1], null);
            try {
                int[] next = {0};
                profile(String.format("materialize %s n=%d %s%s", shape, n, dtype.name().toLowerCase(),
                        layers > 1 ? ", " + layers + " layers in one call" : ""),
                        () -> cuda.materialize(spec, coeffs.array(), layers, out[next[0]++ % out.length].array(), stream));
            } finally {
                Bench.close(out);
            }
        }
    }

    private void merge(String shape, int n, DType dtype) {
        int[] s = Bench.shape(shape);
        FourierFTSpec spec = FourierFTSpec.fromSeed(s[0], s[1], n);
        try (DeviceBuffer coeffs = upload(Bench.gaussian(n, 1))) {
            DeviceBuffer[] weights = Bench.deviceBuffers(cuda, dtype, (long) s[0] * s[1],
                    Bench.gaussian(dtype, s[0] * s[1], 2));
            try {
                int[] next = {0};
                profile(String.format("merge %s n=%d %s", shape, n, dtype.name().toLowerCase()),
                        () -> cuda.merge(spec, coeffs.array(), weights[next[0]++ % weights.length].array(), stream));
            } finally {
                Bench.close(weights);
            }
        }
    }

    private void gradCoefficients(String shape, int n) {
        int[] s = Bench.shape(shape);
        FourierFTSpec spec = FourierFTSpec.fromSeed(s[0], s[1], n);
        DeviceBuffer[] grads = Bench.deviceBuffers(cuda, DType.FLOAT32, (long) s[0] * s[1],
                Bench.gaussian(DType.FLOAT32, s[0] * s[1], 2));
        try (DeviceBuffer g = cuda.allocate(DType.FLOAT32, n)) {
            int[] next = {0};
            profile(String.format("gradCoefficients %s n=%d float32", shape, n),
                    () -> cuda.gradCoefficients(spec, grads[next[0]++ % grads.length].array(), g.array(), stream));
        } finally {
            Bench.close(grads);
        }
    }

    /** The floor: one cuFFT C2R-2D of the half spectrum into a float32 matrix (as FloorBenchmark.bareC2R). */
    private void bareC2R(int dOut, int dIn) {
        try (DeviceBuffer spectrum = cuda.allocate(DType.FLOAT32, 2L * dOut * (dIn / 2 + 1))) {
            DeviceBuffer[] out = Bench.deviceBuffers(cuda, DType.FLOAT32, (long) dOut * dIn, null);
            try {
                int[] next = {0};
                profile(String.format("bare cuFFT C2R-2D %dx%d (floor)", dOut, dIn), () -> {
                    try (StreamScratch scratch = new StreamScratch(stream)) {
                        cuda.plans().twoD(Direction.C2R, dOut, dIn, 1, false, spectrum.array().address(),
                                out[next[0]++ % out.length].array().address(), scratch, stream);
                    }
                });
            } finally {
                Bench.close(out);
            }
        }
    }

    private void forward(int tokens) {
        FourierFTSpec spec = FourierFTSpec.fromSeed(4096, 4096, 1000);
        try (DeviceBuffer coeffs = upload(Bench.gaussian(1000, 1))) {
            DeviceBuffer[] x = Bench.deviceBuffers(cuda, DType.FLOAT32, 4096L * tokens,
                    Bench.gaussian(DType.FLOAT32, 4096 * tokens, 3));
            DeviceBuffer[] y = Bench.deviceBuffers(cuda, DType.FLOAT32, 4096L * tokens, null);
            try {
                int[] next = {0};
                profile(String.format("forward 4096x4096 n=1000 T=%d float32", tokens), () -> {
                    int i = next[0]++;
                    cuda.forward(spec, coeffs.array(), x[i % x.length].array(), tokens, y[i % y.length].array(),
                            stream);
                });
            } finally {
                Bench.close(y);
                Bench.close(x);
            }
        }
    }

    private void backward(int tokens) {
        FourierFTSpec spec = FourierFTSpec.fromSeed(4096, 4096, 1000);
        try (DeviceBuffer coeffs = upload(Bench.gaussian(1000, 1));
             DeviceBuffer gc = cuda.allocate(DType.FLOAT32, 1000)) {
            DeviceBuffer[] x = Bench.deviceBuffers(cuda, DType.FLOAT32, 4096L * tokens,
                    Bench.gaussian(DType.FLOAT32, 4096 * tokens, 3));
            DeviceBuffer[] gy = Bench.deviceBuffers(cuda, DType.FLOAT32, 4096L * tokens,
                    Bench.gaussian(DType.FLOAT32, 4096 * tokens, 4));
            try {
                int[] next = {0};
                profile(String.format("backward (∂L/∂c and ∂L/∂x) 4096x4096 n=1000 T=%d float32", tokens), () -> {
                    int i = next[0]++;
                    // ∂L/∂x accumulates into the next rotation's x
                    cuda.backward(spec, coeffs.array(), x[i % x.length].array(), gy[i % gy.length].array(), tokens,
                            gc.array(), x[(i + 1) % x.length].array(), stream);
                });
            } finally {
                Bench.close(gy);
                Bench.close(x);
            }
        }
    }

    private DeviceBuffer upload(float[] values) {
        DeviceBuffer b = cuda.allocate(DType.FLOAT32, values.length);
        b.copyFrom(HostArray.float32(values));
        return b;
    }

    /** Warms up, takes the wall median with no timer, then the per-stage GPU times, and reports them. */
    private void profile(String name, Runnable call) {
        long warmupEnd = System.nanoTime() + WARMUP_NANOS;
        for (int i = 0; i < WARMUP_CALLS || System.nanoTime() < warmupEnd; i++) {
            call.run();
            cuda.synchronize(stream);
        }
        double[] wallUs = new double[WALL_CALLS];
        for (int i = 0; i < WALL_CALLS; i++) {
            long t0 = System.nanoTime();
            call.run();
            cuda.synchronize(stream);
            wallUs[i] = (System.nanoTime() - t0) / 1e3;
        }
        Arrays.sort(wallUs);
        double wall = wallUs[WALL_CALLS / 2];

        List<StageTimer.Stage> stages;
        StageTimer timer = StageTimer.install();
        try {
            for (int i = 0; i < TIMED_CALLS; i++) {
                cuda.context().commonKernels().holdStream(HOLD_NANOS, stream);
                call.run();
                cuda.synchronize(stream);
            }
            stages = timer.collect().stream().filter(s -> !s.label().equals(CommonKernels.HOLD_STREAM)).toList();
        } finally {
            timer.uninstall();
        }
        double gpu = stages.stream().mapToDouble(StageTimer.Stage::millis).sum() * 1e3 / TIMED_CALLS;
        int launches = stages.stream().mapToInt(StageTimer.Stage::count).sum() / TIMED_CALLS;
        report.append(String.format("%n## %s%n%nwall %.1f µs/call (p10 %.1f, p90 %.1f); GPU stages %.1f µs/call in %d "
                        + "launches; host and gaps %.1f µs/call%n%n| stage | launches/call | µs/call | share of GPU |%n"
                        + "|---|---|---|---|%n", name, wall, wallUs[WALL_CALLS / 10], wallUs[WALL_CALLS * 9 / 10], gpu,
                launches, wall - gpu));
        List<String> rows = new ArrayList<>();
        for (StageTimer.Stage s : stages) {
            double us = s.millis() * 1e3 / TIMED_CALLS;
            rows.add(String.format("| %s | %.2f | %.1f | %.0f%% |%n", s.label(), s.count() / (double) TIMED_CALLS, us,
                    100 * us / gpu));
        }
        rows.forEach(report::append);
        System.err.printf("%s: wall %.1f µs, GPU %.1f µs%n", name, wall, gpu);
    }
}
