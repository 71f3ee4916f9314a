package org.spectralpeft.cuda.internal;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import org.spectralpeft.cuda.CudaStream;

/**
 * The per-stage GPU time of the backend's calls, for explaining a benchmark figure: while a timer is
 * installed, every kernel launch and every cuFFT execution is bracketed by a pair of marks on its stream
 * (CUDA events on a device), and {@link #collect()} adds up the time between each pair by stage label,
 * in order of first appearance. Marks cost host time, so take wall-clock figures with no timer installed.
 * Host phases ({@link #host}) are the same for the host's own passes of a call (resolving a batch, building its
 * tables): their wall-clock time on the calling thread, summed by label ({@link #collectHost()}).
 *
 * <p>A diagnostic for one thread at a time (the benchmark tool {@code StageProfile}): the installed timer
 * is process-wide and not synchronized. With none installed, a stage costs one volatile read.
 */
public final class StageTimer {
    /** Where the marks come from: CUDA events, or a fake clock in tests. */
    public interface Marks {
        Object mark(CudaStream stream);

        /** Milliseconds from mark a to mark b; both have completed (the caller synchronized). */
        double millisBetween(Object a, Object b);

        void release(Object mark);
    }

    /** One stage's totals over the calls timed. */
    public record Stage(String label, int count, double millis) {
    }

    /** One host phase's totals over the calls timed. */
    public record HostPhase(String label, int count, double millis) {
    }

    private record Span(String label, Object start, Object end) {
    }

    private static volatile StageTimer installed;

    private final Marks marks;
    private final List<Span> spans = new ArrayList<>();
    /** Per host phase label: {count, nanoseconds}. */
    private final Map<String, long[]> hostPhases = new LinkedHashMap<>();

    private StageTimer(Marks marks) {
        this.marks = marks;
    }

    /** Installs a timer with CUDA event marks (the device context must be current on this thread). */
    public static StageTimer install() {
        return install(new EventMarks());
    }

    public static StageTimer install(Marks marks) {
        if (installed != null) {
            throw new IllegalStateException("a stage timer is already installed");
        }
        StageTimer t = new StageTimer(marks);
        installed = t;
        return t;
    }

    /**
     * Whether a timer is installed: for a caller that builds a detailed label only when it will be read.
     *
     * @return true while one is
     */
    public static boolean isInstalled() {
        return installed != null;
    }

    /** Runs one stage of work queued on {@code stream}, bracketed by marks when a timer is installed. */
    public static void time(String label, CudaStream stream, Runnable queueWork) {
        StageTimer t = installed;
        if (t == null) {
            queueWork.run();
            return;
        }
        Object start = t.marks.mark(stream);
        boolean recorded = false;
        try {
            queueWork.run();
            t.spans.add(new Span(label, start, t.marks.mark(stream)));
            recorded = true;
        } finally {
            if (!recorded) {
                t.marks.release(start);
            }
        }
    }

    /**
     * Runs one of a call's host passes, timed on the calling thread when a timer is installed.
     *
     * @param label the phase
     * @param pass the pass
     * @param <T> what it returns
     * @return what it returned
     */
    public static <T> T host(String label, Supplier<T> pass) {
        StageTimer t = installed;
        if (t == null) {
            return pass.get();
        }
        long start = System.nanoTime();
        try {
            return pass.get();
        } finally {
            long took = System.nanoTime() - start;
            long[] sum = t.hostPhases.computeIfAbsent(label, k -> new long[2]);
            sum[0]++;
            sum[1] += took;
        }
    }

    /**
     * The host phases timed since install or the last {@code collectHost}, summed by label in order of first
     * appearance.
     *
     * @return the phases
     */
    public List<HostPhase> collectHost() {
        List<HostPhase> phases = new ArrayList<>();
        hostPhases.forEach((label, sum) -> phases.add(new HostPhase(label, (int) sum[0], sum[1] / 1e6)));
        hostPhases.clear();
        return phases;
    }

    /**
     * The stages timed since install or the last collect, summed by label; releases their marks. Call after
     * synchronizing the streams the work ran on.
     */
    public List<Stage> collect() {
        Map<String, double[]> sums = new LinkedHashMap<>();
        for (Span s : spans) {
            double[] sum = sums.computeIfAbsent(s.label(), k -> new double[2]);
            sum[0]++;
            sum[1] += marks.millisBetween(s.start(), s.end());
        }
        discard();
        List<Stage> stages = new ArrayList<>();
        sums.forEach((label, sum) -> stages.add(new Stage(label, (int) sum[0], sum[1])));
        return stages;
    }

    /** Uninstalls this timer, releasing any marks not collected. */
    public void uninstall() {
        discard();
        if (installed == this) {
            installed = null;
        }
    }

    private void discard() {
        for (Span s : spans) {
            marks.release(s.start());
            marks.release(s.end());
        }
        spans.clear();
    }

    /** Marks that are CUDA events recorded on the stream. */
    private static final class EventMarks implements Marks {
        @Override
        public Object mark(CudaStream stream) {
            CUevent e = new CUevent();
            cuEventCreate(e, CUevent_flags.CU_EVENT_DEFAULT);
            cuEventRecord(e, stream.jcuda());
            return e;
        }

        @Override
        public double millisBetween(Object a, Object b) {
            float[] ms = new float[1];
            cuEventElapsedTime(ms, (CUevent) a, (CUevent) b);
            return ms[0];
        }

        @Override
        public void release(Object mark) {
            cuEventDestroy((CUevent) mark);
        }
    }
}
