package org.spectralpeft.bench;

import java.util.Random;
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
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.tlora.TLoRABackend;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.cuda.CudaTLoRA;
import org.spectralpeft.tlora.cuda.TLoRADeviceParameters;

/**
 * TLoRA on T tokens of a d × d layer with the authors' factorisation of d, transform ring rank R and a LoRA
 * residual of rank 8: {@code forward} (y += x·W'ᵀ, T applied to the tokens, never formed) and
 * {@code forwardBackward} (then every core's gradient and ∂x). The peers are bench/tlora_peer.py: the authors'
 * step (T, W0·T and F.linear on every call) and plain LoRA, in PyTorch on the same machine. On cuda the inputs
 * and outputs are device arrays (x and y rotated, see {@link Bench}) and the parameters are prepared on the
 * device once, as a training loop holds them; the parameters' gradients come back to the host.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class TLoRABenchmark {
    @Param({"cpu", "cuda"})
    public String backend;

    @Param({"1280", "2048"})
    public int d;

    @Param({"1", "4"})
    public int ring;

    @Param({"1024", "4096"})
    public int tokens;

    private TLoRABackend tlora;
    private TLoRASpec spec;
    private TLoRAParameters params;
    private HostArray w0;
    private HostArray x;
    private HostArray y;
    private HostArray gy;
    private HostArray gx;

    @Setup(Level.Trial)
    public void setUp() {
        switch (backend) {
            case "cpu" -> tlora = Backends.tLoRACpu();
            case "cuda" -> {
                var reason = Backends.cudaUnavailableReason();
                if (reason.isPresent()) {
                    throw new IllegalStateException("skipping the cuda benchmark: " + reason.get());
                }
                tlora = Backends.tLoRACuda();
            }
            default -> throw new IllegalArgumentException("backend must be cpu or cuda, got " + backend);
        }
        System.err.println("TLoRA backend: " + tlora.description());
        int[] shape = TLoRASpec.authorsShape(d);
        spec = TLoRASpec.of(shape, shape, ring, TLoRASpec.Residual.LORA, 8, 1f);
        params = TLoRAParameters.initial(spec, new Random(3));
        w0 = Bench.gaussian(DType.FLOAT32, d * d, 4);
        x = Bench.gaussian(DType.FLOAT32, tokens * d, 5);
        y = Bench.gaussian(DType.FLOAT32, tokens * d, 6);
        gy = Bench.gaussian(DType.FLOAT32, tokens * d, 7);
        gx = Bench.gaussian(DType.FLOAT32, tokens * d, 8);
        if (tlora instanceof CudaTLoRA c) {
            cuda = c;
            stream = c.context().createStream();
            prepared = c.prepare(spec, params);
            dw0 = c.context().upload(w0);
            dx = Bench.deviceBuffers(c.context(), DType.FLOAT32, (long) tokens * d, x);
            dy = Bench.deviceBuffers(c.context(), DType.FLOAT32, (long) tokens * d, y);
            dgy = c.context().upload(gy);
            dgx = c.context().upload(gx);
        }
    }

    private CudaTLoRA cuda;
    private CudaStream stream;
    private TLoRADeviceParameters prepared;
    private DeviceBuffer dw0;
    private DeviceBuffer[] dx;
    private DeviceBuffer[] dy;
    private DeviceBuffer dgy;
    private DeviceBuffer dgx;
    private int next;

    @TearDown(Level.Trial)
    public void tearDown() {
        Bench.close(dx);
        Bench.close(dy);
        Bench.closeAll(dw0, dgy, dgx, stream, prepared, tlora);
    }

    @Benchmark
    public void forward() {
        if (cuda != null) {
            int i = next++ % dx.length;
            cuda.forward(prepared, dw0.array(), dx[i].array(), tokens, dy[i].array(), stream);
            stream.synchronize();
        } else {
            tlora.forward(spec, params, w0, x, tokens, y);
        }
    }

    @Benchmark
    public TLoRAParameters forwardBackward() {
        if (cuda != null) {
            int i = next++ % dx.length;
            cuda.forward(prepared, dw0.array(), dx[i].array(), tokens, dy[i].array(), stream);
            return cuda.backward(prepared, dw0.array(), dx[i].array(), dgy.array(), tokens, dgx.array(), stream);
        }
        tlora.forward(spec, params, w0, x, tokens, y);
        return tlora.backward(spec, params, w0, x, gy, tokens, gx);
    }
}
