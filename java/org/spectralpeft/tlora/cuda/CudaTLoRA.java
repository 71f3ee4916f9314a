package org.spectralpeft.tlora.cuda;

import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.WriteMode;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.internal.Blas;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.HostCall;
import org.spectralpeft.cuda.internal.KernelModule;
import org.spectralpeft.cuda.internal.StreamScratch;
import org.spectralpeft.tlora.RingProducts;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.ValidatingBackend;

/**
 * TLoRA on a CUDA device. The transform T and the TTM residual are tensor-ring operators applied row by row
 * ({@code tlora_ring_apply}: each block carries one row's ring state in shared memory through every core),
 * never formed; W0's product and the LoRA and TR residuals are cuBLAS GEMMs (the TR residual through its ring
 * products, computed on the host: they depend on the parameters only). The cores' gradients come from
 * {@code tlora_ring_gradient} over fixed chunks of tokens, summed in chunk order: repeats give the same bits.
 * Everything is computed in float32; inputs of other dtypes are widened on the device first.
 *
 * <p>Host arrays are copied in and out around each call, on a stream of the call's own, so calls from several
 * threads run side by side. Limits, checked before any work: at most {@link TLoRAKernels#MAX_ORDER} factors,
 * ring ranks up to {@link TLoRAKernels#MAX_RING}, and one row's ring state within the device's shared memory
 * per block (every factorisation of the authors' code fits, at R = 4 up to d = 4096).
 */
public final class CudaTLoRA extends ValidatingBackend {
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

    private static RingLayout ttm(TLoRASpec spec, TLoRAParameters params) {
        return new RingLayout(spec.outShape(), spec.inShape(), spec.rank(), params.residualArrays());
    }

    /** What the kernels hold, checked before any device work; the rings the call uses. */
    private void checkSupported(TLoRASpec spec, RingLayout ring, String what, boolean gradient) {
        Checks.require(ring.order() <= TLoRAKernels.MAX_ORDER, "the CUDA backend takes at most "
                + TLoRAKernels.MAX_ORDER + " factors, " + what + " of " + spec + " has " + ring.order());
        Checks.require(ring.rank() <= TLoRAKernels.MAX_RING, "the CUDA backend takes ring ranks up to "
                + TLoRAKernels.MAX_RING + ", " + what + " of " + spec + " has " + ring.rank());
        long need = gradient ? Math.max(ring.applyBytes(), ring.gradientBytes()) : ring.applyBytes();
        int limit = context.sharedMemoryPerBlockOptin();
        Checks.require(need <= limit, "the CUDA backend holds one row's ring state in shared memory: " + what
                + " of " + spec + " needs " + need + " bytes per block, the device allows " + limit);
    }

    private void checkSupported(TLoRASpec spec, TLoRAParameters params, boolean gradient) {
        checkSupported(spec, transform(spec, params), "the transform", gradient);
        if (spec.residual() == TLoRASpec.Residual.TTM) {
            checkSupported(spec, ttm(spec, params), "the TTM residual", gradient);
        }
    }

    @Override
    protected void runForward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x, int tokens,
                              HostArray y) {
        checkSupported(spec, params, false);
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        try (HostCall call = new HostCall(context); StreamScratch scratch = new StreamScratch(call.stream())) {
            Run run = new Run(call, scratch);
            long x32 = run.widened(call.in(x));
            long w32 = run.widened(call.in(w0));
            DeviceArray yd = call.inOut(y);
            RingLayout t = transform(spec, params);
            long ring = run.upload(t.packed());
            long acc = scratch.allocate(4L * tokens * dOut);
            if (tokens > dOut) {
                // T on W0's rows (d_out of them) costs less than on the tokens: W0·T, then one GEMM
                long w0t = scratch.allocate(4L * dOut * dIn);
                kernels.apply(t, ring, true, w32, dOut, 1f, w0t, false, run.stream);
                run.blas.gemm(run.stream, false, true, tokens, dOut, dIn, 1f, x32, dIn, w0t, dIn, 0f, acc, dOut);
            } else {
                long u = scratch.allocate(4L * tokens * dIn); // x·Tᵀ
                kernels.apply(t, ring, false, x32, tokens, 1f, u, false, run.stream);
                run.blas.gemm(run.stream, false, true, tokens, dOut, dIn, 1f, u, dIn, w32, dIn, 0f, acc, dOut);
            }
            addResidual(spec, params, run, x32, tokens, acc);
            run.common.epilogue(acc, dOut, yd, tokens, dOut, WriteMode.ADD.code(), run.stream);
            call.finish();
        }
    }

    /** acc (tokens × d_out float32) += s·x·Δᵀ. */
    private void addResidual(TLoRASpec spec, TLoRAParameters params, Run run, long x32, int tokens, long acc) {
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        int r = spec.rank();
        float s = spec.scale();
        switch (spec.residual()) {
            case LORA -> {
                long a = run.upload(params.residual(0));
                long b = run.upload(params.residual(1));
                long down = run.scratch.allocate(4L * tokens * r); // x·Aᵀ
                run.blas.gemm(run.stream, false, true, tokens, r, dIn, 1f, x32, dIn, a, dIn, 0f, down, r);
                run.blas.gemm(run.stream, false, true, tokens, dOut, r, s, down, r, b, r, 1f, acc, dOut);
            }
            case TR -> {
                // y[ō] += s·tr(G(ō)·M) with M = Σ_ī H(ī)·x[ī]: m holds M by rows, the G(ō) go in transposed
                int rr = r * r;
                long inRing = run.upload(RingProducts.input(spec, params));
                long outRingT = run.upload(RingProducts.transposeEach(RingProducts.output(spec, params), dOut, r));
                long m = run.scratch.allocate(4L * tokens * rr);
                run.blas.gemm(run.stream, false, false, tokens, rr, dIn, 1f, x32, dIn, inRing, rr, 0f, m, rr);
                run.blas.gemm(run.stream, false, true, tokens, dOut, rr, s, m, rr, outRingT, rr, 1f, acc, dOut);
            }
            case TTM -> {
                RingLayout ttm = ttm(spec, params);
                kernels.apply(ttm, run.upload(ttm.packed()), false, x32, tokens, s, acc, true, run.stream);
            }
        }
    }

    @Override
    protected TLoRAParameters runBackward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x,
                                          HostArray gradY, int tokens, HostArray gradX) {
        checkSupported(spec, params, true);
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        int r = spec.rank();
        float s = spec.scale();
        RingLayout t = transform(spec, params);
        float[] gradTransform = new float[t.coreFloats()];
        float[][] gradResidual = new float[spec.residualArrays()][];
        float[] gradOutT = null;
        float[] gradInT = null;
        float[] gradTtm = null;
        try (HostCall call = new HostCall(context); StreamScratch scratch = new StreamScratch(call.stream())) {
            Run run = new Run(call, scratch);
            long x32 = run.widened(call.in(x));
            long g32 = run.widened(call.in(gradY));
            long w32 = run.widened(call.in(w0));
            DeviceArray gxd = gradX != null ? call.inOut(gradX) : null;
            long ring = run.upload(t.packed());
            long du = scratch.allocate(4L * tokens * dIn); // ∂L/∂(x·Tᵀ) = g·W0
            run.blas.gemm(run.stream, false, false, tokens, dIn, dOut, 1f, g32, dOut, w32, dIn, 0f, du, dIn);
            run.ringGradient(t, ring, x32, du, tokens, 1f, call.out(HostArray.float32(gradTransform)));
            long gx = 0;
            if (gxd != null) {
                gx = scratch.allocate(4L * tokens * dIn);
                kernels.apply(t, ring, true, du, tokens, 1f, gx, false, run.stream); // Tᵀ·∂u
            }
            switch (spec.residual()) {
                case LORA -> {
                    long a = run.upload(params.residual(0));
                    long b = run.upload(params.residual(1));
                    long down = scratch.allocate(4L * tokens * r); // x·Aᵀ
                    run.blas.gemm(run.stream, false, true, tokens, r, dIn, 1f, x32, dIn, a, dIn, 0f, down, r);
                    long up = scratch.allocate(4L * tokens * r); // g·B
                    run.blas.gemm(run.stream, false, false, tokens, r, dOut, 1f, g32, dOut, b, r, 0f, up, r);
                    gradResidual[0] = new float[r * dIn];
                    gradResidual[1] = new float[dOut * r];
                    long gA = call.out(HostArray.float32(gradResidual[0])).address();
                    long gB = call.out(HostArray.float32(gradResidual[1])).address();
                    run.blas.gemm(run.stream, true, false, r, dIn, tokens, s, up, r, x32, dIn, 0f, gA, dIn);
                    run.blas.gemm(run.stream, true, false, dOut, r, tokens, s, g32, dOut, down, r, 0f, gB, r);
                    if (gx != 0) {
                        run.blas.gemm(run.stream, false, false, tokens, dIn, r, s, up, r, a, dIn, 1f, gx, dIn);
                    }
                }
                case TR -> {
                    // with M = Σ_ī H(ī)·x[ī] and N = Σ_ō g[ō]·G(ō): ∂G(ō) = s·g[ō]·Mᵀ, ∂H(ī) = s·x[ī]·Nᵀ,
                    // ∂x[ī] = s·tr(N·H(ī)); the products' gradients come back transposed, the host turns them
                    int rr = r * r;
                    long inRing = run.upload(RingProducts.input(spec, params));
                    long outRing = run.upload(RingProducts.output(spec, params));
                    long m = scratch.allocate(4L * tokens * rr);
                    run.blas.gemm(run.stream, false, false, tokens, rr, dIn, 1f, x32, dIn, inRing, rr, 0f, m, rr);
                    long n = scratch.allocate(4L * tokens * rr);
                    run.blas.gemm(run.stream, false, false, tokens, rr, dOut, 1f, g32, dOut, outRing, rr, 0f, n, rr);
                    gradOutT = new float[dOut * rr];
                    gradInT = new float[dIn * rr];
                    long gOut = call.out(HostArray.float32(gradOutT)).address();
                    long gIn = call.out(HostArray.float32(gradInT)).address();
                    run.blas.gemm(run.stream, true, false, dOut, rr, tokens, s, g32, dOut, m, rr, 0f, gOut, rr);
                    run.blas.gemm(run.stream, true, false, dIn, rr, tokens, s, x32, dIn, n, rr, 0f, gIn, rr);
                    if (gx != 0) {
                        long inRingT = run.upload(RingProducts.transposeEach(RingProducts.input(spec, params), dIn, r));
                        run.blas.gemm(run.stream, false, true, tokens, dIn, rr, s, n, rr, inRingT, rr, 1f, gx, dIn);
                    }
                }
                case TTM -> {
                    RingLayout ttm = ttm(spec, params);
                    long ttmRing = run.upload(ttm.packed());
                    gradTtm = new float[ttm.coreFloats()];
                    run.ringGradient(ttm, ttmRing, x32, g32, tokens, s, call.out(HostArray.float32(gradTtm)));
                    if (gx != 0) {
                        kernels.apply(ttm, ttmRing, true, g32, tokens, s, gx, true, run.stream); // s·Δᵀ·g
                    }
                }
            }
            if (gxd != null) {
                run.common.epilogue(gx, dIn, gxd, tokens, dIn, WriteMode.ADD.code(), run.stream);
            }
            call.finish();
        }
        switch (spec.residual()) {
            case TR -> {
                float[][] outCores = RingProducts.outputCoreGradients(spec, params,
                        RingProducts.transposeEach(gradOutT, spec.dOut(), r));
                float[][] inCores = RingProducts.inputCoreGradients(spec, params,
                        RingProducts.transposeEach(gradInT, spec.dIn(), r));
                System.arraycopy(outCores, 0, gradResidual, 0, outCores.length);
                System.arraycopy(inCores, 0, gradResidual, outCores.length, inCores.length);
            }
            case TTM -> split(gradTtm, gradResidual, spec.residualArrays(), k -> spec.residualLength(k));
            default -> {
            }
        }
        float[][] gradCores = new float[spec.inOrder()][];
        split(gradTransform, gradCores, spec.inOrder(), d -> spec.transformCoreLength(d));
        return TLoRAParameters.of(spec, gradCores, gradResidual);
    }

    /** Cuts the concatenated arrays into dst[0..count), of the given lengths. */
    private static void split(float[] all, float[][] dst, int count, java.util.function.IntToLongFunction length) {
        int at = 0;
        for (int k = 0; k < count; k++) {
            int n = (int) length.applyAsLong(k);
            dst[k] = java.util.Arrays.copyOfRange(all, at, at + n);
            at += n;
        }
    }

    @Override
    protected void runMaterialize(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray out) {
        checkSupported(spec, params, false);
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        int r = spec.rank();
        float s = spec.scale();
        try (HostCall call = new HostCall(context); StreamScratch scratch = new StreamScratch(call.stream())) {
            Run run = new Run(call, scratch);
            DeviceArray outD = call.inOut(out);
            long w32 = run.widened(w0 == out ? outD : call.in(w0)); // merge: W0 is the output, read whole first
            RingLayout t = transform(spec, params);
            long result = scratch.allocate(4L * dOut * dIn);
            // row p of W0·T is Tᵀ·(row p of W0)
            kernels.apply(t, run.upload(t.packed()), true, w32, dOut, 1f, result, false, run.stream);
            switch (spec.residual()) {
                case LORA -> run.blas.gemm(run.stream, false, false, dOut, dIn, r, s, run.upload(params.residual(1)), r,
                        run.upload(params.residual(0)), dIn, 1f, result, dIn);
                case TR -> {
                    int rr = r * r;
                    long outRing = run.upload(RingProducts.output(spec, params));
                    long inRingT = run.upload(RingProducts.transposeEach(RingProducts.input(spec, params), dIn, r));
                    run.blas.gemm(run.stream, false, true, dOut, dIn, rr, s, outRing, rr, inRingT, rr, 1f, result, dIn);
                }
                case TTM -> {
                    // row ō of Δ is Δᵀ·e_ō: the transposed TTM operator on the rows of the identity
                    RingLayout ttm = ttm(spec, params);
                    kernels.apply(ttm, run.upload(ttm.packed()), true, 0L, dOut, s, result, true, run.stream);
                }
            }
            run.common.epilogue(result, dIn, outD, dOut, dIn, WriteMode.STORE.code(), run.stream);
            call.finish();
        }
    }

    /** One call's stream, scratch, uploads and shared libraries. */
    private final class Run {
        final HostCall call;
        final StreamScratch scratch;
        final CudaStream stream;
        final Blas blas;
        final CommonKernels common;

        Run(HostCall call, StreamScratch scratch) {
            this.call = call;
            this.scratch = scratch;
            this.stream = call.stream();
            this.blas = context.blas();
            this.common = context.commonKernels();
        }

        /** The array's float32 device address: itself, or a widened copy in scratch. */
        long widened(DeviceArray a) {
            if (a.dtype() == DType.FLOAT32) {
                return a.address();
            }
            long dst = scratch.allocate(4L * a.length());
            common.toFloat32(a, dst, a.length(), stream);
            return dst;
        }

        /** A device copy of host floats, freed with the call. */
        long upload(float[] values) {
            return call.in(HostArray.float32(values)).address();
        }

        /** into (core floats) = the summed chunks of scale·∂⟨w, M·v⟩/∂(every core). */
        void ringGradient(RingLayout ring, long ringAddress, long v, long w, int rows, float scale, DeviceArray into) {
            int chunks = TLoRAKernels.chunks(rows);
            long partials = scratch.allocate(4L * chunks * ring.coreFloats());
            kernels.gradient(ring, ringAddress, v, w, rows, scale, partials, stream);
            kernels.sumChunks(partials, chunks, ring.coreFloats(), into.address(), stream);
        }
    }
}
