package org.spectralpeft.foura.cpu;

import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.jtransforms.dct.DoubleDCT_1D;
import org.spectralpeft.core.Checks;
import org.spectralpeft.cpu.BatchedRealFft;
import org.spectralpeft.cpu.FftPool;
import org.spectralpeft.cpu.Parallel;
import org.spectralpeft.cpu.RealFft;
import org.spectralpeft.foura.FouRASpec;

/**
 * FouRA's fixed transforms folded into its factors (DESIGN.md): Â = A·𝒯_in and B̂ = 𝒯_out⁻¹·B, computed once
 * per parameter update with r transforms of length d on each side instead of per token.
 *
 * <p>Layouts, row-major float32. DFT: Â is 2r × d_in, rows 0..r−1 its real part and rows r..2r−1 its
 * imaginary part (row i = DFT(A's row i)/√d_in); B̂ is d_out × 2r, columns 0..r−1 real and r..2r−1
 * imaginary (column i = conj(DFT(B's column i))/√d_out, which for real B is the unitary inverse DFT). DCT: Â
 * is r × d_in and B̂ is d_out × r, each row of A and column of B through the orthonormal DCT-III.
 * {@link #gradA} and {@link #gradB} take gradients the other way, from the folded factors to A and B.
 */
public final class FoldedFactors {
    private FoldedFactors() {
    }

    /**
     * Â = A·𝒯_in.
     *
     * @param spec the layer
     * @param a A, r × d_in row-major
     * @return Â in the layout above
     * @throws IllegalArgumentException if an argument is null or {@code a} has the wrong length
     */
    public static float[] aHat(FouRASpec spec, float[] a) {
        Checks.notNull(spec, "spec");
        Checks.finiteVector("A", a, spec.aLength());
        float[] out = new float[spec.zWidth() * spec.dIn()];
        aHatInto(spec, a, out);
        return out;
    }

    /**
     * {@link #aHat(FouRASpec, float[])} of an A already checked ({@code FouRAFactors.checkParameters}) into the
     * first width × d_in floats of out, over what they held: a caller refolding once per step reuses its arrays
     * (and may keep slack after them, which is not written). Every fold of a spec writes the same elements, so
     * an element a fold leaves alone keeps the zero of the array's allocation.
     */
    static void aHatInto(FouRASpec spec, float[] a, float[] out) {
        int r = spec.rank();
        int d = spec.dIn();
        boolean dft = spec.transform() == FouRASpec.Transform.DFT;
        if (dft && batched(r, d)) { // row i's real parts in row i, its imaginary parts in row r + i
            batchedUnitaryDfts(a, r, d, out, d, 0, r * d, 1, false);
            return;
        }
        perLine(r, d, dft, (t, i) -> {
            float[] row = t.line;
            System.arraycopy(a, i * d, row, 0, d);
            if (dft) {
                t.unitaryDft(row, 0, out, i * d, 1, (r + i) * d, 1, false);
            } else {
                t.dctIII(row);
                System.arraycopy(row, 0, out, i * d, d);
            }
        });
    }

    /**
     * B̂ = 𝒯_out⁻¹·B.
     *
     * @param spec the layer
     * @param b B, d_out × r row-major
     * @return B̂ in the layout above
     * @throws IllegalArgumentException if an argument is null or {@code b} has the wrong length
     */
    public static float[] bHat(FouRASpec spec, float[] b) {
        Checks.notNull(spec, "spec");
        Checks.finiteVector("B", b, spec.bLength());
        float[] out = new float[spec.dOut() * spec.zWidth()];
        bHatInto(spec, b, out);
        return out;
    }

    /** {@link #bHat(FouRASpec, float[])} of a B already checked into the first d_out × width floats of out, as {@link #aHatInto}. */
    static void bHatInto(FouRASpec spec, float[] b, float[] out) {
        int r = spec.rank();
        int d = spec.dOut();
        boolean dft = spec.transform() == FouRASpec.Transform.DFT;
        int width = dft ? 2 * r : r;
        if (dft && batched(r, d)) { // the columns as rows first; column i's real parts in column i, imaginary in r + i
            float[] columns = new float[r * d];
            for (int i = 0; i < r; i++) { // along the rows written (d floats apart, they share cache sets)
                for (int o = 0; o < d; o++) {
                    columns[i * d + o] = b[o * r + i];
                }
            }
            batchedUnitaryDfts(columns, r, d, out, 1, 0, r, width, true);
            return;
        }
        perLine(r, d, dft, (t, i) -> {
            float[] col = t.line;
            for (int o = 0; o < d; o++) {
                col[o] = b[o * r + i];
            }
            if (dft) { // the unitary inverse DFT of a real column is the conjugate of its unitary DFT
                t.unitaryDft(col, 0, out, i, width, r + i, width, true);
            } else {
                t.dctIII(col);
                for (int p = 0; p < d; p++) {
                    out[p * width + i] = col[p];
                }
            }
        });
    }

    /**
     * ∂L/∂A from ∂L/∂Â (the layout of {@link #aHat}): the adjoint of the fold, one transform per row. DFT:
     * ∂A[i, j] = Re(Σ_k (∂Re Â[i, k] + i·∂Im Â[i, k])·e^{+2πi·jk/d})/√d; DCT: the orthonormal DCT-II of each row.
     *
     * @param spec the layer
     * @param gradAHat ∂L/∂Â, 2r × d_in (DFT) or r × d_in (DCT)
     * @return ∂L/∂A, r × d_in row-major
     */
    public static float[] gradA(FouRASpec spec, float[] gradAHat) {
        Checks.notNull(spec, "spec");
        Checks.notNull(gradAHat, "gradAHat");
        int r = spec.rank();
        int d = spec.dIn();
        boolean dft = spec.transform() == FouRASpec.Transform.DFT;
        Checks.length("gradAHat", gradAHat.length, (long) (dft ? 2 : 1) * r * d);
        float[] out = new float[r * d];
        if (dft && batched(r, d)) {
            batchedInverses(r, d, out, hermitianParts(gradAHat, r, d, d, 1, 1f));
            return out;
        }
        perLine(r, d, dft, (t, i) -> {
            float[] row = t.line;
            if (dft) {
                t.adjointDft(gradAHat, i * d, 1, (r + i) * d, 1, 1f, row);
            } else {
                System.arraycopy(gradAHat, i * d, row, 0, d);
                t.dctII(row);
            }
            System.arraycopy(row, 0, out, i * d, d);
        });
        return out;
    }

    /**
     * ∂L/∂B from ∂L/∂B̂ (the layout of {@link #bHat}): the adjoint of the fold, one transform per column. DFT:
     * ∂B[o, i] = Re(Σ_p (∂Re B̂[p, i] − i·∂Im B̂[p, i])·e^{+2πi·po/d})/√d; DCT: the orthonormal DCT-II of
     * each column.
     *
     * @param spec the layer
     * @param gradBHat ∂L/∂B̂, d_out × 2r (DFT) or d_out × r (DCT)
     * @return ∂L/∂B, d_out × r row-major
     */
    public static float[] gradB(FouRASpec spec, float[] gradBHat) {
        Checks.notNull(spec, "spec");
        Checks.notNull(gradBHat, "gradBHat");
        int r = spec.rank();
        int d = spec.dOut();
        boolean dft = spec.transform() == FouRASpec.Transform.DFT;
        int width = dft ? 2 * r : r;
        Checks.length("gradBHat", gradBHat.length, (long) d * width);
        if (dft && batched(r, d)) { // column i of ∂B̂ read at a stride of 2r
            float[] lines = new float[r * d];
            batchedInverses(r, d, lines, hermitianParts(gradBHat, r, d, 1, width, -1f));
            return columns(lines, r, d);
        }
        float[] out = new float[d * r];
        perLine(r, d, dft, (t, i) -> {
            float[] col = t.line;
            if (dft) {
                t.adjointDft(gradBHat, i, width, r + i, width, -1f, col);
            } else {
                for (int p = 0; p < d; p++) {
                    col[p] = gradBHat[p * width + i];
                }
                t.dctII(col);
            }
            for (int o = 0; o < d; o++) {
                out[o * r + i] = col[o];
            }
        });
        return out;
    }

    /**
     * {@link #gradB} for the DFT from ∂L/∂B̂ᵀ (2r × d_out, row i the gradient of column i of B̂), as the CPU
     * backend computes it (wᵀ·g): the same sums, each adjoint reading one row instead of a column at a stride
     * of 2r (and no transposed copy first).
     *
     * @param spec the layer, DFT
     * @param gradBHatT ∂L/∂B̂ᵀ, 2r × d_out
     * @return ∂L/∂B, d_out × r row-major
     */
    static float[] gradBFromTransposed(FouRASpec spec, float[] gradBHatT) {
        int r = spec.rank();
        int d = spec.dOut();
        Checks.length("gradBHatT", gradBHatT.length, 2L * r * d);
        if (batched(r, d)) {
            float[] lines = new float[r * d];
            batchedInverses(r, d, lines, hermitianParts(gradBHatT, r, d, d, 1, -1f));
            return columns(lines, r, d);
        }
        float[] out = new float[d * r];
        perLine(r, d, true, (t, i) -> {
            float[] col = t.line;
            t.adjointDft(gradBHatT, i * d, 1, (r + i) * d, 1, -1f, col);
            for (int o = 0; o < d; o++) {
                out[o * r + i] = col[o];
            }
        });
        return out;
    }

    /**
     * ∂L/∂A from ∂L/∂Â in the rows layout the CPU backend computes: for the DFT 2r × h, h = ⌊d_in/2⌋ + 1,
     * rows 0..r−1 the gradients of Re Â's bins 0..h−1 and rows r..2r−1 those of Im Â (each already summed over
     * a bin and its mirror, as {@link Spectra} folds them); for the DCT r × d_in, as {@link #gradA}.
     *
     * @param spec the layer
     * @param rows the gradient in that layout
     * @return ∂L/∂A, r × d_in row-major
     */
    static float[] gradAFromRows(FouRASpec spec, float[] rows) {
        return adjointRows(spec, spec.dIn(), rows, 1f);
    }

    /**
     * ∂L/∂B from ∂L/∂B̂ᵀ in the rows layout of {@link #gradAFromRows} (over d_out): the CPU backend computes
     * B̂'s gradient transposed, as wᵀ·g.
     *
     * @param spec the layer
     * @param rows the gradient of B̂ᵀ in that layout
     * @return ∂L/∂B, d_out × r row-major
     */
    static float[] gradBFromRows(FouRASpec spec, float[] rows) {
        int r = spec.rank();
        int d = spec.dOut();
        return columns(adjointRows(spec, d, rows, -1f), r, d); // B̂ = conj(DFT(B))/√d: the imaginary sign flips
    }

    /**
     * The unitary DFTs of rows of real signals, laid out for the backward's gradients taken from the tokens'
     * spectra instead of from the folded factors' (T transforms instead of 2r when T is small): d × 2·rows, bin
     * k's row holding every row's real part, then every row's imaginary part (negated when {@code conjugate}):
     * row t's at [k][t] and [k][rows + t]. A GEMM pairs them with a tokens × 2r array rearranged as 2·tokens rows
     * of r, every token's real parts, then every token's imaginary parts ({@link #planar}). Bins past d/2 mirror
     * the others as conjugates. Each bin's values are contiguous per part, so they are written as scaled copies.
     * The transforms are batched ({@link BatchedRealFft}, blocks of up to {@link #SPECTRA_BLOCK} rows on the
     * pool) where the length allows, the Vector API runs them and there are at least {@link #BATCHED_ROWS} rows;
     * else one row at a time.
     *
     * @param v rows × d row-major
     * @param rows the number of rows
     * @param d their length
     * @param conjugate whether to store the conjugate spectra
     * @return d × 2·rows row-major: DFT(v_t)/√d, or its conjugate; a pooled array, for {@link #release}
     */
    static float[] spectraByBin(float[] v, int rows, int d, boolean conjugate) {
        float[] out = BATCHED.takeScratch(d * 2 * rows);
        if (batched(rows, d)) {
            batchedUnitaryDfts(v, rows, d, out, 1, 0, rows, 2 * rows, conjugate);
            return out;
        }
        // one row at a time into rows of bins, then gathered by bin (each row's spectrum written straight into
        // this layout would land at a stride of 2·rows)
        int h = d / 2 + 1;
        float[] re = new float[rows * h];
        float[] im = new float[rows * h];
        perLine(rows, d, true, (t, i) -> t.halfDft(v, i * d, re, im, i * h));
        float norm = (float) (1 / Math.sqrt(d));
        float imNorm = conjugate ? -norm : norm;
        Parallel.inChunks(h, binsPerTask(rows), (k0, k1) -> byBin(d, rows, k0, k1, re, im, norm, imNorm, out));
        return out;
    }

    /**
     * A tokens × 2r array (each token's r real parts, then its r imaginary parts) as 2·tokens rows of r: every
     * token's real parts, then every token's imaginary parts, the order of {@link #spectraByBin}'s bins.
     *
     * @param z tokens × 2r row-major
     * @param tokens the tokens
     * @param r the rank
     * @return 2·tokens × r row-major
     */
    static float[] planar(float[] z, int tokens, int r) {
        float[] out = new float[2 * tokens * r];
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(z, 2 * t * r, out, t * r, r);
            System.arraycopy(z, (2 * t + 1) * r, out, (tokens + t) * r, r);
        }
        return out;
    }

    private static int binsPerTask(int rows) {
        return Math.max(1, VALUES_PER_TASK / rows);
    }

    /** Gives back an array of {@link #spectraByBin} once it is no longer read. */
    static void release(float[] spectra) {
        BATCHED.give(spectra);
    }

    /** r lines of length d from the rows layout: DFT, the real inverse of the half spectrum; DCT, the DCT-II. */
    private static float[] adjointRows(FouRASpec spec, int d, float[] rows, float imSign) {
        Checks.notNull(rows, "rows");
        int r = spec.rank();
        boolean dft = spec.transform() == FouRASpec.Transform.DFT;
        int h = dft ? d / 2 + 1 : d;
        Checks.length("rows", rows.length, (long) (dft ? 2 : 1) * r * h);
        float[] out = new float[r * d];
        if (dft && batched(r, d)) { // Transforms.adjointHalf, batched
            float norm = (float) (1 / Math.sqrt(d));
            batchedInverses(r, d, out, (from, to, re, im) -> {
                for (int k = 0; k < h; k++) {
                    float w = k == 0 || 2 * k == d ? norm : 0.5f * norm;
                    for (int i = from; i < to; i++) {
                        re[k][i - from] = w * rows[i * h + k];
                        im[k][i - from] = w * imSign * rows[(r + i) * h + k];
                    }
                }
            });
            return out;
        }
        perLine(r, d, dft, (t, i) -> {
            float[] line = t.line;
            if (dft) {
                t.adjointHalf(rows, i * h, (r + i) * h, imSign, line);
            } else {
                System.arraycopy(rows, i * d, line, 0, d);
                t.dctII(line);
            }
            System.arraycopy(line, 0, out, i * d, d);
        });
        return out;
    }

    /**
     * Bins [k0, k1) (within 0..d/2) of {@link #spectraByBin}'s layout (d × 2·rows) from rows of bins (row t's
     * bin k at [t·h + k], h = d/2 + 1), scaled: bin k at [k][t] (real, times norm) and [k][rows + t] (imaginary,
     * times imNorm), and their conjugates at bin d − k.
     */
    private static void byBin(int d, int rows, int k0, int k1, float[] re, float[] im, float norm, float imNorm,
                              float[] out) {
        int h = d / 2 + 1;
        for (int k = k0; k < k1; k++) {
            int at = k * 2 * rows;
            int mirror = (d - k) * 2 * rows; // bin d − k = conj(bin k), for 0 < k < d − k
            boolean mirrored = k > 0 && k < d - k;
            for (int t = 0; t < rows; t++) {
                float a = norm * re[t * h + k];
                float b = imNorm * im[t * h + k];
                out[at + t] = a;
                out[at + rows + t] = b;
                if (mirrored) {
                    out[mirror + t] = a;
                    out[mirror + rows + t] = -b;
                }
            }
        }
    }

    /**
     * {@link Transforms#unitaryDft} of the rows of src (lines × d) as batched transforms: bin k of line i's real
     * part at out[reOff + i·line + k·step], its imaginary part (negated when conjugate) at out[imOff + i·line +
     * k·step]; either step is 1 (a line per row of out) or line is 1 (a bin per row, the lines side by side).
     */
    private static void batchedUnitaryDfts(float[] src, int lines, int d, float[] out, int line, int reOff, int imOff,
                                           int step, boolean conjugate) {
        if (step != 1 && line != 1) {
            throw new IllegalArgumentException("a line per row (step 1) or a bin per row (line 1), not " + line + ", "
                    + step);
        }
        float norm = (float) (1 / Math.sqrt(d));
        float imNorm = conjugate ? -norm : norm;
        Parallel.inChunks(lines, SPECTRA_BLOCK, (from, to) -> {
            BatchedRealFft fft = BATCHED.takeBatched(d, SPECTRA_BLOCK);
            try {
                if (step != 1) { // a bin per row of out, the block's lines side by side: written by the last pass
                    fft.forwardInto(to - from, src, from * d, d, out, reOff + from, imOff + from, step, norm, imNorm);
                    return;
                }
                fft.forward(to - from, src, from * d, d);
                float[][] re = fft.spectrumRe();
                float[][] im = fft.spectrumIm();
                // a line per row of out, written along the row (rows d floats apart share cache sets)
                for (int i = from; i < to; i++) {
                    for (int k = 0; k <= d / 2; k++) {
                        unitaryBin(re, im, i, k, from, d, norm, imNorm, out, reOff + i * line, imOff + i * line);
                    }
                }
            } finally {
                BATCHED.give(fft);
            }
        });
    }

    /** Bin k of line i (and its mirror d − k, the conjugate) of a batched block, scaled, at reAt/imAt + k. */
    private static void unitaryBin(float[][] re, float[][] im, int i, int k, int from, int d, float norm, float imNorm,
                                   float[] out, int reAt, int imAt) {
        float a = norm * re[k][i - from];
        float b = imNorm * im[k][i - from];
        out[reAt + k] = a;
        out[imAt + k] = b;
        if (k > 0 && k < d - k) {
            out[reAt + d - k] = a;
            out[imAt + d - k] = -b;
        }
    }

    /** Fills the bins 0..d/2 of the lines [from, to) of a block: line i's bin k at re[k][i − from], im[k][i − from]. */
    private interface LineSpectra {
        void fill(int from, int to, float[][] re, float[][] im);
    }

    /**
     * out rows [0, lines) (length d) = the real inverses of the lines' Hermitian spectra, in blocks of
     * {@link #SPECTRA_BLOCK} lines on the pool.
     */
    private static void batchedInverses(int lines, int d, float[] out, LineSpectra spectra) {
        Parallel.inChunks(lines, SPECTRA_BLOCK, (from, to) -> {
            BatchedRealFft fft = BATCHED.takeBatched(d, SPECTRA_BLOCK);
            try {
                spectra.fill(from, to, fft.spectrumRe(), fft.spectrumIm());
                fft.inverse(to - from, out, from * d, d);
            } finally {
                BATCHED.give(fft);
            }
        });
    }

    /**
     * {@link Transforms#adjointDft}'s spectra, for batched inverses: line i is the full spectrum c of length d
     * with bin k's real part at src[i·line + k·step] and its imaginary part (times imSign) at
     * src[(r + i)·line + k·step], and its Hermitian part (c_k + conj(c_{d−k}))/2, over √d, is transformed.
     */
    private static LineSpectra hermitianParts(float[] src, int r, int d, int line, int step, float imSign) {
        float half = (float) (0.5 / Math.sqrt(d));
        return (from, to, re, im) -> {
            if (step == 1) { // along each line (lines d floats apart share cache sets)
                for (int i = from; i < to; i++) {
                    for (int k = 0; k <= d / 2; k++) {
                        hermitianBin(src, r, d, line, 1, imSign, half, i, k, from, re, im);
                    }
                }
            } else {
                for (int k = 0; k <= d / 2; k++) {
                    for (int i = from; i < to; i++) {
                        hermitianBin(src, r, d, line, step, imSign, half, i, k, from, re, im);
                    }
                }
            }
        };
    }

    /** Bin k of line i of {@link #hermitianParts}, into re[k][i − from] and im[k][i − from]. */
    private static void hermitianBin(float[] src, int r, int d, int line, int step, float imSign, float half, int i,
                                     int k, int from, float[][] re, float[][] im) {
        int m = k == 0 ? 0 : d - k;
        int reLine = i * line;
        int imLine = (r + i) * line;
        re[k][i - from] = half * (src[reLine + k * step] + src[reLine + m * step]);
        im[k][i - from] = half * imSign * (src[imLine + k * step] - src[imLine + m * step]);
    }

    /** out (d × r) = lines (r × d) transposed: the columns of B from their lines. */
    private static float[] columns(float[] lines, int r, int d) {
        float[] out = new float[d * r];
        for (int o = 0; o < d; o++) {
            for (int i = 0; i < r; i++) {
                out[o * r + i] = lines[i * d + o];
            }
        }
        return out;
    }

    /** The fewest rows transformed batched: below, one at a time is faster (d = 4096: 1 row 44 against 12 µs). */
    private static final int BATCHED_ROWS = 4;
    /**
     * Whether rows transforms of length d go batched: a length the batched transform takes, on the Vector API, and
     * at least {@link #BATCHED_ROWS} of them.
     */
    private static boolean batched(int rows, int d) {
        return rows >= BATCHED_ROWS && BatchedRealFft.supports(d) && BatchedRealFft.vectorized();
    }

    /** Values (bins × rows) per task of the row-at-a-time route's pass gathering the bins: 16 rows in 2 tasks at d = 4096. */
    private static final int VALUES_PER_TASK = 1 << 14;
    /** Rows per batched transform of {@link #spectraByBin} and the adjoint folds. */
    private static final int SPECTRA_BLOCK = 16;
    /** The batched transforms of {@link #spectraByBin}, kept for reuse. */
    private static final FftPool BATCHED = new FftPool();
    /** Lines (rows of A, columns of B) per task: a few, so that r = 16 keeps several cores busy. */
    private static final int LINES_PER_TASK = 2;
    /** Transforms kept for reuse per length and kind: building one (twiddle tables) costs more than running it. */
    private static final Map<Long, Queue<Transforms>> POOL = new ConcurrentHashMap<>();

    /** The work of one line i, with a transform object held by this thread for the task. */
    private interface LineWork {
        void run(Transforms t, int i);
    }

    /** Runs work for lines 0..r−1 in parallel; each line writes only its own part of the output. */
    private static void perLine(int r, int d, boolean dft, LineWork work) {
        long key = (long) d << 1 | (dft ? 1 : 0);
        Parallel.inChunks(r, LINES_PER_TASK, (from, to) -> {
            Queue<Transforms> queue = POOL.computeIfAbsent(key, k -> new ConcurrentLinkedQueue<>());
            Transforms t = queue.poll();
            if (t == null) {
                t = new Transforms(d, dft);
            }
            try {
                for (int i = from; i < to; i++) {
                    work.run(t, i);
                }
            } finally {
                queue.offer(t);
            }
        });
    }

    /** The transforms of one length, with their work arrays (one instance per thread). */
    private static final class Transforms {
        private final int d;
        private final RealFft fft;
        /** In double: JTransforms' float DCT reaches 8e-6 relative error at odd lengths such as 101. */
        private final DoubleDCT_1D dct;
        private final double[] work;
        private final float[] re;
        private final float[] im;
        private final float norm;
        /** One row or column being transformed. */
        final float[] line;

        Transforms(int d, boolean dft) {
            this.line = new float[d];
            this.d = d;
            this.fft = dft ? new RealFft(d) : null;
            this.dct = dft || d == 1 ? null : new DoubleDCT_1D(d);
            this.work = new double[d];
            this.re = new float[d / 2 + 1];
            this.im = new float[d / 2 + 1];
            this.norm = (float) (1 / Math.sqrt(d));
        }

        /**
         * The full unitary DFT of the real signal v[off, off + d) (conjugated if asked): element k's real part
         * at dst[reAt + k·step], its imaginary part at dst[imAt + k·imStep].
         */
        void unitaryDft(float[] v, int off, float[] dst, int reAt, int step, int imAt, int imStep,
                        boolean conjugate) {
            float[] re = this.re;
            float[] im = this.im;
            fft.forward(v, off, re, im);
            float scale = norm;
            float imScale = conjugate ? -norm : norm;
            int half = d / 2;
            for (int k = 0; k <= half; k++) {
                dst[reAt + k * step] = scale * re[k];
                dst[imAt + k * imStep] = imScale * im[k];
            }
            for (int k = half + 1; k < d; k++) { // X[k] = conj(X[d−k]) for a real signal
                dst[reAt + k * step] = scale * re[d - k];
                dst[imAt + k * imStep] = -imScale * im[d - k];
            }
        }

        /** Bins 0..⌊d/2⌋ of the (unnormalized) DFT of v[off, off + d) into re and im from at. */
        void halfDft(float[] v, int off, float[] re, float[] im, int at) {
            fft.forward(v, off, this.re, this.im);
            System.arraycopy(this.re, 0, re, at, d / 2 + 1);
            System.arraycopy(this.im, 0, im, at, d / 2 + 1);
        }

        /**
         * out = Re(Σ_k c_k·e^{+2πi·jk/d})/√d with c_k = src[reAt + k·step] + i·imSign·src[imAt + k·step]: the
         * real part of an unnormalized inverse of a full (not Hermitian) spectrum, taken as the inverse of its
         * Hermitian part H_k = (c_k + conj(c_{d−k}))/2 by a real transform.
         */
        void adjointDft(float[] src, int reAt, int step, int imAt, int imStep, float imSign, float[] out) {
            float[] re = this.re;
            float[] im = this.im;
            float half = 0.5f * norm;
            for (int k = 0; k <= d / 2; k++) {
                int m = k == 0 ? 0 : d - k; // (d − k) mod d, without a division in the loop
                re[k] = half * (src[reAt + k * step] + src[reAt + m * step]);
                im[k] = half * imSign * (src[imAt + k * imStep] - src[imAt + m * imStep]);
            }
            fft.inverse(re, im, out);
        }

        /**
         * out = Σ_{k&lt;h} w_k·(c_k·cos(2πjk/d) − imSign·s_k·sin(2πjk/d))/√d with c_k = src[reAt + k], s_k =
         * src[imAt + k], w_k = 1 at k = 0 and k = d/2 and ½ between: the adjoint of the half-spectrum fold,
         * whose bins each stand for themselves and their mirror (the real inverse counts both).
         */
        void adjointHalf(float[] src, int reAt, int imAt, float imSign, float[] out) {
            for (int k = 0; k <= d / 2; k++) {
                float w = k == 0 || 2 * k == d ? norm : 0.5f * norm;
                re[k] = w * src[reAt + k];
                im[k] = w * imSign * src[imAt + k];
            }
            fft.inverse(re, im, out);
        }

        /** In place: the orthonormal DCT-II (the adjoint of the DCT-III of {@link #dctIII}). */
        void dctII(float[] v) {
            if (dct != null) {
                for (int i = 0; i < d; i++) {
                    work[i] = v[i];
                }
                dct.forward(work, true);
                for (int i = 0; i < d; i++) {
                    v[i] = (float) work[i];
                }
            }
        }

        /** In place: the orthonormal DCT-III (the inverse of the orthonormal DCT-II). */
        void dctIII(float[] v) {
            if (dct != null) {
                for (int i = 0; i < d; i++) {
                    work[i] = v[i];
                }
                dct.inverse(work, true);
                for (int i = 0; i < d; i++) {
                    v[i] = (float) work[i];
                }
            }
        }
    }
}
