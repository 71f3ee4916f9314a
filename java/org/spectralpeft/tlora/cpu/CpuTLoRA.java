package org.spectralpeft.tlora.cpu;

import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.WriteMode;
import org.spectralpeft.cpu.Gemm;
import org.spectralpeft.cpu.HostFloats;
import org.spectralpeft.cpu.Parallel;
import org.spectralpeft.tlora.RingCost;
import org.spectralpeft.tlora.RingProducts;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.ValidatingBackend;

/**
 * The CPU TLoRA backend. The transform T, and the TTM residual, are applied core by core ({@link RingOperator})
 * to the tokens (forward) or to W0's rows (materialize, merge), never formed; where that costs more than a dense
 * T ({@link RingCost}: from R = 4 at the authors' shapes), T is built one row panel at a time and applied by
 * GEMMs, so no buffer holds it whole; W0's product, the LoRA residual and
 * the TR residual are GEMMs through {@link Gemm}. Work is split into fixed chunks of rows on the fork-join pool,
 * so results repeat bit for bit.
 */
public final class CpuTLoRA extends ValidatingBackend {
    /** GEMM multiply-adds per ring multiply-add, in time, here: the ring runs on GEMMs too (bench/NOTES.md). */
    private static final double RING_SLOWDOWN = 1.0;

    /** Rows (tokens, or rows of W0) per task of the copies into the caller's arrays. */
    private static final int ROW_CHUNK = 16;

    @Override
    public String description() {
        return "cpu (" + Runtime.getRuntime().availableProcessors() + " threads, " + Gemm.implementation() + ")";
    }

    @Override
    public void close() {
        markClosed();
    }

    @Override
    public String toString() {
        return description();
    }

    @Override
    protected void runForward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x, int tokens,
                              HostArray y) {
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        float[] xs = HostFloats.of(x, tokens * dIn);
        float[] w = HostFloats.of(w0, dOut * dIn);
        // a float32 y array of its own is accumulated into directly (no result buffer, no pass to add it), unless
        // it is x's or W0's array, which the products read after the first write
        float[] own = HostFloats.wrapped(y);
        boolean direct = own != null && own != xs && own != w;
        float[] ys = direct ? own : new float[tokens * dOut];
        float first = direct ? 1f : 0f;
        if (tokens > dOut) {
            // W' = W0·T + s·Δ on W0's d_out rows costs less than T and Δ on the tokens: a d_out × d_in buffer, then
            // one GEMM
            float[] weight = weight(spec, params, w);
            Gemm.gemm(false, true, tokens, dOut, dIn, 1f, xs, 0, dIn, weight, 0, dIn, first, ys, 0, dOut);
        } else {
            float[] transformed = new float[tokens * dIn]; // x·Tᵀ
            applyTransform(spec, params, false, xs, tokens, transformed);
            Gemm.gemm(false, true, tokens, dOut, dIn, 1f, transformed, 0, dIn, w, 0, dIn, first, ys, 0, dOut);
            addResidual(spec, params, xs, tokens, ys);
        }
        if (!direct) {
            Parallel.inChunks(tokens, ROW_CHUNK, (from, to) ->
                    y.write(from * dOut, ys, from * dOut, (to - from) * dOut, WriteMode.ADD));
        }
    }

    /** ys (tokens × d_out) += s·x·Δᵀ. */
    private static void addResidual(TLoRASpec spec, TLoRAParameters params, float[] xs, int tokens, float[] ys) {
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        float s = spec.scale();
        switch (spec.residual()) {
            case LORA -> {
                int r = spec.rank();
                float[] down = new float[tokens * r]; // x·Aᵀ
                Gemm.gemm(false, true, tokens, r, dIn, 1f, xs, 0, dIn, params.residual(0), 0, dIn, 0f, down, 0, r);
                Gemm.gemm(false, true, tokens, dOut, r, s, down, 0, r, params.residual(1), 0, r, 1f, ys, 0, dOut);
            }
            case TR -> {
                // y[ō] += s·tr(G(ō)·M) with M = Σ_ī H(ī)·x[ī]: two GEMMs over the rings' products
                int rr = spec.rank() * spec.rank();
                float[] inRing = RingProducts.input(spec, params);
                float[] m = new float[tokens * rr];
                Gemm.gemm(false, false, tokens, rr, dIn, 1f, xs, 0, dIn, inRing, 0, rr, 0f, m, 0, rr);
                float[] mT = RingProducts.transposeEach(m, tokens, spec.rank());
                Gemm.gemm(false, true, tokens, dOut, rr, s, mT, 0, rr, RingProducts.output(spec, params), 0, rr,
                        1f, ys, 0, dOut);
            }
            case TTM -> {
                float[] delta = new float[tokens * dOut];
                ttm(spec, params, false).applyAll(xs, 0, tokens, delta, 0);
                for (int i = 0; i < delta.length; i++) {
                    ys[i] += s * delta[i];
                }
            }
        }
    }

    @Override
    protected TLoRAParameters runBackward(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray x,
                                          HostArray gradY, int tokens, HostArray gradX) {
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        float[] xs = HostFloats.of(x, tokens * dIn);
        float[] gs = HostFloats.of(gradY, tokens * dOut);
        float[] w = HostFloats.of(w0, dOut * dIn);
        float s = spec.scale();
        float[] du = new float[tokens * dIn]; // ∂L/∂(x·Tᵀ) = g·W0
        Gemm.gemm(false, false, tokens, dIn, dOut, 1f, gs, 0, dOut, w, 0, dIn, 0f, du, 0, dIn);
        float[][] gradTransform = ringGradient(transform(spec, params, false), xs, du, tokens);
        float[] gx = gradX != null ? new float[tokens * dIn] : null;
        if (gx != null && RingCost.gradXThroughW0T(spec, tokens, RING_SLOWDOWN)) {
            // ∂u·T = g·(W0·T): T on W0's d_out rows, then one GEMM
            float[] w0t = new float[dOut * dIn];
            applyTransform(spec, params, true, w, dOut, w0t);
            Gemm.gemm(false, false, tokens, dIn, dOut, 1f, gs, 0, dOut, w0t, 0, dIn, 0f, gx, 0, dIn);
        } else if (gx != null) {
            applyTransform(spec, params, true, du, tokens, gx); // Tᵀ·∂u
        }
        float[][] gradResidual = new float[spec.residualArrays()][];
        int r = spec.rank();
        switch (spec.residual()) {
            case LORA -> {
                float[] a = params.residual(0);
                float[] b = params.residual(1);
                float[] down = new float[tokens * r]; // x·Aᵀ
                Gemm.gemm(false, true, tokens, r, dIn, 1f, xs, 0, dIn, a, 0, dIn, 0f, down, 0, r);
                float[] up = new float[tokens * r]; // g·B
                Gemm.gemm(false, false, tokens, r, dOut, 1f, gs, 0, dOut, b, 0, r, 0f, up, 0, r);
                gradResidual[0] = new float[r * dIn];
                Gemm.gemm(true, false, r, dIn, tokens, s, up, 0, r, xs, 0, dIn, 0f, gradResidual[0], 0, dIn);
                gradResidual[1] = new float[dOut * r];
                Gemm.gemm(true, false, dOut, r, tokens, s, gs, 0, dOut, down, 0, r, 0f, gradResidual[1], 0, r);
                if (gx != null) {
                    Gemm.gemm(false, false, tokens, dIn, r, s, up, 0, r, a, 0, dIn, 1f, gx, 0, dIn);
                }
            }
            case TR -> {
                // y[ō] += s·tr(G(ō)·M), M = Σ_ī H(ī)·x[ī]; with N = Σ_ō g[ō]·G(ō): ∂G(ō) = s·g[ō]·Mᵀ,
                // ∂H(ī) = s·x[ī]·Nᵀ and ∂x[ī] = s·tr(N·H(ī))
                int rr = r * r;
                float[] outRing = RingProducts.output(spec, params);
                float[] inRing = RingProducts.input(spec, params);
                float[] m = new float[tokens * rr];
                Gemm.gemm(false, false, tokens, rr, dIn, 1f, xs, 0, dIn, inRing, 0, rr, 0f, m, 0, rr);
                float[] n = new float[tokens * rr];
                Gemm.gemm(false, false, tokens, rr, dOut, 1f, gs, 0, dOut, outRing, 0, rr, 0f, n, 0, rr);
                float[] mT = RingProducts.transposeEach(m, tokens, r);
                float[] nT = RingProducts.transposeEach(n, tokens, r);
                float[] gradOut = new float[dOut * rr];
                Gemm.gemm(true, false, dOut, rr, tokens, s, gs, 0, dOut, mT, 0, rr, 0f, gradOut, 0, rr);
                float[] gradIn = new float[dIn * rr];
                Gemm.gemm(true, false, dIn, rr, tokens, s, xs, 0, dIn, nT, 0, rr, 0f, gradIn, 0, rr);
                float[][] outCores = RingProducts.outputCoreGradients(spec, params, gradOut);
                float[][] inCores = RingProducts.inputCoreGradients(spec, params, gradIn);
                System.arraycopy(outCores, 0, gradResidual, 0, outCores.length);
                System.arraycopy(inCores, 0, gradResidual, outCores.length, inCores.length);
                if (gx != null) {
                    float[] inRingT = RingProducts.transposeEach(inRing, dIn, r);
                    Gemm.gemm(false, true, tokens, dIn, rr, s, n, 0, rr, inRingT, 0, rr, 1f, gx, 0, dIn);
                }
            }
            case TTM -> {
                float[] sg = new float[gs.length];
                for (int i = 0; i < sg.length; i++) {
                    sg[i] = s * gs[i];
                }
                float[][] grads = ringGradient(ttm(spec, params, false), xs, sg, tokens);
                System.arraycopy(grads, 0, gradResidual, 0, grads.length);
                if (gx != null) {
                    float[] back = new float[tokens * dIn];
                    ttm(spec, params, true).applyAll(sg, 0, tokens, back, 0); // s·Δᵀ·g
                    for (int i = 0; i < back.length; i++) {
                        gx[i] += back[i];
                    }
                }
            }
        }
        if (gx != null) {
            Parallel.inChunks(tokens, ROW_CHUNK, (from, to) ->
                    gradX.write(from * dIn, gx, from * dIn, (to - from) * dIn, WriteMode.ADD));
        }
        return TLoRAParameters.of(spec, gradTransform, gradResidual);
    }

    /** Σ_t ∂⟨w_t, M·v_t⟩/∂(each of its cores) of the ring operator M (not transposed), by GEMMs. */
    private static float[][] ringGradient(RingOperator op, float[] v, float[] w, int tokens) {
        return op.ringSize() == 1 ? op.kroneckerGradient(v, w, tokens) : op.ringGradient(v, w, tokens);
    }

    @Override
    protected void runMaterialize(TLoRASpec spec, TLoRAParameters params, HostArray w0, HostArray out) {
        int dIn = spec.dIn();
        float[] result = weight(spec, params, HostFloats.of(w0, spec.dOut() * dIn));
        Parallel.inChunks(spec.dOut(), ROW_CHUNK, (from, to) ->
                out.write(from * dIn, result, from * dIn, (to - from) * dIn, WriteMode.STORE));
    }

    /** W' = W0·T + s·Δ, a fresh d_out × d_in array, from W0's float32 values w. */
    private static float[] weight(TLoRASpec spec, TLoRAParameters params, float[] w) {
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        float[] result = new float[dOut * dIn];
        applyTransform(spec, params, true, w, dOut, result); // row p of W0·T is Tᵀ·(row p of W0)
        float s = spec.scale();
        switch (spec.residual()) {
            case LORA -> Gemm.gemm(false, false, dOut, dIn, spec.rank(), s, params.residual(1), 0, spec.rank(),
                    params.residual(0), 0, dIn, 1f, result, 0, dIn);
            case TR -> {
                int rr = spec.rank() * spec.rank();
                float[] inRingT = RingProducts.transposeEach(RingProducts.input(spec, params), dIn, spec.rank());
                Gemm.gemm(false, true, dOut, dIn, rr, s, RingProducts.output(spec, params), 0, rr, inRingT, 0, rr,
                        1f, result, 0, dIn);
            }
            case TTM -> {
                // row ō of Δ is Δᵀ·e_ō: the TTM operator transposed, on the rows of the identity
                float[] identity = new float[dOut * dOut];
                for (int o = 0; o < dOut; o++) {
                    identity[o * dOut + o] = 1f;
                }
                float[] delta = new float[dOut * dIn];
                ttm(spec, params, true).applyAll(identity, 0, dOut, delta, 0);
                for (int i = 0; i < result.length; i++) {
                    result[i] += s * delta[i];
                }
            }
        }
        return result;
    }

    /**
     * dst row t = T·(src row t), or Tᵀ· when transposed, for rows rows: through the ring, or through T's row
     * panels where {@link RingCost#throughPanels} says they cost less.
     */
    private static void applyTransform(TLoRASpec spec, TLoRAParameters params, boolean transposed, float[] src,
                                       int rows, float[] dst) {
        RingOperator op = transform(spec, params, transposed);
        if (RingCost.throughPanels(spec, rows, RING_SLOWDOWN)) {
            op.applyByPanels(src, 0, rows, dst, 0);
        } else {
            op.applyAll(src, 0, rows, dst, 0); // batches and threads itself
        }
    }

    /** T (or Tᵀ when transposed) over the input factors. */
    private static RingOperator transform(TLoRASpec spec, TLoRAParameters params, boolean transposed) {
        int[] shape = spec.inShape();
        return new RingOperator(shape, shape, spec.transformRank(), params.transformCores(), transposed);
    }

    /** The TTM residual's Δ (d_in → d_out), or Δᵀ (d_out → d_in) when transposed. */
    private static RingOperator ttm(TLoRASpec spec, TLoRAParameters params, boolean transposed) {
        return transposed ? new RingOperator(spec.inShape(), spec.outShape(), spec.rank(), params.residualArrays(), true)
                : new RingOperator(spec.outShape(), spec.inShape(), spec.rank(), params.residualArrays(), false);
    }
}
