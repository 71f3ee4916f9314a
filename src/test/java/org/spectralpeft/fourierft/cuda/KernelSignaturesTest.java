package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.spectralpeft.core.DType;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.PtxSignatures;
import org.spectralpeft.fourierft.FourierFTSpec;

/**
 * Every launcher of {@link FourierFTKernels} passes what its kernel in the shipped PTX (built from
 * kernels/fourierft.cu, read from the class path as the backend reads it) declares: as many arguments, each
 * of the Java type the launch marshals for the parameter's PTX type (.u64 pointers and long long → Long,
 * 32-bit integers → Integer, .f32 → Float), within CUDA's grid limits; and every kernel has a launcher. No
 * device needed: launches go to a recorder.
 */
class KernelSignaturesTest {
    @Test
    void launchersMatchTheKernelSignatures() throws java.io.IOException {
        Map<String, List<Class<?>>> fourierft = PtxSignatures.of(FourierFTKernels.MODULE);
        Map<String, List<Class<?>>> shared = PtxSignatures.of(CommonKernels.MODULE);
        assertEquals(new TreeSet<>(List.of(FourierFTKernels.KERNELS)), new TreeSet<>(fourierft.keySet()),
                "kernels in fourierft.compute_90.ptx vs FourierFTKernels.KERNELS");
        assertEquals(new TreeSet<>(List.of(CommonKernels.KERNELS)), new TreeSet<>(shared.keySet()),
                "kernels in common.compute_90.ptx vs CommonKernels.KERNELS");
        Map<String, List<Class<?>>> signatures = new HashMap<>(fourierft);
        signatures.putAll(shared);

        List<PtxSignatures.Launch> launches = new ArrayList<>();
        CommonKernels.Launcher recorder = (kernel, gx, gy, stream, args) ->
                launches.add(new PtxSignatures.Launch(kernel, gx, gy, args.clone()));
        FourierFTKernels k = new FourierFTKernels(recorder);
        CommonKernels common = new CommonKernels(recorder);
        FourierFTSpec spec = FourierFTSpec.fromSeed(37, 29, 50);
        DeviceSpecTables t = DeviceSpecTables.notUploaded(spec, 1L << 32);
        DeviceArray bf16 = DeviceArray.foreign(1L << 33, 37 * 29, DType.BFLOAT16);
        long a = 1L << 34;
        k.scatterHalfSpectrum(a, 37 * 15, a, 50, t, 2, 0.5f, null);
        k.columnSynthesis(a, 37, 16, 16, 15, a, 50, t, 2, 0.5f, null);
        k.columnAnalysis(a, 37, 0, 37, 15, t, 50, a, null);
        k.gatherScatter(a, 15, a, 19, 19, a, t.forward, 0.5f, 70, 128, null);
        k.gatherScatterMixed(a, 15, a, 19, 19, a, 50, a, a, t.forward, 70, 128, null); // staged rows
        k.gatherScatterMixed(a, 15, a, 19, 19, a, FourierFTKernels.MAX_STAGED_COEFFICIENTS + 1, a, a, t.forward, 70,
                128, null); // too many coefficients to stage: per entry
        k.forwardFused(a, DType.BFLOAT16.code(), 16, a, DType.FLOAT16.code(), 32, a, 50, 0, 0, t.forward, t, 0.5f, 70,
                null);
        k.forwardFused(a, DType.FLOAT32.code(), 24, a, DType.FLOAT32.code(), 40, a, 50, a, a, t.forward, t, 0f, 70,
                null);
        k.backwardFused(a, DType.BFLOAT16.code(), 16, a, DType.FLOAT32.code(), 32, a, DType.FLOAT16.code(), a, 50, 0, 0,
                t, 0.5f, a, 70, null);
        k.backwardFused(a, DType.FLOAT32.code(), 24, a, DType.FLOAT32.code(), 40, 0, DType.FLOAT32.code(), a, 50, a, a,
                t, 0f, a, 70, null);
        org.spectralpeft.SystemProperty.with(CudaFourierFT.FFT_PASS_PROPERTY, "radix8", () -> { // the _pass8 kernels
            k.forwardFused(a, DType.FLOAT16.code(), 16, a, DType.FLOAT32.code(), 32, a, 50, a, a, t.forward, t, 0f, 70,
                    null);
            k.backwardFused(a, DType.FLOAT32.code(), 16, a, DType.BFLOAT16.code(), 32, a, DType.FLOAT32.code(), a, 50, 0,
                    0, t, 0.5f, a, 70, null);
        });
        k.coeffGradRows(a, 50, 0, a, a, 2, a, null);
        k.tokenRows(a, 70, a, 3, a, null);
        k.gatherReal(a, 37 * 15, t.deltaGradBin, 50, 1f, a, null);
        k.coeffGradPartial(a, 15, a, 19, t, 50, 70, 64, a, null);
        k.coeffGradReduce(a, 2, 50, 1f, a, null);
        k.coeffGradPartialMixed(a, 15, a, 19, t, 50, a, a, a, 9, a, null);
        k.coeffGradReduceMixed(a, a, a, a, 4, 50, a, null);
        common.epilogue(a, 30, bf16, 37, 29, 1, null);
        common.epilogueTransposed(a, 38, bf16, 0, 29, 37, 29, 2, null);
        common.toFloat32(bf16, a, 64L * 29, null);
        common.lengthOneTransform(a, 1, a, 2, 70, 1, null);
        common.holdStream(20_000_000L, null);
        common.sumParts(a, 32L * 4096, 8, 32L * 4096, a, null);

        PtxSignatures.assertLaunchesMatch(signatures, launches);
        k.close();
        t.close();
    }
}
