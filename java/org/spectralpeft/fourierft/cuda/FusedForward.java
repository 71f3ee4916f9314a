package org.spectralpeft.fourierft.cuda;

/**
 * Where {@code fourierft_forward_fused} (the whole unmaterialized forward of a token in one thread block: its row's
 * real FFT, the gather/scatter and the inverse in shared memory, {@code kernels/block_fft.cuh}) and {@code
 * fourierft_backward_fused} (the backward's likewise) apply, and what they need: d_in and d_out even, each half a
 * power of two times 1, 3, 5 or 7 (4096, 768 = 2·3·2⁷, 5120 = 2·5·2⁹, 14336 = 2·7·2¹⁰; not 11008 = 2·43·2⁷), and a
 * block's shared memory for both half spectra and a coefficient row. Powers of two run the plain kernels, the
 * others their {@code _radix} variants (the same code with its radix-3, 5 and 7 stages compiled in, and more
 * registers). Chosen per call by the system property {@value CudaFourierFT#FORWARD_PROPERTY}{@code =fused};
 * elsewhere, and by default, the forward is cuFFT's transforms around the gather kernels. The fused kernel reads x
 * once and y once and writes y once, where the cuFFT route also writes and reads both spectra and launches five
 * times; its speed has not been measured on a GPU yet, so it is not the default.
 */
final class FusedForward {
    /** The longest twiddle table a layer may need (beyond it, the cuFFT route). */
    static final int MAX_TWIDDLE_LENGTH = 1 << 20;

    private FusedForward() {
    }

    /** Whether the calling thread's current value of {@value CudaFourierFT#FORWARD_PROPERTY} asks for this kernel. */
    static boolean requested() {
        return "fused".equals(System.getProperty(CudaFourierFT.FORWARD_PROPERTY));
    }

    /**
     * The odd factor of a length's half: d/2 = odd·2^p.
     *
     * @return 1, 3, 5 or 7, or 0 where d is not such a length (odd, below 2, or another odd factor)
     */
    static int oddFactor(int d) {
        if (d < 2 || d % 2 != 0) {
            return 0;
        }
        int half = d / 2;
        int odd = half >> Integer.numberOfTrailingZeros(half);
        return odd == 1 || odd == 3 || odd == 5 || odd == 7 ? odd : 0;
    }

    /**
     * The twiddle table's length L for a layer: the least common multiple of its lengths, where both are lengths the
     * kernel takes.
     *
     * @return L, or 0 where the kernel does not apply
     */
    static int twiddleLength(int dIn, int dOut) {
        if (oddFactor(dIn) == 0 || oddFactor(dOut) == 0) {
            return 0;
        }
        long lcm = (long) dIn / gcd(dIn, dOut) * dOut;
        return lcm <= MAX_TWIDDLE_LENGTH ? (int) lcm : 0;
    }

    private static int gcd(int a, int b) {
        return b == 0 ? a : gcd(b, a % b);
    }

    /**
     * e^{−2πi·j/L} for j &lt; L, as (real, imaginary) float pairs, each computed in double and rounded once.
     *
     * @param length L, or 0 for none
     * @return 2·L floats
     */
    static float[] twiddles(int length) {
        float[] t = new float[2 * length];
        for (int j = 0; j < length; j++) {
            double angle = 2 * Math.PI * j / length;
            t[2 * j] = (float) Math.cos(angle);
            t[2 * j + 1] = (float) -Math.sin(angle);
        }
        return t;
    }

    /**
     * Whether a transform from inLength to outLength takes the power-of-two kernels ({@code fourierft_forward_fused},
     * {@code fourierft_backward_fused}) rather than their {@code _radix} variants.
     */
    static boolean powersOfTwo(int inLength, int outLength) {
        return oddFactor(inLength) == 1 && oddFactor(outLength) == 1;
    }

    /** Dynamic shared memory per block: both half spectra and one coefficient row. */
    static long sharedBytes(int inLength, int outLength, int n) {
        return 8L * (inLength / 2 + 1) + 8L * (outLength / 2 + 1) + 4L * n;
    }

    /**
     * Whether the kernel can run a transform from inLength to outLength with n coefficients per adapter.
     *
     * @param sharedLimit the device's shared memory per block once a kernel opts in
     */
    static boolean fits(int inLength, int outLength, int n, int sharedLimit) {
        return twiddleLength(inLength, outLength) > 0 && sharedBytes(inLength, outLength, n) <= sharedLimit;
    }
}
