package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.StageLabels;
import org.spectralpeft.SystemProperty;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.fourierft.FourierFTAdapterPool;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.reference.FourierFTReference;

/**
 * {@code fourierft_forward_fused} and {@code fourierft_backward_fused} ({@link CudaFourierFT#FORWARD_PROPERTY}{@code
 * =fused}): the whole forward, and backward, of a token in one block, its FFTs in shared memory. Against the float64 reference on power-of-two layers from 2 × 2 up, square
 * and not, in every dtype of x and y; against the cuFFT route at 4096 × 4096; a mixed batch (two index sets, −1s,
 * repeats; 1, 7, 100 and 1000 adapters) bit for bit the single-adapter fused forward of each token, and its backward
 * as each adapter's alone; tokens strided over fewer blocks; repeats
 * bit for bit; and the route checked each time from the launches (a stage timer with a counting clock), so a silent
 * fall back to cuFFT fails. Outputs start at random values (the forward adds), and tokens without an adapter must
 * keep their bits.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class FourierFTFusedForwardTest {
    private static CudaFourierFT cuda;

    @BeforeAll
    static void open() {
        if (System.getProperty("spectralpeft.cuda.debug") == null) {
            System.setProperty("spectralpeft.cuda.debug", "true");
        }
        cuda = CudaFourierFT.open();
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    /** Runs body with the forward property set to route, and returns the labels of the stages it launched, in order. */
    private static List<String> stagesOf(String route, Runnable body) {
        List<String> labels = new ArrayList<>();
        SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, route, () -> labels.addAll(StageLabels.of(body)));
        return labels;
    }

    private static DeviceBuffer upload(DType dtype, float[] values) {
        return cuda.context().upload(HostArray.of(dtype, values));
    }

    private static float[] download(DeviceBuffer b) {
        HostArray h = HostArray.allocate(b.array().dtype(), Math.toIntExact(b.array().length()));
        b.copyTo(h);
        return h.toFloats();
    }

    /** The fused kernel a layer takes: the power-of-two one, or the one with radix-3, 5 and 7 stages. */
    private static String fusedKernel(int inLength, int outLength) {
        return FusedForward.powersOfTwo(inLength, outLength) ? FourierFTKernels.FORWARD_FUSED
                : FourierFTKernels.FORWARD_FUSED_RADIX;
    }

    private static boolean fused(List<String> stages) {
        return stages.contains(FourierFTKernels.FORWARD_FUSED) || stages.contains(FourierFTKernels.FORWARD_FUSED_RADIX)
                || stages.contains(FourierFTKernels.BACKWARD_FUSED)
                || stages.contains(FourierFTKernels.BACKWARD_FUSED_RADIX);
    }

    /** The stages of the fused backward: the kernel a layer takes, then ∂L/∂c's two sums. */
    private static List<String> fusedBackwardStages(int dIn, int dOut) {
        return List.of(FusedForward.powersOfTwo(dIn, dOut) ? FourierFTKernels.BACKWARD_FUSED
                        : FourierFTKernels.BACKWARD_FUSED_RADIX,
                FourierFTKernels.COEFF_GRAD_ROWS, FourierFTKernels.COEFF_GRAD_REDUCE);
    }

    /** y (random) + x·ΔWᵀ by the fused kernel, through the backend's device entry point; asserts the route. */
    private static float[] fusedForward(FourierFTSpec spec, float[] coeffs, DType xType, float[] x, int tokens,
                                        DType yType, float[] y0) {
        try (DeviceBuffer c = upload(DType.FLOAT32, coeffs);
             DeviceBuffer dx = upload(xType, x);
             DeviceBuffer dy = upload(yType, y0);
             CudaStream stream = cuda.createStream()) {
            List<String> stages = stagesOf("fused",
                    () -> cuda.forward(spec, c.array(), dx.array(), tokens, dy.array(), stream));
            stream.synchronize();
            assertEquals(List.of(fusedKernel(spec.dIn(), spec.dOut())), stages, "the fused route, one launch");
            return download(dy);
        }
    }

    @ParameterizedTest(name = "{0}x{1} n={2} T={3} x {4} y {5}")
    @CsvSource({
        "2, 2, 3, 1, FLOAT32, FLOAT32",
        "4, 8, 10, 3, FLOAT32, FLOAT32",
        "8, 4, 20, 2, BFLOAT16, FLOAT32",
        "16, 64, 50, 5, FLOAT32, FLOAT16",
        "64, 16, 60, 4, FLOAT16, BFLOAT16",
        "128, 256, 200, 3, FLOAT32, FLOAT32",
        "256, 128, 300, 2, BFLOAT16, BFLOAT16",
        "512, 512, 150, 3, FLOAT16, FLOAT16",
        "2, 1024, 40, 2, FLOAT32, FLOAT32",
        "1024, 2, 40, 2, FLOAT32, FLOAT32",
        "6, 6, 5, 2, FLOAT32, FLOAT32",
        "12, 10, 8, 3, FLOAT32, BFLOAT16",
        "14, 28, 30, 2, FLOAT16, FLOAT32",
        "96, 80, 100, 3, FLOAT32, FLOAT32",
        "40, 112, 50, 2, BFLOAT16, FLOAT16",
        "768, 768, 24, 2, FLOAT32, FLOAT32",
        "384, 640, 60, 2, FLOAT32, FLOAT32",
    })
    void theFusedForwardMatchesTheReference(int dOut, int dIn, int n, int tokens, DType xType, DType yType) {
        TestData data = new TestData();
        float alpha = (float) (50 + 200 * data.nextDouble());
        FourierFTSpec spec = FourierFTSpec.ofFlat(dOut, dIn, data.distinctIndices(dOut * dIn, n), alpha);
        FourierFTReference ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), alpha);
        float[] coeffs = data.gaussian(n);
        float[] x = HostArray.of(xType, data.gaussian(tokens * dIn)).toFloats(); // the values xType holds
        double[] added = ref.forward(TestData.toDouble(coeffs), TestData.toDouble(x), tokens);
        float[] y0 = data.gaussian(tokens * dOut);
        double scale = 0; // y0 drawn at the added term's size, as accumulatedError expects
        for (double v : added) {
            scale = Math.max(scale, Math.abs(v));
        }
        for (int i = 0; i < y0.length; i++) {
            y0[i] *= (float) scale;
        }
        float[] before = HostArray.of(yType, y0).toFloats();
        float[] y = fusedForward(spec, coeffs, xType, x, tokens, yType, y0);
        double err = TestData.accumulatedError(TestData.toDouble(y), TestData.toDouble(before), added);
        assertTrue(err <= TestData.tolerance(yType), "relative error " + err + " " + spec + data.tag());
    }

    /**
     * At the sizes the kernel is for, against cuFFT's route on the same inputs (both float32); 8192 and 16384 take
     * more than the 48 KiB of shared memory a kernel has without opting in (64 and 128 KiB of spectra).
     */
    @ParameterizedTest(name = "{0}x{1} n={2} T={3}")
    @CsvSource({"4096, 4096, 1000, 3", "1024, 4096, 1000, 2", "4096, 256, 500, 2", "8192, 8192, 2000, 2",
        "16384, 16384, 1000, 1", "3072, 768, 1000, 2", "5120, 5120, 1000, 1", "14336, 4096, 1000, 1",
        "4096, 14336, 1000, 1", "1536, 2560, 800, 2"})
    void theFusedForwardAgreesWithTheCufftRouteAtLargeSizes(int dOut, int dIn, int n, int tokens) {
        TestData data = new TestData();
        java.util.Set<Long> flat = new java.util.LinkedHashSet<>(); // n distinct of d_out·d_in, without a permutation
        while (flat.size() < n) {
            flat.add((long) (data.nextDouble() * dOut * dIn));
        }
        int[] rows = new int[n];
        int[] cols = new int[n];
        int l = 0;
        for (long f : flat) {
            rows[l] = (int) (f / dIn);
            cols[l++] = (int) (f % dIn);
        }
        FourierFTSpec spec = FourierFTSpec.of(dOut, dIn, rows, cols, 150f);
        float[] coeffs = data.gaussian(n);
        float[] x = data.gaussian(tokens * dIn);
        float[] zeros = new float[tokens * dOut];
        float[] fused = fusedForward(spec, coeffs, DType.FLOAT32, x, tokens, DType.FLOAT32, zeros);
        float[] viaCufft;
        try (DeviceBuffer c = upload(DType.FLOAT32, coeffs);
             DeviceBuffer dx = upload(DType.FLOAT32, x);
             DeviceBuffer dy = upload(DType.FLOAT32, zeros);
             CudaStream stream = cuda.createStream()) {
            List<String> stages = stagesOf("cufft",
                    () -> cuda.forward(spec, c.array(), dx.array(), tokens, dy.array(), stream));
            stream.synchronize();
            assertTrue(!fused(stages) && stages.size() > 1, "cuFFT route: " + stages);
            viaCufft = download(dy);
        }
        double err = TestData.relativeError(TestData.toDouble(fused), TestData.toDouble(viaCufft));
        assertTrue(err <= 1e-5, "fused against cuFFT: relative difference " + err + data.tag());
    }

    @Test
    void withoutThePropertyALayerThatFitsRunsTheFusedKernelsAndOneThatDoesNotTheCufftRoute() {
        TestData data = new TestData();
        for (int[] shape : new int[][] {{96, 80}, {86, 40}}) { // 86 = 2·43: not a length the kernel takes
            FourierFTSpec spec = FourierFTSpec.fromSeed(shape[0], shape[1], 50, data.seed, 100f);
            float[] coeffs = data.gaussian(50);
            float[] x = data.gaussian(3 * shape[1]);
            float[] gy = data.gaussian(3 * shape[0]);
            try (DeviceBuffer c = upload(DType.FLOAT32, coeffs);
                 DeviceBuffer dx = upload(DType.FLOAT32, x);
                 DeviceBuffer dy = upload(DType.FLOAT32, new float[3 * shape[0]]);
                 DeviceBuffer dgy = upload(DType.FLOAT32, gy);
                 DeviceBuffer gc = cuda.allocate(DType.FLOAT32, 50);
                 CudaStream stream = cuda.createStream()) {
                List<String> forward = stagesOf(null,
                        () -> cuda.forward(spec, c.array(), dx.array(), 3, dy.array(), stream));
                List<String> backward = stagesOf(null, () -> cuda.backward(spec, c.array(), dx.array(), dgy.array(),
                        3, gc.array(), null, stream));
                stream.synchronize();
                boolean fits = shape[0] == 96;
                assertEquals(fits, fused(forward), "forward " + shape[0] + "x" + shape[1] + ": " + forward);
                assertEquals(fits, fused(backward), "backward " + shape[0] + "x" + shape[1] + ": " + backward);
                if (fits) {
                    assertEquals(List.of(fusedKernel(shape[1], shape[0])), forward);
                    assertEquals(fusedBackwardStages(shape[1], shape[0]), backward);
                }
            }
        }
    }

    @Test
    void anUnknownRouteIsRefusedBeforeAnyWork() {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(64, 48, 20, data.seed, 100f);
        float[] y0 = data.gaussian(2 * 64);
        try (DeviceBuffer c = upload(DType.FLOAT32, data.gaussian(20));
             DeviceBuffer dx = upload(DType.FLOAT32, data.gaussian(2 * 48));
             DeviceBuffer dy = upload(DType.FLOAT32, y0);
             CudaStream stream = cuda.createStream()) {
            FourierFTAdapterPool pool = new FourierFTAdapterPool(64, 48);
            pool.add(1, spec, data.gaussian(20));
            HostArray hostY = HostArray.of(DType.FLOAT32, y0);
            List<Runnable> calls = List.of(
                    () -> cuda.forward(spec, c.array(), dx.array(), 2, dy.array(), stream),
                    () -> cuda.forward(pool, new int[] {1, -1}, dx.array(), 2, dy.array(), stream),
                    () -> cuda.forward(spec, data.gaussian(20), HostArray.of(DType.FLOAT32, data.gaussian(96)), 2,
                            hostY));
            for (Runnable call : calls) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> stagesOf("cufft-please", call));
                assertTrue(e.getMessage().contains("spectralpeft.fourierft.forward=cufft-please is not a route"),
                        e.getMessage());
            }
            stream.synchronize();
            assertArrayEquals(y0, download(dy), "y left alone");
            assertArrayEquals(y0, hostY.toFloats(), "host y left alone");
        }
    }

    /**
     * {@value CudaFourierFT#FFT_PASS_PROPERTY}{@code =radix8} (three radix-2 stages per pass where they can be) does
     * the operations of the default's two per pass, forward, mixed forward and backward with ∂L/∂x, at lengths whose
     * schedules differ (half-lengths 2^7 to 2^14: one radix-4 pass against one, a radix-8 pass against two, a radix-8
     * and a radix-4 against three, two radix-8 against three, three passes against four) and a short one the passes
     * leave alone, in every dtype: bit for bit on the emulator, whose build never contracts a product into a fused
     * multiply-add, and to float32 rounding on a GPU, where ptxas may contract the two kernels differently. (That a
     * twiddle one schedule derives equals the one the other reads, to the sign of zero, is FusedForwardRulesTest's:
     * Gaussian rows would not show the difference.) The launches are the _pass8 kernels; an unknown value is refused
     * before any work.
     */
    @ParameterizedTest(name = "{0}x{1} {2}")
    @CsvSource({"256, 512, FLOAT32", "1024, 2048, BFLOAT16", "4096, 4096, FLOAT32", "8192, 256, FLOAT16",
        "128, 16384, FLOAT32", "64, 32768, FLOAT32", "64, 32, FLOAT16"})
    void theRadix8PassesGiveTheDefaultsBits(int dOut, int dIn, DType dtype) {
        TestData data = new TestData();
        int tokens = 3;
        int n = Math.min(400, dOut * dIn / 4);
        FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, n, data.seed, 130f);
        FourierFTAdapterPool pool = new FourierFTAdapterPool(dOut, dIn);
        pool.add(4, spec, data.gaussian(n));
        pool.add(9, spec, data.gaussian(n));
        int[] ids = {9, -1, 4};
        float[] coeffs = data.gaussian(n);
        float[] x = data.gaussian(tokens * dIn);
        float[] gy = data.gaussian(tokens * dOut);
        float[] y0 = data.gaussian(tokens * dOut);
        float[] gx0 = data.gaussian(tokens * dIn);
        List<float[]> results = new ArrayList<>();
        for (String passes : new String[] {null, "radix8"}) {
            try (DeviceBuffer c = upload(DType.FLOAT32, coeffs);
                 DeviceBuffer dx = upload(dtype, x);
                 DeviceBuffer dgy = upload(dtype, gy);
                 DeviceBuffer dy = upload(dtype, y0);
                 DeviceBuffer mixedY = upload(dtype, y0);
                 DeviceBuffer gc = upload(DType.FLOAT32, new float[n]);
                 DeviceBuffer gx = upload(dtype, gx0);
                 CudaStream stream = cuda.createStream()) {
                List<Runnable> calls = List.of(
                        () -> cuda.forward(spec, c.array(), dx.array(), tokens, dy.array(), stream),
                        () -> cuda.forward(pool, ids, dx.array(), tokens, mixedY.array(), stream),
                        () -> cuda.backward(spec, c.array(), dx.array(), dgy.array(), tokens, gc.array(), gx.array(),
                                stream));
                List<String> fusedStages = new ArrayList<>(); // each call's fused kernel
                for (Runnable call : calls) {
                    SystemProperty.with(CudaFourierFT.FFT_PASS_PROPERTY, passes, () -> fusedStages.addAll(
                            stagesOf("fused", call).stream().filter(l -> l.contains("_fused")).toList()));
                }
                stream.synchronize();
                String forward = passes == null ? FourierFTKernels.FORWARD_FUSED : FourierFTKernels.FORWARD_FUSED_PASS8;
                String backward = passes == null ? FourierFTKernels.BACKWARD_FUSED : FourierFTKernels.BACKWARD_FUSED_PASS8;
                assertEquals(List.of(forward, forward, backward), fusedStages, "launches with " + passes);
                for (DeviceBuffer b : new DeviceBuffer[] {dy, mixedY, gc, gx}) {
                    results.add(download(b));
                }
            }
        }
        String[] names = {"forward", "mixed forward", "∂L/∂c", "∂L/∂x"};
        boolean emulated = cuda.context().describe().contains("(emulated)");
        for (int i = 0; i < names.length; i++) {
            float[] before = i == 2 ? new float[n] : HostArray.of(dtype, i == 3 ? gx0 : y0).toFloats();
            assertFalse(Arrays.equals(results.get(i), before), names[i] + " written");
            if (emulated) {
                assertArrayEquals(results.get(i), results.get(i + names.length), names[i] + " bit for bit" + data.tag());
            } else { // ptxas may contract a complex product into fused multiply-adds differently in the two kernels
                double err = TestData.relativeError(TestData.toDouble(results.get(i + names.length)),
                        TestData.toDouble(results.get(i)));
                assertTrue(err <= 1e-5, names[i] + ": relative difference " + err + data.tag());
            }
        }
        float[] before = HostArray.of(DType.FLOAT32, y0).toFloats();
        try (DeviceBuffer c = upload(DType.FLOAT32, coeffs);
             DeviceBuffer dx = upload(DType.FLOAT32, x);
             DeviceBuffer dy = upload(DType.FLOAT32, before);
             CudaStream stream = cuda.createStream()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SystemProperty.with(
                    CudaFourierFT.FFT_PASS_PROPERTY, "radix16",
                    () -> cuda.forward(spec, c.array(), dx.array(), tokens, dy.array(), stream)));
            assertTrue(e.getMessage().contains("spectralpeft.fourierft.fftPass=radix16 is not a pass"), e.getMessage());
            stream.synchronize();
            assertArrayEquals(before, download(dy), "y left alone");
        }
    }

    /**
     * The fused kernels read and write a row's pairs of elements in one access where the row's start allows it (whole
     * allocations), else one element at a time: views starting one element in (x, y, ∂L/∂y, ∂L/∂x) give the bits of
     * aligned arrays, forward and backward, in every dtype.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"FLOAT32", "FLOAT16", "BFLOAT16"})
    void viewsWhosePairsAreNotAlignedGiveTheBitsOfAlignedArrays(DType dtype) {
        TestData data = new TestData();
        int dOut = 128;
        int dIn = 256;
        int tokens = 3;
        FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, 200, data.seed, 110f);
        float[] coeffs = data.gaussian(200);
        float[][] inputs = {data.gaussian(tokens * dIn), data.gaussian(tokens * dOut), data.gaussian(tokens * dOut),
            data.gaussian(tokens * dIn)}; // x, y, ∂L/∂y, ∂L/∂x
        List<float[]> results = new ArrayList<>();
        for (int offset : new int[] {0, 1}) {
            DeviceBuffer[] buffers = new DeviceBuffer[inputs.length];
            try (DeviceBuffer c = upload(DType.FLOAT32, coeffs);
                 DeviceBuffer gc = upload(DType.FLOAT32, new float[200]);
                 CudaStream stream = cuda.createStream()) {
                org.spectralpeft.cuda.DeviceArray[] views = new org.spectralpeft.cuda.DeviceArray[inputs.length];
                for (int i = 0; i < inputs.length; i++) {
                    float[] padded = new float[inputs[i].length + 1];
                    System.arraycopy(inputs[i], 0, padded, offset, inputs[i].length);
                    buffers[i] = upload(dtype, padded);
                    views[i] = buffers[i].array().slice(offset, inputs[i].length);
                }
                List<String> stages = stagesOf("fused", () -> {
                    cuda.forward(spec, c.array(), views[0], tokens, views[1], stream);
                    cuda.backward(spec, c.array(), views[0], views[2], tokens, gc.array(), views[3], stream);
                });
                stream.synchronize();
                assertTrue(stages.contains(FourierFTKernels.FORWARD_FUSED) && stages.contains(FourierFTKernels.BACKWARD_FUSED),
                        "the fused kernels: " + stages);
                results.add(Arrays.copyOfRange(download(buffers[1]), offset, offset + tokens * dOut));
                results.add(Arrays.copyOfRange(download(buffers[3]), offset, offset + tokens * dIn));
                results.add(download(gc));
            } finally {
                for (DeviceBuffer b : buffers) {
                    if (b != null) {
                        b.close();
                    }
                }
            }
        }
        String[] names = {"y", "∂L/∂x", "∂L/∂c"};
        for (int i = 0; i < names.length; i++) {
            assertArrayEquals(results.get(i), results.get(i + names.length), names[i] + ", " + dtype + data.tag());
        }
        assertFalse(Arrays.equals(results.get(0), HostArray.of(dtype, inputs[1]).toFloats()), "y written");
    }

    @Test
    void repeatsGiveTheSameBits() {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(256, 512, 300, data.seed, 100f);
        float[] coeffs = data.gaussian(300);
        float[] x = data.gaussian(5 * 512);
        float[] y0 = data.gaussian(5 * 256);
        float[] first = fusedForward(spec, coeffs, DType.FLOAT32, x, 5, DType.FLOAT32, y0);
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(first, fusedForward(spec, coeffs, DType.FLOAT32, x, 5, DType.FLOAT32, y0),
                    "repeat " + i + data.tag());
        }
    }

    /**
     * Layers the kernel does not take keep the cuFFT route under the property: odd lengths, halves with an odd factor
     * other than 1, 3, 5 and 7 (11, 9), length 1.
     */
    @ParameterizedTest(name = "{0}x{1}")
    @CsvSource({"37, 29", "64, 22", "36, 64", "1, 64", "64, 1"})
    void otherLayersKeepTheCufftRoute(int dOut, int dIn) {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, Math.min(20, dOut * dIn), data.seed, 150f);
        try (DeviceBuffer c = upload(DType.FLOAT32, data.gaussian(spec.n()));
             DeviceBuffer dx = upload(DType.FLOAT32, data.gaussian(2 * dIn));
             DeviceBuffer dy = upload(DType.FLOAT32, data.gaussian(2 * dOut));
             CudaStream stream = cuda.createStream()) {
            List<String> stages = stagesOf("fused",
                    () -> cuda.forward(spec, c.array(), dx.array(), 2, dy.array(), stream));
            stream.synchronize();
            assertTrue(!stages.isEmpty() && !fused(stages), "stages " + stages);
        }
    }

    /** A pool of count adapters of a 64 × 128 layer alternating two index sets of different n, under three α's each. */
    private static FourierFTAdapterPool fusedPool(TestData data, int count) {
        FourierFTSpec[] sets = {FourierFTSpec.fromSeed(64, 128, 90, 5, 120f), FourierFTSpec.fromSeed(64, 128, 40, 6, 80f)};
        FourierFTAdapterPool pool = new FourierFTAdapterPool(64, 128);
        for (int i = 0; i < count; i++) {
            FourierFTSpec set = sets[i % 2];
            pool.add(i, set.withAlpha(set.alpha() * (1 + (i / 2) % 3)), data.gaussian(set.n())); // α, 2α, 3α in turn
        }
        return pool;
    }

    /** tokens ids over count adapters: repeats, runs of one id and −1s, the first token with an adapter. */
    private static int[] mixedIds(TestData data, int count, int tokens) {
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 6 == 5 ? -1 : t % 4 == 1 ? ids[t - 1] : data.nextInt(count);
        }
        ids[0] = Math.max(ids[0], 0);
        return ids;
    }

    /** A mixed batch to check: its pool and ids, the dtype of its arrays, and every stride-th used adapter checked. */
    private record MixedCase(FourierFTAdapterPool pool, int[] ids, DType dtype, int stride, TestData data, String label) {
    }

    /** 1, 7 and 100 adapters in every dtype (every 4th adapter checked with 100), fresh data each. */
    private static List<MixedCase> mixedCases() {
        List<MixedCase> cases = new ArrayList<>();
        for (int count : new int[] {1, 7, 100}) {
            for (DType dtype : DType.values()) {
                TestData data = new TestData();
                FourierFTAdapterPool pool = fusedPool(data, count);
                cases.add(new MixedCase(pool, mixedIds(data, count, Math.max(23, count + count / 2)), dtype,
                        count >= 100 ? 4 : 1, data, count + " adapters, " + dtype));
            }
        }
        return cases;
    }

    /** A thousand adapters of two index sets, 1500 tokens: every adapter, then repeats; every 11th adapter checked. */
    private static MixedCase thousandAdapters(DType dtype) {
        TestData data = new TestData();
        int[] ids = new int[1500];
        for (int t = 0; t < ids.length; t++) {
            ids[t] = t % 5 == 4 ? -1 : t < 1000 ? (t * 7) % 1000 : data.nextInt(1000);
        }
        return new MixedCase(fusedPool(data, 1000), ids, dtype, 11, data, "1000 adapters, " + dtype);
    }

    /**
     * A mixed batch through the fused kernel (one launch per index set), the route that serves power-of-two layers:
     * each checked token's bits are those of the single-adapter fused forward of that token with its adapter, and
     * tokens with −1 keep theirs.
     */
    @Test
    void aMixedBatchIsEachTokenThroughTheFusedForwardAlone() {
        mixedCases().forEach(FourierFTFusedForwardTest::assertMixedForwardAsEachTokenAlone);
    }

    @Test
    void aThousandAdaptersThroughTheFusedForwardEqualSampledTokensAlone() {
        assertMixedForwardAsEachTokenAlone(thousandAdapters(DType.FLOAT16));
    }

    /**
     * The mixed forward on device arrays against every stride-th used adapter's single-adapter fused forward of its
     * tokens (one call for all of them: a token's block depends on nothing but its own row), bit for bit; every token
     * without an adapter keeps its bits.
     */
    private static void assertMixedForwardAsEachTokenAlone(MixedCase c) {
        int[] ids = c.ids();
        int dOut = c.pool().dOut();
        int dIn = c.pool().dIn();
        int tokens = ids.length;
        float[] x = HostArray.of(c.dtype(), c.data().gaussian(tokens * dIn)).toFloats();
        float[] y0 = HostArray.of(c.dtype(), c.data().gaussian(tokens * dOut)).toFloats();
        float[] y;
        try (DeviceBuffer dx = upload(c.dtype(), x);
             DeviceBuffer dy = upload(c.dtype(), y0);
             CudaStream stream = cuda.createStream()) {
            List<String> stages = stagesOf("fused", () -> cuda.forward(c.pool(), ids, dx.array(), tokens, dy.array(), stream));
            stream.synchronize();
            assertEquals(List.of(FourierFTKernels.FORWARD_FUSED), stages, "one stage label (a launch per set), " + c.label());
            y = download(dy);
        }
        List<Integer> used = usedInFirstUseOrder(ids);
        for (int u = 0; u < used.size(); u += c.stride()) {
            int id = used.get(u);
            int[] rows = java.util.stream.IntStream.range(0, tokens).filter(t -> ids[t] == id).toArray();
            FourierFTAdapterPool.Adapter a = c.pool().adapter(id);
            float[] want = fusedForward(a.spec(), a.coefficientsCopy(), c.dtype(), rowsOf(x, rows, dIn), rows.length, c.dtype(),
                    rowsOf(y0, rows, dOut));
            assertArrayEquals(want, rowsOf(y, rows, dOut), c.label() + ", the tokens of adapter " + id + c.data().tag());
        }
        for (int t = 0; t < tokens; t++) {
            if (ids[t] < 0) {
                assertArrayEquals(Arrays.copyOfRange(y0, t * dOut, (t + 1) * dOut),
                        Arrays.copyOfRange(y, t * dOut, (t + 1) * dOut), c.label() + ", token " + t + " without adapter");
            }
        }
    }

    /** The ids other than −1, each once, in the order tokens first use them. */
    private static List<Integer> usedInFirstUseOrder(int[] ids) {
        return new ArrayList<>(new java.util.LinkedHashSet<>(Arrays.stream(ids).filter(id -> id >= 0).boxed().toList()));
    }

    /** Rows {@code rows} of a row-major array of rows of {@code width}, concatenated. */
    private static float[] rowsOf(float[] all, int[] rows, int width) {
        float[] out = new float[rows.length * width];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(all, rows[i] * width, out, i * width, width);
        }
        return out;
    }

    /**
     * The mixed backward on the fused route: each checked adapter's ∂L/∂c is its single-adapter fused backward on its
     * tokens alone, their tokens' ∂L/∂x their own, and every token with −1 keeps gradX.
     */
    @Test
    void aMixedBackwardThroughTheFusedKernelEqualsEachAdapterAlone() {
        mixedCases().forEach(FourierFTFusedForwardTest::assertMixedBackwardAsEachAdapterAlone);
    }

    @Test
    void aThousandAdaptersBackwardThroughTheFusedKernelEqualSampledAdaptersAlone() {
        assertMixedBackwardAsEachAdapterAlone(thousandAdapters(DType.BFLOAT16));
    }

    /**
     * The mixed backward (host arrays, the fused route) against every stride-th used adapter's single-adapter backward
     * on its tokens alone: ∂L/∂c to float32 rounding (the tiles of its tokens may split differently), its tokens'
     * ∂L/∂x rows what was there plus their own, rounded once into the dtype; every token without an adapter untouched.
     */
    private static void assertMixedBackwardAsEachAdapterAlone(MixedCase c) {
        int[] ids = c.ids();
        int dOut = c.pool().dOut();
        int dIn = c.pool().dIn();
        int tokens = ids.length;
        float[] x = HostArray.of(c.dtype(), c.data().gaussian(tokens * dIn)).toFloats();
        float[] gy = HostArray.of(c.dtype(), c.data().gaussian(tokens * dOut)).toFloats();
        float[] gx0 = HostArray.of(c.dtype(), c.data().gaussian(tokens * dIn)).toFloats();
        HostArray gx = HostArray.of(c.dtype(), gx0);
        List<Map<Integer, float[]>> result = new ArrayList<>();
        List<String> stages = stagesOf("fused", () -> result.add(cuda.backward(c.pool(), ids, HostArray.of(c.dtype(), x),
                HostArray.of(c.dtype(), gy), tokens, gx)));
        assertEquals(FourierFTKernels.BACKWARD_FUSED, stages.get(0), "the fused route: " + stages);
        Map<Integer, float[]> grads = result.get(0);
        List<Integer> used = usedInFirstUseOrder(ids);
        assertEquals(used, new ArrayList<>(grads.keySet()), "the used adapters in first-use order, " + c.label());
        float[] got = gx.toFloats();
        float tolerance = (float) Math.max(1e-5, TestData.tolerance(c.dtype()));
        for (int u = 0; u < used.size(); u += c.stride()) {
            int id = used.get(u);
            int[] rows = java.util.stream.IntStream.range(0, tokens).filter(t -> ids[t] == id).toArray();
            float[] xs = rowsOf(x, rows, dIn);
            float[] gs = rowsOf(gy, rows, dOut);
            FourierFTAdapterPool.Adapter a = c.pool().adapter(id);
            float[] alone = new float[a.spec().n()];
            float[] gxAlone = new float[rows.length * dIn];
            List<String> aloneStages = stagesOf("fused", () -> cuda.backward(a.spec(), a.coefficientsCopy(),
                    HostArray.of(c.dtype(), xs), HostArray.of(c.dtype(), gs), rows.length, alone, HostArray.float32(gxAlone)));
            assertEquals(fusedBackwardStages(dIn, dOut), aloneStages, "the single adapter's fused backward");
            String what = c.label() + ", adapter " + id + c.data().tag();
            double err = TestData.relativeError(TestData.toDouble(grads.get(id)), TestData.toDouble(alone));
            assertTrue(err <= 1e-5, what + ": ∂L/∂c relative error " + err);
            for (int i = 0; i < rows.length; i++) {
                for (int k = 0; k < dIn; k++) {
                    float want = gx0[rows[i] * dIn + k] + gxAlone[i * dIn + k];
                    assertEquals(want, got[rows[i] * dIn + k], tolerance * (1 + Math.abs(want)),
                            "gradX token " + rows[i] + ", " + what);
                }
            }
        }
        for (int t = 0; t < tokens; t++) {
            if (ids[t] < 0) {
                assertArrayEquals(Arrays.copyOfRange(gx0, t * dIn, (t + 1) * dIn), Arrays.copyOfRange(got, t * dIn,
                        (t + 1) * dIn), c.label() + ", token " + t + " without adapter");
            }
        }
    }

    /**
     * The backward through {@code fourierft_backward_fused} (both transforms in shared memory, each token's ∂L/∂c
     * products and its ∂L/∂x in one launch, then the products' sums) against the reference, with and without ∂L/∂x;
     * the route read from the launches.
     */
    @ParameterizedTest(name = "{0}x{1} n={2} T={3} {4} gradX={5}")
    @CsvSource({"4, 8, 10, 3, FLOAT32, true", "64, 16, 60, 5, BFLOAT16, true", "128, 256, 150, 2, FLOAT32, true",
        "2, 64, 9, 4, FLOAT16, true", "24, 56, 40, 3, FLOAT32, true", "96, 80, 100, 70, FLOAT32, true",
        "64, 128, 80, 130, FLOAT32, false", "768, 768, 24, 2, BFLOAT16, false"})
    void theFusedBackwardMatchesTheReference(int dOut, int dIn, int n, int tokens, DType dtype, boolean withGradX) {
        TestData data = new TestData();
        float alpha = (float) (50 + 200 * data.nextDouble());
        FourierFTSpec spec = FourierFTSpec.ofFlat(dOut, dIn, data.distinctIndices(dOut * dIn, n), alpha);
        FourierFTReference ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), alpha);
        float[] coeffs = data.gaussian(n);
        float[] x = HostArray.of(dtype, data.gaussian(tokens * dIn)).toFloats();
        float[] gy = HostArray.of(dtype, data.gaussian(tokens * dOut)).toFloats();
        double[] wantC = ref.backwardCoefficients(TestData.toDouble(x), TestData.toDouble(gy), tokens);
        float[] gx0 = HostArray.of(dtype, data.gaussian(tokens * dIn)).toFloats();
        float[] poison = new float[n];
        Arrays.fill(poison, Float.NaN);
        try (DeviceBuffer c = upload(DType.FLOAT32, coeffs);
             DeviceBuffer dx = upload(dtype, x);
             DeviceBuffer dgy = upload(dtype, gy);
             DeviceBuffer gc = upload(DType.FLOAT32, poison);
             DeviceBuffer gx = upload(dtype, gx0);
             CudaStream stream = cuda.createStream()) {
            List<String> stages = stagesOf("fused", () -> cuda.backward(spec, c.array(), dx.array(), dgy.array(), tokens,
                    gc.array(), withGradX ? gx.array() : null, stream));
            stream.synchronize();
            assertEquals(fusedBackwardStages(dIn, dOut), stages, "the fused backward's launches");
            double errC = TestData.relativeError(TestData.toDouble(download(gc)), wantC);
            assertTrue(errC <= 1e-5, "∂L/∂c relative error " + errC + " " + spec + data.tag());
            float[] gotX = download(gx);
            if (withGradX) {
                double[] addedX = ref.backwardInput(TestData.toDouble(coeffs), TestData.toDouble(gy), tokens);
                double errX = TestData.accumulatedError(TestData.toDouble(gotX), TestData.toDouble(gx0), addedX);
                assertTrue(errX <= TestData.tolerance(dtype), "∂L/∂x relative error " + errX + " " + spec + data.tag());
            } else {
                assertArrayEquals(gx0, gotX, "no ∂L/∂x asked: gradX untouched");
            }
        }
    }

    /**
     * A mixed batch's backward under the property (two index sets, repeats, −1s, adapters of more than one tile of
     * tokens): every adapter's ∂L/∂c and every token's ∂L/∂x agree with the cuFFT route's to float32 rounding, tokens
     * without an adapter keep their ∂L/∂x, and the route is the fused kernel's.
     */
    @Test
    void aMixedBackwardThroughTheFusedKernelAgreesWithTheCufftRoute() {
        TestData data = new TestData();
        int dOut = 32;
        int dIn = 64;
        FourierFTSpec[] sets = {FourierFTSpec.fromSeed(dOut, dIn, 50, 8, 120f), FourierFTSpec.fromSeed(dOut, dIn, 20, 9, 60f)};
        FourierFTAdapterPool pool = new FourierFTAdapterPool(dOut, dIn);
        for (int i = 0; i < 6; i++) {
            FourierFTSpec set = sets[i % 2];
            pool.add(i, set.withAlpha(set.alpha() * (1 + (i / 2) % 3)), data.gaussian(set.n())); // α, 2α, 3α in turn
        }
        int tokens = 171; // adapter 0 gets more than one tile of 64
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 7 == 6 ? -1 : t < 100 ? 0 : data.nextInt(6);
        }
        HostArray x = HostArray.float32(data.gaussian(tokens * dIn));
        HostArray gy = HostArray.float32(data.gaussian(tokens * dOut));
        float[] gx0 = data.gaussian(tokens * dIn);
        HostArray gxCufft = HostArray.float32(gx0.clone());
        HostArray gxFused = HostArray.float32(gx0.clone());
        List<Map<Integer, float[]>> grads = new ArrayList<>(); // the cuFFT route's, then the fused one's
        List<String> cufftStages = stagesOf("cufft", () -> grads.add(cuda.backward(pool, ids, x, gy, tokens, gxCufft)));
        List<String> fusedStages = stagesOf("fused", () -> grads.add(cuda.backward(pool, ids, x, gy, tokens, gxFused)));
        assertTrue(!fused(cufftStages), "cuFFT route: " + cufftStages);
        assertEquals(List.of(FourierFTKernels.BACKWARD_FUSED, FourierFTKernels.COEFF_GRAD_ROWS,
                FourierFTKernels.COEFF_GRAD_REDUCE_MIXED), fusedStages, "fused route (per index set)");
        assertEquals(grads.get(0).keySet(), grads.get(1).keySet());
        grads.get(0).forEach((id, g) -> {
            double err = TestData.relativeError(TestData.toDouble(grads.get(1).get(id)), TestData.toDouble(g));
            assertTrue(err <= 1e-5, "∂L/∂c of adapter " + id + ": " + err + data.tag());
        });
        float[] a = gxCufft.toFloats();
        float[] b = gxFused.toFloats();
        for (int t = 0; t < tokens; t++) {
            float[] rowA = Arrays.copyOfRange(a, t * dIn, (t + 1) * dIn);
            float[] rowB = Arrays.copyOfRange(b, t * dIn, (t + 1) * dIn);
            if (ids[t] == -1) {
                assertArrayEquals(Arrays.copyOfRange(gx0, t * dIn, (t + 1) * dIn), rowB, "token " + t + " untouched");
            } else {
                double err = TestData.relativeError(TestData.toDouble(rowB), TestData.toDouble(rowA));
                assertTrue(err <= 1e-5, "∂L/∂x of token " + t + ": " + err + data.tag());
            }
        }
    }

    /** Tokens strided over fewer blocks than tokens (a coefficient row restaged per change of row): the same bits. */
    @Test
    void tokensStridedOverFewerBlocksGiveTheSameBits() {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(32, 16, 30, data.seed, 90f);
        int tokens = 11;
        int[] tokenRow = new int[tokens];
        float[] rowBits = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            tokenRow[t] = t % 5 == 2 ? 0 : 1 + (t / 2) % 3;
            rowBits[t] = Float.intBitsToFloat(tokenRow[t]);
        }
        float[] y0 = data.gaussian(tokens * 32);
        try (DeviceSpecTables tables = new DeviceSpecTables(spec);
             DeviceBuffer x = upload(DType.FLOAT32, data.gaussian(tokens * 16));
             DeviceBuffer table = upload(DType.FLOAT32, data.gaussian(3 * 30));
             DeviceBuffer rows = upload(DType.FLOAT32, rowBits);
             DeviceBuffer halfScales = upload(DType.FLOAT32, new float[] {0.5f * spec.scale(), 0.25f, -1.5f});
             DeviceBuffer y = upload(DType.FLOAT32, y0);
             CudaStream stream = cuda.createStream();
             FourierFTKernels kernels = new FourierFTKernels(cuda.context().computeCapability(), true)) {
            float[] want = null;
            for (int blocks : new int[] {tokens, 3, 1}) {
                y.copyFrom(HostArray.float32(y0));
                kernels.forwardFused(x.array().address(), DType.FLOAT32.code(), 16, y.array().address(),
                        DType.FLOAT32.code(), 32, table.array().address(), 30, rows.array().address(),
                        halfScales.array().address(), tables.forward, tables, Float.NaN, tokens, blocks, stream);
                stream.synchronize();
                float[] got = download(y);
                if (want == null) {
                    want = got;
                    for (int t = 0; t < tokens; t++) {
                        float[] row = Arrays.copyOfRange(got, t * 32, (t + 1) * 32);
                        float[] old = Arrays.copyOfRange(y0, t * 32, (t + 1) * 32);
                        assertEquals(tokenRow[t] == 0, Arrays.equals(row, old), "token " + t + " changed iff it has a row");
                    }
                } else {
                    assertArrayEquals(want, got, blocks + " blocks" + data.tag());
                }
            }
        }
    }
}
