package org.spectralpeft.peft;

import java.nio.file.Path;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.io.SafetensorsModel;

/**
 * {@code HeldMerge BASE ADAPTER OUT}: a merge that stops in its first layer, with its partial output open, and
 * prints {@code merging} when it gets there; run in a child JVM that the test then signals.
 */
public final class HeldMerge {
    private HeldMerge() {
    }

    public static void main(String[] args) throws Exception {
        FourierFTAdapter adapter = FourierFTAdapter.load(Path.of(args[1]));
        try (SafetensorsModel model = SafetensorsModel.open(Path.of(args[0]))) {
            MergePlan plan = MergePlan.build(model, adapter, m -> m.matches(TinyCheckpoint.CONV1D_MODULES));
            ModelMerger.merge(model, plan, new Held(), Path.of(args[2]), null);
        }
        System.out.println("finished"); // not reached
    }

    /** Merges nothing: the first merge announces itself and waits until the process ends. */
    private static final class Held implements FourierFTBackend {
        @Override
        public String description() {
            return "held";
        }

        @Override
        public void merge(FourierFTSpec spec, float[] coeffs, HostArray weight) {
            System.out.println("merging");
            System.out.flush();
            while (true) {
                try {
                    Thread.sleep(60_000);
                } catch (InterruptedException e) {
                    // keep holding
                }
            }
        }

        @Override
        public void materializeBatch(FourierFTSpec spec, float[] coeffs, int layers, HostArray out) {
            merge(spec, coeffs, out);
        }

        @Override
        public void unmerge(FourierFTSpec spec, float[] coeffs, HostArray weight) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void forward(FourierFTSpec spec, float[] coeffs, HostArray x, int tokens, HostArray y) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void forward(org.spectralpeft.fourierft.FourierFTAdapterPool pool, int[] adapterIds, HostArray x,
                            int tokens, HostArray y) {
            throw new UnsupportedOperationException();
        }

        @Override
        public java.util.Map<Integer, float[]> backward(org.spectralpeft.fourierft.FourierFTAdapterPool pool,
                                                        int[] adapterIds, HostArray x, HostArray gradY, int tokens,
                                                        HostArray gradX) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void gradCoefficients(FourierFTSpec spec, HostArray gradDeltaW, float[] gradCoeffs) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void backward(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                             float[] gradCoeffs, HostArray gradX) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void close() {
        }
    }
}
