package org.spectralpeft.bench;

import java.io.IOException;
import java.nio.file.Path;
import org.spectralpeft.Backends;
import org.spectralpeft.SystemProperty;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.foura.FouRAAdapterPool;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.cuda.CudaFouRA;
import org.spectralpeft.foura.cuda.FouRAKernels;

/**
 * Where the GPU time of FouRA's forward and forward + backward goes on CUDA ({@link StageReport}): d = 4096,
 * r = 16, NONE gate, both transforms, T = 1, 16, 256 and 4096 tokens, device arrays (the cases of
 * {@code FouRABenchmark}), the forward also through the forward kernels ({@code -Dspectralpeft.foura.forward=kernels})
 * and from T = 16 on through the tiled projection ({@code =tiled}); then mixed batches of T = 256 and 4096 tokens (DFT, FIXED gate),
 * all of one adapter and each of its own (the cases of {@code FouRAMixedBatchBenchmark}).
 *
 * <p>usage: {@code FouRAStageProfile [REPORT.md] [--small]} (default foura-stages.md; --small: d = 256 and T ≤ 16, a
 * check that it runs, e.g. on the CUDA emulator); CUDA only: without a device it says so and exits with status 2.
 */
public final class FouRAStageProfile {
    private FouRAStageProfile() {
    }

    public static void main(String[] args) throws IOException {
        StageReport.Options options = StageReport.Options.parse(args, "foura-stages.md", "FouRAStageProfile");
        boolean small = options.small();
        Path out = options.out();
        int d = small ? 256 : 4096;
        int rank = 16;
        int[] tokenCounts = small ? new int[] {1, 16} : new int[] {1, 16, 256, 4096};
        try (CudaFouRA cuda = Backends.fouRACuda(); CudaStream stream = cuda.context().createStream()) {
            StageReport report = new StageReport(cuda.context(), stream, "FouRA stage profile", cuda.description())
                    .saveAsItGoes(out);
            for (FouRASpec.Transform transform : FouRASpec.Transform.values()) {
                FouRASpec spec = FouRASpec.of(d, d, rank, transform, FouRASpec.Gate.NONE, 1f);
                try (FouRAFactors factors = cuda.prepare(spec, Bench.gaussian(rank * d, 3), Bench.gaussian(d * rank, 4),
                        null);
                     DeviceBuffer gradA = cuda.context().allocate(DType.FLOAT32, (long) rank * d);
                     DeviceBuffer gradB = cuda.context().allocate(DType.FLOAT32, (long) d * rank)) {
                    for (int tokens : tokenCounts) {
                        try (DeviceBuffer x = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 5));
                             DeviceBuffer y = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 6));
                             DeviceBuffer gy = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 7));
                             DeviceBuffer gx = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 8))) {
                            String what = String.format("%dx%d r=%d %s T=%d float32", d, d, rank, transform, tokens);
                            report.profile("forward " + what,
                                    () -> cuda.forward(factors, x.array(), tokens, y.array(), stream));
                            // the forward kernels beside the SGEMMs (read per call): at small T each SGEMM costs the
                            // host about 15 µs (HostOverheadProfile), a launch of ours about 5
                            SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "kernels", () -> report.profile(
                                    "forward (kernels) " + what,
                                    () -> cuda.forward(factors, x.array(), tokens, y.array(), stream)));
                            // the tiled projection beside the default (read per call); at T = 1 its chunks of x's
                            // columns split the one token's sums over 16 blocks, two launches and no cuBLAS
                            SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "tiled", () -> report.profile(
                                    "forward (tiled) " + what,
                                    () -> cuda.forward(factors, x.array(), tokens, y.array(), stream)));
                            if (tokens <= FouRAKernels.SMALL_TOKENS) { // the whole forward in one launch
                                SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "small", () -> report.profile(
                                        "forward (small) " + what,
                                        () -> cuda.forward(factors, x.array(), tokens, y.array(), stream)));
                                // the default takes the small kernel at the smallest sizes: the SGEMMs beside it
                                SystemProperty.with(CudaFouRA.FORWARD_PROPERTY, "gemm", () -> report.profile(
                                        "forward (gemm) " + what,
                                        () -> cuda.forward(factors, x.array(), tokens, y.array(), stream)));
                            }
                            report.profile("forward + backward " + what, () -> {
                                cuda.forward(factors, x.array(), tokens, y.array(), stream);
                                cuda.backward(factors, x.array(), gy.array(), tokens, gradA.array(), gradB.array(), null,
                                        gx.array(), stream);
                            });
                        }
                    }
                }
            }
            mixedBatches(cuda, stream, report, d, rank, small ? new int[] {16} : new int[] {256, 4096});
            report.write(out);
        }
    }

    /** Mixed batches of each token count, through one adapter and through as many adapters as tokens. */
    private static void mixedBatches(CudaFouRA cuda, CudaStream stream, StageReport report, int d, int rank,
                                     int[] tokenCounts) {
        int most = java.util.Arrays.stream(tokenCounts).max().orElseThrow();
        try (FouRAAdapterPool pool = FouRAMixedBatchBenchmark.pool(cuda, d, rank, most)) {
            for (int tokens : tokenCounts) {
                try (DeviceBuffer x = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 5));
                     DeviceBuffer y = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 6))) {
                    for (int adapters : new int[] {1, tokens}) {
                        int[] ids = new int[tokens];
                        for (int t = 0; t < tokens; t++) {
                            ids[t] = t % adapters;
                        }
                        report.profile(String.format("mixed forward %dx%d r=%d DFT FIXED T=%d, %d adapter(s) float32", d,
                                d, rank, tokens, adapters), () -> cuda.forward(pool, ids, x.array(), tokens, y.array(),
                                stream));
                    }
                }
            }
        }
    }
}
