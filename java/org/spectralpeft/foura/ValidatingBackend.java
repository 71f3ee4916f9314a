package org.spectralpeft.foura;

import java.util.List;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.OpenState;
import org.spectralpeft.core.TokenRows;

/**
 * Checks every argument of a FouRA operation (shapes, finiteness, gate kind, the factors' owner and open
 * state, the backend's open state) once, identically for all backends, then hands them to the
 * implementation's {@code run*} methods. The results of materialize and merge are checked after the call:
 * one that is not finite in the output dtype (an overflow) throws {@link IllegalArgumentException}, and the
 * output then holds that result.
 */
public abstract class ValidatingBackend extends OpenState implements FouRABackend {
    @Override
    public final FouRAFactors prepare(FouRASpec spec, float[] a, float[] b, float[] gate) {
        Checks.notNull(spec, "spec");
        Checks.notNull(a, "A");
        Checks.notNull(b, "B");
        ensureOpen();
        FouRAFactors.checkParameters(spec, a, b, gate);
        return runPrepare(spec, a, b, gate);
    }

    @Override
    public final void forward(FouRAFactors factors, HostArray x, int tokens, HostArray y) {
        Checks.notNull(factors, "factors");
        Checks.notNull(x, "x");
        Checks.notNull(y, "y");
        ensureOpen();
        factors.checkUsableBy(this, "factors");
        checkActivations(factors.spec(), x, tokens, y);
        runForward(factors, x, tokens, y);
    }

    @Override
    public final void forward(FouRAAdapterPool pool, int[] adapterIds, HostArray x, int tokens, HostArray y) {
        try (FouRAAdapterPool.Lease lease = checkBatch(pool, adapterIds, x, tokens, y)) {
            runForward(lease, x, y);
        }
    }

    /**
     * The checks of a mixed batch (also for a backend's device-array entry point), then its adapters resolved and
     * held: this backend open, tokens ≥ 1, one id per token, each −1 or in the pool, each used adapter open and
     * this backend's.
     *
     * @param pool the pool
     * @param adapterIds the ids
     * @param tokens the tokens
     * @return the lease on the call's adapters; close it when the call ends
     * @throws IllegalArgumentException naming the first problem
     * @throws IllegalStateException if the backend, the pool or an adapter is closed
     */
    protected final FouRAAdapterPool.Lease checkBatch(FouRAAdapterPool pool, int[] adapterIds, int tokens) {
        Checks.notNull(pool, "pool");
        Checks.notNull(adapterIds, "adapterIds");
        ensureOpen();
        Checks.positive(tokens, "tokens");
        Checks.length("adapterIds", adapterIds.length, tokens);
        FouRAAdapterPool.Lease lease = pool.acquire(adapterIds);
        try {
            for (FouRAFactors f : lease.distinct()) {
                if (!f.isUsableBy(this)) { // the message, with the spec's text, only for a refusal
                    f.checkUsableBy(this, "the pool's adapter " + f.spec());
                }
            }
            return lease;
        } catch (RuntimeException e) {
            lease.close();
            throw e;
        }
    }

    private FouRAAdapterPool.Lease checkBatch(FouRAAdapterPool pool, int[] adapterIds, HostArray x, int tokens,
                                              HostArray y) {
        Checks.notNull(pool, "pool");
        Checks.notNull(adapterIds, "adapterIds");
        Checks.notNull(x, "x");
        Checks.notNull(y, "y");
        ensureOpen();
        Checks.positive(tokens, "tokens");
        Checks.input("x", x, (long) tokens * pool.dIn());
        Checks.output("y", y, (long) tokens * pool.dOut());
        return checkBatch(pool, adapterIds, tokens);
    }

    @Override
    public final void backward(FouRAFactors factors, HostArray x, HostArray gradY, int tokens,
                               float[] gradA, float[] gradB, float[] gradGate, HostArray gradX) {
        Checks.notNull(factors, "factors");
        Checks.notNull(x, "x");
        Checks.notNull(gradY, "gradY");
        Checks.notNull(gradA, "gradA");
        Checks.notNull(gradB, "gradB"); // gradGate and gradX may be null: not wanted
        ensureOpen();
        factors.checkUsableBy(this, "factors");
        FouRASpec spec = factors.spec();
        Checks.positive(tokens, "tokens");
        Checks.input("x", x, (long) tokens * spec.dIn());
        Checks.input("gradY", gradY, (long) tokens * spec.dOut());
        Checks.length("gradA", gradA.length, spec.aLength());
        Checks.length("gradB", gradB.length, spec.bLength());
        Checks.require(gradA != gradB, "gradA and gradB are the same array; each gradient needs its own");
        if (gradGate != null) {
            requireLearnableGate(spec);
            Checks.length("gradGate", gradGate.length, spec.gateLength());
            Checks.require(gradGate != gradA && gradGate != gradB,
                    "gradGate is the same array as gradA or gradB; each gradient needs its own");
        }
        if (gradX != null) {
            Checks.output("gradX", gradX, (long) tokens * spec.dIn());
        }
        runBackward(factors, x, gradY, tokens, gradA, gradB, gradGate, gradX);
    }

    @Override
    public final void materialize(FouRAFactors factors, HostArray out) {
        checkMergeable(factors, "out", out);
        Checks.output("out", out, (long) factors.spec().dOut() * factors.spec().dIn());
        runMaterialize(factors, out);
        Checks.finiteResult("out", out);
    }

    @Override
    public final void merge(FouRAFactors factors, HostArray weight) {
        checkMerge(factors, weight);
        runMerge(factors, weight, false);
        Checks.finiteResult("weight", weight);
    }

    @Override
    public final void unmerge(FouRAFactors factors, HostArray weight) {
        checkMerge(factors, weight);
        runMerge(factors, weight, true);
        Checks.finiteResult("weight", weight);
    }

    @Override
    public final void combine(FouRAFactors[] adapters, float[] weights, HostArray x, int tokens, HostArray y) {
        Checks.notNull(adapters, "adapters");
        Checks.notNull(weights, "weights");
        Checks.notNull(x, "x");
        Checks.notNull(y, "y");
        checkCombined(adapters, weights);
        checkActivations(adapters[0].spec(), x, tokens, y);
        runCombine(adapters, weights, x, tokens, y);
    }

    /**
     * The checks of {@link #combine} on its adapters and weights (also for a backend's device-array entry
     * point): this backend open, at least one adapter, each open, this backend's and of one layer, and one
     * finite weight each.
     *
     * @param adapters the adapters
     * @param weights their weights
     * @throws IllegalArgumentException naming the first problem
     * @throws IllegalStateException if the backend or an adapter is closed
     */
    protected final void checkCombined(FouRAFactors[] adapters, float[] weights) {
        ensureOpen();
        Checks.require(adapters.length > 0, "adapters is empty; combine needs at least one");
        Checks.finiteVector("weights", weights, adapters.length);
        for (int k = 0; k < adapters.length; k++) {
            String name = "adapters[" + k + "]";
            Checks.notNull(adapters[k], name);
            adapters[k].checkUsableBy(this, name);
            FouRASpec s = adapters[k].spec();
            FouRASpec first = adapters[0].spec();
            Checks.require(s.dOut() == first.dOut() && s.dIn() == first.dIn(), name + " is " + s.dOut() + "x"
                    + s.dIn() + " but adapters[0] is " + first.dOut() + "x" + first.dIn() + "; combined adapters share one layer");
        }
    }

    private void checkMerge(FouRAFactors factors, HostArray weight) {
        checkMergeable(factors, "weight", weight);
        Checks.input("weight", weight, (long) factors.spec().dOut() * factors.spec().dIn()); // W + ΔW of a NaN is NaN
        Checks.writable("weight", weight);
    }

    private void checkMergeable(FouRAFactors factors, String arrayName, HostArray array) {
        Checks.notNull(factors, "factors");
        Checks.notNull(array, arrayName);
        ensureOpen();
        factors.checkUsableBy(this, "factors");
        requireMergeable(factors.spec());
    }

    /**
     * Refuses a gate gradient for a gate with nothing to learn (NONE, FIXED).
     *
     * @param spec the layer
     * @throws IllegalArgumentException unless the gate is ADAPTIVE
     */
    protected static void requireLearnableGate(FouRASpec spec) {
        Checks.require(spec.gate() == FouRASpec.Gate.ADAPTIVE, "gradGate must be null for the " + spec.gate()
                + " gate, which has nothing to learn");
    }

    /**
     * Refuses materialize and merge for the ADAPTIVE gate, whose ΔW depends on each token.
     *
     * @param spec the layer
     * @throws IllegalArgumentException for the ADAPTIVE gate
     */
    protected static void requireMergeable(FouRASpec spec) {
        Checks.require(spec.mergeable(), "the ADAPTIVE gate depends on each token, so " + spec
                + " has no fixed ΔW to materialize or merge; use forward");
    }

    private static void checkActivations(FouRASpec spec, HostArray x, int tokens, HostArray y) {
        Checks.positive(tokens, "tokens");
        Checks.input("x", x, (long) tokens * spec.dIn());
        Checks.output("y", y, (long) tokens * spec.dOut());
    }

    /**
     * {@link #prepare} after validation.
     *
     * @param spec the layer
     * @param a A, checked
     * @param b B, checked
     * @param gate the gate's parameters, checked (null or empty for NONE)
     * @return the factors, owned by this backend
     */
    protected abstract FouRAFactors runPrepare(FouRASpec spec, float[] a, float[] b, float[] gate);

    /**
     * {@link #forward} after validation.
     *
     * @param factors open factors of this backend
     * @param x tokens × d_in finite inputs
     * @param tokens at least 1
     * @param y tokens × d_out outputs
     */
    protected abstract void runForward(FouRAFactors factors, HostArray x, int tokens, HostArray y);

    /**
     * {@link #forward(FouRAAdapterPool, int[], HostArray, int, HostArray)} after validation, with each token's
     * adapter resolved. This one gathers each adapter's tokens, in token order, into a float32 block, runs the
     * single-adapter forward on it and adds the block's rows into y. Backends with a per-token path override it.
     *
     * @param lease the call's adapters (open, this backend's) and their tokens
     * @param x tokens × d_in finite inputs
     * @param y tokens × d_out outputs
     */
    protected void runForward(FouRAAdapterPool.Lease lease, HostArray x, HostArray y) {
        FouRAFactors[] distinct = lease.distinct();
        for (int a = 0; a < distinct.length; a++) {
            runForwardOnRows(distinct[a], lease.grouping().tokensOf(a), x, y);
        }
    }

    /**
     * The single-adapter forward of f on the given rows of x (gathered into a float32 block), added into y's rows.
     *
     * @param f open factors of this backend
     * @param rows the rows of x and y
     * @param x the batch's inputs
     * @param y the batch's outputs, accumulated into
     */
    protected final void runForwardOnRows(FouRAFactors f, List<Integer> rows, HostArray x, HostArray y) {
        FouRASpec spec = f.spec();
        float[] ys = new float[rows.size() * spec.dOut()];
        runForward(f, HostArray.float32(TokenRows.gather(x, rows, spec.dIn())), rows.size(), HostArray.float32(ys));
        TokenRows.addInto(ys, rows, spec.dOut(), y);
    }

    /**
     * {@link #backward} after validation.
     *
     * @param factors open factors of this backend
     * @param x tokens × d_in finite inputs
     * @param gradY tokens × d_out finite gradient
     * @param tokens at least 1
     * @param gradA r × d_in, overwritten
     * @param gradB d_out × r, overwritten
     * @param gradGate r² + r (ADAPTIVE only), overwritten, or null
     * @param gradX tokens × d_in, accumulated into, or null
     */
    protected abstract void runBackward(FouRAFactors factors, HostArray x, HostArray gradY, int tokens,
                                        float[] gradA, float[] gradB, float[] gradGate, HostArray gradX);

    /**
     * {@link #materialize} after validation (a NONE or FIXED gate).
     *
     * @param factors open factors of this backend
     * @param out d_out × d_in, overwritten
     */
    protected abstract void runMaterialize(FouRAFactors factors, HostArray out);

    /**
     * {@link #merge} and {@link #unmerge} after validation (a NONE or FIXED gate).
     *
     * @param factors open factors of this backend
     * @param weight d_out × d_in finite weights, updated in place
     * @param subtract true to subtract ΔW (unmerge)
     */
    protected abstract void runMerge(FouRAFactors factors, HostArray weight, boolean subtract);

    /**
     * {@link #combine} after validation.
     *
     * @param adapters open factors of this backend, one layer
     * @param weights finite, one per adapter
     * @param x tokens × d_in finite inputs
     * @param tokens at least 1
     * @param y tokens × d_out outputs
     */
    protected abstract void runCombine(FouRAFactors[] adapters, float[] weights, HostArray x, int tokens, HostArray y);
}
