package org.spectralpeft.cpu;

import org.jtransforms.fft.DoubleFFT_1D;
import org.jtransforms.fft.FloatFFT_1D;

/**
 * Length-n real transforms with the spectrum as separate real/imaginary arrays of bins 0..n/2,
 * hiding JTransforms' packed layout. Unnormalized; forward is Σ x·e^{-2πi qk/n}, inverse Σ X·e^{+2πi qk/n}
 * over the Hermitian extension. Holds scratch space: one instance per thread.
 * <p>
 * For the lengths where JTransforms' float real transform is inaccurate ({@link #needsDoublePrecision}) the
 * transform runs in float64 on a scratch copy, so every length is accurate to float32 rounding. A tight
 * transform ({@link #RealFft(int, boolean)}) also takes float64 wherever the float plan's error exceeds the
 * split-radix plan's ({@link #isTightInFloat}), so that two chained transforms stay within 3e-7.
 */
public final class RealFft {
    /** Smallest prime radix whose float generic real pass is taken in float64 (see {@link #needsDoublePrecision}). */
    private static final int FIRST_INACCURATE_RADIX = 13;
    /** Lengths whose remainder, after the factors 4, 2, 3 and 5, is at least this use JTransforms' Bluestein plan. */
    private static final int BLUESTEIN_REMAINDER = 211;
    /**
     * Odd parts m of the even non-power-of-two lengths n = 2^a·m whose float plan {@link #isTightInFloat} keeps.
     * Measured against float64 (relative L2 error, worst over every even n ≤ 32768 of that odd part): 1.57e-7
     * (m = 5) to 1.83e-7 (m = 7, at 28672; 14336: 1.76e-7), about the split-radix plan's 1.62e-7 at 32768.
     * Left to float64: m = 25, 75, 135, 225 and 405 (1.9e-7 to 2.2e-7), 11 (3.1e-7: 2816, 5632), odd lengths
     * (3^9: 2.4e-7; radices 7 and 11 up to 5.1e-7), Bluestein (3.4e-7: 1009).
     */
    private static final int[] TIGHT_ODD_PARTS = {3, 5, 7, 9, 15, 21, 27, 45, 81};
    /** Largest non-power-of-two length measured for {@link #TIGHT_ODD_PARTS}. */
    private static final int TIGHT_MEASURED = 32768;

    private final int n;
    /** Exactly one of fft and dfft is set for n > 1. */
    private final FloatFFT_1D fft;
    private final DoubleFFT_1D dfft;
    private final double[] work;
    private final float[] packed;
    /** Factor that makes JTransforms' realInverse the plain unnormalized inverse (see constructor). */
    private final float inverseGain;

    /** A transform in float wherever JTransforms' float plan is accurate to float32 rounding (5.1e-7). */
    public RealFft(int n) {
        this(n, false);
    }

    /**
     * A transform of length n, in float64 where the float plan falls short of the precision asked for.
     *
     * @param n the length, at least 1
     * @param tight whether to take float64 also where the float plan is less accurate than the split-radix
     *              plan ({@link #isTightInFloat}), rather than only where it is inaccurate ({@link #needsDoublePrecision})
     */
    public RealFft(int n, boolean tight) {
        this.n = n;
        boolean inDouble = n > 1 && (tight ? !isTightInFloat(n) : needsDoublePrecision(n));
        this.fft = n > 1 && !inDouble ? new FloatFFT_1D(n) : null;
        this.dfft = inDouble ? new DoubleFFT_1D(n) : null;
        this.work = inDouble ? new double[n] : null;
        this.packed = new float[n];
        this.inverseGain = n > 1 ? calibrateInverse() : 1f;
    }

    /**
     * Whether JTransforms 3.1's float real transform of length n is too inaccurate for float32 use. Lengths
     * that are not powers of two and whose remainder r after dividing out 4, 2, 3 and 5 is below 211 get
     * its mixed-radix plan, which does each odd prime factor p ≥ 7 of r in a generic radix-p pass; the real
     * version of that pass derives its cos/sin(2πj/p) by repeated float rotations, so its error grows with
     * p. Measured against float64 (relative L2 error; worst over all such n ≤ 30000, and over 1000 inputs
     * for small n): p = 7 and 11 stay ≤ 5.1e-7, as the Bluestein plan does (≤ 4.9e-7); p = 13 reaches
     * 8.4e-7 and every p ≥ 23 1.2e-6 or more, up to 9.7e-5 (p = 197). 17 and 19 (≤ 5.4e-7) go to float64
     * too: the error grows with p, and theirs is low only by a lucky rounding of cos/sin(2π/p). The complex
     * mixed-radix pass takes its twiddles from a table and stays accurate.
     */
    public static boolean needsDoublePrecision(int n) {
        if (n < 2 || Integer.bitCount(n) == 1) {
            return false; // split-radix plan
        }
        int r = n;
        for (int f : new int[] {4, 2, 3, 5}) {
            while (r % f == 0) {
                r /= f;
            }
        }
        if (r >= BLUESTEIN_REMAINDER) {
            return false;
        }
        for (int p = 7; p <= r; p += 2) {
            if (r % p == 0) {
                if (p >= FIRST_INACCURATE_RADIX) {
                    return true;
                }
                while (r % p == 0) {
                    r /= p;
                }
            }
        }
        return false;
    }

    /**
     * Whether JTransforms 3.1's float real transform of length n is as accurate as its split-radix plan
     * (relative L2 error 1.83e-7 or less): powers of two, and even lengths up to 32768 whose odd part is one
     * of {@link #TIGHT_ODD_PARTS} (768, 3072, 5120, 13824, 14336, ...). The mixed-radix plan computes its
     * twiddle angles in float, so its error depends on the factors rather than growing smoothly with n.
     */
    public static boolean isTightInFloat(int n) {
        if (n < 2 || Integer.bitCount(n) == 1) {
            return true;
        }
        if (n % 2 != 0 || n > TIGHT_MEASURED) {
            return false;
        }
        int odd = n >> Integer.numberOfTrailingZeros(n);
        for (int m : TIGHT_ODD_PARTS) {
            if (odd == m) {
                return true;
            }
        }
        return false;
    }

    // JTransforms 3.1's realInverse(a, false) returns half the unnormalized inverse for power-of-two
    // lengths and the full one otherwise. Measure it on a unit DC bin (whose exact inverse is all ones)
    // rather than hard-coding the size rule.
    private float calibrateInverse() {
        java.util.Arrays.fill(packed, 0f);
        packed[0] = 1f;
        realInverse(packed, 0);
        return 1f / packed[0];
    }

    /** JTransforms' realForward on a[off .. off+n-1], through float64 where {@link #needsDoublePrecision}. */
    private void realForward(float[] a, int off) {
        if (fft != null) {
            fft.realForward(a, off);
            return;
        }
        for (int i = 0; i < n; i++) {
            work[i] = a[off + i];
        }
        dfft.realForward(work);
        for (int i = 0; i < n; i++) {
            a[off + i] = (float) work[i];
        }
    }

    /** JTransforms' unscaled realInverse on a[off .. off+n-1], through float64 where {@link #needsDoublePrecision}. */
    private void realInverse(float[] a, int off) {
        if (fft != null) {
            fft.realInverse(a, off, false);
            return;
        }
        for (int i = 0; i < n; i++) {
            work[i] = a[off + i];
        }
        dfft.realInverse(work, false);
        for (int i = 0; i < n; i++) {
            a[off + i] = (float) work[i];
        }
    }

    public int length() {
        return n;
    }

    public int bins() {
        return n / 2 + 1;
    }

    /** re/im[0..n/2] = DFT(in[off .. off+n-1]). */
    public void forward(float[] in, int off, float[] re, float[] im) {
        System.arraycopy(in, off, packed, 0, n);
        if (n == 1) {
            re[0] = packed[0];
            im[0] = 0f;
            return;
        }
        realForward(packed, 0);
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
    public void forwardInPlace(float[] a, int off) {
        if (n > 1) {
            realForward(a, off);
        }
    }

    /** The factor that {@link #inverseInPlace} leaves out: multiply the spectrum by it beforehand. */
    public float inverseGain() {
        return inverseGain;
    }

    /**
     * Where bin v's real part sits in the packed layout {@link #inverseInPlace} takes (JTransforms': bin 0
     * at 0; for even n bin n/2 at 1; bins 1 ≤ v < n/2 at 2v; for odd n bin (n-1)/2 at n-1).
     */
    public int realSlot(int v) {
        if (v == 0) {
            return 0;
        }
        if (v == n / 2) {
            return n % 2 == 0 ? 1 : n - 1;
        }
        return 2 * v;
    }

    /** Where bin v's imaginary part sits in the packed layout, or -1 where a real inverse ignores it (bin 0, and n/2 for even n). */
    public int imagSlot(int v) {
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
    public void inverseInPlace(float[] a, int off) {
        if (n > 1) {
            realInverse(a, off);
        }
    }

    /** out[0..n-1] = inverse DFT of the Hermitian spectrum whose bins 0..n/2 are re/im (imag of bin 0, and of n/2 for even n, ignored). */
    public void inverse(float[] re, float[] im, float[] out) {
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
        realInverse(packed, 0);
        for (int q = 0; q < n; q++) {
            out[q] = inverseGain * packed[q];
        }
    }
}
