package org.spectralpeft.fourierft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.spectralpeft.core.DType;
import org.spectralpeft.TestData;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.reference.FourierFTReference;

/**
 * Every FourierFT operation of a backend against the float64 reference: fresh random inputs, odd and
 * non-power-of-two shapes, every dtype, poisoned outputs, exact cosines, linearity, determinism,
 * finite-difference gradients and every validation error. Subclasses supply the backend.
 */
public abstract class FourierFTBackendContract {

    protected abstract FourierFTBackend backend();

    /**
     * Shapes (d_out, d_in) and n: odd, non-power-of-two, power-of-two, degenerate, 768×768, and a dense
     * spectrum (40×12 with n = 400, which the CUDA backend materializes through the C2R-2D path rather
     * than by column synthesis).
     */
    protected static Stream<Arguments> shapes() {
        return Stream.of(
                Arguments.of(1, 8, 5),
                Arguments.of(8, 1, 3),
                Arguments.of(7, 5, 12),
                Arguments.of(63, 50, 40),
                Arguments.of(96, 80, 100),
                Arguments.of(64, 128, 50),
                Arguments.of(768, 768, 24),
                Arguments.of(40, 12, 400));
    }

    static Stream<Arguments> shapesAndDtypes() {
        List<Arguments> out = new ArrayList<>();
        shapes().forEach(a -> {
            for (DType d : DType.values()) {
                out.add(Arguments.of(a.get()[0], a.get()[1], a.get()[2], d));
            }
        });
        return out.stream();
    }

    private static final class Case {
        final TestData data = new TestData();
        final FourierFTSpec spec;
        final FourierFTReference ref;

        Case(int dOut, int dIn, int n) {
            int[] flat = data.distinctIndices(dOut * dIn, n);
            float alpha = (float) (50 + 200 * data.nextDouble());
            spec = FourierFTSpec.ofFlat(dOut, dIn, flat, alpha);
            ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), alpha);
        }

        String tag() {
            return " " + spec + data.tag();
        }
    }

    private static double rms(double[] a) {
        double s = 0;
        for (double v : a) {
            s += v * v;
        }
        return Math.sqrt(s / a.length);
    }

    private static void assertClose(double[] out, double[] ref, double tol, String what) {
        double err = TestData.relativeError(out, ref);
        assertTrue(err < tol, what + ": relative error " + err + " >= " + tol);
    }

    /** out = before + added within tol of the accumulation's scale ({@link TestData#accumulatedError}). */
    private static void assertAccumulated(double[] out, double[] before, double[] added, double tol, String what) {
        double err = TestData.accumulatedError(out, before, added);
        assertTrue(err < tol, what + ": error " + err + " of the accumulation's scale >= " + tol);
    }

    @ParameterizedTest(name = "{0}x{1} n={2} {3}")
    @MethodSource("shapesAndDtypes")
    void materializeMatchesReference(int dOut, int dIn, int n, DType dtype) {
        Case c = new Case(dOut, dIn, n);
        float[] coeffs = c.data.gaussian(n);
        HostArray out = TestData.poisoned(dtype, dOut * dIn);
        backend().materialize(c.spec, coeffs, out);
        assertClose(TestData.toDouble(out), c.ref.deltaW(TestData.toDouble(coeffs)),
                TestData.tolerance(dtype), "materialize" + c.tag());
    }

    @ParameterizedTest(name = "{0}x{1} n={2}")
    @MethodSource("shapes")
    void materializeBatchMatchesReferencePerLayer(int dOut, int dIn, int n) {
        Case c = new Case(dOut, dIn, n);
        int layers = 3;
        float[] coeffs = c.data.gaussian(layers * n);
        HostArray out = TestData.poisoned(DType.FLOAT32, layers * dOut * dIn);
        backend().materializeBatch(c.spec, coeffs, layers, out);
        for (int layer = 0; layer < layers; layer++) {
            double[] layerCoeffs = TestData.toDouble(java.util.Arrays.copyOfRange(coeffs, layer * n, (layer + 1) * n));
            double[] got = java.util.Arrays.copyOfRange(TestData.toDouble(out), layer * dOut * dIn, (layer + 1) * dOut * dIn);
            assertClose(got, c.ref.deltaW(layerCoeffs), 1e-5, "batch layer " + layer + c.tag());
        }
    }

    @ParameterizedTest(name = "{0}x{1} n={2} {3}")
    @MethodSource("shapesAndDtypes")
    void mergeAndUnmergeMatchReference(int dOut, int dIn, int n, DType dtype) {
        Case c = new Case(dOut, dIn, n);
        float[] coeffs = c.data.gaussian(n);
        double[] delta = c.ref.deltaW(TestData.toDouble(coeffs));
        float[] w0 = c.data.gaussian(dOut * dIn);
        double wScale = rms(delta); // weights of ΔW's size, so that W + ΔW − W measures ΔW itself
        for (int i = 0; i < w0.length; i++) {
            w0[i] *= (float) wScale;
        }
        HostArray w = HostArray.of(dtype, w0);
        double[] before = TestData.toDouble(w);
        backend().merge(c.spec, coeffs, w);
        double[] merged = TestData.toDouble(w);
        double[] change = new double[before.length];
        for (int i = 0; i < before.length; i++) {
            change[i] = merged[i] - before[i];
        }
        double tol = TestData.tolerance(dtype);
        assertAccumulated(merged, before, delta, tol, "merge" + c.tag());
        assertClose(change, delta, dtype == DType.FLOAT32 ? 1e-5 : 2e-2, "merge, W' − W vs ΔW" + c.tag());
        backend().unmerge(c.spec, coeffs, w);
        assertClose(TestData.toDouble(w), before, tol, "unmerge after merge" + c.tag());
    }

    @ParameterizedTest(name = "{0}x{1} n={2} {3}")
    @MethodSource("shapesAndDtypes")
    void forwardMatchesReference(int dOut, int dIn, int n, DType dtype) {
        Case c = new Case(dOut, dIn, n);
        int tokens = 1 + c.data.nextInt(6);
        float[] coeffs = c.data.gaussian(n);
        HostArray x = HostArray.of(dtype, c.data.gaussian(tokens * dIn));
        double[] xs = TestData.toDouble(x);
        double[] yDelta = c.ref.forward(TestData.toDouble(coeffs), xs, tokens);
        float[] y0 = c.data.gaussian(tokens * dOut);
        double yScale = rms(yDelta);
        for (int i = 0; i < y0.length; i++) {
            y0[i] *= (float) yScale;
        }
        HostArray y = HostArray.of(dtype, y0);
        double[] before = TestData.toDouble(y);
        backend().forward(c.spec, coeffs, x, tokens, y);
        assertAccumulated(TestData.toDouble(y), before, yDelta, TestData.tolerance(dtype), "forward, T=" + tokens + c.tag());
    }

    @ParameterizedTest(name = "{0}x{1} n={2} {3}")
    @MethodSource("shapesAndDtypes")
    void gradCoefficientsMatchesReference(int dOut, int dIn, int n, DType dtype) {
        Case c = new Case(dOut, dIn, n);
        HostArray g = HostArray.of(dtype, c.data.gaussian(dOut * dIn));
        float[] grad = new float[n];
        java.util.Arrays.fill(grad, Float.NaN);
        backend().gradCoefficients(c.spec, g, grad);
        assertClose(TestData.toDouble(grad), c.ref.gradCoefficients(TestData.toDouble(g)), 1e-5,
                "∂L/∂c from ∂L/∂ΔW" + c.tag());
    }

    @ParameterizedTest(name = "{0}x{1} n={2} {3}")
    @MethodSource("shapesAndDtypes")
    void backwardMatchesReference(int dOut, int dIn, int n, DType dtype) {
        Case c = new Case(dOut, dIn, n);
        int tokens = 1 + c.data.nextInt(40);
        float[] coeffs = c.data.gaussian(n);
        HostArray x = HostArray.of(dtype, c.data.gaussian(tokens * dIn));
        HostArray gy = HostArray.of(dtype, c.data.gaussian(tokens * dOut));
        double[] gxDelta = c.ref.backwardInput(TestData.toDouble(coeffs), TestData.toDouble(gy), tokens);
        float[] gx0 = c.data.gaussian(tokens * dIn);
        double gScale = rms(gxDelta);
        for (int i = 0; i < gx0.length; i++) {
            gx0[i] *= (float) gScale;
        }
        HostArray gx = HostArray.of(dtype, gx0);
        double[] before = TestData.toDouble(gx);
        float[] gradC = new float[n];
        java.util.Arrays.fill(gradC, Float.NaN);
        backend().backward(c.spec, coeffs, x, gy, tokens, gradC, gx);
        assertClose(TestData.toDouble(gradC),
                c.ref.backwardCoefficients(TestData.toDouble(x), TestData.toDouble(gy), tokens), 1e-5,
                "backward ∂L/∂c, T=" + tokens + c.tag());
        assertAccumulated(TestData.toDouble(gx), before, gxDelta, TestData.tolerance(dtype),
                "backward ∂L/∂x, T=" + tokens + c.tag());

        float[] gradOnly = new float[n];
        backend().backward(c.spec, coeffs, x, gy, tokens, gradOnly, null);
        assertArrayEquals(gradC, gradOnly, "∂L/∂c must not depend on whether ∂L/∂x is requested" + c.tag());
    }

    @ParameterizedTest(name = "{0}x{1}")
    @MethodSource("shapes")
    void singleCoefficientIsAnExactCosine(int dOut, int dIn, int ignoredN) {
        TestData data = new TestData();
        int j = data.nextInt(dOut);
        int k = data.nextInt(dIn);
        float alpha = (float) (dOut * dIn); // s = 1
        FourierFTSpec spec = FourierFTSpec.of(dOut, dIn, new int[] {j}, new int[] {k}, alpha);
        HostArray out = TestData.poisoned(DType.FLOAT32, dOut * dIn);
        backend().materialize(spec, new float[] {1f}, out);
        double worst = 0;
        for (int p = 0; p < dOut; p++) {
            for (int q = 0; q < dIn; q++) {
                double expected = Math.cos(2 * Math.PI * (((long) p * j % dOut) / (double) dOut + ((long) q * k % dIn) / (double) dIn));
                worst = Math.max(worst, Math.abs(out.get(p * dIn + q) - expected));
            }
        }
        assertTrue(worst < 2e-6, "cos(2π(p·" + j + "/" + dOut + " + q·" + k + "/" + dIn + ")): max error " + worst + data.tag());
    }

    @Test
    void materializeIsLinear() {
        Case c = new Case(45, 38, 60);
        float[] a = c.data.gaussian(60);
        float[] b = c.data.gaussian(60);
        float alpha = 0.75f;
        float beta = -1.5f;
        float[] combined = new float[60];
        for (int i = 0; i < 60; i++) {
            combined[i] = alpha * a[i] + beta * b[i];
        }
        int size = 45 * 38;
        HostArray wa = HostArray.allocate(DType.FLOAT32, size);
        HostArray wb = HostArray.allocate(DType.FLOAT32, size);
        HostArray wc = HostArray.allocate(DType.FLOAT32, size);
        backend().materialize(c.spec, a, wa);
        backend().materialize(c.spec, b, wb);
        backend().materialize(c.spec, combined, wc);
        double[] expected = new double[size];
        for (int i = 0; i < size; i++) {
            expected[i] = alpha * (double) wa.get(i) + beta * (double) wb.get(i);
        }
        assertClose(TestData.toDouble(wc), expected, 1e-5, "linearity" + c.tag());
    }

    @Test
    void repeatedRunsAreBitIdentical() {
        Case c = new Case(96, 80, 300);
        float[] coeffs = c.data.gaussian(300);
        int tokens = 37;
        HostArray x = HostArray.float32(c.data.gaussian(tokens * 80));
        HostArray gy = HostArray.float32(c.data.gaussian(tokens * 96));
        float[][] runs = new float[2][];
        float[][] grads = new float[2][];
        float[][] gxs = new float[2][];
        float[][] ys = new float[2][];
        for (int r = 0; r < 2; r++) {
            HostArray w = HostArray.allocate(DType.FLOAT32, 96 * 80);
            backend().materialize(c.spec, coeffs, w);
            runs[r] = w.floats();
            HostArray y = HostArray.allocate(DType.FLOAT32, tokens * 96);
            backend().forward(c.spec, coeffs, x, tokens, y);
            ys[r] = y.floats();
            grads[r] = new float[300];
            HostArray gx = HostArray.allocate(DType.FLOAT32, tokens * 80);
            backend().backward(c.spec, coeffs, x, gy, tokens, grads[r], gx);
            gxs[r] = gx.floats();
        }
        assertArrayEquals(runs[0], runs[1], "materialize repeat" + c.tag());
        assertArrayEquals(ys[0], ys[1], "forward repeat" + c.tag());
        assertArrayEquals(grads[0], grads[1], "∂L/∂c repeat" + c.tag());
        assertArrayEquals(gxs[0], gxs[1], "∂L/∂x repeat" + c.tag());
    }

    /** ∂L/∂c for L = Σ G ⊙ ΔW(c) against central differences of the float64 reference. */
    @Test
    void coefficientGradientMatchesFiniteDifferences() {
        Case c = new Case(21, 34, 15);
        double[] coeffs = TestData.toDouble(c.data.gaussian(15));
        float[] g = c.data.gaussian(21 * 34);
        float[] grad = new float[15];
        backend().gradCoefficients(c.spec, HostArray.float32(g), grad);
        double h = 1e-3;
        for (int l = 0; l < 15; l++) {
            double[] plus = coeffs.clone();
            double[] minus = coeffs.clone();
            plus[l] += h;
            minus[l] -= h;
            double fd = (dot(g, c.ref.deltaW(plus)) - dot(g, c.ref.deltaW(minus))) / (2 * h);
            assertEquals(fd, grad[l], 1e-4 * Math.max(1, Math.abs(fd)), "∂L/∂c[" + l + "]" + c.tag());
        }
    }

    /** Unmaterialized backward: L = Σ gy ⊙ (x·ΔWᵀ) differentiated by c and by x, against central differences. */
    @Test
    void backwardMatchesFiniteDifferences() {
        Case c = new Case(19, 26, 11);
        int tokens = 4;
        float[] coeffs = c.data.gaussian(11);
        float[] x = c.data.gaussian(tokens * 26);
        float[] gy = c.data.gaussian(tokens * 19);
        float[] gradC = new float[11];
        HostArray gradX = HostArray.allocate(DType.FLOAT32, tokens * 26);
        backend().backward(c.spec, coeffs, HostArray.float32(x), HostArray.float32(gy), tokens, gradC, gradX);
        double[] cd = TestData.toDouble(coeffs);
        double[] xd = TestData.toDouble(x);
        double h = 1e-3;
        for (int l = 0; l < 11; l++) {
            double[] plus = cd.clone();
            double[] minus = cd.clone();
            plus[l] += h;
            minus[l] -= h;
            double fd = (dot(gy, c.ref.forward(plus, xd, tokens)) - dot(gy, c.ref.forward(minus, xd, tokens))) / (2 * h);
            assertEquals(fd, gradC[l], 1e-4 * Math.max(1, Math.abs(fd)), "∂L/∂c[" + l + "]" + c.tag());
        }
        for (int i = 0; i < xd.length; i += 7) {
            double[] plus = xd.clone();
            double[] minus = xd.clone();
            plus[i] += h;
            minus[i] -= h;
            double fd = (dot(gy, c.ref.forward(cd, plus, tokens)) - dot(gy, c.ref.forward(cd, minus, tokens))) / (2 * h);
            assertEquals(fd, gradX.get(i), 1e-4 * Math.max(1, Math.abs(fd)), "∂L/∂x[" + i + "]" + c.tag());
        }
    }

    private static double dot(float[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    // ---- storage: NIO buffers, heap or direct, give the same bits as Java arrays ----

    /** Where a buffer-backed copy of an array lives. */
    enum Storage {
        /** A direct ByteBuffer in native order, wrapped from a position past its start. */
        DIRECT_NATIVE,
        /** A direct ByteBuffer in big-endian order (the order a new ByteBuffer has). */
        DIRECT_BIG_ENDIAN,
        /** A heap FloatBuffer/ShortBuffer over part of a larger array (a nonzero array offset). */
        HEAP_SLICE
    }

    static Stream<Arguments> storagesAndDtypes() {
        List<Arguments> out = new ArrayList<>();
        for (Storage s : Storage.values()) {
            for (DType d : DType.values()) {
                out.add(Arguments.of(s, d));
            }
        }
        return out.stream();
    }

    /** A buffer-backed array holding a's values, with storage around it that must stay as it is. */
    static HostArray inBuffer(HostArray a, Storage storage) {
        int n = a.length();
        int lead = 3;
        DType d = a.dtype();
        HostArray b;
        if (storage == Storage.HEAP_SLICE) {
            b = d == DType.FLOAT32
                    ? HostArray.float32(java.nio.FloatBuffer.wrap(new float[n + 2 * lead], lead, n))
                    : wrapShorts(d, java.nio.ShortBuffer.wrap(new short[n + 2 * lead], lead, n));
        } else {
            java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocateDirect((n + 2 * lead) * d.bytes())
                    .order(storage == Storage.DIRECT_NATIVE ? java.nio.ByteOrder.nativeOrder() : java.nio.ByteOrder.BIG_ENDIAN);
            bytes.position(lead * d.bytes()).limit((lead + n) * d.bytes());
            b = HostArray.wrap(d, bytes);
        }
        for (int i = 0; i < n; i++) {
            b.set(i, a.get(i));
        }
        return b;
    }

    private static HostArray wrapShorts(DType d, java.nio.ShortBuffer s) {
        return d == DType.FLOAT16 ? HostArray.float16(s) : HostArray.bfloat16(s);
    }

    /** Bit patterns of a's values as float32, NaNs included, for exact comparison. */
    private static int[] bits(HostArray a) {
        int[] out = new int[a.length()];
        for (int i = 0; i < out.length; i++) {
            out[i] = Float.floatToRawIntBits(a.get(i));
        }
        return out;
    }

    /**
     * Every operation on buffer-backed arrays (direct in either byte order, or a heap slice) writes exactly
     * the bits it writes into Java arrays, and inputs may be read-only buffers.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("storagesAndDtypes")
    void bufferStorageGivesTheSameBitsAsArrays(Storage storage, DType dtype) {
        Case c = new Case(63, 50, 40);
        int tokens = 5;
        float[] coeffs = c.data.gaussian(40);

        HostArray out = TestData.poisoned(dtype, 63 * 50);
        HostArray outB = inBuffer(out, storage);
        backend().materialize(c.spec, coeffs, out);
        backend().materialize(c.spec, coeffs, outB);
        assertArrayEquals(bits(out), bits(outB), "materialize" + c.tag());

        HostArray w = HostArray.of(dtype, c.data.gaussian(63 * 50));
        HostArray wB = inBuffer(w, storage);
        backend().merge(c.spec, coeffs, w);
        backend().merge(c.spec, coeffs, wB);
        assertArrayEquals(bits(w), bits(wB), "merge" + c.tag());

        HostArray x = HostArray.of(dtype, c.data.gaussian(tokens * 50));
        HostArray xB = readOnly(inBuffer(x, storage));
        HostArray y = HostArray.of(dtype, c.data.gaussian(tokens * 63));
        HostArray yB = inBuffer(y, storage);
        backend().forward(c.spec, coeffs, x, tokens, y);
        backend().forward(c.spec, coeffs, xB, tokens, yB);
        assertArrayEquals(bits(y), bits(yB), "forward" + c.tag());

        HostArray gy = HostArray.of(dtype, c.data.gaussian(tokens * 63));
        HostArray gyB = readOnly(inBuffer(gy, storage));
        HostArray gx = HostArray.of(dtype, c.data.gaussian(tokens * 50));
        HostArray gxB = inBuffer(gx, storage);
        float[] gc = new float[40];
        float[] gcB = new float[40];
        backend().backward(c.spec, coeffs, x, gy, tokens, gc, gx);
        backend().backward(c.spec, coeffs, xB, gyB, tokens, gcB, gxB);
        assertArrayEquals(gc, gcB, "backward ∂L/∂c" + c.tag());
        assertArrayEquals(bits(gx), bits(gxB), "backward ∂L/∂x" + c.tag());

        HostArray g = HostArray.of(dtype, c.data.gaussian(63 * 50));
        float[] gradC = new float[40];
        float[] gradCB = new float[40];
        backend().gradCoefficients(c.spec, g, gradC);
        backend().gradCoefficients(c.spec, readOnly(inBuffer(g, storage)), gradCB);
        assertArrayEquals(gradC, gradCB, "∂L/∂c from ∂L/∂ΔW" + c.tag());
    }

    private static HostArray readOnly(HostArray a) {
        HostArray r = a.dtype() == DType.FLOAT32 ? HostArray.float32(a.floatBuffer().asReadOnlyBuffer())
                : wrapShorts(a.dtype(), a.shortBuffer().asReadOnlyBuffer());
        assertTrue(r.isReadOnly());
        return r;
    }

    /** A read-only buffer is refused as an output (result, merged weight, y, ∂L/∂x) before any work. */
    @ParameterizedTest
    @EnumSource(DType.class)
    void readOnlyBuffersAreRefusedAsOutputs(DType dtype) {
        Case c = new Case(12, 10, 7);
        float[] coeffs = c.data.gaussian(7);
        HostArray ro = readOnly(inBuffer(HostArray.of(dtype, c.data.gaussian(120)), Storage.DIRECT_NATIVE));
        HostArray x = HostArray.of(dtype, c.data.gaussian(20));
        HostArray y = readOnly(inBuffer(HostArray.of(dtype, c.data.gaussian(24)), Storage.HEAP_SLICE));
        expectMessage("out is a read-only buffer", () -> backend().materialize(c.spec, coeffs, ro));
        expectMessage("weight is a read-only buffer", () -> backend().merge(c.spec, coeffs, ro));
        expectMessage("weight is a read-only buffer", () -> backend().unmerge(c.spec, coeffs, ro));
        expectMessage("y is a read-only buffer", () -> backend().forward(c.spec, coeffs, x, 2, y));
        HostArray gy = HostArray.of(dtype, c.data.gaussian(24));
        HostArray gx = readOnly(inBuffer(x, Storage.DIRECT_BIG_ENDIAN));
        expectMessage("gradX is a read-only buffer", () -> backend().backward(c.spec, coeffs, x, gy, 2, new float[7], gx));
    }

    // ---- validation: a clear exception naming the problem, and outputs left untouched ----

    @ParameterizedTest
    @EnumSource(DType.class)
    void rejectsBadArgumentsWithoutTouchingOutputs(DType dtype) {
        Case c = new Case(12, 10, 7);
        float[] coeffs = c.data.gaussian(7);
        float[] sentinelValues = c.data.gaussian(120);
        HostArray out = HostArray.of(dtype, sentinelValues);
        float[] before = out.toFloats();

        expectMessage("coeffs has 6 elements", () -> backend().materialize(c.spec, new float[6], out));
        float[] nan = coeffs.clone();
        nan[3] = Float.NaN;
        expectMessage("coeffs[3] is NaN", () -> backend().materialize(c.spec, nan, out));
        expectMessage("out has 119 elements", () -> backend().materialize(c.spec, coeffs, HostArray.allocate(dtype, 119)));
        expectMessage("layers must be at least 1", () -> backend().materializeBatch(c.spec, coeffs, 0, out));
        expectMessage("coeffs has 7 elements, expected 14", () -> backend().materializeBatch(c.spec, coeffs, 2, out));
        expectMessage("weight has 119 elements", () -> backend().merge(c.spec, coeffs, HostArray.allocate(dtype, 119)));
        expectMessage("coeffs[3] is NaN", () -> backend().unmerge(c.spec, nan, out));
        expectMessage("spec must not be null", () -> backend().materialize(null, coeffs, out));

        HostArray x = HostArray.of(dtype, c.data.gaussian(2 * 10));
        HostArray badX = HostArray.of(dtype, c.data.gaussian(2 * 10));
        badX.set(5, Float.POSITIVE_INFINITY);
        HostArray y = HostArray.of(dtype, c.data.gaussian(2 * 12));
        float[] yBefore = y.toFloats();
        expectMessage("tokens must be at least 1", () -> backend().forward(c.spec, coeffs, x, 0, y));
        expectMessage("x has 20 elements, expected 30", () -> backend().forward(c.spec, coeffs, x, 3, y));
        expectMessage("x[5] is Infinity", () -> backend().forward(c.spec, coeffs, badX, 2, y));
        expectMessage("y has 24 elements, expected 36", () -> backend().forward(c.spec, coeffs,
                HostArray.of(dtype, c.data.gaussian(30)), 3, y));
        expectMessage("gradDeltaW has 20 elements", () -> backend().gradCoefficients(c.spec, x, new float[7]));
        expectMessage("gradCoeffs has 8 elements", () -> backend().gradCoefficients(c.spec, out, new float[8]));
        expectMessage("gradY has 20 elements, expected 24", () -> backend().backward(c.spec, coeffs, x, x, 2, new float[7], null));
        expectMessage("gradX has 24 elements, expected 20", () -> backend().backward(c.spec, coeffs, x, y, 2, new float[7], y));

        assertArrayEquals(before, out.toFloats(), "a rejected call changed its output" + c.tag());
        assertArrayEquals(yBefore, y.toFloats(), "a rejected call changed y" + c.tag());
    }

    /**
     * A result that is not finite in the output dtype (ΔW, or W + ΔW, overflows) throws instead of returning
     * infinities; a weight holding NaN or an infinity is refused before the merge, and left untouched.
     */
    @ParameterizedTest
    @EnumSource(DType.class)
    void overflowingResultsAndNonFiniteWeightsAreErrors(DType dtype) {
        Case c = new Case(12, 10, 7);
        float[] huge = new float[7];
        java.util.Arrays.fill(huge, 3e38f); // ΔW[0,0] = α/120 · 7 · 3e38 overflows float32
        expectMessage("is not finite", () -> backend().materialize(c.spec, huge, HostArray.allocate(dtype, 120)));
        expectMessage("is not finite", () -> backend().merge(c.spec, huge, HostArray.allocate(dtype, 120)));
        expectMessage("is not finite", () -> backend().materializeBatch(c.spec, concat(c.data.gaussian(7), huge), 2,
                HostArray.allocate(dtype, 240)));
        if (dtype == DType.FLOAT16) { // ΔW fits float32 but not float16
            float[] large = c.data.gaussian(7);
            for (int i = 0; i < large.length; i++) {
                large[i] = 1e6f * (1 + Math.abs(large[i]));
            }
            expectMessage("is not finite", () -> backend().materialize(c.spec, large, HostArray.allocate(dtype, 120)));
        }

        float[] coeffs = c.data.gaussian(7);
        HostArray weight = HostArray.of(dtype, c.data.gaussian(120));
        weight.set(5, Float.NaN);
        float[] before = weight.toFloats();
        expectMessage("weight[5] is NaN", () -> backend().merge(c.spec, coeffs, weight));
        expectMessage("weight[5] is NaN", () -> backend().unmerge(c.spec, coeffs, weight));
        weight.set(5, Float.NEGATIVE_INFINITY);
        expectMessage("weight[5] is -Infinity", () -> backend().merge(c.spec, coeffs, weight));
        before[5] = Float.NEGATIVE_INFINITY;
        assertArrayEquals(before, weight.toFloats(), "a refused merge changed the weight" + c.tag());
    }

    private static float[] concat(float[] a, float[] b) {
        float[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    // ---------------------------------------------------------------- mixed batches (an adapter per token)

    /**
     * @return whether a mixed batch must give each token the single-adapter forward's bits exactly; false where
     *         the transforms' order of operations may depend on the batch size (cuFFT on a GPU)
     */
    protected boolean mixedBatchBitwise() {
        return true;
    }

    /** @return the adapter counts of the mixed-batch checks (a backend that runs slowly may take fewer) */
    protected int[] mixedAdapterCounts() {
        return new int[] {1, 7, 100, 1000};
    }

    /** The two index sets of {@link #pool}: n = 20 (seed 5) and n = 31 (seed 6) of a 37 × 29 layer. */
    private static final FourierFTSpec[] TWO_SETS = {FourierFTSpec.fromSeed(37, 29, 20, 5, 0.3f),
        FourierFTSpec.fromSeed(37, 29, 31, 6, 0.7f)};

    /**
     * A pool of count adapters of a 37 × 29 layer alternating the two index sets of {@link #TWO_SETS}, each set's
     * adapters under three α's in turn ({@link #alphaOf}).
     */
    private static FourierFTAdapterPool pool(TestData data, int count, int firstId) {
        FourierFTAdapterPool pool = new FourierFTAdapterPool(37, 29);
        for (int i = 0; i < count; i++) {
            pool.add(firstId + i, alphaOf(TWO_SETS[i % 2], i), data.gaussian(TWO_SETS[i % 2].n()));
        }
        return pool;
    }

    /** Adapter i's spec: the set's with its α times 1, 2.5 or 0.125 for i / 2 = 0, 1, 2 mod 3. */
    static FourierFTSpec alphaOf(FourierFTSpec set, int i) {
        return set.withAlpha(set.alpha() * new float[] {1f, 2.5f, 0.125f}[(i / 2) % 3]);
    }

    /**
     * Every token of a mixed batch (repeated ids, −1s, two index sets of different n, every dtype) gets exactly what the
     * single-adapter forward gives that token alone with its adapter; tokens with −1 are untouched.
     */
    @Test
    void aMixedBatchEqualsEachTokenAloneWithItsAdapter() {
        for (int count : mixedAdapterCounts()) {
            for (DType dtype : DType.values()) {
                TestData data = new TestData();
                FourierFTAdapterPool pool = pool(data, count, 3);
                int tokens = Math.max(3, count + count / 2);
                int[] ids = new int[tokens];
                for (int t = 0; t < tokens; t++) {
                    ids[t] = t % 5 == 4 ? -1 : 3 + data.nextInt(count); // repeats, and tokens without an adapter
                }
                assertEachTokenAsIfAlone(pool, ids, dtype, data, count + " adapters, " + dtype);
            }
        }
    }

    /**
     * Requests' tokens side by side (runs of one id, runs of −1) with ids on both sides of the end of the pool's
     * dense id range, two index sets: each token as alone with its adapter.
     */
    @Test
    void aBatchOfRequestsInRunsWithLargeIdsEqualsEachTokenAlone() {
        TestData data = new TestData();
        int first = FourierFTAdapterPool.DENSE_IDS - 3;
        FourierFTAdapterPool pool = pool(data, 6, first);
        pool.add(Integer.MAX_VALUE, FourierFTSpec.fromSeed(37, 29, 20, 6, 0.3f), data.gaussian(20));
        List<Integer> ids = new ArrayList<>();
        for (int request = 0; request < 12; request++) {
            int id = request % 4 == 3 ? -1 : request % 7 == 6 ? Integer.MAX_VALUE : first + data.nextInt(6);
            for (int k = 1 + data.nextInt(5); k > 0; k--) {
                ids.add(id);
            }
        }
        assertEachTokenAsIfAlone(pool, ids.stream().mapToInt(Integer::intValue).toArray(), DType.FLOAT32, data,
                "requests in runs");
    }

    /**
     * A thousand adapters on every backend, where {@link #mixedAdapterCounts} leaves them out for speed: the batch
     * runs whole, and every 23rd token (−1s among them) is checked against its single-adapter forward.
     */
    @Test
    void aThousandAdaptersInOneBatchEqualSampledTokensAlone() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data, 1000, 0);
        int tokens = 1500;
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 5 == 4 ? -1 : t < 1000 ? (t * 7) % 1000 : data.nextInt(1000); // every adapter, then repeats
        }
        assertEachTokenAsIfAlone(pool, ids, DType.BFLOAT16, data, "1000 adapters", 23);
    }

    /**
     * Repeated batches reuse what the last call resolved and derived (the pool's batch; on CUDA also the device rows,
     * the token rows and the backward's tiles): the same ids again, another batch that brings in 36 more adapters (a
     * CUDA table grows past its first 16 rows) in between, then the first ids again, then one of their adapters
     * replaced under its id. Every call, forward and backward, against each adapter's tokens alone.
     */
    @Test
    void repeatedBatchesStayRightAcrossOtherBatchesAndAReplacedAdapter() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data, 40, 0);
        int tokens = 40;
        int[] first = new int[tokens];
        int[] other = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            first[t] = t % 7 == 6 ? -1 : t % 4;
            other[t] = 4 + t % 36;
        }
        int[][] sequence = {first, first, other, first, first, null, first, first};
        for (int step = 0; step < sequence.length; step++) {
            if (sequence[step] == null) { // adapter 2 replaced under its id: new coefficients
                FourierFTSpec spec = pool.adapter(2).spec();
                pool.remove(2);
                pool.add(2, spec, data.gaussian(spec.n()));
                continue;
            }
            assertEachTokenAsIfAlone(pool, sequence[step], DType.FLOAT32, data, "step " + step);
            assertBackwardAsEachAdapterAlone(pool, sequence[step], data);
        }
    }

    /** y of a mixed forward against, per token, the single-adapter forward of that token alone (y untouched for −1). */
    private void assertEachTokenAsIfAlone(FourierFTAdapterPool pool, int[] ids, DType dtype, TestData data, String label) {
        assertEachTokenAsIfAlone(pool, ids, dtype, data, label, 1);
    }

    /** As above, checking every stride-th token only. */
    private void assertEachTokenAsIfAlone(FourierFTAdapterPool pool, int[] ids, DType dtype, TestData data, String label,
                                          int stride) {
        int tokens = ids.length;
        HostArray x = HostArray.of(dtype, data.gaussian(tokens * 29));
        float[] y0 = data.gaussian(tokens * 37);
        HostArray y = HostArray.of(dtype, y0);
        HostArray before = HostArray.of(dtype, y0);
        backend().forward(pool, ids, x, tokens, y);
        for (int t = 0; t < tokens; t += stride) {
            HostArray alone = HostArray.of(dtype, java.util.Arrays.copyOfRange(before.toFloats(), t * 37, (t + 1) * 37));
            if (ids[t] != -1) {
                FourierFTAdapterPool.Adapter a = pool.adapter(ids[t]);
                HostArray xt = HostArray.of(dtype, java.util.Arrays.copyOfRange(x.toFloats(), t * 29, (t + 1) * 29));
                backend().forward(a.spec(), a.coefficientsCopy(), xt, 1, alone);
            }
            float[] got = java.util.Arrays.copyOfRange(y.toFloats(), t * 37, (t + 1) * 37);
            String what = label + ", token " + t + " (id " + ids[t] + ")" + data.tag();
            if (mixedBatchBitwise() || ids[t] == -1) {
                assertArrayEquals(alone.toFloats(), got, what);
            } else {
                double err = TestData.relativeError(TestData.toDouble(got), TestData.toDouble(alone.toFloats()));
                assertTrue(err <= (dtype == DType.FLOAT32 ? 1e-6 : TestData.tolerance(dtype)), what + ": " + err);
            }
        }
    }

    @Test
    void badIdsAndRemovedAdaptersAreRefusedBeforeAnyWork() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data, 4, 0);
        HostArray x = HostArray.float32(data.gaussian(3 * 29));
        float[] y0 = data.gaussian(3 * 37);
        HostArray y = HostArray.float32(y0.clone());
        expectMessage("adapterIds[1] = 9", () -> backend().forward(pool, new int[] {0, 9, 1}, x, 3, y));
        expectMessage("adapterIds[2] = -2", () -> backend().forward(pool, new int[] {0, 1, -2}, x, 3, y));
        expectMessage("adapterIds", () -> backend().forward(pool, new int[] {0, 1}, x, 3, y));
        expectMessage("x has", () -> backend().forward(pool, new int[] {0, 1, 2, 3}, x, 4, HostArray.float32(new float[4 * 37])));
        expectMessage("y has", () -> backend().forward(pool, new int[] {0, 1, 2}, x, 3, HostArray.float32(new float[5])));
        expectMessage("pool", () -> backend().forward(null, new int[] {0, 1, 2}, x, 3, y));
        HostArray nanX = HostArray.float32(data.gaussian(3 * 29));
        nanX.set(40, Float.NaN);
        expectMessage("x[40] is NaN", () -> backend().forward(pool, new int[] {0, 1, 2}, nanX, 3, y));
        pool.remove(2);
        expectMessage("adapterIds[0] = 2", () -> backend().forward(pool, new int[] {2, 1, 0}, x, 3, y));
        assertArrayEquals(y0, y.floats(), "y untouched by refused calls");

        // the backward: the same checks, then ∂L/∂y's and gradX's
        HostArray gy = HostArray.float32(data.gaussian(3 * 37));
        float[] gx0 = data.gaussian(3 * 29);
        HostArray gx = HostArray.float32(gx0.clone());
        expectMessage("adapterIds[0] = 2", () -> backend().backward(pool, new int[] {2, 1, 0}, x, gy, 3, gx));
        expectMessage("adapterIds[2] = -2", () -> backend().backward(pool, new int[] {0, 1, -2}, x, gy, 3, gx));
        expectMessage("gradY has", () -> backend().backward(pool, new int[] {0, 1, 3}, x,
                HostArray.float32(new float[3 * 29]), 3, gx));
        expectMessage("gradX has", () -> backend().backward(pool, new int[] {0, 1, 3}, x, gy, 3,
                HostArray.float32(new float[3 * 37])));
        HostArray nanGy = HostArray.float32(data.gaussian(3 * 37));
        nanGy.set(7, Float.POSITIVE_INFINITY);
        expectMessage("gradY[7] is Infinity", () -> backend().backward(pool, new int[] {0, 1, 3}, x, nanGy, 3, gx));
        assertArrayEquals(gx0, gx.floats(), "gradX untouched by refused calls");
        expectMessage("already in the pool", () -> pool.add(1, FourierFTSpec.fromSeed(37, 29, 20), new float[20]));
        expectMessage("37 x 29", () -> pool.add(7, FourierFTSpec.fromSeed(29, 37, 20), new float[20]));
        expectMessage("negative", () -> pool.add(-1, FourierFTSpec.fromSeed(37, 29, 20), new float[20]));
        expectMessage("not in the pool", () -> pool.remove(2));
        float[] nan = new float[20];
        nan[3] = Float.NaN;
        expectMessage("coefficients", () -> pool.add(8, FourierFTSpec.fromSeed(37, 29, 20), nan));
    }

    /**
     * Adapters of one index set share one index set (and so one set of groupings) whatever their α, and those of one
     * α one spec; the pool counts its bytes.
     */
    @Test
    void adaptersOfOneIndexSetShareTheirSpecAndThePoolCountsItsBytes() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data, 10, 0);
        assertEquals(10, pool.size());
        assertEquals(2, pool.indexSets(), "two index sets, three α's each");
        assertTrue(pool.adapter(0).spec() == pool.adapter(6).spec(), "one instance per index set and α");
        assertEquals(alphaOf(TWO_SETS[0], 8), pool.adapter(8).spec(), "each adapter keeps its own α");
        assertTrue(pool.adapter(0).spec().sameIndexSet(pool.adapter(8).spec()));
        assertTrue(pool.adapter(0).spec().forwardGrouping() == pool.adapter(8).spec().forwardGrouping(),
                "one grouping per index set");
        assertEquals(5 * 4 * 20 + 5 * 4 * 31 + 8 * 20 + 8 * 31, pool.bytes());
        assertEquals(4 * 31, FourierFTAdapterPool.bytesOf(TWO_SETS[1]));
        for (int i = 0; i < 10; i += 2) {
            pool.remove(i);
        }
        assertEquals(1, pool.indexSets(), "the index set no adapter uses is dropped");
        assertEquals(5 * 4 * 31 + 8 * 31, pool.bytes());
    }

    /**
     * Adapters of one index set (same seed and n) with different α: one index set, each adapter its own α (applied
     * per token inside the gather, so each token keeps its own adapter's bits), and every token as alone with its
     * adapter, forward and backward; removing the last adapter of an α leaves the others theirs.
     */
    @Test
    void adaptersOfOneIndexSetWithDifferentAlphasEachKeepTheirOwn() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = new FourierFTAdapterPool(37, 29);
        float[] alphas = {0.3f, 150f, 0.3f, 7.5f};
        for (int i = 0; i < alphas.length; i++) {
            pool.add(i, FourierFTSpec.fromSeed(37, 29, 20, 5, alphas[i]), data.gaussian(20));
        }
        assertEquals(1, pool.indexSets(), "one index set whatever the α");
        assertTrue(pool.adapter(0).spec() == pool.adapter(2).spec(), "equal α: one spec");
        for (int i = 0; i < alphas.length; i++) {
            assertEquals(alphas[i], pool.adapter(i).spec().alpha(), "adapter " + i + "'s α");
        }
        assertEquals(4 * 4 * 20 + 8 * 20, pool.bytes());
        int[] ids = new int[19];
        for (int t = 0; t < ids.length; t++) {
            ids[t] = t % 6 == 5 ? -1 : data.nextInt(alphas.length);
        }
        ids[0] = 1;
        ids[1] = 3;
        assertEachTokenAsIfAlone(pool, ids, DType.FLOAT32, data, "α per adapter");
        assertBackwardAsEachAdapterAlone(pool, ids, data);
        pool.remove(1);
        pool.add(1, FourierFTSpec.fromSeed(37, 29, 20, 5, -2f), data.gaussian(20)); // a new α, the others' kept
        assertEquals(-2f, pool.adapter(1).spec().alpha());
        assertEquals(7.5f, pool.adapter(3).spec().alpha());
        assertEachTokenAsIfAlone(pool, ids, DType.BFLOAT16, data, "α per adapter, one replaced");
    }

    /** Forwards from several threads while another thread adds and removes other adapters: results unchanged. */
    @Test
    void addsAndRemovesDuringForwardsLeaveThemAlone() throws Exception {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data, 8, 0);
        int tokens = 16;
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 8;
        }
        HostArray x = HostArray.float32(data.gaussian(tokens * 29));
        float[] expected = new float[tokens * 37];
        backend().forward(pool, ids, x, tokens, HostArray.float32(expected));
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread churn = new Thread(() -> {
            FourierFTSpec spec = FourierFTSpec.fromSeed(37, 29, 20, 9, 0.3f);
            for (int i = 0; !stop.get(); i = (i + 1) % 50) {
                pool.add(100 + i, spec, new float[20]);
                pool.remove(100 + i);
            }
        });
        churn.start();
        try {
            List<java.util.concurrent.Future<float[]>> results = new ArrayList<>();
            java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newFixedThreadPool(3);
            try {
                for (int k = 0; k < 12; k++) {
                    results.add(threads.submit(() -> {
                        float[] y = new float[tokens * 37];
                        backend().forward(pool, ids, x, tokens, HostArray.float32(y));
                        return y;
                    }));
                }
                for (java.util.concurrent.Future<float[]> r : results) {
                    assertArrayEquals(expected, r.get(), data.tag());
                }
            } finally {
                threads.shutdown();
            }
        } finally {
            stop.set(true);
            churn.join();
        }
        assertEquals(8, pool.size());
    }

    /**
     * Two threads remove and add back (with the same coefficients) the very adapters that three threads' forwards
     * and backwards use: each call either resolves every id at its start and then gives exactly the result of a
     * quiet pool, or is refused, naming a token whose adapter was out at that moment; the pool ends as it began.
     */
    @Test
    void adaptersRemovedAndAddedBackWhileCallsUseThemFromSeveralThreads() throws Exception {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data, 8, 0);
        long bytes = pool.bytes();
        FourierFTSpec[] specs = new FourierFTSpec[8];
        float[][] coeffs = new float[8][];
        for (int i = 0; i < 8; i++) {
            specs[i] = pool.adapter(i).spec();
            coeffs[i] = pool.adapter(i).coefficientsCopy();
        }
        int tokens = 16;
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 8;
        }
        HostArray x = HostArray.float32(data.gaussian(tokens * 29));
        HostArray gy = HostArray.float32(data.gaussian(tokens * 37));
        float[] expectedY = new float[tokens * 37];
        backend().forward(pool, ids, x, tokens, HostArray.float32(expectedY));
        java.util.Map<Integer, float[]> expectedGrads = backend().backward(pool, ids, x, gy, tokens, null);
        java.util.concurrent.atomic.AtomicInteger done = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger refused = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newFixedThreadPool(3);
        try (AutoCloseable churn = removeAndAddBack(pool, specs, coeffs, 200_000)) { // mostly present: most calls run
            List<java.util.concurrent.Future<?>> calls = new ArrayList<>();
            for (int k = 0; k < 30; k++) {
                boolean backwardCall = k % 3 == 2;
                calls.add(threads.submit(() -> {
                    try {
                        if (backwardCall) {
                            java.util.Map<Integer, float[]> grads = backend().backward(pool, ids, x, gy, tokens, null);
                            assertEquals(expectedGrads.keySet(), grads.keySet());
                            for (int id : grads.keySet()) {
                                assertArrayEquals(expectedGrads.get(id), grads.get(id), "∂L/∂c of " + id + data.tag());
                            }
                        } else {
                            float[] y = new float[tokens * 37];
                            backend().forward(pool, ids, x, tokens, HostArray.float32(y));
                            assertArrayEquals(expectedY, y, data.tag());
                        }
                        done.incrementAndGet();
                    } catch (IllegalArgumentException e) {
                        assertTrue(e.getMessage().contains("adapterIds["), e.getMessage());
                        refused.incrementAndGet();
                    }
                    return null;
                }));
            }
            for (java.util.concurrent.Future<?> call : calls) {
                call.get();
            }
        } finally {
            threads.shutdown();
        }
        assertEquals(30, done.get() + refused.get());
        assertTrue(done.get() > 0, "every call refused: " + refused.get());
        assertEquals(8, pool.size());
        assertEquals(2, pool.indexSets());
        assertEquals(bytes, pool.bytes());
    }

    /**
     * Starts two threads that remove and add back (with the same spec and coefficients) adapters 0 .. n − 1 of a
     * pool, one the even ids and one the odd, in turn, each pausing {@code parkNanos} after each; closing the result
     * stops and joins them.
     *
     * @param pool the pool
     * @param specs the adapters' specs, by id
     * @param coeffs their coefficients, by id
     * @param parkNanos the pause after each remove and add
     * @return what stops them
     */
    protected static AutoCloseable removeAndAddBack(FourierFTAdapterPool pool, FourierFTSpec[] specs, float[][] coeffs,
                                                    long parkNanos) {
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        List<Thread> churn = new ArrayList<>();
        for (int c = 0; c < 2; c++) {
            int first = c;
            churn.add(new Thread(() -> {
                for (int i = first; !stop.get(); i = (i + 2) % specs.length) {
                    pool.remove(i);
                    pool.add(i, specs[i], coeffs[i]);
                    java.util.concurrent.locks.LockSupport.parkNanos(parkNanos);
                }
            }));
        }
        churn.forEach(Thread::start);
        return () -> {
            stop.set(true);
            for (Thread t : churn) {
                t.join();
            }
        };
    }

    /**
     * The mixed batch's backward: each used adapter's ∂L/∂c is the single-adapter backward's on its tokens alone
     * (gathered in batch order; bit for bit where the mixed forward is, else within float32 rounding), ∂L/∂x of
     * each token is its own backward's, and tokens with −1 leave their gradX rows alone (the single-adapter
     * backward is held to the float64 reference above).
     */
    @Test
    void aMixedBatchBackwardEqualsEachAdapterOnItsTokens() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data, 5, 10);
        int tokens = 23;
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 6 == 5 ? -1 : 10 + data.nextInt(5);
        }
        assertBackwardAsEachAdapterAlone(pool, ids, data);
        expectMessage("adapterIds[0] = 99", () -> backend().backward(pool, new int[] {99}, HostArray.float32(new float[29]),
                HostArray.float32(new float[37]), 1, null));
    }

    /**
     * An adapter with enough tokens for several partial sums (over 64 of them), runs of one id and of −1, many
     * adapters of two index sets of different n, and a call without gradX: each adapter as alone.
     */
    @Test
    void aLargeMixedBatchBackwardEqualsEachAdapterOnItsTokens() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = new FourierFTAdapterPool(37, 29); // two index sets of different n
        FourierFTSpec[] specs = {FourierFTSpec.fromSeed(37, 29, 20, 5, 0.3f), FourierFTSpec.fromSeed(37, 29, 31, 6, 0.7f)};
        for (int i = 0; i < 40; i++) {
            pool.add(i, specs[i % 2], data.gaussian(specs[i % 2].n()));
        }
        List<Integer> ids = new ArrayList<>();
        int sevens = 0;
        while (ids.size() < 300 || sevens < 140) {
            int id = sevens < 140 && data.nextInt(2) == 0 ? 7 : data.nextInt(6) == 0 ? -1 : data.nextInt(40);
            for (int k = 1 + data.nextInt(4); k > 0; k--) {
                ids.add(id);
                sevens += id == 7 ? 1 : 0;
            }
        }
        int[] batch = ids.stream().mapToInt(Integer::intValue).toArray();
        assertBackwardAsEachAdapterAlone(pool, batch, data);
        HostArray x = HostArray.float32(data.gaussian(batch.length * 29));
        HostArray gy = HostArray.float32(data.gaussian(batch.length * 37));
        java.util.Map<Integer, float[]> without = backend().backward(pool, batch, x, gy, batch.length, null);
        java.util.Map<Integer, float[]> with = backend().backward(pool, batch, x, gy, batch.length,
                HostArray.float32(new float[batch.length * 29]));
        assertEquals(with.keySet(), without.keySet());
        for (int id : with.keySet()) {
            assertArrayEquals(with.get(id), without.get(id), "∂L/∂c without gradX, adapter " + id + data.tag());
        }
    }

    /** A batch in which no token has an adapter: y and gradX keep their bits, and the backward has no gradients. */
    @Test
    void aBatchWithoutAdaptersLeavesEverythingAlone() {
        TestData data = new TestData();
        FourierFTAdapterPool pool = pool(data, 3, 0);
        int tokens = 5;
        int[] ids = {-1, -1, -1, -1, -1};
        HostArray x = HostArray.float32(data.gaussian(tokens * 29));
        float[] y0 = data.gaussian(tokens * 37);
        HostArray y = HostArray.float32(y0.clone());
        backend().forward(pool, ids, x, tokens, y);
        assertArrayEquals(y0, y.floats(), "y" + data.tag());
        float[] gx0 = data.gaussian(tokens * 29);
        HostArray gx = HostArray.float32(gx0.clone());
        java.util.Map<Integer, float[]> grads = backend().backward(pool, ids, x,
                HostArray.float32(data.gaussian(tokens * 37)), tokens, gx);
        assertTrue(grads.isEmpty(), "no adapter, no gradient: " + grads.keySet());
        assertArrayEquals(gx0, gx.floats(), "gradX" + data.tag());
    }

    private void assertBackwardAsEachAdapterAlone(FourierFTAdapterPool pool, int[] ids, TestData data) {
        assertBackwardAsEachAdapterAlone(pool, ids, DType.FLOAT32, data);
    }

    /** As above with x, ∂L/∂y and gradX in {@code dtype} (the single-adapter calls take the same arrays). */
    private void assertBackwardAsEachAdapterAlone(FourierFTAdapterPool pool, int[] ids, DType dtype, TestData data) {
        int tokens = ids.length;
        HostArray x = HostArray.of(dtype, data.gaussian(tokens * 29));
        HostArray gy = HostArray.of(dtype, data.gaussian(tokens * 37));
        float[] gx0 = HostArray.of(dtype, data.gaussian(tokens * 29)).toFloats(); // values the dtype holds
        HostArray gx = HostArray.of(dtype, gx0);
        java.util.Map<Integer, float[]> grads = backend().backward(pool, ids, x, gy, tokens, gx);
        java.util.Set<Integer> used = new java.util.LinkedHashSet<>();
        for (int id : ids) {
            if (id >= 0) {
                used.add(id);
            }
        }
        assertEquals(new ArrayList<>(used), new ArrayList<>(grads.keySet()), "first-use order");
        for (int id : used) {
            List<Integer> rows = new ArrayList<>();
            for (int t = 0; t < tokens; t++) {
                if (ids[t] == id) {
                    rows.add(t);
                }
            }
            float[] xAll = x.toFloats();
            float[] gyAll = gy.toFloats();
            float[] xs = new float[rows.size() * 29];
            float[] gs = new float[rows.size() * 37];
            for (int i = 0; i < rows.size(); i++) {
                System.arraycopy(xAll, rows.get(i) * 29, xs, i * 29, 29);
                System.arraycopy(gyAll, rows.get(i) * 37, gs, i * 37, 37);
            }
            FourierFTAdapterPool.Adapter a = pool.adapter(id);
            float[] alone = new float[a.spec().n()];
            float[] gxAlone = new float[rows.size() * 29];
            backend().backward(a.spec(), a.coefficientsCopy(), HostArray.of(dtype, xs), HostArray.of(dtype, gs),
                    rows.size(), alone, HostArray.float32(gxAlone));
            String what = "adapter " + id + ", " + dtype + data.tag();
            if (mixedBatchBitwise()) {
                assertArrayEquals(alone, grads.get(id), what);
            } else {
                double err = TestData.relativeError(TestData.toDouble(grads.get(id)), TestData.toDouble(alone));
                assertTrue(err <= 1e-5, what + ": ∂L/∂c relative error " + err);
            }
            // gradX rows: what was there plus the token's own ∂L/∂x, rounded once into the dtype
            float tolerance = (float) Math.max(1e-5, TestData.tolerance(dtype));
            float[] got = gx.toFloats();
            for (int i = 0; i < rows.size(); i++) {
                int t = rows.get(i);
                for (int k = 0; k < 29; k++) {
                    float want = gx0[t * 29 + k] + gxAlone[i * 29 + k];
                    assertEquals(want, got[t * 29 + k], tolerance * (1 + Math.abs(want)), "gradX token " + t + ", " + what);
                }
            }
        }
        float[] got = gx.toFloats();
        for (int t = 0; t < tokens; t++) {
            if (ids[t] < 0) {
                assertArrayEquals(java.util.Arrays.copyOfRange(gx0, t * 29, (t + 1) * 29),
                        java.util.Arrays.copyOfRange(got, t * 29, (t + 1) * 29), "token " + t + " without adapter");
            }
        }
    }

    /**
     * The mixed backward over the adapter counts of the forward's checks (1, 7, 100, 1000 where the backend is
     * quick), two index sets of different n, repeated ids and −1s, in every dtype: each adapter's ∂L/∂c as its
     * single-adapter backward on its tokens alone, each token's ∂L/∂x its own.
     */
    @Test
    void aMixedBackwardOfEveryAdapterCountAndDtypeEqualsEachAdapterAlone() {
        for (int count : mixedAdapterCounts()) {
            for (DType dtype : DType.values()) {
                TestData data = new TestData();
                FourierFTAdapterPool pool = pool(data, count, 1);
                int tokens = Math.max(3, count + count / 2);
                int[] ids = new int[tokens];
                for (int t = 0; t < tokens; t++) {
                    ids[t] = t % 6 == 5 ? -1 : 1 + data.nextInt(count);
                }
                assertBackwardAsEachAdapterAlone(pool, ids, dtype, data);
            }
        }
    }

    protected static void expectMessage(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }
}
