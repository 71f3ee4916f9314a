package org.spectralpeft.tlora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.spectralpeft.tlora.TLoRASpec.Residual;

class RingCostTest {
    private static TLoRASpec square(int d, int ring) {
        int[] shape = TLoRASpec.authorsShape(d);
        return TLoRASpec.of(shape, shape, ring, Residual.LORA, 8, 1f);
    }

    @Test
    void aRowCostsDInTimesTheFactorsSumTimesRCubed() {
        assertEquals(1280.0 * (8 + 10 + 16) * 64, RingCost.rowMultiplyAdds(square(1280, 4)));
        assertEquals(2048.0 * (8 + 16 + 16), RingCost.rowMultiplyAdds(square(2048, 1)));
    }

    /** The choices the CPU measurements of bench/NOTES.md ("TLoRA ∂x through W0·T") made by hand. */
    @Test
    void theMeasuredCasesGoTheFasterWay() {
        assertTrue(RingCost.gradXThroughW0T(square(1280, 4), 4096, 1.0), "1280, R = 4: 922 → 816 ms on W0's rows");
        assertFalse(RingCost.gradXThroughW0T(square(2048, 4), 4096, 1.0), "2048, R = 4: 1690 → 1980 ms on W0's rows");
        assertFalse(RingCost.gradXThroughW0T(square(1280, 1), 4096, 1.0), "R = 1: the ring is cheap, the GEMM is not");
        assertFalse(RingCost.gradXThroughW0T(square(2048, 1), 4096, 1.0), "R = 1 at 2048: 974 → 1310 ms on W0's rows");
        assertTrue(RingCost.gradXThroughW0T(square(2048, 4), 4096, 3.0), "a ring three times slower than the GEMM");
        assertFalse(RingCost.gradXThroughW0T(square(1280, 4), 1024, 3.0), "fewer tokens than outputs: never");
    }
}
