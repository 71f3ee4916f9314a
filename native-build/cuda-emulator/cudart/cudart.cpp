// The runtime API stand-in (libcudart.so.13): each call makes device 0's primary context current when
// none is, as cudart does, and forwards to the emulated driver (libcuda.so.1). The driver's status codes
// and the runtime's have the same numbers for everything the driver returns here.
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstring>

#include "../emu.h"

namespace {

thread_local cudaError_t t_last = cudaSuccess;

cudaError_t done(CUresult r) {
    cudaError_t e = (cudaError_t) r;
    if (e != cudaSuccess) t_last = e;
    return e;
}

#define RUNTIME() emu::ensure_runtime_context()

CUstream cu(cudaStream_t s) { return (CUstream) s; }

}  // namespace

extern "C" {

const char* cudaGetErrorName(cudaError_t e) {
    const char* name = nullptr;
    cuGetErrorName((CUresult) e, &name);
    return name ? name : "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }

cudaError_t cudaGetLastError(void) {
    cudaError_t e = t_last;
    t_last = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return t_last; }

cudaError_t cudaDriverGetVersion(int* v) { return done(cuDriverGetVersion(v)); }

cudaError_t cudaRuntimeGetVersion(int* v) {
    if (!v) return done(CUDA_ERROR_INVALID_VALUE);
    *v = 13000;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
    RUNTIME();
    return done(cuDeviceGetCount(count));
}

cudaError_t cudaGetDevice(int* device) {
    if (!device) return done(CUDA_ERROR_INVALID_VALUE);
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device != 0) return done(CUDA_ERROR_INVALID_DEVICE);
    RUNTIME();
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    RUNTIME();
    return done(cuDeviceGetAttribute(value, (CUdevice_attribute) attr, device));
}

cudaError_t cudaDeviceSynchronize(void) {
    RUNTIME();
    return done(cuCtxSynchronize());
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
    RUNTIME();
    return done(cuMemGetInfo(free_bytes, total));
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
    RUNTIME();
    return done(cuMemAlloc((CUdeviceptr*) p, bytes));
}

cudaError_t cudaFree(void* p) {
    RUNTIME();
    return done(cuMemFree((CUdeviceptr) p));
}

cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s) {
    RUNTIME();
    return done(cuMemAllocAsync((CUdeviceptr*) p, bytes, cu(s)));
}

cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
    RUNTIME();
    return done(cuMemFreeAsync((CUdeviceptr) p, cu(s)));
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    RUNTIME();
    switch (kind) {
        case cudaMemcpyHostToDevice: return done(cuMemcpyHtoDAsync((CUdeviceptr) dst, src, bytes, cu(s)));
        case cudaMemcpyDeviceToHost: return done(cuMemcpyDtoHAsync(dst, (CUdeviceptr) src, bytes, cu(s)));
        case cudaMemcpyDeviceToDevice: return done(cuMemcpyDtoDAsync((CUdeviceptr) dst, (CUdeviceptr) src, bytes, cu(s)));
        default:
            emu::note("cudaMemcpyAsync: kind %d is not emulated (name the direction)", (int) kind);
            return done(CUDA_ERROR_NOT_SUPPORTED);
    }
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    RUNTIME();
    switch (kind) {
        case cudaMemcpyHostToDevice: return done(cuMemcpyHtoD((CUdeviceptr) dst, src, bytes));
        case cudaMemcpyDeviceToHost: return done(cuMemcpyDtoH(dst, (CUdeviceptr) src, bytes));
        case cudaMemcpyDeviceToDevice: return done(cuMemcpyDtoD((CUdeviceptr) dst, (CUdeviceptr) src, bytes));
        default:
            emu::note("cudaMemcpy: kind %d is not emulated (name the direction)", (int) kind);
            return done(CUDA_ERROR_NOT_SUPPORTED);
    }
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) {
    RUNTIME();
    return done(cuMemsetD8((CUdeviceptr) p, (unsigned char) value, bytes));
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
    RUNTIME();
    return done(cuMemsetD8Async((CUdeviceptr) p, (unsigned char) value, bytes, cu(s)));
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
    RUNTIME();
    return done(cuStreamCreate((CUstream*) s, CU_STREAM_DEFAULT));
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) {
    RUNTIME();
    return done(cuStreamCreate((CUstream*) s, flags));
}

cudaError_t cudaStreamCreateWithPriority(cudaStream_t* s, unsigned int flags, int priority) {
    RUNTIME();
    return done(cuStreamCreateWithPriority((CUstream*) s, flags, priority));
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    RUNTIME();
    return done(cuStreamDestroy(cu(s)));
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    RUNTIME();
    return done(cuStreamSynchronize(cu(s)));
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
    RUNTIME();
    return done(cuStreamQuery(cu(s)));
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags) {
    RUNTIME();
    return done(cuStreamWaitEvent(cu(s), (CUevent) e, flags));
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
    RUNTIME();
    return done(cuEventCreate((CUevent*) e, CU_EVENT_DEFAULT));
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int flags) {
    RUNTIME();
    return done(cuEventCreate((CUevent*) e, flags));
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    RUNTIME();
    return done(cuEventDestroy((CUevent) e));
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    RUNTIME();
    return done(cuEventRecord((CUevent) e, cu(s)));
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    RUNTIME();
    return done(cuEventSynchronize((CUevent) e));
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
    RUNTIME();
    return done(cuEventQuery((CUevent) e));
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
    RUNTIME();
    return done(cuEventElapsedTime(ms, (CUevent) a, (CUevent) b));
}

cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void* data) {
    RUNTIME();
    return done(cuLaunchHostFunc(cu(s), (CUhostFn) fn, data));
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
    RUNTIME();
    return done(cuDeviceGetDefaultMemPool((CUmemoryPool*) pool, device));
}

cudaError_t cudaDeviceGetMemPool(cudaMemPool_t* pool, int device) {
    RUNTIME();
    return done(cuDeviceGetMemPool((CUmemoryPool*) pool, device));
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
    RUNTIME();
    return done(cuMemPoolSetAttribute((CUmemoryPool) pool, (CUmemPool_attribute) attr, value));
}

cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
    RUNTIME();
    return done(cuMemPoolGetAttribute((CUmemoryPool) pool, (CUmemPool_attribute) attr, value));
}

cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep) {
    RUNTIME();
    return done(cuMemPoolTrimTo((CUmemoryPool) pool, keep));
}

}  // extern "C"
