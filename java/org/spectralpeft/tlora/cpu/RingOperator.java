package org.spectralpeft.tlora.cpu;

import java.util.Arrays;
import org.spectralpeft.cpu.Gemm;
import org.spectralpeft.cpu.Parallel;

/**
 * A tensor-ring operator M[p̄, q̄] = tr(K¹[p1, q1]⋯K^D[pD, qD]) (multi-indices row-major, the first digit most
 * significant), applied to vectors without forming M: digit by digit, each step replacing one input digit q_k
 * by an output digit p_k and multiplying the ring's R × R state by core k; the trace closes the ring at the
 * last step. Cost per vector about len·R³·Σ_d P_d (len the larger of the two lengths), against ∏P·∏Q for M.
 *
 * <p>The cores are stored (P_d, Q_d, R, R) row-major, or (Q_d, P_d, R, R) when {@code transposed} (M is then
 * the transpose of the operator the cores define: W0·T applies Tᵀ to W0's rows). Immutable; safe to share
 * between threads.
 */
final class RingOperator {
    private final int[] out;
    private final int[] in;
    private final int ring;
    private final float[][] cores;
    private final boolean transposed;
    private final int inLength;
    private final int outLength;

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
     * dst rows = M·(src rows) for count vectors, each step one GEMM over all of them (through {@link Gemm}): the
     * state of every vector is kept as rows (vector, output digits so far, input digits still to come, a) by
     * columns (the next input digit, the ring index), so a step multiplies it by core k laid out as a
     * (Q_k·R) × (P_k·R) matrix, then moves the new output digit into the rows and the next input digit into the
     * columns. In float64 (the state and the products), so that sums of many small terms do not round: the
     * authors' identity start (every core slice I/R) then gives T·x = x exactly.
     *
     * @param src count vectors of ∏Q values from srcOff
     * @param srcOff the first one's first element
     * @param count the number of vectors
     * @param dst receives count vectors of ∏P values from dstOff
     * @param dstOff the first one's first element
     */
    void applyAll(float[] src, int srcOff, int count, float[] dst, int dstOff) {
        if (ring == 1) {
            applyKronecker(src, srcOff, count, dst, dstOff);
            return;
        }
        int d = in.length;
        int rr = ring * ring;
        if (d == 1) { // out[n][p] = Σ_q tr(K[p, q])·v[n][q]
            double[] traces = new double[in[0] * out[0]];
            for (int q = 0; q < in[0]; q++) {
                for (int p = 0; p < out[0]; p++) {
                    double t = 0;
                    for (int a = 0; a < ring; a++) {
                        t += cores[0][at(0, p, q) + a * ring + a];
                    }
                    traces[q * out[0] + p] = t;
                }
            }
            double[] v = new double[count * in[0]];
            for (int i = 0; i < v.length; i++) {
                v[i] = src[srcOff + i];
            }
            double[] o = new double[count * out[0]];
            Gemm.dgemm(false, false, count, out[0], in[0], 1, v, 0, in[0], traces, 0, out[0], 0, o, 0, out[0]);
            for (int i = 0; i < o.length; i++) {
                dst[dstOff + i] = (float) o[i];
            }
            return;
        }
        // step 0: rows (n, q_1.., ) × columns q_0, times K⁰ as q_0 × (p_0, a, b)
        int post = product(in, 1, d);
        double[] v = new double[count * inLength];
        for (int n = 0; n < count; n++) {
            for (int q = 0; q < in[0]; q++) {
                for (int s = 0; s < post; s++) {
                    v[(n * post + s) * in[0] + q] = src[srcOff + n * inLength + q * post + s];
                }
            }
        }
        double[] k0 = new double[in[0] * out[0] * rr];
        for (int q = 0; q < in[0]; q++) {
            for (int p = 0; p < out[0]; p++) {
                for (int e = 0; e < rr; e++) {
                    k0[(q * out[0] + p) * rr + e] = cores[0][at(0, p, q) + e];
                }
            }
        }
        double[] o = new double[count * post * out[0] * rr];
        Gemm.dgemm(false, false, count * post, out[0] * rr, in[0], 1, v, 0, in[0], k0, 0, out[0] * rr, 0, o, 0, out[0] * rr);
        // to rows (n, p_0, q_2.., a) × columns (q_1, b): o is [n][q_1][rest][p_0][a][b]
        int next = in[1];
        int rest = post / next;
        double[] state = new double[o.length];
        for (int n = 0; n < count; n++) {
            for (int q = 0; q < next; q++) {
                for (int s = 0; s < rest; s++) {
                    for (int p = 0; p < out[0]; p++) {
                        for (int a = 0; a < ring; a++) {
                            int from = (((n * next + q) * rest + s) * out[0] + p) * rr + a * ring;
                            int to = ((((n * out[0] + p) * rest + s) * ring + a) * next + q) * ring;
                            System.arraycopy(o, from, state, to, ring);
                        }
                    }
                }
            }
        }
        int pre = count * out[0]; // rows so far: (n, p_0..p_{k−1})
        for (int k = 1; k < d - 1; k++) {
            post = product(in, k + 1, d);
            // rows (n, pre, q_{k+1}.., a) × columns (q_k, c), times K^k as (q_k, c) × (p_k, b)
            double[] kk = new double[in[k] * ring * out[k] * ring];
            for (int q = 0; q < in[k]; q++) {
                for (int c = 0; c < ring; c++) {
                    for (int p = 0; p < out[k]; p++) {
                        for (int b = 0; b < ring; b++) {
                            kk[((q * ring + c) * out[k] + p) * ring + b] = cores[k][at(k, p, q) + c * ring + b];
                        }
                    }
                }
            }
            int rows = pre * post * ring;
            o = new double[rows * out[k] * ring];
            Gemm.dgemm(false, false, rows, out[k] * ring, in[k] * ring, 1, state, 0, in[k] * ring, kk, 0,
                    out[k] * ring, 0, o, 0, out[k] * ring);
            // o is [pre][q_{k+1}][rest][a][p_k][b] → [pre][p_k][rest][a][q_{k+1}][b]
            next = in[k + 1];
            rest = post / next;
            state = new double[o.length];
            for (int i = 0; i < pre; i++) {
                for (int q = 0; q < next; q++) {
                    for (int s = 0; s < rest; s++) {
                        for (int a = 0; a < ring; a++) {
                            for (int p = 0; p < out[k]; p++) {
                                int from = (((((i * next + q) * rest + s) * ring + a) * out[k] + p) * ring);
                                int to = (((((i * out[k] + p) * rest + s) * ring + a) * next + q) * ring);
                                System.arraycopy(o, from, state, to, ring);
                            }
                        }
                    }
                }
            }
            pre *= out[k];
        }
        // the last step and the trace: rows (n, pre) × (a, q, c), times K^{D−1} as (a, q, c) × p
        int last = d - 1;
        double[] kl = new double[ring * in[last] * ring * out[last]];
        for (int a = 0; a < ring; a++) {
            for (int q = 0; q < in[last]; q++) {
                for (int c = 0; c < ring; c++) {
                    for (int p = 0; p < out[last]; p++) {
                        kl[((a * in[last] + q) * ring + c) * out[last] + p] = cores[last][at(last, p, q) + c * ring + a];
                    }
                }
            }
        }
        int inner = ring * in[last] * ring;
        double[] result = new double[pre * out[last]];
        Gemm.dgemm(false, false, pre, out[last], inner, 1, state, 0, inner, kl, 0, out[last], 0, result, 0, out[last]);
        for (int i = 0; i < result.length; i++) {
            dst[dstOff + i] = (float) result[i];
        }
    }

    /**
     * {@link #applyAll} for R = 1, a Kronecker product, in float32 (every sum has one term per input digit, so
     * the identity start stays exact): mode by mode from the last, each one GEMM over all vectors on the
     * vectors' last digit, then a per-vector transpose that rotates the new output digit to the front and the
     * next digit to process to the back; after D steps the digits are in order again.
     */
    private void applyKronecker(float[] src, int srcOff, int count, float[] dst, int dstOff) {
        applyKronecker(src, srcOff, count, dst, dstOff, -1);
    }

    /**
     * The rotated mode products of {@link #applyKronecker}, mode {@code skip} left as it is (its input digit
     * stays, rotated like the others; −1 skips none).
     */
    private void applyKronecker(float[] src, int srcOff, int count, float[] dst, int dstOff, int skip) {
        int d = in.length;
        float[] x = srcOff == 0 && src.length == count * inLength ? src : Arrays.copyOfRange(src, srcOff, srcOff + count * inLength);
        int length = inLength; // of one vector, in the current digits
        int resultLength = outLength / (skip < 0 ? 1 : out[skip]) * (skip < 0 ? 1 : in[skip]);
        for (int k = d - 1; k >= 0; k--) {
            int rest = length / in[k];
            float[] y = x;
            int p = in[k];
            if (k != skip) {
                float[] core = new float[in[k] * out[k]]; // (q, p)
                for (int q = 0; q < in[k]; q++) {
                    for (int o = 0; o < out[k]; o++) {
                        core[q * out[k] + o] = cores[k][at(k, o, q)];
                    }
                }
                y = new float[count * rest * out[k]];
                Gemm.gemm(false, false, count * rest, out[k], in[k], 1f, x, 0, in[k], core, 0, out[k], 0f, y, 0, out[k]);
                p = out[k];
            }
            // per vector (rest × P_k) → (P_k × rest)
            float[] rotated = k == 0 && dstOff == 0 && dst.length == count * resultLength ? dst : new float[count * rest * p];
            transposeBlocks(y, count, rest, p, rotated);
            x = rotated;
            length = rest * p;
        }
        if (x != dst) {
            System.arraycopy(x, 0, dst, dstOff, count * resultLength);
        }
    }

    /**
     * For R = 1: the gradient of Σ_n ⟨w_n, M·v_n⟩ with respect to every core, by products: for core k, v carried
     * through every other core (mode k left as input digits), then ∂K^k = Σ over the vectors and the other
     * digits of w's mode-k fibres times those of the carried v, one GEMM after moving mode k last in both.
     * Sums over the vectors and digits run inside the BLAS in float32, in a fixed order.
     *
     * @param v count vectors of ∏Q values
     * @param w count vectors of ∏P values
     * @param count the number of vectors
     * @return one (P_k × Q_k) gradient per core
     */
    float[][] kroneckerGradient(float[] v, float[] w, int count) {
        int d = in.length;
        float[][] grads = new float[d][];
        for (int k = 0; k < d; k++) {
            int carriedLength = outLength / out[k] * in[k];
            float[] carried = new float[count * carriedLength];
            applyKronecker(v, 0, count, carried, 0, k);
            int pre = product(out, 0, k);
            int post = product(out, k + 1, d);
            float[] z = modeLast(carried, count * pre, in[k], post);
            float[] g = modeLast(w, count * pre, out[k], post);
            int rows = count * pre * post;
            grads[k] = new float[out[k] * in[k]];
            Gemm.gemm(true, false, out[k], in[k], rows, 1f, g, 0, out[k], z, 0, in[k], 0f, grads[k], 0, in[k]);
        }
        return grads;
    }

    /** blocks × (m × post) → blocks × (post × m): the middle digit moved last. */
    private static float[] modeLast(float[] a, int blocks, int m, int post) {
        return post == 1 ? a : transposeBlocks(a, blocks, m, post, new float[blocks * m * post]);
    }

    /** out = each of the blocks (rows × cols, row-major) of a transposed, in fixed chunks of blocks; returns out. */
    private static float[] transposeBlocks(float[] a, int blocks, int rows, int cols, float[] out) {
        int size = rows * cols;
        Parallel.inChunks(blocks, 64, (lo, hi) -> {
            for (int b = lo; b < hi; b++) {
                int base = b * size;
                for (int r = 0; r < rows; r++) {
                    for (int c = 0; c < cols; c++) {
                        out[base + c * rows + r] = a[base + r * cols + c];
                    }
                }
            }
        });
        return out;
    }

    /**
     * Σ_n ∂⟨w_n, M·v_n⟩/∂K^k for every core k, by GEMMs. Σ_n ⟨w_n, M·v_n⟩ = Σ C[p̄, q̄]·M[p̄, q̄] with
     * C = Σ_n w_n·v_nᵀ (∏P × ∏Q, one GEMM over the vectors), and by the trace's cyclic symmetry
     * ∂M[p̄, q̄]/∂K^k[p_k, q_k][b, a] = E[a, b], E = K^{k+1}⋯K^{D−1}·K⁰⋯K^{k−1} at the other digits. So
     * core k's gradient is one GEMM: C, its digits permuted to (p_k, q_k) × (the others), times E as
     * (the others) × (a, b).
     * Per vector the cost is one rank-1 update of C (2·∏P·∏Q flops, at GEMM speed) instead of carrying its ring
     * state through every other core (∝ R³ per digit); the rest does not depend on the count. Memory: C and one
     * permuted copy of it. The sums run inside the BLAS in float32 in a fixed order, so results repeat bit for
     * bit.
     *
     * @param v count vectors of ∏Q values
     * @param w count vectors of ∏P values
     * @param count the number of vectors
     * @return one gradient per core, in the cores' layout
     */
    float[][] ringGradient(float[] v, float[] w, int count) {
        int d = in.length;
        float[] gram = new float[outLength * inLength];
        if (Gemm.threadsItself()) {
            Gemm.gemm(true, false, outLength, inLength, count, 1f, w, 0, outLength, v, 0, inLength, 0f, gram, 0,
                    inLength);
        } else { // fixed bands of C's rows, each computed the same way whatever the threads
            Parallel.inChunks(outLength, 64, (lo, hi) -> Gemm.gemm(true, false, hi - lo, inLength, count, 1f, w, lo,
                    outLength, v, 0, inLength, 0f, gram, lo * inLength, inLength));
        }
        float[][] grads = new float[d][];
        if (d == 1) { // E is the identity: ∂K[p, q][a, a] = C[p, q]
            grads[0] = new float[cores[0].length];
            for (int p = 0; p < out[0]; p++) {
                for (int q = 0; q < in[0]; q++) {
                    for (int a = 0; a < ring; a++) {
                        grads[0][at(0, p, q) + a * ring + a] = gram[p * in[0] + q];
                    }
                }
            }
            return grads;
        }
        int[] gramDims = new int[2 * d]; // C's digits: p_0..p_{D−1}, q_0..q_{D−1}
        for (int j = 0; j < d; j++) {
            gramDims[j] = out[j];
            gramDims[d + j] = in[j];
        }
        for (int k = 0; k < d; k++) {
            grads[k] = coreGradient(k, gram, gramDims);
        }
        return grads;
    }

    /** {@link #ringGradient} of core k (D ≥ 2) from C, its digits' sizes gramDims. */
    private float[] coreGradient(int k, float[] gram, int[] gramDims) {
        int d = in.length;
        int pairs = out[k] * in[k];
        int others = outLength * inLength / pairs;
        int rr = ring * ring;
        // C with (p_k, q_k) on one side and the other digits, in C's order, on the other: first when k < D − 1,
        // so that q_{k+1}..q_{D−1} stay one contiguous run, else last (q_k is C's last digit)
        int[] order = new int[2 * d];
        int n = 0;
        if (k < d - 1) {
            order[n++] = k;
            order[n++] = d + k;
        }
        for (int j = 0; j < 2 * d; j++) {
            if (j != k && j != d + k) {
                order[n++] = j;
            }
        }
        if (k == d - 1) {
            order[n++] = k;
            order[n] = d + k;
        }
        float[] c = permute(gram, gramDims, order);
        float[] e = otherProducts(k);
        float[] sum = new float[pairs * rr]; // [(p, q)][a][b]
        if (k < d - 1) {
            Gemm.gemm(false, false, pairs, rr, others, 1f, c, 0, others, e, 0, rr, 0f, sum, 0, rr);
        } else {
            Gemm.gemm(true, false, pairs, rr, others, 1f, c, 0, pairs, e, 0, rr, 0f, sum, 0, rr);
        }
        float[] grad = new float[cores[k].length];
        for (int p = 0; p < out[k]; p++) {
            for (int q = 0; q < in[k]; q++) {
                int from = (p * in[k] + q) * rr;
                int to = at(k, p, q);
                for (int a = 0; a < ring; a++) {
                    for (int b = 0; b < ring; b++) {
                        grad[to + b * ring + a] = sum[from + a * ring + b];
                    }
                }
            }
        }
        return grad;
    }

    /**
     * E = K^{k+1}⋯K^{D−1}·K⁰⋯K^{k−1} for every value of the other digits, as rows (p of the other modes, q of
     * the other modes, each in mode order) × (a, b). Built in the ring order with a kept first, so that each
     * core is one GEMM over the ring's inner index that appends its (p, q) digits; then permuted to mode order.
     */
    private float[] otherProducts(int k) {
        int d = in.length;
        int first = (k + 1) % d;
        // [a][(p, q)][c] from K^{first}[p, q][a][c]
        int size = out[first] * in[first];
        float[] e = new float[ring * size * ring];
        for (int p = 0; p < out[first]; p++) {
            for (int q = 0; q < in[first]; q++) {
                for (int a = 0; a < ring; a++) {
                    System.arraycopy(cores[first], at(first, p, q) + a * ring, e,
                            (a * size + p * in[first] + q) * ring, ring);
                }
            }
        }
        for (int j = 2; j < d; j++) {
            int m = (k + j) % d;
            int slices = out[m] * in[m];
            float[] core = new float[ring * slices * ring]; // [c][(p, q)][b]
            for (int p = 0; p < out[m]; p++) {
                for (int q = 0; q < in[m]; q++) {
                    for (int c = 0; c < ring; c++) {
                        System.arraycopy(cores[m], at(m, p, q) + c * ring, core,
                                (c * slices + p * in[m] + q) * ring, ring);
                    }
                }
            }
            float[] next = new float[ring * size * slices * ring];
            Gemm.gemm(false, false, ring * size, slices * ring, ring, 1f, e, 0, ring, core, 0, slices * ring, 0f,
                    next, 0, slices * ring);
            e = next;
            size *= slices;
        }
        // e's digits: a, then (p_m, q_m) for m = k+1.. in the ring order, then b; to mode order, a and b last
        int[] dims = new int[2 * d];
        dims[0] = ring;
        for (int j = 1; j < d; j++) {
            int m = (k + j) % d;
            dims[2 * j - 1] = out[m];
            dims[2 * j] = in[m];
        }
        dims[2 * d - 1] = ring;
        int[] order = new int[2 * d];
        int n = 0;
        for (int side = 0; side < 2; side++) { // the p digits, then the q digits
            for (int m = 0; m < d; m++) {
                if (m != k) {
                    int j = (m - k - 1 + d) % d + 1; // m's place in the ring order from k + 1
                    order[n++] = 2 * j - 1 + side;
                }
            }
        }
        order[n++] = 0;
        order[n] = 2 * d - 1;
        return permute(e, dims, order);
    }

    /**
     * a's axes (sizes dims, row-major) reordered: the result's axis i is a's axis order[i]. Rows of the result
     * (all axes but the last) in fixed chunks on the pool.
     */
    private static float[] permute(float[] a, int[] dims, int[] order) {
        int n = dims.length;
        int[] stride = new int[n];
        stride[n - 1] = 1;
        for (int i = n - 2; i >= 0; i--) {
            stride[i] = stride[i + 1] * dims[i + 1];
        }
        // the result's last axes that are a's last ones in the same order are copied as one run
        int tail = 0;
        while (tail < n && order[n - 1 - tail] == n - 1 - tail) {
            tail++;
        }
        int axes = tail == 0 ? n - 1 : n - tail; // the result's axes walked row by row
        int run = tail == 0 ? dims[order[n - 1]] : product(dims, n - tail, n);
        int runStride = tail == 0 ? stride[order[n - 1]] : 1;
        float[] result = new float[a.length];
        int rows = a.length / run;
        Parallel.inChunks(rows, Math.max(1, (1 << 14) / run), (lo, hi) -> {
            int[] digit = new int[axes];
            int offset = 0;
            int r = lo;
            for (int i = axes - 1; i >= 0; i--) {
                int size = dims[order[i]];
                digit[i] = r % size;
                r /= size;
                offset += digit[i] * stride[order[i]];
            }
            for (int row = lo; row < hi; row++) {
                int to = row * run;
                if (runStride == 1) {
                    System.arraycopy(a, offset, result, to, run);
                } else {
                    for (int t = 0; t < run; t++) {
                        result[to + t] = a[offset + t * runStride];
                    }
                }
                for (int i = axes - 1; i >= 0; i--) { // the next row
                    offset += stride[order[i]];
                    if (++digit[i] < dims[order[i]]) {
                        break;
                    }
                    offset -= dims[order[i]] * stride[order[i]];
                    digit[i] = 0;
                }
            }
        });
        return result;
    }

    /** @return ∏Q, the length of the vectors it applies to */
    int inLength() {
        return inLength;
    }

    /** @return R², the floats of one ring state per position */
    int ringSize() {
        return ring * ring;
    }

    /** @return ∏P, the length of its results */
    int outLength() {
        return outLength;
    }
}
