package org.spectralpeft.fourierft.cuda;

/**
 * Where {@code fourierft_forward_fused} (the whole unmaterialized forward of a token in one thread block: its row's
 * real FFT, the gather/scatter and the inverse in shared memory, {@code kernels/block_fft.cuh}) and {@code
 * fourierft_backward_fused} (the backward's likewise) apply, and what they need: d_in and d_out even, each half a
 * power of two times 1, 3, 5 or 7 (4096, 768 = 2·3·2⁷, 5120 = 2·5·2⁹, 14336 = 2·7·2¹⁰; not 11008 = 2·43·2⁷), and a
 * block's shared memory for both half spectra and a coefficient row. Powers of two run the plain kernels, the
 * others their {@code _radix} variants (the same code with its radix-3, 5 and 7 stages compiled in, and more
 * registers). They are the default wherever a layer fits them ({@value CudaFourierFT#FORWARD_PROPERTY} unset,
 * {@code auto} or {@code fused}); {@code cufft} asks for cuFFT's transforms around the gather kernels instead, which
 * is also what the other layers run. The fused kernel reads x once and y once and writes y once, where the cuFFT route
 * also writes and reads both spectra and launches four times. Measured on an H100 (bench/GPU_RUNS.md, 5e7e8a9, GPU
 * time per call, fused / cuFFT): 4096² forward 0.72 at T = 4096, 0.90 at 256, 1.08–1.13 at T = 1 to 64; backward
 * 0.77 at 256 and 4096, 1.10 at T = 1; 768² 0.68 at every T. Below T ≈ 160 at 4096² it loses at most 2.5 µs of GPU
 * time, while it issues in about 11 µs of host time against 47 (one launch against four, no cuFFT call): a model's
 * layers queued back to back are bound by the larger of the two, so one rule, the fused kernel wherever it fits,
 * is the faster one there too.
 */
final class FusedForward {
    /** The longest twiddle table a layer may need (beyond it, the cuFFT route). */
    static final int MAX_TWIDDLE_LENGTH = 1 << 20;

    private FusedForward() {
    }

    /**
     * Whether the calling thread's current value of {@value CudaFourierFT#FORWARD_PROPERTY} lets a layer that fits
     * run this kernel: unset, {@code auto} or {@code fused} yes, {@code cufft} no.
     *
     * @throws IllegalArgumentException for any other value, naming the property and the values it takes
     */
    static boolean requested() {
        String route = System.getProperty(CudaFourierFT.FORWARD_PROPERTY, "auto");
        return switch (route) {
            case "auto", "fused" -> true;
            case "cufft" -> false;
            default -> throw new IllegalArgumentException("system property " + CudaFourierFT.FORWARD_PROPERTY + "="
                    + route + " is not a route of the FourierFT forward: auto (the default), fused or cufft");
        };
    }

    /**
     * Whether the calling thread's current value of {@value CudaFourierFT#FFT_PASS_PROPERTY} asks for the kernels
     * whose FFTs take three radix-2 stages per pass: unset or {@code radix4} no, {@code radix8} yes.
     *
     * @throws IllegalArgumentException for any other value, naming the property and the values it takes
     */
    static boolean radix8Passes() {
        String passes = System.getProperty(CudaFourierFT.FFT_PASS_PROPERTY, "radix4");
        return switch (passes) {
            case "radix4" -> false;
            case "radix8" -> true;
            default -> throw new IllegalArgumentException("system property " + CudaFourierFT.FFT_PASS_PROPERTY + "="
                    + passes + " is not a pass of the fused kernels' FFTs: radix4 (the default) or radix8");
        };
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
     * The block FFTs' twiddle table ({@code kernels/block_fft.cuh}), as (real, imaginary) float pairs, each computed in
     * double and rounded once: e^{−2πi·j/L} for j &lt; L, then the radix-2 stages' table of {@link #stageLength}(L)
     * pairs, pair h + j = e^{−2πi·j/(2h)} for h = 1, 2, 4, … and j &lt; h (pair 0 is 1), so that a pass reads its
     * twiddles at consecutive addresses. Pair h + h/2 is exactly (−0, −1), the quarter turn of pair h's (1, −0) that a
     * pass derives where the other schedule reads the table (the double's cos(π/2) would round to 6e-17).
     *
     * @param length L, or 0 for none
     * @return 2·(L + stageLength(L)) floats
     */
    static float[] twiddles(int length) {
        int stages = stageLength(length);
        float[] t = new float[2 * (length + stages)];
        for (int j = 0; j < length; j++) {
            double angle = 2 * Math.PI * j / length;
            t[2 * j] = (float) Math.cos(angle);
            t[2 * j + 1] = (float) -Math.sin(angle);
        }
        if (stages > 0) {
            t[2 * length] = 1f;
        }
        for (int h = 1; h < stages; h <<= 1) {
            for (int j = 0; j < h; j++) {
                double angle = Math.PI * j / h;
                t[2 * (length + h + j)] = (float) Math.cos(angle);
                t[2 * (length + h + j) + 1] = (float) -Math.sin(angle);
            }
            if (h >= 2) { // W_2h^(h/2) = −i exactly, as the kernels derive it from W_2h^0 = (1, −0): cos(π/2) is 6e-17 in double
                t[2 * (length + h + h / 2)] = -0f;
                t[2 * (length + h + h / 2) + 1] = -1f;
            }
        }
        return t;
    }

    /**
     * The radix-2 stages' table's length for a twiddle table of length L: the largest power of two dividing L/2,
     * which is the longest power-of-two sub-transform (half of d over its odd factor) of either length.
     */
    static int stageLength(int length) {
        return length == 0 ? 0 : Integer.lowestOneBit(length) / 2;
    }

    /**
     * Whether a transform from inLength to outLength takes the power-of-two kernels ({@code fourierft_forward_fused},
     * {@code fourierft_backward_fused}) rather than their {@code _radix} variants.
     */
    static boolean powersOfTwo(int inLength, int outLength) {
        return oddFactor(inLength) == 1 && oddFactor(outLength) == 1;
    }

    /** Dynamic shared memory per block: both half spectra (padded, {@link #spectrumSlots}) and one coefficient row. */
    static long sharedBytes(int inLength, int outLength, int n) {
        return 8L * spectrumSlots(inLength) + 8L * spectrumSlots(outLength) + 4L * n;
    }

    /**
     * The float2 slots a block holds the half spectrum of a length-d real transform in (M = d/2 + 1 bins and the
     * padding of {@code kernels/block_fft.cuh}: element i at slot i + (i &gt;&gt; shift), shift = max(log2(M/odd) − 5,
     * 1), so that reads at digit-reversed positions spread over the banks): block_fft_pad(M) + 1.
     */
    static int spectrumSlots(int length) {
        int m = length / 2;
        int odd = Math.max(oddFactor(length), 1);
        int shift = Math.max(Integer.numberOfTrailingZeros(m / odd) - 5, 1);
        return m + (m >> shift) + 1;
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
