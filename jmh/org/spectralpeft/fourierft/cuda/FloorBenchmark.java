package org.spectralpeft.fourierft.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.spectralpeft.bench.Bench;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.FftPlans.Direction;
import org.spectralpeft.cuda.internal.NativeHandles;
import org.spectralpeft.cuda.internal.StreamScratch;

/**
 * The floors that materialize is measured against, timed like the other GPU benchmarks (device-resident,
 * rotating outputs, stream synchronized in each call): {@code bareC2R} is one cuFFT C2R-2D transform of a
 * d_out × (d_in/2+1) half spectrum into a d_out × d_in float32 matrix, through this library's plan cache
 * and work-area handling, which is what materializing through cuFFT costs at the least;
 * {@code deviceCopy} copies a d_out × d_in float32 matrix device to device (read + write of the output
 * size: bandwidth = 2 · 4 · d_out · d_in / time). In the package of the backend for its plan cache. CUDA only.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class FloorBenchmark {
    @Param({"cuda"})
    public String backend;

    @Param({"768x768", "4096x4096", "4096x11008"})
    public String shape;

    private CudaFourierFT cuda;
    private CudaStream stream;
    private int dOut;
    private int dIn;
    private DeviceBuffer spectrum;
    private DeviceBuffer source;
    private DeviceBuffer[] out;
    private int next;

    @Setup(Level.Trial)
    public void setUp() {
        int[] s = Bench.shape(shape);
        dOut = s[0];
        dIn = s[1];
        cuda = (CudaFourierFT) Bench.open(backend);
        stream = cuda.createStream();
        long outLength = (long) dOut * dIn;
        spectrum = cuda.allocate(DType.FLOAT32, 2L * dOut * (dIn / 2 + 1));
        spectrum.copyFrom(Bench.gaussian(DType.FLOAT32, (int) spectrum.array().length(), 3));
        source = cuda.allocate(DType.FLOAT32, outLength);
        source.copyFrom(Bench.gaussian(DType.FLOAT32, (int) outLength, 4));
        out = Bench.deviceBuffers(cuda, DType.FLOAT32, outLength, null);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        Bench.close(out);
        Bench.closeAll(source, spectrum, stream, cuda);
    }

    /** C2R overwrites its input; the values it leaves do not change the work. */
    @Benchmark
    public void bareC2R() {
        try (StreamScratch scratch = new StreamScratch(stream)) {
            cuda.plans().twoD(Direction.C2R, dOut, dIn, 1, false, spectrum.array().address(),
                    out[next++ % out.length].array().address(), scratch, stream);
        }
        cuda.synchronize(stream);
    }

    @Benchmark
    public void deviceCopy() {
        cuMemcpyDtoDAsync(NativeHandles.devicePointer(out[next++ % out.length].array().address()),
                NativeHandles.devicePointer(source.array().address()), 4L * dOut * dIn, stream.jcuda());
        cuda.synchronize(stream);
    }
}
