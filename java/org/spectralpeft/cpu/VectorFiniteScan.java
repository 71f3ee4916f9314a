package org.spectralpeft.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The input scan of {@code core.HostArray#firstNonFinite} on the Vector API: per block, the sum of v·0 over its
 * values is NaN exactly when one of them is NaN or infinite; only such a block is searched value by value.
 * Looked up by name, only where the JVM has the module (HotSpot 17's C2 leaves an early-exit loop scalar).
 */
public final class VectorFiniteScan {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    /** Values per block: short enough that the scalar search of a bad block costs little. */
    private static final int BLOCK = 1024;

    private VectorFiniteScan() {
    }

    /**
     * @param a the values
     * @return the index of the first NaN or infinity, or −1
     */
    public static int firstNonFinite(float[] a) {
        int lanes = SPECIES.length();
        FloatVector zero = FloatVector.zero(SPECIES);
        for (int from = 0; from < a.length; from += BLOCK) {
            int to = Math.min(a.length, from + BLOCK);
            FloatVector sum = zero;
            int i = from;
            for (; i <= to - lanes; i += lanes) {
                sum = FloatVector.fromArray(SPECIES, a, i).fma(zero, sum);
            }
            boolean bad = sum.test(VectorOperators.IS_NAN).anyTrue();
            for (; i < to && !bad; i++) {
                bad = !Float.isFinite(a[i]);
            }
            if (bad) {
                for (int j = from; j < to; j++) {
                    if (!Float.isFinite(a[j])) {
                        return j;
                    }
                }
            }
        }
        return -1;
    }
}
