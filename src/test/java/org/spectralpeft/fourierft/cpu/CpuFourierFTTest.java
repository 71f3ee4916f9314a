package org.spectralpeft.fourierft.cpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.fourierft.FourierFTBackendContract;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cpu.RealFft;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.reference.FourierFTReference;

class CpuFourierFTTest extends FourierFTBackendContract {
    private static CpuFourierFT cpu;

    @BeforeAll
    static void open() {
        cpu = new CpuFourierFT();
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    @Override
    protected FourierFTBackend backend() {
        return cpu;
    }

    /** The contract's shapes reach both ways of transforming a column: directly and by FFT. */
    @Test
    void contractShapesCoverDirectAndFftColumns() {
        int direct = 0;
        int fft = 0;
        for (var args : (Iterable<org.junit.jupiter.params.provider.Arguments>) shapes()::iterator) {
            Object[] a = args.get();
            FourierFTSpec spec = FourierFTSpec.fromSeed((int) a[0], (int) a[1], (int) a[2]);
            var cols = spec.halfSpectrumColumns();
            for (int v = 0; v < cols.columns(); v++) {
                int entries = cols.start(v + 1) - cols.start(v);
                if (entries > CpuFourierFT.directColumnEntries(spec.dOut())) {
                    fft++;
                } else if (entries > 0) {
                    direct++;
                }
            }
        }
        assertTrue(direct > 0 && fft > 0, "direct columns " + direct + ", FFT columns " + fft);
    }

    /**
     * Rows wider than a block's budget: materialize and ∂L/∂c then work on several blocks per task and
     * several tasks, carrying each entry's phase from block to block; odd and even widths, direct and FFT
     * columns, a partial last block, merging (ADD) into bfloat16, and ∂L/∂c from a bfloat16 ∂L/∂ΔW.
     */
    @ParameterizedTest(name = "{0}x{1} n={2}")
    @CsvSource({"130, 2050, 300", "97, 2049, 5000", "200, 4100, 40"})
    void wideRowsSpanSeveralBlocksPerTask(int dOut, int dIn, int n) {
        assertTrue(CpuFourierFT.rowBlock(dIn) <= 32 && dOut > 64, "shape too small for several blocks and tasks");
        TestData data = new TestData();
        float alpha = (float) (50 + 200 * data.nextDouble());
        FourierFTSpec spec = FourierFTSpec.ofFlat(dOut, dIn, data.distinctIndices(dOut * dIn, n), alpha);
        var ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), alpha);
        float[] coeffs = data.gaussian(n);
        double[] expected = ref.deltaW(TestData.toDouble(coeffs));

        HostArray out = TestData.poisoned(DType.FLOAT32, dOut * dIn);
        cpu.materialize(spec, coeffs, out);
        double err = TestData.relativeError(TestData.toDouble(out), expected);
        assertTrue(err < TestData.tolerance(DType.FLOAT32), "materialize: " + err + data.tag());

        float[] w0 = data.gaussian(dOut * dIn);
        double rms = Math.sqrt(java.util.Arrays.stream(expected).map(v -> v * v).average().orElse(0));
        for (int i = 0; i < w0.length; i++) {
            w0[i] *= (float) rms; // weights of ΔW's size, so that W + ΔW − W measures ΔW itself
        }
        HostArray w = HostArray.of(DType.BFLOAT16, w0);
        double[] before = TestData.toDouble(w);
        cpu.merge(spec, coeffs, w);
        double[] merged = TestData.toDouble(w);
        double[] delta = new double[merged.length];
        for (int i = 0; i < delta.length; i++) {
            delta[i] = merged[i] - before[i];
        }
        double mergeErr = TestData.relativeError(delta, expected);
        assertTrue(mergeErr < 2e-2, "merge into bfloat16: ΔW relative error " + mergeErr + data.tag());

        HostArray g = HostArray.of(DType.BFLOAT16, data.gaussian(dOut * dIn));
        float[] grad = new float[n];
        java.util.Arrays.fill(grad, Float.NaN);
        cpu.gradCoefficients(spec, g, grad);
        double gradErr = TestData.relativeError(TestData.toDouble(grad),
                ref.gradCoefficients(TestData.toDouble(g)));
        assertTrue(gradErr < 1e-5, "∂L/∂c from ∂L/∂ΔW: relative error " + gradErr + data.tag());
    }

    /**
     * The forward and backward of enough tokens on lengths of factors 2 and 3 take the batched transforms (blocks
     * of tokens, grouped by index set): against the reference in every dtype, with odd lengths (27) and partial
     * blocks; ∂L/∂c poisoned with NaN, ∂L/∂x added into.
     */
    @ParameterizedTest(name = "{0}x{1} n={2} T={3}")
    @CsvSource({"96, 48, 300, 16", "48, 96, 200, 33", "27, 96, 100, 70", "96, 27, 100, 17", "768, 768, 24, 40",
        "6, 12, 20, 100"})
    void theBatchedForwardAndBackwardMatchTheReference(int dOut, int dIn, int n, int tokens) {
        assertTrue(CpuFourierFT.useBatchedForward(dOut, dIn, tokens), "the shape must take the batched forward");
        for (DType dtype : DType.values()) {
            TestData data = new TestData();
            float alpha = (float) (50 + 200 * data.nextDouble());
            FourierFTSpec spec = FourierFTSpec.ofFlat(dOut, dIn, data.distinctIndices(dOut * dIn, n), alpha);
            var ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), alpha);
            float[] coeffs = data.gaussian(n);
            HostArray x = HostArray.of(dtype, data.gaussian(tokens * dIn));
            double[] delta = ref.forward(TestData.toDouble(coeffs), TestData.toDouble(x), tokens);
            HostArray y = HostArray.of(dtype, new float[tokens * dOut]);
            cpu.forward(spec, coeffs, x, tokens, y);
            double err = TestData.relativeError(TestData.toDouble(y), delta);
            assertTrue(err < TestData.tolerance(dtype), dtype + " forward: relative error " + err + data.tag());

            HostArray gy = HostArray.of(dtype, data.gaussian(tokens * dOut));
            float[] gradC = new float[n];
            java.util.Arrays.fill(gradC, Float.NaN);
            double[] gxDelta = ref.backwardInput(TestData.toDouble(coeffs), TestData.toDouble(gy), tokens);
            double gxScale = Math.sqrt(java.util.Arrays.stream(gxDelta).map(v -> v * v).average().orElse(0));
            float[] gx0 = data.gaussian(tokens * dIn);
            for (int i = 0; i < gx0.length; i++) {
                gx0[i] *= (float) gxScale; // of ∂L/∂x's size, so that its rounding does not hide the change
            }
            HostArray gx = HostArray.of(dtype, gx0);
            double[] gxBefore = TestData.toDouble(gx);
            cpu.backward(spec, coeffs, x, gy, tokens, gradC, gx);
            double cErr = TestData.relativeError(TestData.toDouble(gradC),
                    ref.backwardCoefficients(TestData.toDouble(x), TestData.toDouble(gy), tokens));
            assertTrue(cErr < 1e-5, dtype + " backward ∂L/∂c: relative error " + cErr + data.tag());
            double[] gxGot = TestData.toDouble(gx);
            for (int i = 0; i < gxGot.length; i++) {
                gxGot[i] -= gxBefore[i];
            }
            double xErr = TestData.relativeError(gxGot, gxDelta);
            // in half precision, the rounding of gx itself against a change of its own size
            assertTrue(xErr < (dtype == DType.FLOAT32 ? 1e-5 : 3e-2),
                    dtype + " backward ∂L/∂x: relative error " + xErr + data.tag());
        }
    }

    /**
     * The mixed backward in blocks (lengths and token counts of the batched transforms; two index sets, −1 ids,
     * 300 adapters of three α's per set, one of them with 40 tokens or more): each adapter's ∂L/∂c and each token's ∂L/∂x within float32
     * rounding of the single-adapter backward on that adapter's tokens alone; the same bits on a repeat and
     * without gradX.
     */
    @Test
    void aBatchedMixedBackwardMatchesEachAdapterAlone() {
        TestData data = new TestData();
        int dOut = 48;
        int dIn = 96;
        int tokens = 700;
        var pool = new org.spectralpeft.fourierft.FourierFTAdapterPool(dOut, dIn);
        FourierFTSpec[] specs = {FourierFTSpec.fromSeed(dOut, dIn, 60, 5, 0.7f),
            FourierFTSpec.fromSeed(dOut, dIn, 45, 6, 0.7f)};
        for (int a = 0; a < 300; a++) { // each set's adapters under three α's in turn: a block mixes them
            pool.add(a, specs[a % 2].withAlpha(0.7f * (1 + (a / 2) % 3)), data.gaussian(specs[a % 2].n()));
        }
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 7 == 3 ? -1 : (t < 50 ? 11 : data.nextInt(300));
        }
        float[] xs = data.gaussian(tokens * dIn);
        float[] gys = data.gaussian(tokens * dOut);
        float[] gx0 = data.gaussian(tokens * dIn);
        HostArray gx = HostArray.float32(gx0.clone());
        assertTrue(CpuFourierFT.useBatchedForward(dOut, dIn, tokens));
        java.util.Map<Integer, float[]> grads = cpu.backward(pool, ids, HostArray.float32(xs), HostArray.float32(gys),
                tokens, gx);
        java.util.Map<Integer, float[]> again = cpu.backward(pool, ids, HostArray.float32(xs), HostArray.float32(gys),
                tokens, null);
        org.junit.jupiter.api.Assertions.assertEquals(grads.keySet(), again.keySet());
        for (int id : grads.keySet()) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(grads.get(id), again.get(id), "repeat without gradX, adapter " + id + data.tag());
        }
        int checked = 0;
        for (int id : grads.keySet()) {
            java.util.List<Integer> mine = new java.util.ArrayList<>();
            for (int t = 0; t < tokens; t++) {
                if (ids[t] == id) {
                    mine.add(t);
                }
            }
            float[] xa = new float[mine.size() * dIn];
            float[] ga = new float[mine.size() * dOut];
            for (int i = 0; i < mine.size(); i++) {
                System.arraycopy(xs, mine.get(i) * dIn, xa, i * dIn, dIn);
                System.arraycopy(gys, mine.get(i) * dOut, ga, i * dOut, dOut);
            }
            var a = pool.adapter(id);
            float[] alone = new float[a.spec().n()];
            float[] gxAlone = new float[mine.size() * dIn];
            cpu.backward(a.spec(), a.coefficientsCopy(), HostArray.float32(xa), HostArray.float32(ga), mine.size(), alone,
                    HostArray.float32(gxAlone));
            double err = TestData.relativeError(TestData.toDouble(grads.get(id)), TestData.toDouble(alone));
            assertTrue(err <= 1e-5, "adapter " + id + " (" + mine.size() + " tokens): ∂L/∂c relative error " + err
                    + data.tag());
            for (int i = 0; i < mine.size(); i++) {
                int t = mine.get(i);
                double[] got = new double[dIn];
                double[] want = new double[dIn];
                double accumulation = 0; // gradX += is rounded once into float32: an ulp of gradX per element
                double wantNorm = 0;
                for (int k = 0; k < dIn; k++) {
                    got[k] = gx.get(t * dIn + k) - (double) gx0[t * dIn + k];
                    want[k] = gxAlone[i * dIn + k];
                    double ulp = Math.ulp(gx.get(t * dIn + k));
                    accumulation += ulp * ulp;
                    wantNorm += want[k] * want[k];
                }
                double e = TestData.relativeError(got, want);
                double floor = Math.sqrt(accumulation / wantNorm);
                assertTrue(e <= 1e-5 + floor, "token " + t + ": ∂L/∂x relative error " + e + " (rounding floor "
                        + floor + ")" + data.tag());
            }
            checked++;
        }
        assertTrue(checked > 200, "most adapters used");
        for (int t = 0; t < tokens; t++) {
            if (ids[t] < 0) {
                for (int k = 0; k < dIn; k++) {
                    org.junit.jupiter.api.Assertions.assertEquals(gx0[t * dIn + k], gx.get(t * dIn + k), "token " + t
                            + " without adapter");
                }
            }
        }
    }

    /**
     * A mixed batch on the batched forward (two index sets, −1 ids, 1000 adapters of three α's per set): each token
     * gets the bits of a single-adapter call over that adapter's tokens (the same lanes' operations in other
     * blocks), and, within float32 rounding, what a call on that token alone gives (below the batched forward's
     * token count, the one-token route).
     */
    @Test
    void aBatchedMixedForwardGivesEachTokenItsOwnAdaptersBits() {
        TestData data = new TestData();
        int dOut = 48;
        int dIn = 96;
        int tokens = 1500;
        var pool = new org.spectralpeft.fourierft.FourierFTAdapterPool(dOut, dIn);
        FourierFTSpec[] specs = {FourierFTSpec.fromSeed(dOut, dIn, 60, 5, 0.7f),
            FourierFTSpec.fromSeed(dOut, dIn, 60, 6, 0.7f)};
        int adapters = 1000;
        for (int a = 0; a < adapters; a++) { // each set's adapters under three α's in turn: a block mixes them
            pool.add(a, specs[a % 2].withAlpha(0.7f * (1 + (a / 2) % 3)), data.gaussian(60));
        }
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 7 == 3 ? -1 : (t < 40 ? 11 : data.nextInt(adapters)); // adapter 11: 35 tokens or more
        }
        float[] xs = data.gaussian(tokens * dIn);
        float[] y0 = data.gaussian(tokens * dOut);
        HostArray y = HostArray.float32(y0.clone());
        assertTrue(CpuFourierFT.useBatchedForward(dOut, dIn, tokens));
        cpu.forward(pool, ids, HostArray.float32(xs), tokens, y);

        java.util.List<Integer> mine = new java.util.ArrayList<>();
        for (int t = 0; t < tokens; t++) {
            if (ids[t] == 11) {
                mine.add(t);
            }
        }
        assertTrue(CpuFourierFT.useBatchedForward(dOut, dIn, mine.size()));
        float[] x11 = new float[mine.size() * dIn];
        float[] y11 = new float[mine.size() * dOut];
        for (int i = 0; i < mine.size(); i++) {
            System.arraycopy(xs, mine.get(i) * dIn, x11, i * dIn, dIn);
            System.arraycopy(y0, mine.get(i) * dOut, y11, i * dOut, dOut);
        }
        var a11 = pool.adapter(11);
        cpu.forward(a11.spec(), a11.coefficientsCopy(), HostArray.float32(x11), mine.size(), HostArray.float32(y11));
        for (int i = 0; i < mine.size(); i++) {
            int t = mine.get(i);
            for (int o = 0; o < dOut; o++) {
                assertTrue(Float.floatToRawIntBits(y11[i * dOut + o]) == Float.floatToRawIntBits(y.get(t * dOut + o)),
                        "token " + t + " output " + o + ": " + y11[i * dOut + o] + " vs " + y.get(t * dOut + o)
                                + data.tag());
            }
        }
        for (int t = 0; t < tokens; t++) {
            float[] alone = java.util.Arrays.copyOfRange(y0, t * dOut, (t + 1) * dOut);
            if (ids[t] >= 0) {
                var a = pool.adapter(ids[t]);
                cpu.forward(a.spec(), a.coefficientsCopy(),
                        HostArray.float32(java.util.Arrays.copyOfRange(xs, t * dIn, (t + 1) * dIn)), 1,
                        HostArray.float32(alone));
            }
            double[] got = new double[dOut];
            double[] want = new double[dOut];
            double[] change = new double[dOut];
            for (int o = 0; o < dOut; o++) {
                got[o] = y.get(t * dOut + o) - (double) y0[t * dOut + o];
                want[o] = alone[o] - (double) y0[t * dOut + o];
                change[o] = y.get(t * dOut + o);
            }
            if (ids[t] < 0) {
                for (int o = 0; o < dOut; o++) {
                    assertTrue(change[o] == y0[t * dOut + o], "token " + t + " has no adapter" + data.tag());
                }
                continue;
            }
            // y = y0 + contribution is rounded to float32 on each route: up to an ulp of y per element apart
            // whatever the routes' own agreement, which bounds the comparison below when y0 outweighs the
            // contribution (seed 15381247891073: 1.06e-5 at token 305)
            double accumulation = 0;
            double wantNorm = 0;
            for (int o = 0; o < dOut; o++) {
                double ulp = Math.ulp(y.get(t * dOut + o));
                accumulation += ulp * ulp;
                wantNorm += want[o] * want[o];
            }
            double err = TestData.relativeError(got, want);
            double floor = Math.sqrt(accumulation / wantNorm);
            assertTrue(err < 1e-5 + floor, "token " + t + " (id " + ids[t] + "): relative error " + err
                    + " (accumulation floor " + floor + ")" + data.tag());
        }
    }

    /**
     * Widths whose row transform JTransforms' float plan does inaccurately (201 = 3·67, 29), so RealFft takes
     * them in float64: ΔW, and ∂L/∂c from ∂L/∂ΔW (the in-place forward), then match float64 to well within
     * float32's bound. Heights 301 = 7·43 and 37 take the complex transforms down columns.
     */
    @ParameterizedTest(name = "{0}x{1} n={2}")
    @CsvSource({"301, 201, 1000", "37, 29, 200"})
    void genericRadixWidthsAreAccurate(int dOut, int dIn, int n) {
        TestData data = new TestData();
        float alpha = (float) (50 + 200 * data.nextDouble());
        FourierFTSpec spec = FourierFTSpec.ofFlat(dOut, dIn, data.distinctIndices(dOut * dIn, n), alpha);
        var ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), alpha);
        float[] coeffs = data.gaussian(n);
        HostArray out = TestData.poisoned(DType.FLOAT32, dOut * dIn);
        cpu.materialize(spec, coeffs, out);
        double err = TestData.relativeError(TestData.toDouble(out), ref.deltaW(TestData.toDouble(coeffs)));
        assertTrue(err < 1e-6, "materialize: relative error " + err + data.tag());

        HostArray g = HostArray.float32(data.gaussian(dOut * dIn));
        float[] grad = new float[n];
        java.util.Arrays.fill(grad, Float.NaN);
        cpu.gradCoefficients(spec, g, grad);
        double gradErr = TestData.relativeError(TestData.toDouble(grad), ref.gradCoefficients(TestData.toDouble(g)));
        assertTrue(gradErr < 1e-6, "∂L/∂c from ∂L/∂ΔW: relative error " + gradErr + data.tag());
    }

    @Test
    void closedBackendRefusesWork() {
        CpuFourierFT b = new CpuFourierFT();
        b.close();
        b.close(); // idempotent
        FourierFTSpec spec = FourierFTSpec.fromSeed(8, 8, 4);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> b.materialize(spec, new float[4], HostArray.allocate(DType.FLOAT32, 64)));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }
}
