package org.spectralpeft.foura.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.spectralpeft.SystemProperty;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.foura.FouRABackendContract.Case;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;
import org.spectralpeft.foura.cpu.FoldedFactors;
import org.spectralpeft.fourierft.cuda.RequiresCuda;

/**
 * The forward kernels ({@code foura_mixed_project}, then {@code foura_mixed_expand}; one adapter, no tables)
 * against the float64 reference: y += adapter(x) with the factors folded on the host, every transform and gate,
 * ranks up to 128 (z of 256 components, the most the kernels take), token counts that leave partial blocks,
 * every dtype, bit-identical repeats, and the same bits from both projection kernels (four columns of Â per warp,
 * the default, and one).
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class FouRAForwardKernelsTest {
    private static KernelFixture gpu;

    @BeforeAll
    static void open() {
        gpu = new KernelFixture();
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    static Stream<Arguments> cases() {
        int[][] shapes = {{1, 8, 1}, {7, 5, 4}, {63, 50, 16}, {96, 81, 64}, {257, 300, 128}, {768, 768, 16}};
        List<Arguments> out = new ArrayList<>();
        for (int[] s : shapes) {
            for (Transform t : Transform.values()) {
                for (Gate g : Gate.values()) {
                    DType dtype = DType.values()[(s[0] + t.ordinal() + g.ordinal()) % 3];
                    out.add(Arguments.of(s[0], s[1], s[2], t, g, dtype));
                }
            }
        }
        return out.stream();
    }

    /** The kernels' forward of case c on {@code tokens} tokens of x, into y (accumulated), on the device. */
    private static void run(Case c, HostArray x, int tokens, HostArray y) {
        run(c, x, tokens, y, "kernels");
    }

    /** As above, through {@code route}: kernels, tiled (z by foura_project_tiled) or small (foura_forward_small). */
    private static void run(Case c, HostArray x, int tokens, HostArray y, String route) {
        FouRASpec spec = c.spec;
        boolean dft = spec.transform() == Transform.DFT;
        int width = (dft ? 2 : 1) * spec.rank();
        float[] bHat = FoldedFactors.bHat(spec, c.b);
        float[] bHatT = new float[bHat.length];
        for (int p = 0; p < spec.dOut(); p++) {
            for (int k = 0; k < width; k++) {
                bHatT[k * spec.dOut() + p] = bHat[p * width + k];
            }
        }
        try (DeviceBuffer dx = upload(x);
             DeviceBuffer da = upload(HostArray.float32(FoldedFactors.aHat(spec, c.a)));
             DeviceBuffer db = upload(HostArray.float32(bHatT));
             DeviceBuffer dg = c.gate == null ? null : upload(HostArray.float32(c.gate));
             DeviceBuffer dy = upload(y)) {
            if (route.equals("tiled")) {
                gpu.kernels.forwardTiled(spec, dx.array(), da.array(), db.array(), dg == null ? null : dg.array(),
                        spec.alpha(), tokens, dy.array(), gpu.stream);
            } else if (route.equals("small")) {
                gpu.kernels.forwardSmall(spec, dx.array(), da.array(), db.array(), dg == null ? null : dg.array(),
                        spec.alpha(), tokens, dy.array(), gpu.stream);
            } else {
                gpu.kernels.forward(spec, dx.array(), da.array(), db.array(), dg == null ? null : dg.array(), spec.alpha(),
                        tokens, dy.array(), gpu.stream);
            }
            gpu.stream.synchronize();
            dy.copyTo(y);
        }
    }

    /** y's values before a forward: random, at the size of the contribution the forward adds. */
    private static float[] outputsLike(Case c, double[] contribution) {
        float[] y0 = c.data.gaussian(contribution.length);
        double scale = Math.sqrt(java.util.Arrays.stream(contribution).map(v -> v * v).sum() / contribution.length);
        for (int i = 0; i < y0.length; i++) {
            y0[i] *= (float) scale;
        }
        return y0;
    }

    private static DeviceBuffer upload(HostArray h) {
        DeviceBuffer b = gpu.context.allocate(h.dtype(), h.length());
        b.copyFrom(h);
        return b;
    }

    @ParameterizedTest(name = "{0}x{1} r={2} {3} {4} {5}")
    @MethodSource("cases")
    void theKernelsForwardMatchesTheReference(int dOut, int dIn, int r, Transform transform, Gate gate, DType dtype) {
        Case c = new Case(dOut, dIn, r, transform, gate);
        int tokens = 1 + c.data.nextInt(30);
        HostArray x = c.inputs(dtype, tokens);
        double[] contribution = c.forward(TestData.toDouble(x), tokens);
        float[] y0 = outputsLike(c, contribution);
        double[] before = TestData.toDouble(HostArray.of(dtype, y0));
        HostArray first = HostArray.of(dtype, y0);
        run(c, x, tokens, first);
        double err = TestData.accumulatedError(TestData.toDouble(first), before, contribution);
        assertTrue(err < TestData.tolerance(dtype), "kernels' forward, T=" + tokens + ": relative error " + err + c.tag());
        HostArray again = HostArray.of(dtype, y0);
        run(c, x, tokens, again);
        assertArrayEquals(first.toFloats(), again.toFloats(), "repeat not bit-identical" + c.tag());
        HostArray narrow = HostArray.of(dtype, y0);
        SystemProperty.with(FouRAKernels.PROJECT_COLUMNS_PROPERTY, "1", () -> run(c, x, tokens, narrow));
        assertArrayEquals(first.toFloats(), narrow.toFloats(), "a column per warp, not the same bits as four" + c.tag());
    }

    /**
     * The tiled projection (foura_project_tiled, then the same expansion) against the reference on every case, with
     * token counts past one tile of 64 (NONE and FIXED gates) and x's columns split into chunks where d_in is above
     * 256 (the parts summed by the expansion); bit-identical repeats.
     */
    @ParameterizedTest(name = "{0}x{1} r={2} {3} {4} {5}")
    @MethodSource("cases")
    void theTiledForwardMatchesTheReference(int dOut, int dIn, int r, Transform transform, Gate gate, DType dtype) {
        Case c = new Case(dOut, dIn, r, transform, gate);
        // past one tile of 64 tokens; the ADAPTIVE gate's inputs are drawn until every token is clear of its
        // threshold, which takes ever more draws as tokens grow: at most 30 there (tiles do not depend on the gate)
        matchesTheReferenceAndRepeats(c, dtype, 1 + c.data.nextInt(gate == Gate.ADAPTIVE ? 30 : 150), "tiled");
    }

    /** route's forward of fresh inputs into random y: within the tolerance of the reference, the same bits twice. */
    private static void matchesTheReferenceAndRepeats(Case c, DType dtype, int tokens, String route) {
        HostArray x = c.inputs(dtype, tokens);
        double[] contribution = c.forward(TestData.toDouble(x), tokens);
        float[] y0 = outputsLike(c, contribution);
        double[] before = TestData.toDouble(HostArray.of(dtype, y0));
        HostArray first = HostArray.of(dtype, y0);
        run(c, x, tokens, first, route);
        double err = TestData.accumulatedError(TestData.toDouble(first), before, contribution);
        assertTrue(err < TestData.tolerance(dtype), route + " forward, T=" + tokens + ": error " + err + c.tag());
        HostArray again = HostArray.of(dtype, y0);
        run(c, x, tokens, again, route);
        assertArrayEquals(first.toFloats(), again.toFloats(), "repeat not bit-identical" + c.tag());
    }

    /**
     * The one-launch small forward (foura_forward_small) against the reference on every case, in each of its buckets
     * of tokens (1, 2 to 4, 5 to 16; d_in a multiple of 4 takes its float4 loads of Â and x, the others its scalar
     * loads); bit-identical repeats; a token's result the same bits in every bucket; 17 tokens refused before any
     * work.
     */
    @ParameterizedTest(name = "{0}x{1} r={2} {3} {4} {5}")
    @MethodSource("cases")
    void theSmallForwardMatchesTheReference(int dOut, int dIn, int r, Transform transform, Gate gate, DType dtype) {
        Case c = new Case(dOut, dIn, r, transform, gate);
        for (int tokens : new int[] {1, 2 + c.data.nextInt(3), 5 + c.data.nextInt(12)}) {
            matchesTheReferenceAndRepeats(c, dtype, tokens, "small");
        }
        if (gate != Gate.ADAPTIVE) { // (the ADAPTIVE gate's inputs are drawn per token count)
            aTokensBitsDoNotDependOnItsBucket(c, dtype);
        }
        HostArray seventeen = c.inputs(dtype, 17);
        float[] y0 = c.data.gaussian(17 * dOut);
        HostArray y = HostArray.of(dtype, y0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(c, seventeen, 17, y,
                "small"));
        assertTrue(e.getMessage().contains("at most 16 tokens"), e.getMessage());
    }

    /**
     * The first token of a batch of 16 (bucket 16), of 3 (bucket 4) and alone (bucket 1): each bucket runs its
     * multiply-adds for all its rows, and a token's sums keep one order whatever the others are.
     */
    private static void aTokensBitsDoNotDependOnItsBucket(Case c, DType dtype) {
        HostArray x = c.inputs(dtype, 16);
        float[] y0 = c.data.gaussian(16 * c.spec.dOut());
        float[] alone = null;
        for (int tokens : new int[] {16, 3, 1}) {
            HostArray xs = HostArray.of(dtype, java.util.Arrays.copyOf(x.toFloats(), tokens * c.spec.dIn()));
            HostArray y = HostArray.of(dtype, java.util.Arrays.copyOf(y0, tokens * c.spec.dOut()));
            run(c, xs, tokens, y, "small");
            float[] first = java.util.Arrays.copyOf(y.toFloats(), c.spec.dOut());
            if (alone != null) {
                assertArrayEquals(alone, first, "token 0 with " + tokens + " tokens, not its bits with 16" + c.tag());
            }
            alone = first;
        }
    }

    /** Where d_in is a multiple of 4 the small forward reads x four elements at once: an x off that alignment is refused. */
    @Test
    void theSmallForwardRefusesAnXItCannotReadFourAtATime() {
        FouRASpec spec = FouRASpec.of(40, 64, 4, Transform.DCT, Gate.NONE, 1f);
        try (DeviceBuffer x = gpu.context.allocate(DType.FLOAT16, 64 + 4);
             DeviceBuffer a = gpu.context.allocate(DType.FLOAT32, 4 * 64);
             DeviceBuffer b = gpu.context.allocate(DType.FLOAT32, 4 * 40);
             DeviceBuffer y = gpu.context.allocate(DType.FLOAT32, 40)) {
            org.spectralpeft.cuda.DeviceArray shifted = x.array().slice(1, 64);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.kernels.forwardSmall(
                    spec, shifted, a.array(), b.array(), null, 1f, 1, y.array(), gpu.stream));
            assertTrue(e.getMessage().contains("multiple of 8 bytes"), e.getMessage());
            org.junit.jupiter.api.Assertions.assertFalse(FouRAKernels.smallAligned(spec, shifted));
            assertTrue(FouRAKernels.smallAligned(spec, x.array().slice(4, 64)), "four halves in: aligned");
            assertTrue(FouRAKernels.smallAligned(FouRASpec.of(40, 63, 4, Transform.DCT, Gate.NONE, 1f),
                    x.array().slice(1, 63)), "d_in not a multiple of 4: scalar loads, any start");
        }
    }

    @Test
    void aZWiderThanTheKernelHoldsIsRefused() {
        FouRASpec wide = FouRASpec.of(300, 300, 129, Transform.DFT, Gate.NONE, 1f);
        try (DeviceBuffer b = gpu.context.allocate(DType.FLOAT32, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> gpu.kernels.forward(wide, b.array(), b.array(), b.array(), null, 1f, 1, b.array(), gpu.stream));
            assertTrue(e.getMessage().contains("at most 256"), e.getMessage());
        }
    }
}
