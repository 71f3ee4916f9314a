package org.spectralpeft;

import java.nio.file.Path;
import java.util.Random;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;

/** Fresh random inputs (the seed goes into every failure message) and error measures. */
public final class TestData {
    public final long seed;
    private final Random random;

    public TestData() {
        this(Long.getLong("spectralpeft.test.seed", System.nanoTime()));
    }

    public TestData(long seed) {
        this.seed = seed;
        this.random = new Random(seed);
    }

    public float[] gaussian(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
        }
        return a;
    }

    public int nextInt(int bound) {
        return random.nextInt(bound);
    }

    public double nextDouble() {
        return random.nextDouble();
    }

    /** n distinct flat indices in [0, size). */
    public int[] distinctIndices(int size, int n) {
        int[] perm = new int[size];
        for (int i = 0; i < size; i++) {
            perm[i] = i;
        }
        for (int i = 0; i < n; i++) {
            int j = i + random.nextInt(size - i);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        return java.util.Arrays.copyOf(perm, n);
    }

    /** An array filled with NaN (float32) or the dtype's NaN pattern: every element must be overwritten. */
    /**
     * The committed test files (src/test/resources, or where {@code spectralpeft.test.resources} says: the
     * GPU bundle carries a copy and runs from anywhere).
     */
    public static Path resources() {
        return Path.of(System.getProperty("spectralpeft.test.resources", "src/test/resources"));
    }

    public static HostArray poisoned(DType dtype, int length) {
        HostArray a = HostArray.allocate(dtype, length);
        for (int i = 0; i < length; i++) {
            a.set(i, Float.NaN);
        }
        return a;
    }

    public static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    public static double[] toDouble(HostArray a) {
        double[] d = new double[a.length()];
        for (int i = 0; i < d.length; i++) {
            d[i] = a.get(i);
        }
        return d;
    }

    /** ‖out − ref‖ / ‖ref‖; infinite when out holds a NaN or an infinity. */
    public static double relativeError(double[] out, double[] ref) {
        if (out.length != ref.length) {
            throw new AssertionError("length " + out.length + " != " + ref.length);
        }
        double num = 0;
        double den = 0;
        for (int i = 0; i < out.length; i++) {
            if (!Double.isFinite(out[i])) {
                return Double.POSITIVE_INFINITY;
            }
            num += (out[i] - ref[i]) * (out[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        if (den == 0) {
            throw new AssertionError("reference is all zero: the check could not fail");
        }
        return Math.sqrt(num / den);
    }

    /**
     * The error of an accumulating write, out = before + added, relative to the scale of the accumulation, ‖before‖ +
     * ‖added‖. Relative to ‖before + added‖ instead, the error grows without bound where the two nearly cancel (an
     * output of one element, its old value drawn at random at the added term's size: about once in a few hundred
     * draws the float32 rounding of the sum exceeded 1e-5 of it), while a wrong added term still shows: the
     * callers draw before at the added term's size, so ‖added‖ is about half the scale.
     *
     * @param out the result
     * @param before the output's values before the write
     * @param added the exact (float64) term added
     * @return ‖out − (before + added)‖ / (‖before‖ + ‖added‖)
     */
    public static double accumulatedError(double[] out, double[] before, double[] added) {
        if (out.length != before.length || out.length != added.length) {
            throw new AssertionError("lengths " + out.length + ", " + before.length + ", " + added.length);
        }
        double num = 0;
        double b = 0;
        double a = 0;
        for (int i = 0; i < out.length; i++) {
            if (!Double.isFinite(out[i])) {
                return Double.POSITIVE_INFINITY;
            }
            double e = out[i] - (before[i] + added[i]);
            num += e * e;
            b += before[i] * before[i];
            a += added[i] * added[i];
        }
        if (a == 0) {
            throw new AssertionError("the added term is all zero: the check could not fail");
        }
        return Math.sqrt(num) / (Math.sqrt(b) + Math.sqrt(a));
    }

    /** Tolerance of DESIGN.md for results stored in dtype. */
    public static double tolerance(DType dtype) {
        return dtype == DType.FLOAT32 ? 1e-5 : 1e-2;
    }

    public String tag() {
        return " [seed " + seed + "; rerun with -Dspectralpeft.test.seed=" + seed + "]";
    }
}
