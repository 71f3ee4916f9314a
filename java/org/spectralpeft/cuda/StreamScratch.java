package org.spectralpeft.cuda;

import static jcuda.driver.JCudaDriver.cuMemAllocAsync;
import static jcuda.driver.JCudaDriver.cuMemFreeAsync;

import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUdeviceptr;

/**
 * Temporary device memory for one call, from the stream-ordered allocator: allocated and freed in the
 * order of the call's stream, so concurrent calls on different streams never share scratch space and a
 * caller's stream needs no synchronization.
 */
final class StreamScratch implements AutoCloseable {
    private final CudaStream stream;
    private final List<CUdeviceptr> allocations = new ArrayList<>();

    StreamScratch(CudaStream stream) {
        this.stream = stream;
    }

    /** {@code bytes} of uninitialized device memory, valid for work queued on this call's stream. */
    long allocate(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        cuMemAllocAsync(p, Math.max(bytes, 16), stream.jcuda());
        allocations.add(p);
        return NativeHandles.handleOf(p);
    }

    @Override
    public void close() {
        for (CUdeviceptr p : allocations) {
            cuMemFreeAsync(p, stream.jcuda());
        }
        allocations.clear();
    }
}
