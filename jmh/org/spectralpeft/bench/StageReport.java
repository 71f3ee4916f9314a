package org.spectralpeft.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;
import org.spectralpeft.Backends;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.StageTimer;

/**
 * Where the GPU time of a call goes, as a markdown report: per operation the wall time per call (median,
 * stream synchronized, no timer), then the GPU time of each stage (every kernel, cuFFT execution and cuBLAS
 * GEMM, timed with CUDA events by {@link StageTimer}) per call, and what is left over: host work and the gaps
 * between launches. The families' stage profiles (FourierFT's {@code StageProfile}, {@code FouRAStageProfile},
 * {@code TLoRAStageProfile}) describe their operations to it. One thread at a time.
 */
public final class StageReport {
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

    /**
     * The system property that limits a profile to the operations whose heading a regular expression finds (say
     * {@code -Dspectralpeft.profile.only='fused kernel'}, or one case to run under a kernel profiler); unset, all.
     */
    public static final String ONLY_PROPERTY = "spectralpeft.profile.only";
    private static final Pattern ONLY = onlyPattern(System.getProperty(ONLY_PROPERTY));

    private final CudaContext context;
    private final CudaStream stream;
    private final StringBuilder report = new StringBuilder();
    /** Where the report is rewritten after each operation, or null. */
    private Path savedTo;

    /**
     * A family profile's command line, {@code [REPORT.md] [--small]}.
     *
     * @param out where the report goes
     * @param small the few small cases that check it runs (e.g. on the CUDA emulator)
     */
    public record Options(Path out, boolean small) {
        /**
         * Reads the arguments; without a CUDA device says so and exits with status 2.
         *
         * @param args the command line
         * @param defaultReport the report's file when none is given
         * @param program the profile's name, for the message
         * @return the options
         */
        public static Options parse(String[] args, String defaultReport, String program) {
            boolean small = Arrays.asList(args).contains("--small");
            Path out = Path.of(args.length > 0 && !args[0].startsWith("--") ? args[0] : defaultReport);
            var reason = Backends.cudaUnavailableReason();
            if (reason.isPresent()) {
                System.err.println(program + " needs a CUDA device: " + reason.get());
                System.exit(2);
            }
            return new Options(out, small);
        }
    }

    static Pattern onlyPattern(String regex) {
        return regex == null || regex.isEmpty() ? null : Pattern.compile(regex);
    }

    /**
     * @param context the context the profiled calls run on
     * @param stream the stream they queue their work on
     * @param title the report's first line
     * @param device the device and kernels, as the backend describes them
     */
    public StageReport(CudaContext context, CudaStream stream, String title, String device) {
        this.context = context;
        this.stream = stream;
        report.append("# ").append(title).append("\n\n").append(device).append(".\n\nWall: median of ")
                .append(WALL_CALLS).append(" calls, each ending in a stream synchronization, no timer. Stages: CUDA "
                        + "events around each kernel, cuFFT execution and cuBLAS GEMM, summed over ")
                .append(TIMED_CALLS).append(" calls, per call; each timed call is queued while the stream is held busy (")
                .append(HOLD_NANOS / 1_000_000).append(" ms), so it runs without waiting for the host and a stage's "
                        + "time is the device's alone. Host and gaps = wall − GPU stages: what the host adds to a "
                        + "call. A cuFFT or cuBLAS stage may be several kernels; memsets, copies and stream-ordered "
                        + "allocations are not stages.\n");
    }

    /**
     * Warms {@code call} up, takes its wall median with no timer, then its per-stage GPU times, and reports them;
     * an operation {@link #ONLY_PROPERTY} leaves out is not called.
     *
     * @param name the operation, as the report's heading
     * @param call one call, queued on the report's stream
     */
    public void profile(String name, Runnable call) {
        if (ONLY != null && !ONLY.matcher(name).find()) {
            return;
        }
        long warmupEnd = System.nanoTime() + WARMUP_NANOS;
        for (int i = 0; i < WARMUP_CALLS || System.nanoTime() < warmupEnd; i++) {
            call.run();
            stream.synchronize();
        }
        double[] wallUs = new double[WALL_CALLS];
        for (int i = 0; i < WALL_CALLS; i++) {
            long t0 = System.nanoTime();
            call.run();
            stream.synchronize();
            wallUs[i] = (System.nanoTime() - t0) / 1e3;
        }
        Arrays.sort(wallUs);
        double wall = wallUs[WALL_CALLS / 2];

        List<StageTimer.Stage> stages;
        List<StageTimer.HostPhase> hostPhases;
        StageTimer timer = StageTimer.install();
        try {
            for (int i = 0; i < TIMED_CALLS; i++) {
                context.commonKernels().holdStream(HOLD_NANOS, stream);
                call.run();
                stream.synchronize();
            }
            stages = timer.collect().stream().filter(s -> !s.label().equals(CommonKernels.HOLD_STREAM)).toList();
            hostPhases = timer.collectHost();
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
        if (!hostPhases.isEmpty()) { // the call's own host passes, where it marks them (StageTimer.host)
            report.append(String.format("%n| host pass | µs/call |%n|---|---|%n"));
            for (StageTimer.HostPhase h : hostPhases) {
                report.append(String.format("| %s | %.1f |%n", h.label(), h.millis() * 1e3 / TIMED_CALLS));
            }
        }
        System.err.printf("%s: wall %.1f µs, GPU %.1f µs%n", name, wall, gpu);
        if (savedTo != null) {
            try {
                Files.writeString(savedTo, report, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /**
     * Rewrites {@code out} with the report so far after every operation profiled from now on, so that a run cut
     * short by a time limit keeps what it finished.
     *
     * @param out the markdown file
     * @return this report
     */
    public StageReport saveAsItGoes(Path out) {
        savedTo = out;
        return this;
    }

    /**
     * Writes the report and prints it.
     *
     * @param out the markdown file
     * @throws IOException if it cannot be written
     */
    public void write(Path out) throws IOException {
        Files.writeString(out, report, StandardCharsets.UTF_8);
        System.out.print(report);
    }
}
