// Self-test of the emulated driver's memory, stream and ordering checks, run by build.sh in both stream
// modes. Each check either expects success, or expects the emulator to report an error (seen as the
// CUDA_ERROR_ILLEGAL_ADDRESS that the next call returns, or as the call's own failure).
#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../selftest_check.h"

namespace {

/** The status of `body` or, if it succeeded, of the next call (where an asynchronous report surfaces). */
CUresult outcome(const std::function<CUresult()>& body) {
    CUresult r = body();
    if (r != CUDA_SUCCESS) return r;
    return cuCtxSynchronize();
}

}  // namespace

int main() {
    CUdevice dev;
    CUcontext ctx;
    check(cuInit(0) == CUDA_SUCCESS, "cuInit");
    check(cuDeviceGet(&dev, 0) == CUDA_SUCCESS, "cuDeviceGet");
    CUdeviceptr none;
    check(cuMemAlloc(&none, 16) == CUDA_ERROR_INVALID_CONTEXT, "an allocation with no current context fails");
    check(cuDevicePrimaryCtxRetain(&ctx, dev) == CUDA_SUCCESS, "retain");
    check(cuCtxSetCurrent(ctx) == CUDA_SUCCESS, "set current");
    int cc = 0;
    cuDeviceGetAttribute(&cc, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    check(cc == 9, "sm_90");

    // copies and fresh-memory poisoning
    CUdeviceptr a, b;
    check(cuMemAlloc(&a, 1024) == CUDA_SUCCESS && cuMemAlloc(&b, 1024) == CUDA_SUCCESS, "alloc");
    std::vector<float> host(256), back(256);
    cuMemcpyDtoH(back.data(), a, 1024);
    check(back[0] != back[0], "fresh memory reads as NaN");
    for (int i = 0; i < 256; ++i) host[i] = (float) i;
    check(cuMemcpyHtoD(a, host.data(), 1024) == CUDA_SUCCESS, "HtoD");
    check(cuMemcpyDtoH(back.data(), a, 1024) == CUDA_SUCCESS && back[255] == 255.0f, "DtoH round trip");

    // bounds
    check(outcome([&] { return cuMemcpyHtoD(a + 4, host.data(), 1024); }) != CUDA_SUCCESS, "a copy one float past the end");
    check(outcome([&] { return cuMemsetD32Async(b + 1020, 0, 2, 0); }) != CUDA_SUCCESS, "a memset past the end");
    check(outcome([&] { return cuMemcpyDtoH(back.data(), (CUdeviceptr) host.data(), 16); }) != CUDA_SUCCESS,
          "a host pointer as device memory");

    // streams: ordered work is fine, unordered conflicting work is reported
    CUstream s1, s2;
    check(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS, "stream 1");
    check(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS, "stream 2");
    check(outcome([&] {
              cuMemsetD32Async(a, 7, 256, s1);
              return cuMemcpyDtoDAsync(b, a, 1024, s1);
          }) == CUDA_SUCCESS, "same-stream work is ordered");
    check(outcome([&] {
              cuMemsetD32Async(a, 1, 256, s1);
              return cuMemcpyDtoDAsync(b, a, 1024, s2);  // reads a, written on s1, without a wait
          }) != CUDA_SUCCESS, "a missing event wait between two streams");
    CUevent e;
    cuEventCreate(&e, 0);
    check(outcome([&] {
              cuMemsetD32Async(a, 2, 256, s1);
              cuEventRecord(e, s1);
              cuStreamWaitEvent(s2, e, 0);
              return cuMemcpyDtoDAsync(b, a, 1024, s2);
          }) == CUDA_SUCCESS, "an event wait orders the streams");
    cuMemcpyDtoH(back.data(), b, 1024);
    unsigned bits;
    memcpy(&bits, &back[3], 4);
    check(bits == 2u, "the waiting stream saw the other's result");
    check(outcome([&] {
              cuMemsetD32Async(a, 3, 256, s1);
              return cuMemcpyDtoH(back.data(), a, 1024);  // the host reads without synchronizing s1
          }) != CUDA_SUCCESS, "a missing synchronization before a host read");
    check(outcome([&] {
              cuMemsetD32Async(a, 4, 256, s1);
              cuStreamSynchronize(s1);
              return cuMemcpyDtoH(back.data(), a, 1024);
          }) == CUDA_SUCCESS, "a synchronized host read");
    memcpy(&bits, &back[0], 4);
    check(bits == 4u, "the host read saw the stream's result");

    // a copy from pageable memory returns once the data is staged: another stream must still be ordered after it
    check(outcome([&] {
              cuMemcpyHtoD(a, host.data(), 1024);
              return cuMemcpyDtoDAsync(b, a, 1024, s1);
          }) != CUDA_SUCCESS, "a stream reading what a synchronous copy wrote, without synchronizing the copy");
    check(outcome([&] {
              cuMemcpyHtoD(a, host.data(), 1024);
              cuStreamSynchronize(CU_STREAM_LEGACY);
              return cuMemcpyDtoDAsync(b, a, 1024, s1);
          }) == CUDA_SUCCESS, "the same after synchronizing the legacy stream");
    host[0] = -1;  // the source was staged when the copy was made
    cuMemcpyHtoD(a, host.data(), 4);
    host[0] = 5;
    cuMemcpyDtoH(back.data(), a, 4);
    check(back[0] == -1.0f, "a synchronous copy takes the source as it was at the call");

    // stream-ordered allocation: used on its stream, freed in order; use after free is reported
    CUdeviceptr scratch;
    check(cuMemAllocAsync(&scratch, 512, s1) == CUDA_SUCCESS, "cuMemAllocAsync");
    check(outcome([&] {
              cuMemsetD32Async(scratch, 0, 128, s1);
              return cuMemFreeAsync(scratch, s1);
          }) == CUDA_SUCCESS, "alloc, use and free on one stream");
    check(outcome([&] { return cuMemsetD32Async(scratch, 0, 128, s1); }) != CUDA_SUCCESS, "use after a queued free");
    check(outcome([&] { return cuMemFreeAsync(scratch, s1); }) != CUDA_SUCCESS, "double free");
    CUdeviceptr other;
    cuMemAllocAsync(&other, 256, s1);
    check(outcome([&] { return cuMemsetD32Async(other, 0, 64, s2); }) != CUDA_SUCCESS,
          "stream-ordered memory used on another stream without ordering");
    cuStreamSynchronize(s1);
    cuMemFreeAsync(other, s1);
    cuStreamSynchronize(s1);

    // events time and complete
    CUevent t0, t1;
    cuEventCreate(&t0, 0);
    cuEventCreate(&t1, 0);
    cuEventRecord(t0, s1);
    cuMemsetD32Async(a, 0, 256, s1);
    cuEventRecord(t1, s1);
    cuEventSynchronize(t1);
    float ms = -1;
    check(cuEventElapsedTime(&ms, t0, t1) == CUDA_SUCCESS && ms >= 0, "elapsed time");

    check(cuStreamDestroy(s1) == CUDA_SUCCESS && cuStreamDestroy(s2) == CUDA_SUCCESS, "destroy streams");
    check(cuMemFree(a) == CUDA_SUCCESS, "free a");
    check(outcome([&] { return cuMemFree(a); }) != CUDA_SUCCESS, "double cuMemFree");
    // b is left allocated: releasing the context reports the leak
    check(cuDevicePrimaryCtxRelease(dev) != CUDA_SUCCESS, "a leak is reported when the context is released");

    printf("core self-test (%s streams): %d passed, %d failed\n",
           getenv("SPECTRALPEFT_EMU_STREAMS") ? getenv("SPECTRALPEFT_EMU_STREAMS") : "immediate", passed, failed);
    return failed == 0 ? 0 : 1;
}
