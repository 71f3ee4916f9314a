package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;
import org.spectralpeft.foura.cpu.CpuFouRA;
import org.spectralpeft.fourierft.cpu.CpuFourierFT;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.reference.FouRAReference;

/**
 * Merging a FouRA adapter into a model: every adapted weight equals W + ΔW (ΔWᵀ for the Conv1D weight stored
 * in × out) with ΔW from the float64 reference, every other tensor is copied byte for byte, and the
 * ADAPTIVE gate, mismatched shapes and a plan of the other family are refused before any output.
 */
public class FouRAModelMergerTest {
    @TempDir
    Path tmp;

    private static CpuFouRA cpu;
    private static final Predicate<String> CONV1D = Pattern.compile(TinyCheckpoint.CONV1D_MODULES).asMatchPredicate();

    @BeforeAll
    static void open() {
        cpu = new CpuFouRA();
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    /** @return the backend the merges run on: the CPU here, CUDA in {@code CudaFouRAModelMergerTest} */
    protected FouRABackend backend() {
        return cpu;
    }

    /** A FouRA adapter of rank 3 for the fixture's four weights, with the given transform and gate. */
    public static FouRAAdapter adapter(TestData data, Transform transform, Gate gate, Path dir) throws IOException {
        FouRAAdapter.Builder b = FouRAAdapter.builder(3, transform, gate, 0.8f);
        for (TinyCheckpoint.Weight w : TinyCheckpoint.ADAPTED) {
            float[] mask = gate == Gate.FIXED ? new float[] {1f, 0f, 1f} : gate == Gate.ADAPTIVE ? new float[12] : null;
            b.layer(w.module(), w.dOut(), w.dIn(), data.gaussian(3 * w.dIn()), data.gaussian(w.dOut() * 3), mask);
        }
        b.build().save(dir);
        return FouRAAdapter.load(dir);
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @CsvSource({"F32, DFT, FIXED", "F16, DCT, FIXED", "BF16, DFT, NONE", "F64, DCT, NONE", "F32, DCT, NONE", "BF16, DFT, FIXED"})
    void mergedWeightsAreWPlusDeltaWAndOtherTensorsAreCopied(TensorDType dtype, Transform transform, Gate gate) throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, dtype);
        Path basePath = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        FouRAAdapter adapter = adapter(data, transform, gate, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        try (SafetensorsModel base = SafetensorsModel.open(basePath)) {
            ModelMerger.Summary s = ModelMerger.merge(base, MergePlan.build(base, adapter, CONV1D), backend(), out, null);
            assertEquals(4, s.layersMerged(), data.tag());
            assertEquals(ckpt.bytes.size() - 4, s.tensorsCopied(), data.tag());
        }
        try (SafetensorsFile merged = SafetensorsFile.open(out)) {
            for (String name : ckpt.bytes.keySet()) {
                TinyCheckpoint.Weight w = TinyCheckpoint.ADAPTED.stream().filter(a -> a.tensor().equals(name)).findFirst().orElse(null);
                if (w == null) {
                    assertEquals(ByteBuffer.wrap(ckpt.bytes.get(name)), merged.map(merged.tensor(name)), name + " copied byte for byte");
                    continue;
                }
                FouRAAdapter.Layer l = adapter.layer(w.module());
                double[] mask = gate == Gate.FIXED ? TestData.toDouble(l.gate()) : new double[] {1, 1, 1};
                double[] delta = new FouRAReference(w.dOut(), w.dIn(), 3, transform == Transform.DFT, l.spec().alpha())
                        .deltaW(TestData.toDouble(l.a()), TestData.toDouble(l.b()), mask);
                double[] base = ModelMergerContract.baseValues(ckpt, w);
                double[] got = merged.readDoubles(merged.tensor(name));
                double[] change = new double[got.length];
                double[] expected = new double[got.length];
                for (int p = 0; p < w.dOut(); p++) {
                    for (int q = 0; q < w.dIn(); q++) {
                        int stored = w.storedInOut() ? q * w.dOut() + p : p * w.dIn() + q;
                        change[stored] = got[stored] - base[stored];
                        expected[stored] = delta[p * w.dIn() + q];
                    }
                }
                double err = TestData.relativeError(change, expected);
                double tol = dtype == TensorDType.F16 || dtype == TensorDType.BF16 ? 1e-2 : 1e-5;
                assertTrue(err < tol, name + " (" + dtype + ", stored in x out " + w.storedInOut() + "): W' − W vs ΔW, relative error "
                        + err + data.tag());
            }
        }
    }

    @Test
    void adaptiveGatesMismatchedShapesAndTheOtherFamilyAreRefusedBeforeAnyOutput() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Path basePath = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        Path out = tmp.resolve("merged.safetensors");
        try (SafetensorsModel base = SafetensorsModel.open(basePath)) {
            FouRAAdapter adaptive = adapter(data, Transform.DFT, Gate.ADAPTIVE, tmp.resolve("adaptive"));
            String msg = assertThrows(IllegalArgumentException.class, () -> MergePlan.build(base, adaptive, CONV1D)).getMessage();
            assertTrue(msg.contains("ADAPTIVE"), msg);

            FouRAAdapter none = adapter(data, Transform.DCT, Gate.NONE, tmp.resolve("none"));
            msg = assertThrows(IllegalArgumentException.class, () -> MergePlan.build(base, none, m -> false)).getMessage();
            assertTrue(msg.contains("transformer.h.0.attn.c_attn") && msg.contains("is fan_in_fan_out right?"), msg);

            MergePlan fouraPlan = MergePlan.build(base, none, CONV1D);
            try (CpuFourierFT fourierFT = new CpuFourierFT()) {
                msg = assertThrows(IllegalArgumentException.class,
                        () -> ModelMerger.merge(base, fouraPlan, fourierFT, out, null)).getMessage();
                assertTrue(msg.contains("has no FourierFT update"), msg);
            }
            FourierFTAdapter fourierFTAdapter = TinyCheckpoint.adapter(data, 7, 100.0, IfftNorm.BACKWARD, tmp.resolve("fft"));
            MergePlan fourierFTPlan = MergePlan.build(base, fourierFTAdapter, CONV1D);
            msg = assertThrows(IllegalArgumentException.class, () -> ModelMerger.merge(base, fourierFTPlan, backend(), out, null)).getMessage();
            assertTrue(msg.contains("has no FouRA update"), msg);
        }
        assertFalse(Files.exists(out), "no output after a refusal");
    }
}
