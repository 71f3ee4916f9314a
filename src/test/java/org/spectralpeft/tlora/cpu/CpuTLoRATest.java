package org.spectralpeft.tlora.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cpu.Gemm;
import org.spectralpeft.tlora.TLoRABackend;
import org.spectralpeft.tlora.TLoRABackendContract;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.TLoRASpec.Residual;

/** The TLoRA contract on the CPU backend, plus what only it promises: identity start bit for bit with its GEMM. */
class CpuTLoRATest extends TLoRABackendContract {
    private static CpuTLoRA cpu;

    @BeforeAll
    static void open() {
        cpu = new CpuTLoRA();
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    @Override
    protected TLoRABackend backend() {
        return cpu;
    }

    @Override
    protected TLoRABackend another() {
        return new CpuTLoRA();
    }

    /** The java-blas run (pom.xml) takes the pure-Java BLAS's paths: the property must have reached Gemm. */
    @Test
    void theBlasIsTheOneThePropertyAsksFor() {
        assumeTrue("java".equals(System.getProperty(Gemm.BLAS_PROPERTY)), "only in the java-blas run");
        assertFalse(Gemm.threadsItself(), Gemm.implementation());
        assertTrue(Gemm.implementation().contains(Gemm.BLAS_PROPERTY + "=java"), Gemm.implementation());
    }

    /**
     * A float32 y is accumulated into directly, except where it is x's own array (a residual stream, h += layer(h)):
     * then the products must read all of x before any write, on both routes (tokens below and above d_out).
     */
    @ParameterizedTest
    @CsvSource({"5,LORA", "40,LORA", "5,TR", "40,TTM"})
    void aForwardIntoItsOwnInputReadsTheInputFirst(int tokens, Residual kind) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {3, 4}, new int[] {4, 3}, 2, kind, 2, 1.2f);
        TLoRAParameters p = random(spec, data);
        HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
        float[] h = data.gaussian(tokens * spec.dIn());
        float[] expected = h.clone();
        cpu.forward(spec, p, w0, HostArray.float32(h.clone()), tokens, HostArray.float32(expected));
        HostArray inPlace = HostArray.float32(h);
        cpu.forward(spec, p, w0, inPlace, tokens, inPlace);
        // the in-place call adds its terms in another order (no result buffer); a write before a read would show
        // as an error of the size of the terms, not of their rounding
        double err = TestData.relativeError(TestData.toDouble(HostArray.float32(h)),
                TestData.toDouble(HostArray.float32(expected)));
        assertTrue(err < 1e-6, tokens + " tokens: " + err + data.tag());
    }

    @ParameterizedTest
    @CsvSource({"1,LORA", "2,TR", "4,TTM", "2,LORA", "4,TR", "1,TTM"})
    void theInitialParametersGiveExactlyW0WithTheCpuGemm(int ring, Residual kind) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {4, 2, 5}, new int[] {3, 8, 2}, ring, kind, 3, 2f);
        TLoRAParameters p = TLoRAParameters.initial(spec, new Random(data.seed));
        float[] w0 = data.gaussian(spec.dOut() * spec.dIn());
        for (int tokens : new int[] {9, 50}) { // T on the tokens, and (more tokens than outputs) on W0's rows
            float[] x = data.gaussian(tokens * spec.dIn());
            float[] y = new float[tokens * spec.dOut()];
            cpu.forward(spec, p, HostArray.float32(w0), HostArray.float32(x), tokens, HostArray.float32(y));
            float[] plain = new float[tokens * spec.dOut()];
            Gemm.gemm(false, true, tokens, spec.dOut(), spec.dIn(), 1f, x, 0, spec.dIn(), w0, 0, spec.dIn(), 0f, plain, 0,
                    spec.dOut());
            assertArrayEquals(plain, y, tokens + " tokens: x·W0ᵀ, bit for bit" + data.tag());
        }
        float[] w = new float[w0.length];
        cpu.materialize(spec, p, HostArray.float32(w0), HostArray.float32(w));
        assertArrayEquals(w0, w, "W' = W0, bit for bit" + data.tag());
    }
}
