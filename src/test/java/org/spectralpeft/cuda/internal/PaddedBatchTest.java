package org.spectralpeft.cuda.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** FftPlans.paddedBatch: one plan execution for small batches, no padding for large ones. */
class PaddedBatchTest {
    @Test
    void smallBatchesRoundUpToOnePowerOfTwoAndLargeOnesStay() {
        for (long b = 1; b <= 5000; b++) {
            long p = FftPlans.paddedBatch(b);
            if (b >= FftPlans.PADDED_BATCH_LIMIT || Long.bitCount(b) == 1) {
                assertEquals(b, p, "batch " + b);
            } else {
                assertEquals(1, Long.bitCount(p), "batch " + b + " → " + p + " is one plan execution");
                assertTrue(p > b && p < 2 * b, "batch " + b + " → " + p);
                assertTrue(p <= FftPlans.PADDED_BATCH_LIMIT, "batch " + b + " → " + p);
            }
        }
        assertEquals(128, FftPlans.paddedBatch(70));
        assertEquals(256, FftPlans.paddedBatch(255));
        assertEquals(300, FftPlans.paddedBatch(300));
    }

    @Test
    void nonPositiveBatchesAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> FftPlans.paddedBatch(0));
        assertThrows(IllegalArgumentException.class, () -> FftPlans.paddedBatch(-3));
    }
}
