package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorDType;

/** How adapter modules find their base weights, and every mismatch the plan refuses before any output. */
class MergePlanTest {
    @TempDir
    Path tmp;

    /** A base checkpoint of zero-filled tensors with these names, dtypes and shapes. */
    private SafetensorsModel base(Object... nameDtypeShape) throws IOException {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (int i = 0; i < nameDtypeShape.length; i += 3) {
            entries.add(new SafetensorsWriter.Entry((String) nameDtypeShape[i], (TensorDType) nameDtypeShape[i + 1],
                    (long[]) nameDtypeShape[i + 2]));
        }
        Path file = tmp.resolve("base-" + System.nanoTime() + ".safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(file, entries, Map.of())) {
            for (SafetensorsWriter.Entry e : entries) {
                long bytes = e.dtype().bytes();
                for (long d : e.shape()) {
                    bytes *= d;
                }
                w.write(e.name(), ByteBuffer.allocate((int) bytes));
            }
            w.commit();
        }
        return SafetensorsModel.open(file);
    }

    private static FourierFTAdapter adapter(Map<String, Integer> nByModule) {
        FourierFTAdapter.Builder b = FourierFTAdapter.builder().randomLocSeed(5);
        nByModule.forEach((m, n) -> {
            float[] c = new float[n];
            java.util.Arrays.fill(c, 0.5f);
            b.layer(m, c);
        });
        return b.build();
    }

    private static long[] s(long... dims) {
        return dims;
    }

    @Test
    void exactNamesAndPrefixMismatchesResolve() throws IOException {
        Map<String, Integer> n = new LinkedHashMap<>();
        n.put("transformer.h.0.attn.c_attn", 8); // GPT-2 checkpoints drop "transformer."
        n.put("decoder.q", 8);                   // the checkpoint has an extra "model." prefix
        n.put("lm.k", 8);                        // exact
        try (SafetensorsModel m = base("h.0.attn.c_attn.weight", TensorDType.F32, s(6, 10),
                "model.decoder.q.weight", TensorDType.BF16, s(5, 7),
                "lm.k.weight", TensorDType.F16, s(3, 4))) {
            MergePlan plan = MergePlan.build(m, adapter(n), mod -> mod.contains("c_attn"));
            assertEquals(List.of("h.0.attn.c_attn.weight", "model.decoder.q.weight", "lm.k.weight"),
                    List.copyOf(plan.layers().keySet()));
            MergePlan.Layer conv = plan.layers().get("h.0.attn.c_attn.weight");
            assertEquals(10, conv.dOut());
            assertEquals(6, conv.dIn());
            // stored in × out: the update is ΔWᵀ of PEFT's d_out × d_in spec
            assertEquals(FourierFTSpec.fromSeed(10, 6, 8, 5, 150f).transposed(), conv.storageSpec());
            assertEquals(FourierFTSpec.fromSeed(5, 7, 8, 5, 150f), plan.layers().get("model.decoder.q.weight").storageSpec());
        }
    }

    @Test
    void layersOfOneShapeAndNShareOneSpec() throws IOException {
        Map<String, Integer> n = new LinkedHashMap<>();
        n.put("a.q", 8);
        n.put("b.q", 8);
        try (SafetensorsModel m = base("a.q.weight", TensorDType.F32, s(6, 10), "b.q.weight", TensorDType.BF16, s(6, 10))) {
            MergePlan plan = MergePlan.build(m, adapter(n), null);
            org.junit.jupiter.api.Assertions.assertSame(plan.layers().get("a.q.weight").storageSpec(),
                    plan.layers().get("b.q.weight").storageSpec());
        }
    }

    @Test
    void theConfigsFanInFanOutAppliesWhenNoOverrideIsGiven() throws IOException {
        FourierFTAdapter a = FourierFTAdapter.builder().fanInFanOut(true).layer("h.c", new float[] {1, 2}).build();
        try (SafetensorsModel m = base("h.c.weight", TensorDType.F32, s(3, 5))) {
            MergePlan.Layer l = MergePlan.build(m, a, null).layers().get("h.c.weight");
            assertTrue(l.fanInFanOut());
            assertEquals(5, l.dOut());
        }
    }

    @Test
    void everyMismatchIsListedTogether() throws IOException {
        Map<String, Integer> n = new LinkedHashMap<>();
        n.put("missing.q", 4);
        n.put("norm", 4);
        n.put("conv", 4);
        n.put("ids", 4);
        n.put("tiny", 5);
        n.put("a.dup", 4);
        n.put("dup", 4);
        try (SafetensorsModel m = base("x.a.dup.weight", TensorDType.F32, s(4, 4), "y.a.dup.weight", TensorDType.F32, s(4, 4),
                "norm.weight", TensorDType.F32, s(16), "conv.weight", TensorDType.F32, s(4, 4, 3, 3),
                "ids.weight", TensorDType.I64, s(4, 4), "tiny.weight", TensorDType.F32, s(2, 2),
                "dup.weight", TensorDType.F32, s(4, 4))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MergePlan.build(m, adapter(n), null));
            String msg = e.getMessage();
            assertTrue(msg.contains("(6 problems)"), msg);
            assertTrue(msg.contains("module 'missing.q': the base model has no tensor 'missing.q.weight'"), msg);
            assertTrue(msg.contains("module 'norm'") && msg.contains("only 2-D weights"), msg);
            assertTrue(msg.contains("FourierFT, FouRA and TLoRA on Conv2d are not supported"), msg);
            assertTrue(msg.contains("module 'ids'") && msg.contains("not F32, F16, BF16 or F64"), msg);
            assertTrue(msg.contains("module 'tiny'") && msg.contains("at most d_out·d_in = 4"), msg);
            assertTrue(msg.contains("several tensors could be meant: [dup.weight, x.a.dup.weight, y.a.dup.weight]"), msg);
        }
    }

    @Test
    void twoModulesMayNotMergeIntoOneTensor() throws IOException {
        Map<String, Integer> n = new LinkedHashMap<>();
        n.put("h.0.c", 3);
        n.put("transformer.h.0.c", 3);
        try (SafetensorsModel m = base("h.0.c.weight", TensorDType.F32, s(4, 4))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MergePlan.build(m, adapter(n), null));
            assertTrue(e.getMessage().contains("module 'h.0.c' merges into the same tensor"), e.getMessage());
        }
    }

    @Test
    void aSpectrumOfTheWrongLengthForItsLayerIsRefused() throws IOException {
        // n = 6 saved, but the config (alpha = 0.5) gives int(0.5·3·5) = 7 for a 3 × 5 layer: wrong base model
        FourierFTAdapter a = FourierFTAdapter.builder().layer("l.q", new float[] {1, 2, 3, 4, 5, 6}).build();
        Path dir = tmp.resolve("a");
        a.save(dir);
        java.nio.file.Files.writeString(dir.resolve("adapter_config.json"),
                java.nio.file.Files.readString(dir.resolve("adapter_config.json")).replace("\"n_frequency\" : 6", "\"alpha\" : 0.5"));
        FourierFTAdapter loaded = FourierFTAdapter.load(dir);
        try (SafetensorsModel m = base("l.q.weight", TensorDType.F32, s(3, 5))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MergePlan.build(m, loaded, null));
            assertTrue(e.getMessage().contains("has 6 coefficients but its config gives n = 7 for a 3 × 5 layer"), e.getMessage());
        }
    }
}
