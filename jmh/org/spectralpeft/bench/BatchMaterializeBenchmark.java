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
 * ΔW of many layers of one shape in one call ({@code materializeBatch}): 64 layers of 4096 × 4096 (n = 1000)
 * is the LLaMA-7B attention case. The output (4.3 GB in float32) is far larger than L2, so it is not rotated.
 * On the CPU a call takes seconds (about 6.5 s on 2 cores); {@code -p layers=} runs a smaller batch.
 *
 * <p>Iterations: an iteration takes at least one call, so on the CPU each is one sample. The old 3 × 3 s gave about
 * 5 samples and an error larger than the mean. On the 2-core build machine (a VM) successive calls of this 4.3 GB
 * batch vary by 7–8 % even when nothing else runs (5.2 to 7.7 s), and JMH's 99.9 % error came to 4.3 % of the
 * score with 12 samples in one run, 5.7 % with 16 and 6.0 % with 25 in others; at that spread it takes about 40
 * samples to stay near 4 %. So 5 warm-up calls and 40 measured: about 5 minutes on that CPU, one JVM (each fork
 * fills 4.3 GB first). On the GPU the same iterations hold thousands of samples.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 40, time = 1)
@Fork(1)
public class BatchMaterializeBenchmark {
    @Param({"cuda", "cpu"})
    public String backend;

    @Param({"64"})
    public int layers;

    @Param({"4096"})
    public int d;

    @Param({"1000"})
    public int n;

    private FourierFTBackend ft;
    private FourierFTSpec spec;
    private float[] coeffs;
    private HostArray hostOut;
    private CudaFourierFT cuda;
    private CudaStream stream;
    private DeviceBuffer deviceCoeffs;
    private DeviceBuffer deviceOut;

    @Setup(Level.Trial)
    public void setUp() {
        ft = Bench.open(backend);
        spec = FourierFTSpec.fromSeed(d, d, n);
        coeffs = Bench.gaussian(layers * n, 3);
        long length = (long) layers * d * d;
        if (ft instanceof CudaFourierFT c) {
            cuda = c;
            stream = cuda.createStream();
            deviceCoeffs = cuda.allocate(DType.FLOAT32, coeffs.length);
            deviceCoeffs.copyFrom(HostArray.float32(coeffs));
            deviceOut = cuda.allocate(DType.FLOAT32, length);
        } else {
            hostOut = HostArray.allocate(DType.FLOAT32, Math.toIntExact(length));
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        Bench.closeAll(deviceOut, deviceCoeffs, stream, ft);
    }

    @Benchmark
    public void materializeBatch() {
        if (cuda != null) {
            cuda.materialize(spec, deviceCoeffs.array(), layers, deviceOut.array(), stream);
            cuda.synchronize(stream);
        } else {
            ft.materializeBatch(spec, coeffs, layers, hostOut);
        }
    }
}
