package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.SpectralGrouping;
import org.spectralpeft.fourierft.SpectrumColumns;
import org.spectralpeft.reference.FourierFTReference;

/**
 * The column tables of the column-synthesis kernel, and that kernel's arithmetic replayed on the CPU in
 * float32 (tiles of rows, twiddles advanced by complex multiplication from an accurate start), checked
 * against the float64 reference. No GPU needed: this pins the algorithm; the GPU tests pin the kernel.
 */
class SpectrumColumnsTest {

    @ParameterizedTest(name = "{0}x{1} n={2}")
    @CsvSource({"7,5,12", "63,50,40", "40,12,400", "1,8,5", "33,2,40", "256,301,700"})
    void columnsHoldTheHalfSpectrumEntriesInRowOrder(int dOut, int dIn, int n) {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, n, data.seed, 150f);
        SpectrumColumns cols = spec.halfSpectrumColumns();
        SpectralGrouping g = spec.halfSpectrumGrouping();
        int h = spec.halfIn();
        assertEquals(h, cols.columns());
        assertEquals(g.entries(), cols.entries());

        // Same multiset of (row, column, coefficient) as the bin grouping; rows ascend within a column.
        long[] fromBins = new long[g.entries()];
        int i = 0;
        for (int b = 0; b < g.bins(); b++) {
            for (int e = g.start(b); e < g.start(b + 1); e++) {
                fromBins[i++] = key(g.position(b) / h, g.position(b) % h, g.coefficient(e));
            }
        }
        long[] fromColumns = new long[cols.entries()];
        i = 0;
        for (int v = 0; v < h; v++) {
            for (int e = cols.start(v); e < cols.start(v + 1); e++) {
                if (e > cols.start(v)) {
                    assertTrue(cols.row(e - 1) <= cols.row(e), "rows out of order in column " + v);
                }
                fromColumns[i++] = key(cols.row(e), v, cols.coefficient(e));
            }
        }
        java.util.Arrays.sort(fromBins);
        java.util.Arrays.sort(fromColumns);
        assertEquals(java.util.Arrays.toString(fromBins), java.util.Arrays.toString(fromColumns), "seed " + data.seed);
    }

    private static long key(int row, int col, int coeff) {
        return ((long) row << 42) | ((long) col << 21) | coeff;
    }

    @ParameterizedTest(name = "{0}x{1} n={2}")
    @CsvSource({"63,50,40", "256,301,700", "1000,24,300", "17,2,30", "1,9,5"})
    void kernelArithmeticMatchesTheReference(int dOut, int dIn, int n) {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, n, data.seed, 150f);
        float[] c = data.gaussian(n);
        float[][] gRe = new float[dOut][];
        float[][] gIm = new float[dOut][];
        synthesize(spec, c, gRe, gIm);

        // Row inverse transforms in float64, so the error measured is the column stage's.
        int h = spec.halfIn();
        double[] w = new double[dOut * dIn];
        for (int p = 0; p < dOut; p++) {
            for (int q = 0; q < dIn; q++) {
                double sum = 0;
                for (int v = 0; v < dIn; v++) { // the Hermitian extension of the half row
                    boolean stored = v < h;
                    int b = stored ? v : dIn - v;
                    double re = gRe[p][b];
                    double im = stored ? gIm[p][b] : -gIm[p][b];
                    if (2 * b == dIn || b == 0) {
                        im = 0; // C2R ignores the imaginary part of self-conjugate bins
                    }
                    double phase = 2 * Math.PI * ((long) q * v % dIn) / dIn;
                    sum += re * Math.cos(phase) - im * Math.sin(phase);
                }
                w[p * dIn + q] = sum;
            }
        }
        double[] cd = new double[n];
        for (int l = 0; l < n; l++) {
            cd[l] = c[l];
        }
        double[] ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), spec.alpha()).deltaW(cd);
        double err = 0;
        double norm = 0;
        for (int i = 0; i < ref.length; i++) {
            err += (w[i] - ref[i]) * (w[i] - ref[i]);
            norm += ref[i] * ref[i];
        }
        double rel = Math.sqrt(err / norm);
        assertTrue(norm > 0, "reference is all zero");
        assertTrue(rel < 2e-6, "relative error " + rel + ", seed " + data.seed);
    }

    /**
     * fourierft_column_synthesis, statement by statement, in float32, run over the chunks of a small
     * budget (32 rows, so tiles start at chunk offsets and chunks end in partial tiles).
     */
    private static void synthesize(FourierFTSpec spec, float[] c, float[][] gRe, float[][] gIm) {
        SpectrumColumns cols = spec.halfSpectrumColumns();
        int dOut = spec.dOut();
        int h = spec.halfIn();
        float halfScale = 0.5f * spec.scale();
        int tile = FourierFTKernels.COLUMN_TILE_ROWS;
        for (ColumnChunks.Chunk chunk : ColumnChunks.plan(1, dOut, h, 8L * h * 40)) {
            int rowEnd = chunk.rowBegin() + chunk.rows();
            for (int p0 = chunk.rowBegin(); p0 < rowEnd; p0 += tile) {
                for (int i = 0; i < tile && p0 + i < rowEnd; i++) {
                    if (gRe[p0 + i] != null) {
                        throw new AssertionError("row " + (p0 + i) + " written twice");
                    }
                    gRe[p0 + i] = new float[h];
                    gIm[p0 + i] = new float[h];
                }
                for (int v = 0; v < h; v++) {
                    float[] re = new float[tile];
                    float[] im = new float[tile];
                    for (int e = cols.start(v); e < cols.start(v + 1); e++) {
                        int u = cols.row(e);
                        float a = halfScale * c[cols.coefficient(e)];
                        float[] w = unitRoot((long) p0 * u % dOut, dOut);
                        float[] step = {cols.stepCos(e), cols.stepSin(e)};
                        for (int i = 0; i < tile; i++) {
                            re[i] = Math.fma(a, w[0], re[i]);
                            im[i] = Math.fma(a, w[1], im[i]);
                            float wx = Math.fma(w[0], step[0], -w[1] * step[1]);
                            w[1] = Math.fma(w[0], step[1], w[1] * step[0]);
                            w[0] = wx;
                        }
                    }
                    for (int i = 0; i < tile && p0 + i < rowEnd; i++) {
                        gRe[p0 + i][v] = re[i];
                        gIm[p0 + i][v] = im[i];
                    }
                }
            }
        }
    }

    // sincospif of the float-rounded reduced angle, as the kernel does (sincospif is within 1 ulp).
    private static float[] unitRoot(long m, int d) {
        long r = 2 * m > d ? m - d : m;
        float x = (float) (2 * r) / (float) d;
        return new float[] {(float) Math.cos(Math.PI * x), (float) Math.sin(Math.PI * x)};
    }

    @ParameterizedTest(name = "{0}x{1} n={2} sparse={3}")
    @CsvSource({"4096,4096,10000,true", "4096,4096,1000,true", "40,12,400,false", "9,6,54,false", "63,50,40,true"})
    void denseSpectraTakeTheTwoDimensionalPath(int dOut, int dIn, int n, boolean columnSynthesis) {
        FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, n);
        int entries = spec.halfSpectrumColumns().entries();
        assertEquals(columnSynthesis, CudaFourierFT.usesColumnSynthesis(spec, entries));
    }
}
