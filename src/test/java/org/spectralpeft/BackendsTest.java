package org.spectralpeft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.cpu.CpuFouRA;
import org.spectralpeft.foura.cuda.CudaFouRA;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.cpu.CpuFourierFT;
import org.spectralpeft.fourierft.cuda.CudaFourierFT;
import org.spectralpeft.tlora.TLoRABackend;
import org.spectralpeft.tlora.cpu.CpuTLoRA;
import org.spectralpeft.tlora.cuda.CudaTLoRA;

/**
 * The factory picks each family's CUDA backend exactly where CUDA is available, else its CPU backend, and the
 * CUDA-only openers say why they cannot open. Tagged gpu so that it also runs where CUDA is (the emulated runs);
 * it needs no device: each branch is checked where it applies.
 */
@Tag("gpu")
class BackendsTest {
    @Test
    void eachFamilyGetsItsCudaBackendExactlyWhereCudaIsAvailable() throws Exception {
        boolean cuda = Backends.cudaUnavailableReason().isEmpty();
        try (FourierFTBackend f = Backends.fourierFT(); FouRABackend a = Backends.fouRA(); TLoRABackend t = Backends.tLoRA()) {
            assertEquals(cuda ? CudaFourierFT.class : CpuFourierFT.class, f.getClass(), f.description());
            assertEquals(cuda ? CudaFouRA.class : CpuFouRA.class, a.getClass(), a.description());
            assertEquals(cuda ? CudaTLoRA.class : CpuTLoRA.class, t.getClass(), t.description());
        }
        if (!cuda) {
            String reason = Backends.cudaUnavailableReason().orElseThrow();
            for (Runnable open : new Runnable[] {() -> Backends.fourierFTCuda().close(), () -> Backends.fouRACuda().close(),
                () -> Backends.tLoRACuda().close()}) {
                IllegalStateException e = assertThrows(IllegalStateException.class, open::run);
                assertTrue(!e.getMessage().isBlank(), "a reason, such as: " + reason);
            }
        }
    }
}
