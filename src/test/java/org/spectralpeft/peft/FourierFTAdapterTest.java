package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.TestData;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.io.SafetensorsException;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.io.TensorInfo;

/** PEFT adapter directories: config fields, save/load round trip, the keys PEFT uses, and every refusal. */
class FourierFTAdapterTest {
    @TempDir
    Path tmp;

    private static final ObjectMapper JSON = new ObjectMapper();

    // ---- config: defaults and PEFT's rules for n per module

    private static FourierFTAdapterConfig config(String json) throws SafetensorsException {
        try {
            return FourierFTAdapterConfig.parse(Path.of("adapter_config.json"),
                    (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(json));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void configDefaultsAreFourierFTsDefaults() throws IOException {
        FourierFTAdapterConfig c = config("{\"peft_type\": \"FOURIERFT\"}");
        assertEquals(1000, c.nFrequency());
        assertEquals(150.0, c.scaling());
        assertEquals(777, c.randomLocSeed());
        assertFalse(c.fanInFanOut());
        assertEquals(IfftNorm.BACKWARD, c.ifftNorm());
        assertNull(c.alphaFraction());
        assertEquals(1000, c.nFrequencyFor("model.layers.0.q_proj", 64, 64));
    }

    @Test
    void nFrequencyPatternFollowsPeftMatching() throws IOException {
        FourierFTAdapterConfig c = config("{\"peft_type\": \"FOURIERFT\", \"n_frequency\": 100, "
                + "\"n_frequency_pattern\": {\"v_proj\": 300, \"model.layers.3.q_proj\": 50, \"layers\\\\.[12]\\\\.q_proj\": 70}}");
        assertEquals(300, c.nFrequencyFor("model.layers.0.self_attn.v_proj", 8, 8)); // re.match(".*\.v_proj$")
        assertEquals(100, c.nFrequencyFor("model.layers.0.self_attn.xv_proj", 8, 8)); // needs the dot
        assertEquals(70, c.nFrequencyFor("model.layers.1.q_proj", 8, 8));
        assertEquals(50, c.nFrequencyFor("model.layers.3.q_proj", 8, 8)); // exact key, no leading dot
        assertEquals(100, c.nFrequencyFor("model.layers.4.q_proj", 8, 8));
        assertEquals(300, c.nFrequencyFor("v_proj.v_proj", 8, 8));
    }

    @Test
    void alphaOverridesNAsPeftComputesIt() throws IOException {
        FourierFTAdapterConfig c = config("{\"peft_type\": \"FOURIERFT\", \"n_frequency\": 5, \"alpha\": 0.1,"
                + " \"n_frequency_pattern\": {\"q\": 9}}");
        assertEquals(74, c.nFrequencyFor("a.q", 37, 20)); // int(0.1 * in * out), the pattern ignored
        assertEquals(0, c.nFrequencyFor("a.q", 3, 3)); // int(0.9000000000000001): PEFT refuses such a layer
        assertEquals(9, config("{\"peft_type\": \"FOURIERFT\", \"n_frequency\": 9, \"alpha\": 0}").nFrequencyFor("a.q", 37, 20));
    }

    @Test
    void badConfigsAreRefusedNamingTheField() {
        List<String[]> cases = List.of(
                new String[] {"{\"peft_type\": \"LORA\", \"r\": 8}", "peft_type is LORA"},
                new String[] {"{\"n_frequency\": 10}", "peft_type"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"n_frequency\": 0}", "n_frequency = 0"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"n_frequency\": 1.5}", "n_frequency"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"random_loc_seed\": null}", "random_loc_seed"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"random_loc_seed\": 18446744073709551616}", "random_loc_seed"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"scaling\": \"big\"}", "scaling"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"fan_in_fan_out\": 1}", "fan_in_fan_out"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"ifft2_norm\": \"none\"}", "ifft2_norm"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"alpha\": 2}", "alpha"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"n_frequency_pattern\": {\"q\": -1}}", "n_frequency_pattern['q']"},
                new String[] {"{\"peft_type\": \"FOURIERFT\", \"n_frequency_pattern\": {\"(q\": 5}}", "not a valid regex"});
        for (String[] c : cases) {
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> config(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]) && e.getMessage().contains("adapter_config.json"),
                    c[0] + " -> " + e.getMessage());
        }
    }

    @Test
    void configFileWithDuplicateKeysOrBadJsonIsRefused() throws IOException {
        Path f = tmp.resolve("adapter_config.json");
        Files.writeString(f, "{\"peft_type\": \"FOURIERFT\", \"n_frequency\": 1, \"n_frequency\": 2}");
        assertTrue(assertThrows(SafetensorsException.class, () -> FourierFTAdapterConfig.read(f)).getMessage().contains("n_frequency"));
        Files.writeString(f, "{\"peft_type\": ");
        assertTrue(assertThrows(SafetensorsException.class, () -> FourierFTAdapterConfig.read(f)).getMessage().contains("not valid JSON"));
    }

    // ---- save and load

    @Test
    void savedAdapterLoadsBackWithPeftsLayout() throws IOException {
        TestData data = new TestData();
        float[] q = data.gaussian(40);
        float[] v = data.gaussian(40);
        float[] fc = data.gaussian(123);
        FourierFTAdapter a = FourierFTAdapter.builder().randomLocSeed(31337).scaling(300).baseModel("org/tiny")
                .layer("model.layers.0.q_proj", q).layer("model.layers.0.v_proj", v).layer("model.layers.0.mlp.fc", fc)
                .build();
        Path dir = tmp.resolve("adapter");
        a.save(dir);

        JsonNode json = JSON.readTree(dir.resolve("adapter_config.json").toFile());
        assertEquals("FOURIERFT", json.get("peft_type").asText());
        assertEquals(40, json.get("n_frequency").asInt());
        assertEquals(123, json.get("n_frequency_pattern").get("model.layers.0.mlp.fc").asInt());
        assertEquals(31337, json.get("random_loc_seed").asLong());
        assertEquals(300.0, json.get("scaling").asDouble());
        assertFalse(json.get("fan_in_fan_out").asBoolean());
        assertFalse(json.has("ifft2_norm"), "the default norm is left out for older PEFT versions");
        assertEquals("org/tiny", json.get("base_model_name_or_path").asText());
        assertEquals(3, json.get("target_modules").size());
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
            TensorInfo t = f.tensor("base_model.model.model.layers.0.mlp.fc.fourierft_spectrum");
            assertEquals(TensorDType.F32, t.dtype());
            assertArrayEquals(new long[] {123}, t.shape());
            assertArrayEquals(fc, f.readFloats(t));
            assertEquals(3, f.tensors().size());
            assertEquals("pt", f.metadata().get("format"));
        }

        FourierFTAdapter b = FourierFTAdapter.load(dir);
        assertEquals(List.of("model.layers.0.q_proj", "model.layers.0.v_proj", "model.layers.0.mlp.fc"),
                List.copyOf(b.modules()));
        assertArrayEquals(q, b.coefficients("model.layers.0.q_proj"));
        assertArrayEquals(v, b.coefficients("model.layers.0.v_proj"));
        assertArrayEquals(fc, b.coefficients("model.layers.0.mlp.fc"));
        assertEquals(FourierFTSpec.fromSeed(33, 19, 123, 31337, 300f), b.spec("model.layers.0.mlp.fc", 33, 19));

        // saving a loaded adapter keeps PEFT's other fields
        Path copy = tmp.resolve("copy");
        b.save(copy);
        assertEquals(json, JSON.readTree(copy.resolve("adapter_config.json").toFile()));
    }

    @Test
    void specUsesTheNormAndChecksN() throws IOException {
        FourierFTAdapter a = FourierFTAdapter.builder().scaling(2.0).ifftNorm(IfftNorm.ORTHO)
                .layer("m.q", new float[] {1, 2, 3}).build();
        Path dir = tmp.resolve("a");
        a.save(dir);
        FourierFTAdapter b = FourierFTAdapter.load(dir);
        assertEquals(IfftNorm.ORTHO, b.config().ifftNorm());
        assertEquals(2.0 / 6.0, b.spec("m.q", 4, 9).scale(), 1e-7); // scaling / sqrt(36)
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.spec("m.q", 2, 1));
        assertTrue(e.getMessage().contains("at most d_out·d_in"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> b.spec("m.k", 4, 9));
        assertEquals(12f, IfftNorm.FORWARD.effectiveAlpha(1.0, 3, 4)); // no 1/(d_out·d_in) at all
    }

    @Test
    void builderRefusesWhatPeftCouldNotReload() {
        assertThrows(IllegalArgumentException.class, () -> FourierFTAdapter.builder().build());
        assertThrows(IllegalArgumentException.class, () -> FourierFTAdapter.builder().layer("m.q", new float[0]));
        assertThrows(IllegalArgumentException.class, () -> FourierFTAdapter.builder().layer("m.q", new float[] {Float.NaN}));
        assertThrows(IllegalArgumentException.class, () -> FourierFTAdapter.builder().layer(".q", new float[] {1}));
        assertThrows(IllegalArgumentException.class,
                () -> FourierFTAdapter.builder().layer("m.q", new float[] {1}).layer("m.q", new float[] {2}));
        // "b.q" would be an n_frequency_pattern regex that also claims "a.b.q"
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FourierFTAdapter.builder()
                .layer("x.q", new float[] {1, 2}).layer("y.q", new float[] {1, 2}).layer("b.q", new float[] {1})
                .layer("a.b.q", new float[] {1, 2}).build());
        assertTrue(e.getMessage().contains("a.b.q"), e.getMessage());
    }

    @Test
    void loadRefusesWhatIsNotAFourierFTAdapter() throws IOException {
        Path dir = tmp.resolve("bad");
        Files.createDirectories(dir);
        assertMessage(() -> FourierFTAdapter.load(tmp.resolve("missing")), "no such directory");
        assertMessage(() -> FourierFTAdapter.load(dir), "no adapter_config.json");

        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 8}");
        assertMessage(() -> FourierFTAdapter.load(dir), "peft_type is LORA");

        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"FOURIERFT\"}");
        assertMessage(() -> FourierFTAdapter.load(dir), "no adapter_model.safetensors");
        Files.write(dir.resolve("adapter_model.bin"), new byte[] {1, 2, 3});
        assertMessage(() -> FourierFTAdapter.load(dir), "safe_serialization=True");

        writeTensor(dir, "base_model.model.m.q.lora_A.weight", TensorDType.F32, new long[] {2}, TensorBytes.of(new float[] {1, 2}));
        assertMessage(() -> FourierFTAdapter.load(dir), "m.q.lora_A.weight");
        writeTensor(dir, "m.q.fourierft_spectrum", TensorDType.F32, new long[] {2}, TensorBytes.of(new float[] {1, 2}));
        assertMessage(() -> FourierFTAdapter.load(dir), "does not start with base_model.model.");
        writeTensor(dir, "base_model.model.m.q.fourierft_spectrum", TensorDType.F32, new long[] {1, 2}, TensorBytes.of(new float[] {1, 2}));
        assertMessage(() -> FourierFTAdapter.load(dir), "1-D");
        writeTensor(dir, "base_model.model.m.q.fourierft_spectrum", TensorDType.I32, new long[] {2}, TensorBytes.of(new float[] {1, 2}));
        assertMessage(() -> FourierFTAdapter.load(dir), "I32");
        writeTensor(dir, "base_model.model.m.q.fourierft_spectrum", TensorDType.F32, new long[] {2}, TensorBytes.of(new float[] {1, Float.NaN}));
        assertMessage(() -> FourierFTAdapter.load(dir), "coefficient 1 is NaN");
        Files.write(dir.resolve("adapter_model.safetensors"), new byte[] {9, 0, 0, 0, 0, 0, 0, 0, '{'});
        assertMessage(() -> FourierFTAdapter.load(dir), "adapter_model.safetensors");

        // a good one, in bfloat16, loads
        writeTensor(dir, "base_model.model.m.q.fourierft_spectrum", TensorDType.BF16, new long[] {2},
                ByteBuffer.wrap(new byte[] {(byte) 0x80, 0x3f, 0x00, (byte) 0xc0}));
        assertArrayEquals(new float[] {1f, -2f}, FourierFTAdapter.load(dir).coefficients("m.q"));
    }

    private static void writeTensor(Path dir, String name, TensorDType dtype, long[] shape, ByteBuffer bytes) throws IOException {
        try (SafetensorsWriter w = SafetensorsWriter.create(dir.resolve("adapter_model.safetensors"),
                List.of(new SafetensorsWriter.Entry(name, dtype, shape)), Map.of())) {
            ByteBuffer b = bytes.duplicate();
            long need = dtype.bytes();
            for (long d : shape) {
                need *= d;
            }
            b.limit((int) need);
            w.write(name, b);
            w.commit();
        }
    }

    private interface Action {
        void run() throws Exception;
    }

    private static void assertMessage(Action action, String fragment) {
        Exception e = assertThrows(Exception.class, action::run);
        assertTrue(e instanceof IOException || e instanceof IllegalArgumentException, e.toString());
        assertTrue(e.getMessage().contains(fragment), "expected '" + fragment + "' in: " + e.getMessage());
    }
}
