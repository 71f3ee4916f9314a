package org.spectralpeft.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import org.spectralpeft.Backends;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.cuda.CudaTLoRA;
import org.spectralpeft.tlora.cuda.TLoRADeviceParameters;

/**
 * Where the GPU time of TLoRA's forward and forward + backward goes on CUDA ({@link StageReport}): d = 1280 and
 * 2048 (the authors' factorisations), ring rank R = 1 and 4, LoRA residual of rank 8, 1024 and 4096 tokens,
 * device arrays (the cases of {@code TLoRABenchmark}).
 *
 * <p>usage: {@code TLoRAStageProfile [REPORT.md] [--small]} (default tlora-stages.md; --small: d = 320 and 64
 * tokens, a check that it runs, e.g. on the CUDA emulator); CUDA only: without a device it says so and exits with
 * status 2.
 */
public final class TLoRAStageProfile {
    private TLoRAStageProfile() {
    }

    public static void main(String[] args) throws IOException {
        StageReport.Options options = StageReport.Options.parse(args, "tlora-stages.md", "TLoRAStageProfile");
        boolean small = options.small();
        Path out = options.out();
        int[] sizes = small ? new int[] {320} : new int[] {1280, 2048};
        int[] tokenCounts = small ? new int[] {64} : new int[] {1024, 4096};
        try (CudaTLoRA cuda = Backends.tLoRACuda(); CudaStream stream = cuda.context().createStream()) {
            StageReport report = new StageReport(cuda.context(), stream, "TLoRA stage profile", cuda.description())
                    .saveAsItGoes(out);
            for (int d : sizes) {
                int[] shape = TLoRASpec.authorsShape(d);
                for (int ring : new int[] {1, 4}) {
                    TLoRASpec spec = TLoRASpec.of(shape, shape, ring, TLoRASpec.Residual.LORA, 8, 1f);
                    try (TLoRADeviceParameters p = cuda.prepare(spec, TLoRAParameters.initial(spec, new Random(3)));
                         DeviceBuffer w0 = cuda.context().upload(Bench.gaussian(DType.FLOAT32, d * d, 4))) {
                        for (int tokens : tokenCounts) {
                            try (DeviceBuffer x = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 5));
                                 DeviceBuffer y = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 6));
                                 DeviceBuffer gy = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 7));
                                 DeviceBuffer gx = cuda.context().upload(Bench.gaussian(DType.FLOAT32, tokens * d, 8))) {
                                String what = String.format("%dx%d R=%d T=%d float32", d, d, ring, tokens);
                                report.profile("forward " + what,
                                        () -> cuda.forward(p, w0.array(), x.array(), tokens, y.array(), stream));
                                report.profile("forward + backward " + what, () -> {
                                    cuda.forward(p, w0.array(), x.array(), tokens, y.array(), stream);
                                    cuda.backward(p, w0.array(), x.array(), gy.array(), tokens, gx.array(), stream);
                                });
                            }
                        }
                    }
                }
            }
            report.write(out);
        }
    }
}
