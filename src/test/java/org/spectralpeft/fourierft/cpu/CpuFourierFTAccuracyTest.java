package org.spectralpeft.fourierft.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.reference.FourierFTReference;

/**
 * Every CPU path of FourierFT (materialize, merge, forward, backward's ∂L/∂c and ∂L/∂x, ∂L/∂c from ∂L/∂ΔW) held
 * to 3e-7 relative Frobenius error against the float64 reference, PEFT's level in float32. The lengths are
 * those where JTransforms' float plans are least accurate: primes (7, 97; 1009 takes the Bluestein plan),
 * 2^k·prime (5504 and 11008 = 2^8·43, 14336 = 2^11·7) and 2^k·3^b (768, 3072, 13824). Each is d_out of a tall
 * shape (its columns dense enough to be transformed by FFT) and d_in of a wide one (row transforms of that
 * length, columns synthesized directly). The reference costs n·d_out·d_in, so large outputs are compared on a
 * random sample of rows, columns or coefficients (all of them where there are few).
 */
class CpuFourierFTAccuracyTest {
    /** PEFT's error in float32 is about 1.6e-7 at these sizes; this is the bound the CPU backend keeps. */
    private static final double TOLERANCE = 3e-7;
    private static final int[] LENGTHS = {7, 97, 1009, 768, 3072, 5504, 11008, 13824, 14336};
    /** The other dimension of each shape: small, so that the reference's cost stays moderate. */
    private static final int PARTNER = 16;
    /** Rows or columns of a large output, and coefficients, compared against the reference. */
    private static final int SAMPLE = 16;
    private static final int COEFF_SAMPLE = 96;
    /** More than one task's tokens in the backward pass, so its cross-task reduction is covered. */
    private static final int TOKENS = 40;

    private static CpuFourierFT cpu;

    @BeforeAll
    static void open() {
        cpu = new CpuFourierFT();
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    /** (d_out, d_in, n) with len as d_out: about 30 entries per column, so most columns are transformed by FFT. */
    private static int[] tall(int len) {
        return new int[] {len, PARTNER, Math.min(240, len * PARTNER / 2)};
    }

    /** (d_out, d_in, n) with len as d_in: a few entries per column, so most columns are synthesized directly. */
    private static int[] wide(int len) {
        return new int[] {PARTNER, len, Math.min(200, len)};
    }

    /**
     * Square shapes whose columns are all dense (768² with n = 10000: about 26 entries in each 768-point column,
     * transformed as a batch on the vector loops), beside the tall and wide shapes of each length.
     */
    private static final int[][] SQUARE = {{768, 768, 10000}, {96, 96, 2000}};

    static Stream<Arguments> shapes() {
        return Stream.concat(Arrays.stream(LENGTHS).boxed().flatMap(len -> Stream.of(tall(len), wide(len))),
                Arrays.stream(SQUARE)).map(s -> Arguments.of(s[0], s[1], s[2]));
    }

    /**
     * The shapes reach both ways of transforming a column: by FFT (tall) and directly (wide; except 16×7, whose
     * half spectrum has only 4 columns).
     */
    @Test
    void shapesReachBothColumnPaths() {
        for (int len : LENGTHS) {
            Case tall = new Case(tall(len));
            assertTrue(fftShare(tall) > 0.5, "tall " + len + ": most entries in FFT columns" + tall.data.tag());
            Case wide = new Case(wide(len));
            assertTrue(len < PARTNER || fftShare(wide) < 0.5,
                    "wide " + len + ": most entries in direct columns" + wide.data.tag());
        }
    }

    /** The share of the half spectrum's entries in columns transformed by FFT. */
    private static double fftShare(Case c) {
        var cols = c.spec.halfSpectrumColumns();
        int inFft = 0;
        for (int v = 0; v < cols.columns(); v++) {
            int entries = cols.start(v + 1) - cols.start(v);
            inFft += entries > CpuFourierFT.directColumnEntries(c.spec.dOut()) ? entries : 0;
        }
        return inFft / (double) cols.start(cols.columns());
    }

    @ParameterizedTest(name = "{0}x{1} n={2}")
    @MethodSource("shapes")
    void everyPathMatchesFloat64(int dOut, int dIn, int n) {
        Case c = new Case(dOut, dIn, n);
        float[] coeffs = c.data.gaussian(n);
        double[] cd = TestData.toDouble(coeffs);
        int[] rows = sample(c.data, dOut, SAMPLE);
        double[] refRows = deltaWRows(c.ref, cd, rows, dIn);

        HostArray out = TestData.poisoned(DType.FLOAT32, dOut * dIn);
        cpu.materialize(c.spec, coeffs, out);
        c.check("materialize", pickRows(out, rows, dIn), refRows);

        float[] w0 = c.data.gaussian(dOut * dIn);
        float rms = (float) Math.sqrt(Arrays.stream(refRows).map(v -> v * v).average().orElse(0));
        for (int i = 0; i < w0.length; i++) {
            w0[i] *= rms; // weights of ΔW's size, so that W + ΔW − W measures ΔW itself
        }
        HostArray w = HostArray.float32(w0.clone());
        cpu.merge(c.spec, coeffs, w);
        double[] added = new double[rows.length * dIn];
        for (int r = 0; r < rows.length; r++) {
            for (int q = 0; q < dIn; q++) {
                int i = rows[r] * dIn + q;
                added[r * dIn + q] = (double) w.get(i) - w0[i];
            }
        }
        c.check("merge (the ΔW added)", added, refRows);

        int[] picked = sample(c.data, n, COEFF_SAMPLE);
        float[] g = c.data.gaussian(dOut * dIn);
        float[] gradW = new float[n];
        cpu.gradCoefficients(c.spec, HostArray.float32(g), gradW);
        c.check("∂L/∂c from ∂L/∂ΔW", pick(gradW, picked),
                gradCoefficients(c.ref, TestData.toDouble(g), picked, dOut, dIn));

        float[] x = c.data.gaussian(TOKENS * dIn);
        HostArray y = HostArray.allocate(DType.FLOAT32, TOKENS * dOut);
        cpu.forward(c.spec, coeffs, HostArray.float32(x), TOKENS, y);
        double[] yGot = new double[TOKENS * rows.length];
        double[] yRef = new double[TOKENS * rows.length];
        for (int t = 0; t < TOKENS; t++) {
            for (int r = 0; r < rows.length; r++) {
                double sum = 0;
                for (int q = 0; q < dIn; q++) {
                    sum += x[t * dIn + q] * refRows[r * dIn + q];
                }
                yRef[t * rows.length + r] = sum;
                yGot[t * rows.length + r] = y.get(t * dOut + rows[r]);
            }
        }
        c.check("forward", yGot, yRef);

        float[] gy = c.data.gaussian(TOKENS * dOut);
        float[] gradC = new float[n];
        HostArray gx = HostArray.allocate(DType.FLOAT32, TOKENS * dIn);
        cpu.backward(c.spec, coeffs, HostArray.float32(x), HostArray.float32(gy), TOKENS, gradC, gx);
        double[] gTokens = new double[dOut * dIn]; // ∂L/∂ΔW = Σ_t gy[t] ⊗ x[t]
        for (int t = 0; t < TOKENS; t++) {
            for (int p = 0; p < dOut; p++) {
                double gp = gy[t * dOut + p];
                for (int q = 0; q < dIn; q++) {
                    gTokens[p * dIn + q] += gp * x[t * dIn + q];
                }
            }
        }
        c.check("backward ∂L/∂c", pick(gradC, picked), gradCoefficients(c.ref, gTokens, picked, dOut, dIn));
        int[] cols = sample(c.data, dIn, SAMPLE);
        double[] refCols = deltaWColumns(c.ref, cd, cols, dOut);
        double[] gxGot = new double[TOKENS * cols.length];
        double[] gxRef = new double[TOKENS * cols.length];
        for (int t = 0; t < TOKENS; t++) {
            for (int k = 0; k < cols.length; k++) {
                double sum = 0;
                for (int p = 0; p < dOut; p++) {
                    sum += gy[t * dOut + p] * refCols[p * cols.length + k];
                }
                gxRef[t * cols.length + k] = sum;
                gxGot[t * cols.length + k] = gx.get(t * dIn + cols[k]);
            }
        }
        c.check("backward ∂L/∂x", gxGot, gxRef);
    }

    /** LLaMA's MLP projection, 4096×11008: 4096-point columns and 11008-point (2^8·43) row transforms. */
    @Test
    void llamaMlpMaterialize() {
        int dOut = 4096;
        int dIn = 11008;
        Case c = new Case(dOut, dIn, 1000);
        float[] coeffs = c.data.gaussian(c.spec.n());
        int[] rows = sample(c.data, dOut, 4);
        float[] poison = new float[dOut * dIn];
        Arrays.fill(poison, Float.NaN); // every element must be written
        HostArray out = HostArray.float32(poison);
        cpu.materialize(c.spec, coeffs, out);
        c.check("materialize", pickRows(out, rows, dIn),
                deltaWRows(c.ref, TestData.toDouble(coeffs), rows, dIn));
    }

    private static final class Case {
        final TestData data = new TestData();
        final FourierFTSpec spec;
        final FourierFTReference ref;

        Case(int[] shape) {
            this(shape[0], shape[1], shape[2]);
        }

        Case(int dOut, int dIn, int n) {
            float alpha = (float) (50 + 200 * data.nextDouble());
            spec = FourierFTSpec.ofFlat(dOut, dIn, data.distinctIndices(dOut * dIn, n), alpha);
            ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), alpha);
        }

        void check(String path, double[] got, double[] expected) {
            double err = TestData.relativeError(got, expected);
            assertTrue(err <= TOLERANCE, path + ": relative Frobenius error " + err + " > " + TOLERANCE + " at "
                    + spec.dOut() + "x" + spec.dIn() + " n=" + spec.n() + data.tag());
        }
    }

    /** All of 0..size-1 if there are at most count, else count distinct ones, ascending. */
    private static int[] sample(TestData data, int size, int count) {
        if (size <= count) {
            return IntStream.range(0, size).toArray();
        }
        int[] s = data.distinctIndices(size, count);
        Arrays.sort(s);
        return s;
    }

    /** Reference ΔW rows: out[r·d_in + q] = ΔW[rows[r], q]. */
    private static double[] deltaWRows(FourierFTReference ref, double[] c, int[] rows, int dIn) {
        double[] out = new double[rows.length * dIn];
        for (int r = 0; r < rows.length; r++) {
            for (int q = 0; q < dIn; q++) {
                out[r * dIn + q] = deltaW(ref, c, rows[r], q);
            }
        }
        return out;
    }

    /** Reference ΔW columns: out[p·cols.length + k] = ΔW[p, cols[k]]. */
    private static double[] deltaWColumns(FourierFTReference ref, double[] c, int[] cols, int dOut) {
        double[] out = new double[dOut * cols.length];
        for (int p = 0; p < dOut; p++) {
            for (int k = 0; k < cols.length; k++) {
                out[p * cols.length + k] = deltaW(ref, c, p, cols[k]);
            }
        }
        return out;
    }

    private static double deltaW(FourierFTReference ref, double[] c, int p, int q) {
        double sum = 0;
        for (int l = 0; l < c.length; l++) {
            sum += c[l] * ref.basis(l, p, q);
        }
        return ref.scale() * sum;
    }

    /** Reference ∂L/∂c_l = s·Σ_{p,q} G[p,q]·basis(l, p, q) for the picked coefficients. */
    private static double[] gradCoefficients(FourierFTReference ref, double[] g, int[] picked, int dOut, int dIn) {
        double[] out = new double[picked.length];
        for (int i = 0; i < picked.length; i++) {
            double sum = 0;
            for (int p = 0; p < dOut; p++) {
                for (int q = 0; q < dIn; q++) {
                    sum += g[p * dIn + q] * ref.basis(picked[i], p, q);
                }
            }
            out[i] = ref.scale() * sum;
        }
        return out;
    }

    private static double[] pickRows(HostArray a, int[] rows, int dIn) {
        double[] out = new double[rows.length * dIn];
        for (int r = 0; r < rows.length; r++) {
            for (int q = 0; q < dIn; q++) {
                out[r * dIn + q] = a.get(rows[r] * dIn + q);
            }
        }
        return out;
    }

    private static double[] pick(float[] a, int[] idx) {
        double[] out = new double[idx.length];
        for (int i = 0; i < idx.length; i++) {
            out[i] = a[idx[i]];
        }
        return out;
    }
}
