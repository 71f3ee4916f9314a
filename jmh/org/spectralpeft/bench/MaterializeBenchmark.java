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
import org.spectralpeft.api.DType;
import org.spectralpeft.api.FourierFTBackend;
import org.spectralpeft.api.FourierFTSpec;
import org.spectralpeft.api.HostArray;

/**
 * Materializing ΔW through the host-array API (copies included) on the CPU backend, and on CUDA when it
 * is available (the CUDA parameter is skipped otherwise). Run with
 * {@code java -cp target/test-classes:target/classes:<deps> org.openjdk.jmh.Main MaterializeBenchmark}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class MaterializeBenchmark {
    @Param({"cpu", "cuda"})
    public String backend;

    @Param({"768", "4096"})
    public int d;

    @Param({"1000"})
    public int n;

    private FourierFTBackend ft;
    private FourierFTSpec spec;
    private float[] coeffs;
    private HostArray out;

    @Setup(Level.Trial)
    public void setUp() {
        if (backend.equals("cuda")) {
            var reason = Backends.cudaUnavailableReason();
            if (reason.isPresent()) {
                throw new IllegalStateException("skipping cuda: " + reason.get());
            }
            ft = Backends.cuda();
        } else {
            ft = Backends.cpu();
        }
        spec = FourierFTSpec.fromSeed(d, d, n);
        coeffs = new float[n];
        Random r = new Random(1);
        for (int i = 0; i < n; i++) {
            coeffs[i] = (float) r.nextGaussian();
        }
        out = HostArray.allocate(DType.FLOAT32, d * d);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (ft != null) {
            ft.close();
        }
    }

    @Benchmark
    public HostArray materialize() {
        ft.materialize(spec, coeffs, out);
        return out;
    }
}
