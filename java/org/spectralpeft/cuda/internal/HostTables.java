package org.spectralpeft.cuda.internal;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jcuda.Pointer;
import org.spectralpeft.cuda.CudaStream;

/**
 * Small per-call tables built on the host (token rows, block lists, adapters' addresses, coefficient rows) and
 * copied to the device in stream order, so that a call on device arrays does not wait for its stream. The
 * table lives in native memory: the driver stages a copy from pageable memory before the copy call returns.
 */
public final class HostTables {
    private HostTables() {
    }

    /**
     * An empty table of the given size, in the device's byte order.
     *
     * @param bytes its size
     * @return a direct buffer, position 0
     * @throws ArithmeticException if it is 2 GiB or more
     */
    public static ByteBuffer allocate(long bytes) {
        return ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.nativeOrder());
    }

    /**
     * Copies a whole table into scratch memory of the stream's call, in stream order.
     *
     * @param table from {@link #allocate}, every byte written
     * @param scratch the call's scratch, freed with it
     * @param stream the call's stream
     * @return the device address of the copy
     */
    public static long copyIn(ByteBuffer table, StreamScratch scratch, CudaStream stream) {
        long bytes = table.capacity();
        long device = scratch.allocate(bytes);
        cuMemcpyHtoDAsync(NativeHandles.devicePointer(device), Pointer.to(table), bytes, stream.jcuda());
        return device;
    }

    /**
     * Copies an int table into scratch memory of the stream's call, in stream order.
     *
     * @param values the table (an empty one takes one zero entry, so that the address is valid)
     * @param scratch the call's scratch, freed with it
     * @param stream the call's stream
     * @return the device address of the copy
     */
    public static long copyIn(int[] values, StreamScratch scratch, CudaStream stream) {
        ByteBuffer table = allocate(4L * Math.max(1, values.length));
        table.asIntBuffer().put(values);
        return copyIn(table, scratch, stream);
    }

    /**
     * Copies a long table into scratch memory of the stream's call, in stream order.
     *
     * @param values the table (an empty one takes one zero entry, so that the address is valid)
     * @param scratch the call's scratch, freed with it
     * @param stream the call's stream
     * @return the device address of the copy
     */
    public static long copyIn(long[] values, StreamScratch scratch, CudaStream stream) {
        ByteBuffer table = allocate(8L * Math.max(1, values.length));
        table.asLongBuffer().put(values);
        return copyIn(table, scratch, stream);
    }
}
