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

    /** The contract's shapes reach both ways of transforming a column: directly and by FFT. */
    @Test
    void contractShapesCoverDirectAndFftColumns() {
        int direct = 0;
        int fft = 0;
        for (var args : (Iterable<org.junit.jupiter.params.provider.Arguments>) shapes()::iterator) {
            Object[] a = args.get();
            FourierFTSpec spec = FourierFTSpec.fromSeed((int) a[0], (int) a[1], (int) a[2]);
            var cols = spec.halfSpectrumColumns();
            for (int v = 0; v < cols.columns(); v++) {
                int entries = cols.start(v + 1) - cols.start(v);
                if (entries > CpuFourierFT.directColumnEntries(spec.dOut())) {
                    fft++;
                } else if (entries > 0) {
                    direct++;
                }
            }
        }
        assertTrue(direct > 0 && fft > 0, "direct columns " + direct + ", FFT columns " + fft);
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
