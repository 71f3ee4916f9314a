package org.spectralpeft.cuda.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import jcuda.Pointer;
import org.bytedeco.javacpp.BytePointer;
import org.junit.jupiter.api.Test;

/**
 * LaunchArguments: what the driver reads through kernelParams (pointer i → argument i's value, in native order),
 * for any count of arguments, on several threads at once. Read back through raw addresses, as the driver does.
 */
class LaunchArgumentsTest {
    /** Argument i as the driver would read it: the pointer at slot i, then the value's bytes there. */
    private static long pointerAt(Pointer params, int i) {
        ByteBuffer pointers = params.getByteBuffer(0, 8L * (i + 1)).order(ByteOrder.nativeOrder());
        return pointers.getLong(8 * i);
    }

    private static ByteBuffer valueAt(Pointer params, int i, int bytes) {
        BytePointer at = new BytePointer(NativeHandles.javacpp(pointerAt(params, i)));
        return at.capacity(bytes).asByteBuffer().order(ByteOrder.nativeOrder());
    }

    private static Object[] randomArguments(Random random, int count) {
        Object[] args = new Object[count];
        for (int i = 0; i < count; i++) {
            args[i] = switch (random.nextInt(3)) {
                case 0 -> random.nextLong();
                case 1 -> random.nextInt();
                default -> random.nextFloat() - 0.5f;
            };
        }
        return args;
    }

    private static void assertHolds(Pointer params, Object[] args) {
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            String what = "argument " + i + " of " + args.length;
            if (a instanceof Long v) {
                assertEquals(v, valueAt(params, i, 8).getLong(0), what);
            } else if (a instanceof Integer v) {
                assertEquals(v, valueAt(params, i, 4).getInt(0), what);
            } else {
                assertEquals(Float.floatToRawIntBits((Float) a), valueAt(params, i, 4).getInt(0), what);
            }
        }
    }

    @Test
    void eachPointerLeadsToItsArgumentsValueAtAnyCount() {
        Random random = new Random(7);
        for (int count : new int[] {0, 1, 5, 14, 31, 32, 33, 100, 3}) { // past the first block, then back under it
            Object[] args = randomArguments(random, count);
            Pointer params = LaunchArguments.of(args);
            assertHolds(params, args);
        }
    }

    @Test
    void eachArgumentHasItsOwnEightByteSlot() {
        Object[] args = {1L, 2, 3f, -4L};
        Pointer params = LaunchArguments.of(args);
        for (int i = 1; i < args.length; i++) {
            assertEquals(8, pointerAt(params, i) - pointerAt(params, i - 1), "slots 8 bytes apart");
        }
    }

    @Test
    void threadsWriteTheirOwnBlocks() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Integer>> runs = new ArrayList<>();
            for (int thread = 0; thread < 4; thread++) {
                int seed = thread;
                runs.add(pool.submit(() -> {
                    Random random = new Random(seed);
                    for (int round = 0; round < 2000; round++) {
                        Object[] args = randomArguments(random, 1 + random.nextInt(40));
                        assertHolds(LaunchArguments.of(args), args);
                    }
                    return 2000;
                }));
            }
            for (Future<Integer> f : runs) {
                assertEquals(2000, f.get());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void anotherArgumentTypeIsRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LaunchArguments.of(new Object[] {1L, 2.5, 3}));
        assertTrue(e.getMessage().contains("unsupported kernel argument 2.5"), e.getMessage());
    }
}
