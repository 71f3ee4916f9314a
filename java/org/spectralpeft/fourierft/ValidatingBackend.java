package org.spectralpeft.fourierft;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.OpenState;
import org.spectralpeft.core.TokenRows;

/**
 * Checks every host-array argument (shapes, finiteness, open state) once, identically for all
 * backends, then hands validated arguments to the implementation's {@code run*} methods. The results of
 * materialize and merge are checked after the call: one that is not finite in the output dtype (an overflow)
 * throws {@link IllegalArgumentException}, and the output then holds that result. A materialize whose ΔW is
 * provably finite ({@link ResultBound}) is not scanned.
 */
public abstract class ValidatingBackend extends OpenState implements FourierFTBackend {
    @Override
    public final void materializeBatch(FourierFTSpec spec, float[] coeffs, int layers, HostArray out) {
        notNull(spec, coeffs, "out", out);
        ensureOpen();
        Checks.positive(layers, "layers");
        Checks.finiteVector("coeffs", coeffs, (long) layers * spec.n());
        Checks.output("out", out, (long) layers * spec.dOut() * spec.dIn());
        runMaterialize(spec, coeffs, layers, out);
        if (!ResultBound.deltaIsFinite(spec, coeffs, out.dtype())) {
            Checks.finiteResult("out", out);
        }
    }

    @Override
    public final void merge(FourierFTSpec spec, float[] coeffs, HostArray weight) {
        checkMerge(spec, coeffs, weight);
        runMerge(spec, coeffs, weight, false);
        Checks.finiteResult("weight", weight);
    }

    @Override
    public final void unmerge(FourierFTSpec spec, float[] coeffs, HostArray weight) {
        checkMerge(spec, coeffs, weight);
        runMerge(spec, coeffs, weight, true);
        Checks.finiteResult("weight", weight);
    }

    private void checkMerge(FourierFTSpec spec, float[] coeffs, HostArray weight) {
        notNull(spec, coeffs, "weight", weight);
        ensureOpen();
        Checks.finiteVector("coeffs", coeffs, spec.n());
        Checks.input("weight", weight, (long) spec.dOut() * spec.dIn()); // W is an input too: W + ΔW of a NaN is NaN
        Checks.writable("weight", weight);
    }

    @Override
    public final void forward(FourierFTSpec spec, float[] coeffs, HostArray x, int tokens, HostArray y) {
        notNull(spec, coeffs, "x", x);
        Checks.notNull(y, "y");
        ensureOpen();
        Checks.positive(tokens, "tokens");
        Checks.finiteVector("coeffs", coeffs, spec.n());
        Checks.input("x", x, (long) tokens * spec.dIn());
        Checks.output("y", y, (long) tokens * spec.dOut());
        runForward(spec, coeffs, x, tokens, y);
    }

    @Override
    public final void forward(FourierFTAdapterPool pool, int[] adapterIds, HostArray x, int tokens, HostArray y) {
        Checks.notNull(y, "y");
        checkBatch(pool, adapterIds, x, tokens);
        Checks.output("y", y, (long) tokens * pool.dOut());
        runForward(pool, ResolvedBatch.of(pool, adapterIds), x, y);
    }

    /**
     * {@link #forward(FourierFTAdapterPool, int[], HostArray, int, HostArray)} after validation. This one hands
     * the batch to {@link #runForward(FourierFTSpec[], float[][], int, int, HostArray, HostArray)}; a backend
     * that keeps a copy of the pool overrides it.
     *
     * @param pool the pool
     * @param batch each token's adapter
     * @param x tokens × d_in finite inputs
     * @param y tokens × d_out outputs
     */
    protected void runForward(FourierFTAdapterPool pool, ResolvedBatch batch, HostArray x, HostArray y) {
        FourierFTSpec[] specs = new FourierFTSpec[batch.tokens()];
        float[][] coefficients = new float[batch.tokens()][];
        for (int t = 0; t < specs.length; t++) {
            int i = batch.place(t);
            if (i >= 0) {
                specs[t] = batch.adapter(i).spec();
                coefficients[t] = batch.adapter(i).coefficients();
            }
        }
        runForward(specs, coefficients, pool.dOut(), pool.dIn(), x, y);
    }

    /**
     * A mixed batch's ids checked and resolved, for a backend's device-array entry point: this backend open,
     * tokens ≥ 1, one id per token, each −1 or in the pool.
     *
     * @param pool the pool
     * @param adapterIds one id per token
     * @param tokens the tokens
     * @return each token's adapter
     * @throws IllegalArgumentException naming the first problem
     * @throws IllegalStateException if the backend is closed
     */
    protected final ResolvedBatch resolveBatch(FourierFTAdapterPool pool, int[] adapterIds, int tokens) {
        checkBatch(pool, adapterIds, tokens);
        return ResolvedBatch.of(pool, adapterIds);
    }

    /**
     * What {@link #resolveBatch} checks before it resolves: the pool and ids given, this backend open, tokens
     * positive and one id per token (not the ids themselves).
     *
     * @param pool the adapters
     * @param adapterIds one id per token
     * @param tokens number of tokens
     * @throws IllegalArgumentException if an argument is null or the lengths differ
     * @throws IllegalStateException if the backend is closed
     */
    protected final void checkBatch(FourierFTAdapterPool pool, int[] adapterIds, int tokens) {
        Checks.notNull(pool, "pool");
        Checks.notNull(adapterIds, "adapterIds");
        ensureOpen();
        Checks.positive(tokens, "tokens");
        Checks.length("adapterIds", adapterIds.length, tokens);
    }

    /**
     * {@link #forward(FourierFTAdapterPool, int[], HostArray, int, HostArray)} after validation, with each token's
     * adapter resolved (null: none). This one gathers each adapter's tokens, in token order, into a float32 block,
     * runs the single-adapter forward on it and adds the block's rows into y: the same result per token as that
     * token alone. Backends with a per-token path override it.
     *
     * @param specs per token its adapter's spec, or null for none
     * @param coefficients per token its adapter's coefficients (the pool's arrays: read only), or null; one array
     *        per adapter, so tokens of one adapter share it
     * @param dOut the pool's out_features
     * @param dIn the pool's in_features
     * @param x tokens × d_in finite inputs
     * @param y tokens × d_out outputs
     */
    protected void runForward(FourierFTSpec[] specs, float[][] coefficients, int dOut, int dIn, HostArray x,
                              HostArray y) {
        for (List<Integer> rows : TokenRows.byKey(coefficients).values()) {
            int first = rows.get(0);
            float[] ys = new float[rows.size() * dOut];
            runForward(specs[first], coefficients[first], HostArray.float32(TokenRows.gather(x, rows, dIn)), rows.size(),
                    HostArray.float32(ys));
            TokenRows.addInto(ys, rows, dOut, y);
        }
    }

    /**
     * A mixed batch's first checks, after the caller's own arrays' nulls: pool, ids and x not null, this backend
     * open, tokens ≥ 1, one id per token, x tokens × d_in and finite.
     */
    private void checkBatch(FourierFTAdapterPool pool, int[] adapterIds, HostArray x, int tokens) {
        Checks.notNull(pool, "pool");
        Checks.notNull(adapterIds, "adapterIds");
        Checks.notNull(x, "x");
        ensureOpen();
        Checks.positive(tokens, "tokens");
        Checks.length("adapterIds", adapterIds.length, tokens);
        Checks.input("x", x, (long) tokens * pool.dIn());
    }

    @Override
    public final void gradCoefficients(FourierFTSpec spec, HostArray gradDeltaW, float[] gradCoeffs) {
        Checks.notNull(spec, "spec");
        Checks.notNull(gradDeltaW, "gradDeltaW");
        Checks.notNull(gradCoeffs, "gradCoeffs");
        ensureOpen();
        Checks.input("gradDeltaW", gradDeltaW, (long) spec.dOut() * spec.dIn());
        Checks.length("gradCoeffs", gradCoeffs.length, spec.n());
        runGradCoefficients(spec, gradDeltaW, gradCoeffs);
    }

    @Override
    public final void backward(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                               float[] gradCoeffs, HostArray gradX) {
        notNull(spec, coeffs, "x", x);
        Checks.notNull(gradY, "gradY");
        Checks.notNull(gradCoeffs, "gradCoeffs"); // gradX may be null: no ∂L/∂x wanted
        ensureOpen();
        Checks.positive(tokens, "tokens");
        Checks.finiteVector("coeffs", coeffs, spec.n());
        Checks.input("x", x, (long) tokens * spec.dIn());
        Checks.input("gradY", gradY, (long) tokens * spec.dOut());
        Checks.length("gradCoeffs", gradCoeffs.length, spec.n());
        if (gradX != null) {
            Checks.output("gradX", gradX, (long) tokens * spec.dIn());
        }
        runBackward(spec, coeffs, x, gradY, tokens, gradCoeffs, gradX);
    }

    @Override
    public final Map<Integer, float[]> backward(FourierFTAdapterPool pool, int[] adapterIds, HostArray x,
                                                HostArray gradY, int tokens, HostArray gradX) {
        Checks.notNull(gradY, "gradY"); // gradX may be null: no ∂L/∂x wanted
        checkBatch(pool, adapterIds, x, tokens);
        Checks.input("gradY", gradY, (long) tokens * pool.dOut());
        if (gradX != null) {
            Checks.output("gradX", gradX, (long) tokens * pool.dIn());
        }
        ResolvedBatch batch = ResolvedBatch.of(pool, adapterIds);
        float[][] coefficients = new float[batch.adapterCount()][];
        for (int i = 0; i < coefficients.length; i++) {
            coefficients[i] = batch.adapter(i).coefficients();
        }
        return runBackward(pool, batch, coefficients, x, gradY, gradX);
    }

    /**
     * {@link #backward(FourierFTAdapterPool, int[], HostArray, HostArray, int, HostArray)} after validation. This
     * one runs each adapter's tokens, gathered in batch order, through the single-adapter backward and adds their
     * ∂L/∂x rows back; a backend with a batched path overrides it.
     *
     * @param pool the pool
     * @param batch each token's adapter
     * @param coefficients per used adapter (by place) its coefficients: the pool's arrays, read only
     * @param x tokens × d_in finite inputs
     * @param gradY tokens × d_out finite gradients
     * @param gradX tokens × d_in accumulating ∂L/∂x, or null
     * @return per used adapter, in first-use order, its id → ∂L/∂c
     */
    protected Map<Integer, float[]> runBackward(FourierFTAdapterPool pool, ResolvedBatch batch, float[][] coefficients,
                                                HostArray x, HostArray gradY, HostArray gradX) {
        int dIn = pool.dIn();
        int dOut = pool.dOut();
        Map<Integer, float[]> grads = new LinkedHashMap<>();
        TokenRows.Groups groups = batch.tokensByAdapter();
        for (int i = 0; i < batch.adapterCount(); i++) {
            FourierFTAdapterPool.Adapter a = batch.adapter(i);
            List<Integer> rows = groups.tokensOf(i);
            float[] gx = gradX == null ? null : new float[rows.size() * dIn];
            float[] gc = new float[a.spec().n()];
            runBackward(a.spec(), coefficients[i], HostArray.float32(TokenRows.gather(x, rows, dIn)),
                    HostArray.float32(TokenRows.gather(gradY, rows, dOut)), rows.size(), gc,
                    gx == null ? null : HostArray.float32(gx));
            if (gx != null) {
                TokenRows.addInto(gx, rows, dIn, gradX);
            }
            grads.put(a.id(), gc);
        }
        return grads;
    }

    // every null argument is named before any other check, so that no other complaint hides it
    private static void notNull(FourierFTSpec spec, float[] coeffs, String arrayName, HostArray array) {
        Checks.notNull(spec, "spec");
        Checks.notNull(coeffs, "coeffs");
        Checks.notNull(array, arrayName);
    }

    /**
     * {@link #materializeBatch} after validation: writes {@code layers} ΔW matrices to {@code out}.
     *
     * @param spec the adapter geometry
     * @param coeffs layers × n finite coefficients
     * @param layers number of layers, at least 1
     * @param out layers × dOut × dIn elements, row-major, overwritten
     */
    protected abstract void runMaterialize(FourierFTSpec spec, float[] coeffs, int layers, HostArray out);

    /**
     * {@link #merge} and {@link #unmerge} after validation: W += ΔW, or W -= ΔW.
     *
     * @param spec the adapter geometry
     * @param coeffs n finite coefficients
     * @param weight dOut × dIn finite weights, row-major, updated in place
     * @param subtract true to subtract ΔW (unmerge), false to add it
     */
    protected abstract void runMerge(FourierFTSpec spec, float[] coeffs, HostArray weight, boolean subtract);

    /**
     * {@link #forward} after validation: y += x ΔWᵀ.
     *
     * @param spec the adapter geometry
     * @param coeffs n finite coefficients
     * @param x tokens × dIn finite inputs, row-major
     * @param tokens number of tokens, at least 1
     * @param y tokens × dOut outputs, row-major
     */
    protected abstract void runForward(FourierFTSpec spec, float[] coeffs, HostArray x, int tokens, HostArray y);

    /**
     * {@link #gradCoefficients} after validation.
     *
     * @param spec the adapter geometry
     * @param gradDeltaW dOut × dIn finite gradient ∂L/∂ΔW, row-major
     * @param gradCoeffs n elements receiving ∂L/∂c
     */
    protected abstract void runGradCoefficients(FourierFTSpec spec, HostArray gradDeltaW, float[] gradCoeffs);

    /**
     * {@link #backward} after validation.
     *
     * @param spec the adapter geometry
     * @param coeffs n finite coefficients
     * @param x tokens × dIn finite inputs, row-major
     * @param gradY tokens × dOut finite gradient ∂L/∂y, row-major
     * @param tokens number of tokens, at least 1
     * @param gradCoeffs n elements receiving ∂L/∂c
     * @param gradX tokens × dIn elements receiving ∂L/∂x, or null when not wanted
     */
    protected abstract void runBackward(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                                        float[] gradCoeffs, HostArray gradX);
}
