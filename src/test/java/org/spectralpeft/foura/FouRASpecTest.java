package org.spectralpeft.foura;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;

/** FouRASpec: sizes, parameter lengths, mergeability, and every validation error naming its argument. */
class FouRASpecTest {

    private static void expectMessage(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    @Test
    void lengthsAndKinds() {
        FouRASpec s = FouRASpec.of(96, 81, 16, Transform.DCT, Gate.ADAPTIVE, 2f);
        assertEquals(16L * 81, s.aLength());
        assertEquals(96L * 16, s.bLength());
        assertEquals(16L * 16 + 16, s.gateLength());
        assertEquals(16, s.zWidth()); // DCT: r real components
        assertEquals(2, FouRASpec.of(1, 8, 1, Transform.DFT, Gate.NONE, 1f).zWidth()); // DFT: r complex ones
        assertFalse(s.mergeable());
        FouRASpec fixed = FouRASpec.of(96, 81, 16, Transform.DFT, Gate.FIXED, 2f);
        assertEquals(16, fixed.gateLength());
        assertTrue(fixed.mergeable());
        assertEquals(0, FouRASpec.of(1, 8, 1, Transform.DFT, Gate.NONE, 1f).gateLength());
        assertEquals(fixed, FouRASpec.of(96, 81, 16, Transform.DFT, Gate.FIXED, 2f));
        assertEquals(fixed.hashCode(), FouRASpec.of(96, 81, 16, Transform.DFT, Gate.FIXED, 2f).hashCode());
        assertFalse(fixed.equals(s));
    }

    @Test
    void invalidArgumentsAreNamed() {
        expectMessage("dOut", () -> FouRASpec.of(0, 8, 1, Transform.DFT, Gate.NONE, 1f));
        expectMessage("dIn", () -> FouRASpec.of(8, -1, 1, Transform.DFT, Gate.NONE, 1f));
        expectMessage("rank", () -> FouRASpec.of(8, 8, 0, Transform.DFT, Gate.NONE, 1f));
        expectMessage("rank 9 exceeds min(d_in, d_out) = 8", () -> FouRASpec.of(8, 20, 9, Transform.DFT, Gate.NONE, 1f));
        expectMessage("transform must not be null", () -> FouRASpec.of(8, 8, 2, null, Gate.NONE, 1f));
        expectMessage("gate must not be null", () -> FouRASpec.of(8, 8, 2, Transform.DCT, null, 1f));
        expectMessage("alpha is NaN", () -> FouRASpec.of(8, 8, 2, Transform.DCT, Gate.NONE, Float.NaN));
    }
}
