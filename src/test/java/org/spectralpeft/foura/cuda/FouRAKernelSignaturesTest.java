package org.spectralpeft.foura.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.spectralpeft.SystemProperty;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.PtxSignatures;
import org.spectralpeft.foura.FouRASpec;

/**
 * Every launcher of {@link FouRAKernels} passes what its kernel in the shipped PTX (kernels/foura.cu) declares,
 * and every kernel has a launcher, checked without a device: launches go to a recorder.
 */
class FouRAKernelSignaturesTest {
    @Test
    void launchersMatchTheKernelSignatures() throws IOException {
        Map<String, List<Class<?>>> signatures = PtxSignatures.of(FouRAKernels.MODULE);
        assertEquals(new TreeSet<>(List.of(FouRAKernels.KERNELS)), new TreeSet<>(signatures.keySet()),
                "kernels in foura.compute_90.ptx vs FouRAKernels.KERNELS");
        List<PtxSignatures.Launch> launches = new ArrayList<>();
        CommonKernels.Launcher recorder = (kernel, gx, gy, stream, args) ->
                launches.add(new PtxSignatures.Launch(kernel, gx, gy, args.clone()));
        FouRAKernels k = new FouRAKernels(recorder);
        FouRASpec spec = FouRASpec.of(40, 33, 4, FouRASpec.Transform.DFT, FouRASpec.Gate.FIXED, 1f);
        long a = 1L << 34;
        DeviceArray x = DeviceArray.foreign(a, 5 * 33, DType.BFLOAT16);
        DeviceArray y = DeviceArray.foreign(a, 5 * 40, DType.FLOAT16);
        k.forwardMixed(x, a, a, 3, a, 5, 8, 33, 40, a, y, null); // forward(spec, …) is this with no tables
        k.forwardMixed(x, a, 0L, 1, 0L, 5, 8, 33, 40, a, y, null);
        SystemProperty.with(FouRAKernels.PROJECT_COLUMNS_PROPERTY, "1", // the other projection kernel
                () -> k.forwardMixed(x, a, a, 3, a, 5, 8, 33, 40, a, y, null));
        k.projectTiledAndExpand(x, a, a, FouRAKernels.TiledGrid.of(5, 8, 33), 5, 33, 8, 40, a, y, null);
        k.projectTiledAndExpand(x, a, a, FouRAKernels.TiledGrid.of(130, 8, 700), 130, 700, 8, 40, a, y,
                null); // x's columns in chunks
        k.forwardSmall(spec, x, DeviceArray.foreign(a, 8 * 33, DType.FLOAT32), DeviceArray.foreign(a, 8 * 40,
                DType.FLOAT32), DeviceArray.foreign(a, spec.gateLength(), DType.FLOAT32), 0.5f, 5, y, null);
        k.gate(spec, a, 1, 0L, a, 0.5f, 5, null);
        k.gate(spec, a, 4, 5L * 32, a, 0.5f, 5, null);
        k.gateBackward(spec, a, 1, a, 1, 0L, a, 5, a, a, null);
        k.gateBackward(spec, a, 4, a, 2, 5L * 32, a, 5, a, a, null);
        FouRASpec adaptive = FouRASpec.of(40, 33, 4, FouRASpec.Transform.DCT, FouRASpec.Gate.ADAPTIVE, 1f);
        k.gate(adaptive, a, 4, 5L * 32, a, 0.5f, 5, null); // a block per token: the logits read the token's whole z
        k.gateBackward(adaptive, a, 4, a, 2, 5L * 32, a, 5, a, a, null);
        k.delta(a, a, a, 8, 40, 33, y, 1, null);
        k.foldExpand(a, 4, 33, 1f, -1f, a, a, null);
        k.foldHermitian(a, a, 4, 33, 1f, 1f, a, null);
        k.dct3Pre(a, 4, 33, a, null);
        k.dctReorder(a, 4, 33, true, a, null);
        k.dct2Post(a, 4, 33, a, null);
        k.transpose(a, 40, 4, a, null);
        k.addProduct(a, a, 70, 40, 96, y, null);
        PtxSignatures.assertLaunchesMatch(signatures, launches);
        k.close();
    }
}
