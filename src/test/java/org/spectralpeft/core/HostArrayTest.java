package org.spectralpeft.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import org.junit.jupiter.api.Test;
import org.spectralpeft.TestData;

/**
 * HostArray over each dtype: wrapping arrays and buffers, rounding on set, read, write in each mode, non-finite
 * detection.
 */
class HostArrayTest {

    /** The value of v as stored in dtype. */
    private static float rounded(DType dtype, float v) {
        return dtype == DType.FLOAT32 ? v : dtype.decode(dtype.encode(v));
    }

    private static int bits(float f) {
        return Float.floatToRawIntBits(f);
    }

    @Test
    void allocateIsZero() {
        for (DType dtype : DType.values()) {
            HostArray a = HostArray.allocate(dtype, 17);
            assertEquals(dtype, a.dtype());
            assertEquals(17, a.length());
            for (int i = 0; i < 17; i++) {
                assertEquals(bits(0f), bits(a.get(i)), dtype + " element " + i + " is not +0");
            }
            assertEquals(-1, a.firstNonFinite());
            assertEquals(0, HostArray.allocate(dtype, 0).length());
            assertArrayEquals(new float[0], HostArray.allocate(dtype, 0).toFloats());
        }
    }

    @Test
    void ofConvertsAndCopies() {
        TestData data = new TestData();
        for (DType dtype : DType.values()) {
            float[] v = data.gaussian(33);
            v[3] = 1e-9f;
            v[4] = 70000f;
            v[5] = -0f;
            float[] original = v.clone();
            HostArray a = HostArray.of(dtype, v);
            assertEquals(dtype, a.dtype());
            assertEquals(33, a.length());
            v[0] = 1234f; // the array holds a copy
            for (int i = 0; i < 33; i++) {
                assertEquals(bits(rounded(dtype, original[i])), bits(a.get(i)), dtype + " element " + i + data.tag());
            }
            float[] back = a.toFloats();
            back[1] = 99f;
            assertEquals(rounded(dtype, original[1]), a.get(1), "toFloats returned a view" + data.tag());
        }
        // a few exact values
        assertEquals((short) 0x3C00, HostArray.of(DType.FLOAT16, new float[] {1f}).halves()[0]);
        assertEquals((short) 0x3F80, HostArray.of(DType.BFLOAT16, new float[] {1f}).halves()[0]);
        assertEquals(0.1f, HostArray.of(DType.FLOAT32, new float[] {0.1f}).floats()[0]);
        assertEquals(0.0999755859375f, HostArray.of(DType.FLOAT16, new float[] {0.1f}).get(0));
        assertEquals(0.10009765625f, HostArray.of(DType.BFLOAT16, new float[] {0.1f}).get(0));
    }

    @Test
    void wrapsTheCallersArray() {
        float[] f = {1f, 2f, 3f};
        HostArray a = HostArray.float32(f);
        assertSame(f, a.floats());
        a.set(1, 5f);
        assertEquals(5f, f[1]);
        f[2] = 7f;
        assertEquals(7f, a.get(2));

        short[] h = new short[3];
        HostArray b = HostArray.float16(h);
        assertEquals(DType.FLOAT16, b.dtype());
        assertSame(h, b.halves());
        b.set(0, 1f);
        assertEquals((short) 0x3C00, h[0]);
        h[1] = (short) 0xC000;
        assertEquals(-2f, b.get(1));

        short[] g = new short[3];
        HostArray c = HostArray.bfloat16(g);
        assertEquals(DType.BFLOAT16, c.dtype());
        assertSame(g, c.halves());
        c.set(2, -2f);
        assertEquals((short) 0xC000, g[2]);
        g[0] = (short) 0x3F80;
        assertEquals(1f, c.get(0));

        assertThrows(IllegalArgumentException.class, () -> HostArray.float32((float[]) null));
        assertThrows(IllegalArgumentException.class, () -> HostArray.float16((short[]) null));
        assertThrows(IllegalArgumentException.class, () -> HostArray.bfloat16((short[]) null));
    }

    @Test
    void setRoundsToNearestEven() {
        HostArray h = HostArray.allocate(DType.FLOAT16, 2);
        h.set(0, 1f + 0x1p-11f);      // tie: to 1
        h.set(1, 1f + 3 * 0x1p-11f);  // tie: to 1 + 2^-9
        assertEquals(1f, h.get(0));
        assertEquals(1f + 0x1p-9f, h.get(1));
        HostArray b = HostArray.allocate(DType.BFLOAT16, 2);
        b.set(0, Float.intBitsToFloat(0x3F808000));
        b.set(1, Float.intBitsToFloat(0x3F818000));
        assertEquals((short) 0x3F80, b.halves()[0]);
        assertEquals((short) 0x3F82, b.halves()[1]);
    }

    @Test
    void wrongDtypeAccessorsThrow() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> HostArray.allocate(DType.FLOAT16, 2).floats());
        assertTrue(e.getMessage().contains("FLOAT16"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> HostArray.allocate(DType.BFLOAT16, 2).floats());
        assertTrue(e.getMessage().contains("BFLOAT16"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> HostArray.allocate(DType.FLOAT32, 2).halves());
        assertTrue(e.getMessage().contains("float32"), e.getMessage());
        assertEquals(2, HostArray.allocate(DType.FLOAT32, 2).floats().length);
        assertEquals(2, HostArray.allocate(DType.FLOAT16, 2).halves().length);
        assertEquals(2, HostArray.allocate(DType.BFLOAT16, 2).halves().length);
    }

    @Test
    void readCopiesARangeAsFloat32() {
        TestData data = new TestData();
        for (DType dtype : DType.values()) {
            float[] v = data.gaussian(20);
            HostArray a = HostArray.of(dtype, v);
            float[] dst = new float[10];
            java.util.Arrays.fill(dst, -77f);
            a.read(5, dst, 7);
            for (int i = 0; i < 7; i++) {
                assertEquals(rounded(dtype, v[5 + i]), dst[i], dtype + " dst[" + i + "]" + data.tag());
            }
            for (int i = 7; i < 10; i++) {
                assertEquals(-77f, dst[i], dtype + ": read wrote past len");
            }
            a.read(0, dst, 0); // nothing
            assertEquals(-77f, dst[9]);
            assertThrows(IndexOutOfBoundsException.class, () -> a.read(15, new float[10], 10));
        }
    }

    @Test
    void writeStoresAddsAndSubtractsWithRounding() {
        TestData data = new TestData();
        for (DType dtype : DType.values()) {
            for (WriteMode mode : WriteMode.values()) {
                String where = dtype + " " + mode + data.tag();
                float[] init = data.gaussian(24);
                HostArray a = HostArray.of(dtype, init);
                float[] before = a.toFloats();
                float[] src = data.gaussian(12);
                src[0] = 0x1p-12f; // below half an ulp of float16 values near 1: ADD/SUBTRACT may leave them unchanged
                int offset = 6;
                int len = 9;
                a.write(offset, src, len, mode);
                for (int i = 0; i < 24; i++) {
                    float expected;
                    if (i < offset || i >= offset + len) {
                        expected = before[i];
                    } else {
                        float s = src[i - offset];
                        float v = switch (mode) {
                            case STORE -> s;
                            case ADD -> before[i] + s;
                            case SUBTRACT -> before[i] - s;
                        };
                        expected = rounded(dtype, v);
                    }
                    assertEquals(bits(expected), bits(a.get(i)), where + ": element " + i);
                }
            }
        }
    }

    @Test
    void writeModesOnKnownValues() {
        for (DType dtype : DType.values()) {
            HostArray a = HostArray.of(dtype, new float[] {1f, 2f, 3f, 4f});
            a.write(1, new float[] {0.5f, 0.25f}, 2, WriteMode.ADD);
            assertArrayEquals(new float[] {1f, 2.5f, 3.25f, 4f}, a.toFloats(), dtype + " ADD");
            a.write(2, new float[] {1f, 1f}, 2, WriteMode.SUBTRACT);
            assertArrayEquals(new float[] {1f, 2.5f, 2.25f, 3f}, a.toFloats(), dtype + " SUBTRACT");
            a.write(0, new float[] {-8f, 9f, 10f}, 1, WriteMode.STORE);
            assertArrayEquals(new float[] {-8f, 2.5f, 2.25f, 3f}, a.toFloats(), dtype + " STORE");
        }
        // accumulation in float16 rounds after every step: 2048 + 1 is a tie and stays 2048
        HostArray h = HostArray.of(DType.FLOAT16, new float[] {2048f});
        h.write(0, new float[] {1f}, 1, WriteMode.ADD);
        assertEquals(2048f, h.get(0));
        h.write(0, new float[] {3f}, 1, WriteMode.ADD);
        assertEquals(2052f, h.get(0)); // 2051 is a tie between 2050 and 2052: even mantissa
        // ADD overflowing float16 gives infinity
        HostArray o = HostArray.of(DType.FLOAT16, new float[] {65504f});
        o.write(0, new float[] {16f}, 1, WriteMode.ADD);
        assertEquals(Float.POSITIVE_INFINITY, o.get(0));
    }

    @Test
    void modeCodesMatchTheKernels() {
        assertEquals(0, WriteMode.STORE.code());
        assertEquals(1, WriteMode.ADD.code());
        assertEquals(2, WriteMode.SUBTRACT.code());
    }

    /**
     * Long float32 arrays (the block scan): every position of one or two bad values, in blocks and in the tail
     * after the last whole vector, against the plain scan; −0, subnormals and the largest finite value are finite.
     */
    @Test
    void firstNonFiniteFindsItInLongArrays() {
        TestData data = new TestData();
        int length = 3 * 1024 + 37;
        float[] clean = data.gaussian(length);
        clean[5] = -0f;
        clean[6] = Float.MIN_VALUE;
        clean[7] = Float.MAX_VALUE;
        clean[8] = -Float.MAX_VALUE;
        assertEquals(-1, HostArray.float32(clean).firstNonFinite());
        float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.intBitsToFloat(0x7F800001)};
        for (int at : new int[] {0, 1, 15, 16, 1023, 1024, 2047, 3071, 3072, length - 2, length - 1}) {
            for (float value : bad) {
                float[] v = clean.clone();
                v[at] = value;
                if (at + 500 < length) {
                    v[at + 500] = Float.NaN; // a later one must not be reported
                }
                assertEquals(at, HostArray.float32(v).firstNonFinite(), "bad value " + value + " at " + at);
            }
        }
    }

    @Test
    void firstNonFiniteFindsTheFirstNaNOrInfinity() {
        for (DType dtype : DType.values()) {
            assertEquals(-1, HostArray.of(dtype, new float[] {1f, -2f, 0f, 3e4f}).firstNonFinite(), dtype.toString());
            assertEquals(2, HostArray.of(dtype, new float[] {1f, -2f, Float.NaN, Float.POSITIVE_INFINITY})
                    .firstNonFinite(), dtype.toString());
            assertEquals(1, HostArray.of(dtype, new float[] {1f, Float.NEGATIVE_INFINITY, Float.NaN})
                    .firstNonFinite(), dtype.toString());
            assertEquals(0, HostArray.of(dtype, new float[] {Float.NaN}).firstNonFinite(), dtype.toString());
            assertEquals(-1, HostArray.allocate(dtype, 0).firstNonFinite(), dtype.toString());
        }
        // 70000 is finite as float32 and bfloat16 but overflows float16
        float[] v = {1f, 70000f, Float.NaN};
        assertEquals(2, HostArray.of(DType.FLOAT32, v).firstNonFinite());
        assertEquals(2, HostArray.of(DType.BFLOAT16, v).firstNonFinite());
        assertEquals(1, HostArray.of(DType.FLOAT16, v).firstNonFinite());
        // raw NaN patterns written by the caller
        assertEquals(1, HostArray.float16(new short[] {0x3C00, 0x7E00}).firstNonFinite());
        assertEquals(0, HostArray.bfloat16(new short[] {(short) 0xFF80, 0x3F80}).firstNonFinite());
    }

    @Test
    void byteBuffersAreReadInTheirOwnByteOrderFromPositionToLimit() {
        for (ByteOrder order : new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN}) {
            ByteBuffer bytes = ByteBuffer.allocateDirect(24).order(order);
            bytes.putFloat(4, 1.5f).putFloat(8, -2.25f).putFloat(12, 1e-3f);
            bytes.position(4).limit(16);
            HostArray a = HostArray.wrap(DType.FLOAT32, bytes);
            assertEquals(3, a.length());
            assertTrue(a.isDirect());
            assertEquals(-2.25f, a.get(1));
            a.set(2, 7f);
            assertEquals(7f, bytes.getFloat(12), "a write lands in the caller's memory, in its order");
            bytes.position(0).limit(24); // moving the caller's position does not move the wrapper
            assertEquals(1.5f, a.get(0));

            ByteBuffer halves = ByteBuffer.allocate(6).order(order);
            halves.putShort(2, DType.BFLOAT16.encode(3f));
            HostArray h = HostArray.wrap(DType.BFLOAT16, halves);
            assertEquals(3, h.length());
            assertEquals(3f, h.get(1));
            assertTrue(!h.isDirect());
        }
        expectMessage("not a whole number of FLOAT32 elements",
                () -> HostArray.wrap(DType.FLOAT32, ByteBuffer.allocate(10)));
    }

    @Test
    void bufferBackedArraysReadWriteAndScanLikeArrays() {
        float[] values = {1f, -2f, 3.5f, 1e-4f, 65504f, -0.5f, 2f};
        for (DType dtype : DType.values()) {
            HostArray plain = HostArray.of(dtype, values);
            HostArray buffered = dtype == DType.FLOAT32
                    ? HostArray.float32(FloatBuffer.wrap(new float[9], 1, 7))
                    : dtype == DType.FLOAT16 ? HostArray.float16(ShortBuffer.wrap(new short[9], 1, 7))
                    : HostArray.bfloat16(ShortBuffer.wrap(new short[9], 1, 7));
            assertEquals(7, buffered.length());
            float[] src = {0.25f, 0.5f, -1f};
            for (WriteMode mode : WriteMode.values()) {
                for (int i = 0; i < values.length; i++) {
                    buffered.set(i, values[i]);
                }
                HostArray p = HostArray.of(dtype, values);
                p.write(2, src, 0, 3, mode);
                buffered.write(2, src, 0, 3, mode);
                for (int i = 0; i < 7; i++) {
                    assertEquals(bits(p.get(i)), bits(buffered.get(i)), dtype + " " + mode + " element " + i);
                }
            }
            float[] got = new float[4];
            buffered.read(1, got, 0, 4);
            float[] expected = new float[4];
            plain.write(2, src, 0, 3, WriteMode.SUBTRACT); // same history as the buffer's last round
            plain.read(1, expected, 0, 4);
            assertArrayEquals(expected, got, dtype + " read");
            assertEquals(-1, buffered.firstNonFinite());
            buffered.set(6, Float.POSITIVE_INFINITY);
            assertEquals(6, buffered.firstNonFinite(), dtype.toString());
            assertThrows(IllegalStateException.class, dtype == DType.FLOAT32 ? buffered::floats : buffered::halves,
                    "a buffer-backed array has no Java array to hand out");
        }
    }

    @Test
    void bufferViewsAreIndependentOfTheCallersPosition() {
        FloatBuffer caller = FloatBuffer.wrap(new float[] {1f, 2f, 3f});
        HostArray a = HostArray.float32(caller);
        FloatBuffer view = a.floatBuffer();
        view.position(2);
        assertEquals(0, a.floatBuffer().position(), "each view starts at 0");
        assertEquals(3, a.floatBuffer().limit());
        assertTrue(HostArray.float32(caller.asReadOnlyBuffer()).isReadOnly());
        assertTrue(!a.isReadOnly());
        expectMessage("data must not be null", () -> HostArray.float32((FloatBuffer) null));
        expectMessage("bits must not be null", () -> HostArray.bfloat16((ShortBuffer) null));
        expectMessage("bytes must not be null", () -> HostArray.wrap(DType.FLOAT16, null));
    }

    private static void expectMessage(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }
}
