package org.spectralpeft.tlora;

import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import org.spectralpeft.core.Checks;

/**
 * One TLoRA layer's shape and kind, validated once: W' = W0·T + s·Δ with W0 the frozen d_out × d_in weight,
 * T the d_in × d_in tensor-ring transform of rank R over the input factorisation d_in = I1·…·ID, and Δ the
 * residual (LoRA, tensor ring or tensor-train matrix, rank r) scaled by s = α/√r. The conventions are the
 * authors' code's (DESIGN.md's TLoRA section): multi-indices row-major, the first factor most significant.
 * Immutable and thread-safe.
 */
public final class TLoRASpec {
    /** The residual Δ (d_out × d_in), zero at the start in every kind. */
    public enum Residual {
        /** Δ = B·A with A (r × d_in) and B (d_out × r); the authors' {@code lora}. */
        LORA,
        /**
         * A tensor ring over the output then the input factors: output cores (J_d, r, r), input cores (I_d, r, r),
         * Δ[ō, ī] = tr(G¹[o1]⋯G^D[oD]·H¹[i1]⋯H^E[iE]); the authors' {@code ttv}.
         */
        TR,
        /** A tensor-ring matrix with cores (J_d, I_d, r, r), Δ[ō, ī] = tr(M¹[o1, i1]⋯M^D[oD, iD]); the authors' {@code ttm}. */
        TTM
    }

    /** The factorisations of the authors' code (its {@code TENSOR_SHAPE_DICT}), used for both sides of a dimension. */
    private static final Map<Integer, int[]> AUTHORS_SHAPES = Map.of(
            320, new int[] {4, 8, 10},
            640, new int[] {8, 8, 10},
            768, new int[] {8, 8, 12},
            1280, new int[] {8, 10, 16},
            2048, new int[] {8, 16, 16});

    private final int[] outShape;
    private final int[] inShape;
    private final int dOut;
    private final int dIn;
    private final int transformRank;
    private final Residual residual;
    private final int rank;
    private final float alpha;

    private TLoRASpec(int[] outShape, int[] inShape, int dOut, int dIn, int transformRank, Residual residual,
                      int rank, float alpha) {
        this.outShape = outShape;
        this.inShape = inShape;
        this.dOut = dOut;
        this.dIn = dIn;
        this.transformRank = transformRank;
        this.residual = residual;
        this.rank = rank;
        this.alpha = alpha;
    }

    /**
     * A validated spec.
     *
     * @param outShape the factors J1..JD of d_out, each at least 1 (for the LORA residual, {d_out} will do)
     * @param inShape the factors I1..ID of d_in, each at least 1
     * @param transformRank R, the transform's ring rank, at least 1 (1: a Kronecker product)
     * @param residual the residual's kind
     * @param rank r, the residual's rank, at least 1
     * @param alpha α, finite; s = α/√r
     * @return the spec
     * @throws IllegalArgumentException naming the first invalid argument
     */
    public static TLoRASpec of(int[] outShape, int[] inShape, int transformRank, Residual residual, int rank,
                               float alpha) {
        Checks.notNull(outShape, "outShape");
        Checks.notNull(inShape, "inShape");
        Checks.notNull(residual, "residual");
        int dOut = product(outShape, "outShape");
        int dIn = product(inShape, "inShape");
        Checks.positive(transformRank, "transformRank");
        Checks.positive(rank, "rank");
        Checks.require(Float.isFinite(alpha), "alpha is " + alpha + "; it must be finite");
        if (residual == Residual.TTM) {
            Checks.require(outShape.length == inShape.length, "the TTM residual pairs output and input factors, but outShape "
                    + Arrays.toString(outShape) + " and inShape " + Arrays.toString(inShape) + " differ in length");
        }
        long ring = (long) transformRank * transformRank;
        for (int i : inShape) {
            Checks.require((long) i * i * ring <= Integer.MAX_VALUE, "a transform core of " + i + " x " + i
                    + " x " + transformRank + " x " + transformRank + " does not fit a Java array");
        }
        return new TLoRASpec(outShape.clone(), inShape.clone(), dOut, dIn, transformRank, residual, rank, alpha);
    }

    private static int product(int[] shape, String name) {
        Checks.require(shape.length > 0, name + " is empty; it needs at least one factor");
        long p = 1;
        for (int i = 0; i < shape.length; i++) {
            Checks.require(shape[i] >= 1, name + "[" + i + "] is " + shape[i] + "; factors must be at least 1");
            p *= shape[i];
            Checks.require(p <= Integer.MAX_VALUE, name + " " + Arrays.toString(shape) + " has more than 2^31 - 1 elements");
        }
        return (int) p;
    }

    /**
     * The factorisation the authors' code uses for d (320, 640, 768, 1280 or 2048).
     *
     * @param d a dimension
     * @return its factors, most significant first
     * @throws IllegalArgumentException for a dimension the authors' table does not list
     */
    public static int[] authorsShape(int d) {
        int[] shape = AUTHORS_SHAPES.get(d);
        Checks.require(shape != null, "the authors' code has no factorisation for " + d + "; it lists "
                + new java.util.TreeSet<>(AUTHORS_SHAPES.keySet()) + ": pass the factors explicitly");
        return shape.clone();
    }

    /** @return d_out = J1·…·JD */
    public int dOut() {
        return dOut;
    }

    /** @return d_in = I1·…·ID */
    public int dIn() {
        return dIn;
    }

    /** @return the output factors (a copy) */
    public int[] outShape() {
        return outShape.clone();
    }

    /** @return the input factors (a copy) */
    public int[] inShape() {
        return inShape.clone();
    }

    /**
     * @param d a factor's position
     * @return I_d
     */
    public int inFactor(int d) {
        return inShape[d];
    }

    /**
     * @param d a factor's position
     * @return J_d
     */
    public int outFactor(int d) {
        return outShape[d];
    }

    /** @return the number of input factors, D (and of transform cores) */
    public int inOrder() {
        return inShape.length;
    }

    /** @return the number of output factors */
    public int outOrder() {
        return outShape.length;
    }

    /** @return R, the transform's ring rank */
    public int transformRank() {
        return transformRank;
    }

    /** @return the residual's kind */
    public Residual residual() {
        return residual;
    }

    /** @return r, the residual's rank */
    public int rank() {
        return rank;
    }

    /** @return α */
    public float alpha() {
        return alpha;
    }

    /** @return s = α/√r, the residual's scale (the authors' rsLoRA scaling) */
    public float scale() {
        return (float) (alpha / Math.sqrt(rank));
    }

    /**
     * @param d a factor's position
     * @return the length of transform core d, (I_d, I_d, R, R) row-major
     */
    public int transformCoreLength(int d) {
        return inShape[d] * inShape[d] * transformRank * transformRank;
    }

    /**
     * The number of residual arrays: LORA 2 (A, then B); TR one per output factor then one per input factor;
     * TTM one per factor pair.
     *
     * @return that count
     */
    public int residualArrays() {
        return switch (residual) {
            case LORA -> 2;
            case TR -> outShape.length + inShape.length;
            case TTM -> inShape.length;
        };
    }

    /**
     * The length of residual array k in the order of {@link #residualArrays()}: LORA A (r × d_in) and B (d_out × r);
     * TR output core (J_d, r, r) or input core (I_d, r, r); TTM core (J_d, I_d, r, r); all row-major.
     *
     * @param k the array's position
     * @return its length
     */
    public long residualLength(int k) {
        long rr = (long) rank * rank;
        return switch (residual) {
            case LORA -> k == 0 ? (long) rank * dIn : (long) dOut * rank;
            case TR -> k < outShape.length ? outShape[k] * rr : inShape[k - outShape.length] * rr;
            case TTM -> (long) outShape[k] * inShape[k] * rr;
        };
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TLoRASpec s && Arrays.equals(outShape, s.outShape) && Arrays.equals(inShape, s.inShape)
                && transformRank == s.transformRank && residual == s.residual && rank == s.rank
                && Float.compare(alpha, s.alpha) == 0;
    }

    @Override
    public int hashCode() {
        return Objects.hash(Arrays.hashCode(outShape), Arrays.hashCode(inShape), transformRank, residual, rank, alpha);
    }

    @Override
    public String toString() {
        return "TLoRA " + dOut + "x" + dIn + " (out " + Arrays.toString(outShape) + ", in " + Arrays.toString(inShape)
                + ", transform rank " + transformRank + ", " + residual + " residual rank " + rank + ", alpha " + alpha + ")";
    }
}
