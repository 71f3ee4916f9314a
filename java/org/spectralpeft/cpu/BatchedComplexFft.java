package org.spectralpeft.cpu;

import java.util.ArrayList;
import java.util.List;

/**
 * Unnormalized complex inverse DFTs of length n for a block of rows at once, for n whose factors are 2 and 3:
 * y[q] = Σ_k x[k]·e^{+2πi·qk/n}. Rows sit side by side in planes, element k of row r at k·width + r (width:
 * rows rounded up to the vector length, {@link #width}), so every butterfly's inner loop runs over contiguous
 * floats of all rows with one twiddle per loop. A self-sorting (Stockham) decimation in frequency with radix-4,
 * 2 and 3 passes ({@link BatchedPasses}) whose twiddles are computed in float64 and stored as float. The
 * forward transform is the same passes on conjugated data: the caller loads conj x and conjugates the result.
 * <p>
 * Holds its planes: one instance per thread.
 */
public final class BatchedComplexFft {
    private final int n;
    private final int maxRows;
    private final BatchedPasses passes;
    private final int[] radix;
    /** Per pass, the twiddles e^{+2πi·j·k/L} (j &lt; L/p, 1 ≤ k &lt; p), real and imaginary, at (k-1)·(L/p) + j. */
    private final float[][] twRe;
    private final float[][] twIm;
    private final float[] workRe;
    private final float[] workIm;
    private final float[] pongRe;
    private final float[] pongIm;
    /** Whether the last {@link #inverse} left its result in the work planes (else in the pong planes). */
    private boolean resultInWork = true;

    /**
     * Whether {@code n} is a length this transform takes: at least 1, with no prime factor but 2 and 3.
     *
     * @param n a length
     * @return whether {@link #BatchedComplexFft(int, int)} accepts it
     */
    public static boolean supports(int n) {
        if (n < 1) {
            return false;
        }
        int r = n;
        while (r % 2 == 0) {
            r /= 2;
        }
        while (r % 3 == 0) {
            r /= 3;
        }
        return r == 1;
    }

    /**
     * A transform of length n for blocks of up to {@code maxRows} rows, on the fastest loops of this JVM.
     *
     * @param n the length, {@link #supports supported}
     * @param maxRows the most rows of one block, at least 1
     */
    public BatchedComplexFft(int n, int maxRows) {
        this(n, maxRows, BatchedPasses.fastest());
    }

    BatchedComplexFft(int n, int maxRows, BatchedPasses passes) {
        if (!supports(n) || maxRows < 1) {
            throw new IllegalArgumentException("unsupported length " + n + " or rows " + maxRows);
        }
        this.n = n;
        this.maxRows = maxRows;
        this.passes = passes;
        List<Integer> radices = new ArrayList<>();
        int r = n;
        while (r % 4 == 0) {
            radices.add(4);
            r /= 4;
        }
        if (r % 2 == 0) {
            radices.add(2);
            r /= 2;
        }
        while (r % 3 == 0) {
            radices.add(3);
            r /= 3;
        }
        radix = radices.stream().mapToInt(Integer::intValue).toArray();
        twRe = new float[radix.length][];
        twIm = new float[radix.length][];
        int current = n;
        for (int s = 0; s < radix.length; s++) {
            int p = radix[s];
            int m = current / p;
            twRe[s] = new float[(p - 1) * m];
            twIm[s] = new float[(p - 1) * m];
            for (int k = 1; k < p; k++) {
                for (int j = 0; j < m; j++) {
                    double angle = 2 * Math.PI * ((long) j * k % current) / current;
                    twRe[s][(k - 1) * m + j] = (float) Math.cos(angle);
                    twIm[s][(k - 1) * m + j] = (float) Math.sin(angle);
                }
            }
            current = m;
        }
        int planeSize = n * width(maxRows);
        workRe = new float[planeSize];
        workIm = new float[planeSize];
        pongRe = new float[planeSize];
        pongIm = new float[planeSize];
    }

    public int length() {
        return n;
    }

    public int maxRows() {
        return maxRows;
    }

    /** The passes' vector length: planes are padded to a multiple of it. */
    int lanes() {
        return passes.lanes();
    }

    /**
     * Floats per element in the planes for a block of {@code rows} rows: rows rounded up to the vector length.
     *
     * @param rows the rows of a block
     * @return the distance between elements k and k + 1 of one row
     */
    public int width(int rows) {
        int lanes = passes.lanes();
        return (rows + lanes - 1) / lanes * lanes;
    }

    /** The input's real parts: element k of row r at k·{@link #width}(rows) + r. {@link #inverse} overwrites them. */
    public float[] inputRe() {
        return workRe;
    }

    /** The input's imaginary parts, laid out as {@link #inputRe}. */
    public float[] inputIm() {
        return workIm;
    }

    /** The last result's real parts, laid out as the input (valid until the next {@link #inverse}). */
    public float[] resultRe() {
        return resultInWork ? workRe : pongRe;
    }

    /** The last result's imaginary parts. */
    public float[] resultIm() {
        return resultInWork ? workIm : pongIm;
    }

    /**
     * Transforms the input planes of a block of {@code rows} rows; the result is then in {@link #resultRe} and
     * {@link #resultIm}. Lanes from rows up to the width are zeroed first and stay zero.
     *
     * @param rows the rows of the block, 1 to {@link #maxRows}
     */
    public void inverse(int rows) {
        if (rows < 1 || rows > maxRows) {
            throw new IllegalArgumentException("rows " + rows);
        }
        int width = width(rows);
        if (width > rows) {
            for (int k = 0; k < n; k++) {
                java.util.Arrays.fill(workRe, k * width + rows, (k + 1) * width, 0f);
                java.util.Arrays.fill(workIm, k * width + rows, (k + 1) * width, 0f);
            }
        }
        float[] xr = workRe;
        float[] xi = workIm;
        float[] yr = pongRe;
        float[] yi = pongIm;
        int current = n;
        int sB = width; // s·width: contiguous floats per butterfly leg
        for (int s = 0; s < radix.length; s++) {
            int m = current / radix[s];
            switch (radix[s]) {
                case 4 -> passes.radix4(xr, xi, yr, yi, m, sB, twRe[s], twIm[s]);
                case 2 -> passes.radix2(xr, xi, yr, yi, m, sB, twRe[s], twIm[s]);
                default -> passes.radix3(xr, xi, yr, yi, m, sB, twRe[s], twIm[s]);
            }
            float[] t = xr;
            xr = yr;
            yr = t;
            t = xi;
            xi = yi;
            yi = t;
            current = m;
            sB *= radix[s];
        }
        resultInWork = xr == workRe;
    }
}
