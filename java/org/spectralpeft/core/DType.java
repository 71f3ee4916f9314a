package org.spectralpeft.core;

/**
 * Element types the library reads and writes. Arithmetic is always float32; float16 and bfloat16
 * are storage formats converted at the edges with round-to-nearest-even (as {@code tensor.to(dtype)}
 * does in PyTorch). The {@link #code()} is shared with the CUDA kernels ({@code kernels/dtype.cuh}).
 */
public enum DType {
    /** IEEE 754 single precision, 4 bytes. */
    FLOAT32(0, 4),
    /** IEEE 754 half precision, 2 bytes. */
    FLOAT16(1, 2),
    /** bfloat16: the upper half of a float32 (8 exponent bits), 2 bytes. */
    BFLOAT16(2, 2);

    private final int code;
    private final int bytes;

    DType(int code, int bytes) {
        this.code = code;
        this.bytes = bytes;
    }

    /**
     * The element type's code in the kernels.
     *
     * @return the code in {@code kernels/dtype.cuh}
     */
    public int code() {
        return code;
    }

    /**
     * Size of one element in bytes.
     *
     * @return 4 or 2
     */
    public int bytes() {
        return bytes;
    }

    /**
     * Encodes {@code value} as this 16-bit type's bit pattern; only for FLOAT16 and BFLOAT16.
     *
     * @param value the float32 value, rounded to nearest even
     * @return the 16-bit pattern
     * @throws IllegalStateException for FLOAT32
     */
    public short encode(float value) {
        return switch (this) {
            case FLOAT16 -> HalfFloats.toHalf(value);
            case BFLOAT16 -> HalfFloats.toBFloat16(value);
            case FLOAT32 -> throw new IllegalStateException("float32 has no 16-bit encoding");
        };
    }

    /**
     * Decodes a 16-bit bit pattern of this type; only for FLOAT16 and BFLOAT16.
     *
     * @param bits the 16-bit pattern
     * @return its value as float32 (exact)
     * @throws IllegalStateException for FLOAT32
     */
    public float decode(short bits) {
        return switch (this) {
            case FLOAT16 -> HalfFloats.fromHalf(bits);
            case BFLOAT16 -> HalfFloats.fromBFloat16(bits);
            case FLOAT32 -> throw new IllegalStateException("float32 has no 16-bit encoding");
        };
    }
}
