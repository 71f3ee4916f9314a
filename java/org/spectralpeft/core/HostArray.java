package org.spectralpeft.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;

/**
 * A host-side array of one {@link DType}: float32 values, or float16 and bfloat16 as raw bit patterns. It
 * wraps the caller's storage without copying, so results written by the library are visible there: a
 * {@code float[]} or {@code short[]}, or an NIO buffer, heap or direct (the off-heap memory that DJL,
 * Deeplearning4j and other frameworks hand out). A buffer is wrapped from its position to its limit; later
 * changes to its position or limit do not affect the wrapper. A read-only buffer can be an input but not an
 * output: the library refuses it as one before any work.
 */
public final class HostArray {
    private final DType dtype;
    /** The wrapped array, when the storage is one (the fast paths); else null. */
    private final float[] floats;
    private final short[] halves;
    /** The storage as a buffer, position 0 and limit length: always set (a wrap of the array for arrays). */
    private final FloatBuffer floatBuffer;
    private final ShortBuffer shortBuffer;

    private HostArray(DType dtype, float[] floats, short[] halves) {
        this.dtype = dtype;
        this.floats = floats;
        this.halves = halves;
        this.floatBuffer = floats != null ? FloatBuffer.wrap(floats) : null;
        this.shortBuffer = halves != null ? ShortBuffer.wrap(halves) : null;
    }

    private HostArray(DType dtype, FloatBuffer floatBuffer, ShortBuffer shortBuffer) {
        this.dtype = dtype;
        this.floats = null;
        this.halves = null;
        this.floatBuffer = floatBuffer;
        this.shortBuffer = shortBuffer;
    }

    /**
     * Wraps a float32 array (no copy).
     *
     * @param data the values; the library reads and writes this array
     * @return the wrapper
     * @throws IllegalArgumentException if {@code data} is null
     */
    public static HostArray float32(float[] data) {
        return new HostArray(DType.FLOAT32, Checks.notNull(data, "data"), null);
    }

    /**
     * Wraps IEEE 754 half-precision bit patterns (no copy).
     *
     * @param bits one float16 bit pattern per element; the library reads and writes this array
     * @return the wrapper
     * @throws IllegalArgumentException if {@code bits} is null
     */
    public static HostArray float16(short[] bits) {
        return new HostArray(DType.FLOAT16, null, Checks.notNull(bits, "bits"));
    }

    /**
     * Wraps bfloat16 bit patterns (the upper 16 bits of a float32) without copying.
     *
     * @param bits one bfloat16 bit pattern per element; the library reads and writes this array
     * @return the wrapper
     * @throws IllegalArgumentException if {@code bits} is null
     */
    public static HostArray bfloat16(short[] bits) {
        return new HostArray(DType.BFLOAT16, null, Checks.notNull(bits, "bits"));
    }

    /**
     * Wraps the float32 values from the buffer's position to its limit (no copy).
     *
     * @param data a heap or direct buffer; the library reads and, for outputs, writes these elements
     * @return the wrapper
     * @throws IllegalArgumentException if {@code data} is null
     */
    public static HostArray float32(FloatBuffer data) {
        return new HostArray(DType.FLOAT32, Checks.notNull(data, "data").slice(), null);
    }

    /**
     * Wraps float16 bit patterns from the buffer's position to its limit (no copy).
     *
     * @param bits a heap or direct buffer, one float16 bit pattern per element
     * @return the wrapper
     * @throws IllegalArgumentException if {@code bits} is null
     */
    public static HostArray float16(ShortBuffer bits) {
        return new HostArray(DType.FLOAT16, null, Checks.notNull(bits, "bits").slice());
    }

    /**
     * Wraps bfloat16 bit patterns from the buffer's position to its limit (no copy).
     *
     * @param bits a heap or direct buffer, one bfloat16 bit pattern per element
     * @return the wrapper
     * @throws IllegalArgumentException if {@code bits} is null
     */
    public static HostArray bfloat16(ShortBuffer bits) {
        return new HostArray(DType.BFLOAT16, null, Checks.notNull(bits, "bits").slice());
    }

    /**
     * Wraps the bytes from the buffer's position to its limit as elements of {@code dtype} (no copy), in the
     * buffer's byte order: set it with {@link ByteBuffer#order(ByteOrder)} first (frameworks' direct
     * buffers are usually in {@link ByteOrder#nativeOrder()}; a new ByteBuffer is big-endian).
     *
     * @param dtype the element type
     * @param bytes a heap or direct buffer of a whole number of elements
     * @return the wrapper
     * @throws IllegalArgumentException if an argument is null or the bytes are not a whole number of elements
     */
    public static HostArray wrap(DType dtype, ByteBuffer bytes) {
        Checks.notNull(dtype, "dtype");
        Checks.notNull(bytes, "bytes");
        Checks.require(bytes.remaining() % dtype.bytes() == 0, "bytes: " + bytes.remaining()
                + " bytes remain, not a whole number of " + dtype + " elements (" + dtype.bytes() + " bytes each)");
        ByteBuffer b = bytes.slice().order(bytes.order());
        return dtype == DType.FLOAT32
                ? new HostArray(dtype, b.asFloatBuffer(), null)
                : new HostArray(dtype, null, b.asShortBuffer());
    }

    /**
     * A zero-filled array.
     *
     * @param dtype the element type
     * @param length number of elements
     * @return the new array
     * @throws IllegalArgumentException if {@code dtype} is null
     */
    public static HostArray allocate(DType dtype, int length) {
        Checks.notNull(dtype, "dtype");
        return dtype == DType.FLOAT32
                ? float32(new float[length])
                : new HostArray(dtype, null, new short[length]);
    }

    /**
     * A copy of {@code values} converted to {@code dtype}.
     *
     * @param dtype the element type
     * @param values the values, rounded to nearest even in {@code dtype}
     * @return the new array
     * @throws IllegalArgumentException if an argument is null
     */
    public static HostArray of(DType dtype, float[] values) {
        Checks.notNull(dtype, "dtype");
        Checks.notNull(values, "values");
        HostArray a = allocate(dtype, values.length);
        for (int i = 0; i < values.length; i++) {
            a.set(i, values[i]);
        }
        return a;
    }

    /**
     * The element type.
     *
     * @return the element type
     */
    public DType dtype() {
        return dtype;
    }

    /**
     * Number of elements.
     *
     * @return number of elements
     */
    public int length() {
        return floatBuffer != null ? floatBuffer.capacity() : shortBuffer.capacity();
    }

    /**
     * Whether the storage is read-only (a read-only buffer): such an array can be an input, not an output.
     *
     * @return true if the library cannot write it
     */
    public boolean isReadOnly() {
        return floatBuffer != null ? floatBuffer.isReadOnly() : shortBuffer.isReadOnly();
    }

    /**
     * Whether the storage is a direct (off-heap) buffer.
     *
     * @return true for direct buffers, false for arrays and heap buffers
     */
    public boolean isDirect() {
        return floatBuffer != null ? floatBuffer.isDirect() : shortBuffer.isDirect();
    }

    /**
     * Element {@code i}, converted to float32.
     *
     * @param i the index
     * @return the value
     * @throws ArrayIndexOutOfBoundsException if {@code i} is out of range
     */
    public float get(int i) {
        if (floats != null) {
            return floats[i];
        }
        if (halves != null) {
            return dtype.decode(halves[i]);
        }
        return floatBuffer != null ? floatBuffer.get(i) : dtype.decode(shortBuffer.get(i));
    }

    /**
     * Sets element {@code i}, rounded to nearest even in this array's dtype.
     *
     * @param i the index
     * @param value the value
     * @throws ArrayIndexOutOfBoundsException if {@code i} is out of range
     */
    public void set(int i, float value) {
        if (floats != null) {
            floats[i] = value;
        } else if (halves != null) {
            halves[i] = dtype.encode(value);
        } else if (floatBuffer != null) {
            floatBuffer.put(i, value);
        } else {
            shortBuffer.put(i, dtype.encode(value));
        }
    }

    /**
     * dst[0..len-1] = this[offset .. offset+len-1] as float32.
     *
     * @param offset first element of this array to read
     * @param dst receives the values
     * @param len number of elements
     * @throws IllegalArgumentException if {@code dst} is null
     * @throws IndexOutOfBoundsException if a range is out of bounds
     */
    public void read(int offset, float[] dst, int len) {
        read(offset, dst, 0, len);
    }

    /**
     * dst[dstOffset .. dstOffset+len-1] = this[offset .. offset+len-1] as float32.
     *
     * @param offset first element of this array to read
     * @param dst receives the values
     * @param dstOffset first element of {@code dst} to write
     * @param len number of elements
     * @throws IllegalArgumentException if {@code dst} is null
     * @throws IndexOutOfBoundsException if a range is out of bounds
     */
    public void read(int offset, float[] dst, int dstOffset, int len) {
        Checks.notNull(dst, "dst");
        if (floats != null) {
            System.arraycopy(floats, offset, dst, dstOffset, len);
        } else if (halves != null) {
            for (int i = 0; i < len; i++) {
                dst[dstOffset + i] = dtype.decode(halves[offset + i]);
            }
        } else if (floatBuffer != null) {
            floatBuffer.get(offset, dst, dstOffset, len);
        } else {
            for (int i = 0; i < len; i++) {
                dst[dstOffset + i] = dtype.decode(shortBuffer.get(offset + i));
            }
        }
    }

    /**
     * this[offset+i] = src[i], += src[i] or -= src[i] (per mode), rounded to this array's dtype.
     *
     * @param offset first element of this array to write
     * @param src the values
     * @param len number of elements
     * @param mode store, add or subtract
     * @throws IllegalArgumentException if {@code src} or {@code mode} is null
     * @throws IndexOutOfBoundsException if a range is out of bounds
     */
    public void write(int offset, float[] src, int len, WriteMode mode) {
        write(offset, src, 0, len, mode);
    }

    /**
     * this[offset+i] = src[srcOffset+i], += or -= it (per mode), for i &lt; len, rounded to this array's dtype.
     *
     * @param offset first element of this array to write
     * @param src the values
     * @param srcOffset first element of {@code src} to read
     * @param len number of elements
     * @param mode store, add or subtract
     * @throws IllegalArgumentException if {@code src} or {@code mode} is null
     * @throws IndexOutOfBoundsException if a range is out of bounds
     */
    public void write(int offset, float[] src, int srcOffset, int len, WriteMode mode) {
        Checks.notNull(src, "src");
        Checks.notNull(mode, "mode");
        if (floats == null && halves == null) {
            writeBuffer(offset, src, srcOffset, len, mode);
            return;
        }
        if (floats != null) {
            switch (mode) {
                case STORE -> System.arraycopy(src, srcOffset, floats, offset, len);
                case ADD -> {
                    for (int i = 0; i < len; i++) {
                        floats[offset + i] += src[srcOffset + i];
                    }
                }
                case SUBTRACT -> {
                    for (int i = 0; i < len; i++) {
                        floats[offset + i] -= src[srcOffset + i];
                    }
                }
            }
            return;
        }
        for (int i = 0; i < len; i++) {
            float v = src[srcOffset + i];
            float current = mode == WriteMode.STORE ? 0f : dtype.decode(halves[offset + i]);
            halves[offset + i] = dtype.encode(switch (mode) {
                case STORE -> v;
                case ADD -> current + v;
                case SUBTRACT -> current - v;
            });
        }
    }

    private void writeBuffer(int offset, float[] src, int srcOffset, int len, WriteMode mode) {
        if (floatBuffer != null && mode == WriteMode.STORE) {
            floatBuffer.put(offset, src, srcOffset, len);
            return;
        }
        for (int i = 0; i < len; i++) {
            float v = src[srcOffset + i];
            float current = mode == WriteMode.STORE ? 0f : get(offset + i);
            set(offset + i, switch (mode) {
                case STORE -> v;
                case ADD -> current + v;
                case SUBTRACT -> current - v;
            });
        }
    }

    /**
     * The wrapped float32 array; only for a FLOAT32 array made from a {@code float[]}.
     *
     * @return the wrapped array (no copy)
     * @throws IllegalStateException for a 16-bit array, or one over a buffer (see {@link #floatBuffer()})
     */
    public float[] floats() {
        if (floats == null) {
            throw new IllegalStateException(floatBuffer != null ? "this float32 array wraps a buffer, not a float[]"
                    : "a " + dtype + " array has no float[]");
        }
        return floats;
    }

    /**
     * The wrapped 16-bit patterns; only for a FLOAT16 or BFLOAT16 array made from a {@code short[]}.
     *
     * @return the wrapped array (no copy)
     * @throws IllegalStateException for a FLOAT32 array, or one over a buffer (see {@link #shortBuffer()})
     */
    public short[] halves() {
        if (halves == null) {
            throw new IllegalStateException(shortBuffer != null ? "this " + dtype + " array wraps a buffer, not a short[]"
                    : "a float32 array has no short[]");
        }
        return halves;
    }

    /**
     * The float32 storage as a buffer, whatever it wraps; only for FLOAT32.
     *
     * @return a new view of the storage (no copy), position 0 and limit {@link #length()}
     * @throws IllegalStateException for a 16-bit array
     */
    public FloatBuffer floatBuffer() {
        if (floatBuffer == null) {
            throw new IllegalStateException("a " + dtype + " array has no float32 storage");
        }
        return floatBuffer.duplicate();
    }

    /**
     * The 16-bit storage as a buffer, whatever it wraps; only for FLOAT16 and BFLOAT16.
     *
     * @return a new view of the storage (no copy), position 0 and limit {@link #length()}
     * @throws IllegalStateException for a FLOAT32 array
     */
    public ShortBuffer shortBuffer() {
        if (shortBuffer == null) {
            throw new IllegalStateException("a float32 array has no 16-bit storage");
        }
        return shortBuffer.duplicate();
    }

    /**
     * The values as float32 (a copy).
     *
     * @return a new array of length() values
     */
    public float[] toFloats() {
        float[] out = new float[length()];
        for (int i = 0; i < out.length; i++) {
            out[i] = get(i);
        }
        return out;
    }

    /**
     * Index of the first NaN or infinity, or -1.
     *
     * @return the index, or -1 if every value is finite
     */
    public int firstNonFinite() {
        if (floats == null && halves == null) {
            int n = length();
            for (int i = 0; i < n; i++) {
                if (!Float.isFinite(get(i))) {
                    return i;
                }
            }
            return -1;
        }
        if (floats != null) {
            return FiniteScan.firstNonFinite(floats);
        }
        // NaN and infinity are the patterns with every exponent bit set: no decoding needed
        int exponent = dtype == DType.FLOAT16 ? 0x7C00 : 0x7F80;
        for (int i = 0; i < halves.length; i++) {
            if ((halves[i] & exponent) == exponent) {
                return i;
            }
        }
        return -1;
    }
}
