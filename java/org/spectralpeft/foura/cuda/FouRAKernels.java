package org.spectralpeft.foura.cuda;

import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;
import java.nio.ByteBuffer;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.HostTables;
import org.spectralpeft.cuda.internal.KernelModule;
import org.spectralpeft.cuda.internal.StageTimer;
import org.spectralpeft.cuda.internal.StreamScratch;
import org.spectralpeft.foura.FouRASpec;

/**
 * Typed launchers for the kernels of {@code kernels/foura.cu}, loaded as a {@link KernelModule}: the forward's
 * projection and expansion (mixed batches, and one adapter on request), the SGEMM path's gate (between cuBLAS
 * products; also for z wider than the forward kernels take), the backward's per-token gate pass, ΔW, and the
 * folds' pre- and post-passes. Internal: for {@link CudaFouRA}.
 */
public final class FouRAKernels implements AutoCloseable {
    /** The source these kernels are built from: {@code kernels/foura.cu}. */
    static final String MODULE = "foura";
    static final String PROJECT = "foura_mixed_project";
    static final String PROJECT_WIDE = "foura_mixed_project_wide";
    static final String EXPAND = "foura_mixed_expand";
    static final String PROJECT_TILED = "foura_project_tiled";
    static final String GATE = "foura_gate";
    static final String GATE_BACKWARD = "foura_gate_backward";
    static final String DELTA = "foura_delta";
    static final String FOLD_EXPAND = "foura_fold_expand";
    static final String FOLD_HERMITIAN = "foura_fold_hermitian";
    static final String DCT3_PRE = "foura_dct3_pre";
    static final String DCT_REORDER = "foura_dct_reorder";
    static final String DCT2_POST = "foura_dct2_post";
    static final String TRANSPOSE = "foura_transpose";
    static final String FORWARD_SMALL = "foura_forward_small";
    static final String ADD_PRODUCT = "foura_add_product";
    static final String GATE_ELEMENTWISE = "foura_gate_elementwise";
    static final String GATE_BACKWARD_ELEMENTWISE = "foura_gate_backward_elementwise";
    static final String[] KERNELS = {PROJECT, PROJECT_WIDE, EXPAND, PROJECT_TILED, GATE, GATE_BACKWARD, DELTA, FOLD_EXPAND,
        FOLD_HERMITIAN, DCT3_PRE, DCT_REORDER, DCT2_POST, TRANSPOSE, FORWARD_SMALL, ADD_PRODUCT, GATE_ELEMENTWISE,
        GATE_BACKWARD_ELEMENTWISE};
    /** Tokens and columns of out per block of foura_add_product (FOURA_ADD_TOKENS, FOURA_ADD_COLUMNS in the source). */
    static final int ADD_TOKENS = 64;
    static final int ADD_COLUMNS = 128;
    /** The most tokens {@link #forwardSmall} takes (FOURA_SMALL_TOKENS in the source). */
    public static final int SMALL_TOKENS = 16;
    /** Tokens and columns of Â per block of foura_project_tiled (FOURA_TILE_T, FOURA_TILE_C in the source). */
    static final int TILE_TOKENS = 64;
    static final int TILE_COLUMNS = 32;
    /** Columns of x per step of foura_project_tiled (FOURA_TILE_K); its chunks of x's columns are multiples of it. */
    static final int TILE_K = 32;
    /**
     * Blocks foura_project_tiled aims for at least, splitting x's columns into chunks when the tiles of tokens and
     * columns are fewer: about two per SM of an H100 (132 SMs).
     */
    static final int TILED_MIN_BLOCKS = 264;
    /** The fewest columns of x in a chunk of foura_project_tiled: eight of its steps. */
    static final int TILED_MIN_CHUNK = 8 * TILE_K;
    /** The largest rank the gate kernels hold (two components per thread of a 256-thread block). */
    public static final int MAX_GATE_RANK = 512;
    /** Threads per block (FOURA_BLOCK in the source). */
    static final int BLOCK = CommonKernels.BLOCK;
    /** Tokens per block of the forward kernels (FOURA_TOKENS in the source). */
    static final int FORWARD_TOKENS = 8;
    /** Warps per block (FOURA_WARPS in the source). */
    static final int WARPS = BLOCK / 32;
    /** Columns of Â per warp of foura_mixed_project_wide (FOURA_PROJECT_COLUMNS in the source). */
    static final int WIDE_COLUMNS = 4;
    /**
     * The system property that picks the projection kernel: {@code 1} for foura_mixed_project (a column of Â per
     * warp), otherwise foura_mixed_project_wide ({@value #WIDE_COLUMNS} per warp, each x value loaded once for
     * them). Both give the same bits; the property is for measuring one against the other.
     */
    public static final String PROJECT_COLUMNS_PROPERTY = "spectralpeft.foura.projectColumns";
    /** The widest z the forward kernels take (FOURA_MAX_WIDTH): 2r for the DFT with r = 128. */
    public static final int MAX_WIDTH = 256;
    /**
     * Bytes of one adapter's entry in a mixed batch's table (FouRAMixedAdapter in the source): the addresses of
     * Â, B̂ᵀ and the gate's parameters (8 bytes each), then gate kind, rank, DFT flag (int32) and scale (float32).
     */
    static final int MIXED_ADAPTER_BYTES = 40;

    private final KernelModule module;
    /** Where launches go: the module, or a recorder in tests that run without a device. */
    private final CommonKernels.Launcher launcher;

    /**
     * Loads kernels/foura.cu for the current context's device.
     *
     * @param computeCapability the device's, as major × 10 + minor
     * @param debug synchronize after every launch
     */
    public FouRAKernels(int computeCapability, boolean debug) {
        module = new KernelModule(MODULE, computeCapability, KERNELS, debug);
        launcher = CommonKernels.launcherOf(module);
    }

    /**
     * Launches go to {@code recorder}; no module is loaded (no device needed).
     *
     * @param recorder receives every launch
     */
    public FouRAKernels(CommonKernels.Launcher recorder) {
        module = null;
        launcher = recorder;
    }

    /**
     * The kernel image in use, e.g. "foura.sm_90.cubin".
     *
     * @return its name
     */
    public String image() {
        return module != null ? module.image() : "none (recording)";
    }

    /**
     * y += adapter(x) for {@code tokens} tokens on this library's kernels: z = Â·x ({@code foura_mixed_project}), then
     * the gate and y += scale·B̂·w ({@code foura_mixed_expand}), as a mixed batch of one adapter runs; z in stream-ordered
     * scratch, the adapter's entry copied in.
     *
     * @param spec the layer (its rank, transform and gate kind); its α is not applied: pass it in {@code scale}
     * @param x tokens × d_in inputs, any dtype
     * @param aHat Â, width × d_in float32 (width = 2r for the DFT, r for the DCT)
     * @param bHatT B̂ transposed, width × d_out float32
     * @param gate the gate's parameters (the FIXED mask, or ADAPTIVE's G then b), float32; ignored for NONE
     * @param scale α times the adapter's weight
     * @param tokens rows of x and y, at least 1
     * @param y tokens × d_out outputs, any dtype, accumulated into
     * @param stream the stream
     * @throws IllegalArgumentException if the width exceeds {@link #MAX_WIDTH} or an array has the wrong size or dtype
     */
    public void forward(FouRASpec spec, DeviceArray x, DeviceArray aHat, DeviceArray bHatT, DeviceArray gate,
                        float scale, int tokens, DeviceArray y, CudaStream stream) {
        int width = checkForward(spec, x, aHat, bHatT, gate, tokens, y);
        withOneAdapter(spec, aHat, bHatT, gate, scale, 4L * tokens * width, stream, (adapters, z) ->
                forwardMixed(x, adapters, 0L, (tokens + FORWARD_TOKENS - 1) / FORWARD_TOKENS, 0L, tokens, width,
                        spec.dIn(), spec.dOut(), z, y, stream));
    }

    /**
     * y += adapter(x) for at most {@link #SMALL_TOKENS} tokens in one launch of {@code foura_forward_small}: every
     * block computes the tokens' z = Â·x whole, applies the gate and adds B̂·w into its 256 outputs of each token. No
     * scratch, no table, no cuBLAS. Deterministic; not the bits of the other routes (another order of the sums).
     *
     * @param spec the layer (its rank, transform and gate kind); its α is not applied: pass it in {@code scale}
     * @param x tokens × d_in inputs, any dtype
     * @param aHat Â, width × d_in float32
     * @param bHatT B̂ transposed, width × d_out float32
     * @param gate the gate's parameters, float32; ignored for NONE
     * @param scale α times the adapter's weight
     * @param tokens rows of x and y, 1 to {@link #SMALL_TOKENS}
     * @param y tokens × d_out outputs, any dtype, accumulated into
     * @param stream the stream
     * @throws IllegalArgumentException if the width exceeds {@link #MAX_WIDTH}, the tokens {@link #SMALL_TOKENS}, an
     *         array has the wrong size, or x is not {@link #smallAligned aligned} for the kernel's vector loads
     */
    public void forwardSmall(FouRASpec spec, DeviceArray x, DeviceArray aHat, DeviceArray bHatT, DeviceArray gate,
                             float scale, int tokens, DeviceArray y, CudaStream stream) {
        checkForward(spec, x, aHat, bHatT, gate, tokens, y);
        Checks.require(tokens <= SMALL_TOKENS, "the small forward takes at most " + SMALL_TOKENS + " tokens, got "
                + tokens);
        Checks.require(smallAligned(spec, x), "the small forward reads x four elements at a time where d_in ("
                + spec.dIn() + ") is a multiple of 4: x must start at a multiple of " + 4 * x.dtype().bytes()
                + " bytes, not at " + x.address());
        launch(FORWARD_SMALL, (spec.dOut() + BLOCK - 1) / BLOCK, 1, stream, x.address(), x.dtype().code(),
                aHat.address(), bHatT.address(), gate == null ? 0L : gate.address(), spec.gate().ordinal(), spec.rank(),
                dft(spec), scale, tokens, spec.dIn(), spec.dOut(), y.address(), y.dtype().code());
    }

    /**
     * Whether {@link #forwardSmall} can read x: where d_in is a multiple of 4 it loads four elements at once, so x must
     * start at a multiple of four elements (a library or framework allocation does; a slice may not).
     *
     * @param spec the layer
     * @param x the inputs
     * @return whether x's start suits the kernel
     */
    public static boolean smallAligned(FouRASpec spec, DeviceArray x) {
        return spec.dIn() % 4 != 0 || x.address() % (4L * x.dtype().bytes()) == 0;
    }

    /** Launches of one adapter's forward, given its entry's and z's device addresses. */
    private interface OneAdapterLaunches {
        void launch(long adapters, long z);
    }

    /**
     * One adapter's entry copied to the device and {@code zBytes} of z scratch, both from one reservation, then
     * {@code launches} on them (the scratch freed in stream order after).
     */
    private static void withOneAdapter(FouRASpec spec, DeviceArray aHat, DeviceArray bHatT, DeviceArray gate,
                                       float scale, long zBytes, CudaStream stream, OneAdapterLaunches launches) {
        ByteBuffer entry = HostTables.allocate(MIXED_ADAPTER_BYTES);
        putAdapter(entry, aHat.address(), bHatT.address(), gate == null ? 0L : gate.address(), spec, scale);
        try (StreamScratch scratch = new StreamScratch(stream)) {
            scratch.reserve(StreamScratch.footprint(MIXED_ADAPTER_BYTES) + StreamScratch.footprint(zBytes));
            long adapters = HostTables.copyIn(entry, scratch, stream);
            launches.launch(adapters, scratch.allocate(zBytes));
        }
    }

    /**
     * As {@link #forward}, with z = Â·x by {@code foura_project_tiled} instead: tiles of 64 tokens × 32 columns of Â
     * over chunks of x's columns ({@link #tiledChunk}), each sum in k order within its chunk, the chunks' parts added
     * in order by {@code foura_mixed_expand} (which then applies the gate and y += scale·B̂·w as for the other
     * path). x is read once, Â once per tile of tokens. Not the bits of {@link #forward} (another order of the
     * sums), deterministic.
     *
     * @param spec the layer; its α is not applied: pass it in {@code scale}
     * @param x tokens × d_in inputs, any dtype
     * @param aHat Â, width × d_in float32
     * @param bHatT B̂ transposed, width × d_out float32
     * @param gate the gate's parameters, float32; ignored for NONE
     * @param scale α times the adapter's weight
     * @param tokens rows of x and y, at least 1
     * @param y tokens × d_out outputs, any dtype, accumulated into
     * @param stream the stream
     * @throws IllegalArgumentException if the width exceeds {@link #MAX_WIDTH} or an array has the wrong size or dtype
     */
    public void forwardTiled(FouRASpec spec, DeviceArray x, DeviceArray aHat, DeviceArray bHatT, DeviceArray gate,
                             float scale, int tokens, DeviceArray y, CudaStream stream) {
        int width = checkForward(spec, x, aHat, bHatT, gate, tokens, y);
        TiledGrid grid = TiledGrid.of(tokens, width, spec.dIn());
        withOneAdapter(spec, aHat, bHatT, gate, scale, 4L * grid.parts() * tokens * width, stream, (adapters, z) ->
                projectTiledAndExpand(x, adapters, aHat.address(), grid, tokens, spec.dIn(), width, spec.dOut(), z, y,
                        stream));
    }

    /**
     * foura_project_tiled's grid for tokens × width outputs over d_in columns of x: its tiles of tokens and of
     * columns, and x's columns in {@code parts} chunks of {@code chunk} ({@link #tiledChunk}), one part of z each.
     */
    record TiledGrid(int tokenTiles, int columnTiles, int chunk, int parts) {
        static TiledGrid of(int tokens, int width, int dIn) {
            int tokenTiles = (tokens + TILE_TOKENS - 1) / TILE_TOKENS;
            int columnTiles = (width + TILE_COLUMNS - 1) / TILE_COLUMNS;
            int chunk = tiledChunk(tokenTiles * columnTiles, dIn);
            return new TiledGrid(tokenTiles, columnTiles, chunk, (dIn + chunk - 1) / chunk);
        }
    }

    /**
     * The launches of {@link #forwardTiled}: foura_project_tiled into {@code zParts} ({@code grid.parts()} × tokens ×
     * width floats), then foura_mixed_expand over one adapter's tokens, its entry at {@code adapters}.
     */
    void projectTiledAndExpand(DeviceArray x, long adapters, long aHat, TiledGrid grid, int tokens, int dIn, int width,
                               int dOut, long zParts, DeviceArray y, CudaStream stream) {
        launch(PROJECT_TILED, grid.tokenTiles(), grid.columnTiles() * grid.parts(), stream, x.address(), x.dtype().code(),
                aHat, tokens, dIn, width, grid.columnTiles(), grid.chunk(), zParts);
        launch(EXPAND, (tokens + FORWARD_TOKENS - 1) / FORWARD_TOKENS, (dOut + BLOCK - 1) / BLOCK, stream, adapters, 0L,
                0L, tokens, zParts, width, grid.parts(), (long) tokens * width, dOut, y.address(), y.dtype().code());
    }

    /**
     * Columns of x per chunk of foura_project_tiled: all of them where the tiles of tokens and columns reach
     * {@link #TILED_MIN_BLOCKS} blocks, else split into that many chunks, each a multiple of {@link #TILE_K} and
     * at least {@link #TILED_MIN_CHUNK} columns (so small T fills the device and large T reads x in one pass).
     *
     * @param tiles tiles of tokens × tiles of columns
     * @param dIn columns of x
     * @return the chunk, in columns
     */
    static int tiledChunk(int tiles, int dIn) {
        int parts = Math.max(1, (TILED_MIN_BLOCKS + tiles - 1) / tiles);
        int chunk = (dIn + parts - 1) / parts;
        chunk = (chunk + TILE_K - 1) / TILE_K * TILE_K;
        return Math.min(Math.max(chunk, TILED_MIN_CHUNK), (dIn + TILE_K - 1) / TILE_K * TILE_K);
    }

    /** The arguments of a single adapter's forward on these kernels, checked; returns z's width. */
    private static int checkForward(FouRASpec spec, DeviceArray x, DeviceArray aHat, DeviceArray bHatT, DeviceArray gate,
                                    int tokens, DeviceArray y) {
        int width = spec.zWidth();
        Checks.require(width <= MAX_WIDTH, "the forward kernels take at most " + MAX_WIDTH + " components of z, "
                + spec + " has " + width);
        Checks.positive(tokens, "tokens");
        Checks.length("x", x.length(), (long) tokens * spec.dIn());
        Checks.length("y", y.length(), (long) tokens * spec.dOut());
        Checks.length("aHat", aHat.length(), (long) width * spec.dIn());
        Checks.length("bHatT", bHatT.length(), (long) width * spec.dOut());
        Checks.require(aHat.dtype() == DType.FLOAT32 && bHatT.dtype() == DType.FLOAT32, "the folded factors are float32");
        if (spec.gate() != FouRASpec.Gate.NONE) {
            Checks.notNull(gate, "gate");
            Checks.length("gate", gate.length(), spec.gateLength());
            Checks.require(gate.dtype() == DType.FLOAT32, "the gate's parameters are float32");
        }
        return width;
    }

    /**
     * Writes one adapter's {@link #MIXED_ADAPTER_BYTES}-byte entry at the buffer's position (FouRAMixedAdapter in
     * the source): the addresses of Â, B̂ᵀ and the gate's parameters, then gate kind, rank, DFT flag and scale.
     *
     * @param table the table, little-endian (as {@link HostTables#allocate} makes it)
     * @param aHat Â's device address
     * @param bHatT B̂ᵀ's device address
     * @param gate the gate's parameters' device address, 0 for NONE
     * @param spec the adapter's layer
     * @param scale α times the adapter's weight
     */
    static void putAdapter(ByteBuffer table, long aHat, long bHatT, long gate, FouRASpec spec, float scale) {
        table.putLong(aHat).putLong(bHatT).putLong(gate).putInt(spec.gate().ordinal()).putInt(spec.rank())
                .putInt(spec.transform() == FouRASpec.Transform.DFT ? 1 : 0).putFloat(scale);
    }

    /**
     * A batch through the forward kernels, each block's tokens of one adapter: y[row] += that adapter(x[row]),
     * z = Â·x ({@code foura_mixed_project_wide}, {@value #WIDE_COLUMNS} columns per warp, or with
     * {@value #PROJECT_COLUMNS_PROPERTY}{@code =1} {@code foura_mixed_project}, one) then the gate and B̂·w
     * ({@code foura_mixed_expand}, a thread per output).
     *
     * @param x the batch's inputs, any dtype
     * @param adapters device table of {@link #MIXED_ADAPTER_BYTES}-byte entries, each of width at most {@link #MAX_WIDTH}
     * @param blocks device table of {adapter, first, count} int32 triples, count in [1, FORWARD_TOKENS]; 0: block b
     *        is adapter 0's tokens b·{@link #FORWARD_TOKENS} .. of {@code tokens}
     * @param blockCount the number of blocks
     * @param rows device int32 rows of x and y, grouped by adapter; 0: token i is row i
     * @param tokens the tokens (the blocks' firsts and counts cover 0 .. tokens − 1)
     * @param maxWidth the widest adapter's z (2r for the DFT, r for the DCT), at most {@link #MAX_WIDTH}
     * @param dIn input features
     * @param dOut output features
     * @param z device scratch of tokens × maxWidth float32
     * @param y the batch's outputs, any dtype, accumulated into
     * @param stream the stream
     */
    void forwardMixed(DeviceArray x, long adapters, long blocks, int blockCount, long rows, int tokens, int maxWidth,
                      int dIn, int dOut, long z, DeviceArray y, CudaStream stream) {
        boolean narrow = "1".equals(System.getProperty(PROJECT_COLUMNS_PROPERTY));
        int perBlock = WARPS * (narrow ? 1 : WIDE_COLUMNS);
        launch(narrow ? PROJECT : PROJECT_WIDE, blockCount, (maxWidth + perBlock - 1) / perBlock, stream, x.address(),
                x.dtype().code(), adapters, blocks, rows, tokens, dIn, z, maxWidth);
        launch(EXPAND, blockCount, (dOut + BLOCK - 1) / BLOCK, stream, adapters, blocks, rows, tokens, z, maxWidth, 1, 0L,
                dOut, y.address(), y.dtype().code());
    }

    private void launch(String kernel, int gridX, int gridY, CudaStream stream, Object... args) {
        StageTimer.time(kernel, stream, () -> launcher.launch(kernel, gridX, gridY, stream, args));
    }

    private static int gridY(long count) {
        return CommonKernels.gridY(count);
    }

    /**
     * In place: z (tokens × width) becomes the gated, scaled w; z is the first of {@code parts} partial products
     * {@code partStride} floats apart (a split of d_in; 1 for none), summed into it in part order before the gate.
     */
    void gate(FouRASpec spec, long z, int parts, long partStride, long gate, float scale, int tokens, CudaStream s) {
        if (spec.gate() != FouRASpec.Gate.ADAPTIVE) { // a mask of its own: a thread per token and component
            launch(GATE_ELEMENTWISE, elementwiseBlocks(tokens, spec.rank()), 1, s, z, gate, spec.gate().ordinal(),
                    spec.rank(), dft(spec), scale, tokens, parts, partStride);
            return;
        }
        launch(GATE, Math.min(tokens, 65535), 1, s, z, gate, spec.gate().ordinal(), spec.rank(), dft(spec), scale, tokens,
                parts, partStride);
    }

    /** Blocks of the elementwise gate passes: a thread per token and component below the rank. */
    private static int elementwiseBlocks(int tokens, int rank) {
        return Math.toIntExact(((long) tokens * rank + BLOCK - 1) / BLOCK);
    }

    /**
     * The backward's per-token pass (see the kernel): z becomes w, dz becomes ∂L/∂z; ADAPTIVE: dLogit, absZ. z and dz
     * are the first of {@code zParts} and {@code dzParts} partial products {@code partStride} floats apart (splits
     * of d_in and d_out; 1 for none), each summed into its first in part order before the pass.
     */
    void gateBackward(FouRASpec spec, long z, int zParts, long dz, int dzParts, long partStride, long gate, int tokens,
                      long dLogit, long absZ, CudaStream s) {
        if (spec.gate() != FouRASpec.Gate.ADAPTIVE) { // no logits: a thread per token and component
            launch(GATE_BACKWARD_ELEMENTWISE, elementwiseBlocks(tokens, spec.rank()), 1, s, z, dz, gate,
                    spec.gate().ordinal(), spec.rank(), dft(spec), spec.alpha(), tokens, zParts, dzParts, partStride);
            return;
        }
        launch(GATE_BACKWARD, Math.min(tokens, 65535), 1, s, z, dz, gate, spec.gate().ordinal(), spec.rank(), dft(spec),
                spec.alpha(), tokens, dLogit, absZ, zParts, dzParts, partStride);
    }

    /**
     * out (tokens × d, any dtype) += w·m, w tokens × width and m width × d float32 (see foura_add_product), in one
     * launch: every column tile of 128 by every token tile of 64.
     *
     * @param w tokens × width float32, device
     * @param m width × d float32, device, aligned to 16 bytes
     * @param tokens rows of w and out, at least 1, at most {@link #maxAddTokens()}
     * @param width w's columns, m's rows
     * @param d out's columns
     * @param out accumulated into
     * @param s the stream
     */
    void addProduct(long w, long m, int tokens, int width, int d, DeviceArray out, CudaStream s) {
        int elementBytes = out.dtype().bytes();
        boolean vec = d % 4 == 0 && out.address() % (4L * elementBytes) == 0 && m % 16 == 0;
        launch(ADD_PRODUCT, (d + ADD_COLUMNS - 1) / ADD_COLUMNS, (tokens + ADD_TOKENS - 1) / ADD_TOKENS, s, w, m, tokens,
                width, d, out.address(), out.dtype().code(), vec ? 1 : 0);
    }

    /** @return the most tokens {@link #addProduct} takes: a token tile per block row of its grid (65535 rows) */
    static int maxAddTokens() {
        return 65535 * ADD_TOKENS;
    }

    /** dst (d_out × d_in, any dtype) = / += / −= B̂·diag(g)·Â (mode 0, 1, 2). */
    void delta(long bHatT, long aHat, long g, int width, int dOut, int dIn, DeviceArray dst, int mode, CudaStream s) {
        launch(DELTA, CommonKernels.blocks(dIn), gridY(dOut), s, bHatT, aHat, g, width, dOut, dIn, dst.address(),
                dst.dtype().code(), mode);
    }

    /** re/im rows (rows × d) = scale·(Re, imSign·Im) of the full spectra of R2C half spectra (rows × (d/2+1)). */
    void foldExpand(long half, int rows, int d, float scale, float imSign, long re, long im, CudaStream s) {
        launch(FOLD_EXPAND, CommonKernels.blocks(d), gridY(rows), s, half, rows, d, scale, imSign, re, im);
    }

    /** half (rows × (d/2+1) complex) = the Hermitian part of scale·(re + i·imSign·im), for a C2R. */
    void foldHermitian(long re, long im, int rows, int d, float scale, float imSign, long half, CudaStream s) {
        launch(FOLD_HERMITIAN, CommonKernels.blocks(d / 2 + 1), gridY(rows), s, re, im, rows, d, scale, imSign, half);
    }

    /** half (rows × (d/2+1) complex) whose C2R, reordered, is the orthonormal DCT-III of v's rows. */
    void dct3Pre(long v, int rows, int d, long half, CudaStream s) {
        launch(DCT3_PRE, CommonKernels.blocks(d / 2 + 1), gridY(rows), s, v, rows, d, half);
    }

    /** Makhoul's reordering of rows (inverse: the one before a DCT-II's R2C). */
    void dctReorder(long src, int rows, int d, boolean inverse, long dst, CudaStream s) {
        launch(DCT_REORDER, CommonKernels.blocks(d), gridY(rows), s, src, rows, d, inverse ? 1 : 0, dst);
    }

    /** x (rows × d) = the orthonormal DCT-II from the R2C half spectra of the reordered rows. */
    void dct2Post(long half, int rows, int d, long x, CudaStream s) {
        launch(DCT2_POST, CommonKernels.blocks(d), gridY(rows), s, half, rows, d, x);
    }

    /** dst (cols × rows) = srcᵀ, float32. */
    void transpose(long src, int rows, int cols, long dst, CudaStream s) {
        launch(TRANSPOSE, CommonKernels.blocks(cols), gridY(rows), s, src, rows, cols, dst);
    }

    private static int dft(FouRASpec spec) {
        return spec.transform() == FouRASpec.Transform.DFT ? 1 : 0;
    }

    @Override
    public void close() {
        if (module != null) {
            module.close();
        }
    }
}
