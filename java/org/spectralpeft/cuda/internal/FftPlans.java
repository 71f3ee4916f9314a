package org.spectralpeft.cuda.internal;

import static org.bytedeco.cuda.global.cufft.CUFFT_C2R;
import static org.bytedeco.cuda.global.cufft.CUFFT_R2C;
import static org.bytedeco.cuda.global.cufft.CUFFT_SUCCESS;

import java.util.HashMap;
import java.util.Map;
import org.bytedeco.cuda.global.cufft;
import org.bytedeco.javacpp.SizeTPointer;
import org.spectralpeft.cuda.CudaStream;

/**
 * cuFFT plans, created on first use per shape and cached until {@link #close()}. Plans never allocate
 * their own work area: each batch gets one from the call's {@link StreamScratch}, so one plan can
 * serve several streams at once (the host-side set-stream/set-work-area/execute sequence is atomic
 * per plan).
 *
 * <p>Batches are split into power-of-two pieces of at most {@value #MAX_PLAN_BATCH} items, so that the
 * cache holds O(log) plans per transform shape however many distinct token counts a caller uses.
 *
 * <p>A transform over an axis of length 1 is a copy, done by a kernel instead of cuFFT.
 */
public final class FftPlans implements AutoCloseable {
    public enum Direction { C2R, R2C }

    /**
     * A batched real transform of rank 1 ({@code rows == 0}: length {@code cols}) or rank 2
     * ({@code rows × cols}). {@code padded}: the real side uses rows of 2·(cols/2+1) floats (the in-place
     * layout); otherwise rows of cols floats.
     */
    public record Shape(Direction direction, int rows, int cols, long batch, boolean padded) {
        public long complexPerItem() {
            return (long) Math.max(rows, 1) * (cols / 2 + 1);
        }

        public long realPerItem() {
            return (long) Math.max(rows, 1) * (padded ? 2L * (cols / 2 + 1) : cols);
        }

        public boolean isCopy() {
            return rows <= 1 && cols == 1;
        }

        public long inBytesPerItem() {
            return direction == Direction.C2R ? 8 * complexPerItem() : 4 * realPerItem();
        }

        public long outBytesPerItem() {
            return direction == Direction.C2R ? 4 * realPerItem() : 8 * complexPerItem();
        }

        public Shape withBatch(long b) {
            return new Shape(direction, rows, cols, b, padded);
        }

        /** E.g. "cuFFT C2R 4096 x16" (rank 1) or "cuFFT R2C 4096x4096 x1" (rank 2), for stage timings. */
        public String label() {
            return "cuFFT " + direction + " " + (rows == 0 ? "" : rows + "x") + cols + " x" + batch;
        }
    }

    public static final long MAX_PLAN_BATCH = 4096;

    /** Batches below this are rounded up to a power of two by {@link #paddedBatch}. */
    public static final long PADDED_BATCH_LIMIT = 256;

    /**
     * The batch to transform {@code batch} items with, where the caller owns buffers it can pad with zero
     * items: below {@value #PADDED_BATCH_LIMIT}, the next power of two, so the transform is one cuFFT
     * execution instead of one per set bit of the batch (small transforms are bound by launches, not work);
     * from there on the batch itself, whose pieces are large enough to amortize their launches, where
     * padding could nearly double the work.
     */
    public static long paddedBatch(long batch) {
        if (batch <= 0) {
            throw new IllegalArgumentException("batch must be positive, got " + batch);
        }
        return batch < PADDED_BATCH_LIMIT && Long.bitCount(batch) > 1 ? Long.highestOneBit(batch) << 1 : batch;
    }

    /** One cached plan. */
    public final class Plan {
        private final Shape shape;
        private final int handle;
        private final long workBytes;

        private Plan(Shape shape) {
            this.shape = shape;
            if (shape.isCopy()) {
                handle = -1;
                workBytes = 0;
                return;
            }
            int[] h = new int[1];
            check(cufft.cufftCreate(h), "cufftCreate", shape);
            handle = h[0];
            try {
                workBytes = make(shape);
            } catch (RuntimeException e) {
                cufft.cufftDestroy(handle);
                throw e;
            }
        }

        private long make(Shape shape) {
            check(cufft.cufftSetAutoAllocation(handle, 0), "cufftSetAutoAllocation", shape);
            int rank = shape.rows() == 0 ? 1 : 2;
            long[] n = rank == 1 ? new long[] {shape.cols()} : new long[] {shape.rows(), shape.cols()};
            long[] complexDims = rank == 1 ? new long[] {shape.cols() / 2 + 1}
                    : new long[] {shape.rows(), shape.cols() / 2 + 1};
            long realCols = shape.padded() ? 2L * (shape.cols() / 2 + 1) : shape.cols();
            long[] realDims = rank == 1 ? new long[] {realCols} : new long[] {shape.rows(), realCols};
            boolean c2r = shape.direction() == Direction.C2R;
            try (SizeTPointer work = new SizeTPointer(1)) {
                check(cufft.cufftMakePlanMany64(handle, rank, n,
                        c2r ? complexDims : realDims, 1, c2r ? shape.complexPerItem() : shape.realPerItem(),
                        c2r ? realDims : complexDims, 1, c2r ? shape.realPerItem() : shape.complexPerItem(),
                        c2r ? CUFFT_C2R : CUFFT_R2C, shape.batch(), work), "cufftMakePlanMany64", shape);
                return work.get();
            }
        }

        public long workBytes() {
            return workBytes;
        }

        /** Queues the transform on {@code stream}, with a work area of at least workBytes() at {@code work}. */
        public void execute(long in, long out, long work, CudaStream stream) {
            if (shape.isCopy()) {
                copyTransform(in, out, stream);
                return;
            }
            synchronized (this) {
                check(cufft.cufftSetStream(handle, NativeHandles.runtimeStream(stream.handle())), "cufftSetStream", shape);
                check(cufft.cufftSetWorkArea(handle, NativeHandles.javacpp(work)), "cufftSetWorkArea", shape);
                StageTimer.time(shape.label(), stream, () -> {
                    int status = shape.direction() == Direction.C2R
                            ? cufft.cufftExecC2R(handle, NativeHandles.complexAt(in), NativeHandles.floatsAt(out))
                            : cufft.cufftExecR2C(handle, NativeHandles.floatsAt(in), NativeHandles.complexAt(out));
                    check(status, "cufftExec" + shape.direction(), shape);
                });
            }
        }

        private void copyTransform(long in, long out, CudaStream stream) {
            long complexDist = 2 * shape.complexPerItem(); // in floats
            long realDist = shape.realPerItem();
            if (shape.direction() == Direction.C2R) {
                if (in == out && complexDist != realDist) {
                    throw new IllegalStateException("in-place length-1 C2R needs the padded layout");
                }
                if (in != out) { // in place with the padded layout, the real part is already there
                    lengthOne.run(in, complexDist, out, realDist, shape.batch(), 0, stream);
                }
            } else {
                lengthOne.run(in, realDist, out, complexDist, shape.batch(), 1, stream);
            }
        }

        private void destroy() {
            if (handle >= 0) {
                cufft.cufftDestroy(handle);
            }
        }
    }

    /**
     * A kernel for transforms over an axis of length 1, which are copies (cuFFT does not plan them): item i
     * is read at src + i·srcDist and written at dst + i·dstDist (distances in floats); direction 0 is C2R
     * (keep the real part), 1 is R2C (value, 0). The kernel lives in the caller's module.
     */
    public interface LengthOneTransform {
        /**
         * Queues the copy.
         *
         * @param src first item read
         * @param srcDist floats between items read
         * @param dst first item written
         * @param dstDist floats between items written
         * @param count number of items
         * @param direction 0 for C2R, 1 for R2C
         * @param stream the stream to queue it on
         */
        void run(long src, long srcDist, long dst, long dstDist, long count, int direction, CudaStream stream);
    }

    private final LengthOneTransform lengthOne;
    private final Map<Shape, Plan> plans = new HashMap<>();

    /**
     * An empty plan cache.
     *
     * @param lengthOne the kernel that does transforms over an axis of length 1
     */
    public FftPlans(LengthOneTransform lengthOne) {
        this.lengthOne = lengthOne;
    }

    private synchronized Plan get(Shape shape) {
        return plans.computeIfAbsent(shape, Plan::new);
    }

    /** A batch of rank-2 {@code rows × cols} transforms, or rank 1 along cols when rows is 1. */
    public static Shape twoD(Direction direction, int rows, int cols, long batch, boolean padded) {
        return new Shape(direction, rows == 1 ? 0 : rows, cols, batch, padded);
    }

    /** A batch of length-{@code length} transforms. */
    public static Shape oneD(Direction direction, int length, long batch, boolean padded) {
        return new Shape(direction, 0, length, batch, padded);
    }

    public void twoD(Direction direction, int rows, int cols, long batch, boolean padded, long in, long out,
              StreamScratch scratch, CudaStream stream) {
        run(twoD(direction, rows, cols, batch, padded), in, out, scratch, stream);
    }

    public void oneD(Direction direction, int length, long batch, boolean padded, long in, long out,
              StreamScratch scratch, CudaStream stream) {
        run(oneD(direction, length, batch, padded), in, out, scratch, stream);
    }

    /** Queues the whole batch with a work area of {@link #workBytes} from the call's scratch. */
    public void run(Shape shape, long in, long out, StreamScratch scratch, CudaStream stream) {
        long work = workBytes(shape);
        run(shape, in, out, work > 0 ? scratch.allocate(work) : 0, stream);
    }

    /**
     * Queues the whole batch: largest power-of-two pieces first (batch = Σ 2^i, each piece at most
     * MAX_PLAN_BATCH), all sharing the work area at {@code work} (at least {@link #workBytes} bytes), since
     * they run one after another on the stream.
     */
    public void run(Shape shape, long in, long out, long work, CudaStream stream) {
        long done = 0;
        while (done < shape.batch()) {
            long piece = piece(shape.batch() - done);
            get(shape.withBatch(piece)).execute(in + done * shape.inBytesPerItem(),
                    out + done * shape.outBytesPerItem(), work, stream);
            done += piece;
        }
    }

    /** The work area {@link #run} allocates for this shape (creating its plans if needed). */
    public long workBytes(Shape shape) {
        long most = 0;
        long left = shape.batch();
        if (left > MAX_PLAN_BATCH) { // the full-size pieces all share one plan
            most = get(shape.withBatch(MAX_PLAN_BATCH)).workBytes();
            left %= MAX_PLAN_BATCH;
        }
        for (; left > 0; left -= piece(left)) {
            most = Math.max(most, get(shape.withBatch(piece(left))).workBytes());
        }
        return most;
    }

    private static long piece(long left) {
        return Math.min(MAX_PLAN_BATCH, Long.highestOneBit(left));
    }

    public synchronized int size() {
        return plans.size();
    }

    private static void check(int status, String call, Shape shape) {
        if (status != CUFFT_SUCCESS) {
            throw new IllegalStateException(call + " failed with cuFFT status " + status + " for " + shape);
        }
    }

    @Override
    public synchronized void close() {
        for (Plan p : plans.values()) {
            p.destroy();
        }
        plans.clear();
    }
}
