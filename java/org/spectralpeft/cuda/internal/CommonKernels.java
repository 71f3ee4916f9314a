package org.spectralpeft.cuda.internal;

import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;

/**
 * Typed launchers for {@code kernels/common.cu}, the kernels every adapter family uses around cuFFT's
 * float32 transforms: epilogues into any dtype (straight or transposed), widening to float32, transforms
 * over an axis of length 1, and a stream hold for profiling. Every launch is timed by {@link StageTimer}
 * under its kernel's name.
 */
public final class CommonKernels implements AutoCloseable {
    /** Threads per block of every launch. */
    public static final int BLOCK = 256;
    /** The most blocks a grid may have in y. */
    public static final int MAX_GRID_Y = 65535;

    /** The kernel source: {@code kernels/common.cu}. */
    public static final String MODULE = "common";
    /** dst = / += / -= src, dtype conversion included. */
    public static final String EPILOGUE = "spectralpeft_epilogue";
    /** The same, writing rows of a transposed result as columns. */
    public static final String EPILOGUE_TRANSPOSED = "spectralpeft_epilogue_transposed";
    /** Any dtype widened to float32, with zero padding. */
    public static final String TO_FLOAT32 = "spectralpeft_to_float32";
    /** Transforms over an axis of length 1 (copies). */
    public static final String LENGTH_ONE = "spectralpeft_length_one_transform";
    /** Holds a stream for a while (profiling). */
    public static final String HOLD_STREAM = "spectralpeft_hold_stream";
    /** Adds the partial results of a product split over its inner dimension, in order. */
    public static final String SUM_PARTS = "spectralpeft_sum_parts";
    /** Every kernel of the module. */
    public static final String[] KERNELS = {EPILOGUE, EPILOGUE_TRANSPOSED, TO_FLOAT32, LENGTH_ONE, HOLD_STREAM, SUM_PARTS};
    /** Side of the square tile the transposed epilogue moves through shared memory. */
    public static final int TRANSPOSE_TILE = 32;

    /** Where launches go: a loaded module, or a recorder in tests that run without a device. */
    public interface Launcher {
        /**
         * Queues (or records) one launch of {@link #BLOCK}-thread blocks.
         *
         * @param kernel the entry point
         * @param gridX blocks in x
         * @param gridY blocks in y
         * @param stream the stream
         * @param args the kernel's arguments, as Long, Integer or Float
         */
        void launch(String kernel, int gridX, int gridY, CudaStream stream, Object[] args);

        /**
         * Queues one launch with {@code sharedBytes} of dynamic shared memory; a recorder records it without them.
         *
         * @param kernel the entry point
         * @param gridX blocks in x
         * @param gridY blocks in y
         * @param sharedBytes dynamic shared memory per block
         * @param stream the stream
         * @param args the kernel's arguments, as Long, Integer or Float
         */
        default void launch(String kernel, int gridX, int gridY, int sharedBytes, CudaStream stream, Object[] args) {
            launch(kernel, gridX, gridY, stream, args);
        }
    }

    /**
     * The launcher of a loaded module: {@link #BLOCK}-thread blocks, with dynamic shared memory where a launch asks.
     *
     * @param module the kernels
     * @return launches into it
     */
    public static Launcher launcherOf(KernelModule module) {
        return new Launcher() {
            @Override
            public void launch(String kernel, int gridX, int gridY, CudaStream stream, Object[] args) {
                module.launch(kernel, gridX, gridY, BLOCK, stream, args);
            }

            @Override
            public void launch(String kernel, int gridX, int gridY, int sharedBytes, CudaStream stream, Object[] args) {
                module.launch(kernel, gridX, gridY, BLOCK, sharedBytes, stream, args);
            }
        };
    }

    private final KernelModule module;
    private final Launcher launcher;

    /**
     * Loads the module for the current context's device.
     *
     * @param computeCapability the device's, as major × 10 + minor
     * @param debug synchronize after every launch
     */
    public CommonKernels(int computeCapability, boolean debug) {
        module = new KernelModule(MODULE, computeCapability, KERNELS, debug);
        launcher = launcherOf(module);
    }

    /**
     * Launches go to {@code recorder}; no module is loaded (no device needed).
     *
     * @param recorder receives every launch
     */
    public CommonKernels(Launcher recorder) {
        module = null;
        launcher = recorder;
    }

    /**
     * Blocks of {@link #BLOCK} threads that cover {@code count} items, at least 1.
     *
     * @param count items, one per thread
     * @return the grid's x size
     */
    public static int blocks(long count) {
        return (int) Math.max(1, (count + BLOCK - 1) / BLOCK);
    }

    /**
     * A grid's y size for {@code count} rows: at most {@link #MAX_GRID_Y} (kernels stride over the rest), at least 1.
     *
     * @param count rows
     * @return the grid's y size
     */
    public static int gridY(long count) {
        return (int) Math.max(1, Math.min(count, MAX_GRID_Y));
    }

    private void launch(String kernel, int gridX, int gridY, CudaStream stream, Object... args) {
        StageTimer.time(kernel, stream, () -> launcher.launch(kernel, gridX, gridY, stream, args));
    }

    /**
     * dst (rows × cols, any dtype) = src, += src or -= src, src rows srcPitch floats apart.
     *
     * @param src float32 rows
     * @param srcPitch floats between src rows
     * @param dst the destination, dense
     * @param rows rows
     * @param cols columns
     * @param mode 0 store, 1 add, 2 subtract ({@code WriteMode.code()})
     * @param s the stream
     */
    public void epilogue(long src, long srcPitch, DeviceArray dst, long rows, int cols, int mode, CudaStream s) {
        launch(EPILOGUE, blocks(cols), gridY(rows), s, src, srcPitch, dst.address(), dst.dtype().code(), rows, cols, mode);
    }

    /**
     * The epilogue of a result computed transposed: rows {@code [firstRow, firstRow+rows)} of the layers'
     * transposed matrices (each {@code cols} floats, srcPitch floats apart) go into the columns of dst
     * (layers × cols × dIn, any dtype), per mode.
     *
     * @param src float32 rows of the transposed matrices
     * @param srcPitch floats between src rows
     * @param dst the destination, dense layers × cols × dIn
     * @param firstRow index of src's first row among all layers' transposed rows
     * @param rows rows in src
     * @param cols floats per src row: the destination's rows
     * @param dIn the destination's columns
     * @param mode 0 store, 1 add, 2 subtract
     * @param s the stream
     */
    public void epilogueTransposed(long src, long srcPitch, DeviceArray dst, long firstRow, long rows, int cols,
                                   int dIn, int mode, CudaStream s) {
        launch(EPILOGUE_TRANSPOSED, (int) ((cols + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE),
                gridY((rows + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE), s,
                src, srcPitch, dst.address(), dst.dtype().code(), firstRow, rows, cols, dIn, mode);
    }

    /**
     * dst (total floats) = src widened to float32, then zeros up to {@code total} (padding rows).
     *
     * @param src the source, any dtype
     * @param dst float32 destination
     * @param total floats written
     * @param s the stream
     */
    public void toFloat32(DeviceArray src, long dst, long total, CudaStream s) {
        launch(TO_FLOAT32, (int) Math.min(blocks(total), 65535L * 8), 1, s,
                src.address(), src.dtype().code(), dst, src.length(), total);
    }

    /**
     * The array as float32 for a float32-only library call (cuBLAS's SGEMM): its own address when it is float32,
     * else a widened copy in {@code scratch}, queued on {@code s}.
     *
     * @param a the array, any dtype
     * @param scratch where a copy goes
     * @param s the stream
     * @return a float32 device address holding a's values
     */
    public long asFloat32(DeviceArray a, StreamScratch scratch, CudaStream s) {
        if (a.dtype() == DType.FLOAT32) {
            return a.address();
        }
        long dst = scratch.allocate(4L * a.length());
        toFloat32(a, dst, a.length(), s);
        return dst;
    }

    /**
     * A batch of length-1 transforms: C2R copies the real part (direction 0), R2C widens a real value to
     * (value, 0) (direction 1). Distances between consecutive items are in floats.
     *
     * @param src first item read
     * @param srcDist floats between items read
     * @param dst first item written
     * @param dstDist floats between items written
     * @param count items
     * @param direction 0 for C2R, 1 for R2C
     * @param s the stream
     */
    public void lengthOneTransform(long src, long srcDist, long dst, long dstDist, long count, int direction,
                                   CudaStream s) {
        launch(LENGTH_ONE, (int) Math.min(blocks(count), 65535L * 8), 1, s, src, srcDist, dst, dstDist, count, direction);
    }

    /**
     * dst (n floats) = the sum of {@code count} partial results {@code stride} floats apart, added in part order:
     * the last step of a product split over its inner dimension.
     *
     * @param parts the first part's device address
     * @param stride floats from one part to the next
     * @param count the parts, at least 1
     * @param n floats per part
     * @param dst float32 destination (may be the first part)
     * @param s the stream
     */
    public void sumParts(long parts, long stride, int count, long n, long dst, CudaStream s) {
        launch(SUM_PARTS, (int) Math.min(blocks(n), 65535L * 8), 1, s, parts, stride, count, n, dst);
    }

    /**
     * Profiling only: occupies the stream for about {@code nanoseconds} of device time (one thread).
     *
     * @param nanoseconds how long
     * @param s the stream
     */
    public void holdStream(long nanoseconds, CudaStream s) {
        launch(HOLD_STREAM, 1, 1, s, nanoseconds);
    }

    @Override
    public void close() {
        if (module != null) {
            module.close();
        }
    }
}
