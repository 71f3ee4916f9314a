package org.spectralpeft.cpu;

import java.util.function.IntConsumer;
import java.util.stream.IntStream;
import org.spectralpeft.api.FourierFTSpec;
import org.spectralpeft.api.HostArray;
import org.spectralpeft.api.SpectralGrouping;
import org.spectralpeft.api.ValidatingBackend;
import org.spectralpeft.api.WriteMode;

/**
 * The pure-Java backend: the same half-spectrum algorithms as the CUDA kernels, with JTransforms for the
 * FFTs and the common fork-join pool for threads. Work is split into fixed chunks, independent of the
 * number of threads, and reductions run in chunk order, so results are deterministic.
 */
public final class CpuFourierFT extends ValidatingBackend {
    /** Tokens per task in the forward and backward passes (also the reduction order of ∂L/∂c). */
    private static final int TOKEN_CHUNK = 32;
    /** Rows or columns per task in the 2-D transforms. */
    private static final int LINE_CHUNK = 16;

    @Override
    public String description() {
        return "cpu (" + Runtime.getRuntime().availableProcessors() + " threads, JTransforms)";
    }

    @Override
    public void close() {
        markClosed();
    }

    @Override
    protected void runMaterialize(FourierFTSpec spec, float[] coeffs, int layers, HostArray out) {
        int size = spec.dOut() * spec.dIn();
        for (int layer = 0; layer < layers; layer++) {
            inverse2d(spec, coeffs, layer * spec.n(), out, layer * size, WriteMode.STORE);
        }
    }

    @Override
    protected void runMerge(FourierFTSpec spec, float[] coeffs, HostArray weight, boolean subtract) {
        inverse2d(spec, coeffs, 0, weight, 0, subtract ? WriteMode.SUBTRACT : WriteMode.ADD);
    }

    /**
     * ΔW = C2R-2D of the Hermitian half spectrum: inverse complex transforms down the occupied columns
     * v <= d_in/2, then one real inverse transform per row; rows land in dst per mode.
     */
    private static void inverse2d(FourierFTSpec spec, float[] coeffs, int coeffOffset, HostArray dst, int dstOffset,
                                  WriteMode mode) {
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        int h = spec.halfIn();
        float halfScale = 0.5f * spec.scale();
        SpectralGrouping g = spec.halfSpectrumGrouping();
        float[][] columns = new float[h][]; // interleaved complex, d_out long; null when empty
        for (int b = 0; b < g.bins(); b++) {
            float sum = 0f;
            for (int e = g.start(b); e < g.start(b + 1); e++) {
                sum += coeffs[coeffOffset + g.coefficient(e)];
            }
            int u = g.position(b) / h;
            int v = g.position(b) % h;
            if (columns[v] == null) {
                columns[v] = new float[2 * dOut];
            }
            columns[v][2 * u] = halfScale * sum;
        }
        inChunks(h, LINE_CHUNK, (from, to) -> {
            ComplexFft fft = new ComplexFft(dOut);
            for (int v = from; v < to; v++) {
                if (columns[v] != null) {
                    fft.inverse(columns[v]);
                }
            }
        });
        inChunks(dOut, LINE_CHUNK, (from, to) -> {
            RealFft fft = new RealFft(dIn);
            float[] re = new float[h];
            float[] im = new float[h];
            float[] row = new float[dIn];
            for (int p = from; p < to; p++) {
                for (int v = 0; v < h; v++) {
                    float[] col = columns[v];
                    re[v] = col == null ? 0f : col[2 * p];
                    im[v] = col == null ? 0f : col[2 * p + 1];
                }
                fft.inverse(re, im, row);
                dst.write(dstOffset + p * dIn, row, dIn, mode);
            }
        });
    }

    @Override
    protected void runForward(FourierFTSpec spec, float[] coeffs, HostArray x, int tokens, HostArray y) {
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        float halfScale = 0.5f * spec.scale();
        SpectralGrouping g = spec.forwardGrouping();
        inChunks(tokens, TOKEN_CHUNK, (from, to) -> {
            RealFft inFft = new RealFft(dIn);
            RealFft outFft = new RealFft(dOut);
            float[] row = new float[dIn];
            float[] xr = new float[inFft.bins()];
            float[] xi = new float[inFft.bins()];
            float[] zr = new float[outFft.bins()];
            float[] zi = new float[outFft.bins()];
            float[] out = new float[dOut];
            for (int t = from; t < to; t++) {
                x.read(t * dIn, row, dIn);
                inFft.forward(row, 0, xr, xi);
                scatter(g, coeffs, halfScale, xr, xi, zr, zi);
                outFft.inverse(zr, zi, out);
                y.write(t * dOut, out, dOut, WriteMode.ADD);
            }
        });
    }

    /** z[o] = halfScale · Σ_e c·(src_re[b], ±src_im[b]) over the grouping's entries of bin o. */
    private static void scatter(SpectralGrouping g, float[] coeffs, float halfScale, float[] srcRe, float[] srcIm,
                                float[] zr, float[] zi) {
        for (int o = 0; o < g.bins(); o++) {
            float re = 0f;
            float im = 0f;
            for (int e = g.start(o); e < g.start(o + 1); e++) {
                float c = coeffs[g.coefficient(e)];
                int b = g.sourceBin(e);
                re += c * srcRe[b];
                im += (g.negatesImag(e) ? -c : c) * srcIm[b];
            }
            zr[o] = halfScale * re;
            zi[o] = halfScale * im;
        }
    }

    @Override
    protected void runGradCoefficients(FourierFTSpec spec, HostArray gradDeltaW, float[] gradCoeffs) {
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        int h = spec.halfIn();
        int[] bins = spec.deltaGradientBins();
        float[][] columns = new float[h][]; // the R2C-2D transform, only on the columns the gather reads
        for (int bin : bins) {
            if (columns[bin % h] == null) {
                columns[bin % h] = new float[2 * dOut];
            }
        }
        inChunks(dOut, LINE_CHUNK, (from, to) -> {
            RealFft fft = new RealFft(dIn);
            float[] row = new float[dIn];
            float[] re = new float[h];
            float[] im = new float[h];
            for (int p = from; p < to; p++) {
                gradDeltaW.read(p * dIn, row, dIn);
                fft.forward(row, 0, re, im);
                for (int v = 0; v < h; v++) {
                    if (columns[v] != null) {
                        columns[v][2 * p] = re[v];
                        columns[v][2 * p + 1] = im[v];
                    }
                }
            }
        });
        inChunks(h, LINE_CHUNK, (from, to) -> {
            ComplexFft fft = new ComplexFft(dOut);
            for (int v = from; v < to; v++) {
                if (columns[v] != null) {
                    fft.forward(columns[v]);
                }
            }
        });
        float s = spec.scale();
        for (int l = 0; l < bins.length; l++) {
            gradCoeffs[l] = s * columns[bins[l] % h][2 * (bins[l] / h)];
        }
    }

    @Override
    protected void runBackward(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                               float[] gradCoeffs, HostArray gradX) {
        int dOut = spec.dOut();
        int dIn = spec.dIn();
        int n = spec.n();
        int[] xBin = spec.inputBins();
        int[] gyBin = spec.outputGradientBins();
        float[] sign = spec.imaginarySigns();
        float halfScale = 0.5f * spec.scale();
        SpectralGrouping g = spec.transposedGrouping();
        int chunks = (tokens + TOKEN_CHUNK - 1) / TOKEN_CHUNK;
        float[][] partial = new float[chunks][n];
        inChunks(tokens, TOKEN_CHUNK, (from, to) -> {
            RealFft inFft = new RealFft(dIn);
            RealFft outFft = new RealFft(dOut);
            float[] xRow = new float[dIn];
            float[] gyRow = new float[dOut];
            float[] xr = new float[inFft.bins()];
            float[] xi = new float[inFft.bins()];
            float[] qr = new float[outFft.bins()];
            float[] qi = new float[outFft.bins()];
            float[] zr = new float[inFft.bins()];
            float[] zi = new float[inFft.bins()];
            float[] gx = new float[dIn];
            float[] acc = partial[from / TOKEN_CHUNK];
            for (int t = from; t < to; t++) {
                x.read(t * dIn, xRow, dIn);
                gradY.read(t * dOut, gyRow, dOut);
                inFft.forward(xRow, 0, xr, xi);
                outFft.forward(gyRow, 0, qr, qi);
                for (int l = 0; l < n; l++) {
                    acc[l] += xr[xBin[l]] * qr[gyBin[l]] - sign[l] * xi[xBin[l]] * qi[gyBin[l]];
                }
                if (gradX != null) {
                    scatter(g, coeffs, halfScale, qr, qi, zr, zi);
                    inFft.inverse(zr, zi, gx);
                    gradX.write(t * dIn, gx, dIn, WriteMode.ADD);
                }
            }
        });
        float s = spec.scale();
        for (int l = 0; l < n; l++) {
            float sum = 0f;
            for (float[] p : partial) {
                sum += p[l];
            }
            gradCoeffs[l] = s * sum;
        }
    }

    private interface Range {
        void run(int from, int to);
    }

    /** Runs body over [0, count) in fixed chunks of {@code chunk}, in parallel. */
    private static void inChunks(int count, int chunk, Range body) {
        int chunks = (count + chunk - 1) / chunk;
        IntConsumer task = c -> body.run(c * chunk, Math.min(count, (c + 1) * chunk));
        if (chunks == 1) {
            task.accept(0);
        } else {
            IntStream.range(0, chunks).parallel().forEach(task);
        }
    }
}
