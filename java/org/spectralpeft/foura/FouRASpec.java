package org.spectralpeft.foura;

import java.util.Objects;
import org.spectralpeft.core.Checks;

/**
 * One FouRA (Fourier low-rank adaptation) layer's shape and kind, validated once: d_out × d_in, rank r, the
 * fixed transform pair, the gate, and α. Per token x ∈ R^{d_in}, with A (r × d_in, row-major) and B
 * (d_out × r): z = A·𝒯_in(x) ∈ r components, w = m(z) ⊙ z, y += α·𝒯_out⁻¹(B·w) (for DFT, the real part).
 * The formulas, the gates and the folding of the transforms into the factors are in DESIGN.md's FouRA
 * section. Immutable and thread-safe.
 */
public final class FouRASpec {
    /** The fixed transform on each side. */
    public enum Transform {
        /** The unitary DFT ({@code norm="ortho"}); z is complex, y keeps the real part. */
        DFT,
        /** The orthonormal DCT-II; everything is real. */
        DCT
    }

    /** The gate m(z) ∈ {0,1}^r. */
    public enum Gate {
        /** All ones. */
        NONE,
        /** A stored mask (the frozen-mask inference mode): the adapter is linear and can be merged. */
        FIXED,
        /** Per token, from learnable gate weights, with a straight-through gradient; cannot be merged. */
        ADAPTIVE
    }

    private final int dOut;
    private final int dIn;
    private final int rank;
    private final Transform transform;
    private final Gate gate;
    private final float alpha;

    private FouRASpec(int dOut, int dIn, int rank, Transform transform, Gate gate, float alpha) {
        this.dOut = dOut;
        this.dIn = dIn;
        this.rank = rank;
        this.transform = transform;
        this.gate = gate;
        this.alpha = alpha;
    }

    /**
     * A validated spec.
     *
     * @param dOut output features (rows of W), at least 1
     * @param dIn input features (columns of W), at least 1
     * @param rank r, in [1, min(d_in, d_out)]
     * @param transform the transform pair
     * @param gate the gate kind
     * @param alpha the scale α, finite
     * @return the spec
     * @throws IllegalArgumentException naming the first invalid argument
     */
    public static FouRASpec of(int dOut, int dIn, int rank, Transform transform, Gate gate, float alpha) {
        Checks.positive(dOut, "dOut");
        Checks.positive(dIn, "dIn");
        Checks.positive(rank, "rank");
        Checks.require(rank <= Math.min(dIn, dOut), "rank " + rank + " exceeds min(d_in, d_out) = " + Math.min(dIn, dOut));
        Checks.notNull(transform, "transform");
        Checks.notNull(gate, "gate");
        Checks.require(Float.isFinite(alpha), "alpha is " + alpha + "; it must be finite");
        return new FouRASpec(dOut, dIn, rank, transform, gate, alpha);
    }

    /**
     * Rows of W and ΔW: output features.
     *
     * @return d_out
     */
    public int dOut() {
        return dOut;
    }

    /**
     * Columns of W and ΔW: input features.
     *
     * @return d_in
     */
    public int dIn() {
        return dIn;
    }

    /**
     * The rank r.
     *
     * @return r
     */
    public int rank() {
        return rank;
    }

    /**
     * The transform pair.
     *
     * @return DFT or DCT
     */
    public Transform transform() {
        return transform;
    }

    /**
     * The gate kind.
     *
     * @return NONE, FIXED or ADAPTIVE
     */
    public Gate gate() {
        return gate;
    }

    /**
     * The scale α.
     *
     * @return α
     */
    public float alpha() {
        return alpha;
    }

    /**
     * Whether ΔW exists as a fixed matrix (no input-dependent gate), so that materialize and merge apply.
     *
     * @return true for NONE and FIXED gates
     */
    public boolean mergeable() {
        return gate != Gate.ADAPTIVE;
    }

    /**
     * Elements of A: r × d_in.
     *
     * @return r·d_in
     */
    public long aLength() {
        return (long) rank * dIn;
    }

    /**
     * Elements of B: d_out × r.
     *
     * @return d_out·r
     */
    public long bLength() {
        return (long) dOut * rank;
    }

    /**
     * The width of a token's z = Â·𝒯(x), in floats: the real and imaginary parts of r components for the DFT, r
     * real ones for the DCT (the folded factors' rows).
     *
     * @return 2r or r
     */
    public int zWidth() {
        return (transform == Transform.DFT ? 2 : 1) * rank;
    }

    /**
     * Elements of the gate's parameters: none (NONE), the mask of r zeros and ones (FIXED), or the r × r
     * weights G followed by the r biases b (ADAPTIVE).
     *
     * @return 0, r or r² + r
     */
    public long gateLength() {
        return switch (gate) {
            case NONE -> 0;
            case FIXED -> rank;
            case ADAPTIVE -> (long) rank * rank + rank;
        };
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FouRASpec s && s.dOut == dOut && s.dIn == dIn && s.rank == rank
                && s.transform == transform && s.gate == gate && Float.floatToIntBits(s.alpha) == Float.floatToIntBits(alpha);
    }

    @Override
    public int hashCode() {
        return Objects.hash(dOut, dIn, rank, transform, gate, Float.floatToIntBits(alpha));
    }

    @Override
    public String toString() {
        return "FouRA " + dOut + "x" + dIn + " r=" + rank + " " + transform + " gate " + gate + " alpha=" + alpha;
    }
}
