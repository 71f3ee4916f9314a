package org.spectralpeft.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import org.spectralpeft.api.DType;
import org.spectralpeft.api.HostArray;

/** Library-owned device memory: {@code length} elements of one dtype, freed by {@link #close()}. */
public final class DeviceBuffer implements AutoCloseable {
    private final CudaContext context;
    private final CUdeviceptr pointer = new CUdeviceptr();
    private final DeviceArray array;
    private volatile boolean closed;

    DeviceBuffer(CudaContext context, DType dtype, long length) {
        if (length < 1) {
            throw new IllegalArgumentException("buffer length must be at least 1, got " + length);
        }
        this.context = context;
        context.makeCurrent();
        cuMemAlloc(pointer, length * dtype.bytes());
        this.array = new DeviceArray(NativeHandles.handleOf(pointer), length, dtype);
    }

    /**
     * The view to pass to the device entry points.
     *
     * @return the view
     */
    public DeviceArray array() {
        if (closed) {
            throw new IllegalStateException("device buffer is closed");
        }
        return array;
    }

    /**
     * Copies a host array of the same dtype and length in. Returns once the data is on the device, so work
     * on any stream (blocking or not) queued afterwards sees it.
     *
     * @param host the source, same dtype and length as this buffer
     * @throws IllegalArgumentException if the dtype or length differs
     */
    public void copyFrom(HostArray host) {
        checkHost(host);
        context.makeCurrent();
        cuMemcpyHtoD(pointer, hostPointer(host), array.bytes());
        // From pageable memory the copy may return once staged; wait for the DMA itself.
        cuStreamSynchronize(CudaStream.legacyDefault().jcuda());
    }

    /**
     * Copies the contents out into a host array of the same dtype and length (synchronously).
     *
     * @param host the destination, same dtype and length as this buffer
     * @throws IllegalArgumentException if the dtype or length differs
     */
    public void copyTo(HostArray host) {
        checkHost(host);
        context.makeCurrent();
        cuMemcpyDtoH(hostPointer(host), pointer, array.bytes());
    }

    private void checkHost(HostArray host) {
        array();
        if (host.dtype() != array.dtype() || host.length() != array.length()) {
            throw new IllegalArgumentException("host array is " + host.length() + " × " + host.dtype()
                    + " but the device buffer is " + array.length() + " × " + array.dtype());
        }
    }

    static Pointer hostPointer(HostArray host) {
        return host.dtype() == DType.FLOAT32 ? Pointer.to(host.floats()) : Pointer.to(host.halves());
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            context.makeCurrent();
            cuMemFree(pointer);
        }
    }
}
