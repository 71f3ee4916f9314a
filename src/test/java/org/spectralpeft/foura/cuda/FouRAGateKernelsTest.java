package org.spectralpeft.foura.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;
import org.spectralpeft.fourierft.cuda.RequiresCuda;
import org.spectralpeft.StageLabels;

/**
 * The SGEMM route's gate passes for the NONE and FIXED gates, a thread per token and component
 * ({@code foura_gate_elementwise}, {@code foura_gate_backward_elementwise}): bit for bit the float32 operations of the
 * per-token kernels they replace for those gates (parts added in part order into the first, then w = v·(scale·m) and
 * v·(−scale·m) for the imaginary half; ∂L/∂z = fma(±g, dv, 0) with g = α·m), computed here in Java, on token counts and
 * ranks that leave partial blocks, with and without parts.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class FouRAGateKernelsTest {
    private static KernelFixture gpu;

    @BeforeAll
    static void open() {
        gpu = new KernelFixture();
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    @ParameterizedTest
    @CsvSource({"DFT, FIXED, 3, 1, 1", "DFT, NONE, 16, 37, 4", "DCT, FIXED, 5, 70, 2", "DCT, NONE, 1, 9, 1",
        "DFT, FIXED, 64, 5, 8"})
    void theElementwiseGatesAreThePerTokenGatesOperationForOperation(Transform transform, Gate gate, int rank,
                                                                    int tokens, int parts) {
        TestData data = new TestData();
        FouRASpec spec = FouRASpec.of(4 * rank + 4, 4 * rank + 4, rank, transform, gate, 0.75f);
        int width = spec.zWidth();
        long stride = (long) tokens * width;
        float[] z = data.gaussian(parts * tokens * width);
        float[] dz = data.gaussian(parts * tokens * width);
        float[] mask = new float[rank];
        for (int j = 0; j < rank; j++) {
            mask[j] = data.nextInt(2);
        }
        float scale = 1.3f;
        float[] w = z.clone();
        float[] dzOut = dz.clone();
        float[] wBackward = z.clone();
        try (DeviceBuffer dZ = gpu.context.upload(HostArray.float32(z));
             DeviceBuffer dZ2 = gpu.context.upload(HostArray.float32(z));
             DeviceBuffer dDz = gpu.context.upload(HostArray.float32(dz));
             DeviceBuffer dMask = gpu.context.upload(HostArray.float32(mask))) {
            long m = gate == Gate.FIXED ? dMask.array().address() : 0L;
            List<String> stages = StageLabels.of(() -> {
                gpu.kernels.gate(spec, dZ.array().address(), parts, stride, m, scale, tokens, gpu.stream);
                gpu.kernels.gateBackward(spec, dZ2.array().address(), parts, dDz.array().address(), parts, stride, m,
                        tokens, 0L, 0L, gpu.stream);
                gpu.stream.synchronize();
            });
            org.junit.jupiter.api.Assertions.assertEquals(List.of(FouRAKernels.GATE_ELEMENTWISE,
                    FouRAKernels.GATE_BACKWARD_ELEMENTWISE), stages);
            dZ.copyTo(HostArray.float32(w));
            dZ2.copyTo(HostArray.float32(wBackward));
            dDz.copyTo(HostArray.float32(dzOut));
        }
        float[] expectW = z.clone();
        float[] expectDz = dz.clone();
        float[] expectWBackward = z.clone();
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < width; c++) {
                int at = t * width + c;
                float v = z[at];
                float dv = dz[at];
                for (int p = 1; p < parts; p++) {
                    v += z[(int) (p * stride) + at];
                    dv += dz[(int) (p * stride) + at];
                }
                int j = c % rank;
                float mj = gate == Gate.FIXED ? mask[j] : 1f;
                boolean re = c < rank;
                expectW[at] = re ? v * (scale * mj) : v * (-scale * mj);
                float g = spec.alpha() * mj;
                expectDz[at] = Math.fma(re ? g : -g, dv, 0f);
                expectWBackward[at] = re ? v * g : v * -g;
            }
        }
        String tag = " " + spec + ", " + tokens + " tokens, " + parts + " parts" + data.tag();
        assertArrayEquals(expectW, w, "forward gate" + tag);
        assertArrayEquals(expectWBackward, wBackward, "backward's w" + tag);
        assertArrayEquals(expectDz, dzOut, "backward's ∂L/∂z" + tag);
    }
}
