package org.spectralpeft.core;

/**
 * Argument checks shared by the backends, so that both reject the same inputs with the same messages,
 * before any work starts.
 */
public final class Checks {
    private Checks() {
    }

    /**
     * Throws unless {@code condition} holds.
     *
     * @param condition the requirement
     * @param message the exception's message
     * @throws IllegalArgumentException if {@code condition} is false
     */
    public static void require(boolean condition, String message) {
        if (!condition) {
            throw new IllegalArgumentException(message);
        }
    }

    /**
     * Throws if {@code value} is null, naming the argument.
     *
     * @param <T> the argument's type
     * @param value the argument
     * @param name the argument's name, for the message
     * @return {@code value}
     * @throws IllegalArgumentException if {@code value} is null
     */
    public static <T> T notNull(T value, String name) {
        if (value == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        return value;
    }

    /**
     * Throws unless {@code value} is at least 1.
     *
     * @param value the count to check
     * @param name the argument's name, for the message
     * @throws IllegalArgumentException if {@code value} &lt; 1
     */
    public static void positive(long value, String name) {
        require(value >= 1, name + " must be at least 1, got " + value);
    }

    /**
     * Throws unless an array has the expected number of elements.
     *
     * @param name the array's name, for the message
     * @param actual its number of elements
     * @param expected the number it must have
     * @throws IllegalArgumentException if they differ
     */
    public static void length(String name, long actual, long expected) {
        require(actual == expected, name + " has " + actual + " elements, expected " + expected);
    }

    /**
     * A float32 vector (coefficients, say) of the expected length, every value finite.
     *
     * @param name the vector's name, for the message
     * @param values the vector
     * @param expected the number of elements it must have
     * @throws IllegalArgumentException if {@code values} is null, has the wrong length or a non-finite value
     */
    public static void finiteVector(String name, float[] values, long expected) {
        notNull(values, name);
        length(name, values.length, expected);
        for (int i = 0; i < values.length; i++) {
            if (!Float.isFinite(values[i])) {
                throw new IllegalArgumentException(name + "[" + i + "] is " + values[i] + "; " + name + " must be finite");
            }
        }
    }

    /**
     * Throws if any element of {@code a} is NaN or infinite.
     *
     * @param name the array's name, for the message
     * @param a the array to scan
     * @throws IllegalArgumentException naming the first non-finite element
     */
    public static void finite(String name, HostArray a) {
        int bad = a.firstNonFinite();
        require(bad < 0, name + "[" + bad + "] is " + (bad < 0 ? 0 : a.get(bad)) + "; inputs must be finite");
    }

    /**
     * A result: every value finite in its dtype. With finite inputs a non-finite value means ΔW, or W + ΔW,
     * overflowed the dtype, which must not pass for a result.
     *
     * @param name the array's name, for the message
     * @param a the array to scan
     * @throws IllegalArgumentException naming the first non-finite element
     */
    public static void finiteResult(String name, HostArray a) {
        int bad = a.firstNonFinite();
        require(bad < 0, name + "[" + bad + "] = " + (bad < 0 ? 0 : a.get(bad)) + ": the result is not finite in "
                + (bad < 0 ? null : a.dtype()) + " (it overflows; the coefficients or α are too large)");
    }

    /**
     * Input: right length and finite.
     *
     * @param name the array's name, for the message
     * @param a the array
     * @param expected the number of elements it must have
     * @throws IllegalArgumentException if {@code a} is null, has the wrong length or a non-finite value
     */
    public static void input(String name, HostArray a, long expected) {
        notNull(a, name);
        length(name, a.length(), expected);
        finite(name, a);
    }

    /**
     * Output: right length (contents are overwritten or accumulated, not inspected).
     *
     * @param name the array's name, for the message
     * @param a the array
     * @param expected the number of elements it must have
     * @throws IllegalArgumentException if {@code a} is null or has the wrong length
     */
    public static void output(String name, HostArray a, long expected) {
        notNull(a, name);
        length(name, a.length(), expected);
        writable(name, a);
    }

    /**
     * Throws if the library cannot write {@code a} (a read-only buffer).
     *
     * @param name the array's name, for the message
     * @param a the array
     * @throws IllegalArgumentException if {@code a} is read-only
     */
    public static void writable(String name, HostArray a) {
        require(!a.isReadOnly(), name + " is a read-only buffer, but the result is written into it");
    }
}
