package org.spectralpeft.cpu;

import java.util.ArrayList;
import java.util.List;

/**
 * Unnormalized real inverse DFTs of length n for a block of rows at once, for n whose factors are 2 and 3
 * (768, 1536, 3072, 4096, ...): x[q] = Σ_k X[k]·e^{+2πi·qk/n} over the Hermitian extension of bins 0..n/2.
 * <p>
 * The spectrum is held transposed, one array per bin indexed by row ({@code re[k][r]}), so that a caller
 * fills it with plain loops over the rows (loops C2 vectorizes). The passes work on planes with bin k of row
 * r at k·rows + r: every butterfly's inner loop runs over contiguous floats of all rows (and, after the first
 * pass, of several butterflies), with one twiddle per loop, where JTransforms transforms one row at a time
 * and, for lengths such as 768 = 3·2⁸, through its mixed-radix path. For even n the real inverse is a complex
 * inverse of length n/2 (z[m] = x[2m] + i·x[2m+1]) after the standard pre-processing; odd n take a complex
 * inverse of length n. The complex transform is a self-sorting (Stockham) decimation in frequency with
 * radix-4, 2 and 3 passes whose twiddles are computed in float64 and stored as float.
 * <p>
 * Holds scratch planes: one instance per thread.
 */
public final class BatchedRealFft {
    private final int n;
    private final int maxRows;
    /** Length of the complex transform: n/2 for even n, else n. */
    private final int len;
    private final int[] radix;
    /** Per pass, the twiddles e^{+2πi·j·k/L} (j &lt; L/p, 1 ≤ k &lt; p), real and imaginary, at (k-1)·(L/p) + j. */
    private final float[][] twRe;
    private final float[][] twIm;
    /** Pre-processing twiddles e^{+2πi·k/n}, k &lt; n/2 (even n only). */
    private final float[] preRe;
    private final float[] preIm;
    private final float[][] specRe;
    private final float[][] specIm;
    private final float[] workRe;
    private final float[] workIm;
    private final float[] pongRe;
    private final float[] pongIm;

    /**
     * Whether {@code n} is a length this transform takes: at least 2, with no prime factor but 2 and 3.
     *
     * @param n a length
     * @return whether {@link #BatchedRealFft(int, int)} accepts it
     */
    public static boolean supports(int n) {
        if (n < 2) {
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
     * A transform of length n for blocks of up to {@code maxRows} rows.
     *
     * @param n the length, {@link #supports supported}
     * @param maxRows the most rows of one block, at least 1
     */
    public BatchedRealFft(int n, int maxRows) {
        if (!supports(n) || maxRows < 1) {
            throw new IllegalArgumentException("unsupported length " + n + " or rows " + maxRows);
        }
        this.n = n;
        this.maxRows = maxRows;
        this.len = n % 2 == 0 ? n / 2 : n;
        List<Integer> passes = new ArrayList<>();
        int r = len;
        while (r % 4 == 0) {
            passes.add(4);
            r /= 4;
        }
        if (r % 2 == 0) {
            passes.add(2);
            r /= 2;
        }
        while (r % 3 == 0) {
            passes.add(3);
            r /= 3;
        }
        radix = passes.stream().mapToInt(Integer::intValue).toArray();
        twRe = new float[radix.length][];
        twIm = new float[radix.length][];
        int current = len;
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
        if (n % 2 == 0) {
            preRe = new float[len];
            preIm = new float[len];
            for (int k = 0; k < len; k++) {
                double angle = 2 * Math.PI * k / n;
                preRe[k] = (float) Math.cos(angle);
                preIm[k] = (float) Math.sin(angle);
            }
        } else {
            preRe = null;
            preIm = null;
        }
        specRe = new float[bins()][maxRows];
        specIm = new float[bins()][maxRows];
        workRe = new float[len * maxRows];
        workIm = new float[len * maxRows];
        pongRe = new float[len * maxRows];
        pongIm = new float[len * maxRows];
    }

    public int length() {
        return n;
    }

    public int bins() {
        return n / 2 + 1;
    }

    public int maxRows() {
        return maxRows;
    }

    /**
     * The real parts of the spectrum to transform: bin k of row r at [k][r], r below the {@code rows} given
     * to {@link #inverse}. {@link #inverse} leaves them as they are.
     */
    public float[][] spectrumRe() {
        return specRe;
    }

    /** The imaginary parts, laid out as {@link #spectrumRe}; those of bin 0 (and n/2 for even n) are ignored. */
    public float[][] spectrumIm() {
        return specIm;
    }

    /** Zeroes the spectrum of a block of {@code rows} rows. */
    public void clear(int rows) {
        for (int k = 0; k < specRe.length; k++) {
            java.util.Arrays.fill(specRe[k], 0, rows, 0f);
            java.util.Arrays.fill(specIm[k], 0, rows, 0f);
        }
    }

    /**
     * out[off + r·stride + q] = x_r[q], the inverse DFT of row r's spectrum, for r &lt; rows and q &lt; n.
     *
     * @param rows the rows of the block, 1 to {@link #maxRows}
     * @param out the destination
     * @param off where row 0 starts in out
     * @param stride distance between rows in out, at least n
     */
    public void inverse(int rows, float[] out, int off, int stride) {
        if (rows < 1 || rows > maxRows) {
            throw new IllegalArgumentException("rows " + rows);
        }
        if (n % 2 == 0) {
            prepareEven(rows);
        } else {
            prepareOdd(rows);
        }
        float[] xr = workRe;
        float[] xi = workIm;
        float[] yr = pongRe;
        float[] yi = pongIm;
        int current = len;
        int sB = rows; // s·rows: contiguous floats per butterfly leg
        for (int s = 0; s < radix.length; s++) {
            int m = current / radix[s];
            switch (radix[s]) {
                case 4 -> radix4(xr, xi, yr, yi, m, sB, twRe[s], twIm[s]);
                case 2 -> radix2(xr, xi, yr, yi, m, sB, twRe[s], twIm[s]);
                default -> radix3(xr, xi, yr, yi, m, sB, twRe[s], twIm[s]);
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
        if (n % 2 == 0) {
            for (int r = 0; r < rows; r++) {
                int o = off + r * stride;
                for (int m = 0, i = r; m < len; m++, i += rows) {
                    out[o + 2 * m] = xr[i];
                    out[o + 2 * m + 1] = xi[i];
                }
            }
        } else {
            for (int r = 0; r < rows; r++) {
                int o = off + r * stride;
                for (int q = 0, i = r; q < n; q++, i += rows) {
                    out[o + q] = xr[i];
                }
            }
        }
    }

    /**
     * Z[k] = (X[k] + conj X[h-k]) + i·e^{2πik/n}·(X[k] - conj X[h-k]), h = n/2, into the work planes: the
     * length-h complex inverse of Z is x[2m] + i·x[2m+1].
     */
    private void prepareEven(int rows) {
        int h = len;
        float[] zr = workRe;
        float[] zi = workIm;
        // k = 0 pairs bin 0 with bin h, both real.
        float[] dc = specRe[0];
        float[] nyquist = specRe[h];
        for (int r = 0; r < rows; r++) {
            zr[r] = dc[r] + nyquist[r];
            zi[r] = dc[r] - nyquist[r];
        }
        for (int k = 1; k < h; k++) {
            int ka = k * rows;
            float[] aRe = specRe[k];
            float[] aIm = specIm[k];
            float[] bRe = specRe[h - k];
            float[] bIm = specIm[h - k];
            float wr = preRe[k];
            float wi = preIm[k];
            for (int r = 0; r < rows; r++) {
                float ar = aRe[r];
                float ai = aIm[r];
                float br = bRe[r];
                float bi = -bIm[r];
                float dr = ar - br;
                float di = ai - bi;
                float tr = dr * wr - di * wi;
                float ti = dr * wi + di * wr;
                zr[ka + r] = ar + br - ti;
                zi[ka + r] = ai + bi + tr;
            }
        }
    }

    /** The full Hermitian spectrum of odd n into the work planes. */
    private void prepareOdd(int rows) {
        int half = n / 2;
        for (int r = 0; r < rows; r++) {
            workRe[r] = specRe[0][r];
            workIm[r] = 0f;
        }
        for (int k = 1; k <= half; k++) {
            int a = k * rows;
            int b = (n - k) * rows;
            for (int r = 0; r < rows; r++) {
                workRe[a + r] = specRe[k][r];
                workIm[a + r] = specIm[k][r];
                workRe[b + r] = specRe[k][r];
                workIm[b + r] = -specIm[k][r];
            }
        }
    }

    /** One radix-2 pass: y[2j + k] = (Σ_t x[j + t·m]·(-1)^{tk})·w^{jk}, legs of sB floats. */
    private static void radix2(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr,
                               float[] twi) {
        for (int j = 0; j < m; j++) {
            float wr = twr[j];
            float wi = twi[j];
            int a0 = j * sB;
            int a1 = (j + m) * sB;
            int y0 = 2 * j * sB;
            int y1 = y0 + sB;
            for (int i = 0; i < sB; i++) {
                float ar = xr[a0 + i];
                float ai = xi[a0 + i];
                float br = xr[a1 + i];
                float bi = xi[a1 + i];
                yr[y0 + i] = ar + br;
                yi[y0 + i] = ai + bi;
                float dr = ar - br;
                float di = ai - bi;
                yr[y1 + i] = dr * wr - di * wi;
                yi[y1 + i] = dr * wi + di * wr;
            }
        }
    }

    /** One radix-4 pass of the inverse (ω₄ = +i). */
    private static void radix4(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr,
                               float[] twi) {
        for (int j = 0; j < m; j++) {
            float w1r = twr[j];
            float w1i = twi[j];
            float w2r = twr[m + j];
            float w2i = twi[m + j];
            float w3r = twr[2 * m + j];
            float w3i = twi[2 * m + j];
            int a0 = j * sB;
            int a1 = (j + m) * sB;
            int a2 = (j + 2 * m) * sB;
            int a3 = (j + 3 * m) * sB;
            int y0 = 4 * j * sB;
            int y1 = y0 + sB;
            int y2 = y1 + sB;
            int y3 = y2 + sB;
            for (int i = 0; i < sB; i++) {
                float x0r = xr[a0 + i];
                float x0i = xi[a0 + i];
                float x1r = xr[a1 + i];
                float x1i = xi[a1 + i];
                float x2r = xr[a2 + i];
                float x2i = xi[a2 + i];
                float x3r = xr[a3 + i];
                float x3i = xi[a3 + i];
                float t0r = x0r + x2r;
                float t0i = x0i + x2i;
                float t1r = x0r - x2r;
                float t1i = x0i - x2i;
                float t2r = x1r + x3r;
                float t2i = x1i + x3i;
                float t3r = x3i - x1i; // i·(x1 - x3)
                float t3i = x1r - x3r;
                yr[y0 + i] = t0r + t2r;
                yi[y0 + i] = t0i + t2i;
                float b1r = t1r + t3r;
                float b1i = t1i + t3i;
                float b2r = t0r - t2r;
                float b2i = t0i - t2i;
                float b3r = t1r - t3r;
                float b3i = t1i - t3i;
                yr[y1 + i] = b1r * w1r - b1i * w1i;
                yi[y1 + i] = b1r * w1i + b1i * w1r;
                yr[y2 + i] = b2r * w2r - b2i * w2i;
                yi[y2 + i] = b2r * w2i + b2i * w2r;
                yr[y3 + i] = b3r * w3r - b3i * w3i;
                yi[y3 + i] = b3r * w3i + b3i * w3r;
            }
        }
    }

    /** sin(2π/3) rounded once. */
    private static final float SIN_THIRD = (float) Math.sin(2 * Math.PI / 3);

    /** One radix-3 pass of the inverse (ω₃ = e^{+2πi/3}). */
    private static void radix3(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr,
                               float[] twi) {
        float c = SIN_THIRD;
        for (int j = 0; j < m; j++) {
            float w1r = twr[j];
            float w1i = twi[j];
            float w2r = twr[m + j];
            float w2i = twi[m + j];
            int a0 = j * sB;
            int a1 = (j + m) * sB;
            int a2 = (j + 2 * m) * sB;
            int y0 = 3 * j * sB;
            int y1 = y0 + sB;
            int y2 = y1 + sB;
            for (int i = 0; i < sB; i++) {
                float x0r = xr[a0 + i];
                float x0i = xi[a0 + i];
                float x1r = xr[a1 + i];
                float x1i = xi[a1 + i];
                float x2r = xr[a2 + i];
                float x2i = xi[a2 + i];
                float tr = x1r + x2r;
                float ti = x1i + x2i;
                float ur = x0r - 0.5f * tr;
                float ui = x0i - 0.5f * ti;
                float vr = c * (x2i - x1i); // i·sin(2π/3)·(x1 - x2)
                float vi = c * (x1r - x2r);
                yr[y0 + i] = x0r + tr;
                yi[y0 + i] = x0i + ti;
                float b1r = ur + vr;
                float b1i = ui + vi;
                float b2r = ur - vr;
                float b2i = ui - vi;
                yr[y1 + i] = b1r * w1r - b1i * w1i;
                yi[y1 + i] = b1r * w1i + b1i * w1r;
                yr[y2 + i] = b2r * w2r - b2i * w2i;
                yi[y2 + i] = b2r * w2i + b2i * w2r;
            }
        }
    }
}
