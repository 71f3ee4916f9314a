package org.spectralpeft.foura.cpu;

import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.WriteMode;
import org.spectralpeft.cpu.Gemm;
import org.spectralpeft.cpu.Parallel;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.ValidatingBackend;

/**
 * The CPU FouRA backend: the folded factors (DESIGN.md) from JTransforms, then GEMMs through {@link Gemm}
 * around a per-token gate. With the native BLAS, which threads each call itself, every product covers all
 * tokens in one call; with netlib's Java BLAS, the work is split into fixed chunks of tokens, rows or columns
 * on the common fork-join pool. The chunks never depend on the number of threads, and the one reduction over
 * tokens outside a GEMM (the ADAPTIVE gate's gradient) sums per-chunk partials in chunk order, so results
 * repeat bit for bit.
 *
 * <p>Layouts of the folded factors ({@link FoldedFactors}): Â has {@code width} = 2r rows for the DFT (real
 * parts, then imaginary parts) or r for the DCT; B̂ has {@code width} columns likewise. Per token the forward
 * is z = Â·x (width values), w = α·m ⊙ [Re z, −Im z] (DFT) or α·m ⊙ z (DCT), y += B̂·w.
 */
public final class CpuFouRA extends ValidatingBackend {
    /** Tokens per task of the forward, and of the backward's per-token pass (also the gate gradient's reduction order). */
    private static final int TOKEN_CHUNK = 16;
    /** Rows of Â per task of a forward on at most {@link #TOKEN_CHUNK} tokens. */
    private static final int FACTOR_ROWS_PER_TASK = 8;
    /** Rows of B̂ (outputs) per task of a forward on at most {@link #TOKEN_CHUNK} tokens. */
    private static final int OUTPUT_ROWS_PER_TASK = 512;
    /** Rows of ΔW per task of materialize and merge. */
    private static final int ROW_CHUNK = 16;
    /** Columns of ∂Â, or rows of ∂B̂, per task of the backward's GEMMs over all tokens. */
    private static final int PARAMETER_CHUNK = 256;
    /** Rows of ΔW per call of materialize and merge with a BLAS that threads itself (bounds the scratch). */
    private static final int ROW_BLOCK = 256;

    /** Whether each product covers all tokens in one call (for a BLAS that threads itself), else fixed chunks. */
    private final boolean wholeProducts;

    /** A backend that splits work the way the BLAS in use ({@link Gemm#implementation()}) runs fastest. */
    public CpuFouRA() {
        this(Gemm.threadsItself());
    }

    /**
     * A backend with the given split of work, whatever the BLAS (tests run both with either).
     *
     * @param wholeProducts each product over all tokens in one call, or fixed chunks on the fork-join pool
     */
    CpuFouRA(boolean wholeProducts) {
        this.wholeProducts = wholeProducts;
    }

    @Override
    public String description() {
        return "cpu (" + Runtime.getRuntime().availableProcessors() + " threads, JTransforms, " + Gemm.implementation() + ")";
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
    protected FouRAFactors runPrepare(FouRASpec spec, float[] a, float[] b, float[] gate) {
        return new Factors(spec, this, Folded.of(spec, a, b, gate));
    }

    @Override
    protected void runForward(FouRAFactors factors, HostArray x, int tokens, HostArray y) {
        runCombine(new FouRAFactors[] {factors}, new float[] {1f}, x, tokens, y);
    }

    @Override
    protected void runCombine(FouRAFactors[] adapters, float[] weights, HostArray x, int tokens, HostArray y) {
        Folded[] folded = new Folded[adapters.length];
        int widest = 0;
        for (int k = 0; k < adapters.length; k++) {
            folded[k] = ((Factors) adapters[k]).folded;
            widest = Math.max(widest, folded[k].width);
        }
        int dIn = adapters[0].spec().dIn();
        int dOut = adapters[0].spec().dOut();
        if (wholeProducts) {
            combineWhole(folded, weights, x, tokens, y);
            return;
        }
        if (tokens <= TOKEN_CHUNK) {
            combineFewTokens(folded, weights, x, tokens, y);
            return;
        }
        int zWidth = widest;
        Parallel.inChunks(tokens, TOKEN_CHUNK, (from, to) -> {
            int count = to - from;
            float[] xs = new float[count * dIn];
            float[] zs = new float[count * zWidth];
            float[] ys = new float[count * dOut];
            float[] mask = new float[zWidth];
            x.read(from * dIn, xs, count * dIn);
            for (int k = 0; k < folded.length; k++) {
                Folded f = folded[k];
                Gemm.gemm(false, true, count, f.width, dIn, 1f, xs, 0, dIn, f.aHat, 0, dIn, 0f, zs, 0, f.width);
                float scale = f.spec.alpha() * weights[k];
                for (int t = 0; t < count; t++) {
                    f.mask(zs, t * f.width, mask);
                    f.applyGate(zs, t * f.width, mask, scale);
                }
                Gemm.gemm(false, true, count, dOut, f.width, 1f, zs, 0, f.width, f.bHat, 0, f.width,
                        k == 0 ? 0f : 1f, ys, 0, dOut);
            }
            y.write(from * dOut, ys, count * dOut, WriteMode.ADD);
        });
    }

    /**
     * {@link #runCombine} with a BLAS that threads each call itself: each product over all tokens in one call
     * (split across threads of ours as well, its threads would only compete), the gate in token chunks
     * between them. y's own float32 array accumulates the products directly.
     */
    private static void combineWhole(Folded[] folded, float[] weights, HostArray x, int tokens, HostArray y) {
        int dIn = folded[0].spec.dIn();
        int dOut = folded[0].spec.dOut();
        float[] xs = floats(x);
        float[] own = ownFloats(y);
        float[] ys = own != null ? own : new float[tokens * dOut];
        for (int k = 0; k < folded.length; k++) {
            Folded f = folded[k];
            float[] z = new float[tokens * f.width];
            Gemm.gemm(false, true, tokens, f.width, dIn, 1f, xs, 0, dIn, f.aHat, 0, dIn, 0f, z, 0, f.width);
            float scale = f.spec.alpha() * weights[k];
            Parallel.inChunks(tokens, TOKEN_CHUNK, (from, to) -> {
                float[] mask = new float[f.width];
                for (int t = from; t < to; t++) {
                    f.mask(z, t * f.width, mask);
                    f.applyGate(z, t * f.width, mask, scale);
                }
            });
            Gemm.gemm(false, true, tokens, dOut, f.width, 1f, z, 0, f.width, f.bHat, 0, f.width,
                    own != null || k > 0 ? 1f : 0f, ys, 0, dOut);
        }
        if (own == null) {
            Parallel.inChunks(tokens, TOKEN_CHUNK, (from, to) ->
                    y.write(from * dOut, ys, from * dOut, (to - from) * dOut, WriteMode.ADD));
        }
    }

    /**
     * {@link #runCombine} for a batch too small to split by tokens (decoding): the same GEMMs split by the
     * factors' rows instead, so that every core reads its share of Â and B̂ (the bytes that bound this case).
     */
    private static void combineFewTokens(Folded[] folded, float[] weights, HostArray x, int tokens, HostArray y) {
        int dIn = folded[0].spec.dIn();
        int dOut = folded[0].spec.dOut();
        float[] xs = new float[tokens * dIn];
        x.read(0, xs, tokens * dIn);
        float[][] ws = new float[folded.length][];
        for (int k = 0; k < folded.length; k++) {
            Folded f = folded[k];
            int width = f.width;
            float[] z = new float[tokens * width];
            Parallel.inChunks(width, FACTOR_ROWS_PER_TASK, (from, to) -> {
                int n = to - from;
                float[] part = new float[tokens * n];
                Gemm.gemm(false, true, tokens, n, dIn, 1f, xs, 0, dIn, f.aHat, from * dIn, dIn, 0f, part, 0, n);
                for (int t = 0; t < tokens; t++) {
                    System.arraycopy(part, t * n, z, t * width + from, n);
                }
            });
            float[] mask = new float[width];
            float scale = f.spec.alpha() * weights[k];
            for (int t = 0; t < tokens; t++) {
                f.mask(z, t * width, mask);
                f.applyGate(z, t * width, mask, scale);
            }
            ws[k] = z;
        }
        Parallel.inChunks(dOut, OUTPUT_ROWS_PER_TASK, (from, to) -> {
            int n = to - from;
            float[] part = new float[tokens * n];
            for (int k = 0; k < folded.length; k++) {
                Folded f = folded[k];
                Gemm.gemm(false, true, tokens, n, f.width, 1f, ws[k], 0, f.width, f.bHat, from * f.width, f.width,
                        k == 0 ? 0f : 1f, part, 0, n);
            }
            for (int t = 0; t < tokens; t++) {
                y.write(t * dOut + from, part, t * n, n, WriteMode.ADD);
            }
        });
    }

    @Override
    protected void runBackward(FouRAFactors factors, HostArray x, HostArray gradY, int tokens,
                               float[] gradA, float[] gradB, float[] gradGate, HostArray gradX) {
        Folded f = ((Factors) factors).folded;
        FouRASpec spec = f.spec;
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        int width = f.width;
        float[] xs = floats(x);
        float[] gs = floats(gradY);
        float[] ws = new float[tokens * width];  // w, the gated values B̂ multiplies
        float[] dz = new float[tokens * width];  // ∂L/∂z
        boolean adaptive = spec.gate() == FouRASpec.Gate.ADAPTIVE;
        float[][] gatePartials = new float[adaptive ? Parallel.chunks(tokens, TOKEN_CHUNK) : 0][];
        float[] dAHat = new float[width * dIn];
        float[] dBHat = new float[dOut * width];
        if (wholeProducts) {
            // each product over all tokens in one call, the per-token gate between them
            Gemm.gemm(false, true, tokens, width, dIn, 1f, xs, 0, dIn, f.aHat, 0, dIn, 0f, ws, 0, width);
            Gemm.gemm(false, false, tokens, width, dOut, 1f, gs, 0, dOut, f.bHat, 0, width, 0f, dz, 0, width);
            Parallel.inChunks(tokens, TOKEN_CHUNK, (from, to) -> gatePartials(f, ws, dz, from, to, gatePartials));
            Gemm.gemm(true, false, width, dIn, tokens, 1f, dz, 0, width, xs, 0, dIn, 0f, dAHat, 0, dIn);
            Gemm.gemm(true, false, dOut, width, tokens, 1f, gs, 0, dOut, ws, 0, width, 0f, dBHat, 0, width);
            if (gradX != null) { // after the products that read x and g: gradX may be either of them
                float[] own = ownFloats(gradX);
                float[] gx = own != null ? own : new float[tokens * dIn];
                Gemm.gemm(false, false, tokens, dIn, width, 1f, dz, 0, width, f.aHat, 0, dIn,
                        own != null ? 1f : 0f, gx, 0, dIn);
                if (own == null) {
                    Parallel.inChunks(tokens, TOKEN_CHUNK, (from, to) ->
                            gradX.write(from * dIn, gx, from * dIn, (to - from) * dIn, WriteMode.ADD));
                }
            }
        } else {
            backwardInChunks(f, xs, gs, tokens, ws, dz, gatePartials, gradX, dAHat, dBHat);
        }
        System.arraycopy(FoldedFactors.gradA(spec, dAHat), 0, gradA, 0, gradA.length);
        System.arraycopy(FoldedFactors.gradB(spec, dBHat), 0, gradB, 0, gradB.length);
        if (gradGate != null) {
            java.util.Arrays.fill(gradGate, 0f);
            for (float[] partial : gatePartials) {
                for (int i = 0; i < gradGate.length; i++) {
                    gradGate[i] += partial[i];
                }
            }
        }
    }

    /**
     * The per-token part of the backward for tokens [from, to): on entry ws holds z and dz holds B̂ᵀ·g; on
     * exit the gated w and ∂L/∂z; the ADAPTIVE gate's parameter gradient of these tokens goes to
     * gatePartials[from / TOKEN_CHUNK].
     */
    private static void gatePartials(Folded f, float[] ws, float[] dz, int from, int to, float[][] gatePartials) {
        boolean adaptive = gatePartials.length > 0;
        float[] partial = adaptive ? new float[(int) f.spec.gateLength()] : null;
        float[] mask = new float[f.width];
        float[] work = adaptive ? new float[f.spec.rank() + f.width] : null;
        for (int t = from; t < to; t++) {
            f.backwardToken(ws, dz, t * f.width, mask, partial, work);
        }
        if (adaptive) {
            gatePartials[from / TOKEN_CHUNK] = partial;
        }
    }

    /** The GEMMs of {@link #runBackward} in fixed chunks on the fork-join pool (for netlib's Java BLAS). */
    private static void backwardInChunks(Folded f, float[] xs, float[] gs, int tokens, float[] ws, float[] dz,
                                         float[][] gatePartials, HostArray gradX, float[] dAHat, float[] dBHat) {
        int dIn = f.spec.dIn();
        int dOut = f.spec.dOut();
        int width = f.width;
        Parallel.inChunks(tokens, TOKEN_CHUNK, (from, to) -> {
            int count = to - from;
            Gemm.gemm(false, true, count, width, dIn, 1f, xs, from * dIn, dIn, f.aHat, 0, dIn, 0f, ws, from * width, width);
            Gemm.gemm(false, false, count, width, dOut, 1f, gs, from * dOut, dOut, f.bHat, 0, width, 0f, dz, from * width, width);
            gatePartials(f, ws, dz, from, to, gatePartials);
            if (gradX != null) {
                float[] gx = new float[count * dIn];
                Gemm.gemm(false, false, count, dIn, width, 1f, dz, from * width, width, f.aHat, 0, dIn, 0f, gx, 0, dIn);
                gradX.write(from * dIn, gx, count * dIn, WriteMode.ADD);
            }
        });
        Parallel.inChunks(dIn, PARAMETER_CHUNK, (from, to) -> Gemm.gemm(true, false, width, to - from, tokens, 1f,
                dz, 0, width, columns(xs, tokens, dIn, from, to), 0, to - from, 0f, dAHat, from, dIn));
        Parallel.inChunks(dOut, PARAMETER_CHUNK, (from, to) -> Gemm.gemm(true, false, to - from, width, tokens, 1f,
                columns(gs, tokens, dOut, from, to), 0, to - from, ws, 0, width, 0f, dBHat, from * width, width));
    }

    @Override
    protected void runMaterialize(FouRAFactors factors, HostArray out) {
        writeDeltaW(((Factors) factors).folded, out, WriteMode.STORE);
    }

    @Override
    protected void runMerge(FouRAFactors factors, HostArray weight, boolean subtract) {
        writeDeltaW(((Factors) factors).folded, weight, subtract ? WriteMode.SUBTRACT : WriteMode.ADD);
    }

    /** ΔW = B̂·diag(α·m')·Â, by blocks of rows, into dst per mode (m' = [m, −m] for the DFT). */
    private void writeDeltaW(Folded f, HostArray dst, WriteMode mode) {
        int dIn = f.spec.dIn();
        int dOut = f.spec.dOut();
        int width = f.width;
        float[] gated = new float[width];
        f.mask(null, 0, gated);
        float[] scaledB = f.bHat.clone();
        for (int p = 0; p < dOut; p++) {
            f.applyGate(scaledB, p * width, gated, f.spec.alpha());
        }
        Parallel.Range rows = (from, to) -> {
            float[] block = new float[(to - from) * dIn];
            Gemm.gemm(false, false, to - from, dIn, width, 1f, scaledB, from * width, width, f.aHat, 0, dIn, 0f, block, 0, dIn);
            dst.write(from * dIn, block, (to - from) * dIn, mode);
        };
        if (wholeProducts) {
            for (int from = 0; from < dOut; from += ROW_BLOCK) { // one block at a time, each call threaded
                rows.run(from, Math.min(dOut, from + ROW_BLOCK));
            }
        } else {
            Parallel.inChunks(dOut, ROW_CHUNK, rows);
        }
    }

    /**
     * Columns [from, to) of a rows × cols row-major matrix, packed. (The BLAS wants a whole leading dimension
     * after the last row of an operand, which a window of columns inside the caller's array lacks.)
     */
    private static float[] columns(float[] m, int rows, int cols, int from, int to) {
        int width = to - from;
        float[] out = new float[rows * width];
        for (int t = 0; t < rows; t++) {
            System.arraycopy(m, t * cols + from, out, t * width, width);
        }
        return out;
    }

    /** The float32 array {@code a} wraps, to accumulate into directly, or null when it wraps none. */
    private static float[] ownFloats(HostArray a) {
        if (a.dtype() != DType.FLOAT32 || a.isDirect()) {
            return null;
        }
        try {
            return a.floats();
        } catch (IllegalStateException heapBuffer) {
            return null;
        }
    }

    /** The values of {@code a} as float32: its own array when it wraps one, else a copy. */
    private static float[] floats(HostArray a) {
        if (a.dtype() == DType.FLOAT32 && !a.isDirect()) {
            try {
                return a.floats();
            } catch (IllegalStateException heapBuffer) {
                // a float32 heap buffer, not an array: copied below
            }
        }
        float[] out = new float[a.length()];
        a.read(0, out, a.length());
        return out;
    }

    /** One layer's folded factors and gate parameters; replaced whole by an update, so a call sees one version. */
    private static final class Folded {
        final FouRASpec spec;
        final int width;
        final boolean dft;
        final float[] aHat;
        final float[] bHat;
        /** The FIXED gate's mask, or null. */
        final float[] mask;
        /** The ADAPTIVE gate's G (r × r) then b (r), or null. */
        final float[] gate;

        private Folded(FouRASpec spec, float[] aHat, float[] bHat, float[] mask, float[] gate) {
            this.spec = spec;
            this.dft = spec.transform() == FouRASpec.Transform.DFT;
            this.width = (dft ? 2 : 1) * spec.rank();
            this.aHat = aHat;
            this.bHat = bHat;
            this.mask = mask;
            this.gate = gate;
        }

        static Folded of(FouRASpec spec, float[] a, float[] b, float[] gate) {
            return new Folded(spec, FoldedFactors.aHat(spec, a), FoldedFactors.bHat(spec, b),
                    spec.gate() == FouRASpec.Gate.FIXED ? gate.clone() : null,
                    spec.gate() == FouRASpec.Gate.ADAPTIVE ? gate.clone() : null);
        }

        /** m (r values) of the token whose z starts at z[at]; z is not read unless the gate is ADAPTIVE. */
        void mask(float[] z, int at, float[] m) {
            int r = spec.rank();
            if (mask != null) {
                System.arraycopy(mask, 0, m, 0, r);
            } else if (gate == null) {
                java.util.Arrays.fill(m, 0, r, 1f);
            } else {
                for (int i = 0; i < r; i++) {
                    m[i] = logit(z, at, i) >= 0f ? 1f : 0f; // σ(logit) ≥ ½
                }
            }
        }

        /** logit_i = Σ_j G_ij·|z_j| + b_i of the ADAPTIVE gate. */
        private float logit(float[] z, int at, int i) {
            int r = spec.rank();
            float sum = gate[r * r + i];
            for (int j = 0; j < r; j++) {
                sum += gate[i * r + j] * magnitude(z, at, j);
            }
            return sum;
        }

        private float magnitude(float[] z, int at, int j) {
            return dft ? (float) Math.hypot(z[at + j], z[at + spec.rank() + j]) : Math.abs(z[at + j]);
        }

        /** In place: v ← scale·m' ⊙ v over one token's width values (m' = [m, −m] for the DFT). */
        void applyGate(float[] v, int at, float[] m, float scale) {
            int r = spec.rank();
            for (int i = 0; i < r; i++) {
                v[at + i] *= scale * m[i];
                if (dft) {
                    v[at + r + i] *= -scale * m[i];
                }
            }
        }

        /**
         * One token of the backward: on entry w[at..] holds z and dz[at..] holds ∂L/∂w = B̂ᵀ·g; on exit w
         * holds the gated w and dz holds ∂L/∂z, with the ADAPTIVE gate's straight-through terms, whose
         * parameter gradient is added to gatePartial. work: r + width floats (ADAPTIVE only), reused.
         */
        void backwardToken(float[] w, float[] dz, int at, float[] m, float[] gatePartial, float[] work) {
            int r = spec.rank();
            float alpha = spec.alpha();
            if (gate == null) {
                mask(w, at, m);
                applyGate(dz, at, m, alpha);
                applyGate(w, at, m, alpha);
                return;
            }
            // work: ∂L/∂logit (r), then the straight-through terms of ∂L/∂z (width); each logit computed once
            int dLogit = 0;
            int extra = r;
            for (int i = 0; i < r; i++) {
                float l = logit(w, at, i);
                m[i] = l >= 0f ? 1f : 0f; // σ(logit) ≥ ½, as mask() decides it
                float dm = dz[at + i] * w[at + i];
                if (dft) {
                    dm -= dz[at + r + i] * w[at + r + i];
                }
                double e = Math.exp(-Math.abs(l)); // σ' = σ(l)·σ(−l) = e/(1+e)², no 1 − σ
                work[dLogit + i] = (float) (alpha * dm * e / ((1 + e) * (1 + e)));
            }
            for (int i = 0; i < r; i++) {
                gatePartial[r * r + i] += work[dLogit + i];
                for (int j = 0; j < r; j++) {
                    gatePartial[i * r + j] += work[dLogit + i] * magnitude(w, at, j);
                }
            }
            // |z_j| feels the gate: ∂L/∂z_j gains s_j·z_j/|z_j| with s_j = Σ_i ∂L/∂logit_i·G_ij
            java.util.Arrays.fill(work, extra, extra + width, 0f);
            for (int j = 0; j < r; j++) {
                float s = 0f;
                for (int i = 0; i < r; i++) {
                    s += work[dLogit + i] * gate[i * r + j];
                }
                float abs = magnitude(w, at, j);
                if (abs > 0f) {
                    work[extra + j] = s * w[at + j] / abs;
                    if (dft) {
                        work[extra + r + j] = s * w[at + r + j] / abs;
                    }
                }
            }
            applyGate(dz, at, m, alpha);
            applyGate(w, at, m, alpha);
            for (int c = 0; c < width; c++) {
                dz[at + c] += work[extra + c];
            }
        }
    }

    /** The CPU's factors: a {@link Folded} swapped whole on update. */
    private static final class Factors extends FouRAFactors {
        private volatile Folded folded;

        Factors(FouRASpec spec, CpuFouRA owner, Folded folded) {
            super(spec, owner);
            this.folded = folded;
        }

        @Override
        protected void recompute(float[] a, float[] b, float[] gate) {
            folded = Folded.of(spec(), a, b, gate);
        }

        @Override
        protected void release() {
            folded = null;
        }
    }
}
