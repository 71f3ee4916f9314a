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

    /** a[off .. off+n-1]: a signal in, its half spectrum out in the packed layout of {@link #realSlot}. */
    void forwardInPlace(float[] a, int off) {
        if (n > 1) {
            fft.realForward(a, off);
        }
    }

    /** The factor that {@link #inverseInPlace} leaves out: multiply the spectrum by it beforehand. */
    float inverseGain() {
        return inverseGain;
    }

    /**
     * Where bin v's real part sits in the packed layout {@link #inverseInPlace} takes (JTransforms': bin 0
     * at 0; for even n bin n/2 at 1; bins 1 ≤ v < n/2 at 2v; for odd n bin (n-1)/2 at n-1).
     */
    int realSlot(int v) {
        if (v == 0) {
            return 0;
        }
        if (v == n / 2) {
            return n % 2 == 0 ? 1 : n - 1;
        }
        return 2 * v;
    }

    /** Where bin v's imaginary part sits in the packed layout, or -1 where a real inverse ignores it (bin 0, and n/2 for even n). */
    int imagSlot(int v) {
        if (v == 0) {
            return -1;
        }
        if (v == n / 2) {
            return n % 2 == 0 ? -1 : 1;
        }
        return 2 * v + 1;
    }

    /**
     * a[off .. off+n-1]: the packed half spectrum (see {@link #realSlot}) in, the inverse DFT out, divided by
     * {@link #inverseGain}.
     */
    void inverseInPlace(float[] a, int off) {
        if (n > 1) {
            fft.realInverse(a, off, false);
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
