package org.spectralpeft.cpu;

import org.jtransforms.fft.FloatFFT_1D;

/** Length-n complex transforms on interleaved (re, im) arrays, unnormalized. One instance per thread. */
final class ComplexFft {
    private final int n;
    private final FloatFFT_1D fft;

    ComplexFft(int n) {
        this.n = n;
        this.fft = n > 1 ? new FloatFFT_1D(n) : null;
    }

    int length() {
        return n;
    }

    /** In place: a ← Σ a·e^{+2πi uk/n}. */
    void inverse(float[] a) {
        if (n > 1) {
            fft.complexInverse(a, false);
        }
    }

    /** In place: a ← Σ a·e^{-2πi uk/n}. */
    void forward(float[] a) {
        if (n > 1) {
            fft.complexForward(a);
        }
    }
}
