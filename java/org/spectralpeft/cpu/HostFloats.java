package org.spectralpeft.cpu;

import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;

/** A host array's values as a float[] for the BLAS: the array it wraps where there is one, else a copy. */
public final class HostFloats {
    private HostFloats() {
    }

    /**
     * The float32 array {@code a} wraps, to read or accumulate into directly.
     *
     * @param a a host array
     * @return its own float[] (possibly longer than needed), or null for a 16-bit array or one over a buffer
     */
    public static float[] wrapped(HostArray a) {
        if (a.dtype() != DType.FLOAT32 || a.isDirect()) {
            return null;
        }
        try {
            return a.floats();
        } catch (IllegalStateException heapBuffer) {
            return null; // a float32 heap buffer, not an array
        }
    }

    /**
     * The first {@code length} values of {@code a} as float32.
     *
     * @param a a host array of at least length values
     * @param length the values needed
     * @return the wrapped array ({@link #wrapped}) when there is one, else a copy of those values
     */
    public static float[] of(HostArray a, int length) {
        float[] own = wrapped(a);
        if (own != null) {
            return own;
        }
        float[] out = new float[length];
        a.read(0, out, length);
        return out;
    }
}
