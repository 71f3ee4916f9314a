package org.spectralpeft.cpu;

import java.util.Random;

/**
 * Run in a JVM of its own by {@link GemmTest} (Gemm picks its BLAS once per JVM): prints the implementation,
 * then the largest error of every transposition against a float64 loop.
 */
public final class GemmProbe {
    private GemmProbe() {
    }

    /**
     * Entry point.
     *
     * @param args unused
     */
    public static void main(String[] args) {
        System.out.println(Gemm.implementation());
        System.out.println(GemmTest.largestError(new Random(11)));
    }
}
