package org.spectralpeft.fourierft.cpu;

import java.util.function.IntFunction;
import java.util.stream.IntStream;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.TokenRows;
import org.spectralpeft.core.WriteMode;
import org.spectralpeft.cpu.BatchedComplexFft;
import org.spectralpeft.cpu.BatchedRealFft;
import org.spectralpeft.cpu.ComplexFft;
import org.spectralpeft.cpu.FftPool;
import org.spectralpeft.cpu.Parallel;
import org.spectralpeft.cpu.RealFft;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.SpectralGrouping;
import org.spectralpeft.fourierft.SpectrumColumns;
import org.spectralpeft.fourierft.ValidatingBackend;

/**
 * The pure-Java backend: the same half-spectrum algorithms as the CUDA kernels (sparse columns of ΔW's
 * half spectrum transformed directly, the rest by FFT), with JTransforms for the FFTs and the common
 * fork-join pool for threads. Work is split into fixed chunks, independent of the
 * number of threads, and reductions run in chunk order, so results are deterministic.
 */
public final class CpuFourierFT extends ValidatingBackend {
    /** Tokens per task in the backward pass (also the reduction order of ∂L/∂c). */
    private static final int TOKEN_CHUNK = 32;
    /** Tokens per task in the forward pass, which has no reduction: small, so a few tokens use every core. */
    private static final int FORWARD_CHUNK = 4;
    /** Rows or columns per task in the 2-D transforms (and coefficients per task in ∂L/∂c). */
    private static final int LINE_CHUNK = 16;
    /** Rows per task of the block passes of materialize and ∂L/∂c (whole blocks of {@link #rowBlock} rows). */
    private static final int TASK_ROWS = 64;

    /** Twiddle tables per transform length (model shapes bring few distinct lengths). */
    private final java.util.Map<Integer, float[]> twiddleCache = new java.util.concurrent.ConcurrentHashMap<>();
    private final FftPool ffts = new FftPool();
    /** {@link #stepTwiddles} per d_out and block rows. */
    private final java.util.Map<Long, float[][][]> stepCache = new java.util.concurrent.ConcurrentHashMap<>();

    @Override
    public String description() {
        return "cpu (" + Runtime.getRuntime().availableProcessors() + " threads, JTransforms, "
                + (BatchedRealFft.vectorized() ? "vector loops" : "scalar loops") + ")";
    }

    @Override
    public void close() {
        markClosed();
    }

    @Override
    protected void runMaterialize(FourierFTSpec spec, float[] coeffs, int layers, HostArray out) {
        int size = spec.dOut() * spec.dIn();
        for (int layer = 0; layer < layers; layer++) {
            inverse2d(spec, coeffs, layer * spec.n(), out, layer * size, WriteMode.STORE);
        }
    }

    @Override
    protected void runMerge(FourierFTSpec spec, float[] coeffs, HostArray weight, boolean subtract) {
        inverse2d(spec, coeffs, 0, weight, 0, subtract ? WriteMode.SUBTRACT : WriteMode.ADD);
    }

    /**
     * ΔW = C2R-2D of the Hermitian half spectrum G: G = inverse transform down each occupied column
     * v ≤ d_in/2, then ΔW = a real inverse transform of each row of G; rows land in dst per mode.
     * Columns with many entries are transformed by FFT up front and kept whole; the others are synthesized
     * directly from their entries ({@link #synthesizeColumn}) a block of rows at a time, straight into the
     * rows' packed layout. G is never held whole or transposed: a block is filled, transformed in place
     * and written while it is still in cache.
     */
    private void inverse2d(FourierFTSpec layer, float[] coeffs, int coeffOffset, HostArray dst, int dstOffset,
                           WriteMode mode) {
        // Where the columns of ΔW have a batched length, ΔWᵀ is computed by rows instead: its blocks of rows
        // are blocks of ΔW's columns, and the batched transform hands them out as stretches of ΔW's rows.
        boolean byColumns = useBatched(layer.dOut());
        FourierFTSpec spec = byColumns ? layer.transposed() : layer;
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        int h = spec.halfIn();
        SpectrumColumns cols = spec.halfSpectrumColumns();
        float[] twiddle = twiddles(dOut);
        int directLimit = directColumnEntries(dOut);
        boolean batched = byColumns || useBatched(dIn);
        // The row transform's gain (RealFft.inverseGain) is folded into the spectrum's scale, in float64 so
        // that each amplitude is rounded once (a float scale would bias all of ΔW by up to 6e-8).
        double gain = 1;
        if (!batched) {
            RealFft probe = ffts.takeReal(dIn);
            gain = probe.inverseGain();
            ffts.give(probe);
        }
        double scale = 0.5 * scale(spec) * gain;
        float[][] transformed = transformDenseColumns(cols, h, dOut, directLimit, coeffs, coeffOffset, scale);
        try {
            inverse2d(cols, h, dOut, dIn, transformed, batched, byColumns, coeffs, coeffOffset, scale, twiddle, dst,
                    dstOffset, mode);
        } finally {
            int dense = (int) java.util.Arrays.stream(transformed).filter(java.util.Objects::nonNull).count();
            if (poolsColumns(dense, dOut)) {
                for (float[] column : transformed) {
                    if (column != null) {
                        ffts.give(column);
                    }
                }
            }
        }
    }

    /** Floats of dense columns up to which their arrays are kept in the pool between calls (16 MB). */
    private static final long POOLED_COLUMN_FLOATS = 4L << 20;

    /**
     * Whether the arrays of {@code dense} transformed columns come from (and go back to) the scratch pool: their
     * allocation and zeroing was a sixth of 768² with n = 10000; above {@link #POOLED_COLUMN_FLOATS} they are
     * allocated per call, so that the pool does not keep a ΔW's worth of memory.
     */
    private static boolean poolsColumns(int dense, int dOut) {
        return (long) dense * 2 * dOut <= POOLED_COLUMN_FLOATS;
    }

    /** An array for one transformed column, of arbitrary contents. */
    private static float[] columnArray(FftPool pool, int dOut, boolean pooled) {
        return pooled ? pool.takeScratch(2 * dOut) : new float[2 * dOut];
    }

    /** {@link #inverse2d} once the dense columns are transformed. */
    private void inverse2d(SpectrumColumns cols, int h, int dOut, int dIn, float[][] transformed, boolean batched,
                           boolean byColumns, float[] coeffs, int coeffOffset, double scale, float[] twiddle,
                           HostArray dst, int dstOffset, WriteMode mode) {
        int entries = cols.start(h);
        float[] amplitude = new float[entries];
        for (int e = 0; e < entries; e++) {
            amplitude[e] = (float) (scale * coeffs[coeffOffset + cols.coefficient(e)]);
        }
        int blockRows = rowBlock(dIn);
        int taskRows = taskRows(blockRows);
        if (batched) {
            inverse2dBatched(cols, h, dOut, dIn, transformed, amplitude, twiddle, blockRows, taskRows, dst,
                    dstOffset, mode, byColumns);
            return;
        }
        Parallel.inChunks(dOut, taskRows, (from, to) -> {
            RealFft fft = ffts.takeReal(dIn);
            float[] block = ffts.takeScratch(blockRows * dIn);
            int[] phase = firstPhases(cols, h, transformed, from, dOut);
            try {
                for (int first = from; first < to; first += blockRows) {
                    int rows = Math.min(blockRows, to - first);
                    java.util.Arrays.fill(block, 0, rows * dIn, 0f);
                    for (int v = 0; v < h; v++) {
                        int e0 = cols.start(v);
                        int e1 = cols.start(v + 1);
                        if (e0 == e1) {
                            continue;
                        }
                        int re = fft.realSlot(v);
                        int im = fft.imagSlot(v);
                        float[] col = transformed[v];
                        if (col == null) {
                            synthesizeColumn(cols, e0, e1, amplitude, phase, twiddle, dOut, rows, block, dIn, re, im);
                            continue;
                        }
                        for (int r = 0; r < rows; r++) {
                            block[r * dIn + re] = col[first + r];
                            if (im >= 0) {
                                block[r * dIn + im] = col[dOut + first + r];
                            }
                        }
                    }
                    for (int r = 0; r < rows; r++) {
                        fft.inverseInPlace(block, r * dIn);
                        dst.write(dstOffset + (first + r) * dIn, block, r * dIn, dIn, mode);
                    }
                }
            } finally {
                ffts.give(block);
                ffts.give(fft);
            }
        });
    }

    /**
     * Whether transforms of length d take {@link BatchedRealFft} rather than JTransforms one line at a time:
     * lengths of factors 2 and 3 that are not powers of two (768, 1536, 3072, ...), where JTransforms takes its
     * mixed-radix path, and, where the batched passes run on the Vector API, powers of two as well (4096²:
     * 47–52 against 65–98 ms, measured side by side; with scalar passes JTransforms' split radix is faster).
     */
    static boolean useBatched(int d) {
        return BatchedRealFft.supports(d) && (Integer.bitCount(d) != 1 || BatchedRealFft.vectorized());
    }

    /**
     * {@link #inverse2d}'s block pass through {@link BatchedRealFft}: the spectrum of a block is filled
     * transposed (one array per bin, indexed by row), so a direct column is a loop over rows, and all rows
     * are transformed at once. Then either the rows go to {@code block}, row-major, and are written out, or
     * ({@code byColumns}: these rows are ΔW's columns) each output index of the block is written straight
     * into its row of ΔW, a contiguous stretch.
     */
    private void inverse2dBatched(SpectrumColumns cols, int h, int dOut, int dIn, float[][] transformed,
                                  float[] amplitude, float[] twiddle, int blockRows, int taskRows, HostArray dst,
                                  int dstOffset, WriteMode mode, boolean byColumns) {
        float[][][] steps = stepTwiddles(dOut, blockRows, twiddle);
        Parallel.inChunks(dOut, taskRows, (from, to) -> {
            BatchedRealFft fft = ffts.takeBatched(dIn, blockRows);
            float[] block = byColumns ? null : ffts.takeScratch(blockRows * dIn);
            int[] phase = firstPhases(cols, h, transformed, from, dOut);
            try {
                float[][] re = fft.spectrumRe();
                float[][] im = fft.spectrumIm();
                for (int first = from; first < to; first += blockRows) {
                    int rows = Math.min(blockRows, to - first);
                    for (int v = 0; v < h; v++) { // every bin (h = d_in/2 + 1) is written: no clearing pass
                        int e0 = cols.start(v);
                        int e1 = cols.start(v + 1);
                        if (e0 == e1) {
                            java.util.Arrays.fill(re[v], 0, rows, 0f);
                            java.util.Arrays.fill(im[v], 0, rows, 0f);
                            continue;
                        }
                        float[] col = transformed[v];
                        if (col == null) {
                            synthesizeColumn(cols, e0, e1, amplitude, phase, twiddle, steps, dOut, rows, fft, v);
                            continue;
                        }
                        System.arraycopy(col, first, re[v], 0, rows);
                        System.arraycopy(col, dOut + first, im[v], 0, rows);
                    }
                    if (byColumns) {
                        int at = dstOffset + first;
                        fft.inverseByColumn(rows, (q, values, start) ->
                                dst.write(at + q * dOut, values, start, rows, mode));
                        continue;
                    }
                    fft.inverse(rows, block, 0, dIn);
                    for (int r = 0; r < rows; r++) {
                        dst.write(dstOffset + (first + r) * dIn, block, r * dIn, dIn, mode);
                    }
                }
            } finally {
                if (block != null) {
                    ffts.give(block);
                }
                ffts.give(fft);
            }
        });
    }

    /**
     * Each direct entry's twiddle index p·row mod d_out at row p = {@code from}, carried from block to block by
     * the synthesis; 0 for the entries of columns transformed by FFT, which never read theirs.
     */
    private static int[] firstPhases(SpectrumColumns cols, int h, float[][] transformed, int from, int dOut) {
        int[] phase = new int[cols.start(h)];
        for (int v = 0; v < h; v++) {
            if (transformed[v] == null) {
                for (int e = cols.start(v); e < cols.start(v + 1); e++) {
                    phase[e] = (int) ((long) from * cols.row(e) % dOut);
                }
            }
        }
        return phase;
    }

    /**
     * {@link #synthesizeColumn} into bin {@code bin} of a block of the batched transform (the first entry
     * overwrites it), entry by entry: entry e adds a_e·e^{2πi·(p₀ + r)·row_e/d_out} =
     * (a_e·e^{2πi·p₀·row_e/d_out})·e^{2πi·r·row_e/d_out}, its value at the block's first row p₀ times the
     * {@link #stepTwiddles} of its row, so the loop over the rows is a complex multiply-add over arrays
     * ({@link BatchedRealFft#addRotated}, on the Vector API where it runs) instead of a table lookup per row.
     */
    private static void synthesizeColumn(SpectrumColumns cols, int e0, int e1, float[] amplitude, int[] phase,
                                         float[] twiddle, float[][][] steps, int dOut, int rows,
                                         BatchedRealFft fft, int bin) {
        for (int e = e0; e < e1; e++) {
            int step = cols.row(e);
            int m = phase[e];
            float a = amplitude[e] * twiddle[2 * m];
            float b = amplitude[e] * twiddle[2 * m + 1];
            fft.addRotated(bin, a, b, steps[0][step], steps[1][step], rows, e == e0);
            phase[e] = (int) ((m + (long) rows * step) % dOut);
        }
    }

    /** [0][p][r], [1][p][r]: cos and sin of 2π·r·p/d_out for r below {@code rows}, from the exact table; cached. */
    private float[][][] stepTwiddles(int dOut, int rows, float[] twiddle) {
        return stepCache.computeIfAbsent(((long) dOut << 16) | rows, key -> {
            float[][][] t = new float[2][dOut][rows];
            for (int p = 0; p < dOut; p++) {
                for (int r = 0; r < rows; r++) {
                    int m = (int) ((long) r * p % dOut);
                    t[0][p][r] = twiddle[2 * m];
                    t[1][p][r] = twiddle[2 * m + 1];
                }
            }
            return t;
        });
    }

    /** Rows per block of {@link #inverse2d}: about 256 KB of rows, so a block stays in a core's L2. */
    static int rowBlock(int dIn) {
        return Math.max(1, Math.min(64, (64 << 10) / dIn));
    }

    /** Rows per task of the block passes: whole blocks, about {@link #TASK_ROWS}. */
    private static int taskRows(int blockRows) {
        return blockRows * Math.max(1, TASK_ROWS / blockRows);
    }

    /**
     * The columns with more than {@code directLimit} entries, each inverse-transformed by FFT (times
     * {@code scale}; d_out real parts, then d_out imaginary parts, so that a block's rows of a column are two
     * contiguous stretches); null for the others. Where d_out is a batched length and the
     * vector loops run, blocks of columns go through one {@link BatchedComplexFft} (768² with n = 10000, every
     * column dense: 0.5 against 1.3 ms for the same columns one at a time in float64), else each column
     * through JTransforms.
     */
    private float[][] transformDenseColumns(SpectrumColumns cols, int h, int dOut, int directLimit, float[] coeffs,
                                            int coeffOffset, double scale) {
        float[][] columns = new float[h][];
        int[] dense = IntStream.range(0, h).filter(v -> cols.start(v + 1) - cols.start(v) > directLimit).toArray();
        boolean pooled = poolsColumns(dense.length, dOut);
        if (useBatchedColumns(dOut)) {
            int block = columnBlock(dOut);
            Parallel.inChunks(dense.length, block, (from, to) -> {
                BatchedComplexFft fft = ffts.takeBatchedComplex(dOut, block);
                try {
                    batchedColumns(cols, dense, from, to, coeffs, coeffOffset, scale, fft, columns, ffts, pooled);
                } finally {
                    ffts.give(fft);
                }
            });
            return columns;
        }
        Parallel.inChunks(dense.length, LINE_CHUNK, (from, to) -> {
            ComplexFft fft = ffts.takeComplex(dOut);
            float[] col = new float[2 * dOut]; // interleaved, as JTransforms takes it
            try {
                for (int i = from; i < to; i++) {
                    int v = dense[i];
                    java.util.Arrays.fill(col, 0f);
                    columnAmplitudes(cols, v, coeffs, coeffOffset, scale, col, 0, 2);
                    fft.inverse(col);
                    columns[v] = split(col, columnArray(ffts, dOut, pooled));
                }
            } finally {
                ffts.give(fft);
            }
        });
        return columns;
    }

    /**
     * Column v's entries summed per row of the spectrum (a bin's entries are adjacent) in float64, times
     * {@code scale}, rounded once, into dst[base + row·stride]; the rows without entries are left as they are.
     */
    private static void columnAmplitudes(SpectrumColumns cols, int v, float[] coeffs, int coeffOffset, double scale,
                                         float[] dst, int base, int stride) {
        int end = cols.start(v + 1);
        for (int e = cols.start(v); e < end; ) {
            int row = cols.row(e);
            double sum = 0;
            for (; e < end && cols.row(e) == row; e++) {
                sum += coeffs[coeffOffset + cols.coefficient(e)];
            }
            dst[base + row * stride] = (float) (scale * sum);
        }
    }

    /** Whether dense columns of length d_out take {@link BatchedComplexFft} (only on the vector loops). */
    static boolean useBatchedColumns(int dOut) {
        return BatchedComplexFft.supports(dOut) && BatchedRealFft.vectorized();
    }

    /** Columns per block of the batched column transform: its four planes about 256 KB, at least 8 columns. */
    private static int columnBlock(int dOut) {
        return Math.max(8, Math.min(64, (16 << 10) / dOut));
    }

    /**
     * Dense columns dense[from..to) as the lanes of one batched inverse, each into its own array (real parts, then
     * imaginary parts).
     */
    private static void batchedColumns(SpectrumColumns cols, int[] dense, int from, int to, float[] coeffs,
                                       int coeffOffset, double scale, BatchedComplexFft fft, float[][] columns,
                                       FftPool pool, boolean pooled) {
        int dOut = fft.length();
        int count = to - from;
        int width = fft.width(count);
        float[] re = fft.inputRe();
        float[] im = fft.inputIm();
        java.util.Arrays.fill(re, 0, dOut * width, 0f);
        java.util.Arrays.fill(im, 0, dOut * width, 0f);
        for (int lane = 0; lane < count; lane++) {
            columnAmplitudes(cols, dense[from + lane], coeffs, coeffOffset, scale, re, lane, width);
        }
        fft.inverse(count);
        float[] outRe = fft.resultRe();
        float[] outIm = fft.resultIm();
        float[][] out = new float[count][];
        for (int lane = 0; lane < count; lane++) {
            out[lane] = columnArray(pool, dOut, pooled); // every value is written below
            columns[dense[from + lane]] = out[lane];
        }
        for (int p0 = 0; p0 < dOut; p0 += 16) { // tiles of 16 indices: a cache line of each column at a time
            int p1 = Math.min(dOut, p0 + 16);
            for (int lane = 0; lane < count; lane++) {
                float[] col = out[lane];
                for (int p = p0, i = p0 * width + lane; p < p1; p++, i += width) {
                    col[p] = outRe[i];
                    col[dOut + p] = outIm[i];
                }
            }
        }
    }

    /** An interleaved complex column (re, im, re, ...) as its real parts followed by its imaginary parts, in out. */
    private static float[] split(float[] interleaved, float[] out) {
        int len = interleaved.length / 2;
        for (int p = 0; p < len; p++) {
            out[p] = interleaved[2 * p];
            out[len + p] = interleaved[2 * p + 1];
        }
        return out;
    }

    /**
     * Entries up to which a column is transformed directly (d_out complex multiply-adds per entry, against
     * about 5·d_out·log2(d_out) flops for an FFT of the column).
     */
    static int directColumnEntries(int dOut) {
        return Math.max(1, 32 - Integer.numberOfLeadingZeros(dOut)); // ≈ log2(d_out) + 1
    }

    /**
     * The next {@code rows} rows of one column of G, synthesized from its entries e0..e1-1:
     * G[p] = Σ_e amplitude_e · e^{2πi·p·row_e/d_out}, the inverse DFT of a column holding only those
     * entries, with exact integer phases (p·row mod d_out, carried in {@code phase}) into the twiddle
     * table. Row r goes to block[r·stride + re] and (unless im < 0) block[r·stride + im]; the entries are
     * summed in order, in registers.
     */
    private static void synthesizeColumn(SpectrumColumns cols, int e0, int e1, float[] amplitude, int[] phase,
                                         float[] twiddle, int dOut, int rows, float[] block, int stride,
                                         int re, int im) {
        for (int r = 0; r < rows; r++) {
            float sumRe = 0f;
            float sumIm = 0f;
            for (int e = e0; e < e1; e++) {
                int m = phase[e];
                sumRe += amplitude[e] * twiddle[2 * m];
                sumIm += amplitude[e] * twiddle[2 * m + 1];
                m += cols.row(e);
                phase[e] = m >= dOut ? m - dOut : m;
            }
            block[r * stride + re] = sumRe;
            if (im >= 0) {
                block[r * stride + im] = sumIm;
            }
        }
    }

    /** s = α/(d_out·d_in) in float64 ({@link FourierFTSpec#scale} is that rounded to float). */
    private static double scale(FourierFTSpec spec) {
        return spec.alpha() / ((double) spec.dOut() * spec.dIn());
    }

    /** e^{2πi m/n} for m in [0, n), interleaved (cos, sin), computed in float64 and cached per n. */
    private float[] twiddles(int n) {
        return twiddleCache.computeIfAbsent(n, len -> {
            float[] t = new float[2 * len];
            for (int m = 0; m < len; m++) {
                double angle = 2 * Math.PI * m / len;
                t[2 * m] = (float) Math.cos(angle);
                t[2 * m + 1] = (float) Math.sin(angle);
            }
            return t;
        });
    }

    @Override
    protected void runForward(FourierFTSpec spec, float[] coeffs, HostArray x, int tokens, HostArray y) {
        forwardTokens(spec.dOut(), spec.dIn(), tokens, t -> spec, t -> coeffs, x, y);
    }

    /** The mixed batch token by token: each token's own grouping and coefficients in the same transforms. */
    @Override
    protected void runForward(FourierFTSpec[] specs, float[][] coefficients, int dOut, int dIn, HostArray x,
                              HostArray y) {
        forwardTokens(dOut, dIn, specs.length, t -> specs[t], t -> coefficients[t], x, y);
    }

    /** y[t] += x[t]·ΔWᵀ with token t's spec and coefficients (a null spec: token skipped), in fixed chunks. */
    private void forwardTokens(int dOut, int dIn, int tokens, IntFunction<FourierFTSpec> specOf,
                               IntFunction<float[]> coeffsOf, HostArray x, HostArray y) {
        if (useBatchedForward(dOut, dIn, tokens)) {
            forwardBatched(dOut, dIn, tokens, specOf, coeffsOf, x, y);
            return;
        }
        Parallel.inChunks(tokens, FORWARD_CHUNK, (from, to) -> {
            RealFft inFft = ffts.takeReal(dIn);
            RealFft outFft = ffts.takeReal(dOut);
            float[] row = new float[dIn];
            try {
                float[] xr = new float[inFft.bins()];
                float[] xi = new float[inFft.bins()];
                float[] zr = new float[outFft.bins()];
                float[] zi = new float[outFft.bins()];
                float[] out = new float[dOut];
                for (int t = from; t < to; t++) {
                    FourierFTSpec spec = specOf.apply(t);
                    if (spec == null) {
                        continue;
                    }
                    x.read(t * dIn, row, dIn);
                    inFft.forward(row, 0, xr, xi);
                    scatter(spec.forwardGrouping(), coeffsOf.apply(t), 0.5 * scale(spec), xr, xi, zr, zi);
                    outFft.inverse(zr, zi, out);
                    y.write(t * dOut, out, dOut, WriteMode.ADD);
                }
            } finally {
                ffts.give(inFft);
                ffts.give(outFft);
            }
        });
    }

    /**
     * Whether a forward of this many tokens takes {@link #forwardBatched}: both lengths batched
     * ({@link #useBatched}) and at least {@link #BATCHED_FORWARD_TOKENS} tokens, below which a block's vector
     * lanes would stay mostly empty (per token, the result then differs from the batched route's in rounding).
     */
    static boolean useBatchedForward(int dOut, int dIn, int tokens) {
        return tokens >= BATCHED_FORWARD_TOKENS && useBatched(dIn) && useBatched(dOut);
    }

    /** Tokens from which the forward takes the batched transforms. */
    static final int BATCHED_FORWARD_TOKENS = 16;
    /** Most tokens per block of the batched forward: the planes of a 4096-point block about 1 MB. */
    private static final int FORWARD_BLOCK = 32;

    /**
     * Tokens per block: enough blocks for every core where there are tokens for it, 16 at least (a 512-bit vector
     * of lanes), {@link #FORWARD_BLOCK} at most. Each token's result is the same whatever its block.
     */
    private static int forwardBlock(int tokens) {
        int perCore = -Math.floorDiv(-tokens, Runtime.getRuntime().availableProcessors());
        return Math.min(FORWARD_BLOCK, Math.max(16, (perCore + 15) / 16 * 16));
    }

    /**
     * The forward a block of tokens at a time through {@link BatchedRealFft}: the block's rows of x transformed
     * at once, each output bin gathered over the block's tokens ({@link #gatherBlock}), the block's outputs
     * transformed back at once and added into y. Tokens are taken in order, grouped by index set, so a block's
     * tokens share one grouping (each lane scaled by its own token's α); each token's lane sees the same operations
     * whatever the block, so its result does not depend on the batch it came in.
     */
    private void forwardBatched(int dOut, int dIn, int tokens, IntFunction<FourierFTSpec> specOf,
                                IntFunction<float[]> coeffsOf, HostArray x, HostArray y) {
        int blockTokens = forwardBlock(tokens);
        java.util.List<int[]> blocks = blocksByIndexSet(tokens, specOf, blockTokens);
        Parallel.inChunks(blocks.size(), 1, (from, to) -> {
            BatchedRealFft inFft = ffts.takeBatched(dIn, blockTokens);
            BatchedRealFft outFft = ffts.takeBatched(dOut, blockTokens);
            float[] rows = ffts.takeScratch(blockTokens * Math.max(dIn, dOut));
            try {
                for (int b = from; b < to; b++) {
                    int[] block = blocks.get(b);
                    int count = block.length;
                    readRows(x, block, dIn, rows);
                    inFft.forward(count, rows, 0, dIn);
                    FourierFTSpec spec = specOf.apply(block[0]);
                    gatherBlock(spec.forwardGrouping(), block, coeffsOf, t -> 0.5 * scale(specOf.apply(t)), inFft,
                            outFft);
                    outFft.inverse(count, rows, 0, dOut);
                    addRows(rows, block, dOut, y);
                }
            } finally {
                ffts.give(rows);
                ffts.give(inFft);
                ffts.give(outFft);
            }
        });
    }

    /**
     * {@link #scatter} for a block of tokens, lane by lane: output bin o of token r is halfScale_r · Σ_e c_r·(X_re,
     * ±X_im)[b_e][r], summed in float64 in the grouping's order, the same operations per token as
     * {@link #scatter}.
     */
    private static void gatherBlock(SpectralGrouping g, int[] block, IntFunction<float[]> coeffsOf,
                                    java.util.function.IntToDoubleFunction halfScaleOf, BatchedRealFft in,
                                    BatchedRealFft out) {
        int count = block.length;
        float[][] coeffs = new float[count][];
        double[] halfScale = new double[count];
        boolean shared = true;
        for (int r = 0; r < count; r++) {
            coeffs[r] = coeffsOf.apply(block[r]);
            halfScale[r] = halfScaleOf.applyAsDouble(block[r]);
            shared &= coeffs[r] == coeffs[0];
        }
        float[][] srcRe = in.spectrumRe();
        float[][] srcIm = in.spectrumIm();
        float[][] zr = out.spectrumRe();
        float[][] zi = out.spectrumIm();
        double[] accRe = new double[count];
        double[] accIm = new double[count];
        for (int o = 0; o < g.bins(); o++) {
            java.util.Arrays.fill(accRe, 0);
            java.util.Arrays.fill(accIm, 0);
            for (int e = g.start(o); e < g.start(o + 1); e++) {
                float[] sr = srcRe[g.sourceBin(e)];
                float[] si = srcIm[g.sourceBin(e)];
                int l = g.coefficient(e);
                boolean negate = g.negatesImag(e);
                if (shared) {
                    double c = coeffs[0][l];
                    double ci = negate ? -c : c;
                    for (int r = 0; r < count; r++) {
                        accRe[r] += c * sr[r];
                        accIm[r] += ci * si[r];
                    }
                } else {
                    for (int r = 0; r < count; r++) {
                        double c = coeffs[r][l];
                        accRe[r] += c * sr[r];
                        accIm[r] += (negate ? -c : c) * si[r];
                    }
                }
            }
            float[] outRe = zr[o];
            float[] outIm = zi[o];
            for (int r = 0; r < count; r++) {
                outRe[r] = (float) (halfScale[r] * accRe[r]);
                outIm[r] = (float) (halfScale[r] * accIm[r]);
            }
        }
    }

    /**
     * z[o] = halfScale · Σ_e c·(src_re[b], ±src_im[b]) over the grouping's entries of bin o, summed in float64
     * (a bin of a short output gathers many entries) and rounded once.
     */
    private static void scatter(SpectralGrouping g, float[] coeffs, double halfScale, float[] srcRe, float[] srcIm,
                                float[] zr, float[] zi) {
        for (int o = 0; o < g.bins(); o++) {
            double re = 0;
            double im = 0;
            for (int e = g.start(o); e < g.start(o + 1); e++) {
                double c = coeffs[g.coefficient(e)];
                int b = g.sourceBin(e);
                re += c * srcRe[b];
                im += (g.negatesImag(e) ? -c : c) * srcIm[b];
            }
            zr[o] = (float) (halfScale * re);
            zi[o] = (float) (halfScale * im);
        }
    }

    /**
     * ∂L/∂c_l = s · Re(DFT2(∂L/∂ΔW))[j_l, k_l]: real transforms of every row, a block of rows at a time and
     * in place; then per needed column either a complex FFT down the column (many coefficients read it;
     * its rows are copied out of each block) or, for each coefficient, the one DFT value it needs, summed
     * directly in float64 with exact integer phases while the block is in cache. Per-task partial sums are
     * added in task order, so the result does not depend on the thread count.
     */
    @Override
    protected void runGradCoefficients(FourierFTSpec spec, HostArray gradDeltaW, float[] gradCoeffs) {
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        int h = spec.halfIn();
        int[] bins = spec.deltaGradientBins(); // row · h + column of the half spectrum
        int[] readers = new int[h];
        for (int bin : bins) {
            readers[bin % h]++;
        }
        int directLimit = directColumnEntries(dOut);
        float[][] columns = new float[h][]; // whole columns, only where an FFT down them pays
        for (int v = 0; v < h; v++) {
            if (readers[v] > directLimit) {
                columns[v] = new float[2 * dOut];
            }
        }
        int[] denseColumns = IntStream.range(0, h).filter(v -> columns[v] != null).toArray();
        // Coefficients summed directly, by column so that neighbours read neighbouring values.
        int[] direct = IntStream.range(0, bins.length).filter(l -> readers[bins[l] % h] <= directLimit).boxed()
                .sorted(java.util.Comparator.comparingInt(l -> bins[l] % h)).mapToInt(Integer::intValue).toArray();
        float[] twiddle = twiddles(dOut);
        int blockRows = rowBlock(dIn);
        int taskRows = taskRows(blockRows);
        double[][] partial = new double[(dOut + taskRows - 1) / taskRows][];
        Parallel.inChunks(dOut, taskRows, (from, to) -> {
            RealFft fft = ffts.takeReal(dIn);
            float[] block = ffts.takeScratch(blockRows * dIn);
            double[] sums = new double[direct.length];
            int[] phase = new int[direct.length];
            for (int i = 0; i < direct.length; i++) {
                phase[i] = (int) ((long) from * (bins[direct[i]] / h) % dOut);
            }
            try {
                for (int first = from; first < to; first += blockRows) {
                    int rows = Math.min(blockRows, to - first);
                    for (int r = 0; r < rows; r++) {
                        gradDeltaW.read((first + r) * dIn, block, r * dIn, dIn);
                        fft.forwardInPlace(block, r * dIn);
                    }
                    for (int v : denseColumns) {
                        copyColumnRows(block, dIn, fft.realSlot(v), fft.imagSlot(v), rows, columns[v], first);
                    }
                    for (int i = 0; i < direct.length; i++) {
                        int u = bins[direct[i]] / h;
                        int v = bins[direct[i]] % h;
                        int re = fft.realSlot(v);
                        int im = fft.imagSlot(v);
                        double sum = sums[i]; // Re Σ_p G[p]·e^{-2πi·p·u/d_out}
                        int m = phase[i];
                        for (int r = 0; r < rows; r++) {
                            sum += (double) block[r * dIn + re] * twiddle[2 * m];
                            if (im >= 0) {
                                sum += (double) block[r * dIn + im] * twiddle[2 * m + 1];
                            }
                            m += u;
                            if (m >= dOut) {
                                m -= dOut;
                            }
                        }
                        sums[i] = sum;
                        phase[i] = m;
                    }
                }
                partial[from / taskRows] = sums;
            } finally {
                ffts.give(block);
                ffts.give(fft);
            }
        });
        // In float64 (ComplexFft), not as a float batch: the batch took ∂L/∂c at 768² with n = 10000 from
        // 1.4e-7 to 2.0e-7 relative error.
        Parallel.inChunks(denseColumns.length, LINE_CHUNK, (from, to) -> {
            ComplexFft fft = ffts.takeComplex(dOut);
            try {
                for (int i = from; i < to; i++) {
                    fft.forward(columns[denseColumns[i]]);
                }
            } finally {
                ffts.give(fft);
            }
        });
        double s = scale(spec);
        for (int l = 0; l < bins.length; l++) {
            float[] col = columns[bins[l] % h];
            if (col != null) {
                gradCoeffs[l] = (float) (s * col[2 * (bins[l] / h)]);
            }
        }
        for (int i = 0; i < direct.length; i++) {
            double sum = 0;
            for (double[] task : partial) {
                sum += task[i];
            }
            gradCoeffs[direct[i]] = (float) (s * sum);
        }
    }

    /** col[2p], col[2p+1] = the packed rows' bin values (re, im; im 0 where the slot is -1), p = first + r. */
    private static void copyColumnRows(float[] block, int stride, int re, int im, int rows, float[] col, int first) {
        for (int r = 0; r < rows; r++) {
            col[2 * (first + r)] = block[r * stride + re];
            col[2 * (first + r) + 1] = im >= 0 ? block[r * stride + im] : 0f;
        }
    }

    @Override
    protected void runBackward(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                               float[] gradCoeffs, HostArray gradX) {
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        int n = spec.n();
        int chunks = (tokens + TOKEN_CHUNK - 1) / TOKEN_CHUNK;
        // ∂L/∂c sums a product per token: in float its rounding error grows with the number of tokens.
        double[][] partial = new double[chunks][n];
        if (useBatchedForward(dOut, dIn, tokens)) {
            backwardBatched(spec, coeffs, x, gradY, tokens, partial, gradX);
        } else {
            backwardByToken(spec, coeffs, x, gradY, tokens, partial, gradX);
        }
        double s = scale(spec);
        for (int l = 0; l < n; l++) {
            double sum = 0;
            for (double[] p : partial) {
                sum += p[l];
            }
            gradCoeffs[l] = (float) (s * sum);
        }
    }

    /**
     * The backward's chunks of {@link #TOKEN_CHUNK} tokens through {@link BatchedRealFft}: each chunk's x and ∂L/∂y
     * transformed at once; per coefficient its products summed over the chunk's tokens in order into the chunk's
     * partial sums (the order of {@link #backwardByToken}); ∂L/∂x gathered per bin over the chunk
     * ({@link #gatherBlock} on the transposed grouping) and transformed back at once.
     */
    private void backwardBatched(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                                 double[][] partial, HostArray gradX) {
        BackwardTerms terms = new BackwardTerms(spec);
        Parallel.inChunks(tokens, TOKEN_CHUNK, (from, to) -> {
            BatchedRealFft inFft = ffts.takeBatched(terms.dIn(), TOKEN_CHUNK);
            BatchedRealFft outFft = ffts.takeBatched(terms.dOut(), TOKEN_CHUNK);
            float[] rows = ffts.takeScratch(TOKEN_CHUNK * Math.max(terms.dIn(), terms.dOut()));
            try {
                int count = to - from;
                x.read(from * terms.dIn(), rows, 0, count * terms.dIn());
                inFft.forward(count, rows, 0, terms.dIn());
                gradY.read(from * terms.dOut(), rows, 0, count * terms.dOut());
                outFft.forward(count, rows, 0, terms.dOut());
                // every lane is this adapter's: its products summed in token order onto the chunk's partial sums
                blockProducts(terms, inFft, outFft, count, new int[count], new double[][] {partial[from / TOKEN_CHUNK]});
                if (gradX != null) {
                    int[] block = IntStream.range(from, to).toArray();
                    gatherBlock(terms.grouping(), block, t -> coeffs, t -> terms.halfScale(), outFft, inFft);
                    inFft.inverse(count, rows, 0, terms.dIn());
                    for (int r = 0; r < count; r++) {
                        gradX.write((from + r) * terms.dIn(), rows, r * terms.dIn(), terms.dIn(), WriteMode.ADD);
                    }
                }
            } finally {
                ffts.give(rows);
                ffts.give(inFft);
                ffts.give(outFft);
            }
        });
    }

    /**
     * The mixed batch's backward in blocks, like its forward: where the batched forward runs
     * ({@link #useBatchedForward}), each index set's tokens, in token order, go in blocks of {@link #TOKEN_CHUNK}
     * through the batched transforms (a block's x and ∂L/∂y transformed at once); per block, every adapter's
     * products are summed over its tokens there, in order, in float64, and ∂L/∂x is gathered per bin with each
     * token's own coefficients and transformed back at once. Each adapter's ∂L/∂c is then its blocks' sums added in
     * block order: fixed blocks, so the bits do not depend on the threads or the machine. Elsewhere (lengths the
     * batched transforms do not take, fewer tokens) each adapter's tokens take the single-adapter backward.
     */
    @Override
    protected java.util.Map<Integer, float[]> runBackward(org.spectralpeft.fourierft.FourierFTAdapterPool pool,
                                                          org.spectralpeft.fourierft.ResolvedBatch batch,
                                                          float[][] coefficients, HostArray x, HostArray gradY,
                                                          HostArray gradX) {
        int dOut = pool.dOut();
        int dIn = pool.dIn();
        int tokens = batch.tokens();
        if (batch.isEmpty() || !useBatchedForward(dOut, dIn, tokens)) {
            return super.runBackward(pool, batch, coefficients, x, gradY, gradX);
        }
        IntFunction<FourierFTSpec> specOf = t -> batch.place(t) < 0 ? null : batch.adapter(batch.place(t)).spec();
        java.util.List<int[]> blocks = blocksByIndexSet(tokens, specOf, TOKEN_CHUNK);
        int[][] blockAdapters = new int[blocks.size()][]; // per block its adapters' places, in order of first token
        double[][][] blockSums = new double[blocks.size()][][];
        Parallel.inChunks(blocks.size(), 1, (from, to) -> {
            BatchedRealFft inFft = ffts.takeBatched(dIn, TOKEN_CHUNK);
            BatchedRealFft outFft = ffts.takeBatched(dOut, TOKEN_CHUNK);
            float[] rows = ffts.takeScratch(TOKEN_CHUNK * Math.max(dIn, dOut));
            try {
                for (int b = from; b < to; b++) {
                    int[] block = blocks.get(b);
                    BackwardTerms terms = new BackwardTerms(specOf.apply(block[0]));
                    int count = block.length;
                    readRows(x, block, dIn, rows);
                    inFft.forward(count, rows, 0, dIn);
                    readRows(gradY, block, dOut, rows);
                    outFft.forward(count, rows, 0, dOut);
                    int[] local = new int[count]; // each lane's adapter among the block's
                    int[] places = new int[count];
                    int adapters = 0;
                    for (int r = 0; r < count; r++) {
                        int p = batch.place(block[r]);
                        int j = 0;
                        while (j < adapters && places[j] != p) {
                            j++;
                        }
                        if (j == adapters) {
                            places[adapters++] = p;
                        }
                        local[r] = j;
                    }
                    double[][] sums = new double[adapters][terms.n()];
                    blockProducts(terms, inFft, outFft, count, local, sums);
                    blockAdapters[b] = java.util.Arrays.copyOf(places, adapters);
                    blockSums[b] = sums;
                    if (gradX != null) {
                        gatherBlock(terms.grouping(), block, t -> coefficients[batch.place(t)],
                                t -> 0.5 * scale(specOf.apply(t)), outFft, inFft);
                        inFft.inverse(count, rows, 0, dIn);
                        addRows(rows, block, dIn, gradX);
                    }
                }
            } finally {
                ffts.give(rows);
                ffts.give(inFft);
                ffts.give(outFft);
            }
        });
        double[][] total = new double[batch.adapterCount()][];
        for (int b = 0; b < blocks.size(); b++) { // block order: each adapter's sums add up in a fixed order
            for (int j = 0; j < blockAdapters[b].length; j++) {
                int p = blockAdapters[b][j];
                if (total[p] == null) {
                    total[p] = blockSums[b][j];
                } else {
                    double[] sum = total[p];
                    double[] add = blockSums[b][j];
                    for (int l = 0; l < sum.length; l++) {
                        sum[l] += add[l];
                    }
                }
            }
        }
        java.util.Map<Integer, float[]> grads = new java.util.LinkedHashMap<>();
        for (int p = 0; p < batch.adapterCount(); p++) {
            FourierFTSpec spec = batch.adapter(p).spec();
            double s = scale(spec);
            float[] g = new float[spec.n()];
            for (int l = 0; l < g.length; l++) {
                g[l] = (float) (s * total[p][l]);
            }
            grads.put(batch.adapter(p).id(), g);
        }
        return grads;
    }

    /**
     * The tokens with a spec, grouped by index set (specs that differ only in α share one grouping) in order of first
     * use, each group in token order cut into blocks of at most {@code blockTokens}: a block's tokens share a
     * grouping.
     */
    private static java.util.List<int[]> blocksByIndexSet(int tokens, IntFunction<FourierFTSpec> specOf,
                                                          int blockTokens) {
        FourierFTSpec.IndexSetKey[] sets = new FourierFTSpec.IndexSetKey[tokens];
        FourierFTSpec last = null;
        FourierFTSpec.IndexSetKey lastKey = null;
        for (int t = 0; t < tokens; t++) {
            FourierFTSpec spec = specOf.apply(t);
            if (spec != last) {
                last = spec;
                lastKey = spec == null ? null : new FourierFTSpec.IndexSetKey(spec);
            }
            sets[t] = lastKey;
        }
        java.util.List<int[]> blocks = new java.util.ArrayList<>();
        for (java.util.List<Integer> group : TokenRows.byKey(sets).values()) {
            int[] order = group.stream().mapToInt(Integer::intValue).toArray();
            for (int i = 0; i < order.length; i += blockTokens) {
                blocks.add(java.util.Arrays.copyOfRange(order, i, Math.min(order.length, i + blockTokens)));
            }
        }
        return blocks;
    }

    /** rows[r·width ..] = src's row block[r], for each token of a block. */
    private static void readRows(HostArray src, int[] block, int width, float[] rows) {
        for (int r = 0; r < block.length; r++) {
            src.read(block[r] * width, rows, r * width, width);
        }
    }

    /** dst's row block[r] += rows[r·width ..], rounded once into dst's dtype, for each token of a block. */
    private static void addRows(float[] rows, int[] block, int width, HostArray dst) {
        for (int r = 0; r < block.length; r++) {
            dst.write(block[r] * width, rows, r * width, width, WriteMode.ADD);
        }
    }

    /**
     * sums[local[r]][l] += the coefficient products of lane r (a block's token) for every coefficient l, lanes in
     * order: per adapter of the block, its tokens' sum in token order (the single-adapter backward's chunks are
     * blocks whose lanes are all local 0).
     */
    private static void blockProducts(BackwardTerms terms, BatchedRealFft inFft, BatchedRealFft outFft, int count,
                                      int[] local, double[][] sums) {
        float[][] xr = inFft.spectrumRe();
        float[][] xi = inFft.spectrumIm();
        float[][] qr = outFft.spectrumRe();
        float[][] qi = outFft.spectrumIm();
        int[] xBin = terms.xBin();
        int[] gyBin = terms.gyBin();
        float[] sign = terms.sign();
        for (int l = 0; l < terms.n(); l++) {
            float[] ar = xr[xBin[l]];
            float[] ai = xi[xBin[l]];
            float[] br = qr[gyBin[l]];
            float[] bi = qi[gyBin[l]];
            double sl = sign[l];
            for (int r = 0; r < count; ) { // a run of one adapter's lanes sums in a register
                double[] target = sums[local[r]];
                double sum = target[l];
                int j = local[r];
                do {
                    sum += (double) ar[r] * br[r] - sl * ai[r] * bi[r];
                    r++;
                } while (r < count && local[r] == j);
                target[l] = sum;
            }
        }
    }

    /** What both backward routes read from the spec. */
    private record BackwardTerms(int dOut, int dIn, int n, int[] xBin, int[] gyBin, float[] sign, double halfScale,
                                 SpectralGrouping grouping) {
        BackwardTerms(FourierFTSpec spec) {
            this(spec.dOut(), spec.dIn(), spec.n(), spec.inputBins(), spec.outputGradientBins(), spec.imaginarySigns(),
                    0.5 * scale(spec), spec.transposedGrouping());
        }
    }

    /** The backward token by token through JTransforms, in chunks of {@link #TOKEN_CHUNK} tokens. */
    private void backwardByToken(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                                 double[][] partial, HostArray gradX) {
        BackwardTerms terms = new BackwardTerms(spec);
        Parallel.inChunks(tokens, TOKEN_CHUNK, (from, to) -> {
            RealFft inFft = ffts.takeReal(terms.dIn());
            RealFft outFft = ffts.takeReal(terms.dOut());
            float[] xRow = new float[terms.dIn()];
            try {
                float[] gyRow = new float[terms.dOut()];
                float[] xr = new float[inFft.bins()];
                float[] xi = new float[inFft.bins()];
                float[] qr = new float[outFft.bins()];
                float[] qi = new float[outFft.bins()];
                float[] zr = new float[inFft.bins()];
                float[] zi = new float[inFft.bins()];
                float[] gx = new float[terms.dIn()];
                double[] acc = partial[from / TOKEN_CHUNK];
                for (int t = from; t < to; t++) {
                    x.read(t * terms.dIn(), xRow, terms.dIn());
                    gradY.read(t * terms.dOut(), gyRow, terms.dOut());
                    inFft.forward(xRow, 0, xr, xi);
                    outFft.forward(gyRow, 0, qr, qi);
                    int[] xBin = terms.xBin();
                    int[] gyBin = terms.gyBin();
                    float[] sign = terms.sign();
                    for (int l = 0; l < terms.n(); l++) {
                        acc[l] += (double) xr[xBin[l]] * qr[gyBin[l]] - (double) sign[l] * xi[xBin[l]] * qi[gyBin[l]];
                    }
                    if (gradX != null) {
                        scatter(terms.grouping(), coeffs, terms.halfScale(), qr, qi, zr, zi);
                        inFft.inverse(zr, zi, gx);
                        gradX.write(t * terms.dIn(), gx, terms.dIn(), WriteMode.ADD);
                    }
                }
            } finally {
                ffts.give(inFft);
                ffts.give(outFft);
            }
        });
    }
}
