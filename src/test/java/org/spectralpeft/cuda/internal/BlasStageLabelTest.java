package org.spectralpeft.cuda.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** A GEMM's stage label names its shape and transposes, so that a stage profile tells a call's GEMMs apart. */
class BlasStageLabelTest {
    @Test
    void theLabelNamesTheShapeAndTheTransposedOperands() {
        assertEquals("cublasSgemm 4096×32×4096 (a·bᵀ)", Blas.stageLabel(false, true, 4096, 32, 4096));
        assertEquals("cublasSgemm 32×4096×7 (aᵀ·b)", Blas.stageLabel(true, false, 32, 4096, 7));
        assertEquals("cublasSgemm 1×2×3 (aᵀ·bᵀ)", Blas.stageLabel(true, true, 1, 2, 3));
        assertEquals("cublasSgemm 4096×4096×32", Blas.stageLabel(false, false, 4096, 4096, 32));
    }
}
