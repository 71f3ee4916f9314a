package org.spectralpeft.bench;

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
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.cuda.CudaFourierFT;

/**
 * The unmaterialized paths on T tokens of a d × d layer (n = 1000): forward y += x·ΔWᵀ, and backward
 * (∂L/∂c, and ∂L/∂x accumulated) from x and ∂L/∂y. Activations rotate on the GPU (see {@link Bench}); the
 * stream is synchronized in each call.
 *
 * <p>Iterations: 10 s of warm-up, then 8 s measured in each of two JVMs (see {@link MaterializeBenchmark}). On the
 * 2-core build machine the forward's error was 1.2 % of the score at T = 1 and 1.7 % at T = 256; T = 4096, at about
 * 7 calls a second there, still gets over 100 samples.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 2)
@Measurement(iterations = 4, time = 2)
@Fork(2)
public class ForwardBackwardBenchmark {
    @Param({"cpu", "cuda"})
    public String backend;

    @Param({"1", "16", "256", "4096"})
    public int tokens;

    @Param({"4096"})
    public int d;

    @Param({"1000"})
    public int n;

    @Param({"float32"})
    public String dtype;

    private FourierFTBackend ft;
    private FourierFTSpec spec;
    private float[] coeffs;
    private float[] gradCoeffs;
    private HostArray x;
    private HostArray y;
    private HostArray gy;
    private HostArray gx;
    private CudaFourierFT cuda;
    private CudaStream stream;
    private DeviceBuffer deviceCoeffs;
    private DeviceBuffer deviceGradCoeffs;
    private DeviceBuffer[] dx;
    private DeviceBuffer[] dy;
    private int next;

    @Setup(Level.Trial)
    public void setUp() {
        DType t = Bench.dtype(dtype);
        ft = Bench.open(backend);
        spec = FourierFTSpec.fromSeed(d, d, n);
        coeffs = Bench.gaussian(n, 4);
        gradCoeffs = new float[n];
        x = Bench.gaussian(t, tokens * d, 5);
        y = Bench.gaussian(t, tokens * d, 6);
        gy = Bench.gaussian(t, tokens * d, 7);
        gx = Bench.gaussian(t, tokens * d, 8);
        if (ft instanceof CudaFourierFT c) {
            cuda = c;
            stream = cuda.createStream();
            deviceCoeffs = cuda.allocate(DType.FLOAT32, n);
            deviceCoeffs.copyFrom(HostArray.float32(coeffs));
            deviceGradCoeffs = cuda.allocate(DType.FLOAT32, n);
            dx = Bench.deviceBuffers(cuda, t, (long) tokens * d, x);
            dy = Bench.deviceBuffers(cuda, t, (long) tokens * d, y);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        Bench.close(dx);
        Bench.close(dy);
        Bench.closeAll(deviceCoeffs, deviceGradCoeffs, stream, ft);
    }

    @Benchmark
    public void forward() {
        if (cuda != null) {
            int i = next++ % dx.length;
            cuda.forward(spec, deviceCoeffs.array(), dx[i].array(), tokens, dy[i].array(), stream);
            cuda.synchronize(stream);
        } else {
            ft.forward(spec, coeffs, x, tokens, y);
        }
    }

    /** ∂L/∂c and ∂L/∂x: x in dx, ∂L/∂y in dy, ∂L/∂x accumulated into the next rotation's dx. */
    @Benchmark
    public void backward() {
        if (cuda != null) {
            int i = next++ % dx.length;
            int j = (i + 1) % dx.length;
            cuda.backward(spec, deviceCoeffs.array(), dx[i].array(), dy[i].array(), tokens, deviceGradCoeffs.array(),
                    dx[j].array(), stream);
            cuda.synchronize(stream);
        } else {
            ft.backward(spec, coeffs, x, gy, tokens, gradCoeffs, gx);
        }
    }
}
