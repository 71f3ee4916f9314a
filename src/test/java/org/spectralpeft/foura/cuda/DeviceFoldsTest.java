package org.spectralpeft.foura.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.StreamScratch;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;
import org.spectralpeft.foura.cpu.FoldedFactors;
import org.spectralpeft.fourierft.cuda.RequiresCuda;

/**
 * The device folds (cuFFT and the pre/post kernels) against the host's {@link FoldedFactors} (itself checked
 * against the float64 transform matrices): the fold of A's rows and of Bᵀ's rows (the conjugate), and both
 * adjoints, at lengths 1, 2, odd, prime, even and 2^k·p.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class DeviceFoldsTest {
    private static KernelFixture gpu;
    private static DeviceFolds folds;

    @BeforeAll
    static void open() {
        gpu = new KernelFixture();
        folds = new DeviceFolds(gpu.kernels, gpu.context.fftPlans());
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    private interface Fold {
        void run(long in, long out, StreamScratch scratch);
    }

    private static float[] onDevice(float[] in, int outLength, Fold fold) {
        float[] out = new float[outLength];
        try (DeviceBuffer din = gpu.context.allocate(DType.FLOAT32, in.length);
             DeviceBuffer dout = gpu.context.allocate(DType.FLOAT32, outLength);
             StreamScratch scratch = new StreamScratch(gpu.stream)) {
            din.copyFrom(HostArray.float32(in));
            fold.run(din.array().address(), dout.array().address(), scratch);
            gpu.stream.synchronize();
            dout.copyTo(HostArray.float32(out));
        }
        return out;
    }

    private static void assertClose(float[] got, float[] want, String what, TestData data) {
        double err = TestData.relativeError(TestData.toDouble(got), TestData.toDouble(want));
        assertTrue(err < 2e-6, what + ": relative error " + err + data.tag());
    }

    private static float[] transpose(float[] m, int rows, int cols) {
        float[] t = new float[m.length];
        for (int p = 0; p < rows; p++) {
            for (int q = 0; q < cols; q++) {
                t[q * rows + p] = m[p * cols + q];
            }
        }
        return t;
    }

    @ParameterizedTest(name = "d_out={0} d_in={1} r={2} {3}")
    @CsvSource({
        "1, 1, 1, DFT", "1, 1, 1, DCT", "2, 3, 1, DFT", "3, 2, 1, DCT", "5, 8, 3, DFT", "8, 5, 3, DCT",
        "101, 97, 4, DFT", "97, 101, 4, DCT", "768, 344, 3, DFT", "344, 768, 3, DCT", "1000, 1001, 2, DFT", "1001, 1000, 2, DCT",
    })
    void foldsAndTheirAdjointsMatchTheHost(int dOut, int dIn, int r, Transform transform) {
        TestData data = new TestData();
        FouRASpec spec = FouRASpec.of(dOut, dIn, r, transform, Gate.NONE, 1f);
        boolean dft = transform == Transform.DFT;
        int width = (dft ? 2 : 1) * r;
        float[] a = data.gaussian(r * dIn);
        float[] b = data.gaussian(dOut * r);

        float[] aHat = onDevice(a, width * dIn, (in, out, s) -> folds.fold(dft, r, dIn, in, out, 1f, s, gpu.stream));
        assertClose(aHat, FoldedFactors.aHat(spec, a), "Â", data);
        float[] bHatT = onDevice(transpose(b, dOut, r), width * dOut,
                (in, out, s) -> folds.fold(dft, r, dOut, in, out, -1f, s, gpu.stream));
        assertClose(bHatT, transpose(FoldedFactors.bHat(spec, b), dOut, width), "B̂ᵀ", data);

        float[] gAHat = data.gaussian(width * dIn);
        float[] gA = onDevice(gAHat, r * dIn, (in, out, s) -> folds.unfold(dft, r, dIn, in, out, 1f, s, gpu.stream));
        assertClose(gA, FoldedFactors.gradA(spec, gAHat), "∂A from ∂Â", data);
        float[] gBHatT = data.gaussian(width * dOut);
        float[] gBT = onDevice(gBHatT, r * dOut, (in, out, s) -> folds.unfold(dft, r, dOut, in, out, -1f, s, gpu.stream));
        assertClose(transpose(gBT, r, dOut), FoldedFactors.gradB(spec, transpose(gBHatT, width, dOut)), "∂B from ∂B̂", data);
    }
}
