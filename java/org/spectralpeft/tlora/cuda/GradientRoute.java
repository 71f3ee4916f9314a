package org.spectralpeft.tlora.cuda;

/**
 * How the CUDA backend forms a ring's core gradients, from the system property {@value #PROPERTY} (read once per
 * backward, before any device work).
 *
 * <p>{@link #GRAM}, the default, is the route measured on an H100: C = Σ_t w_t·v_tᵀ by one SGEMM over the tokens,
 * then per core a permutation of C and one SGEMM with the other cores' products. At R = 1 C is most of the cost of
 * the gradients and needless: {@link #KRONECKER} takes each row through the other cores in shared memory
 * ({@code tlora_kron_gradient}), d·ΣI_d multiply-adds a row for every core together against C's d_out·d_in
 * (130 K against 1.6 M at 1280 = [8, 10, 16]). It applies to rings of rank 1 whose kernel fits the device's shared
 * memory; other rings take {@link #GRAM} under either value. Not the default until timed on a GPU (the ring
 * kernels there ran at a third of SGEMM's rate per multiply-add, so it is predicted to save about 200 µs of the
 * 1.62 ms forward + backward at 1280, R = 1, T = 4096, and 0.5 ms of 2.92 at 2048); the bits differ from GRAM's.
 */
enum GradientRoute {
    /** C by an SGEMM, then one SGEMM per core. */
    GRAM,
    /** tlora_kron_gradient for rank-1 rings, GRAM for the others. */
    KRONECKER;

    /** The system property that picks the route: {@code gram} (the default) or {@code kronecker}. */
    static final String PROPERTY = "spectralpeft.tlora.cuda.gradient";

    /**
     * The calling thread's current route.
     *
     * @throws IllegalArgumentException for a value that is not a route, naming the property and the values it takes
     */
    static GradientRoute requested() {
        String value = System.getProperty(PROPERTY, "gram");
        return switch (value) {
            case "gram" -> GRAM;
            case "kronecker" -> KRONECKER;
            default -> throw new IllegalArgumentException("system property " + PROPERTY + "=" + value
                    + " is not a route of the TLoRA gradients: gram (the default) or kronecker");
        };
    }
}
