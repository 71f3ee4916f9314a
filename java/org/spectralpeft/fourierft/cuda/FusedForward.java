package org.spectralpeft.fourierft.cuda;

/**
 * Where {@code fourierft_forward_fused} (the whole unmaterialized forward of a token in one thread block: its row's
 * real FFT, the gather/scatter and the inverse in shared memory, {@code kernels/block_fft.cuh}) applies, and what it
 * needs: d_in and d_out powers of two, and a block's shared memory for both half spectra and a coefficient row.
 * Chosen per call by the system property {@value CudaFourierFT#FORWARD_PROPERTY}{@code =fused}; elsewhere, and by
 * default, the forward is cuFFT's transforms around the gather kernels. The fused kernel reads x once and y once and
 * writes y once, where the cuFFT route also writes and reads both spectra and launches five times; its speed has not
 * been measured on a GPU yet, so it is not the default.
 */
final class FusedForward {
    private FusedForward() {
    }

    /** Whether the calling thread's current value of {@value CudaFourierFT#FORWARD_PROPERTY} asks for this kernel. */
    static boolean requested() {
        return "fused".equals(System.getProperty(CudaFourierFT.FORWARD_PROPERTY));
    }

    /**
     * The twiddle table's length L for a layer: the longer of its lengths where both are powers of two (at least 2).
     *
     * @return L, or 0 where the kernel does not apply
     */
    static int twiddleLength(int dIn, int dOut) {
        return isPowerOfTwo(dIn) && isPowerOfTwo(dOut) ? Math.max(dIn, dOut) : 0;
    }

    private static boolean isPowerOfTwo(int d) {
        return d >= 2 && Integer.bitCount(d) == 1;
    }

    /**
     * e^{−2πi·j/L} for j &lt; L/2, as (real, imaginary) float pairs, each computed in double and rounded once.
     *
     * @param length L, a power of two, or 0 for none
     * @return 2·(L/2) floats
     */
    static float[] twiddles(int length) {
        float[] t = new float[length];
        for (int j = 0; j < length / 2; j++) {
            double angle = 2 * Math.PI * j / length;
            t[2 * j] = (float) Math.cos(angle);
            t[2 * j + 1] = (float) -Math.sin(angle);
        }
        return t;
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

    /** log2 of a power of two. */
    static int log2(int powerOfTwo) {
        return Integer.numberOfTrailingZeros(powerOfTwo);
    }
}
