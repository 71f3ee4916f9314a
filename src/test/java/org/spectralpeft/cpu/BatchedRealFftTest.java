package org.spectralpeft.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The batched real inverse against a float64 DFT of the same float inputs. */
class BatchedRealFftTest {
    /** Relative L2 error of float32 rounding through log n passes; the split-radix float plan measures 1.6e-7. */
    private static final double FLOAT32_LEVEL = 3e-7;

    @ParameterizedTest
    @CsvSource({
        "2, 1", "2, 5", "3, 1", "3, 4", "6, 3", "12, 7", "96, 1", "96, 13", "768, 1", "768, 5", "768, 64",
        "1536, 3", "3072, 2", "4096, 3", "4096, 16", "9, 2", "24, 33", "48, 8"
    })
    void matchesFloat64Dft(int n, int rows) {
        Random random = new Random(31L * n + rows);
        int bins = n / 2 + 1;
        int maxRows = rows + 2; // a block below the capacity
        BatchedRealFft fft = new BatchedRealFft(n, maxRows);
        // Poison the rows beyond the block: they must not be read.
        for (int k = 0; k < bins; k++) {
            Arrays.fill(fft.spectrumRe()[k], Float.NaN);
            Arrays.fill(fft.spectrumIm()[k], Float.NaN);
        }
        float[][] re = new float[rows][bins];
        float[][] im = new float[rows][bins];
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < bins; k++) {
                re[r][k] = (float) random.nextGaussian();
                im[r][k] = (float) random.nextGaussian(); // ignored at bin 0 (and n/2 for even n)
                fft.spectrumRe()[k][r] = re[r][k];
                fft.spectrumIm()[k][r] = im[r][k];
            }
        }
        int stride = n + 3;
        int off = 2;
        float[] out = new float[off + rows * stride + 1];
        Arrays.fill(out, Float.NaN);
        fft.inverse(rows, out, off, stride);
        double[] cos = new double[n];
        double[] sin = new double[n];
        for (int m = 0; m < n; m++) {
            cos[m] = Math.cos(2 * Math.PI * m / n);
            sin[m] = Math.sin(2 * Math.PI * m / n);
        }
        for (int r = 0; r < rows; r++) {
            double err = 0;
            double norm = 0;
            for (int q = 0; q < n; q++) {
                double x = re[r][0];
                for (int k = 1; k < bins; k++) {
                    int m = (int) ((long) q * k % n);
                    boolean nyquist = n % 2 == 0 && k == n / 2;
                    double weight = nyquist ? 1 : 2; // bins k and n-k
                    x += weight * (re[r][k] * cos[m] - (nyquist ? 0 : im[r][k] * sin[m]));
                }
                double d = out[off + r * stride + q] - x;
                err += d * d;
                norm += x * x;
            }
            double rel = Math.sqrt(err / norm);
            assertTrue(rel <= FLOAT32_LEVEL, "n=" + n + " rows=" + rows + " row " + r + ": relative L2 error " + rel);
        }
        for (int i = 0; i < out.length; i++) {
            int r = (i - off) / stride;
            int q = (i - off) % stride;
            boolean inside = i >= off && r < rows && q < n;
            assertEquals(inside, !Float.isNaN(out[i]), "n=" + n + " rows=" + rows + " out[" + i + "]");
        }
    }

    @Test
    void supportsOnlyFactorsTwoAndThree() {
        for (int n : new int[] {2, 3, 4, 6, 9, 12, 768, 1536, 3072, 4096, 12288}) {
            assertTrue(BatchedRealFft.supports(n), "n=" + n);
        }
        for (int n : new int[] {-4, 0, 1, 5, 10, 14, 11008, 4095}) {
            assertFalse(BatchedRealFft.supports(n), "n=" + n);
        }
        assertThrows(IllegalArgumentException.class, () -> new BatchedRealFft(10, 4));
        BatchedRealFft fft = new BatchedRealFft(12, 4);
        assertThrows(IllegalArgumentException.class, () -> fft.inverse(5, new float[100], 0, 12));
    }

    @Test
    void blocksOfDifferentSizesReuseOneInstance() {
        int n = 768;
        BatchedRealFft fft = new BatchedRealFft(n, 8);
        float[] first = null;
        for (int rows : new int[] {8, 3, 8, 1}) {
            fft.clear(rows);
            fft.spectrumRe()[5][0] = 1f; // row 0: cos(2π·5q/n), twice
            float[] out = new float[rows * n];
            fft.inverse(rows, out, 0, n);
            float[] row0 = Arrays.copyOf(out, n);
            if (first == null) {
                first = row0;
            }
            assertEquals(2.0, row0[0], 1e-6);
            if (rows > 1) {
                assertEquals(0f, out[rows * n - 1], 0f, "rows=" + rows); // the other rows' spectra are zero
            }
            assertTrue(Arrays.equals(first, row0), "rows=" + rows);
        }
    }
}
