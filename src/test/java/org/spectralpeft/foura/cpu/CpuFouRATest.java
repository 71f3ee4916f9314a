package org.spectralpeft.foura.cpu;

import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRABackendContract;
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
