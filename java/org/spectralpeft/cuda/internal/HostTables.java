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
    /** Tables up to this size are staged in the calling thread's reused buffer; larger ones get their own. */
    static final int STAGING_LIMIT = 1 << 20;
    /**
     * Each thread's staging buffer for {@link #copyIn(int[], StreamScratch, CudaStream)} and its long twin: a table is
     * written into it and copied from it at once, and the driver has staged the bytes before the copy call returns
     * (pageable memory), so it is free again right after. A fresh direct buffer per table cost an allocation, its
     * zeroing and a cleaner each, several per mixed-batch call.
     */
    private static final ThreadLocal<ByteBuffer> STAGING = ThreadLocal.withInitial(() -> allocate(4096));

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
        return copyIn(table, table.capacity(), scratch, stream);
    }

    /** Copies the first {@code bytes} of a direct buffer (from position 0) into the call's scratch, in stream order. */
    private static long copyIn(ByteBuffer table, long bytes, StreamScratch scratch, CudaStream stream) {
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
        long bytes = 4L * Math.max(1, values.length);
        ByteBuffer table = staging(bytes);
        table.asIntBuffer().put(values.length == 0 ? new int[1] : values);
        return copyIn(table, bytes, scratch, stream);
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
        long bytes = 8L * Math.max(1, values.length);
        ByteBuffer table = staging(bytes);
        table.asLongBuffer().put(values.length == 0 ? new long[1] : values);
        return copyIn(table, bytes, scratch, stream);
    }

    /** The calling thread's staging buffer, grown to at least {@code bytes}, or a buffer of its own past the limit. */
    private static ByteBuffer staging(long bytes) {
        if (bytes > STAGING_LIMIT) {
            return allocate(bytes);
        }
        ByteBuffer b = STAGING.get();
        if (b.capacity() < bytes) {
            b = allocate(Math.min(STAGING_LIMIT, Math.max(bytes, 2L * b.capacity())));
            STAGING.set(b);
        }
        return b;
    }
}
