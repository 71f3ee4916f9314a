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
import org.spectralpeft.cpu.Gemm;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.fourierft.FourierFTAdapterPool;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.cuda.CudaFourierFT;

/**
 * Serving many FourierFT adapters: T tokens of a d × d layer (n = 1000), each token with its own adapter out of
 * {@code distinct} ones (0 means T: every token a different adapter), all of one index set, through
 * {@code forward(pool, ids, x, T, y)} ({@code mixed}); next to it ({@code materializeEach}) what PEFT can do for a
 * mixed batch: materialize each used adapter's ΔW and multiply its tokens by it (run only where distinct ≤ 16:
 * beyond, it scales with the number of adapters, one ΔW each). CPU: host arrays. CUDA: device arrays on one stream,
 * like the FouRA mixed benchmark: {@code mixed} with the coefficients resident on the device after the first call,
 * {@code materializeEach} with each adapter's ΔW materialized into one device buffer and its tokens (every
 * distinct-th row) multiplied by it in one cuBLAS SGEMM whose row stride skips the others. {@code mixedBackward}:
 * the same batch's backward, ∂L/∂c of every used adapter and ∂L/∂x.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class MixedBatchBenchmark {
    @Param({"cpu"})
    public String backend;

    @Param({"1", "16", "256", "4096"})
    public int tokens;

    /** Distinct adapters in the batch; 0 means as many as tokens. */
    @Param({"1", "16", "0"})
    public int distinct;

    @Param({"4096"})
    public int d;

    @Param({"1000"})
    public int n;

    /**
     * {@code same}: every call the same ids (a decode step's batch, or a backward after its forward: the pool's last
     * resolved batch comes back, ResolvedBatch); {@code fresh}: each call a different assignment of the same
     * adapters to the tokens (four, in turn), so that every call resolves its ids and derives its tables anew.
     */
    @Param({"same"})
    public String ids;

    /**
     * Distinct α's among the adapters (of one index set): adapter a takes PEFT's default scaling times
     * 1 + a mod alphas. The pool groups by index set whatever the α, so the mixed batch's time should not move.
     */
    @Param({"1"})
    public int alphas;

    /** CUDA: the mixed batch's gather kernel ({@link CudaFourierFT#MIXED_GATHER_PROPERTY}): rows or bins. */
    @Param({"rows"})
    public String gather;

    private FourierFTBackend ft;
    private FourierFTAdapterPool pool;
    private int[][] idSets;
    private int nextIds;
    private int adapters;
    private HostArray x;
    private HostArray y;
    private CudaFourierFT cuda;
    private CudaStream stream;
    private DeviceBuffer dx;
    private DeviceBuffer dy;
    private HostArray gx;
    private DeviceBuffer dgx;
    private DeviceBuffer[] deviceCoefficients;
    private DeviceBuffer delta;

    @Setup(Level.Trial)
    public void setUp() {
        if (!ids.equals("same") && !ids.equals("fresh")) { // before any work
            throw new IllegalArgumentException("ids must be same or fresh, not " + ids);
        }
        if (alphas < 1) {
            throw new IllegalArgumentException("alphas must be at least 1, not " + alphas);
        }
        System.setProperty(CudaFourierFT.MIXED_GATHER_PROPERTY, gather);
        ft = Bench.open(backend);
        adapters = distinct == 0 ? tokens : Math.min(distinct, tokens);
        FourierFTSpec spec = FourierFTSpec.fromSeed(d, d, n);
        pool = new FourierFTAdapterPool(d, d);
        for (int a = 0; a < adapters; a++) {
            float alpha = FourierFTSpec.DEFAULT_SCALING * (1 + a % alphas);
            pool.add(a, spec.withAlpha(alpha), Bench.gaussian(n, 100 + a));
        }
        idSets = new int[ids.equals("fresh") ? 4 : 1][tokens];
        for (int k = 0; k < idSets.length; k++) {
            for (int t = 0; t < tokens; t++) {
                idSets[k][t] = (t + 7 * k) % adapters; // k = 0: token t with adapter t mod adapters
            }
        }
        x = Bench.gaussian(DType.FLOAT32, tokens * d, 5);
        y = Bench.gaussian(DType.FLOAT32, tokens * d, 6);
        gx = HostArray.float32(new float[tokens * d]);
        if (ft instanceof CudaFourierFT c) {
            cuda = c;
            stream = c.context().createStream();
            dx = c.context().upload(x);
            dy = c.context().upload(y);
            dgx = c.context().upload(gx);
            if (adapters <= 16) {
                deviceCoefficients = new DeviceBuffer[adapters];
                for (int a = 0; a < adapters; a++) {
                    deviceCoefficients[a] = c.context().upload(
                            HostArray.float32(pool.adapter(a).coefficientsCopy()));
                }
                delta = c.context().allocate(DType.FLOAT32, (long) d * d);
            }
        }
        System.err.printf("pool: %d adapters, %d index set(s), %.1f MB on the host (%.0f adapters per GB)%n",
                pool.size(), pool.indexSets(), pool.bytes() / 1e6, pool.size() / (pool.bytes() / 1e9));
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        Bench.close(deviceCoefficients);
        Bench.closeAll(delta, dx, dy, dgx, stream);
        ft.close();
    }

    @Benchmark
    public void mixed() {
        if (cuda != null) {
            cuda.forward(pool, nextIds(), dx.array(), tokens, dy.array(), stream);
            stream.synchronize();
        } else {
            ft.forward(pool, nextIds(), x, tokens, y);
        }
    }

    /**
     * The mixed batch's backward (y standing in for ∂L/∂y): ∂L/∂c of every used adapter and ∂L/∂x. CUDA: device
     * arrays, the gradients' buffer freed after each call.
     *
     * @return the host call's gradients (CPU), so that they are not optimized away
     */
    @Benchmark
    public Object mixedBackward() {
        if (cuda != null) {
            try (CudaFourierFT.MixedGradients g = cuda.backward(pool, nextIds(), dx.array(), dy.array(), tokens, dgx.array(),
                    stream)) {
                stream.synchronize();
                return g.ids();
            }
        }
        return ft.backward(pool, nextIds(), x, y, tokens, gx);
    }

    /** This call's ids: the one set, or the next of the four in turn ({@link #ids}). */
    private int[] nextIds() {
        return idSets.length == 1 ? idSets[0] : idSets[nextIds++ & 3];
    }

    /** Each used adapter's ΔW materialized, then its tokens multiplied by it (distinct ≤ 16 only). */
    @Benchmark
    public void materializeEach() {
        if (adapters > 16) {
            throw new IllegalStateException("materializeEach runs for at most 16 distinct adapters");
        }
        if (cuda != null) {
            for (int a = 0; a < adapters; a++) {
                int count = (tokens - a + adapters - 1) / adapters; // its tokens a, a + adapters, …
                cuda.materialize(pool.adapter(a).spec(), deviceCoefficients[a].array(), 1, delta.array(), stream);
                long row = 4L * a * d;
                cuda.context().blas().gemm(stream, false, true, count, d, d, 1f, dx.array().address() + row,
                        adapters * d, delta.array().address(), d, 1f, dy.array().address() + row, adapters * d);
            }
            stream.synchronize();
            return;
        }
        float[] delta = new float[d * d];
        float[] xs = x.floats();
        float[] ys = y.floats();
        for (int a = 0; a < adapters; a++) {
            FourierFTAdapterPool.Adapter adapter = pool.adapter(a);
            ft.materialize(adapter.spec(), adapter.coefficientsCopy(), HostArray.float32(delta));
            int count = (tokens - a + adapters - 1) / adapters; // its tokens a, a + adapters, …, gathered
            float[] xa = new float[count * d];
            for (int i = 0; i < count; i++) {
                System.arraycopy(xs, (a + i * adapters) * d, xa, i * d, d);
            }
            float[] ya = new float[count * d];
            Gemm.gemm(false, true, count, d, d, 1f, xa, 0, d, delta, 0, d, 0f, ya, 0, d);
            for (int i = 0; i < count; i++) {
                int row = (a + i * adapters) * d;
                for (int j = 0; j < d; j++) {
                    ys[row + j] += ya[i * d + j];
                }
            }
        }
    }
}
