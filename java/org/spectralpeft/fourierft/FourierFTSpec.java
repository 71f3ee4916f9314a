package org.spectralpeft.fourierft;

import java.util.HashMap;
import java.util.Map;
import org.spectralpeft.core.Checks;

/**
 * One FourierFT layer shape and its spectral index set, validated once and shared by every backend.
 *
 * <p>W0 is d_out × d_in (row p = output feature, column q = input feature) and, with coefficients c,
 * {@code ΔW[p,q] = s · Σ_l c_l · cos(2π(p·j_l/d_out + q·k_l/d_in))}, {@code s = alpha/(d_out·d_in)}:
 * Hugging Face PEFT's {@code ifft2(dense_spectrum).real * scaling}. Layers that share a shape and a
 * seed share the index set, so one spec serves a whole batch of layers.
 *
 * <p>Construction precomputes the per-bin groupings the kernels use ({@link SpectralGrouping}): the
 * Hermitian half spectrum for materializing, the output-bin grouping of the unmaterialized forward,
 * its transpose for ∂L/∂x, and the gather positions of ∂L/∂c. Immutable and thread-safe.
 */
public final class FourierFTSpec {
    /** PEFT's default {@code scaling}. */
    public static final float DEFAULT_SCALING = 150f;
    /** PEFT's default {@code random_loc_seed}. */
    public static final long DEFAULT_SEED = 777L;

    private final int dOut;
    private final int dIn;
    private final int[] rows;
    private final int[] cols;
    private final float alpha;

    private final SpectralGrouping halfSpectrum;
    private final SpectrumColumns halfSpectrumColumns;
    /** ΔWᵀ's spec, built on first use (CPU materialize takes it for every call where ΔW's columns are batched). */
    private volatile FourierFTSpec transposedSpec;
    private final SpectralGrouping forward;
    private final SpectralGrouping transposed;
    private final int[] deltaGradBin;
    private final int[] xBin;
    private final int[] gyBin;
    private final float[] imSign;
    private final int hash;
    /** {@link #indexSetHashCode()}, computed once: a backend looks it up per call. */
    private final int indexSetHash;

    private FourierFTSpec(int dOut, int dIn, int[] rows, int[] cols, float alpha) {
        this.dOut = dOut;
        this.dIn = dIn;
        this.rows = rows;
        this.cols = cols;
        this.alpha = alpha;
        this.hash = hash(dOut, dIn, rows, cols, alpha);
        this.indexSetHash = hash(dOut, dIn, rows, cols, Float.NaN);
        this.halfSpectrum = buildHalfSpectrum();
        this.halfSpectrumColumns = SpectrumColumns.of(dOut, halfIn(), halfSpectrum);
        this.forward = buildForward(dOut, rows, dIn, cols);
        this.transposed = buildForward(dIn, cols, dOut, rows);
        int n = rows.length;
        this.deltaGradBin = new int[n];
        this.xBin = new int[n];
        this.gyBin = new int[n];
        this.imSign = new float[n];
        int h = halfIn();
        for (int l = 0; l < n; l++) {
            int j = rows[l];
            int k = cols[l];
            deltaGradBin[l] = k <= dIn / 2 ? j * h + k : ((dOut - j) % dOut) * h + (dIn - k);
            // X[k] = conj(R[k]) in the stored half, R[d-k] beyond it; likewise for the gradient of y.
            xBin[l] = k <= dIn / 2 ? k : dIn - k;
            gyBin[l] = j <= dOut / 2 ? j : dOut - j;
            float sx = k <= dIn / 2 ? -1f : 1f;
            float sy = j <= dOut / 2 ? -1f : 1f;
            imSign[l] = sx * sy;
        }
    }

    /** The same index set under another alpha, sharing every table (nothing depends on alpha but the scale). */
    private FourierFTSpec(FourierFTSpec base, float alpha) {
        this.dOut = base.dOut;
        this.dIn = base.dIn;
        this.rows = base.rows;
        this.cols = base.cols;
        this.alpha = alpha;
        this.hash = hash(dOut, dIn, rows, cols, alpha);
        this.indexSetHash = base.indexSetHash;
        this.halfSpectrum = base.halfSpectrum;
        this.halfSpectrumColumns = base.halfSpectrumColumns;
        this.forward = base.forward;
        this.transposed = base.transposed;
        this.deltaGradBin = base.deltaGradBin;
        this.xBin = base.xBin;
        this.gyBin = base.gyBin;
        this.imSign = base.imSign;
    }

    private static int hash(int dOut, int dIn, int[] rows, int[] cols, float alpha) {
        return 31 * (31 * (31 * dOut + dIn) + Float.floatToIntBits(alpha))
                + 31 * java.util.Arrays.hashCode(rows) + java.util.Arrays.hashCode(cols);
    }

    /**
     * This spec with another alpha: the same shape and index set, sharing this one's tables (a copy costs no
     * grouping).
     *
     * @param alpha PEFT's {@code scaling}, finite
     * @return this where alpha is the same (bit for bit), else the new spec
     * @throws IllegalArgumentException if alpha is not finite
     */
    public FourierFTSpec withAlpha(float alpha) {
        if (!Float.isFinite(alpha)) {
            throw new IllegalArgumentException("alpha (scaling) must be finite, got " + alpha);
        }
        return Float.floatToIntBits(alpha) == Float.floatToIntBits(this.alpha) ? this : new FourierFTSpec(this, alpha);
    }

    /**
     * This spec's index set alone, as an adapter pool groups adapters ({@link FourierFTAdapterPool}): the same shape,
     * index set and tables, with alpha NaN, so that two specs differing only in alpha give equal index sets, and
     * a scale read from one by mistake shows as NaN. Never a spec to compute with.
     */
    FourierFTSpec indexSet() {
        return Float.isNaN(alpha) ? this : new FourierFTSpec(this, Float.NaN);
    }

    /**
     * @param other a spec
     * @return whether both have the same shape and index set (in order), whatever their alphas
     * @throws IllegalArgumentException if other is null
     */
    public boolean sameIndexSet(FourierFTSpec other) {
        Checks.notNull(other, "other");
        return other.dOut == dOut && other.dIn == dIn
                && (other.rows == rows || java.util.Arrays.equals(other.rows, rows))
                && (other.cols == cols || java.util.Arrays.equals(other.cols, cols));
    }

    /**
     * A hash of the shape and index set alone, equal for specs of which {@link #sameIndexSet} holds.
     *
     * @return the hash
     */
    public int indexSetHashCode() {
        return indexSetHash;
    }

    /**
     * A spec as the key of its index set, for maps that group specs by index set whatever their α: keys are equal
     * where {@link #sameIndexSet} holds, and hash by {@link #indexSetHashCode}.
     *
     * @param spec the spec
     */
    public record IndexSetKey(FourierFTSpec spec) {
        /**
         * @param spec the spec, not null
         */
        public IndexSetKey {
            Checks.notNull(spec, "spec");
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof IndexSetKey k && spec.sameIndexSet(k.spec);
        }

        @Override
        public int hashCode() {
            return spec.indexSetHashCode();
        }
    }

    /**
     * PEFT's index set for a layer: {@code randperm(d_out·d_in, seed)[:n]}, row = idx / d_in, col = idx % d_in.
     *
     * @param dOut output features (rows of W), at least 1
     * @param dIn input features (columns of W), at least 1
     * @param n number of coefficients, in [1, d_out·d_in]
     * @param seed PEFT's {@code random_loc_seed}
     * @param alpha PEFT's {@code scaling}, finite
     * @return the spec
     * @throws IllegalArgumentException if a dimension or n is out of range, or alpha is not finite
     */
    public static FourierFTSpec fromSeed(int dOut, int dIn, int n, long seed, float alpha) {
        checkShape(dOut, dIn);
        long size = (long) dOut * dIn;
        if (n < 1 || n > size) {
            throw new IllegalArgumentException("n = " + n + " must be in [1, d_out·d_in = " + size + "]");
        }
        int[] flat = PeftIndices.randpermPrefix(size, n, seed);
        return ofFlat(dOut, dIn, flat, alpha);
    }

    /**
     * {@link #fromSeed(int, int, int, long, float)} with PEFT's defaults (seed 777, scaling 150).
     *
     * @param dOut output features (rows of W), at least 1
     * @param dIn input features (columns of W), at least 1
     * @param n number of coefficients, in [1, d_out·d_in]
     * @return the spec
     * @throws IllegalArgumentException if a dimension or n is out of range
     */
    public static FourierFTSpec fromSeed(int dOut, int dIn, int n) {
        return fromSeed(dOut, dIn, n, DEFAULT_SEED, DEFAULT_SCALING);
    }

    /**
     * An explicit index set given as flat indices {@code row·d_in + col}.
     *
     * @param dOut output features (rows of W), at least 1
     * @param dIn input features (columns of W), at least 1
     * @param flat n distinct flat indices in [0, d_out·d_in)
     * @param alpha PEFT's {@code scaling}, finite
     * @return the spec
     * @throws IllegalArgumentException if an argument is null, out of range or repeated, or alpha is not finite
     */
    public static FourierFTSpec ofFlat(int dOut, int dIn, int[] flat, float alpha) {
        Checks.notNull(flat, "flat");
        checkShape(dOut, dIn);
        int[] r = new int[flat.length];
        int[] c = new int[flat.length];
        for (int l = 0; l < flat.length; l++) {
            if (flat[l] < 0 || (long) flat[l] >= (long) dOut * dIn) {
                throw new IllegalArgumentException("flat index " + l + " = " + flat[l]
                        + " is out of range [0, " + ((long) dOut * dIn) + ")");
            }
            r[l] = flat[l] / dIn;
            c[l] = flat[l] % dIn;
        }
        return of(dOut, dIn, r, c, alpha);
    }

    /**
     * An explicit index set: coefficient l sits at (rows[l], cols[l]). The arrays are copied.
     *
     * @param dOut output features (rows of W), at least 1
     * @param dIn input features (columns of W), at least 1
     * @param rows n row frequencies in [0, d_out)
     * @param cols n column frequencies in [0, d_in); the pairs (rows[l], cols[l]) must be distinct
     * @param alpha PEFT's {@code scaling}, finite
     * @return the spec
     * @throws IllegalArgumentException if an array is null, the lengths differ, an index is out of range or a
     *         pair repeats, or alpha is not finite
     */
    public static FourierFTSpec of(int dOut, int dIn, int[] rows, int[] cols, float alpha) {
        Checks.notNull(rows, "rows");
        Checks.notNull(cols, "cols");
        checkShape(dOut, dIn);
        if (rows.length != cols.length) {
            throw new IllegalArgumentException("rows has " + rows.length + " entries but cols has " + cols.length);
        }
        int n = rows.length;
        if (n < 1 || n > (long) dOut * dIn) {
            throw new IllegalArgumentException("n = " + n + " must be in [1, d_out·d_in = " + ((long) dOut * dIn) + "]");
        }
        if (!Float.isFinite(alpha)) {
            throw new IllegalArgumentException("alpha (scaling) must be finite, got " + alpha);
        }
        Map<Integer, Integer> seen = new HashMap<>(2 * n);
        for (int l = 0; l < n; l++) {
            if (rows[l] < 0 || rows[l] >= dOut || cols[l] < 0 || cols[l] >= dIn) {
                throw new IllegalArgumentException("index pair " + l + " (row " + rows[l] + ", col " + cols[l]
                        + ") is out of range for d_out = " + dOut + ", d_in = " + dIn);
            }
            Integer previous = seen.put(rows[l] * dIn + cols[l], l);
            if (previous != null) {
                throw new IllegalArgumentException("index pairs " + previous + " and " + l + " are both (row "
                        + rows[l] + ", col " + cols[l] + "); indices must be distinct");
            }
        }
        return new FourierFTSpec(dOut, dIn, rows.clone(), cols.clone(), alpha);
    }

    private static void checkShape(int dOut, int dIn) {
        if (dOut < 1 || dIn < 1) {
            throw new IllegalArgumentException("d_out and d_in must be positive, got " + dOut + " × " + dIn);
        }
        if ((long) dOut * dIn > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("d_out·d_in = " + ((long) dOut * dIn) + " exceeds " + Integer.MAX_VALUE);
        }
    }

    // ΔW's half spectrum H = (S + S(-u,-v))/2 on columns v <= d_in/2: c_l/2 at (j,k) and at (-j,-k).
    private SpectralGrouping buildHalfSpectrum() {
        int n = rows.length;
        int h = halfIn();
        int[] pos = new int[2 * n];
        int[] coeff = new int[2 * n];
        int count = 0;
        for (int l = 0; l < n; l++) {
            int j = rows[l];
            int k = cols[l];
            int jm = (dOut - j) % dOut;
            int km = (dIn - k) % dIn;
            if (k <= dIn / 2) {
                pos[count] = j * h + k;
                coeff[count++] = l;
            }
            if (km <= dIn / 2) {
                pos[count] = jm * h + km;
                coeff[count++] = l;
            }
        }
        return SpectralGrouping.build(count, pos, coeff, new int[count], dOut * h, false);
    }

    // Unmaterialized forward along one axis: output bins o <= outLen/2 of Z with Z[j] += c·X[k]/2 and
    // Z[-j] += conj(c·X[k])/2, X = conj(R2C(input)) read from the stored half of R.
    private static SpectralGrouping buildForward(int outLen, int[] outIdx, int srcLen, int[] srcIdx) {
        int n = outIdx.length;
        int[] pos = new int[2 * n];
        int[] coeff = new int[2 * n];
        int[] src = new int[2 * n];
        int count = 0;
        for (int l = 0; l < n; l++) {
            int j = outIdx[l];
            int k = srcIdx[l];
            boolean stored = k <= srcLen / 2;
            int bin = stored ? k : srcLen - k;
            boolean negate = stored; // X = conj(R[k]) inside the stored half, R[srcLen-k] beyond it
            if (j <= outLen / 2) {
                pos[count] = j;
                coeff[count] = l;
                src[count++] = (bin << 1) | (negate ? 1 : 0);
            }
            int jm = (outLen - j) % outLen;
            if (jm <= outLen / 2) {
                pos[count] = jm;
                coeff[count] = l;
                src[count++] = (bin << 1) | (negate ? 0 : 1);
            }
        }
        return SpectralGrouping.build(count, pos, coeff, src, outLen / 2 + 1, true);
    }

    /**
     * The spec of ΔWᵀ (d_in × d_out, each pair (j, k) becoming (k, j), same alpha and scale). A d × 1 and a
     * 1 × d matrix share their memory layout, which lets a backend turn a d_in = 1 layer into a 1-D problem.
     *
     * @return the transposed spec
     */
    public FourierFTSpec transposed() {
        FourierFTSpec t = transposedSpec;
        if (t == null) { // a benign race: at worst two equal specs are built
            t = new FourierFTSpec(dIn, dOut, cols, rows, alpha);
            t.transposedSpec = this;
            transposedSpec = t;
        }
        return t;
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
     * Number of spectral coefficients.
     *
     * @return n
     */
    public int n() {
        return rows.length;
    }

    /**
     * PEFT's {@code scaling}.
     *
     * @return alpha
     */
    public float alpha() {
        return alpha;
    }

    /**
     * The factor s = alpha/(d_out·d_in) in front of the cosine sum.
     *
     * @return s
     */
    public float scale() {
        return (float) ((double) alpha / ((double) dOut * dIn));
    }

    /**
     * Row frequency j of coefficient {@code l}.
     *
     * @param l the coefficient index, 0 ≤ l &lt; n
     * @return j, in [0, d_out)
     */
    public int row(int l) {
        return rows[l];
    }

    /**
     * Column frequency k of coefficient {@code l}.
     *
     * @param l the coefficient index, 0 ≤ l &lt; n
     * @return k, in [0, d_in)
     */
    public int col(int l) {
        return cols[l];
    }

    /**
     * The row frequencies of all coefficients.
     *
     * @return a copy, n elements
     */
    public int[] rows() {
        return rows.clone();
    }

    /**
     * The column frequencies of all coefficients.
     *
     * @return a copy, n elements
     */
    public int[] cols() {
        return cols.clone();
    }

    /**
     * d_in/2 + 1: columns of the half spectrum.
     *
     * @return d_in/2 + 1
     */
    public int halfIn() {
        return dIn / 2 + 1;
    }

    /**
     * d_out/2 + 1: bins of a length-d_out real transform.
     *
     * @return d_out/2 + 1
     */
    public int halfOut() {
        return dOut / 2 + 1;
    }

    /**
     * Non-empty bins of ΔW's half spectrum (d_out × halfIn, row-major positions); entries hold c_l/2.
     *
     * @return the half-spectrum grouping
     */
    public SpectralGrouping halfSpectrumGrouping() {
        return halfSpectrum;
    }

    /**
     * The same entries grouped by half-spectrum column, for the direct column transform.
     *
     * @return the column grouping
     */
    public SpectrumColumns halfSpectrumColumns() {
        return halfSpectrumColumns;
    }

    /**
     * Output bins 0..halfOut-1 of the unmaterialized forward, reading the input's R2C bins 0..halfIn-1.
     *
     * @return the forward grouping
     */
    public SpectralGrouping forwardGrouping() {
        return forward;
    }

    /**
     * The forward with the axes swapped (bins over d_in, sources over d_out): ∂L/∂x = ∂L/∂y · ΔW.
     *
     * @return the transposed grouping
     */
    public SpectralGrouping transposedGrouping() {
        return transposed;
    }

    /**
     * For ∂L/∂c from ∂L/∂ΔW: position in the d_out × halfIn R2C spectrum whose real part is Re DFT2[j_l,k_l].
     *
     * @return n positions (copy)
     */
    public int[] deltaGradientBins() {
        return deltaGradBin.clone();
    }

    /**
     * For the unmaterialized ∂L/∂c: bin of x's R2C transform that holds X[k_l] (up to conjugation).
     *
     * @return n bins (copy)
     */
    public int[] inputBins() {
        return xBin.clone();
    }

    /**
     * For the unmaterialized ∂L/∂c: bin of ∂L/∂y's R2C transform that holds Gy[j_l] (up to conjugation).
     *
     * @return n bins (copy)
     */
    public int[] outputGradientBins() {
        return gyBin.clone();
    }

    /**
     * For the unmaterialized ∂L/∂c: σ_l with Re(X[k_l]·Gy[j_l]) = Re R·Re Q − σ_l·Im R·Im Q, where R and Q
     * are the stored R2C bins of x and ∂L/∂y.
     *
     * @return n signs, each ±1 (copy)
     */
    public float[] imaginarySigns() {
        return imSign.clone();
    }

    /** Specs are equal when shape, index set (in order) and alpha are; backends cache per-spec tables by it. */
    @Override
    public boolean equals(Object o) {
        return o instanceof FourierFTSpec s && s.dOut == dOut && s.dIn == dIn
                && Float.floatToIntBits(s.alpha) == Float.floatToIntBits(alpha)
                && java.util.Arrays.equals(s.rows, rows) && java.util.Arrays.equals(s.cols, cols);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public String toString() {
        return "FourierFTSpec[" + dOut + "×" + dIn + ", n=" + rows.length + ", alpha=" + alpha + "]";
    }
}
