package org.spectralpeft.tlora.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.spectralpeft.tlora.TLoRASpec;

/**
 * The packed plan the kernels read, the shared memory the authors' shapes need and the gradients' sizes (no device
 * needed).
 */
class RingLayoutTest {
    /** An H100's or H200's shared memory per block after opting in. */
    private static final int SM90_SHARED = 227 * 1024;

    @ParameterizedTest
    @ValueSource(ints = {320, 640, 768, 1280, 2048})
    void theAuthorsShapesFitAnSm90BlockUpToRingRankFour(int d) {
        int[] shape = TLoRASpec.authorsShape(d);
        for (int ring : new int[] {1, 2, 4}) {
            RingLayout layout = new RingLayout(shape, shape, ring, cores(shape, shape, ring));
            assertTrue(layout.applyBytes() <= SM90_SHARED,
                    d + " at R = " + ring + " needs " + layout.applyBytes() + " bytes");
        }
        RingLayout cube = new RingLayout(new int[] {16, 16, 16}, new int[] {16, 16, 16}, 4,
                cores(new int[] {16, 16, 16}, new int[] {16, 16, 16}, 4));
        assertTrue(cube.applyBytes() <= SM90_SHARED, "4096 = [16, 16, 16] at R = 4: " + cube.applyBytes());
    }

    @Test
    void thePlanPrecedesTheCoresBitForBit() {
        int[] out = {3, 2};
        int[] in = {5, 7};
        float[][] cores = cores(out, in, 2);
        cores[0][4] = -1.5f;
        cores[1][0] = 2.25f;
        RingLayout layout = new RingLayout(out, in, 2, cores);
        float[] p = layout.packed();
        int planWords = (int) ((layout.coresAddress(0)) / 4);
        assertEquals(0, planWords % 4, "the cores start 16-byte aligned");
        int[] expected = {2, 2, 3, 2, 5, 7, 0, 3 * 5 * 4};
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], Float.floatToRawIntBits(p[i]), "plan word " + i);
        }
        assertEquals(-1.5f, p[planWords + 4]);
        assertEquals(2.25f, p[planWords + 3 * 5 * 4]);
        assertEquals(planWords + 3 * 5 * 4 + 2 * 7 * 4, p.length);
        assertEquals(3 * 5 * 4 + 2 * 7 * 4, layout.coreFloats());
        assertEquals(5 * (7 + 1), layout.maxState(), "∏ max(J_d, I_d), the smallest after the first plus one");
        assertEquals(8 * 11 * 16, new RingLayout(new int[] {8, 10, 16}, new int[] {8, 10, 16}, 1,
                cores(new int[] {8, 10, 16}, new int[] {8, 10, 16}, 1)).maxState(), "1280: the 10 padded to 11");
        assertEquals(7, new RingLayout(new int[] {2}, new int[] {7}, 2, cores(new int[] {2}, new int[] {7}, 2)).maxState(),
                "one factor: no padding");
        assertEquals(3 * 2 * 5 * 7, layout.gramFloats(), "C = Σ w·vᵀ is ∏J × ∏I");
        assertEquals(2 * 7, layout.others(0), "the other digits of core 0: J_2·I_2");
        assertEquals(3 * 5, layout.others(1));
        assertEquals(3 * 5 * 4, layout.coreOffset(1));
    }

    private static float[][] cores(int[] out, int[] in, int ring) {
        float[][] c = new float[out.length][];
        for (int d = 0; d < c.length; d++) {
            c[d] = new float[out[d] * in[d] * ring * ring];
        }
        return c;
    }

    /**
     * tlora_kron_gradient's shared memory at 1280 = [8, 10, 16], R = 1: items 64·4 + 100·2 + 256 (cores of fewer than
     * 256 entries in slices), the rearranged rows at odd pitches (160·9 for core 0, the largest), and the whole
     * within an H100's 227 KB a block at every authors' shape.
     */
    @Test
    void theKroneckerGradientsSharedMemoryCountsItsItemsAndRows() {
        int[] shape = {8, 10, 16};
        float[][] cores = {new float[64], new float[100], new float[256]};
        RingLayout ring = new RingLayout(shape, shape, 1, cores);
        assertEquals(712, ring.kronItems());
        assertEquals(1440, ring.kronPairFloats());
        assertEquals(4L * (ring.coreFloats() + 3L * ring.maxState() + 1280 + 2 * 1440 + 712), ring.kronGradientBytes());
        for (int d : new int[] {320, 640, 768, 1280, 2048}) {
            int[] s = org.spectralpeft.tlora.TLoRASpec.authorsShape(d);
            float[][] c = new float[s.length][];
            for (int k = 0; k < s.length; k++) {
                c[k] = new float[s[k] * s[k]];
            }
            long bytes = new RingLayout(s, s, 1, c).kronGradientBytes();
            assertTrue(bytes <= 227 * 1024, d + ": " + bytes + " bytes");
        }
    }
}
