package org.spectralpeft.foura.cuda;

import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.foura.FouRASpec;

/**
 * The single-adapter forward's route on the device, from the system property {@value CudaFouRA#FORWARD_PROPERTY}
 * (read once per call, before any device work).
 *
 * <p>{@link #AUTO}, the default, takes {@code foura_forward_small} (one launch) where the call's work is at most
 * {@link #SMALL_DEFAULT_WORK} token-columns of z (tokens × z's width: r = 16 with the DFT at T = 1, or the DCT at
 * T ≤ 2), the tokens at most {@link FouRAKernels#SMALL_TOKENS} and x suits its vector loads, and the SGEMMs
 * elsewhere. The bound is the measured point: on an H100 (bench/GPU_RUNS.md, da0a1d2, d = 4096, r = 16) the small
 * kernel runs a T = 1 forward in 16.8–17.2 µs of wall time (9 µs on the GPU) against the SGEMMs' 31–37, and loses
 * at T = 16 (71 µs against 34–45), its sixteen blocks each summing all of Â for every token; its time grows with
 * tokens × width, so larger ranks or more tokens stay on the SGEMMs until measured.
 */
enum ForwardRoute {
    /** The small kernel where the work is small enough ({@link #takesSmall}), else the SGEMMs. */
    AUTO,
    /** Two SGEMMs around the gate kernel, at every size. */
    GEMM,
    /** The mixed batches' forward kernels ({@link FouRAKernels#forward}), where z fits them. */
    KERNELS,
    /** {@code foura_project_tiled} and the mixed batches' expansion ({@link FouRAKernels#forwardTiled}). */
    TILED,
    /** {@code foura_forward_small} up to {@link FouRAKernels#SMALL_TOKENS} tokens, the SGEMMs above. */
    SMALL;

    /** Tokens × z's width up to which {@link #AUTO} takes the small kernel: 32, the measured r = 16 DFT at T = 1. */
    static final int SMALL_DEFAULT_WORK = 32;

    /**
     * The calling thread's current route.
     *
     * @throws IllegalArgumentException for a value that is not a route, naming the property and the values it takes
     */
    static ForwardRoute requested() {
        String value = System.getProperty(CudaFouRA.FORWARD_PROPERTY, "auto");
        return switch (value) {
            case "auto" -> AUTO;
            case "gemm" -> GEMM;
            case "kernels" -> KERNELS;
            case "tiled" -> TILED;
            case "small" -> SMALL;
            default -> throw new IllegalArgumentException("system property " + CudaFouRA.FORWARD_PROPERTY + "=" + value
                    + " is not a route of the FouRA forward: auto (the default), gemm, kernels, tiled or small");
        };
    }

    /** Whether a forward of {@code tokens} rows of x through the layer {@code spec} runs foura_forward_small. */
    boolean takesSmall(FouRASpec spec, DeviceArray x, int tokens) {
        int width = spec.zWidth();
        boolean fits = switch (this) {
            case AUTO -> (long) tokens * width <= SMALL_DEFAULT_WORK;
            case SMALL -> width <= FouRAKernels.MAX_WIDTH;
            default -> false;
        };
        return fits && tokens <= FouRAKernels.SMALL_TOKENS && FouRAKernels.smallAligned(spec, x);
    }

    /** Whether the route runs this library's forward kernels (z by the mixed projection or the tiled one). */
    boolean takesKernels(FouRASpec spec) {
        return (this == KERNELS || this == TILED) && spec.zWidth() <= FouRAKernels.MAX_WIDTH;
    }
}
