package org.spectralpeft.foura.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;
import org.spectralpeft.reference.FouRAReference;

/** Â = A·𝒯_in and B̂ = 𝒯_out⁻¹·B from the FFT and DCT against the float64 reference's transform matrices. */
class FoldedFactorsTest {

    /**
     * The tokens' spectra for the small-T gradients against a float64 DFT: one row at a time (few rows, or
     * lengths the batched transform does not take) and batched (blocks of rows, the last one partial); an element
     * a route skipped stays 0 and fails the comparison.
     */
    @ParameterizedTest(name = "d={0} rows={1} conjugate={2}")
    @CsvSource({
        "96, 3, false", "96, 37, true", "81, 20, false", "50, 9, true", "768, 16, true", "8, 5, false", "1, 4, true",
        "2, 6, false",
    })
    void spectraByBinAreTheUnitaryDft(int d, int rows, boolean conjugate) {
        TestData data = new TestData();
        float[] v = data.gaussian(rows * d);
        float[] out = FoldedFactors.spectraByBin(v, rows, d, conjugate);
        assertEquals(d * 2 * rows, out.length);
        double[] expected = new double[d * 2 * rows];
        for (int t = 0; t < rows; t++) {
            for (int k = 0; k < d; k++) {
                double re = 0;
                double im = 0;
                for (int j = 0; j < d; j++) {
                    double angle = -2 * Math.PI * ((long) j * k % d) / d;
                    re += v[t * d + j] * Math.cos(angle);
                    im += v[t * d + j] * Math.sin(angle);
                }
                expected[k * 2 * rows + t] = re / Math.sqrt(d);
                expected[k * 2 * rows + rows + t] = (conjugate ? -im : im) / Math.sqrt(d);
            }
        }
        double err = TestData.relativeError(TestData.toDouble(out), expected);
        assertTrue(err < 1e-6, "spectra: relative error " + err + data.tag());
        FoldedFactors.release(out);
    }

    /** tokens × 2r rows as 2·tokens rows of r: the real halves in token order, then the imaginary halves. */
    @ParameterizedTest(name = "tokens={0} r={1}")
    @CsvSource({"1, 1", "3, 4", "16, 16", "5, 7"})
    void planarPutsEveryRealHalfBeforeEveryImaginaryHalf(int tokens, int r) {
        TestData data = new TestData();
        float[] z = data.gaussian(tokens * 2 * r);
        float[] p = FoldedFactors.planar(z, tokens, r);
        assertEquals(2 * tokens * r, p.length);
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < r; c++) {
                assertEquals(z[t * 2 * r + c], p[t * r + c], "real, token " + t + data.tag());
                assertEquals(z[t * 2 * r + r + c], p[(tokens + t) * r + c], "imaginary, token " + t + data.tag());
            }
        }
    }

    @ParameterizedTest(name = "{0}x{1} r={2} {3}")
    @CsvSource({
        "7, 5, 3, DFT", "7, 5, 3, DCT", "12, 10, 4, DFT", "10, 12, 4, DCT", "1, 8, 1, DFT", "8, 1, 1, DCT",
        "8, 1, 1, DFT", "1, 8, 1, DCT", "64, 48, 8, DFT", "63, 50, 16, DCT", "96, 81, 16, DFT", "97, 101, 7, DCT",
    })
    void foldedFactorsMatchTheTransformMatrices(int dOut, int dIn, int r, Transform transform) {
        TestData data = new TestData();
        FouRASpec spec = FouRASpec.of(dOut, dIn, r, transform, Gate.NONE, 1f);
        boolean dft = transform == Transform.DFT;
        FouRAReference ref = new FouRAReference(dOut, dIn, r, dft, 1.0);
        float[] a = data.gaussian(r * dIn);
        float[] b = data.gaussian(dOut * r);

        double[][] t = ref.inputTransform(); // row k, column j
        int rows = dft ? 2 * r : r;
        double[] expectedA = new double[rows * dIn];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < dIn; j++) {
                for (int k = 0; k < dIn; k++) {
                    expectedA[i * dIn + j] += a[i * dIn + k] * t[0][k * dIn + j];
                    if (dft) {
                        expectedA[(r + i) * dIn + j] += a[i * dIn + k] * t[1][k * dIn + j];
                    }
                }
            }
        }
        double err = TestData.relativeError(TestData.toDouble(FoldedFactors.aHat(spec, a)), expectedA);
        assertTrue(err < 1e-6, "Â: relative error " + err + data.tag());

        double[][] inv = ref.outputInverse(); // row p, column o
        int width = dft ? 2 * r : r;
        double[] expectedB = new double[dOut * width];
        for (int p = 0; p < dOut; p++) {
            for (int i = 0; i < r; i++) {
                for (int o = 0; o < dOut; o++) {
                    expectedB[p * width + i] += inv[0][p * dOut + o] * b[o * r + i];
                    if (dft) {
                        expectedB[p * width + r + i] += inv[1][p * dOut + o] * b[o * r + i];
                    }
                }
            }
        }
        err = TestData.relativeError(TestData.toDouble(FoldedFactors.bHat(spec, b)), expectedB);
        assertTrue(err < 1e-6, "B̂: relative error " + err + data.tag());
    }

    /** gradA and gradB are the adjoints of the folds: ⟨G, aHat(A)⟩ = ⟨gradA(G), A⟩, likewise for B. */
    @ParameterizedTest(name = "{0}x{1} r={2} {3}")
    @CsvSource({
        "7, 5, 3, DFT", "7, 5, 3, DCT", "1, 8, 1, DFT", "8, 1, 1, DCT", "8, 1, 1, DFT", "1, 8, 1, DCT",
        "64, 48, 8, DFT", "96, 81, 16, DFT", "97, 101, 7, DCT", "50, 63, 5, DFT",
    })
    void gradientsAreTheAdjointsOfTheFolds(int dOut, int dIn, int r, Transform transform) {
        TestData data = new TestData();
        FouRASpec spec = FouRASpec.of(dOut, dIn, r, transform, Gate.NONE, 1f);
        float[] a = data.gaussian(r * dIn);
        float[] b = data.gaussian(dOut * r);
        float[] aHat = FoldedFactors.aHat(spec, a);
        float[] bHat = FoldedFactors.bHat(spec, b);
        float[] gA = data.gaussian(aHat.length);
        float[] gB = data.gaussian(bHat.length);
        assertAdjoint(dot(gA, aHat), dot(FoldedFactors.gradA(spec, gA), a), "A" + data.tag());
        assertAdjoint(dot(gB, bHat), dot(FoldedFactors.gradB(spec, gB), b), "B" + data.tag());
        if (transform == Transform.DFT) { // the same sums from the transposed layout, bit for bit
            int width = 2 * r;
            float[] gBT = new float[gB.length];
            for (int o = 0; o < dOut; o++) {
                for (int c = 0; c < width; c++) {
                    gBT[c * dOut + o] = gB[o * width + c];
                }
            }
            assertArrayEquals(FoldedFactors.gradB(spec, gB), FoldedFactors.gradBFromTransposed(spec, gBT), data.tag());
        }
    }

    private static double dot(float[] u, float[] v) {
        assertEquals(u.length, v.length);
        double s = 0;
        for (int i = 0; i < u.length; i++) {
            s += (double) u[i] * v[i];
        }
        return s;
    }

    private static void assertAdjoint(double lhs, double rhs, String what) {
        // both sides are sums of O(length) terms of size O(1): compare against that scale, not their (random) value
        assertEquals(lhs, rhs, 1e-5 * Math.max(1, Math.abs(lhs)) + 1e-4, "adjoint identity for " + what);
    }

    @org.junit.jupiter.api.Test
    void wrongLengthsAndNonFiniteValuesAreRefused() {
        FouRASpec spec = FouRASpec.of(6, 5, 2, Transform.DFT, Gate.NONE, 1f);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FoldedFactors.aHat(spec, new float[9]));
        assertTrue(e.getMessage().contains("A has 9 elements, expected 10"), e.getMessage());
        float[] b = new float[12];
        b[3] = Float.NaN;
        e = assertThrows(IllegalArgumentException.class, () -> FoldedFactors.bHat(spec, b));
        assertTrue(e.getMessage().contains("B[3] is NaN"), e.getMessage());
        assertEquals(20, FoldedFactors.aHat(spec, new TestData().gaussian(10)).length, "2r × d_in for DFT");
    }
}
