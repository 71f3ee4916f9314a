package org.spectralpeft.tlora;

/**
 * Dense float64 TLoRA, straight from DESIGN.md's definitions, sharing no code with the backends: T and Δ built
 * element by element as traces of products of core slices (multi-indices row-major, first factor most
 * significant), then W' = W0·T + s·Δ and y = x·W'ᵀ.
 */
public final class TLoRAReference {
    private TLoRAReference() {
    }

    /** Digits of a row-major multi-index. */
    static int[] digits(int index, int[] shape) {
        int[] d = new int[shape.length];
        for (int k = shape.length - 1; k >= 0; k--) {
            d[k] = index % shape[k];
            index /= shape[k];
        }
        return d;
    }

    private static double[][] identity(int n) {
        double[][] m = new double[n][n];
        for (int i = 0; i < n; i++) {
            m[i][i] = 1;
        }
        return m;
    }

    private static double[][] times(double[][] a, float[] core, int offset, int n) {
        double[][] out = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int k = 0; k < n; k++) {
                    s += a[i][k] * core[offset + k * n + j];
                }
                out[i][j] = s;
            }
        }
        return out;
    }

    private static double trace(double[][] m) {
        double t = 0;
        for (int i = 0; i < m.length; i++) {
            t += m[i][i];
        }
        return t;
    }

    /** M[p̄, q̄] = tr(K¹[p1, q1]⋯K^D[pD, qD]), cores (P_d, Q_d, R, R); ∏P × ∏Q row-major. */
    public static double[] ringMatrix(int[] p, int[] q, int ring, float[][] cores) {
        int rows = 1;
        int cols = 1;
        for (int i = 0; i < p.length; i++) {
            rows *= p[i];
            cols *= q[i];
        }
        double[] m = new double[rows * cols];
        for (int i = 0; i < rows; i++) {
            int[] pi = digits(i, p);
            for (int j = 0; j < cols; j++) {
                int[] qj = digits(j, q);
                double[][] prod = identity(ring);
                for (int d = 0; d < p.length; d++) {
                    prod = times(prod, cores[d], (pi[d] * q[d] + qj[d]) * ring * ring, ring);
                }
                m[i * cols + j] = trace(prod);
            }
        }
        return m;
    }

    /** The TR residual: Δ[ō, ī] = tr(G¹[o1]⋯G^D[oD]·H¹[i1]⋯H^E[iE]). */
    public static double[] trMatrix(int[] out, int[] in, int r, float[][] cores) {
        int rows = 1;
        int cols = 1;
        for (int o : out) {
            rows *= o;
        }
        for (int i : in) {
            cols *= i;
        }
        double[] m = new double[rows * cols];
        for (int i = 0; i < rows; i++) {
            int[] oi = digits(i, out);
            for (int j = 0; j < cols; j++) {
                int[] ij = digits(j, in);
                double[][] prod = identity(r);
                for (int d = 0; d < out.length; d++) {
                    prod = times(prod, cores[d], oi[d] * r * r, r);
                }
                for (int d = 0; d < in.length; d++) {
                    prod = times(prod, cores[out.length + d], ij[d] * r * r, r);
                }
                m[i * cols + j] = trace(prod);
            }
        }
        return m;
    }

    /** T, d_in × d_in. */
    public static double[] transform(TLoRASpec spec, TLoRAParameters params) {
        return ringMatrix(spec.inShape(), spec.inShape(), spec.transformRank(), params.transformCores());
    }

    /** Δ, d_out × d_in (unscaled). */
    public static double[] residual(TLoRASpec spec, TLoRAParameters params) {
        float[][] arrays = params.residualArrays();
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        int r = spec.rank();
        return switch (spec.residual()) {
            case LORA -> {
                double[] m = new double[dOut * dIn];
                for (int o = 0; o < dOut; o++) {
                    for (int i = 0; i < dIn; i++) {
                        double s = 0;
                        for (int k = 0; k < r; k++) {
                            s += (double) arrays[1][o * r + k] * arrays[0][k * dIn + i];
                        }
                        m[o * dIn + i] = s;
                    }
                }
                yield m;
            }
            case TR -> trMatrix(spec.outShape(), spec.inShape(), r, arrays);
            case TTM -> ringMatrix(spec.outShape(), spec.inShape(), r, arrays);
        };
    }

    /** W' = W0·T + s·Δ, d_out × d_in. */
    public static double[] weight(TLoRASpec spec, TLoRAParameters params, double[] w0) {
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        double[] t = transform(spec, params);
        double[] delta = residual(spec, params);
        double s = spec.alpha() / Math.sqrt(spec.rank()); // in float64, as the authors' code computes it
        double[] w = new double[dOut * dIn];
        for (int o = 0; o < dOut; o++) {
            for (int j = 0; j < dIn; j++) {
                double sum = 0;
                for (int i = 0; i < dIn; i++) {
                    sum += w0[o * dIn + i] * t[i * dIn + j];
                }
                w[o * dIn + j] = sum + s * delta[o * dIn + j];
            }
        }
        return w;
    }

    /** y = x·W'ᵀ, tokens × d_out. */
    public static double[] forward(TLoRASpec spec, TLoRAParameters params, double[] w0, double[] x, int tokens) {
        double[] w = weight(spec, params, w0);
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        double[] y = new double[tokens * dOut];
        for (int t = 0; t < tokens; t++) {
            for (int o = 0; o < dOut; o++) {
                double sum = 0;
                for (int i = 0; i < dIn; i++) {
                    sum += x[t * dIn + i] * w[o * dIn + i];
                }
                y[t * dOut + o] = sum;
            }
        }
        return y;
    }
}
