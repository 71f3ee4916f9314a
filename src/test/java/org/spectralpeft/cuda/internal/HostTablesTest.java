package org.spectralpeft.cuda.internal;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import jcuda.Pointer;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.spectralpeft.TestData;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.fourierft.cuda.RequiresCuda;

/**
 * Tables copied in through the calling thread's reused staging buffer arrive whole and unchanged: after a larger
 * table (no stale tail), empty ones as one zero, past the staging limit, and from several threads at once.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class HostTablesTest {
    @Test
    void everyTableArrivesAsItWasWhateverCameBeforeIt() throws Exception {
        TestData data = new TestData();
        try (CudaContext context = CudaContext.open(0)) {
            context.makeCurrent();
            int[] lengths = {1000, 3, 0, 1, HostTables.STAGING_LIMIT / 4 + 5, 17, 0, 4096};
            try (CudaStream stream = context.createStream(); StreamScratch scratch = new StreamScratch(stream)) {
                List<long[]> longs = new ArrayList<>();
                List<Long> longAddresses = new ArrayList<>();
                List<int[]> ints = new ArrayList<>();
                List<Long> intAddresses = new ArrayList<>();
                for (int length : lengths) { // all queued before any is read back
                    int[] a = randomInts(data, length);
                    ints.add(a);
                    intAddresses.add(HostTables.copyIn(a, scratch, stream));
                    long[] b = new long[length];
                    for (int i = 0; i < length; i++) {
                        b[i] = randomLong(data);
                    }
                    longs.add(b);
                    longAddresses.add(HostTables.copyIn(b, scratch, stream));
                }
                stream.synchronize();
                for (int k = 0; k < lengths.length; k++) {
                    int[] want = lengths[k] == 0 ? new int[1] : ints.get(k);
                    int[] got = new int[want.length];
                    cuMemcpyDtoH(Pointer.to(got), NativeHandles.devicePointer(intAddresses.get(k)), 4L * got.length);
                    assertArrayEquals(want, got, "int table " + k + " of " + lengths[k] + data.tag());
                    long[] wantLong = lengths[k] == 0 ? new long[1] : longs.get(k);
                    long[] gotLong = new long[wantLong.length];
                    cuMemcpyDtoH(Pointer.to(gotLong), NativeHandles.devicePointer(longAddresses.get(k)),
                            8L * gotLong.length);
                    assertArrayEquals(wantLong, gotLong, "long table " + k + " of " + lengths[k] + data.tag());
                }
            }
        }
    }

    @Test
    void threadsStageTheirTablesApart() throws Exception {
        TestData data = new TestData();
        try (CudaContext context = CudaContext.open(0)) {
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<?>> done = new ArrayList<>();
                for (int thread = 0; thread < 4; thread++) {
                    long seed = randomLong(data);
                    done.add(pool.submit(() -> {
                        TestData mine = new TestData(seed);
                        context.makeCurrent();
                        try (CudaStream stream = context.createStream();
                             StreamScratch scratch = new StreamScratch(stream)) {
                            for (int round = 0; round < 50; round++) {
                                int[] a = randomInts(mine, 1 + mine.nextInt(3000));
                                long address = HostTables.copyIn(a, scratch, stream);
                                stream.synchronize();
                                int[] got = new int[a.length];
                                cuMemcpyDtoH(Pointer.to(got), NativeHandles.devicePointer(address), 4L * a.length);
                                assertArrayEquals(a, got, "round " + round + mine.tag());
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) {
                    f.get();
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    private static long randomLong(TestData data) {
        return ((long) data.nextInt(Integer.MAX_VALUE) << 33) ^ ((long) data.nextInt(Integer.MAX_VALUE) << 2)
                ^ data.nextInt(4) ^ (data.nextInt(2) == 0 ? Long.MIN_VALUE : 0);
    }

    private static int[] randomInts(TestData data, int length) {
        int[] a = new int[length];
        for (int i = 0; i < length; i++) {
            a[i] = data.nextInt(Integer.MAX_VALUE) - (1 << 30);
        }
        return a;
    }
}
