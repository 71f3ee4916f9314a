package org.spectralpeft.tlora.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;

/**
 * RingOperator's core gradients against float64 sums of the operator built entry by entry, where the backend's
 * contract does not reach: ring rank 3, stored-transposed cores, and more tokens (for R = 1, enough for several
 * tasks and batches of the Kronecker route, the last ones partial). Σ_n ⟨w_n, M·v_n⟩ is linear in
 * each core entry, so its derivative is that sum with M built from the core holding a 1 at the entry and
 * zeros elsewhere: no cyclic-trace identity involved.
 */
class RingOperatorGradientTest {
    @ParameterizedTest
    @CsvSource({
        "2 3, 3 2, 3, false, 37",
        "4 1 3, 2 3 1, 3, true, 37",
        "2 1 2 3, 1 3 2 2, 2, true, 37",
        "3 2 2 2, 2 2 3 1, 3, false, 37",
        "5, 7, 3, true, 37",
        "1 4, 6 1, 2, false, 37",
        "2 3, 3 2, 1, false, 37",
        "4 1 3, 2 3 1, 1, true, 203",
        "3 2 5 2, 2 5 3 1, 1, false, 70",
        "7, 5, 1, true, 65",
    })
    void gradientsMatchTheOperatorBuiltEntryByEntry(String outDigits, String inDigits, int ring, boolean transposed,
                                                    int tokens) {
        TestData data = new TestData();
        int[] out = digits(outDigits);
        int[] in = digits(inDigits);
        int d = out.length;
        float[][] cores = new float[d][];
        for (int k = 0; k < d; k++) {
            cores[k] = data.gaussian(out[k] * in[k] * ring * ring);
        }
        RingOperator op = new RingOperator(out, in, ring, cores, transposed);
        float[] v = data.gaussian(tokens * op.inLength());
        float[] w = data.gaussian(tokens * op.outLength());
        float[][] grads = gradient(op, ring, v, w, tokens);
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
        float[][] again = gradient(op, ring, v, w, tokens);
        for (int k = 0; k < d; k++) {
            assertArrayEquals(grads[k], again[k], "core " + k + " bit for bit" + data.tag());
        }
    }

    /** R = 1 has a route of its own (mode products on the vectors); rings go through C and the cyclic products. */
    private static float[][] gradient(RingOperator op, int ring, float[] v, float[] w, int tokens) {
        return ring == 1 ? op.kroneckerGradient(v, w, tokens) : op.ringGradient(v, w, tokens);
    }

    /**
     * R = 1 applied to many vectors (several tasks and batches, from an offset) against M built entry by entry;
     * every sum has one term per input digit, so float32 products land within a few roundings.
     */
    @ParameterizedTest
    @CsvSource({
        "4 1 3, 2 3 1, true, 203",
        "3 2 5 2, 2 5 3 1, false, 131",
        "8 10 16, 8 10 16, false, 70",
        "7, 5, true, 65",
    })
    void theKroneckerProductMatchesTheOperatorBuiltEntryByEntry(String outDigits, String inDigits, boolean transposed,
                                                                int tokens) {
        TestData data = new TestData();
        int[] out = digits(outDigits);
        int[] in = digits(inDigits);
        float[][] cores = new float[out.length][];
        for (int k = 0; k < out.length; k++) {
            cores[k] = data.gaussian(out[k] * in[k]);
        }
        RingOperator op = new RingOperator(out, in, 1, cores, transposed);
        int offset = 3 * op.inLength();
        float[] v = data.gaussian(offset + tokens * op.inLength());
        float[] result = new float[5 + tokens * op.outLength()];
        java.util.Arrays.fill(result, Float.NaN);
        op.applyAll(v, offset, tokens, result, 5);
        double[] m = operator(out, in, 1, toDouble(cores), transposed);
        for (int n = 0; n < tokens; n++) {
            double[] expected = new double[op.outLength()];
            for (int p = 0; p < op.outLength(); p++) {
                for (int q = 0; q < op.inLength(); q++) {
                    expected[p] += m[p * op.inLength() + q] * v[offset + n * op.inLength() + q];
                }
            }
            float[] row = java.util.Arrays.copyOfRange(result, 5 + n * op.outLength(), 5 + (n + 1) * op.outLength());
            double err = TestData.relativeError(TestData.toDouble(row), expected);
            assertTrue(err < 1e-5, "vector " + n + " error " + err + data.tag());
        }
        for (int i = 0; i < 5; i++) {
            assertTrue(Float.isNaN(result[i]), "element " + i + " before dstOff was written" + data.tag());
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
