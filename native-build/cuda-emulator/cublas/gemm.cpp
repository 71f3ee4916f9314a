// libcublas.so.13: the GEMM family. C = alpha * op(A) * op(B) + beta * C, column-major, computed in double
// and rounded once to C's type. Arguments are validated as cuBLAS does before anything is queued; the work
// goes on the handle's stream through emu::enqueue, which checks the named device ranges and orders it.
#include <algorithm>
#include <string>
#include <vector>

#include "internal.h"

using namespace cublas_emu;

namespace {

/** One GEMM call, of any flavour, in a common form. */
struct Gemm {
    const char* name;
    cublasOperation_t opa, opb;
    int64_t m, n, k;
    const void* alpha;
    const void* beta;
    cudaDataType ta, tb, tc, tscale;
    const void* a;
    int64_t lda;
    long long stride_a;
    const void* b;
    int64_t ldb;
    long long stride_b;
    void* c;
    int64_t ldc;
    long long stride_c;
    int64_t batch = 1;
    // pointer-array batches (cublas?gemmBatched, cublasGemmBatchedEx): a, b, c are device arrays of pointers
    bool pointer_arrays = false;
};

bool valid_op(int op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

/** The scale (alpha, beta) type and the A/B/C types cuBLAS accepts for a compute type (cublasGemmEx's table). */
bool supported_types(cublasComputeType_t compute, cudaDataType ab, cudaDataType b, cudaDataType c,
                     cudaDataType* scale) {
    if (ab != b) return false;
    switch (compute) {
        case CUBLAS_COMPUTE_16F:
        case CUBLAS_COMPUTE_16F_PEDANTIC:
            *scale = CUDA_R_16F;
            return ab == CUDA_R_16F && c == CUDA_R_16F;
        case CUBLAS_COMPUTE_32I:
        case CUBLAS_COMPUTE_32I_PEDANTIC:
            *scale = CUDA_R_32I;
            return ab == CUDA_R_8I && c == CUDA_R_32I;
        case CUBLAS_COMPUTE_32F:
        case CUBLAS_COMPUTE_32F_PEDANTIC:
            *scale = CUDA_R_32F;
            return (ab == CUDA_R_16BF && (c == CUDA_R_16BF || c == CUDA_R_32F)) ||
                   (ab == CUDA_R_16F && (c == CUDA_R_16F || c == CUDA_R_32F)) ||
                   (ab == CUDA_R_8I && c == CUDA_R_32F) || (ab == CUDA_R_32F && c == CUDA_R_32F);
        case CUBLAS_COMPUTE_32F_FAST_16F:
        case CUBLAS_COMPUTE_32F_FAST_16BF:
        case CUBLAS_COMPUTE_32F_FAST_TF32:
            *scale = CUDA_R_32F;
            return ab == CUDA_R_32F && c == CUDA_R_32F;
        case CUBLAS_COMPUTE_64F:
        case CUBLAS_COMPUTE_64F_PEDANTIC:
            *scale = CUDA_R_64F;
            return ab == CUDA_R_64F && c == CUDA_R_64F;
        default: return false;
    }
}

bool valid_algo(cublasGemmAlgo_t algo) {
    return (algo >= -1 && algo <= 23) || (algo >= 99 && algo <= 115);
}

/** Elements spanned by a rows x cols column-major matrix with leading dimension ld (0 when empty). */
int64_t extent(int64_t rows, int64_t cols, int64_t ld) { return rows == 0 || cols == 0 ? 0 : (cols - 1) * ld + rows; }

/** The device range every batch of a strided operand covers, as an Access (begin may lie below base). */
emu::Access strided_access(const void* base, int64_t rows, int64_t cols, int64_t ld, long long stride,
                           int64_t batch, size_t element, bool write, const char* what) {
    __int128 one = extent(rows, cols, ld);
    __int128 last = (__int128) (batch - 1) * stride;
    __int128 lo = std::min<__int128>(0, last), hi = std::max<__int128>(0, last) + one;
    __int128 bytes = (hi - lo) * (__int128) element;
    const char* begin = (const char*) base + (ptrdiff_t) (lo * (__int128) element);
    return emu::Access{begin, bytes > (__int128) SIZE_MAX ? SIZE_MAX : (size_t) bytes, write, what};
}

double read_scalar(const void* p, cudaDataType t) { return load_element(p, t, 0); }

/**
 * One product into C. A's op(A) rows and B's op(B) columns are first gathered as contiguous doubles, so
 * each entry is one dot product in double; beta == 0 never reads C, alpha == 0 never reads A or B.
 */
void multiply(const Gemm& g, const void* a, const void* b, void* c, double alpha, double beta,
              std::vector<double>& ra, std::vector<double>& cb) {
    const int64_t m = g.m, n = g.n, k = g.k;
    const bool products = alpha != 0 && k > 0;
    if (products) {
        ra.resize((size_t) (m * k));
        cb.resize((size_t) (n * k));
        for (int64_t i = 0; i < m; i++)  // ra[i*k + l] = op(A)(i, l)
            for (int64_t l = 0; l < k; l++)
                ra[i * k + l] = load_element(a, g.ta, g.opa == CUBLAS_OP_N ? i + l * g.lda : l + i * g.lda);
        for (int64_t j = 0; j < n; j++)  // cb[j*k + l] = op(B)(l, j)
            for (int64_t l = 0; l < k; l++)
                cb[j * k + l] = load_element(b, g.tb, g.opb == CUBLAS_OP_N ? l + j * g.ldb : j + l * g.ldb);
    }
    for (int64_t j = 0; j < n; j++) {
        for (int64_t i = 0; i < m; i++) {
            double v = 0;
            if (products) {
                const double* x = &ra[i * k];
                const double* y = &cb[j * k];
                double s = 0;
                for (int64_t l = 0; l < k; l++) s += x[l] * y[l];
                v = alpha * s;
            }
            if (beta != 0) v += beta * load_element(c, g.tc, i + j * g.ldc);
            store_element(c, g.tc, i + j * g.ldc, v);
        }
    }
}

cublasStatus_t run(cublasContext* h, const Gemm& g) {
    if (!valid_op(g.opa) || !valid_op(g.opb)) return CUBLAS_STATUS_INVALID_VALUE;
    const int64_t a_rows = g.opa == CUBLAS_OP_N ? g.m : g.k, a_cols = g.opa == CUBLAS_OP_N ? g.k : g.m;
    const int64_t b_rows = g.opb == CUBLAS_OP_N ? g.k : g.n, b_cols = g.opb == CUBLAS_OP_N ? g.n : g.k;
    if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (g.lda < std::max<int64_t>(1, a_rows) || g.ldb < std::max<int64_t>(1, b_rows) ||
        g.ldc < std::max<int64_t>(1, g.m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (g.alpha == nullptr || g.beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    if (g.m == 0 || g.n == 0 || g.batch == 0) return CUBLAS_STATUS_SUCCESS;

    const bool device_scalars = h->pointer_mode == CUBLAS_POINTER_MODE_DEVICE;
    double alpha = 0, beta = 0;
    if (!device_scalars) {
        alpha = read_scalar(g.alpha, g.tscale);
        beta = read_scalar(g.beta, g.tscale);
        if ((alpha == 0 || g.k == 0) && beta == 1) return CUBLAS_STATUS_SUCCESS;  // C unchanged: nothing runs
    }
    const bool reads_ab = g.k > 0 && (device_scalars || alpha != 0);

    std::vector<emu::Access> accesses;
    const size_t scale_bytes = element_size(g.tscale);
    if (device_scalars) {
        accesses.push_back({g.alpha, scale_bytes, false, "alpha"});
        accesses.push_back({g.beta, scale_bytes, false, "beta"});
    }
    if (g.pointer_arrays) {
        // the matrices are known only when the work reads the arrays; it checks each one then
        const size_t bytes = (size_t) g.batch * sizeof(void*);
        if (reads_ab) {
            accesses.push_back({g.a, bytes, false, "Aarray"});
            accesses.push_back({g.b, bytes, false, "Barray"});
        }
        accesses.push_back({g.c, bytes, false, "Carray"});
    } else {
        if (reads_ab) {
            accesses.push_back(strided_access(g.a, a_rows, a_cols, g.lda, g.stride_a, g.batch, element_size(g.ta),
                                              false, "A"));
            accesses.push_back(strided_access(g.b, b_rows, b_cols, g.ldb, g.stride_b, g.batch, element_size(g.tb),
                                              false, "B"));
        }
        // C is named as written whether or not beta lets it be read: a write conflicts with any access
        accesses.push_back(strided_access(g.c, g.m, g.n, g.ldc, g.stride_c, g.batch, element_size(g.tc), true, "C"));
    }
    if (h->workspace != nullptr) accesses.push_back({h->workspace, h->workspace_bytes, true, "workspace"});

    auto work = [g, device_scalars, alpha, beta, a_rows, a_cols, b_rows, b_cols]() {
        double al = alpha, be = beta;
        if (device_scalars) {
            al = read_scalar(g.alpha, g.tscale);
            be = read_scalar(g.beta, g.tscale);
            if ((al == 0 || g.k == 0) && be == 1) return;
        }
        std::vector<double> ra, cb;
        const bool products = al != 0 && g.k > 0;
        for (int64_t i = 0; i < g.batch; i++) {
            const void* a;
            const void* b;
            void* c;
            if (g.pointer_arrays) {
                a = ((const void* const*) g.a)[i];
                b = ((const void* const*) g.b)[i];
                c = ((void* const*) g.c)[i];
                // liveness and bounds only: the core cannot order accesses it learns of while the work runs
                std::string at = std::string(g.name) + " batch " + std::to_string(i) + " ";
                if (products && (!emu::check_range(a, extent(a_rows, a_cols, g.lda) * element_size(g.ta), at + "A") ||
                                 !emu::check_range(b, extent(b_rows, b_cols, g.ldb) * element_size(g.tb), at + "B")))
                    continue;
                if (!emu::check_range(c, extent(g.m, g.n, g.ldc) * element_size(g.tc), at + "C")) continue;
            } else {
                a = (const char*) g.a + (ptrdiff_t) (i * g.stride_a) * (ptrdiff_t) element_size(g.ta);
                b = (const char*) g.b + (ptrdiff_t) (i * g.stride_b) * (ptrdiff_t) element_size(g.tb);
                c = (char*) g.c + (ptrdiff_t) (i * g.stride_c) * (ptrdiff_t) element_size(g.tc);
            }
            multiply(g, a, b, c, al, be, ra, cb);
        }
    };
    bind_context();
    if (!emu::enqueue((void*) h->stream, g.name, std::move(accesses), std::move(work)))
        return CUBLAS_STATUS_EXECUTION_FAILED;  // the core has reported why; nothing was queued
    return CUBLAS_STATUS_SUCCESS;
}

/** The typed and Ex entry points funnel into run() through this. */
cublasStatus_t gemm(cublasHandle_t handle, const char* name, cublasOperation_t opa, cublasOperation_t opb,
                    int64_t m, int64_t n, int64_t k, const void* alpha, const void* a, cudaDataType ta, int64_t lda,
                    long long sa, const void* b, cudaDataType tb, int64_t ldb, long long sb, const void* beta,
                    void* c, cudaDataType tc, int64_t ldc, long long sc, int64_t batch, bool arrays,
                    cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    Gemm g{name, opa, opb, m, n, k, alpha, beta, ta, tb, tc, CUDA_R_32F, a, lda, sa, b, ldb, sb, c, ldc, sc, batch,
           arrays};
    cublasContext* h = live_handle(handle, name);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!supported_types(compute, ta, tb, tc, &g.tscale) || !valid_algo(algo)) {
        emu::note("%s: compute type %d with A/B/C types %d/%d/%d, algorithm %d: not supported by cuBLAS", name,
                  (int) compute, (int) ta, (int) tb, (int) tc, (int) algo);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    return run(h, g);
}

}  // namespace

// ---------------------------------------------------------------- typed GEMMs

#define TYPED_GEMMS(P, T, DT, COMPUTE)                                                                           \
    cublasStatus_t cublas##P##gemm_impl(const char* name, CUBLAS_GEMM_ARGS(int64_t, T)) {                       \
        return gemm(handle, name, transa, transb, m, n, k, alpha, A, DT, lda, 0, B, DT, ldb, 0, beta, C, DT, ldc, \
                    0, 1, false, COMPUTE, CUBLAS_GEMM_DEFAULT);                                                 \
    }                                                                                                            \
    cublasStatus_t cublas##P##gemmStrided_impl(const char* name, CUBLAS_GEMM_STRIDED_ARGS(int64_t, T)) {        \
        return gemm(handle, name, transa, transb, m, n, k, alpha, A, DT, lda, strideA, B, DT, ldb, strideB, beta, \
                    C, DT, ldc, strideC, batchCount, false, COMPUTE, CUBLAS_GEMM_DEFAULT);                      \
    }                                                                                                            \
    cublasStatus_t cublas##P##gemmBatched_impl(const char* name, CUBLAS_GEMM_BATCHED_ARGS(int64_t, T)) {        \
        return gemm(handle, name, transa, transb, m, n, k, alpha, A, DT, lda, 0, B, DT, ldb, 0, beta, (void*) C,  \
                    DT, ldc, 0, batchCount, true, COMPUTE, CUBLAS_GEMM_DEFAULT);                                \
    }

namespace {
TYPED_GEMMS(S, float, CUDA_R_32F, CUBLAS_COMPUTE_32F)
TYPED_GEMMS(D, double, CUDA_R_64F, CUBLAS_COMPUTE_64F)
TYPED_GEMMS(H, cublas_half_bits, CUDA_R_16F, CUBLAS_COMPUTE_16F)
}  // namespace

#define GEMM_ENTRY(NAME, IMPL, I, T)                                                                             \
    cublasStatus_t NAME(CUBLAS_GEMM_ARGS(I, T)) {                                                               \
        return IMPL(#NAME, handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);                \
    }
#define STRIDED_ENTRY(NAME, IMPL, I, T)                                                                          \
    cublasStatus_t NAME(CUBLAS_GEMM_STRIDED_ARGS(I, T)) {                                                       \
        return IMPL(#NAME, handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, \
                    strideC, batchCount);                                                                        \
    }
#define BATCHED_ENTRY(NAME, IMPL, I, T)                                                                          \
    cublasStatus_t NAME(CUBLAS_GEMM_BATCHED_ARGS(I, T)) {                                                       \
        return IMPL(#NAME, handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, batchCount);    \
    }

extern "C" {

GEMM_ENTRY(cublasSgemm_v2, cublasSgemm_impl, int, float)
GEMM_ENTRY(cublasDgemm_v2, cublasDgemm_impl, int, double)
GEMM_ENTRY(cublasHgemm, cublasHgemm_impl, int, cublas_half_bits)
GEMM_ENTRY(cublasSgemm_v2_64, cublasSgemm_impl, int64_t, float)
GEMM_ENTRY(cublasDgemm_v2_64, cublasDgemm_impl, int64_t, double)
GEMM_ENTRY(cublasHgemm_64, cublasHgemm_impl, int64_t, cublas_half_bits)
STRIDED_ENTRY(cublasSgemmStridedBatched, cublasSgemmStrided_impl, int, float)
STRIDED_ENTRY(cublasDgemmStridedBatched, cublasDgemmStrided_impl, int, double)
STRIDED_ENTRY(cublasHgemmStridedBatched, cublasHgemmStrided_impl, int, cublas_half_bits)
STRIDED_ENTRY(cublasSgemmStridedBatched_64, cublasSgemmStrided_impl, int64_t, float)
STRIDED_ENTRY(cublasDgemmStridedBatched_64, cublasDgemmStrided_impl, int64_t, double)
STRIDED_ENTRY(cublasHgemmStridedBatched_64, cublasHgemmStrided_impl, int64_t, cublas_half_bits)
BATCHED_ENTRY(cublasSgemmBatched, cublasSgemmBatched_impl, int, float)
BATCHED_ENTRY(cublasDgemmBatched, cublasDgemmBatched_impl, int, double)
BATCHED_ENTRY(cublasHgemmBatched, cublasHgemmBatched_impl, int, cublas_half_bits)
BATCHED_ENTRY(cublasSgemmBatched_64, cublasSgemmBatched_impl, int64_t, float)
BATCHED_ENTRY(cublasDgemmBatched_64, cublasDgemmBatched_impl, int64_t, double)
BATCHED_ENTRY(cublasHgemmBatched_64, cublasHgemmBatched_impl, int64_t, cublas_half_bits)

// ---------------------------------------------------------------- mixed-precision GEMMs

// cublasSgemmEx: float scalars and compute, the A/B/C type combinations of CUBLAS_COMPUTE_32F.
cublasStatus_t cublasSgemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                             int k, const float* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                             cudaDataType Btype, int ldb, const float* beta, void* C, cudaDataType Ctype, int ldc) {
    return gemm(handle, "cublasSgemmEx", transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C,
                Ctype, ldc, 0, 1, false, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t cublasSgemmEx_64(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int64_t m,
                                int64_t n, int64_t k, const float* alpha, const void* A, cudaDataType Atype,
                                int64_t lda, const void* B, cudaDataType Btype, int64_t ldb, const float* beta,
                                void* C, cudaDataType Ctype, int64_t ldc) {
    return gemm(handle, "cublasSgemmEx_64", transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta,
                C, Ctype, ldc, 0, 1, false, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    return gemm(handle, "cublasGemmEx", transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C,
                Ctype, ldc, 0, 1, false, computeType, algo);
}

cublasStatus_t cublasGemmEx_64(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int64_t m,
                               int64_t n, int64_t k, const void* alpha, const void* A, cudaDataType Atype,
                               int64_t lda, const void* B, cudaDataType Btype, int64_t ldb, const void* beta, void* C,
                               cudaDataType Ctype, int64_t ldc, cublasComputeType_t computeType,
                               cublasGemmAlgo_t algo) {
    return gemm(handle, "cublasGemmEx_64", transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta,
                C, Ctype, ldc, 0, 1, false, computeType, algo);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                          int lda, long long strideA, const void* B, cudaDataType Btype, int ldb,
                                          long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc,
                                          long long strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo) {
    return gemm(handle, "cublasGemmStridedBatchedEx", transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B,
                Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, false, computeType, algo);
}

cublasStatus_t cublasGemmStridedBatchedEx_64(cublasHandle_t handle, cublasOperation_t transa,
                                             cublasOperation_t transb, int64_t m, int64_t n, int64_t k,
                                             const void* alpha, const void* A, cudaDataType Atype, int64_t lda,
                                             long long strideA, const void* B, cudaDataType Btype, int64_t ldb,
                                             long long strideB, const void* beta, void* C, cudaDataType Ctype,
                                             int64_t ldc, long long strideC, int64_t batchCount,
                                             cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    return gemm(handle, "cublasGemmStridedBatchedEx_64", transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B,
                Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, false, computeType, algo);
}

cublasStatus_t cublasGemmBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                   int n, int k, const void* alpha, const void* const A[], cudaDataType Atype,
                                   int lda, const void* const B[], cudaDataType Btype, int ldb, const void* beta,
                                   void* const C[], cudaDataType Ctype, int ldc, int batchCount,
                                   cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    return gemm(handle, "cublasGemmBatchedEx", transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0,
                beta, (void*) C, Ctype, ldc, 0, batchCount, true, computeType, algo);
}

cublasStatus_t cublasGemmBatchedEx_64(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                      int64_t m, int64_t n, int64_t k, const void* alpha, const void* const A[],
                                      cudaDataType Atype, int64_t lda, const void* const B[], cudaDataType Btype,
                                      int64_t ldb, const void* beta, void* const C[], cudaDataType Ctype,
                                      int64_t ldc, int64_t batchCount, cublasComputeType_t computeType,
                                      cublasGemmAlgo_t algo) {
    return gemm(handle, "cublasGemmBatchedEx_64", transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0,
                beta, (void*) C, Ctype, ldc, 0, batchCount, true, computeType, algo);
}

}  // extern "C"
