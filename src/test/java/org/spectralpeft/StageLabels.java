package org.spectralpeft;

import java.util.ArrayList;
import java.util.List;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.internal.StageTimer;

/** The stages a call launches, by label and in order: how tests check which route a call took. */
public final class StageLabels {
    private StageLabels() {
    }

    /**
     * Runs body under a stage timer whose marks count instead of timing, and returns the labels of its stages.
     *
     * @param body the call
     * @return its stages' labels, in order of first launch
     */
    public static List<String> of(Runnable body) {
        List<String> labels = new ArrayList<>();
        StageTimer timer = StageTimer.install(new CountingMarks());
        try {
            body.run();
            timer.collect().forEach(s -> labels.add(s.label()));
        } finally {
            timer.uninstall();
        }
        return labels;
    }

    /** Marks that count instead of timing: only the labels are read. */
    private static final class CountingMarks implements StageTimer.Marks {
        private long now;

        @Override
        public Object mark(CudaStream stream) {
            return ++now;
        }

        @Override
        public double millisBetween(Object a, Object b) {
            return (Long) b - (Long) a;
        }

        @Override
        public void release(Object mark) {
        }
    }
}
