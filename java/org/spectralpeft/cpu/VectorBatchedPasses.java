package org.spectralpeft.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link BatchedPasses} on the Vector API: {@link ScalarBatchedPasses}' loops, one vector of rows at a time,
 * with the same operations in the same order (the same fused multiply-adds), so both give the same bits.
 * Loaded by reflection only where {@code jdk.incubator.vector} is in the boot layer; nothing else in the
 * library refers to this class.
 */
final class VectorBatchedPasses implements BatchedPasses {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int L = SPECIES.length();

    VectorBatchedPasses() {
    }

    @Override
    public int lanes() {
        return L;
    }

    @Override
    public void rotate(float[] re, float[] im, float a, float b, float[] c, float[] s, int rows,
                       boolean overwrite) {
        int bound = SPECIES.loopBound(rows);
        int r = 0;
        for (; r < bound; r += L) {
            FloatVector cv = FloatVector.fromArray(SPECIES, c, r);
            FloatVector sv = FloatVector.fromArray(SPECIES, s, r);
            FloatVector x = cv.fma(FloatVector.broadcast(SPECIES, a), sv.mul(-b));
            FloatVector y = cv.fma(FloatVector.broadcast(SPECIES, b), sv.mul(a));
            if (!overwrite) {
                x = FloatVector.fromArray(SPECIES, re, r).add(x);
                y = FloatVector.fromArray(SPECIES, im, r).add(y);
            }
            x.intoArray(re, r);
            y.intoArray(im, r);
        }
        ScalarBatchedPasses.rotateRows(re, im, a, b, c, s, r, rows, overwrite);
    }

    @Override
    public void prepareEven(float[][] specRe, float[][] specIm, int h, int rows, int width, float[] wRe,
                            float[] wIm, float[] zr, float[] zi) {
        int bound = SPECIES.loopBound(rows);
        for (int k = 1; k < h; k++) {
            int ka = k * width;
            float[] aRe = specRe[k];
            float[] aIm = specIm[k];
            float[] bRe = specRe[h - k];
            float[] bIm = specIm[h - k];
            float wr = wRe[k];
            float wi = wIm[k];
            int r = 0;
            for (; r < bound; r += L) {
                FloatVector ar = FloatVector.fromArray(SPECIES, aRe, r);
                FloatVector ai = FloatVector.fromArray(SPECIES, aIm, r);
                FloatVector br = FloatVector.fromArray(SPECIES, bRe, r);
                FloatVector bi = FloatVector.fromArray(SPECIES, bIm, r).neg();
                FloatVector dr = ar.sub(br);
                FloatVector di = ai.sub(bi);
                FloatVector tr = dr.fma(FloatVector.broadcast(SPECIES, wr), di.mul(-wi));
                FloatVector ti = dr.fma(FloatVector.broadcast(SPECIES, wi), di.mul(wr));
                ar.add(br).sub(ti).intoArray(zr, ka + r);
                ai.add(bi).add(tr).intoArray(zi, ka + r);
            }
            ScalarBatchedPasses.prepareBin(aRe, aIm, bRe, bIm, wr, wi, zr, zi, ka, r, rows);
        }
    }

    @Override
    public void finishForwardEven(float[] cr, float[] ci, int h, int rows, int width, float[] wRe, float[] wIm,
                                  float[][] specRe, float[][] specIm) {
        for (int k = 1; k < h; k++) {
            finishForwardBin(cr, ci, k * width, (h - k) * width, wRe[k], wIm[k], rows, specRe[k], 0, specIm[k], 0, -1,
                    -1, 0.5f, 0.5f);
        }
    }

    @Override
    public void finishForwardEvenInto(float[] cr, float[] ci, int h, int rows, int width, float[] wRe, float[] wIm,
                                      float[] out, int reOff, int imOff, int binStride, float scale, float imScale) {
        for (int k = 1; k < h; k++) {
            int mirror = (2 * h - k) * binStride;
            finishForwardBin(cr, ci, k * width, (h - k) * width, wRe[k], wIm[k], rows, out, reOff + k * binStride, out,
                    imOff + k * binStride, reOff + mirror, imOff + mirror, scale, imScale);
        }
    }

    /** {@link ScalarBatchedPasses#finishForwardBin} over rows [0, rows), a vector of rows at a time. */
    private static void finishForwardBin(float[] cr, float[] ci, int ka, int kb, float c, float s, int rows,
                                         float[] re, int reAt, float[] im, int imAt, int mirrorReAt, int mirrorImAt,
                                         float scale, float imScale) {
        int bound = SPECIES.loopBound(rows);
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector sv = FloatVector.broadcast(SPECIES, s);
        int r = 0;
        for (; r < bound; r += L) {
            FloatVector ar = FloatVector.fromArray(SPECIES, cr, ka + r);
            FloatVector ai = FloatVector.fromArray(SPECIES, ci, ka + r).neg();
            FloatVector br = FloatVector.fromArray(SPECIES, cr, kb + r);
            FloatVector bi = FloatVector.fromArray(SPECIES, ci, kb + r);
            FloatVector dr = ar.sub(br);
            FloatVector di = ai.sub(bi);
            FloatVector tr = cv.fma(di, dr.neg().mul(s));
            FloatVector ti = sv.fma(di, dr.mul(c));
            FloatVector xr = ar.add(br).add(tr).mul(scale);
            FloatVector xi = ai.add(bi).sub(ti).mul(imScale);
            xr.intoArray(re, reAt + r);
            xi.intoArray(im, imAt + r);
            if (mirrorReAt >= 0) {
                xr.intoArray(re, mirrorReAt + r);
                xi.neg().intoArray(im, mirrorImAt + r);
            }
        }
        ScalarBatchedPasses.finishForwardBin(cr, ci, ka, kb, c, s, re, reAt, im, imAt, mirrorReAt, mirrorImAt, scale,
                imScale, r, rows);
    }

    @Override
    public void radix2(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr, float[] twi) {
        for (int j = 0; j < m; j++) {
            float wr = twr[j];
            float wi = twi[j];
            int a0 = j * sB;
            int a1 = (j + m) * sB;
            int y0 = 2 * j * sB;
            int y1 = y0 + sB;
            for (int i = 0; i < sB; i += L) {
                FloatVector ar = FloatVector.fromArray(SPECIES, xr, a0 + i);
                FloatVector ai = FloatVector.fromArray(SPECIES, xi, a0 + i);
                FloatVector br = FloatVector.fromArray(SPECIES, xr, a1 + i);
                FloatVector bi = FloatVector.fromArray(SPECIES, xi, a1 + i);
                ar.add(br).intoArray(yr, y0 + i);
                ai.add(bi).intoArray(yi, y0 + i);
                FloatVector dr = ar.sub(br);
                FloatVector di = ai.sub(bi);
                dr.fma(FloatVector.broadcast(SPECIES, wr), di.mul(-wi)).intoArray(yr, y1 + i);
                dr.fma(FloatVector.broadcast(SPECIES, wi), di.mul(wr)).intoArray(yi, y1 + i);
            }
        }
    }

    @Override
    public void radix3(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr, float[] twi) {
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
            for (int i = 0; i < sB; i += L) {
                FloatVector x0r = FloatVector.fromArray(SPECIES, xr, a0 + i);
                FloatVector x0i = FloatVector.fromArray(SPECIES, xi, a0 + i);
                FloatVector x1r = FloatVector.fromArray(SPECIES, xr, a1 + i);
                FloatVector x1i = FloatVector.fromArray(SPECIES, xi, a1 + i);
                FloatVector x2r = FloatVector.fromArray(SPECIES, xr, a2 + i);
                FloatVector x2i = FloatVector.fromArray(SPECIES, xi, a2 + i);
                FloatVector tr = x1r.add(x2r);
                FloatVector ti = x1i.add(x2i);
                FloatVector ur = x0r.sub(tr.mul(0.5f));
                FloatVector ui = x0i.sub(ti.mul(0.5f));
                FloatVector vr = x2i.sub(x1i).mul(c);
                FloatVector vi = x1r.sub(x2r).mul(c);
                x0r.add(tr).intoArray(yr, y0 + i);
                x0i.add(ti).intoArray(yi, y0 + i);
                FloatVector b1r = ur.add(vr);
                FloatVector b1i = ui.add(vi);
                FloatVector b2r = ur.sub(vr);
                FloatVector b2i = ui.sub(vi);
                b1r.fma(FloatVector.broadcast(SPECIES, w1r), b1i.mul(-w1i)).intoArray(yr, y1 + i);
                b1r.fma(FloatVector.broadcast(SPECIES, w1i), b1i.mul(w1r)).intoArray(yi, y1 + i);
                b2r.fma(FloatVector.broadcast(SPECIES, w2r), b2i.mul(-w2i)).intoArray(yr, y2 + i);
                b2r.fma(FloatVector.broadcast(SPECIES, w2i), b2i.mul(w2r)).intoArray(yi, y2 + i);
            }
        }
    }

    @Override
    public void radix4(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr, float[] twi) {
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
            for (int i = 0; i < sB; i += L) {
                FloatVector x0r = FloatVector.fromArray(SPECIES, xr, a0 + i);
                FloatVector x0i = FloatVector.fromArray(SPECIES, xi, a0 + i);
                FloatVector x1r = FloatVector.fromArray(SPECIES, xr, a1 + i);
                FloatVector x1i = FloatVector.fromArray(SPECIES, xi, a1 + i);
                FloatVector x2r = FloatVector.fromArray(SPECIES, xr, a2 + i);
                FloatVector x2i = FloatVector.fromArray(SPECIES, xi, a2 + i);
                FloatVector x3r = FloatVector.fromArray(SPECIES, xr, a3 + i);
                FloatVector x3i = FloatVector.fromArray(SPECIES, xi, a3 + i);
                FloatVector t0r = x0r.add(x2r);
                FloatVector t0i = x0i.add(x2i);
                FloatVector t1r = x0r.sub(x2r);
                FloatVector t1i = x0i.sub(x2i);
                FloatVector t2r = x1r.add(x3r);
                FloatVector t2i = x1i.add(x3i);
                FloatVector t3r = x3i.sub(x1i);
                FloatVector t3i = x1r.sub(x3r);
                t0r.add(t2r).intoArray(yr, y0 + i);
                t0i.add(t2i).intoArray(yi, y0 + i);
                FloatVector b1r = t1r.add(t3r);
                FloatVector b1i = t1i.add(t3i);
                FloatVector b2r = t0r.sub(t2r);
                FloatVector b2i = t0i.sub(t2i);
                FloatVector b3r = t1r.sub(t3r);
                FloatVector b3i = t1i.sub(t3i);
                b1r.fma(FloatVector.broadcast(SPECIES, w1r), b1i.mul(-w1i)).intoArray(yr, y1 + i);
                b1r.fma(FloatVector.broadcast(SPECIES, w1i), b1i.mul(w1r)).intoArray(yi, y1 + i);
                b2r.fma(FloatVector.broadcast(SPECIES, w2r), b2i.mul(-w2i)).intoArray(yr, y2 + i);
                b2r.fma(FloatVector.broadcast(SPECIES, w2i), b2i.mul(w2r)).intoArray(yi, y2 + i);
                b3r.fma(FloatVector.broadcast(SPECIES, w3r), b3i.mul(-w3i)).intoArray(yr, y3 + i);
                b3r.fma(FloatVector.broadcast(SPECIES, w3i), b3i.mul(w3r)).intoArray(yi, y3 + i);
            }
        }
    }
}
