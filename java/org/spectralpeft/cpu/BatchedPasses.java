package org.spectralpeft.cpu;

/**
 * The inner loops of {@link BatchedRealFft} and {@link BatchedComplexFft}: the pre-processing and the radix
 * passes over planes that hold bin k of row r at k·width + r, width a multiple of {@link #lanes()}. Two
 * implementations compute the same bits (the same float operations in the same order; each complex product
 * a·w as fma(a_re, w_re, a_im·(−w_im)) and fma(a_re, w_im, a_im·w_re), one rounding fewer per component than
 * separate multiplies, which took 768² with n = 10000 from 1.57e-7 to 1.52e-7 relative error):
 * {@link ScalarBatchedPasses}, plain
 * loops, and {@code VectorBatchedPasses}, the same loops on the incubating Vector API, taken where the JVM
 * was started with {@code --add-modules jdk.incubator.vector} (HotSpot 17's C2 leaves these loops scalar:
 * their loads and stores sit at different loop-invariant offsets of one array).
 */
interface BatchedPasses {
    /** System property: {@code off} keeps the scalar loops even where the Vector API is available. */
    String PROPERTY = "spectralpeft.cpu.vector";

    /** The multiple of rows the planes are padded to: the vector length, or 1. */
    int lanes();

    /**
     * Bins 1 ≤ k &lt; h of the even-length pre-processing: z[k] = (X[k] + conj X[h-k]) + i·w_k·(X[k] - conj
     * X[h-k]) for rows below {@code rows}, into zr/zi at k·width + r.
     */
    void prepareEven(float[][] specRe, float[][] specIm, int h, int rows, int width, float[] wRe, float[] wIm,
                     float[] zr, float[] zi);

    /**
     * re[r] = a·c[r] - b·s[r] and im[r] = b·c[r] + a·s[r] (the complex (a + ib)·(c + is)) for r &lt; rows,
     * added to what re and im hold unless {@code overwrite}.
     */
    void rotate(float[] re, float[] im, float a, float b, float[] c, float[] s, int rows, boolean overwrite);

    /**
     * Bins 1 ≤ k &lt; h of the even-length forward post-processing, from c = the complex inverse of conj z (z[m] =
     * x[2m] + i·x[2m+1], so Z = conj c is z's forward DFT): with A = Z[k], B = conj Z[h-k], D = A - B,
     * X[k] = ½·((A + B) + (D_im·cos θ - D_re·sin θ), i·((A + B)_im - (D_im·sin θ + D_re·cos θ))), θ = 2πk/n,
     * cos and sin from wRe/wIm. Rows below {@code rows} of bin k go to specRe[k] and specIm[k].
     */
    void finishForwardEven(float[] cr, float[] ci, int h, int rows, int width, float[] wRe, float[] wIm,
                           float[][] specRe, float[][] specIm);

    /**
     * {@link #finishForwardEven} into one flat array, as a full Hermitian spectrum of length n = 2h: row r's bin k
     * at out[reOff + k·binStride + r] (real part times scale) and out[imOff + k·binStride + r] (imaginary part
     * times imScale), and bin n − k, the conjugate, likewise. scale and imScale take the place of the ½.
     */
    void finishForwardEvenInto(float[] cr, float[] ci, int h, int rows, int width, float[] wRe, float[] wIm,
                               float[] out, int reOff, int imOff, int binStride, float scale, float imScale);

    /** One radix-2 pass: y[2j + k] = (Σ_t x[j + t·m]·(-1)^{tk})·w^{jk}, legs of sB floats. */
    void radix2(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr, float[] twi);

    /** One radix-3 pass of the inverse (ω₃ = e^{+2πi/3}). */
    void radix3(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr, float[] twi);

    /** One radix-4 pass of the inverse (ω₄ = +i). */
    void radix4(float[] xr, float[] xi, float[] yr, float[] yi, int m, int sB, float[] twr, float[] twi);

    /** sin(2π/3) rounded once, shared by both implementations so that they compute the same bits. */
    float SIN_THIRD = (float) Math.sin(2 * Math.PI / 3);

    /**
     * The vector loops where the JVM has {@code jdk.incubator.vector} and {@link #PROPERTY} is not {@code off},
     * else the scalar ones.
     */
    static BatchedPasses fastest() {
        return Holder.FASTEST;
    }

    /** The vector loops if this JVM can run them, else null. */
    static BatchedPasses vectorOrNull() {
        return Holder.VECTOR;
    }

    /** Resolved once: loading the vector class is only attempted where its module is present. */
    final class Holder {
        static final BatchedPasses VECTOR = loadVector();
        static final BatchedPasses FASTEST =
                VECTOR != null && !"off".equals(System.getProperty(PROPERTY)) ? VECTOR : ScalarBatchedPasses.INSTANCE;

        private Holder() {
        }

        private static BatchedPasses loadVector() {
            if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
                return null;
            }
            try {
                return (BatchedPasses) Class.forName("org.spectralpeft.cpu.VectorBatchedPasses")
                        .getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException | LinkageError e) {
                return null;
            }
        }
    }
}
