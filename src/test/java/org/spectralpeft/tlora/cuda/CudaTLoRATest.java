package org.spectralpeft.tlora.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.fourierft.cuda.RequiresCuda;
import org.spectralpeft.tlora.TLoRABackend;
import org.spectralpeft.tlora.TLoRABackendContract;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRAReference;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.TLoRASpec.Residual;
import org.spectralpeft.tlora.cpu.CpuTLoRA;

/**
 * The TLoRA contract on the CUDA backend (on the emulator in CI), plus its own limits: a layer at the authors'
 * SDXL shape against the CPU backend, a borrowed context, and the refusal of what the kernels do not hold (more than
 * 8 factors, ring ranks above 16, a ring too large for shared memory, a gradient matrix past an int index).
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaTLoRATest extends TLoRABackendContract {
    private static CudaTLoRA cuda;

    @BeforeAll
    static void open() {
        cuda = CudaTLoRA.open();
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    @Override
    protected TLoRABackend backend() {
        return cuda;
    }

    @Override
    protected TLoRABackend another() {
        return CudaTLoRA.open();
    }

    /** 320 = [4, 8, 10] at R = 4 with a TTM residual: forward and backward agree with the CPU backend. */
    @Test
    void anAuthorsShapeAgreesWithTheCpuBackend() {
        TestData data = new TestData();
        int[] shape = TLoRASpec.authorsShape(320);
        TLoRASpec spec = TLoRASpec.of(shape, shape, 4, Residual.TTM, 2, 1f);
        float[][] cores = new float[spec.inOrder()][];
        for (int d = 0; d < cores.length; d++) {
            cores[d] = data.gaussian(spec.transformCoreLength(d));
        }
        float[][] residual = new float[spec.residualArrays()][];
        for (int k = 0; k < residual.length; k++) {
            residual[k] = data.gaussian((int) spec.residualLength(k));
        }
        TLoRAParameters p = TLoRAParameters.of(spec, cores, residual);
        int tokens = 37;
        HostArray w0 = HostArray.of(DType.BFLOAT16, data.gaussian(320 * 320));
        HostArray x = HostArray.float32(data.gaussian(tokens * 320));
        HostArray g = HostArray.float32(data.gaussian(tokens * 320));
        float[] yCuda = new float[tokens * 320];
        float[] yCpu = new float[tokens * 320];
        float[] gxCuda = new float[tokens * 320];
        float[] gxCpu = new float[tokens * 320];
        TLoRAParameters gradCuda;
        TLoRAParameters gradCpu;
        try (CpuTLoRA cpu = new CpuTLoRA()) {
            cuda.forward(spec, p, w0, x, tokens, HostArray.float32(yCuda));
            cpu.forward(spec, p, w0, x, tokens, HostArray.float32(yCpu));
            gradCuda = cuda.backward(spec, p, w0, x, g, tokens, HostArray.float32(gxCuda));
            gradCpu = cpu.backward(spec, p, w0, x, g, tokens, HostArray.float32(gxCpu));
        }
        double[] ref = TLoRAReference.forward(spec, p, TestData.toDouble(w0), TestData.toDouble(x), tokens);
        double err = TestData.relativeError(TestData.toDouble(HostArray.float32(yCuda)), ref);
        assertTrue(err < 1e-5, "forward error " + err + data.tag());
        assertClose(gxCpu, gxCuda, "gradX", data);
        for (int d = 0; d < spec.inOrder(); d++) {
            assertClose(gradCpu.transformCore(d), gradCuda.transformCore(d), "transform core " + d, data);
        }
        for (int k = 0; k < spec.residualArrays(); k++) {
            assertClose(gradCpu.residual(k), gradCuda.residual(k), "residual " + k, data);
        }
    }

    /**
     * Ring ranks outside the contract's 1, 2 and 4, which take other code in the apply kernel (8: two outputs per
     * thread; 3: the generic step) and other shapes of the gradients' GEMMs: forward and materialize against the
     * float64 reference, the gradients against the CPU backend, a three-factor TTM residual with the other rank.
     */
    @ParameterizedTest
    @CsvSource({"3, 8", "8, 3"})
    void otherRingRanksAgreeWithTheReference(int ring, int rank) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {2, 3, 2}, new int[] {3, 2, 4}, ring, Residual.TTM, rank, 1.2f);
        TLoRAParameters p = random(spec, data);
        int tokens = 5;
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        HostArray w0 = HostArray.float32(data.gaussian(dOut * dIn));
        HostArray x = HostArray.float32(data.gaussian(tokens * dIn));
        HostArray g = HostArray.float32(data.gaussian(tokens * dOut));
        float[] y0 = new float[tokens * dOut];
        cuda.forward(spec, p, w0, x, tokens, HostArray.float32(y0));
        double err = TestData.relativeError(TestData.toDouble(HostArray.float32(y0)),
                TLoRAReference.forward(spec, p, TestData.toDouble(w0), TestData.toDouble(x), tokens));
        assertTrue(err < 1e-5, "forward error " + err + " " + spec + data.tag());
        HostArray w = TestData.poisoned(DType.FLOAT32, dOut * dIn);
        cuda.materialize(spec, p, w0, w);
        err = TestData.relativeError(TestData.toDouble(w), TLoRAReference.weight(spec, p, TestData.toDouble(w0)));
        assertTrue(err < 1e-5, "materialize error " + err + " " + spec + data.tag());
        float[] gxCuda = new float[tokens * dIn];
        float[] gxCpu = new float[tokens * dIn];
        TLoRAParameters gradCuda = cuda.backward(spec, p, w0, x, g, tokens, HostArray.float32(gxCuda));
        TLoRAParameters gradCpu;
        try (CpuTLoRA cpu = new CpuTLoRA()) {
            gradCpu = cpu.backward(spec, p, w0, x, g, tokens, HostArray.float32(gxCpu));
        }
        assertClose(gxCpu, gxCuda, "gradX", data);
        for (int d = 0; d < spec.inOrder(); d++) {
            assertClose(gradCpu.transformCore(d), gradCuda.transformCore(d), "transform core " + d, data);
        }
        for (int k = 0; k < spec.residualArrays(); k++) {
            assertClose(gradCpu.residual(k), gradCuda.residual(k), "residual " + k, data);
        }
    }

    private static void assertClose(float[] expected, float[] actual, String what, TestData data) {
        double err = TestData.relativeError(TestData.toDouble(HostArray.float32(actual)),
                TestData.toDouble(HostArray.float32(expected)));
        assertTrue(err < 1e-4, what + ": CUDA against CPU, relative error " + err + data.tag());
    }

    /** The device-array calls queue the host calls' work: the same bits, every residual; bad arguments first. */
    @ParameterizedTest
    @EnumSource(Residual.class)
    void deviceArrayCallsEqualTheHostCalls(Residual kind) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {3, 5}, new int[] {4, 3}, 2, kind, 3, 0.8f);
        TLoRAParameters p = random(spec, data);
        int tokens = 7;
        HostArray w0 = HostArray.of(DType.FLOAT16, data.gaussian(spec.dOut() * spec.dIn()));
        HostArray x = HostArray.of(DType.BFLOAT16, data.gaussian(tokens * spec.dIn()));
        HostArray g = HostArray.float32(data.gaussian(tokens * spec.dOut()));
        float[] y0 = data.gaussian(tokens * spec.dOut());
        float[] gx0 = data.gaussian(tokens * spec.dIn());
        HostArray yHost = HostArray.float32(y0.clone());
        HostArray gxHost = HostArray.float32(gx0.clone());
        HostArray wHost = HostArray.allocate(DType.BFLOAT16, spec.dOut() * spec.dIn());
        cuda.forward(spec, p, w0, x, tokens, yHost);
        TLoRAParameters gradHost = cuda.backward(spec, p, w0, x, g, tokens, gxHost);
        cuda.materialize(spec, p, w0, wHost);
        CudaContext context = cuda.context();
        try (TLoRADeviceParameters dp = cuda.prepare(spec, p);
             CudaStream stream = context.createStream();
             DeviceBuffer dw0 = context.upload(w0);
             DeviceBuffer dx = context.upload(x);
             DeviceBuffer dg = context.upload(g);
             DeviceBuffer dy = context.upload(HostArray.float32(y0.clone()));
             DeviceBuffer dgx = context.upload(HostArray.float32(gx0.clone()));
             DeviceBuffer dw = context.allocate(DType.BFLOAT16, spec.dOut() * spec.dIn())) {
            cuda.forward(dp, dw0.array(), dx.array(), tokens, dy.array(), stream);
            TLoRAParameters gradDevice = cuda.backward(dp, dw0.array(), dx.array(), dg.array(), tokens, dgx.array(), stream);
            cuda.materialize(dp, dw0.array(), dw.array(), stream);
            stream.synchronize();
            assertArrayEquals(yHost.floats(), download(dy), "forward" + data.tag());
            assertArrayEquals(gxHost.floats(), download(dgx), "gradX" + data.tag());
            HostArray w = HostArray.allocate(DType.BFLOAT16, spec.dOut() * spec.dIn());
            dw.copyTo(w);
            assertArrayEquals(wHost.toFloats(), w.toFloats(), "materialize" + data.tag());
            for (int d = 0; d < spec.inOrder(); d++) {
                assertArrayEquals(gradHost.transformCore(d), gradDevice.transformCore(d), "core " + d + data.tag());
            }
            for (int k = 0; k < spec.residualArrays(); k++) {
                assertArrayEquals(gradHost.residual(k), gradDevice.residual(k), "residual " + k + data.tag());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cuda.forward(dp, dw0.array(), dx.array(), tokens + 1, dy.array(), stream));
            assertTrue(e.getMessage().contains("x has"), e.getMessage());
            try (CudaTLoRA other = CudaTLoRA.open(context)) {
                e = assertThrows(IllegalArgumentException.class,
                        () -> other.forward(dp, dw0.array(), dx.array(), tokens, dy.array(), stream));
                assertTrue(e.getMessage().contains("another backend"), e.getMessage());
            }
            dp.close();
            assertThrows(IllegalStateException.class,
                    () -> cuda.forward(dp, dw0.array(), dx.array(), tokens, dy.array(), stream));
        }
    }

    private static float[] download(DeviceBuffer b) {
        HostArray h = HostArray.allocate(b.array().dtype(), (int) b.array().length());
        b.copyTo(h);
        return h.toFloats();
    }

    /**
     * The unmerged forward's device scratch at the SDXL shape 1280 = [8, 10, 16]: with fewer tokens than d_out it
     * holds x·Tᵀ and the float32 result (tokens × (d_in + d_out)), nothing of d_in × d_in; with more, W0·T
     * (d_out × d_in) replaces x·Tᵀ. Peak of the device's memory pool over the call, as the driver counts it.
     */
    @Test
    void theForwardHoldsNoDInByDInBuffer() {
        TestData data = new TestData();
        int[] shape = TLoRASpec.authorsShape(1280);
        TLoRASpec spec = TLoRASpec.of(shape, shape, 1, Residual.LORA, 4, 1f);
        TLoRAParameters p = TLoRAParameters.initial(spec, new Random(data.seed));
        CudaContext context = cuda.context();
        long dIn = spec.dIn();
        for (int tokens : new int[] {3, 1300}) {
            try (TLoRADeviceParameters dp = cuda.prepare(spec, p);
                 CudaStream stream = context.createStream();
                 DeviceBuffer w0 = context.upload(HostArray.float32(data.gaussian(spec.dOut() * spec.dIn())));
                 DeviceBuffer x = context.upload(HostArray.float32(data.gaussian(tokens * spec.dIn())));
                 DeviceBuffer y = context.allocate(DType.FLOAT32, (long) tokens * spec.dOut())) {
                stream.synchronize();
                context.resetPoolUsedHigh();
                long before = context.poolUsedHighBytes();
                cuda.forward(dp, w0.array(), x.array(), tokens, y.array(), stream);
                stream.synchronize();
                long peak = context.poolUsedHighBytes() - before;
                long expected = tokens <= spec.dOut() ? 4L * tokens * (dIn + spec.dOut()) + 4L * tokens * spec.rank()
                        : 4L * spec.dOut() * dIn + 4L * tokens * spec.dOut() + 4L * tokens * spec.rank();
                long slack = 4 * 256 * 4; // the allocator's 256-byte alignment of each buffer
                System.out.printf("TLoRA forward, %d tokens at %d x %d: peak scratch %d bytes (d_in x d_in would be %d)%n",
                        tokens, spec.dOut(), dIn, peak, 4 * dIn * dIn);
                assertTrue(peak <= expected + slack, tokens + " tokens: peak scratch " + peak + " > " + expected);
                if (tokens <= spec.dOut()) {
                    assertTrue(peak < 4 * dIn * dIn / 16, "a few tokens hold far less than T would: " + peak);
                }
            }
        }
    }

    /**
     * T through its row panels, within a scratch budget: with room for one value of the first input digit the
     * forward's scratch stays well below d_in × d_in floats (one panel, its unpermuted copy and core 1's other
     * products); with room for two values of eight, panels of two; by default T whole. Each way the forward and
     * ∂x (through Tᵀ's panels) agree with the CPU backend's, at an authors' shape with R = 4.
     */
    @ParameterizedTest
    @CsvSource({"1", "2", "0"})
    void thePanelsOfTStayWithinTheirBudget(int valuesPerPanel) {
        TestData data = new TestData();
        int[] shape = TLoRASpec.authorsShape(1280); // [8, 10, 16]: 8 values of the first input digit
        TLoRASpec spec = TLoRASpec.of(shape, shape, 4, Residual.LORA, 4, 1f);
        TLoRAParameters p = random(spec, data);
        CudaContext context = cuda.context();
        long dIn = spec.dIn();
        long valueBytes = 4L * dIn / shape[0] * dIn;
        assertEquals(shape[0], CudaTLoRA.bandValues(shape[0], valueBytes, CudaTLoRA.DEFAULT_PANEL_BYTES),
                "T whole by default at 1280");
        int tokens = 3;
        HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
        HostArray x = HostArray.float32(data.gaussian(tokens * spec.dIn()));
        HostArray g = HostArray.float32(data.gaussian(tokens * spec.dOut()));
        float[] y = new float[tokens * spec.dOut()];
        float[] gradX = new float[tokens * spec.dIn()];
        String key = "spectralpeft.tlora.cuda.panelBytes";
        String old = System.getProperty(key);
        if (valuesPerPanel > 0) {
            System.setProperty(key, Long.toString(valuesPerPanel * valueBytes));
        }
        try {
            onRoute("panels", () -> {
                try (TLoRADeviceParameters dp = cuda.prepare(spec, p);
                     CudaStream stream = context.createStream();
                     DeviceBuffer dw0 = context.upload(w0);
                     DeviceBuffer dx = context.upload(x);
                     DeviceBuffer dg = context.upload(g);
                     DeviceBuffer dy = context.upload(HostArray.float32(y));
                     DeviceBuffer dGradX = context.upload(HostArray.float32(gradX))) {
                    stream.synchronize();
                    context.resetPoolUsedHigh();
                    long before = context.poolUsedHighBytes();
                    cuda.forward(dp, dw0.array(), dx.array(), tokens, dy.array(), stream);
                    stream.synchronize();
                    long peak = context.poolUsedHighBytes() - before;
                    System.out.printf("TLoRA forward through T's panels, %d tokens at %d x %d, %s: peak scratch %d"
                            + " bytes (d_in x d_in would be %d)%n", tokens, spec.dOut(), dIn, valuesPerPanel > 0
                            ? valuesPerPanel + " value(s) per panel" : "T whole", peak, 4 * dIn * dIn);
                    if (valuesPerPanel == 1) {
                        assertTrue(peak < 4 * dIn * dIn * 6 / 10, "peak scratch " + peak + " against " + 4 * dIn * dIn
                                + " for T whole");
                    } else if (valuesPerPanel == 0) {
                        assertTrue(peak >= 2 * 4 * dIn * dIn, "T whole and its unpermuted copy: " + peak);
                    }
                    cuda.backward(dp, dw0.array(), dx.array(), dg.array(), tokens, dGradX.array(), stream);
                    dy.copyTo(HostArray.float32(y));
                    dGradX.copyTo(HostArray.float32(gradX));
                }
            });
        } finally {
            if (old == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, old);
            }
        }
        float[] expected = new float[y.length];
        float[] expectedGradX = new float[gradX.length];
        try (CpuTLoRA cpu = new CpuTLoRA()) {
            cpu.forward(spec, p, w0, x, tokens, HostArray.float32(expected));
            cpu.backward(spec, p, w0, x, g, tokens, HostArray.float32(expectedGradX));
        }
        double err = TestData.relativeError(TestData.toDouble(HostArray.float32(y)),
                TestData.toDouble(HostArray.float32(expected)));
        assertTrue(err < 1e-5, "forward against the CPU backend: " + err + data.tag());
        double errX = TestData.relativeError(TestData.toDouble(HostArray.float32(gradX)),
                TestData.toDouble(HostArray.float32(expectedGradX)));
        assertTrue(errX < 1e-5, "∂x against the CPU backend: " + errX + data.tag());
    }

    /**
     * The backward's gradients build C = Σ ∂u·xᵀ in bands of rows within a scratch budget: with room for one value
     * of the first output digit its scratch stays below the d_in × d_in buffer a whole C would take; with
     * room for two values of eight, bands of two; by default C whole. Each way, every gradient (the transform's
     * cores and the TTM residual's, both built from C) matches the CPU backend's.
     */
    @ParameterizedTest
    @CsvSource({"1", "2", "0"})
    void theBackwardBuildsCInBandsWithinItsBudget(int valuesPerBand) {
        TestData data = new TestData();
        int[] shape = TLoRASpec.authorsShape(1280); // [8, 10, 16]: 8 values of the first output digit
        TLoRASpec spec = TLoRASpec.of(shape, shape, 2, Residual.TTM, 2, 1f);
        TLoRAParameters p = random(spec, data);
        CudaContext context = cuda.context();
        long dIn = spec.dIn();
        long valueBytes = 4L * spec.dOut() / shape[0] * dIn;
        assertEquals(shape[0], CudaTLoRA.bandValues(shape[0], valueBytes, CudaTLoRA.DEFAULT_GRAM_BYTES),
                "C whole by default at 1280");
        int tokens = 3;
        HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
        HostArray x = HostArray.float32(data.gaussian(tokens * spec.dIn()));
        HostArray g = HostArray.float32(data.gaussian(tokens * spec.dOut()));
        String key = "spectralpeft.tlora.cuda.gramBytes";
        String old = System.getProperty(key);
        TLoRAParameters grads;
        try (TLoRADeviceParameters dp = cuda.prepare(spec, p);
             CudaStream stream = context.createStream();
             DeviceBuffer dw0 = context.upload(w0);
             DeviceBuffer dx = context.upload(x);
             DeviceBuffer dg = context.upload(g)) {
            if (valuesPerBand > 0) {
                System.setProperty(key, Long.toString(valuesPerBand * valueBytes));
            }
            stream.synchronize();
            context.resetPoolUsedHigh();
            long before = context.poolUsedHighBytes();
            grads = cuda.backward(dp, dw0.array(), dx.array(), dg.array(), tokens, null, stream);
            long peak = context.poolUsedHighBytes() - before;
            System.out.printf("TLoRA backward, %d tokens at %d x %d, %s: peak scratch %d bytes (d_in x d_in would be"
                    + " %d)%n", tokens, spec.dOut(), dIn, valuesPerBand > 0 ? valuesPerBand + " value(s) per band"
                    : "C whole", peak, 4 * dIn * dIn);
            if (valuesPerBand == 1) {
                assertTrue(peak < 4 * dIn * dIn, "peak scratch " + peak + " against " + 2 * 4 * dIn * dIn
                        + " for C whole and its permuted copy");
            } else if (valuesPerBand == 0) {
                assertTrue(peak >= 2 * 4 * dIn * dIn, "C whole and its permuted copy: " + peak);
            }
        } finally {
            if (old == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, old);
            }
        }
        try (CpuTLoRA cpu = new CpuTLoRA()) {
            TLoRAParameters host = cpu.backward(spec, p, w0, x, g, tokens, null);
            for (int d = 0; d < spec.inOrder(); d++) {
                double err = TestData.relativeError(TestData.toDouble(HostArray.float32(grads.transformCore(d))),
                        TestData.toDouble(HostArray.float32(host.transformCore(d))));
                assertTrue(err < 1e-5, "core " + d + " against the CPU backend: " + err + data.tag());
            }
            for (int k = 0; k < host.residualArrays().length; k++) {
                double err = TestData.relativeError(TestData.toDouble(HostArray.float32(grads.residual(k))),
                        TestData.toDouble(HostArray.float32(host.residual(k))));
                assertTrue(err < 1e-5, "residual array " + k + " against the CPU backend: " + err + data.tag());
            }
        }
    }

    /** Runs {@code call} with the system property of the gradients' route set to {@code route}, restored after. */
    private static <T> T withGradientRoute(String route, java.util.function.Supplier<T> call) {
        String old = System.getProperty(GradientRoute.PROPERTY);
        System.setProperty(GradientRoute.PROPERTY, route);
        try {
            return call.get();
        } finally {
            if (old == null) {
                System.clearProperty(GradientRoute.PROPERTY);
            } else {
                System.setProperty(GradientRoute.PROPERTY, old);
            }
        }
    }

    /**
     * The rank-1 gradients without C ({@code kronecker}: tlora_kron_gradient): every core's gradient, the transform's
     * (I × I) and a rank-1 TTM residual's (J ≠ I), against the CPU backend's (its own Kronecker route) and against the
     * GEMM route's, on 1 to 4 factors with 1s and primes and on rows past the kernel's 512 blocks (two rows a block,
     * the last short); a repeat gives the same bits, and ∂x is the GEMM route's, bit for bit.
     */
    @ParameterizedTest
    @CsvSource({"'3,2', '2,3', 1", "'3,4,5', '3,4,5', 7", "'4,8,10', '4,8,10', 3", "'2,1,3,4', '1,3,2,5', 601",
        "'5', '7', 4", "'2,2', '16,2', 33"})
    void rankOneGradientsWithoutCAgreeWithTheGemmRouteAndTheCpu(String out, String in, int tokens) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(shape(out), shape(in), 1, Residual.TTM, 1, 0.7f);
        TLoRAParameters p = random(spec, data);
        HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
        HostArray x = HostArray.float32(data.gaussian(tokens * spec.dIn()));
        HostArray g = HostArray.float32(data.gaussian(tokens * spec.dOut()));
        float[] gxGram = data.gaussian(tokens * spec.dIn());
        float[] gxKron = gxGram.clone();
        TLoRAParameters gram = withGradientRoute("gram", () -> cuda.backward(spec, p, w0, x, g, tokens,
                HostArray.float32(gxGram)));
        TLoRAParameters kron = withGradientRoute("kronecker", () -> cuda.backward(spec, p, w0, x, g, tokens,
                HostArray.float32(gxKron)));
        TLoRAParameters again = withGradientRoute("kronecker", () -> cuda.backward(spec, p, w0, x, g, tokens, null));
        TLoRAParameters cpu;
        try (CpuTLoRA c = new CpuTLoRA()) {
            cpu = c.backward(spec, p, w0, x, g, tokens, null);
        }
        assertArrayEquals(gxGram, gxKron, "∂x does not depend on the gradients' route" + data.tag());
        for (int d = 0; d < spec.inOrder(); d++) {
            assertClose(cpu.transformCore(d), kron.transformCore(d), "transform core " + d + " of " + spec, data);
            assertClose(gram.transformCore(d), kron.transformCore(d), "transform core " + d + " (GEMM route)", data);
            assertArrayEquals(kron.transformCore(d), again.transformCore(d), "a repeat, core " + d + data.tag());
        }
        for (int k = 0; k < spec.residualArrays(); k++) {
            assertClose(cpu.residual(k), kron.residual(k), "TTM core " + k + " of " + spec, data);
            assertClose(gram.residual(k), kron.residual(k), "TTM core " + k + " (GEMM route)", data);
            assertArrayEquals(kron.residual(k), again.residual(k), "a repeat, TTM core " + k + data.tag());
        }
    }

    private static int[] shape(String digits) {
        return java.util.Arrays.stream(digits.split(",")).mapToInt(Integer::parseInt).toArray();
    }

    /**
     * At the authors' 1280 = [8, 10, 16] the rank-1 route never forms C (its peak scratch stays below one d_in × d_in
     * buffer, where the GEMM route's holds C and its permuted copy) and matches the CPU backend; a ring of rank 2
     * takes the GEMM route under the same property. An unknown route is refused before any work.
     */
    @Test
    void theRankOneRouteFormsNoCAtTheAuthorsShape() {
        TestData data = new TestData();
        int[] shape = TLoRASpec.authorsShape(1280);
        int tokens = 5;
        long dIn = 1280;
        for (int ring : new int[] {1, 2}) {
            TLoRASpec spec = TLoRASpec.of(shape, shape, ring, Residual.LORA, 4, 1f);
            TLoRAParameters p = random(spec, data);
            HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
            HostArray x = HostArray.float32(data.gaussian(tokens * spec.dIn()));
            HostArray g = HostArray.float32(data.gaussian(tokens * spec.dOut()));
            CudaContext context = cuda.context();
            long[] peak = new long[1];
            TLoRAParameters grads = withGradientRoute("kronecker", () -> {
                try (TLoRADeviceParameters dp = cuda.prepare(spec, p);
                     CudaStream stream = context.createStream();
                     DeviceBuffer dw0 = context.upload(w0);
                     DeviceBuffer dx = context.upload(x);
                     DeviceBuffer dg = context.upload(g)) {
                    stream.synchronize();
                    context.resetPoolUsedHigh();
                    long before = context.poolUsedHighBytes();
                    TLoRAParameters r = cuda.backward(dp, dw0.array(), dx.array(), dg.array(), tokens, null, stream);
                    peak[0] = context.poolUsedHighBytes() - before;
                    return r;
                }
            });
            if (ring == 1) {
                assertTrue(peak[0] < 4 * dIn * dIn, "rank 1: peak scratch " + peak[0] + ", C alone is " + 4 * dIn * dIn);
            } else {
                assertTrue(peak[0] >= 2 * 4 * dIn * dIn, "rank 2 takes C and its permuted copy: " + peak[0]);
            }
            TLoRAParameters cpu;
            try (CpuTLoRA c = new CpuTLoRA()) {
                cpu = c.backward(spec, p, w0, x, g, tokens, null);
            }
            for (int d = 0; d < spec.inOrder(); d++) {
                assertClose(cpu.transformCore(d), grads.transformCore(d), "rank " + ring + ", core " + d, data);
            }
        }
        TLoRASpec spec = TLoRASpec.of(new int[] {2, 3}, new int[] {3, 2}, 1, Residual.LORA, 2, 1f);
        TLoRAParameters p = random(spec, data);
        float[] gx = data.gaussian(2 * 6);
        float[] before = gx.clone();
        IllegalArgumentException e = withGradientRoute("dense", () -> assertThrows(IllegalArgumentException.class,
                () -> cuda.backward(spec, p, HostArray.float32(data.gaussian(36)), HostArray.float32(data.gaussian(12)),
                        HostArray.float32(data.gaussian(12)), 2, HostArray.float32(gx))));
        assertTrue(e.getMessage().contains(GradientRoute.PROPERTY) && e.getMessage().contains("kronecker"),
                e.getMessage());
        assertArrayEquals(before, gx, "∂x untouched");
    }

    /** The band of C: the most values that divide the digit's range and fit the budget, at least one. */
    @Test
    void bandsTakeTheMostValuesThatFit() {
        assertEquals(1, CudaTLoRA.bandValues(8, 100, 1));
        assertEquals(2, CudaTLoRA.bandValues(8, 100, 250));
        assertEquals(4, CudaTLoRA.bandValues(8, 100, 799));
        assertEquals(8, CudaTLoRA.bandValues(8, 100, 800));
        assertEquals(5, CudaTLoRA.bandValues(10, 100, 900), "a divisor of 10, not 9");
        assertEquals(1, CudaTLoRA.bandValues(7, 100, 600), "7 is prime");
    }

    /** A backend on a borrowed context works, and closing it leaves the context open. */
    @Test
    void aBorrowedContextStaysOpen() {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {3, 4}, new int[] {2, 5}, 2, Residual.LORA, 2, 1f);
        TLoRAParameters p = TLoRAParameters.initial(spec, new Random(data.seed));
        float[] w0 = data.gaussian(120);
        try (CudaContext shared = CudaContext.open(0)) {
            try (CudaTLoRA borrowed = CudaTLoRA.open(shared)) {
                float[] w = new float[120];
                borrowed.materialize(spec, p, HostArray.float32(w0), HostArray.float32(w));
                assertArrayEquals(w0, w, data.tag());
            }
            assertTrue(!shared.isClosed(), "closing the backend must leave a borrowed context open");
        }
    }

    /** A ring whose state for one row exceeds a block's shared memory is refused before any work, naming why. */
    @Test
    void aRingTooLargeForSharedMemoryIsRefused() {
        int[] shape = {64, 64, 64}; // d_in = 262144: one row's state alone is 1 MiB at R = 1
        TLoRASpec spec = TLoRASpec.of(new int[] {1}, shape, 1, Residual.LORA, 1, 1f);
        TLoRAParameters p = TLoRAParameters.initial(spec, new Random(1));
        HostArray out = HostArray.float32(new float[spec.dIn()]);
        out.floats()[7] = 3f;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> cuda.materialize(spec, p, HostArray.float32(new float[spec.dIn()]), out));
        assertTrue(e.getMessage().contains("shared memory"), e.getMessage());
        assertTrue(out.floats()[7] == 3f, "the output is untouched");
    }

    /**
     * The kernels' other limits, refused before any work with a message naming the limit: more than
     * {@link TLoRAKernels#MAX_ORDER} factors, a transform or TTM ring rank above {@link TLoRAKernels#MAX_RING}, and
     * (backward) a gradient matrix C of more than 2^31 − 1 floats, whose elements the kernels index by int.
     */
    @Test
    void layersBeyondTheKernelsLimitsAreRefused() {
        TestData data = new TestData();
        TLoRASpec nine = TLoRASpec.of(new int[] {2}, new int[] {1, 1, 1, 1, 2, 1, 1, 1, 1}, 1, Residual.LORA, 2, 1f);
        assertRefused(nine, data, "the CUDA backend takes at most 8 factors, the transform of");
        TLoRASpec ring = TLoRASpec.of(new int[] {3, 2}, new int[] {2, 3}, 17, Residual.LORA, 2, 1f);
        assertRefused(ring, data, "the CUDA backend takes ring ranks up to 16, the transform of");
        TLoRASpec ttm = TLoRASpec.of(new int[] {3, 2}, new int[] {2, 3}, 2, Residual.TTM, 17, 1f);
        assertRefused(ttm, data, "the CUDA backend takes ring ranks up to 16, the TTM residual of");
        assertRefused(TLoRASpec.of(new int[] {3, 2}, new int[] {2, 3}, 16, Residual.TTM, 16, 1f), data, null);

        // d_in = 46656: C = Σ ∂u·xᵀ would be d_in × d_in = 2176782336 floats, past an int index
        TLoRASpec wide = TLoRASpec.of(new int[] {1}, new int[] {216, 216}, 1, Residual.LORA, 1, 1f);
        TLoRAParameters p = TLoRAParameters.initial(wide, new Random(data.seed));
        int dIn = wide.dIn();
        HostArray w0 = HostArray.float32(data.gaussian(dIn));
        HostArray x = HostArray.float32(data.gaussian(dIn));
        float[] gradX = data.gaussian(dIn);
        HostArray gradXArray = HostArray.float32(gradX.clone());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> cuda.backward(wide, p, w0, x, HostArray.float32(new float[] {1f}), 1, gradXArray));
        assertTrue(e.getMessage().contains("form a 46656 x 46656 matrix, more than 2147483647 floats"), e.getMessage());
        assertArrayEquals(gradX, gradXArray.floats(), "gradX untouched by a refused backward" + data.tag());
    }

    /**
     * Forward, backward and materialize of a layer with random parameters: refused naming {@code expect}, every
     * output left as it was; or, with {@code expect} null, run (a layer at the limits).
     */
    private static void assertRefused(TLoRASpec spec, TestData data, String expect) {
        TLoRAParameters p = random(spec, data);
        HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
        HostArray x = HostArray.float32(data.gaussian(2 * spec.dIn()));
        HostArray g = HostArray.float32(data.gaussian(2 * spec.dOut()));
        float[] y = data.gaussian(2 * spec.dOut());
        float[] gradX = data.gaussian(2 * spec.dIn());
        float[] out = data.gaussian(spec.dOut() * spec.dIn());
        HostArray yArray = HostArray.float32(y.clone());
        HostArray gradXArray = HostArray.float32(gradX.clone());
        HostArray outArray = HostArray.float32(out.clone());
        List<org.junit.jupiter.api.function.Executable> calls = List.of(
                () -> cuda.forward(spec, p, w0, x, 2, yArray),
                () -> cuda.backward(spec, p, w0, x, g, 2, gradXArray),
                () -> cuda.materialize(spec, p, w0, outArray),
                () -> cuda.prepare(spec, p).close());
        for (org.junit.jupiter.api.function.Executable call : calls) {
            if (expect == null) {
                assertDoesNotThrow(call, spec.toString());
                continue;
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call, spec.toString());
            assertTrue(e.getMessage().contains(expect), "'" + e.getMessage() + "' should say " + expect);
        }
        if (expect != null) {
            assertArrayEquals(y, yArray.floats(), "y untouched " + spec + data.tag());
            assertArrayEquals(gradX, gradXArray.floats(), "gradX untouched " + spec + data.tag());
            assertArrayEquals(out, outArray.floats(), "out untouched " + spec + data.tag());
        }
    }

    /**
     * What the CPU backend promises with its GEMM, on CUDA with cuBLAS: the initial parameters (T the identity, Δ
     * zero) give x·W0ᵀ bit for bit as one SGEMM of the same shape gives it, on both routes (T on the tokens, and
     * with more tokens than outputs on W0's rows), and W' = W0 bit for bit.
     */
    @ParameterizedTest
    @CsvSource({"1,LORA", "2,TR", "4,TTM", "2,LORA", "4,TR", "1,TTM"})
    void theInitialParametersGiveExactlyW0WithCublas(int ring, Residual kind) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {4, 2, 5}, new int[] {3, 8, 2}, ring, kind, 3, 2f);
        TLoRAParameters p = TLoRAParameters.initial(spec, new Random(data.seed));
        float[] w0 = data.gaussian(spec.dOut() * spec.dIn());
        CudaContext context = cuda.context();
        for (int tokens : new int[] {9, 50}) {
            float[] x = data.gaussian(tokens * spec.dIn());
            float[] y = new float[tokens * spec.dOut()];
            cuda.forward(spec, p, HostArray.float32(w0), HostArray.float32(x), tokens, HostArray.float32(y));
            float[] plain = new float[tokens * spec.dOut()];
            try (CudaStream stream = context.createStream();
                 DeviceBuffer dx = context.upload(HostArray.float32(x));
                 DeviceBuffer dw = context.upload(HostArray.float32(w0));
                 DeviceBuffer dy = context.allocate(DType.FLOAT32, plain.length)) {
                context.blas().gemm(stream, false, true, tokens, spec.dOut(), spec.dIn(), 1f, dx.array().address(),
                        spec.dIn(), dw.array().address(), spec.dIn(), 0f, dy.array().address(), spec.dOut());
                stream.synchronize();
                dy.copyTo(HostArray.float32(plain));
            }
            assertArrayEquals(plain, y, tokens + " tokens: x·W0ᵀ, bit for bit" + data.tag());
        }
        float[] w = new float[w0.length];
        cuda.materialize(spec, p, HostArray.float32(w0), HostArray.float32(w));
        assertArrayEquals(w0, w, "W' = W0, bit for bit" + data.tag());
    }
}
