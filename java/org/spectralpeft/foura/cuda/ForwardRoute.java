package org.spectralpeft.foura.cuda;

import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.foura.FouRASpec;

/**
 * The single-adapter forward's route on the device, from the system properties {@value CudaFouRA#FORWARD_PROPERTY},
 * {@value CudaFouRA#SPLIT_PROPERTY} and {@value CudaFouRA#EXPAND_PROPERTY} (read once per call, before any device
 * work; the backward reads the last two).
 *
 * <p>{@link Kind#AUTO}, the default, takes {@code foura_forward_small} (one launch) where the call's work is at most
 * {@link #SMALL_DEFAULT_WORK} token-columns of z (tokens × z's width: r = 16 with the DFT at T = 1, or the DCT at
 * T ≤ 2), the tokens at most {@link FouRAKernels#SMALL_TOKENS} and x suits its vector loads, and the SGEMMs
 * elsewhere. The bound is the measured point: on an H100 (bench/GPU_RUNS.md, da0a1d2, d = 4096, r = 16) the small
 * kernel runs a T = 1 forward in 16.8–17.2 µs of wall time (9 µs on the GPU) against the SGEMMs' 31–37, and loses
 * at T = 16 (71 µs against 34–45), its sixteen blocks each summing all of Â for every token; its time grows with
 * tokens × width, so larger ranks or more tokens stay on the SGEMMs until measured.
 *
 * <p>{@code splitParts} splits the SGEMM route's first product z = x·Âᵀ over d_in into that many partial products
 * in one strided-batched SGEMM, which the gate kernel adds in part order: the product's output is tokens × 2r, a
 * few tiles of cuBLAS's for thousands of tokens (on an H100 it took 55 µs at T = 4096 where reading x takes 20),
 * and the split gives the device that many times the blocks. The backward splits its products of the same shapes
 * likewise. Other bits than the unsplit products; 1 (no split) by default until measured on a GPU.
 *
 * <p>{@code expandKernel} runs the SGEMM route's products of output tokens × d and inner dimension z's width (y +=
 * w·B̂ᵀ, and the backward's ∂x += ∂z·Â) on {@code foura_add_product} instead of cuBLAS, where it takes the tokens
 * ({@link FouRAKernels#maxAddTokens}): those products are bound by reading and writing their output (cuBLAS took 68
 * µs at 4096 × 4096 × 32 on an H100 against about 45 for the bytes), and the kernel adds into any dtype without a
 * float32 scratch and the epilogue's pass. Other bits than cuBLAS's; off by default until measured on a GPU.
 *
 * @param kind the route
 * @param splitParts the parts of d_in asked for the SGEMM route's first product: 1, 2, 4 or 8
 * @param expandKernel whether the products into y and ∂x run on foura_add_product
 */
record ForwardRoute(Kind kind, int splitParts, boolean expandKernel) {
    /** The routes. */
    enum Kind {
        /** The small kernel where the work is small enough ({@link #takesSmall}), else the SGEMMs. */
        AUTO,
        /** Two SGEMMs around the gate kernel, at every size. */
        GEMM,
        /** The mixed batches' forward kernels ({@link FouRAKernels#forward}), where z fits them. */
        KERNELS,
        /** {@code foura_project_tiled} and the mixed batches' expansion ({@link FouRAKernels#forwardTiled}). */
        TILED,
        /** {@code foura_forward_small} up to {@link FouRAKernels#SMALL_TOKENS} tokens, the SGEMMs above. */
        SMALL
    }

    /** Tokens × z's width up to which {@link Kind#AUTO} takes the small kernel: 32, the measured r = 16 DFT at T = 1. */
    static final int SMALL_DEFAULT_WORK = 32;
    /** The shortest part of d_in a split leaves: shorter ones would trade the product's blocks for the gate's adds. */
    static final int MIN_SPLIT_LENGTH = 256;

    /**
     * The calling thread's current route.
     *
     * @throws IllegalArgumentException for a value that is not a route or a split, naming the property and the values
     *         it takes
     */
    static ForwardRoute requested() {
        String value = System.getProperty(CudaFouRA.FORWARD_PROPERTY, "auto");
        Kind kind = switch (value) {
            case "auto" -> Kind.AUTO;
            case "gemm" -> Kind.GEMM;
            case "kernels" -> Kind.KERNELS;
            case "tiled" -> Kind.TILED;
            case "small" -> Kind.SMALL;
            default -> throw new IllegalArgumentException("system property " + CudaFouRA.FORWARD_PROPERTY + "=" + value
                    + " is not a route of the FouRA forward: auto (the default), gemm, kernels, tiled or small");
        };
        String split = System.getProperty(CudaFouRA.SPLIT_PROPERTY, "1");
        int parts = switch (split) {
            case "1" -> 1;
            case "2" -> 2;
            case "4" -> 4;
            case "8" -> 8;
            default -> throw new IllegalArgumentException("system property " + CudaFouRA.SPLIT_PROPERTY + "=" + split
                    + " is not a split of the FouRA forward's d_in: 1 (the default), 2, 4 or 8");
        };
        String expand = System.getProperty(CudaFouRA.EXPAND_PROPERTY, "gemm");
        boolean expandKernel = switch (expand) {
            case "gemm" -> false;
            case "kernel" -> true;
            default -> throw new IllegalArgumentException("system property " + CudaFouRA.EXPAND_PROPERTY + "=" + expand
                    + " is not a route of the FouRA products into y and ∂x: gemm (the default) or kernel");
        };
        return new ForwardRoute(kind, parts, expandKernel);
    }

    /** Whether a forward of {@code tokens} rows of x through the layer {@code spec} runs foura_forward_small. */
    boolean takesSmall(FouRASpec spec, DeviceArray x, int tokens) {
        int width = spec.zWidth();
        boolean fits = switch (kind) {
            case AUTO -> (long) tokens * width <= SMALL_DEFAULT_WORK;
            case SMALL -> width <= FouRAKernels.MAX_WIDTH;
            default -> false;
        };
        return fits && tokens <= FouRAKernels.SMALL_TOKENS && FouRAKernels.smallAligned(spec, x);
    }

    /** Whether a product into {@code tokens} rows of y or ∂x runs on foura_add_product. */
    boolean expandsOnKernel(int tokens) {
        return expandKernel && tokens <= FouRAKernels.maxAddTokens();
    }

    /** Whether the route runs this library's forward kernels (z by the mixed projection or the tiled one). */
    boolean takesKernels(FouRASpec spec) {
        return (kind == Kind.KERNELS || kind == Kind.TILED) && spec.zWidth() <= FouRAKernels.MAX_WIDTH;
    }

    /**
     * The parts a product's inner dimension of {@code length} takes under a split of {@code split}: the split where
     * it cuts the length into equal parts of at least {@link #MIN_SPLIT_LENGTH}, else 1.
     */
    static int parts(int split, int length) {
        return split > 1 && length % split == 0 && length / split >= MIN_SPLIT_LENGTH ? split : 1;
    }
}
