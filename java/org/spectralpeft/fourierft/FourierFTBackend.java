package org.spectralpeft.fourierft;

import java.util.Map;
import org.spectralpeft.core.HostArray;

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

    /**
     * Short name ("cpu", "cuda") and, for CUDA, the device.
     *
     * @return the description
     */
    String description();

    /**
     * out = ΔW (d_out × d_in).
     *
     * @param spec the layer geometry and index set
     * @param coeffs n coefficients
     * @param out d_out × d_in elements, overwritten
     */
    default void materialize(FourierFTSpec spec, float[] coeffs, HostArray out) {
        materializeBatch(spec, coeffs, 1, out);
    }

    /**
     * out[i] = ΔW_i for {@code layers} layers sharing the spec: coeffs is layers × n, out layers × d_out × d_in.
     *
     * @param spec the geometry and index set shared by the layers
     * @param coeffs layers × n coefficients
     * @param layers number of layers, at least 1
     * @param out layers × d_out × d_in elements, overwritten
     */
    void materializeBatch(FourierFTSpec spec, float[] coeffs, int layers, HostArray out);

    /**
     * weight += ΔW, in place, in the weight's dtype.
     *
     * @param spec the layer geometry and index set
     * @param coeffs n coefficients
     * @param weight d_out × d_in weights, updated in place
     */
    void merge(FourierFTSpec spec, float[] coeffs, HostArray weight);

    /**
     * weight -= ΔW, in place: undoes {@link #merge} up to the weight dtype's rounding.
     *
     * @param spec the layer geometry and index set
     * @param coeffs n coefficients
     * @param weight d_out × d_in weights, updated in place
     */
    void unmerge(FourierFTSpec spec, float[] coeffs, HostArray weight);

    /**
     * y += x·ΔWᵀ for {@code tokens} rows of x, without materializing ΔW.
     *
     * @param spec the layer geometry and index set
     * @param coeffs n coefficients
     * @param x tokens × d_in inputs
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, accumulated into
     */
    void forward(FourierFTSpec spec, float[] coeffs, HostArray x, int tokens, HostArray y);

    /**
     * A mixed batch: y[t] += x[t]·ΔW_{id(t)}ᵀ for every token t, each with its own adapter from the pool (id −1:
     * none, y[t] untouched), without materializing any ΔW. Each token's result equals {@link #forward(FourierFTSpec,
     * float[], HostArray, int, HostArray)} of that token alone with its adapter. The ids are resolved when the call
     * starts (see {@link FourierFTAdapterPool} for adds and removes during calls).
     *
     * @param pool the adapters, of one layer shape
     * @param adapterIds one id per token
     * @param x tokens × d_in inputs
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, accumulated into
     * @throws IllegalArgumentException also for an id that is neither −1 nor in the pool, before any work
     */
    void forward(FourierFTAdapterPool pool, int[] adapterIds, HostArray x, int tokens, HostArray y);

    /**
     * gradCoeffs = ∂L/∂c given G = ∂L/∂ΔW (d_out × d_in). Overwrites gradCoeffs.
     *
     * @param spec the layer geometry and index set
     * @param gradDeltaW d_out × d_in gradient ∂L/∂ΔW
     * @param gradCoeffs n elements, overwritten with ∂L/∂c
     */
    void gradCoefficients(FourierFTSpec spec, HostArray gradDeltaW, float[] gradCoeffs);

    /**
     * Backward of {@link #forward}: gradCoeffs = ∂L/∂c (overwritten) and, when gradX is not null,
     * gradX += ∂L/∂x = ∂L/∂y · ΔW (accumulated, as the base layer's input gradient lands there too).
     *
     * @param spec the layer geometry and index set
     * @param coeffs n coefficients
     * @param x tokens × d_in inputs of the forward
     * @param gradY tokens × d_out gradient ∂L/∂y
     * @param tokens number of rows of x and gradY, at least 1
     * @param gradCoeffs n elements, overwritten with ∂L/∂c
     * @param gradX tokens × d_in elements accumulating ∂L/∂x, or null when not wanted
     */
    void backward(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                  float[] gradCoeffs, HostArray gradX);

    /**
     * The gradients of a mixed batch ({@link #forward(FourierFTAdapterPool, int[], HostArray, int, HostArray)}):
     * for every adapter the batch uses, ∂L/∂c summed over its tokens, and ∂L/∂x added into gradX. Each adapter's
     * gradient is that of {@link #backward(FourierFTSpec, float[], HostArray, HostArray, int, float[], HostArray)}
     * run on its tokens alone, in batch order (so several adapters train in one batch): within float32 rounding,
     * as a batched route may transform and sum in other groupings (bit for bit where each adapter's tokens take
     * the single-adapter backward); for a given batch the bits repeat. Tokens with id −1 contribute nothing and
     * their gradX rows keep their values (a backend may add zeros to them).
     *
     * @param pool the adapters
     * @param adapterIds one id per token
     * @param x the forward's inputs, tokens × d_in
     * @param gradY ∂L/∂y, tokens × d_out
     * @param tokens rows, at least 1
     * @param gradX tokens × d_in accumulating ∂L/∂x, or null when not wanted
     * @return adapter id → its n gradients (fresh arrays), in the order the batch first uses them
     * @throws IllegalArgumentException also for an id that is neither −1 nor in the pool, before any work
     */
    Map<Integer, float[]> backward(FourierFTAdapterPool pool, int[] adapterIds, HostArray x, HostArray gradY,
                                   int tokens, HostArray gradX);

    /** Releases native resources; later calls throw {@link IllegalStateException}. Idempotent. */
    @Override
    void close();
}
