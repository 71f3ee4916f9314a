package org.spectralpeft.api;


/**
 * A host-side array of one {@link DType}: float32 data in a {@code float[]}, float16 and bfloat16 as raw
 * bit patterns in a {@code short[]}. It wraps the caller's array (no copy), so results written by the
 * library are visible in that array.
 */
public final class HostArray {
    private final DType dtype;
    private final float[] floats;
    private final short[] halves;

    private HostArray(DType dtype, float[] floats, short[] halves) {
        this.dtype = dtype;
        this.floats = floats;
        this.halves = halves;
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
        return floats != null ? floats.length : halves.length;
    }

    /**
     * Element {@code i}, converted to float32.
     *
     * @param i the index
     * @return the value
     * @throws ArrayIndexOutOfBoundsException if {@code i} is out of range
     */
    public float get(int i) {
        return floats != null ? floats[i] : dtype.decode(halves[i]);
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
        } else {
            halves[i] = dtype.encode(value);
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
        } else {
            for (int i = 0; i < len; i++) {
                dst[dstOffset + i] = dtype.decode(halves[offset + i]);
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

    /**
     * The wrapped float32 array; only for FLOAT32.
     *
     * @return the wrapped array (no copy)
     * @throws IllegalStateException for a 16-bit array
     */
    public float[] floats() {
        if (floats == null) {
            throw new IllegalStateException("a " + dtype + " array has no float[]");
        }
        return floats;
    }

    /**
     * The wrapped 16-bit patterns; only for FLOAT16 and BFLOAT16.
     *
     * @return the wrapped array (no copy)
     * @throws IllegalStateException for a FLOAT32 array
     */
    public short[] halves() {
        if (halves == null) {
            throw new IllegalStateException("a float32 array has no short[]");
        }
        return halves;
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
        if (floats != null) {
            for (int i = 0; i < floats.length; i++) {
                if (!Float.isFinite(floats[i])) {
                    return i;
                }
            }
            return -1;
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
