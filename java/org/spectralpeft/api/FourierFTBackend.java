package org.spectralpeft.api;

/**
 * FourierFT operations on one backend (CPU or CUDA). Row-major throughout: ΔW and W are d_out × d_in,
 * activations x are tokens × d_in, outputs y are tokens × d_out, a batch of layers is layers × (that).
 * Coefficients are float32; every other array may be float32, float16 or bfloat16 (computed in float32).
 *
 * <p>Inputs are validated before any work starts; a bad argument throws {@link IllegalArgumentException}
 * naming it and leaves every output untouched. A closed backend throws {@link IllegalStateException}.
 * Implementations are safe to call from several threads at once.
 */
public interface FourierFTBackend extends AutoCloseable {

    /** Short name ("cpu", "cuda") and, for CUDA, the device. */
    String description();

    /** out = ΔW (d_out × d_in). */
    default void materialize(FourierFTSpec spec, float[] coeffs, HostArray out) {
        materializeBatch(spec, coeffs, 1, out);
    }

    /** out[i] = ΔW_i for {@code layers} layers sharing the spec: coeffs is layers × n, out layers × d_out × d_in. */
    void materializeBatch(FourierFTSpec spec, float[] coeffs, int layers, HostArray out);

    /** weight += ΔW, in place, in the weight's dtype. */
    void merge(FourierFTSpec spec, float[] coeffs, HostArray weight);

    /** weight -= ΔW, in place: undoes {@link #merge} up to the weight dtype's rounding. */
    void unmerge(FourierFTSpec spec, float[] coeffs, HostArray weight);

    /** y += x·ΔWᵀ for {@code tokens} rows of x, without materializing ΔW. */
    void forward(FourierFTSpec spec, float[] coeffs, HostArray x, int tokens, HostArray y);

    /** gradCoeffs = ∂L/∂c given G = ∂L/∂ΔW (d_out × d_in). Overwrites gradCoeffs. */
    void gradCoefficients(FourierFTSpec spec, HostArray gradDeltaW, float[] gradCoeffs);

    /**
     * Backward of {@link #forward}: gradCoeffs = ∂L/∂c (overwritten) and, when gradX is not null,
     * gradX += ∂L/∂x = ∂L/∂y · ΔW (accumulated, as the base layer's input gradient lands there too).
     */
    void backward(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                  float[] gradCoeffs, HostArray gradX);

    /** Releases native resources; later calls throw {@link IllegalStateException}. Idempotent. */
    @Override
    void close();
}
