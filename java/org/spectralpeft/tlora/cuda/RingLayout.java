package org.spectralpeft.tlora.cuda;

/**
 * A tensor-ring operator as the kernels read it: cores (J_d, I_d, R, R), d = 1..D, packed into one float32
 * array behind a plan of ints (D, R, the J_d, the I_d, the cores' offsets; stored as the floats with the same
 * bits), and the shared memory a block needs for it. Internal: for {@link CudaTLoRA}.
 */
final class RingLayout {
    /** Words of the plan before the cores, rounded up to 4 so that the cores start 16-byte aligned. */
    private final int planWords;
    private final int[] out;
    private final int[] in;
    private final int rank;
    private final float[][] cores;
    private final int coreFloats;
    private final int maxState;
    private final long inLength;
    private final long outLength;

    /**
     * @param out the output factors J_d
     * @param in the input factors I_d
     * @param rank R
     * @param cores the D cores, each J_d·I_d·R² floats (not copied: read by {@link #packed()})
     */
    RingLayout(int[] out, int[] in, int rank, float[][] cores) {
        this.out = out.clone();
        this.in = in.clone();
        this.rank = rank;
        this.cores = cores;
        this.planWords = (2 + 3 * out.length + 3) / 4 * 4;
        long total = 0;
        long state = 1;
        long inProduct = 1;
        long outProduct = 1;
        long smallestPadded = Long.MAX_VALUE; // the smallest max(J_d, I_d) after the first: the one whose padding costs most
        for (int d = 0; d < out.length; d++) {
            total += (long) out[d] * in[d] * rank * rank;
            state *= Math.max(out[d], in[d]);
            if (d > 0) {
                smallestPadded = Math.min(smallestPadded, Math.max(out[d], in[d]));
            }
            inProduct *= in[d];
            outProduct *= out[d];
        }
        if (out.length > 1) {
            // step m writes rows padded for mode m + 1's input (tlora_row_pitch: I_{m+1} made odd), one mode at a time
            state = state / smallestPadded * (smallestPadded + 1);
        }
        this.inLength = inProduct;
        this.outLength = outProduct;
        // the host checks these against the device's shared memory before they are used; int is plenty there
        this.coreFloats = (int) Math.min(total, Integer.MAX_VALUE);
        this.maxState = (int) Math.min(state, Integer.MAX_VALUE);
    }

    int order() {
        return out.length;
    }

    int rank() {
        return rank;
    }

    int coreFloats() {
        return coreFloats;
    }

    /**
     * An upper bound of every intermediate state's size per bond, padding included: ∏ max(J_d, I_d), with the
     * smallest factor after the first one more where there are several (each step pads its rows for the next mode's
     * input, {@code tlora_row_pitch}).
     */
    int maxState() {
        return maxState;
    }

    /** @return ∏ I_d */
    long inLength() {
        return inLength;
    }

    /** @return ∏ J_d */
    long outLength() {
        return outLength;
    }

    int out(int k) {
        return out[k];
    }

    int in(int k) {
        return in[k];
    }

    /**
     * @param k a core
     * @return where core k starts among the packed cores, in floats
     */
    int coreOffset(int k) {
        int offset = 0;
        for (int d = 0; d < k; d++) {
            offset += out[d] * in[d] * rank * rank;
        }
        return offset;
    }

    /**
     * The values of every other mode's pair of digits together: the rows of the other cores' products for core k.
     * Only called once {@link #gramFloats} is known to fit an int.
     *
     * @param k a core
     * @return ∏J·∏I / (J_k·I_k)
     */
    int others(int k) {
        return (int) (outLength * inLength / ((long) out[k] * in[k]));
    }

    /** @return ∏J·∏I: the floats of C = Σ w·vᵀ, which the cores' gradients form */
    long gramFloats() {
        return outLength * inLength;
    }

    /** The staged cores, the row, two states and the result row. */
    long applyBytes() {
        return 4L * (coreFloats + (long) maxState * (2 + 2L * rank));
    }

    /**
     * The items a block of {@code tlora_kron_gradient} sums for a ring of rank 1: every core's J_k·I_k entries, each
     * in {@code 256 / (J_k·I_k)} slices where that is more than one (tlora_kron_splits).
     */
    int kronItems() {
        int items = 0;
        for (int k = 0; k < out.length; k++) {
            int entries = out[k] * in[k];
            items += entries * (entries < TLoRAKernels.BLOCK ? TLoRAKernels.BLOCK / entries : 1);
        }
        return items;
    }

    /** The larger of a row of v_k and of w rearranged with digit k last at an odd pitch, over the cores k. */
    int kronPairFloats() {
        long most = 0;
        for (int k = 0; k < out.length; k++) {
            long others = outLength / out[k];
            most = Math.max(most, others * Math.max(in[k] | 1, out[k] | 1));
        }
        return (int) Math.min(most, Integer.MAX_VALUE);
    }

    /** tlora_kron_gradient's shared memory: the staged cores, the row, two states, w's row, two rearranged rows, the items. */
    long kronGradientBytes() {
        return 4L * (coreFloats + 3L * maxState + outLength + 2L * kronPairFloats() + kronItems());
    }

    /**
     * @param base the device address of the packed array
     * @return the address of its cores
     */
    long coresAddress(long base) {
        return base + 4L * planWords;
    }

    /** @return the plan (as float bits) then the cores, for one upload */
    float[] packed() {
        float[] p = new float[planWords + coreFloats];
        int d = out.length;
        p[0] = Float.intBitsToFloat(d);
        p[1] = Float.intBitsToFloat(rank);
        int offset = 0;
        for (int k = 0; k < d; k++) {
            p[2 + k] = Float.intBitsToFloat(out[k]);
            p[2 + d + k] = Float.intBitsToFloat(in[k]);
            p[2 + 2 * d + k] = Float.intBitsToFloat(offset);
            System.arraycopy(cores[k], 0, p, planWords + offset, cores[k].length);
            offset += cores[k].length;
        }
        return p;
    }
}
