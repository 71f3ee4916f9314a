package consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.spectralpeft.Backends;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;

/**
 * What a framework does with the library, through its published API only: materialize, forward and backward
 * on the best backend, checked against the adapter's formula summed directly.
 */
class ConsumerTest {
    private static final int D_OUT = 24;
    private static final int D_IN = 20;
    private static final int N = 30;
    private static final int TOKENS = 3;

    @Test
    void materializeForwardAndBackwardMatchTheFormula() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(D_OUT, D_IN, N);
        Random random = new Random(1);
        float[] coeffs = gaussian(random, N);
        double[] deltaW = deltaW(spec, coeffs);

        try (FourierFTBackend ft = Backends.fourierFT()) {
            System.out.println("backend: " + ft.description());
            HostArray out = HostArray.allocate(org.spectralpeft.core.DType.FLOAT32, D_OUT * D_IN);
            ft.materialize(spec, coeffs, out);
            assertClose(deltaW, out.toFloats(), "materialize");

            float[] x = gaussian(random, TOKENS * D_IN);
            float[] y = new float[TOKENS * D_OUT];
            ft.forward(spec, coeffs, HostArray.float32(x), TOKENS, HostArray.float32(y));
            double[] yRef = new double[y.length];
            for (int t = 0; t < TOKENS; t++) {
                for (int p = 0; p < D_OUT; p++) {
                    for (int q = 0; q < D_IN; q++) {
                        yRef[t * D_OUT + p] += x[t * D_IN + q] * deltaW[p * D_IN + q];
                    }
                }
            }
            assertClose(yRef, y, "forward");

            float[] gy = gaussian(random, TOKENS * D_OUT);
            float[] gradC = new float[N];
            float[] gx = new float[TOKENS * D_IN];
            ft.backward(spec, coeffs, HostArray.float32(x), HostArray.float32(gy), TOKENS, gradC, HostArray.float32(gx));
            double[] gxRef = new double[gx.length];
            double[] gcRef = new double[N];
            double s = spec.scale();
            for (int t = 0; t < TOKENS; t++) {
                for (int p = 0; p < D_OUT; p++) {
                    for (int q = 0; q < D_IN; q++) {
                        gxRef[t * D_IN + q] += gy[t * D_OUT + p] * deltaW[p * D_IN + q];
                        for (int l = 0; l < N; l++) {
                            gcRef[l] += s * basis(spec, l, p, q) * gy[t * D_OUT + p] * x[t * D_IN + q];
                        }
                    }
                }
            }
            assertClose(gxRef, gx, "backward ∂L/∂x");
            assertClose(gcRef, gradC, "backward ∂L/∂c");
        }
    }

    private static double basis(FourierFTSpec spec, int l, int p, int q) {
        return Math.cos(2 * Math.PI * ((double) p * spec.rows()[l] / D_OUT + (double) q * spec.cols()[l] / D_IN));
    }

    private static double[] deltaW(FourierFTSpec spec, float[] coeffs) {
        double[] w = new double[D_OUT * D_IN];
        for (int p = 0; p < D_OUT; p++) {
            for (int q = 0; q < D_IN; q++) {
                for (int l = 0; l < N; l++) {
                    w[p * D_IN + q] += spec.scale() * coeffs[l] * basis(spec, l, p, q);
                }
            }
        }
        return w;
    }

    private static float[] gaussian(Random random, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
        }
        return a;
    }

    private static void assertClose(double[] expected, float[] got, String what) {
        assertEquals(expected.length, got.length, what + ": length");
        double num = 0;
        double den = 0;
        for (int i = 0; i < got.length; i++) {
            num += (got[i] - expected[i]) * (got[i] - expected[i]);
            den += expected[i] * expected[i];
        }
        assertTrue(den > 0, what + ": the reference is all zeros");
        double err = Math.sqrt(num / den);
        assertTrue(err < 1e-5, what + ": relative error " + err);
    }
}
