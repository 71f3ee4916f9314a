package org.spectralpeft.tlora.cuda;

import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.internal.KernelModule;
import org.spectralpeft.cuda.internal.StageTimer;

/**
 * Typed launchers for the kernels of {@code kernels/tlora.cu}: a tensor-ring operator applied to rows
 * ({@code tlora_ring_apply}), the gradients of its cores over fixed chunks of rows ({@code tlora_ring_gradient})
 * and the chunks' sum in chunk order ({@code tlora_sum_chunks}). Internal: for {@link CudaTLoRA}.
 */
final class TLoRAKernels implements AutoCloseable {
    /** The source these kernels are built from: {@code kernels/tlora.cu}. */
    static final String MODULE = "tlora";
    static final String APPLY = "tlora_ring_apply";
    static final String GRADIENT = "tlora_ring_gradient";
    static final String SUM_CHUNKS = "tlora_sum_chunks";
    static final String[] KERNELS = {APPLY, GRADIENT, SUM_CHUNKS};
    /** Threads per block (TLORA_BLOCK in the source). */
    static final int BLOCK = 256;
    /** The largest ring rank (TLORA_MAX_RING) and number of factors (TLORA_MAX_ORDER) the kernels hold. */
    static final int MAX_RING = 16;
    static final int MAX_ORDER = 8;
    /** Rows per chunk of the gradient's sums: fixed, so that the order of every sum is too. */
    static final int GRADIENT_ROWS = 16;
    /** The most blocks an apply launches; each strides over the rows beyond. */
    private static final int MAX_APPLY_BLOCKS = 1 << 20;

    private final KernelModule module;

    /**
     * Loads kernels/tlora.cu for the current context's device.
     *
     * @param computeCapability the device's, as major × 10 + minor
     * @param debug synchronize after every launch
     */
    TLoRAKernels(int computeCapability, boolean debug) {
        module = new KernelModule(MODULE, computeCapability, KERNELS, debug);
    }

    String image() {
        return module.image();
    }

    /**
     * dst row t = (dst row t when accumulating) + scale·M·(src row t), or with Mᵀ. The ring's shared memory was
     * checked against the device's before (CudaTLoRA), so it fits an int.
     *
     * @param ring the operator, uploaded at {@code ringAddress}
     * @param ringAddress the device copy of {@link RingLayout#packed()}
     * @param transposed apply Mᵀ
     * @param src rows × (input length) float32, or 0 for the rows of the identity
     * @param rows rows
     * @param scale the result's scale
     * @param dst rows × (output length) float32
     * @param accumulate add into dst instead of storing
     * @param s the stream
     */
    void apply(RingLayout ring, long ringAddress, boolean transposed, long src, long rows, float scale, long dst,
               boolean accumulate, CudaStream s) {
        int blocks = (int) Math.min(rows, MAX_APPLY_BLOCKS);
        StageTimer.time(APPLY, s, () -> module.launch(APPLY, blocks, 1, BLOCK, (int) ring.applyBytes(), s,
                new Object[] {ring.coresAddress(ringAddress), ringAddress, transposed ? 1 : 0, ring.coreFloats(),
                    ring.maxState(), src, rows, scale, dst, accumulate ? 1 : 0}));
    }

    /**
     * The partial sums of scale·∂⟨w_t, M·v_t⟩/∂(every core) over chunks of {@link #GRADIENT_ROWS} rows.
     *
     * @param ring the operator, uploaded at {@code ringAddress}
     * @param ringAddress the device copy of {@link RingLayout#packed()}
     * @param v rows × (input length) float32
     * @param w rows × (output length) float32
     * @param rows rows
     * @param scale the gradients' scale
     * @param partials {@link #chunks}(rows) × (core floats) float32, written whole
     * @param s the stream
     */
    void gradient(RingLayout ring, long ringAddress, long v, long w, long rows, float scale, long partials, CudaStream s) {
        StageTimer.time(GRADIENT, s, () -> module.launch(GRADIENT, chunks(rows), ring.order(), BLOCK,
                (int) ring.gradientBytes(), s, new Object[] {ring.coresAddress(ringAddress), ringAddress,
                    ring.coreFloats(), ring.maxState(), ring.maxCore(), v, w, rows, GRADIENT_ROWS, scale, partials}));
    }

    /**
     * out = the sum of the chunks' partials, in chunk order.
     *
     * @param partials chunks × length float32
     * @param chunks how many
     * @param length floats per chunk
     * @param out length float32
     * @param s the stream
     */
    void sumChunks(long partials, int chunks, long length, long out, CudaStream s) {
        int blocks = (int) ((length + BLOCK - 1) / BLOCK);
        StageTimer.time(SUM_CHUNKS, s, () -> module.launch(SUM_CHUNKS, blocks, 1, BLOCK, s,
                new Object[] {partials, chunks, length, out}));
    }

    /**
     * @param rows rows of a gradient
     * @return its chunks of {@link #GRADIENT_ROWS}
     */
    static int chunks(long rows) {
        return (int) ((rows + GRADIENT_ROWS - 1) / GRADIENT_ROWS);
    }

    @Override
    public void close() {
        module.close();
    }
}
