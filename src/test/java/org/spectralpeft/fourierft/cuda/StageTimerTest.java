package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.StageTimer;

/**
 * StageTimer without a device: launches go to a recorder, marks come from a fake clock that advances by a
 * known amount inside each stage, so the sums per label, the order of labels and the release of every mark
 * can be checked exactly.
 */
class StageTimerTest {
    /** A clock that ticks 1 ms per mark and, inside the stage being run, by the stage's own cost. */
    private static final class FakeMarks implements StageTimer.Marks {
        long now;
        final Set<Long> live = new HashSet<>();

        @Override
        public Object mark(CudaStream stream) {
            now += 1;
            live.add(now);
            return now;
        }

        @Override
        public double millisBetween(Object a, Object b) {
            return (Long) b - (Long) a;
        }

        @Override
        public void release(Object mark) {
            assertTrue(live.remove((Long) mark), "mark " + mark + " released twice or never made");
        }
    }

    private StageTimer timer;

    @AfterEach
    void uninstall() {
        if (timer != null) {
            timer.uninstall();
        }
    }

    @Test
    void hostPassesAreTimedByLabelOnlyWhileATimerIsInstalled() throws Exception {
        assertEquals("ran", StageTimer.host("resolve ids", () -> "ran")); // none installed: the pass just runs
        timer = StageTimer.install(new FakeMarks());
        for (int round = 0; round < 3; round++) {
            int i = round;
            assertEquals(i, (int) StageTimer.host("resolve ids", () -> {
                long until = System.nanoTime() + 2_000_000;
                while (System.nanoTime() < until) {
                    Thread.onSpinWait();
                }
                return i;
            }));
            StageTimer.host("token rows", () -> 0);
        }
        assertThrows(IllegalStateException.class, () -> StageTimer.host("failing", () -> {
            throw new IllegalStateException("pass failed");
        }));
        List<StageTimer.HostPhase> phases = timer.collectHost();
        assertEquals(List.of("resolve ids", "token rows", "failing"), phases.stream().map(StageTimer.HostPhase::label)
                .toList());
        assertEquals(3, phases.get(0).count());
        assertEquals(1, phases.get(2).count(), "a pass that throws is still timed");
        assertTrue(phases.get(0).millis() >= 6.0, "three passes of at least 2 ms: " + phases.get(0).millis());
        assertTrue(phases.get(1).millis() < phases.get(0).millis());
        assertEquals(List.of(), timer.collectHost(), "collecting empties the sums");
    }

    @Test
    void sumsEachLabelInOrderOfFirstUseAndReleasesEveryMark() {
        FakeMarks marks = new FakeMarks();
        List<String> launched = new ArrayList<>();
        // each launch "costs" as many ms as its grid's x size, on the fake clock
        CommonKernels.Launcher recorder = (kernel, gx, gy, stream, args) -> {
            launched.add(kernel);
            marks.now += 100L * gx;
        };
        FourierFTKernels kernels = new FourierFTKernels(recorder);
        CommonKernels common = new CommonKernels(recorder);
        DeviceArray dst = DeviceArray.foreign(1L << 33, 3 * 300, DType.FLOAT32);
        CudaStream s = CudaStream.legacyDefault();
        timer = StageTimer.install(marks);

        common.epilogue(1L << 34, 300, dst, 3, 300, 1, s);        // 2 blocks of 256 columns: 200 ms
        kernels.gatherReal(1L << 34, 10, 1L << 35, 5, 1f, 1L << 36, s); // 1 block: 100 ms
        common.epilogue(1L << 34, 300, dst, 3, 300, 1, s);
        StageTimer.time("cuFFT C2R 300 x3", s, () -> marks.now += 7);

        List<StageTimer.Stage> stages = timer.collect();
        assertEquals(List.of(CommonKernels.EPILOGUE, FourierFTKernels.GATHER_REAL, CommonKernels.EPILOGUE),
                launched);
        assertEquals(List.of(
                new StageTimer.Stage(CommonKernels.EPILOGUE, 2, 2 * 201.0),
                new StageTimer.Stage(FourierFTKernels.GATHER_REAL, 1, 101.0),
                new StageTimer.Stage("cuFFT C2R 300 x3", 1, 8.0)), stages);
        assertTrue(marks.live.isEmpty(), "marks left unreleased: " + marks.live);
        assertEquals(List.of(), timer.collect(), "a second collect starts from nothing");
    }

    @Test
    void withNoTimerInstalledStagesRunUntimedAndUninstallReleasesPendingMarks() {
        FakeMarks marks = new FakeMarks();
        int[] runs = new int[1];
        StageTimer.time("untimed", CudaStream.legacyDefault(), () -> runs[0]++);
        assertEquals(1, runs[0]);
        assertEquals(0, marks.now, "no timer: no marks");

        timer = StageTimer.install(marks);
        assertThrows(IllegalStateException.class, () -> StageTimer.install(new FakeMarks()));
        StageTimer.time("pending", CudaStream.legacyDefault(), () -> runs[0]++);
        assertEquals(2, marks.live.size());
        timer.uninstall();
        assertTrue(marks.live.isEmpty(), "uninstall releases the marks not collected");
        StageTimer.time("after", CudaStream.legacyDefault(), () -> runs[0]++);
        assertEquals(3, runs[0]);
        assertEquals(2, marks.now, "no marks after uninstall");
    }
}
