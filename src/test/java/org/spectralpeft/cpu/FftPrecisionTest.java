package org.spectralpeft.cpu;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.spectralpeft.TestData;

/**
 * The transforms FourierFT chains two of (tight {@link RealFft}, {@link ComplexFft}) stay within 2e-7 relative
 * error, about the split-radix plan's, at lengths where JTransforms' float plans are worse: Bluestein (1009),
 * radix 11 (2816 = 2^8·11, 5632), 5² (1600), and, for the complex plan, 2^k·3 (3072) and 2^k·7 (3584).
 */
class FftPrecisionTest {
    private static final double TIGHT = 2e-7;

    @Test
    void floatOnlyWhereAsAccurateAsSplitRadix() {
        for (int n : new int[] {1, 2, 4096, 32768, 1 << 20, 6, 768, 3072, 5120, 6912, 13824, 12288, 14336, 20480}) {
            assertTrue(RealFft.isTightInFloat(n), "n=" + n);
        }
        for (int n : new int[] {3, 7, 97, 1009, 1600, 2816, 3136, 5504, 11008, 6400, 17280, 19683, 49152}) {
            assertFalse(RealFft.isTightInFloat(n), "n=" + n);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1009, 1600, 2816, 3072, 3584, 5632})
    void tightTransformsMatchFloat64(int n) {
        TestData data = new TestData();
        double[] cos = new double[n];
        double[] sin = new double[n];
        for (int m = 0; m < n; m++) {
            cos[m] = Math.cos(2 * Math.PI * m / n);
            sin[m] = Math.sin(2 * Math.PI * m / n);
        }
        RealFft real = new RealFft(n, true);
        int h = real.bins();
        float[] x = data.gaussian(n);
        float[] re = new float[h];
        float[] im = new float[h];
        real.forward(x, 0, re, im);
        float[] full = new float[2 * n];
        for (int q = 0; q < n; q++) {
            full[2 * q] = x[q];
        }
        double[] expected = dft(full, cos, sin, -1);
        double[] got = new double[2 * n];
        double[] want = new double[2 * n];
        for (int k = 0; k < h; k++) {
            got[2 * k] = re[k];
            got[2 * k + 1] = im[k];
            want[2 * k] = expected[2 * k];
            want[2 * k + 1] = expected[2 * k + 1];
        }
        check(got, want, "real forward n=" + n + data.tag());

        float[] sr = data.gaussian(h);
        float[] si = data.gaussian(h);
        si[0] = 0f; // ignored by a real inverse, as the Nyquist bin's for even n
        if (n % 2 == 0) {
            si[h - 1] = 0f;
        }
        float[] hermitian = new float[2 * n];
        for (int k = 0; k < h; k++) {
            hermitian[2 * k] = sr[k];
            hermitian[2 * k + 1] = si[k];
            hermitian[2 * ((n - k) % n)] = sr[k];
            hermitian[2 * ((n - k) % n) + 1] = -si[k];
        }
        double[] signal = dft(hermitian, cos, sin, 1);
        double[] wantReal = new double[n];
        for (int q = 0; q < n; q++) {
            wantReal[q] = signal[2 * q];
        }
        float[] out = new float[n];
        real.inverse(sr, si, out);
        check(TestData.toDouble(out), wantReal, "real inverse n=" + n + data.tag());

        ComplexFft complex = new ComplexFft(n);
        for (int sign : new int[] {-1, 1}) {
            float[] a = data.gaussian(2 * n);
            double[] ref = dft(a, cos, sin, sign);
            if (sign < 0) {
                complex.forward(a);
            } else {
                complex.inverse(a);
            }
            check(TestData.toDouble(a), ref, (sign < 0 ? "complex forward" : "complex inverse") + " n=" + n
                    + data.tag());
        }
    }

    /** Σ_q a[q]·e^{sign·2πi qk/n}, interleaved, in float64 with exact phases. */
    static double[] dft(float[] a, double[] cos, double[] sin, int sign) {
        int n = cos.length;
        double[] out = new double[2 * n];
        for (int k = 0; k < n; k++) {
            double er = 0;
            double ei = 0;
            int m = 0; // q·k mod n
            for (int q = 0; q < n; q++) {
                double c = cos[m];
                double s = sign * sin[m];
                er += a[2 * q] * c - a[2 * q + 1] * s;
                ei += a[2 * q] * s + a[2 * q + 1] * c;
                m += k;
                if (m >= n) {
                    m -= n;
                }
            }
            out[2 * k] = er;
            out[2 * k + 1] = ei;
        }
        return out;
    }

    private static void check(double[] got, double[] expected, String what) {
        double err = TestData.relativeError(got, expected);
        assertTrue(err <= TIGHT, what + ": relative error " + err + " > " + TIGHT);
    }
}
