package org.spectralpeft.tlora;

/**
 * The TR residual's ring products: for every output multi-index ō the r × r matrix G¹[o1]⋯G^D[oD], and for every
 * input multi-index ī the matrix H¹[i1]⋯H^E[iE], so that Δ[ō, ī] = tr(G(ō)·H(ī)) becomes GEMMs with inner
 * dimension r². Cost ∏J·r³ and ∏I·r³, once per call, on the host (they depend on the parameters, not the
 * tokens). Internal: shared by the CPU and CUDA backends.
 */
public final class RingProducts {
    private RingProducts() {
    }

    /**
     * G(ō) for every ō.
     *
     * @param spec a layer with the TR residual
     * @param params its parameters
     * @return (d_out × r²) row-major
     */
    public static float[] output(TLoRASpec spec, TLoRAParameters params) {
        return products(spec.outShape(), params, 0, spec.rank());
    }

    /**
     * H(ī) for every ī.
     *
     * @param spec a layer with the TR residual
     * @param params its parameters
     * @return (d_in × r²) row-major
     */
    public static float[] input(TLoRASpec spec, TLoRAParameters params) {
        return products(spec.inShape(), params, spec.outOrder(), spec.rank());
    }

    /** Row-major products over the multi-index of shape, cores residual(first..first+D−1), each (N_d, r, r). */
    private static float[] products(int[] shape, TLoRAParameters params, int first, int r) {
        int rr = r * r;
        float[] prod = params.residual(first).clone(); // N1 matrices
        int count = shape[0];
        for (int d = 1; d < shape.length; d++) {
            float[] core = params.residual(first + d);
            float[] next = new float[count * shape[d] * rr];
            for (int n = 0; n < count; n++) {
                for (int k = 0; k < shape[d]; k++) {
                    int o = (n * shape[d] + k) * rr;
                    for (int a = 0; a < r; a++) {
                        for (int b = 0; b < r; b++) {
                            double sum = 0;
                            for (int c = 0; c < r; c++) {
                                sum += prod[n * rr + a * r + c] * core[k * rr + c * r + b];
                            }
                            next[o + a * r + b] = (float) sum;
                        }
                    }
                }
            }
            prod = next;
            count *= shape[d];
        }
        return prod;
    }

    /**
     * ∂L/∂(output cores) from ∂L/∂G(ō).
     *
     * @param spec a layer with the TR residual
     * @param params its parameters
     * @param gradProducts ∂L/∂G(ō), (d_out × r²) row-major
     * @return one gradient per output core
     */
    public static float[][] outputCoreGradients(TLoRASpec spec, TLoRAParameters params, float[] gradProducts) {
        return coreGradients(spec.outShape(), params, 0, spec.rank(), gradProducts);
    }

    /**
     * ∂L/∂(input cores) from ∂L/∂H(ī).
     *
     * @param spec a layer with the TR residual
     * @param params its parameters
     * @param gradProducts ∂L/∂H(ī), (d_in × r²) row-major
     * @return one gradient per input core
     */
    public static float[][] inputCoreGradients(TLoRASpec spec, TLoRAParameters params, float[] gradProducts) {
        return coreGradients(spec.inShape(), params, spec.outOrder(), spec.rank(), gradProducts);
    }

    /**
     * Through P(n̄) = C¹[n1]⋯C^D[nD]: ∂L/∂C^k[n_k] = Σ over the other digits of Leftᵀ·∂L/∂P(n̄)·Rightᵀ, with Left
     * the cores before k and Right those after, summed in index order.
     */
    private static float[][] coreGradients(int[] shape, TLoRAParameters params, int first, int r, float[] gradProducts) {
        int rr = r * r;
        int d = shape.length;
        int count = 1;
        for (int n : shape) {
            count *= n;
        }
        double[][] grads = new double[d][];
        for (int k = 0; k < d; k++) {
            grads[k] = new double[shape[k] * rr];
        }
        double[][] prefix = new double[d + 1][rr]; // prefix[k] = C¹⋯C^k (k cores), suffix[k] = C^{k+1}⋯C^D
        double[][] suffix = new double[d + 1][rr];
        int[] digit = new int[d];
        for (int index = 0; index < count; index++) {
            for (int k = d - 1, rest = index; k >= 0; k--) {
                digit[k] = rest % shape[k];
                rest /= shape[k];
            }
            identity(prefix[0], r);
            for (int k = 0; k < d; k++) {
                multiply(prefix[k], params.residual(first + k), digit[k] * rr, prefix[k + 1], r, false);
            }
            identity(suffix[d], r);
            for (int k = d - 1; k >= 0; k--) {
                multiply(suffix[k + 1], params.residual(first + k), digit[k] * rr, suffix[k], r, true);
            }
            for (int k = 0; k < d; k++) {
                double[] g = grads[k];
                int at = digit[k] * rr;
                for (int a = 0; a < r; a++) {
                    for (int b = 0; b < r; b++) {
                        double sum = 0; // Σ_{m,n} Left[m][a]·∂P[m][n]·Right[b][n]
                        for (int m = 0; m < r; m++) {
                            for (int n = 0; n < r; n++) {
                                sum += prefix[k][m * r + a] * gradProducts[index * rr + m * r + n] * suffix[k + 1][b * r + n];
                            }
                        }
                        g[at + a * r + b] += sum;
                    }
                }
            }
        }
        float[][] out = new float[d][];
        for (int k = 0; k < d; k++) {
            out[k] = new float[grads[k].length];
            for (int i = 0; i < out[k].length; i++) {
                out[k][i] = (float) grads[k][i];
            }
        }
        return out;
    }

    private static void identity(double[] m, int r) {
        java.util.Arrays.fill(m, 0);
        for (int a = 0; a < r; a++) {
            m[a * r + a] = 1;
        }
    }

    /** dst = m·core (or core·m when coreFirst), core an r × r matrix at core[at..]. */
    private static void multiply(double[] m, float[] core, int at, double[] dst, int r, boolean coreFirst) {
        for (int a = 0; a < r; a++) {
            for (int b = 0; b < r; b++) {
                double sum = 0;
                for (int c = 0; c < r; c++) {
                    sum += coreFirst ? core[at + a * r + c] * m[c * r + b] : m[a * r + c] * core[at + c * r + b];
                }
                dst[a * r + b] = sum;
            }
        }
    }

    /**
     * Each r × r matrix of m transposed.
     *
     * @param m count × r², row-major
     * @param count the number of matrices
     * @param r their side
     * @return a new array
     */
    public static float[] transposeEach(float[] m, int count, int r) {
        float[] out = new float[m.length];
        for (int n = 0; n < count; n++) {
            for (int a = 0; a < r; a++) {
                for (int b = 0; b < r; b++) {
                    out[n * r * r + a * r + b] = m[n * r * r + b * r + a];
                }
            }
        }
        return out;
    }
}
