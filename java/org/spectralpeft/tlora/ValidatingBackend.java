package org.spectralpeft.tlora;

import org.spectralpeft.core.Checks;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.OpenState;

/**
 * Checks every argument of a TLoRA operation once, identically for all backends, then hands them to the
 * implementation's {@code run*} methods. Materialize and merge check their result afterwards: one that is not
 * finite in the output's dtype throws {@link IllegalArgumentException}, the output then holding it.
 */
public abstract class ValidatingBackend extends OpenState implements TLoRABackend {
    @Override
    public final void forward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x, int tokens,
                              HostArray y) {
        checkLayer(spec, params, w0);
        Checks.notNull(x, "x");
        Checks.notNull(y, "y");
        Checks.positive(tokens, "tokens");
        Checks.input("x", x, (long) tokens * spec.dIn());
        Checks.output("y", y, (long) tokens * spec.dOut());
        runForward(spec, params, w0, x, tokens, y);
    }

    @Override
    public final TLoRAParameters backward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x,
                                          HostArray gradY, int tokens, HostArray gradX) {
        checkLayer(spec, params, w0);
        Checks.notNull(x, "x");
        Checks.notNull(gradY, "gradY"); // gradX may be null: not wanted
        Checks.positive(tokens, "tokens");
        Checks.input("x", x, (long) tokens * spec.dIn());
        Checks.input("gradY", gradY, (long) tokens * spec.dOut());
        if (gradX != null) {
            Checks.output("gradX", gradX, (long) tokens * spec.dIn());
        }
        return runBackward(spec, params, w0, x, gradY, tokens, gradX);
    }

    @Override
    public final void materialize(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray out) {
        checkLayer(spec, params, w0);
        Checks.notNull(out, "out");
        Checks.output("out", out, (long) spec.dOut() * spec.dIn());
        runMaterialize(spec, params, w0, out);
        Checks.finiteResult("out", out);
    }

    @Override
    public final void merge(TLoRASpec spec, TLoRAParameters params, HostArray weight) {
        checkLayer(spec, params, weight);
        Checks.writable("weight", weight);
        runMaterialize(spec, params, weight, weight);
        Checks.finiteResult("weight", weight);
    }

    private void checkLayer(TLoRASpec spec, TLoRAParameters params, HostArray w0) {
        Checks.notNull(spec, "spec");
        Checks.notNull(params, "params");
        Checks.notNull(w0, "w0");
        ensureOpen();
        params.check(spec);
        Checks.input("w0", w0, (long) spec.dOut() * spec.dIn());
    }

    /**
     * {@link #forward} after validation.
     *
     * @param spec the layer
     * @param params checked parameters
     * @param w0 d_out × d_in finite weight
     * @param x tokens × d_in finite inputs
     * @param tokens at least 1
     * @param y tokens × d_out outputs
     */
    protected abstract void runForward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x, int tokens,
                                       HostArray y);

    /**
     * {@link #backward} after validation.
     *
     * @param spec the layer
     * @param params checked parameters
     * @param w0 d_out × d_in finite weight
     * @param x tokens × d_in finite inputs
     * @param gradY tokens × d_out finite gradient
     * @param tokens at least 1
     * @param gradX tokens × d_in, accumulated into, or null
     * @return the parameters' gradients
     */
    protected abstract TLoRAParameters runBackward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x,
                                                   HostArray gradY, int tokens, HostArray gradX);

    /**
     * {@link #materialize} and {@link #merge} after validation: out = w0·T + s·Δ; out may be w0 itself (merge),
     * so w0 is read whole before out is written.
     *
     * @param spec the layer
     * @param params checked parameters
     * @param w0 d_out × d_in finite weight
     * @param out d_out × d_in output
     */
    protected abstract void runMaterialize(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray out);
}
