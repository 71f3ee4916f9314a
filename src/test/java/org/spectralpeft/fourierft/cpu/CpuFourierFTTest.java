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
