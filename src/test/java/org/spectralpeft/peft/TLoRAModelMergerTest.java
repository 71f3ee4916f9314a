package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;
import org.spectralpeft.fourierft.cpu.CpuFourierFT;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.tlora.TLoRAReference;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.TLoRASpec.Residual;
import org.spectralpeft.tlora.TLoRABackend;
import org.spectralpeft.tlora.cpu.CpuTLoRA;

/**
 * Merging a TLoRA adapter into a model: every adapted weight becomes W·T + s·Δ (the float64 reference), every
 * other tensor is copied byte for byte, and a weight stored in × out, a mismatched shape or another family's
 * plan is refused before any output.
 */
public class TLoRAModelMergerTest {
    @TempDir
    Path tmp;

    private static CpuTLoRA cpu;

    @BeforeAll
    static void open() {
        cpu = new CpuTLoRA();
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    /** @return the backend the merges run on: the CPU here, CUDA in {@code CudaTLoRAModelMergerTest} */
    protected TLoRABackend backend() {
        return cpu;
    }

    /** A TLoRA adapter for the fixture's three weights stored out × in (factorisations with 1 and 2 factors). */
    static TLoRAAdapter adapter(TestData data, Residual kind, int ring, Path dir) throws IOException {
        Map<String, TLoRAAdapter.Layer> layers = new LinkedHashMap<>();
        int[][][] shapes = {{{37}, {29}}, {{29}, {37}}, {{4, 16}, {6, 8}}};
        for (int i = 0; i < 3; i++) {
            TinyCheckpoint.Weight w = TinyCheckpoint.ADAPTED.get(i);
            TLoRASpec spec = TLoRASpec.of(shapes[i][0], shapes[i][1], ring, kind, 2, 0.9f);
            assertEquals(w.dOut() * w.dIn(), spec.dOut() * spec.dIn());
            layers.put(w.module(), new TLoRAAdapter.Layer(spec, TLoRAAdapterTest.random(spec, data)));
        }
        TLoRAAdapter.of(layers, null).save(dir);
        return TLoRAAdapter.load(dir);
    }

    @ParameterizedTest(name = "{0} {1} R={2}")
    @CsvSource({"F32, LORA, 1", "BF16, TR, 2", "F64, TTM, 2", "F16, LORA, 2", "F32, TTM, 1", "F64, TR, 1"})
    void mergedWeightsAreWTimesTPlusSDeltaAndOtherTensorsAreCopied(TensorDType dtype, Residual kind, int ring)
            throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, dtype);
        Path basePath = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        TLoRAAdapter adapter = adapter(data, kind, ring, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        try (SafetensorsModel base = SafetensorsModel.open(basePath)) {
            ModelMerger.Summary s = ModelMerger.merge(base, MergePlan.build(base, adapter, null), backend(), out, null);
            assertEquals(3, s.layersMerged(), data.tag());
            assertEquals(ckpt.bytes.size() - 3, s.tensorsCopied(), data.tag());
        }
        try (SafetensorsFile merged = SafetensorsFile.open(out)) {
            for (String name : ckpt.bytes.keySet()) {
                TinyCheckpoint.Weight w = TinyCheckpoint.ADAPTED.stream().filter(a -> a.tensor().equals(name)
                        && adapter.modules().contains(a.module())).findFirst().orElse(null);
                if (w == null) {
                    assertEquals(ByteBuffer.wrap(ckpt.bytes.get(name)), merged.map(merged.tensor(name)),
                            name + " copied byte for byte");
                    continue;
                }
                TLoRAAdapter.Layer l = adapter.layer(w.module());
                double[] base = ModelMergerContract.baseValues(ckpt, w);
                double[] expected = TLoRAReference.weight(l.spec(), l.params(), base);
                double[] got = merged.readDoubles(merged.tensor(name));
                double[] change = new double[got.length];
                for (int i = 0; i < got.length; i++) {
                    change[i] = got[i] - base[i];
                    expected[i] -= base[i];
                }
                double err = TestData.relativeError(change, expected);
                double tol = dtype == TensorDType.F16 || dtype == TensorDType.BF16 ? 2e-2 : 1e-5;
                assertTrue(err < tol, name + " (" + dtype + "): W' − W against the reference, relative error " + err
                        + data.tag());
            }
        }
    }

    @Test
    void weightsStoredInByOutMismatchedShapesAndOtherFamiliesAreRefusedBeforeAnyOutput() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Path basePath = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        TLoRAAdapter adapter = adapter(data, Residual.LORA, 2, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        try (SafetensorsModel base = SafetensorsModel.open(basePath)) {
            String msg = assertThrows(IllegalArgumentException.class, () -> MergePlan.build(base, adapter,
                    m -> m.endsWith("q_proj"))).getMessage();
            assertTrue(msg.contains("q_proj") && msg.contains("out x in"), msg);
            Map<String, TLoRAAdapter.Layer> wrong = new LinkedHashMap<>();
            TLoRASpec spec = TLoRASpec.of(new int[] {29}, new int[] {37}, 1, Residual.LORA, 2, 1f);
            wrong.put(TinyCheckpoint.ADAPTED.get(0).module(), new TLoRAAdapter.Layer(spec, TLoRAAdapterTest.random(spec, data)));
            msg = assertThrows(IllegalArgumentException.class, () -> MergePlan.build(base, TLoRAAdapter.of(wrong, null),
                    null)).getMessage();
            assertTrue(msg.contains("29 x 37") && msg.contains("37 x 29"), msg);
            MergePlan plan = MergePlan.build(base, adapter, null);
            try (CpuFourierFT fourierFT = new CpuFourierFT()) {
                msg = assertThrows(IllegalArgumentException.class, () -> ModelMerger.merge(base, plan, fourierFT, out,
                        null)).getMessage();
                assertTrue(msg.contains("has no FourierFT update"), msg);
            }
        }
        assertFalse(Files.exists(out), "no output after a refusal");
    }

    /**
     * A file of the authors' code (their keys: {@code <block>.processor.to_q_oft.transform_core.<d>}, {@code
     * ttm_core.<d>}; {@code to_out_oft} for {@code to_out.0}) merges into a model holding those modules: each weight
     * becomes W0·T + s·Δ of the float64 reference with the α given for the run, the other tensors copied.
     */
    @Test
    void theAuthorsTrainedLayersMergeIntoAModelOfTheirModules() throws IOException {
        TestData data = new TestData();
        String block = "mid_block.attentions.0.transformer_blocks.0.attn1";
        TLoRASpec[] specs = {
            TLoRASpec.of(new int[] {4, 16}, new int[] {6, 8}, 2, Residual.TTM, 2, 0.5f), // to_q: 64 x 48
            TLoRASpec.of(new int[] {6, 8}, new int[] {6, 8}, 2, Residual.TTM, 2, 0.5f), // to_out.0: 48 x 48
        };
        String[] modules = {block + ".to_q", block + ".to_out.0"};
        String[] authorsPrefixes = {block + ".processor.to_q_oft.", block + ".processor.to_out_oft."};
        org.spectralpeft.tlora.TLoRAParameters[] params = new org.spectralpeft.tlora.TLoRAParameters[2];
        java.util.List<org.spectralpeft.io.SafetensorsWriter.Entry> entries = new java.util.ArrayList<>();
        Map<String, float[]> values = new LinkedHashMap<>();
        for (int m = 0; m < 2; m++) {
            TLoRASpec spec = specs[m];
            params[m] = TLoRAAdapterTest.random(spec, data);
            for (int d = 0; d < 2; d++) {
                int n = spec.inFactor(d);
                values.put(authorsPrefixes[m] + "transform_core." + d, params[m].transformCore(d));
                entries.add(new org.spectralpeft.io.SafetensorsWriter.Entry(authorsPrefixes[m] + "transform_core." + d,
                        TensorDType.F32, new long[] {n, n, 2, 2}));
                values.put(authorsPrefixes[m] + "ttm_core." + d, params[m].residual(d));
                entries.add(new org.spectralpeft.io.SafetensorsWriter.Entry(authorsPrefixes[m] + "ttm_core." + d,
                        TensorDType.F32, new long[] {spec.outFactor(d), n, 2, 2}));
            }
        }
        Path authors = tmp.resolve("authors.safetensors");
        write(authors, entries, values);

        Map<String, float[]> baseValues = new LinkedHashMap<>();
        java.util.List<org.spectralpeft.io.SafetensorsWriter.Entry> baseEntries = new java.util.ArrayList<>();
        for (int m = 0; m < 2; m++) {
            baseValues.put(modules[m] + ".weight", data.gaussian(specs[m].dOut() * specs[m].dIn()));
            baseEntries.add(new org.spectralpeft.io.SafetensorsWriter.Entry(modules[m] + ".weight", TensorDType.F32,
                    new long[] {specs[m].dOut(), specs[m].dIn()}));
        }
        baseValues.put(block + ".norm.weight", data.gaussian(48));
        baseEntries.add(new org.spectralpeft.io.SafetensorsWriter.Entry(block + ".norm.weight", TensorDType.F32,
                new long[] {48}));
        Path basePath = tmp.resolve("unet.safetensors");
        write(basePath, baseEntries, baseValues);

        TLoRAAdapter adapter = TLoRAAdapter.loadAuthors(authors, 0.5f);
        assertEquals(java.util.Set.of(modules), adapter.modules());
        Path out = tmp.resolve("merged.safetensors");
        try (SafetensorsModel base = SafetensorsModel.open(basePath)) {
            ModelMerger.Summary s = ModelMerger.merge(base, MergePlan.build(base, adapter, null), backend(), out, null);
            assertEquals(2, s.layersMerged(), data.tag());
            assertEquals(1, s.tensorsCopied(), data.tag());
        }
        try (SafetensorsFile merged = SafetensorsFile.open(out)) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(baseValues.get(block + ".norm.weight"),
                    merged.readFloats(merged.tensor(block + ".norm.weight")), "copied");
            for (int m = 0; m < 2; m++) {
                double[] w0 = TestData.toDouble(baseValues.get(modules[m] + ".weight"));
                double[] expected = TLoRAReference.weight(specs[m], params[m], w0);
                double[] got = merged.readDoubles(merged.tensor(modules[m] + ".weight"));
                double err = TestData.relativeError(got, expected);
                assertTrue(err < 1e-5, modules[m] + ": W' against the reference, relative error " + err + data.tag());
            }
        }
    }

    private static void write(Path file, java.util.List<org.spectralpeft.io.SafetensorsWriter.Entry> entries,
                              Map<String, float[]> values) throws IOException {
        try (org.spectralpeft.io.SafetensorsWriter w = org.spectralpeft.io.SafetensorsWriter.create(file, entries, Map.of())) {
            for (Map.Entry<String, float[]> e : values.entrySet()) {
                w.write(e.getKey(), org.spectralpeft.core.HostArray.float32(e.getValue()));
            }
            w.commit();
        }
    }
}
