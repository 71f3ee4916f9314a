package org.spectralpeft.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.spectralpeft.TestData;

/** The packed-layout wrapper against a direct DFT, for even, odd and power-of-two lengths. */
class RealFftTest {
    /** Float32 rounding of a well-conditioned transform, with room: accurate lengths measure 1e-7 to 5e-7. */
    private static final double ACCURATE = 1e-6;

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 8, 12, 15, 64, 80, 81, 128})
    void forwardAndInverseMatchDirectSums(int n) {
        TestData data = new TestData();
        float[] x = data.gaussian(n);
        RealFft fft = new RealFft(n);
        float[] re = new float[fft.bins()];
        float[] im = new float[fft.bins()];
        fft.forward(x, 0, re, im);
        for (int k = 0; k < fft.bins(); k++) {
            double sr = 0;
            double si = 0;
            for (int q = 0; q < n; q++) {
                double a = -2 * Math.PI * ((long) q * k % n) / n;
                sr += x[q] * Math.cos(a);
                si += x[q] * Math.sin(a);
            }
            assertEquals(sr, re[k], 1e-4 * Math.sqrt(n), "Re X[" + k + "] n=" + n + data.tag());
            assertEquals(si, im[k], 1e-4 * Math.sqrt(n), "Im X[" + k + "] n=" + n + data.tag());
        }
        float[] back = new float[n];
        fft.inverse(re, im, back);
        for (int q = 0; q < n; q++) {
            assertEquals(n * (double) x[q], back[q], 1e-4 * n, "unnormalized round trip q=" + q + " n=" + n + data.tag());
        }
    }

    /**
     * Relative error of all four transforms against direct float64 sums, at lengths of every JTransforms plan:
     * generic odd radix 29, 67 (and times 2, 3, 2^8: 134, 201, 11008, LLaMA's MLP width) and 13² (169), all
     * taken in float64; radix 7 (14336) and 11 (5632), kept in float; Bluestein (997 prime, 1023 = 3·11·31)
     * and split radix (4096). The in-place methods work at an
     * offset into a larger array whose other elements must stay as they were.
     */
    @ParameterizedTest
    @ValueSource(ints = {29, 67, 134, 169, 201, 997, 1023, 4096, 5632, 11008, 14336})
    void everyLengthIsAccurateToFloatRounding(int n) {
        TestData data = new TestData();
        RealFft fft = new RealFft(n);
        int h = fft.bins();
        double[] cos = new double[n];
        double[] sin = new double[n];
        for (int m = 0; m < n; m++) {
            cos[m] = Math.cos(2 * Math.PI * m / n);
            sin[m] = Math.sin(2 * Math.PI * m / n);
        }

        float[] x = data.gaussian(n);
        double[] expected = new double[2 * h]; // (re, im) of bins 0..n/2
        for (int k = 0; k < h; k++) {
            double sr = 0;
            double si = 0;
            int m = 0; // q·k mod n
            for (int q = 0; q < n; q++) {
                sr += x[q] * cos[m];
                si -= x[q] * sin[m];
                m += k;
                if (m >= n) {
                    m -= n;
                }
            }
            expected[2 * k] = sr;
            expected[2 * k + 1] = si;
        }
        float[] re = new float[h];
        float[] im = new float[h];
        fft.forward(x, 0, re, im);
        double[] got = new double[2 * h];
        for (int k = 0; k < h; k++) {
            got[2 * k] = re[k];
            got[2 * k + 1] = im[k];
        }
        assertAccurate(got, expected, "forward n=" + n + data.tag());

        int off = 3;
        float[] a = data.gaussian(n + 2 * off);
        float[] guard = a.clone();
        System.arraycopy(x, 0, a, off, n);
        fft.forwardInPlace(a, off);
        double[] packed = new double[2 * h];
        for (int k = 0; k < h; k++) {
            packed[2 * k] = a[off + fft.realSlot(k)];
            packed[2 * k + 1] = fft.imagSlot(k) < 0 ? 0 : a[off + fft.imagSlot(k)];
        }
        assertAccurate(packed, expected, "forwardInPlace n=" + n + data.tag());
        assertGuarded(a, guard, off, n, "forwardInPlace n=" + n + data.tag());

        // A Hermitian half spectrum; the imaginary parts a real inverse ignores are zero in the reference.
        float[] sr = data.gaussian(h);
        float[] si = data.gaussian(h);
        si[0] = 0f;
        if (n % 2 == 0) {
            si[h - 1] = 0f;
        }
        double[] signal = new double[n];
        for (int q = 0; q < n; q++) {
            double s = sr[0];
            int m = q; // q·k mod n
            for (int k = 1; k < h; k++) {
                double w = n % 2 == 0 && k == h - 1 ? 1 : 2; // the Nyquist bin has no mirror
                s += w * (sr[k] * cos[m] - si[k] * sin[m]);
                m += q;
                if (m >= n) {
                    m -= n;
                }
            }
            signal[q] = s;
        }
        float[] out = new float[n];
        fft.inverse(sr, si, out);
        assertAccurate(TestData.toDouble(out), signal, "inverse n=" + n + data.tag());

        a = data.gaussian(n + 2 * off);
        guard = a.clone();
        for (int k = 0; k < h; k++) {
            a[off + fft.realSlot(k)] = fft.inverseGain() * sr[k];
            if (fft.imagSlot(k) >= 0) {
                a[off + fft.imagSlot(k)] = fft.inverseGain() * si[k];
            }
        }
        fft.inverseInPlace(a, off);
        assertAccurate(TestData.toDouble(java.util.Arrays.copyOfRange(a, off, off + n)), signal,
                "inverseInPlace n=" + n + data.tag());
        assertGuarded(a, guard, off, n, "inverseInPlace n=" + n + data.tag());
    }

    /** The complex transforms, float throughout, at the same kinds of lengths. */
    @ParameterizedTest
    @ValueSource(ints = {29, 67, 201, 997, 1023, 4096, 11008})
    void complexTransformsAreAccurateToFloatRounding(int n) {
        TestData data = new TestData();
        ComplexFft fft = new ComplexFft(n);
        double[] cos = new double[n];
        double[] sin = new double[n];
        for (int m = 0; m < n; m++) {
            cos[m] = Math.cos(2 * Math.PI * m / n);
            sin[m] = Math.sin(2 * Math.PI * m / n);
        }
        for (int sign : new int[] {-1, 1}) {
            float[] a = data.gaussian(2 * n);
            double[] expected = FftPrecisionTest.dft(a, cos, sin, sign);
            if (sign < 0) {
                fft.forward(a);
            } else {
                fft.inverse(a);
            }
            assertAccurate(TestData.toDouble(a), expected, (sign < 0 ? "forward" : "inverse") + " n=" + n + data.tag());
        }
    }

    /** The float64 path is taken exactly for the mixed-radix lengths with a prime factor of 13 or more. */
    @Test
    void doublePrecisionOnlyWhereTheFloatPlanIsInaccurate() {
        for (int n : new int[] {13, 26, 169, 6656, 4864, 23, 29, 46, 67, 134, 201, 203, 209, 11008, 18944, 197 * 1024}) {
            assertTrue(RealFft.needsDoublePrecision(n), "n=" + n);
        }
        // Powers of two, only 2, 3 and 5, odd factors 7 and 11 only, Bluestein remainders (≥ 211).
        for (int n : new int[] {1, 2, 4096, 200, 768, 13824, 7, 14336, 28672, 8960, 77, 121, 5632, 211, 997, 1023,
                                3 * 223 * 64}) {
            assertFalse(RealFft.needsDoublePrecision(n), "n=" + n);
        }
    }

    private static void assertAccurate(double[] got, double[] expected, String what) {
        double err = TestData.relativeError(got, expected);
        assertTrue(err < ACCURATE, what + ": relative error " + err);
    }

    private static void assertGuarded(float[] a, float[] guard, int off, int n, String what) {
        for (int i = 0; i < a.length; i++) {
            if (i < off || i >= off + n) {
                assertEquals(guard[i], a[i], what + ": element " + i + " outside the transform changed");
            }
        }
    }
}
