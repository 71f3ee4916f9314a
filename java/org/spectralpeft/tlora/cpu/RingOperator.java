package org.spectralpeft.tlora.cpu;

/**
 * A tensor-ring operator M[p̄, q̄] = tr(K¹[p1, q1]⋯K^D[pD, qD]) (multi-indices row-major, the first digit most
 * significant), applied to vectors without forming M: digit by digit, each step replacing one input digit q_k
 * by an output digit p_k and multiplying the ring's R × R state by core k; the trace closes the ring at the
 * last step. Cost per vector about len·R³·Σ_d P_d (len the larger of the two lengths), against ∏P·∏Q for M.
 *
 * <p>The cores are stored (P_d, Q_d, R, R) row-major, or (Q_d, P_d, R, R) when {@code transposed} (M is then
 * the transpose of the operator the cores define: W0·T applies Tᵀ to W0's rows). Holds scratch: one instance
 * per thread.
 */
final class RingOperator {
    private final int[] out;
    private final int[] in;
    private final int ring;
    private final float[][] cores;
    private final boolean transposed;
    private final int inLength;
    private final int outLength;
    private float[] state;
    private float[] next;

    /**
     * @param out P_1..P_D, the output digits
     * @param in Q_1..Q_D, the input digits
     * @param ring R
     * @param cores the D cores
     * @param transposed whether the cores are stored (Q_d, P_d, R, R)
     */
    RingOperator(int[] out, int[] in, int ring, float[][] cores, boolean transposed) {
        this.out = out;
        this.in = in;
        this.ring = ring;
        this.cores = cores;
        this.transposed = transposed;
        this.inLength = product(in, 0, in.length);
        this.outLength = product(out, 0, out.length);
        int widest = 1;
        for (int k = 1; k < in.length; k++) { // the state after step k: P_1..P_k, Q_{k+1}..Q_D, R, R
            widest = Math.max(widest, product(out, 0, k) * product(in, k, in.length));
        }
        this.state = new float[widest * ring * ring];
        this.next = new float[widest * ring * ring];
    }

    private static int product(int[] f, int from, int to) {
        int p = 1;
        for (int i = from; i < to; i++) {
            p *= f[i];
        }
        return p;
    }

    /** The offset of the R × R matrix K^d[p, q]. */
    private int at(int d, int p, int q) {
        return (transposed ? q * out[d] + p : p * in[d] + q) * ring * ring;
    }

    /**
     * dst[dstOff + i] = (M·v)[i] for the vector v at src[srcOff..].
     *
     * @param src holds v (∏Q values)
     * @param srcOff v's first element
     * @param dst receives M·v (∏P values)
     * @param dstOff its first element
     */
    void apply(float[] src, int srcOff, float[] dst, int dstOff) {
        int d = in.length;
        int rr = ring * ring;
        if (d == 1) {
            float[] k1 = cores[0];
            for (int p = 0; p < out[0]; p++) {
                double sum = 0;
                for (int q = 0; q < in[0]; q++) {
                    int c = at(0, p, q);
                    double trace = 0;
                    for (int a = 0; a < ring; a++) {
                        trace += k1[c + a * ring + a];
                    }
                    sum += trace * src[srcOff + q];
                }
                dst[dstOff + p] = (float) sum;
            }
            return;
        }
        // step 1: S[p1, q2..qD][a][b] = Σ_q1 K¹[p1, q1][a][b]·v[q1, q2..qD]
        int rest = product(in, 1, d);
        float[] k1 = cores[0];
        for (int p = 0; p < out[0]; p++) {
            for (int s = 0; s < rest; s++) {
                int o = (p * rest + s) * rr;
                for (int e = 0; e < rr; e++) {
                    double sum = 0;
                    for (int q = 0; q < in[0]; q++) {
                        sum += k1[at(0, p, q) + e] * src[srcOff + q * rest + s];
                    }
                    state[o + e] = (float) sum;
                }
            }
        }
        // steps 2..D−1: S'[pre, p_k, post][a][b] = Σ_{q_k, c} S[pre, q_k, post][a][c]·K^k[p_k, q_k][c][b]
        for (int k = 1; k < d - 1; k++) {
            int pre = product(out, 0, k);
            int post = product(in, k + 1, d);
            float[] kk = cores[k];
            for (int i = 0; i < pre; i++) {
                for (int p = 0; p < out[k]; p++) {
                    for (int s = 0; s < post; s++) {
                        int o = ((i * out[k] + p) * post + s) * rr;
                        for (int a = 0; a < ring; a++) {
                            for (int b = 0; b < ring; b++) {
                                double sum = 0;
                                for (int q = 0; q < in[k]; q++) {
                                    int from = ((i * in[k] + q) * post + s) * rr + a * ring;
                                    int core = at(k, p, q) + b;
                                    for (int c = 0; c < ring; c++) {
                                        sum += state[from + c] * kk[core + c * ring];
                                    }
                                }
                                next[o + a * ring + b] = (float) sum;
                            }
                        }
                    }
                }
            }
            float[] t = state;
            state = next;
            next = t;
        }
        // step D, with the trace: out[pre, p_D] = Σ_{a, q_D, c} S[pre, q_D][a][c]·K^D[p_D, q_D][c][a]
        int last = d - 1;
        int pre = product(out, 0, last);
        float[] kd = cores[last];
        for (int i = 0; i < pre; i++) {
            for (int p = 0; p < out[last]; p++) {
                double sum = 0;
                for (int q = 0; q < in[last]; q++) {
                    int from = (i * in[last] + q) * rr;
                    int core = at(last, p, q);
                    for (int a = 0; a < ring; a++) {
                        for (int c = 0; c < ring; c++) {
                            sum += state[from + a * ring + c] * kd[core + c * ring + a];
                        }
                    }
                }
                dst[dstOff + i * out[last] + p] = (float) sum;
            }
        }
    }

    /**
     * Adds to grads[d] (one array per core, the cores' layout, float64) the gradient of ⟨w, M·v⟩ with respect to
     * every core: for core d, Σ over the other digits of (E_d·L_d)ᵀ, where L_d carries v through cores 0..d−1
     * (the forward's states) and E_d carries w back through cores D−1..d+1. Not for transposed cores.
     *
     * @param v the vector M was applied to (∏Q values at src[srcOff..])
     * @param srcOff its first element
     * @param w the gradient of the result (∏P values at up[upOff..])
     * @param upOff its first element
     * @param grads accumulated into
     */
    void addGradient(float[] v, int srcOff, float[] w, int upOff, double[][] grads) {
        int d = in.length;
        int rr = ring * ring;
        // left states L_0..L_{D−1}: L_k has digits p_0..p_{k−1} (out) then q_k..q_{D−1} (in), an R × R matrix each
        float[][] left = new float[d][];
        left[0] = new float[inLength * rr];
        for (int i = 0; i < inLength; i++) {
            for (int a = 0; a < ring; a++) {
                left[0][i * rr + a * ring + a] = v[srcOff + i];
            }
        }
        for (int k = 1; k < d; k++) {
            left[k] = new float[product(out, 0, k) * product(in, k, d) * rr];
            step(k - 1, left[k - 1], left[k]);
        }
        // E_{D−1}[p̄] = w[p̄]·I, then E_{k−1}[.., q_k, ..] = Σ_{p_k} K^k[p_k, q_k]·E_k[.., p_k, ..]
        float[] e = new float[outLength * rr];
        for (int i = 0; i < outLength; i++) {
            for (int a = 0; a < ring; a++) {
                e[i * rr + a * ring + a] = w[upOff + i];
            }
        }
        for (int k = d - 1; k >= 0; k--) {
            int pre = product(out, 0, k);
            int post = product(in, k + 1, d);
            double[] g = grads[k];
            float[] l = left[k];
            for (int i = 0; i < pre; i++) {
                for (int p = 0; p < out[k]; p++) {
                    for (int q = 0; q < in[k]; q++) {
                        int core = (p * in[k] + q) * rr;
                        for (int s = 0; s < post; s++) {
                            int eAt = ((i * out[k] + p) * post + s) * rr;
                            int lAt = ((i * in[k] + q) * post + s) * rr;
                            for (int a = 0; a < ring; a++) {
                                for (int b = 0; b < ring; b++) {
                                    double sum = 0; // ((E·L)ᵀ)[a][b] = Σ_m E[b][m]·L[m][a]
                                    for (int m = 0; m < ring; m++) {
                                        sum += e[eAt + b * ring + m] * l[lAt + m * ring + a];
                                    }
                                    g[core + a * ring + b] += sum;
                                }
                            }
                        }
                    }
                }
            }
            if (k > 0) {
                float[] previous = new float[pre * product(in, k, d) * rr];
                float[] kk = cores[k];
                for (int i = 0; i < pre; i++) {
                    for (int q = 0; q < in[k]; q++) {
                        for (int s = 0; s < post; s++) {
                            int o = ((i * in[k] + q) * post + s) * rr;
                            for (int a = 0; a < ring; a++) {
                                for (int b = 0; b < ring; b++) {
                                    double sum = 0;
                                    for (int p = 0; p < out[k]; p++) {
                                        int eAt = ((i * out[k] + p) * post + s) * rr + b;
                                        int core = (p * in[k] + q) * rr + a * ring;
                                        for (int c = 0; c < ring; c++) {
                                            sum += kk[core + c] * e[eAt + c * ring];
                                        }
                                    }
                                    previous[o + a * ring + b] = (float) sum;
                                }
                            }
                        }
                    }
                }
                e = previous;
            }
        }
    }

    /** One step of the forward: dst (digits p_0..p_k, q_{k+1}..) = src (digits p_0..p_{k−1}, q_k..) times core k. */
    private void step(int k, float[] src, float[] dst) {
        int d = in.length;
        int rr = ring * ring;
        int pre = product(out, 0, k);
        int post = product(in, k + 1, d);
        float[] kk = cores[k];
        for (int i = 0; i < pre; i++) {
            for (int p = 0; p < out[k]; p++) {
                for (int s = 0; s < post; s++) {
                    int o = ((i * out[k] + p) * post + s) * rr;
                    for (int a = 0; a < ring; a++) {
                        for (int b = 0; b < ring; b++) {
                            double sum = 0;
                            for (int q = 0; q < in[k]; q++) {
                                int from = ((i * in[k] + q) * post + s) * rr + a * ring;
                                int core = at(k, p, q) + b;
                                for (int c = 0; c < ring; c++) {
                                    sum += src[from + c] * kk[core + c * ring];
                                }
                            }
                            dst[o + a * ring + b] = (float) sum;
                        }
                    }
                }
            }
        }
    }

    /** @return ∏Q, the length of the vectors it applies to */
    int inLength() {
        return inLength;
    }

    /** @return ∏P, the length of its results */
    int outLength() {
        return outLength;
    }
}
