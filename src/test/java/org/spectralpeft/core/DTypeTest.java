package org.spectralpeft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.spectralpeft.TestData;

/** DType's codes (shared with kernels/dtype.cuh), sizes, and its 16-bit encode/decode. */
class DTypeTest {

    @Test
    void codesMatchTheKernelsAndSizesAreRight() {
        assertEquals(0, DType.FLOAT32.code());
        assertEquals(1, DType.FLOAT16.code());
        assertEquals(2, DType.BFLOAT16.code());
        assertEquals(4, DType.FLOAT32.bytes());
        assertEquals(2, DType.FLOAT16.bytes());
        assertEquals(2, DType.BFLOAT16.bytes());
    }

    @Test
    void float32HasNo16BitEncoding() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> DType.FLOAT32.encode(1f));
        assertTrue(e.getMessage().contains("float32"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> DType.FLOAT32.decode((short) 0x3C00));
        assertTrue(e.getMessage().contains("float32"), e.getMessage());
    }

    @Test
    void encodeAndDecodeUseTheRightFormat() {
        assertEquals((short) 0x3C00, DType.FLOAT16.encode(1f));
        assertEquals((short) 0x3F80, DType.BFLOAT16.encode(1f));
        assertEquals((short) 0xC000, DType.FLOAT16.encode(-2f));
        assertEquals((short) 0xC000, DType.BFLOAT16.encode(-2f));
        assertEquals(1f, DType.FLOAT16.decode((short) 0x3C00));
        assertEquals(1f, DType.BFLOAT16.decode((short) 0x3F80));
        assertEquals(1.875f, DType.BFLOAT16.decode((short) 0x3FF0));
        assertEquals(65504f, DType.FLOAT16.decode((short) 0x7BFF));
        // 1e5 overflows float16 but not bfloat16
        assertEquals(Float.POSITIVE_INFINITY, DType.FLOAT16.decode(DType.FLOAT16.encode(1e5f)));
        assertEquals(99840f, DType.BFLOAT16.decode(DType.BFLOAT16.encode(1e5f)));
    }

    @Test
    void randomValuesAgreeWithHalfFloats() {
        TestData data = new TestData();
        float[] v = data.gaussian(1000);
        for (int i = 0; i < v.length; i++) {
            float x = v[i] * (float) Math.pow(2, data.nextInt(40) - 20);
            assertEquals(HalfFloats.toHalf(x), DType.FLOAT16.encode(x), "float16 " + x + data.tag());
            assertEquals(HalfFloats.toBFloat16(x), DType.BFLOAT16.encode(x), "bfloat16 " + x + data.tag());
            float h = DType.FLOAT16.decode(DType.FLOAT16.encode(x));
            float b = DType.BFLOAT16.decode(DType.BFLOAT16.encode(x));
            if (Math.abs(x) >= 0x1p-14f && Math.abs(x) < 65504f) { // float16 normal range: relative error ≤ 2^-11
                assertTrue(Math.abs(h - x) <= Math.abs(x) * 0x1p-11f, "float16 " + x + " -> " + h + data.tag());
            }
            assertTrue(Math.abs(b - x) <= Math.abs(x) * 0x1p-8f, "bfloat16 " + x + " -> " + b + data.tag());
        }
    }
}
