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

    /**
     * The forward transform against a float64 DFT, on either kind of loop, with the rows read at a stride and an
     * offset, and the spectrum's arrays poisoned beyond the block (the rows past it are left as they were).
     */
    @ParameterizedTest
    @CsvSource({"2, 1", "3, 4", "6, 3", "9, 2", "12, 7", "27, 5", "96, 13", "768, 5", "768, 33", "4096, 3",
        "1536, 17"})
    void forwardMatchesFloat64Dft(int n, int rows) {
        BatchedPasses vector = BatchedPasses.vectorOrNull();
        BatchedPasses[] loops = vector == null ? new BatchedPasses[] {ScalarBatchedPasses.INSTANCE}
                : new BatchedPasses[] {ScalarBatchedPasses.INSTANCE, vector};
        float[][] previous = null;
        for (BatchedPasses passes : loops) {
            Random random = new Random(13L * n + rows);
            BatchedRealFft fft = new BatchedRealFft(n, rows + 2, passes);
            for (int k = 0; k < fft.bins(); k++) {
                Arrays.fill(fft.spectrumRe()[k], Float.NaN);
                Arrays.fill(fft.spectrumIm()[k], Float.NaN);
            }
            int stride = n + 5;
            int off = 3;
            float[] in = new float[off + rows * stride];
            Arrays.fill(in, Float.NaN); // only the rows' n values may be read
            for (int r = 0; r < rows; r++) {
                for (int q = 0; q < n; q++) {
                    in[off + r * stride + q] = (float) random.nextGaussian();
                }
            }
            fft.forward(rows, in, off, stride);
            float[][] got = new float[2 * fft.bins()][];
            for (int k = 0; k < fft.bins(); k++) {
                got[2 * k] = fft.spectrumRe()[k].clone();
                got[2 * k + 1] = fft.spectrumIm()[k].clone();
                for (int r = rows; r < rows + 2; r++) {
                    assertTrue(Float.isNaN(got[2 * k][r]) && Float.isNaN(got[2 * k + 1][r]), "row " + r + " written");
                }
            }
            for (int r = 0; r < rows; r++) {
                double err = 0;
                double norm = 0;
                for (int k = 0; k < fft.bins(); k++) {
                    double sr = 0;
                    double si = 0;
                    for (int q = 0; q < n; q++) {
                        double angle = 2 * Math.PI * ((long) q * k % n) / n;
                        double v = in[off + r * stride + q];
                        sr += v * Math.cos(angle);
                        si -= v * Math.sin(angle);
                    }
                    double dr = got[2 * k][r] - sr;
                    double di = got[2 * k + 1][r] - si;
                    err += dr * dr + di * di;
                    norm += sr * sr + si * si;
                }
                double rel = Math.sqrt(err / norm);
                assertTrue(rel <= FLOAT32_LEVEL, passes.getClass().getSimpleName() + " n=" + n + " rows=" + rows
                        + " row " + r + ": relative L2 error " + rel);
            }
            if (previous != null) { // the vector loops give the scalar loops' bits
                for (int i = 0; i < got.length; i++) {
                    for (int r = 0; r < rows; r++) {
                        assertEquals(Float.floatToRawIntBits(previous[i][r]), Float.floatToRawIntBits(got[i][r]),
                                "n=" + n + " rows=" + rows + " value " + i + " row " + r);
                    }
                }
            }
            previous = got;
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

    /**
     * forwardInto: every bin of the whole Hermitian spectrum, each the value {@link BatchedRealFft#forward} gives
     * scaled (bins past n/2 its conjugates), at its place in one flat array with gaps; nothing else written. On
     * both loops, even and odd lengths, row counts off the vector length.
     */
    @ParameterizedTest
    @CsvSource({"2, 1", "3, 4", "6, 3", "27, 5", "96, 16", "768, 17", "4096, 16", "4096, 3"})
    void forwardIntoIsTheForwardScaledAsWholeSpectra(int n, int rows) {
        BatchedPasses vector = BatchedPasses.vectorOrNull();
        BatchedPasses[] loops = vector == null ? new BatchedPasses[] {ScalarBatchedPasses.INSTANCE}
                : new BatchedPasses[] {ScalarBatchedPasses.INSTANCE, vector};
        for (BatchedPasses passes : loops) {
            Random random = new Random(31L * n + rows);
            float[] in = new float[rows * n];
            for (int i = 0; i < in.length; i++) {
                in[i] = (float) random.nextGaussian();
            }
            BatchedRealFft plain = new BatchedRealFft(n, rows, passes);
            plain.forward(rows, in, 0, n);
            float scale = 0.37f;
            float imScale = -1.9f;
            int binStride = 2 * rows + 3;
            int reOff = 5;
            int imOff = reOff + rows + 1;
            float[] out = new float[reOff + n * binStride];
            Arrays.fill(out, Float.NaN);
            new BatchedRealFft(n, rows + 2, passes).forwardInto(rows, in, 0, n, out, reOff, imOff, binStride, scale,
                    imScale);
            boolean[] written = new boolean[out.length];
            for (int k = 0; k < n; k++) {
                int bin = Math.min(k, n - k);
                float sign = k == bin ? 1f : -1f;
                for (int r = 0; r < rows; r++) {
                    String what = passes.getClass().getSimpleName() + " n=" + n + " bin " + k + " row " + r;
                    int re = reOff + k * binStride + r;
                    int im = imOff + k * binStride + r;
                    assertTrue(out[re] == scale * plain.spectrumRe()[bin][r], what + ": " + out[re]);
                    assertTrue(out[im] == sign * (imScale * plain.spectrumIm()[bin][r]), what + ": " + out[im]);
                    written[re] = true;
                    written[im] = true;
                }
            }
            for (int i = 0; i < out.length; i++) {
                if (!written[i]) {
                    assertTrue(Float.isNaN(out[i]), "n=" + n + " rows=" + rows + ": " + i + " written");
                }
            }
        }
    }

    /**
     * The vector loops give the scalar loops' bits (same operations, same order), at lengths with every pass
     * kind and at row counts off the vector length, with the padding lanes never written out.
     */
    @ParameterizedTest
    @CsvSource({"768, 64", "768, 13", "1536, 7", "96, 1", "12, 9", "27, 17", "3072, 24", "4096, 5"})
    void theVectorLoopsGiveTheScalarLoopsBits(int n, int rows) {
        BatchedPasses vector = BatchedPasses.vectorOrNull();
        org.junit.jupiter.api.Assumptions.assumeTrue(vector != null, "the JVM has no jdk.incubator.vector");
        Random random = new Random(7L * n + rows);
        BatchedRealFft scalar = new BatchedRealFft(n, rows + 3, ScalarBatchedPasses.INSTANCE);
        BatchedRealFft vectored = new BatchedRealFft(n, rows + 3, vector);
        float[][] outs = new float[2][];
        int stride = n + 1;
        int i = 0;
        for (BatchedRealFft fft : new BatchedRealFft[] {scalar, vectored}) {
            random.setSeed(7L * n + rows);
            for (int k = 0; k < fft.bins(); k++) {
                Arrays.fill(fft.spectrumRe()[k], Float.NaN);
                Arrays.fill(fft.spectrumIm()[k], Float.NaN);
                for (int r = 0; r < rows; r++) {
                    fft.spectrumRe()[k][r] = (float) random.nextGaussian();
                    fft.spectrumIm()[k][r] = (float) random.nextGaussian();
                }
            }
            float[] out = new float[rows * stride];
            Arrays.fill(out, Float.NaN);
            fft.inverse(rows, out, 0, stride);
            outs[i++] = out;
        }
        for (int r = 0; r < rows; r++) {
            for (int q = 0; q < stride; q++) {
                float s = outs[0][r * stride + q];
                float v = outs[1][r * stride + q];
                assertEquals(q == n, Float.isNaN(v), "n=" + n + " row " + r + " q " + q);
                assertEquals(Float.floatToRawIntBits(s), Float.floatToRawIntBits(v),
                        "n=" + n + " rows=" + rows + " row " + r + " q " + q + ": " + s + " vs " + v);
            }
        }
    }

    @Test
    void testsRunWithTheVectorLoops() {
        // The build's test JVM adds jdk.incubator.vector (pom.xml); the loops above must not be skipped there.
        org.junit.jupiter.api.Assumptions.assumeTrue(
                ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent(), "module not added");
        assertTrue(BatchedPasses.vectorOrNull() instanceof VectorBatchedPasses);
        assertTrue(BatchedPasses.fastest() instanceof VectorBatchedPasses
                || "off".equals(System.getProperty(BatchedPasses.PROPERTY)));
    }

    /** By output index: every index once, in order, with the bits {@link BatchedRealFft#inverse} gives by row. */
    @ParameterizedTest
    @CsvSource({"768, 64", "768, 5", "27, 4", "4096, 3", "2, 1"})
    void byColumnGivesTheRowsTransposed(int n, int rows) {
        Random random = new Random(11L * n + rows);
        BatchedRealFft fft = new BatchedRealFft(n, rows + 1);
        for (int k = 0; k < fft.bins(); k++) {
            for (int r = 0; r < rows; r++) {
                fft.spectrumRe()[k][r] = (float) random.nextGaussian();
                fft.spectrumIm()[k][r] = (float) random.nextGaussian();
            }
        }
        float[] byRow = new float[rows * n];
        fft.inverse(rows, byRow, 0, n);
        int[] next = {0};
        fft.inverseByColumn(rows, (q, values, from) -> {
            assertEquals(next[0]++, q, "output indices in order");
            for (int r = 0; r < rows; r++) {
                assertEquals(Float.floatToRawIntBits(byRow[r * n + q]), Float.floatToRawIntBits(values[from + r]),
                        "n=" + n + " row " + r + " q " + q);
            }
        });
        assertEquals(n, next[0], "every output index");
    }

    /** The synthesis step of a spectrum: store, then add, (a + ib)·(c + is) over the rows, both loop kinds. */
    @Test
    void addRotatedStoresThenAdds() {
        int rows = 21;
        float[] c = new float[rows];
        float[] s = new float[rows];
        Random random = new Random(5);
        for (int r = 0; r < rows; r++) {
            c[r] = (float) random.nextGaussian();
            s[r] = (float) random.nextGaussian();
        }
        BatchedPasses vector = BatchedPasses.vectorOrNull();
        for (BatchedPasses passes : vector == null ? new BatchedPasses[] {ScalarBatchedPasses.INSTANCE}
                : new BatchedPasses[] {ScalarBatchedPasses.INSTANCE, vector}) {
            BatchedRealFft fft = new BatchedRealFft(12, rows, passes);
            Arrays.fill(fft.spectrumRe()[3], Float.NaN); // overwritten, not read
            Arrays.fill(fft.spectrumIm()[3], Float.NaN);
            fft.addRotated(3, 2f, -1f, c, s, rows, true);
            fft.addRotated(3, 0.5f, 0.25f, c, s, rows, false);
            for (int r = 0; r < rows; r++) {
                float re = (2f * c[r] - -1f * s[r]) + (0.5f * c[r] - 0.25f * s[r]);
                float im = (-1f * c[r] + 2f * s[r]) + (0.25f * c[r] + 0.5f * s[r]);
                assertEquals(re, fft.spectrumRe()[3][r], 0f, passes + " row " + r);
                assertEquals(im, fft.spectrumIm()[3][r], 0f, passes + " row " + r);
            }
        }
    }
}
