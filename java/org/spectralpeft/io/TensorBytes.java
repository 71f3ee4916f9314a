package org.spectralpeft.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;

/** Little-endian byte images of host arrays, as safetensors stores them. */
public final class TensorBytes {
    private TensorBytes() {
    }

    /**
     * The array's elements in its own dtype, little-endian.
     *
     * @param values the array
     * @return a buffer of length × element-size bytes, positioned at 0
     */
    public static ByteBuffer of(HostArray values) {
        int n = values.length();
        ByteBuffer out = ByteBuffer.allocate(n * values.dtype().bytes()).order(ByteOrder.LITTLE_ENDIAN);
        if (values.dtype() == DType.FLOAT32) {
            out.asFloatBuffer().put(values.floatBuffer());
        } else {
            out.asShortBuffer().put(values.shortBuffer());
        }
        return out;
    }

    /**
     * The values as little-endian float32.
     *
     * @param values the values
     * @return a buffer of 4 × length bytes, positioned at 0
     */
    public static ByteBuffer of(float[] values) {
        return of(HostArray.float32(values));
    }

    /**
     * The values as little-endian float64.
     *
     * @param values the values
     * @return a buffer of 8 × length bytes, positioned at 0
     */
    public static ByteBuffer of(double[] values) {
        ByteBuffer out = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        out.asDoubleBuffer().put(values);
        return out;
    }
}
