package org.spectralpeft.fourierft;

import org.spectralpeft.core.DType;

/**
 * When ΔW is provably finite in an output dtype, so that scanning the result for an overflow can be skipped
 * (on a materialize of 768², the scan was an eighth of the call).
 * <p>
 * Every value a backend computes on the way to ΔW is a sum of the coefficients times unit-modulus twiddles,
 * times at most max(1, α) (the scale α/(d_out·d_in) is applied before or after the transforms), each
 * coefficient counted at most twice (an entry and its Hermitian mirror): the transforms' partial sums, the
 * real transforms' pre-processing (at most 4× its inputs), and the chirp convolution of a Bluestein transform
 * (at most its length, under 4·d, times its inputs). So no value exceeds max(1, α)·Σ|c|·32·max(d_out, d_in),
 * before float rounding's (1 + ε) per pass. With that bound times 4 (for the rounding and the cast to the
 * dtype) under the dtype's largest finite value, no value overflows, and with finite inputs a NaN needs an
 * overflow first. Anything above that bound is scanned as before.
 */
final class ResultBound {
    private ResultBound() {
    }

    /**
     * Whether materializing ΔW of {@code coeffs} (one or several layers of n) cannot give a value that is not
     * finite in {@code dtype}; the coefficients are already checked finite.
     */
    static boolean deltaIsFinite(FourierFTSpec spec, float[] coeffs, DType dtype) {
        double sum = 0;
        for (float c : coeffs) {
            sum += Math.abs(c);
        }
        double bound = Math.max(1.0, Math.abs(spec.alpha())) * sum * 128.0 * Math.max(spec.dOut(), spec.dIn());
        return bound < largestFinite(dtype);
    }

    /** The largest finite value of a dtype. */
    static double largestFinite(DType dtype) {
        return switch (dtype) {
            case FLOAT32 -> Float.MAX_VALUE;
            case BFLOAT16 -> Float.intBitsToFloat(0x7F7F0000);
            case FLOAT16 -> 65504.0;
        };
    }
}
