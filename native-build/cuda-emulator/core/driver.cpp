// The driver API entry points (cuda.h signatures): initialization, the one device, its primary context,
// memory, copies, memsets, streams, events and memory pools. Modules and launches are in launch.cpp.
// Every entry point first returns an error reported since the last call (see emu::error).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core.h"

using namespace emu;

namespace {

bool g_initialized = false;

struct PrimaryContext {
    int driver_refs = 0;   // cuDevicePrimaryCtxRetain/Release
    bool runtime_ref = false;  // the runtime API's own retain (held for the process, as cudart does)
    bool active() const { return driver_refs > 0 || runtime_ref; }
};
PrimaryContext g_primary;
thread_local CUcontext t_current = nullptr;

CUcontext primary_handle() { return reinterpret_cast<CUcontext>(&g_primary); }

struct MemPool { size_t release_threshold = 0; };
MemPool g_default_pool;
CUmemoryPool g_current_pool = reinterpret_cast<CUmemoryPool>(&g_default_pool);

#define ENTER()                                            \
    do {                                                   \
        if (CUresult pending = take_pending_error()) return pending; \
    } while (0)

#define NEED_INIT()                                        \
    do {                                                   \
        ENTER();                                           \
        if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED; \
    } while (0)

#define NEED_CONTEXT()                                     \
    do {                                                   \
        NEED_INIT();                                       \
        if (!has_current_context()) return CUDA_ERROR_INVALID_CONTEXT; \
    } while (0)

CUresult check_device(CUdevice d) { return d == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE; }

void context_released() {
    shutdown_streams();
    std::lock_guard<std::recursive_mutex> guard(lock());
    release_all_memory("primary context released");
}

/**
 * A "synchronous" copy or memset, with CUDA's documented host synchronization: queued on the legacy stream,
 * then waited for only when `wait` (a copy into pageable host memory). The others may return before the
 * device has done the work (a copy from pageable memory returns once the data is staged, a memset or a
 * device-to-device copy at once), so work on another stream is not ordered after them without a
 * synchronization or an event.
 */
CUresult run_on_legacy(const std::string& what, std::vector<Access> accesses, std::function<void()> work, bool wait) {
    Stream* legacy = legacy_stream();
    if (!enqueue_op(legacy, what, std::move(accesses), std::move(work), {}, nullptr)) return failed(CUDA_ERROR_INVALID_VALUE);
    if (wait) wait_stream(legacy);
    return take_pending_error();
}

CUresult queue_on(CUstream stream, const std::string& what, std::vector<Access> accesses, std::function<void()> work) {
    Stream* s = stream_of(stream);
    if (s == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (!enqueue_op(s, what, std::move(accesses), std::move(work), {}, nullptr)) return failed(CUDA_ERROR_INVALID_VALUE);
    return CUDA_SUCCESS;
}

const char* error_name(CUresult r) {
    switch (r) {
        case CUDA_SUCCESS: return "CUDA_SUCCESS";
        case CUDA_ERROR_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
        case CUDA_ERROR_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
        case CUDA_ERROR_NOT_INITIALIZED: return "CUDA_ERROR_NOT_INITIALIZED";
        case CUDA_ERROR_INVALID_DEVICE: return "CUDA_ERROR_INVALID_DEVICE";
        case CUDA_ERROR_INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
        case CUDA_ERROR_INVALID_CONTEXT: return "CUDA_ERROR_INVALID_CONTEXT";
        case CUDA_ERROR_INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
        case CUDA_ERROR_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
        case CUDA_ERROR_NOT_READY: return "CUDA_ERROR_NOT_READY";
        case CUDA_ERROR_ILLEGAL_ADDRESS: return "CUDA_ERROR_ILLEGAL_ADDRESS";
        case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
        case CUDA_ERROR_INVALID_PTX: return "CUDA_ERROR_INVALID_PTX";
        case CUDA_ERROR_NOT_SUPPORTED: return "CUDA_ERROR_NOT_SUPPORTED";
        default: return "CUDA_ERROR_UNKNOWN";
    }
}

}  // namespace

namespace emu {

bool has_current_context() { return t_current != nullptr && g_primary.active(); }

void ensure_runtime_context() {
    std::lock_guard<std::recursive_mutex> guard(lock());
    g_initialized = true;
    if (!g_primary.runtime_ref) g_primary.runtime_ref = true;
    if (t_current == nullptr) t_current = primary_handle();
}

}  // namespace emu

namespace {
template <typename T>
std::function<void()> fill(CUdeviceptr dst, T value, size_t count) {
    return [=] {
        T* p = (T*) dst;
        for (size_t i = 0; i < count; ++i) p[i] = value;
    };
}
}  // namespace

extern "C" {

CUresult cuInit(unsigned int flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    g_initialized = true;
    static bool announced = false;
    if (!announced) {
        announced = true;
        note("CPU emulation of CUDA (%s streams): %s, sm_%d%d; no GPU is used", stream_mode(), kDeviceName,
             kComputeMajor, kComputeMinor);
    }
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* version) {
    ENTER();
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = kDriverVersion;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
    NEED_INIT();
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal) {
    NEED_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
    NEED_INIT();
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev)) return r;
    snprintf(name, (size_t) len, "%s", kDeviceName);
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(size_t* bytes, CUdevice dev) {
    NEED_INIT();
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev)) return r;
    *bytes = kTotalMemory;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) {
    NEED_INIT();
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev)) return r;
    memset(uuid, 0x5e, sizeof *uuid);
    return CUDA_SUCCESS;
}

CUresult cuDeviceComputeCapability(int* major, int* minor, CUdevice dev) {
    NEED_INIT();
    if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev)) return r;
    *major = kComputeMajor;
    *minor = kComputeMinor;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice dev) {
    NEED_INIT();
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev)) return r;
    int v = 0;
    switch (attribute) {
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: v = kMaxThreadsPerBlock; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: v = 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: v = 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: v = 64; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: v = (int) kMaxGridX; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: v = (int) kMaxGridYZ; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: v = (int) kMaxGridYZ; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: v = (int) kSharedPerBlock; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: v = (int) kSharedPerBlockOptin; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: v = 233472; break;
        case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: v = 65536; break;
        case CU_DEVICE_ATTRIBUTE_WARP_SIZE: v = 32; break;
        case CU_DEVICE_ATTRIBUTE_MAX_PITCH: v = 2147483647; break;
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: v = 65536; break;
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: v = 65536; break;
        case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: v = 1980000; break;
        case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: v = 2619000; break;
        case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: v = 5120; break;
        case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT: v = 512; break;
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: v = kSmCount; break;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: v = 2048; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: v = 32; break;
        case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: v = kL2Bytes; break;
        case CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE: v = 31457280; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: v = kComputeMajor; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: v = kComputeMinor; break;
        case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: v = 3; break;
        case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: v = 0x19; break;
        case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: v = 1; break;
        case CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM: v = 1; break;
        default: v = 0; break;
    }
    *value = v;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice dev) {
    NEED_INIT();
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev)) return r;
    std::lock_guard<std::recursive_mutex> guard(lock());
    g_primary.driver_refs++;
    *ctx = primary_handle();
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
    NEED_INIT();
    if (CUresult r = check_device(dev)) return r;
    {
        std::lock_guard<std::recursive_mutex> guard(lock());
        if (g_primary.driver_refs == 0) return CUDA_ERROR_INVALID_CONTEXT;
        if (--g_primary.driver_refs > 0) return CUDA_SUCCESS;
    }
    // Last driver reference: the context's resources go (the runtime's own reference, held for the process
    // as cudart holds it, does not hide leaks from the code that owns the context).
    context_released();
    return take_pending_error();
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
    NEED_INIT();
    if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev)) return r;
    *flags = 0;
    *active = g_primary.active() ? 1 : 0;
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
    NEED_INIT();
    if (ctx != nullptr && ctx != primary_handle()) return CUDA_ERROR_INVALID_CONTEXT;
    t_current = ctx;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* ctx) {
    NEED_INIT();
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    *ctx = has_current_context() ? t_current : nullptr;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice* dev) {
    NEED_CONTEXT();
    if (!dev) return CUDA_ERROR_INVALID_VALUE;
    *dev = 0;
    return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
    NEED_CONTEXT();
    wait_all_streams();
    return take_pending_error();
}

CUresult cuCtxSynchronize_v2(CUcontext ctx) {
    NEED_INIT();
    if (ctx != nullptr && ctx != primary_handle()) return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx == nullptr && !has_current_context()) return CUDA_ERROR_INVALID_CONTEXT;
    wait_all_streams();
    return take_pending_error();
}

// ------------------------------------------------------------------ memory

CUresult cuMemAlloc(CUdeviceptr* dptr, size_t bytes) {
    NEED_CONTEXT();
    if (!dptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (device_bytes_in_use() + bytes > kTotalMemory) return CUDA_ERROR_OUT_OF_MEMORY;
    void* p = allocate_device(bytes, false);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    *dptr = (CUdeviceptr) p;
    return CUDA_SUCCESS;
}

CUresult cuMemFree(CUdeviceptr dptr) {
    NEED_CONTEXT();
    if (dptr == 0) return CUDA_SUCCESS;
    // cuMemFree waits for the device to be done with the memory
    wait_all_streams();
    std::lock_guard<std::recursive_mutex> guard(lock());
    return free_device((uintptr_t) dptr, "cuMemFree");
}

CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytes, CUstream stream) {
    NEED_CONTEXT();
    if (!dptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    Stream* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (device_bytes_in_use() + bytes > kTotalMemory) return CUDA_ERROR_OUT_OF_MEMORY;
    void* p = allocate_device(bytes, true);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    // The allocation is an access of the whole range by the stream: other streams must be ordered after it.
    enqueue_op(s, "cuMemAllocAsync", {Access{p, bytes, true, "new allocation"}}, nullptr, {}, nullptr);
    *dptr = (CUdeviceptr) p;
    return CUDA_SUCCESS;
}

CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool, CUstream stream) {
    (void) pool;
    return cuMemAllocAsync(dptr, bytes, stream);
}

CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream) {
    NEED_CONTEXT();
    Stream* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    std::lock_guard<std::recursive_mutex> guard(lock());
    Allocation* a = lookup_base((uintptr_t) dptr);
    if (a == nullptr || a->free_queued) {
        error("cuMemFreeAsync(%#lx): %s", (unsigned long) dptr,
              a ? "its free is already queued (double free)"
                : ("not the start of a live allocation: " + describe_address((uintptr_t) dptr)).c_str());
        return failed(CUDA_ERROR_INVALID_VALUE);
    }
    uintptr_t base = a->base;
    bool ok = enqueue_op(s, "cuMemFreeAsync", {Access{(void*) base, a->size, true, "freed allocation"}},
                         [base] { release_async_allocation(base); }, {}, nullptr);
    if (Allocation* still = lookup_base(base)) still->free_queued = true;
    return ok ? CUDA_SUCCESS : failed(CUDA_ERROR_INVALID_VALUE);
}

CUresult cuMemGetInfo(size_t* free_bytes, size_t* total) {
    NEED_CONTEXT();
    if (!free_bytes || !total) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(lock());
    *total = kTotalMemory;
    *free_bytes = kTotalMemory - device_bytes_in_use();
    return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD(CUdeviceptr dst, const void* src, size_t bytes) {
    NEED_CONTEXT();
    if (bytes == 0) return CUDA_SUCCESS;
    if (!src) return CUDA_ERROR_INVALID_VALUE;
    // From pageable memory: the legacy stream's earlier work is waited for, the source staged, and the
    // transfer itself left to the stream.
    wait_stream(legacy_stream());
    auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char*) src,
                                                               (const unsigned char*) src + bytes);
    return run_on_legacy("cuMemcpyHtoD", {Access{(void*) dst, bytes, true, "dst"}},
                         [=] { memcpy((void*) dst, staged->data(), bytes); }, false);
}

CUresult cuMemcpyDtoH(void* dst, CUdeviceptr src, size_t bytes) {
    NEED_CONTEXT();
    if (bytes == 0) return CUDA_SUCCESS;
    if (!dst) return CUDA_ERROR_INVALID_VALUE;
    return run_on_legacy("cuMemcpyDtoH", {Access{(void*) src, bytes, false, "src"}},
                         [=] { memcpy(dst, (void*) src, bytes); }, true);
}

CUresult cuMemcpyDtoD(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    NEED_CONTEXT();
    if (bytes == 0) return CUDA_SUCCESS;
    return run_on_legacy("cuMemcpyDtoD", {Access{(void*) src, bytes, false, "src"}, Access{(void*) dst, bytes, true, "dst"}},
                         [=] { memmove((void*) dst, (void*) src, bytes); }, false);
}

CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void* src, size_t bytes, CUstream stream) {
    NEED_CONTEXT();
    if (bytes == 0) return CUDA_SUCCESS;
    if (!src) return CUDA_ERROR_INVALID_VALUE;
    // From pageable memory the source is staged before the call returns: copy it now.
    auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char*) src,
                                                               (const unsigned char*) src + bytes);
    return queue_on(stream, "cuMemcpyHtoDAsync", {Access{(void*) dst, bytes, true, "dst"}},
                    [=] { memcpy((void*) dst, staged->data(), bytes); });
}

CUresult cuMemcpyDtoHAsync(void* dst, CUdeviceptr src, size_t bytes, CUstream stream) {
    NEED_CONTEXT();
    if (bytes == 0) return CUDA_SUCCESS;
    if (!dst) return CUDA_ERROR_INVALID_VALUE;
    // To pageable memory the copy is synchronous.
    Stream* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    if (!enqueue_op(s, "cuMemcpyDtoHAsync", {Access{(void*) src, bytes, false, "src"}},
                    [=] { memcpy(dst, (void*) src, bytes); }, {}, nullptr))
        return failed(CUDA_ERROR_INVALID_VALUE);
    wait_stream(s);
    return take_pending_error();
}

CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) {
    NEED_CONTEXT();
    if (bytes == 0) return CUDA_SUCCESS;
    return queue_on(stream, "cuMemcpyDtoDAsync",
                    {Access{(void*) src, bytes, false, "src"}, Access{(void*) dst, bytes, true, "dst"}},
                    [=] { memmove((void*) dst, (void*) src, bytes); });
}

CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) {
    return cuMemcpyDtoDAsync(dst, src, bytes, stream);
}

CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t bytes) { return cuMemcpyDtoD(dst, src, bytes); }

CUresult cuMemsetD8(CUdeviceptr dst, unsigned char v, size_t n) {
    NEED_CONTEXT();
    return n == 0 ? CUDA_SUCCESS : run_on_legacy("cuMemsetD8", {Access{(void*) dst, n, true, "dst"}}, fill(dst, v, n), false);
}
CUresult cuMemsetD16(CUdeviceptr dst, unsigned short v, size_t n) {
    NEED_CONTEXT();
    return n == 0 ? CUDA_SUCCESS : run_on_legacy("cuMemsetD16", {Access{(void*) dst, 2 * n, true, "dst"}}, fill(dst, v, n), false);
}
CUresult cuMemsetD32(CUdeviceptr dst, unsigned int v, size_t n) {
    NEED_CONTEXT();
    return n == 0 ? CUDA_SUCCESS : run_on_legacy("cuMemsetD32", {Access{(void*) dst, 4 * n, true, "dst"}}, fill(dst, v, n), false);
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) {
    NEED_CONTEXT();
    return n == 0 ? CUDA_SUCCESS : queue_on(s, "cuMemsetD8Async", {Access{(void*) dst, n, true, "dst"}}, fill(dst, v, n));
}
CUresult cuMemsetD16Async(CUdeviceptr dst, unsigned short v, size_t n, CUstream s) {
    NEED_CONTEXT();
    return n == 0 ? CUDA_SUCCESS
                  : queue_on(s, "cuMemsetD16Async", {Access{(void*) dst, 2 * n, true, "dst"}}, fill(dst, v, n));
}
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) {
    NEED_CONTEXT();
    return n == 0 ? CUDA_SUCCESS
                  : queue_on(s, "cuMemsetD32Async", {Access{(void*) dst, 4 * n, true, "dst"}}, fill(dst, v, n));
}

// ------------------------------------------------------------------ memory pools

CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice dev) {
    NEED_INIT();
    if (!pool) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev)) return r;
    *pool = reinterpret_cast<CUmemoryPool>(&g_default_pool);
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
    NEED_INIT();
    if (!pool) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev)) return r;
    *pool = g_current_pool;
    return CUDA_SUCCESS;
}

CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
    NEED_INIT();
    if (pool != reinterpret_cast<CUmemoryPool>(&g_default_pool) || !value) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(lock());
    switch (attr) {
        case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: g_default_pool.release_threshold = *(cuuint64_t*) value; return CUDA_SUCCESS;
        case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
            if (*(cuuint64_t*) value != 0) return CUDA_ERROR_INVALID_VALUE;  // only a reset to zero is allowed
            reset_pool_used_high();
            return CUDA_SUCCESS;
        case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
        case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
        case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: return CUDA_SUCCESS;
        default: return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
    NEED_INIT();
    if (pool != reinterpret_cast<CUmemoryPool>(&g_default_pool) || !value) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> guard(lock());
    cuuint64_t* out = (cuuint64_t*) value;
    switch (attr) {
        case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: *out = g_default_pool.release_threshold; return CUDA_SUCCESS;
        case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
        case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: *out = pool_used_bytes(); return CUDA_SUCCESS;
        case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: *out = pool_used_high(); return CUDA_SUCCESS;
        case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
        case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
        case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: *(int*) value = 1; return CUDA_SUCCESS;
        default: return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep) {
    (void) pool;
    (void) keep;
    ENTER();
    return CUDA_SUCCESS;
}

// ------------------------------------------------------------------ streams

CUresult cuStreamCreate(CUstream* stream, unsigned int flags) {
    NEED_CONTEXT();
    if (!stream || (flags & ~CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
    *stream = (CUstream) create_stream(!(flags & CU_STREAM_NON_BLOCKING));
    return CUDA_SUCCESS;
}

CUresult cuStreamCreateWithPriority(CUstream* stream, unsigned int flags, int priority) {
    (void) priority;
    return cuStreamCreate(stream, flags);
}

CUresult cuStreamDestroy(CUstream stream) {
    NEED_CONTEXT();
    if ((uintptr_t) stream <= 2) return CUDA_ERROR_INVALID_HANDLE;
    Stream* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    destroy_stream(s);
    return take_pending_error();
}

CUresult cuStreamSynchronize(CUstream stream) {
    NEED_CONTEXT();
    Stream* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    wait_stream(s);
    return take_pending_error();
}

CUresult cuStreamQuery(CUstream stream) {
    NEED_CONTEXT();
    Stream* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    return stream_idle(s) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuStreamGetFlags(CUstream stream, unsigned int* flags) {
    NEED_CONTEXT();
    Stream* s = stream_of(stream);
    if (!s || !flags) return CUDA_ERROR_INVALID_VALUE;
    *flags = s->blocking ? CU_STREAM_DEFAULT : CU_STREAM_NON_BLOCKING;
    return CUDA_SUCCESS;
}

CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int flags) {
    NEED_CONTEXT();
    Stream* s = stream_of(stream);
    if (!s || !event || flags != 0) return s ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_INVALID_HANDLE;
    wait_event_on_stream(s, (Event*) event);
    return CUDA_SUCCESS;
}

CUresult cuLaunchHostFunc(CUstream stream, CUhostFn fn, void* data) {
    NEED_CONTEXT();
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    return queue_on(stream, "cuLaunchHostFunc", {}, [=] { fn(data); });
}

// ------------------------------------------------------------------ events

CUresult cuEventCreate(CUevent* event, unsigned int flags) {
    NEED_CONTEXT();
    if (!event) return CUDA_ERROR_INVALID_VALUE;
    Event* e = new Event();
    e->flags = flags;
    *event = (CUevent) e;
    return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent event) {
    NEED_CONTEXT();
    if (!event) return CUDA_ERROR_INVALID_HANDLE;
    // Work already queued may still record into it: keep the object (a few bytes) alive.
    ((Event*) event)->destroyed = true;
    return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent event, CUstream stream) {
    NEED_CONTEXT();
    Stream* s = stream_of(stream);
    if (!event) return CUDA_ERROR_INVALID_HANDLE;
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    record_event((Event*) event, s);
    return CUDA_SUCCESS;
}

CUresult cuEventRecordWithFlags(CUevent event, CUstream stream, unsigned int flags) {
    (void) flags;
    return cuEventRecord(event, stream);
}

CUresult cuEventSynchronize(CUevent event) {
    NEED_CONTEXT();
    if (!event) return CUDA_ERROR_INVALID_HANDLE;
    wait_event_on_host((Event*) event);
    return take_pending_error();
}

CUresult cuEventQuery(CUevent event) {
    NEED_CONTEXT();
    if (!event) return CUDA_ERROR_INVALID_HANDLE;
    return event_complete((Event*) event) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
    NEED_CONTEXT();
    if (!ms || !start || !end) return CUDA_ERROR_INVALID_VALUE;
    Event* a = (Event*) start;
    Event* b = (Event*) end;
    if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
    if (a->stream == nullptr || b->stream == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (!event_complete(a) || !event_complete(b)) return CUDA_ERROR_NOT_READY;
    *ms = (float) (b->time_ms.load() - a->time_ms.load());
    return CUDA_SUCCESS;
}


// ------------------------------------------------------------------ errors

CUresult cuGetErrorName(CUresult error, const char** name) {
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    *name = error_name(error);
    return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult error, const char** text) {
    if (!text) return CUDA_ERROR_INVALID_VALUE;
    *text = error_name(error);
    return CUDA_SUCCESS;
}

}  // extern "C"

// Names that CUDA 13's cuda.h maps to a versioned symbol but that JCuda (built against CUDA 12.6) imports
// under their plain names, with the same signatures.
#undef cuEventElapsedTime
#undef cuDeviceGetUuid
extern "C" {
CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end) { return cuEventElapsedTime_v2(ms, start, end); }
CUresult cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) { return cuDeviceGetUuid_v2(uuid, dev); }
}
