package org.spectralpeft.fourierft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.spectralpeft.TestData;

/** The PEFT index set: MT19937 against the reference generator, the sparse prefix against a dense shuffle. */
class PeftIndicesTest {

    /** PEFT, d_out = 64, d_in = 48, seed 777: torch.randperm(3072, generator=manual_seed(777))[:5]. */
    private static final int[] PEFT_64x48_SEED_777 = {1127, 1744, 1773, 2960, 851};

    @Test
    void randpermPrefixMatchesPeftForSeed777() {
        assertArrayEquals(PEFT_64x48_SEED_777, PeftIndices.randpermPrefix(64L * 48, 5, 777));
    }

    @Test
    void fromSeedSplitsFlatIndicesIntoRowsAndColumns() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(64, 48, 5);
        assertEquals(64, spec.dOut());
        assertEquals(48, spec.dIn());
        assertEquals(5, spec.n());
        assertEquals(FourierFTSpec.DEFAULT_SCALING, spec.alpha());
        int[] expectedRows = new int[5];
        int[] expectedCols = new int[5];
        for (int l = 0; l < 5; l++) {
            expectedRows[l] = PEFT_64x48_SEED_777[l] / 48;
            expectedCols[l] = PEFT_64x48_SEED_777[l] % 48;
        }
        // 1127 = 23·48 + 23, 1744 = 36·48 + 16, 1773 = 36·48 + 45, 2960 = 61·48 + 32, 851 = 17·48 + 35
        assertArrayEquals(new int[] {23, 36, 36, 61, 17}, expectedRows);
        assertArrayEquals(new int[] {23, 16, 45, 32, 35}, expectedCols);
        assertArrayEquals(expectedRows, spec.rows());
        assertArrayEquals(expectedCols, spec.cols());
        for (int l = 0; l < 5; l++) {
            assertEquals(expectedRows[l], spec.row(l));
            assertEquals(expectedCols[l], spec.col(l));
        }
    }

    @Test
    void fromSeedUsesTheGivenSeedAndAlpha() {
        TestData data = new TestData();
        long seed = data.nextInt(Integer.MAX_VALUE);
        FourierFTSpec spec = FourierFTSpec.fromSeed(37, 29, 40, seed, 3.5f);
        int[] flat = PeftIndices.randpermPrefix(37L * 29, 40, seed);
        for (int l = 0; l < 40; l++) {
            assertEquals(flat[l] / 29, spec.row(l), "row " + l + data.tag());
            assertEquals(flat[l] % 29, spec.col(l), "col " + l + data.tag());
        }
        assertEquals(3.5f, spec.alpha());
    }

    @Test
    void mt19937MatchesReferenceInitGenrand5489() {
        PeftIndices.Mt19937 mt = new PeftIndices.Mt19937(5489);
        long[] expected = {3499211612L, 581869302L, 3890346734L, 3586334585L, 545404204L};
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], Integer.toUnsignedLong(mt.next32()), "output " + i);
        }
    }

    @Test
    void mt19937TenThousandthOutputMatchesTheStandard() {
        // C++ [rand.predef]: the 10000th invocation of a default-constructed std::mt19937 yields 4123659995.
        // This crosses 16 twists of the state, which the first outputs alone do not.
        PeftIndices.Mt19937 mt = new PeftIndices.Mt19937(5489);
        int last = 0;
        for (int i = 0; i < 10000; i++) {
            last = mt.next32();
        }
        assertEquals(4123659995L, Integer.toUnsignedLong(last));
    }

    @Test
    void mt19937SeedsWithTheLow32BitsOfTheSeed() {
        PeftIndices.Mt19937 a = new PeftIndices.Mt19937(5489);
        PeftIndices.Mt19937 b = new PeftIndices.Mt19937(5489 + (1L << 32));
        PeftIndices.Mt19937 c = new PeftIndices.Mt19937(5490);
        boolean differs = false;
        for (int i = 0; i < 1000; i++) {
            int x = a.next32();
            assertEquals(x, b.next32(), "output " + i);
            differs |= x != c.next32();
        }
        assertTrue(differs, "seeds 5489 and 5490 gave the same stream");
    }

    /** PyTorch's randperm_cpu, written out densely: O(N) memory, the full shuffle. */
    private static int[] denseRandperm(int size, long seed) {
        PeftIndices.Mt19937 mt = new PeftIndices.Mt19937(seed);
        int[] r = new int[size];
        for (int i = 0; i < size; i++) {
            r[i] = i;
        }
        for (int i = 0; i < size - 1; i++) {
            long z = Integer.toUnsignedLong(mt.next32()) % (size - i);
            int j = (int) (i + z);
            int t = r[i];
            r[i] = r[j];
            r[j] = t;
        }
        return r;
    }

    @Test
    void sparsePrefixEqualsDenseFisherYates() {
        TestData data = new TestData();
        int[] sizes = {1, 2, 3, 7, 100, 624, 625, 1249, 3072};
        List<Long> seeds = new ArrayList<>(List.of(0L, 1L, 777L, 5489L, 0xFFFFFFFFL, -1L));
        seeds.add((long) data.nextInt(Integer.MAX_VALUE));
        for (int size : sizes) {
            for (long seed : seeds) {
                String where = "size " + size + ", seed " + seed + data.tag();
                int[] dense = denseRandperm(size, seed);
                int[] ns = {0, 1, size / 2, size - 1, size, Math.min(size, 1 + data.nextInt(size))};
                for (int n : ns) {
                    int[] prefix = PeftIndices.randpermPrefix(size, n, seed);
                    assertEquals(n, prefix.length, where);
                    assertArrayEquals(Arrays.copyOf(dense, n), prefix, where + ", n " + n);
                }
            }
        }
    }

    @Test
    void wholePermutationIsAPermutation() {
        for (int size : new int[] {1, 2, 7, 100, 3072}) {
            for (long seed : new long[] {0, 777, 123456789}) {
                int[] perm = PeftIndices.randpermPrefix(size, size, seed);
                int[] sorted = perm.clone();
                Arrays.sort(sorted);
                for (int i = 0; i < size; i++) {
                    assertEquals(i, sorted[i], "size " + size + ", seed " + seed + ": not a permutation");
                }
                if (size >= 7) {
                    boolean moved = false;
                    for (int i = 0; i < size; i++) {
                        moved |= perm[i] != i;
                    }
                    assertTrue(moved, "size " + size + ", seed " + seed + ": identity permutation");
                }
            }
        }
    }

    @Test
    void shorterPrefixesArePrefixesOfLongerOnes() {
        long size = 4096L * 4096;
        int[] longer = PeftIndices.randpermPrefix(size, 1000, 777);
        int[] shorter = PeftIndices.randpermPrefix(size, 10, 777);
        assertArrayEquals(Arrays.copyOf(longer, 10), shorter);
    }

    @Test
    void largestSizeGivesDistinctInRangeIndices() {
        int n = 20000;
        int[] prefix = PeftIndices.randpermPrefix(PeftIndices.MAX_SIZE, n, 777);
        assertEquals(n, prefix.length);
        long[] sorted = new long[n];
        for (int i = 0; i < n; i++) {
            assertTrue(prefix[i] >= 0 && prefix[i] < PeftIndices.MAX_SIZE, "index " + prefix[i] + " out of range");
            sorted[i] = prefix[i];
        }
        Arrays.sort(sorted);
        for (int i = 1; i < n; i++) {
            assertTrue(sorted[i] != sorted[i - 1], "duplicate index " + sorted[i]);
        }
    }

    @Test
    void maxSizeIsTheLastSizeOnPyTorchs32BitPath() {
        // torch takes the 32-bit path while n < UINT32_MAX / 20 = 214748364 (integer division)
        assertEquals(0xFFFFFFFFL / 20 - 1, PeftIndices.MAX_SIZE);
        assertEquals(214748363L, PeftIndices.MAX_SIZE);
    }

    @Test
    void rejectsInvalidArguments() {
        assertMessage(() -> PeftIndices.randpermPrefix(0, 0, 1), "size 0");
        assertMessage(() -> PeftIndices.randpermPrefix(-5, 0, 1), "size -5");
        assertMessage(() -> PeftIndices.randpermPrefix(PeftIndices.MAX_SIZE + 1, 1, 1),
                "size " + (PeftIndices.MAX_SIZE + 1));
        assertMessage(() -> PeftIndices.randpermPrefix(10, 11, 1), "n = 11");
        assertMessage(() -> PeftIndices.randpermPrefix(10, -1, 1), "n = -1");
        // the boundaries themselves are accepted
        assertEquals(10, PeftIndices.randpermPrefix(10, 10, 1).length);
        assertEquals(0, PeftIndices.randpermPrefix(10, 0, 1).length);
        assertEquals(1, PeftIndices.randpermPrefix(PeftIndices.MAX_SIZE, 1, 1).length);
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage() != null && e.getMessage().contains(fragment),
                "message '" + e.getMessage() + "' does not mention '" + fragment + "'");
    }
}
