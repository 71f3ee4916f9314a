package org.spectralpeft.cuda.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.spectralpeft.TestData;
import org.spectralpeft.cuda.CudaStream;

/** StreamScratch's reservation arithmetic over a fake allocator: alignment, no overlap, fallback, frees. */
class StreamScratchTest {
    /** Hands out disjoint ranges far apart and records what is live. */
    private static final class FakeMemory implements StreamScratch.Memory {
        long next = 1L << 20;
        final List<long[]> live = new ArrayList<>(); // {address, bytes}
        int allocations;

        @Override
        public Object allocate(long bytes, CudaStream stream) {
            long[] a = {next, bytes};
            next += (bytes + (1 << 20)) / (1 << 20) * (1 << 20) + (1 << 20);
            live.add(a);
            allocations++;
            return a;
        }

        @Override
        public long address(Object allocation) {
            return ((long[]) allocation)[0];
        }

        @Override
        public void free(Object allocation, CudaStream stream) {
            assertTrue(live.remove(allocation), "freed twice or never allocated");
        }

        /** The allocation that holds [address, address + bytes), or fails. */
        long[] holding(long address, long bytes) {
            for (long[] a : live) {
                if (address >= a[0] && address + bytes <= a[0] + a[1]) {
                    return a;
                }
            }
            throw new AssertionError("[" + address + ", +" + bytes + ") is in no live allocation");
        }
    }

    @Test
    void reservedAllocationsAreAlignedDisjointAndCostOneDriverAllocation() {
        TestData data = new TestData();
        FakeMemory memory = new FakeMemory();
        long[] sizes = new long[12];
        long total = 0;
        for (int i = 0; i < sizes.length; i++) {
            sizes[i] = i % 4 == 0 ? 1 + data.nextInt(15) : 1 + data.nextInt(100_000); // some under the minimum
            total += StreamScratch.footprint(sizes[i]);
        }
        try (StreamScratch s = new StreamScratch(CudaStream.legacyDefault(), memory)) {
            s.reserve(total);
            List<long[]> got = new ArrayList<>();
            for (long size : sizes) {
                long a = s.allocate(size);
                assertEquals(0, a % StreamScratch.ALIGNMENT, "alignment" + data.tag());
                memory.holding(a, size);
                got.add(new long[] {a, Math.max(size, 16)});
            }
            for (int i = 0; i < got.size(); i++) {
                for (int j = i + 1; j < got.size(); j++) {
                    long[] p = got.get(i);
                    long[] q = got.get(j);
                    assertTrue(p[0] + p[1] <= q[0] || q[0] + q[1] <= p[0], "allocations " + i + " and " + j
                            + " overlap" + data.tag());
                }
            }
            assertEquals(1, memory.allocations, "one driver allocation for the whole reservation");
            assertEquals(0, s.overflows());

            long extra = s.allocate(10);
            memory.holding(extra, 10);
            assertEquals(2, memory.allocations);
            assertEquals(1, s.overflows(), "an allocation beyond the reservation is counted");
            assertThrows(IllegalStateException.class, () -> s.reserve(100));
        }
        assertEquals(List.of(), memory.live, "close frees every allocation");
    }

    @Test
    void withoutAReservationEachAllocationIsItsOwn() {
        FakeMemory memory = new FakeMemory();
        try (StreamScratch s = new StreamScratch(CudaStream.legacyDefault(), memory)) {
            long a = s.allocate(5);
            long b = s.allocate(1000);
            memory.holding(a, 16);
            memory.holding(b, 1000);
            assertEquals(2, memory.allocations);
            assertEquals(0, s.overflows());
        }
        assertEquals(List.of(), memory.live);
        assertEquals(256, StreamScratch.footprint(1));
        assertEquals(256, StreamScratch.footprint(256));
        assertEquals(512, StreamScratch.footprint(257));
    }
}
