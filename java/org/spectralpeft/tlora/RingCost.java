package org.spectralpeft.tlora;

/**
 * The backward's choice of route for ∂x = ∂u·T (∂u = g·W0, which the gradients need anyway): T on every
 * token's row of ∂u, or T on W0's d_out rows and then ∂x = g·(W0·T), a further tokens × d_out × d_in GEMM. The
 * ring costs about d_in·ΣI_d·R³ multiply-adds a row; a backend says how many GEMM multiply-adds one of the
 * ring's costs in time (measured in bench/NOTES.md: about 1 on the CPU, whose ring runs on GEMMs too, and
 * about 3 on an H100, where the ring kernel ran at a third of SGEMM's rate). The forward needs no such
 * choice: both of its routes run the same GEMM, so it takes W0's rows whenever there are fewer of them.
 */
public final class RingCost {
    private RingCost() {
    }

    /**
     * @param spec the layer
     * @param tokens the batch's rows
     * @param ringSlowdown GEMM multiply-adds per ring multiply-add, in time
     * @return whether ∂x should go through W0·T
     */
    public static boolean gradXThroughW0T(TLoRASpec spec, int tokens, double ringSlowdown) {
        if (tokens <= spec.dOut()) {
            return false;
        }
        double saved = (double) (tokens - spec.dOut()) * rowMultiplyAdds(spec) * ringSlowdown;
        double added = (double) tokens * spec.dOut() * spec.dIn();
        return saved > added;
    }

    /** About d_in·ΣI_d·R³: one row through the transform's ring. */
    static double rowMultiplyAdds(TLoRASpec spec) {
        double sum = 0;
        for (int d = 0; d < spec.inOrder(); d++) {
            sum += spec.inFactor(d);
        }
        double r = spec.transformRank();
        return spec.dIn() * sum * r * r * r;
    }
}
