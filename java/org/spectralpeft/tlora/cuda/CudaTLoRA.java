package org.spectralpeft.tlora.cuda;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntToLongFunction;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.WriteMode;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.Blas;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.DeviceMemoryRegistry;
import org.spectralpeft.cuda.internal.HostCall;
import org.spectralpeft.cuda.internal.KernelModule;
import org.spectralpeft.cuda.internal.StreamScratch;
import org.spectralpeft.tlora.RingCost;
import org.spectralpeft.tlora.RingProducts;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.ValidatingBackend;

/**
 * TLoRA on a CUDA device. The transform T and the TTM residual are tensor-ring operators applied row by row
 * ({@code tlora_ring_apply}: each block carries one row's ring state in shared memory through every core),
 * never formed; where the ring costs more than a dense T (from R = 4 at the authors' shapes; {@link RingCost}),
 * T is built in row panels within a scratch budget ({@link #DEFAULT_PANEL_BYTES}: T whole up to 4096; whole
 * values of the first input digit, from core 1 and the other cores' products by cuBLAS) and applied by cuBLAS,
 * panel by panel. W0's product and the LoRA and TR
 * residuals are cuBLAS GEMMs (the TR residual through its ring products, computed on the host: they depend on
 * the parameters only). The cores' gradients are GEMMs, as
 * on the CPU backend: C = Σ_t w_t·v_tᵀ over the tokens (one cuBLAS GEMM, ∏J × ∏I), then per core one GEMM of
 * C, its digits permuted ({@code tlora_permute}), with the other cores' products ({@code tlora_other_products}),
 * written straight into the core's layout. Per token that is one rank-1 update at GEMM speed instead of
 * carrying the ring state through every other core. C is built in bands of rows (whole values of the first
 * output digit) within a scratch budget ({@link #DEFAULT_GRAM_BYTES}: C whole up to 4096 × 4096, one band
 * at a time where one value already exceeds it), each band's share added in band order. At R = 1 the property
 * {@value GradientRoute#PROPERTY}{@code =kronecker} skips C ({@link GradientRoute}: each row through the other cores
 * in shared memory, {@code tlora_kron_gradient}). cuBLAS in its
 * default math mode and the kernels (no atomics) repeat bit for bit. Everything is computed in float32; inputs
 * of other dtypes are widened on the device first.
 *
 * <p>Host arrays are copied in and out around each call, on a stream of the call's own, so calls from several
 * threads run side by side. The device-array calls take the parameters {@link #prepare}d on the device once
 * per optimizer step and queue their work on the caller's stream. Limits, checked before any work: at most {@link TLoRAKernels#MAX_ORDER} factors,
 * ring ranks up to {@link TLoRAKernels#MAX_RING}, and one row's ring state within the device's shared memory
 * per block (every factorisation of the authors' code fits at R up to 4, and 4096 = [16, 16, 16]); the
 * gradients also need C's ∏J·∏I within an int.
 */
public final class CudaTLoRA extends ValidatingBackend {
    /** GEMM multiply-adds per ring multiply-add, in time: the ring kernel ran at a third of SGEMM's rate on an H100. */
    private static final double RING_SLOWDOWN = 3.0;

    /**
     * Default scratch budget of one band of C = Σ_t w_t·v_tᵀ in the gradients (and of its permuted copy): 64 MiB,
     * C whole up to d_in = d_out = 4096. C in its 8 bands at 1280 (R = 1, 1024 tokens) ran the backward at
     * 1.7 ms on an H100 against 0.78 ms with C whole (bench/GPU_RUNS.md): 41 small GEMMs and 24 permutes fill
     * the device worse than a few large ones, and a GPU has the memory.
     */
    static final long DEFAULT_GRAM_BYTES = 64L << 20;

    /** The band budget; the system property {@code spectralpeft.tlora.cuda.gramBytes} overrides it (tuning, tests). */
    static long gramBytes() {
        return Math.max(1, Long.getLong("spectralpeft.tlora.cuda.gramBytes", DEFAULT_GRAM_BYTES));
    }

    /**
     * Default scratch budget of one row panel of T (and of its unpermuted copy) where T is applied by GEMMs: 64 MiB,
     * T whole up to d_in = 4096, for the reason of {@link #DEFAULT_GRAM_BYTES}: on a device a few large GEMMs
     * beat many small ones and their launches.
     */
    static final long DEFAULT_PANEL_BYTES = 64L << 20;

    /** The panel budget; the system property {@code spectralpeft.tlora.cuda.panelBytes} overrides it (tuning, tests). */
    static long panelBytes() {
        return Math.max(1, Long.getLong("spectralpeft.tlora.cuda.panelBytes", DEFAULT_PANEL_BYTES));
    }

    /**
     * Values of the first output digit per band of C (or of the first input digit per panel of T): the most that divide {@code values} (so that every band
     * is alike) and take at most {@code budget} bytes at {@code valueBytes} each; at least 1.
     */
    static int bandValues(int values, long valueBytes, long budget) {
        for (int n = values; n > 1; n--) {
            if (values % n == 0 && n * valueBytes <= budget) {
                return n;
            }
        }
        return 1;
    }

    private final CudaContext context;
    private final boolean ownsContext;
    private final TLoRAKernels kernels;

    private CudaTLoRA(CudaContext context, boolean ownsContext) {
        this.context = context;
        this.ownsContext = ownsContext;
        context.makeCurrent();
        this.kernels = new TLoRAKernels(context.computeCapability(), Boolean.getBoolean("spectralpeft.cuda.debug"));
    }

    /**
     * Opens device 0.
     *
     * @return the backend; close it when done
     * @throws IllegalStateException if the kernels were not built or a CUDA call fails; missing native
     *         libraries surface as a {@link LinkageError}
     */
    public static CudaTLoRA open() {
        KernelModule.requireBuilt(TLoRAKernels.MODULE);
        return new CudaTLoRA(CudaContext.open(0), true);
    }

    /**
     * A backend on a context the caller owns and shares; closing the backend leaves the context open.
     *
     * @param context an open context, borrowed
     * @return the backend; close it when done
     * @throws IllegalArgumentException if {@code context} is null
     * @throws IllegalStateException if the kernels were not built or the context is closed
     */
    public static CudaTLoRA open(CudaContext context) {
        Checks.notNull(context, "context");
        KernelModule.requireBuilt(TLoRAKernels.MODULE);
        return new CudaTLoRA(context, false);
    }

    /**
     * The context this backend runs in.
     *
     * @return the context
     */
    public CudaContext context() {
        return context;
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
    public void close() {
        if (!markClosed()) {
            return;
        }
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

    private static RingLayout transform(TLoRASpec spec, TLoRAParameters params) {
        return new RingLayout(spec.inShape(), spec.inShape(), spec.transformRank(), params.transformCores());
    }

    /** What the kernels hold, checked before any device work. */
    private void checkSupported(TLoRASpec spec, RingLayout ring, String what) {
        Checks.require(ring.order() <= TLoRAKernels.MAX_ORDER, "the CUDA backend takes at most "
                + TLoRAKernels.MAX_ORDER + " factors, " + what + " of " + spec + " has " + ring.order());
        Checks.require(ring.rank() <= TLoRAKernels.MAX_RING, "the CUDA backend takes ring ranks up to "
                + TLoRAKernels.MAX_RING + ", " + what + " of " + spec + " has " + ring.rank());
        long need = ring.applyBytes() + TLoRAKernels.STATIC_SHARED_BYTES;
        Checks.require(fitsSharedMemory(ring.applyBytes()), "the CUDA backend holds one row's ring state in shared "
                + "memory: " + what + " of " + spec + " needs " + need + " bytes per block, the device allows "
                + context.sharedMemoryPerBlockOptin());
    }

    /** Whether a ring kernel with {@code dynamicBytes} of dynamic shared memory fits a block on this device. */
    private boolean fitsSharedMemory(long dynamicBytes) {
        return dynamicBytes + TLoRAKernels.STATIC_SHARED_BYTES <= context.sharedMemoryPerBlockOptin();
    }

    /** The cores' gradients form C = Σ w·vᵀ (∏J × ∏I floats) on the device; its elements are indexed by ints. */
    private static void checkGradientFits(TLoRASpec spec, RingLayout ring, String what) {
        Checks.require(ring.gramFloats() <= Integer.MAX_VALUE, "the CUDA backend's gradients of " + what
                + " of " + spec + " form a " + ring.outLength() + " x " + ring.inLength() + " matrix, more than "
                + Integer.MAX_VALUE + " floats");
    }

    private static void checkGradientFits(TLoRASpec spec, TLoRAParameters params) {
        checkGradientFits(spec, transform(spec, params), "the transform");
        if (spec.residual() == TLoRASpec.Residual.TTM) {
            checkGradientFits(spec, new RingLayout(spec.outShape(), spec.inShape(), spec.rank(),
                    params.residualArrays()), "the TTM residual");
        }
    }

    private void checkSupported(TLoRASpec spec, TLoRAParameters params) {
        checkSupported(spec, transform(spec, params), "the transform");
        if (spec.residual() == TLoRASpec.Residual.TTM) {
            checkSupported(spec, new RingLayout(spec.outShape(), spec.inShape(), spec.rank(), params.residualArrays()),
                    "the TTM residual");
        }
    }

    /**
     * The layer's parameters copied to the device, for the device-array operations; update them after each
     * optimizer step, close them when done.
     *
     * @param spec the layer
     * @param params its parameters
     * @return the device copy
     * @throws IllegalArgumentException if an argument is null, the parameters do not fit the spec or are not
     *         finite, or the layer exceeds what the kernels hold (see the class comment)
     * @throws IllegalStateException if this backend is closed
     */
    public TLoRADeviceParameters prepare(TLoRASpec spec, TLoRAParameters params) {
        Checks.notNull(spec, "spec");
        Checks.notNull(params, "params");
        ensureOpen();
        params.check(spec);
        return prepareChecked(spec, params);
    }

    /** {@link #prepare} of parameters already checked against the spec (the host-array calls check them first). */
    private TLoRADeviceParameters prepareChecked(TLoRASpec spec, TLoRAParameters params) {
        checkSupported(spec, params);
        context.makeCurrent();
        TLoRADeviceParameters p = new TLoRADeviceParameters(spec, this, context);
        try {
            p.load(params);
        } catch (RuntimeException | Error e) {
            p.close();
            throw e;
        }
        return p;
    }

    /**
     * y += x·W'ᵀ on device arrays, queued on {@code stream} without waiting for it: w0 is d_out × d_in, x
     * tokens × d_in, y tokens × d_out, any dtypes, on this backend's device (not scanned for NaN). The parameters
     * must stay open and unchanged until the stream has run the work.
     *
     * @param params the layer's parameters, from {@link #prepare}
     * @param w0 the frozen weight
     * @param x the inputs
     * @param tokens rows of x and y, at least 1
     * @param y the outputs, accumulated into
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null, an array has the wrong length or is on another
     *         device, or the parameters are another backend's
     * @throws IllegalStateException if the backend or the parameters are closed
     */
    public void forward(TLoRADeviceParameters params, DeviceArray w0, DeviceArray x, int tokens, DeviceArray y,
                        CudaStream stream) {
        TLoRASpec spec = checkDeviceCall(params, w0, stream);
        Checks.positive(tokens, "tokens");
        checkDevice("x", x, (long) tokens * spec.dIn());
        checkDevice("y", y, (long) tokens * spec.dOut());
        context.makeCurrent();
        try (StreamScratch scratch = new StreamScratch(stream)) {
            forwardOnDevice(params, w0, x, tokens, y, new Run(stream, scratch));
        }
    }

    /**
     * The gradients of {@link #forward(TLoRADeviceParameters, DeviceArray, DeviceArray, int, DeviceArray,
     * CudaStream)} on device arrays: ∂L/∂x added into gradX (any dtype; null when not wanted) on the stream, and
     * the parameters' gradients returned to the host, so this call waits for the stream.
     *
     * @param params the layer's parameters, from {@link #prepare}
     * @param w0 the frozen weight, d_out × d_in
     * @param x the forward's input, tokens × d_in
     * @param gradY ∂L/∂y, tokens × d_out
     * @param tokens rows, at least 1
     * @param gradX tokens × d_in, accumulated into, or null
     * @param stream the stream the work is queued on
     * @return fresh host arrays in the parameters' layouts
     * @throws IllegalArgumentException if an argument is null (but gradX), an array has the wrong length or is
     *         on another device, or the parameters are another backend's
     * @throws IllegalStateException if the backend or the parameters are closed
     */
    public TLoRAParameters backward(TLoRADeviceParameters params, DeviceArray w0, DeviceArray x, DeviceArray gradY,
                                   int tokens, DeviceArray gradX, CudaStream stream) {
        TLoRASpec spec = checkDeviceCall(params, w0, stream);
        Checks.positive(tokens, "tokens");
        checkDevice("x", x, (long) tokens * spec.dIn());
        checkDevice("gradY", gradY, (long) tokens * spec.dOut());
        checkGradientFits(spec, params.transform(), "the transform");
        if (params.ttm() != null) {
            checkGradientFits(spec, params.ttm(), "the TTM residual");
        }
        if (gradX != null) {
            checkDevice("gradX", gradX, (long) tokens * spec.dIn());
        }
        GradientRoute route = GradientRoute.requested();
        context.makeCurrent();
        try (StreamScratch scratch = new StreamScratch(stream)) {
            return backwardOnDevice(params, w0, x, gradY, tokens, gradX, new Run(stream, scratch, route));
        }
    }

    /**
     * out = W0·T + s·Δ on device arrays (any dtypes; out may be w0 itself: a merge), queued on the stream. Unlike
     * the host-array call, the result is not checked for overflow.
     *
     * @param params the layer's parameters, from {@link #prepare}
     * @param w0 the frozen weight, d_out × d_in
     * @param out d_out × d_in, overwritten
     * @param stream the stream the work is queued on
     * @throws IllegalArgumentException if an argument is null, an array has the wrong length or is on another
     *         device, or the parameters are another backend's
     * @throws IllegalStateException if the backend or the parameters are closed
     */
    public void materialize(TLoRADeviceParameters params, DeviceArray w0, DeviceArray out, CudaStream stream) {
        TLoRASpec spec = checkDeviceCall(params, w0, stream);
        checkDevice("out", out, (long) spec.dOut() * spec.dIn());
        context.makeCurrent();
        try (StreamScratch scratch = new StreamScratch(stream)) {
            materializeOnDevice(params, w0, out, new Run(stream, scratch));
        }
    }

    private TLoRASpec checkDeviceCall(TLoRADeviceParameters params, DeviceArray w0, CudaStream stream) {
        Checks.notNull(params, "params");
        Checks.notNull(w0, "w0");
        Checks.notNull(stream, "stream");
        ensureOpen();
        params.checkUsableBy(this, "params");
        TLoRASpec spec = params.spec();
        checkDevice("w0", w0, (long) spec.dOut() * spec.dIn());
        return spec;
    }

    private void checkDevice(String name, DeviceArray a, long expected) {
        Checks.notNull(a, name);
        DeviceMemoryRegistry.requireArray(name, a, expected, context.ordinal());
    }

    @Override
    protected void runForward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x, int tokens,
                              HostArray y) {
        try (TLoRADeviceParameters p = prepareChecked(spec, params); HostCall call = new HostCall(context);
             StreamScratch scratch = new StreamScratch(call.stream())) {
            forwardOnDevice(p, call.in(w0), call.in(x), tokens, call.inOut(y), new Run(call.stream(), scratch));
            call.finish();
        }
    }

    @Override
    protected TLoRAParameters runBackward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x,
                                          HostArray gradY, int tokens, HostArray gradX) {
        checkGradientFits(spec, params);
        GradientRoute route = GradientRoute.requested();
        try (TLoRADeviceParameters p = prepareChecked(spec, params); HostCall call = new HostCall(context);
             StreamScratch scratch = new StreamScratch(call.stream())) {
            TLoRAParameters grads = backwardOnDevice(p, call.in(w0), call.in(x), call.in(gradY), tokens,
                    gradX != null ? call.inOut(gradX) : null, new Run(call.stream(), scratch, route));
            call.finish();
            return grads;
        }
    }

    @Override
    protected void runMaterialize(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray out) {
        try (TLoRADeviceParameters p = prepareChecked(spec, params); HostCall call = new HostCall(context);
             StreamScratch scratch = new StreamScratch(call.stream())) {
            DeviceArray outD = call.inOut(out);
            materializeOnDevice(p, w0 == out ? outD : call.in(w0), outD, new Run(call.stream(), scratch));
            call.finish();
        }
    }

    /** y += x·W'ᵀ: T on the tokens (or on W0's rows when there are more tokens than outputs), W0 by cuBLAS. */
    private void forwardOnDevice(TLoRADeviceParameters p, DeviceArray w0, DeviceArray x, int tokens, DeviceArray y,
                                 Run run) {
        TLoRASpec spec = p.spec();
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        long x32 = run.widened(x);
        long w32 = run.widened(w0);
        long acc = run.scratch.allocate(4L * tokens * dOut);
        if (tokens > dOut) {
            // T on W0's rows (d_out of them) costs less than on the tokens: W0·T, then one GEMM
            long w0t = run.scratch.allocate(4L * dOut * dIn);
            applyTransform(p, true, w32, dOut, w0t, run);
            run.blas.gemm(run.stream, false, true, tokens, dOut, dIn, 1f, x32, dIn, w0t, dIn, 0f, acc, dOut);
        } else {
            long u = run.scratch.allocate(4L * tokens * dIn); // x·Tᵀ
            applyTransform(p, false, x32, tokens, u, run);
            run.blas.gemm(run.stream, false, true, tokens, dOut, dIn, 1f, u, dIn, w32, dIn, 0f, acc, dOut);
        }
        int r = spec.rank();
        float s = spec.scale();
        switch (spec.residual()) {
            case LORA -> {
                long down = run.scratch.allocate(4L * tokens * r); // x·Aᵀ
                run.blas.gemm(run.stream, false, true, tokens, r, dIn, 1f, x32, dIn, p.address(1), dIn, 0f, down, r);
                run.blas.gemm(run.stream, false, true, tokens, dOut, r, s, down, r, p.address(2), r, 1f, acc, dOut);
            }
            case TR -> {
                // y[ō] += s·tr(G(ō)·M) with M = Σ_ī H(ī)·x[ī]: m holds M by rows, the G(ō) go in transposed
                int rr = r * r;
                long m = run.scratch.allocate(4L * tokens * rr);
                run.blas.gemm(run.stream, false, false, tokens, rr, dIn, 1f, x32, dIn, p.address(1), rr, 0f, m, rr);
                run.blas.gemm(run.stream, false, true, tokens, dOut, rr, s, m, rr, p.address(4), rr, 1f, acc, dOut);
            }
            case TTM -> kernels.apply(p.ttm(), p.address(1), false, x32, tokens, s, acc, true, run.stream);
        }
        run.common.epilogue(acc, dOut, y, tokens, dOut, WriteMode.ADD.code(), run.stream);
    }

    /**
     * dst row t = T·(src row t), or Tᵀ· when transposed, for rows rows of float32: through the ring kernel, or
     * through T's row panels where {@link RingCost#throughPanels} says they cost less.
     */
    private void applyTransform(TLoRADeviceParameters p, boolean transposed, long src, int rows, long dst, Run run) {
        if (RingCost.throughPanels(p.spec(), rows, RING_SLOWDOWN)) {
            run.applyByPanels(p.transform(), p.address(0), transposed, src, rows, dst);
        } else {
            kernels.apply(p.transform(), p.address(0), transposed, src, rows, 1f, dst, false, run.stream);
        }
    }

    /** The gradients; waits for the stream to bring the parameters' gradients to the host. */
    private TLoRAParameters backwardOnDevice(TLoRADeviceParameters p, DeviceArray w0, DeviceArray x, DeviceArray gradY,
                                             int tokens, DeviceArray gradX, Run run) {
        TLoRASpec spec = p.spec();
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        int r = spec.rank();
        float s = spec.scale();
        long x32 = run.widened(x);
        long g32 = run.widened(gradY);
        long w32 = run.widened(w0);
        RingLayout t = p.transform();
        List<DeviceBuffer> results = new ArrayList<>();
        try {
            long du = run.scratch.allocate(4L * tokens * dIn); // ∂L/∂(x·Tᵀ) = g·W0
            run.blas.gemm(run.stream, false, false, tokens, dIn, dOut, 1f, g32, dOut, w32, dIn, 0f, du, dIn);
            DeviceBuffer gradTransform = result(results, t.coreFloats());
            run.ringGradient(t, p.address(0), x32, du, tokens, 1f, gradTransform.array().address());
            long gx = 0;
            if (gradX != null) {
                gx = run.scratch.allocate(4L * tokens * dIn);
                if (RingCost.gradXThroughW0T(spec, tokens, RING_SLOWDOWN)) {
                    // ∂u·T = g·(W0·T): T on W0's d_out rows, then one GEMM
                    long w0t = run.scratch.allocate(4L * dOut * dIn);
                    applyTransform(p, true, w32, dOut, w0t, run);
                    run.blas.gemm(run.stream, false, false, tokens, dIn, dOut, 1f, g32, dOut, w0t, dIn, 0f, gx, dIn);
                } else {
                    applyTransform(p, true, du, tokens, gx, run); // Tᵀ·∂u
                }
            }
            List<DeviceBuffer> residual = new ArrayList<>();
            switch (spec.residual()) {
                case LORA -> {
                    long down = run.scratch.allocate(4L * tokens * r); // x·Aᵀ
                    run.blas.gemm(run.stream, false, true, tokens, r, dIn, 1f, x32, dIn, p.address(1), dIn, 0f, down, r);
                    long up = run.scratch.allocate(4L * tokens * r); // g·B
                    run.blas.gemm(run.stream, false, false, tokens, r, dOut, 1f, g32, dOut, p.address(2), r, 0f, up, r);
                    DeviceBuffer gA = result(results, (long) r * dIn);
                    DeviceBuffer gB = result(results, (long) dOut * r);
                    residual.add(gA);
                    residual.add(gB);
                    run.blas.gemm(run.stream, true, false, r, dIn, tokens, s, up, r, x32, dIn, 0f, gA.array().address(), dIn);
                    run.blas.gemm(run.stream, true, false, dOut, r, tokens, s, g32, dOut, down, r, 0f,
                            gB.array().address(), r);
                    if (gx != 0) {
                        run.blas.gemm(run.stream, false, false, tokens, dIn, r, s, up, r, p.address(1), dIn, 1f, gx, dIn);
                    }
                }
                case TR -> {
                    // with M = Σ_ī H(ī)·x[ī] and N = Σ_ō g[ō]·G(ō): ∂G(ō) = s·g[ō]·Mᵀ, ∂H(ī) = s·x[ī]·Nᵀ and
                    // ∂x[ī] = s·tr(N·H(ī)); the products' gradients come back transposed, the host turns them
                    // and takes them through the cores
                    int rr = r * r;
                    long m = run.scratch.allocate(4L * tokens * rr);
                    run.blas.gemm(run.stream, false, false, tokens, rr, dIn, 1f, x32, dIn, p.address(1), rr, 0f, m, rr);
                    long n = run.scratch.allocate(4L * tokens * rr);
                    run.blas.gemm(run.stream, false, false, tokens, rr, dOut, 1f, g32, dOut, p.address(2), rr, 0f, n, rr);
                    DeviceBuffer gOut = result(results, (long) dOut * rr);
                    DeviceBuffer gIn = result(results, (long) dIn * rr);
                    residual.add(gOut);
                    residual.add(gIn);
                    run.blas.gemm(run.stream, true, false, dOut, rr, tokens, s, g32, dOut, m, rr, 0f,
                            gOut.array().address(), rr);
                    run.blas.gemm(run.stream, true, false, dIn, rr, tokens, s, x32, dIn, n, rr, 0f,
                            gIn.array().address(), rr);
                    if (gx != 0) {
                        run.blas.gemm(run.stream, false, true, tokens, dIn, rr, s, n, rr, p.address(3), rr, 1f, gx, dIn);
                    }
                }
                case TTM -> {
                    DeviceBuffer gTtm = result(results, p.ttm().coreFloats());
                    residual.add(gTtm);
                    run.ringGradient(p.ttm(), p.address(1), x32, g32, tokens, s, gTtm.array().address());
                    if (gx != 0) {
                        kernels.apply(p.ttm(), p.address(1), true, g32, tokens, s, gx, true, run.stream); // s·Δᵀ·g
                    }
                }
            }
            if (gradX != null) {
                run.common.epilogue(gx, dIn, gradX, tokens, dIn, WriteMode.ADD.code(), run.stream);
            }
            run.stream.synchronize();
            float[][] gradCores = split(download(gradTransform), spec.inOrder(), spec::transformCoreLength);
            float[][] gradResidual = switch (spec.residual()) {
                case LORA -> new float[][] {download(residual.get(0)), download(residual.get(1))};
                case TR -> {
                    TLoRAParameters host = p.host();
                    float[][] out = RingProducts.outputCoreGradients(spec, host,
                            RingProducts.transposeEach(download(residual.get(0)), dOut, r));
                    float[][] in = RingProducts.inputCoreGradients(spec, host,
                            RingProducts.transposeEach(download(residual.get(1)), dIn, r));
                    float[][] all = new float[out.length + in.length][];
                    System.arraycopy(out, 0, all, 0, out.length);
                    System.arraycopy(in, 0, all, out.length, in.length);
                    yield all;
                }
                case TTM -> split(download(residual.get(0)), spec.residualArrays(), spec::residualLength);
            };
            return TLoRAParameters.of(spec, gradCores, gradResidual);
        } finally {
            for (DeviceBuffer b : results) {
                b.close();
            }
        }
    }

    /** A float32 device buffer for a result the host reads back, freed by the caller. */
    private DeviceBuffer result(List<DeviceBuffer> results, long length) {
        DeviceBuffer b = context.allocate(DType.FLOAT32, length);
        results.add(b);
        return b;
    }

    private static float[] download(DeviceBuffer b) {
        float[] values = new float[(int) b.array().length()];
        b.copyTo(HostArray.float32(values));
        return values;
    }

    /** The concatenated arrays cut into count arrays of the given lengths. */
    private static float[][] split(float[] all, int count, IntToLongFunction length) {
        float[][] out = new float[count][];
        int at = 0;
        for (int k = 0; k < count; k++) {
            int n = (int) length.applyAsLong(k);
            out[k] = Arrays.copyOfRange(all, at, at + n);
            at += n;
        }
        return out;
    }

    /** out = W0·T + s·Δ; out may be w0 (W0 is read whole into float32 scratch first). */
    private void materializeOnDevice(TLoRADeviceParameters p, DeviceArray w0, DeviceArray out, Run run) {
        TLoRASpec spec = p.spec();
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        int r = spec.rank();
        float s = spec.scale();
        long w32 = run.widened(w0);
        long result = run.scratch.allocate(4L * dOut * dIn);
        // row p of W0·T is Tᵀ·(row p of W0)
        applyTransform(p, true, w32, dOut, result, run);
        switch (spec.residual()) {
            case LORA -> run.blas.gemm(run.stream, false, false, dOut, dIn, r, s, p.address(2), r, p.address(1), dIn,
                    1f, result, dIn);
            case TR -> run.blas.gemm(run.stream, false, true, dOut, dIn, r * r, s, p.address(2), r * r, p.address(3),
                    r * r, 1f, result, dIn);
            // row ō of Δ is Δᵀ·e_ō: the transposed TTM operator on the rows of the identity
            case TTM -> kernels.apply(p.ttm(), p.address(1), true, 0L, dOut, s, result, true, run.stream);
        }
        run.common.epilogue(result, dIn, out, dOut, dIn, WriteMode.STORE.code(), run.stream);
    }

    /** ∏ of the output (or input) factors from..to−1. */
    private static long product(RingLayout ring, boolean outputs, int from, int to) {
        long p = 1;
        for (int k = from; k < to; k++) {
            p *= outputs ? ring.out(k) : ring.in(k);
        }
        return p;
    }

    /** One call's stream and scratch, the route of its gradients, and the context's shared libraries. */
    private final class Run {
        final StreamScratch scratch;
        final CudaStream stream;
        final GradientRoute gradients;
        final Blas blas;
        final CommonKernels common;

        Run(CudaStream stream, StreamScratch scratch) {
            this(stream, scratch, GradientRoute.GRAM);
        }

        Run(CudaStream stream, StreamScratch scratch, GradientRoute gradients) {
            this.scratch = scratch;
            this.stream = stream;
            this.gradients = gradients;
            this.blas = context.blas();
            this.common = context.commonKernels();
        }

        /** The array's float32 device address: itself, or a widened copy in the call's scratch. */
        long widened(DeviceArray a) {
            return common.asFloat32(a, scratch, stream);
        }

        /**
         * dst = src·Tᵀ, or src·T when transposed (rows × ∏I each), with T built in row panels: the rows of one or
         * more values p of the first digit, as many as {@link #panelBytes} allows (T whole at the authors'
         * shapes). T[(p, r), (q, r')] = tr(A⁰[p, q]·E[r, r']) = Σ_c A⁰[p, q][c]·E0[(r, r'), c] (E0: the other
         * cores' products for core 0, whose columns (b, a) hold E[a, b], which is the trace's pairing): per panel
         * one GEMM (values·I_0 × (∏I/I_0)² × R²) into [p][q][r][r'], permuted to the panel's rows
         * [p][r][(q, r')], then one GEMM: dst's columns of the panel = src·panelᵀ, or dst += src's columns of the
         * panel·panel. Scratch of its own, freed in stream order on return: E0, the GEMM's result and the panel.
         */
        void applyByPanels(RingLayout ring, long ringAddress, boolean transposed, long src, int rows, long dst) {
            try (StreamScratch local = new StreamScratch(stream)) {
                int rr = ring.rank() * ring.rank();
                int first = ring.in(0);
                int length = (int) ring.inLength();
                int rest = length / first;
                int values = bandValues(first, 4L * rest * length, panelBytes());
                int panelRows = values * rest;
                long e0 = local.allocate(4L * ring.others(0) * rr);
                kernels.otherProducts(ring, ringAddress, 0, e0, stream);
                long products = local.allocate(4L * panelRows * length);
                long panel = local.allocate(4L * panelRows * length);
                long core0 = ring.coresAddress(ringAddress); // (I_0, I_0, R, R), the first of the packed cores
                for (int p = 0; p < first; p += values) {
                    blas.gemm(stream, false, true, values * first, rest * rest, rr, 1f, core0 + 4L * p * first * rr, rr,
                            e0, rr, 0f, products, rest * rest);
                    kernels.permute(products, panel, new int[] {values, rest, first, rest, 1},
                            new int[] {first * rest * rest, rest, rest * rest, 1, 0}, stream);
                    if (transposed) {
                        blas.gemm(stream, false, false, rows, length, panelRows, 1f, src + 4L * p * rest, length, panel,
                                length, p == 0 ? 0f : 1f, dst, length);
                    } else {
                        blas.gemm(stream, false, true, rows, panelRows, length, 1f, src, length, panel, length, 0f,
                                dst + 4L * p * rest, length);
                    }
                }
            }
        }

        /**
         * into (core floats, in the cores' layout) = scale·Σ_t ∂⟨w_t, M·v_t⟩/∂(every core), by GEMMs:
         * C = Σ_t w_t·v_tᵀ (∏J × ∏I, one GEMM over the rows), then per core k one GEMM of C, its digits permuted
         * to (o_k, i_k) × (the others), with E = the other cores' products at every value of the other digits,
         * whose columns (b, a) put the result in core k's layout. C is built in bands of rows (one or more values
         * of o_0, as many as {@link #gramBytes} allows: C whole at the authors' shapes), each band's share added
         * in band order. Scratch, freed on return: a band, its permuted copy and every core's E. Under
         * {@link GradientRoute#KRONECKER}, a ring of rank 1 skips C: tlora_kron_gradient, its partial sums the scratch.
         */
        void ringGradient(RingLayout ring, long ringAddress, long v, long w, int rows, float scale, long into) {
            // scratch of its own, freed in stream order on return: the next ring's bands may reuse it
            try (StreamScratch local = new StreamScratch(stream)) {
                if (takesKronecker(ring)) {
                    long partials = local.allocate(4L * TLoRAKernels.kronBlocks(rows) * ring.kronItems());
                    kernels.kronGradient(ring, ringAddress, v, w, rows, scale, partials, into, stream);
                    return;
                }
                int d = ring.order();
                int outLength = (int) ring.outLength();
                int inLength = (int) ring.inLength();
                int rr = ring.rank() * ring.rank();
                // C in bands of whole values of the first output digit, each within the scratch budget
                int values = ring.out(0);
                long valueBytes = 4L * (outLength / values) * inLength;
                int perBand = bandValues(values, valueBytes, gramBytes());
                int bandRows = perBand * (outLength / values);
                long gram = local.allocate(4L * bandRows * inLength);
                long permuted = d > 1 ? local.allocate(4L * bandRows * inLength) : 0;
                long[] e = new long[d];
                for (int k = 0; k < d; k++) {
                    e[k] = local.allocate(4L * ring.others(k) * rr);
                    kernels.otherProducts(ring, ringAddress, k, e[k], stream);
                }
                for (int first = 0; first < values; first += perBand) {
                    blas.gemm(stream, true, false, bandRows, inLength, rows, 1f, w + 4L * first * (outLength / values),
                            outLength, v, inLength, 0f, gram, inLength);
                    for (int k = 0; k < d; k++) {
                        addBand(ring, k, first, perBand, gram, permuted, e[k], scale, into);
                    }
                }
            }
        }

        /** Whether this call's gradients of {@code ring} run tlora_kron_gradient ({@link GradientRoute#KRONECKER}). */
        boolean takesKronecker(RingLayout ring) {
            return gradients == GradientRoute.KRONECKER && ring.rank() == 1
                    && fitsSharedMemory(ring.kronGradientBytes());
        }

        /**
         * One band of C (first output digit o_0 = first .. first + values − 1) into core k's gradient at into: for
         * k = 0 the rows of those o_0, for the others its share of the sum over the other digits, added to the
         * earlier bands' (E's rows of those o_0 are one run: o_0 is their first digit).
         */
        private void addBand(RingLayout ring, int k, int first, int values, long gram, long permuted, long e,
                             float scale, long into) {
            int rr = ring.rank() * ring.rank();
            int jk = k == 0 ? values : ring.out(k); // for k = 0, o_k is the band's own o_0
            int ik = ring.in(k);
            // the band as (before, o_k, middle, i_k, after): the output digits before k (the band's o_0 first),
            // o_k, the output digits after k with the input digits before k, i_k, the input digits after k; to
            // (o_k, i_k, before, middle, after), E's row order, which is the band itself when before and middle
            // are empty
            int after = (int) (ring.inLength() / product(ring, false, 0, k + 1));
            int middle = (int) (ring.outLength() / product(ring, true, 0, k + 1) * product(ring, false, 0, k));
            int before = k == 0 ? 1 : (int) (values * (product(ring, true, 0, k) / ring.out(0)));
            long c = gram;
            if (before > 1 || middle > 1) {
                int iStride = after;
                int mStride = ik * iStride;
                int oStride = middle * mStride;
                kernels.permute(gram, permuted, new int[] {jk, ik, before, middle, after},
                        new int[] {oStride, iStride, jk * oStride, mStride, 1}, stream);
                c = permuted;
            }
            int others = before * middle * after;
            long at = into + 4L * ring.coreOffset(k);
            if (k == 0) {
                blas.gemm(stream, false, false, jk * ik, rr, others, scale, c, others, e, rr, 0f,
                        at + 4L * first * ik * rr, rr);
            } else {
                blas.gemm(stream, false, false, jk * ik, rr, others, scale, c, others,
                        e + 4L * first * (others / values) * rr, rr, first == 0 ? 0f : 1f, at, rr);
            }
        }
    }
}
