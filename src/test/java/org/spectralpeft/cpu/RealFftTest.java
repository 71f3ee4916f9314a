package org.spectralpeft.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.spectralpeft.TestData;

/** The packed-layout wrapper against a direct DFT, for even, odd and power-of-two lengths. */
class RealFftTest {

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
}
