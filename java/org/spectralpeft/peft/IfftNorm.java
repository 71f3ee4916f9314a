package org.spectralpeft.peft;

import java.util.Optional;

/**
 * PEFT's {@code ifft2_norm}: the normalization of {@code torch.fft.ifft2} in {@code get_delta_weight}.
 * The library's spec always has the form ΔW = α/(d_out·d_in) · Σ c·cos(...), so each norm maps to an
 * effective α: "backward" (PEFT's default) divides by d_out·d_in, "ortho" by √(d_out·d_in), "forward" not
 * at all.
 */
public enum IfftNorm {
    /** PEFT's default: ifft2 divides by d_out·d_in. */
    BACKWARD("backward"),
    /** ifft2 divides by √(d_out·d_in). */
    ORTHO("ortho"),
    /** ifft2 does not normalize. */
    FORWARD("forward");

    private final String peftName;

    IfftNorm(String peftName) {
        this.peftName = peftName;
    }

    /**
     * The value in {@code adapter_config.json}.
     *
     * @return "backward", "ortho" or "forward"
     */
    public String peftName() {
        return peftName;
    }

    /**
     * The norm named {@code name} in {@code adapter_config.json}.
     *
     * @param name "backward", "ortho" or "forward"
     * @return the norm, or empty for any other name
     */
    public static Optional<IfftNorm> ofPeftName(String name) {
        for (IfftNorm n : values()) {
            if (n.peftName.equals(name)) {
                return Optional.of(n);
            }
        }
        return Optional.empty();
    }

    /**
     * The α of the library's spec that reproduces {@code ifft2(S, norm).real * scaling} for a d_out × d_in layer.
     *
     * @param scaling PEFT's {@code scaling}
     * @param dOut the layer's out_features
     * @param dIn the layer's in_features
     * @return the effective α
     */
    public float effectiveAlpha(double scaling, int dOut, int dIn) {
        double size = (double) dOut * dIn;
        return switch (this) {
            case BACKWARD -> (float) scaling;
            case ORTHO -> (float) (scaling * Math.sqrt(size));
            case FORWARD -> (float) (scaling * size);
        };
    }
}
