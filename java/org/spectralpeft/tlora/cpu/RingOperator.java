package org.spectralpeft.tlora.cpu;

import java.util.Arrays;
import org.spectralpeft.cpu.Gemm;
import org.spectralpeft.cpu.Parallel;

/**
 * A tensor-ring operator M[p̄, q̄] = tr(K¹[p1, q1]⋯K^D[pD, qD]) (multi-indices row-major, the first digit most
 * significant), applied to vectors without forming M: digit by digit, each step replacing one input digit q_k
 * by an output digit p_k and multiplying the ring's R × R state by core k; the trace closes the ring at the
 * last step. Cost per vector about len·R³·Σ_d P_d (len the larger of the two lengths), against ∏P·∏Q for M;
 * where that is more, {@link #applyByPanels} builds M one row panel at a time instead.
 *
 * <p>The cores are stored (P_d, Q_d, R, R) row-major, or (Q_d, P_d, R, R) when {@code transposed} (M is then
 * the transpose of the operator the cores define: W0·T applies Tᵀ to W0's rows). Immutable; safe to share
 * between threads.
 */
final class RingOperator {
    /** Vectors per batch of the ring application (R > 1). */
    private static final int BATCH = 16;
    /** Batches per task on the pool; a task's batches share one workspace. */
    private static final int BATCHES_PER_TASK = 4;
    /**
     * The doubles of ring state that the first core writes at once, for a batch: about 256 KB, which the next
     * cores read again while it is still in the core's own cache.
     */
    private static final long GROUP_DOUBLES = 1L << 15;
    /**
     * The most multiply-adds of one GEMM call in the ring application; larger products go in pieces. OpenBLAS
     * runs a product this small on the calling thread, so the pool's threads, each on its own batch, do not also
     * start OpenBLAS's threads (calls that did, from both threads at once, took seconds instead of milliseconds).
     * A piece's elements are computed as in the whole product.
     */
    private static final long PIECE = 1L << 18;
    /** Vectors per pool task of the Kronecker product (R = 1) and its gradient; results do not depend on threads. */
    private static final int KRONECKER_TASK = 64;
    /** Vectors per task of a panel's GEMM with the Java BLAS, which does not thread itself. */
    private static final int ROWS_PER_GEMM = 32;

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
     * dst rows = M·(src rows) for count vectors. R = 1 goes through {@link #applyKronecker}; otherwise the vectors
     * go in fixed batches of {@link #BATCH}, each through {@link RingPlan#apply} on one thread of the pool, so
     * every vector's result is the same whatever the threads and however the batches fall on them.
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
        if (in.length == 1) {
            applyOneCore(src, srcOff, count, dst, dstOff);
            return;
        }
        RingPlan plan = new RingPlan();
        int batch = Math.min(BATCH, count);
        Parallel.inChunks(Parallel.chunks(count, BATCH), BATCHES_PER_TASK, (lo, hi) -> {
            double[][] work = plan.workspace(batch);
            for (int b = lo; b < hi; b++) {
                int from = b * BATCH;
                plan.apply(src, srcOff + from * inLength, Math.min(BATCH, count - from), dst,
                        dstOff + from * outLength, work);
            }
        });
    }

    /**
     * {@link #applyAll} with M built one row panel at a time, in float32: the panel of first output digit p_0
     * holds M[(p_0, r), (q_0, r')] = tr(K⁰[p_0, q_0]·E[r, r']), E = K¹⋯K^{D−1} at the other digits
     * ({@link #otherProducts}(0), shared by the panels), each row r one GEMM of core 0's slices (transposed: the
     * trace pairs K⁰[i, j] with E[j, i]) with E's rows of r, written as the panel's row [(q_0, r')]; then
     * dst[:, rows of p_0] = src·panelᵀ, one GEMM. Every panel entry is a sum of R² products, so the identity start
     * (powers of 2) stays exact. D ≥ 2; one panel (∏P/P_0 × ∏Q floats) and E (∏P·∏Q/(P_0·Q_0)·R²) at a time.
     *
     * @param src count vectors of ∏Q values from srcOff
     * @param srcOff the first one's first element
     * @param count the number of vectors
     * @param dst receives count vectors of ∏P values from dstOff
     * @param dstOff the first one's first element
     */
    void applyByPanels(float[] src, int srcOff, int count, float[] dst, int dstOff) {
        int rr = ring * ring;
        int panelRows = outLength / out[0];
        int restIn = inLength / in[0];
        float[] e = otherProducts(0); // [(r, r')][(a, b)] = E[a, b]
        float[] slices = new float[in[0] * rr];
        float[] panel = new float[panelRows * inLength];
        for (int p0 = 0; p0 < out[0]; p0++) {
            for (int q0 = 0; q0 < in[0]; q0++) {
                int from = at(0, p0, q0);
                for (int i = 0; i < ring; i++) {
                    for (int j = 0; j < ring; j++) {
                        slices[q0 * rr + j * ring + i] = cores[0][from + i * ring + j];
                    }
                }
            }
            Parallel.inChunks(panelRows, 16, (lo, hi) -> {
                for (int r = lo; r < hi; r++) {
                    Gemm.gemm(false, true, in[0], restIn, rr, 1f, slices, 0, rr, e, r * restIn * rr, rr, 0f, panel,
                            r * inLength, restIn);
                }
            });
            int column = dstOff + p0 * panelRows;
            if (Gemm.threadsItself()) {
                Gemm.gemm(false, true, count, panelRows, inLength, 1f, src, srcOff, inLength, panel, 0, inLength, 0f,
                        dst, column, outLength);
            } else { // fixed chunks of vectors: each one's sums run the same way whatever the threads
                Parallel.inChunks(count, ROWS_PER_GEMM, (lo, hi) -> Gemm.gemm(false, true, hi - lo, panelRows,
                        inLength, 1f, src, srcOff + lo * inLength, inLength, panel, 0, inLength, 0f, dst,
                        column + lo * outLength, outLength));
            }
        }
    }

    /** {@link #applyAll} for one core: out[n][p] = Σ_q tr(K[p, q])·v[n][q], one float64 GEMM. */
    private void applyOneCore(float[] src, int srcOff, int count, float[] dst, int dstOff) {
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
    }

    /**
     * The R > 1 application, D ≥ 2, to one batch of m vectors, in float64 (the state and the products), so that
     * sums of many small terms do not round: the authors' identity start (every core slice I/R, R a power of 2)
     * then gives M·x = x exactly.
     *
     * <p>The trace allows any rotation of the cores' order, and the reversed order with every slice transposed
     * (tr(A·B·C) = tr(Cᵀ·Bᵀ·Aᵀ)); the order c_0..c_{D−1} with the fewest multiply-adds is used (d = 2048 =
     * [8, 16, 16]: the smallest core in the middle, a quarter fewer than in order). tr(K^{c_0}⋯K^{c_{D−1}}) =
     * Σ_a (row a of K^{c_0})⋯(column a of K^{c_{D−1}}), so for each ring start a the state carries one ring
     * index, not two, and the layouts let each GEMM read the previous one's output where it is:
     * <ol>
     *   <li>the batch, transposed once: X = [q_{c_0}][q_{c_1}]…[q_{c_{D−1}}][n];</li>
     *   <li>the first core: [(p, b)] × [(q_{c_1}.., n)] = K_a[(p, b)][q] · X, for a group of values of p that
     *       keeps the state in the core's own cache ({@link #GROUP_DOUBLES});</li>
     *   <li>each middle core c_j, per value of the output digits so far, on that block's rows (b, q_{c_j}):
     *       [(p, b')] × [(q_{c_{j+1}}.., n)] = K[(p, b')][(b, q)] · block, each new value of p a block of the
     *       same form for the next core;</li>
     *   <li>each block before the last core, [(b, q_{c_{D−1}})][n], copied into G = [(b, q)][(digits so far,
     *       n)] (the one copy of the state, since the last product needs the output digits with n), then
     *       Y[p][(digits so far, n)] += K_a[p][(b, q)] · G closes the ring, summed over a.</li>
     * </ol>
     * Every GEMM goes through {@link #gemm} in pieces that OpenBLAS runs on the calling thread.
     */
    private final class RingPlan {
        /** The cores in the order used. */
        private final int[] order;
        /** Whether that order is the reversed one, every slice transposed. */
        private final boolean reflected;
        /** ∏ of the output digits before step j (before[D]: all), and of the input digits after step j. */
        private final int[] before;
        private final int[] after;
        /** For each a: the first core as [(p, b)][q], entry K[p, q][a, b]. */
        private final double[][] first;
        /** For each middle step j (1..D−2): its core as [(p, b')][(b, q)], entry K[p, q][b, b']. */
        private final double[][] middle;
        /** For each a: the last core as [p][(b, q)], entry K[p, q][b, a]. */
        private final double[][] last;
        /** Values of the first output digit per group, for batches of {@link #BATCH} vectors. */
        private final int group;
        /** For each input index (digits in order), its row of X. */
        private final int[] inRow;
        /** For each output index, its row of Y = [p_{c_{D−1}}][digits before it]. */
        private final int[] outRow;

        RingPlan() {
            int d = in.length;
            int[] best = null;
            long bestCost = Long.MAX_VALUE;
            boolean bestReflected = false;
            for (int s = 0; s < 2 * d; s++) { // rotations, then reflections
                int[] o = new int[d];
                for (int j = 0; j < d; j++) {
                    o[j] = s < d ? (s + j) % d : ((s - j) % d + d) % d;
                }
                long cost = cost(o);
                if (cost < bestCost || cost == bestCost && out[o[d - 1]] > out[best[d - 1]]) {
                    best = o;
                    bestCost = cost;
                    bestReflected = s >= d;
                }
            }
            order = best;
            reflected = bestReflected;
            before = new int[d + 1];
            after = new int[d];
            before[0] = 1;
            for (int j = 0; j < d; j++) {
                before[j + 1] = before[j] * out[order[j]];
            }
            after[d - 1] = 1;
            for (int j = d - 2; j >= 0; j--) {
                after[j] = after[j + 1] * in[order[j + 1]];
            }
            int f = order[0];
            first = new double[ring][out[f] * ring * in[f]];
            for (int a = 0; a < ring; a++) {
                for (int p = 0; p < out[f]; p++) {
                    for (int b = 0; b < ring; b++) {
                        for (int q = 0; q < in[f]; q++) {
                            first[a][(p * ring + b) * in[f] + q] = slice(f, p, q, a, b);
                        }
                    }
                }
            }
            middle = new double[d][];
            for (int j = 1; j < d - 1; j++) {
                int c = order[j];
                double[] k = new double[out[c] * ring * ring * in[c]];
                for (int p = 0; p < out[c]; p++) {
                    for (int b2 = 0; b2 < ring; b2++) {
                        for (int b = 0; b < ring; b++) {
                            for (int q = 0; q < in[c]; q++) {
                                k[((p * ring + b2) * ring + b) * in[c] + q] = slice(c, p, q, b, b2);
                            }
                        }
                    }
                }
                middle[j] = k;
            }
            int l = order[d - 1];
            last = new double[ring][out[l] * ring * in[l]];
            for (int a = 0; a < ring; a++) {
                for (int p = 0; p < out[l]; p++) {
                    for (int b = 0; b < ring; b++) {
                        for (int q = 0; q < in[l]; q++) {
                            last[a][(p * ring + b) * in[l] + q] = slice(l, p, q, b, a);
                        }
                    }
                }
            }
            group = (int) Math.max(1, Math.min(out[f], GROUP_DOUBLES / ((long) ring * after[0] * BATCH)));
            inRow = new int[inLength];
            for (int i = 0; i < inLength; i++) {
                inRow[i] = reordered(in, i);
            }
            outRow = new int[outLength];
            int pre = before[d - 1];
            for (int i = 0; i < outLength; i++) {
                int r = reordered(out, i); // (digits before the last, the last)
                outRow[i] = r % out[l] * pre + r / out[l];
            }
        }

        /** The multiply-adds per vector and ring start in the order o. */
        private long cost(int[] o) {
            int d = o.length;
            long cost = 0;
            long pre = 1;
            for (int j = 0; j < d; j++) {
                int c = o[j];
                long rest = 1;
                for (int i = j + 1; i < d; i++) {
                    rest *= in[o[i]];
                }
                long inner = j == 0 ? in[c] : (long) ring * in[c];
                long width = j == d - 1 ? out[c] : (long) out[c] * ring;
                cost += pre * width * inner * rest;
                pre *= out[c];
            }
            return cost;
        }

        /** Entry (i, j) of K^c[p, q], or of its transpose when the order is reflected. */
        private double slice(int c, int p, int q, int i, int j) {
            return reflected ? cores[c][at(c, p, q) + j * ring + i] : cores[c][at(c, p, q) + i * ring + j];
        }

        /** Flat index i of digits sizes f (in mode order) as a flat index of the digits in the plan's order. */
        private int reordered(int[] f, int i) {
            int d = f.length;
            int[] digit = new int[d];
            for (int k = d - 1; k >= 0; k--) {
                digit[k] = i % f[k];
                i /= f[k];
            }
            int r = 0;
            for (int j = 0; j < d; j++) {
                r = r * f[order[j]] + digit[order[j]];
            }
            return r;
        }

        /** G's row stride for batches of m vectors: a group's columns, padded off a multiple of 4 KB. */
        private int gatheredStride(int m) {
            return group * (before[in.length - 1] / out[order[0]]) * m + 8;
        }

        /**
         * Buffers for batches of up to m vectors: X, the output of every step but the last (for one group, one
         * block), G, Y. Those read as GEMM operands have a row to spare: netlib checks that an operand's last row
         * fits whole, also for a piece that starts at a column offset ({@link RingOperator#gemm}).
         */
        double[][] workspace(int m) {
            int d = in.length;
            int slack = Math.max(after[0] * m, gatheredStride(m));
            double[][] w = new double[d + 2][];
            w[0] = new double[m * inLength + slack];
            w[1] = new double[group * ring * after[0] * m + slack];
            for (int j = 1; j < d - 1; j++) {
                w[j + 1] = new double[out[order[j]] * ring * after[j] * m + slack];
            }
            w[d] = new double[ring * in[order[d - 1]] * gatheredStride(m) + slack];
            w[d + 1] = new double[m * outLength];
            return w;
        }

        /** dst rows = M·(src rows) for m vectors, m at most the workspace's. */
        void apply(float[] src, int srcOff, int m, float[] dst, int dstOff, double[][] work) {
            int d = in.length;
            double[] x = work[0];
            double[] gathered = work[d];
            double[] y = work[d + 1];
            for (int n = 0; n < m; n++) {
                int base = srcOff + n * inLength;
                for (int i = 0; i < inLength; i++) {
                    x[inRow[i] * m + n] = src[base + i];
                }
            }
            int f = order[0];
            int l = order[d - 1];
            int pre = before[d - 1];
            int per = pre / out[f]; // blocks before the last core per value of the first digit
            int inner = ring * in[l];
            int stride = gatheredStride(m);
            int cols = after[0] * m;
            for (int p0 = 0; p0 < out[f]; p0 += group) {
                int values = Math.min(group, out[f] - p0);
                for (int a = 0; a < ring; a++) {
                    gemm(values * ring, cols, in[f], first[a], p0 * ring * in[f], in[f], x, 0, cols, 0, work[1], 0,
                            cols);
                    for (int p = 0; p < values; p++) {
                        carry(1, work, work[1], p * ring * cols, p, m, stride);
                    }
                    gemm(out[l], values * per * m, inner, last[a], 0, inner, gathered, 0, stride, a == 0 ? 0 : 1,
                            y, p0 * per * m, pre * m);
                }
            }
            for (int n = 0; n < m; n++) {
                int base = dstOff + n * outLength;
                for (int i = 0; i < outLength; i++) {
                    dst[base + i] = (float) y[outRow[i] * m + n];
                }
            }
        }

        /**
         * Carries one block of step j's input, rows (b, q_{c_j}) × columns (q_{c_{j+1}}.., n) at buf[off], through
         * the middle cores into G; index is the block's output digits so far, counted within the group.
         */
        private void carry(int j, double[][] work, double[] buf, int off, int index, int m, int stride) {
            int d = in.length;
            if (j == d - 1) {
                double[] gathered = work[d];
                int rows = ring * in[order[j]];
                for (int r = 0; r < rows; r++) {
                    System.arraycopy(buf, off + r * m, gathered, r * stride + index * m, m);
                }
                return;
            }
            int c = order[j];
            int cols = after[j] * m;
            double[] o = work[j + 1];
            gemm(out[c] * ring, cols, ring * in[c], middle[j], 0, ring * in[c], buf, off, cols, 0, o, 0, cols);
            for (int p = 0; p < out[c]; p++) {
                carry(j + 1, work, o, p * ring * cols, index * out[c] + p, m, stride);
            }
        }
    }

    /**
     * C = A·B + β·C (row-major, float64) in pieces of at most {@link #PIECE} multiply-adds, split along the larger
     * of C's dimensions.
     */
    private static void gemm(int m, int n, int k, double[] a, int aOff, int lda, double[] b, int bOff, int ldb,
                             double beta, double[] c, int cOff, int ldc) {
        long total = (long) m * n * k;
        if (total <= PIECE) {
            Gemm.dgemm(false, false, m, n, k, 1, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        } else if (m >= n) {
            int rows = (int) Math.max(1, PIECE / ((long) n * k));
            for (int i = 0; i < m; i += rows) {
                Gemm.dgemm(false, false, Math.min(rows, m - i), n, k, 1, a, aOff + i * lda, lda, b, bOff, ldb, beta,
                        c, cOff + i * ldc, ldc);
            }
        } else {
            int cols = (int) Math.max(1, PIECE / ((long) m * k));
            for (int i = 0; i < n; i += cols) {
                Gemm.dgemm(false, false, m, Math.min(cols, n - i), k, 1, a, aOff, lda, b, bOff + i, ldb, beta, c,
                        cOff + i, ldc);
            }
        }
    }

    /**
     * {@link #applyAll} for R = 1, a Kronecker product, in float32 (every sum has one term per input digit, so
     * the identity start stays exact): fixed tasks of {@link #KRONECKER_TASK} vectors on the pool, each in batches
     * small enough that every intermediate stays in the core's cache ({@link #kroneckerSteps}). Done over all the
     * vectors at once, each mode product and rotation was a pass through memory, and those passes, not the
     * multiply-adds, were the time.
     */
    private void applyKronecker(float[] src, int srcOff, int count, float[] dst, int dstOff) {
        float[][] factors = kroneckerFactors();
        int batch = kroneckerBatch();
        Parallel.inChunks(count, KRONECKER_TASK, (lo, hi) -> {
            KroneckerWork work = new KroneckerWork(batch);
            for (int from = lo; from < hi; from += batch) {
                int n = Math.min(batch, hi - from);
                float[] result = kroneckerSteps(factors, src, srcOff + from * inLength, n, -1, work);
                System.arraycopy(result, 0, dst, dstOff + from * outLength, n * outLength);
            }
        });
    }

    /** Core k of a Kronecker product as a GEMM operand, (Q_k × P_k) row-major: the mode product's right side. */
    private float[][] kroneckerFactors() {
        float[][] factors = new float[in.length][];
        for (int k = 0; k < in.length; k++) {
            factors[k] = new float[in[k] * out[k]];
            for (int q = 0; q < in[k]; q++) {
                for (int p = 0; p < out[k]; p++) {
                    factors[k][q * out[k] + p] = cores[k][at(k, p, q)];
                }
            }
        }
        return factors;
    }

    /** ∏ max(P_k, Q_k): the longest a vector gets between the mode products, whatever is skipped. */
    private int kroneckerLongest() {
        int longest = 1;
        for (int k = 0; k < in.length; k++) {
            longest *= Math.max(in[k], out[k]);
        }
        return longest;
    }

    /**
     * Vectors per batch of the Kronecker product: at most 16, and few enough that each GEMM of a batch stays under
     * {@link #PIECE} multiply-adds, so OpenBLAS runs it on the calling thread (the pool's threads are busy).
     */
    private int kroneckerBatch() {
        int widest = 1;
        for (int k = 0; k < in.length; k++) {
            widest = Math.max(widest, Math.max(in[k], out[k]));
        }
        long perVector = (long) kroneckerLongest() * widest;
        return (int) Math.max(1, Math.min(16, (PIECE - 1) / perVector));
    }

    /** One task's buffers for a batch of the Kronecker product and its gradient, reused batch after batch. */
    private final class KroneckerWork {
        final float[] a;
        final float[] b;
        final float[] carried;
        final float[] fibres;

        KroneckerWork(int batch) {
            int size = batch * kroneckerLongest();
            a = new float[size];
            b = new float[size];
            carried = new float[size];
            fibres = new float[batch * outLength];
        }
    }

    /**
     * The mode products of a Kronecker product on one batch of count vectors (src from srcOff), mode by mode from
     * the last: each one GEMM over the batch on the vectors' last digit, then a per-vector transpose that rotates
     * the new output digit to the front and the next digit to process to the back; after D steps the digits are in
     * order again. Mode {@code skip} keeps its input digit (rotated like the others; −1 skips none). The result is
     * in work.a or work.b, which it returns.
     */
    private float[] kroneckerSteps(float[][] factors, float[] src, int srcOff, int count, int skip,
                                   KroneckerWork work) {
        float[] current = src;
        int currentOff = srcOff;
        int length = inLength; // of one vector, in the current digits
        for (int k = in.length - 1; k >= 0; k--) {
            int rest = length / in[k];
            int digit = in[k];
            float[] product = current;
            int productOff = currentOff;
            if (k != skip) {
                digit = out[k];
                product = current == work.a ? work.b : work.a;
                productOff = 0;
                Gemm.gemm(false, false, count * rest, out[k], in[k], 1f, current, currentOff, in[k], factors[k], 0,
                        out[k], 0f, product, 0, out[k]);
            }
            float[] rotated = product == work.a ? work.b : work.a;
            transposeEach(product, productOff, count, rest, digit, rotated, 0);
            current = rotated;
            currentOff = 0;
            length = rest * digit;
        }
        return current;
    }

    /**
     * For R = 1: the gradient of Σ_n ⟨w_n, M·v_n⟩ with respect to every core, by products: for core k, v carried
     * through every other core (mode k left as input digits), then ∂K^k = Σ over the vectors and the other
     * digits of w's mode-k fibres times those of the carried v, one GEMM after moving mode k last in both. The
     * vectors go in the fixed tasks and cache-sized batches of {@link #applyKronecker}; each task sums its
     * batches in order inside the GEMMs, and the tasks' sums are added in task order, so results repeat bit for
     * bit.
     *
     * @param v count vectors of ∏Q values
     * @param w count vectors of ∏P values
     * @param count the number of vectors
     * @return one gradient per core, in the cores' layout: (P_k × Q_k), or (Q_k × P_k) when transposed
     */
    float[][] kroneckerGradient(float[] v, float[] w, int count) {
        int d = in.length;
        float[][] factors = kroneckerFactors();
        int batch = kroneckerBatch();
        float[][][] partial = new float[Parallel.chunks(count, KRONECKER_TASK)][][];
        Parallel.inChunks(count, KRONECKER_TASK, (lo, hi) -> {
            KroneckerWork work = new KroneckerWork(batch);
            float[][] sums = new float[d][];
            for (int k = 0; k < d; k++) {
                sums[k] = new float[out[k] * in[k]];
            }
            for (int from = lo; from < hi; from += batch) {
                int n = Math.min(batch, hi - from);
                for (int k = 0; k < d; k++) {
                    float[] carried = kroneckerSteps(factors, v, from * inLength, n, k, work);
                    int pre = product(out, 0, k);
                    int post = product(out, k + 1, d);
                    float[] z = carried;
                    float[] g = w;
                    int gOff = from * outLength;
                    if (post > 1) {
                        transposeEach(carried, 0, n * pre, in[k], post, work.carried, 0);
                        z = work.carried;
                        transposeEach(w, gOff, n * pre, out[k], post, work.fibres, 0);
                        g = work.fibres;
                        gOff = 0;
                    }
                    Gemm.gemm(true, false, out[k], in[k], n * pre * post, 1f, g, gOff, out[k], z, 0, in[k], 1f,
                            sums[k], 0, in[k]);
                }
            }
            partial[lo / KRONECKER_TASK] = sums;
        });
        float[][] grads = partial[0];
        for (int t = 1; t < partial.length; t++) {
            for (int k = 0; k < d; k++) {
                for (int i = 0; i < grads[k].length; i++) {
                    grads[k][i] += partial[t][k][i];
                }
            }
        }
        if (transposed) {
            for (int k = 0; k < d; k++) {
                grads[k] = transposeEach(grads[k], 0, 1, out[k], in[k], new float[grads[k].length], 0);
            }
        }
        return grads;
    }

    /**
     * out (from outOff) = each of the blocks (rows × cols, row-major) of a (from aOff) transposed, on this thread;
     * returns out.
     */
    private static float[] transposeEach(float[] a, int aOff, int blocks, int rows, int cols, float[] out, int outOff) {
        int size = rows * cols;
        for (int blk = 0; blk < blocks; blk++) {
            int from = aOff + blk * size;
            int to = outOff + blk * size;
            for (int r = 0; r < rows; r++) {
                int row = from + r * cols;
                for (int c = 0; c < cols; c++) {
                    out[to + c * rows + r] = a[row + c];
                }
            }
        }
        return out;
    }

    /**
     * Σ_n ∂⟨w_n, M·v_n⟩/∂K^k for every core k, by GEMMs. Σ_n ⟨w_n, M·v_n⟩ = Σ C[p̄, q̄]·M[p̄, q̄] with
     * C = Σ_n w_n·v_nᵀ (∏P × ∏Q, one GEMM over the vectors), and by the trace's cyclic symmetry
     * ∂M[p̄, q̄]/∂K^k[p_k, q_k][b, a] = E[a, b], E = K^{k+1}⋯K^{D−1}·K⁰⋯K^{k−1} at the other digits. So
     * core k's gradient is C, its digits permuted to (p_k, q_k) × (the others), times E as (the others) × (a, b).
     * C is built one band at a time, the rows of one value of the first output digit p_0 (1/P_0 of it), and each
     * band's share added in band order: core 0's gradient rows of that p_0, the other cores' sums over p_0. So
     * no buffer holds ∏P × ∏Q values (d_in × d_in for the transform), only a band and its permuted copy.
     * Per vector the cost is one rank-1 update of C (2·∏P·∏Q flops, at GEMM speed) instead of carrying its ring
     * state through every other core (∝ R³ per digit); the rest does not depend on the count. The sums run inside
     * the BLAS in float32 in a fixed order, so results repeat bit for bit.
     *
     * @param v count vectors of ∏Q values
     * @param w count vectors of ∏P values
     * @param count the number of vectors
     * @return one gradient per core, in the cores' layout
     */
    float[][] ringGradient(float[] v, float[] w, int count) {
        int d = in.length;
        if (d == 1) { // E is the identity: ∂K[p, q][a, a] = C[p, q], and C is the core's own size
            float[] gram = gram(w, 0, outLength, v, count);
            float[][] grads = {new float[cores[0].length]};
            for (int p = 0; p < out[0]; p++) {
                for (int q = 0; q < in[0]; q++) {
                    for (int a = 0; a < ring; a++) {
                        grads[0][at(0, p, q) + a * ring + a] = gram[p * in[0] + q];
                    }
                }
            }
            return grads;
        }
        int rr = ring * ring;
        float[][] e = new float[d][];
        float[][] sums = new float[d][]; // [(p, q)][a][b] per core
        for (int k = 0; k < d; k++) {
            e[k] = otherProducts(k);
            sums[k] = new float[out[k] * in[k] * rr];
        }
        int bandRows = outLength / out[0];
        int[] bandDims = new int[2 * d]; // a band's digits: p_0 (one value), p_1..p_{D−1}, q_0..q_{D−1}
        for (int j = 0; j < d; j++) {
            bandDims[j] = j == 0 ? 1 : out[j];
            bandDims[d + j] = in[j];
        }
        for (int band = 0; band < out[0]; band++) {
            float[] gram = gram(w, band * bandRows, bandRows, v, count);
            for (int k = 0; k < d; k++) {
                addBand(k, band, gram, bandDims, e[k], sums[k]);
            }
        }
        float[][] grads = new float[d][];
        for (int k = 0; k < d; k++) {
            grads[k] = new float[cores[k].length];
            for (int p = 0; p < out[k]; p++) {
                for (int q = 0; q < in[k]; q++) {
                    int from = (p * in[k] + q) * rr;
                    int to = at(k, p, q);
                    for (int a = 0; a < ring; a++) {
                        for (int b = 0; b < ring; b++) {
                            grads[k][to + b * ring + a] = sums[k][from + a * ring + b];
                        }
                    }
                }
            }
        }
        return grads;
    }

    /** Rows [first, first + rows) of C = Σ_n w_n·v_nᵀ, rows × ∏Q. */
    private float[] gram(float[] w, int first, int rows, float[] v, int count) {
        float[] gram = new float[rows * inLength];
        if (Gemm.threadsItself()) {
            Gemm.gemm(true, false, rows, inLength, count, 1f, w, first, outLength, v, 0, inLength, 0f, gram, 0,
                    inLength);
        } else { // fixed bands of C's rows, each computed the same way whatever the threads
            Parallel.inChunks(rows, 64, (lo, hi) -> Gemm.gemm(true, false, hi - lo, inLength, count, 1f, w, first + lo,
                    outLength, v, 0, inLength, 0f, gram, lo * inLength, inLength));
        }
        return gram;
    }

    /**
     * One band of C (first output digit p_0 = band; its digits' sizes dims, p_0's being 1) into core k's sum
     * ([(p_k, q_k)][a][b]; D ≥ 2): for k = 0, the rows of p_0 = band; for the others, its share of the sum over the
     * other digits, added to the earlier bands' (E's rows of p_0 = band are one run: p_0 is their first digit).
     */
    private void addBand(int k, int band, float[] gram, int[] dims, float[] e, float[] sum) {
        int d = in.length;
        int rr = ring * ring;
        int pairs = dims[k] * dims[d + k];
        int others = gram.length / pairs;
        // the band with (p_k, q_k) on one side and the other digits, in C's order, on the other: first when
        // k < D − 1, so that q_{k+1}..q_{D−1} stay one contiguous run, else last (q_k is C's last digit)
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
        float[] c = permute(gram, dims, order);
        int sumOff = k == 0 ? band * in[0] * rr : 0;
        int eOff = k == 0 ? 0 : band * others * rr;
        float beta = k == 0 || band == 0 ? 0f : 1f;
        if (k < d - 1) {
            Gemm.gemm(false, false, pairs, rr, others, 1f, c, 0, others, e, eOff, rr, beta, sum, sumOff, rr);
        } else {
            Gemm.gemm(true, false, pairs, rr, others, 1f, c, 0, pairs, e, eOff, rr, beta, sum, sumOff, rr);
        }
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
