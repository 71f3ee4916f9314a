package org.spectralpeft.cpu;

import org.jtransforms.fft.DoubleFFT_1D;
import org.jtransforms.fft.FloatFFT_1D;

/**
 * Length-n complex transforms on interleaved (re, im) arrays, unnormalized. One instance per thread.
 * Float for powers of two only (JTransforms' split-radix plan: relative error 1.6e-7 or less up to 32768);
 * every other length runs in float64 on a scratch copy. JTransforms 3.1's float mixed-radix plan computes its
 * twiddle angles in float, so, measured against float64 (relative L2 error), lengths of only 2, 3 and 5 reach
 * 2.4e-7 (3072) and up to 6.0e-7 (3^9), radix 7 3.3e-7 (14336), radix 11 4.2e-7 (2816) and Bluestein 3.4e-7
 * (1009): too much for two chained transforms to stay within 3e-7.
 */
public final class ComplexFft {
    private final int n;
    /** Exactly one of fft and dfft is set for n > 1. */
    private final FloatFFT_1D fft;
    private final DoubleFFT_1D dfft;
    private final double[] work;

    public ComplexFft(int n) {
        this.n = n;
        boolean inDouble = n > 1 && Integer.bitCount(n) != 1;
        this.fft = n > 1 && !inDouble ? new FloatFFT_1D(n) : null;
        this.dfft = inDouble ? new DoubleFFT_1D(n) : null;
        this.work = inDouble ? new double[2 * n] : null;
    }

    public int length() {
        return n;
    }

    /** In place: a ← Σ a·e^{+2πi uk/n}. */
    public void inverse(float[] a) {
        if (fft != null) {
            fft.complexInverse(a, false);
        } else if (dfft != null) {
            load(a);
            dfft.complexInverse(work, false);
            store(a);
        }
    }

    /** In place: a ← Σ a·e^{-2πi uk/n}. */
    public void forward(float[] a) {
        if (fft != null) {
            fft.complexForward(a);
        } else if (dfft != null) {
            load(a);
            dfft.complexForward(work);
            store(a);
        }
    }

    private void load(float[] a) {
        for (int i = 0; i < 2 * n; i++) {
            work[i] = a[i];
        }
    }

    private void store(float[] a) {
        for (int i = 0; i < 2 * n; i++) {
            a[i] = (float) work[i];
        }
    }
}
