package org.spectralpeft.cpu;

/** {@link BatchedPasses} as plain loops: the default, and the reference the vector loops match bit for bit. */
final class ScalarBatchedPasses implements BatchedPasses {
    static final ScalarBatchedPasses INSTANCE = new ScalarBatchedPasses();

    private ScalarBatchedPasses() {
    }

    @Override
    public int lanes() {
        return 1;
    }

    @Override
    public void rotate(float[] re, float[] im, float a, float b, float[] c, float[] s, int rows,
                       boolean overwrite) {
        rotateRows(re, im, a, b, c, s, 0, rows, overwrite);
    }

    /** Rows [from, to) of {@link #rotate}: also the vector loops' tail, so both give the same bits. */
    static void rotateRows(float[] re, float[] im, float a, float b, float[] c, float[] s, int from, int to,
                           boolean overwrite) {
        for (int r = from; r < to; r++) {
            float x = Math.fma(a, c[r], b * -s[r]);
            float y = Math.fma(b, c[r], a * s[r]);
            re[r] = overwrite ? x : re[r] + x;
            im[r] = overwrite ? y : im[r] + y;
        }
    }

    @Override
    public void prepareEven(float[][] specRe, float[][] specIm, int h, int rows, int width, float[] wRe,
                            float[] wIm, float[] zr, float[] zi) {
        for (int k = 1; k < h; k++) {
            prepareBin(specRe[k], specIm[k], specRe[h - k], specIm[h - k], wRe[k], wIm[k], zr, zi, k * width, 0,
                    rows);
        }
    }

    /**
     * Rows [from, to) of one bin of {@link #prepareEven} (a: bin k, b: bin h − k, w its twiddle; ka where bin k
     * starts in the planes): also the vector loops' tail, so both give the same bits.
     */
    static void prepareBin(float[] aRe, float[] aIm, float[] bRe, float[] bIm, float wr, float wi, float[] zr,
                           float[] zi, int ka, int from, int to) {
        for (int r = from; r < to; r++) {
            float ar = aRe[r];
            float ai = aIm[r];
            float br = bRe[r];
            float bi = -bIm[r];
            float dr = ar - br;
            float di = ai - bi;
            float tr = Math.fma(dr, wr, di * -wi);
            float ti = Math.fma(dr, wi, di * wr);
            zr[ka + r] = ar + br - ti;
            zi[ka + r] = ai + bi + tr;
        }
    }

    @Override
    public void finishForwardEven(float[] cr, float[] ci, int h, int rows, int width, float[] wRe, float[] wIm,
                                  float[][] specRe, float[][] specIm) {
        for (int k = 1; k < h; k++) {
            finishForwardBin(cr, ci, k * width, (h - k) * width, wRe[k], wIm[k], specRe[k], 0, specIm[k], 0, -1, -1,
                    0.5f, 0.5f, 0, rows);
        }
    }

    @Override
    public void finishForwardEvenInto(float[] cr, float[] ci, int h, int rows, int width, float[] wRe, float[] wIm,
                                      float[] out, int reOff, int imOff, int binStride, float scale, float imScale) {
        for (int k = 1; k < h; k++) {
            int mirror = (2 * h - k) * binStride;
            finishForwardBin(cr, ci, k * width, (h - k) * width, wRe[k], wIm[k], out, reOff + k * binStride, out,
                    imOff + k * binStride, reOff + mirror, imOff + mirror, scale, imScale, 0, rows);
        }
    }

    /**
     * Rows [from, to) of one bin of {@link #finishForwardEven} (c, s its cosine and sine; ka, kb where bins k and
     * h − k start in the planes), the real part times scale to re[reAt + r], the imaginary part times imScale to
     * im[imAt + r], and, unless mirrorReAt is −1, the conjugate to re[mirrorReAt + r] and im[mirrorImAt + r]:
     * also the vector loops' tail, so both give the same bits.
     */
    static void finishForwardBin(float[] cr, float[] ci, int ka, int kb, float c, float s, float[] re, int reAt,
                                 float[] im, int imAt, int mirrorReAt, int mirrorImAt, float scale, float imScale,
                                 int from, int to) {
        for (int r = from; r < to; r++) {
            float ar = cr[ka + r];
            float ai = -ci[ka + r];
            float br = cr[kb + r];
            float bi = ci[kb + r];
            float dr = ar - br;
            float di = ai - bi;
            float tr = Math.fma(c, di, s * -dr);
            float ti = Math.fma(s, di, c * dr);
            float xr = scale * (ar + br + tr);
            float xi = imScale * (ai + bi - ti);
            re[reAt + r] = xr;
            im[imAt + r] = xi;
            if (mirrorReAt >= 0) {
                re[mirrorReAt + r] = xr;
                im[mirrorImAt + r] = -xi;
            }
        }
    }

    @Override
    public void radix2(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr,
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
                yr[y1 + i] = Math.fma(dr, wr, di * -wi);
                yi[y1 + i] = Math.fma(dr, wi, di * wr);
            }
        }
    }

    @Override
    public void radix4(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr,
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
                yr[y1 + i] = Math.fma(b1r, w1r, b1i * -w1i);
                yi[y1 + i] = Math.fma(b1r, w1i, b1i * w1r);
                yr[y2 + i] = Math.fma(b2r, w2r, b2i * -w2i);
                yi[y2 + i] = Math.fma(b2r, w2i, b2i * w2r);
                yr[y3 + i] = Math.fma(b3r, w3r, b3i * -w3i);
                yi[y3 + i] = Math.fma(b3r, w3i, b3i * w3r);
            }
        }
    }

    @Override
    public void radix3(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr,
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
                yr[y1 + i] = Math.fma(b1r, w1r, b1i * -w1i);
                yi[y1 + i] = Math.fma(b1r, w1i, b1i * w1r);
                yr[y2 + i] = Math.fma(b2r, w2r, b2i * -w2i);
                yi[y2 + i] = Math.fma(b2r, w2i, b2i * w2r);
            }
        }
    }
}
