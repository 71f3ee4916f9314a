package org.spectralpeft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import org.junit.jupiter.api.Test;
import org.spectralpeft.TestData;

/** float16 and bfloat16 conversions: known bit patterns, exhaustive round trips, ties, nearest rounding. */
class HalfFloatsTest {

    private static int half(float f) {
        return HalfFloats.toHalf(f) & 0xFFFF;
    }

    private static float fromHalf(int bits) {
        return HalfFloats.fromHalf((short) bits);
    }

    private static int bf16(float f) {
        return HalfFloats.toBFloat16(f) & 0xFFFF;
    }

    private static float fromBf16(int bits) {
        return HalfFloats.fromBFloat16((short) bits);
    }

    private static String hex(int bits) {
        return String.format("0x%04X", bits);
    }

    private static void assertHalf(int expected, float f) {
        assertEquals(hex(expected), hex(half(f)), "toHalf(" + f + " = " + Float.toHexString(f) + ")");
    }

    private static void assertBf16(int expected, float f) {
        assertEquals(hex(expected), hex(bf16(f)), "toBFloat16(" + f + " = " + Float.toHexString(f) + ")");
    }

    // ---------------------------------------------------------------- float16

    @Test
    void float16KnownPatterns() {
        assertHalf(0x3C00, 1.0f);
        assertHalf(0xC000, -2.0f);
        assertHalf(0x0000, 0.0f);
        assertHalf(0x8000, -0.0f);
        assertHalf(0x3555, 1f / 3f);
        assertHalf(0x7BFF, 65504f);          // largest finite
        assertHalf(0x7BFF, 65519f);          // below the halfway point to 65536
        assertHalf(0x7C00, 65520f);          // the halfway point rounds to even, which is infinity
        assertHalf(0x7C00, 1e6f);
        assertHalf(0xFC00, -65520f);
        assertHalf(0x0001, 0x1p-24f);        // smallest subnormal
        assertHalf(0x0000, 0x1p-25f);        // tie between 0 and 2^-24: to even (0)
        assertHalf(0x0001, 0x1.000002p-25f); // just above the tie
        assertHalf(0x0002, 3 * 0x1p-25f);    // tie between 1 and 2 ulps: to even (2)
        assertHalf(0x8002, -3 * 0x1p-25f);
        assertHalf(0x0000, 0x1p-26f);
        assertHalf(0x8000, -0x1p-30f);       // underflow keeps the sign
        assertHalf(0x0000, Float.MIN_VALUE);
        assertHalf(0x03FF, 1023 * 0x1p-24f); // largest subnormal
        assertHalf(0x0400, 0x1p-14f);        // smallest normal
        assertHalf(0x0400, 0x1.ffcp-15f);    // 1023.5 ulps: rounds up across the subnormal/normal boundary
        assertHalf(0x3C00, 1f + 0x1p-11f);   // tie between 1 and 1 + 2^-10: to even (1)
        assertHalf(0x3C02, 1f + 3 * 0x1p-11f); // tie between 1 + 2^-10 and 1 + 2^-9: to even
        assertHalf(0x3C01, 1f + 0x1p-10f);
        assertHalf(0x7C00, Float.POSITIVE_INFINITY);
        assertHalf(0xFC00, Float.NEGATIVE_INFINITY);
        assertHalf(0x7C00, Float.MAX_VALUE);
    }

    @Test
    void float16DecodesKnownPatterns() {
        assertEquals(1.0f, fromHalf(0x3C00));
        assertEquals(-2.0f, fromHalf(0xC000));
        assertEquals(65504f, fromHalf(0x7BFF));
        assertEquals(0x1p-24f, fromHalf(0x0001));
        assertEquals(1023 * 0x1p-24f, fromHalf(0x03FF));
        assertEquals(0x1p-14f, fromHalf(0x0400));
        assertEquals(-0x1p-24f, fromHalf(0x8001));
        assertEquals(Float.POSITIVE_INFINITY, fromHalf(0x7C00));
        assertEquals(Float.NEGATIVE_INFINITY, fromHalf(0xFC00));
        assertEquals(Float.floatToRawIntBits(0.0f), Float.floatToRawIntBits(fromHalf(0x0000)));
        assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(fromHalf(0x8000)));
        assertTrue(Float.isNaN(fromHalf(0x7E00)));
        assertTrue(Float.isNaN(fromHalf(0x7C01)));
        assertTrue(Float.isNaN(fromHalf(0xFFFF)));
    }

    @Test
    void float16NaNStaysNaN() {
        int[] nans = {0x7FC00000, 0x7F800001, 0x7F802000, 0x7FFFFFFF, 0xFF800001, 0xFFC00000};
        for (int bits : nans) {
            float f = Float.intBitsToFloat(bits);
            int h = half(f);
            assertEquals(0x7C00, h & 0x7C00, "NaN " + Integer.toHexString(bits) + " -> " + hex(h));
            assertTrue((h & 0x3FF) != 0, "NaN " + Integer.toHexString(bits) + " became infinity " + hex(h));
            assertTrue(Float.isNaN(fromHalf(h)));
            assertTrue(Float.isNaN(DType.FLOAT16.decode(DType.FLOAT16.encode(f))));
        }
        for (int bits = 0; bits < 0x10000; bits++) {
            if ((bits & 0x7C00) == 0x7C00 && (bits & 0x3FF) != 0) {
                assertTrue(Float.isNaN(fromHalf(bits)), hex(bits));
                assertTrue(Float.isNaN(fromHalf(half(fromHalf(bits)))), hex(bits));
            }
        }
    }

    @Test
    void float16RoundTripsEveryNonNaNPattern() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float v = fromHalf(bits);
            if (Float.isNaN(v)) {
                continue;
            }
            assertEquals(hex(bits), hex(half(v)), "encode(decode(" + hex(bits) + "))");
            assertEquals(Float.floatToRawIntBits(v), Float.floatToRawIntBits(fromHalf(half(v))), hex(bits));
        }
    }

    @Test
    void float16DecodeIsStrictlyIncreasing() {
        float previous = fromHalf(0x0000);
        for (int bits = 1; bits <= 0x7C00; bits++) {
            float v = fromHalf(bits);
            assertTrue(v > previous, hex(bits) + " = " + v + " is not above " + previous);
            assertEquals(-v, fromHalf(bits | 0x8000), hex(bits | 0x8000));
            previous = v;
        }
    }

    /** Every midpoint between adjacent float16 values rounds to the even one; one float ulp either side does not tie. */
    @Test
    void float16TiesToEvenEverywhere() {
        for (int a = 0; a < 0x7C00; a++) {
            int b = a + 1;
            float lo = fromHalf(a);
            float mid = b == 0x7C00 ? 65520f : (float) (((double) lo + fromHalf(b)) / 2);
            assertEquals((double) mid, b == 0x7C00 ? 65520.0 : ((double) lo + fromHalf(b)) / 2, "midpoint not exact");
            int even = (a & 1) == 0 ? a : b;
            for (int sign : new int[] {0, 0x8000}) {
                float m = sign == 0 ? mid : -mid;
                assertEquals(hex(even | sign), hex(half(m)), "tie at " + Float.toHexString(m));
                float towardZero = Math.nextDown(mid);
                float awayFromZero = Math.nextUp(mid);
                assertEquals(hex(a | sign), hex(half(sign == 0 ? towardZero : -towardZero)),
                        "below tie " + Float.toHexString(towardZero));
                assertEquals(hex(b | sign), hex(half(sign == 0 ? awayFromZero : -awayFromZero)),
                        "above tie " + Float.toHexString(awayFromZero));
            }
        }
    }

    @Test
    void float16IsTheNearestValueForRandomFloats() {
        TestData data = new TestData();
        for (int i = 0; i < 200_000; i++) {
            float f = randomFloat(data, 127 - 30, 127 + 17);
            checkNearest(f, half(f), 0x7C00, 65520f, HalfFloatsTest::fromHalf, "float16", data);
        }
    }

    // ---------------------------------------------------------------- bfloat16

    @Test
    void bfloat16KnownPatterns() {
        assertBf16(0x3F80, 1.0f);
        assertBf16(0xC000, -2.0f);
        assertBf16(0x0000, 0.0f);
        assertBf16(0x8000, -0.0f);
        assertBf16(0x3F80, Float.intBitsToFloat(0x3F808000)); // tie: to even (0x3F80)
        assertBf16(0x3F82, Float.intBitsToFloat(0x3F818000)); // tie: to even (0x3F82)
        assertBf16(0x3F81, Float.intBitsToFloat(0x3F808001));
        assertBf16(0x3F80, Float.intBitsToFloat(0x3F807FFF));
        assertBf16(0xBF82, Float.intBitsToFloat(0xBF818000));
        assertBf16(0x7F7F, Float.intBitsToFloat(0x7F7F7FFF)); // largest finite
        assertBf16(0x7F80, Float.MAX_VALUE);                   // above the last midpoint: infinity
        assertBf16(0xFF80, -Float.MAX_VALUE);
        assertBf16(0x7F80, Float.POSITIVE_INFINITY);
        assertBf16(0xFF80, Float.NEGATIVE_INFINITY);
        assertBf16(0x0001, Float.intBitsToFloat(0x00010000));  // subnormals are kept
        assertBf16(0x0000, Float.MIN_VALUE);
        assertEquals(1.0f, fromBf16(0x3F80));
        assertEquals(Float.intBitsToFloat(0x3F820000), fromBf16(0x3F82));
        assertEquals(Float.NEGATIVE_INFINITY, fromBf16(0xFF80));
    }

    @Test
    void bfloat16NaNStaysNaN() {
        int[] nans = {0x7FC00000, 0x7F800001, 0x7F80FFFF, 0x7FFFFFFF, 0xFF800001, 0xFFC00000};
        for (int bits : nans) {
            float f = Float.intBitsToFloat(bits);
            int b = bf16(f);
            assertTrue(Float.isNaN(fromBf16(b)), "NaN " + Integer.toHexString(bits) + " -> " + hex(b));
            assertTrue(Float.isNaN(DType.BFLOAT16.decode(DType.BFLOAT16.encode(f))));
        }
    }

    @Test
    void bfloat16RoundTripsEveryNonNaNPattern() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float v = fromBf16(bits);
            assertEquals(bits << 16, Float.floatToRawIntBits(v), "decode is the high half of a float");
            if (Float.isNaN(v)) {
                assertTrue(Float.isNaN(fromBf16(bf16(v))), hex(bits));
                continue;
            }
            assertEquals(hex(bits), hex(bf16(v)), "encode(decode(" + hex(bits) + "))");
        }
    }

    @Test
    void bfloat16TiesToEvenEverywhere() {
        for (int a = 0; a < 0x7F80; a++) {
            int b = a + 1;
            int even = (a & 1) == 0 ? a : b;
            for (int sign : new int[] {0, 0x8000}) {
                int base = (a | sign) << 16;
                assertEquals(hex(even | sign), hex(bf16(Float.intBitsToFloat(base | 0x8000))), "tie above " + hex(a | sign));
                assertEquals(hex(a | sign), hex(bf16(Float.intBitsToFloat(base | 0x7FFF))), "below tie " + hex(a | sign));
                assertEquals(hex(b | sign), hex(bf16(Float.intBitsToFloat(base | 0x8001))), "above tie " + hex(a | sign));
            }
        }
    }

    @Test
    void bfloat16IsTheNearestValueForRandomFloats() {
        TestData data = new TestData();
        float overflow = Float.intBitsToFloat(0x7F7F8000); // midpoint between bf16 max and 2^128
        for (int i = 0; i < 200_000; i++) {
            float f = randomFloat(data, 0, 254);
            checkNearest(f, bf16(f), 0x7F80, overflow, HalfFloatsTest::fromBf16, "bfloat16", data);
        }
    }

    // ---------------------------------------------------------------- helpers

    /** A finite float with a random sign and mantissa and a biased exponent in [minExp, maxExp]. */
    private static float randomFloat(TestData data, int minExp, int maxExp) {
        int exp = minExp + data.nextInt(maxExp - minExp + 1);
        int mant = data.nextInt(1 << 23);
        if (data.nextInt(8) == 0) {
            mant &= ~0xFFF; // low bits zero: more exact ties and representable values
        }
        int sign = data.nextInt(2) << 31;
        return Float.intBitsToFloat(sign | (exp << 23) | mant);
    }

    private interface Decoder {
        float decode(int bits);
    }

    /**
     * encoded must be the representable value nearest to f (ties to an even pattern), with f's sign; values
     * at or beyond the overflow midpoint round to infinity.
     */
    private static void checkNearest(float f, int encoded, int infBits, float overflowAt, Decoder dec, String type,
                                     TestData data) {
        String where = type + "(" + Float.toHexString(f) + ") = " + hex(encoded) + data.tag();
        int sign = encoded & 0x8000;
        assertEquals(f < 0 || Float.floatToRawIntBits(f) < 0 ? 0x8000 : 0, sign, where + ": sign");
        int mag = encoded & 0x7FFF;
        float a = Math.abs(f);
        if (a >= overflowAt) {
            assertEquals(infBits, mag, where + ": should overflow to infinity");
            return;
        }
        assertTrue(mag < infBits, where + ": finite value encoded as infinity or NaN");
        BigDecimal exact = new BigDecimal(a);
        BigDecimal dist = exact.subtract(new BigDecimal(dec.decode(mag))).abs();
        for (int neighbor : new int[] {mag - 1, mag + 1}) {
            if (neighbor < 0 || neighbor >= infBits) {
                continue;
            }
            BigDecimal other = exact.subtract(new BigDecimal(dec.decode(neighbor))).abs();
            int cmp = dist.compareTo(other);
            assertTrue(cmp <= 0, where + ": " + hex(neighbor) + " is nearer");
            if (cmp == 0) {
                assertEquals(0, mag & 1, where + ": tie not rounded to even");
            }
        }
    }
}
