package org.spectralpeft.cpu;

import dev.ludovic.netlib.blas.BLAS;
import dev.ludovic.netlib.blas.JavaBLAS;
import dev.ludovic.netlib.blas.NativeBLAS;
import java.io.IOException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Row-major single-precision GEMM, C = α·op(A)·op(B) + β·C, through dev.ludovic.netlib's BLAS interface
 * (chosen by measurement, bench/NOTES.md). The implementation behind it, decided once when this class loads:
 * <ul>
 *   <li>OpenBLAS, native, from org.bytedeco's openblas natives jar (a dependency, linux-x86_64), through
 *       netlib's JNI, which works on the caller's arrays without copying them. OpenBLAS runs a call on its own
 *       threads (as many as cores, or {@code OPENBLAS_NUM_THREADS}); see {@link #threadsItself()}.</li>
 *   <li>netlib's pure-Java kernels (the Vector API ones when the JVM runs with
 *       {@code --add-modules jdk.incubator.vector}) when those natives are missing or fail to load, on other
 *       platforms, or when the system property {@code spectralpeft.cpu.blas=java} is set.</li>
 * </ul>
 * An application that configured netlib itself first (its {@code dev.ludovic.netlib.blas.nativeLib} or
 * {@code nativeLibPath} properties, or any netlib call before this class loads) keeps its choice.
 *
 * <p>Each element of C is computed the same way whatever the threads around it (neither implementation splits
 * the inner dimension across threads), so results repeat bit for bit on one machine. Thread-safe.
 */
public final class Gemm {
    /**
     * netlib logs a WARNING for each faster implementation it cannot load (a native BLAS, the Vector API)
     * before it settles on one; that is the normal case, not a problem to show users. Held here because
     * java.util.logging keeps loggers only weakly. {@link #implementation()} says which one is in use.
     */
    private static final Logger NETLIB_LOGGER = quiet(Logger.getLogger("dev.ludovic.netlib.blas.InstanceBuilder"));
    /** The system property that asks for the pure-Java BLAS. */
    public static final String BLAS_PROPERTY = "spectralpeft.cpu.blas";
    private static final String NETLIB_LIBRARY = "dev.ludovic.netlib.blas.nativeLib";
    private static final String NETLIB_LIBRARY_PATH = "dev.ludovic.netlib.blas.nativeLibPath";
    /** Why the native BLAS is not in use, or null when it is. */
    private static String nativeMissing;
    private static final BLAS BLAS_INSTANCE = choose();

    private static Logger quiet(Logger logger) {
        if (logger.getLevel() == null) { // unless the application configured it
            logger.setLevel(Level.SEVERE);
        }
        return logger;
    }

    private static BLAS choose() {
        if ("java".equals(System.getProperty(BLAS_PROPERTY))) {
            nativeMissing = BLAS_PROPERTY + "=java";
            return JavaBLAS.getInstance();
        }
        if (System.getProperty(NETLIB_LIBRARY) == null && System.getProperty(NETLIB_LIBRARY_PATH) == null) {
            try {
                System.setProperty(NETLIB_LIBRARY_PATH, OpenBlasLibrary.extract().toString());
            } catch (IOException | RuntimeException | LinkageError unavailable) {
                nativeMissing = unavailable.getMessage();
                return JavaBLAS.getInstance();
            }
        }
        BLAS blas = BLAS.getInstance();
        if (!(blas instanceof NativeBLAS)) {
            nativeMissing = "netlib could not load " + System.getProperty(NETLIB_LIBRARY_PATH,
                    System.getProperty(NETLIB_LIBRARY, "a native BLAS"));
        }
        return blas;
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
        Operand<float[]> pa = Operand.of(a, aOff, lda, transA ? k : m, transA ? m : k);
        Operand<float[]> pb = Operand.of(b, bOff, ldb, transB ? n : k, transB ? k : n);
        // a row-major matrix is its transpose in column-major order: Cᵀ = op(B)ᵀ·op(A)ᵀ
        BLAS_INSTANCE.sgemm(transB ? "T" : "N", transA ? "T" : "N", n, m, k, alpha, pb.array, pb.off, pb.ld, pa.array,
                pa.off, pa.ld, beta, c, cOff, ldc);
    }

    /**
     * An operand as netlib takes it. netlib checks an operand as offset + rows·stride ≤ length, though its last row
     * needs only its own width: a sub-matrix that ends before the stride does (a band of columns of a larger
     * matrix) is refused while every element it reads is there. Such an operand is copied to a compact array.
     *
     * @param array float[] or double[]
     * @param off the first element
     * @param ld the row stride
     */
    private record Operand<A>(A array, int off, int ld) {
        static <A> Operand<A> of(A array, int off, int ld, int rows, int cols) {
            if ((long) off + (long) rows * ld <= java.lang.reflect.Array.getLength(array)) {
                return new Operand<>(array, off, ld);
            }
            @SuppressWarnings("unchecked")
            A packed = (A) java.lang.reflect.Array.newInstance(array.getClass().getComponentType(),
                    Math.multiplyExact(rows, cols));
            for (int r = 0; r < rows; r++) {
                System.arraycopy(array, off + r * ld, packed, r * cols, cols);
            }
            return new Operand<>(packed, 0, cols);
        }
    }

    /**
     * {@link #gemm} in double precision, for products whose sums must not round in float32.
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
    public static void dgemm(boolean transA, boolean transB, int m, int n, int k, double alpha,
                             double[] a, int aOff, int lda, double[] b, int bOff, int ldb,
                             double beta, double[] c, int cOff, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        Operand<double[]> pa = Operand.of(a, aOff, lda, transA ? k : m, transA ? m : k);
        Operand<double[]> pb = Operand.of(b, bOff, ldb, transB ? n : k, transB ? k : n);
        BLAS_INSTANCE.dgemm(transB ? "T" : "N", transA ? "T" : "N", n, m, k, alpha, pb.array, pb.off, pb.ld, pa.array,
                pa.off, pa.ld, beta, c, cOff, ldc);
    }

    /**
     * Row-major single-precision matrix-vector product, y = α·op(A)·x + β·y, A m × n (leading dimension lda),
     * x and y contiguous. For one token a GEMV is several times faster than the GEMM of one row with the
     * native BLAS, which spends longer starting its threads than computing (bench/NOTES.md).
     *
     * @param transA whether op(A) = Aᵀ (then x has m elements and y n), else x has n and y m
     * @param m rows of A
     * @param n columns of A
     * @param alpha α
     * @param a A's elements
     * @param aOff A's first element
     * @param lda A's row stride
     * @param x x's elements
     * @param xOff x's first element
     * @param beta β (0: y is overwritten, its contents never read)
     * @param y y's elements
     * @param yOff y's first element
     */
    public static void gemv(boolean transA, int m, int n, float alpha, float[] a, int aOff, int lda,
                            float[] x, int xOff, float beta, float[] y, int yOff) {
        if (m == 0 || n == 0) {
            return;
        }
        // a row-major A is Aᵀ in column-major order
        BLAS_INSTANCE.sgemv(transA ? "N" : "T", n, m, alpha, a, aOff, lda, x, xOff, 1, beta, y, yOff, 1);
    }

    /**
     * Whether one call already runs on several threads (the native BLAS), so that callers should hand it whole
     * products rather than split them across their own threads.
     *
     * @return true for the native BLAS
     */
    public static boolean threadsItself() {
        return BLAS_INSTANCE instanceof NativeBLAS;
    }

    /**
     * The implementation in use, for reports.
     *
     * @return "OpenBLAS (native)", or netlib's Java class name (Java11BLAS, VectorBLAS) and why the native one
     *     is not in use
     */
    public static String implementation() {
        if (BLAS_INSTANCE instanceof NativeBLAS) {
            return "OpenBLAS (native)";
        }
        return BLAS_INSTANCE.getClass().getSimpleName() + (nativeMissing == null ? "" : " (" + nativeMissing + ")");
    }
}
