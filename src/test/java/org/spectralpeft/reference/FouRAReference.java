package org.spectralpeft.reference;

/**
 * Float64 reference for FouRA with a fixed gate mask (NONE is the all-ones mask), evaluating DESIGN.md's
 * definitions directly, token by token, with explicit transform matrices (no FFT, no folding, no code shared
 * with the backends). DFT: F[k,j] = e^{−2πi·jk/d}/√d (unitary), y = α·Re(F_out⁻¹·B·(m ⊙ A·F_in·x)). DCT:
 * C[k,j] = s_k·cos(π(2j+1)k/(2d)), s_0 = √(1/d), s_k = √(2/d), y = α·C_outᵀ·B·(m ⊙ A·C_in·x). A is r × d_in
 * and B is d_out × r, row-major; x and y are tokens × d_in and tokens × d_out.
 */
public final class FouRAReference {
    private final int dOut;
    private final int dIn;
    private final int rank;
    private final boolean dft;
    private final double alpha;
    /** Forward transform matrices, row-major d × d, real and imaginary parts (imaginary zero for DCT). */
    private final double[] inRe;
    private final double[] inIm;
    /** The inverse on the output side: F_out⁻¹ = F_outᴴ (DFT) or C_outᵀ (DCT), d_out × d_out. */
    private final double[] outInvRe;
    private final double[] outInvIm;

    public FouRAReference(int dOut, int dIn, int rank, boolean dft, double alpha) {
        this.dOut = dOut;
        this.dIn = dIn;
        this.rank = rank;
        this.dft = dft;
        this.alpha = alpha;
        inRe = new double[dIn * dIn];
        inIm = new double[dIn * dIn];
        fill(dIn, inRe, inIm, false);
        outInvRe = new double[dOut * dOut];
        outInvIm = new double[dOut * dOut];
        fill(dOut, outInvRe, outInvIm, true);
    }

    /** The forward transform matrix of size d (row k, column j), or its inverse (row j, column k). */
    private void fill(int d, double[] re, double[] im, boolean inverse) {
        for (int k = 0; k < d; k++) {
            for (int j = 0; j < d; j++) {
                double vRe;
                double vIm;
                if (dft) {
                    long phase = (long) j * k % d; // exact reduction before the angle
                    double angle = -2 * Math.PI * phase / d;
                    vRe = Math.cos(angle) / Math.sqrt(d);
                    vIm = Math.sin(angle) / Math.sqrt(d);
                } else {
                    double s = k == 0 ? Math.sqrt(1.0 / d) : Math.sqrt(2.0 / d);
                    vRe = s * Math.cos(Math.PI * (2 * j + 1) * k / (2.0 * d));
                    vIm = 0;
                }
                if (inverse) { // the conjugate transpose: element (j, k) = conj(forward (k, j))
                    re[j * d + k] = vRe;
                    im[j * d + k] = -vIm;
                } else {
                    re[k * d + j] = vRe;
                    im[k * d + j] = vIm;
                }
            }
        }
    }

    /** z = A·𝒯_in(x) of one token: r complex values, {re, im}. */
    public double[][] z(double[] a, double[] x, int token) {
        double[] tRe = new double[dIn];
        double[] tIm = new double[dIn];
        for (int k = 0; k < dIn; k++) {
            for (int j = 0; j < dIn; j++) {
                double v = x[token * dIn + j];
                tRe[k] += inRe[k * dIn + j] * v;
                tIm[k] += inIm[k * dIn + j] * v;
            }
        }
        double[] zRe = new double[rank];
        double[] zIm = new double[rank];
        for (int i = 0; i < rank; i++) {
            for (int k = 0; k < dIn; k++) {
                zRe[i] += a[i * dIn + k] * tRe[k];
                zIm[i] += a[i * dIn + k] * tIm[k];
            }
        }
        return new double[][] {zRe, zIm};
    }

    /** The adapter's contribution y (tokens × d_out), for the gate mask m (r zeros and ones). */
    public double[] forward(double[] a, double[] b, double[] mask, double[] x, int tokens) {
        return forward(a, b, (z, t) -> mask, x, tokens);
    }

    /**
     * The ADAPTIVE gate (DESIGN.md): per token, m_i = 1[σ(Σ_j G_ij·|z_j| + b_i) ≥ ½], that is logit_i ≥ 0, with
     * {@code gate} holding G (r × r, row-major) then b (r).
     */
    public double[] adaptiveMask(double[] gate, double[][] z) {
        double[] m = new double[rank];
        double[] logit = logits(gate, z);
        for (int i = 0; i < rank; i++) {
            m[i] = logit[i] >= 0 ? 1 : 0;
        }
        return m;
    }

    /** The gate's logits of one token: logit_i = Σ_j G_ij·|z_j| + b_i. */
    public double[] logits(double[] gate, double[][] z) {
        double[] logit = new double[rank];
        for (int i = 0; i < rank; i++) {
            logit[i] = gate[rank * rank + i];
            for (int j = 0; j < rank; j++) {
                logit[i] += gate[i * rank + j] * Math.hypot(z[0][j], z[1][j]);
            }
        }
        return logit;
    }

    /** y with the ADAPTIVE gate. */
    public double[] forwardAdaptive(double[] a, double[] b, double[] gate, double[] x, int tokens) {
        return forward(a, b, (z, t) -> adaptiveMask(gate, z), x, tokens);
    }

    /** The mask of one token, from its z: any real weights, for tests of the gate's gradient. */
    public interface Masks {
        double[] of(double[][] z, int token);
    }

    /** y with per-token mask weights. */
    public double[] forward(double[] a, double[] b, Masks masks, double[] x, int tokens) {
        double[] y = new double[tokens * dOut];
        for (int t = 0; t < tokens; t++) {
            double[][] z = z(a, x, t);
            double[] mask = masks.of(z, t);
            double[] vRe = new double[dOut];
            double[] vIm = new double[dOut];
            for (int o = 0; o < dOut; o++) {
                for (int i = 0; i < rank; i++) {
                    vRe[o] += b[o * rank + i] * mask[i] * z[0][i];
                    vIm[o] += b[o * rank + i] * mask[i] * z[1][i];
                }
            }
            for (int p = 0; p < dOut; p++) {
                double re = 0;
                for (int o = 0; o < dOut; o++) {
                    re += outInvRe[p * dOut + o] * vRe[o] - outInvIm[p * dOut + o] * vIm[o];
                }
                y[t * dOut + p] = alpha * re;
            }
        }
        return y;
    }

    /** ΔW (d_out × d_in) with y = x·ΔWᵀ: column q is the forward of the unit vector e_q. */
    public double[] deltaW(double[] a, double[] b, double[] mask) {
        double[] eye = new double[dIn * dIn];
        for (int q = 0; q < dIn; q++) {
            eye[q * dIn + q] = 1;
        }
        double[] cols = forward(a, b, mask, eye, dIn); // row q = ΔW[:, q]
        double[] w = new double[dOut * dIn];
        for (int q = 0; q < dIn; q++) {
            for (int p = 0; p < dOut; p++) {
                w[p * dIn + q] = cols[q * dOut + p];
            }
        }
        return w;
    }

    /** ∂L/∂A (r × d_in), ∂L/∂B (d_out × r), ∂L/∂x (tokens × d_in), and ∂L/∂gate (G then b; empty unless ADAPTIVE). */
    public record Gradients(double[] a, double[] b, double[] x, double[] gate) {
    }

    /**
     * Gradients of L = Σ_{t,p} g[t,p]·y[t,p] for a fixed mask, derived by hand from the definitions: with
     * h = α·(F_out⁻¹)ᵀ·g (complex), ∂L/∂B[o,i] = Re(h_o·w_i), u_i = Σ_o h_o·B[o,i], and with c_i = u_i·m_i
     * (L = Re Σ_i c_i·z_i + terms without z), ∂L/∂A[i,k] = Re(c_i·𝒯_in(x)_k) and
     * ∂L/∂x_j = Re(Σ_k (Σ_i c_i·A[i,k])·𝒯_in[k,j]). Checked against finite differences in the tests.
     */
    public Gradients backward(double[] a, double[] b, double[] mask, double[] x, double[] g, int tokens) {
        return backward(a, b, null, mask, x, g, tokens);
    }

    /**
     * Gradients with the ADAPTIVE gate and its straight-through rule (DESIGN.md): ∂m_i/∂logit_i is taken as
     * σ'(logit_i). So ∂L/∂logit_i = Re(u_i·z_i)·σ'(logit_i), ∂L/∂G_ij = ∂L/∂logit_i·|z_j|, ∂L/∂b_i =
     * ∂L/∂logit_i, and z feels the gate through |z_j|: c_j gains s_j·conj(z_j)/|z_j| with s_j =
     * Σ_i ∂L/∂logit_i·G_ij (nothing where z_j = 0).
     */
    public Gradients backwardAdaptive(double[] a, double[] b, double[] gate, double[] x, double[] g, int tokens) {
        return backward(a, b, gate, null, x, g, tokens);
    }

    private Gradients backward(double[] a, double[] b, double[] gate, double[] fixedMask, double[] x, double[] g,
                               int tokens) {
        double[] ga = new double[rank * dIn];
        double[] gb = new double[dOut * rank];
        double[] gx = new double[tokens * dIn];
        double[] gg = new double[gate == null ? 0 : rank * rank + rank];
        for (int t = 0; t < tokens; t++) {
            double[] hRe = new double[dOut];
            double[] hIm = new double[dOut];
            for (int o = 0; o < dOut; o++) {
                for (int p = 0; p < dOut; p++) {
                    hRe[o] += alpha * g[t * dOut + p] * outInvRe[p * dOut + o];
                    hIm[o] += alpha * g[t * dOut + p] * outInvIm[p * dOut + o];
                }
            }
            double[][] z = z(a, x, t);
            double[] mask = gate == null ? fixedMask : adaptiveMask(gate, z);
            double[] uRe = new double[rank];
            double[] uIm = new double[rank];
            for (int o = 0; o < dOut; o++) {
                for (int i = 0; i < rank; i++) {
                    double wRe = mask[i] * z[0][i];
                    double wIm = mask[i] * z[1][i];
                    gb[o * rank + i] += hRe[o] * wRe - hIm[o] * wIm;
                    uRe[i] += hRe[o] * b[o * rank + i];
                    uIm[i] += hIm[o] * b[o * rank + i];
                }
            }
            double[] cRe = new double[rank];
            double[] cIm = new double[rank];
            for (int i = 0; i < rank; i++) {
                cRe[i] = uRe[i] * mask[i];
                cIm[i] = uIm[i] * mask[i];
            }
            if (gate != null) {
                double[] logit = logits(gate, z);
                double[] s = new double[rank];
                for (int i = 0; i < rank; i++) {
                    double sigma = 1 / (1 + Math.exp(-logit[i]));
                    double dLogit = (uRe[i] * z[0][i] - uIm[i] * z[1][i]) * sigma * (1 - sigma);
                    gg[rank * rank + i] += dLogit;
                    for (int j = 0; j < rank; j++) {
                        gg[i * rank + j] += dLogit * Math.hypot(z[0][j], z[1][j]);
                        s[j] += dLogit * gate[i * rank + j];
                    }
                }
                for (int j = 0; j < rank; j++) {
                    double abs = Math.hypot(z[0][j], z[1][j]);
                    if (abs > 0) {
                        cRe[j] += s[j] * z[0][j] / abs;
                        cIm[j] -= s[j] * z[1][j] / abs;
                    }
                }
            }
            double[] qRe = new double[dIn];
            double[] qIm = new double[dIn];
            for (int i = 0; i < rank; i++) {
                for (int k = 0; k < dIn; k++) {
                    qRe[k] += cRe[i] * a[i * dIn + k];
                    qIm[k] += cIm[i] * a[i * dIn + k];
                }
            }
            for (int k = 0; k < dIn; k++) {
                double tRe = 0;
                double tIm = 0;
                for (int j = 0; j < dIn; j++) {
                    tRe += inRe[k * dIn + j] * x[t * dIn + j];
                    tIm += inIm[k * dIn + j] * x[t * dIn + j];
                }
                for (int i = 0; i < rank; i++) {
                    ga[i * dIn + k] += cRe[i] * tRe - cIm[i] * tIm;
                }
            }
            for (int j = 0; j < dIn; j++) {
                double sum = 0;
                for (int k = 0; k < dIn; k++) {
                    sum += qRe[k] * inRe[k * dIn + j] - qIm[k] * inIm[k * dIn + j];
                }
                gx[t * dIn + j] = sum;
            }
        }
        return new Gradients(ga, gb, gx, gg);
    }

    /** The transform matrix 𝒯_in (row k, column j), real and imaginary parts: for tests of the folded forms. */
    public double[][] inputTransform() {
        return new double[][] {inRe.clone(), inIm.clone()};
    }

    /** 𝒯_out⁻¹ (row p, column o), real and imaginary parts. */
    public double[][] outputInverse() {
        return new double[][] {outInvRe.clone(), outInvIm.clone()};
    }
}
