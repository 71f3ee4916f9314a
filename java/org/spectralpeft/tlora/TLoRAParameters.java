package org.spectralpeft.tlora;

import java.util.Random;
import org.spectralpeft.core.Checks;

/**
 * A TLoRA layer's trainable parameters, in the authors' layouts (row-major): the transform cores
 * (I_d, I_d, R, R), d = 0..D−1 (their {@code transform_core.d}; for R = 1 their (I_d, I_d)), and the residual
 * arrays in the order of {@link TLoRASpec#residualLength}: LORA A then B ({@code lora_A}, {@code lora_B}), TR the
 * output cores then the input cores ({@code ttv_core.k}), TTM the cores ({@code ttm_core.k}).
 *
 * <p>Wraps the caller's arrays without copying them: each operation reads them when it runs, so an optimizer
 * may update them in place between calls (not during one). {@link #check} validates them against a spec.
 */
public final class TLoRAParameters {
    private final float[][] transform;
    private final float[][] residual;

    private TLoRAParameters(float[][] transform, float[][] residual) {
        this.transform = transform;
        this.residual = residual;
    }

    /**
     * Parameters over the given arrays, checked against spec.
     *
     * @param spec the layer
     * @param transformCores one array per input factor
     * @param residual the residual's arrays
     * @return the parameters
     * @throws IllegalArgumentException naming a missing, mis-sized or non-finite array
     */
    public static TLoRAParameters of(TLoRASpec spec, float[][] transformCores, float[][] residual) {
        Checks.notNull(spec, "spec");
        Checks.notNull(transformCores, "transformCores");
        Checks.notNull(residual, "residual");
        TLoRAParameters p = new TLoRAParameters(transformCores.clone(), residual.clone());
        p.check(spec);
        return p;
    }

    /**
     * The authors' initialisation: every transform core slice I/R (T = I exactly), and the residual zero
     * (LORA: B = 0 and A ~ N(0, 1/(3·d_in)); TR: output core 0 = 0, input cores ~ N(0, 1/I_d), the other output
     * cores ~ N(0, J_d/r⁴); TTM: core 0 = 0, the others ~ N(0, 1/(3·I_d·r²))), so that W' = W0.
     *
     * @param spec the layer
     * @param random the source of the random draws
     * @return fresh parameters
     */
    public static TLoRAParameters initial(TLoRASpec spec, Random random) {
        Checks.notNull(spec, "spec");
        Checks.notNull(random, "random");
        int big = spec.transformRank();
        float[][] transform = new float[spec.inOrder()][];
        for (int d = 0; d < transform.length; d++) {
            int n = spec.inFactor(d);
            float[] core = new float[spec.transformCoreLength(d)];
            for (int i = 0; i < n; i++) {
                for (int s = 0; s < big * big; s++) {
                    core[(i * n + i) * big * big + s] = 1f / big;
                }
            }
            transform[d] = core;
        }
        int r = spec.rank();
        float[][] residual = new float[spec.residualArrays()][];
        for (int k = 0; k < residual.length; k++) {
            residual[k] = new float[(int) spec.residualLength(k)];
            double std = switch (spec.residual()) {
                case LORA -> k == 0 ? 1 / Math.sqrt(3.0 * spec.dIn()) : 0;
                case TR -> k == 0 ? 0 : k < spec.outOrder() ? Math.sqrt(spec.outFactor(k)) / ((double) r * r)
                        : 1 / Math.sqrt(spec.inFactor(k - spec.outOrder()));
                case TTM -> k == 0 ? 0 : 1 / Math.sqrt(3.0 * spec.inFactor(k) * r * r);
            };
            for (int i = 0; i < residual[k].length && std > 0; i++) {
                residual[k][i] = (float) (std * random.nextGaussian());
            }
        }
        return new TLoRAParameters(transform, residual);
    }

    /**
     * Checks every array against spec: count, length, finiteness.
     *
     * @param spec the layer
     * @throws IllegalArgumentException naming the first problem
     */
    public void check(TLoRASpec spec) {
        Checks.notNull(spec, "spec");
        Checks.require(transform.length == spec.inOrder(), "there are " + transform.length
                + " transform cores but " + spec + " has " + spec.inOrder() + " input factors");
        for (int d = 0; d < transform.length; d++) {
            Checks.finiteVector("transform core " + d, transform[d], spec.transformCoreLength(d));
        }
        Checks.require(residual.length == spec.residualArrays(), "there are " + residual.length
                + " residual arrays but a " + spec.residual() + " residual of " + spec + " has " + spec.residualArrays());
        for (int k = 0; k < residual.length; k++) {
            Checks.finiteVector("residual array " + k, residual[k], spec.residualLength(k));
        }
    }

    /** @return the transform cores, d = 0..D−1: the wrapped arrays (not copies) in a new outer array */
    public float[][] transformCores() {
        return transform.clone();
    }

    /** @return the residual arrays in their order: the wrapped arrays (not copies) in a new outer array */
    public float[][] residualArrays() {
        return residual.clone();
    }

    /**
     * @param d a factor's position
     * @return transform core d (the wrapped array, not a copy)
     */
    public float[] transformCore(int d) {
        return transform[d];
    }

    /**
     * @param k an array's position
     * @return residual array k (the wrapped array, not a copy)
     */
    public float[] residual(int k) {
        return residual[k];
    }
}
