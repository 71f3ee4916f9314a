package org.spectralpeft.cli;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.Random;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec;

/**
 * {@code demo --adapter foura}: a 4096 × 4096 FouRA layer, r = 16, FIXED gate (a quarter of the components
 * masked), once with the DFT and once with the DCT. Prepares the folded factors, materializes ΔW, runs the
 * unmaterialized forward, cross-checks the forward against x·ΔWᵀ and a sample of ΔW against a float64
 * evaluation of the definition with explicit transform sums (no FFT), and prints the timings.
 */
final class FouRADemo {
    private static final int D = 4096;
    private static final int R = 16;
    private static final float ALPHA = 1f;

    private FouRADemo() {
    }

    static int run(BackendOption backendChoice, int tokens, PrintStream out) {
        Random random = new Random(2024);
        float[] x = gaussian(random, tokens * D, 1);
        boolean ok = true;
        try (FouRABackend backend = backendChoice.openFouRA(out)) {
            out.printf("backend: %s%n", backend.description());
            for (FouRASpec.Transform transform : FouRASpec.Transform.values()) {
                FouRASpec spec = FouRASpec.of(D, D, R, transform, FouRASpec.Gate.FIXED, ALPHA);
                float[] a = gaussian(random, R * D, 1 / Math.sqrt(D));
                float[] b = gaussian(random, D * R, 1 / Math.sqrt(R));
                float[] mask = new float[R];
                for (int i = 0; i < R; i++) {
                    mask[i] = i % 4 == 3 ? 0f : 1f;
                }
                out.printf("layer: %d x %d FouRA, r = %d, %s, FIXED gate (%d of %d components on), alpha = %.1f; %d tokens%n",
                        D, D, R, transform, R - R / 4, R, ALPHA, tokens);
                FouRAFactors[] factors = new FouRAFactors[1];
                try {
                    double prepareMs = Demo.median(3, () -> {
                        if (factors[0] != null) {
                            factors[0].close();
                        }
                        factors[0] = backend.prepare(spec, a, b, mask);
                    });
                    HostArray deltaW = HostArray.float32(new float[D * D]);
                    double materializeMs = Demo.median(3, () -> backend.materialize(factors[0], deltaW));
                    HostArray y = HostArray.float32(new float[tokens * D]);
                    double forwardMs = Demo.median(3, () -> {
                        Arrays.fill(y.floats(), 0f);
                        backend.forward(factors[0], HostArray.float32(x), tokens, y);
                    });
                    double pathError = Demo.forwardVsDense(deltaW.floats(), x, tokens, y.floats());
                    double sampleError = sampleVsDefinition(spec, a, b, mask, deltaW.floats(), random);
                    out.printf("  prepare (fold the transforms into A and B): %.2f ms%n", prepareMs);
                    out.printf("  materialize dW: %.2f ms%n", materializeMs);
                    out.printf("  unmaterialized forward, %d tokens: %.2f ms%n", tokens, forwardMs);
                    out.printf("  forward vs x*dW^T from the materialized dW: relative error %.2e%n", pathError);
                    out.printf("  dW sample (64 entries) vs float64 definition: relative error %.2e%n", sampleError);
                    ok &= pathError < 1e-5 && sampleError < 1e-5;
                } finally {
                    if (factors[0] != null) {
                        factors[0].close();
                    }
                }
            }
        }
        out.println(ok ? "checks: passed" : "checks: FAILED (tolerance 1e-5)");
        return ok ? 0 : 1;
    }

    private static float[] gaussian(Random random, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (scale * random.nextGaussian());
        }
        return v;
    }

    /**
     * ΔW[p, q] = α·Re Σ_i (𝒯_out⁻¹·B)[p, i]·m_i·(A·𝒯_in)[i, q] from explicit transform sums in float64:
     * DFT entries e^{∓2πi·jk/d}/√d, DCT-II entries s_k·cos(π(2j+1)k/(2d)).
     */
    private static double sampleVsDefinition(FouRASpec spec, float[] a, float[] b, float[] mask, float[] w, Random random) {
        boolean dft = spec.transform() == FouRASpec.Transform.DFT;
        double num = 0;
        double den = 0;
        for (int s = 0; s < 64; s++) {
            int p = random.nextInt(D);
            int q = random.nextInt(D);
            double ref = 0;
            for (int i = 0; i < R; i++) {
                if (mask[i] == 0f) {
                    continue;
                }
                double aRe = 0;
                double aIm = 0;
                double bRe = 0;
                double bIm = 0;
                for (int j = 0; j < D; j++) {
                    if (dft) {
                        double inAngle = -2 * Math.PI * ((long) j * q % D) / D;   // (A·F)[i, q]
                        aRe += a[i * D + j] * Math.cos(inAngle);
                        aIm += a[i * D + j] * Math.sin(inAngle);
                        double outAngle = 2 * Math.PI * ((long) p * j % D) / D;   // (F⁻¹·B)[p, i]
                        bRe += b[j * R + i] * Math.cos(outAngle);
                        bIm += b[j * R + i] * Math.sin(outAngle);
                    } else {
                        aRe += a[i * D + j] * dct(j, q);   // (A·C)[i, q] = Σ_k A[i, k]·C[k, q]
                        bRe += dct(j, p) * b[j * R + i];   // (Cᵀ·B)[p, i] = Σ_o C[o, p]·B[o, i]
                    }
                }
                ref += (bRe * aRe - bIm * aIm) / (dft ? D : 1);
            }
            ref *= spec.alpha();
            num += (w[p * D + q] - ref) * (w[p * D + q] - ref);
            den += ref * ref;
        }
        return Math.sqrt(num / den);
    }

    /** The orthonormal DCT-II matrix entry C[k, j]. */
    private static double dct(int k, int j) {
        double s = k == 0 ? Math.sqrt(1.0 / D) : Math.sqrt(2.0 / D);
        return s * Math.cos(Math.PI * (2L * j + 1) * k / (2.0 * D));
    }
}
