package org.spectralpeft.foura.cpu;

import org.spectralpeft.cpu.Parallel;

/**
 * The DFT's Hermitian folds. For real A, row i of Â = A·F has an even real part and an odd imaginary part
 * (Re Â[i, d−j] = Re Â[i, j], Im Â[i, d−j] = −Im Â[i, j]), and the columns of B̂ = F⁻¹·B likewise, so a product
 * with them needs only the bins j = 0..h−1, h = ⌊d/2⌋ + 1: Re z = Re Â[:, 0..h)·even(x) and Im z =
 * Im Â[:, 0..h)·odd(x) with even(x)_j = x_j + x_{d−j} and odd(x)_j = x_j − x_{d−j} for 0 &lt; j &lt; d − j, and
 * even(x)_0 = x_0, even(x)_{d/2} = x_{d/2} (d even), odd(x) zero there. A product with B̂ on h rows, u (real
 * part) and v (imaginary part), unfolds to y_j = u_j + v_j and y_{d−j} = u_j − v_j. Half the multiply-adds
 * and half the factor bytes of the full 2r × d product, for an O(d) pass per token.
 */
final class Spectra {
    /** Tokens per task of the fold and unfold passes. */
    private static final int TOKENS_PER_TASK = 64;

    private Spectra() {
    }

    /** h, the bins a real signal of length d needs. */
    static int bins(int d) {
        return d / 2 + 1;
    }

    /**
     * Rows [row, row + count) of src (row length d) folded: per token h values of even(x), then h of odd(x).
     * Padded by h floats, so that a BLAS may read the odd halves as a window (see {@link CpuFouRA}).
     */
    static float[] fold(float[] src, int row, int count, int d) {
        int h = bins(d);
        float[] out = new float[count * 2 * h + h];
        Parallel.inChunks(count, TOKENS_PER_TASK, (from, to) -> {
            for (int t = from; t < to; t++) {
                int s = (row + t) * d;
                int o = t * 2 * h;
                out[o] = src[s];
                for (int j = 1; j < d - j; j++) {
                    float a = src[s + j];
                    float b = src[s + d - j];
                    out[o + j] = a + b;
                    out[o + h + j] = a - b;
                }
                if (d % 2 == 0 && d > 1) {
                    out[o + d / 2] = src[s + d / 2];
                }
            }
        });
        return out;
    }

    /**
     * dst rows [row, row + count) (row length d) = or += the unfold of uv, per token h values u then h values v.
     */
    static void unfold(float[] uv, int count, int d, float[] dst, int row, boolean add) {
        int h = bins(d);
        Parallel.inChunks(count, TOKENS_PER_TASK, (from, to) -> {
            for (int t = from; t < to; t++) {
                int u = t * 2 * h;
                int v = u + h;
                int o = (row + t) * d;
                if (add) {
                    dst[o] += uv[u];
                } else {
                    dst[o] = uv[u];
                }
                for (int j = 1; j < d - j; j++) {
                    float a = uv[u + j];
                    float b = uv[v + j];
                    if (add) {
                        dst[o + j] += a + b;
                        dst[o + d - j] += a - b;
                    } else {
                        dst[o + j] = a + b;
                        dst[o + d - j] = a - b;
                    }
                }
                if (d % 2 == 0 && d > 1) {
                    if (add) {
                        dst[o + d / 2] += uv[u + d / 2];
                    } else {
                        dst[o + d / 2] = uv[u + d / 2];
                    }
                }
            }
        });
    }
}
