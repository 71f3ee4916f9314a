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
import org.spectralpeft.Backends;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.cuda.CudaFouRA;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;

/**
 * FouRA on T tokens of a d × d layer, rank r, NONE gate: {@code forward} (y += adapter(x), the factors prepared
 * beforehand, as once per optimizer step), {@code forwardBackward} (forward, then ∂A, ∂B and ∂x accumulated),
 * and {@code prepare} (folding the transforms into A and B). The peer is bench/foura_peer.py, the PyTorch
 * composition users would write, on the same machine.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class FouRABenchmark {
    /** cuda: forward and forwardBackward on device arrays (rotated, see {@link Bench}), as the peer keeps its tensors. */
    @Param({"cpu", "cuda"})
    public String backend;

    @Param({"DFT", "DCT"})
    public String transform;

    @Param({"16", "64"})
    public int rank;

    @Param({"1", "16", "256", "4096"})
    public int tokens;

    @Param({"4096"})
    public int d;

    private FouRABackend foura;
    private FouRASpec spec;
    private float[] a;
    private float[] b;
    private FouRAFactors factors;
    private HostArray x;
    private HostArray y;
    private HostArray gy;
    private HostArray gx;
    private float[] gradA;
    private float[] gradB;

    @Setup(Level.Trial)
    public void setUp() {
        foura = open(backend);
        System.err.println("FouRA backend: " + foura.description()); // names the BLAS in use (see bench/NOTES.md)
        spec = FouRASpec.of(d, d, rank, FouRASpec.Transform.valueOf(transform), FouRASpec.Gate.NONE, 1f);
        a = Bench.gaussian(rank * d, 3);
        b = Bench.gaussian(d * rank, 4);
        factors = foura.prepare(spec, a, b, null);
        x = Bench.gaussian(DType.FLOAT32, tokens * d, 5);
        y = Bench.gaussian(DType.FLOAT32, tokens * d, 6);
        gy = Bench.gaussian(DType.FLOAT32, tokens * d, 7);
        gx = Bench.gaussian(DType.FLOAT32, tokens * d, 8);
        gradA = new float[rank * d];
        gradB = new float[d * rank];
        if (foura instanceof CudaFouRA) {
            deviceArrays();
        }
    }

    /**
     * A FouRA backend by name; a CUDA one where CUDA is missing ends the benchmark, saying why.
     *
     * @param backend "cpu" or "cuda"
     * @return the backend
     */
    static FouRABackend open(String backend) {
        return switch (backend) {
            case "cpu" -> Backends.fouRACpu();
            case "cuda" -> {
                var reason = Backends.cudaUnavailableReason();
                if (reason.isPresent()) {
                    throw new IllegalStateException("skipping the cuda benchmark: " + reason.get());
                }
                yield Backends.fouRACuda();
            }
            default -> throw new IllegalArgumentException("backend must be cpu or cuda, got " + backend);
        };
    }

    private CudaFouRA cuda;
    private CudaStream stream;
    private DeviceBuffer[] dx;
    private DeviceBuffer[] dy;
    private DeviceBuffer[] dgy;
    private DeviceBuffer[] dgx;
    private DeviceBuffer dGradA;
    private DeviceBuffer dGradB;
    private int next;

    @TearDown(Level.Trial)
    public void tearDown() {
        Bench.close(dx);
        Bench.close(dy);
        Bench.close(dgy);
        Bench.close(dgx);
        Bench.closeAll(dGradA, dGradB, stream, factors, foura);
    }

    private void deviceArrays() {
        cuda = (CudaFouRA) foura;
        stream = cuda.context().createStream();
        dx = Bench.deviceBuffers(cuda.context(), DType.FLOAT32, (long) tokens * d, x);
        dy = Bench.deviceBuffers(cuda.context(), DType.FLOAT32, (long) tokens * d, y);
        dgy = Bench.deviceBuffers(cuda.context(), DType.FLOAT32, (long) tokens * d, gy);
        dgx = Bench.deviceBuffers(cuda.context(), DType.FLOAT32, (long) tokens * d, gx);
        dGradA = cuda.context().allocate(DType.FLOAT32, gradA.length);
        dGradB = cuda.context().allocate(DType.FLOAT32, gradB.length);
    }

    @Benchmark
    public void forward() {
        if (cuda != null) {
            int i = next++ % dx.length;
            cuda.forward(factors, dx[i].array(), tokens, dy[i].array(), stream);
            stream.synchronize();
        } else {
            foura.forward(factors, x, tokens, y);
        }
    }

    @Benchmark
    public void forwardBackward() {
        if (cuda != null) {
            int i = next++ % dx.length;
            cuda.forward(factors, dx[i].array(), tokens, dy[i].array(), stream);
            cuda.backward(factors, dx[i].array(), dgy[i].array(), tokens, dGradA.array(), dGradB.array(), null,
                    dgx[i].array(), stream);
            stream.synchronize();
        } else {
            foura.forward(factors, x, tokens, y);
            foura.backward(factors, x, gy, tokens, gradA, gradB, null, gx);
        }
    }

    @Benchmark
    public void prepare() {
        factors.update(a, b, null);
    }

    /**
     * One training step as a caller runs it: the factors refolded from the updated A and B, then forward and
     * backward. The peer's forward + backward has no fold, so this is the figure to set beside it.
     */
    @Benchmark
    public void trainingStep() {
        factors.update(a, b, null);
        forwardBackward();
    }
}
