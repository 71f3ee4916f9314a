package org.spectralpeft.foura.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;

import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.TokenRows;
import org.spectralpeft.core.WriteMode;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.Blas;
import org.spectralpeft.cuda.internal.DeviceMemoryRegistry;
import org.spectralpeft.cuda.internal.HostCall;
import org.spectralpeft.cuda.internal.HostTables;
import org.spectralpeft.cuda.internal.KernelModule;
import org.spectralpeft.cuda.internal.NativeHandles;
import org.spectralpeft.cuda.internal.StreamScratch;
import org.spectralpeft.foura.FouRAAdapterPool;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.ValidatingBackend;

/**
 * FouRA on a CUDA device: the folded factors held on the device; the forward of a few tokens at small ranks as one
 * launch of {@code foura_forward_small} (each block computes z = Â·x whole, gates it and adds B̂·w into its outputs;
 * {@link FouRAKernels#forwardSmall}), otherwise two cuBLAS SGEMMs around the gate kernel (z = x·Âᵀ, then y +=
 * w·B̂ᵀ), as {@link ForwardRoute} picks; the system property {@value #FORWARD_PROPERTY} can ask for one route, among
 * them this library's forward kernels ({@code =kernels}: {@code foura_mixed_project_wide}, four columns of Â per
 * warp, then {@code foura_mixed_expand}, the gate and a thread per output; {@link FouRAKernels#forwardMixed}), which
 * mixed batches always use, or ({@code =tiled}) {@code foura_project_tiled} before that expansion ({@link
 * FouRAKernels#forwardTiled}); ΔW by {@code foura_delta}. The SGEMMs stay the default above a few tokens because
 * no kernel of this library beat them there on an H100 (bench/NOTES.md, bench/GPU_RUNS.md). The backward's
 * products are SGEMMs ({@link Blas}, no TF32, the same bits
 * on every run): z = x·Âᵀ and ∂L/∂y·B̂ per token, ∂x += ∂z·Â,
 * and the sums over tokens ∂Â = ∂zᵀ·x, ∂B̂ᵀ = wᵀ·∂L/∂y and the ADAPTIVE gate's ∂G and ∂b; between them only
 * the per-token gate pass ({@code foura_gate_backward}) is a kernel of this library. Float16 and bfloat16
 * operands are widened into float32 scratch (the stream's allocator) for the SGEMMs, and a ∂x or y in those
 * dtypes gets the float32 product added through the common epilogue. Host arrays are copied in and out around
 * each call, on a stream of the call's own ({@link HostCall}), so calls from several threads run side by side.
 *
 * <p>The folds run on the device too ({@link DeviceFolds}: batched cuFFT real transforms, the DCT by
 * Makhoul's algorithm): prepare and update copy A and B in and fold them; the backward unfolds ∂Â and ∂B̂
 * there. Prepare, forward, backward, materialize, merge, unmerge, combine and mixed batches also take device
 * arrays on the caller's stream. Ranks up to {@link FouRAKernels#MAX_GATE_RANK}.
 */
public final class CudaFouRA extends ValidatingBackend {
    /**
     * The system property (read once per call, before any device work) that picks the single-adapter forward:
     * {@code auto} (the default: the small kernel for a few tokens at small ranks, the SGEMMs elsewhere; {@link
     * ForwardRoute}), {@code gemm} (two SGEMMs around the gate kernel, always), {@code kernels} (the mixed batches'
     * kernels, their bits), {@code tiled} ({@code foura_project_tiled}, then the mixed batches' expansion; {@link
     * FouRAKernels#forwardTiled}) or {@code small} (at most {@link FouRAKernels#SMALL_TOKENS} tokens: {@code
     * foura_forward_small}, the whole forward in one launch, {@link FouRAKernels#forwardSmall}; more tokens take the
     * SGEMMs). The small kernel never takes an x its vector loads cannot read ({@link FouRAKernels#smallAligned}).
     * Any other value is refused.
     */
    public static final String FORWARD_PROPERTY = "spectralpeft.foura.forward";
    /**
     * The system property (read once per call, before any device work) that splits the SGEMM route's first product
     * z = x·Âᵀ over d_in into 2, 4 or 8 partial products (one strided-batched SGEMM; the gate kernel adds them in
     * order), and the backward's products of the same shapes likewise (z and ∂L/∂y·B̂ over d_in and d_out, ∂Â and ∂B̂ᵀ
     * over the tokens), where that leaves parts of at least 256; 1, no split, by default ({@link ForwardRoute}).
     */
    public static final String SPLIT_PROPERTY = "spectralpeft.foura.splitK";
    /**
     * The system property (read once per call, before any device work) that runs the SGEMM route's products into y
     * (forward) and ∂x (backward), tokens × d over z's width, on {@code foura_add_product} ({@code kernel}) instead
     * of cuBLAS ({@code gemm}, the default until measured on a GPU; {@link ForwardRoute}).
     */
    public static final String EXPAND_PROPERTY = "spectralpeft.foura.expand";
    /**
     * The system property (read per call) for the shortest run of one adapter's consecutive rows that a mixed batch
     * on the device gives to the single-adapter forward instead of its kernels, for tuning.
     */
    public static final String MIXED_RUN_PROPERTY = "spectralpeft.foura.mixedRunTokens";
    /**
     * 1024: from the H100 figures with one adapter, the mixed kernels cost about 0.23 µs per token where a forward
     * call costs about 40 µs plus 0.03 µs per token, so a run pays from about 200 tokens; 1024 leaves room for
     * the faster projection kernel not yet measured there, and for the host's share of a call per run.
     */
    static final int DEFAULT_MIXED_RUN_TOKENS = 1024;

    private final CudaContext context;
    private final boolean ownsContext;
    private final FouRAKernels kernels;
    private final DeviceFolds folds;
    private final AtomicInteger scratchOverflows = new AtomicInteger();

    private CudaFouRA(CudaContext context, boolean ownsContext) {
        this.context = context;
        this.ownsContext = ownsContext;
        context.makeCurrent();
        this.kernels = new FouRAKernels(context.computeCapability(), Boolean.getBoolean("spectralpeft.cuda.debug"));
        this.folds = new DeviceFolds(kernels, context.fftPlans());
    }

    /**
     * Opens device 0.
     *
     * @return the backend; close it when done
     * @throws IllegalStateException if the kernels were not built or a CUDA call fails; missing native
     *         libraries surface as a {@link LinkageError}
     */
    public static CudaFouRA open() {
        KernelModule.requireBuilt(FouRAKernels.MODULE);
        return new CudaFouRA(CudaContext.open(0), true);
    }

    /**
     * A backend on a context the caller owns and shares (with a FourierFT backend, say); closing the backend
     * leaves the context open.
     *
     * @param context an open context, borrowed
     * @return the backend; close it when done
     * @throws IllegalArgumentException if {@code context} is null
     * @throws IllegalStateException if the kernels were not built or the context is closed
     */
    public static CudaFouRA open(CudaContext context) {
        Checks.notNull(context, "context");
        KernelModule.requireBuilt(FouRAKernels.MODULE);
        return new CudaFouRA(context, false);
    }

    /**
     * The context this backend runs in (its own, or the one it was opened on): allocate device arrays and
     * streams for {@link #forward(FouRAFactors, DeviceArray, int, DeviceArray, CudaStream)} from it.
     *
     * @return the context
     */
    public CudaContext context() {
        return context;
    }

    /**
     * y += adapter(x) on device arrays, queued on {@code stream} without waiting for it: x is tokens × d_in,
     * y tokens × d_out, any dtypes, on this backend's device. The factors must stay open and unchanged until
     * the stream has run the work (update or close them after synchronizing it).
     *
     * @param factors the layer's prepared factors, from this backend
     * @param x tokens × d_in inputs
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, accumulated into
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null, an array has the wrong length or is on another
     *         device, or the factors are another backend's
     * @throws IllegalStateException if the backend or the factors are closed
     */
    public void forward(FouRAFactors factors, DeviceArray x, int tokens, DeviceArray y, CudaStream stream) {
        Checks.notNull(factors, "factors");
        Checks.notNull(x, "x");
        Checks.notNull(y, "y");
        Checks.notNull(stream, "stream");
        FouRASpec spec = checkTokens(factors, x, tokens, "y", y);
        ForwardRoute route = ForwardRoute.requested();
        context.makeCurrent();
        forwardOnDevice((Factors) factors, route, x, tokens, y, spec.alpha(), stream);
    }

    /**
     * The mixed batch of {@link #forward(FouRAAdapterPool, int[], HostArray, int, HostArray)} on device arrays,
     * queued on {@code stream} without waiting for it: the forward kernels over the tokens grouped by adapter
     * (one launch of the projection, one of foura_mixed_expand; {@link FouRAKernels#forwardMixed}), each
     * token's result the bits of the single-adapter forward on those kernels; where the tokens are one adapter's
     * in one run of rows (−1s around it), or for each run of consecutive rows of one adapter at least as long as
     * the system property {@value #MIXED_RUN_PROPERTY} says (default {@value #DEFAULT_MIXED_RUN_TOKENS}), the
     * single-adapter forward on the run, with its bits. Every adapter the batch uses must
     * fit them (width 2r for the DFT, r for the DCT, at most {@link FouRAKernels#MAX_WIDTH}); the host-array call
     * also takes wider ones. The adapters are held until
     * the work is queued; removing one later frees it after the work queued on the device.
     *
     * @param pool the adapters, each prepared by this backend
     * @param adapterIds one id per token: an adapter's in the pool, or −1
     * @param x tokens × d_in inputs
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, accumulated into
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null, an array has the wrong length or is on another
     *         device, an id is neither −1 nor in the pool, or a used adapter is another backend's or too wide
     * @throws IllegalStateException if the backend, the pool or a used adapter is closed
     */
    public void forward(FouRAAdapterPool pool, int[] adapterIds, DeviceArray x, int tokens, DeviceArray y,
                        CudaStream stream) {
        Checks.notNull(x, "x");
        Checks.notNull(y, "y");
        Checks.notNull(stream, "stream");
        try (FouRAAdapterPool.Lease lease = checkBatch(pool, adapterIds, tokens)) {
            checkDevice("x", x, (long) tokens * pool.dIn());
            checkDevice("y", y, (long) tokens * pool.dOut());
            for (FouRAFactors f : lease.distinct()) {
                if (!fitsTheKernels(f)) { // the message only for a refusal
                    throw new IllegalArgumentException("a mixed batch on device arrays takes adapters up to width "
                            + FouRAKernels.MAX_WIDTH + " (r <= 128 for the DFT, 256 for the DCT); " + f.spec()
                            + " is wider (use the host-array call)");
                }
            }
            ForwardRoute route = ForwardRoute.requested();
            context.makeCurrent();
            mixedOnDevice(lease.distinct(), lease.grouping(), pool.dIn(), pool.dOut(), route, x, y, stream);
        }
    }

    /**
     * The adapters that fit the forward kernels in one pass on the device; wider ones (rare: r above 128 for the
     * DFT) each through the single-adapter path on their gathered tokens.
     */
    @Override
    protected void runForward(FouRAAdapterPool.Lease lease, HostArray x, HostArray y) {
        FouRAFactors[] distinct = lease.distinct();
        boolean anyNarrow = false;
        for (FouRAFactors f : distinct) {
            anyNarrow |= fitsTheKernels(f);
        }
        if (anyNarrow) {
            FouRASpec spec = distinct[0].spec();
            ForwardRoute route = ForwardRoute.requested();
            try (HostCall call = new HostCall(context)) {
                mixedOnDevice(distinct, lease.grouping(), spec.dIn(), spec.dOut(), route, call.in(x), call.inOut(y),
                        call.stream());
                call.finish();
            }
        }
        for (int a = 0; a < distinct.length; a++) {
            if (!fitsTheKernels(distinct[a])) {
                runForwardOnRows(distinct[a], lease.grouping().tokensOf(a), x, y);
            }
        }
    }

    private static boolean fitsTheKernels(FouRAFactors f) {
        return f.spec().zWidth() <= FouRAKernels.MAX_WIDTH;
    }

    /**
     * The tokens of the adapters that fit the forward kernels (the others are left to the caller), grouped by
     * adapter into blocks of at most {@link FouRAKernels#FORWARD_TOKENS}, and one table (the adapters' entries,
     * the blocks, the rows) copied to the device with one copy per call; or, where the batch is one adapter's
     * tokens in one run of rows (−1s around it), the single-adapter forward on that run; runs of one adapter's
     * rows at least {@link #mixedRunTokens} long likewise, the rest through the kernels.
     */
    private void mixedOnDevice(FouRAFactors[] distinct, TokenRows.Groups grouping, int dIn, int dOut,
                               ForwardRoute route, DeviceArray x, DeviceArray y, CudaStream s) {
        TokenRows.Groups rest = forwardLongRuns(distinct, grouping, mixedRunTokens(), dIn, dOut, route, x, y, s);
        int[] offsets = rest.starts();
        int[] tokens = rest.tokens();
        int adapters = 0;
        int blocks = 0;
        int used = 0;
        int maxWidth = 1;
        for (int a = 0; a < distinct.length; a++) {
            int rows = offsets[a + 1] - offsets[a];
            if (rows > 0 && fitsTheKernels(distinct[a])) { // none left where all went to long runs
                adapters++;
                blocks += (rows + FouRAKernels.FORWARD_TOKENS - 1) / FouRAKernels.FORWARD_TOKENS;
                used += rows;
                maxWidth = Math.max(maxWidth, distinct[a].spec().zWidth());
            }
        }
        if (used == 0) {
            return; // every id is −1 (or every adapter too wide): y unchanged here
        }
        long adapterBytes = (long) FouRAKernels.MIXED_ADAPTER_BYTES * adapters;
        long bytes = adapterBytes + 4L * (3L * blocks + used);
        ByteBuffer table = HostTables.allocate(bytes);
        int adapter = 0;
        int first = 0;
        int blockAt = Math.toIntExact(adapterBytes);
        int rowAt = blockAt + 12 * blocks;
        for (int a = 0; a < distinct.length; a++) {
            if (offsets[a + 1] == offsets[a] || !fitsTheKernels(distinct[a])) {
                continue;
            }
            Factors f = (Factors) distinct[a];
            FouRAKernels.putAdapter(table, f.aHat.array().address(), f.bHatT.array().address(), f.gateAddress(),
                    f.spec(), f.spec().alpha());
            int rows = offsets[a + 1] - offsets[a];
            for (int i = 0; i < rows; i += FouRAKernels.FORWARD_TOKENS) {
                table.putInt(blockAt, adapter).putInt(blockAt + 4, first + i)
                        .putInt(blockAt + 8, Math.min(FouRAKernels.FORWARD_TOKENS, rows - i));
                blockAt += 12;
            }
            for (int i = offsets[a]; i < offsets[a + 1]; i++) {
                table.putInt(rowAt, tokens[i]);
                rowAt += 4;
            }
            first += rows;
            adapter++;
        }
        try (StreamScratch scratch = new StreamScratch(s)) {
            scratch.reserve(StreamScratch.footprint(bytes) + StreamScratch.footprint(4L * used * maxWidth));
            long device = HostTables.copyIn(table, scratch, s);
            long z = scratch.allocate(4L * used * maxWidth);
            kernels.forwardMixed(x, device, device + adapterBytes, blocks, device + adapterBytes + 12L * blocks, used,
                    maxWidth, dIn, dOut, z, y, s);
            countOverflows(scratch);
        }
    }

    /** The single-adapter forward on rows first .. first + count − 1 of x and y. */
    private void forwardRun(Factors f, int first, int count, int dIn, int dOut, ForwardRoute route, DeviceArray x,
                            DeviceArray y, CudaStream s) {
        forwardOnDevice(f, route, x.slice((long) first * dIn, (long) count * dIn), count,
                y.slice((long) first * dOut, (long) count * dOut), f.spec().alpha(), s);
    }

    /**
     * Runs of at least {@code minRun} consecutive rows of one adapter (that fits the kernels), and a run that holds
     * every token of the batch with an adapter, through the single-adapter forward; returns the other tokens,
     * grouped as before (the grouping itself when no run goes).
     */
    private TokenRows.Groups forwardLongRuns(FouRAFactors[] distinct, TokenRows.Groups grouping, int minRun, int dIn,
                                             int dOut, ForwardRoute route, DeviceArray x, DeviceArray y, CudaStream s) {
        int[] offsets = grouping.starts();
        int[] tokens = grouping.tokens();
        int[] restTokens = null;
        int[] restStarts = null;
        int kept = 0;
        for (int a = 0; a < distinct.length; a++) {
            if (restStarts != null) {
                restStarts[a] = kept;
            }
            for (int i = offsets[a]; i < offsets[a + 1]; ) {
                int j = i + 1;
                while (j < offsets[a + 1] && tokens[j] == tokens[j - 1] + 1) {
                    j++;
                }
                // a run of every token of the batch takes it whatever its length (H100, r = 16 DFT, d = 4096: the
                // single forward 55 / 67 / 152 µs at T = 1 / 256 / 4096 against the mixed kernels' 87 / 130 / 961
                // µs with one adapter; bench/GPU_RUNS.md, 2026-11-27)
                if ((j - i >= minRun || j - i == tokens.length) && fitsTheKernels(distinct[a])) {
                    forwardRun((Factors) distinct[a], tokens[i], j - i, dIn, dOut, route, x, y, s);
                    if (restTokens == null) { // the first long run: keep what came before it
                        restTokens = new int[tokens.length];
                        restStarts = new int[distinct.length + 1];
                        System.arraycopy(tokens, 0, restTokens, 0, i);
                        System.arraycopy(offsets, 0, restStarts, 0, a + 1);
                        kept = i;
                    }
                } else if (restTokens != null) {
                    System.arraycopy(tokens, i, restTokens, kept, j - i);
                    kept += j - i;
                }
                i = j;
            }
        }
        if (restTokens == null) {
            return grouping;
        }
        restStarts[distinct.length] = kept;
        return new TokenRows.Groups(restTokens, restStarts);
    }

    /**
     * The shortest run of one adapter's consecutive rows in a mixed batch that takes the single-adapter forward:
     * {@value #MIXED_RUN_PROPERTY}, default {@value #DEFAULT_MIXED_RUN_TOKENS}, at least 1.
     */
    private static int mixedRunTokens() {
        return Math.max(1, Integer.getInteger(MIXED_RUN_PROPERTY, DEFAULT_MIXED_RUN_TOKENS));
    }

    /**
     * What forward and backward on device arrays check first: this backend open, the factors usable by it,
     * tokens ≥ 1, x (tokens × d_in) and the output side's array (tokens × d_out) on this device.
     */
    private FouRASpec checkTokens(FouRAFactors factors, DeviceArray x, int tokens, String outName, DeviceArray out) {
        ensureOpen();
        factors.checkUsableBy(this, "factors");
        FouRASpec spec = factors.spec();
        Checks.positive(tokens, "tokens");
        checkDevice("x", x, (long) tokens * spec.dIn());
        checkDevice(outName, out, (long) tokens * spec.dOut());
        return spec;
    }

    private static void checkRank(FouRASpec spec) {
        Checks.require(spec.rank() <= FouRAKernels.MAX_GATE_RANK, "the CUDA backend takes ranks up to "
                + FouRAKernels.MAX_GATE_RANK + ", " + spec + " has " + spec.rank());
    }

    private void checkDevice(String name, DeviceArray a, long expected) {
        DeviceMemoryRegistry.requireArray(name, a, expected, context.ordinal());
    }

    @Override
    public String description() {
        return "cuda (" + context.describe() + ", " + kernels.image() + ")";
    }

    @Override
    public String toString() {
        return description();
    }

    @Override
    protected FouRAFactors runPrepare(FouRASpec spec, float[] a, float[] b, float[] gate) {
        checkRank(spec);
        context.makeCurrent();
        Factors f = new Factors(spec, this);
        try {
            f.upload(a, b, gate);
        } catch (RuntimeException | Error e) {
            f.close();
            throw e;
        }
        return f;
    }

    @Override
    protected void runForward(FouRAFactors factors, HostArray x, int tokens, HostArray y) {
        ForwardRoute route = ForwardRoute.requested();
        try (HostCall call = new HostCall(context)) {
            forwardOnDevice((Factors) factors, route, call.in(x), tokens, call.inOut(y), factors.spec().alpha(),
                    call.stream());
            call.finish();
        }
    }

    /**
     * y += scale·B̂·w(Â·x) on the device: the small kernel, the forward kernels or two SGEMMs around the gate kernel,
     * as {@code route} picks ({@link ForwardRoute}).
     */
    private void forwardOnDevice(Factors f, ForwardRoute route, DeviceArray x, int tokens, DeviceArray y, float scale,
                                 CudaStream s) {
        FouRASpec spec = f.spec();
        int width = spec.zWidth();
        DeviceArray gate = f.gate == null ? null : f.gate.array();
        if (route.takesSmall(spec, x, tokens)) {
            kernels.forwardSmall(spec, x, f.aHat.array(), f.bHatT.array(), gate, scale, tokens, y, s);
            return;
        }
        if (route.takesKernels(spec)) {
            if (route.kind() == ForwardRoute.Kind.TILED) {
                kernels.forwardTiled(spec, x, f.aHat.array(), f.bHatT.array(), gate, scale, tokens, y, s);
            } else {
                kernels.forward(spec, x, f.aHat.array(), f.bHatT.array(), gate, scale, tokens, y, s);
            }
            return;
        }
        Blas blas = context.blas();
        int parts = ForwardRoute.parts(route.splitParts(), spec.dIn());
        try (StreamScratch scratch = new StreamScratch(s)) {
            scratch.reserve(StreamScratch.footprint(4L * parts * tokens * width) + widened(x, tokens, spec.dIn())
                    + productScratch(route, y, tokens, spec.dOut()));
            long z = scratch.allocate(4L * parts * tokens * width);
            long x32 = context.commonKernels().asFloat32(x, scratch, s);
            splitProduct(blas, false, true, tokens, width, spec.dIn(), x32, f.aHat.array().address(), z, parts,
                    s); // z = x·Âᵀ, in parts of d_in where asked
            kernels.gate(spec, z, parts, (long) tokens * width, f.gateAddress(), scale, tokens, s);
            addProduct(blas, route, z, f.bHatT.array().address(), tokens, width, spec.dOut(), y, scratch, s);
            countOverflows(scratch);
        }
    }

    /**
     * c = op(a)·op(b) (row-major float32, m × n, inner k, op(a) = a or aᵀ with a's rows as stored) in one SGEMM, or,
     * with parts > 1, as that many products over equal parts of k, c_p = op(a_p)·op(b_p), each m × n, one after the
     * other in c (one strided-batched SGEMM), for a kernel that adds them in order.
     */
    private static void splitProduct(Blas blas, boolean transA, boolean transB, int m, int n, int k, long a, long b,
                                     long c, int parts, CudaStream s) {
        int lda = transA ? m : k;
        int ldb = transB ? k : n;
        if (parts == 1) {
            blas.gemm(s, transA, transB, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
            return;
        }
        int part = k / parts;
        // a part of k is a block of columns of an operand stored k-minor (its rows k long), of rows otherwise
        long strideA = transA ? (long) part * lda : part;
        long strideB = transB ? part : (long) part * ldb;
        blas.gemmStridedBatched(s, transA, transB, m, n, part, 1f, a, lda, strideA, b, ldb, strideB, 0f, c, n,
                (long) m * n, parts);
    }

    /**
     * c (m × n) = aᵀ·b over the k rows of a (k × m) and b (k × n): with parts > 1 as that many products over equal
     * parts of the rows into {@code partial} ({@link #splitProduct}), then added in order into c.
     */
    private void summedProduct(Blas blas, int m, int n, int k, long a, long b, long c, int parts, long partial,
                               CudaStream s) {
        splitProduct(blas, true, false, m, n, k, a, b, parts > 1 ? partial : c, parts, s);
        if (parts > 1) {
            context.commonKernels().sumParts(partial, (long) m * n, parts, (long) m * n, c, s);
        }
    }

    /** The footprint of a float32 copy of a tokens × d array that is not float32 already (0 if it is). */
    private static long widened(DeviceArray a, int tokens, int d) {
        return a == null || a.dtype() == DType.FLOAT32 ? 0 : StreamScratch.footprint(4L * tokens * d);
    }

    /**
     * The footprint of {@link #addProduct}'s scratch into out (tokens × d, or null): the float32 product that cuBLAS
     * writes for an out of another dtype; none where out is float32 or the product runs on foura_add_product.
     */
    private static long productScratch(ForwardRoute route, DeviceArray out, int tokens, int d) {
        return route.expandsOnKernel(tokens) ? 0 : widened(out, tokens, d);
    }

    /**
     * Scratch allocations that missed their call's reservation, since this backend opened: each is a driver call
     * the reservation meant to save, so a miss is a bug in the footprint arithmetic (tests expect 0).
     *
     * @return the count
     */
    int scratchOverflows() {
        return scratchOverflows.get();
    }

    private void countOverflows(StreamScratch scratch) {
        if (scratch.overflows() > 0) {
            scratchOverflows.addAndGet(scratch.overflows());
        }
    }

    /**
     * out (tokens × d, any dtype) += w·M, w tokens × width and M width × d float32: on foura_add_product where the
     * route asks ({@link ForwardRoute#expandsOnKernel}); else a float32 out accumulates in the SGEMM (β = 1) and
     * another dtype gets the float32 product through the epilogue, rounded once.
     */
    private void addProduct(Blas blas, ForwardRoute route, long w, long m, int tokens, int width, int d,
                            DeviceArray out, StreamScratch scratch, CudaStream s) {
        if (route.expandsOnKernel(tokens)) {
            kernels.addProduct(w, m, tokens, width, d, out, s);
            return;
        }
        if (out.dtype() == DType.FLOAT32) {
            blas.gemm(s, false, false, tokens, d, width, 1f, w, width, m, d, 1f, out.address(), d);
            return;
        }
        long product = scratch.allocate(4L * tokens * d);
        blas.gemm(s, false, false, tokens, d, width, 1f, w, width, m, d, 0f, product, d);
        context.commonKernels().epilogue(product, d, out, tokens, d, WriteMode.ADD.code(), s);
    }

    @Override
    protected void runCombine(FouRAFactors[] adapters, float[] weights, HostArray x, int tokens, HostArray y) {
        ForwardRoute route = ForwardRoute.requested();
        try (HostCall call = new HostCall(context)) {
            combineOnDevice(adapters, weights, route, call.in(x), tokens, call.inOut(y), call.stream());
            call.finish();
        }
    }

    /**
     * {@link #combine} on device arrays, queued on the caller's stream: y += Σ_k weight_k·adapter_k(x), the
     * adapters of one layer. The same checks and kernels as the host-array call (the same bits), the sum
     * accumulated in float32 scratch and rounded into y once; like {@link #forward(FouRAFactors, DeviceArray,
     * int, DeviceArray, CudaStream)}, x is not scanned for NaN.
     *
     * @param adapters the layer's prepared adapters, from this backend
     * @param weights one finite weight per adapter
     * @param x tokens × d_in inputs
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, accumulated into
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null, an array has the wrong length or is on another
     *         device, the adapters are empty, of different layers or another backend's, or a weight is missing or
     *         not finite
     * @throws IllegalStateException if the backend or an adapter is closed
     */
    public void combine(FouRAFactors[] adapters, float[] weights, DeviceArray x, int tokens, DeviceArray y,
                        CudaStream stream) {
        Checks.notNull(adapters, "adapters");
        Checks.notNull(weights, "weights");
        Checks.notNull(x, "x");
        Checks.notNull(y, "y");
        Checks.notNull(stream, "stream");
        checkCombined(adapters, weights);
        FouRASpec spec = adapters[0].spec();
        Checks.positive(tokens, "tokens");
        checkDevice("x", x, (long) tokens * spec.dIn());
        checkDevice("y", y, (long) tokens * spec.dOut());
        ForwardRoute route = ForwardRoute.requested();
        context.makeCurrent();
        combineOnDevice(adapters, weights, route, x, tokens, y, stream);
    }

    /** The adapters accumulate in float32 scratch and y is rounded once, as the CPU backend does. */
    private void combineOnDevice(FouRAFactors[] adapters, float[] weights, ForwardRoute route, DeviceArray x,
                                 int tokens, DeviceArray y, CudaStream s) {
        int dOut = adapters[0].spec().dOut();
        long elements = (long) tokens * dOut;
        try (StreamScratch scratch = new StreamScratch(s)) {
            long sum = scratch.allocate(4L * elements);
            cuMemsetD32Async(NativeHandles.devicePointer(sum), 0, elements, s.jcuda());
            DeviceArray sumArray = DeviceArray.foreign(sum, elements, DType.FLOAT32);
            for (int k = 0; k < adapters.length; k++) {
                forwardOnDevice((Factors) adapters[k], route, x, tokens, sumArray, adapters[k].spec().alpha() * weights[k],
                        s);
            }
            context.commonKernels().epilogue(sum, dOut, y, tokens, dOut, 1, s);
        }
    }

    @Override
    protected void runBackward(FouRAFactors factors, HostArray x, HostArray gradY, int tokens,
                               float[] gradA, float[] gradB, float[] gradGate, HostArray gradX) {
        ForwardRoute route = ForwardRoute.requested();
        try (HostCall call = new HostCall(context)) {
            DeviceArray gGate = gradGate == null ? null : call.out(HostArray.float32(gradGate)); // only ADAPTIVE has one
            backwardOnDevice((Factors) factors, route, call.in(x), call.in(gradY), tokens,
                    call.out(HostArray.float32(gradA)).address(), call.out(HostArray.float32(gradB)).address(),
                    gGate == null ? 0L : gGate.address(), gradX == null ? null : call.inOut(gradX), call.stream());
            call.finish();
        }
    }

    /**
     * The backward on the device, queued on {@code s}: ∂A (r × d_in) at gradA, ∂B (d_out × r) at gradB, the
     * ADAPTIVE gate's ∂G then ∂b at gradGate (when not 0), ∂x accumulated into gradX (when not null). Every
     * product over features or tokens is a cuBLAS SGEMM (default math mode: no TF32, the same bits on every run
     * on one device); only the per-token gate pass is a kernel of ours. With {@code split} > 1 ({@value
     * #SPLIT_PROPERTY}) the products whose output is tokens × 2r or 2r × d (z, ∂L/∂y·B̂, ∂Â, ∂B̂ᵀ) run over that many
     * parts of their inner dimension where it has parts of at least 256, the parts added in order by the gate pass
     * or {@code spectralpeft_sum_parts}.
     */
    private void backwardOnDevice(Factors f, ForwardRoute route, DeviceArray x, DeviceArray gradY, int tokens,
                                  long gradA, long gradB, long gradGate, DeviceArray gradX, CudaStream s) {
        int split = route.splitParts();
        FouRASpec spec = f.spec();
        int width = spec.zWidth();
        int r = spec.rank();
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        boolean adaptive = spec.gate() == FouRASpec.Gate.ADAPTIVE;
        boolean dft = spec.transform() == FouRASpec.Transform.DFT;
        long aHat = f.aHat.array().address();
        long bHatT = f.bHatT.array().address();
        Blas blas = context.blas();
        try (StreamScratch scratch = new StreamScratch(s)) {
            // every buffer below as one block: two driver calls per backward instead of two per buffer
            boolean gateGradient = adaptive && gradGate != 0L;
            int zParts = ForwardRoute.parts(split, dIn);
            int dzParts = ForwardRoute.parts(split, dOut);
            int tokenParts = ForwardRoute.parts(split, tokens);
            long sums = tokenParts > 1 ? StreamScratch.footprint(4L * tokenParts * width * Math.max(dIn, dOut)) : 0;
            scratch.reserve(widened(x, tokens, dIn) + widened(gradY, tokens, dOut)
                    + StreamScratch.footprint(4L * zParts * tokens * width)
                    + StreamScratch.footprint(4L * dzParts * tokens * width) + sums
                    + (adaptive ? 2 * StreamScratch.footprint(4L * tokens * r) : 0)
                    + StreamScratch.footprint(4L * width * dIn) + StreamScratch.footprint(4L * width * dOut)
                    + StreamScratch.footprint(4L * r * dOut) + productScratch(route, gradX, tokens, dIn)
                    + folds.unfoldFootprint(dft, r, dIn) + folds.unfoldFootprint(dft, r, dOut)
                    + (gateGradient ? StreamScratch.footprint(4L * tokens) : 0));
            long x32 = context.commonKernels().asFloat32(x, scratch, s);
            long g32 = context.commonKernels().asFloat32(gradY, scratch, s);
            long z = scratch.allocate(4L * zParts * tokens * width);
            long dz = scratch.allocate(4L * dzParts * tokens * width);
            long dLogit = adaptive ? scratch.allocate(4L * tokens * r) : 0L;
            long absZ = adaptive ? scratch.allocate(4L * tokens * r) : 0L;
            long dAHat = scratch.allocate(4L * width * dIn);
            long dBHatT = scratch.allocate(4L * width * dOut);
            long dBT = scratch.allocate(4L * r * dOut);
            long partial = tokenParts > 1 ? scratch.allocate(4L * tokenParts * width * Math.max(dIn, dOut)) : 0L;
            splitProduct(blas, false, true, tokens, width, dIn, x32, aHat, z, zParts, s); // z = x·Âᵀ
            splitProduct(blas, false, true, tokens, width, dOut, g32, bHatT, dz, dzParts, s); // ∂L/∂y·B̂
            kernels.gateBackward(spec, z, zParts, dz, dzParts, (long) tokens * width, f.gateAddress(), tokens, dLogit,
                    absZ, s);
            if (gradX != null) {
                addProduct(blas, route, dz, aHat, tokens, width, dIn, gradX, scratch, s); // ∂x += ∂z·Â
            }
            // ∂Â = ∂zᵀ·x and ∂B̂ᵀ = wᵀ·∂L/∂y (z now holds w), each split over the tokens where asked
            summedProduct(blas, width, dIn, tokens, dz, x32, dAHat, tokenParts, partial, s);
            summedProduct(blas, width, dOut, tokens, z, g32, dBHatT, tokenParts, partial, s);
            folds.unfold(dft, r, dIn, dAHat, gradA, 1f, scratch, s);
            folds.unfold(dft, r, dOut, dBHatT, dBT, -1f, scratch, s);
            kernels.transpose(dBT, r, dOut, gradB, s);
            if (gateGradient) {
                blas.gemm(s, true, false, r, r, tokens, 1f, dLogit, r, absZ, r, 0f, gradGate, r); // ∂G = ∂logitᵀ·|z|
                long ones = scratch.allocate(4L * tokens);
                cuMemsetD32Async(NativeHandles.devicePointer(ones), Float.floatToRawIntBits(1f), tokens, s.jcuda());
                // ∂b = 1ᵀ·∂logit
                blas.gemm(s, false, false, 1, r, tokens, 1f, ones, tokens, dLogit, r, 0f, gradGate + 4L * r * r, r);
            }
            countOverflows(scratch);
        }
    }

    /**
     * Backward of {@link #forward(FouRAFactors, DeviceArray, int, DeviceArray, CudaStream)} on device arrays,
     * queued on {@code stream} without waiting: gradA (r × d_in) and gradB (d_out × r) overwritten, gradGate
     * (ADAPTIVE only, r² + r, or null) overwritten, gradX (tokens × d_in, or null) accumulated into; the
     * gradients float32, x, gradY and gradX any dtype.
     *
     * @param factors the layer's prepared factors, from this backend
     * @param x tokens × d_in inputs of the forward
     * @param gradY tokens × d_out gradient ∂L/∂y
     * @param tokens rows of x and gradY, at least 1
     * @param gradA r × d_in float32, overwritten with ∂L/∂A
     * @param gradB d_out × r float32, overwritten with ∂L/∂B
     * @param gradGate r² + r float32 for the ADAPTIVE gate, or null; null for NONE and FIXED
     * @param gradX tokens × d_in accumulating ∂L/∂x, or null
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException for a null required argument, a wrong length or dtype, an array on
     *         another device, or factors of another backend
     * @throws IllegalStateException if the backend or the factors are closed
     */
    public void backward(FouRAFactors factors, DeviceArray x, DeviceArray gradY, int tokens, DeviceArray gradA,
                         DeviceArray gradB, DeviceArray gradGate, DeviceArray gradX, CudaStream stream) {
        Checks.notNull(factors, "factors");
        Checks.notNull(x, "x");
        Checks.notNull(gradY, "gradY");
        Checks.notNull(gradA, "gradA");
        Checks.notNull(gradB, "gradB");
        Checks.notNull(stream, "stream");
        FouRASpec spec = checkTokens(factors, x, tokens, "gradY", gradY);
        checkFloat32("gradA", gradA, spec.aLength());
        checkFloat32("gradB", gradB, spec.bLength());
        if (gradGate != null) {
            requireLearnableGate(spec);
            checkFloat32("gradGate", gradGate, spec.gateLength());
        }
        if (gradX != null) {
            checkDevice("gradX", gradX, (long) tokens * spec.dIn());
        }
        ForwardRoute route = ForwardRoute.requested();
        context.makeCurrent();
        backwardOnDevice((Factors) factors, route, x, gradY, tokens, gradA.address(), gradB.address(),
                gradGate == null ? 0L : gradGate.address(), gradX, stream);
    }

    /**
     * {@link #prepare} from device arrays (float32 A, r × d_in; B, d_out × r; the gate's parameters, or null for
     * NONE), folded on the device. The small gate vector is read back to check the FIXED mask and to build
     * ΔW's factors; A and B are not scanned for NaN on the device (as for every device-array entry point). Waits
     * for {@code stream} before it returns, so that the factors are ready on any stream.
     *
     * @param spec the layer
     * @param a A on this device
     * @param b B on this device
     * @param gate the gate's parameters on this device, or null for NONE
     * @param stream the stream the folds are queued on
     * @return the factors; the caller closes them
     * @throws IllegalArgumentException for a null required argument, a wrong length or dtype, an array on
     *         another device, or a mask value other than 0 and 1
     * @throws IllegalStateException if the backend is closed
     */
    public FouRAFactors prepare(FouRASpec spec, DeviceArray a, DeviceArray b, DeviceArray gate, CudaStream stream) {
        Checks.notNull(spec, "spec");
        Checks.notNull(a, "A");
        Checks.notNull(b, "B");
        Checks.notNull(stream, "stream");
        ensureOpen();
        checkRank(spec);
        checkFloat32("A", a, spec.aLength());
        checkFloat32("B", b, spec.bLength());
        float[] gateParams = null;
        if (spec.gateLength() > 0) {
            Checks.notNull(gate, "gate");
            checkFloat32("gate", gate, spec.gateLength());
            context.makeCurrent();
            gateParams = new float[(int) spec.gateLength()];
            stream.synchronize(); // the gate may have been written on this stream
            jcuda.driver.JCudaDriver.cuMemcpyDtoH(jcuda.Pointer.to(gateParams),
                    NativeHandles.devicePointer(gate.address()), 4L * gateParams.length);
            FouRAFactors.checkGate(spec, gateParams);
        } else {
            Checks.require(gate == null, "the NONE gate has no parameters, but gate is not null");
        }
        context.makeCurrent();
        Factors f = new Factors(spec, this);
        try {
            f.fold(a.address(), b.address(), gateParams, stream);
        } catch (RuntimeException | Error e) {
            f.close();
            throw e;
        }
        return f;
    }

    private void checkFloat32(String name, DeviceArray a, long expected) {
        DeviceMemoryRegistry.requireFloat32(name, a, expected, context.ordinal());
    }

    @Override
    protected void runMaterialize(FouRAFactors factors, HostArray out) {
        writeDeltaW((Factors) factors, out, 0);
    }

    @Override
    protected void runMerge(FouRAFactors factors, HostArray weight, boolean subtract) {
        writeDeltaW((Factors) factors, weight, subtract ? 2 : 1);
    }

    /**
     * ΔW into a device array (d_out × d_in, any dtype), queued on {@code stream}: {@code out = ΔW}. NONE and
     * FIXED gates. The result is not scanned for overflow on the device (host-array materialize does).
     *
     * @param factors the layer's prepared factors, from this backend
     * @param out d_out × d_in, overwritten
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException for a null argument, a wrong length, an array on another device, the
     *         ADAPTIVE gate, or factors of another backend
     * @throws IllegalStateException if the backend or the factors are closed
     */
    public void materialize(FouRAFactors factors, DeviceArray out, CudaStream stream) {
        deltaOnDevice(factors, "out", out, 0, stream);
    }

    /**
     * weight += ΔW on a device array (d_out × d_in, any dtype), in place, queued on {@code stream}.
     *
     * @param factors the layer's prepared factors, from this backend
     * @param weight d_out × d_in, updated in place
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException as {@link #materialize(FouRAFactors, DeviceArray, CudaStream)} does
     * @throws IllegalStateException if the backend or the factors are closed
     */
    public void merge(FouRAFactors factors, DeviceArray weight, CudaStream stream) {
        deltaOnDevice(factors, "weight", weight, 1, stream);
    }

    /**
     * weight −= ΔW on a device array, in place, queued on {@code stream}: undoes {@link #merge(FouRAFactors,
     * DeviceArray, CudaStream)} up to the weight dtype's rounding.
     *
     * @param factors the layer's prepared factors, from this backend
     * @param weight d_out × d_in, updated in place
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException as {@link #materialize(FouRAFactors, DeviceArray, CudaStream)} does
     * @throws IllegalStateException if the backend or the factors are closed
     */
    public void unmerge(FouRAFactors factors, DeviceArray weight, CudaStream stream) {
        deltaOnDevice(factors, "weight", weight, 2, stream);
    }

    private void deltaOnDevice(FouRAFactors factors, String name, DeviceArray dst, int mode, CudaStream stream) {
        Checks.notNull(factors, "factors");
        Checks.notNull(dst, name);
        Checks.notNull(stream, "stream");
        ensureOpen();
        factors.checkUsableBy(this, "factors");
        FouRASpec spec = factors.spec();
        requireMergeable(spec);
        checkDevice(name, dst, (long) spec.dOut() * spec.dIn());
        context.makeCurrent();
        delta((Factors) factors, dst, mode, stream);
    }

    /** dst = / += / −= ΔW (mode 0, 1, 2) = B̂·diag(α·m')·Â, queued on {@code s}. */
    private void delta(Factors f, DeviceArray dst, int mode, CudaStream s) {
        FouRASpec spec = f.spec();
        kernels.delta(f.bHatT.array().address(), f.aHat.array().address(), f.componentScale.array().address(),
                spec.zWidth(), spec.dOut(), spec.dIn(), dst, mode, s);
    }

    private void writeDeltaW(Factors f, HostArray dst, int mode) {
        try (HostCall call = new HostCall(context)) {
            delta(f, call.inOut(dst), mode, call.stream());
            call.finish();
        }
    }

    @Override
    public void close() {
        if (markClosed()) {
            try {
                if (!context.isClosed()) {
                    context.makeCurrent();
                    kernels.close();
                }
            } finally {
                if (ownsContext) {
                    context.close();
                }
            }
        }
    }

    /** Â, B̂ᵀ, the gate's parameters and the per-component factors α·m' of ΔW, on the device. */
    private final class Factors extends FouRAFactors {
        private final DeviceBuffer aHat;
        private final DeviceBuffer bHatT;
        private final DeviceBuffer gate;
        private final DeviceBuffer componentScale;

        Factors(FouRASpec spec, CudaFouRA owner) {
            super(spec, owner);
            int width = spec.zWidth();
            DeviceBuffer a = null;
            DeviceBuffer b = null;
            DeviceBuffer g = null;
            DeviceBuffer c = null;
            try {
                a = context.allocate(DType.FLOAT32, (long) width * spec.dIn());
                b = context.allocate(DType.FLOAT32, (long) width * spec.dOut());
                g = spec.gateLength() == 0 ? null : context.allocate(DType.FLOAT32, spec.gateLength());
                c = context.allocate(DType.FLOAT32, width);
            } catch (RuntimeException | Error e) {
                for (DeviceBuffer d : new DeviceBuffer[] {a, b, g, c}) {
                    if (d != null) {
                        d.close();
                    }
                }
                throw e;
            }
            aHat = a;
            bHatT = b;
            gate = g;
            componentScale = c;
        }

        long gateAddress() {
            return gate == null ? 0L : gate.array().address();
        }

        /** Copies A and B in and folds them on the device, on a stream of its own. */
        void upload(float[] a, float[] b, float[] gateParams) {
            try (HostCall call = new HostCall(context)) {
                fold(call.in(HostArray.float32(a)).address(), call.in(HostArray.float32(b)).address(), gateParams,
                        call.stream());
            }
        }

        /**
         * Â and B̂ᵀ from A and B on the device (B transposed to rows, then {@link DeviceFolds#fold}), and the gate
         * and ΔW's per-component factors α·m' from the host; waits for {@code s}.
         */
        void fold(long a, long b, float[] gateParams, CudaStream s) {
            FouRASpec spec = spec();
            int width = spec.zWidth();
            int r = spec.rank();
            boolean dft = spec.transform() == FouRASpec.Transform.DFT;
            float[] scale = new float[width];
            for (int i = 0; i < r; i++) {
                float m = spec.gate() == FouRASpec.Gate.FIXED ? gateParams[i] : 1f;
                scale[i] = spec.alpha() * m;
                if (width > r) {
                    scale[r + i] = -spec.alpha() * m;
                }
            }
            try (StreamScratch scratch = new StreamScratch(s)) {
                long bT = scratch.allocate(4L * r * spec.dOut());
                kernels.transpose(b, spec.dOut(), r, bT, s);
                folds.fold(dft, r, spec.dIn(), a, aHat.array().address(), 1f, scratch, s);
                folds.fold(dft, r, spec.dOut(), bT, bHatT.array().address(), -1f, scratch, s);
            }
            s.synchronize(); // the factors are ready for any stream, and A and B may be freed
            componentScale.copyFrom(HostArray.float32(scale));
            if (gate != null) {
                gate.copyFrom(HostArray.float32(gateParams));
            }
        }

        @Override
        protected void recompute(float[] a, float[] b, float[] gateParams) {
            upload(a, b, gateParams);
        }

        @Override
        protected void release() {
            if (!context.isClosed()) {
                context.makeCurrent();
                cuCtxSynchronize(); // work queued with these factors (device-array calls, mixed batches) ends first
                for (DeviceBuffer d : new DeviceBuffer[] {aHat, bHatT, gate, componentScale}) {
                    if (d != null) {
                        d.close();
                    }
                }
            }
        }
    }
}
