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
        assertEquals(1280.0 * 1280 * (1000 + 16), RingCost.panelMultiplyAdds(square(1280, 4), 1000));
    }

    /** The choices the CPU measurements of bench/NOTES.md ("TLoRA: T in row panels") made. */
    @Test
    void theMeasuredCasesTakeTheFasterRouteThroughT() {
        assertTrue(RingCost.throughPanels(square(1280, 4), 1024, 1.0), "1280, R = 4, 1024 rows: 151 → 70 ms forward");
        assertTrue(RingCost.throughPanels(square(2048, 4), 1024, 1.0), "2048, R = 4, 1024 rows: 287 → 158 ms forward");
        assertTrue(RingCost.throughPanels(square(1280, 4), 1280, 3.0), "W0's rows on a device");
        assertFalse(RingCost.throughPanels(square(2048, 1), 4096, 3.0), "R = 1: a Kronecker product, d·ΣI a row");
        assertFalse(RingCost.throughPanels(square(1280, 2), 4096, 1.0), "R = 2: d·ΣI·8 a row is less than d²");
        assertFalse(RingCost.throughPanels(square(2048, 4), 1, 3.0), "one row does not pay for building T's panels");
        TLoRASpec oneFactor = TLoRASpec.of(new int[] {11}, new int[] {11}, 4, Residual.LORA, 2, 1f);
        assertFalse(RingCost.throughPanels(oneFactor, 100, 3.0), "one factor: already a dense product of traces");
    }

    @Test
    void thePropertyForcesTheRouteWhereBothCanRun() {
        TLoRABackendContract.onRoute("ring", () -> assertFalse(RingCost.throughPanels(square(1280, 4), 1024, 1.0)));
        TLoRABackendContract.onRoute("panels", () -> {
            assertTrue(RingCost.throughPanels(square(2048, 4), 1, 3.0));
            assertTrue(RingCost.throughPanels(square(1280, 2), 4096, 1.0));
            assertFalse(RingCost.throughPanels(square(1280, 1), 4096, 1.0), "R = 1 has no panels");
        });
    }

    /**
     * ∂x through W0·T: with T's panels, a square layer's rows of T cost d² at most, so ∂u·T (tokens·d²) never loses
     * to W0·T then g·(W0·T) (d_out·d² + tokens·d_out·d); a layer with few outputs still goes through W0·T.
     */
    @Test
    void gradXGoesThroughW0TOnlyWhereThatCostsLess() {
        assertFalse(RingCost.gradXThroughW0T(square(1280, 4), 4096, 1.0), "1280, R = 4: ∂u·T by panels");
        assertFalse(RingCost.gradXThroughW0T(square(2048, 4), 4096, 1.0), "2048, R = 4: 1690 → 1980 ms on W0's rows");
        assertFalse(RingCost.gradXThroughW0T(square(1280, 1), 4096, 1.0), "R = 1: the ring is cheap, the GEMM is not");
        assertFalse(RingCost.gradXThroughW0T(square(2048, 1), 4096, 1.0), "R = 1 at 2048: 974 → 1310 ms on W0's rows");
        assertFalse(RingCost.gradXThroughW0T(square(2048, 4), 4096, 3.0), "a slow ring: the panels instead");
        assertFalse(RingCost.gradXThroughW0T(square(1280, 4), 1024, 3.0), "fewer tokens than outputs: never");
        int[] shape = TLoRASpec.authorsShape(1280);
        TLoRASpec narrow = TLoRASpec.of(new int[] {4, 4, 4}, shape, 2, Residual.LORA, 8, 1f);
        assertTrue(RingCost.gradXThroughW0T(narrow, 4096, 3.0), "64 outputs: T on W0's 64 rows, then a thin GEMM");
    }
}
