package org.spectralpeft.cuda.internal;

import static jcuda.driver.JCudaDriver.cuMemAllocAsync;
import static jcuda.driver.JCudaDriver.cuMemFreeAsync;

import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUdeviceptr;
import org.spectralpeft.cuda.CudaStream;

/**
 * Temporary device memory for one call, from the stream-ordered allocator: allocated and freed in the
 * order of the call's stream, so concurrent calls on different streams never share scratch space and a
 * caller's stream needs no synchronization.
 *
 * <p>A call that knows what it will need can {@link #reserve} it as one block up front; its allocations
 * are then carved from the block without a driver call each (two calls per call instead of two per
 * buffer, which matters where the work itself takes microseconds). An allocation that does not fit the
 * block falls back to its own, and is counted ({@link #overflows()}).
 */
public final class StreamScratch implements AutoCloseable {
    /** Alignment of every allocation (cuFFT and vector loads want at least 16 bytes; the driver gives 256). */
    public static final long ALIGNMENT = 256;

    /** Where the memory comes from: the device's stream-ordered allocator, or a fake in tests. */
    public interface Memory {
        /** A new allocation (an opaque handle); {@link #address} gives its device address. */
        public Object allocate(long bytes, CudaStream stream);

        public long address(Object allocation);

        public void free(Object allocation, CudaStream stream);
    }

    private static final Memory DEVICE = new Memory() {
        @Override
        public Object allocate(long bytes, CudaStream stream) {
            CUdeviceptr p = new CUdeviceptr();
            cuMemAllocAsync(p, bytes, stream.jcuda());
            return p;
        }

        @Override
        public long address(Object allocation) {
            return NativeHandles.handleOf((CUdeviceptr) allocation);
        }

        @Override
        public void free(Object allocation, CudaStream stream) {
            cuMemFreeAsync((CUdeviceptr) allocation, stream.jcuda());
        }
    };

    private final CudaStream stream;
    private final Memory memory;
    private final List<Object> allocations = new ArrayList<>();
    private long blockNext;
    private long blockEnd;
    private boolean reserved;
    private int overflows;

    public StreamScratch(CudaStream stream) {
        this(stream, DEVICE);
    }

    public StreamScratch(CudaStream stream, Memory memory) {
        this.stream = stream;
        this.memory = memory;
    }

    /** What {@link #allocate}{@code (bytes)} takes from a reservation: sums of these size one. */
    public static long footprint(long bytes) {
        return (Math.max(bytes, 16) + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** Reserves one block of {@code bytes} (a sum of footprints) for the allocations that follow; once. */
    public void reserve(long bytes) {
        if (reserved) {
            throw new IllegalStateException("scratch already reserved");
        }
        reserved = true;
        if (bytes > 0) {
            long size = footprint(bytes);
            blockNext = take(size);
            blockEnd = blockNext + size;
        }
    }

    /** {@code bytes} of uninitialized device memory, valid for work queued on this call's stream. */
    public long allocate(long bytes) {
        long size = footprint(bytes);
        if (reserved) {
            if (blockEnd - blockNext >= size) {
                long a = blockNext;
                blockNext += size;
                return a;
            }
            overflows++;
        }
        return take(size);
    }

    /** Allocations that did not fit the reservation (each cost a driver call of its own). */
    public int overflows() {
        return overflows;
    }

    private long take(long bytes) {
        Object a = memory.allocate(bytes, stream);
        allocations.add(a);
        return memory.address(a);
    }

    @Override
    public void close() {
        for (Object a : allocations) {
            memory.free(a, stream);
        }
        allocations.clear();
        blockNext = 0;
        blockEnd = 0;
    }
}
