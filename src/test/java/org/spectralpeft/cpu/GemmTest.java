package org.spectralpeft.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.spectralpeft.TestData;

class GemmTest {
    /** The largest |C − reference| / (1 + |reference|) over all four transpositions, odd sizes, offsets and strides. */
    static double largestError(Random random) {
        return Math.max(largestError(random, false), largestError(random, true));
    }

    /**
     * {@link #largestError(Random)} with A and B in arrays that end where their last row does (tight), as a band
     * of columns cut from a larger matrix does, or a whole stride later.
     */
    static double largestError(Random random, boolean tight) {
        double worst = 0;
        for (boolean transA : new boolean[] {false, true}) {
            for (boolean transB : new boolean[] {false, true}) {
                int m = 37;
                int n = 29;
                int k = 53;
                int lda = (transA ? m : k) + 3;
                int ldb = (transB ? k : n) + 2;
                int ldc = n + 5;
                int aOff = 7;
                int bOff = 4;
                int cOff = 9;
                int aRows = transA ? k : m;
                int bRows = transB ? n : k;
                float[] a = values(random, aOff + (tight ? (aRows - 1) * lda + (transA ? m : k) : aRows * lda));
                float[] b = values(random, bOff + (tight ? (bRows - 1) * ldb + (transB ? k : n) : bRows * ldb));
                float[] c = values(random, cOff + m * ldc);
                float[] before = c.clone();
                float alpha = 0.75f;
                float beta = -1.5f;
                Gemm.gemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
                for (int i = 0; i < c.length; i++) {
                    int row = (i - cOff) / ldc;
                    int col = (i - cOff) % ldc;
                    boolean inside = i >= cOff && row < m && col < n;
                    if (!inside) {
                        if (Float.floatToRawIntBits(c[i]) != Float.floatToRawIntBits(before[i])) {
                            return Double.POSITIVE_INFINITY; // wrote outside C
                        }
                        continue;
                    }
                    double sum = 0;
                    for (int p = 0; p < k; p++) {
                        double x = a[aOff + (transA ? p * lda + row : row * lda + p)];
                        double y = b[bOff + (transB ? col * ldb + p : p * ldb + col)];
                        sum += x * y;
                    }
                    double expected = alpha * sum + beta * (double) before[i];
                    worst = Math.max(worst, Math.abs(c[i] - expected) / (1 + Math.abs(expected)));
                }
            }
        }
        return worst;
    }

    private static float[] values(Random random, int length) {
        float[] v = new float[length];
        for (int i = 0; i < length; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }

    @Test
    void everyTranspositionMatchesAFloat64LoopAndWritesOnlyC() {
        TestData data = new TestData();
        assertTrue(largestError(new Random(data.seed)) < 1e-5, Gemm.implementation() + data.tag());
    }

    @Test
    void operandsThatEndWithTheirLastRowAreAccepted() {
        TestData data = new TestData();
        assertTrue(largestError(new Random(data.seed), true) < 1e-5, Gemm.implementation() + data.tag());
    }

    @Test
    void matrixVectorProductsMatchAFloat64LoopAndWriteOnlyY() {
        TestData data = new TestData();
        Random random = new Random(data.seed);
        for (boolean trans : new boolean[] {false, true}) {
            int m = 23;
            int n = 41;
            int lda = n + 3;
            float[] a = values(random, 5 + m * lda);
            float[] x = values(random, 2 + (trans ? m : n));
            float[] y = values(random, 4 + (trans ? n : m) + 3);
            float[] before = y.clone();
            Gemm.gemv(trans, m, n, 1.25f, a, 5, lda, x, 2, 0.5f, y, 4);
            int outputs = trans ? n : m;
            for (int i = 0; i < y.length; i++) {
                if (i < 4 || i >= 4 + outputs) {
                    assertEquals(before[i], y[i], "gemv wrote outside y at " + i + data.tag());
                    continue;
                }
                int o = i - 4;
                double sum = 0;
                for (int k = 0; k < (trans ? m : n); k++) {
                    double aik = trans ? a[5 + k * lda + o] : a[5 + o * lda + k];
                    sum += aik * x[2 + k];
                }
                double expected = 1.25 * sum + 0.5 * before[i];
                assertTrue(Math.abs(y[i] - expected) <= 1e-5 * (1 + Math.abs(expected)), "gemv at " + o + data.tag());
            }
        }
    }

    @Test
    void theNativeBlasIsInUseWhereItsNativesShip() {
        // the build ships OpenBLAS for linux-x86_64 (the GPU bundle leaves it out); elsewhere, and without the
        // natives jar, netlib's Java BLAS is the expected choice
        String natives = "/org/bytedeco/openblas/" + org.bytedeco.javacpp.Loader.getPlatform() + "/libopenblas.so.0";
        if (GemmTest.class.getResource(natives) != null && System.getProperty(Gemm.BLAS_PROPERTY) == null) {
            assertEquals("OpenBLAS (native)", Gemm.implementation());
            assertTrue(Gemm.threadsItself());
        }
    }

    @Test
    void theJavaBlasIsUsedOnRequest() throws IOException, InterruptedException {
        List<String> lines = probe("-D" + Gemm.BLAS_PROPERTY + "=java");
        assertTrue(lines.get(0).startsWith("Java11BLAS") || lines.get(0).startsWith("VectorBLAS"), lines.toString());
        assertTrue(lines.get(0).contains(Gemm.BLAS_PROPERTY + "=java"), "says why: " + lines);
        assertTrue(Double.parseDouble(lines.get(1)) < 1e-5, lines.toString());
    }

    @Test
    void aMissingNativeLibraryFallsBackToTheJavaBlas() throws IOException, InterruptedException {
        List<String> lines = probe("-Ddev.ludovic.netlib.blas.nativeLibPath=/nonexistent/libopenblas.so.0");
        assertTrue(lines.get(0).startsWith("Java11BLAS") || lines.get(0).startsWith("VectorBLAS"), lines.toString());
        assertTrue(lines.get(0).contains("/nonexistent/libopenblas.so.0"), "names what failed: " + lines);
        assertTrue(Double.parseDouble(lines.get(1)) < 1e-5, lines.toString());
    }

    private static List<String> probe(String property) throws IOException, InterruptedException {
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        Process process = new ProcessBuilder(java, property, "-cp", System.getProperty("java.class.path"),
                GemmProbe.class.getName()).redirectErrorStream(false).start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the probe JVM did not finish");
        assertEquals(0, process.exitValue(), () -> out + new String(readQuietly(process), StandardCharsets.UTF_8));
        return out.lines().toList();
    }

    private static byte[] readQuietly(Process process) {
        try {
            return process.getErrorStream().readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }
}
