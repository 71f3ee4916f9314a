package org.spectralpeft.cli;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.Random;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.tlora.TLoRABackend;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;

/**
 * {@code demo --adapter tlora}: an SDXL-sized TLoRA layer, 1280 × 1280 with the authors' factorisation
 * [8, 10, 16], transform ring rank R = 1 and 4, LoRA and TR residuals. Materializes W' = W0·T + s·Δ, runs the
 * forward (T applied without forming it) and the backward, cross-checks the forward against x·W'ᵀ and a
 * sample of W' against a float64 evaluation of the definition (traces of core products), and prints the timings.
 */
final class TLoRADemo {
    private static final int[] SHAPE = {8, 10, 16};
    private static final int D = 1280;
    private static final int RANK = 4;
    private static final float ALPHA = 1f;

    private TLoRADemo() {
    }

    static int run(BackendOption backendChoice, int tokens, PrintStream out) {
        Random random = new Random(2025);
        float[] x = gaussian(random, tokens * D, 1);
        float[] w0 = gaussian(random, D * D, 1 / Math.sqrt(D));
        boolean ok = true;
        try (TLoRABackend backend = backendChoice.openTLoRA(out)) {
            out.printf("backend: %s%n", backend.description());
            for (int ring : new int[] {1, 4}) {
                for (TLoRASpec.Residual residual : new TLoRASpec.Residual[] {TLoRASpec.Residual.LORA, TLoRASpec.Residual.TR}) {
                    TLoRASpec spec = TLoRASpec.of(SHAPE, SHAPE, ring, residual, RANK, ALPHA);
                    TLoRAParameters p = trained(spec, random);
                    out.printf("layer: %d x %d TLoRA, factors %s, transform ring rank %d, %s residual rank %d; %d tokens%n",
                            D, D, Arrays.toString(SHAPE), ring, residual, RANK, tokens);
                    HostArray weight = HostArray.float32(new float[D * D]);
                    double materializeMs = Demo.median(3, () -> backend.materialize(spec, p, HostArray.float32(w0), weight));
                    HostArray y = HostArray.float32(new float[tokens * D]);
                    double forwardMs = Demo.median(3, () -> {
                        Arrays.fill(y.floats(), 0f);
                        backend.forward(spec, p, HostArray.float32(w0), HostArray.float32(x), tokens, y);
                    });
                    HostArray g = HostArray.float32(gaussian(random, tokens * D, 1));
                    double backwardMs = Demo.median(1, () -> backend.backward(spec, p, HostArray.float32(w0),
                            HostArray.float32(x), g, tokens, null));
                    double pathError = Demo.forwardVsDense(weight.floats(), x, tokens, y.floats(), D);
                    double sampleError = sampleVsDefinition(spec, p, w0, weight.floats(), random);
                    out.printf("  materialize W' = W0*T + s*Delta: %.2f ms%n", materializeMs);
                    out.printf("  forward (T never formed), %d tokens: %.2f ms%n", tokens, forwardMs);
                    out.printf("  backward (every core's gradient), %d tokens: %.2f ms%n", tokens, backwardMs);
                    out.printf("  forward vs x*W'^T from the materialized W': relative error %.2e%n", pathError);
                    out.printf("  W' sample (64 entries) vs float64 definition: relative error %.2e%n", sampleError);
                    ok &= pathError < 1e-5 && sampleError < 1e-5;
                }
            }
        }
        out.println(ok ? "checks: passed" : "checks: FAILED (tolerance 1e-5)");
        return ok ? 0 : 1;
    }

    /** Parameters away from the start: the initial ones plus noise, so that T ≠ I and Δ ≠ 0. */
    private static TLoRAParameters trained(TLoRASpec spec, Random random) {
        TLoRAParameters start = TLoRAParameters.initial(spec, random);
        float[][] cores = new float[spec.inOrder()][];
        for (int d = 0; d < cores.length; d++) {
            cores[d] = start.transformCore(d).clone();
            for (int i = 0; i < cores[d].length; i++) {
                cores[d][i] += (float) (0.05 * random.nextGaussian());
            }
        }
        float[][] residual = new float[spec.residualArrays()][];
        for (int k = 0; k < residual.length; k++) {
            residual[k] = gaussian(random, (int) spec.residualLength(k), 0.1);
        }
        return TLoRAParameters.of(spec, cores, residual);
    }

    private static float[] gaussian(Random random, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (scale * random.nextGaussian());
        }
        return v;
    }

    /** W'[o, i] = Σ_j W0[o, j]·tr(Π_d A^d[j_d, i_d]) + s·Δ[o, i], from the cores in float64. */
    private static double sampleVsDefinition(TLoRASpec spec, TLoRAParameters p, float[] w0, float[] w, Random random) {
        double num = 0;
        double den = 0;
        double s = spec.alpha() / Math.sqrt(spec.rank());
        for (int k = 0; k < 64; k++) {
            int o = random.nextInt(D);
            int i = random.nextInt(D);
            double ref = 0;
            for (int j = 0; j < D; j++) {
                ref += w0[o * D + j] * trace(digits(j), digits(i), spec.transformRank(), p, -1);
            }
            double delta = 0;
            if (spec.residual() == TLoRASpec.Residual.LORA) {
                for (int c = 0; c < spec.rank(); c++) {
                    delta += (double) p.residual(1)[o * spec.rank() + c] * p.residual(0)[c * D + i];
                }
            } else {
                delta = trace(digits(o), digits(i), spec.rank(), p, 0);
            }
            ref += s * delta;
            num += (w[o * D + i] - ref) * (w[o * D + i] - ref);
            den += ref * ref;
        }
        return Math.sqrt(num / den);
    }

    private static int[] digits(int index) {
        int[] d = new int[SHAPE.length];
        for (int k = SHAPE.length - 1; k >= 0; k--) {
            d[k] = index % SHAPE[k];
            index /= SHAPE[k];
        }
        return d;
    }

    /**
     * residualFirst &lt; 0: tr(Π_d A^d[row_d, col_d]) over the transform cores; else the TR residual
     * tr(Π_d G^d[row_d]·Π_d H^d[col_d]) (output cores, then input cores).
     */
    private static double trace(int[] row, int[] col, int ring, TLoRAParameters p, int residualFirst) {
        double[] m = new double[ring * ring];
        for (int a = 0; a < ring; a++) {
            m[a * ring + a] = 1;
        }
        int steps = residualFirst < 0 ? SHAPE.length : 2 * SHAPE.length;
        for (int step = 0; step < steps; step++) {
            float[] core;
            int at;
            if (residualFirst < 0) {
                core = p.transformCore(step);
                at = (row[step] * SHAPE[step] + col[step]) * ring * ring;
            } else if (step < SHAPE.length) {
                core = p.residual(step);
                at = row[step] * ring * ring;
            } else {
                core = p.residual(step);
                at = col[step - SHAPE.length] * ring * ring;
            }
            double[] next = new double[ring * ring];
            for (int a = 0; a < ring; a++) {
                for (int b = 0; b < ring; b++) {
                    double sum = 0;
                    for (int c = 0; c < ring; c++) {
                        sum += m[a * ring + c] * core[at + c * ring + b];
                    }
                    next[a * ring + b] = sum;
                }
            }
            m = next;
        }
        double t = 0;
        for (int a = 0; a < ring; a++) {
            t += m[a * ring + a];
        }
        return t;
    }
}
