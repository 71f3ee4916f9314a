package org.spectralpeft.cpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.spectralpeft.FourierFTBackendContract;
import org.spectralpeft.api.DType;
import org.spectralpeft.api.FourierFTBackend;
import org.spectralpeft.api.FourierFTSpec;
import org.spectralpeft.api.HostArray;

class CpuFourierFTTest extends FourierFTBackendContract {
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

    @Test
    void closedBackendRefusesWork() {
        CpuFourierFT b = new CpuFourierFT();
        b.close();
        b.close(); // idempotent
        FourierFTSpec spec = FourierFTSpec.fromSeed(8, 8, 4);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> b.materialize(spec, new float[4], HostArray.allocate(DType.FLOAT32, 64)));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }
}
