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
import org.spectralpeft.foura.FouRAAdapterPool;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.cuda.CudaFouRA;
import org.spectralpeft.foura.cuda.FouRAKernels;

/**
 * Serving many FouRA adapters: T tokens of a d × d layer, rank r, DFT, FIXED gate, each token with its own adapter
 * out of {@code distinct} ones (0 means T: every token a different adapter), through
 * {@code forward(pool, ids, x, T, y)} ({@code mixed}); {@code distinct = 1} is the same batch with one adapter,
 * the baseline a mixed batch is held to (on CUDA the single-adapter forward: one adapter's tokens in one run). CUDA: device arrays on one stream (the kernel and the per-call table
 * copy); CPU: host arrays. Every adapter has its own factors in memory (the same values: what is measured is
 * reading a different adapter per token).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class FouRAMixedBatchBenchmark {
    @Param({"cpu", "cuda"})
    public String backend;

    @Param({"1", "16", "256", "4096"})
    public int tokens;

    /** Distinct adapters in the batch; 0 means as many as tokens. */
    @Param({"1", "16", "0"})
    public int distinct;

    @Param({"4096"})
    public int d;

    @Param({"16"})
    public int rank;

    /**
     * CUDA: columns of Â per warp of the projection kernel ({@link FouRAKernels#PROJECT_COLUMNS_PROPERTY}): 4
     * (the default kernel) or 1; the CPU backend ignores it.
     */
    @Param({"4", "1"})
    public String projectColumns;

    private FouRABackend foura;
    private FouRAAdapterPool pool;
    private int[] ids;
    private HostArray x;
    private HostArray y;
    private CudaFouRA cuda;
    private CudaStream stream;
    private DeviceBuffer dx;
    private DeviceBuffer dy;

    @Setup(Level.Trial)
    public void setUp() {
        System.setProperty(FouRAKernels.PROJECT_COLUMNS_PROPERTY, projectColumns);
        foura = FouRABenchmark.open(backend);
        int adapters = distinct == 0 ? tokens : Math.min(distinct, tokens);
        pool = pool(foura, d, rank, adapters);
        ids = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            ids[t] = t % adapters;
        }
        x = Bench.gaussian(DType.FLOAT32, tokens * d, 5);
        y = Bench.gaussian(DType.FLOAT32, tokens * d, 6);
        if (foura instanceof CudaFouRA c) {
            cuda = c;
            stream = c.context().createStream();
            dx = c.context().upload(x);
            dy = c.context().upload(y);
        }
        System.err.printf("FouRA pool on %s: %d adapters, %.1f MB (%.0f adapters per GB)%n", foura.description(),
                pool.size(), pool.bytes() / 1e6, 1e9 * pool.size() / pool.bytes());
    }

    /**
     * The benchmark's pool: {@code adapters} rank-r DFT adapters of a d × d layer with a FIXED gate (every fourth
     * component off), each with its own factors of the same values.
     *
     * @param foura the backend that prepares them
     * @param d the layer's size
     * @param rank r
     * @param adapters how many, ids 0 ..
     * @return the pool
     */
    static FouRAAdapterPool pool(FouRABackend foura, int d, int rank, int adapters) {
        FouRASpec spec = FouRASpec.of(d, d, rank, FouRASpec.Transform.DFT, FouRASpec.Gate.FIXED, 1f);
        float[] a = Bench.gaussian(rank * d, 3);
        float[] b = Bench.gaussian(d * rank, 4);
        float[] mask = new float[rank];
        for (int i = 0; i < rank; i++) {
            mask[i] = i % 4 == 3 ? 0f : 1f;
        }
        FouRAAdapterPool pool = new FouRAAdapterPool(d, d);
        for (int i = 0; i < adapters; i++) {
            pool.add(i, foura.prepare(spec, a, b, mask));
        }
        return pool;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        Bench.closeAll(dx, dy, stream, pool, foura);
    }

    @Benchmark
    public void mixed() {
        if (cuda != null) {
            cuda.forward(pool, ids, dx.array(), tokens, dy.array(), stream);
            stream.synchronize();
        } else {
            foura.forward(pool, ids, x, tokens, y);
        }
    }
}
