package org.spectralpeft.foura;

import org.spectralpeft.core.HostArray;

/**
 * FouRA operations on one backend (CPU or CUDA). Row-major throughout: ΔW and W are d_out × d_in,
 * activations x are tokens × d_in, outputs y are tokens × d_out. Parameters (A, B, the gate's) and their
 * gradients are float32; activations, outputs and weights may be float32, float16 or bfloat16 (computed in
 * float32).
 *
 * <p>Every operation works on {@link FouRAFactors} from {@link #prepare}: the transforms folded into the
 * factors once per parameter change, not per token (DESIGN.md's FouRA section has the formulas).
 *
 * <p>Inputs are validated before any work starts; a bad argument throws {@link IllegalArgumentException}
 * naming it and leaves every output untouched. A closed backend, or closed factors, throw
 * {@link IllegalStateException}. Implementations are safe to call from several threads at once.
 */
public interface FouRABackend extends AutoCloseable {

    /**
     * Short name ("cpu", "cuda") and, for CUDA, the device.
     *
     * @return the description
     */
    String description();

    /**
     * Folds the transforms into A and B and keeps them, with the gate's parameters, for the other operations.
     *
     * @param spec the layer
     * @param a A, r × d_in row-major, finite
     * @param b B, d_out × r row-major, finite (zero at initialisation)
     * @param gate NONE: null; FIXED: the mask, r values each 0 or 1; ADAPTIVE: G (r × r row-major) then b (r)
     * @return the factors; the caller closes them
     */
    FouRAFactors prepare(FouRASpec spec, float[] a, float[] b, float[] gate);

    /**
     * y += x·ΔWᵀ for {@code tokens} rows of x, without materializing ΔW; with the ADAPTIVE gate, ΔW differs
     * per token.
     *
     * @param factors the layer's prepared factors
     * @param x tokens × d_in inputs
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, accumulated into
     */
    void forward(FouRAFactors factors, HostArray x, int tokens, HostArray y);

    /**
     * y[t] += x[t]·ΔW_{id(t)}ᵀ for every token t: a mixed batch in which each token uses its own adapter from the
     * pool ({@code adapterIds[t]}, or −1 for none: y[t] unchanged). Each token's result is the one the
     * single-adapter {@link #forward(FouRAFactors, HostArray, int, HostArray)} gives it; no ΔW is materialized.
     * The adapters are resolved and held when the call starts (see {@link FouRAAdapterPool}).
     *
     * @param pool the adapters, each prepared by this backend
     * @param adapterIds one id per token: an adapter's in the pool, or −1
     * @param x tokens × d_in inputs
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, accumulated into
     * @throws IllegalArgumentException before any work, for a bad argument, an id neither −1 nor in the pool, or
     *         an adapter prepared by another backend
     * @throws IllegalStateException if the backend, the pool or a used adapter's factors are closed
     */
    void forward(FouRAAdapterPool pool, int[] adapterIds, HostArray x, int tokens, HostArray y);

    /**
     * Backward of {@link #forward} for L with ∂L/∂y = gradY: gradA = ∂L/∂A and gradB = ∂L/∂B (overwritten),
     * gradGate = ∂L/∂(G, b) of the ADAPTIVE gate with its straight-through rule (overwritten; DESIGN.md),
     * and gradX += ∂L/∂x (accumulated, as the base layer's input gradient lands there too).
     *
     * @param factors the layer's prepared factors
     * @param x tokens × d_in inputs of the forward
     * @param gradY tokens × d_out gradient ∂L/∂y
     * @param tokens number of rows of x and gradY, at least 1
     * @param gradA r × d_in elements, overwritten
     * @param gradB d_out × r elements, overwritten
     * @param gradGate r² + r elements for the ADAPTIVE gate, overwritten, or null when not wanted; must be
     *                 null for NONE and FIXED, whose gates have nothing to learn
     * @param gradX tokens × d_in elements accumulating ∂L/∂x, or null when not wanted
     */
    void backward(FouRAFactors factors, HostArray x, HostArray gradY, int tokens,
                  float[] gradA, float[] gradB, float[] gradGate, HostArray gradX);

    /**
     * out = ΔW (d_out × d_in) = α·B̂·diag(m)·Â, for the NONE and FIXED gates (the ADAPTIVE gate has no fixed ΔW).
     *
     * @param factors the layer's prepared factors
     * @param out d_out × d_in elements, overwritten
     */
    void materialize(FouRAFactors factors, HostArray out);

    /**
     * weight += ΔW, in place, in the weight's dtype; NONE and FIXED gates only.
     *
     * @param factors the layer's prepared factors
     * @param weight d_out × d_in weights, updated in place
     */
    void merge(FouRAFactors factors, HostArray weight);

    /**
     * weight -= ΔW, in place: undoes {@link #merge} up to the weight dtype's rounding.
     *
     * @param factors the layer's prepared factors
     * @param weight d_out × d_in weights, updated in place
     */
    void unmerge(FouRAFactors factors, HostArray weight);

    /**
     * y += Σ_k weights[k]·(x·ΔW_kᵀ): several FouRA adapters of one layer applied together, each scaled
     * (the paper's multi-adapter merging). The adapters share d_out and d_in and may differ in rank, transform,
     * gate and α. The sum is formed in float32, so a float16 or bfloat16 y is rounded once. The CPU backend reads
     * x once, as float32, for all the adapters, and adds their sum into y (a float32 y of a few tokens takes each
     * adapter's product in place). The CUDA backend runs each adapter's forward on x in turn, reading x once per
     * adapter (on the SGEMM route a float16 or bfloat16 x is widened into float32 scratch each time), into a
     * float32 scratch sum that one pass then adds into y.
     *
     * @param adapters the adapters' prepared factors, at least one, each from this backend
     * @param weights one finite weight per adapter
     * @param x tokens × d_in inputs
     * @param tokens number of rows of x and y, at least 1
     * @param y tokens × d_out outputs, accumulated into
     */
    void combine(FouRAFactors[] adapters, float[] weights, HostArray x, int tokens, HostArray y);

    /** Releases native resources; later calls throw {@link IllegalStateException}. Idempotent. */
    @Override
    void close();
}
