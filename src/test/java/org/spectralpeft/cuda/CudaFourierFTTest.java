package org.spectralpeft.cuda;

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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.spectralpeft.FourierFTBackendContract;
import org.spectralpeft.TestData;
import org.spectralpeft.api.DType;
import org.spectralpeft.api.FourierFTBackend;
import org.spectralpeft.api.FourierFTSpec;
import org.spectralpeft.api.HostArray;
import org.spectralpeft.cpu.CpuFourierFT;
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
        System.setProperty("spectralpeft.cuda.debug", "true"); // synchronize after each launch
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

    @Test
    void hopperLoadsTheHopperPtx() {
        if (cuda.description().contains("sm_9") || cuda.description().contains("sm_1")) {
            assertEquals("fourierft.compute_90.ptx", cuda.kernelVariant());
        } else {
            assertEquals("fourierft.compute_75.ptx", cuda.kernelVariant());
        }
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
             DeviceBuffer out = cuda.allocate(DType.FLOAT32, 16 * 12);
             DeviceBuffer shortOut = cuda.allocate(DType.FLOAT32, 16 * 12 - 1)) {
            expectMessage("coeffs must be float32, got BFLOAT16",
                    () -> cuda.materialize(spec, bf.array(), 1, out.array(), stream));
            expectMessage("out has 191 elements, expected 192",
                    () -> cuda.materialize(spec, out.array(), 1, shortOut.array(), stream));
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

    private static long freeDeviceMemory() {
        long[] free = new long[1];
        long[] total = new long[1];
        jcuda.driver.JCudaDriver.cuMemGetInfo(free, total);
        return free[0];
    }
}
