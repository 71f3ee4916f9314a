package org.spectralpeft.cpu;

/**
 * Unnormalized real inverse DFTs of length n for a block of rows at once, for n whose factors are 2 and 3
 * (768, 1536, 3072, 4096, ...): x[q] = Σ_k X[k]·e^{+2πi·qk/n} over the Hermitian extension of bins 0..n/2.
 * <p>
 * The spectrum is held transposed, one array per bin indexed by row ({@code re[k][r]}), so that a caller
 * fills it with plain loops over the rows (loops C2 vectorizes). The passes work on planes with bin k of row
 * r at k·rows + r: every butterfly's inner loop runs over contiguous floats of all rows (and, after the first
 * pass, of several butterflies), with one twiddle per loop, where JTransforms transforms one row at a time
 * and, for lengths such as 768 = 3·2⁸, through its mixed-radix path. For even n the real inverse is a complex
 * inverse of length n/2 (z[m] = x[2m] + i·x[2m+1]) after the standard pre-processing; odd n take a complex
 * inverse of length n, both a {@link BatchedComplexFft}. The planes' rows are padded to a multiple of the
 * vector length where the passes run on the Vector API ({@link BatchedPasses}); the padding lanes hold zeros
 * and are never written out.
 * <p>
 * Holds scratch planes: one instance per thread.
 */
public final class BatchedRealFft {
    private final int n;
    private final int maxRows;
    private final BatchedPasses passes;
    /** Length of the complex transform: n/2 for even n, else n. */
    private final int len;
    /** The complex inverse of length len, whose input planes the pre-processing fills. */
    private final BatchedComplexFft complex;
    /** Pre-processing twiddles e^{+2πi·k/n}, k &lt; n/2 (even n only). */
    private final float[] preRe;
    private final float[] preIm;
    private final float[][] specRe;
    private final float[][] specIm;

    /**
     * Whether {@code n} is a length this transform takes: at least 2, with no prime factor but 2 and 3.
     *
     * @param n a length
     * @return whether {@link #BatchedRealFft(int, int)} accepts it
     */
    public static boolean supports(int n) {
        return n >= 2 && BatchedComplexFft.supports(n);
    }

    /**
     * Whether the passes run on the Vector API in this JVM ({@link BatchedPasses#fastest}).
     *
     * @return true where {@code jdk.incubator.vector} is loaded and not turned off
     */
    public static boolean vectorized() {
        return BatchedPasses.fastest().lanes() > 1;
    }

    /**
     * A transform of length n for blocks of up to {@code maxRows} rows.
     *
     * @param n the length, {@link #supports supported}
     * @param maxRows the most rows of one block, at least 1
     */
    public BatchedRealFft(int n, int maxRows) {
        this(n, maxRows, BatchedPasses.fastest());
    }

    /** As {@link #BatchedRealFft(int, int)} with the given loops (tests compare both). */
    BatchedRealFft(int n, int maxRows, BatchedPasses passes) {
        if (!supports(n) || maxRows < 1) {
            throw new IllegalArgumentException("unsupported length " + n + " or rows " + maxRows);
        }
        this.n = n;
        this.maxRows = maxRows;
        this.passes = passes;
        this.len = n % 2 == 0 ? n / 2 : n;
        complex = new BatchedComplexFft(len, maxRows, passes);
        if (n % 2 == 0) {
            preRe = new float[len];
            preIm = new float[len];
            for (int k = 0; k < len; k++) {
                double angle = 2 * Math.PI * k / n;
                preRe[k] = (float) Math.cos(angle);
                preIm[k] = (float) Math.sin(angle);
            }
        } else {
            preRe = null;
            preIm = null;
        }
        specRe = new float[bins()][maxRows];
        specIm = new float[bins()][maxRows];
    }

    /** Floats per bin in the planes: rows rounded up to the passes' vector length. */
    private int width(int rows) {
        return complex.width(rows);
    }

    public int length() {
        return n;
    }

    public int bins() {
        return n / 2 + 1;
    }

    public int maxRows() {
        return maxRows;
    }

    /**
     * The real parts of the spectrum to transform: bin k of row r at [k][r], r below the {@code rows} given
     * to {@link #inverse}. {@link #inverse} leaves them as they are.
     */
    public float[][] spectrumRe() {
        return specRe;
    }

    /** The imaginary parts, laid out as {@link #spectrumRe}; those of bin 0 (and n/2 for even n) are ignored. */
    public float[][] spectrumIm() {
        return specIm;
    }

    /**
     * Adds (a + ib)·(c[r] + i·s[r]) to bin k of rows r &lt; rows (or, with {@code overwrite}, stores it): one
     * entry of a spectrum synthesized directly, over the block's rows, on the same loops as the passes.
     *
     * @param bin the bin k
     * @param a real part of the entry's factor
     * @param b imaginary part
     * @param c real parts of the per-row factors, at least rows long
     * @param s imaginary parts
     * @param rows the rows of the block
     * @param overwrite store instead of add
     */
    public void addRotated(int bin, float a, float b, float[] c, float[] s, int rows, boolean overwrite) {
        passes.rotate(specRe[bin], specIm[bin], a, b, c, s, rows, overwrite);
    }

    /** Zeroes the spectrum of a block of {@code rows} rows. */
    public void clear(int rows) {
        for (int k = 0; k < specRe.length; k++) {
            java.util.Arrays.fill(specRe[k], 0, rows, 0f);
            java.util.Arrays.fill(specIm[k], 0, rows, 0f);
        }
    }

    /**
     * out[off + r·stride + q] = x_r[q], the inverse DFT of row r's spectrum, for r &lt; rows and q &lt; n.
     *
     * @param rows the rows of the block, 1 to {@link #maxRows}
     * @param out the destination
     * @param off where row 0 starts in out
     * @param stride distance between rows in out, at least n
     */
    public void inverse(int rows, float[] out, int off, int stride) {
        transform(rows);
        writeRows(rows, width(rows), complex.resultRe(), complex.resultIm(), out, off, stride);
    }

    /**
     * The forward transform, the other way round: bins 0..n/2 of X_r[k] = Σ_q in[off + r·stride + q]·e^{-2πi·qk/n}
     * into {@link #spectrumRe} and {@link #spectrumIm} (bin k of row r at [k][r]; the imaginary parts of bin 0
     * and, for even n, n/2 are 0), for r &lt; rows. The complex passes run on the conjugate (the forward DFT of z
     * is the conjugate of the inverse DFT of conj z), so both directions share them.
     *
     * @param rows the rows of the block, 1 to {@link #maxRows}
     * @param in the signals
     * @param off where row 0 starts in in
     * @param stride distance between rows in in, at least n
     */
    public void forward(int rows, float[] in, int off, int stride) {
        conjugateInverse(rows, in, off, stride);
        int width = width(rows);
        float[] cr = complex.resultRe();
        float[] ci = complex.resultIm();
        if (n % 2 != 0) {
            for (int k = 0; k <= n / 2; k++) {
                for (int r = 0; r < rows; r++) {
                    specRe[k][r] = cr[k * width + r];
                    specIm[k][r] = k == 0 ? 0f : -ci[k * width + r];
                }
            }
            return;
        }
        for (int r = 0; r < rows; r++) { // Z[0] = c[0]* pairs with itself: X[0] = Re + Im of Z[0], X[h] = Re - Im
            specRe[0][r] = cr[r] - ci[r];
            specIm[0][r] = 0f;
            specRe[len][r] = cr[r] + ci[r];
            specIm[len][r] = 0f;
        }
        passes.finishForwardEven(cr, ci, len, rows, width, preRe, preIm, specRe, specIm);
    }

    /**
     * {@link #forward}, written into one flat array as whole Hermitian spectra (every bin, those past n/2 the
     * conjugates of those below): row r's bin k, 0 ≤ k &lt; n, at out[reOff + k·binStride + r] (real part times
     * scale) and out[imOff + k·binStride + r] (imaginary part times imScale). For even n the last pass writes
     * there directly, so a caller that wants this layout saves a pass over the spectrum. {@link #spectrumRe} and
     * {@link #spectrumIm} hold no defined values afterwards.
     *
     * @param rows the rows of the block, 1 to {@link #maxRows}
     * @param in the signals
     * @param off where row 0 starts in in
     * @param stride distance between rows in in, at least n
     * @param out the destination
     * @param reOff where bin 0's real parts start in out
     * @param imOff where bin 0's imaginary parts start in out
     * @param binStride distance between bins in out, at least rows (where the real and imaginary parts interleave
     *        by bin, at least 2·rows)
     * @param scale factor on the real parts
     * @param imScale factor on the imaginary parts (negative: the conjugate spectra)
     */
    public void forwardInto(int rows, float[] in, int off, int stride, float[] out, int reOff, int imOff,
                            int binStride, float scale, float imScale) {
        if (n % 2 != 0) {
            forward(rows, in, off, stride);
            for (int k = 0; k <= n / 2; k++) {
                for (int r = 0; r < rows; r++) {
                    float re = scale * specRe[k][r];
                    float im = imScale * specIm[k][r];
                    out[reOff + k * binStride + r] = re;
                    out[imOff + k * binStride + r] = im;
                    if (k > 0) {
                        out[reOff + (n - k) * binStride + r] = re;
                        out[imOff + (n - k) * binStride + r] = -im;
                    }
                }
            }
            return;
        }
        conjugateInverse(rows, in, off, stride);
        int width = width(rows);
        float[] cr = complex.resultRe();
        float[] ci = complex.resultIm();
        int last = len * binStride;
        for (int r = 0; r < rows; r++) { // bins 0 and n/2, as in forward
            out[reOff + r] = scale * (cr[r] - ci[r]);
            out[imOff + r] = 0f;
            out[reOff + last + r] = scale * (cr[r] + ci[r]);
            out[imOff + last + r] = 0f;
        }
        passes.finishForwardEvenInto(cr, ci, len, rows, width, preRe, preIm, out, reOff, imOff, binStride,
                0.5f * scale, 0.5f * imScale);
    }

    /** The complex inverse of conj z for a block of rows of in (z[m] = x[2m] + i·x[2m+1] for even n, else x). */
    private void conjugateInverse(int rows, float[] in, int off, int stride) {
        if (rows < 1 || rows > maxRows) {
            throw new IllegalArgumentException("rows " + rows);
        }
        int width = width(rows);
        float[] zr = complex.inputRe();
        float[] zi = complex.inputIm();
        boolean even = n % 2 == 0;
        int step = even ? 2 : 1;
        for (int r0 = 0; r0 < rows; r0 += TILE_ROWS) { // tiles as writeRows'
            int r1 = Math.min(rows, r0 + TILE_ROWS);
            for (int m0 = 0; m0 < len; m0 += TILE_LINE / step) {
                int m1 = Math.min(len, m0 + TILE_LINE / step);
                for (int r = r0; r < r1; r++) {
                    int o = off + r * stride + step * m0;
                    for (int m = m0, i = m0 * width + r; m < m1; m++, i += width, o += step) {
                        zr[i] = in[o];
                        zi[i] = even ? -in[o + 1] : 0f;
                    }
                }
            }
        }
        complex.inverse(rows);
    }

    /** Receives one output index of all rows of a block: {@code values[from + r]} is x_r[q], r &lt; rows. */
    @FunctionalInterface
    public interface Column {
        /**
         * One output index of the block.
         *
         * @param q the index, below {@link #length}
         * @param values holds x_r[q] at from + r
         * @param from where row 0's value is
         */
        void accept(int q, float[] values, int from);
    }

    /**
     * The same transform as {@link #inverse}, handed out by output index instead of by row: {@code column}
     * receives q = 0 … n-1 in order, each as the rows' contiguous values (no transposed write). For a caller
     * whose rows are the columns of its result, each call is a contiguous stretch of one result row.
     *
     * @param rows the rows of the block, 1 to {@link #maxRows}
     * @param column receives each output index; its array must not be kept past the call
     */
    public void inverseByColumn(int rows, Column column) {
        transform(rows);
        int width = width(rows);
        float[] xr = complex.resultRe();
        float[] xi = complex.resultIm();
        if (n % 2 == 0) {
            for (int m = 0; m < len; m++) {
                column.accept(2 * m, xr, m * width);
                column.accept(2 * m + 1, xi, m * width);
            }
        } else {
            for (int q = 0; q < n; q++) {
                column.accept(q, xr, q * width);
            }
        }
    }

    /** Pre-processes the block's spectrum into the complex transform's input and runs it. */
    private void transform(int rows) {
        if (rows < 1 || rows > maxRows) {
            throw new IllegalArgumentException("rows " + rows);
        }
        int width = width(rows);
        if (n % 2 == 0) {
            prepareEven(rows, width);
        } else {
            prepareOdd(rows, width);
        }
        complex.inverse(rows);
    }

    /** Rows per tile of the transposes between planes and rows: a cache line of each plane per index. */
    private static final int TILE_ROWS = 16;
    /**
     * Floats of a row per tile: a cache line, written (or read) whole before the next row's. Rows a power of two
     * apart share cache sets (4096 floats: every row in one set), so a tile that touched each row a float pair at
     * a time, index by index, evicted its own lines (4096-point forward: the transposes were 30 % of the time).
     */
    private static final int TILE_LINE = 16;

    /**
     * The planes back to row-major rows (x[2m] = re, x[2m+1] = im of the half-length result for even n; the
     * real parts for odd n), in tiles of {@link #TILE_ROWS} rows by {@link #TILE_LINE} floats.
     */
    private void writeRows(int rows, int width, float[] xr, float[] xi, float[] out, int off, int stride) {
        boolean even = n % 2 == 0;
        int step = even ? 2 : 1;
        for (int r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            int r1 = Math.min(rows, r0 + TILE_ROWS);
            for (int m0 = 0; m0 < len; m0 += TILE_LINE / step) {
                int m1 = Math.min(len, m0 + TILE_LINE / step);
                for (int r = r0; r < r1; r++) {
                    int o = off + r * stride + step * m0;
                    if (even) {
                        for (int m = m0, i = m0 * width + r; m < m1; m++, i += width, o += 2) {
                            out[o] = xr[i];
                            out[o + 1] = xi[i];
                        }
                    } else {
                        for (int m = m0, i = m0 * width + r; m < m1; m++, i += width, o++) {
                            out[o] = xr[i];
                        }
                    }
                }
            }
        }
    }

    /**
     * Z[k] = (X[k] + conj X[h-k]) + i·e^{2πik/n}·(X[k] - conj X[h-k]), h = n/2, into the work planes: the
     * length-h complex inverse of Z is x[2m] + i·x[2m+1].
     */
    private void prepareEven(int rows, int width) {
        int h = len;
        float[] zr = complex.inputRe();
        float[] zi = complex.inputIm();
        // k = 0 pairs bin 0 with bin h, both real.
        float[] dc = specRe[0];
        float[] nyquist = specRe[h];
        for (int r = 0; r < rows; r++) {
            zr[r] = dc[r] + nyquist[r];
            zi[r] = dc[r] - nyquist[r];
        }
        passes.prepareEven(specRe, specIm, h, rows, width, preRe, preIm, zr, zi);
    }

    /** The full Hermitian spectrum of odd n into the work planes. */
    private void prepareOdd(int rows, int width) {
        int half = n / 2;
        float[] workRe = complex.inputRe();
        float[] workIm = complex.inputIm();
        for (int r = 0; r < rows; r++) {
            workRe[r] = specRe[0][r];
            workIm[r] = 0f;
        }
        for (int k = 1; k <= half; k++) {
            int a = k * width;
            int b = (n - k) * width;
            for (int r = 0; r < rows; r++) {
                workRe[a + r] = specRe[k][r];
                workIm[a + r] = specIm[k][r];
                workRe[b + r] = specRe[k][r];
                workIm[b + r] = -specIm[k][r];
            }
        }
    }
}
