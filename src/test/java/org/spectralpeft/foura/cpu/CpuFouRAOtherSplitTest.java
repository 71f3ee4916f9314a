package org.spectralpeft.foura.cpu;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.spectralpeft.cpu.Gemm;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRABackendContract;

/**
 * The contract again with the split of work the BLAS in use does not get by default (fixed chunks under the
 * native BLAS, whole products under the Java one), so that both code paths are tested on every machine.
 */
class CpuFouRAOtherSplitTest extends FouRABackendContract {
    private static CpuFouRA cpu;

    @BeforeAll
    static void open() {
        cpu = new CpuFouRA(!Gemm.threadsItself());
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    @Override
    protected FouRABackend backend() {
        return cpu;
    }
}
