package org.spectralpeft.cpu;

import org.jtransforms.fft.FloatFFT_1D;

/**
 * Length-n complex transforms on interleaved (re, im) arrays, unnormalized. One instance per thread.
 * Float throughout: unlike the real one ({@link RealFft#needsDoublePrecision}), JTransforms' complex generic
 * odd-radix pass reads its twiddles from a table: measured against float64, every length up to 16384 stays
 * within 8e-7 relative error (lengths of only 2, 3 and 5 reach 5.4e-7; Bluestein lengths up to 30000, 4.9e-7).
 */
public final class ComplexFft {
    private final int n;
    private final FloatFFT_1D fft;

    public ComplexFft(int n) {
        this.n = n;
        this.fft = n > 1 ? new FloatFFT_1D(n) : null;
    }

    public int length() {
        return n;
    }

    /** In place: a ← Σ a·e^{+2πi uk/n}. */
    public void inverse(float[] a) {
        if (n > 1) {
            fft.complexInverse(a, false);
        }
    }

    /** In place: a ← Σ a·e^{-2πi uk/n}. */
    public void forward(float[] a) {
        if (n > 1) {
            fft.complexForward(a);
        }
    }
}
