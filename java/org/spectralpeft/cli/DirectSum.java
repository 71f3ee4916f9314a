package org.spectralpeft.cli;

import org.spectralpeft.fourierft.FourierFTSpec;

/** ΔW[p,q] evaluated directly in float64 from the closed form, for spot checks of a materialized ΔW. */
final class DirectSum {
    private DirectSum() {
    }

    static double deltaW(FourierFTSpec spec, float[] coeffs, int p, int q) {
        double sum = 0;
        for (int l = 0; l < spec.n(); l++) {
            long a = (long) p * spec.row(l) % spec.dOut();
            long b = (long) q * spec.col(l) % spec.dIn();
            sum += coeffs[l] * Math.cos(2 * Math.PI * ((double) a / spec.dOut() + (double) b / spec.dIn()));
        }
        return (double) spec.alpha() / ((double) spec.dOut() * spec.dIn()) * sum;
    }
}
