package org.spectralpeft.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The batched complex inverse against a float64 DFT of the same float inputs, on either kind of loop. */
class BatchedComplexFftTest {
    /** Relative L2 error of float32 rounding through log n passes (PyTorch's float32 ifft: 1.1e-7 to 1.3e-7). */
    private static final double FLOAT32_LEVEL = 2e-7;

    @ParameterizedTest
    @CsvSource({"1, 3", "2, 1", "3, 5", "4, 2", "6, 17", "12, 1", "96, 9", "384, 16", "768, 21", "768, 64",
        "1536, 2", "4096, 3", "27, 8"})
    void matchesFloat64Dft(int n, int rows) {
        for (BatchedPasses passes : loops()) {
            Random random = new Random(17L * n + rows);
            BatchedComplexFft fft = new BatchedComplexFft(n, rows + 5, passes); // a block below the capacity
            int width = fft.width(rows);
            assertTrue(width >= rows && width % passes.lanes() == 0, "width " + width);
            float[] re = fft.inputRe();
            float[] im = fft.inputIm();
            java.util.Arrays.fill(re, Float.NaN); // lanes past the block must not reach the rows' results
            java.util.Arrays.fill(im, Float.NaN);
            float[][] xr = new float[rows][n];
            float[][] xi = new float[rows][n];
            for (int r = 0; r < rows; r++) {
                for (int k = 0; k < n; k++) {
                    xr[r][k] = (float) random.nextGaussian();
                    xi[r][k] = (float) random.nextGaussian();
                    re[k * width + r] = xr[r][k];
                    im[k * width + r] = xi[r][k];
                }
            }
            fft.inverse(rows);
            for (int r = 0; r < rows; r++) {
                double err = 0;
                double norm = 0;
                for (int q = 0; q < n; q++) {
                    double sr = 0;
                    double si = 0;
                    for (int k = 0; k < n; k++) {
                        double angle = 2 * Math.PI * ((long) q * k % n) / n;
                        double c = Math.cos(angle);
                        double s = Math.sin(angle);
                        sr += xr[r][k] * c - xi[r][k] * s;
                        si += xr[r][k] * s + xi[r][k] * c;
                    }
                    double dr = fft.resultRe()[q * width + r] - sr;
                    double di = fft.resultIm()[q * width + r] - si;
                    err += dr * dr + di * di;
                    norm += sr * sr + si * si;
                }
                double rel = Math.sqrt(err / norm);
                assertTrue(rel <= FLOAT32_LEVEL, passes.getClass().getSimpleName() + " n=" + n + " rows=" + rows
                        + " row " + r + ": relative L2 error " + rel);
            }
        }
    }

    /** Both loop kinds give the same bits, padding lanes included (zeros in, zeros out). */
    @ParameterizedTest
    @CsvSource({"768, 21", "96, 16", "12, 3", "4096, 5"})
    void theVectorLoopsGiveTheScalarLoopsBits(int n, int rows) {
        BatchedPasses vector = BatchedPasses.vectorOrNull();
        org.junit.jupiter.api.Assumptions.assumeTrue(vector != null, "the JVM has no jdk.incubator.vector");
        BatchedComplexFft scalar = new BatchedComplexFft(n, rows, ScalarBatchedPasses.INSTANCE);
        BatchedComplexFft vectored = new BatchedComplexFft(n, rows, vector);
        Random random = new Random(n + 31L * rows);
        int w = vectored.width(rows);
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < n; k++) {
                float a = (float) random.nextGaussian();
                float b = (float) random.nextGaussian();
                scalar.inputRe()[k * rows + r] = a;
                scalar.inputIm()[k * rows + r] = b;
                vectored.inputRe()[k * w + r] = a;
                vectored.inputIm()[k * w + r] = b;
            }
        }
        for (int k = 0; k < n; k++) {
            for (int r = rows; r < w; r++) { // padding lanes: inverse zeroes them first
                vectored.inputRe()[k * w + r] = Float.NaN;
                vectored.inputIm()[k * w + r] = Float.NaN;
            }
        }
        scalar.inverse(rows);
        vectored.inverse(rows);
        for (int q = 0; q < n; q++) {
            for (int r = 0; r < w; r++) {
                float vr = vectored.resultRe()[q * w + r];
                float vi = vectored.resultIm()[q * w + r];
                if (r >= rows) {
                    assertEquals(0f, vr, "padding lane " + r + " at " + q);
                    assertEquals(0f, vi, "padding lane " + r + " at " + q);
                    continue;
                }
                assertEquals(Float.floatToRawIntBits(scalar.resultRe()[q * rows + r]), Float.floatToRawIntBits(vr),
                        "n=" + n + " row " + r + " q " + q);
                assertEquals(Float.floatToRawIntBits(scalar.resultIm()[q * rows + r]), Float.floatToRawIntBits(vi),
                        "n=" + n + " row " + r + " q " + q);
            }
        }
    }

    @Test
    void refusesUnsupportedLengthsAndBlocks() {
        assertFalse(BatchedComplexFft.supports(0));
        assertFalse(BatchedComplexFft.supports(5));
        assertFalse(BatchedComplexFft.supports(11008));
        assertTrue(BatchedComplexFft.supports(1));
        assertTrue(BatchedComplexFft.supports(768));
        assertThrows(IllegalArgumentException.class, () -> new BatchedComplexFft(10, 4));
        assertThrows(IllegalArgumentException.class, () -> new BatchedComplexFft(8, 0));
        BatchedComplexFft fft = new BatchedComplexFft(8, 4);
        assertThrows(IllegalArgumentException.class, () -> fft.inverse(5));
        assertThrows(IllegalArgumentException.class, () -> fft.inverse(0));
    }

    private static BatchedPasses[] loops() {
        BatchedPasses vector = BatchedPasses.vectorOrNull();
        return vector == null ? new BatchedPasses[] {ScalarBatchedPasses.INSTANCE}
                : new BatchedPasses[] {ScalarBatchedPasses.INSTANCE, vector};
    }
}
