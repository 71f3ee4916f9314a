package org.spectralpeft.reference;

/**
 * Float64 reference for FourierFT, evaluating the closed-form sums directly (no FFT, no code shared
 * with the backends): ΔW[p,q] = s · Σ_l c_l · cos(2π(p·j_l/d_out + q·k_l/d_in)), s = alpha/(d_out·d_in).
 * Angles are reduced exactly with integer arithmetic ((p·j) mod d_out) before the table lookup.
 */
public final class FourierFTReference {
    private final int dOut;
    private final int dIn;
    private final int[] rows;
    private final int[] cols;
    private final double scale;
    private final double[] cosOut;
    private final double[] sinOut;
    private final double[] cosIn;
    private final double[] sinIn;

    public FourierFTReference(int dOut, int dIn, int[] rows, int[] cols, double alpha) {
        this.dOut = dOut;
        this.dIn = dIn;
        this.rows = rows.clone();
        this.cols = cols.clone();
        this.scale = alpha / ((double) dOut * dIn);
        this.cosOut = new double[dOut];
        this.sinOut = new double[dOut];
        this.cosIn = new double[dIn];
        this.sinIn = new double[dIn];
        for (int m = 0; m < dOut; m++) {
            cosOut[m] = Math.cos(2 * Math.PI * m / dOut);
            sinOut[m] = Math.sin(2 * Math.PI * m / dOut);
        }
        for (int m = 0; m < dIn; m++) {
            cosIn[m] = Math.cos(2 * Math.PI * m / dIn);
            sinIn[m] = Math.sin(2 * Math.PI * m / dIn);
        }
    }

    /** cos(2π(p·j_l/d_out + q·k_l/d_in)). */
    public double basis(int l, int p, int q) {
        int a = (int) ((long) p * rows[l] % dOut);
        int b = (int) ((long) q * cols[l] % dIn);
        return cosOut[a] * cosIn[b] - sinOut[a] * sinIn[b];
    }

    public double scale() {
        return scale;
    }

    /** ΔW (d_out × d_in, row-major) for coefficients c. */
    public double[] deltaW(double[] c) {
        double[] w = new double[dOut * dIn];
        for (int l = 0; l < rows.length; l++) {
            double cl = scale * c[l];
            for (int p = 0; p < dOut; p++) {
                for (int q = 0; q < dIn; q++) {
                    w[p * dIn + q] += cl * basis(l, p, q);
                }
            }
        }
        return w;
    }

    /** y[t,p] = Σ_q x[t,q]·ΔW[p,q]. */
    public double[] forward(double[] c, double[] x, int tokens) {
        return matmulTransposed(x, deltaW(c), tokens, dIn, dOut);
    }

    /** ∂L/∂c_l = s · Σ_{p,q} G[p,q] · cos(2π(p·j_l/d_out + q·k_l/d_in)). */
    public double[] gradCoefficients(double[] g) {
        double[] out = new double[rows.length];
        for (int l = 0; l < rows.length; l++) {
            double sum = 0;
            for (int p = 0; p < dOut; p++) {
                for (int q = 0; q < dIn; q++) {
                    sum += g[p * dIn + q] * basis(l, p, q);
                }
            }
            out[l] = scale * sum;
        }
        return out;
    }

    /** ∂L/∂c of y = x·ΔWᵀ given ∂L/∂y: the ΔW-gradient Σ_t gy[t] ⊗ x[t] pushed through {@link #gradCoefficients}. */
    public double[] backwardCoefficients(double[] x, double[] gy, int tokens) {
        double[] g = new double[dOut * dIn];
        for (int t = 0; t < tokens; t++) {
            for (int p = 0; p < dOut; p++) {
                double gp = gy[t * dOut + p];
                for (int q = 0; q < dIn; q++) {
                    g[p * dIn + q] += gp * x[t * dIn + q];
                }
            }
        }
        return gradCoefficients(g);
    }

    /** ∂L/∂x[t,q] = Σ_p gy[t,p]·ΔW[p,q]. */
    public double[] backwardInput(double[] c, double[] gy, int tokens) {
        double[] w = deltaW(c);
        double[] gx = new double[tokens * dIn];
        for (int t = 0; t < tokens; t++) {
            for (int p = 0; p < dOut; p++) {
                double gp = gy[t * dOut + p];
                for (int q = 0; q < dIn; q++) {
                    gx[t * dIn + q] += gp * w[p * dIn + q];
                }
            }
        }
        return gx;
    }

    private static double[] matmulTransposed(double[] x, double[] w, int tokens, int inner, int outer) {
        double[] y = new double[tokens * outer];
        for (int t = 0; t < tokens; t++) {
            for (int p = 0; p < outer; p++) {
                double sum = 0;
                for (int q = 0; q < inner; q++) {
                    sum += x[t * inner + q] * w[p * inner + q];
                }
                y[t * outer + p] = sum;
            }
        }
        return y;
    }
}
