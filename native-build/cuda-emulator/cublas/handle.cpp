// libcublas.so.13: handles, their settings, versions and status texts.
#include <mutex>
#include <unordered_set>

#include "internal.h"
#include "status_text.h"

namespace cublas_emu {

static std::mutex& registry_lock() {
    static std::mutex m;
    return m;
}
static std::unordered_set<cublasContext*>& registry() {
    static auto* live = new std::unordered_set<cublasContext*>();  // never destroyed: calls may come at exit
    return *live;
}

cublasContext* live_handle(cublasHandle_t handle, const char* call) {
    if (handle == nullptr) return nullptr;
    std::lock_guard<std::mutex> guard(registry_lock());
    if (registry().count(handle)) return handle;
    emu::error("%s: handle %p is not a live cuBLAS handle (destroyed, or never created)", call, (void*) handle);
    return nullptr;
}

}  // namespace cublas_emu

using namespace cublas_emu;

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
    if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    bind_context();
    auto* h = new cublasContext();
    {
        std::lock_guard<std::mutex> guard(registry_lock());
        registry().insert(h);
    }
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    cublasContext* h = live_handle(handle, "cublasDestroy_v2");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    // cuBLAS documents that releasing a handle synchronizes the device; the handle's stream is where its work went
    emu::synchronize(h->stream);
    {
        std::lock_guard<std::mutex> guard(registry_lock());
        registry().erase(h);
    }
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version) {
    if (live_handle(handle, "cublasGetVersion_v2") == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (version == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *version = CUBLAS_VERSION;
    return CUBLAS_STATUS_SUCCESS;
}

// The legacy (cublas.h) form, without a handle.
cublasStatus_t cublasGetVersion(int* version) {
    if (version == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *version = CUBLAS_VERSION;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value) {
    return cublas_emu::version_property(type, value);
}

size_t cublasGetCudartVersion(void) { return CUDART_VERSION; }

const char* cublasGetStatusName(cublasStatus_t status) { return status_name(status); }
const char* cublasGetStatusString(cublasStatus_t status) { return status_string(status); }

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
    cublasContext* h = live_handle(handle, "cublasSetStream_v2");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = stream;
    // documented: setting the stream resets the workspace to the library's default pool
    h->workspace = nullptr;
    h->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* stream) {
    cublasContext* h = live_handle(handle, "cublasGetStream_v2");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (stream == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t bytes) {
    cublasContext* h = live_handle(handle, "cublasSetWorkspace_v2");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if ((uintptr_t) workspace % 256 != 0) return CUBLAS_STATUS_INVALID_VALUE;  // documented alignment
    if (workspace != nullptr && bytes > 0 && !emu::check_range(workspace, bytes, "cublasSetWorkspace_v2 workspace"))
        return CUBLAS_STATUS_INVALID_VALUE;
    h->workspace = bytes > 0 ? workspace : nullptr;
    h->workspace_bytes = workspace != nullptr ? bytes : 0;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
    cublasContext* h = live_handle(handle, "cublasSetPointerMode_v2");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
    h->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode) {
    cublasContext* h = live_handle(handle, "cublasGetPointerMode_v2");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}

// The math mode only permits faster, less precise paths; every GEMM here computes in double regardless.
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    cublasContext* h = live_handle(handle, "cublasSetMathMode");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    int base = mode & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base < CUBLAS_DEFAULT_MATH || base > CUBLAS_FP32_EMULATED_BF16X9_MATH) return CUBLAS_STATUS_INVALID_VALUE;
    h->math_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
    cublasContext* h = live_handle(handle, "cublasGetMathMode");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->math_mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetAtomicsMode(cublasHandle_t handle, cublasAtomicsMode_t mode) {
    cublasContext* h = live_handle(handle, "cublasSetAtomicsMode");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_ATOMICS_NOT_ALLOWED && mode != CUBLAS_ATOMICS_ALLOWED) return CUBLAS_STATUS_INVALID_VALUE;
    h->atomics_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetAtomicsMode(cublasHandle_t handle, cublasAtomicsMode_t* mode) {
    cublasContext* h = live_handle(handle, "cublasGetAtomicsMode");
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->atomics_mode;
    return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
