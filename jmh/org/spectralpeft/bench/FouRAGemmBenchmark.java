package org.spectralpeft.bench;

import dev.ludovic.netlib.blas.BLAS;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.ejml.data.FMatrixRMaj;
import org.ejml.dense.row.CommonOps_FDRM;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Choosing the CPU GEMM for FouRA's folded forward (DESIGN.md): Z = X·Âᵀ (T × 2r) then Y += Z·B̂ᵀ (T × d),
 * with d = 4096 and 2r = 32 (r = 16, DFT), one thread, for three candidates: {@code loop}, plain Java in
 * axpy form over transposed factors (inner loops over contiguous memory, which the JIT vectorizes);
 * {@code netlib}, dev.ludovic.netlib's BLAS (its pure-Java implementation unless a native BLAS is found);
 * {@code ejml}, EJML's row-major float kernels. Parallelism over tokens is the same for all and left out.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class FouRAGemmBenchmark {
    @Param({"loop", "netlib", "ejml"})
    public String impl;

    @Param({"1", "16", "256", "4096"})
    public int tokens;

    @Param({"4096"})
    public int d;

    @Param({"32"})
    public int width;

    private float[] x;
    private float[] aHat;   // width × d
    private float[] aHatT;  // d × width (the loop's layout)
    private float[] bHat;   // d × width
    private float[] bHatT;  // width × d (the loop's layout)
    private float[] z;
    private float[] y;
    private BLAS blas;
    private FMatrixRMaj mx;
    private FMatrixRMaj ma;
    private FMatrixRMaj mb;
    private FMatrixRMaj mz;
    private FMatrixRMaj my;

    @Setup
    public void setUp() {
        Random random = new Random(5);
        x = gaussian(random, tokens * d);
        aHat = gaussian(random, width * d);
        bHat = gaussian(random, d * width);
        aHatT = transpose(aHat, width, d);
        bHatT = transpose(bHat, d, width);
        z = new float[tokens * width];
        y = gaussian(random, tokens * d);
        blas = BLAS.getInstance();
        mx = FMatrixRMaj.wrap(tokens, d, x);
        ma = FMatrixRMaj.wrap(width, d, aHat);
        mb = FMatrixRMaj.wrap(d, width, bHat);
        mz = FMatrixRMaj.wrap(tokens, width, z);
        my = FMatrixRMaj.wrap(tokens, d, y);
        System.err.println("netlib BLAS: " + blas.getClass().getName());
    }

    private static float[] gaussian(Random random, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
        }
        return a;
    }

    private static float[] transpose(float[] m, int rows, int cols) {
        float[] t = new float[m.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                t[j * rows + i] = m[i * cols + j];
            }
        }
        return t;
    }

    @Benchmark
    public float forward() {
        switch (impl) {
            case "loop" -> {
                for (int t = 0; t < tokens; t++) {
                    int zt = t * width;
                    java.util.Arrays.fill(z, zt, zt + width, 0f);
                    for (int k = 0; k < d; k++) {
                        float xk = x[t * d + k];
                        int row = k * width;
                        for (int i = 0; i < width; i++) {
                            z[zt + i] += xk * aHatT[row + i];
                        }
                    }
                    int yt = t * d;
                    for (int i = 0; i < width; i++) {
                        float zi = z[zt + i];
                        int row = i * d;
                        for (int p = 0; p < d; p++) {
                            y[yt + p] += zi * bHatT[row + p];
                        }
                    }
                }
            }
            case "netlib" -> {
                // column-major view of row-major arrays: Zᵀ = Â·Xᵀ, then Yᵀ += B̂·Zᵀ
                blas.sgemm("T", "N", width, tokens, d, 1f, aHat, d, x, d, 0f, z, width);
                blas.sgemm("T", "N", d, tokens, width, 1f, bHat, width, z, width, 1f, y, d);
            }
            case "ejml" -> {
                CommonOps_FDRM.multTransB(mx, ma, mz);
                CommonOps_FDRM.multAddTransB(mz, mb, my);
            }
            default -> throw new IllegalStateException(impl);
        }
        return y[y.length - 1];
    }
}
