// libcublasLt.so.13: handles, versions and status texts. Matmul, layouts, preferences and heuristics are
// the generated stubs (a note, then CUBLAS_STATUS_NOT_SUPPORTED); every function here that returns
// something other than a status is implemented, so no stub's int is read as a pointer or a size.
#include <mutex>
#include <unordered_set>

#include "cublas_api.h"
#include "emu.h"
#include "status_text.h"

struct cublasLtContext {
    int unused = 0;
};

namespace {

std::mutex& registry_lock() {
    static std::mutex m;
    return m;
}
std::unordered_set<cublasLtContext*>& registry() {
    static auto* live = new std::unordered_set<cublasLtContext*>();  // never destroyed: calls may come at exit
    return *live;
}

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
    if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    if (!emu::has_current_context()) emu::ensure_runtime_context();  // as the runtime API binds it
    auto* h = new cublasLtContext();
    {
        std::lock_guard<std::mutex> guard(registry_lock());
        registry().insert(h);
    }
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    {
        std::lock_guard<std::mutex> guard(registry_lock());
        if (registry().erase(handle) == 0) {
            emu::error("cublasLtDestroy: handle %p is not a live cuBLASLt handle (destroyed, or never created)",
                       (void*) handle);
            return CUBLAS_STATUS_NOT_INITIALIZED;
        }
    }
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

size_t cublasLtGetVersion(void) { return CUBLAS_VERSION; }
size_t cublasLtGetCudartVersion(void) { return CUDART_VERSION; }

cublasStatus_t cublasLtGetProperty(libraryPropertyType type, int* value) {
    return cublas_emu::version_property(type, value);
}

const char* cublasLtGetStatusName(cublasStatus_t status) { return cublas_emu::status_name(status); }
const char* cublasLtGetStatusString(cublasStatus_t status) { return cublas_emu::status_string(status); }

}  // extern "C"
