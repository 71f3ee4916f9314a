package org.spectralpeft.fourierft.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.TokenRows;
import org.spectralpeft.core.WriteMode;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.FftPlans.Direction;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.DeviceMemoryRegistry;
import org.spectralpeft.cuda.internal.FftPlans;
import org.spectralpeft.cuda.internal.HostCall;
import org.spectralpeft.cuda.internal.HostTables;
import org.spectralpeft.cuda.internal.NativeHandles;
import org.spectralpeft.cuda.internal.StageTimer;
import org.spectralpeft.cuda.internal.StreamScratch;
import org.spectralpeft.fourierft.FourierFTAdapterPool;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.ResolvedBatch;
import org.spectralpeft.fourierft.ValidatingBackend;

/**
 * The CUDA backend: cuFFT for the transforms, the kernels of {@code kernels/fourierft.cu} around them.
 *
 * <p>Device entry points take {@link DeviceArray}s (library buffers or a framework's raw pointers) and a
 * {@link CudaStream}; they only queue work on that stream and return. Scratch memory comes from the
 * stream-ordered allocator and is released in stream order. The host-array methods of
 * {@link org.spectralpeft.fourierft.FourierFTBackend} copy in, run on a private stream, and copy out.
 *
 * <p>Thread safety: every method may be called from any thread, concurrently, with the usual CUDA rule
 * that calls sharing output arrays must be ordered by the caller (same stream, or events). {@link #close()}
 * must not race with calls still in progress. Calls make the device's primary context current on the
 * calling thread and leave it current. The first call with a new spec or transform shape uploads tables
 * and creates cuFFT plans (synchronizing), so warm up before capturing a CUDA graph, with outputs of the
 * same dtype and alignment (a float32 output that is not 8-byte aligned takes other plans).
 * Inputs in device memory are not scanned for NaN (that would cost a pass and a synchronization); the
 * host-array methods do check them.
 *
 * <p>Algorithms (DESIGN.md): materialize = the Hermitian half spectrum (s folded in) transformed by C2R,
 * written straight into a float32 output, or C2R in place and a converting epilogue for 16-bit outputs and
 * for merge (no separate ΔW buffer); for sparse spectra the transform down the columns is computed
 * directly from the nonzero bins, so only row transforms run through cuFFT (see {@link #inverse2d});
 * forward = R2C of x, gather/scale/scatter, C2R in place, accumulate into y; backward = the same with the
 * axes swapped, plus a two-stage deterministic reduction over tokens for ∂L/∂c; ∂L/∂c from ∂L/∂ΔW = row
 * R2C transforms, then each coefficient sums its one 2-D bin down its column (see gradByColumnAnalysis).
 */
public final class CudaFourierFT extends ValidatingBackend {
    /** Tokens per partial sum in the unmaterialized ∂L/∂c (fixes the reduction order). */
    private static final int GRAD_TILE_TOKENS = 64;
    private static final int MAX_CACHED_SPECS = 256;

    /**
     * System property choosing the mixed batch's gather/scatter kernel, read per call: {@code rows} (the default)
     * stages each token's coefficient row in shared memory first ({@code fourierft_gather_scatter_mixed_rows}, for
     * n up to 12,288); {@code bins} reads the row from the pool's table per entry ({@code
     * fourierft_gather_scatter_mixed}, also where n is larger). Both give the same bits; the property is for
     * measuring one against the other.
     */
    public static final String MIXED_GATHER_PROPERTY = "spectralpeft.fourierft.mixedGather";

    /**
     * System property choosing the unmaterialized forward and backward, read per call. {@code auto} (the default) and
     * {@code fused} run the whole forward of a token in one block ({@code fourierft_forward_fused}: both transforms
     * in shared memory, one launch, no scratch) where d_in and d_out are lengths it takes (halves a power of two times
     * 1, 3, 5 or 7) and the block's shared memory holds both half spectra and a coefficient row ({@link
     * FusedForward}), for single adapters and mixed batches alike, and the backward through {@code
     * fourierft_backward_fused} (x's and ∂L/∂y's rows transformed in shared memory, each token's ∂L/∂c products and
     * its ∂L/∂x in one launch, the products summed over tokens in fixed tiles); other layers take the cuFFT route.
     * {@code cufft} asks for the cuFFT route everywhere: cuFFT's R2C of x, the gather/scatter kernel, cuFFT's C2R and
     * the accumulating epilogue. The two agree within float32 rounding, not bit for bit; why the fused kernels are
     * the default is in {@link FusedForward}. Any other value is refused when a call reads it.
     */
    public static final String FORWARD_PROPERTY = "spectralpeft.fourierft.forward";

    /**
     * System property choosing how the fused kernels' FFTs pass over shared memory, read per call, for layers whose
     * lengths are powers of two: {@code radix4} (the default) two radix-2 stages per pass, {@code radix8} three
     * where they can be ({@code fourierft_forward_fused_pass8}, {@code fourierft_backward_fused_pass8}: one pass and
     * one barrier fewer per FFT at 4096 points, 40 registers against 32). The same operations either way: the same bits
     * on the emulator, float32 rounding apart on a GPU where ptxas contracts the complex products into fused
     * multiply-adds differently in the two kernels; the property is for timing one against the other. Any other
     * value is refused when a call reads it.
     */
    public static final String FFT_PASS_PROPERTY = "spectralpeft.fourierft.fftPass";

    private final CudaContext context;
    /** False when opened on a borrowed context, which close() leaves open. */
    private final boolean ownsContext;
    private final FourierFTKernels kernels;
    /** The context's shared kernels: epilogues and dtype widening. */
    private final CommonKernels common;
    private final FftPlans plans;
    /** Bytes of synthesized rows per chunk on the column-synthesis path (see {@link ColumnChunks}). */
    private final long columnChunkBytes;
    /**
     * spectralpeft.cuda.debug, read at open (so a test can set it first): a synchronization after each launch
     * (in the kernels), and a check of each call's scratch reservation.
     */
    private final boolean debug = Boolean.getBoolean("spectralpeft.cuda.debug");
    /**
     * Device tables per index set: specs that differ only in α (adapters of one index set, or a pool's index set and
     * its adapters' single-adapter calls) share one entry, so k α's hold one copy of the tables, not k.
     */
    private final Map<FourierFTSpec.IndexSetKey, SpecResources> specs = new LinkedHashMap<>(16, 0.75f, true);
    /** The mixed batches' pools, kept on the device. */
    private final DevicePools devicePools;

    /**
     * Device tables of an index set, and of its transpose when d_in = 1 turns 2-D work into 1-D or when materialize
     * runs its row transforms along d_out ({@link #transformsAlongOut}). {@code users} counts calls between
     * {@link #acquire} and {@link #release}; only unused entries are evicted. Its specs carry the α of the call
     * that made the entry, which later calls of the same index set need not share: they give shapes and tables
     * only, and every scale comes from the caller's spec.
     */
    private static final class SpecResources implements AutoCloseable {
        final DeviceSpecTables tables;
        final FourierFTSpec spec2d;
        final DeviceSpecTables tables2d;
        /** What the column-synthesis path of materialize works in: spec2d, or its transpose (rows of ΔWᵀ). */
        final FourierFTSpec synthesisSpec;
        final DeviceSpecTables synthesisTables;
        int users;

        SpecResources(FourierFTSpec spec) {
            tables = new DeviceSpecTables(spec);
            boolean oneD = spec.dIn() == 1 && spec.dOut() > 1;
            boolean alongOut = transformsAlongOut(spec);
            FourierFTSpec other = oneD || alongOut ? spec.transposed() : spec;
            DeviceSpecTables t = tables;
            if (other != spec) {
                try {
                    t = new DeviceSpecTables(other);
                } catch (RuntimeException e) {
                    tables.close();
                    throw e;
                }
            }
            spec2d = oneD ? other : spec;
            tables2d = oneD ? t : tables;
            synthesisSpec = other;
            synthesisTables = t;
        }

        /** Whether materialize synthesizes rows of ΔWᵀ and writes them as columns of ΔW. */
        boolean synthesisTransposed() {
            return synthesisSpec != spec2d;
        }

        @Override
        public void close() {
            tables.close();
            if (synthesisTables != tables) {
                synthesisTables.close();
            }
        }
    }

    private CudaFourierFT(CudaContext context, boolean ownsContext) {
        this.context = context;
        this.ownsContext = ownsContext;
        try {
            this.kernels = new FourierFTKernels(context.computeCapability(), debug);
            this.common = context.commonKernels();
            this.plans = context.fftPlans(); // shared with every backend on the context
            this.columnChunkBytes = columnChunkBytes();
            this.devicePools = new DevicePools(context);
        } catch (RuntimeException | Error e) {
            if (ownsContext) {
                context.close();
            }
            throw e;
        }
    }

    /**
     * Default chunk budget of the column-synthesis and column-analysis paths: 128 MiB, one whole 4096-wide
     * layer per chunk (its half rows take 64 MiB). Chunks sized to stay in L2 (a third of it, 1024 such rows)
     * measured slower on an H200: 64 layers of 4096 × 4096 took 5.8–7.3 ms against 4.3–4.4 ms with whole
     * layers, one layer 0.10–0.13 ms against 0.09–0.10 ms (bench/GPU_RUNS.md). Fewer, larger launches fill
     * the device better than L2 residency saves.
     */
    static final long DEFAULT_COLUMN_CHUNK_BYTES = 128L << 20;

    /** The chunk budget; the system property {@code spectralpeft.cuda.columnChunkBytes} overrides it, for tuning. */
    private static long columnChunkBytes() {
        return Math.max(1, Long.getLong("spectralpeft.cuda.columnChunkBytes", DEFAULT_COLUMN_CHUNK_BYTES)); // ≥ 16 rows
    }

    /**
     * Opens device 0. Throws if the kernels were not built, or the driver, a device or the CUDA 13 libraries
     * are missing.
     *
     * @return the backend; close it when done
     * @throws IllegalStateException if the kernels were not built or a CUDA call fails; missing native
     *         libraries surface as a {@link LinkageError} instead
     */
    public static CudaFourierFT open() {
        return open(0);
    }

    /**
     * Opens the given device; throws as {@link #open()} does.
     *
     * @param device the CUDA device ordinal
     * @return the backend; close it when done
     * @throws IllegalArgumentException if there is no such device
     * @throws IllegalStateException as {@link #open()} does
     */
    public static CudaFourierFT open(int device) {
        FourierFTKernels.requireBuilt();
        return new CudaFourierFT(CudaContext.open(device), true);
    }

    /**
     * A backend on a context the caller owns and shares, with other adapter families say: their streams and
     * buffers work here too, and every call's scratch comes from the same device pool. Closing the backend
     * leaves the context open; close the context after every backend on it.
     *
     * @param context an open context, borrowed
     * @return the backend; close it when done
     * @throws IllegalArgumentException if {@code context} is null
     * @throws IllegalStateException if the kernels were not built, the context is closed or a CUDA call fails
     */
    public static CudaFourierFT open(CudaContext context) {
        Checks.notNull(context, "context");
        FourierFTKernels.requireBuilt();
        context.makeCurrent();
        return new CudaFourierFT(context, false);
    }

    /**
     * The context this backend runs in (its own, or the one it was opened on).
     *
     * @return the context
     */
    public CudaContext context() {
        return context;
    }

    @Override
    public String description() {
        return "cuda " + context.describe();
    }

    /**
     * The PTX variant loaded for this device.
     *
     * @return the PTX file name
     */
    public String kernelVariant() {
        return kernels.ptxName();
    }

    /**
     * A new stream owned by the caller (close it when done).
     *
     * @return the stream
     */
    public CudaStream createStream() {
        ensureOpen();
        return context.createStream();
    }

    /**
     * Library-owned device memory (close it when done).
     *
     * @param dtype the element type
     * @param length number of elements, at least 1
     * @return the buffer
     */
    public DeviceBuffer allocate(DType dtype, long length) {
        ensureOpen();
        return context.allocate(dtype, length);
    }

    /**
     * Blocks until the work queued on {@code stream} has finished.
     *
     * @param stream the stream
     */
    public void synchronize(CudaStream stream) {
        ensureOpen();
        context.makeCurrent();
        stream.synchronize();
    }

    /** The plan cache, for the floor benchmarks (a bare cuFFT transform with this backend's plans). */
    FftPlans plans() {
        ensureOpen();
        context.makeCurrent();
        return plans;
    }

    /**
     * Number of cuFFT plans cached (plans are per transform shape and batch).
     *
     * @return number of cached plans
     */
    public int cachedPlans() {
        return plans.size();
    }

    // ------------------------------------------------------------------ device entry points

    /**
     * out = ΔW for {@code layers} layers: coeffs is layers × n float32, out layers × d_out × d_in of any dtype.
     *
     * @param spec the geometry and index set shared by the layers
     * @param coeffs layers × n float32 coefficients
     * @param layers number of layers, at least 1
     * @param out layers × d_out × d_in elements, overwritten
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null or an array has the wrong length or dtype
     * @throws IllegalStateException if the backend is closed
     */
    public void materialize(FourierFTSpec spec, DeviceArray coeffs, int layers, DeviceArray out, CudaStream stream) {
        enter(spec, stream);
        Checks.positive(layers, "layers");
        checkFloat32("coeffs", coeffs, (long) layers * spec.n());
        checkDevice("out", out, (long) layers * spec.dOut() * spec.dIn());
        SpecResources r = acquire(spec);
        try (StreamScratch scratch = new StreamScratch(stream)) {
            inverse2d(r, spec.scale(), coeffs, layers, out, WriteMode.STORE, scratch, stream);
        } finally {
            release(r);
        }
    }

    /**
     * weight += ΔW in place (weight d_out × d_in, any dtype), fused: no ΔW buffer is allocated.
     *
     * @param spec the layer geometry and index set
     * @param coeffs n float32 coefficients
     * @param weight d_out × d_in weights, updated in place
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null or an array has the wrong length or dtype
     * @throws IllegalStateException if the backend is closed
     */
    public void merge(FourierFTSpec spec, DeviceArray coeffs, DeviceArray weight, CudaStream stream) {
        mergeInto(spec, coeffs, weight, stream, WriteMode.ADD);
    }

    /**
     * weight -= ΔW in place.
     *
     * @param spec the layer geometry and index set
     * @param coeffs n float32 coefficients
     * @param weight d_out × d_in weights, updated in place
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null or an array has the wrong length or dtype
     * @throws IllegalStateException if the backend is closed
     */
    public void unmerge(FourierFTSpec spec, DeviceArray coeffs, DeviceArray weight, CudaStream stream) {
        mergeInto(spec, coeffs, weight, stream, WriteMode.SUBTRACT);
    }

    private void mergeInto(FourierFTSpec spec, DeviceArray coeffs, DeviceArray weight, CudaStream stream,
                           WriteMode mode) {
        enter(spec, stream);
        checkFloat32("coeffs", coeffs, spec.n());
        checkDevice("weight", weight, (long) spec.dOut() * spec.dIn());
        SpecResources r = acquire(spec);
        try (StreamScratch scratch = new StreamScratch(stream)) {
            inverse2d(r, spec.scale(), coeffs, 1, weight, mode, scratch, stream);
        } finally {
            release(r);
        }
    }

    /**
     * y += x·ΔWᵀ: x is tokens × d_in, y tokens × d_out, any dtypes.
     *
     * @param spec the layer geometry and index set
     * @param coeffs n float32 coefficients
     * @param x tokens × d_in inputs
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, accumulated into
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null or an array has the wrong length or dtype
     * @throws IllegalStateException if the backend is closed
     */
    public void forward(FourierFTSpec spec, DeviceArray coeffs, DeviceArray x, int tokens, DeviceArray y,
                        CudaStream stream) {
        enter(spec, stream);
        checkRoute();
        Checks.positive(tokens, "tokens");
        checkFloat32("coeffs", coeffs, spec.n());
        checkDevice("x", x, (long) tokens * spec.dIn());
        checkDevice("y", y, (long) tokens * spec.dOut());
        SpecResources r = acquire(spec);
        try (StreamScratch scratch = new StreamScratch(stream)) { // the fused kernel takes none
            if (fusedForward(spec.dIn(), spec.dOut(), spec.n())) {
                kernels.forwardFused(x.address(), x.dtype().code(), spec.dIn(), y.address(), y.dtype().code(),
                        spec.dOut(), coeffs.address(), spec.n(), 0, 0, r.tables.forward, r.tables,
                        0.5f * spec.scale(), tokens, stream);
            } else {
                scratch.reserve(rowSpectraFootprint(x, tokens, spec.dIn()) + applyAxisFootprint(spec.dOut(), tokens));
                long xSpec = rowSpectra(x, tokens, spec.dIn(), scratch, stream);
                applyAxis(xSpec, spec.halfIn(), spec.dOut(), spec.halfOut(), r.tables.forward, coeffs, spec, tokens, y,
                        scratch, stream);
            }
            checkReservation(scratch, "forward");
        } finally {
            release(r);
        }
    }

    /**
     * gradCoeffs (n float32) = ∂L/∂c from gradDeltaW = ∂L/∂ΔW (d_out × d_in, any dtype).
     *
     * @param spec the layer geometry and index set
     * @param gradDeltaW d_out × d_in gradient ∂L/∂ΔW
     * @param gradCoeffs n float32 elements, overwritten with ∂L/∂c
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null or an array has the wrong length or dtype
     * @throws IllegalStateException if the backend is closed
     */
    public void gradCoefficients(FourierFTSpec spec, DeviceArray gradDeltaW, DeviceArray gradCoeffs, CudaStream stream) {
        enter(spec, stream);
        checkDevice("gradDeltaW", gradDeltaW, (long) spec.dOut() * spec.dIn());
        checkFloat32("gradCoeffs", gradCoeffs, spec.n());
        SpecResources r = acquire(spec);
        FourierFTSpec s2 = r.spec2d;
        try (StreamScratch scratch = new StreamScratch(stream)) {
            if (usesColumnSynthesis(s2, r.tables2d.columnEntries)) {
                gradByColumnAnalysis(s2, spec.scale(), r.tables2d, gradDeltaW, gradCoeffs, scratch, stream);
                return;
            }
            long g = asFloat32(gradDeltaW, scratch, stream);
            long bins = (long) s2.dOut() * s2.halfIn();
            long f = scratch.allocate(8 * bins);
            plans.twoD(Direction.R2C, s2.dOut(), s2.dIn(), 1, false, g, f, scratch, stream);
            kernels.gatherReal(f, bins, r.tables2d.deltaGradBin, s2.n(), spec.scale(), gradCoeffs.address(), stream);
        } finally {
            release(r);
        }
    }

    /**
     * ∂L/∂c for sparse spectra, the transpose of column synthesis: chunk by chunk of rows (as in
     * {@link #inverse2d}), R2C of the rows, then each coefficient sums the one 2-D bin it needs down its column
     * (fourierft_column_analysis) into per-tile partial sums, reduced in tile order at the end. s gives the
     * shape, scale the caller's α/(d_out·d_in).
     */
    private void gradByColumnAnalysis(FourierFTSpec s, float scale, DeviceSpecTables t, DeviceArray gradDeltaW,
                                      DeviceArray gradCoeffs, StreamScratch scratch, CudaStream stream) {
        int h = s.halfIn();
        List<ColumnChunks.Chunk> chunks = ColumnChunks.plan(1, s.dOut(), h, columnChunkBytes);
        long maxRows = ColumnChunks.maxRows(chunks);
        long rowSpec = scratch.allocate(8L * h * maxRows);
        long copy = 0; // float32 rows for cuFFT when the input is 16-bit or not 8-byte aligned
        long work = 0;
        for (ColumnChunks.Chunk c : chunks) {
            work = Math.max(work, plans.workBytes(FftPlans.oneD(Direction.R2C, s.dIn(), c.rowCount(), false)));
        }
        long area = work > 0 ? scratch.allocate(work) : 0;
        int tiles = (s.dOut() + FourierFTKernels.COLUMN_TILE_ROWS - 1) / FourierFTKernels.COLUMN_TILE_ROWS;
        long partial = scratch.allocate(4L * tiles * s.n());
        for (ColumnChunks.Chunk c : chunks) {
            DeviceArray rows = gradDeltaW.slice(c.firstRow(s.dOut()) * s.dIn(), c.rowCount() * s.dIn());
            long in = rows.address();
            if (rows.dtype() != DType.FLOAT32 || in % 8 != 0) {
                if (copy == 0) {
                    copy = scratch.allocate(4L * s.dIn() * maxRows);
                }
                common.toFloat32(rows, copy, rows.length(), stream);
                in = copy;
            }
            plans.run(FftPlans.oneD(Direction.R2C, s.dIn(), c.rowCount(), false), in, rowSpec, area, stream);
            kernels.columnAnalysis(rowSpec, s.dOut(), c.rowBegin(), c.rows(), h, t, s.n(), partial, stream);
        }
        kernels.coeffGradReduce(partial, tiles, s.n(), scale, gradCoeffs.address(), stream);
    }

    /**
     * Backward of {@link #forward}: gradCoeffs (n float32) = ∂L/∂c, overwritten; when gradX is not null,
     * gradX += ∂L/∂y · ΔW (tokens × d_in).
     *
     * @param spec the layer geometry and index set
     * @param coeffs n float32 coefficients
     * @param x tokens × d_in inputs of the forward
     * @param gradY tokens × d_out gradient ∂L/∂y
     * @param tokens number of rows of x and gradY, at least 1
     * @param gradCoeffs n float32 elements, overwritten with ∂L/∂c
     * @param gradX tokens × d_in elements accumulating ∂L/∂x, or null when not wanted
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null or an array has the wrong length or dtype
     * @throws IllegalStateException if the backend is closed
     */
    public void backward(FourierFTSpec spec, DeviceArray coeffs, DeviceArray x, DeviceArray gradY, int tokens,
                         DeviceArray gradCoeffs, DeviceArray gradX, CudaStream stream) {
        enter(spec, stream);
        checkRoute();
        Checks.positive(tokens, "tokens");
        checkFloat32("coeffs", coeffs, spec.n());
        checkDevice("x", x, (long) tokens * spec.dIn());
        checkDevice("gradY", gradY, (long) tokens * spec.dOut());
        checkFloat32("gradCoeffs", gradCoeffs, spec.n());
        if (gradX != null) {
            checkDevice("gradX", gradX, (long) tokens * spec.dIn());
        }
        SpecResources r = acquire(spec);
        try (StreamScratch scratch = new StreamScratch(stream)) {
            if (fusedForward(spec.dIn(), spec.dOut(), spec.n())) {
                backwardFused(spec, r.tables, coeffs, x, gradY, tokens, gradCoeffs, gradX, scratch, stream);
            } else {
                backwardByCufft(spec, r.tables, coeffs, x, gradY, tokens, gradCoeffs, gradX, scratch, stream);
            }
            checkReservation(scratch, "backward");
        } finally {
            release(r);
        }
    }

    /**
     * The backward through cuFFT: R2Cs of x and ∂L/∂y, ∂L/∂c from their products in tiles of {@link #GRAD_TILE_TOKENS}
     * tokens then the tiles in order, and ∂L/∂x as the forward with the transposed grouping.
     */
    private void backwardByCufft(FourierFTSpec spec, DeviceSpecTables t, DeviceArray coeffs, DeviceArray x,
                                 DeviceArray gradY, int tokens, DeviceArray gradCoeffs, DeviceArray gradX,
                                 StreamScratch scratch, CudaStream stream) {
        int tiles = (tokens + GRAD_TILE_TOKENS - 1) / GRAD_TILE_TOKENS;
        scratch.reserve(rowSpectraFootprint(x, tokens, spec.dIn()) + rowSpectraFootprint(gradY, tokens, spec.dOut())
                + StreamScratch.footprint(4L * tiles * spec.n())
                + (gradX != null ? applyAxisFootprint(spec.dIn(), tokens) : 0));
        long xSpec = rowSpectra(x, tokens, spec.dIn(), scratch, stream);
        long gySpec = rowSpectra(gradY, tokens, spec.dOut(), scratch, stream);
        long partial = scratch.allocate(4L * tiles * spec.n());
        kernels.coeffGradPartial(xSpec, spec.halfIn(), gySpec, spec.halfOut(), t, spec.n(), tokens, GRAD_TILE_TOKENS,
                partial, stream);
        kernels.coeffGradReduce(partial, tiles, spec.n(), spec.scale(), gradCoeffs.address(), stream);
        if (gradX != null) {
            applyAxis(gySpec, spec.halfOut(), spec.dIn(), spec.halfIn(), t.transposed, coeffs, spec, tokens, gradX,
                    scratch, stream);
        }
    }

    /**
     * The backward through {@code fourierft_backward_fused}: each token's ∂L/∂c products (tokens × n floats of
     * scratch) and its ∂L/∂x in one launch, then the products summed in tiles of {@link #GRAD_TILE_TOKENS} tokens, in
     * token order, and the tiles in order ({@code fourierft_coeff_grad_rows}, {@code fourierft_coeff_grad_reduce}).
     */
    private void backwardFused(FourierFTSpec spec, DeviceSpecTables t, DeviceArray coeffs, DeviceArray x,
                               DeviceArray gradY, int tokens, DeviceArray gradCoeffs, DeviceArray gradX,
                               StreamScratch scratch, CudaStream stream) {
        int n = spec.n();
        int tiles = (tokens + GRAD_TILE_TOKENS - 1) / GRAD_TILE_TOKENS;
        int[] bounds = new int[2 * tiles]; // each tile's first token, then each tile's end
        for (int i = 0; i < tiles; i++) {
            bounds[i] = i * GRAD_TILE_TOKENS;
            bounds[tiles + i] = Math.min(tokens, (i + 1) * GRAD_TILE_TOKENS);
        }
        scratch.reserve(StreamScratch.footprint(4L * tokens * n) + StreamScratch.footprint(4L * bounds.length)
                + StreamScratch.footprint(4L * tiles * n));
        long products = scratch.allocate(4L * tokens * n);
        kernels.backwardFused(x.address(), x.dtype().code(), spec.dIn(), gradY.address(), gradY.dtype().code(),
                spec.dOut(), gradX == null ? 0 : gradX.address(), gradX == null ? 0 : gradX.dtype().code(),
                coeffs.address(), n, 0, 0, t, 0.5f * spec.scale(), products, tokens, stream);
        long boundsAddress = HostTables.copyIn(bounds, scratch, stream);
        long partial = scratch.allocate(4L * tiles * n);
        kernels.coeffGradRows(products, n, 0, boundsAddress, boundsAddress + 4L * tiles, tiles, partial, stream);
        kernels.coeffGradReduce(partial, tiles, n, spec.scale(), gradCoeffs.address(), stream);
    }

    // ------------------------------------------------------------------ building blocks

    /**
     * Mean half-spectrum entries per column up to which {@link #inverse2d} synthesizes the columns directly
     * (cost ∝ d_out·entries) instead of zeroing, scattering and transforming them (cost ∝ d_out·d_in·log).
     * A cost-model estimate for H100-class devices; bench/NOTES.md has the numbers behind it.
     */
    static final int COLUMN_SYNTHESIS_MAX_MEAN_ENTRIES = 16;

    /** The largest of cuFFT's fast radices (2, 3, 5, 7): lengths with a larger prime factor transform slower. */
    static final int FAST_RADIX = 7;

    /**
     * Whether materialize's column-synthesis path runs its row transforms along d_out (rows of ΔWᵀ) rather than
     * along d_in: when d_in has a prime factor above {@link #FAST_RADIX} and d_out's largest prime factor is
     * smaller. On an H200, cuFFT's C2R of length 11008 = 2⁸·43 took 5× the time per element of length 4096
     * (bench/GPU_RUNS.md); the transposing epilogue this adds is one more pass over the chunk.
     *
     * @param spec the layer's spec
     * @return true for the transposed layout
     */
    static boolean transformsAlongOut(FourierFTSpec spec) {
        if (spec.dIn() == 1 || spec.dOut() == 1) {
            return false;
        }
        int in = largestPrimeFactor(spec.dIn());
        return in > FAST_RADIX && largestPrimeFactor(spec.dOut()) < in;
    }

    static int largestPrimeFactor(int n) {
        int largest = 1;
        for (int p = 2; (long) p * p <= n; p++) {
            while (n % p == 0) {
                largest = p;
                n /= p;
            }
        }
        return n > 1 ? n : largest;
    }

    /** Whether materialize and merge of this (2-D) spec take the column-synthesis path. */
    static boolean usesColumnSynthesis(FourierFTSpec spec2d, int columnEntries) {
        return columnEntries <= (long) COLUMN_SYNTHESIS_MAX_MEAN_ENTRIES * spec2d.halfIn();
    }

    /**
     * ΔW into dst per mode. Sparse spectra (the usual case): the inverse transform down each half-spectrum
     * column is computed directly from its few entries (fourierft_column_synthesis), leaving one batch of
     * row C2R transforms; this runs in chunks of rows ({@link ColumnChunks}, {@link #DEFAULT_COLUMN_CHUNK_BYTES}),
     * which bounds the scratch to one chunk. Dense spectra: zero the half spectrum, scatter, and run
     * the C2R-2D transform. The C2R writes straight into a float32 dst, or runs in place and a converting
     * epilogue follows (16-bit outputs, merge, or a dst cuFFT cannot write because it is not 8-byte
     * aligned). Where d_in is a length cuFFT transforms slowly ({@link #transformsAlongOut}), the sparse path
     * synthesizes rows of ΔWᵀ instead, transforms them in place along d_out, and a transposing epilogue
     * writes them as columns of dst. Scratch: the chunk buffer (or the half spectrum) and one cuFFT work area.
     */
    private void inverse2d(SpecResources r, float scale, DeviceArray coeffs, int layers, DeviceArray dst,
                           WriteMode mode, StreamScratch scratch, CudaStream stream) {
        List<ColumnChunks.Chunk> chunks = columnChunks(r, layers);
        FourierFTSpec s = chunks == null ? r.spec2d : r.synthesisSpec;
        DeviceSpecTables t = chunks == null ? r.tables2d : r.synthesisTables;
        float halfScale = 0.5f * scale; // the caller's: the entry's spec may carry another adapter's α
        ScratchSize need = inverseScratch(r, chunks, layers, mode, dst.dtype(), dst.address());
        long buffer = scratch.allocate(need.bufferBytes());
        long area = need.workAreaBytes() > 0 ? scratch.allocate(need.workAreaBytes()) : 0;
        if (chunks == null) { // dense: the half spectra of all layers
            long bins = (long) s.dOut() * s.halfIn();
            boolean direct = writesDirectly(mode, dst.dtype(), dst.address());
            cuMemsetD32Async(NativeHandles.devicePointer(buffer), 0, 2L * bins * layers, stream.jcuda());
            kernels.scatterHalfSpectrum(buffer, bins, coeffs.address(), s.n(), t, layers, halfScale, stream);
            plans.run(denseTransform(s, layers, direct), buffer, direct ? dst.address() : buffer, area, stream);
            if (!direct) {
                common.epilogue(buffer, 2L * s.halfIn(), dst, (long) layers * s.dOut(), s.dIn(), mode.code(), stream);
            }
            return;
        }
        boolean transposed = r.synthesisTransposed();
        for (ColumnChunks.Chunk c : chunks) {
            long rows = c.rowCount();
            if (transposed) { // rows of ΔWᵀ: s.dOut() is the layer's d_in, s.dIn() its d_out
                kernels.columnSynthesis(buffer, s.dOut(), c.rowBegin(), c.rows(), s.halfIn(),
                        coeffs.address() + 4L * s.n() * c.layerBegin(), s.n(), t, c.layers(), halfScale, stream);
                plans.run(rowTransform(s, rows, false), buffer, buffer, area, stream);
                common.epilogueTransposed(buffer, 2L * s.halfIn(), dst, c.firstRow(s.dOut()), rows, s.dIn(), s.dOut(),
                        mode.code(), stream);
                continue;
            }
            DeviceArray target = dst.slice(c.firstRow(s.dOut()) * s.dIn(), rows * s.dIn());
            boolean direct = writesDirectly(mode, target.dtype(), target.address());
            kernels.columnSynthesis(buffer, s.dOut(), c.rowBegin(), c.rows(), s.halfIn(),
                    coeffs.address() + 4L * s.n() * c.layerBegin(), s.n(), t, c.layers(), halfScale, stream);
            plans.run(rowTransform(s, rows, direct), buffer, direct ? target.address() : buffer, area, stream);
            if (!direct) {
                common.epilogue(buffer, 2L * s.halfIn(), target, rows, s.dIn(), mode.code(), stream);
            }
        }
    }

    /** The chunks of the column-synthesis path, or null when the spectrum is dense (the C2R-2D path). */
    private List<ColumnChunks.Chunk> columnChunks(SpecResources r, int layers) {
        FourierFTSpec s = r.synthesisSpec;
        return usesColumnSynthesis(s, r.synthesisTables.columnEntries)
                ? ColumnChunks.plan(layers, s.dOut(), s.halfIn(), columnChunkBytes) : null;
    }

    /**
     * What {@link #inverse2d} allocates, for a destination of {@code dtype} at {@code address}: one buffer
     * (a chunk of synthesized rows, or with {@code chunks == null} the half spectra of all layers) and one
     * cuFFT work area for all its transforms. Creates the plans it sizes.
     */
    private ScratchSize inverseScratch(SpecResources r, List<ColumnChunks.Chunk> chunks, int layers, WriteMode mode,
                                      DType dtype, long address) {
        if (chunks == null) {
            FourierFTSpec s = r.spec2d;
            return new ScratchSize(8L * s.dOut() * s.halfIn() * layers,
                    plans.workBytes(denseTransform(s, layers, writesDirectly(mode, dtype, address))));
        }
        FourierFTSpec s = r.synthesisSpec;
        long work = 0;
        for (ColumnChunks.Chunk c : chunks) {
            long offset = c.firstRow(s.dOut()) * s.dIn() * dtype.bytes();
            boolean direct = !r.synthesisTransposed() && writesDirectly(mode, dtype, address + offset);
            work = Math.max(work, plans.workBytes(rowTransform(s, c.rowCount(), direct)));
        }
        return new ScratchSize(8L * s.halfIn() * ColumnChunks.maxRows(chunks), work);
    }

    /** Whether the C2R can write the destination itself: a plain store into 8-byte aligned float32. */
    private static boolean writesDirectly(WriteMode mode, DType dtype, long address) {
        return mode == WriteMode.STORE && dtype == DType.FLOAT32 && address % 8 == 0;
    }

    private static FftPlans.Shape denseTransform(FourierFTSpec s, int layers, boolean direct) {
        return FftPlans.twoD(Direction.C2R, s.dOut(), s.dIn(), layers, !direct);
    }

    private static FftPlans.Shape rowTransform(FourierFTSpec s, long rows, boolean direct) {
        return FftPlans.oneD(Direction.C2R, s.dIn(), rows, !direct);
    }

    // ------------------------------------------------------------------ memory

    /** Device scratch of one call beyond its output: the row chunk or half spectrum, and cuFFT's work area. */
    public record ScratchSize(long bufferBytes, long workAreaBytes) {
        /**
         * Both parts together.
         *
         * @return bufferBytes + workAreaBytes
         */
        public long total() {
            return bufferBytes + workAreaBytes;
        }
    }

    /**
     * The device scratch memory that {@link #materialize} of {@code layers} layers into an (8-byte aligned)
     * {@code out} array takes beyond its output: the buffer of synthesized rows (at most one chunk, {@link #DEFAULT_COLUMN_CHUNK_BYTES}) or,
     * for dense spectra, the half spectra, plus cuFFT's work area. Creates and caches the spec's tables and
     * transform plans if needed, like a first call would, so it synchronizes.
     *
     * @param spec the geometry and index set shared by the layers
     * @param layers number of layers, at least 1
     * @param out the output's dtype
     * @return the scratch size in bytes
     */
    public ScratchSize materializeScratch(FourierFTSpec spec, int layers, DType out) {
        ensureOpen();
        Checks.notNull(spec, "spec");
        Checks.positive(layers, "layers");
        Checks.notNull(out, "out");
        return inverseScratch(spec, layers, WriteMode.STORE, out);
    }

    /**
     * The device scratch memory that {@link #merge} and {@link #unmerge} take (see materializeScratch).
     *
     * @param spec the layer geometry and index set
     * @param weight the weight's dtype
     * @return the scratch size in bytes
     */
    public ScratchSize mergeScratch(FourierFTSpec spec, DType weight) {
        ensureOpen();
        Checks.notNull(spec, "spec");
        Checks.notNull(weight, "weight");
        return inverseScratch(spec, 1, WriteMode.ADD, weight);
    }

    private ScratchSize inverseScratch(FourierFTSpec spec, int layers, WriteMode mode, DType dtype) {
        context.makeCurrent();
        SpecResources r = acquire(spec);
        try {
            return inverseScratch(r, columnChunks(r, layers), layers, mode, dtype, 0); // an aligned destination
        } finally {
            release(r);
        }
    }

    /**
     * The most memory in use at once, since the last {@link #resetScratchPeak()}, in the device's current
     * stream-ordered memory pool, where this backend takes its scratch space. The counter is the driver's
     * and device-wide: concurrent calls and other users of that pool (cudaMallocAsync) count too.
     *
     * @return the peak in bytes
     */
    public long scratchPeakBytes() {
        ensureOpen();
        context.makeCurrent();
        return context.poolUsedHighBytes();
    }

    /**
     * Restarts {@link #scratchPeakBytes()}. Call it with no work in flight on the device (after a
     * synchronization): the driver resets the mark to zero, not to the memory in use.
     */
    public void resetScratchPeak() {
        ensureOpen();
        context.makeCurrent();
        context.resetPoolUsedHigh();
    }

    /**
     * R2C of each of {@code tokens} rows of length {@code len} (any dtype): tokens × (len/2+1) complex, in a
     * buffer of {@link FftPlans#paddedBatch} rows. When that rounds the batch up, the rows are first copied
     * into scratch with zero rows after them, so the transform is one cuFFT execution.
     */
    private long rowSpectra(DeviceArray rows, int tokens, int len, StreamScratch scratch, CudaStream stream) {
        long batch = FftPlans.paddedBatch(tokens);
        long real = rows.address();
        if (copiesRows(rows, tokens, batch)) {
            real = scratch.allocate(4L * batch * len);
            common.toFloat32(rows, real, batch * len, stream);
        }
        long spectra = scratch.allocate(8L * batch * (len / 2 + 1));
        plans.oneD(Direction.R2C, len, batch, false, real, spectra, scratch, stream);
        return spectra;
    }

    /** The scratch {@link #rowSpectra} takes (its part of a call's {@link StreamScratch#reserve}). */
    private long rowSpectraFootprint(DeviceArray rows, int tokens, int len) {
        long batch = FftPlans.paddedBatch(tokens);
        long bytes = StreamScratch.footprint(8L * batch * (len / 2 + 1))
                + workFootprint(FftPlans.oneD(Direction.R2C, len, batch, false));
        return copiesRows(rows, tokens, batch) ? bytes + StreamScratch.footprint(4L * batch * len) : bytes;
    }

    /** Whether {@link #rowSpectra} transforms a float32 copy (padded to the batch) rather than the rows. */
    private static boolean copiesRows(DeviceArray rows, int tokens, long batch) {
        return batch != tokens || needsFloat32Copy(rows);
    }

    /** The scratch {@link #applyAxis} takes for outputs of length outLen. */
    private long applyAxisFootprint(int outLen, int tokens) {
        long batch = FftPlans.paddedBatch(tokens);
        return StreamScratch.footprint(8L * batch * (outLen / 2 + 1))
                + workFootprint(FftPlans.oneD(Direction.C2R, outLen, batch, true));
    }

    /** The work area FftPlans.run allocates for this shape (creating its plans if needed). */
    private long workFootprint(FftPlans.Shape shape) {
        long work = plans.workBytes(shape);
        return work > 0 ? StreamScratch.footprint(work) : 0;
    }

    /**
     * With the debug flag, a reservation that missed an allocation is a bug in its footprint arithmetic
     * (harmless otherwise: the allocation gets its own).
     */
    private void checkReservation(StreamScratch scratch, String op) {
        if (debug && scratch.overflows() > 0) {
            throw new IllegalStateException(op + ": " + scratch.overflows()
                    + " scratch allocations did not fit the call's reservation");
        }
    }

    /**
     * out += C2R_outLen(gather/scatter of the source spectra), per token. Z has {@link FftPlans#paddedBatch}
     * rows, the padding zeroed by the gather, so the C2R is one cuFFT execution.
     */
    private void applyAxis(long srcSpec, int srcBins, int outLen, int outBins, DeviceSpecTables.Grouping g,
                           DeviceArray coeffs, FourierFTSpec spec, int tokens, DeviceArray out,
                           StreamScratch scratch, CudaStream stream) {
        long batch = FftPlans.paddedBatch(tokens);
        long z = scratch.allocate(8L * batch * outBins);
        kernels.gatherScatter(srcSpec, srcBins, z, outBins, outBins, coeffs.address(), g, 0.5f * spec.scale(), tokens,
                (int) batch, stream);
        plans.oneD(Direction.C2R, outLen, batch, true, z, z, scratch, stream);
        common.epilogue(z, 2L * outBins, out, tokens, outLen, WriteMode.ADD.code(), stream);
    }

    /**
     * The address of the data as float32 for cuFFT: the array itself, or a scratch copy when it is 16-bit
     * or not 8-byte aligned (cuFFT wants complex-aligned buffers).
     */
    private long asFloat32(DeviceArray a, StreamScratch scratch, CudaStream stream) {
        if (!needsFloat32Copy(a)) {
            return a.address();
        }
        long copy = scratch.allocate(4 * a.length());
        common.toFloat32(a, copy, a.length(), stream);
        return copy;
    }

    private static boolean needsFloat32Copy(DeviceArray a) {
        return a.dtype() != DType.FLOAT32 || a.address() % 8 != 0;
    }

    private void enter(FourierFTSpec spec, CudaStream stream) {
        ensureOpen();
        Checks.notNull(spec, "spec");
        Checks.notNull(stream, "stream");
        context.makeCurrent();
    }

    /**
     * Refuses an unknown {@value #FORWARD_PROPERTY} or {@value #FFT_PASS_PROPERTY} before a forward or backward does
     * any device work.
     */
    private static void checkRoute() {
        FusedForward.requested();
        FusedForward.radix8Passes();
    }

    private void checkDevice(String name, DeviceArray a, long expected) {
        DeviceMemoryRegistry.requireArray(name, a, expected, context.ordinal());
    }

    private void checkFloat32(String name, DeviceArray a, long expected) {
        DeviceMemoryRegistry.requireFloat32(name, a, expected, context.ordinal());
    }

    private SpecResources acquire(FourierFTSpec spec) {
        synchronized (specs) {
            FourierFTSpec.IndexSetKey key = new FourierFTSpec.IndexSetKey(spec);
            SpecResources r = specs.get(key);
            if (r == null) {
                r = new SpecResources(spec);
                specs.put(key, r);
                evictUnused();
            }
            r.users++;
            return r;
        }
    }

    /** The index sets whose device tables this backend holds (tests: one entry per index set, whatever the α's). */
    int cachedIndexSets() {
        synchronized (specs) {
            return specs.size();
        }
    }

    private void release(SpecResources r) {
        synchronized (specs) {
            r.users--;
        }
    }

    // Rare (more than MAX_CACHED_SPECS distinct specs): free the least recently used entries that no call
    // holds, after the device has finished the work already queued on them.
    private void evictUnused() {
        if (specs.size() <= MAX_CACHED_SPECS) {
            return;
        }
        cuCtxSynchronize();
        var it = specs.values().iterator();
        while (specs.size() > MAX_CACHED_SPECS && it.hasNext()) {
            SpecResources r = it.next();
            if (r.users == 0) {
                r.close();
                it.remove();
            }
        }
    }

    // ------------------------------------------------------------------ host-array path

    @Override
    protected void runMaterialize(FourierFTSpec spec, float[] coeffs, int layers, HostArray out) {
        try (HostCall call = new HostCall(context)) {
            DeviceArray c = call.in(HostArray.float32(coeffs));
            DeviceArray o = call.out(out);
            materialize(spec, c, layers, o, call.stream());
            call.finish();
        }
    }

    @Override
    protected void runMerge(FourierFTSpec spec, float[] coeffs, HostArray weight, boolean subtract) {
        try (HostCall call = new HostCall(context)) {
            DeviceArray c = call.in(HostArray.float32(coeffs));
            DeviceArray w = call.inOut(weight);
            if (subtract) {
                unmerge(spec, c, w, call.stream());
            } else {
                merge(spec, c, w, call.stream());
            }
            call.finish();
        }
    }

    @Override
    protected void runForward(FourierFTSpec spec, float[] coeffs, HostArray x, int tokens, HostArray y) {
        checkRoute();
        try (HostCall call = new HostCall(context)) {
            DeviceArray c = call.in(HostArray.float32(coeffs));
            DeviceArray dx = call.in(x);
            DeviceArray dy = call.inOut(y);
            forward(spec, c, dx, tokens, dy, call.stream());
            call.finish();
        }
    }

    /**
     * The mixed batch in one pass over the tokens: one R2C of every token's row (it does not depend on the
     * adapter), then per index set among the tokens one gather/scatter in which each token reads its adapter's
     * row of the pool's device table ({@link DevicePools}; tokens of other sets get zeros), one C2R of the batch
     * and one accumulation into y. Adapters are uploaded to the table the first time a call uses them; a call
     * copies only its tokens' rows in.
     */
    @Override
    protected void runForward(FourierFTAdapterPool pool, ResolvedBatch batch, HostArray x, HostArray y) {
        checkRoute();
        if (batch.isEmpty()) {
            return; // every id is −1: y unchanged
        }
        try (HostCall call = new HostCall(context)) {
            mixedOnDevice(pool, batch, call.in(x), call.inOut(y), call.stream());
            call.finish();
        }
    }

    /**
     * The mixed batch of {@link #forward(FourierFTAdapterPool, int[], HostArray, int, HostArray)} on device arrays,
     * queued on {@code stream} without waiting for it: the same kernels as the host-array call (the same bits).
     * The pool's coefficients stay on the device between calls (uploaded when an adapter is first used); a call
     * copies its tokens' rows (4 bytes per token) in stream order. The adapters are resolved when the call starts;
     * the pool may change as soon as it returns (a removed adapter's row is reused only after the device has
     * finished the work queued before). Like the single-adapter forward on device arrays, x is not scanned for NaN.
     *
     * @param pool the adapters
     * @param adapterIds one id per token: an adapter's in the pool, or −1
     * @param x tokens × d_in inputs, any dtype
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, any dtype, accumulated into
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null, an array has the wrong length or is on another
     *         device, or an id is neither −1 nor in the pool
     * @throws IllegalStateException if the backend is closed
     */
    public void forward(FourierFTAdapterPool pool, int[] adapterIds, DeviceArray x, int tokens, DeviceArray y,
                        CudaStream stream) {
        checkRoute();
        Checks.notNull(x, "x");
        Checks.notNull(y, "y");
        Checks.notNull(stream, "stream");
        checkBatch(pool, adapterIds, tokens);
        checkDevice("x", x, (long) tokens * pool.dIn());
        checkDevice("y", y, (long) tokens * pool.dOut());
        context.makeCurrent();
        ResolvedBatch cached = ResolvedBatch.cached(pool, adapterIds);
        if (cached == null && mixedResident(pool, adapterIds, x, y, tokens, stream)) {
            return;
        }
        ResolvedBatch batch = cached != null ? cached
                : StageTimer.host("resolve ids", () -> resolveBatch(pool, adapterIds, tokens));
        mixedOnDevice(pool, batch, x, y, stream);
    }

    /**
     * The mixed forward of a batch whose adapters are all on the device while the pool is as its copy last saw it
     * ({@link DevicePools.PoolCopy#resident}): the ids copied as they are and turned into rows on the device, one
     * {@code fourierft_token_rows} per index set, then the same kernels as a resolved batch (the same rows, so the
     * same bits). No host pass per distinct adapter: a serving loop's fresh batch of resident adapters costs about
     * what a repeated one does. Returns false, having done nothing, where the batch does not qualify.
     */
    private boolean mixedResident(FourierFTAdapterPool pool, int[] ids, DeviceArray x, DeviceArray y, int tokens,
                                  CudaStream stream) {
        DevicePools.PoolCopy copy = devicePools.of(pool);
        synchronized (copy) {
            DevicePools.Resident sets = StageTimer.host("resident ids", () -> copy.resident(pool, ids));
            if (sets == null) {
                return false;
            }
            if (sets.sets() == 0) {
                return true; // every id is −1: y unchanged
            }
            boolean fused = fusedForward(pool.dIn(), pool.dOut(), maxCoefficients(sets.specs()));
            try (StreamScratch scratch = new StreamScratch(stream)) {
                if (fused) { // the ids and each set's rows from one allocation
                    scratch.reserve(StreamScratch.footprint(4L * tokens) * (1 + sets.sets()));
                }
                long[] tokenRows = deviceTokenRows(ids, sets, scratch, stream);
                IndexSetWork work = fused ? fusedWork(x, y, tokens, stream)
                        : applyWork(pool.dIn(), pool.dOut(), tokens, rowSpectra(x, tokens, pool.dIn(), scratch, stream),
                                false, y, scratch, stream);
                queueEachSet(sets.specs(), sets.tables(), sets.halfScales(), tokenRows, work);
                checkReservation(scratch, "mixed forward");
            }
            return true;
        }
    }

    /**
     * Device bytes this backend holds for a pool's coefficients and their scales: its tables' capacity (a table
     * doubles when full, so up to twice 4·(n + 1) bytes per adapter in use), 0 before the pool's first mixed batch
     * here.
     *
     * @param pool a pool
     * @return bytes
     */
    public long residentBytes(FourierFTAdapterPool pool) {
        Checks.notNull(pool, "pool");
        return devicePools.bytes(pool);
    }

    private void mixedOnDevice(FourierFTAdapterPool pool, ResolvedBatch batch, DeviceArray dx, DeviceArray dy,
                               CudaStream stream) {
        if (batch.isEmpty()) {
            return;
        }
        try (StreamScratch scratch = new StreamScratch(stream)) {
            if (fusedForward(pool.dIn(), pool.dOut(), maxCoefficients(specsOf(batch)))) {
                mixedFused(pool, batch, dx, dy, scratch, stream);
                return;
            }
            long xSpec = rowSpectra(dx, batch.tokens(), pool.dIn(), scratch, stream);
            mixedApply(pool, batch, xSpec, false, dy, scratch, stream);
        }
    }

    /** Whether this call runs the fused kernels: the layer fits them, and the cuFFT route was not asked for. */
    private boolean fusedForward(int inLength, int outLength, int n) {
        return FusedForward.requested()
                && FusedForward.fits(inLength, outLength, n, context.sharedMemoryPerBlockOptin());
    }

    /** The largest n among index sets. */
    private static int maxCoefficients(FourierFTSpec[] specs) {
        int n = 0;
        for (FourierFTSpec spec : specs) {
            n = Math.max(n, spec.n());
        }
        return n;
    }

    /**
     * A resident batch's rows on the device, per index set present (device ints, row + 1, 0 for none): its ids
     * copied in as they are, then one {@code fourierft_token_rows} per set ({@link DevicePools.PoolCopy#resident}).
     */
    private long[] deviceTokenRows(int[] ids, DevicePools.Resident sets, StreamScratch scratch, CudaStream stream) {
        long idRows = HostTables.copyIn(ids, scratch, stream);
        long[] tokenRows = new long[sets.sets()];
        for (int set = 0; set < tokenRows.length; set++) {
            tokenRows[set] = scratch.allocate(4L * ids.length);
            kernels.tokenRows(idRows, ids.length, sets.entries(), sets.numbers()[set], tokenRows[set], stream);
        }
        return tokenRows;
    }

    /** Queues {@code work} for each index set, with its spec's tables held around it. */
    private void queueEachSet(FourierFTSpec[] specs, long[] coeffTables, long[] halfScales, long[] tokenRows,
                              IndexSetWork work) {
        for (int set = 0; set < specs.length; set++) {
            SpecResources r = acquire(specs[set]);
            try {
                work.queue(set, specs[set], r.tables, coeffTables[set], halfScales[set], tokenRows[set]);
            } finally {
                release(r);
            }
        }
    }

    /**
     * The mixed forward through {@code fourierft_forward_fused}: one launch per index set among the tokens, each
     * token's block reading x's row and its adapter's row of the pool's table and adding into its row of y (tokens of
     * other sets, and without an adapter, left alone).
     */
    private void mixedFused(FourierFTAdapterPool pool, ResolvedBatch batch, DeviceArray x, DeviceArray y,
                            StreamScratch scratch, CudaStream stream) {
        forEachIndexSet(pool, batch, scratch, stream, fusedWork(x, y, batch.tokens(), stream));
    }

    /** One index set's fused forward over all the batch's rows (its tokens' rows nonzero, the others left alone). */
    private IndexSetWork fusedWork(DeviceArray x, DeviceArray y, int tokens, CudaStream stream) {
        return (set, spec, tables, coeffTable, halfScales, tokenRow) ->
                kernels.forwardFused(x.address(), x.dtype().code(), spec.dIn(), y.address(), y.dtype().code(),
                        spec.dOut(), coeffTable, spec.n(), tokenRow, halfScales, tables.forward, tables, 0f, tokens,
                        stream);
    }

    /**
     * dst += per token C2R(its adapter's gather/scatter of the rows' spectra), one pass per index set: the forward
     * (spectra of x, the forward grouping, dst y) or, transposed, ∂L/∂x (spectra of ∂L/∂y, the transposed grouping,
     * dst gradX). Each token reads its adapter's row of the pool's device table; tokens of other sets, and without
     * an adapter, get zeros.
     */
    private void mixedApply(FourierFTAdapterPool pool, ResolvedBatch batch, long spectra, boolean transposed,
                            DeviceArray dst, StreamScratch scratch, CudaStream stream) {
        forEachIndexSet(pool, batch, scratch, stream,
                applyWork(pool.dIn(), pool.dOut(), batch.tokens(), spectra, transposed, dst, scratch, stream));
    }

    /** One index set's part of {@link #mixedApply}: its gather/scatter of the rows' spectra, the C2R, the epilogue. */
    private IndexSetWork applyWork(int dIn, int dOut, int tokens, long spectra, boolean transposed, DeviceArray dst,
                                   StreamScratch scratch, CudaStream stream) {
        int outLen = transposed ? dIn : dOut;
        long padded = FftPlans.paddedBatch(tokens);
        return (set, spec, tables, coeffTable, halfScales, tokenRow) -> {
            int inBins = transposed ? spec.halfOut() : spec.halfIn();
            int outBins = transposed ? spec.halfIn() : spec.halfOut();
            long z = scratch.allocate(8L * padded * outBins);
            kernels.gatherScatterMixed(spectra, inBins, z, outBins, outBins, coeffTable, spec.n(), tokenRow, halfScales,
                    transposed ? tables.transposed : tables.forward, tokens, (int) padded, stream);
            plans.oneD(Direction.C2R, outLen, padded, true, z, z, scratch, stream);
            common.epilogue(z, 2L * outBins, dst, tokens, outLen, WriteMode.ADD.code(), stream);
        };
    }

    /** What a mixed batch queues for one index set among its tokens. */
    private interface IndexSetWork {
        /**
         * @param set the set's index in the batch
         * @param spec the set's index set ({@link ResolvedBatch#set}: its α is no adapter's)
         * @param tables its device tables
         * @param coeffTable the device table of its adapters' coefficient rows
         * @param halfScales device floats: each row's adapter's α/(2·d_out·d_in)
         * @param tokenRow device ints: each token's row + 1 in coeffTable, 0 for none here
         */
        void queue(int set, FourierFTSpec spec, DeviceSpecTables tables, long coeffTable, long halfScales,
                   long tokenRow);
    }

    /**
     * Runs work for each index set of the batch, with the pool's rows found on the device and each token's row copied
     * in, holding the pool's device copy from finding the rows to queuing the kernels that read them.
     */
    private void forEachIndexSet(FourierFTAdapterPool pool, ResolvedBatch batch, StreamScratch scratch,
                                 CudaStream stream, IndexSetWork work) {
        DevicePools.PoolCopy copy = devicePools.of(pool);
        synchronized (copy) {
            DevicePools.Slots slots = StageTimer.host("device rows", () -> copy.slots(pool, batch));
            queueEachSet(specsOf(batch), slots.tables(), slots.halfScales(), copyTokenRows(batch, slots, scratch,
                    stream), work);
        }
    }

    /** The batch's index sets' specs, in its order. */
    private static FourierFTSpec[] specsOf(ResolvedBatch batch) {
        FourierFTSpec[] specs = new FourierFTSpec[batch.setCount()];
        for (int set = 0; set < specs.length; set++) {
            specs[set] = batch.set(set);
        }
        return specs;
    }

    /** A resolved batch's rows per index set (as {@link #tokenRows}, kept with its slots), copied to the device. */
    private static long[] copyTokenRows(ResolvedBatch batch, DevicePools.Slots slots, StreamScratch scratch,
                                        CudaStream stream) {
        long[] rows = new long[batch.setCount()];
        for (int set = 0; set < rows.length; set++) {
            int thisSet = set;
            rows[set] = StageTimer.host("token rows", () -> HostTables.copyIn(
                    slots.tokenRows(thisSet, s -> tokenRows(batch, slots, s)), scratch, stream));
        }
        return rows;
    }

    /** Each token's row + 1 in index set {@code set}'s device table; 0 for no adapter, or one of another set. */
    private static int[] tokenRows(ResolvedBatch batch, DevicePools.Slots slots, int set) {
        int[] tokenRow = new int[batch.tokens()];
        for (int t = 0; t < tokenRow.length; t++) {
            int i = batch.place(t);
            tokenRow[t] = i >= 0 && batch.setOf(i) == set ? slots.rows()[i] + 1 : 0;
        }
        return tokenRow;
    }

    /**
     * The mixed batch's backward in one pass over the tokens, like its forward: one R2C of every token's x and
     * ∂L/∂y; per index set, ∂L/∂c of each adapter from the products over its own tokens (tiles of
     * {@link #GRAD_TILE_TOKENS} of them, each summed in token order, then the tiles in order, as the single-adapter
     * backward sums), and ∂L/∂x as the forward with the transposed grouping, each token with its adapter's row.
     * Deterministic; each adapter's gradient is what the single-adapter backward on its tokens alone gives, up to
     * cuFFT's rounding of a batch against a smaller one.
     */
    @Override
    protected Map<Integer, float[]> runBackward(FourierFTAdapterPool pool, ResolvedBatch batch, float[][] coefficients,
                                                HostArray x, HostArray gradY, HostArray gradX) {
        checkRoute();
        Map<Integer, float[]> grads = new LinkedHashMap<>();
        if (batch.isEmpty()) {
            return grads;
        }
        long[] offsets = backwardTables(batch).offsets();
        float[] all = new float[Math.toIntExact(offsets[batch.adapterCount()])];
        try (HostCall call = new HostCall(context)) {
            DeviceArray dx = call.in(x);
            DeviceArray dgy = call.in(gradY);
            DeviceArray dgx = gradX == null ? null : call.inOut(gradX);
            DeviceArray dGrads = call.out(HostArray.float32(all));
            mixedBackwardOnDevice(pool, batch, dx, dgy, dGrads, offsets, dgx, call.stream());
            call.finish();
        }
        for (int i = 0; i < batch.adapterCount(); i++) {
            grads.put(batch.adapterId(i), java.util.Arrays.copyOfRange(all, (int) offsets[i], (int) offsets[i + 1]));
        }
        return grads;
    }

    /**
     * The mixed batch's backward on device arrays ({@link #backward(FourierFTAdapterPool, int[], HostArray,
     * HostArray, int, HostArray)}'s kernels, the same bits), queued on {@code stream} without waiting for it:
     * ∂L/∂c of every adapter the batch uses into one new device buffer, and ∂L/∂x added into gradX. Like the
     * forward on device arrays, the inputs are not scanned for NaN; the pool may change as soon as it returns. The
     * buffer is stream-ordered ({@link CudaContext#allocate(DType, long, CudaStream)}): from the device's memory
     * pool on {@code stream}, freed in its order when the result is closed, so a training loop's backward does not
     * map new memory every step. A batch whose adapters are all on the device, while the pool is as the backend
     * last saw it, is grouped from per-id entries without reading the pool, its rows looked up on the device, as
     * the forward on device arrays does (the same bits).
     *
     * @param pool the adapters
     * @param adapterIds one id per token: an adapter's in the pool, or −1
     * @param x tokens × d_in inputs of the forward, any dtype
     * @param gradY tokens × d_out gradient ∂L/∂y, any dtype
     * @param tokens number of rows, at least 1
     * @param gradX tokens × d_in elements accumulating ∂L/∂x, any dtype, or null when not wanted
     * @param stream the stream the work is queued on
     * @return the used adapters' ids and their gradients' places in a buffer the caller closes (valid once the
     *         stream has run the work)
     * @throws IllegalArgumentException if an argument is null, an array has the wrong length or is on another
     *         device, or an id is neither −1 nor in the pool
     * @throws IllegalStateException if the backend is closed
     */
    public MixedGradients backward(FourierFTAdapterPool pool, int[] adapterIds, DeviceArray x, DeviceArray gradY,
                                   int tokens, DeviceArray gradX, CudaStream stream) {
        checkRoute();
        Checks.notNull(x, "x");
        Checks.notNull(gradY, "gradY");
        Checks.notNull(stream, "stream");
        checkBatch(pool, adapterIds, tokens);
        checkDevice("x", x, (long) tokens * pool.dIn());
        checkDevice("gradY", gradY, (long) tokens * pool.dOut());
        if (gradX != null) {
            checkDevice("gradX", gradX, (long) tokens * pool.dIn());
        }
        context.makeCurrent();
        ResolvedBatch cached = ResolvedBatch.cached(pool, adapterIds);
        if (cached == null) {
            MixedGradients resident = backwardResident(pool, adapterIds, x, gradY, tokens, gradX, stream);
            if (resident != null) {
                return resident;
            }
        }
        ResolvedBatch batch = cached != null ? cached
                : StageTimer.host("resolve ids", () -> resolveBatch(pool, adapterIds, tokens));
        long[] offsets = backwardTables(batch).offsets();
        int[] ids = new int[batch.adapterCount()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = batch.adapterId(i);
        }
        DeviceBuffer grads = StageTimer.host("gradients' buffer",
                () -> context.allocate(DType.FLOAT32, Math.max(1, offsets[ids.length]), stream));
        try {
            if (!batch.isEmpty()) {
                mixedBackwardOnDevice(pool, batch, x, gradY, grads.array(), offsets, gradX, stream);
            }
        } catch (RuntimeException e) {
            grads.close();
            throw e;
        }
        return new MixedGradients(ids, java.util.Arrays.copyOf(offsets, ids.length), grads);
    }

    /**
     * The ∂L/∂c of a mixed backward on device arrays: per used adapter, in the batch's first-use order, its id and
     * where its n float32 gradients start in {@code gradients} (a buffer of at least one element). Closing it
     * frees the buffer in the order of the backward's stream: work on other streams that reads the gradients must
     * have finished, or that stream must wait for it, first.
     *
     * @param ids the used adapters' ids
     * @param offsets where each one's gradients start, in elements
     * @param gradients all of them, in that order
     */
    public record MixedGradients(int[] ids, long[] offsets, DeviceBuffer gradients) implements AutoCloseable {
        @Override
        public void close() {
            gradients.close();
        }
    }

    /**
     * Where each of a batch's {@code count} distinct adapters' n gradients start in one array of all of them, in
     * place order; one more entry: the total. Each takes its index set's n ({@code setOf}: its set's place among
     * {@code specs}), so no adapter is read.
     */
    private static long[] gradientOffsets(int count, java.util.function.IntUnaryOperator setOf, FourierFTSpec[] specs) {
        long[] offsets = new long[count + 1];
        for (int i = 0; i < count; i++) {
            offsets[i + 1] = offsets[i] + specs[setOf.applyAsInt(i)].n();
        }
        return offsets;
    }

    private void mixedBackwardOnDevice(FourierFTAdapterPool pool, ResolvedBatch batch, DeviceArray dx,
                                       DeviceArray dgy, DeviceArray grads, long[] offsets, DeviceArray dgx,
                                       CudaStream stream) {
        int tokens = batch.tokens();
        TokenRows.Groups order = StageTimer.host("tokens by adapter", batch::tokensByAdapter);
        FourierFTSpec[] specs = specsOf(batch);
        try (StreamScratch scratch = new StreamScratch(stream)) {
            boolean fused = fusedForward(pool.dIn(), pool.dOut(), maxCoefficients(specs));
            MixedTiles[] tiles = StageTimer.host("gradient tiles", () -> backwardTables(batch).tiles());
            long orderAddress = HostTables.copyIn(order.tokens(), scratch, stream);
            DevicePools.PoolCopy copy = devicePools.of(pool);
            synchronized (copy) {
                long[] tables = null;
                long[] halfScales = null;
                long[] tokenRows = null;
                if (fused || dgx != null) { // the coefficients' rows: the cuFFT route's ∂L/∂c does not read them
                    DevicePools.Slots slots = StageTimer.host("device rows", () -> copy.slots(pool, batch));
                    tables = slots.tables();
                    halfScales = slots.halfScales();
                    tokenRows = copyTokenRows(batch, slots, scratch, stream);
                }
                queueBackward(new BackwardPlan(specs, tables, halfScales, tokenRows, tiles, orderAddress), fused,
                        tokens, pool.dIn(), pool.dOut(), dx, dgy, grads, dgx, scratch, stream);
            }
        }
    }

    /**
     * The scratch of a resident batch's fused backward ({@link #backwardResident}): the grouping, the ids and each
     * set's rows (4 bytes per token each), the products (tokens × the largest n), and per set its tiles' partial
     * sums, bounds and gradient offsets.
     */
    private static long fusedBackwardFootprint(int tokens, int maxN, FourierFTSpec[] specs, MixedTiles[] tiles) {
        long bytes = StreamScratch.footprint(4L * tokens) * (2 + specs.length)
                + StreamScratch.footprint(4L * tokens * maxN);
        for (int set = 0; set < specs.length; set++) {
            bytes += StreamScratch.footprint(4L * tiles[set].count() * specs[set].n())
                    + StreamScratch.footprint(4L * tiles[set].bounds().length)
                    + StreamScratch.footprint(8L * tiles[set].adapters());
        }
        return bytes;
    }

    /**
     * What a mixed backward's kernels read, however the call found it: per index set among its tokens the index
     * set, the device table of its adapters' coefficient rows, those rows' scales (device floats, α/(2·d_out·d_in)
     * each) and its tokens' rows (device ints, row + 1, 0 for none; all three null where the call needs no
     * coefficients) and its tiles; and the tokens grouped by adapter (device ints).
     */
    private record BackwardPlan(FourierFTSpec[] specs, long[] coeffTables, long[] halfScales, long[] tokenRows,
                                MixedTiles[] tiles, long order) {
    }

    /**
     * Queues a mixed backward from its plan: on the fused route, per index set, {@code fourierft_backward_fused}
     * (its tokens' ∂L/∂c products and ∂L/∂x, each with its adapter's row, in one launch), then each adapter's
     * products summed over its tiles as the cuFFT route's kernels sum them ({@code fourierft_coeff_grad_rows},
     * {@code fourierft_coeff_grad_reduce_mixed}); on the cuFFT route every token's x and ∂L/∂y transformed once,
     * per set ∂L/∂c from the spectra, then ∂L/∂x as the forward with the transposed grouping. Call with the pool
     * copy's lock held where the plan has rows.
     */
    private void queueBackward(BackwardPlan plan, boolean fused, int tokens, int dIn, int dOut, DeviceArray dx,
                               DeviceArray dgy, DeviceArray grads, DeviceArray dgx, StreamScratch scratch,
                               CudaStream stream) {
        FourierFTSpec[] specs = plan.specs();
        if (fused) {
            // reused by each set in stream order
            long products = scratch.allocate(4L * tokens * maxCoefficients(specs));
            for (int set = 0; set < specs.length; set++) {
                FourierFTSpec spec = specs[set];
                MixedTiles tiles = plan.tiles()[set];
                SpecResources r = acquire(spec);
                try {
                    kernels.backwardFused(dx.address(), dx.dtype().code(), spec.dIn(), dgy.address(),
                            dgy.dtype().code(), spec.dOut(), dgx == null ? 0 : dgx.address(),
                            dgx == null ? 0 : dgx.dtype().code(), plan.coeffTables()[set], spec.n(),
                            plan.tokenRows()[set], plan.halfScales()[set], r.tables, 0f, products, tokens, stream);
                } finally {
                    release(r);
                }
                long partial = scratch.allocate(4L * tiles.count() * spec.n());
                long bounds = HostTables.copyIn(tiles.bounds(), scratch, stream);
                kernels.coeffGradRows(products, spec.n(), plan.order(), bounds, bounds + 4L * tiles.count(),
                        tiles.count(), partial, stream);
                kernels.coeffGradReduceMixed(partial, bounds + 8L * tiles.count(),
                        HostTables.copyIn(tiles.gradOffset(), scratch, stream), bounds + 4L * tiles.scalesAt(),
                        tiles.adapters(), spec.n(), grads.address(), stream);
            }
            return;
        }
        long xSpec = rowSpectra(dx, tokens, dIn, scratch, stream);
        long gySpec = rowSpectra(dgy, tokens, dOut, scratch, stream);
        for (int set = 0; set < specs.length; set++) {
            FourierFTSpec spec = specs[set];
            MixedTiles tiles = plan.tiles()[set];
            long partial = scratch.allocate(4L * tiles.count() * spec.n());
            long bounds = HostTables.copyIn(tiles.bounds(), scratch, stream);
            SpecResources r = acquire(spec);
            try {
                kernels.coeffGradPartialMixed(xSpec, spec.halfIn(), gySpec, spec.halfOut(), r.tables, spec.n(),
                        plan.order(), bounds, bounds + 4L * tiles.count(), tiles.count(), partial, stream);
                kernels.coeffGradReduceMixed(partial, bounds + 8L * tiles.count(),
                        HostTables.copyIn(tiles.gradOffset(), scratch, stream), bounds + 4L * tiles.scalesAt(),
                        tiles.adapters(), spec.n(), grads.address(), stream);
            } finally {
                release(r);
            }
        }
        if (dgx != null) {
            queueEachSet(specs, plan.coeffTables(), plan.halfScales(), plan.tokenRows(),
                    applyWork(dIn, dOut, tokens, gySpec, true, dgx, scratch, stream));
        }
    }

    /**
     * {@link #backward(FourierFTAdapterPool, int[], DeviceArray, DeviceArray, int, DeviceArray, CudaStream)} for a
     * batch whose adapters are all on the device while the pool is as its copy last saw it ({@link
     * DevicePools.PoolCopy#residentGroups}): the distinct adapters and the tokens' grouping from one pass over the
     * ids against the copy's entries, the rows looked up on the device as the forward's are ({@code
     * fourierft_token_rows}), then the resolved path's kernels on the same grouping, tiles and rows (the same
     * bits). Null, having done nothing, where the batch does not qualify.
     */
    private MixedGradients backwardResident(FourierFTAdapterPool pool, int[] ids, DeviceArray dx, DeviceArray dgy,
                                            int tokens, DeviceArray dgx, CudaStream stream) {
        DevicePools.PoolCopy copy = devicePools.of(pool);
        synchronized (copy) {
            DevicePools.ResidentGroups groups = StageTimer.host("resident ids", () -> copy.residentGroups(pool, ids));
            if (groups == null) {
                return null;
            }
            DevicePools.Resident sets = groups.sets();
            int count = groups.adapterIds().length;
            long[] offsets = gradientOffsets(count, i -> groups.setOf()[i], sets.specs());
            DeviceBuffer grads = StageTimer.host("gradients' buffer",
                    () -> context.allocate(DType.FLOAT32, Math.max(1, offsets[count]), stream));
            try {
                if (count > 0) {
                    MixedTiles[] tiles = StageTimer.host("gradient tiles", () -> MixedTiles.bySet(count,
                            i -> groups.setOf()[i], i -> groups.scaleOf()[i], groups.byAdapter().starts(), sets.sets(),
                            offsets));
                    int maxN = maxCoefficients(sets.specs());
                    boolean fused = fusedForward(pool.dIn(), pool.dOut(), maxN);
                    try (StreamScratch scratch = new StreamScratch(stream)) {
                        if (fused) {
                            scratch.reserve(fusedBackwardFootprint(tokens, maxN, sets.specs(), tiles));
                        }
                        long order = HostTables.copyIn(groups.byAdapter().tokens(), scratch, stream);
                        long[] tokenRows = deviceTokenRows(ids, sets, scratch, stream);
                        queueBackward(new BackwardPlan(sets.specs(), sets.tables(), sets.halfScales(), tokenRows, tiles,
                                order), fused, tokens, pool.dIn(), pool.dOut(), dx, dgy, grads.array(), dgx, scratch,
                                stream);
                        checkReservation(scratch, "mixed backward");
                    }
                }
            } catch (RuntimeException e) {
                grads.close();
                throw e;
            }
            return new MixedGradients(groups.adapterIds(), java.util.Arrays.copyOf(offsets, count), grads);
        }
    }

    /**
     * What a mixed backward's host tables take from its batch alone: each adapter's gradient offset and each index
     * set's tiles. Made once per batch and kept with it ({@link ResolvedBatch#derived}), so a call that gets the
     * same batch back (same ids, pool unchanged) skips both passes. Read only.
     */
    private record BackwardTables(long[] offsets, MixedTiles[] tiles) {
        static BackwardTables of(ResolvedBatch batch) {
            long[] offsets = gradientOffsets(batch.adapterCount(), batch::setOf, specsOf(batch));
            return new BackwardTables(offsets, MixedTiles.bySet(batch.adapterCount(), batch::setOf,
                    i -> batch.adapter(i).spec().scale(), batch.tokensByAdapter().starts(), batch.setCount(), offsets));
        }
    }

    /** The key of {@link BackwardTables} among a batch's derived state. */
    private static final Object BACKWARD_TABLES = new Object();

    private static BackwardTables backwardTables(ResolvedBatch batch) {
        return batch.derived(BACKWARD_TABLES, BackwardTables::of);
    }

    /**
     * One index set's tiles for the mixed ∂L/∂c: for each of its adapters, in place order, its tokens (grouped by
     * adapter as {@link ResolvedBatch#tokensByAdapter} groups them, {@code starts} their bounds) in tiles of {@link
     * #GRAD_TILE_TOKENS}. {@code bounds} holds, one after the other for a single copy to the device, each tile's
     * first token, each tile's end, each adapter's first tile (one more entry: the count) and each adapter's scale
     * α/(d_out·d_in) (its own: adapters of a set may differ in α; a float's bits, from {@link #scalesAt()});
     * gradOffset[j] is where adapter j's gradient goes.
     */
    private record MixedTiles(int[] bounds, int count, long[] gradOffset) {
        /** {@link #of} for each of {@code sets} index sets, in set order. */
        static MixedTiles[] bySet(int adapterCount, java.util.function.IntUnaryOperator setOf, IntToFloat scaleOf,
                                  int[] starts, int sets, long[] offsets) {
            MixedTiles[] tiles = new MixedTiles[sets];
            for (int set = 0; set < sets; set++) {
                tiles[set] = of(adapterCount, setOf, scaleOf, starts, set, offsets);
            }
            return tiles;
        }

        static MixedTiles of(int adapterCount, java.util.function.IntUnaryOperator setOf, IntToFloat scaleOf,
                             int[] starts, int set, long[] offsets) {
            int adapters = 0;
            int tiles = 0;
            for (int i = 0; i < adapterCount; i++) {
                if (setOf.applyAsInt(i) == set) {
                    adapters++;
                    tiles += (starts[i + 1] - starts[i] + GRAD_TILE_TOKENS - 1) / GRAD_TILE_TOKENS;
                }
            }
            int[] bounds = new int[2 * tiles + 2 * adapters + 1];
            long[] gradOffset = new long[adapters];
            int j = 0;
            int tile = 0;
            for (int i = 0; i < adapterCount; i++) {
                if (setOf.applyAsInt(i) != set) {
                    continue;
                }
                bounds[2 * tiles + j] = tile;
                gradOffset[j] = offsets[i];
                bounds[2 * tiles + adapters + 1 + j] = Float.floatToRawIntBits(scaleOf.apply(i));
                for (int from = starts[i]; from < starts[i + 1]; from += GRAD_TILE_TOKENS) {
                    bounds[tile] = from;
                    bounds[tiles + tile] = Math.min(starts[i + 1], from + GRAD_TILE_TOKENS);
                    tile++;
                }
                j++;
            }
            bounds[2 * tiles + adapters] = tile;
            return new MixedTiles(bounds, tiles, gradOffset);
        }

        /** @return where the adapters' scales start in {@link #bounds}, in ints */
        int scalesAt() {
            return 2 * count + adapters() + 1;
        }

        /** A distinct adapter's scale by its place. */
        interface IntToFloat {
            float apply(int i);
        }

        int adapters() {
            return gradOffset.length;
        }
    }

    @Override
    protected void runGradCoefficients(FourierFTSpec spec, HostArray gradDeltaW, float[] gradCoeffs) {
        try (HostCall call = new HostCall(context)) {
            DeviceArray g = call.in(gradDeltaW);
            DeviceArray gc = call.out(HostArray.float32(gradCoeffs));
            gradCoefficients(spec, g, gc, call.stream());
            call.finish();
        }
    }

    @Override
    protected void runBackward(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                               float[] gradCoeffs, HostArray gradX) {
        checkRoute();
        try (HostCall call = new HostCall(context)) {
            DeviceArray c = call.in(HostArray.float32(coeffs));
            DeviceArray dx = call.in(x);
            DeviceArray gy = call.in(gradY);
            DeviceArray gc = call.out(HostArray.float32(gradCoeffs));
            DeviceArray gx = gradX == null ? null : call.inOut(gradX);
            backward(spec, c, dx, gy, tokens, gc, gx, call.stream());
            call.finish();
        }
    }

    @Override
    public void close() {
        if (markClosed()) {
            if (!ownsContext && context.isClosed()) {
                // the borrowed context went first: its device memory and module go with the primary context
                synchronized (specs) {
                    specs.clear();
                }
                return;
            }
            try {
                context.makeCurrent();
                cuCtxSynchronize();
                devicePools.close();
                synchronized (specs) {
                    for (SpecResources r : specs.values()) {
                        r.close();
                    }
                    specs.clear();
                }
                kernels.close(); // the plans and common kernels are the context's, closed with it
            } finally {
                if (ownsContext) {
                    context.close();
                }
            }
        }
    }
}
