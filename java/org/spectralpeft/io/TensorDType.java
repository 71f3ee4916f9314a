package org.spectralpeft.io;

import java.util.Optional;
import org.spectralpeft.core.DType;

/**
 * Element types of the safetensors format, by their header tag. Every tensor of these types can be read
 * and copied byte for byte; the floating-point weight types (F32, F16, BF16, F64) can also be read as
 * numbers. Sub-byte types (F4, F6_*) are not supported and are reported as unknown.
 */
public enum TensorDType {
    /** Boolean, one byte. */
    BOOL(1),
    /** Unsigned 8-bit integer. */
    U8(1),
    /** Signed 8-bit integer. */
    I8(1),
    /** 8-bit float, 5 exponent and 2 mantissa bits. */
    F8_E5M2(1),
    /** 8-bit float, 4 exponent and 3 mantissa bits. */
    F8_E4M3(1),
    /** 8-bit exponent-only scale (E8M0). */
    F8_E8M0(1),
    /** Signed 16-bit integer. */
    I16(2),
    /** Unsigned 16-bit integer. */
    U16(2),
    /** IEEE 754 half precision. */
    F16(2),
    /** bfloat16. */
    BF16(2),
    /** Signed 32-bit integer. */
    I32(4),
    /** Unsigned 32-bit integer. */
    U32(4),
    /** IEEE 754 single precision. */
    F32(4),
    /** Signed 64-bit integer. */
    I64(8),
    /** Unsigned 64-bit integer. */
    U64(8),
    /** IEEE 754 double precision. */
    F64(8),
    /** Complex of two float32 (real, imaginary). */
    C64(8);

    private final int bytes;

    TensorDType(int bytes) {
        this.bytes = bytes;
    }

    /**
     * Size of one element in bytes.
     *
     * @return 1, 2, 4 or 8
     */
    public int bytes() {
        return bytes;
    }

    /**
     * The header tag ("F32", "BF16", ...).
     *
     * @return the tag
     */
    public String tag() {
        return name();
    }

    /**
     * The type with this header tag, if the library knows it.
     *
     * @param tag a header tag
     * @return the type, or empty for a tag the library does not know
     */
    public static Optional<TensorDType> ofTag(String tag) {
        for (TensorDType t : values()) {
            if (t.name().equals(tag)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }

    /**
     * True for the types a weight can be read from as numbers: F32, F16, BF16, F64.
     *
     * @return true for F32, F16, BF16 and F64
     */
    public boolean isFloatingPoint() {
        return this == F32 || this == F16 || this == BF16 || this == F64;
    }

    /**
     * The library's compute-side dtype for F32, F16 and BF16; empty for every other type (F64 included).
     *
     * @return the compute dtype, or empty
     */
    public Optional<DType> computeType() {
        return switch (this) {
            case F32 -> Optional.of(DType.FLOAT32);
            case F16 -> Optional.of(DType.FLOAT16);
            case BF16 -> Optional.of(DType.BFLOAT16);
            default -> Optional.empty();
        };
    }

    /**
     * The safetensors type of a library dtype.
     *
     * @param dtype a library dtype
     * @return F32, F16 or BF16
     */
    public static TensorDType of(DType dtype) {
        return switch (dtype) {
            case FLOAT32 -> F32;
            case FLOAT16 -> F16;
            case BFLOAT16 -> BF16;
        };
    }
}
