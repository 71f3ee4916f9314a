package org.spectralpeft.peft;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.cpu.CpuFourierFT;

class CpuModelMergerTest extends ModelMergerContract {
    private static CpuFourierFT cpu;

    @BeforeAll
    static void open() {
        cpu = new CpuFourierFT();
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    @Override
    protected FourierFTBackend backend() {
        return cpu;
    }
}
