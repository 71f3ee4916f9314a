package org.spectralpeft.foura.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRABackendContract;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;
import org.spectralpeft.fourierft.cuda.RequiresCuda;

/**
 * The FouRA contract on the CUDA backend (on the emulator in CI), plus the unfused path that ranks too large
 * for the fused forward take.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaFouRATest extends FouRABackendContract {
    private static CudaFouRA cuda;

    @BeforeAll
    static void open() {
        cuda = CudaFouRA.open();
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    @Override
    protected FouRABackend backend() {
        return cuda;
    }

    /** r = 160 with the DFT is z of 320 components, past the fused kernel's 256: project, gate, expand. */
    @ParameterizedTest
    @EnumSource(Gate.class)
    void wideRanksTakeTheUnfusedPath(Gate gate) {
        Case c = new Case(200, 170, 160, Transform.DFT, gate);
        int tokens = 11;
        HostArray x = c.inputs(DType.FLOAT32, tokens);
        double[] expected = c.forward(TestData.toDouble(x), tokens);
        HostArray y = HostArray.float32(new float[tokens * 200]);
        try (FouRAFactors f = cuda.prepare(c.spec, c.a, c.b, c.gate)) {
            cuda.forward(f, x, tokens, y);
        }
        double err = TestData.relativeError(TestData.toDouble(y), expected);
        assertTrue(err < 1e-5, "unfused forward: relative error " + err + c.tag());
    }
}
