package org.spectralpeft.tlora.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;

/**
 * RingOperator's core gradients against float64 sums of the operator built entry by entry, where the backend's
 * contract does not reach: ring rank 3, stored-transposed cores, and more tokens. Σ_n ⟨w_n, M·v_n⟩ is linear in
 * each core entry, so its derivative is that sum with M built from the core holding a 1 at the entry and
 * zeros elsewhere: no cyclic-trace identity involved.
 */
class RingOperatorGradientTest {
    @ParameterizedTest
    @CsvSource({
        "2 3, 3 2, 3, false",
        "4 1 3, 2 3 1, 3, true",
        "2 1 2 3, 1 3 2 2, 2, true",
        "3 2 2 2, 2 2 3 1, 3, false",
        "5, 7, 3, true",
        "1 4, 6 1, 2, false",
    })
    void gradientsMatchTheOperatorBuiltEntryByEntry(String outDigits, String inDigits, int ring, boolean transposed) {
        TestData data = new TestData();
        int[] out = digits(outDigits);
        int[] in = digits(inDigits);
        int d = out.length;
        float[][] cores = new float[d][];
        for (int k = 0; k < d; k++) {
            cores[k] = data.gaussian(out[k] * in[k] * ring * ring);
        }
        RingOperator op = new RingOperator(out, in, ring, cores, transposed);
        int tokens = 37;
        float[] v = data.gaussian(tokens * op.inLength());
        float[] w = data.gaussian(tokens * op.outLength());
        float[][] grads = op.ringGradient(v, w, tokens);
        double[] gram = new double[op.outLength() * op.inLength()]; // Σ_n w_n·v_nᵀ
        for (int n = 0; n < tokens; n++) {
            for (int p = 0; p < op.outLength(); p++) {
                for (int q = 0; q < op.inLength(); q++) {
                    gram[p * op.inLength() + q] += (double) w[n * op.outLength() + p] * v[n * op.inLength() + q];
                }
            }
        }
        for (int k = 0; k < d; k++) {
            double[] expected = new double[cores[k].length];
            float[] saved = cores[k];
            for (int e = 0; e < saved.length; e++) {
                double[][] unit = toDouble(cores);
                unit[k] = new double[saved.length];
                unit[k][e] = 1;
                double[] m = operator(out, in, ring, unit, transposed);
                double sum = 0;
                for (int i = 0; i < m.length; i++) {
                    sum += gram[i] * m[i];
                }
                expected[e] = sum;
            }
            double err = TestData.relativeError(TestData.toDouble(grads[k]), expected);
            assertTrue(err < 1e-5, "core " + k + " gradient error " + err + data.tag());
        }
        float[][] again = op.ringGradient(v, w, tokens);
        for (int k = 0; k < d; k++) {
            assertArrayEquals(grads[k], again[k], "core " + k + " bit for bit" + data.tag());
        }
    }

    /** M[p̄, q̄] = tr(∏_d K^d[p_d, q_d]), each entry's product of R × R slices formed in float64. */
    private static double[] operator(int[] out, int[] in, int ring, double[][] cores, boolean transposed) {
        int d = out.length;
        int outLength = 1;
        int inLength = 1;
        for (int k = 0; k < d; k++) {
            outLength *= out[k];
            inLength *= in[k];
        }
        double[] m = new double[outLength * inLength];
        int rr = ring * ring;
        for (int p = 0; p < outLength; p++) {
            for (int q = 0; q < inLength; q++) {
                double[] product = new double[rr];
                for (int a = 0; a < ring; a++) {
                    product[a * ring + a] = 1;
                }
                int pRest = p;
                int qRest = q;
                int pBlock = outLength;
                int qBlock = inLength;
                for (int k = 0; k < d; k++) { // the first digit most significant
                    pBlock /= out[k];
                    qBlock /= in[k];
                    int pk = pRest / pBlock;
                    int qk = qRest / qBlock;
                    pRest %= pBlock;
                    qRest %= qBlock;
                    int at = (transposed ? qk * out[k] + pk : pk * in[k] + qk) * rr;
                    double[] next = new double[rr];
                    for (int a = 0; a < ring; a++) {
                        for (int b = 0; b < ring; b++) {
                            double s = 0;
                            for (int c = 0; c < ring; c++) {
                                s += product[a * ring + c] * cores[k][at + c * ring + b];
                            }
                            next[a * ring + b] = s;
                        }
                    }
                    product = next;
                }
                double trace = 0;
                for (int a = 0; a < ring; a++) {
                    trace += product[a * ring + a];
                }
                m[p * inLength + q] = trace;
            }
        }
        return m;
    }

    private static double[][] toDouble(float[][] a) {
        double[][] result = new double[a.length][];
        for (int k = 0; k < a.length; k++) {
            result[k] = TestData.toDouble(a[k]);
        }
        return result;
    }

    private static int[] digits(String s) {
        String[] parts = s.trim().split(" ");
        int[] result = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            result[i] = Integer.parseInt(parts[i]);
        }
        return result;
    }
}
