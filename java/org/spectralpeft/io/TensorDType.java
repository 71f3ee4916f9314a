package org.spectralpeft.io;

import java.util.Optional;
import org.spectralpeft.api.DType;

/**
 * Element types of the safetensors format, by their header tag. Every tensor of these types can be read
 * and copied byte for byte; the floating-point weight types (F32, F16, BF16, F64) can also be read as
 * numbers. Sub-byte types (F4, F6_*) are not supported and are reported as unknown.
 */
public enum TensorDType {
    BOOL(1), U8(1), I8(1), F8_E5M2(1), F8_E4M3(1), F8_E8M0(1),
    I16(2), U16(2), F16(2), BF16(2),
    I32(4), U32(4), F32(4),
    I64(8), U64(8), F64(8), C64(8);

    private final int bytes;

    TensorDType(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** The header tag ("F32", "BF16", ...). */
    public String tag() {
        return name();
    }

    /** The type with this header tag, if the library knows it. */
    public static Optional<TensorDType> ofTag(String tag) {
        for (TensorDType t : values()) {
            if (t.name().equals(tag)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }

    /** True for the types a weight can be read from as numbers: F32, F16, BF16, F64. */
    public boolean isFloatingPoint() {
        return this == F32 || this == F16 || this == BF16 || this == F64;
    }

    /** The library's compute-side dtype for F32, F16 and BF16; empty for every other type (F64 included). */
    public Optional<DType> computeType() {
        return switch (this) {
            case F32 -> Optional.of(DType.FLOAT32);
            case F16 -> Optional.of(DType.FLOAT16);
            case BF16 -> Optional.of(DType.BFLOAT16);
            default -> Optional.empty();
        };
    }

    /** The safetensors type of a library dtype. */
    public static TensorDType of(DType dtype) {
        return switch (dtype) {
            case FLOAT32 -> F32;
            case FLOAT16 -> F16;
            case BFLOAT16 -> BF16;
        };
    }
}
