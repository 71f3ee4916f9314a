package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.spectralpeft.TestData;
import org.spectralpeft.io.SafetensorsException;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.TLoRASpec.Residual;

/**
 * TLoRA adapter files: the library's PEFT-layout directory round trip, the authors' state-dict keys and shapes
 * (written here as their code names and shapes them), and every malformed file refused naming the tensor.
 */
class TLoRAAdapterTest {
    @TempDir
    Path tmp;

    /** Random parameters for a spec (every array away from zero). */
    static TLoRAParameters random(TLoRASpec spec, TestData data) {
        float[][] cores = new float[spec.inOrder()][];
        for (int d = 0; d < cores.length; d++) {
            cores[d] = data.gaussian(spec.transformCoreLength(d));
        }
        float[][] residual = new float[spec.residualArrays()][];
        for (int k = 0; k < residual.length; k++) {
            residual[k] = data.gaussian((int) spec.residualLength(k));
        }
        return TLoRAParameters.of(spec, cores, residual);
    }

    /** Three layers: factorisations of 1, 2 and 3 factors, R = 2 (or 1 when asked), rank 3. */
    static Map<String, TLoRAAdapter.Layer> layers(TestData data, Residual kind, int ring) {
        int[][][] shapes = {{{37}, {29}}, {{4, 16}, {6, 8}}, {{2, 3, 5}, {5, 3, 2}}};
        String[] modules = {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.fc", "blocks.0.attn.to_out.0"};
        Map<String, TLoRAAdapter.Layer> layers = new LinkedHashMap<>();
        for (int i = 0; i < shapes.length; i++) {
            TLoRASpec spec = TLoRASpec.of(shapes[i][0], shapes[i][1], ring, kind, 3, 0.7f);
            layers.put(modules[i], new TLoRAAdapter.Layer(spec, random(spec, data)));
        }
        return layers;
    }

    @ParameterizedTest
    @EnumSource(Residual.class)
    void savedDirectoriesLoadBackTheSameLayers(Residual kind) throws IOException {
        TestData data = new TestData();
        for (int ring : new int[] {1, 2}) {
            Map<String, TLoRAAdapter.Layer> layers = layers(data, kind, ring);
            Path dir = tmp.resolve(kind + "-" + ring);
            TLoRAAdapter.of(layers, "tiny/base").save(dir);
            TLoRAAdapter loaded = TLoRAAdapter.load(dir);
            assertEquals(List.copyOf(layers.keySet()), List.copyOf(loaded.modules()));
            assertEquals(0.7f, loaded.alpha());
            assertEquals(3, loaded.rank());
            assertEquals(ring, loaded.transformRank());
            assertEquals(kind, loaded.residual());
            assertEquals("tiny/base", loaded.baseModel());
            assertEquals(2, loaded.files().size());
            for (String m : layers.keySet()) {
                assertSameLayer(layers.get(m), loaded.layer(m), m);
            }
            assertEquals(layoutOf(layers), header(dir.resolve(AdapterFiles.WEIGHTS_FILE)), "the saved tensors");
            String config = Files.readString(dir.resolve(AdapterFiles.CONFIG_FILE));
            assertTrue(config.contains("\"peft_type\" : \"TLORA\"") && config.contains("\"transform_rank\" : " + ring)
                    && config.contains("\"addition_part\" : \"" + (kind == Residual.TR ? "ttv" : kind.name().toLowerCase())
                    + "\""), config);
        }
    }

    /**
     * The tensors a saved directory must hold, as README documents them: under {@code base_model.model.<module>.}
     * the authors' names and shapes, float32: {@code transform_core.d} (I_d, I_d) at R = 1, else (I_d, I_d, R, R);
     * {@code lora_A} (r, d_in) and {@code lora_B} (d_out, r); {@code ttv_core.k}, the output cores (J_k, r, r) then
     * the input cores (I_d, r, r); {@code ttm_core.k} (J_k, I_k, r, r). Each value is "F32 [dims]".
     */
    static Map<String, String> layoutOf(Map<String, TLoRAAdapter.Layer> layers) {
        Map<String, String> expected = new TreeMap<>();
        for (Map.Entry<String, TLoRAAdapter.Layer> e : layers.entrySet()) {
            String key = "base_model.model." + e.getKey() + ".";
            TLoRASpec s = e.getValue().spec();
            int[] in = s.inShape();
            int[] out = s.outShape();
            int big = s.transformRank();
            int r = s.rank();
            for (int d = 0; d < in.length; d++) {
                expected.put(key + "transform_core." + d, big == 1 ? f32(in[d], in[d]) : f32(in[d], in[d], big, big));
            }
            switch (s.residual()) {
                case LORA -> {
                    expected.put(key + "lora_A", f32(r, s.dIn()));
                    expected.put(key + "lora_B", f32(s.dOut(), r));
                }
                case TR -> {
                    for (int k = 0; k < out.length + in.length; k++) {
                        expected.put(key + "ttv_core." + k, f32(k < out.length ? out[k] : in[k - out.length], r, r));
                    }
                }
                case TTM -> {
                    for (int k = 0; k < in.length; k++) {
                        expected.put(key + "ttm_core." + k, f32(out[k], in[k], r, r));
                    }
                }
            }
        }
        return expected;
    }

    private static String f32(int... dims) {
        return "F32 " + java.util.Arrays.toString(dims);
    }

    /**
     * Every tensor of a safetensors file as "DTYPE [dims]" by name, read from the header's JSON directly (the
     * 8-byte little-endian length, then the JSON), not through the library's reader; each tensor's byte range
     * must hold exactly its elements.
     */
    static Map<String, String> header(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        long length = ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode root = new ObjectMapper().readTree(new String(bytes, 8, (int) length, StandardCharsets.UTF_8));
        Map<String, String> tensors = new TreeMap<>();
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            JsonNode shape = e.getValue().get("shape");
            int[] dims = new int[shape.size()];
            long elements = 1;
            for (int i = 0; i < dims.length; i++) {
                dims[i] = shape.get(i).intValue();
                elements *= dims[i];
            }
            String dtype = e.getValue().get("dtype").textValue();
            JsonNode offsets = e.getValue().get("data_offsets");
            assertEquals(("F32".equals(dtype) ? 4 : 0) * elements, offsets.get(1).longValue() - offsets.get(0).longValue(),
                    e.getKey() + ": bytes for its elements");
            tensors.put(e.getKey(), dtype + " " + java.util.Arrays.toString(dims));
        }
        return tensors;
    }

    static void assertSameLayer(TLoRAAdapter.Layer expected, TLoRAAdapter.Layer actual, String what) {
        TLoRASpec s = expected.spec();
        TLoRASpec a = actual.spec();
        assertEquals(s.dOut(), a.dOut(), what);
        assertArrayEquals(s.inShape(), a.inShape(), what);
        assertEquals(s.transformRank(), a.transformRank(), what);
        assertEquals(s.residual(), a.residual(), what);
        assertEquals(s.rank(), a.rank(), what);
        assertEquals(s.alpha(), a.alpha(), what);
        if (s.residual() != Residual.LORA) { // a LoRA residual does not factor d_out: the files hold [d_out]
            assertArrayEquals(s.outShape(), a.outShape(), what);
        }
        for (int d = 0; d < s.inOrder(); d++) {
            assertArrayEquals(expected.params().transformCore(d), actual.params().transformCore(d), what + " core " + d);
        }
        for (int k = 0; k < s.residualArrays(); k++) {
            assertArrayEquals(expected.params().residual(k), actual.params().residual(k), what + " residual " + k);
        }
    }

    /**
     * A state dict as the authors' SDXL code saves it: per attention processor, {@code to_q_oft}, … with
     * transform_core.d ((I, I) at R = 1), the residual, and two int64 buffers; plus tensors of the UNet itself.
     */
    @ParameterizedTest
    @EnumSource(Residual.class)
    void theAuthorsKeysAndShapesLoad(Residual kind) throws IOException {
        TestData data = new TestData();
        Map<String, TLoRAAdapter.Layer> expected = new LinkedHashMap<>();
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        Map<String, ByteBuffer> values = new LinkedHashMap<>();
        String block = "down_blocks.1.attentions.0.transformer_blocks.0.attn2";
        int[] hidden = {4, 8, 10};
        int[] cross = {8, 8, 12};
        String[][] projections = {{"to_q", "to_q"}, {"to_k", "to_k"}, {"to_out", "to_out.0"}};
        for (String[] proj : projections) {
            int[] in = "to_k".equals(proj[0]) ? cross : hidden; // attn2's keys read the text encoder's 768 features
            TLoRASpec spec = TLoRASpec.of(hidden, in, 1, kind, 4, 1f);
            TLoRAParameters p = random(spec, data);
            expected.put(block + "." + proj[1], new TLoRAAdapter.Layer(spec, p));
            String key = "unet." + block + ".processor." + proj[0] + "_oft.";
            for (int d = 0; d < in.length; d++) {
                put(entries, values, key + "transform_core." + d, p.transformCore(d), in[d], in[d]);
            }
            switch (kind) {
                case LORA -> {
                    put(entries, values, key + "lora_A", p.residual(0), 4, spec.dIn());
                    put(entries, values, key + "lora_B", p.residual(1), spec.dOut(), 4);
                }
                case TR -> {
                    for (int k = 0; k < spec.residualArrays(); k++) {
                        int n = k < 3 ? hidden[k] : in[k - 3];
                        put(entries, values, key + "ttv_core." + k, p.residual(k), n, 4, 4);
                    }
                }
                case TTM -> {
                    for (int k = 0; k < 3; k++) {
                        put(entries, values, key + "ttm_core." + k, p.residual(k), hidden[k], in[k], 4, 4);
                    }
                }
            }
            putLong(entries, values, key + "cross_attention_dim", spec.dIn());
            putLong(entries, values, key + "hidden_size", spec.dOut());
        }
        put(entries, values, "unet." + block + ".to_q.weight", data.gaussian(320 * 320), 320, 320);
        Path file = write(tmp.resolve("authors.safetensors"), entries, values);

        TLoRAAdapter loaded = TLoRAAdapter.loadAuthors(file, 1f);
        assertEquals(List.of(block + ".to_k", block + ".to_out.0", block + ".to_q"), List.copyOf(loaded.modules()),
                "one layer per projection, named by the Linear it adapts");
        for (Map.Entry<String, TLoRAAdapter.Layer> e : expected.entrySet()) {
            assertSameLayer(e.getValue(), loaded.layer(e.getKey()), e.getKey());
        }
        assertEquals(kind, loaded.residual());
        assertEquals(List.of(file), loaded.files());
        Path saved = tmp.resolve("converted");
        loaded.save(saved);
        Map<String, String> authorsShapes = new TreeMap<>(); // the authors' arrays and shapes, under PEFT's keys
        for (SafetensorsWriter.Entry e : entries) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("unet\\.(.+)\\.processor\\.(to_\\w+?)_oft\\.(.+)")
                    .matcher(e.name());
            if (m.matches() && !m.group(3).equals("cross_attention_dim") && !m.group(3).equals("hidden_size")) {
                String module = m.group(1) + "." + (m.group(2).equals("to_out") ? "to_out.0" : m.group(2));
                authorsShapes.put("base_model.model." + module + "." + m.group(3),
                        "F32 " + java.util.Arrays.toString(java.util.Arrays.stream(e.shape()).mapToInt(d -> (int) d).toArray()));
            }
        }
        assertEquals(authorsShapes, header(saved.resolve(AdapterFiles.WEIGHTS_FILE)),
                "a converted file keeps the authors' names and shapes");
        assertEquals(layoutOf(expected), authorsShapes, "the authors' shapes are README's layout");
        TLoRAAdapter again = TLoRAAdapter.load(saved);
        for (String m : loaded.modules()) {
            assertSameLayer(loaded.layer(m), again.layer(m), m + " after a save");
        }
    }

    @Test
    void malformedFilesAreRefusedNamingTheTensor() throws IOException {
        TestData data = new TestData();
        String key = "blocks.0.attn1.processor.to_q_oft.";
        assertRefused(data, key, List.of("transform_core.0:4,4", "transform_core.2:8,8", "lora_A:2,32", "lora_B:32,2"),
                "transform_core.1");
        assertRefused(data, key, List.of("transform_core.0:4,5", "lora_A:2,20", "lora_B:20,2"), "(I, I) or (I, I, R, R)");
        assertRefused(data, key, List.of("transform_core.0:4,4", "lora_A:2,4"), "lora_B");
        // their transform_rank <= 0 leaves transform_core out of the state dict: not read as T = I
        assertRefused(data, key, List.of("lora_A:2,4", "lora_B:4,2"),
                "transform_core.0': missing: every TLoRA layer has a transform");
        assertRefused(data, key, List.of("transform_core.0:4,4", "lora_A:2,4", "lora_B:4,2", "ttm_core.0:4,4,2,2"),
                "more than one residual kind");
        assertRefused(data, key, List.of("transform_core.0:2,2", "transform_core.1:3,3", "ttv_core.0:2,2,2",
                "ttv_core.1:3,2,2"), "at least one output core");
        assertRefused(data, key, List.of("transform_core.0:2,2,2,2", "transform_core.1:3,3", "lora_A:1,6", "lora_B:6,1"),
                "ring rank");
        assertRefused(data, key, List.of("transform_core.0:2,2", "ttm_core.0:3,5,2,2"), "I = 2");
        Path empty = write(tmp.resolve("none.safetensors"), List.of(new SafetensorsWriter.Entry("x.weight",
                TensorDType.F32, new long[] {1})), Map.of("x.weight", TensorBytes.of(new float[] {1})));
        assertTrue(assertThrows(SafetensorsException.class, () -> TLoRAAdapter.loadAuthors(empty, 1f)).getMessage()
                .contains("holds no TLoRA layer"));
        assertThrows(IllegalArgumentException.class, () -> TLoRAAdapter.loadAuthors(empty, Float.NaN));

        // a directory whose config disagrees with its tensors
        TLoRAAdapter.of(layers(data, Residual.LORA, 2), null).save(tmp.resolve("dir"));
        Path config = tmp.resolve("dir").resolve(AdapterFiles.CONFIG_FILE);
        Files.writeString(config, Files.readString(config).replace("\"transform_rank\" : 2", "\"transform_rank\" : 3"));
        String msg = assertThrows(SafetensorsException.class, () -> TLoRAAdapter.load(tmp.resolve("dir"))).getMessage();
        assertTrue(msg.contains("transform_rank = 3") && msg.contains("R = 2"), msg);
        Files.writeString(config, Files.readString(config).replace("\"addition_part\" : \"lora\"", "\"addition_part\" : \"dora\""));
        msg = assertThrows(SafetensorsException.class, () -> TLoRAAdapter.load(tmp.resolve("dir"))).getMessage();
        assertTrue(msg.contains("addition_part"), msg);
        Map<String, TLoRAAdapter.Layer> mixed = layers(data, Residual.LORA, 2);
        mixed.putAll(Map.of("other", layers(data, Residual.TTM, 2).values().iterator().next()));
        assertThrows(IllegalArgumentException.class, () -> TLoRAAdapter.of(mixed, null));
        assertFalse(Files.exists(tmp.resolve("never")));
    }

    /** Writes the arrays (name:shape, random values) under key and checks loadAuthors refuses, naming {@code expect}. */
    private void assertRefused(TestData data, String key, List<String> arrays, String expect) throws IOException {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        Map<String, ByteBuffer> values = new LinkedHashMap<>();
        for (String a : arrays) {
            String[] parts = a.split(":");
            String[] dims = parts[1].split(",");
            long[] shape = new long[dims.length];
            int n = 1;
            for (int i = 0; i < dims.length; i++) {
                shape[i] = Long.parseLong(dims[i]);
                n *= (int) shape[i];
            }
            put(entries, values, key + parts[0], data.gaussian(n), shape);
        }
        Path file = write(tmp.resolve("bad" + arrays.hashCode() + ".safetensors"), entries, values);
        String msg = assertThrows(SafetensorsException.class, () -> TLoRAAdapter.loadAuthors(file, 1f)).getMessage();
        assertTrue(msg.contains(expect) && msg.contains(file.getFileName().toString()), "'" + msg + "' should name " + expect);
    }

    private static void put(List<SafetensorsWriter.Entry> entries, Map<String, ByteBuffer> values, String name,
                            float[] v, long... shape) {
        entries.add(new SafetensorsWriter.Entry(name, TensorDType.F32, shape));
        values.put(name, TensorBytes.of(v));
    }

    private static void putLong(List<SafetensorsWriter.Entry> entries, Map<String, ByteBuffer> values, String name,
                                long v) {
        entries.add(new SafetensorsWriter.Entry(name, TensorDType.I64, new long[] {}));
        values.put(name, ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(0, v));
    }

    private static Path write(Path file, List<SafetensorsWriter.Entry> entries, Map<String, ByteBuffer> values)
            throws IOException {
        try (SafetensorsWriter w = SafetensorsWriter.create(file, entries, Map.of("format", "pt"))) {
            for (SafetensorsWriter.Entry e : entries) {
                w.write(e.name(), values.get(e.name()));
            }
            w.commit();
        }
        return file;
    }
}
