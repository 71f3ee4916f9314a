package org.spectralpeft.peft;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.cuda.CudaFouRA;
import org.spectralpeft.fourierft.cuda.RequiresCuda;

/** The FouRA checkpoint merge on the CUDA backend: the same checks as on the CPU; skips, with the reason, where CUDA is not available. */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaFouRAModelMergerTest extends FouRAModelMergerTest {
    private static CudaFouRA cuda;

    @BeforeAll
    static void openCuda() {
        cuda = CudaFouRA.open();
    }

    @AfterAll
    static void closeCuda() {
        if (cuda != null) {
            cuda.close();
        }
    }

    @Override
    protected FouRABackend backend() {
        return cuda;
    }
}
