package org.spectralpeft.foura.cpu;

import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.WriteMode;
import org.spectralpeft.cpu.Gemm;
import org.spectralpeft.cpu.HostFloats;
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
    /** At most this many tokens, with the native BLAS, go through matrix-vector products one token at a time. */
    private static final int GEMV_TOKENS = 4;
    /** Tokens per task of the forward, and of the backward's per-token pass (also the gate gradient's reduction order). */
    private static final int TOKEN_CHUNK = 16;
    /** Rows of ΔW per task of materialize and merge. */
    private static final int ROW_CHUNK = 16;
    /** Rows of ∂Â and ∂B̂ᵀ per task of the backward's products over all tokens. */
    private static final int PARAMETER_ROWS = 2;
    /** Rows of ΔW per call of materialize and merge with a BLAS that threads itself (bounds the scratch). */
    private static final int ROW_BLOCK = 256;
    /**
     * Tokens from which the backward computes x's and g's spectra in parallel: at r = 16, d = 4096 (2 cores)
     * forward + backward T = 8 0.38 → 0.32 ms and T = 16 0.43 → 0.40 ms, but T = 1 0.088 → 0.119 ms and T = 4
     * slightly slower, where handing a task over costs more than the transforms.
     */
    private static final int PARALLEL_SPECTRA_TOKENS = 8;

    /** The rank from which the DFT's backward multiplies on the half spectrum whatever T ({@link Folded#halvesBackward}). */
    private static final int HALF_BACKWARD_RANK = 64;

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
        return new Factors(spec, this, new Folded(spec, a, b, gate));
    }

    @Override
    protected void runForward(FouRAFactors factors, HostArray x, int tokens, HostArray y) {
        runCombine(new FouRAFactors[] {factors}, new float[] {1f}, x, tokens, y);
    }

    @Override
    protected void runCombine(FouRAFactors[] adapters, float[] weights, HostArray x, int tokens, HostArray y) {
        Folded[] folded = new Folded[adapters.length];
        for (int k = 0; k < adapters.length; k++) {
            folded[k] = ((Factors) adapters[k]).folded;
        }
        int dIn = adapters[0].spec().dIn();
        if (wholeProducts && tokens <= GEMV_TOKENS) {
            combineTokens(folded, weights, HostFloats.of(x, tokens * dIn), tokens, y);
        } else if (wholeProducts) {
            combineRange(folded, weights, HostFloats.of(x, tokens * dIn), x, y, 0, tokens, true);
        } else {
            Parallel.inChunks(tokens, TOKEN_CHUNK, (from, to) -> combineRange(folded, weights, null, x, y, from, to, false));
        }
    }

    /**
     * {@link #runCombine} for a few tokens with the native BLAS (decoding): per token two matrix-vector
     * products on the full factors, which read each factor once and start no threads.
     */
    private static void combineTokens(Folded[] folded, float[] weights, float[] xs, int tokens, HostArray y) {
        int dIn = folded[0].spec.dIn();
        int dOut = folded[0].spec.dOut();
        float[] own = HostFloats.wrapped(y);
        float[] ys = own != null ? own : new float[tokens * dOut];
        for (int t = 0; t < tokens; t++) {
            for (int k = 0; k < folded.length; k++) {
                Folded f = folded[k];
                float[] z = new float[f.width];
                float[] mask = new float[f.width];
                Gemm.gemv(false, f.width, dIn, 1f, f.aHat, 0, dIn, xs, t * dIn, 0f, z, 0);
                f.mask(z, 0, mask);
                f.applyGate(z, 0, mask, f.spec.alpha() * weights[k]);
                Gemm.gemv(false, dOut, f.width, 1f, f.bHat, 0, f.width, z, 0, own != null || k > 0 ? 1f : 0f, ys, t * dOut);
            }
        }
        if (own == null) {
            y.write(0, ys, tokens * dOut, WriteMode.ADD);
        }
    }

    /**
     * y[from..to) += Σ_k weight_k·adapter_k(x[from..to)): per adapter, z = Â·x, the gate, then B̂·w (on the
     * half spectrum where {@link Folded#halves} says so: from the folded x, and B̂'s half unfolded into y). xs:
     * all of x as float32, or null to read these rows; whole: the call covers all tokens at once. y's own float32
     * array accumulates the product directly where it can.
     */
    private static void combineRange(Folded[] folded, float[] weights, float[] xs, HostArray x, HostArray y,
                                     int from, int to, boolean whole) {
        int count = to - from;
        int dIn = folded[0].spec.dIn();
        int dOut = folded[0].spec.dOut();
        int xRow = xs != null ? from : 0;
        if (xs == null) {
            xs = new float[count * dIn];
            x.read(from * dIn, xs, count * dIn);
        }
        float[] xFolded = null; // the folded x, shared by every adapter on the half spectrum
        for (Folded f : folded) {
            if (f.halves(count, whole)) {
                xFolded = Spectra.fold(xs, xRow, count, dIn);
                break;
            }
        }
        float[] own = folded.length == 1 ? HostFloats.wrapped(y) : null;
        float[] ys = own != null ? own : new float[count * dOut];
        int yRow = own != null ? from : 0;
        for (int k = 0; k < folded.length; k++) {
            Folded f = folded[k];
            boolean half = f.halves(count, whole);
            float[] z = f.zScratch(count);
            f.project(xs, xRow, half ? xFolded : null, 0, count, z, 0, whole && count <= GEMV_TOKENS);
            float scale = f.spec.alpha() * weights[k];
            float[] mask = new float[f.width];
            for (int t = 0; t < count; t++) {
                f.mask(z, t * f.width, mask);
                f.applyGate(z, t * f.width, mask, scale);
            }
            f.expand(z, count, ys, yRow, own != null || k > 0, half);
        }
        if (own == null) {
            y.write(from * dOut, ys, count * dOut, WriteMode.ADD);
        }
    }

    @Override
    protected void runBackward(FouRAFactors factors, HostArray x, HostArray gradY, int tokens,
                               float[] gradA, float[] gradB, float[] gradGate, HostArray gradX) {
        Folded f = ((Factors) factors).folded;
        FouRASpec spec = f.spec;
        int width = f.width;
        float[] xs = HostFloats.of(x, tokens * spec.dIn());
        float[] gs = HostFloats.of(gradY, tokens * spec.dOut());
        boolean half = f.halvesBackward(tokens, wholeProducts);
        float[] xFolded = half ? Spectra.fold(xs, 0, tokens, spec.dIn()) : xs;
        float[] gFolded = half ? Spectra.fold(gs, 0, tokens, spec.dOut()) : gs;
        float[] ws = f.zScratch(tokens); // z, then the gated w that B̂ multiplies
        float[] dz = f.zScratch(tokens); // ∂L/∂w, then ∂L/∂z
        boolean adaptive = spec.gate() == FouRASpec.Gate.ADAPTIVE;
        float[][] gatePartials = new float[adaptive ? Parallel.chunks(tokens, TOKEN_CHUNK) : 0][];
        split(tokens, TOKEN_CHUNK, (from, to) -> {
            int count = to - from;
            boolean perToken = wholeProducts && count <= GEMV_TOKENS;
            f.project(xs, from, half ? xFolded : null, from, count, ws, from, perToken);
            f.projectOutputGradient(gs, half ? gFolded : null, from, count, dz, perToken);
            for (int c = from; c < to; c += TOKEN_CHUNK) { // the gate's partial sums in fixed chunks, also when whole
                int end = Math.min(to, c + TOKEN_CHUNK);
                float[] partial = adaptive ? new float[(int) spec.gateLength()] : null;
                float[] mask = new float[width];
                float[] work = adaptive ? new float[spec.rank() + width] : null;
                for (int t = c; t < end; t++) {
                    f.backwardToken(ws, dz, t * width, mask, partial, work);
                }
                if (adaptive) {
                    gatePartials[c / TOKEN_CHUNK] = partial;
                }
            }
        });
        // DFT with at most r tokens: ∂A and ∂B from the tokens' spectra (2T transforms), not through ∂Â and
        // ∂B̂ and the folds' adjoints (2r transforms whatever T)
        boolean fromTokens = f.dft && tokens <= spec.rank();
        float[] dAHat = null;
        float[] dBHatT = null;
        if (fromTokens) {
            gradientsFromSpectra(spec, xs, gs, dz, ws, tokens, gradA, gradB);
        } else {
            // ∂Â = (∂L/∂z)ᵀ·x and ∂B̂ᵀ = wᵀ·g (on the half spectrum: from the folded x and g), by rows of the result
            int hIn = half ? f.hIn : spec.dIn();
            int hOut = half ? f.hOut : spec.dOut();
            float[] dA = new float[width * hIn];
            float[] dB = new float[width * hOut];
            split(width, PARAMETER_ROWS, (c0, c1) -> {
                f.outer(tokens, dz, xFolded, hIn, dA, c0, c1, half);
                f.outer(tokens, ws, gFolded, hOut, dB, c0, c1, half);
            });
            dAHat = dA;
            dBHatT = dB;
        }
        if (gradX != null) { // after the products that read x and g: gradX may be either of them
            float[] own = HostFloats.wrapped(gradX); // a float32 array of its own is accumulated into directly
            split(tokens, TOKEN_CHUNK, (from, to) -> {
                int count = to - from;
                boolean perToken = wholeProducts && count <= GEMV_TOKENS;
                if (own != null) {
                    f.projectBack(dz, from, count, own, from, true, half, perToken);
                } else {
                    float[] gx = new float[count * spec.dIn()];
                    f.projectBack(dz, from, count, gx, 0, false, half, perToken);
                    gradX.write(from * spec.dIn(), gx, count * spec.dIn(), WriteMode.ADD);
                }
            });
        }
        if (!fromTokens) { // the two adjoints side by side, as the folds (Folded.refold)
            boolean rows = half || !f.dft; // else the full DFT layouts of FoldedFactors
            float[] dAHatRows = dAHat;
            float[] dBHatTRows = dBHatT;
            Parallel.inChunks(2, 1, (which, end) -> {
                if (which == 0) {
                    System.arraycopy(rows ? FoldedFactors.gradAFromRows(spec, dAHatRows)
                            : FoldedFactors.gradA(spec, dAHatRows), 0, gradA, 0, gradA.length);
                } else {
                    System.arraycopy(rows ? FoldedFactors.gradBFromRows(spec, dBHatTRows)
                            : FoldedFactors.gradBFromTransposed(spec, dBHatTRows), 0, gradB, 0, gradB.length);
                }
            });
        }
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
     * ∂A and ∂B of the DFT pair from the tokens' unitary spectra X̂ = DFT(x)/√d_in and Ĝ = DFT(g)/√d_out: since
     * Re z = A·Re X̂ and Im z = A·Im X̂, ∂A = ∂(Re z)ᵀ·Re X̂ + ∂(Im z)ᵀ·Im X̂; and since B̂ = conj(DFT(B))/√d_out,
     * ∂B = Re Ĝᵀ·w_Re − Im Ĝᵀ·w_Im (w the gated components B̂ multiplies, dz their gradient, both tokens × 2r).
     * Each is one GEMM over 2T terms: dz and w as 2T rows of r (every token's real parts, then every token's
     * imaginary parts) against the spectra laid out the same way per bin ({@link FoldedFactors#spectraByBin}), Ĝ
     * conjugated for the minus sign; the products land in ∂A and ∂B directly. The two sets of spectra are
     * independent, so from {@link #PARALLEL_SPECTRA_TOKENS} tokens they are computed side by side (at T = 16
     * each is one batched block: one core's work).
     */
    private static void gradientsFromSpectra(FouRASpec spec, float[] xs, float[] gs, float[] dz, float[] ws,
                                             int tokens, float[] gradA, float[] gradB) {
        int r = spec.rank();
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        float[][] spectra = new float[2][];
        if (tokens >= PARALLEL_SPECTRA_TOKENS) {
            Parallel.inChunks(2, 1, (which, end) -> spectra[which] = which == 0
                    ? FoldedFactors.spectraByBin(xs, tokens, dIn, false)
                    : FoldedFactors.spectraByBin(gs, tokens, dOut, true));
        } else {
            spectra[0] = FoldedFactors.spectraByBin(xs, tokens, dIn, false);
            spectra[1] = FoldedFactors.spectraByBin(gs, tokens, dOut, true);
        }
        float[] x = spectra[0];
        float[] g = spectra[1];
        Gemm.gemm(true, true, r, dIn, 2 * tokens, 1f, FoldedFactors.planar(dz, tokens, r), 0, r, x, 0, 2 * tokens,
                0f, gradA, 0, dIn);
        Gemm.gemm(false, false, dOut, r, 2 * tokens, 1f, g, 0, 2 * tokens, FoldedFactors.planar(ws, tokens, r), 0, r,
                0f, gradB, 0, r);
        FoldedFactors.release(x);
        FoldedFactors.release(g);
    }

    /** body over [0, count): in one call when the BLAS threads itself, else in fixed chunks on the fork-join pool. */
    private void split(int count, int chunk, Parallel.Range body) {
        if (wholeProducts) {
            body.run(0, count);
        } else {
            Parallel.inChunks(count, chunk, body);
        }
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
     * One layer's folded factors and gate parameters, refolded in place by an update (which, by
     * {@link FouRAFactors}'s rule, runs while no call uses them).
     *
     * <p>netlib's Java BLAS wants a whole leading dimension after the last row of every operand, even of a
     * window of columns; the factors and the scratch arrays read through windows (the DFT's imaginary halves)
     * carry that slack at their ends.
     */
    private static final class Folded {
        final FouRASpec spec;
        final int width;
        final boolean dft;
        /** Spectral columns of Â and rows of B̂ a product reads: ⌊d/2⌋ + 1 for the DFT ({@link Spectra}), d for the DCT. */
        final int hIn;
        final int hOut;
        /** Â, width × d_in, and B̂, d_out × width (FoldedFactors' layouts), each followed by width floats of slack. */
        final float[] aHat;
        final float[] bHat;
        /** The FIXED gate's mask, or null. */
        final float[] mask;
        /** The ADAPTIVE gate's G (r × r) then b (r), or null. */
        final float[] gate;

        Folded(FouRASpec spec, float[] a, float[] b, float[] gate) {
            this.spec = spec;
            this.dft = spec.transform() == FouRASpec.Transform.DFT;
            this.width = spec.zWidth();
            this.hIn = dft ? Spectra.bins(spec.dIn()) : spec.dIn();
            this.hOut = dft ? Spectra.bins(spec.dOut()) : spec.dOut();
            this.aHat = new float[width * spec.dIn() + width];
            this.bHat = new float[spec.dOut() * width + width];
            this.mask = spec.gate() == FouRASpec.Gate.FIXED ? new float[spec.rank()] : null;
            this.gate = spec.gate() == FouRASpec.Gate.ADAPTIVE ? new float[(int) spec.gateLength()] : null;
            refold(a, b, gate);
        }

        /**
         * The factors of new (checked) parameters, over the old ones: the folds of A and B side by side (at
         * r = 16, d = 4096 each is one batched block, one core's work), into the arrays already held (no
         * allocation, nothing for the collector, per optimizer step).
         */
        void refold(float[] a, float[] b, float[] gateParameters) {
            Parallel.inChunks(2, 1, (which, end) -> {
                if (which == 0) {
                    FoldedFactors.aHatInto(spec, a, aHat);
                } else {
                    FoldedFactors.bHatInto(spec, b, bHat);
                }
            });
            if (mask != null) {
                System.arraycopy(gateParameters, 0, mask, 0, mask.length);
            } else if (gate != null) {
                System.arraycopy(gateParameters, 0, gate, 0, gate.length);
            }
        }

        /** Room for z (or ∂L/∂z) of count tokens, width values each, with the slack for windows. */
        float[] zScratch(int count) {
            return new float[count * width + width];
        }

        /**
         * Whether products over this many tokens read only half of the DFT's spectrum ({@link Spectra}): half
         * the factor bytes and multiply-adds, for fold and unfold passes over the tokens. Measured on d = 4096
         * (bench/NOTES.md): with the native BLAS, whose products over many tokens are bound by the bytes of x
         * and y, it pays while 4·tokens ≤ r; with the Java BLAS, bound by multiply-adds, always.
         */
        boolean halves(int tokens, boolean wholeProducts) {
            return dft && (!wholeProducts || 4L * tokens <= spec.rank());
        }

        /**
         * {@link #halves} for the backward, whose five products over the tokens (z again, ∂L/∂w, ∂Â, ∂B̂ and
         * ∂x) against three fold and unfold passes make the half spectrum pay from r = {@link #HALF_BACKWARD_RANK}
         * at any T (d = 4096, AVX-512, two threads: r = 64, T = 256, 9.4 against 7.8 ms; T = 1024, 31.8 against
         * 29.4 ms), though not at r = 32 (5.7 against 6.0 ms) nor for the forward's two products.
         */
        boolean halvesBackward(int tokens, boolean wholeProducts) {
            return halves(tokens, wholeProducts) || dft && spec.rank() >= HALF_BACKWARD_RANK;
        }

        /**
         * z rows [zRow, zRow + count) = Â·x for tokens xRow.. of xs, or, when xFolded is not null (the half
         * spectrum), from its folded rows foldedRow.. ({@link Spectra#fold}); perToken: one matrix-vector product
         * per token (OpenBLAS's GEMM of a row or two spends longer starting threads than computing).
         */
        void project(float[] xs, int xRow, float[] xFolded, int foldedRow, int count, float[] z, int zRow,
                     boolean perToken) {
            int dIn = spec.dIn();
            if (perToken) {
                int r = spec.rank();
                int ld = 2 * hIn;
                for (int t = 0; t < count; t++) {
                    int zAt = (zRow + t) * width;
                    if (xFolded == null) {
                        Gemm.gemv(false, width, dIn, 1f, aHat, 0, dIn, xs, (xRow + t) * dIn, 0f, z, zAt);
                    } else {
                        int at = (foldedRow + t) * ld;
                        Gemm.gemv(false, r, hIn, 1f, aHat, 0, dIn, xFolded, at, 0f, z, zAt);
                        Gemm.gemv(false, r, hIn, 1f, aHat, r * dIn, dIn, xFolded, at + hIn, 0f, z, zAt + r);
                    }
                }
                return;
            }
            if (xFolded == null) {
                Gemm.gemm(false, true, count, width, dIn, 1f, xs, xRow * dIn, dIn, aHat, 0, dIn, 0f, z, zRow * width, width);
                return;
            }
            int r = spec.rank();
            int ld = 2 * hIn;
            Gemm.gemm(false, true, count, r, hIn, 1f, xFolded, foldedRow * ld, ld, aHat, 0, dIn, 0f, z, zRow * width, width);
            Gemm.gemm(false, true, count, r, hIn, 1f, xFolded, foldedRow * ld + hIn, ld, aHat, r * dIn, dIn,
                    0f, z, zRow * width + r, width);
        }

        /**
         * dz rows [from, from + count) = B̂ᵀ·g: from gs, or from the folded g when it is not null; perToken as in
         * {@link #project}.
         */
        void projectOutputGradient(float[] gs, float[] gFolded, int from, int count, float[] dz, boolean perToken) {
            int dOut = spec.dOut();
            int r = spec.rank();
            int ld = 2 * hOut;
            if (perToken) {
                for (int t = from; t < from + count; t++) {
                    if (gFolded == null) {
                        Gemm.gemv(true, dOut, width, 1f, bHat, 0, width, gs, t * dOut, 0f, dz, t * width);
                    } else {
                        Gemm.gemv(true, hOut, r, 1f, bHat, 0, width, gFolded, t * ld, 0f, dz, t * width);
                        Gemm.gemv(true, hOut, r, 1f, bHat, r, width, gFolded, t * ld + hOut, 0f, dz, t * width + r);
                    }
                }
                return;
            }
            if (gFolded == null) {
                Gemm.gemm(false, false, count, width, dOut, 1f, gs, from * dOut, dOut, bHat, 0, width, 0f, dz, from * width, width);
                return;
            }
            Gemm.gemm(false, false, count, r, hOut, 1f, gFolded, from * ld, ld, bHat, 0, width, 0f, dz, from * width, width);
            Gemm.gemm(false, false, count, r, hOut, 1f, gFolded, from * ld + hOut, ld, bHat, r, width,
                    0f, dz, from * width + r, width);
        }

        /** ys rows [yRow, yRow + count) = (or += when accumulate) B̂·w for w's first count tokens. */
        void expand(float[] w, int count, float[] ys, int yRow, boolean accumulate, boolean half) {
            int dOut = spec.dOut();
            if (!half) {
                Gemm.gemm(false, true, count, dOut, width, 1f, w, 0, width, bHat, 0, width, accumulate ? 1f : 0f,
                        ys, yRow * dOut, dOut);
                return;
            }
            int r = spec.rank();
            float[] uv = new float[count * 2 * hOut + hOut];
            Gemm.gemm(false, true, count, hOut, r, 1f, w, 0, width, bHat, 0, width, 0f, uv, 0, 2 * hOut);
            Gemm.gemm(false, true, count, hOut, r, 1f, w, r, width, bHat, r, width, 0f, uv, hOut, 2 * hOut);
            Spectra.unfold(uv, count, dOut, ys, yRow, accumulate);
        }

        /**
         * Rows [gxRow, gxRow + count) of gx (rows of d_in) = ∂L/∂z·Â for dz rows [from, from + count), or += when
         * accumulate; perToken as in {@link #project}.
         */
        void projectBack(float[] dz, int from, int count, float[] gx, int gxRow, boolean accumulate, boolean half,
                         boolean perToken) {
            int dIn = spec.dIn();
            int r = spec.rank();
            float beta = accumulate ? 1f : 0f;
            if (!half) {
                if (perToken) {
                    for (int t = 0; t < count; t++) {
                        Gemm.gemv(true, width, dIn, 1f, aHat, 0, dIn, dz, (from + t) * width, beta, gx, (gxRow + t) * dIn);
                    }
                } else {
                    Gemm.gemm(false, false, count, dIn, width, 1f, dz, from * width, width, aHat, 0, dIn, beta, gx,
                            gxRow * dIn, dIn);
                }
                return;
            }
            float[] uv = new float[count * 2 * hIn + hIn];
            if (perToken) {
                for (int t = 0; t < count; t++) {
                    int at = (from + t) * width;
                    Gemm.gemv(true, r, hIn, 1f, aHat, 0, dIn, dz, at, 0f, uv, t * 2 * hIn);
                    Gemm.gemv(true, r, hIn, 1f, aHat, r * dIn, dIn, dz, at + r, 0f, uv, t * 2 * hIn + hIn);
                }
            } else {
                Gemm.gemm(false, false, count, hIn, r, 1f, dz, from * width, width, aHat, 0, dIn, 0f, uv, 0, 2 * hIn);
                Gemm.gemm(false, false, count, hIn, r, 1f, dz, from * width + r, width, aHat, r * dIn, dIn,
                        0f, uv, hIn, 2 * hIn);
            }
            Spectra.unfold(uv, count, dIn, gx, gxRow, accumulate);
        }

        /**
         * Rows [c0, c1) of out (width × h) = leftᵀ·right over all tokens: left is tokens × width (∂L/∂z or w),
         * right tokens × h (x or g, h = d) or, for the half spectrum, the folded tokens × 2h (real rows take the
         * even halves, imaginary rows the odd ones).
         */
        void outer(int tokens, float[] left, float[] right, int h, float[] out, int c0, int c1, boolean half) {
            if (!half) {
                Gemm.gemm(true, false, c1 - c0, h, tokens, 1f, left, c0, width, right, 0, h, 0f, out, c0 * h, h);
                return;
            }
            int r = spec.rank();
            if (c0 < r) {
                int end = Math.min(c1, r);
                Gemm.gemm(true, false, end - c0, h, tokens, 1f, left, c0, width, right, 0, 2 * h, 0f, out, c0 * h, h);
            }
            if (c1 > r) {
                int begin = Math.max(c0, r);
                Gemm.gemm(true, false, c1 - begin, h, tokens, 1f, left, begin, width, right, h, 2 * h,
                        0f, out, begin * h, h);
            }
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

    /** The CPU's factors: a {@link Folded}, refolded in place on update. */
    private static final class Factors extends FouRAFactors {
        private volatile Folded folded;

        Factors(FouRASpec spec, CpuFouRA owner, Folded folded) {
            super(spec, owner);
            this.folded = folded;
        }

        @Override
        protected void recompute(float[] a, float[] b, float[] gate) {
            folded.refold(a, b, gate);
        }

        @Override
        protected void release() {
            folded = null;
        }
    }
}
