// libcublas.so.13: the helper copies between host and device (cublasSet/GetVector, cublasSet/GetMatrix and
// their Async and _64 forms). The synchronous ones run on the legacy default stream and wait for it.
#include <cstring>

#include "internal.h"

using namespace cublas_emu;

namespace {

/** Copies a rows x cols matrix of elemSize-byte elements (a vector is rows 1 with ld = inc). */
cublasStatus_t copy(const char* name, bool to_device, int64_t rows, int64_t cols, int64_t element, const void* src,
                    int64_t ld_src, void* dst, int64_t ld_dst, cudaStream_t stream, bool wait) {
    if (rows < 0 || cols < 0 || element <= 0 || ld_src <= 0 || ld_dst <= 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (rows == 0 || cols == 0) return CUBLAS_STATUS_SUCCESS;
    bind_context();
    const void* device = to_device ? dst : src;
    int64_t ld_device = to_device ? ld_dst : ld_src;
    size_t bytes = (size_t) (((cols - 1) * ld_device + rows) * element);
    std::vector<emu::Access> accesses{{device, bytes, to_device, to_device ? "device destination" : "device source"}};
    auto work = [=]() {
        for (int64_t j = 0; j < cols; j++)
            for (int64_t i = 0; i < rows; i++)
                std::memcpy((char*) dst + (i + j * ld_dst) * element, (const char*) src + (i + j * ld_src) * element,
                            (size_t) element);
    };
    if (!emu::enqueue((void*) stream, name, std::move(accesses), std::move(work))) return CUBLAS_STATUS_MAPPING_ERROR;
    if (wait) emu::synchronize((void*) stream);
    return CUBLAS_STATUS_SUCCESS;
}

// A vector of n elements with increment inc is a 1 x n matrix with leading dimension inc.
cublasStatus_t vector(const char* name, bool to_device, int64_t n, int64_t element, const void* x, int64_t incx,
                      void* y, int64_t incy, cudaStream_t stream, bool wait) {
    if (element <= 0 || incx <= 0 || incy <= 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (n <= 0) return CUBLAS_STATUS_SUCCESS;
    return copy(name, to_device, 1, n, element, x, incx, y, incy, stream, wait);
}

}  // namespace

extern "C" {

cublasStatus_t cublasSetVector(int n, int elemSize, const void* x, int incx, void* y, int incy) {
    return vector("cublasSetVector", true, n, elemSize, x, incx, y, incy, nullptr, true);
}
cublasStatus_t cublasGetVector(int n, int elemSize, const void* x, int incx, void* y, int incy) {
    return vector("cublasGetVector", false, n, elemSize, x, incx, y, incy, nullptr, true);
}
cublasStatus_t cublasSetVector_64(int64_t n, int64_t elemSize, const void* x, int64_t incx, void* y, int64_t incy) {
    return vector("cublasSetVector_64", true, n, elemSize, x, incx, y, incy, nullptr, true);
}
cublasStatus_t cublasGetVector_64(int64_t n, int64_t elemSize, const void* x, int64_t incx, void* y, int64_t incy) {
    return vector("cublasGetVector_64", false, n, elemSize, x, incx, y, incy, nullptr, true);
}
cublasStatus_t cublasSetVectorAsync(int n, int elemSize, const void* x, int incx, void* y, int incy,
                                    cudaStream_t stream) {
    return vector("cublasSetVectorAsync", true, n, elemSize, x, incx, y, incy, stream, false);
}
cublasStatus_t cublasGetVectorAsync(int n, int elemSize, const void* x, int incx, void* y, int incy,
                                    cudaStream_t stream) {
    return vector("cublasGetVectorAsync", false, n, elemSize, x, incx, y, incy, stream, false);
}
cublasStatus_t cublasSetVectorAsync_64(int64_t n, int64_t elemSize, const void* x, int64_t incx, void* y,
                                       int64_t incy, cudaStream_t stream) {
    return vector("cublasSetVectorAsync_64", true, n, elemSize, x, incx, y, incy, stream, false);
}
cublasStatus_t cublasGetVectorAsync_64(int64_t n, int64_t elemSize, const void* x, int64_t incx, void* y,
                                       int64_t incy, cudaStream_t stream) {
    return vector("cublasGetVectorAsync_64", false, n, elemSize, x, incx, y, incy, stream, false);
}

cublasStatus_t cublasSetMatrix(int rows, int cols, int elemSize, const void* A, int lda, void* B, int ldb) {
    return copy("cublasSetMatrix", true, rows, cols, elemSize, A, lda, B, ldb, nullptr, true);
}
cublasStatus_t cublasGetMatrix(int rows, int cols, int elemSize, const void* A, int lda, void* B, int ldb) {
    return copy("cublasGetMatrix", false, rows, cols, elemSize, A, lda, B, ldb, nullptr, true);
}
cublasStatus_t cublasSetMatrix_64(int64_t rows, int64_t cols, int64_t elemSize, const void* A, int64_t lda, void* B,
                                  int64_t ldb) {
    return copy("cublasSetMatrix_64", true, rows, cols, elemSize, A, lda, B, ldb, nullptr, true);
}
cublasStatus_t cublasGetMatrix_64(int64_t rows, int64_t cols, int64_t elemSize, const void* A, int64_t lda, void* B,
                                  int64_t ldb) {
    return copy("cublasGetMatrix_64", false, rows, cols, elemSize, A, lda, B, ldb, nullptr, true);
}
cublasStatus_t cublasSetMatrixAsync(int rows, int cols, int elemSize, const void* A, int lda, void* B, int ldb,
                                    cudaStream_t stream) {
    return copy("cublasSetMatrixAsync", true, rows, cols, elemSize, A, lda, B, ldb, stream, false);
}
cublasStatus_t cublasGetMatrixAsync(int rows, int cols, int elemSize, const void* A, int lda, void* B, int ldb,
                                    cudaStream_t stream) {
    return copy("cublasGetMatrixAsync", false, rows, cols, elemSize, A, lda, B, ldb, stream, false);
}
cublasStatus_t cublasSetMatrixAsync_64(int64_t rows, int64_t cols, int64_t elemSize, const void* A, int64_t lda,
                                       void* B, int64_t ldb, cudaStream_t stream) {
    return copy("cublasSetMatrixAsync_64", true, rows, cols, elemSize, A, lda, B, ldb, stream, false);
}
cublasStatus_t cublasGetMatrixAsync_64(int64_t rows, int64_t cols, int64_t elemSize, const void* A, int64_t lda,
                                       void* B, int64_t ldb, cudaStream_t stream) {
    return copy("cublasGetMatrixAsync_64", false, rows, cols, elemSize, A, lda, B, ldb, stream, false);
}

}  // extern "C"
