package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.cpu.CpuFourierFT;

/**
 * The two FourierFT backends agree on random inputs at many random sizes and dtypes (each against the other,
 * not the float64 reference, so it covers shapes the reference would make slow): materialize, merge,
 * forward, backward and ∂L/∂c from ∂L/∂ΔW. The seed is printed on failure.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CpuCudaAgreementTest {
    private static final int CASES = 24;
    private static CudaFourierFT cuda;
    private static CpuFourierFT cpu;

    @BeforeAll
    static void open() {
        cuda = CudaFourierFT.open();
        cpu = new CpuFourierFT();
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    private static void assertAgree(HostArray a, HostArray b, DType dtype, String what) {
        double err = TestData.relativeError(TestData.toDouble(a), TestData.toDouble(b));
        assertTrue(err < TestData.tolerance(dtype), what + ": CPU and CUDA differ by " + err);
    }

    private static void assertAgree(float[] a, float[] b, String what) {
        double err = TestData.relativeError(TestData.toDouble(a), TestData.toDouble(b));
        assertTrue(err < 1e-5, what + ": CPU and CUDA differ by " + err);
    }

    @Test
    void backendsAgreeOnRandomShapes() {
        TestData data = new TestData();
        for (int c = 0; c < CASES; c++) {
            int dOut = 1 + data.nextInt(c % 4 == 0 ? 400 : 90);
            int dIn = 1 + data.nextInt(c % 4 == 1 ? 400 : 90);
            int n = 1 + data.nextInt(Math.min(dOut * dIn, 300));
            DType dtype = DType.values()[data.nextInt(DType.values().length)];
            int tokens = 1 + data.nextInt(20);
            FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, n, data.nextInt(1 << 30), (float) (1 + 300 * data.nextDouble()));
            String what = " " + spec + " " + dtype + " T=" + tokens + data.tag();
            float[] coeffs = data.gaussian(n);

            HostArray a = HostArray.allocate(dtype, dOut * dIn);
            HostArray b = HostArray.allocate(dtype, dOut * dIn);
            cpu.materialize(spec, coeffs, a);
            cuda.materialize(spec, coeffs, b);
            assertAgree(a, b, dtype, "materialize" + what);

            float[] w = data.gaussian(dOut * dIn);
            HostArray wa = HostArray.of(dtype, w);
            HostArray wb = HostArray.of(dtype, w);
            cpu.merge(spec, coeffs, wa);
            cuda.merge(spec, coeffs, wb);
            assertAgree(wa, wb, dtype, "merge" + what);

            HostArray x = HostArray.of(dtype, data.gaussian(tokens * dIn));
            float[] y0 = data.gaussian(tokens * dOut);
            HostArray ya = HostArray.of(dtype, y0);
            HostArray yb = HostArray.of(dtype, y0);
            cpu.forward(spec, coeffs, x, tokens, ya);
            cuda.forward(spec, coeffs, x, tokens, yb);
            assertAgree(ya, yb, dtype, "forward" + what);

            HostArray gy = HostArray.of(dtype, data.gaussian(tokens * dOut));
            float[] gx0 = data.gaussian(tokens * dIn);
            HostArray gxa = HostArray.of(dtype, gx0);
            HostArray gxb = HostArray.of(dtype, gx0);
            float[] gca = new float[n];
            float[] gcb = new float[n];
            cpu.backward(spec, coeffs, x, gy, tokens, gca, gxa);
            cuda.backward(spec, coeffs, x, gy, tokens, gcb, gxb);
            assertAgree(gca, gcb, "backward ∂L/∂c" + what);
            assertAgree(gxa, gxb, dtype, "backward ∂L/∂x" + what);

            HostArray g = HostArray.of(dtype, data.gaussian(dOut * dIn));
            float[] ga = new float[n];
            float[] gb = new float[n];
            cpu.gradCoefficients(spec, g, ga);
            cuda.gradCoefficients(spec, g, gb);
            assertAgree(ga, gb, "∂L/∂c from ∂L/∂ΔW" + what);
        }
    }
}
