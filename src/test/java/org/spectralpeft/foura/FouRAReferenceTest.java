package org.spectralpeft.foura;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;
import org.spectralpeft.reference.FouRAReference;

/**
 * The float64 FouRA reference checked on its own (the backends are checked against it), and DESIGN.md's
 * FouRA formulas checked numerically through it: the transforms are unitary, the gradients match finite
 * differences, and the folded forms the backends compute (Â = A·𝒯_in, B̂ = 𝒯_out⁻¹·B; the forward as two real
 * GEMMs around the gate, the merged ΔW, and ∂A brought back through the transform) equal the definitions.
 */
class FouRAReferenceTest {
    private static final String SHAPES = """
            7, 5, 3, true
            7, 5, 3, false
            12, 10, 4, true
            10, 12, 4, false
            1, 8, 1, true
            8, 1, 1, false
            9, 9, 9, true
            """;

    private static double[] gaussian(Random random, int n) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = random.nextGaussian();
        }
        return a;
    }

    private static double[] randomMask(Random random, int r) {
        double[] m = new double[r];
        for (int i = 0; i < r; i++) {
            m[i] = random.nextBoolean() ? 1 : 0;
        }
        m[random.nextInt(r)] = 1; // never all zeros
        return m;
    }

    private static void assertClose(double[] expected, double[] got, double tol, String what) {
        double err = TestData.relativeError(got, expected);
        assertTrue(err < tol, what + ": relative error " + err);
    }

    /**
     * Five-point central differences of {@code loss} in every element of {@code p}, each put back after its
     * steps. A step of 1e-4 keeps the rounding of the loss (about ε·|L|/h) 100× below that of a two-point
     * difference at 1e-6, which reached the 1e-6 tolerance where a saturated gate's gradient is small against
     * |L|; the truncation error, h⁴ times the fifth derivative, stays far below it for these smooth losses.
     */
    private static double[] numericGradient(double[] p, java.util.function.DoubleSupplier loss) {
        double h = 1e-4;
        double[] numeric = new double[p.length];
        for (int i = 0; i < p.length; i++) {
            double keep = p[i];
            p[i] = keep + h;
            double up = loss.getAsDouble();
            p[i] = keep - h;
            double down = loss.getAsDouble();
            p[i] = keep + 2 * h;
            double up2 = loss.getAsDouble();
            p[i] = keep - 2 * h;
            double down2 = loss.getAsDouble();
            p[i] = keep;
            numeric[i] = (8 * (up - down) - (up2 - down2)) / (12 * h);
        }
        return numeric;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    @ParameterizedTest(name = "{0}x{1} r={2} dft={3}")
    @CsvSource(textBlock = SHAPES)
    void transformsAreUnitary(int dOut, int dIn, int r, boolean dft) {
        FouRAReference ref = new FouRAReference(dOut, dIn, r, dft, 1.0);
        double[][] t = ref.inputTransform();
        for (int k = 0; k < dIn; k++) {
            for (int l = 0; l < dIn; l++) { // (T·Tᴴ)[k,l]
                double re = 0;
                double im = 0;
                for (int j = 0; j < dIn; j++) {
                    re += t[0][k * dIn + j] * t[0][l * dIn + j] + t[1][k * dIn + j] * t[1][l * dIn + j];
                    im += t[1][k * dIn + j] * t[0][l * dIn + j] - t[0][k * dIn + j] * t[1][l * dIn + j];
                }
                assertEquals(k == l ? 1.0 : 0.0, re, 1e-12, "Re (T·Tᴴ)[" + k + "," + l + "]");
                assertEquals(0.0, im, 1e-12, "Im (T·Tᴴ)[" + k + "," + l + "]");
            }
        }
    }

    @ParameterizedTest(name = "{0}x{1} r={2} dft={3}")
    @CsvSource(textBlock = SHAPES)
    void gradientsMatchFiniteDifferences(int dOut, int dIn, int r, boolean dft) {
        TestData data = new TestData();
        Random random = new Random(data.seed);
        FouRAReference ref = new FouRAReference(dOut, dIn, r, dft, 1.7);
        int tokens = 3;
        double[] a = gaussian(random, r * dIn);
        double[] b = gaussian(random, dOut * r);
        double[] x = gaussian(random, tokens * dIn);
        double[] g = gaussian(random, tokens * dOut);
        double[] mask = randomMask(random, r);
        FouRAReference.Gradients grads = ref.backward(a, b, mask, x, g, tokens);
        double[][] params = {a, b, x};
        double[][] analytic = {grads.a(), grads.b(), grads.x()};
        String[] names = {"A", "B", "x"};
        for (int which = 0; which < 3; which++) {
            double[] numeric = numericGradient(params[which], () -> dot(g, ref.forward(a, b, mask, x, tokens)));
            assertClose(numeric, analytic[which], 1e-6, "∂L/∂" + names[which] + data.tag());
        }
    }

    /** B̂ = 𝒯_out⁻¹·B and Â = A·𝒯_in, complex, as {re, im}. */
    private static double[][] folded(double[][] left, double[] right, int rows, int inner, int cols, boolean leftMatrix) {
        double[] re = new double[rows * cols];
        double[] im = new double[rows * cols];
        for (int p = 0; p < rows; p++) {
            for (int c = 0; c < cols; c++) {
                for (int k = 0; k < inner; k++) {
                    if (leftMatrix) { // complex (rows × inner) · real (inner × cols)
                        re[p * cols + c] += left[0][p * inner + k] * right[k * cols + c];
                        im[p * cols + c] += left[1][p * inner + k] * right[k * cols + c];
                    } else { // real (rows × inner) · complex (inner × cols)
                        re[p * cols + c] += right[p * inner + k] * left[0][k * cols + c];
                        im[p * cols + c] += right[p * inner + k] * left[1][k * cols + c];
                    }
                }
            }
        }
        return new double[][] {re, im};
    }

    @ParameterizedTest(name = "{0}x{1} r={2} dft={3}")
    @CsvSource(textBlock = SHAPES)
    void foldedFormsEqualTheDefinitions(int dOut, int dIn, int r, boolean dft) {
        TestData data = new TestData();
        Random random = new Random(data.seed);
        double alpha = 0.8;
        FouRAReference ref = new FouRAReference(dOut, dIn, r, dft, alpha);
        int tokens = 4;
        double[] a = gaussian(random, r * dIn);
        double[] b = gaussian(random, dOut * r);
        double[] x = gaussian(random, tokens * dIn);
        double[] g = gaussian(random, tokens * dOut);
        double[] m = randomMask(random, r);
        double[][] aHat = folded(ref.inputTransform(), a, r, dIn, dIn, false);   // r × d_in
        double[][] bHat = folded(ref.outputInverse(), b, dOut, dOut, r, true);  // d_out × r

        // forward: Re z = Re(Â)·x, Im z = Im(Â)·x; y = α·(Re B̂·(m ⊙ Re z) − Im B̂·(m ⊙ Im z))
        double[] y = new double[tokens * dOut];
        double[][] zRe = new double[tokens][r];
        double[][] zIm = new double[tokens][r];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < r; i++) {
                for (int k = 0; k < dIn; k++) {
                    zRe[t][i] += aHat[0][i * dIn + k] * x[t * dIn + k];
                    zIm[t][i] += aHat[1][i * dIn + k] * x[t * dIn + k];
                }
            }
            for (int p = 0; p < dOut; p++) {
                double s = 0;
                for (int i = 0; i < r; i++) {
                    s += bHat[0][p * r + i] * m[i] * zRe[t][i] - bHat[1][p * r + i] * m[i] * zIm[t][i];
                }
                y[t * dOut + p] = alpha * s;
            }
        }
        assertClose(ref.forward(a, b, m, x, tokens), y, 1e-12, "forward as two real GEMMs around the gate" + data.tag());

        // merge: ΔW = α·(Re B̂·diag(m)·Re Â − Im B̂·diag(m)·Im Â)
        double[] w = new double[dOut * dIn];
        for (int p = 0; p < dOut; p++) {
            for (int q = 0; q < dIn; q++) {
                for (int i = 0; i < r; i++) {
                    w[p * dIn + q] += alpha * m[i] * (bHat[0][p * r + i] * aHat[0][i * dIn + q]
                            - bHat[1][p * r + i] * aHat[1][i * dIn + q]);
                }
            }
        }
        assertClose(ref.deltaW(a, b, m), w, 1e-12, "ΔW from the folded factors" + data.tag());

        // backward: ∂L/∂Re z = α·m ⊙ (g·Re B̂), ∂L/∂Im z = −α·m ⊙ (g·Im B̂); ∂L/∂Â = (∂L/∂z)ᵀ·x;
        // ∂L/∂A = ∂L/∂Re Â·Re(𝒯_in)ᵀ + ∂L/∂Im Â·Im(𝒯_in)ᵀ; ∂L/∂x = ∂L/∂Re z·Re Â + ∂L/∂Im z·Im Â
        double[] gaRe = new double[r * dIn];
        double[] gaIm = new double[r * dIn];
        double[] gx = new double[tokens * dIn];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < r; i++) {
                double dRe = 0;
                double dIm = 0;
                for (int p = 0; p < dOut; p++) {
                    dRe += g[t * dOut + p] * bHat[0][p * r + i];
                    dIm += g[t * dOut + p] * bHat[1][p * r + i];
                }
                dRe *= alpha * m[i];
                dIm *= -alpha * m[i];
                for (int k = 0; k < dIn; k++) {
                    gaRe[i * dIn + k] += dRe * x[t * dIn + k];
                    gaIm[i * dIn + k] += dIm * x[t * dIn + k];
                    gx[t * dIn + k] += dRe * aHat[0][i * dIn + k] + dIm * aHat[1][i * dIn + k];
                }
            }
        }
        double[][] tIn = ref.inputTransform();
        double[] ga = new double[r * dIn];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < dIn; j++) {
                for (int k = 0; k < dIn; k++) { // Â[i,k] = Σ_j A[i,j]·𝒯[j,k]... so ∂A[i,j] = Σ_k ∂Â[i,k]·𝒯[j,k]
                    ga[i * dIn + j] += gaRe[i * dIn + k] * tIn[0][j * dIn + k] + gaIm[i * dIn + k] * tIn[1][j * dIn + k];
                }
            }
        }
        FouRAReference.Gradients grads = ref.backward(a, b, m, x, g, tokens);
        assertClose(grads.a(), ga, 1e-12, "∂L/∂A through the folded factor" + data.tag());
        assertClose(grads.x(), gx, 1e-12, "∂L/∂x from the folded factors" + data.tag());
    }

    /**
     * ΔWᵀ is itself a FouRA layer: d_in × d_out, A' = Bᵀ, B' = Aᵀ, the same mask and transform (the DFT
     * matrix is symmetric and Re(conj z) = Re z; the DCT's transposes directly). Merging into a weight stored
     * in × out (fan_in_fan_out) can therefore prepare that layer instead of transposing ΔW.
     */
    @ParameterizedTest(name = "{0}x{1} r={2} dft={3}")
    @CsvSource(textBlock = SHAPES)
    void theTransposedUpdateIsTheLayerWithSwappedAndTransposedFactors(int dOut, int dIn, int r, boolean dft) {
        TestData data = new TestData();
        Random random = new Random(data.seed);
        double alpha = 0.5 + random.nextDouble();
        double[] a = gaussian(random, r * dIn);
        double[] b = gaussian(random, dOut * r);
        double[] m = randomMask(random, r);
        double[] w = new FouRAReference(dOut, dIn, r, dft, alpha).deltaW(a, b, m);
        double[] aSwapped = new double[r * dOut]; // Bᵀ
        double[] bSwapped = new double[dIn * r];  // Aᵀ
        for (int i = 0; i < r; i++) {
            for (int o = 0; o < dOut; o++) {
                aSwapped[i * dOut + o] = b[o * r + i];
            }
            for (int q = 0; q < dIn; q++) {
                bSwapped[q * r + i] = a[i * dIn + q];
            }
        }
        double[] wt = new FouRAReference(dIn, dOut, r, dft, alpha).deltaW(aSwapped, bSwapped, m);
        double[] transposed = new double[dIn * dOut];
        for (int p = 0; p < dOut; p++) {
            for (int q = 0; q < dIn; q++) {
                transposed[q * dOut + p] = w[p * dIn + q];
            }
        }
        assertClose(transposed, wt, 1e-12, "ΔWᵀ as the swapped layer" + data.tag());
    }

    @ParameterizedTest(name = "{0}x{1} r={2} dft={3}")
    @CsvSource(textBlock = SHAPES)
    void zeroBGivesZeroAndTheOutputIsLinearInB(int dOut, int dIn, int r, boolean dft) {
        TestData data = new TestData();
        Random random = new Random(data.seed);
        FouRAReference ref = new FouRAReference(dOut, dIn, r, dft, 2.0);
        int tokens = 2;
        double[] a = gaussian(random, r * dIn);
        double[] x = gaussian(random, tokens * dIn);
        double[] m = randomMask(random, r);
        double[] zero = ref.forward(a, new double[dOut * r], m, x, tokens);
        for (double v : zero) {
            assertEquals(0.0, v, "zero B must give exactly zero");
        }
        double[] b1 = gaussian(random, dOut * r);
        double[] b2 = gaussian(random, dOut * r);
        double[] sum = new double[b1.length];
        for (int i = 0; i < sum.length; i++) {
            sum[i] = 2 * b1[i] - 3 * b2[i];
        }
        double[] y1 = ref.forward(a, b1, m, x, tokens);
        double[] y2 = ref.forward(a, b2, m, x, tokens);
        double[] expected = new double[y1.length];
        for (int i = 0; i < y1.length; i++) {
            expected[i] = 2 * y1[i] - 3 * y2[i];
        }
        assertClose(expected, ref.forward(a, sum, m, x, tokens), 1e-12, "linearity in B" + data.tag());
    }

    /**
     * The ADAPTIVE gate's straight-through gradient (DESIGN.md: ∂m_i/∂logit_i taken as σ'(logit_i)) is the exact
     * gradient of a surrogate that keeps the hard mask m⁰ of the point and adds σ(logit(θ)) − σ(logit(θ⁰)):
     * smooth, equal to the forward at θ⁰, so finite differences of it check every term, gate weights included.
     */
    @ParameterizedTest(name = "{0}x{1} r={2} dft={3}")
    @CsvSource(textBlock = SHAPES)
    void adaptiveGateGradientIsTheStraightThroughRule(int dOut, int dIn, int r, boolean dft) {
        TestData data = new TestData();
        Random random = new Random(data.seed);
        FouRAReference ref = new FouRAReference(dOut, dIn, r, dft, 1.3);
        int tokens = 3;
        double[] a = gaussian(random, r * dIn);
        double[] b = gaussian(random, dOut * r);
        double[] x = gaussian(random, tokens * dIn);
        double[] g = gaussian(random, tokens * dOut);
        double[] gate = gaussian(random, r * r + r);
        for (int j = 0; j < r; j++) { // component 0 always open, so the output is never all zero; the rest random
            gate[j] = Math.abs(gate[j]);
        }
        gate[r * r] = Math.abs(gate[r * r]);
        double[][] hard = new double[tokens][];
        double[][] sigma0 = new double[tokens][];
        for (int t = 0; t < tokens; t++) {
            double[][] z = ref.z(a, x, t);
            hard[t] = ref.adaptiveMask(gate, z);
            sigma0[t] = sigmoid(ref.logits(gate, z));
        }
        FouRAReference.Masks surrogate = (z, t) -> {
            double[] s = sigmoid(ref.logits(gate, z));
            double[] m = new double[r];
            for (int i = 0; i < r; i++) {
                m[i] = hard[t][i] + s[i] - sigma0[t][i];
            }
            return m;
        };
        assertClose(ref.forwardAdaptive(a, b, gate, x, tokens), ref.forward(a, b, surrogate, x, tokens), 1e-15,
                "the surrogate equals the forward at the point" + data.tag());
        FouRAReference.Gradients grads = ref.backwardAdaptive(a, b, gate, x, g, tokens);
        double[][] params = {a, b, x, gate};
        double[][] analytic = {grads.a(), grads.b(), grads.x(), grads.gate()};
        String[] names = {"A", "B", "x", "gate"};
        for (int which = 0; which < params.length; which++) {
            double[] numeric = numericGradient(params[which], () -> dot(g, ref.forward(a, b, surrogate, x, tokens)));
            assertClose(numeric, analytic[which], 1e-6, "straight-through ∂L/∂" + names[which] + data.tag());
        }
    }

    private static double[] sigmoid(double[] v) {
        double[] s = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            s[i] = 1 / (1 + Math.exp(-v[i]));
        }
        return s;
    }
}
