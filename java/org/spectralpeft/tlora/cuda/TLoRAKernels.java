package org.spectralpeft.tlora.cuda;

import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.KernelModule;
import org.spectralpeft.cuda.internal.StageTimer;

/**
 * Typed launchers for the kernels of {@code kernels/tlora.cu}: a tensor-ring operator applied to rows
 * ({@code tlora_ring_apply}), the two small steps of the cores' gradients besides cuBLAS: a permutation of an
 * array's axes ({@code tlora_permute}) and the products of a ring's other cores ({@code tlora_other_products}),
 * and the gradients of a rank-1 ring without C ({@code tlora_kron_gradient}, {@code tlora_kron_gradient_sum}).
 * Internal: for {@link CudaTLoRA}.
 */
final class TLoRAKernels implements AutoCloseable {
    /** The source these kernels are built from: {@code kernels/tlora.cu}. */
    static final String MODULE = "tlora";
    static final String APPLY = "tlora_ring_apply";
    static final String PERMUTE = "tlora_permute";
    static final String OTHER_PRODUCTS = "tlora_other_products";
    static final String KRON_GRADIENT = "tlora_kron_gradient";
    static final String KRON_GRADIENT_SUM = "tlora_kron_gradient_sum";
    static final String[] KERNELS = {APPLY, PERMUTE, OTHER_PRODUCTS, KRON_GRADIENT, KRON_GRADIENT_SUM};
    /** Threads per block (TLORA_BLOCK in the source). */
    static final int BLOCK = CommonKernels.BLOCK;
    /**
     * An upper bound of the static shared memory of the ring kernels (their ring's shape, {@code Ring}: 112 bytes),
     * which the device's per-block limit counts besides a launch's dynamic shared memory.
     */
    static final int STATIC_SHARED_BYTES = 256;
    /** The largest ring rank (TLORA_MAX_RING) and number of factors (TLORA_MAX_ORDER) the kernels hold. */
    static final int MAX_RING = 16;
    static final int MAX_ORDER = 8;
    /** The most blocks an apply launches; each strides over the rows beyond. */
    private static final int MAX_APPLY_BLOCKS = 1 << 20;
    /**
     * The most blocks of tlora_kron_gradient: a few per SM of an H100 (132 SMs, 4 blocks of 256 threads each at the
     * authors' shapes), a fixed number so that the sums' order, and so the bits, do not depend on the device.
     */
    static final int MAX_KRON_BLOCKS = 512;

    private final KernelModule module;
    /** Where launches go: the module, or a recorder in tests that run without a device. */
    private final CommonKernels.Launcher launcher;

    /**
     * Loads kernels/tlora.cu for the current context's device.
     *
     * @param computeCapability the device's, as major × 10 + minor
     * @param debug synchronize after every launch
     */
    TLoRAKernels(int computeCapability, boolean debug) {
        module = new KernelModule(MODULE, computeCapability, KERNELS, debug);
        launcher = CommonKernels.launcherOf(module);
    }

    /**
     * Launches go to {@code recorder} (dynamic shared memory not recorded); no module is loaded (no device needed).
     *
     * @param recorder where launches go
     */
    TLoRAKernels(CommonKernels.Launcher recorder) {
        module = null;
        launcher = recorder;
    }

    String image() {
        return module != null ? module.image() : "none (recording)";
    }

    private void launch(String kernel, int blocks, int sharedBytes, CudaStream s, Object[] args) {
        StageTimer.time(kernel, s, () -> launcher.launch(kernel, blocks, 1, sharedBytes, s, args));
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
        launch(APPLY, blocks, (int) ring.applyBytes(), s, new Object[] {ring.coresAddress(ringAddress), ringAddress,
            transposed ? 1 : 0, ring.coreFloats(), ring.maxState(), src, rows, scale, dst, accumulate ? 1 : 0});
    }

    /**
     * dst = src's five axes reordered: dst is row-major (n0, …, n4), its axis j read at stride s_j of src.
     *
     * @param src float32, device
     * @param dst n0·…·n4 float32, device, at most {@link Integer#MAX_VALUE} of them
     * @param n dst's axes' sizes, five
     * @param stride each dst axis's stride in src, five
     * @param s the stream
     */
    void permute(long src, long dst, int[] n, int[] stride, CudaStream s) {
        long total = (long) n[0] * n[1] * n[2] * n[3] * n[4];
        int blocks = (int) ((total + BLOCK - 1) / BLOCK);
        launch(PERMUTE, blocks, 0, s, new Object[] {src, dst, n[0], n[1], n[2], n[3], n[4], stride[0], stride[1],
            stride[2], stride[3], stride[4]});
    }

    /**
     * E for core k: others × R² floats, row o (the other modes' output digits then their input digits, in mode
     * order) holding at (b, a) the product of the other cores in ring order from k + 1, entry [a, b]; the
     * identity when the ring has one core.
     *
     * @param ring the operator, uploaded at {@code ringAddress}
     * @param ringAddress the device copy of {@link RingLayout#packed()}
     * @param k the core
     * @param e {@link RingLayout#others}(k)·R² float32, written whole
     * @param s the stream
     */
    void otherProducts(RingLayout ring, long ringAddress, int k, long e, CudaStream s) {
        int others = ring.others(k);
        int blocks = (int) (((long) others * ring.rank() + BLOCK - 1) / BLOCK);
        launch(OTHER_PRODUCTS, blocks, 0, s, new Object[] {ring.coresAddress(ringAddress), ringAddress, k, others, e});
    }

    /**
     * Rows per block of {@link #kronGradient}: the rows in at most {@link #MAX_KRON_BLOCKS} runs of equal length
     * (the last one shorter).
     *
     * @param rows at least 1
     * @return the run length
     */
    static int kronRowsPerBlock(long rows) {
        return (int) ((rows + MAX_KRON_BLOCKS - 1) / MAX_KRON_BLOCKS);
    }

    /** @return the blocks of {@link #kronGradient} over that many rows, each writing {@link RingLayout#kronItems} partial sums */
    static int kronBlocks(long rows) {
        int per = kronRowsPerBlock(rows);
        return (int) ((rows + per - 1) / per);
    }

    /**
     * into (the packed cores' gradients, overwritten) = scale·Σ_t ∂⟨w_t, M·v_t⟩/∂(every core), for a ring of rank
     * 1: tlora_kron_gradient's blocks into {@code partials}, then tlora_kron_gradient_sum. Its shared memory was
     * checked against the device's before (CudaTLoRA).
     *
     * @param ring the operator, of rank 1, uploaded at {@code ringAddress}
     * @param ringAddress the device copy of {@link RingLayout#packed()}
     * @param v rows × (input length) float32
     * @param w rows × (output length) float32
     * @param rows rows, at least 1
     * @param scale the gradients' scale
     * @param partials {@link #kronBlocks}(rows) × {@link RingLayout#kronItems} float32 scratch
     * @param into the cores' gradients, {@link RingLayout#coreFloats} float32
     * @param s the stream
     */
    void kronGradient(RingLayout ring, long ringAddress, long v, long w, long rows, float scale, long partials,
                      long into, CudaStream s) {
        int blocks = kronBlocks(rows);
        int items = ring.kronItems();
        launch(KRON_GRADIENT, blocks, (int) ring.kronGradientBytes(), s, new Object[] {ring.coresAddress(ringAddress),
            ringAddress, ring.coreFloats(), ring.maxState(), ring.kronPairFloats(), items, v, w, rows,
            kronRowsPerBlock(rows), partials});
        launch(KRON_GRADIENT_SUM, (ring.coreFloats() + 31) / 32, 0, s, new Object[] {ringAddress, partials, blocks, items,
            scale, into}); // a block per 32 entries (R = 1: the packed cores' floats are the entries)
    }

    @Override
    public void close() {
        if (module != null) {
            module.close();
        }
    }
}
