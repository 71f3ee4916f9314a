package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.spectralpeft.fourierft.FourierFTBackendContract;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.FftPlans;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.cpu.CpuFourierFT;
import org.spectralpeft.reference.FourierFTReference;

/**
 * The whole backend contract on the GPU (through the host-array methods), plus what only the device
 * path has: foreign pointers and caller streams, dtype checks on device arrays, concurrent streams,
 * repeated calls without leaks. Skips, with the reason, where CUDA is not available.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaFourierFTTest extends FourierFTBackendContract {
    private static CudaFourierFT cuda;

    @BeforeAll
    static void open() {
        // On a GPU, synchronize after each launch so a faulting kernel is named at its launch. The CUDA emulator
        // runs set it to false: it reports faults at the launch anyway, and the extra synchronizations would
        // hide a missing one from its ordering check.
        if (System.getProperty("spectralpeft.cuda.debug") == null) {
            System.setProperty("spectralpeft.cuda.debug", "true");
        }
        cuda = CudaFourierFT.open();
        System.out.println("GPU tests on " + cuda.description() + ", kernels " + cuda.kernelVariant());
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    @Override
    protected FourierFTBackend backend() {
        return cuda;
    }

    /** Fewer adapters than on the CPU: each token's check is a host call of its own, slow on the emulator. */
    @Override
    protected int[] mixedAdapterCounts() {
        return new int[] {1, 7, 100};
    }

    /** cuFFT may order its sums differently for a batch of one token and a batch of many. */
    @Override
    protected boolean mixedBatchBitwise() {
        return false;
    }

    /** sm_90 machine code on H100/H200, the Hopper PTX on later devices, the portable PTX before. */
    @Test
    void eachDeviceGenerationLoadsItsKernelImage() {
        String d = cuda.description();
        if (d.contains("sm_90")) {
            assertEquals("fourierft.sm_90.cubin", cuda.kernelVariant());
        } else if (d.contains("sm_9") || d.contains("sm_1")) {
            assertEquals("fourierft.compute_90.ptx", cuda.kernelVariant());
        } else {
            assertEquals("fourierft.compute_75.ptx", cuda.kernelVariant());
        }
    }

    /** upload: a buffer of the host array's dtype and length holding its bits; null refused. */
    @ParameterizedTest
    @EnumSource(DType.class)
    void uploadCopiesTheHostArray(DType dtype) {
        TestData data = new TestData();
        HostArray host = HostArray.of(dtype, data.gaussian(37));
        try (DeviceBuffer b = cuda.context().upload(host)) {
            assertEquals(dtype, b.array().dtype());
            assertEquals(37, b.array().length());
            HostArray back = TestData.poisoned(dtype, 37);
            b.copyTo(back);
            for (int i = 0; i < 37; i++) {
                assertEquals(Float.floatToRawIntBits(host.get(i)), Float.floatToRawIntBits(back.get(i)), "element " + i);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> cuda.context().upload(null));
    }

    /** The device entry points on library buffers wrapped as foreign pointers, on a caller's stream. */
    @Test
    void devicePathWithForeignPointersMatchesReference() {
        TestData data = new TestData();
        int dOut = 96;
        int dIn = 80;
        int n = 70;
        int layers = 4;
        FourierFTSpec spec = FourierFTSpec.ofFlat(dOut, dIn, data.distinctIndices(dOut * dIn, n), 150f);
        FourierFTReference ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), 150.0);
        float[] coeffs = data.gaussian(layers * n);
        try (CudaStream stream = cuda.createStream();
             DeviceBuffer c = cuda.allocate(DType.FLOAT32, coeffs.length);
             DeviceBuffer out = cuda.allocate(DType.BFLOAT16, (long) layers * dOut * dIn)) {
            c.copyFrom(HostArray.float32(coeffs));
            HostArray poison = TestData.poisoned(DType.BFLOAT16, layers * dOut * dIn);
            out.copyFrom(poison);
            DeviceArray foreignCoeffs = DeviceArray.foreign(c.array().address(), coeffs.length, DType.FLOAT32);
            DeviceArray foreignOut = DeviceArray.foreign(out.array().address(), (long) layers * dOut * dIn, DType.BFLOAT16);
            CudaStream foreignStream = CudaStream.foreign(stream.handle());
            cuda.materialize(spec, foreignCoeffs, layers, foreignOut, foreignStream);
            cuda.synchronize(stream);
            HostArray host = HostArray.allocate(DType.BFLOAT16, layers * dOut * dIn);
            out.copyTo(host);
            double[] all = TestData.toDouble(host);
            for (int layer = 0; layer < layers; layer++) {
                double[] lc = TestData.toDouble(java.util.Arrays.copyOfRange(coeffs, layer * n, (layer + 1) * n));
                double[] got = java.util.Arrays.copyOfRange(all, layer * dOut * dIn, (layer + 1) * dOut * dIn);
                double err = TestData.relativeError(got, ref.deltaW(lc));
                assertTrue(err < 1e-2, "layer " + layer + " bf16 error " + err + data.tag());
            }
        }
    }

    @Test
    void deviceArraysOfTheWrongDtypeOrLengthAreRejected() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(16, 12, 9);
        try (CudaStream stream = cuda.createStream();
             DeviceBuffer bf = cuda.allocate(DType.BFLOAT16, 9);
             DeviceBuffer coeffs = cuda.allocate(DType.FLOAT32, 9);
             DeviceBuffer out = cuda.allocate(DType.FLOAT32, 16 * 12);
             DeviceBuffer shortOut = cuda.allocate(DType.FLOAT32, 16 * 12 - 1)) {
            expectMessage("coeffs must be float32, got BFLOAT16",
                    () -> cuda.materialize(spec, bf.array(), 1, out.array(), stream));
            // arguments are checked in order, so the coefficients must be right for the output's check to speak
            expectMessage("coeffs has 192 elements, expected 9",
                    () -> cuda.materialize(spec, out.array(), 1, out.array(), stream));
            expectMessage("out has 191 elements, expected 192",
                    () -> cuda.materialize(spec, coeffs.array(), 1, shortOut.array(), stream));
            expectMessage("gradCoeffs must be float32",
                    () -> cuda.gradCoefficients(spec, out.array(), bf.array(), stream));
            expectMessage("stream must not be null", () -> cuda.merge(spec, bf.array(), out.array(), null));
        }
        assertThrows(IllegalArgumentException.class, () -> DeviceArray.foreign(0L, 4, DType.FLOAT32));
    }

    @Test
    void gpuAgreesWithCpuAtLayerSize() {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(768, 768, 2000, data.seed, 300f);
        float[] coeffs = data.gaussian(2000);
        HostArray gpu = HostArray.allocate(DType.FLOAT32, 768 * 768);
        HostArray cpu = HostArray.allocate(DType.FLOAT32, 768 * 768);
        cuda.materialize(spec, coeffs, gpu);
        try (CpuFourierFT c = new CpuFourierFT()) {
            c.materialize(spec, coeffs, cpu);
        }
        double err = TestData.relativeError(TestData.toDouble(gpu), TestData.toDouble(cpu));
        assertTrue(err < 1e-5, "GPU vs CPU " + err + data.tag());
    }

    /**
     * Specs that differ only in α (one made by withAlpha, sharing the tables, one built again from the seed) share
     * one entry of device tables, and every operation still scales by its own spec's α: each call, in turns of
     * α's, against the CPU backend. The shapes take every path that reads the tables: column synthesis and its
     * gradient (37 × 29), the dense C2R (40 × 12, n = 400), rows of ΔWᵀ along d_out (64 × 101), a 1-D layer (50 × 1),
     * the fused forward and backward (64 × 128).
     */
    @ParameterizedTest
    @CsvSource({"37, 29, 60", "40, 12, 400", "64, 101, 50", "50, 1, 20", "64, 128, 200"})
    void specsDifferingOnlyInAlphaShareTheirDeviceTablesAndKeepTheirScales(int dOut, int dIn, int n) {
        TestData data = new TestData();
        FourierFTSpec first = FourierFTSpec.fromSeed(dOut, dIn, n, data.seed, 150f);
        FourierFTSpec[] turns = {first, first.withAlpha(40f), FourierFTSpec.fromSeed(dOut, dIn, n, data.seed, -75f), first};
        float[] coeffs = data.gaussian(n);
        int tokens = 5;
        HostArray x = HostArray.float32(data.gaussian(tokens * dIn));
        HostArray gy = HostArray.float32(data.gaussian(tokens * dOut));
        HostArray gradDeltaW = HostArray.float32(data.gaussian(dOut * dIn));
        float[] weight = data.gaussian(dOut * dIn);
        float[] y0 = data.gaussian(tokens * dOut);
        float[] gx0 = data.gaussian(tokens * dIn);
        try (CudaFourierFT backend = CudaFourierFT.open(cuda.context()); CpuFourierFT cpu = new CpuFourierFT()) {
            for (FourierFTSpec spec : turns) {
                String tag = " at alpha " + spec.alpha() + data.tag();
                HostArray got = TestData.poisoned(DType.FLOAT32, dOut * dIn);
                HostArray want = HostArray.allocate(DType.FLOAT32, dOut * dIn);
                backend.materialize(spec, coeffs, got);
                cpu.materialize(spec, coeffs, want);
                assertClose(want, got, "materialize" + tag);
                got = HostArray.float32(weight.clone());
                want = HostArray.float32(weight.clone());
                backend.merge(spec, coeffs, got);
                cpu.merge(spec, coeffs, want);
                assertClose(want, got, "merge" + tag);
                got = HostArray.float32(y0.clone());
                want = HostArray.float32(y0.clone());
                backend.forward(spec, coeffs, x, tokens, got);
                cpu.forward(spec, coeffs, x, tokens, want);
                assertClose(want, got, "forward" + tag);
                float[] gotC = new float[n];
                float[] wantC = new float[n];
                got = HostArray.float32(gx0.clone());
                want = HostArray.float32(gx0.clone());
                backend.backward(spec, coeffs, x, gy, tokens, gotC, got);
                cpu.backward(spec, coeffs, x, gy, tokens, wantC, want);
                assertClose(want, got, "backward's gradX" + tag);
                assertClose(HostArray.float32(wantC), HostArray.float32(gotC), "backward's gradCoeffs" + tag);
                backend.gradCoefficients(spec, gradDeltaW, gotC);
                cpu.gradCoefficients(spec, gradDeltaW, wantC);
                assertClose(HostArray.float32(wantC), HostArray.float32(gotC), "gradCoefficients" + tag);
            }
            assertEquals(1, backend.cachedIndexSets(), "one entry of device tables for the index set" + data.tag());
        }
    }

    private static void assertClose(HostArray want, HostArray got, String what) {
        double err = TestData.relativeError(TestData.toDouble(got), TestData.toDouble(want));
        assertTrue(err < 1e-5, what + ": relative error " + err);
    }

    @Test
    void concurrentCallsOnSeparateStreamsAreCorrect() throws Exception {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(200, 150, 300, data.seed, 150f);
        FourierFTReference ref = new FourierFTReference(200, 150, spec.rows(), spec.cols(), 150.0);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Double>> results = new ArrayList<>();
            for (int task = 0; task < 8; task++) {
                float[] coeffs = data.gaussian(300);
                results.add(pool.submit(() -> {
                    HostArray out = HostArray.allocate(DType.FLOAT32, 200 * 150);
                    for (int rep = 0; rep < 5; rep++) {
                        cuda.materialize(spec, coeffs, out);
                    }
                    return TestData.relativeError(TestData.toDouble(out), ref.deltaW(TestData.toDouble(coeffs)));
                }));
            }
            for (Future<Double> f : results) {
                double err = f.get();
                assertTrue(err < 1e-5, "concurrent materialize error " + err + data.tag());
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void repeatedCallsDoNotLeakDeviceMemory() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(1024, 1024, 1000);
        float[] coeffs = new TestData().gaussian(1000);
        HostArray out = HostArray.allocate(DType.FLOAT16, 1024 * 1024);
        HostArray w = HostArray.allocate(DType.BFLOAT16, 1024 * 1024);
        for (int i = 0; i < 3; i++) { // warm up plans and the allocator's pool
            cuda.materialize(spec, coeffs, out);
            cuda.merge(spec, coeffs, w);
        }
        long before = freeDeviceMemory();
        for (int i = 0; i < 30; i++) {
            cuda.materialize(spec, coeffs, out);
            cuda.merge(spec, coeffs, w);
            cuda.unmerge(spec, coeffs, w);
        }
        long after = freeDeviceMemory();
        assertTrue(before - after < (16L << 20), "free device memory fell by " + (before - after) + " bytes over 90 calls");
    }

    /**
     * The scratch a materialize and a merge call actually take (the pool's peak) is what
     * materializeScratch / mergeScratch say (the row buffer or half spectrum plus cuFFT's work
     * area), on the column-synthesis path in one chunk (1024×1536 and 4096×4096, n=1000), in several chunks
     * (4096×4096 under a 16 MiB chunk budget, so the scratch must be smaller than the half spectrum), and on
     * the dense path (40×12, n=400), for float32 and bfloat16 outputs.
     */
    @Test
    void materializeScratchIsWhatTheQuerySays() {
        TestData data = new TestData();
        for (FourierFTSpec spec : new FourierFTSpec[] {FourierFTSpec.fromSeed(1024, 1536, 1000, data.seed, 150f),
                FourierFTSpec.fromSeed(4096, 4096, 1000, data.seed, 150f),
                FourierFTSpec.fromSeed(40, 12, 400, data.seed, 150f)}) {
            scratchIsWhatTheQuerySays(cuda, spec, data, false);
        }
        String key = "spectralpeft.cuda.columnChunkBytes";
        System.setProperty(key, String.valueOf(16L << 20));
        try (CudaFourierFT small = CudaFourierFT.open()) {
            scratchIsWhatTheQuerySays(small, FourierFTSpec.fromSeed(4096, 4096, 1000, data.seed, 150f), data, true);
        } finally {
            System.clearProperty(key);
        }
    }

    private static void scratchIsWhatTheQuerySays(CudaFourierFT backend, FourierFTSpec spec, TestData data,
                                                  boolean chunked) {
        long slack = 4L << 21; // the pool may round each of a call's (at most four) allocations up to 2 MiB
        long halfSpectrum = 8L * spec.dOut() * spec.halfIn();
        for (DType dtype : new DType[] {DType.FLOAT32, DType.BFLOAT16}) {
            try (CudaStream stream = backend.createStream();
                 DeviceBuffer c = backend.allocate(DType.FLOAT32, spec.n());
                 DeviceBuffer out = backend.allocate(dtype, (long) spec.dOut() * spec.dIn())) {
                c.copyFrom(HostArray.float32(data.gaussian(spec.n())));
                long expected = backend.materializeScratch(spec, 1, dtype).total();
                if (chunked) {
                    assertTrue(expected < halfSpectrum, spec + " is not chunked: scratch " + expected);
                }
                backend.synchronize(stream);
                backend.resetScratchPeak();
                backend.materialize(spec, c.array(), 1, out.array(), stream);
                backend.synchronize(stream);
                long peak = backend.scratchPeakBytes();
                assertTrue(Math.abs(peak - expected) <= slack,
                        spec + " " + dtype + ": peak " + peak + ", expected " + expected);

                long mergeExpected = backend.mergeScratch(spec, dtype).total();
                backend.synchronize(stream);
                backend.resetScratchPeak();
                backend.merge(spec, c.array(), out.array(), stream);
                backend.synchronize(stream);
                long mergePeak = backend.scratchPeakBytes();
                assertTrue(Math.abs(mergePeak - mergeExpected) <= slack,
                        spec + " " + dtype + " merge: peak " + mergePeak + ", expected " + mergeExpected);
            }
        }
    }

    /**
     * The chunked column-synthesis path with the chunk budget forced small, against the float64 reference:
     * materialize (float32 and bfloat16) and merge/unmerge of several layers. Cases: layers split into
     * 32-row chunks with a partial last one; odd d_in, where float32 chunks alternate between the direct
     * C2R and the epilogue (odd first rows are not 8-byte aligned); several whole layers per chunk with a
     * remainder chunk (5 layers, 2 per chunk). Rows of ΔWᵀ written as columns ({@code transformsAlongOut}):
     * 301x201 (201 = 3·67 against 301 = 7·43), 40x86 (a small 4096x11008: 86 = 2·43) in chunks of part of a
     * layer, and 12x43 with all 5 layers in one chunk, so transpose tiles straddle layers.
     */
    @ParameterizedTest(name = "{0}x{1}, n {2}, {3} layers, {4} rows of budget")
    @CsvSource({"301,200,250,3,40", "301,201,250,3,40", "37,29,100,5,80", "40,86,120,3,24", "12,43,40,5,200"})
    void smallChunksGiveTheSameLayers(int dOut, int dIn, int n, int layers, int budgetRows) {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, n, data.seed, 150f);
        boolean transposed = CudaFourierFT.transformsAlongOut(spec);
        assertEquals(dIn % 43 == 0 || dIn == 201, transposed, "the layout this case is for");
        FourierFTSpec synthesized = transposed ? spec.transposed() : spec;
        assertTrue(CudaFourierFT.usesColumnSynthesis(synthesized, synthesized.halfSpectrumColumns().entries()),
                "the case is meant for the column-synthesis path");
        FourierFTReference ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), 150.0);
        int size = dOut * dIn;
        float[] coeffs = data.gaussian(layers * spec.n());
        double[] expected = new double[layers * size];
        for (int layer = 0; layer < layers; layer++) {
            double[] c = new double[spec.n()];
            for (int l = 0; l < c.length; l++) {
                c[l] = coeffs[layer * spec.n() + l];
            }
            System.arraycopy(ref.deltaW(c), 0, expected, layer * size, size);
        }
        double[] firstLayer = java.util.Arrays.copyOf(expected, size);
        float[] one = java.util.Arrays.copyOf(coeffs, spec.n());
        HostArray weight = HostArray.float32(data.gaussian(size));
        String key = "spectralpeft.cuda.columnChunkBytes";
        System.setProperty(key, String.valueOf(8L * spec.halfIn() * budgetRows));
        try (CudaFourierFT small = CudaFourierFT.open()) {
            for (DType dtype : new DType[] {DType.FLOAT32, DType.BFLOAT16}) {
                HostArray out = TestData.poisoned(dtype, layers * size);
                small.materializeBatch(spec, coeffs, layers, out);
                assertEquals(-1, out.firstNonFinite(), "an element was not written");
                double err = TestData.relativeError(TestData.toDouble(out), expected);
                assertTrue(err < (dtype == DType.FLOAT32 ? 1e-5 : 1e-2), dtype + ": relative error " + err + ", seed " + data.seed);
            }
            HostArray w = HostArray.float32(weight.floats().clone());
            small.merge(spec, one, w);
            double[] ours = TestData.toDouble(w);
            double[] base = TestData.toDouble(weight);
            for (int i = 0; i < size; i++) {
                ours[i] -= base[i];
            }
            double err = TestData.relativeError(ours, firstLayer);
            assertTrue(err < 1e-5, "merge: ΔW relative error " + err + ", seed " + data.seed);
            small.unmerge(spec, one, w);
            double back = TestData.relativeError(TestData.toDouble(w), base);
            assertTrue(back < 1e-6, "unmerge did not restore the weight: " + back + ", seed " + data.seed);
        } finally {
            System.clearProperty(key);
        }
    }

    @Test
    void closedBackendRefusesWork() {
        CudaFourierFT other = CudaFourierFT.open();
        other.close();
        other.close();
        FourierFTSpec spec = FourierFTSpec.fromSeed(8, 8, 4);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> other.materialize(spec, new float[4], HostArray.allocate(DType.FLOAT32, 64)));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, other::createStream);
    }

    /** A library buffer of another device is refused by name before any work (here one registered as such). */
    @Test
    void arraysOfAnotherDeviceAreRefused() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(16, 12, 9);
        long fake = 0x7d00_0000_0000L; // no allocation is here: the refusal must come before any device access
        org.spectralpeft.cuda.internal.DeviceMemoryRegistry.register(fake, 4L * 16 * 12, 1);
        try (DeviceBuffer c = cuda.allocate(DType.FLOAT32, 9); CudaStream stream = cuda.createStream()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> cuda.materialize(spec,
                    c.array(), 1, DeviceArray.foreign(fake, 16 * 12, DType.FLOAT32), stream));
            assertTrue(e.getMessage().contains("out is a buffer on CUDA device 1, but this backend runs on device 0"),
                    e.getMessage());
        } finally {
            org.spectralpeft.cuda.internal.DeviceMemoryRegistry.unregister(fake);
        }
    }

    /**
     * Backends opened on a borrowed context share it (a stream and a buffer from the context work with
     * either, and one plan cache), give the owning backend's bits, and leave it open when they close; a closed
     * context stops them.
     */
    @Test
    void backendsOnABorrowedContextShareItAndLeaveItOpen() {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(40, 36, 50, data.seed, 150f);
        float[] coeffs = data.gaussian(50);
        HostArray expected = HostArray.allocate(DType.FLOAT32, 40 * 36);
        cuda.materialize(spec, coeffs, expected);
        org.spectralpeft.cuda.CudaContext shared = org.spectralpeft.cuda.CudaContext.open(0);
        try {
            CudaFourierFT a = CudaFourierFT.open(shared);
            CudaFourierFT b = CudaFourierFT.open(shared);
            assertTrue(a.context() == shared && b.context() == shared);
            try (CudaStream stream = shared.createStream();
                 DeviceBuffer c = shared.allocate(DType.FLOAT32, 50);
                 DeviceBuffer out = shared.allocate(DType.FLOAT32, 40 * 36)) {
                c.copyFrom(HostArray.float32(coeffs));
                a.materialize(spec, c.array(), 1, out.array(), stream);
                a.synchronize(stream);
                HostArray got = HostArray.allocate(DType.FLOAT32, 40 * 36);
                out.copyTo(got);
                assertArrayEquals(expected.floats(), got.floats(), "a backend on a borrowed context");
                assertTrue(a.cachedPlans() > 0);
                assertEquals(a.cachedPlans(), b.cachedPlans(), "backends on one context share its plan cache");
                b.merge(spec, c.array(), out.array(), stream);
                b.synchronize(stream);
            }
            a.close();
            b.close();
            try (DeviceBuffer still = shared.allocate(DType.BFLOAT16, 8)) {
                still.copyFrom(HostArray.allocate(DType.BFLOAT16, 8)); // the context outlives its backends
            }
            CudaFourierFT c = CudaFourierFT.open(shared);
            shared.close();
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> c.materialize(spec, coeffs, HostArray.allocate(DType.FLOAT32, 40 * 36)));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
            c.close();
        } finally {
            shared.close();
        }
        assertThrows(IllegalArgumentException.class, () -> CudaFourierFT.open((org.spectralpeft.cuda.CudaContext) null));
    }

    @Test
    void deviceForwardMatchesHostForwardBitForBit() {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(300, 200, 500, data.seed, 150f);
        int tokens = 33;
        float[] coeffs = data.gaussian(500);
        float[] x = data.gaussian(tokens * 200);
        HostArray yHost = HostArray.allocate(DType.FLOAT32, tokens * 300);
        cuda.forward(spec, coeffs, HostArray.float32(x), tokens, yHost);
        try (CudaStream stream = cuda.createStream();
             DeviceBuffer c = cuda.allocate(DType.FLOAT32, 500);
             DeviceBuffer dx = cuda.allocate(DType.FLOAT32, tokens * 200L);
             DeviceBuffer dy = cuda.allocate(DType.FLOAT32, tokens * 300L)) {
            c.copyFrom(HostArray.float32(coeffs));
            dx.copyFrom(HostArray.float32(x));
            dy.copyFrom(HostArray.allocate(DType.FLOAT32, tokens * 300));
            cuda.forward(spec, c.array(), dx.array(), tokens, dy.array(), stream);
            cuda.synchronize(stream);
            HostArray back = HostArray.allocate(DType.FLOAT32, tokens * 300);
            dy.copyTo(back);
            assertArrayEquals(yHost.floats(), back.floats(), "device vs host-array forward" + data.tag());
        }
    }

    /** Foreign arrays that start 4 bytes into a buffer (not 8-byte aligned), on the legacy default stream. */
    @Test
    void misalignedForeignArraysOnTheLegacyStream() {
        TestData data = new TestData();
        int dOut = 40;
        int dIn = 33;
        int tokens = 9;
        FourierFTSpec spec = FourierFTSpec.ofFlat(dOut, dIn, data.distinctIndices(dOut * dIn, 50), 150f);
        FourierFTReference ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), 150.0);
        float[] coeffs = data.gaussian(50);
        float[] x = data.gaussian(tokens * dIn);
        CudaStream legacy = CudaStream.legacyDefault();
        try (DeviceBuffer c = cuda.allocate(DType.FLOAT32, 50);
             DeviceBuffer xb = cuda.allocate(DType.FLOAT32, tokens * dIn + 1L);
             DeviceBuffer yb = cuda.allocate(DType.FLOAT32, tokens * dOut + 1L);
             DeviceBuffer wb = cuda.allocate(DType.FLOAT32, dOut * dIn + 1L)) {
            c.copyFrom(HostArray.float32(coeffs));
            float[] xPadded = new float[tokens * dIn + 1];
            System.arraycopy(x, 0, xPadded, 1, x.length);
            xb.copyFrom(HostArray.float32(xPadded));
            yb.copyFrom(HostArray.allocate(DType.FLOAT32, tokens * dOut + 1));
            wb.copyFrom(TestData.poisoned(DType.FLOAT32, dOut * dIn + 1));
            DeviceArray xs = DeviceArray.foreign(xb.array().address() + 4, tokens * dIn, DType.FLOAT32);
            DeviceArray ys = DeviceArray.foreign(yb.array().address() + 4, tokens * dOut, DType.FLOAT32);
            DeviceArray ws = DeviceArray.foreign(wb.array().address() + 4, dOut * dIn, DType.FLOAT32);
            cuda.forward(spec, c.array(), xs, tokens, ys, legacy);
            cuda.materialize(spec, c.array(), 1, ws, legacy);
            cuda.synchronize(legacy);
            HostArray y = HostArray.allocate(DType.FLOAT32, tokens * dOut + 1);
            HostArray w = HostArray.allocate(DType.FLOAT32, dOut * dIn + 1);
            yb.copyTo(y);
            wb.copyTo(w);
            double[] yGot = java.util.Arrays.copyOfRange(TestData.toDouble(y), 1, tokens * dOut + 1);
            double[] wGot = java.util.Arrays.copyOfRange(TestData.toDouble(w), 1, dOut * dIn + 1);
            double[] cd = TestData.toDouble(coeffs);
            assertTrue(TestData.relativeError(yGot, ref.forward(cd, TestData.toDouble(x), tokens)) < 1e-5, "forward" + data.tag());
            assertTrue(TestData.relativeError(wGot, ref.deltaW(cd)) < 1e-5, "materialize" + data.tag());
            assertEquals(0f, y.get(0), "the float before y was written");
            assertTrue(Float.isNaN(w.get(0)), "the float before ΔW was written");
        }
    }

    /**
     * Token batches around the padding policy (FftPlans.paddedBatch): a power of two, a batch padded up to one
     * (70 → 128, 129 → 256) and one above the limit that runs unpadded in pieces (300), forward and backward,
     * on a dense spectrum (n = d_out·d_in·0.8) and a sparse one, against the float64 reference.
     */
    @ParameterizedTest(name = "T={0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {64, 70, 129, 300})
    void paddedAndUnpaddedTokenBatches(int tokens) {
        TestData data = new TestData();
        for (int[] shape : new int[][] {{40, 12, 384}, {45, 34, 60}}) {
            int dOut = shape[0];
            int dIn = shape[1];
            FourierFTSpec spec = FourierFTSpec.ofFlat(dOut, dIn, data.distinctIndices(dOut * dIn, shape[2]), 150f);
            FourierFTReference ref = new FourierFTReference(dOut, dIn, spec.rows(), spec.cols(), 150.0);
            float[] coeffs = data.gaussian(spec.n());
            float[] x = data.gaussian(tokens * dIn);
            float[] gy = data.gaussian(tokens * dOut);
            HostArray y = HostArray.float32(new float[tokens * dOut]);
            cuda.forward(spec, coeffs, HostArray.float32(x), tokens, y);
            String tag = " at " + dOut + "x" + dIn + " n=" + spec.n() + ", T=" + tokens + data.tag();
            assertTrue(TestData.relativeError(TestData.toDouble(y),
                    ref.forward(TestData.toDouble(coeffs), TestData.toDouble(x), tokens)) < 1e-5, "forward" + tag);
            float[] gradC = new float[spec.n()];
            java.util.Arrays.fill(gradC, Float.NaN);
            HostArray gx = HostArray.float32(new float[tokens * dIn]);
            cuda.backward(spec, coeffs, HostArray.float32(x), HostArray.float32(gy), tokens, gradC, gx);
            assertTrue(TestData.relativeError(TestData.toDouble(gradC), ref.backwardCoefficients(TestData.toDouble(x),
                    TestData.toDouble(gy), tokens)) < 1e-5, "backward ∂L/∂c" + tag);
            assertTrue(TestData.relativeError(TestData.toDouble(gx), ref.backwardInput(TestData.toDouble(coeffs),
                    TestData.toDouble(gy), tokens)) < 1e-5, "backward ∂L/∂x" + tag);
        }
    }

    /** Many distinct token counts share O(log) plans per shape (batches run as power-of-two pieces). */
    @Test
    void variableTokenCountsReusePlans() {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(48, 40, 60, data.seed, 150f);
        FourierFTReference ref = new FourierFTReference(48, 40, spec.rows(), spec.cols(), 150.0);
        float[] coeffs = data.gaussian(60);
        int before = cuda.cachedPlans();
        for (int tokens = 1; tokens <= 100; tokens += 3) {
            float[] x = data.gaussian(tokens * 40);
            HostArray y = HostArray.allocate(DType.FLOAT32, tokens * 48);
            cuda.forward(spec, coeffs, HostArray.float32(x), tokens, y);
            double err = TestData.relativeError(TestData.toDouble(y),
                    ref.forward(TestData.toDouble(coeffs), TestData.toDouble(x), tokens));
            assertTrue(err < 1e-5, "T=" + tokens + " error " + err + data.tag());
        }
        int added = cuda.cachedPlans() - before;
        assertTrue(added <= 2 * 7, "34 token counts created " + added + " plans");
    }

    /** More token tiles than a grid's y dimension holds (65535): the partial sums stride over tiles. */
    @Test
    void coefficientGradientOverMillionsOfTokens() {
        TestData data = new TestData();
        int tokens = 4_300_000;
        FourierFTSpec spec = FourierFTSpec.of(2, 3, new int[] {0, 1, 1}, new int[] {1, 0, 2}, 6f);
        FourierFTReference ref = new FourierFTReference(2, 3, spec.rows(), spec.cols(), 6.0);
        float[] coeffs = data.gaussian(3);
        HostArray x = HostArray.float32(data.gaussian(tokens * 3));
        HostArray gy = HostArray.float32(data.gaussian(tokens * 2));
        float[] grad = new float[3];
        cuda.backward(spec, coeffs, x, gy, tokens, grad, null);
        double err = TestData.relativeError(TestData.toDouble(grad),
                ref.backwardCoefficients(TestData.toDouble(x), TestData.toDouble(gy), tokens));
        assertTrue(err < 1e-4, "∂L/∂c over " + tokens + " tokens: error " + err + data.tag());
    }

    @Test
    void oneByOneLayersInABatch() {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.of(1, 1, new int[] {0}, new int[] {0}, 2f);
        float[] coeffs = data.gaussian(5);
        HostArray out = TestData.poisoned(DType.FLOAT32, 5);
        cuda.materializeBatch(spec, coeffs, 5, out);
        for (int i = 0; i < 5; i++) {
            assertEquals(2f * coeffs[i], out.get(i), 1e-6, "layer " + i + data.tag());
        }
    }

    @Test
    void concurrentForwardAndBackwardShareOnePlanSafely() throws Exception {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(64, 56, 90, data.seed, 150f);
        FourierFTReference ref = new FourierFTReference(64, 56, spec.rows(), spec.cols(), 150.0);
        int tokens = 64;
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<String>> results = new ArrayList<>();
            for (int task = 0; task < 8; task++) {
                float[] coeffs = data.gaussian(90);
                float[] x = data.gaussian(tokens * 56);
                float[] gy = data.gaussian(tokens * 64);
                results.add(pool.submit(() -> {
                    HostArray y = HostArray.allocate(DType.FLOAT32, tokens * 64);
                    cuda.forward(spec, coeffs, HostArray.float32(x), tokens, y);
                    float[] grad = new float[90];
                    HostArray gx = HostArray.allocate(DType.FLOAT32, tokens * 56);
                    cuda.backward(spec, coeffs, HostArray.float32(x), HostArray.float32(gy), tokens, grad, gx);
                    double[] cd = TestData.toDouble(coeffs);
                    double e1 = TestData.relativeError(TestData.toDouble(y), ref.forward(cd, TestData.toDouble(x), tokens));
                    double e2 = TestData.relativeError(TestData.toDouble(grad),
                            ref.backwardCoefficients(TestData.toDouble(x), TestData.toDouble(gy), tokens));
                    double e3 = TestData.relativeError(TestData.toDouble(gx), ref.backwardInput(cd, TestData.toDouble(gy), tokens));
                    return Math.max(e1, Math.max(e2, e3)) < 1e-5 ? "" : "errors " + e1 + ", " + e2 + ", " + e3;
                }));
            }
            for (Future<String> f : results) {
                assertEquals("", f.get(), data.tag());
            }
        } finally {
            pool.shutdown();
        }
    }

    /** Two index sets of a 37 × 29 layer, of different n. */
    private static final FourierFTSpec[] TWO_INDEX_SETS = {FourierFTSpec.fromSeed(37, 29, 20, 5, 0.3f),
        FourierFTSpec.fromSeed(37, 29, 31, 6, 0.7f)};

    /**
     * Adapters 0 … 8 of a 37 × 29 layer, even ids in the first of {@link #TWO_INDEX_SETS}, odd in the second, each
     * set's adapters under α, 3α and α/4 in turn.
     */
    private static org.spectralpeft.fourierft.FourierFTAdapterPool nineAdaptersOfTwoIndexSets(TestData data) {
        org.spectralpeft.fourierft.FourierFTAdapterPool pool = new org.spectralpeft.fourierft.FourierFTAdapterPool(37, 29);
        for (int i = 0; i < 9; i++) {
            FourierFTSpec set = TWO_INDEX_SETS[i % 2];
            pool.add(i, set.withAlpha(set.alpha() * new float[] {1f, 3f, 0.25f}[(i / 2) % 3]),
                    data.gaussian(set.n()));
        }
        return pool;
    }

    /**
     * A mixed batch on device arrays (bfloat16 x, float16 y, the caller's stream) gives the host call's bits, with
     * two index sets, repeated ids and −1s; the pool may change as soon as the call returns; bad ids and arrays
     * are refused before any work.
     */
    @Test
    void aMixedBatchOnDeviceArraysEqualsTheHostCall() {
        TestData data = new TestData();
        org.spectralpeft.fourierft.FourierFTAdapterPool pool = nineAdaptersOfTwoIndexSets(data);
        int tokens = 23;
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 6 == 5 ? -1 : data.nextInt(9);
        }
        HostArray x = HostArray.of(DType.BFLOAT16, data.gaussian(tokens * 29));
        float[] y0 = data.gaussian(tokens * 37);
        HostArray hostY = HostArray.of(DType.FLOAT16, y0);
        cuda.forward(pool, ids, x, tokens, hostY);
        HostArray viaDevice = HostArray.of(DType.FLOAT16, y0);
        try (CudaStream stream = cuda.createStream();
             DeviceBuffer dx = cuda.allocate(DType.BFLOAT16, x.length());
             DeviceBuffer dy = cuda.allocate(DType.FLOAT16, viaDevice.length())) {
            dx.copyFrom(x);
            dy.copyFrom(viaDevice);
            cuda.forward(pool, ids, dx.array(), tokens, dy.array(), stream);
            for (int i = 0; i < 9; i++) {
                pool.remove(i); // the call copied what it needs
            }
            stream.synchronize();
            dy.copyTo(viaDevice);
            org.junit.jupiter.api.Assertions.assertArrayEquals(hostY.toFloats(), viaDevice.toFloats(), data.tag());
            float[] before = viaDevice.toFloats();
            expectMessage("adapterIds[0] = " + ids[0], () -> cuda.forward(pool, ids, dx.array(), tokens, dy.array(), stream));
            expectMessage("adapterIds has 22 elements", () -> cuda.forward(pool, java.util.Arrays.copyOf(ids, 22),
                    dx.array(), tokens, dy.array(), stream));
            pool.add(3, TWO_INDEX_SETS[0], data.gaussian(20));
            expectMessage("x has", () -> cuda.forward(pool, new int[] {3}, dx.array(), 1, dy.array(), stream));
            stream.synchronize();
            dy.copyTo(viaDevice);
            org.junit.jupiter.api.Assertions.assertArrayEquals(before, viaDevice.toFloats(), "refused calls leave y alone");
        }
    }

    /**
     * A batch on device arrays whose adapters are all on the device, while the pool is unchanged, takes the device
     * lookup of its raw ids (fourierft_token_rows) and gives the host call's bits, batch after fresh batch (two index
     * sets, repeated ids, −1s); a batch of −1s launches nothing; after the pool changes, or with an adapter not yet
     * on the device, the call resolves its ids instead (and then the lookup serves again), a removed adapter's id is
     * refused and an id past every entry too, before any work.
     */
    @Test
    void freshBatchesOfAdaptersOnTheDeviceLookUpTheirRowsThere() {
        TestData data = new TestData();
        org.spectralpeft.fourierft.FourierFTAdapterPool pool = nineAdaptersOfTwoIndexSets(data);
        int tokens = 29;
        HostArray x = HostArray.of(DType.FLOAT16, data.gaussian(tokens * 29));
        float[] y0 = data.gaussian(tokens * 37);
        try (CudaStream stream = cuda.createStream();
             DeviceBuffer dx = cuda.allocate(DType.FLOAT16, x.length());
             DeviceBuffer dy = cuda.allocate(DType.FLOAT32, y0.length)) {
            dx.copyFrom(x);
            // each call: y0 in, the call, its route's kernels and y out; the host call beside it for the bits
            java.util.function.Function<int[], List<String>> check = ids -> {
                dy.copyFrom(HostArray.float32(y0));
                List<String> stages = org.spectralpeft.StageLabels.of(() -> {
                    cuda.forward(pool, ids, dx.array(), tokens, dy.array(), stream);
                    stream.synchronize();
                });
                HostArray got = HostArray.float32(new float[y0.length]);
                dy.copyTo(got);
                HostArray expected = HostArray.float32(y0.clone());
                cuda.forward(pool, ids, x, tokens, expected);
                assertArrayEquals(expected.floats(), got.floats(), java.util.Arrays.toString(ids) + data.tag());
                return stages;
            };
            int[] all = new int[tokens];
            for (int t = 0; t < tokens; t++) {
                all[t] = t % 10 == 9 ? -1 : t % 9;
            }
            Assertions.assertFalse(check.apply(all).contains(FourierFTKernels.TOKEN_ROWS), "the first call uploads");
            for (int round = 0; round < 4; round++) {
                int[] ids = new int[tokens];
                for (int t = 0; t < tokens; t++) {
                    ids[t] = data.nextInt(5) == 0 ? -1 : data.nextInt(9);
                }
                List<String> stages = check.apply(ids);
                assertTrue(stages.contains(FourierFTKernels.TOKEN_ROWS), "round " + round + ": " + stages);
            }
            int[] none = new int[tokens];
            java.util.Arrays.fill(none, -1);
            assertEquals(List.of(), check.apply(none), "no adapter, no launch");
            pool.add(9, TWO_INDEX_SETS[1], data.gaussian(TWO_INDEX_SETS[1].n()));
            int[] withNew = all.clone();
            withNew[3] = 9;
            Assertions.assertFalse(check.apply(all).contains(FourierFTKernels.TOKEN_ROWS), "the pool changed");
            Assertions.assertFalse(check.apply(withNew).contains(FourierFTKernels.TOKEN_ROWS), "9 not yet uploaded");
            int[] again = withNew.clone();
            again[0] = 9;
            assertTrue(check.apply(again).contains(FourierFTKernels.TOKEN_ROWS), "9 uploaded, the pool as seen");
            int[] without4 = again.clone();
            for (int t = 0; t < tokens; t++) {
                without4[t] = without4[t] == 4 ? 7 : without4[t];
            }
            int[] past = without4.clone();
            past[6] = 5000;
            expectMessage("adapterIds[6] = 5000", () -> cuda.forward(pool, past, dx.array(), tokens, dy.array(),
                    stream)); // refused while every other id is on the device and the pool unchanged
            pool.remove(4);
            dy.copyFrom(HostArray.float32(y0));
            int[] withRemoved = without4.clone();
            withRemoved[5] = 4;
            expectMessage("adapterIds[5] = 4", () -> cuda.forward(pool, withRemoved, dx.array(), tokens, dy.array(),
                    stream));
            stream.synchronize();
            HostArray after = HostArray.float32(new float[y0.length]);
            dy.copyTo(after);
            assertArrayEquals(y0, after.floats(), "refused calls leave y alone");
            Assertions.assertFalse(check.apply(without4).contains(FourierFTKernels.TOKEN_ROWS), "the pool changed");
            int[] fresh = without4.clone();
            fresh[1] = -1;
            assertTrue(check.apply(fresh).contains(FourierFTKernels.TOKEN_ROWS), "4's removal seen");
        }
    }

    /**
     * A backward on device arrays whose adapters are all on the device, while the pool is unchanged, groups its
     * tokens from the copy's entries and looks its rows up on the device (fourierft_token_rows), with the host call's
     * bits: the same adapters in the same order, each one's ∂L/∂c, and gradX; batch after fresh batch (two index
     * sets, an adapter over two tiles, −1s), with and without gradX; a batch of −1s gives no gradient and leaves gradX
     * alone; an id not in the pool is refused before any work.
     */
    @Test
    void freshBackwardsOfAdaptersOnTheDeviceGroupTheirTokensFromTheEntries() {
        TestData data = new TestData();
        org.spectralpeft.fourierft.FourierFTAdapterPool pool = nineAdaptersOfTwoIndexSets(data);
        int tokens = 150;
        HostArray x = HostArray.of(DType.BFLOAT16, data.gaussian(tokens * 29));
        HostArray gy = HostArray.float32(data.gaussian(tokens * 37));
        float[] gx0 = data.gaussian(tokens * 29);
        try (CudaStream stream = cuda.createStream();
             DeviceBuffer dx = cuda.allocate(DType.BFLOAT16, x.length());
             DeviceBuffer dgy = cuda.allocate(DType.FLOAT32, gy.length());
             DeviceBuffer dgx = cuda.allocate(DType.FLOAT32, gx0.length)) {
            dx.copyFrom(x);
            dgy.copyFrom(gy);
            int[] all = new int[tokens];
            for (int t = 0; t < tokens; t++) {
                all[t] = t % 9;
            }
            cuda.forward(pool, all, dx.array(), tokens, dgy.array(), stream); // puts all nine on the device
            stream.synchronize();
            dgy.copyFrom(gy);
            for (int round = 0; round < 6; round++) {
                int[] ids = new int[tokens];
                for (int t = 0; t < tokens; t++) {
                    ids[t] = data.nextInt(6) == 0 ? -1 : t < 80 ? 6 : data.nextInt(9); // 6: at least two tiles
                }
                if (round == 5) {
                    java.util.Arrays.fill(ids, -1);
                }
                boolean withGx = round % 2 == 0;
                dgx.copyFrom(HostArray.float32(gx0));
                int[][] gotIds = new int[1][];
                float[][] gotAll = new float[1][];
                long[][] gotOffsets = new long[1][];
                List<String> stages = org.spectralpeft.StageLabels.of(() -> {
                    try (CudaFourierFT.MixedGradients g = cuda.backward(pool, ids, dx.array(), dgy.array(), tokens,
                            withGx ? dgx.array() : null, stream)) {
                        stream.synchronize();
                        gotIds[0] = g.ids();
                        gotOffsets[0] = g.offsets();
                        gotAll[0] = new float[(int) g.gradients().array().length()];
                        g.gradients().copyTo(HostArray.float32(gotAll[0]));
                    }
                });
                // the host call after the device's: the host call resolves its ids, which a device call with the
                // same ids would then find cached
                HostArray hostGx = HostArray.float32(gx0.clone());
                java.util.Map<Integer, float[]> expected = cuda.backward(pool, ids, x, gy, tokens,
                        withGx ? hostGx : null);
                String tag = "round " + round + data.tag();
                assertEquals(round < 5, stages.contains(FourierFTKernels.TOKEN_ROWS), stages + " " + tag);
                assertArrayEquals(expected.keySet().stream().mapToInt(Integer::intValue).toArray(), gotIds[0], tag);
                for (int i = 0; i < gotIds[0].length; i++) {
                    float[] want = expected.get(gotIds[0][i]);
                    assertArrayEquals(want, java.util.Arrays.copyOfRange(gotAll[0], (int) gotOffsets[0][i],
                            (int) gotOffsets[0][i] + want.length), "adapter " + gotIds[0][i] + ", " + tag);
                }
                HostArray deviceGx = HostArray.float32(new float[gx0.length]);
                dgx.copyTo(deviceGx);
                assertArrayEquals(withGx ? hostGx.floats() : gx0, deviceGx.floats(), "gradX, " + tag);
            }
            int[] bad = all.clone();
            bad[11] = 70;
            expectMessage("adapterIds[11] = 70", () -> cuda.backward(pool, bad, dx.array(), dgy.array(), tokens,
                    dgx.array(), stream));
        }
    }

    /**
     * Device-array forwards and backwards from three threads, each call a new assignment of the pool's adapters
     * (so each either looks its rows up on the device or, after a change, resolves them), while two threads remove
     * and add back (with the same coefficients) the very adapters they use: every call gives the bits of a quiet
     * pool or is refused, naming a token whose adapter was out; some calls run.
     */
    @Test
    void freshBatchesOnDeviceArraysWhileTheirAdaptersAreRemovedAndAddedBack() throws Exception {
        TestData data = new TestData();
        org.spectralpeft.fourierft.FourierFTAdapterPool pool = nineAdaptersOfTwoIndexSets(data);
        FourierFTSpec[] specs = new FourierFTSpec[9];
        float[][] coeffs = new float[9][];
        for (int i = 0; i < 9; i++) {
            specs[i] = pool.adapter(i).spec();
            coeffs[i] = pool.adapter(i).coefficientsCopy();
        }
        int tokens = 24;
        int[][] idSets = new int[5][tokens];
        for (int[] ids : idSets) {
            for (int t = 0; t < tokens; t++) {
                ids[t] = data.nextInt(7) == 0 ? -1 : data.nextInt(9);
            }
        }
        HostArray x = HostArray.float32(data.gaussian(tokens * 29));
        HostArray gy = HostArray.float32(data.gaussian(tokens * 37));
        float[][] expectedY = new float[idSets.length][];
        List<java.util.Map<Integer, float[]>> expectedGrads = new ArrayList<>();
        for (int k = 0; k < idSets.length; k++) {
            expectedY[k] = new float[tokens * 37];
            cuda.forward(pool, idSets[k], x, tokens, HostArray.float32(expectedY[k]));
            expectedGrads.add(cuda.backward(pool, idSets[k], x, gy, tokens, null));
        }
        java.util.concurrent.atomic.AtomicInteger done = new java.util.concurrent.atomic.AtomicInteger();
        ExecutorService threads = Executors.newFixedThreadPool(3);
        try (AutoCloseable churn = removeAndAddBack(pool, specs, coeffs, 2_000_000)) { // mostly present: most run
            List<Future<?>> calls = new ArrayList<>();
            for (int k = 0; k < 30; k++) {
                int[] ids = idSets[k % idSets.length];
                int which = k % idSets.length;
                boolean backwardCall = k % 3 == 2;
                calls.add(threads.submit(() -> {
                    try (CudaStream stream = cuda.createStream();
                         DeviceBuffer dx = cuda.allocate(DType.FLOAT32, x.length());
                         DeviceBuffer dy = cuda.allocate(DType.FLOAT32, (long) tokens * 37)) {
                        dx.copyFrom(x);
                        if (backwardCall) {
                            dy.copyFrom(gy);
                            try (CudaFourierFT.MixedGradients g = cuda.backward(pool, ids, dx.array(), dy.array(),
                                    tokens, null, stream)) {
                                stream.synchronize();
                                float[] all = new float[(int) g.gradients().array().length()];
                                g.gradients().copyTo(HostArray.float32(all));
                                java.util.Map<Integer, float[]> want = expectedGrads.get(which);
                                assertArrayEquals(want.keySet().stream().mapToInt(Integer::intValue).toArray(), g.ids());
                                for (int i = 0; i < g.ids().length; i++) {
                                    float[] w = want.get(g.ids()[i]);
                                    assertArrayEquals(w, java.util.Arrays.copyOfRange(all, (int) g.offsets()[i],
                                            (int) g.offsets()[i] + w.length), "∂L/∂c of " + g.ids()[i] + data.tag());
                                }
                            }
                        } else {
                            dy.copyFrom(HostArray.float32(new float[tokens * 37]));
                            cuda.forward(pool, ids, dx.array(), tokens, dy.array(), stream);
                            stream.synchronize();
                            HostArray y = HostArray.float32(new float[tokens * 37]);
                            dy.copyTo(y);
                            assertArrayEquals(expectedY[which], y.floats(), data.tag());
                        }
                        done.incrementAndGet();
                    } catch (IllegalArgumentException e) {
                        assertTrue(e.getMessage().contains("adapterIds["), e.getMessage());
                    }
                    return null;
                }));
            }
            for (Future<?> call : calls) {
                call.get();
            }
        } finally {
            threads.shutdown();
        }
        assertTrue(done.get() > 0, "some calls ran");
        assertEquals(9, pool.size());
    }

    /**
     * The mixed backward on device arrays (bfloat16 x, float32 ∂L/∂y, float16 gradX, the caller's stream) gives
     * the host call's bits: each used adapter's ∂L/∂c at its offset, in first-use order, with two index sets of
     * different n, and gradX; without gradX the same ∂L/∂c; bad ids and arrays are refused before any work.
     */
    @Test
    void aMixedBackwardOnDeviceArraysEqualsTheHostCall() {
        TestData data = new TestData();
        org.spectralpeft.fourierft.FourierFTAdapterPool pool = nineAdaptersOfTwoIndexSets(data);
        int tokens = 120;
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % 6 == 5 ? -1 : t < 90 ? 4 : data.nextInt(9); // adapter 4: 75 tokens, two tiles
        }
        HostArray x = HostArray.of(DType.BFLOAT16, data.gaussian(tokens * 29));
        HostArray gy = HostArray.float32(data.gaussian(tokens * 37));
        float[] gx0 = data.gaussian(tokens * 29);
        HostArray hostGx = HostArray.of(DType.FLOAT16, gx0);
        java.util.Map<Integer, float[]> expected = cuda.backward(pool, ids, x, gy, tokens, hostGx);
        HostArray deviceGx = HostArray.of(DType.FLOAT16, gx0);
        try (CudaStream stream = cuda.createStream();
             DeviceBuffer dx = cuda.allocate(DType.BFLOAT16, x.length());
             DeviceBuffer dgy = cuda.allocate(DType.FLOAT32, gy.length());
             DeviceBuffer dgx = cuda.allocate(DType.FLOAT16, deviceGx.length())) {
            dx.copyFrom(x);
            dgy.copyFrom(gy);
            dgx.copyFrom(deviceGx);
            for (boolean withGx : new boolean[] {true, false}) {
                try (CudaFourierFT.MixedGradients g = cuda.backward(pool, ids, dx.array(), dgy.array(), tokens,
                        withGx ? dgx.array() : null, stream)) {
                    stream.synchronize();
                    assertArrayEquals(expected.keySet().stream().mapToInt(Integer::intValue).toArray(), g.ids());
                    float[] all = new float[(int) g.gradients().array().length()];
                    g.gradients().copyTo(HostArray.float32(all));
                    for (int i = 0; i < g.ids().length; i++) {
                        float[] want = expected.get(g.ids()[i]);
                        org.junit.jupiter.api.Assertions.assertArrayEquals(want, java.util.Arrays.copyOfRange(all,
                                (int) g.offsets()[i], (int) g.offsets()[i] + want.length), "adapter " + g.ids()[i]
                                + ", gradX " + withGx + data.tag());
                    }
                }
            }
            dgx.copyTo(deviceGx);
            org.junit.jupiter.api.Assertions.assertArrayEquals(hostGx.toFloats(), deviceGx.toFloats(), data.tag());
            int[] none = new int[tokens];
            java.util.Arrays.fill(none, -1);
            try (CudaFourierFT.MixedGradients g = cuda.backward(pool, none, dx.array(), dgy.array(), tokens, dgx.array(),
                    stream)) {
                stream.synchronize();
                assertEquals(0, g.ids().length, "no adapter, no gradient");
            }
            dgx.copyTo(deviceGx);
            org.junit.jupiter.api.Assertions.assertArrayEquals(hostGx.toFloats(), deviceGx.toFloats(),
                    "a batch without adapters leaves gradX alone");
            int[] bad = ids.clone();
            bad[7] = 12;
            expectMessage("adapterIds[7] = 12", () -> cuda.backward(pool, bad, dx.array(), dgy.array(), tokens,
                    dgx.array(), stream));
            expectMessage("gradY has", () -> cuda.backward(pool, ids, dx.array(), dx.array(), tokens, dgx.array(),
                    stream));
            stream.synchronize();
            dgx.copyTo(deviceGx);
            org.junit.jupiter.api.Assertions.assertArrayEquals(hostGx.toFloats(), deviceGx.toFloats(),
                    "refused calls leave gradX alone");
        }
    }

    /**
     * The pool's coefficients stay on the device between mixed batches (a table per index set, 16 rows first,
     * doubling); rows of removed adapters are reused, after the device is idle, for new ones; every result equals
     * that of a fresh copy of the same adapters.
     */
    @Test
    void mixedBatchesKeepThePoolOnTheDeviceAndReuseRemovedRows() {
        TestData data = new TestData();
        FourierFTSpec a = FourierFTSpec.fromSeed(37, 29, 20, 5, 0.3f);
        FourierFTSpec b = FourierFTSpec.fromSeed(37, 29, 31, 6, 0.7f);
        java.util.Map<Integer, float[]> coefficients = new java.util.TreeMap<>();
        org.spectralpeft.fourierft.FourierFTAdapterPool pool = poolOf(a, 16, coefficients, data);
        coefficients.put(50, data.gaussian(31));
        pool.add(50, b, coefficients.get(50));
        assertEquals(0, cuda.residentBytes(pool), "nothing on the device before the first batch");
        int tokens = 17;
        HostArray x = HostArray.float32(data.gaussian(tokens * 29));
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t < 16 ? t : 50;
        }
        HostArray y = HostArray.float32(new float[tokens * 37]);
        cuda.forward(pool, ids, x, tokens, y);
        long bytes = 4L * 16 * (20 + 1) + 4L * 16 * (31 + 1); // each row's n coefficients and its scale
        assertEquals(bytes, cuda.residentBytes(pool), "one 16-row table per index set");
        for (int i = 0; i < 8; i++) {
            pool.remove(i);
            coefficients.remove(i);
            coefficients.put(100 + i, data.gaussian(20));
            pool.add(100 + i, a, coefficients.get(100 + i));
            ids[i] = 100 + i;
        }
        for (int round = 0; round < 2; round++) {
            HostArray got = HostArray.float32(new float[tokens * 37]);
            cuda.forward(pool, ids, x, tokens, got);
            assertEquals(bytes, cuda.residentBytes(pool), "the removed adapters' rows were reused, not grown");
            org.spectralpeft.fourierft.FourierFTAdapterPool fresh = new org.spectralpeft.fourierft.FourierFTAdapterPool(37, 29);
            coefficients.forEach((id, c) -> fresh.add(id, id == 50 ? b : a, c));
            HostArray expected = HostArray.float32(new float[tokens * 37]);
            cuda.forward(fresh, ids, x, tokens, expected);
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected.floats(), got.floats(), "round " + round + data.tag());
        }
        for (int i = 200; i < 240; i++) {
            pool.add(i, a, data.gaussian(20));
        }
        int[] many = new int[40];
        for (int t = 0; t < 40; t++) {
            many[t] = 200 + t;
        }
        cuda.forward(pool, many, HostArray.float32(data.gaussian(40 * 29)), 40, HostArray.float32(new float[40 * 37]));
        assertEquals(4L * 64 * 21 + 4L * 16 * 32, cuda.residentBytes(pool), "56 rows of set a: grown to 64");
    }

    /**
     * An id removed and added again, round after round, with new coefficients and a new α: each batch reads the new
     * adapter's row and scale (a call finds its rows by id first, and must not take the row of the id's earlier
     * adapter), also once the table's retired rows are reused; each result equals that of a fresh pool holding the
     * same adapters.
     */
    @Test
    void mixedBatchesReadTheAdapterNowUnderAReaddedId() {
        TestData data = new TestData();
        FourierFTSpec a = FourierFTSpec.fromSeed(37, 29, 20, 5, 0.3f);
        java.util.Map<Integer, float[]> coefficients = new java.util.TreeMap<>();
        org.spectralpeft.fourierft.FourierFTAdapterPool pool = poolOf(a, 4, coefficients, data);
        int tokens = 9;
        HostArray x = HostArray.float32(data.gaussian(tokens * 29));
        int[] ids = {2, 0, 2, 1, 3, -1, 2, 1, 0};
        FourierFTSpec twos = a;
        for (int round = 0; round < 20; round++) { // 4 + 19 uploads: the 16-row table reuses retired rows
            if (round > 0) {
                pool.remove(2);
                coefficients.put(2, data.gaussian(20));
                twos = a.withAlpha(0.3f * (1 + round % 3));
                pool.add(2, twos, coefficients.get(2));
            }
            HostArray got = HostArray.float32(new float[tokens * 37]);
            cuda.forward(pool, ids, x, tokens, got);
            org.spectralpeft.fourierft.FourierFTAdapterPool fresh = new org.spectralpeft.fourierft.FourierFTAdapterPool(37, 29);
            FourierFTSpec twosNow = twos;
            coefficients.forEach((id, c) -> fresh.add(id, id == 2 ? twosNow : a, c));
            HostArray expected = HostArray.float32(new float[tokens * 37]);
            cuda.forward(fresh, ids, x, tokens, expected);
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected.floats(), got.floats(), "round " + round + data.tag());
        }
        assertEquals(4L * 16 * 21, cuda.residentBytes(pool), "retired rows reused: still one 16-row table");
    }

    /** A 37 × 29 pool of adapters 0 .. count − 1 of one spec with fresh coefficients, also put in coefficients. */
    private static org.spectralpeft.fourierft.FourierFTAdapterPool poolOf(FourierFTSpec spec, int count,
                                                                          java.util.Map<Integer, float[]> coefficients,
                                                                          TestData data) {
        org.spectralpeft.fourierft.FourierFTAdapterPool pool = new org.spectralpeft.fourierft.FourierFTAdapterPool(37, 29);
        for (int i = 0; i < count; i++) {
            coefficients.put(i, data.gaussian(spec.n()));
            pool.add(i, spec, coefficients.get(i));
        }
        return pool;
    }

    private static long freeDeviceMemory() {
        long[] free = new long[1];
        long[] total = new long[1];
        jcuda.driver.JCudaDriver.cuMemGetInfo(free, total);
        return free[0];
    }
}
