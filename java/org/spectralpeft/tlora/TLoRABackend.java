package org.spectralpeft.tlora;

import org.spectralpeft.core.HostArray;

/**
 * TLoRA operations on one backend. Row-major throughout: W0 and W' are d_out × d_in, activations x are
 * tokens × d_in, outputs y are tokens × d_out. Parameters are float32 ({@link TLoRAParameters}); W0,
 * activations and outputs may be float32, float16 or bfloat16 (computed in float32).
 *
 * <p>Neither operation forms T: the forward applies it to the tokens core by core before the frozen W0's
 * product, materialize and merge apply it to W0's rows the same way (DESIGN.md's TLoRA section).
 *
 * <p>Inputs are validated before any work starts; a bad argument throws {@link IllegalArgumentException}
 * naming it and leaves every output untouched. A closed backend throws {@link IllegalStateException}.
 * Implementations are safe to call from several threads at once.
 */
public interface TLoRABackend extends AutoCloseable {

    /**
     * Short name ("cpu") and what it computes with.
     *
     * @return the description
     */
    String description();

    /**
     * y += x·W'ᵀ = (x·Tᵀ)·W0ᵀ + s·x·Δᵀ for {@code tokens} rows of x: the adapted layer's output (without bias:
     * put it, or zeros, in y first), with neither T nor W' formed.
     *
     * @param spec the layer
     * @param params its parameters
     * @param w0 the frozen weight, d_out × d_in, finite
     * @param x tokens × d_in, finite
     * @param tokens the number of rows of x, at least 1
     * @param y tokens × d_out, accumulated into
     */
    void forward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x, int tokens, HostArray y);

    /**
     * The gradients of a loss L through {@link #forward}, given ∂L/∂y: of every transform core and every residual
     * array (W0 is frozen), and ∂L/∂x added into gradX. Neither T nor W' is formed. Sums over tokens run in a
     * fixed order: repeated calls give the same bits.
     *
     * @param spec the layer
     * @param params its parameters
     * @param w0 the frozen weight, d_out × d_in, finite
     * @param x the forward's input, tokens × d_in, finite
     * @param gradY ∂L/∂y, tokens × d_out, finite
     * @param tokens the number of rows, at least 1
     * @param gradX tokens × d_in, ∂L/∂x accumulated into; null when not wanted
     * @return fresh arrays in the parameters' layouts holding ∂L/∂(each array)
     */
    TLoRAParameters backward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x, HostArray gradY,
                             int tokens, HostArray gradX);

    /**
     * out = W' = W0·T + s·Δ.
     *
     * @param spec the layer
     * @param params its parameters
     * @param w0 the frozen weight, d_out × d_in, finite
     * @param out d_out × d_in, overwritten
     * @throws IllegalArgumentException also when a result overflows out's dtype (out then holds it)
     */
    void materialize(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray out);

    /**
     * weight ← weight·T + s·Δ, in place. There is no unmerge: T need not be invertible.
     *
     * @param spec the layer
     * @param params its parameters
     * @param weight d_out × d_in, finite, updated in place
     * @throws IllegalArgumentException also when a result overflows weight's dtype (weight then holds it)
     */
    void merge(TLoRASpec spec, TLoRAParameters params, HostArray weight);

    /** Releases the backend's resources; idempotent. */
    @Override
    void close();
}
