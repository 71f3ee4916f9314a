package org.spectralpeft.cpu;

import dev.ludovic.netlib.blas.BLAS;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Row-major single-precision GEMM, C = α·op(A)·op(B) + β·C, through dev.ludovic.netlib's BLAS (chosen by
 * measurement, bench/NOTES.md: its pure-Java kernels, the Vector API ones when the JVM runs with
 * {@code --add-modules jdk.incubator.vector}, or a native BLAS when one is installed). Each call computes
 * every element of C the same way whatever the threads around it, so results are deterministic on one
 * machine. Thread-safe.
 */
public final class Gemm {
    /**
     * netlib logs a WARNING for each faster implementation it cannot load (a native BLAS, the Vector API)
     * before it settles on one; that is the normal case, not a problem to show users. Held here because
     * java.util.logging keeps loggers only weakly. {@link #implementation()} says which one is in use.
     */
    private static final Logger NETLIB_LOGGER = quiet(Logger.getLogger("dev.ludovic.netlib.blas.InstanceBuilder"));
    private static final BLAS BLAS_INSTANCE = BLAS.getInstance();

    private static Logger quiet(Logger logger) {
        if (logger.getLevel() == null) { // unless the application configured it
            logger.setLevel(Level.SEVERE);
        }
        return logger;
    }

    private Gemm() {
    }

    /**
     * C (m × n, leading dimension ldc) = α·op(A)·op(B) + β·C, all row-major; op(A) is m × k and op(B) k × n.
     *
     * @param transA whether op(A) = Aᵀ (A stored k × m)
     * @param transB whether op(B) = Bᵀ (B stored n × k)
     * @param m rows of C
     * @param n columns of C
     * @param k the inner dimension
     * @param alpha α
     * @param a A's elements
     * @param aOff A's first element
     * @param lda A's row stride
     * @param b B's elements
     * @param bOff B's first element
     * @param ldb B's row stride
     * @param beta β (0: C is overwritten, its contents never read)
     * @param c C's elements
     * @param cOff C's first element
     * @param ldc C's row stride
     */
    public static void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                            float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                            float beta, float[] c, int cOff, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        // a row-major matrix is its transpose in column-major order: Cᵀ = op(B)ᵀ·op(A)ᵀ
        BLAS_INSTANCE.sgemm(transB ? "T" : "N", transA ? "T" : "N", n, m, k, alpha, b, bOff, ldb, a, aOff, lda,
                beta, c, cOff, ldc);
    }

    /**
     * The implementation in use, for reports.
     *
     * @return its class's simple name (Java11BLAS, VectorBLAS, a native one)
     */
    public static String implementation() {
        return BLAS_INSTANCE.getClass().getSimpleName();
    }
}
