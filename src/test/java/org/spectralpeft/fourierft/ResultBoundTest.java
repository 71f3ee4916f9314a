package org.spectralpeft.fourierft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.spectralpeft.core.DType;

/** The bound under which a materialize's result is not scanned for an overflow. */
class ResultBoundTest {
    @Test
    void typicalCoefficientsNeedNoScanInThe32BitRangeDtypes() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(768, 768, 1000, 777, 150f);
        float[] coeffs = new float[1000];
        Arrays.fill(coeffs, 1f);
        // 150 · 1000 · 128 · 768 ≈ 1.5e10
        assertTrue(ResultBound.deltaIsFinite(spec, coeffs, DType.FLOAT32));
        assertTrue(ResultBound.deltaIsFinite(spec, coeffs, DType.BFLOAT16));
        assertFalse(ResultBound.deltaIsFinite(spec, coeffs, DType.FLOAT16), "float16 is scanned");
    }

    @Test
    void theBoundIsTheTwiddleSumTimesTheMargin() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(12, 10, 7, 0, 0.5f); // α below 1 counts as 1
        float[] coeffs = new float[7];
        float limit = (float) (65504.0 / (128.0 * 12));
        Arrays.fill(coeffs, 0.99f * limit / 7);
        assertTrue(ResultBound.deltaIsFinite(spec, coeffs, DType.FLOAT16));
        coeffs[3] = -1.02f * limit; // the sum of magnitudes passes the limit
        assertFalse(ResultBound.deltaIsFinite(spec, coeffs, DType.FLOAT16));
        float[] huge = new float[7];
        Arrays.fill(huge, 3e38f);
        assertFalse(ResultBound.deltaIsFinite(spec, huge, DType.FLOAT32));
        assertFalse(ResultBound.deltaIsFinite(spec, huge, DType.BFLOAT16));
    }

    @Test
    void largestFiniteValues() {
        assertEquals(Float.MAX_VALUE, ResultBound.largestFinite(DType.FLOAT32));
        assertEquals(65504.0, ResultBound.largestFinite(DType.FLOAT16));
        double bf16 = ResultBound.largestFinite(DType.BFLOAT16);
        assertTrue(Float.isFinite(DType.BFLOAT16.decode(DType.BFLOAT16.encode((float) bf16))));
        assertEquals(bf16, DType.BFLOAT16.decode(DType.BFLOAT16.encode((float) bf16)));
    }
}
