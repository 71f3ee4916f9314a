package org.spectralpeft.fourierft.cuda;

import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.KernelModule;
import org.spectralpeft.cuda.internal.StageTimer;

/**
 * Typed launchers for the kernels of {@code kernels/fourierft.cu}, loaded as a {@link KernelModule} (which
 * picks the sm_90 code or a PTX for the device).
 *
 * <p>In debug mode (the system property {@code spectralpeft.cuda.debug=true} when the backend opens) every
 * launch is followed by a stream synchronization, so a faulting kernel is reported at its own launch (the
 * tests turn it on).
 */
final class FourierFTKernels implements AutoCloseable {
    static final int BLOCK = CommonKernels.BLOCK;
    private static final int MAX_GRID_Y = CommonKernels.MAX_GRID_Y;

    static final String SCATTER_HALF_SPECTRUM = "fourierft_scatter_half_spectrum";
    static final String COLUMN_SYNTHESIS = "fourierft_column_synthesis";
    static final String COLUMN_ANALYSIS = "fourierft_column_analysis";
    static final String GATHER_SCATTER = "fourierft_gather_scatter";
    static final String GATHER_SCATTER_MIXED = "fourierft_gather_scatter_mixed";
    static final String GATHER_SCATTER_MIXED_ROWS = "fourierft_gather_scatter_mixed_rows";
    static final String GATHER_REAL = "fourierft_gather_real";
    static final String COEFF_GRAD_PARTIAL = "fourierft_coeff_grad_partial";
    static final String COEFF_GRAD_REDUCE = "fourierft_coeff_grad_reduce";
    static final String COEFF_GRAD_PARTIAL_MIXED = "fourierft_coeff_grad_partial_mixed";
    static final String COEFF_GRAD_REDUCE_MIXED = "fourierft_coeff_grad_reduce_mixed";
    static final String FORWARD_FUSED = "fourierft_forward_fused";
    static final String FORWARD_FUSED_RADIX = "fourierft_forward_fused_radix";
    static final String BACKWARD_FUSED = "fourierft_backward_fused";
    static final String BACKWARD_FUSED_RADIX = "fourierft_backward_fused_radix";
    static final String FORWARD_FUSED_PASS8 = "fourierft_forward_fused_pass8";
    static final String BACKWARD_FUSED_PASS8 = "fourierft_backward_fused_pass8";
    static final String COEFF_GRAD_ROWS = "fourierft_coeff_grad_rows";
    static final String TOKEN_ROWS = "fourierft_token_rows";
    static final String[] KERNELS = {SCATTER_HALF_SPECTRUM, COLUMN_SYNTHESIS, COLUMN_ANALYSIS, GATHER_SCATTER, GATHER_SCATTER_MIXED,
        GATHER_SCATTER_MIXED_ROWS, GATHER_REAL, COEFF_GRAD_PARTIAL, COEFF_GRAD_REDUCE, COEFF_GRAD_PARTIAL_MIXED, COEFF_GRAD_REDUCE_MIXED,
        FORWARD_FUSED, FORWARD_FUSED_RADIX, BACKWARD_FUSED, BACKWARD_FUSED_RADIX, FORWARD_FUSED_PASS8, BACKWARD_FUSED_PASS8,
        COEFF_GRAD_ROWS, TOKEN_ROWS};

    /** {@link CudaFourierFT#MIXED_GATHER_PROPERTY}. */
    static final String MIXED_GATHER_PROPERTY = CudaFourierFT.MIXED_GATHER_PROPERTY;
    /** The most coefficients per adapter the staged gather takes: its row fits the 48 KiB every block may have. */
    static final int MAX_STAGED_COEFFICIENTS = 48 * 1024 / 4;
    /** Blocks the staged gather aims for at least, splitting each token's bins into chunks for small batches. */
    private static final int STAGED_MIN_BLOCKS = 2048;

    private final KernelModule module;
    /** Where launches go: the module, or a recorder in tests that run without a device. */
    private final CommonKernels.Launcher launcher;

    /** Loads kernels/fourierft.cu (the shared epilogues and dtype widening are the context's {@link CommonKernels}). */
    FourierFTKernels(int computeCapability, boolean debug) {
        module = new KernelModule(MODULE, computeCapability, KERNELS, debug);
        launcher = CommonKernels.launcherOf(module);
    }

    /** Launches go to {@code recorder}; no module is loaded (no device needed). */
    FourierFTKernels(CommonKernels.Launcher recorder) {
        module = null;
        launcher = recorder;
    }

    /** The source these kernels are built from: {@code kernels/fourierft.cu}. */
    static final String MODULE = "fourierft";

    /** The kernel image in use, e.g. "fourierft.sm_90.cubin" or "fourierft.compute_75.ptx". */
    String ptxName() {
        return module != null ? module.image() : "none (recording)";
    }

    /** Throws when the jar holds no kernels (see {@link KernelModule#requireBuilt}). */
    static void requireBuilt() {
        KernelModule.requireBuilt(MODULE);
    }

    private static int blocks(long count) {
        return CommonKernels.blocks(count);
    }

    private static int gridY(long count) {
        return CommonKernels.gridY(count);
    }

    private void launch(String kernel, int gridX, int gridY, CudaStream stream, Object... args) {
        StageTimer.time(kernel, stream, () -> launcher.launch(kernel, gridX, gridY, stream, args));
    }

    /** A launch with {@code sharedBytes} of dynamic shared memory (a recorder sees the launch without it). */
    private void launch(String kernel, int gridX, int gridY, int sharedBytes, CudaStream stream, Object... args) {
        StageTimer.time(kernel, stream, () -> launcher.launch(kernel, gridX, gridY, sharedBytes, stream, args));
    }

    /** Half spectra of {@code layers} layers (one launch per 65535 layers). */
    void scatterHalfSpectrum(long spectrum, long binsPerLayer, long coeffs, int n, DeviceSpecTables t, int layers,
                             float halfScale, CudaStream s) {
        for (int first = 0; first < layers; first += MAX_GRID_Y) {
            int count = Math.min(MAX_GRID_Y, layers - first);
            launch(SCATTER_HALF_SPECTRUM, blocks(t.halfBins), count, s,
                    spectrum + 8L * binsPerLayer * first, binsPerLayer, coeffs + 4L * n * first, n,
                    t.halfBinPos, t.halfBinStart, t.halfEntryCoeff, t.halfBins, halfScale);
        }
    }

    /**
     * A mixed batch's device rows for one index set from its raw ids ({@code tokens} ints on the device) and a pool
     * copy's id entries ({@link DevicePools}: (set << 24) | (row + 1) per id on the device): tokenRow[t] = row + 1 of
     * token t's adapter where it is of {@code set}, else 0. Every id must be −1 or within the entries.
     */
    void tokenRows(long ids, int tokens, long entries, int set, long tokenRow, CudaStream s) {
        launch(TOKEN_ROWS, blocks(tokens), 1, s, ids, tokens, entries, set, tokenRow);
    }

    /** Rows per thread of fourierft_column_synthesis (COLUMN_TILE_ROWS in the kernel source). */
    static final int COLUMN_TILE_ROWS = 16;

    /**
     * The row-C2R input G for rows [rowBegin, rowBegin+rows) of {@code layers} layers (layers × rows × halfIn
     * complex, dense; {@code coeffs} points at the first of those layers' coefficient vectors) straight from
     * the column tables: every element is written, so G needs no clearing.
     */
    void columnSynthesis(long g, int dOut, int rowBegin, int rows, int halfIn, long coeffs, int n, DeviceSpecTables t,
                         int layers, float halfScale, CudaStream s) {
        long items = (long) ((rows + COLUMN_TILE_ROWS - 1) / COLUMN_TILE_ROWS) * halfIn;
        launch(COLUMN_SYNTHESIS, (int) Math.min(blocks(items), 65535L * 16), gridY(layers), s,
                g, dOut, rowBegin, rows, halfIn, coeffs, n, t.columnStart, t.columnRow, t.columnCoeff, t.columnStepCos,
                t.columnStepSin, halfScale, layers);
    }

    /**
     * Per tile of rows and coefficient, the partial sums of ∂L/∂c / s from the row spectra of rows
     * [rowBegin, rowBegin+rows) (rows × halfIn complex), into partial (tiles of the whole layer × n).
     */
    void columnAnalysis(long rowSpec, int dOut, int rowBegin, int rows, int halfIn, DeviceSpecTables t, int n,
                        long partial, CudaStream s) {
        long items = (long) ((rows + COLUMN_TILE_ROWS - 1) / COLUMN_TILE_ROWS) * n;
        launch(COLUMN_ANALYSIS, (int) Math.min(blocks(items), 65535L * 16), 1, s,
                rowSpec, dOut, rowBegin, rows, halfIn, t.gradOrder, t.deltaGradBin, t.gradStepCos, t.gradStepSin, n,
                partial);
    }

    /**
     * Unmaterialized forward spectrum Z (rows × zPitch complex) from the R2C rows {@code in}: rows below
     * {@code tokens} computed, the rest (padding up to a plan's batch) zero.
     */
    void gatherScatter(long in, int inBins, long out, int outBins, int zPitch, long coeffs,
                       DeviceSpecTables.Grouping g, float halfScale, int tokens, int rows, CudaStream s) {
        launch(GATHER_SCATTER, blocks(outBins), gridY(rows), s,
                in, inBins, out, outBins, zPitch, coeffs, g.start(), g.coeff(), g.src(), halfScale, tokens, rows);
    }

    /**
     * The mixed batch's gather/scatter: token t's coefficients are row tokenRow[t] − 1 of coeffTable (n floats per
     * row) and its scale α/(2·d_out·d_in) the same row of rowHalfScale (each adapter's own); tokenRow[t] = 0 writes
     * zeros. Where n fits {@link #MAX_STAGED_COEFFICIENTS} and
     * {@value #MIXED_GATHER_PROPERTY} is not {@code bins}, a block per token (and chunk of bins) stages the token's
     * row in shared memory first; else a block per 256 bins of a token reads the row per entry. The same bits.
     */
    void gatherScatterMixed(long in, int inBins, long out, int outBins, int zPitch, long coeffTable, int n,
                            long tokenRow, long rowHalfScale, DeviceSpecTables.Grouping g, int tokens, int rows,
                            CudaStream s) {
        if (n <= MAX_STAGED_COEFFICIENTS && !"bins".equals(System.getProperty(MIXED_GATHER_PROPERTY))) {
            gatherScatterMixedStaged(in, inBins, out, outBins, zPitch, coeffTable, n, tokenRow, rowHalfScale, g,
                    tokens, rows, gridY(rows), s);
        } else {
            gatherScatterMixedPerEntry(in, inBins, out, outBins, zPitch, coeffTable, n, tokenRow, rowHalfScale, g,
                    tokens, rows, gridY(rows), s);
        }
    }

    /**
     * {@code fourierft_gather_scatter_mixed_rows}, tokens strided over {@code gridY} blocks (tests choose fewer
     * than rows), each token's bins split into enough chunks that the grid has about {@value #STAGED_MIN_BLOCKS}
     * blocks; n at most {@link #MAX_STAGED_COEFFICIENTS}.
     */
    void gatherScatterMixedStaged(long in, int inBins, long out, int outBins, int zPitch, long coeffTable, int n,
                                  long tokenRow, long rowHalfScale, DeviceSpecTables.Grouping g, int tokens, int rows,
                                  int gridY, CudaStream s) {
        int chunks = (int) Math.min(blocks(outBins), Math.max(1, (STAGED_MIN_BLOCKS + gridY - 1) / gridY));
        launch(GATHER_SCATTER_MIXED_ROWS, chunks, gridY, 4 * n, s, in, inBins, out, outBins, zPitch, coeffTable, n,
                tokenRow, rowHalfScale, g.start(), g.coeff(), g.src(), tokens, rows);
    }

    /** {@code fourierft_gather_scatter_mixed}, tokens strided over {@code gridY} blocks of each 256 bins. */
    void gatherScatterMixedPerEntry(long in, int inBins, long out, int outBins, int zPitch, long coeffTable, int n,
                                    long tokenRow, long rowHalfScale, DeviceSpecTables.Grouping g, int tokens,
                                    int rows, int gridY, CudaStream s) {
        launch(GATHER_SCATTER_MIXED, blocks(outBins), gridY, s, in, inBins, out, outBins, zPitch, coeffTable, n,
                tokenRow, rowHalfScale, g.start(), g.coeff(), g.src(), tokens, rows);
    }

    /** Blocks of {@code fourierft_forward_fused} at the most; more tokens are strided over them. */
    static final int MAX_FUSED_BLOCKS = 1 << 20;

    /**
     * out += per token C2R_outLength(gather/scatter of R2C_inLength(in)), {@code fourierft_forward_fused}: a block per
     * token, its spectra in shared memory ({@link FusedForward}: lengths it takes, the grouping g from in's
     * bins to out's, tw the spec's twiddle table). tokenRow 0: every token takes coeffTable's first row and halfScale
     * (rowHalfScale 0); else the device int table of each token's row + 1, 0 for none (out left alone), and
     * rowHalfScale the device floats of each row's α/(2·d_out·d_in) (halfScale not read).
     */
    void forwardFused(long in, int inDtype, int inLength, long out, int outDtype, int outLength, long coeffTable, int n,
                      long tokenRow, long rowHalfScale, DeviceSpecTables.Grouping g, DeviceSpecTables tw,
                      float halfScale, int tokens, CudaStream s) {
        forwardFused(in, inDtype, inLength, out, outDtype, outLength, coeffTable, n, tokenRow, rowHalfScale, g, tw,
                halfScale, tokens, Math.min(tokens, MAX_FUSED_BLOCKS), s);
    }

    /**
     * {@link #forwardFused} over {@code blocks} blocks (tests stride the tokens over fewer): {@code
     * fourierft_forward_fused} (or {@code _pass8} under {@value CudaFourierFT#FFT_PASS_PROPERTY}{@code =radix8}) where
     * both lengths are powers of two, else {@code fourierft_forward_fused_radix}.
     */
    void forwardFused(long in, int inDtype, int inLength, long out, int outDtype, int outLength, long coeffTable, int n,
                      long tokenRow, long rowHalfScale, DeviceSpecTables.Grouping g, DeviceSpecTables tw,
                      float halfScale, int tokens, int blocks, CudaStream s) {
        launch(FusedForward.powersOfTwo(inLength, outLength)
                        ? FusedForward.radix8Passes() ? FORWARD_FUSED_PASS8 : FORWARD_FUSED : FORWARD_FUSED_RADIX, blocks, 1,
                (int) FusedForward.sharedBytes(inLength, outLength, n), s, in, inDtype, inLength / 2,
                FusedForward.oddFactor(inLength), out, outDtype, outLength / 2, FusedForward.oddFactor(outLength),
                coeffTable, n, tokenRow, rowHalfScale, g.start(), g.coeff(), g.src(), tw.twiddles, tw.twiddleLength,
                halfScale, tokens);
    }

    /**
     * The backward of a token in a block, {@code fourierft_backward_fused} (or {@code _radix} or {@code _pass8}, as
     * {@link #forwardFused} picks): x's (inLength) and ∂L/∂y's (outLength) rows transformed in shared memory, each token's ∂L/∂c products
     * into products (tokens × n floats, tokens of another row left alone), and, where gx is not 0, gx += ∂L/∂y·ΔW by
     * the transposed grouping with the token's coefficient row (tokenRow and rowHalfScale as in {@link
     * #forwardFused}).
     */
    void backwardFused(long x, int xDtype, int inLength, long gy, int gyDtype, int outLength, long gx, int gxDtype,
                       long coeffTable, int n, long tokenRow, long rowHalfScale, DeviceSpecTables t, float halfScale,
                       long products, int tokens, CudaStream s) {
        launch(FusedForward.powersOfTwo(inLength, outLength)
                        ? FusedForward.radix8Passes() ? BACKWARD_FUSED_PASS8 : BACKWARD_FUSED : BACKWARD_FUSED_RADIX,
                Math.min(tokens, MAX_FUSED_BLOCKS), 1, (int) FusedForward.sharedBytes(inLength, outLength, n), s, x,
                xDtype, inLength / 2, FusedForward.oddFactor(inLength), gy, gyDtype, outLength / 2,
                FusedForward.oddFactor(outLength), gx, gxDtype, coeffTable, n, tokenRow, rowHalfScale, t.xBin, t.gyBin,
                t.imSign, t.transposed.start(), t.transposed.coeff(), t.transposed.src(), t.twiddles, t.twiddleLength,
                halfScale, products, tokens);
    }

    /**
     * ∂L/∂c's partial sums over tiles of tokens from {@link #backwardFused}'s products: tile i sums the tokens
     * order[tileBegin[i] .. tileEnd[i]) in that order (order 0: the tokens tileBegin[i] .. tileEnd[i] − 1), into
     * partial row i; {@link #coeffGradReduce} or {@link #coeffGradReduceMixed} then adds the tiles in order.
     */
    void coeffGradRows(long products, int n, long order, long tileBegin, long tileEnd, int tiles, long partial,
                       CudaStream s) {
        launch(COEFF_GRAD_ROWS, blocks(n), gridY(tiles), s, products, n, order, tileBegin, tileEnd, tiles, partial);
    }

    void gatherReal(long spectrum, long binsPerLayer, long gatherBin, int n, float scale, long grad, CudaStream s) {
        launch(GATHER_REAL, blocks(n), 1, s, spectrum, binsPerLayer, gatherBin, n, scale, grad);
    }

    void coeffGradPartial(long xSpec, int xBins, long gySpec, int gyBins, DeviceSpecTables t, int n, int tokens,
                          int tileTokens, long partial, CudaStream s) {
        int tiles = (tokens + tileTokens - 1) / tileTokens;
        launch(COEFF_GRAD_PARTIAL, blocks(n), gridY(tiles), s,
                xSpec, xBins, gySpec, gyBins, t.xBin, t.gyBin, t.imSign, n, tokens, tileTokens, partial);
    }

    void coeffGradReduce(long partial, int tiles, int n, float scale, long grad, CudaStream s) {
        launch(COEFF_GRAD_REDUCE, blocks(n), 1, s, partial, tiles, n, scale, grad);
    }

    /**
     * The mixed batch's ∂L/∂c products of one index set over tiles of one adapter's tokens each: tile i sums the
     * tokens order[tileBegin[i] .. tileEnd[i]) (device int tables) into partial row i.
     */
    void coeffGradPartialMixed(long xSpec, int xBins, long gySpec, int gyBins, DeviceSpecTables t, int n, long order,
                               long tileBegin, long tileEnd, int tiles, long partial, CudaStream s) {
        launch(COEFF_GRAD_PARTIAL_MIXED, blocks(n), gridY(tiles), s,
                xSpec, xBins, gySpec, gyBins, t.xBin, t.gyBin, t.imSign, n, order, tileBegin, tileEnd, tiles, partial);
    }

    /**
     * Each adapter j's partial rows adapterTile[j] .. adapterTile[j + 1] − 1 summed in order, times its own scale
     * adapterScale[j] (device floats), at grad + gradOffset[j].
     */
    void coeffGradReduceMixed(long partial, long adapterTile, long gradOffset, long adapterScale, int adapters, int n,
                              long grad, CudaStream s) {
        launch(COEFF_GRAD_REDUCE_MIXED, blocks(n), gridY(adapters), s, partial, adapterTile, gradOffset, adapterScale,
                adapters, n, grad);
    }

    @Override
    public void close() {
        if (module != null) {
            module.close();
        }
    }
}
