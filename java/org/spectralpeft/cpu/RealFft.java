package org.spectralpeft.cpu;

import org.jtransforms.fft.FloatFFT_1D;

/**
 * Length-n real transforms with the spectrum as separate real/imaginary arrays of bins 0..n/2,
 * hiding JTransforms' packed layout. Unnormalized; forward is Σ x·e^{-2πi qk/n}, inverse Σ X·e^{+2πi qk/n}
 * over the Hermitian extension. Holds scratch space: one instance per thread.
 */
final class RealFft {
    private final int n;
    private final FloatFFT_1D fft;
    private final float[] packed;
    /** Factor that makes JTransforms' realInverse the plain unnormalized inverse (see constructor). */
    private final float inverseGain;

    RealFft(int n) {
        this.n = n;
        this.fft = n > 1 ? new FloatFFT_1D(n) : null;
        this.packed = new float[n];
        this.inverseGain = n > 1 ? calibrateInverse() : 1f;
    }

    // JTransforms 3.1's realInverse(a, false) returns half the unnormalized inverse for power-of-two
    // lengths and the full one otherwise. Measure it on a unit DC bin (whose exact inverse is all ones)
    // rather than hard-coding the size rule.
    private float calibrateInverse() {
        java.util.Arrays.fill(packed, 0f);
        packed[0] = 1f;
        fft.realInverse(packed, false);
        return 1f / packed[0];
    }

    int length() {
        return n;
    }

    int bins() {
        return n / 2 + 1;
    }

    /** re/im[0..n/2] = DFT(in[off .. off+n-1]). */
    void forward(float[] in, int off, float[] re, float[] im) {
        System.arraycopy(in, off, packed, 0, n);
        if (n == 1) {
            re[0] = packed[0];
            im[0] = 0f;
            return;
        }
        fft.realForward(packed);
        re[0] = packed[0];
        im[0] = 0f;
        int half = n / 2;
        if (n % 2 == 0) {
            re[half] = packed[1];
            im[half] = 0f;
            for (int k = 1; k < half; k++) {
                re[k] = packed[2 * k];
                im[k] = packed[2 * k + 1];
            }
        } else {
            for (int k = 1; k < half; k++) {
                re[k] = packed[2 * k];
                im[k] = packed[2 * k + 1];
            }
            re[half] = packed[n - 1];
            im[half] = packed[1];
        }
    }

    /** out[0..n-1] = inverse DFT of the Hermitian spectrum whose bins 0..n/2 are re/im (imag of bin 0, and of n/2 for even n, ignored). */
    void inverse(float[] re, float[] im, float[] out) {
        if (n == 1) {
            out[0] = re[0];
            return;
        }
        int half = n / 2;
        packed[0] = re[0];
        if (n % 2 == 0) {
            packed[1] = re[half];
            for (int k = 1; k < half; k++) {
                packed[2 * k] = re[k];
                packed[2 * k + 1] = im[k];
            }
        } else {
            for (int k = 1; k < half; k++) {
                packed[2 * k] = re[k];
                packed[2 * k + 1] = im[k];
            }
            packed[n - 1] = re[half];
            packed[1] = im[half];
        }
        fft.realInverse(packed, false);
        for (int q = 0; q < n; q++) {
            out[q] = inverseGain * packed[q];
        }
    }
}
