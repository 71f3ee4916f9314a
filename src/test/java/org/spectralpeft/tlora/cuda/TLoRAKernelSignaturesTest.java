package org.spectralpeft.tlora.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.PtxSignatures;

/**
 * Every launcher of {@link TLoRAKernels} passes what its kernel in the shipped PTX (kernels/tlora.cu) declares,
 * and every kernel has a launcher, checked without a device: launches go to a recorder.
 */
class TLoRAKernelSignaturesTest {
    @Test
    void launchersMatchTheKernelSignatures() throws IOException {
        Map<String, List<Class<?>>> signatures = PtxSignatures.of(TLoRAKernels.MODULE);
        assertEquals(new TreeSet<>(List.of(TLoRAKernels.KERNELS)), new TreeSet<>(signatures.keySet()),
                "kernels in tlora.compute_90.ptx vs TLoRAKernels.KERNELS");
        List<PtxSignatures.Launch> launches = new ArrayList<>();
        CommonKernels.Launcher recorder = (kernel, gx, gy, stream, args) ->
                launches.add(new PtxSignatures.Launch(kernel, gx, gy, args.clone()));
        try (TLoRAKernels k = new TLoRAKernels(recorder)) {
            int[] shape = {2, 3};
            float[][] cores = {new float[2 * 2 * 4], new float[3 * 3 * 4]};
            RingLayout ring = new RingLayout(shape, shape, 2, cores);
            long a = 1L << 34;
            k.apply(ring, a, true, a, 7, 0.5f, a, true, null);
            k.permute(a, a, new int[] {2, 3, 1, 4, 5}, new int[] {60, 20, 1, 5, 1}, null);
            k.otherProducts(ring, a, 1, a, null);
            RingLayout kron = new RingLayout(new int[] {3, 2}, shape, 1, new float[][] {new float[6], new float[6]});
            k.kronGradient(kron, a, a, a, 9, 0.5f, a, a, null);
        }
        PtxSignatures.assertLaunchesMatch(signatures, launches);
    }
}
