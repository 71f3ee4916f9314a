package org.spectralpeft.foura.cuda;

import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.KernelModule;
import org.spectralpeft.cuda.internal.StageTimer;
import org.spectralpeft.foura.FouRASpec;

/**
 * Typed launchers for the kernels of {@code kernels/foura.cu}, loaded as a {@link KernelModule}: so far the
 * fused forward, the building block of FouRA's CUDA backend (which will prepare the folded factors on the
 * device and hold them; here the caller passes them). Internal.
 */
public final class FouRAKernels implements AutoCloseable {
    /** The source these kernels are built from: {@code kernels/foura.cu}. */
    static final String MODULE = "foura";
    static final String FORWARD = "foura_forward";
    static final String[] KERNELS = {FORWARD};
    /** Threads per block (FOURA_BLOCK in the source). */
    static final int BLOCK = 256;
    /** Tokens per block of the fused forward (FOURA_TOKENS in the source). */
    static final int FORWARD_TOKENS = 8;
    /** The widest z the fused forward holds on chip (FOURA_MAX_WIDTH): 2r for the DFT with r = 128. */
    public static final int MAX_WIDTH = 256;

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
        launcher = (kernel, gx, gy, stream, args) -> module.launch(kernel, gx, gy, BLOCK, stream, args);
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
     * y += adapter(x) for {@code tokens} tokens, fused: z = Â·x, the gate, y += scale·B̂·w, z on chip.
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
        int width = (spec.transform() == FouRASpec.Transform.DFT ? 2 : 1) * spec.rank();
        Checks.require(width <= MAX_WIDTH, "the fused forward holds at most " + MAX_WIDTH + " components of z, "
                + spec + " has " + width);
        Checks.positive(tokens, "tokens");
        Checks.length("x", x.length(), (long) tokens * spec.dIn());
        Checks.length("y", y.length(), (long) tokens * spec.dOut());
        Checks.length("aHat", aHat.length(), (long) width * spec.dIn());
        Checks.length("bHatT", bHatT.length(), (long) width * spec.dOut());
        Checks.require(aHat.dtype() == DType.FLOAT32 && bHatT.dtype() == DType.FLOAT32, "the folded factors are float32");
        int gateKind = spec.gate().ordinal(); // NONE 0, FIXED 1, ADAPTIVE 2, as FouRAGate in the source
        if (spec.gate() != FouRASpec.Gate.NONE) {
            Checks.notNull(gate, "gate");
            Checks.length("gate", gate.length(), spec.gateLength());
            Checks.require(gate.dtype() == DType.FLOAT32, "the gate's parameters are float32");
        }
        long gateAddress = gate == null ? 0L : gate.address();
        int blocks = (tokens + FORWARD_TOKENS - 1) / FORWARD_TOKENS;
        StageTimer.time(FORWARD, stream, () -> launcher.launch(FORWARD, blocks, 1, stream, new Object[] {
            x.address(), x.dtype().code(), aHat.address(), bHatT.address(), gateAddress, gateKind, spec.rank(),
            spec.transform() == FouRASpec.Transform.DFT ? 1 : 0, scale, spec.dIn(), spec.dOut(), tokens,
            y.address(), y.dtype().code()}));
    }

    @Override
    public void close() {
        if (module != null) {
            module.close();
        }
    }
}
