package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;
import org.spectralpeft.foura.cpu.CpuFouRA;
import org.spectralpeft.io.SafetensorsException;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;

/** FouRA adapter directories: save then load gives the same layers, and every malformed file is named. */
class FouRAAdapterTest {
    @TempDir
    Path tmp;

    private static float[] gateOf(TestData data, Gate gate, int r) {
        return switch (gate) {
            case NONE -> null;
            case FIXED -> {
                float[] m = new float[r];
                for (int i = 0; i < r; i++) {
                    m[i] = i == 0 ? 1 : data.nextInt(2); // one component on, so that the layer computes something
                }
                yield m;
            }
            case ADAPTIVE -> {
                float[] g = data.gaussian(r * r + r);
                for (int i = 0; i < r * r; i++) {
                    g[i] *= 0.01f;
                }
                g[r * r] = 3f; // component 0's gate open, so that the layer computes something
                yield g;
            }
        };
    }

    @ParameterizedTest
    @EnumSource(Gate.class)
    void saveThenLoadGivesTheSameLayersAndOutputs(Gate gate) throws IOException {
        TestData data = new TestData();
        int r = 3;
        FouRAAdapter.Builder builder = FouRAAdapter.builder(r, Transform.DCT, gate, 0.75f).baseModel("tiny/model");
        builder.layer("model.layers.0.q_proj", 12, 10, data.gaussian(r * 10), data.gaussian(12 * r), gateOf(data, gate, r));
        builder.layer("model.layers.0.v_proj", 7, 10, data.gaussian(r * 10), data.gaussian(7 * r), gateOf(data, gate, r));
        FouRAAdapter saved = builder.build();
        Path dir = tmp.resolve("adapter");
        saved.save(dir);
        FouRAAdapter loaded = FouRAAdapter.load(dir);
        assertEquals(saved.modules(), loaded.modules());
        assertEquals(Gate.valueOf(gate.name()), loaded.gate());
        assertEquals(Transform.DCT, loaded.transform());
        assertEquals(0.75f, loaded.alpha());
        assertEquals("tiny/model", loaded.baseModel());
        assertEquals(List.of(dir.resolve("adapter_config.json"), dir.resolve("adapter_model.safetensors")), loaded.files());
        assertEquals(java.util.Optional.of("FOURA"), AdapterFiles.peftType(dir));
        try (CpuFouRA cpu = new CpuFouRA()) {
            for (String m : saved.modules()) {
                FouRAAdapter.Layer s = saved.layer(m);
                FouRAAdapter.Layer l = loaded.layer(m);
                assertEquals(s.spec(), l.spec(), m);
                assertArrayEquals(s.a(), l.a(), m);
                assertArrayEquals(s.b(), l.b(), m);
                assertArrayEquals(s.gate(), l.gate(), m);
                float[] y = new float[2 * s.spec().dOut()];
                try (FouRAFactors f = cpu.prepare(l.spec(), l.a(), l.b(), l.gate())) {
                    cpu.forward(f, HostArray.float32(data.gaussian(2 * 10)), 2, HostArray.float32(y));
                }
                assertTrue(java.util.Arrays.stream(toDoubles(y)).anyMatch(v -> v != 0), "the loaded layer computes" + data.tag());
            }
        }
    }

    private static double[] toDoubles(float[] v) {
        return TestData.toDouble(v);
    }

    /** Writes a config and a weights file of the given float32 tensors. */
    private Path write(String config, Map<String, long[]> shapes) throws IOException {
        Path dir = Files.createTempDirectory(tmp, "a");
        Files.writeString(dir.resolve("adapter_config.json"), config);
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        shapes.forEach((name, shape) -> entries.add(new SafetensorsWriter.Entry(name, TensorDType.F32, shape)));
        try (SafetensorsWriter w = SafetensorsWriter.create(dir.resolve("adapter_model.safetensors"), entries, Map.of())) {
            for (SafetensorsWriter.Entry e : entries) {
                long n = 1;
                for (long d : e.shape()) {
                    n *= d;
                }
                float[] v = new float[(int) n];
                java.util.Arrays.fill(v, e.name().endsWith("mask") ? 1f : 0.5f);
                w.write(e.name(), TensorBytes.of(v));
            }
            w.commit();
        }
        return dir;
    }

    private static final String FIXED = "{\"peft_type\": \"FOURA\", \"r\": 2, \"gate\": \"fixed\", \"transform\": \"dft\"}";
    private static final String KEY = "base_model.model.m.q";

    private void assertRefused(String config, Map<String, long[]> shapes, String fragment) throws IOException {
        Path dir = write(config, shapes);
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> FouRAAdapter.load(dir));
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' should say '" + fragment + "'");
    }

    @Test
    void malformedAdaptersAreRefusedNamingTheProblem() throws IOException {
        Map<String, long[]> good = new java.util.LinkedHashMap<>(Map.of(KEY + ".foura_A", new long[] {2, 5},
                KEY + ".foura_B", new long[] {4, 2}, KEY + ".foura_gate_mask", new long[] {2}));
        FouRAAdapter ok = FouRAAdapter.load(write(FIXED, good));
        assertEquals(4, ok.layer("m.q").spec().dOut());
        assertEquals(5, ok.layer("m.q").spec().dIn());
        assertFalse(ok.fanInFanOut());
        assertNull(ok.baseModel());

        assertRefused(FIXED.replace("FOURA", "FOURIERFT"), good, "expected a FouRA adapter");
        assertRefused(FIXED.replace("\"r\": 2", "\"r\": 0"), good, "r = 0 must be a positive integer");
        assertRefused(FIXED.replace("\"r\": 2", "\"r\": 3"), good, "A must be r × d_in with r = 3");
        assertRefused(FIXED.replace("fixed", "sometimes"), good, "gate = \"sometimes\" is not one of");
        assertRefused(FIXED.replace("dft", "wavelet"), good, "transform = \"wavelet\"");
        Map<String, long[]> noMask = new java.util.LinkedHashMap<>(good);
        noMask.remove(KEY + ".foura_gate_mask");
        assertRefused(FIXED, noMask, "missing");
        assertRefused(FIXED.replace("fixed", "none"), good, "unexpected for the NONE gate");
        Map<String, long[]> badB = new java.util.LinkedHashMap<>(good);
        badB.put(KEY + ".foura_B", new long[] {4, 3});
        assertRefused(FIXED, badB, "B must be d_out × r");
        Map<String, long[]> stray = new java.util.LinkedHashMap<>(good);
        stray.put(KEY + ".lora_A", new long[] {2, 5});
        assertRefused(FIXED, stray, "not a FouRA tensor");
        Map<String, long[]> badMask = new java.util.LinkedHashMap<>(good);
        badMask.put(KEY + ".foura_gate_mask", new long[] {3});
        assertRefused(FIXED, badMask, "must hold r = 2 values");
        Map<String, long[]> tooWide = Map.of(KEY + ".foura_A", new long[] {2, 1}, KEY + ".foura_B", new long[] {4, 2},
                KEY + ".foura_gate_mask", new long[] {2});
        assertRefused(FIXED, tooWide, "exceeds min(d_in, d_out)");
        Path empty = Files.createDirectory(tmp.resolve("empty"));
        assertTrue(assertThrows(SafetensorsException.class, () -> FouRAAdapter.load(empty)).getMessage().contains("no adapter_config.json"));
    }

    @Test
    void aMaskValueOtherThanZeroOrOneIsRefused() throws IOException {
        Path dir = tmp.resolve("m");
        FouRAAdapter.builder(2, Transform.DFT, Gate.FIXED, 1f).layer("m.q", 4, 5, new float[10], new float[8], new float[] {1, 0})
                .build().save(dir);
        // rewrite the mask with 0.5
        Map<String, long[]> shapes = new java.util.LinkedHashMap<>(Map.of(KEY + ".foura_A", new long[] {2, 5},
                KEY + ".foura_B", new long[] {4, 2}, KEY + ".foura_gate_mask", new long[] {2}));
        Path bad = write(FIXED, shapes);
        try (SafetensorsWriter w = SafetensorsWriter.create(bad.resolve("adapter_model.safetensors"), List.of(
                new SafetensorsWriter.Entry(KEY + ".foura_A", TensorDType.F32, new long[] {2, 5}),
                new SafetensorsWriter.Entry(KEY + ".foura_B", TensorDType.F32, new long[] {4, 2}),
                new SafetensorsWriter.Entry(KEY + ".foura_gate_mask", TensorDType.F32, new long[] {2})), Map.of())) {
            w.write(KEY + ".foura_A", TensorBytes.of(new float[10]));
            w.write(KEY + ".foura_B", TensorBytes.of(new float[8]));
            w.write(KEY + ".foura_gate_mask", TensorBytes.of(new float[] {1f, 0.5f}));
            w.commit();
        }
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> FouRAAdapter.load(bad));
        assertTrue(e.getMessage().contains("mask[1] is 0.5"), e.getMessage());
        assertEquals(2, FouRAAdapter.load(dir).rank());
    }

    @Test
    void theBuilderChecksEachLayer() {
        FouRAAdapter.Builder b = FouRAAdapter.builder(2, Transform.DFT, Gate.NONE, 1f);
        assertThrows(IllegalArgumentException.class, () -> b.layer("m", 4, 5, new float[9], new float[8], null));
        assertThrows(IllegalArgumentException.class, () -> b.layer("m", 4, 5, new float[10], new float[8], new float[2]));
        b.layer("m", 4, 5, new float[10], new float[8], null);
        assertThrows(IllegalArgumentException.class, () -> b.layer("m", 4, 5, new float[10], new float[8], null));
        assertThrows(IllegalArgumentException.class, () -> FouRAAdapter.builder(2, Transform.DFT, Gate.NONE, 1f).build());
    }
}
