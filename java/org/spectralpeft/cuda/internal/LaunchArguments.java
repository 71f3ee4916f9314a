package org.spectralpeft.cuda.internal;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jcuda.Pointer;
import org.bytedeco.javacpp.BytePointer;

/**
 * A kernel's arguments in the form cuLaunchKernel takes them (an array of pointers, one per argument, each to its
 * value), written into one native block per thread: the first half of the block holds the pointers, fixed when
 * the block is made, the second half one 8-byte slot per value. A launch writes its values and hands the driver
 * one pointer to the block.
 *
 * <p>Why: JCuda marshals the usual form, a {@code Pointer} to one {@code Pointer.to(new long[] {v})} per argument,
 * through a dozen JNI calls and a copy per argument on every launch. On the CUDA emulator's 2-core VM a launch of a
 * 14-argument kernel took about 20 µs that way and 11 µs with the block, the same kernel and emulator under both.
 *
 * <p>The driver copies the values during the launch call (arguments are captured at launch, as for a kernel call
 * in CUDA C), so the thread may overwrite its block at its next launch. One block per thread keeps concurrent
 * launches from different threads apart.
 */
final class LaunchArguments {
    private static final int SLOT = 8;
    private static final int FIRST_CAPACITY = 32;
    private static final ThreadLocal<LaunchArguments> PER_THREAD =
            ThreadLocal.withInitial(() -> new LaunchArguments(FIRST_CAPACITY));

    private final int capacity;
    /** Owns the native memory (freed when this thread's block is collected or replaced). */
    private final BytePointer block;
    /** The whole block (absolute writes only: its position stays 0, where {@link #params} points). */
    private final ByteBuffer values;
    private final Pointer params;

    private LaunchArguments(int capacity) {
        this.capacity = capacity;
        block = new BytePointer(2L * SLOT * capacity);
        values = block.asByteBuffer().order(ByteOrder.nativeOrder());
        long valuesAddress = block.address() + (long) SLOT * capacity;
        for (int i = 0; i < capacity; i++) {
            values.putLong(SLOT * i, valuesAddress + (long) SLOT * i);
        }
        params = Pointer.to(values);
    }

    /**
     * The calling thread's block holding {@code args}, ready to pass as cuLaunchKernel's kernelParams until this
     * thread's next call.
     *
     * @param args the kernel's arguments, in order, as Long, Integer or Float
     * @return the pointer array the driver reads
     * @throws IllegalArgumentException for another argument type (before anything is written)
     */
    static Pointer of(Object[] args) {
        for (Object a : args) {
            if (!(a instanceof Long || a instanceof Integer || a instanceof Float)) {
                throw new IllegalArgumentException("unsupported kernel argument " + a);
            }
        }
        LaunchArguments block = PER_THREAD.get();
        if (args.length > block.capacity) {
            int grown = block.capacity;
            while (grown < args.length) {
                grown *= 2;
            }
            LaunchArguments bigger = new LaunchArguments(grown); // before freeing the old: it may fail
            PER_THREAD.set(bigger);
            block.block.close();
            block = bigger;
        }
        block.write(args);
        return block.params;
    }

    private void write(Object[] args) {
        int base = SLOT * capacity;
        for (int i = 0; i < args.length; i++) {
            int at = base + SLOT * i;
            Object a = args[i];
            if (a instanceof Long v) {
                values.putLong(at, v);
            } else if (a instanceof Integer v) {
                values.putInt(at, v); // the driver reads the parameter's size, 4 bytes, from the slot's start
            } else {
                values.putFloat(at, (Float) a);
            }
        }
    }
}
