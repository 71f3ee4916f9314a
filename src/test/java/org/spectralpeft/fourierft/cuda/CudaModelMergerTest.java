package org.spectralpeft.fourierft.cuda;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.peft.ModelMergerContract;

/** The checkpoint merge on the GPU; skips, with the reason, where CUDA is not available. */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class CudaModelMergerTest extends ModelMergerContract {
    private static CudaFourierFT cuda;

    @BeforeAll
    static void open() {
        cuda = CudaFourierFT.open();
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    @Override
    protected FourierFTBackend backend() {
        return cuda;
    }
}
