package org.spectralpeft.peft;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.spectralpeft.tlora.TLoRABackend;
import org.spectralpeft.tlora.cuda.CudaTLoRA;
import org.spectralpeft.fourierft.cuda.RequiresCuda;

/** The TLoRA checkpoint merge on the CUDA backend: the same checks as on the CPU; skips, with the reason, where CUDA is not available. */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaTLoRAModelMergerTest extends TLoRAModelMergerTest {
    private static CudaTLoRA cuda;

    @BeforeAll
    static void openCuda() {
        cuda = CudaTLoRA.open();
    }

    @AfterAll
    static void closeCuda() {
        if (cuda != null) {
            cuda.close();
        }
    }

    @Override
    protected TLoRABackend backend() {
        return cuda;
    }
}
