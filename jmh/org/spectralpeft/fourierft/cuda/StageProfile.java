package org.spectralpeft.fourierft.cuda;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.spectralpeft.Backends;
import org.spectralpeft.SystemProperty;
import org.spectralpeft.bench.Bench;
import org.spectralpeft.bench.StageReport;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.cuda.internal.FftPlans.Direction;
import org.spectralpeft.cuda.internal.StreamScratch;
import org.spectralpeft.fourierft.FourierFTAdapterPool;
import org.spectralpeft.fourierft.FourierFTSpec;

/**
 * Where the GPU time of each benchmarked FourierFT operation goes ({@link StageReport}), for every
 * configuration of the targets, and of mixed batches of 256 and 4096 tokens (one adapter, and one per token; the
 * forward with each of the two gather kernels, {@link CudaFourierFT#MIXED_GATHER_PROPERTY}); every forward and
 * backward through both routes: rows without a tag on the cuFFT route ({@link CudaFourierFT#FORWARD_PROPERTY}{@code
 * =cufft}), rows tagged "(fused kernel)" through the fused kernels (the default where the layer fits them).
 *
 * <p>usage: {@code StageProfile [REPORT.md]} (default stages.md); CUDA only: without a device it says so
 * and exits with status 2.
 */
public final class StageProfile {
    private final CudaFourierFT cuda;
    private final CudaStream stream;
    private final StageReport report;

    private StageProfile(CudaFourierFT cuda, CudaStream stream) {
        this.cuda = cuda;
        this.stream = stream;
        this.report = new StageReport(cuda.context(), stream, "Stage profile",
                cuda.description() + "; kernels: " + cuda.kernelVariant());
    }

    public static void main(String[] args) throws IOException {
        Path out = Path.of(args.length > 0 ? args[0] : "stages.md");
        var reason = Backends.cudaUnavailableReason();
        if (reason.isPresent()) {
            System.err.println("StageProfile needs a CUDA device: " + reason.get());
            System.exit(2);
        }
        try (CudaFourierFT cuda = Backends.fourierFTCuda(); CudaStream stream = cuda.createStream()) {
            StageProfile p = new StageProfile(cuda, stream);
            p.report.saveAsItGoes(out);
            p.profileAll();
            p.report.write(out);
        }
    }

    /**
     * The operations whose figures are still to be measured first (the unmaterialized forward and backward, both
     * routes, and the mixed batches), then those measured in earlier runs: with the report saved after each
     * operation, a step cut by its time limit loses the latter.
     */
    private void profileAll() {
        for (int tokens : new int[] {1, 16, 64, 256, 4096}) {
            forward(4096, tokens);
        }
        for (int tokens : new int[] {1, 256}) {
            forward(768, tokens); // a length with a factor 3: the fused kernel's radix-3 stage
        }
        for (int tokens : new int[] {1, 16, 256}) {
            backward(tokens);
        }
        for (int tokens : new int[] {256, 4096}) {
            mixed(tokens);
        }
        for (String shape : List.of("4096x4096", "4096x11008")) {
            for (int n : new int[] {1000, 10000}) {
                materialize(shape, n, DType.FLOAT32, 1);
            }
        }
        materialize("4096x4096", 1000, DType.BFLOAT16, 1);
        materialize("4096x4096", 1000, DType.FLOAT32, 64);
        merge("4096x4096", 1000, DType.BFLOAT16);
        gradCoefficients("4096x4096", 1000);
        bareC2R(4096, 4096);
    }

    /**
     * A mixed batch's forward and backward (∂c of each adapter and ∂x, one pass), all tokens through one adapter,
     * then each through its own (one index set, as {@code MixedBatchBenchmark}).
     */
    private void mixed(int tokens) {
        FourierFTSpec spec = FourierFTSpec.fromSeed(4096, 4096, 1000);
        FourierFTAdapterPool pool = new FourierFTAdapterPool(4096, 4096);
        try (DeviceBuffer x = upload(Bench.gaussian(4096 * tokens, 5));
             DeviceBuffer y = upload(Bench.gaussian(4096 * tokens, 6));
             DeviceBuffer gx = cuda.allocate(DType.FLOAT32, 4096L * tokens)) {
            for (int a = 0; a < tokens; a++) {
                pool.add(a, spec, Bench.gaussian(1000, 100 + a));
            }
            for (int adapters : new int[] {1, tokens}) {
                int[] ids = new int[tokens];
                for (int t = 0; t < tokens; t++) {
                    ids[t] = t % adapters;
                }
                String what = String.format("4096x4096 n=1000 T=%d, %d adapter(s) float32", tokens, adapters);
                onCufftRoute("mixed forward " + what, () -> cuda.forward(pool, ids, x.array(), tokens, y.array(),
                        stream));
                SystemProperty.with(CudaFourierFT.MIXED_GATHER_PROPERTY, "bins", // the other gather kernel, per entry
                        () -> onCufftRoute("mixed forward (gather per entry) " + what, () -> cuda.forward(pool, ids,
                                x.array(), tokens, y.array(), stream)));
                SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "fused", // a block per token, no cuFFT
                        () -> report.profile("mixed forward (fused kernel) " + what, () -> cuda.forward(pool, ids,
                                x.array(), tokens, y.array(), stream)));
                Runnable backward = () -> {
                    try (CudaFourierFT.MixedGradients g = cuda.backward(pool, ids, x.array(), y.array(), tokens,
                            gx.array(), stream)) {
                        stream.synchronize(); // the gradients' buffer is freed on return
                    }
                };
                onCufftRoute("mixed backward " + what, backward);
                SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "fused",
                        () -> report.profile("mixed backward (fused kernel) " + what, backward));
                if (adapters > 1) {
                    freshIds(pool, tokens, adapters, what, x, y, gx);
                }
            }
        }
    }

    /**
     * The fused mixed forward and backward with each call a new assignment of the same adapters to the tokens (four
     * in turn, as {@code MixedBatchBenchmark}'s {@code ids=fresh}): what a serving loop's batches cost, which the
     * pool's resolve cache does not serve; the host passes show what a call does instead.
     */
    private void freshIds(FourierFTAdapterPool pool, int tokens, int adapters, String what, DeviceBuffer x,
                          DeviceBuffer y, DeviceBuffer gx) {
        int[][] idSets = new int[4][tokens];
        for (int k = 0; k < 4; k++) {
            for (int t = 0; t < tokens; t++) {
                idSets[k][t] = (t + 7 * k) % adapters;
            }
        }
        int[] next = {0};
        SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "fused", () -> {
            report.profile("mixed forward (fused kernel) " + what + ", fresh ids", () -> cuda.forward(pool,
                    idSets[next[0]++ & 3], x.array(), tokens, y.array(), stream));
            report.profile("mixed backward (fused kernel) " + what + ", fresh ids", () -> {
                try (CudaFourierFT.MixedGradients g = cuda.backward(pool, idSets[next[0]++ & 3], x.array(), y.array(),
                        tokens, gx.array(), stream)) {
                    stream.synchronize();
                }
            });
        });
    }

    /** Profiles a forward or backward on the cuFFT route ({@link CudaFourierFT#FORWARD_PROPERTY}{@code =cufft}). */
    private void onCufftRoute(String label, Runnable call) {
        SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "cufft", () -> report.profile(label, call));
    }

    private void materialize(String shape, int n, DType dtype, int layers) {
        int[] s = Bench.shape(shape);
        FourierFTSpec spec = FourierFTSpec.fromSeed(s[0], s[1], n);
        try (DeviceBuffer coeffs = upload(Bench.gaussian(n * layers, 1))) {
            DeviceBuffer[] out = Bench.deviceBuffers(cuda, dtype, (long) layers * s[0] * s[1], null);
            try {
                int[] next = {0};
                report.profile(String.format("materialize %s n=%d %s%s", shape, n, dtype.name().toLowerCase(),
                        layers > 1 ? ", " + layers + " layers in one call" : ""),
                        () -> cuda.materialize(spec, coeffs.array(), layers, out[next[0]++ % out.length].array(), stream));
            } finally {
                Bench.close(out);
            }
        }
    }

    private void merge(String shape, int n, DType dtype) {
        int[] s = Bench.shape(shape);
        FourierFTSpec spec = FourierFTSpec.fromSeed(s[0], s[1], n);
        try (DeviceBuffer coeffs = upload(Bench.gaussian(n, 1))) {
            DeviceBuffer[] weights = Bench.deviceBuffers(cuda, dtype, (long) s[0] * s[1],
                    Bench.gaussian(dtype, s[0] * s[1], 2));
            try {
                int[] next = {0};
                report.profile(String.format("merge %s n=%d %s", shape, n, dtype.name().toLowerCase()),
                        () -> cuda.merge(spec, coeffs.array(), weights[next[0]++ % weights.length].array(), stream));
            } finally {
                Bench.close(weights);
            }
        }
    }

    private void gradCoefficients(String shape, int n) {
        int[] s = Bench.shape(shape);
        FourierFTSpec spec = FourierFTSpec.fromSeed(s[0], s[1], n);
        DeviceBuffer[] grads = Bench.deviceBuffers(cuda, DType.FLOAT32, (long) s[0] * s[1],
                Bench.gaussian(DType.FLOAT32, s[0] * s[1], 2));
        try (DeviceBuffer g = cuda.allocate(DType.FLOAT32, n)) {
            int[] next = {0};
            report.profile(String.format("gradCoefficients %s n=%d float32", shape, n),
                    () -> cuda.gradCoefficients(spec, grads[next[0]++ % grads.length].array(), g.array(), stream));
        } finally {
            Bench.close(grads);
        }
    }

    /** The floor: one cuFFT C2R-2D of the half spectrum into a float32 matrix (as FloorBenchmark.bareC2R). */
    private void bareC2R(int dOut, int dIn) {
        try (DeviceBuffer spectrum = cuda.allocate(DType.FLOAT32, 2L * dOut * (dIn / 2 + 1))) {
            DeviceBuffer[] out = Bench.deviceBuffers(cuda, DType.FLOAT32, (long) dOut * dIn, null);
            try {
                int[] next = {0};
                report.profile(String.format("bare cuFFT C2R-2D %dx%d (floor)", dOut, dIn), () -> {
                    try (StreamScratch scratch = new StreamScratch(stream)) {
                        cuda.plans().twoD(Direction.C2R, dOut, dIn, 1, false, spectrum.array().address(),
                                out[next[0]++ % out.length].array().address(), scratch, stream);
                    }
                });
            } finally {
                Bench.close(out);
            }
        }
    }

    private void forward(int d, int tokens) {
        FourierFTSpec spec = FourierFTSpec.fromSeed(d, d, 1000);
        try (DeviceBuffer coeffs = upload(Bench.gaussian(1000, 1))) {
            DeviceBuffer[] x = Bench.deviceBuffers(cuda, DType.FLOAT32, (long) d * tokens,
                    Bench.gaussian(DType.FLOAT32, d * tokens, 3));
            DeviceBuffer[] y = Bench.deviceBuffers(cuda, DType.FLOAT32, (long) d * tokens, null);
            try {
                int[] next = {0};
                Runnable call = () -> {
                    int i = next[0]++;
                    cuda.forward(spec, coeffs.array(), x[i % x.length].array(), tokens, y[i % y.length].array(),
                            stream);
                };
                onCufftRoute(String.format("forward %dx%d n=1000 T=%d float32", d, d, tokens), call);
                SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "fused", () -> report.profile(
                        String.format("forward (fused kernel) %dx%d n=1000 T=%d float32", d, d, tokens), call));
            } finally {
                Bench.close(y);
                Bench.close(x);
            }
        }
    }

    private void backward(int tokens) {
        FourierFTSpec spec = FourierFTSpec.fromSeed(4096, 4096, 1000);
        try (DeviceBuffer coeffs = upload(Bench.gaussian(1000, 1));
             DeviceBuffer gc = cuda.allocate(DType.FLOAT32, 1000)) {
            DeviceBuffer[] x = Bench.deviceBuffers(cuda, DType.FLOAT32, 4096L * tokens,
                    Bench.gaussian(DType.FLOAT32, 4096 * tokens, 3));
            DeviceBuffer[] gy = Bench.deviceBuffers(cuda, DType.FLOAT32, 4096L * tokens,
                    Bench.gaussian(DType.FLOAT32, 4096 * tokens, 4));
            try {
                int[] next = {0};
                Runnable call = () -> {
                    int i = next[0]++;
                    // ∂L/∂x accumulates into the next rotation's x
                    cuda.backward(spec, coeffs.array(), x[i % x.length].array(), gy[i % gy.length].array(), tokens,
                            gc.array(), x[(i + 1) % x.length].array(), stream);
                };
                onCufftRoute(String.format("backward (∂L/∂c and ∂L/∂x) 4096x4096 n=1000 T=%d float32", tokens), call);
                SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "fused", () -> report.profile(String.format(
                        "backward (fused kernel) 4096x4096 n=1000 T=%d float32", tokens), call));
            } finally {
                Bench.close(gy);
                Bench.close(x);
            }
        }
    }

    private DeviceBuffer upload(float[] values) {
        DeviceBuffer b = cuda.allocate(DType.FLOAT32, values.length);
        b.copyFrom(HostArray.float32(values));
        return b;
    }
}
