package org.spectralpeft.foura.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.spectralpeft.StageLabels;
import org.spectralpeft.SystemProperty;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.foura.FouRAAdapterPool;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRABackendContract;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;
import org.spectralpeft.fourierft.cuda.RequiresCuda;

/**
 * The FouRA contract on the CUDA backend (on the emulator in CI), plus the unfused path that ranks too large
 * for the fused forward take.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaFouRATest extends FouRABackendContract {
    private static CudaFouRA cuda;

    @BeforeAll
    static void open() {
        cuda = CudaFouRA.open();
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    @Override
    protected FouRABackend backend() {
        return cuda;
    }

    /**
     * A mixed batch runs the forward kernels, a single adapter's forward two SGEMMs (unless
     * {@link CudaFouRA#FORWARD_PROPERTY} asks for the kernels): the same sums in another order.
     */
    /** Fewer adapters than on the CPU: each token's check is a host call of its own, slow on the emulator. */
    @Override
    protected int[] mixedAdapterCounts() {
        return new int[] {1, 7, 100};
    }

    @Override
    protected boolean mixedBatchBitwise() {
        return "kernels".equals(System.getProperty(CudaFouRA.FORWARD_PROPERTY));
    }

    /** FouRA and FourierFT on one borrowed context: both work, and closing them leaves the context open. */
    @org.junit.jupiter.api.Test
    void fouraAndFourierFTShareOneBorrowedContext() {
        Case c = new Case(40, 30, 4, Transform.DCT, Gate.NONE);
        HostArray x = c.inputs(DType.FLOAT32, 3);
        try (org.spectralpeft.cuda.CudaContext shared = org.spectralpeft.cuda.CudaContext.open(0)) {
            try (CudaFouRA foura = CudaFouRA.open(shared);
                 org.spectralpeft.fourierft.cuda.CudaFourierFT fourierFT = org.spectralpeft.fourierft.cuda.CudaFourierFT.open(shared);
                 FouRAFactors f = foura.prepare(c.spec, c.a, c.b, null)) {
                HostArray y = HostArray.float32(new float[3 * 40]);
                foura.forward(f, x, 3, y);
                double err = TestData.relativeError(TestData.toDouble(y), c.forward(TestData.toDouble(x), 3));
                assertTrue(err < 1e-5, "FouRA on a shared context: relative error " + err + c.tag());
                HostArray w = HostArray.float32(new float[40 * 30]);
                org.spectralpeft.fourierft.FourierFTSpec ft = org.spectralpeft.fourierft.FourierFTSpec.fromSeed(40, 30, 10);
                float[] coefficients = c.data.gaussian(10);
                fourierFT.materialize(ft, coefficients, w);
                double[] delta = new org.spectralpeft.reference.FourierFTReference(40, 30, ft.rows(), ft.cols(), ft.alpha())
                        .deltaW(TestData.toDouble(coefficients));
                err = TestData.relativeError(TestData.toDouble(w), delta);
                assertTrue(err < 1e-5, "FourierFT on a shared context: relative error " + err + c.tag());
            }
            assertTrue(!shared.isClosed(), "closing the backends must leave a borrowed context open");
            try (CudaFouRA again = CudaFouRA.open(shared)) {
                assertTrue(again.description().startsWith("cuda"));
            }
        }
    }

    /**
     * The forward, the backward and a mixed batch take every scratch buffer from one reservation made up front
     * (two driver calls per call, not two per buffer): none of them misses it, for every transform, gate and
     * dtype, with and without ∂x and the gate's gradient.
     */
    @org.junit.jupiter.api.Test
    void forwardAndBackwardFitTheirScratchReservation() {
        int before = cuda.scratchOverflows();
        int tokens = 5;
        for (Transform transform : Transform.values()) {
            for (Gate gate : Gate.values()) {
                for (DType dtype : DType.values()) {
                    Case c = new Case(40, 33, 4, transform, gate);
                    try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
                        HostArray x = c.inputs(dtype, tokens);
                        cuda.forward(f, x, tokens, HostArray.of(dtype, new float[tokens * 40]));
                        HostArray gy = HostArray.of(dtype, c.data.gaussian(tokens * 40));
                        float[] gradA = new float[4 * 33];
                        float[] gradB = new float[40 * 4];
                        float[] gradGate = gate == Gate.ADAPTIVE ? new float[4 * 4 + 4] : null;
                        cuda.backward(f, x, gy, tokens, gradA, gradB, gradGate, HostArray.of(dtype, new float[tokens * 33]));
                        cuda.backward(f, x, gy, tokens, gradA, gradB, null, null);
                    }
                }
            }
        }
        try (FouRAAdapterPool pool = new FouRAAdapterPool(40, 33)) { // and a mixed batch
            for (int i = 0; i < 3; i++) {
                Case c = new Case(40, 33, 2 + i, Transform.values()[i % 2], Gate.values()[i]);
                pool.add(i, cuda.prepare(c.spec, c.a, c.b, c.gate));
            }
            Case c = new Case(40, 33, 2, Transform.DFT, Gate.NONE);
            cuda.forward(pool, new int[] {0, 2, -1, 1, 1}, c.inputs(DType.FLOAT16, tokens), tokens,
                    HostArray.of(DType.BFLOAT16, new float[tokens * 40]));
        }
        assertTrue(cuda.scratchOverflows() == before, (cuda.scratchOverflows() - before)
                + " scratch allocations missed their call's reservation");
    }

    /** The device-array forward queues the same kernels as the host one: the same bits, fused or not. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {16, 160})
    void deviceArrayForwardEqualsTheHostForward(int rank) {
        Case c = new Case(180, 170, rank, Transform.DFT, Gate.FIXED);
        int tokens = 13;
        HostArray x = c.inputs(DType.BFLOAT16, tokens);
        HostArray y0 = HostArray.of(DType.FLOAT16, c.data.gaussian(tokens * 180));
        HostArray viaHost = HostArray.of(DType.FLOAT16, y0.toFloats());
        HostArray viaDevice = HostArray.of(DType.FLOAT16, y0.toFloats());
        try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate);
             org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
             org.spectralpeft.cuda.DeviceBuffer dx = cuda.context().allocate(DType.BFLOAT16, x.length());
             org.spectralpeft.cuda.DeviceBuffer dy = cuda.context().allocate(DType.FLOAT16, y0.length())) {
            cuda.forward(f, x, tokens, viaHost);
            dx.copyFrom(x);
            dy.copyFrom(viaDevice);
            cuda.forward(f, dx.array(), tokens, dy.array(), stream);
            stream.synchronize();
            dy.copyTo(viaDevice);
            org.junit.jupiter.api.Assertions.assertArrayEquals(viaHost.toFloats(), viaDevice.toFloats(), c.tag());
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> cuda.forward(f, dx.array(), tokens + 1, dy.array(), stream));
            assertTrue(e.getMessage().contains("x has"), e.getMessage());
        }
    }

    /** combine on device arrays queues the host call's kernels: the same bits; and refuses bad weights first. */
    @Test
    void deviceArrayCombineEqualsTheHostCombine() {
        Case c = new Case(180, 170, 8, Transform.DCT, Gate.FIXED);
        Case d = new Case(180, 170, 160, Transform.DFT, Gate.NONE); // past the fused kernel's width
        int tokens = 11;
        HostArray x = c.inputs(DType.FLOAT16, tokens);
        HostArray y0 = HostArray.of(DType.BFLOAT16, c.data.gaussian(tokens * 180));
        HostArray viaHost = HostArray.of(DType.BFLOAT16, y0.toFloats());
        HostArray viaDevice = HostArray.of(DType.BFLOAT16, y0.toFloats());
        float[] weights = {0.7f, -0.4f};
        try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate);
             FouRAFactors g = cuda.prepare(d.spec, d.a, d.b, d.gate);
             org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
             org.spectralpeft.cuda.DeviceBuffer dx = cuda.context().upload(x);
             org.spectralpeft.cuda.DeviceBuffer dy = cuda.context().upload(viaDevice)) {
            FouRAFactors[] both = {f, g};
            cuda.combine(both, weights, x, tokens, viaHost);
            cuda.combine(both, weights, dx.array(), tokens, dy.array(), stream);
            stream.synchronize();
            dy.copyTo(viaDevice);
            org.junit.jupiter.api.Assertions.assertArrayEquals(viaHost.toFloats(), viaDevice.toFloats(), c.tag());
            float[] before = viaDevice.toFloats();
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> cuda.combine(both, new float[] {1f, Float.NaN}, dx.array(), tokens, dy.array(), stream));
            assertTrue(e.getMessage().contains("weights"), e.getMessage());
            e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> cuda.combine(both, weights, dx.array(), tokens + 1, dy.array(), stream));
            assertTrue(e.getMessage().contains("x has"), e.getMessage());
            stream.synchronize();
            dy.copyTo(viaDevice);
            org.junit.jupiter.api.Assertions.assertArrayEquals(before, viaDevice.toFloats(), "refused calls leave y alone");
        }
    }

    /** prepare and backward on device arrays give the host entry points' bits (the same kernels). */
    @ParameterizedTest
    @EnumSource(Gate.class)
    void deviceArrayPrepareAndBackwardEqualTheHostOnes(Gate gate) {
        Case c = new Case(50, 44, 5, Transform.DCT, gate);
        int tokens = 9;
        HostArray x = c.inputs(DType.FLOAT16, tokens);
        HostArray gy = HostArray.of(DType.FLOAT16, c.data.gaussian(tokens * 50));
        boolean adaptive = gate == Gate.ADAPTIVE;
        float[] hA = new float[5 * 44];
        float[] hB = new float[50 * 5];
        float[] hG = adaptive ? new float[30] : null;
        HostArray hx = HostArray.float32(new float[tokens * 44]);
        float[] dA = new float[hA.length];
        float[] dB = new float[hB.length];
        float[] dG = adaptive ? new float[30] : null;
        HostArray dxOut = HostArray.float32(new float[tokens * 44]);
        try (org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
             org.spectralpeft.cuda.DeviceBuffer a = cuda.context().upload(HostArray.float32(c.a));
             org.spectralpeft.cuda.DeviceBuffer b = cuda.context().upload(HostArray.float32(c.b));
             org.spectralpeft.cuda.DeviceBuffer g = c.gate == null ? null : cuda.context().upload(HostArray.float32(c.gate));
             FouRAFactors viaHost = cuda.prepare(c.spec, c.a, c.b, c.gate);
             FouRAFactors viaDevice = cuda.prepare(c.spec, a.array(), b.array(), g == null ? null : g.array(), stream);
             org.spectralpeft.cuda.DeviceBuffer dx = cuda.context().upload(x);
             org.spectralpeft.cuda.DeviceBuffer dgy = cuda.context().upload(gy);
             org.spectralpeft.cuda.DeviceBuffer gA = cuda.context().allocate(DType.FLOAT32, dA.length);
             org.spectralpeft.cuda.DeviceBuffer gB = cuda.context().allocate(DType.FLOAT32, dB.length);
             org.spectralpeft.cuda.DeviceBuffer gG = adaptive ? cuda.context().allocate(DType.FLOAT32, 30) : null;
             org.spectralpeft.cuda.DeviceBuffer gx = cuda.context().upload(dxOut)) {
            HostArray y1 = HostArray.float32(new float[tokens * 50]);
            HostArray y2 = HostArray.float32(new float[tokens * 50]);
            cuda.forward(viaHost, x, tokens, y1);
            cuda.forward(viaDevice, x, tokens, y2);
            org.junit.jupiter.api.Assertions.assertArrayEquals(y1.floats(), y2.floats(), "prepare from device arrays" + c.tag());

            cuda.backward(viaHost, x, gy, tokens, hA, hB, hG, hx);
            cuda.backward(viaDevice, dx.array(), dgy.array(), tokens, gA.array(), gB.array(), gG == null ? null : gG.array(),
                    gx.array(), stream);
            stream.synchronize();
            gA.copyTo(HostArray.float32(dA));
            gB.copyTo(HostArray.float32(dB));
            gx.copyTo(dxOut);
            org.junit.jupiter.api.Assertions.assertArrayEquals(hA, dA, "∂A" + c.tag());
            org.junit.jupiter.api.Assertions.assertArrayEquals(hB, dB, "∂B" + c.tag());
            org.junit.jupiter.api.Assertions.assertArrayEquals(hx.floats(), dxOut.floats(), "∂x" + c.tag());
            if (adaptive) {
                gG.copyTo(HostArray.float32(dG));
                org.junit.jupiter.api.Assertions.assertArrayEquals(hG, dG, "∂gate" + c.tag());
            } else {
                IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                        () -> cuda.backward(viaDevice, dx.array(), dgy.array(), tokens, gA.array(), gB.array(), gA.array(),
                                null, stream));
                assertTrue(e.getMessage().contains("gradGate must be null"), e.getMessage());
            }
            if (gate == Gate.FIXED) {
                try (org.spectralpeft.cuda.DeviceBuffer bad = cuda.context().upload(HostArray.float32(new float[] {1f, 0.5f, 0f, 1f, 1f}))) {
                    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                            () -> cuda.prepare(c.spec, a.array(), b.array(), bad.array(), stream));
                    assertTrue(e.getMessage().contains("mask[1] is 0.5"), e.getMessage());
                }
            }
        }
    }

    /** materialize, merge and unmerge on device arrays give the host entry points' bits. */
    @ParameterizedTest
    @EnumSource(value = DType.class)
    void deviceArrayMaterializeAndMergeEqualTheHostOnes(DType dtype) {
        Case c = new Case(33, 41, 3, Transform.DFT, Gate.FIXED);
        HostArray hostOut = HostArray.allocate(dtype, 33 * 41);
        HostArray w0 = HostArray.of(dtype, c.data.gaussian(33 * 41));
        HostArray hostMerged = HostArray.of(dtype, w0.toFloats());
        try (org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
             FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate);
             org.spectralpeft.cuda.DeviceBuffer out = cuda.context().allocate(dtype, 33 * 41);
             org.spectralpeft.cuda.DeviceBuffer w = cuda.context().upload(w0)) {
            cuda.materialize(f, hostOut);
            cuda.merge(f, hostMerged);
            cuda.materialize(f, out.array(), stream);
            cuda.merge(f, w.array(), stream);
            stream.synchronize();
            HostArray got = HostArray.allocate(dtype, 33 * 41);
            out.copyTo(got);
            org.junit.jupiter.api.Assertions.assertArrayEquals(hostOut.toFloats(), got.toFloats(), "materialize" + c.tag());
            w.copyTo(got);
            org.junit.jupiter.api.Assertions.assertArrayEquals(hostMerged.toFloats(), got.toFloats(), "merge" + c.tag());
            cuda.unmerge(f, w.array(), stream);
            stream.synchronize();
            w.copyTo(got);
            double err = TestData.relativeError(TestData.toDouble(got), TestData.toDouble(w0));
            assertTrue(err < TestData.tolerance(dtype), "unmerge after merge: relative error " + err + c.tag());
        }
    }

    /** r = 160 with the DFT is z of 320 components, past the fused kernel's 256: SGEMM, gate, SGEMM. */
    @ParameterizedTest
    @EnumSource(Gate.class)
    void wideRanksTakeTheUnfusedPath(Gate gate) {
        Case c = new Case(200, 170, 160, Transform.DFT, gate);
        int tokens = 11;
        HostArray x = c.inputs(DType.FLOAT32, tokens);
        double[] expected = c.forward(TestData.toDouble(x), tokens);
        HostArray y = HostArray.float32(new float[tokens * 200]);
        try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
            cuda.forward(f, x, tokens, y);
        }
        double err = TestData.relativeError(TestData.toDouble(y), expected);
        assertTrue(err < 1e-5, "unfused forward: relative error " + err + c.tag());
    }

    /**
     * Each opt-in route (small, kernels, tiled) leaves a z wider than the forward kernels' 256 components (the DFT
     * at r = 160: 320; the DCT at r = 260) to the SGEMMs around the gate kernel: none of the small, mixed or tiled
     * kernels launches, and y is the reference's at float32's tolerance. Five tokens and an aligned x, so that the
     * small route would take its kernel but for the width.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"small", "kernels", "tiled"})
    void wideRanksFallBackToTheSgemmsOnEveryOptInRoute(String route) {
        int tokens = 5;
        Case[] cases = {new Case(200, 170, 160, Transform.DFT, Gate.ADAPTIVE), new Case(270, 265, 260, Transform.DCT, Gate.FIXED)};
        for (Case c : cases) {
            HostArray x = c.inputs(DType.FLOAT32, tokens);
            double[] contribution = c.forward(TestData.toDouble(x), tokens);
            float[] y0 = c.data.gaussian(tokens * c.spec.dOut());
            SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, route, () -> {
                try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
                    HostArray y = HostArray.float32(y0.clone());
                    double[] before = TestData.toDouble(y);
                    List<String> stages = StageLabels.of(() -> cuda.forward(f, x, tokens, y));
                    String tag = " route " + route + ": " + stages + c.tag();
                    for (String kernel : new String[] {FouRAKernels.FORWARD_SMALL, FouRAKernels.PROJECT,
                        FouRAKernels.PROJECT_WIDE, FouRAKernels.EXPAND, FouRAKernels.PROJECT_TILED}) {
                        org.junit.jupiter.api.Assertions.assertFalse(stages.contains(kernel), kernel + tag);
                    }
                    assertEquals(2, stages.stream().filter(l -> l.startsWith("cublasSgemm")).count(), "SGEMMs" + tag);
                    assertTrue(stages.contains(FouRAKernels.GATE) || stages.contains(FouRAKernels.GATE_ELEMENTWISE),
                            "the gate kernel" + tag);
                    double err = TestData.accumulatedError(TestData.toDouble(y), before, contribution);
                    assertTrue(err < TestData.tolerance(DType.FLOAT32), "error " + err + tag);
                }
            });
        }
    }

    /**
     * Ranks past {@link FouRAKernels#MAX_GATE_RANK} (the gate kernels hold two components per thread of a 256-thread
     * block) are refused by prepare, from host and device arrays, naming the limit, before any device work (no
     * stage launches, where preparing r = 512 launches the folds); the CPU backend takes them.
     */
    @Test
    void ranksPastTheGateKernelsLimitAreRefusedBeforeAnyWork() {
        TestData data = new TestData();
        int dOut = 520;
        int dIn = 515;
        FouRASpec tooWide = FouRASpec.of(dOut, dIn, FouRAKernels.MAX_GATE_RANK + 1, Transform.DCT, Gate.NONE, 1f);
        FouRASpec widest = FouRASpec.of(dOut, dIn, FouRAKernels.MAX_GATE_RANK, Transform.DCT, Gate.NONE, 1f);
        float[] a = data.gaussian((int) tooWide.aLength());
        float[] b = data.gaussian((int) tooWide.bLength());
        String limit = "the CUDA backend takes ranks up to " + FouRAKernels.MAX_GATE_RANK;
        try (org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
             org.spectralpeft.cuda.DeviceBuffer da = cuda.context().upload(HostArray.float32(a));
             org.spectralpeft.cuda.DeviceBuffer db = cuda.context().upload(HostArray.float32(b))) {
            List<String> stages = StageLabels.of(() -> {
                IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                        IllegalArgumentException.class, () -> cuda.prepare(tooWide, a, b, null));
                assertTrue(e.getMessage().contains(limit), e.getMessage());
                e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                        () -> cuda.prepare(tooWide, da.array(), db.array(), null, stream));
                assertTrue(e.getMessage().contains(limit), e.getMessage());
            });
            assertTrue(stages.isEmpty(), "refused calls launched " + stages);
            int aLength = (int) widest.aLength();
            int bLength = (int) widest.bLength();
            List<String> prepared = StageLabels.of(() -> {
                try (FouRAFactors f = cuda.prepare(widest, java.util.Arrays.copyOf(a, aLength),
                        java.util.Arrays.copyOf(b, bLength), null)) {
                    assertEquals(FouRAKernels.MAX_GATE_RANK, f.spec().rank());
                }
            });
            assertTrue(!prepared.isEmpty(), "preparing the widest rank launches its folds" + data.tag());
        }
        try (FouRABackend cpu = org.spectralpeft.Backends.fouRACpu();
             FouRAFactors f = cpu.prepare(tooWide, a, b, null)) {
            assertEquals(FouRAKernels.MAX_GATE_RANK + 1, f.spec().rank());
        }
    }

    /**
     * The unfused path with x and y in every dtype: x widened for the SGEMM, the float32 product added into y
     * (accumulated in the SGEMM for float32, through the epilogue otherwise), against the reference.
     */
    @ParameterizedTest
    @EnumSource(DType.class)
    void wideRanksInEveryDtype(DType dtype) {
        Case c = new Case(190, 170, 160, Transform.DFT, Gate.FIXED);
        int tokens = 7;
        HostArray x = c.inputs(dtype, tokens);
        double[] delta = c.forward(TestData.toDouble(x), tokens);
        double rms = Math.sqrt(java.util.Arrays.stream(delta).map(v -> v * v).average().orElseThrow());
        float[] start = c.data.gaussian(tokens * 190);
        for (int i = 0; i < start.length; i++) {
            start[i] *= (float) rms; // y as large as the adapter's output, so that a lost sum shows
        }
        HostArray y = HostArray.of(dtype, start);
        double[] expected = TestData.toDouble(HostArray.of(dtype, start));
        for (int i = 0; i < expected.length; i++) {
            expected[i] += delta[i];
        }
        try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
            cuda.forward(f, x, tokens, y);
        }
        double err = TestData.relativeError(TestData.toDouble(y), expected);
        assertTrue(err < TestData.tolerance(dtype), "unfused forward in " + dtype + ": relative error " + err + c.tag());
    }

    /**
     * A mixed batch on device arrays (bfloat16 x, float16 y, on the caller's stream) gives the host call's bits;
     * an adapter too wide for the fused kernel is refused there, and joins the host call through its own path
     * (the same values as each token alone, up to the SGEMMs' blocking; the fused adapters' tokens bit for bit).
     */
    @Test
    void mixedBatchesOnDeviceArraysAndWideAdapters() {
        Case narrow = new Case(200, 170, 16, Transform.DFT, Gate.FIXED);
        Case other = new Case(200, 170, 5, Transform.DCT, Gate.ADAPTIVE);
        Case wide = new Case(200, 170, 160, Transform.DFT, Gate.NONE);
        int tokens = 21;
        int[] ids = new int[tokens];
        float[] xs = new float[tokens * 170];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 4 == 3 ? -1 : t % 2;
            Case c = ids[t] == 1 ? other : narrow;
            System.arraycopy(c.inputs(DType.BFLOAT16, 1).toFloats(), 0, xs, t * 170, 170);
        }
        HostArray x = HostArray.of(DType.BFLOAT16, xs);
        float[] y0 = narrow.data.gaussian(tokens * 200);
        try (org.spectralpeft.foura.FouRAAdapterPool pool = new org.spectralpeft.foura.FouRAAdapterPool(200, 170)) {
            pool.add(0, cuda.prepare(narrow.spec, narrow.a, narrow.b, narrow.gate));
            pool.add(1, cuda.prepare(other.spec, other.a, other.b, other.gate));
            HostArray hostY = HostArray.of(DType.FLOAT16, y0);
            cuda.forward(pool, ids, x, tokens, hostY);
            HostArray viaDevice = HostArray.of(DType.FLOAT16, y0);
            try (org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
                 org.spectralpeft.cuda.DeviceBuffer dx = cuda.context().upload(x);
                 org.spectralpeft.cuda.DeviceBuffer dy = cuda.context().upload(viaDevice)) {
                cuda.forward(pool, ids, dx.array(), tokens, dy.array(), stream);
                stream.synchronize();
                dy.copyTo(viaDevice);
                org.junit.jupiter.api.Assertions.assertArrayEquals(hostY.toFloats(), viaDevice.toFloats(),
                        "device-array mixed batch" + narrow.tag());

                pool.add(2, cuda.prepare(wide.spec, wide.a, wide.b, null));
                ids[5] = 2;
                ids[6] = 2;
                Throwable e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                        () -> cuda.forward(pool, ids, dx.array(), tokens, dy.array(), stream));
                assertTrue(e.getMessage().contains("width"), e.getMessage());
            }
            HostArray y = HostArray.of(DType.FLOAT16, y0);
            cuda.forward(pool, ids, x, tokens, y);
            float[] before = HostArray.of(DType.FLOAT16, y0).toFloats();
            for (int t = 0; t < tokens; t++) {
                HostArray alone = HostArray.of(DType.FLOAT16, java.util.Arrays.copyOfRange(before, t * 200, (t + 1) * 200));
                if (ids[t] >= 0) {
                    cuda.forward(pool.adapter(ids[t]), HostArray.of(DType.BFLOAT16, java.util.Arrays.copyOfRange(xs, t * 170,
                            (t + 1) * 170)), 1, alone);
                }
                float[] got = java.util.Arrays.copyOfRange(y.toFloats(), t * 200, (t + 1) * 200);
                String what = "token " + t + " (id " + ids[t] + ") of a batch with a wide adapter" + wide.tag();
                if (ids[t] == 2 || !mixedBatchBitwise()) {
                    // the single forward's products are SGEMMs, whose blocking may depend on the token count
                    double err = TestData.relativeError(TestData.toDouble(got), TestData.toDouble(alone.toFloats()));
                    assertTrue(err <= TestData.tolerance(DType.FLOAT16), what + ": " + err);
                } else {
                    org.junit.jupiter.api.Assertions.assertArrayEquals(alone.toFloats(), got, what);
                }
            }
        }
    }

    /**
     * A mixed batch whose tokens are one adapter's in one run of rows (with −1s before and after it) is the
     * single-adapter forward on that run: its bits, on host and device arrays, rows outside the run untouched;
     * one adapter whose tokens are not one run, or two adapters, take the mixed kernels (within the tolerance of
     * the single forward, bit for bit with it on the kernels).
     */
    @Test
    void oneAdaptersRunOfTokensIsTheSingleAdaptersForward() {
        int dOut = 128;
        int dIn = 64;
        Case c = new Case(dOut, dIn, 6, Transform.DFT, Gate.FIXED);
        Case other = new Case(dOut, dIn, 3, Transform.DCT, Gate.NONE);
        int tokens = 13;
        // rows of 256 and 512 bytes: the run starts at a 256-byte boundary in x and y, as the single call's arrays
        // do, so the SGEMMs of both see the same alignment (cuBLAS may pick its kernels by it)
        HostArray x = c.inputs(DType.FLOAT32, tokens);
        float[] y0 = c.data.gaussian(tokens * dOut);
        try (org.spectralpeft.foura.FouRAAdapterPool pool = new org.spectralpeft.foura.FouRAAdapterPool(dOut, dIn)) {
            pool.add(4, cuda.prepare(c.spec, c.a, c.b, c.gate));
            pool.add(8, cuda.prepare(other.spec, other.a, other.b, other.gate));
            int[] run = new int[tokens];
            java.util.Arrays.fill(run, -1);
            java.util.Arrays.fill(run, 3, 11, 4); // tokens 3 .. 10
            HostArray mixed = HostArray.float32(y0.clone());
            cuda.forward(pool, run, x, tokens, mixed);
            float[] runY = java.util.Arrays.copyOfRange(y0, 3 * dOut, 11 * dOut);
            HostArray single = HostArray.float32(runY);
            cuda.forward(pool.adapter(4), HostArray.float32(java.util.Arrays.copyOfRange(x.toFloats(), 3 * dIn, 11 * dIn)),
                    8, single);
            float[] got = mixed.toFloats();
            assertArrayEquals(single.toFloats(), java.util.Arrays.copyOfRange(got, 3 * dOut, 11 * dOut),
                    "the run, against the single forward on it" + c.tag());
            assertArrayEquals(java.util.Arrays.copyOfRange(y0, 0, 3 * dOut), java.util.Arrays.copyOfRange(got, 0, 3 * dOut),
                    "rows before the run");
            assertArrayEquals(java.util.Arrays.copyOfRange(y0, 11 * dOut, tokens * dOut),
                    java.util.Arrays.copyOfRange(got, 11 * dOut, tokens * dOut), "rows after the run");
            HostArray viaDevice = HostArray.float32(y0.clone());
            try (org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
                 org.spectralpeft.cuda.DeviceBuffer dx = cuda.context().upload(x);
                 org.spectralpeft.cuda.DeviceBuffer dy = cuda.context().upload(viaDevice)) {
                cuda.forward(pool, run, dx.array(), tokens, dy.array(), stream);
                stream.synchronize();
                dy.copyTo(viaDevice);
            }
            assertArrayEquals(got, viaDevice.toFloats(), "device arrays" + c.tag());

            int[] broken = run.clone();
            broken[6] = -1; // one adapter, two runs: the mixed kernels
            int[] two = run.clone();
            two[10] = 8; // two adapters: the mixed kernels
            for (int[] ids : new int[][] {broken, two}) {
                HostArray y = HostArray.float32(y0.clone());
                cuda.forward(pool, ids, x, tokens, y);
                float[] out = y.toFloats();
                for (int t = 0; t < tokens; t++) {
                    float[] before = java.util.Arrays.copyOfRange(y0, t * dOut, (t + 1) * dOut);
                    float[] row = java.util.Arrays.copyOfRange(out, t * dOut, (t + 1) * dOut);
                    if (ids[t] < 0) {
                        assertArrayEquals(before, row, "token " + t + " without an adapter");
                        continue;
                    }
                    HostArray alone = HostArray.float32(before);
                    cuda.forward(pool.adapter(ids[t]), HostArray.float32(java.util.Arrays.copyOfRange(x.toFloats(),
                            t * dIn, (t + 1) * dIn)), 1, alone);
                    String what = "token " + t + " of " + java.util.Arrays.toString(ids) + c.tag();
                    if (mixedBatchBitwise()) {
                        assertArrayEquals(alone.toFloats(), row, what);
                    } else {
                        double err = TestData.relativeError(TestData.toDouble(row), TestData.toDouble(alone.toFloats()));
                        assertTrue(err <= TestData.tolerance(DType.FLOAT32), what + ": " + err);
                    }
                }
            }
        }
    }

    /**
     * Runs of at least {@link CudaFouRA#MIXED_RUN_PROPERTY} consecutive rows of one adapter take the single-adapter
     * forward (its bits on each run), the other tokens the mixed kernels (the bits of the same batch with no run
     * long enough); −1 rows untouched. Rows of 256 and 512 bytes, so that every run starts 256-byte aligned.
     */
    @Test
    void longRunsOfOneAdapterTakeTheSingleForward() {
        int dOut = 128;
        int dIn = 64;
        Case c = new Case(dOut, dIn, 5, Transform.DCT, Gate.ADAPTIVE);
        Case other = new Case(dOut, dIn, 7, Transform.DFT, Gate.NONE);
        Case third = new Case(dOut, dIn, 3, Transform.DFT, Gate.FIXED);
        // adapter 2 first used by a short token, so its first long run is not its first token; adapter 3 only in
        // a long run
        int[] ids = {2, 1, 1, 1, 1, 1, 3, 3, 3, 3, 2, 1, -1, 2, 2, 2, 2, 2, 1, 1, 1, -1, 1, 2, 2, 2, 2};
        int[][] runs = {{1, 5}, {6, 4}, {13, 5}, {23, 4}}; // first row, length: runs of at least 4
        int tokens = ids.length;
        float[] xs = new float[tokens * dIn];
        for (int t = 0; t < tokens; t++) { // each token clear of its ADAPTIVE gate's threshold
            Case k = ids[t] == 2 ? other : ids[t] == 3 ? third : c;
            System.arraycopy(k.inputs(DType.FLOAT32, 1).toFloats(), 0, xs, t * dIn, dIn);
        }
        HostArray x = HostArray.float32(xs);
        float[] y0 = c.data.gaussian(tokens * dOut);
        String key = CudaFouRA.MIXED_RUN_PROPERTY;
        try (org.spectralpeft.foura.FouRAAdapterPool pool = new org.spectralpeft.foura.FouRAAdapterPool(dOut, dIn)) {
            pool.add(1, cuda.prepare(c.spec, c.a, c.b, c.gate));
            pool.add(2, cuda.prepare(other.spec, other.a, other.b, other.gate));
            pool.add(3, cuda.prepare(third.spec, third.a, third.b, third.gate));
            HostArray kernelsOnly = HostArray.float32(y0.clone());
            HostArray withRuns = HostArray.float32(y0.clone());
            HostArray viaDevice = HostArray.float32(y0.clone());
            System.setProperty(key, String.valueOf(Integer.MAX_VALUE));
            try (org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
                 org.spectralpeft.cuda.DeviceBuffer dx = cuda.context().upload(x);
                 org.spectralpeft.cuda.DeviceBuffer dy = cuda.context().upload(viaDevice)) {
                cuda.forward(pool, ids, x, tokens, kernelsOnly);
                System.setProperty(key, "4");
                cuda.forward(pool, ids, x, tokens, withRuns);
                cuda.forward(pool, ids, dx.array(), tokens, dy.array(), stream);
                stream.synchronize();
                dy.copyTo(viaDevice);
            } finally {
                System.clearProperty(key);
            }
            assertArrayEquals(withRuns.toFloats(), viaDevice.toFloats(), "device arrays" + c.tag());
            float[] want = kernelsOnly.toFloats();
            for (int[] run : runs) {
                int first = run[0];
                int count = run[1];
                HostArray single = HostArray.float32(java.util.Arrays.copyOfRange(y0, first * dOut, (first + count) * dOut));
                cuda.forward(pool.adapter(ids[first]), HostArray.float32(java.util.Arrays.copyOfRange(xs, first * dIn,
                        (first + count) * dIn)), count, single);
                System.arraycopy(single.toFloats(), 0, want, first * dOut, count * dOut);
            }
            assertArrayEquals(want, withRuns.toFloats(), "runs through the single forward, the rest through the kernels"
                    + c.tag());
            for (int t = 0; t < tokens; t++) {
                if (ids[t] < 0) {
                    assertArrayEquals(java.util.Arrays.copyOfRange(y0, t * dOut, (t + 1) * dOut),
                            java.util.Arrays.copyOfRange(withRuns.toFloats(), t * dOut, (t + 1) * dOut), "token " + t);
                }
            }
        }
    }

    /**
     * {@code -Dspectralpeft.foura.forward=tiled} takes the single forward through foura_project_tiled (read per
     * call): within the tolerance of the reference, on host and device arrays alike (the same bits).
     */
    @Test
    void theTiledForwardPathServesTheBackend() {
        Case c = new Case(96, 300, 16, Transform.DFT, Gate.FIXED);
        int tokens = 70;
        HostArray x = c.inputs(DType.BFLOAT16, tokens);
        double[] contribution = c.forward(TestData.toDouble(x), tokens);
        float[] y0 = c.data.gaussian(tokens * 96);
        SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "tiled", () -> {
            try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
                HostArray y = HostArray.of(DType.FLOAT16, y0);
                double[] before = TestData.toDouble(y);
                cuda.forward(f, x, tokens, y);
                double err = TestData.accumulatedError(TestData.toDouble(y), before, contribution);
                assertTrue(err < TestData.tolerance(DType.FLOAT16), "tiled forward: error " + err + c.tag());
                assertArrayEquals(y.toFloats(), viaDeviceArrays(f, x, tokens, HostArray.of(DType.FLOAT16, y0)),
                        "device arrays" + c.tag());
            }
        });
    }
    /**
     * {@code -Dspectralpeft.foura.forward=small} takes the single forward at up to 16 tokens through
     * foura_forward_small (one launch) and more tokens through the SGEMMs: each within the tolerance of the
     * reference, host and device arrays the same bits, and the route visible in the launches.
     */
    @Test
    void theSmallForwardPathServesTheBackendUpTo16Tokens() {
        Case c = new Case(96, 300, 16, Transform.DCT, Gate.ADAPTIVE);
        for (int tokens : new int[] {1, 16, 17}) {
            HostArray x = c.inputs(DType.FLOAT16, tokens);
            double[] contribution = c.forward(TestData.toDouble(x), tokens);
            float[] y0 = c.data.gaussian(tokens * 96);
            int t = tokens;
            SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "small", () -> {
                try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
                    HostArray y = HostArray.of(DType.FLOAT32, y0);
                    double[] before = TestData.toDouble(y);
                    List<String> stages = StageLabels.of(() -> cuda.forward(f, x, t, y));
                    assertEquals(t <= FouRAKernels.SMALL_TOKENS, stages.contains(FouRAKernels.FORWARD_SMALL),
                            "T=" + t + ": " + stages);
                    double err = TestData.accumulatedError(TestData.toDouble(y), before, contribution);
                    // the reference takes the float16 x as rounded, so only float32 arithmetic separates y from it
                    assertTrue(err < TestData.tolerance(DType.FLOAT32), "small route, T=" + t + ": error " + err
                            + c.tag());
                    assertArrayEquals(y.toFloats(), viaDeviceArrays(f, x, t, HostArray.of(DType.FLOAT32, y0)),
                            "device arrays, T=" + t + c.tag());
                }
            });
        }
    }

    /**
     * An x the small forward cannot read four elements at a time (a slice one element into a buffer, d_in a multiple
     * of 4) takes the SGEMMs under {@code -Dspectralpeft.foura.forward=small}, with the reference's result.
     */
    @Test
    void theSmallPathLeavesAnUnalignedXToTheSgemms() {
        Case c = new Case(96, 300, 4, Transform.DFT, Gate.NONE);
        int tokens = 3;
        float[] xs = c.inputs(DType.FLOAT32, tokens).toFloats();
        double[] contribution = c.forward(TestData.toDouble(xs), tokens);
        float[] padded = new float[xs.length + 1];
        System.arraycopy(xs, 0, padded, 1, xs.length);
        float[] y0 = c.data.gaussian(tokens * 96);
        SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "small", () -> {
            try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate);
                 org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
                 org.spectralpeft.cuda.DeviceBuffer dx = cuda.context().upload(HostArray.float32(padded));
                 org.spectralpeft.cuda.DeviceBuffer dy = cuda.context().upload(HostArray.float32(y0))) {
                org.spectralpeft.cuda.DeviceArray shifted = dx.array().slice(1, xs.length);
                List<String> stages = StageLabels.of(() -> {
                    cuda.forward(f, shifted, tokens, dy.array(), stream);
                    stream.synchronize();
                });
                org.junit.jupiter.api.Assertions.assertFalse(stages.contains(FouRAKernels.FORWARD_SMALL), "an unaligned x: " + stages);
                org.junit.jupiter.api.Assertions.assertFalse(stages.isEmpty(), "the forward ran");
                HostArray y = HostArray.float32(new float[y0.length]);
                dy.copyTo(y);
                double err = TestData.accumulatedError(TestData.toDouble(y), TestData.toDouble(HostArray.float32(y0)),
                        contribution);
                assertTrue(err < TestData.tolerance(DType.FLOAT32), "unaligned x: error " + err + c.tag());
            }
        });
    }

    /**
     * With {@link CudaFouRA#FORWARD_PROPERTY} unset the forward takes foura_forward_small exactly where tokens × z's
     * width is at most 32 (r = 16 DFT at T = 1, DCT at T ≤ 2, r = 32 DCT at T = 1) and the tokens at most 16 (r = 1
     * DCT at T = 16 but not 17), and the SGEMMs elsewhere, each within
     * the reference's tolerance, host and device arrays the same bits; {@code gemm} keeps even T = 1 on the SGEMMs.
     */
    @Test
    void theDefaultRouteTakesTheSmallKernelForTheSmallestForwards() {
        Object[][] cases = {
            {Transform.DFT, 16, 1, true}, {Transform.DFT, 16, 2, false}, {Transform.DCT, 16, 2, true},
            {Transform.DCT, 16, 3, false}, {Transform.DCT, 32, 1, true}, {Transform.DFT, 32, 1, false},
            {Transform.DCT, 1, 16, true}, {Transform.DCT, 1, 17, false},
        };
        for (Object[] k : cases) {
            Case c = new Case(96, 300, (Integer) k[1], (Transform) k[0], Gate.FIXED);
            int tokens = (Integer) k[2];
            boolean small = (Boolean) k[3];
            HostArray x = c.inputs(DType.BFLOAT16, tokens);
            double[] contribution = c.forward(TestData.toDouble(x), tokens);
            float[] y0 = c.data.gaussian(tokens * 96);
            for (String route : new String[] {null, "gemm"}) {
                SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, route, () -> {
                    try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
                        HostArray y = HostArray.of(DType.FLOAT32, y0);
                        double[] before = TestData.toDouble(y);
                        List<String> stages = StageLabels.of(() -> cuda.forward(f, x, tokens, y));
                        String tag = " route " + route + ", T=" + tokens + c.tag();
                        assertEquals(small && route == null, stages.contains(FouRAKernels.FORWARD_SMALL),
                                stages + tag);
                        assertTrue(!stages.isEmpty(), "the forward ran" + tag);
                        double err = TestData.accumulatedError(TestData.toDouble(y), before, contribution);
                        // the reference takes the bfloat16 x as rounded: y (float32) within float32's tolerance
                        assertTrue(err < TestData.tolerance(DType.FLOAT32), "error " + err + tag);
                        assertArrayEquals(y.toFloats(), viaDeviceArrays(f, x, tokens, HostArray.of(DType.FLOAT32, y0)),
                                "device arrays" + tag);
                    }
                });
            }
        }
    }

    /**
     * {@link CudaFouRA#SPLIT_PROPERTY} = 2, 4 or 8 splits the SGEMM route's z = x·Âᵀ over d_in (one strided-batched
     * SGEMM, the parts added by the gate kernel, here the ADAPTIVE gate, whose logits read the sums): within the
     * reference's tolerance, host and device arrays the same bits, the batched product in the launches; a d_in the
     * split would cut into parts under 256 is not split; a value that is not a split is refused before any work.
     */
    @Test
    void theSplitProductAddsItsPartsBeforeTheGate() {
        for (int[] k : new int[][] {{512, 2}, {1024, 4}, {768, 4}}) {
            int dIn = k[0];
            int parts = k[1];
            boolean split = dIn / parts >= ForwardRoute.MIN_SPLIT_LENGTH;
            Case c = new Case(96, dIn, 16, parts == 2 ? Transform.DCT : Transform.DFT, Gate.ADAPTIVE);
            int tokens = 37;
            HostArray x = c.inputs(DType.BFLOAT16, tokens);
            double[] contribution = c.forward(TestData.toDouble(x), tokens);
            float[] y0 = c.data.gaussian(tokens * 96);
            SystemProperty.with(CudaFouRA.SPLIT_PROPERTY, String.valueOf(parts), () -> {
                try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
                    HostArray y = HostArray.of(DType.FLOAT32, y0);
                    double[] before = TestData.toDouble(y);
                    List<String> stages = StageLabels.of(() -> cuda.forward(f, x, tokens, y));
                    String tag = " split " + parts + ", d_in " + dIn + c.tag();
                    assertEquals(split, stages.stream().anyMatch(l -> l.startsWith("cublasSgemm")
                            && l.endsWith("× " + parts)), stages + tag);
                    double err = TestData.accumulatedError(TestData.toDouble(y), before, contribution);
                    // the reference takes the bfloat16 x as rounded: y (float32) within float32's tolerance
                    assertTrue(err < TestData.tolerance(DType.FLOAT32), "error " + err + tag);
                    assertArrayEquals(y.toFloats(), viaDeviceArrays(f, x, tokens, HostArray.of(DType.FLOAT32, y0)),
                            "device arrays" + tag);
                }
            });
        }
        Case c = new Case(96, 300, 4, Transform.DFT, Gate.NONE);
        HostArray x = c.inputs(DType.FLOAT32, 2);
        float[] y0 = c.data.gaussian(2 * 96);
        HostArray y = HostArray.float32(y0.clone());
        SystemProperty.with(CudaFouRA.SPLIT_PROPERTY, "3", () -> {
            try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
                IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                        IllegalArgumentException.class, () -> cuda.forward(f, x, 2, y));
                assertTrue(e.getMessage().contains(CudaFouRA.SPLIT_PROPERTY + "=3 is not a split"), e.getMessage());
            }
        });
        assertArrayEquals(y0, y.toFloats(), "a refused call leaves y alone");
    }

    /**
     * Under {@link CudaFouRA#SPLIT_PROPERTY} the backward splits z, ∂L/∂y·B̂ (over d_in and d_out, summed by the gate
     * pass, here the ADAPTIVE gate's) and ∂Â, ∂B̂ᵀ (over the tokens, summed by spectralpeft_sum_parts) where the parts
     * are at least 256 long (all four in 2 parts here; in 4, z alone): every gradient within float32 rounding of the
     * unsplit backward's (held to the reference elsewhere), the batched products and the sums in the launches.
     */
    @Test
    void theSplitBackwardAddsItsPartsInOrder() {
        Case c = new Case(512, 1024, 4, Transform.DFT, Gate.ADAPTIVE);
        int tokens = 512;
        HostArray x = c.inputs(DType.FLOAT32, tokens);
        HostArray gy = HostArray.float32(c.data.gaussian(tokens * 512));
        float[] gx0 = c.data.gaussian(tokens * 1024);
        try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
            float[][] plain = backwardOf(f, x, gy, tokens, gx0);
            for (int parts : new int[] {2, 4}) {
                boolean tokensSplit = tokens / parts >= ForwardRoute.MIN_SPLIT_LENGTH;
                float[][][] split = new float[1][][];
                List<String> stages = new java.util.ArrayList<>();
                SystemProperty.with(CudaFouRA.SPLIT_PROPERTY, String.valueOf(parts),
                        () -> stages.addAll(StageLabels.of(() -> split[0] = backwardOf(f, x, gy, tokens, gx0))));
                String tag = " split " + parts + c.tag();
                long splitProducts = (1024 / parts >= ForwardRoute.MIN_SPLIT_LENGTH ? 1 : 0)
                        + (512 / parts >= ForwardRoute.MIN_SPLIT_LENGTH ? 1 : 0) + (tokensSplit ? 2 : 0);
                assertEquals(splitProducts, stages.stream().filter(l -> l.startsWith("cublasSgemm")
                        && l.endsWith("× " + parts)).count(), stages + tag);
                assertEquals(tokensSplit, stages.contains(org.spectralpeft.cuda.internal.CommonKernels.SUM_PARTS),
                        stages + tag);
                String[] names = {"gradA", "gradB", "gradGate", "gradX"};
                for (int i = 0; i < names.length; i++) {
                    double err = TestData.relativeError(TestData.toDouble(split[0][i]), TestData.toDouble(plain[i]));
                    assertTrue(err < 1e-5, names[i] + ": relative difference " + err + tag);
                }
            }
        }
    }

    /**
     * {@link CudaFouRA#EXPAND_PROPERTY} = kernel runs the SGEMM route's products into y and ∂x on foura_add_product:
     * the forward within the reference's tolerance for every dtype of y, with d_out a multiple of 4 (four elements a
     * load) and not (one at a time), tokens past one tile of 64 (the last one short), z's width past one step of 32
     * (r = 20, DFT: 40); host and device arrays the same bits; the kernel in the launches and one SGEMM (z) instead of
     * two. The backward's ∂x within float32 rounding of cuBLAS's and every other gradient the same bits. A value that
     * is not a route is refused before any work.
     */
    @Test
    void theProductsIntoYAndGradXRunOnTheKernelWhereAsked() {
        int tokens = 70;
        for (int dOut : new int[] {96, 81}) {
            for (DType dtype : DType.values()) {
                Case c = new Case(dOut, 130, 20, Transform.DFT, Gate.FIXED);
                HostArray x = c.inputs(DType.FLOAT32, tokens);
                double[] contribution = c.forward(TestData.toDouble(x), tokens);
                float[] y0 = c.data.gaussian(tokens * dOut);
                SystemProperty.with(CudaFouRA.EXPAND_PROPERTY, "kernel", () -> {
                    try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
                        HostArray y = HostArray.of(dtype, y0);
                        double[] before = TestData.toDouble(y);
                        List<String> stages = StageLabels.of(() -> cuda.forward(f, x, tokens, y));
                        String tag = " " + dtype + ", d_out " + dOut + c.tag();
                        assertTrue(stages.contains(FouRAKernels.ADD_PRODUCT), stages + tag);
                        assertEquals(1, stages.stream().filter(l -> l.startsWith("cublasSgemm")).count(), stages + tag);
                        double err = TestData.accumulatedError(TestData.toDouble(y), before, contribution);
                        assertTrue(err < TestData.tolerance(dtype), "error " + err + tag);
                        assertArrayEquals(y.toFloats(), viaDeviceArrays(f, x, tokens, HostArray.of(dtype, y0)),
                                "device arrays" + tag);
                    }
                });
            }
        }
        Case c = new Case(81, 130, 20, Transform.DCT, Gate.ADAPTIVE);
        HostArray x = c.inputs(DType.FLOAT32, tokens);
        HostArray gy = HostArray.float32(c.data.gaussian(tokens * 81));
        float[] gx0 = c.data.gaussian(tokens * 130);
        try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
            float[][] gemm = backwardOf(f, x, gy, tokens, gx0);
            float[][][] kernel = new float[1][][];
            List<String> stages = new java.util.ArrayList<>();
            SystemProperty.with(CudaFouRA.EXPAND_PROPERTY, "kernel",
                    () -> stages.addAll(StageLabels.of(() -> kernel[0] = backwardOf(f, x, gy, tokens, gx0))));
            assertTrue(stages.contains(FouRAKernels.ADD_PRODUCT), stages + c.tag());
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(gemm[i], kernel[0][i], "gradient " + i + " does not depend on the route" + c.tag());
            }
            double err = TestData.relativeError(TestData.toDouble(kernel[0][3]), TestData.toDouble(gemm[3]));
            assertTrue(err < 1e-5, "∂x: relative difference " + err + c.tag());
            HostArray y = HostArray.float32(c.data.gaussian(tokens * 81));
            float[] y0 = y.toFloats();
            SystemProperty.with(CudaFouRA.EXPAND_PROPERTY, "cublas", () -> {
                IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                        IllegalArgumentException.class, () -> cuda.forward(f, x, tokens, y));
                assertTrue(e.getMessage().contains(CudaFouRA.EXPAND_PROPERTY + "=cublas is not a route"),
                        e.getMessage());
            });
            assertArrayEquals(y0, y.toFloats(), "a refused call leaves y alone");
        }
    }

    /** gradA, gradB, gradGate and gradX (from gx0) of one host-array backward. */
    private static float[][] backwardOf(FouRAFactors f, HostArray x, HostArray gy, int tokens, float[] gx0) {
        FouRASpec spec = f.spec();
        float[] gradA = new float[Math.toIntExact(spec.aLength())];
        float[] gradB = new float[Math.toIntExact(spec.bLength())];
        float[] gradGate = new float[Math.toIntExact(spec.gateLength())];
        HostArray gradX = HostArray.float32(gx0.clone());
        cuda.backward(f, x, gy, tokens, gradA, gradB, gradGate, gradX);
        return new float[][] {gradA, gradB, gradGate, gradX.toFloats()};
    }

    /**
     * A value of {@link CudaFouRA#FORWARD_PROPERTY} that is not a route is refused by the forward, the combination
     * and a mixed batch, on host and device arrays, naming the property, before any work: y keeps its values.
     */
    @Test
    void anUnknownForwardRouteIsRefusedBeforeAnyWork() {
        Case c = new Case(96, 300, 4, Transform.DFT, Gate.NONE);
        HostArray x = c.inputs(DType.FLOAT32, 2);
        float[] y0 = c.data.gaussian(2 * 96);
        SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "fast", () -> {
            try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate);
                 FouRAAdapterPool pool = new FouRAAdapterPool(c.spec.dOut(), c.spec.dIn());
                 org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
                 org.spectralpeft.cuda.DeviceBuffer dx = cuda.context().upload(x);
                 org.spectralpeft.cuda.DeviceBuffer dy = cuda.context().upload(HostArray.float32(y0))) {
                pool.add(7, f);
                HostArray y = HostArray.float32(y0.clone());
                List<org.junit.jupiter.api.function.Executable> calls = List.of(
                        () -> cuda.forward(f, x, 2, y),
                        () -> cuda.forward(f, dx.array(), 2, dy.array(), stream),
                        () -> cuda.combine(new FouRAFactors[] {f}, new float[] {1f}, x, 2, y),
                        () -> cuda.forward(pool, new int[] {7, 7}, x, 2, y),
                        () -> cuda.forward(pool, new int[] {7, 7}, dx.array(), 2, dy.array(), stream));
                for (org.junit.jupiter.api.function.Executable call : calls) {
                    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                            IllegalArgumentException.class, call);
                    assertTrue(e.getMessage().contains(CudaFouRA.FORWARD_PROPERTY + "=fast is not a route"),
                            e.getMessage());
                }
                stream.synchronize();
                assertArrayEquals(y0, y.toFloats(), "host y unchanged");
                HostArray back = HostArray.float32(new float[y0.length]);
                dy.copyTo(back);
                assertArrayEquals(y0, back.toFloats(), "device y unchanged");
            }
        });
    }

    /** The forward through the device-array entry point on a stream of its own: y's values after it. */
    private static float[] viaDeviceArrays(FouRAFactors f, HostArray x, int tokens, HostArray y) {
        try (org.spectralpeft.cuda.CudaStream stream = cuda.context().createStream();
             org.spectralpeft.cuda.DeviceBuffer dx = cuda.context().upload(x);
             org.spectralpeft.cuda.DeviceBuffer dy = cuda.context().upload(y)) {
            cuda.forward(f, dx.array(), tokens, dy.array(), stream);
            stream.synchronize();
            dy.copyTo(y);
        }
        return y.toFloats();
    }
}
