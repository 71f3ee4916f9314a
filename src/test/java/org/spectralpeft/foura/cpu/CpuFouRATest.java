package org.spectralpeft.foura.cpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRABackendContract;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec;

class CpuFouRATest extends FouRABackendContract {
    private static CpuFouRA cpu;

    @BeforeAll
    static void open() {
        cpu = new CpuFouRA();
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    @Override
    protected FouRABackend backend() {
        return cpu;
    }

    /**
     * Whole products take the DFT's half spectrum only for few tokens (4·tokens ≤ r), chunks always: on both
     * sides of that threshold the two backends agree, each being checked against the reference by the contract.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 4, 5, 33})
    void halfAndFullSpectraAgree(int tokens) {
        Case c = new Case(40, 52, 16, FouRASpec.Transform.DFT, FouRASpec.Gate.FIXED);
        try (CpuFouRA whole = new CpuFouRA(true); CpuFouRA chunks = new CpuFouRA(false)) {
            float[] x = c.data.gaussian(tokens * 52);
            float[] g = c.data.gaussian(tokens * 40);
            float[][] results = new float[2][];
            float[][] gradients = new float[2][];
            CpuFouRA[] backends = {whole, chunks};
            for (int k = 0; k < 2; k++) {
                FouRAFactors f = backends[k].prepare(c.spec, c.a, c.b, c.gate);
                float[] y = new float[tokens * 40];
                backends[k].forward(f, HostArray.float32(x), tokens, HostArray.float32(y));
                float[] gradA = new float[c.a.length];
                float[] gradB = new float[c.b.length];
                float[] gradX = new float[tokens * 52];
                backends[k].backward(f, HostArray.float32(x), HostArray.float32(g), tokens, gradA, gradB, null,
                        HostArray.float32(gradX));
                results[k] = y;
                gradients[k] = concat(gradA, gradB, gradX);
            }
            double forward = TestData.relativeError(TestData.toDouble(results[0]), TestData.toDouble(results[1]));
            double backward = TestData.relativeError(TestData.toDouble(gradients[0]), TestData.toDouble(gradients[1]));
            assertTrue(forward < 1e-5 && backward < 1e-5, "forward " + forward + ", backward " + backward + c.tag());
        }
    }

    private static float[] concat(float[]... parts) {
        int n = 0;
        for (float[] p : parts) {
            n += p.length;
        }
        float[] out = new float[n];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    @Test
    void aClosedBackendRefusesEveryCall() {
        CpuFouRA closing = new CpuFouRA();
        FouRASpec spec = FouRASpec.of(4, 3, 1, FouRASpec.Transform.DFT, FouRASpec.Gate.NONE, 1f);
        var f = closing.prepare(spec, new float[3], new float[4], null);
        closing.close();
        closing.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> closing.prepare(spec, new float[3], new float[4], null));
        assertThrows(IllegalStateException.class,
                () -> closing.forward(f, HostArray.float32(new float[3]), 1, HostArray.float32(new float[4])));
        assertThrows(IllegalStateException.class, () -> closing.materialize(f, HostArray.float32(new float[12])));
    }
}
