package org.spectralpeft.tlora;

import java.util.Locale;

/**
 * The backends' choices of how to take rows through the transform T, from counts of multiply-adds.
 *
 * <p><b>Ring or panels.</b> The ring (core by core, T never formed) costs about d_in·ΣI_d·R³ multiply-adds a row;
 * a backend says how many GEMM multiply-adds one of the ring's costs in time (measured in bench/NOTES.md: about 1
 * on the CPU, whose ring runs on GEMMs too, and about 3 on an H100, where the ring kernel ran at a third of
 * SGEMM's rate). From R = 4 on, at the authors' shapes, that is more than a dense T's d_in² a row: T's structure
 * saves nothing there. Then T is built in row panels (the rows of one value of the first digit, 1/I_1 of T, on
 * the CPU, where no buffer holds T whole; as many values as fit a scratch budget on CUDA, T whole at the authors'
 * shapes: a GEMM of core 1's slices with the other cores' products, d_in²·R² multiply-adds for all panels) and
 * each panel is applied by a GEMM. The panels need R ≥ 2 and at least two factors (a
 * one-factor ring is already a dense product of traces).
 *
 * <p><b>∂x through W0·T.</b> ∂x = ∂u·T (∂u = g·W0, which the gradients need anyway) takes T on every token's row of
 * ∂u, or T on W0's d_out rows and then ∂x = g·(W0·T), a further tokens × d_out × d_in GEMM; the cheaper. The
 * forward needs no such choice: both of its routes run the same GEMM, so it takes W0's rows whenever there are
 * fewer of them.
 *
 * <p>The system property {@value #ROUTE_PROPERTY} ({@code ring} or {@code panels}, read at every call) overrides
 * the first choice where both routes can run, for tests and measurements.
 */
public final class RingCost {
    /** The system property that forces the transform's route: {@code ring}, {@code panels}, or unset (by cost). */
    public static final String ROUTE_PROPERTY = "spectralpeft.tlora.transform";

    private RingCost() {
    }

    /**
     * @param spec the layer
     * @param rows the rows T is applied to
     * @param ringSlowdown GEMM multiply-adds per ring multiply-add, in time
     * @return whether those rows go through T built in row panels rather than through the ring
     */
    public static boolean throughPanels(TLoRASpec spec, long rows, double ringSlowdown) {
        if (spec.transformRank() < 2 || spec.inOrder() < 2) {
            return false;
        }
        String forced = System.getProperty(ROUTE_PROPERTY, "").toLowerCase(Locale.ROOT);
        if (forced.equals("ring") || forced.equals("panels")) {
            return forced.equals("panels");
        }
        return panelMultiplyAdds(spec, rows) < rows * rowMultiplyAdds(spec) * ringSlowdown;
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
        double direct = transformCost(spec, tokens, ringSlowdown);
        double viaW0T = transformCost(spec, spec.dOut(), ringSlowdown) + (double) tokens * spec.dOut() * spec.dIn();
        return viaW0T < direct;
    }

    /** The time of T on rows rows, in GEMM multiply-adds, on the route {@link #throughPanels} takes. */
    static double transformCost(TLoRASpec spec, long rows, double ringSlowdown) {
        return throughPanels(spec, rows, ringSlowdown) ? panelMultiplyAdds(spec, rows)
                : rows * rowMultiplyAdds(spec) * ringSlowdown;
    }

    /** rows·d_in² for the panels' GEMMs, and d_in²·R² to build them. */
    static double panelMultiplyAdds(TLoRASpec spec, long rows) {
        double square = (double) spec.dIn() * spec.dIn();
        double r = spec.transformRank();
        return rows * square + square * r * r;
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
