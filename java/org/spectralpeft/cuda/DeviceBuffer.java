package org.spectralpeft.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemAllocAsync;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemFreeAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.nio.Buffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.internal.DeviceMemoryRegistry;
import org.spectralpeft.cuda.internal.NativeHandles;

/**
 * Library-owned device memory: {@code length} elements of one dtype, freed by {@link #close()}. Either plain
 * ({@code cuMemAlloc}, freed at once) or stream-ordered ({@link CudaContext#allocate(DType, long, CudaStream)}:
 * from the device's memory pool in a stream's order, and freed in that order).
 */
public final class DeviceBuffer implements AutoCloseable {
    private final CudaContext context;
    private final CUdeviceptr pointer = new CUdeviceptr();
    private final DeviceArray array;
    /** The stream a stream-ordered buffer was allocated on and is freed on; null for a plain one. */
    private final CudaStream stream;
    private volatile boolean closed;

    DeviceBuffer(CudaContext context, DType dtype, long length) {
        this(context, dtype, length, null);
    }

    DeviceBuffer(CudaContext context, DType dtype, long length, CudaStream stream) {
        if (length < 1) {
            throw new IllegalArgumentException("buffer length must be at least 1, got " + length);
        }
        this.context = context;
        this.stream = stream;
        context.makeCurrent();
        if (stream == null) {
            cuMemAlloc(pointer, length * dtype.bytes());
        } else {
            cuMemAllocAsync(pointer, length * dtype.bytes(), stream.jcuda());
        }
        this.array = new DeviceArray(NativeHandles.handleOf(pointer), length, dtype);
        DeviceMemoryRegistry.register(array.address(), array.bytes(), context.ordinal());
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
        Pointer direct = storagePointer(host);
        cuMemcpyHtoD(pointer, direct != null ? direct : staged(host), array.bytes());
        // From pageable memory the copy may return once staged; wait for the DMA itself.
        cuStreamSynchronize(CudaStream.legacyDefault().jcuda());
    }

    /**
     * Copies the contents out into a host array of the same dtype and length (synchronously).
     *
     * @param host the destination, same dtype and length as this buffer
     * @throws IllegalArgumentException if the dtype or length differs, or the host array is read-only
     */
    public void copyTo(HostArray host) {
        checkHost(host);
        if (host.isReadOnly()) {
            throw new IllegalArgumentException("host array is read-only; it cannot receive the device buffer's contents");
        }
        context.makeCurrent();
        Pointer direct = storagePointer(host);
        if (direct != null) {
            cuMemcpyDtoH(direct, pointer, array.bytes());
            return;
        }
        if (host.dtype() == DType.FLOAT32) {
            float[] staging = new float[host.length()];
            cuMemcpyDtoH(Pointer.to(staging), pointer, array.bytes());
            host.floatBuffer().put(staging);
        } else {
            short[] staging = new short[host.length()];
            cuMemcpyDtoH(Pointer.to(staging), pointer, array.bytes());
            host.shortBuffer().put(staging);
        }
    }

    private void checkHost(HostArray host) {
        array();
        if (host.dtype() != array.dtype() || host.length() != array.length()) {
            throw new IllegalArgumentException("host array is " + host.length() + " × " + host.dtype()
                    + " but the device buffer is " + array.length() + " × " + array.dtype());
        }
    }

    /**
     * The host array's storage as the device sees host memory: its Java array (at the buffer's array offset)
     * or its direct buffer's memory; null where the bytes are not the device's (a direct buffer in the other
     * byte order) or not reachable (a read-only heap buffer hides its array): those copies go through a
     * staging array.
     */
    private static Pointer storagePointer(HostArray host) {
        boolean f32 = host.dtype() == DType.FLOAT32;
        Buffer b = f32 ? host.floatBuffer() : host.shortBuffer();
        ByteOrder order = f32 ? ((FloatBuffer) b).order() : ((ShortBuffer) b).order();
        if (b.isDirect()) {
            return order == ByteOrder.nativeOrder() ? Pointer.to(b) : null;
        }
        if (!b.hasArray()) {
            return null;
        }
        long offset = (long) b.arrayOffset() * host.dtype().bytes();
        return (f32 ? Pointer.to((float[]) b.array()) : Pointer.to((short[]) b.array())).withByteOffset(offset);
    }

    /** A native-order copy of the host array's storage. */
    private static Pointer staged(HostArray host) {
        if (host.dtype() == DType.FLOAT32) {
            return Pointer.to(host.toFloats());
        }
        short[] copy = new short[host.length()];
        host.shortBuffer().get(copy);
        return Pointer.to(copy);
    }

    /**
     * Frees the memory. A plain buffer is freed at once (the driver waits for the device to be done with it); a
     * stream-ordered one is freed in its stream's order, after the work queued on that stream so far: work on other
     * streams that uses it must have finished (or that stream must wait for it) before it is closed. If its
     * stream was closed first, the device is synchronized and the memory freed then.
     */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            context.makeCurrent();
            DeviceMemoryRegistry.unregister(array.address());
            if (stream == null) {
                cuMemFree(pointer);
            } else if (stream.isClosed()) {
                cuCtxSynchronize();
                cuMemFreeAsync(pointer, CudaStream.legacyDefault().jcuda());
            } else {
                cuMemFreeAsync(pointer, stream.jcuda());
            }
        }
    }
}
