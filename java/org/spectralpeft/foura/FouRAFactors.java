package org.spectralpeft.foura;

import org.spectralpeft.core.Checks;

/**
 * One FouRA layer's parameters in the form the backend computes with: the transforms folded into the factors
 * (Â = A·𝒯_in, B̂ = 𝒯_out⁻¹·B, DESIGN.md) and the gate's parameters, made by
 * {@link FouRABackend#prepare} and held where that backend computes (on the device for CUDA).
 *
 * <p>This is the cache of the folded factors: prepare (or {@link #update}) once per parameter change, that
 * is once per optimizer step, and use the factors for every forward and backward until the next change.
 * Folding costs 2r transforms of length d; a forward costs none. {@link #version()} counts the updates.
 *
 * <p>Calls that use the factors may run from several threads at once. {@link #update} must not run while
 * another thread uses the same factors. Factors are used only by the backend that made them, and hold
 * memory until closed.
 */
public abstract class FouRAFactors implements AutoCloseable {
    private final FouRASpec spec;
    private final Object owner;
    private volatile boolean closed;
    private volatile long version;

    /**
     * Factors of {@code spec} owned by {@code owner}, the backend that computes with them.
     *
     * @param spec the layer
     * @param owner the backend
     */
    protected FouRAFactors(FouRASpec spec, Object owner) {
        this.spec = Checks.notNull(spec, "spec");
        this.owner = Checks.notNull(owner, "owner");
    }

    /**
     * The layer.
     *
     * @return its spec
     */
    public final FouRASpec spec() {
        return spec;
    }

    /**
     * How many times the factors were recomputed by {@link #update} since {@link FouRABackend#prepare}.
     *
     * @return 0 after prepare, then +1 per update
     */
    public final long version() {
        return version;
    }

    /**
     * Whether {@link #close()} was called.
     *
     * @return true once closed
     */
    public final boolean isClosed() {
        return closed;
    }

    /**
     * Recomputes the factors from new parameters (the same shapes and rules as
     * {@link FouRABackend#prepare}), in the memory they already hold.
     *
     * @param a A, r × d_in row-major
     * @param b B, d_out × r row-major
     * @param gate the gate's parameters ({@link FouRASpec#gateLength()}), or null for the NONE gate
     * @throws IllegalArgumentException for a bad argument, before anything changes
     * @throws IllegalStateException if the factors are closed
     */
    public final synchronized void update(float[] a, float[] b, float[] gate) {
        ensureOpen("factors");
        checkParameters(spec, a, b, gate);
        recompute(a, b, gate);
        version++;
    }

    /**
     * Releases the memory; later use throws {@link IllegalStateException}. Idempotent.
     */
    @Override
    public final synchronized void close() {
        if (!closed) {
            closed = true;
            release();
        }
    }

    /**
     * {@link #update} after validation.
     *
     * @param a A, checked
     * @param b B, checked
     * @param gate the gate's parameters, checked (null for NONE)
     */
    protected abstract void recompute(float[] a, float[] b, float[] gate);

    /** Frees what the factors hold; called once, by {@link #close()}. */
    protected abstract void release();

    /**
     * @param backend a backend
     * @return whether these factors are open and were made by {@code backend}
     */
    final boolean isUsableBy(Object backend) {
        return owner == backend && !closed;
    }

    /**
     * Throws unless these factors are open and were made by {@code backend}.
     *
     * @param backend the backend about to use them
     * @param name the argument's name, for the message
     * @throws IllegalArgumentException if another backend made them
     * @throws IllegalStateException if they are closed
     */
    public final void checkUsableBy(Object backend, String name) {
        Checks.notNull(backend, "backend");
        if (owner != backend) { // the message only on failure: the owner's description is a formatted string
            throw new IllegalArgumentException(name + " were prepared by another backend (" + owner + ")");
        }
        ensureOpen(name);
    }

    private void ensureOpen(String name) {
        if (closed) {
            throw new IllegalStateException(name + " (" + spec + ") are closed");
        }
    }

    /**
     * The parameter rules of {@link FouRABackend#prepare}: A (r·d_in) and B (d_out·r) finite; the gate null
     * (or empty) for NONE, a mask of r values each exactly 0 or 1 for FIXED, r² + r finite weights for ADAPTIVE.
     *
     * @param spec the layer
     * @param a A
     * @param b B
     * @param gate the gate's parameters
     * @throws IllegalArgumentException naming the first bad argument
     */
    public static void checkParameters(FouRASpec spec, float[] a, float[] b, float[] gate) {
        Checks.notNull(spec, "spec");
        Checks.notNull(a, "A"); // every null named before any other complaint
        Checks.notNull(b, "B");
        Checks.finiteVector("A", a, spec.aLength());
        Checks.finiteVector("B", b, spec.bLength());
        checkGate(spec, gate);
    }

    /**
     * The gate's part of {@link #checkParameters}: null (or empty) for NONE, a mask of r values each exactly 0
     * or 1 for FIXED, r² + r finite weights for ADAPTIVE.
     *
     * @param spec the layer
     * @param gate the gate's parameters
     * @throws IllegalArgumentException naming the problem
     */
    public static void checkGate(FouRASpec spec, float[] gate) {
        Checks.notNull(spec, "spec");
        switch (spec.gate()) {
            case NONE -> Checks.require(gate == null || gate.length == 0,
                    "the NONE gate has no parameters, but gate has " + (gate == null ? 0 : gate.length) + " elements");
            case FIXED -> {
                Checks.notNull(gate, "gate (the FIXED gate's mask)");
                Checks.length("gate (the FIXED gate's mask)", gate.length, spec.rank());
                for (int i = 0; i < gate.length; i++) {
                    Checks.require(gate[i] == 0f || gate[i] == 1f,
                            "mask[" + i + "] is " + gate[i] + "; a FIXED gate's mask holds only 0 and 1");
                }
            }
            case ADAPTIVE -> {
                Checks.notNull(gate, "gate (the ADAPTIVE gate's G then b)");
                Checks.finiteVector("gate (the ADAPTIVE gate's G then b)", gate, spec.gateLength());
            }
        }
    }
}
