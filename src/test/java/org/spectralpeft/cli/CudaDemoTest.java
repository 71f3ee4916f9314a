package org.spectralpeft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.spectralpeft.fourierft.cuda.RequiresCuda;

/**
 * {@code demo --backend=cuda} for each family runs on the CUDA backend and passes its own checks (forward
 * against the materialized ΔW or W', samples against the float64 definition), at the sizes it documents;
 * skips, with the reason, where CUDA is not available.
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaDemoTest {
    @ParameterizedTest
    @ValueSource(strings = {"fourierft", "foura", "tlora"})
    void theDemoRunsOnCudaAndPassesItsChecks(String adapter) {
        // about 80 s on the CUDA emulator for the three: once there (threaded streams), not again with immediate
        // streams, whose kernels the other tests run in both modes
        assumeFalse("immediate".equals(System.getenv("SPECTRALPEFT_EMU_STREAMS")),
                "the demos run in the emulator's threaded mode");
        CliRun r = CliRun.run("demo", "--adapter", adapter, "--backend=cuda", "--tokens=2");
        String printed = r.out();
        String both = r.both();
        assertEquals(Main.OK, r.status(), both);
        assertTrue(printed.contains("backend: cuda") && printed.contains("checks: passed"), both);
        switch (adapter) {
            case "foura" -> assertTrue(printed.contains("4096 x 4096 FouRA, r = 16, DFT")
                    && printed.contains("4096 x 4096 FouRA, r = 16, DCT"), both);
            case "tlora" -> assertTrue(printed.contains("1280 x 1280 TLoRA, factors [8, 10, 16], transform ring rank 1")
                    && printed.contains("transform ring rank 4"), both);
            default -> assertTrue(printed.contains("4096"), both);
        }
    }
}
