package org.spectralpeft.fourierft.cuda;

import java.util.Arrays;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.SpectrumColumns;

/**
 * Tables of fourierft_column_analysis (∂L/∂c from ∂L/∂ΔW): the coefficients in the order the kernel visits
 * them (by half-spectrum column, then row, so neighbouring threads read neighbouring columns), and per
 * coefficient the step e^{2πi·u/d_out} of its row u (float64, rounded once), whose conjugate advances its
 * twiddle from one row to the next.
 */
final class GradientColumns {
    final int[] order;
    final float[] stepCos;
    final float[] stepSin;

    private GradientColumns(int[] order, float[] stepCos, float[] stepSin) {
        this.order = order;
        this.stepCos = stepCos;
        this.stepSin = stepSin;
    }

    static GradientColumns of(FourierFTSpec spec) {
        int[] bins = spec.deltaGradientBins();
        int h = spec.halfIn();
        int dOut = spec.dOut();
        long[] keys = new long[bins.length];
        int[] rows = new int[bins.length];
        for (int l = 0; l < bins.length; l++) {
            rows[l] = bins[l] / h;
            int v = bins[l] % h;
            keys[l] = (((long) v * dOut + rows[l]) << 31) | l; // column-major position (< 2^31), then l
        }
        float[] cos = new float[bins.length];
        float[] sin = new float[bins.length];
        SpectrumColumns.unitRoots(rows, dOut, cos, sin);
        Arrays.sort(keys);
        int[] order = new int[bins.length];
        for (int i = 0; i < keys.length; i++) {
            order[i] = (int) (keys[i] & Integer.MAX_VALUE);
        }
        return new GradientColumns(order, cos, sin);
    }
}
