package org.spectralpeft.cuda;

import java.util.Arrays;
import org.spectralpeft.api.FourierFTSpec;

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
        float[] cos = new float[bins.length];
        float[] sin = new float[bins.length];
        for (int l = 0; l < bins.length; l++) {
            int u = bins[l] / h;
            int v = bins[l] % h;
            keys[l] = (((long) v * dOut + u) << 31) | l; // column-major position (< 2^31), then l
            int r = 2 * (long) u > dOut ? u - dOut : u; // angle in (-π, π]
            double angle = 2 * Math.PI * r / dOut;
            cos[l] = (float) Math.cos(angle);
            sin[l] = (float) Math.sin(angle);
        }
        Arrays.sort(keys);
        int[] order = new int[bins.length];
        for (int i = 0; i < keys.length; i++) {
            order[i] = (int) (keys[i] & Integer.MAX_VALUE);
        }
        return new GradientColumns(order, cos, sin);
    }
}
