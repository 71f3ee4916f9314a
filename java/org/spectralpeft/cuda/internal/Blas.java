package org.spectralpeft.cuda.internal;

import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cublas.CUBLAS_STATUS_SUCCESS;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.javacpp.FloatPointer;
import org.spectralpeft.cuda.CudaStream;

/**
 * Float32 GEMMs through cuBLAS on row-major matrices, for the families' CUDA backends. A cuBLAS handle
 * carries its stream, so concurrent calls must not share one: each GEMM borrows a handle from a pool (made
 * on demand, one per thread in flight), sets the call's stream on it and returns it. Default math mode: no
 * TF32, the precision the tests hold every backend to. Internal; owned by the context.
 */
public final class Blas implements AutoCloseable {
    /** A handle and the host-side scalars its GEMMs read (host pointer mode). */
    private static final class Handle {
        final cublasContext context = new cublasContext();
        final FloatPointer alpha = new FloatPointer(1);
        final FloatPointer beta = new FloatPointer(1);
    }

    private final ConcurrentLinkedDeque<Handle> idle = new ConcurrentLinkedDeque<>();
    private final List<Handle> all = new ArrayList<>();
    private boolean closed;

    /** Made by the context: call with it current. */
    public Blas() {
    }

    /**
     * c (m × n, row pitch ldc) = alpha·op(a)·op(b) + beta·c on row-major float32 device matrices, queued on
     * {@code stream}; op(a) is m × k, op(b) k × n. With beta = 0, c need not hold numbers.
     *
     * @param stream the stream
     * @param transA use aᵀ (a is then k × m)
     * @param transB use bᵀ (b is then n × k)
     * @param m rows of c
     * @param n columns of c
     * @param k the inner dimension
     * @param alpha the product's scale
     * @param a a's device address
     * @param lda a's row pitch in floats
     * @param b b's device address
     * @param ldb b's row pitch in floats
     * @param beta c's scale
     * @param c c's device address
     * @param ldc c's row pitch in floats
     * @throws IllegalStateException if cuBLAS refuses the call
     */
    public void gemm(CudaStream stream, boolean transA, boolean transB, int m, int n, int k, float alpha, long a,
                     int lda, long b, int ldb, float beta, long c, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        // row-major c = op(a)·op(b) is column-major cᵀ = op(b)ᵀ·op(a)ᵀ, and a row-major matrix read
        // column-major is its transpose: swap the operands, keep the flags
        // timed by shape, so that a stage profile tells a call's GEMMs apart (the label only when it is read)
        String stage = StageTimer.isInstalled() ? stageLabel(transA, transB, m, n, k) : "cublasSgemm";
        onStream(stream, alpha, beta, stage, "cublasSgemm", h -> cublas.cublasSgemm_v2(h.context,
                transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, h.alpha,
                NativeHandles.floatsAt(b), ldb, NativeHandles.floatsAt(a), lda, h.beta, NativeHandles.floatsAt(c), ldc));
    }

    /**
     * {@code batch} GEMMs of one shape in one cuBLAS call, as {@link #gemm} each: c_i = alpha·op(a_i)·op(b_i) +
     * beta·c_i with a_i = a + i·strideA floats, likewise b and c (row-major, row pitches as given), queued on
     * {@code stream}. With beta = 0, c need not hold numbers.
     *
     * @param stream the stream
     * @param transA use aᵀ
     * @param transB use bᵀ
     * @param m rows of each c
     * @param n columns of each c
     * @param k the inner dimension
     * @param alpha the products' scale
     * @param a the first a's device address
     * @param lda a's row pitch in floats
     * @param strideA floats from one a to the next
     * @param b the first b's device address
     * @param ldb b's row pitch in floats
     * @param strideB floats from one b to the next
     * @param beta c's scale
     * @param c the first c's device address
     * @param ldc c's row pitch in floats
     * @param strideC floats from one c to the next
     * @param batch the number of products
     * @throws IllegalStateException if cuBLAS refuses the call
     */
    public void gemmStridedBatched(CudaStream stream, boolean transA, boolean transB, int m, int n, int k, float alpha,
                                   long a, int lda, long strideA, long b, int ldb, long strideB, float beta, long c,
                                   int ldc, long strideC, int batch) {
        if (m == 0 || n == 0 || batch == 0) {
            return;
        }
        // the operands swapped as in gemm
        String stage = StageTimer.isInstalled() ? stageLabel(transA, transB, m, n, k) + " × " + batch
                : "cublasSgemmStridedBatched";
        onStream(stream, alpha, beta, stage, "cublasSgemmStridedBatched", h -> cublas.cublasSgemmStridedBatched(
                h.context, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, h.alpha,
                NativeHandles.floatsAt(b), ldb, strideB, NativeHandles.floatsAt(a), lda, strideA, h.beta,
                NativeHandles.floatsAt(c), ldc, strideC, batch));
    }

    /**
     * One cuBLAS call on a borrowed handle: the handle set to {@code stream}, its host scalars to alpha and beta,
     * then {@code call} timed as {@code stage}, its status checked under {@code name}.
     */
    private void onStream(CudaStream stream, float alpha, float beta, String stage, String name,
                          java.util.function.ToIntFunction<Handle> call) {
        Handle h = borrow();
        try {
            check(cublas.cublasSetStream_v2(h.context, NativeHandles.runtimeStream(stream.handle())), "cublasSetStream");
            h.alpha.put(alpha);
            h.beta.put(beta);
            StageTimer.time(stage, stream, () -> check(call.applyAsInt(h), name));
        } finally {
            idle.push(h);
        }
    }

    /** "cublasSgemm m×n×k", with ᵀ after an operand that is transposed: c (m × n) = op(a)·op(b), k inner. */
    static String stageLabel(boolean transA, boolean transB, int m, int n, int k) {
        return "cublasSgemm " + m + "×" + n + "×" + k + (transA || transB
                ? " (" + (transA ? "aᵀ" : "a") + "·" + (transB ? "bᵀ" : "b") + ")" : "");
    }

    private Handle borrow() {
        Handle h = idle.poll();
        if (h != null) {
            return h;
        }
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("the cuBLAS handles are closed");
            }
            Handle made = new Handle();
            check(cublas.cublasCreate_v2(made.context), "cublasCreate");
            all.add(made);
            return made;
        }
    }

    private static void check(int status, String call) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            throw new IllegalStateException(call + " failed: " + cublas.cublasGetStatusString(status).getString()
                    + " (status " + status + ")");
        }
    }

    /** Destroys every handle; call with the context current, after the work that used them has finished. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Handle h : all) {
            cublas.cublasDestroy_v2(h.context);
            h.alpha.close();
            h.beta.close();
        }
        all.clear();
        idle.clear();
    }
}
