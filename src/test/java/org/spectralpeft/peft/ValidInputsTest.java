package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.PeftIndices;
import org.spectralpeft.io.SafetensorsException;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;

/**
 * Files and adapters the formats allow, which must load: names and metadata longer than Jackson's default
 * limits, every seed PyTorch's manual_seed accepts, and n = d_out·d_in.
 */
class ValidInputsTest {
    @TempDir
    Path tmp;

    private static final String LONG_NAME = "layer." + "x".repeat(60_000) + ".weight";

    private Path singleTensorFile(String name, Map<String, String> metadata) throws IOException {
        Path file = tmp.resolve("m-" + System.nanoTime() + ".safetensors");
        List<SafetensorsWriter.Entry> entries = List.of(new SafetensorsWriter.Entry(name, TensorDType.F32, new long[] {2}));
        try (SafetensorsWriter w = SafetensorsWriter.create(file, entries, metadata)) {
            w.write(name, TensorBytes.of(new float[] {1, 2}));
            w.commit();
        }
        return file;
    }

    @Test
    void tensorNamesOver50000CharactersLoad() throws IOException {
        Path file = singleTensorFile(LONG_NAME, Map.of());
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(new float[] {1, 2}, f.readFloats(f.tensor(LONG_NAME)));
        }
        Files.move(file, tmp.resolve("model-00001-of-00001.safetensors"));
        Files.writeString(tmp.resolve("model.safetensors.index.json"), "{\"metadata\": {}, \"weight_map\": {\""
                + LONG_NAME + "\": \"model-00001-of-00001.safetensors\"}}");
        try (SafetensorsModel m = SafetensorsModel.open(tmp.resolve("model.safetensors.index.json"))) {
            assertEquals(List.of(LONG_NAME), m.tensorNames());
        }
    }

    @Test
    void metadataStringsOver20MBLoad() throws IOException {
        String big = "v".repeat(21_000_000);
        Path file = singleTensorFile("w", Map.of("notes", big));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(big, f.metadata().get("notes"));
        }
    }

    @Test
    void adapterConfigWithLongNamesLoads() throws IOException {
        Path file = tmp.resolve("adapter_config.json");
        Files.writeString(file, "{\"peft_type\": \"FOURIERFT\", \"n_frequency_pattern\": {\"" + "q".repeat(60_000)
                + "\": 7}, \"base_model_name_or_path\": \"" + "b".repeat(21_000_000) + "\"}");
        FourierFTAdapterConfig c = FourierFTAdapterConfig.read(file);
        assertEquals(7, c.nFrequencyFor("m." + "q".repeat(60_000), 8, 8));
        assertEquals(21_000_000, c.baseModel().length());
    }

    private static FourierFTAdapterConfig config(String seed) throws IOException {
        return FourierFTAdapterConfig.parse(Path.of("adapter_config.json"), (com.fasterxml.jackson.databind.node.ObjectNode)
                FourierFTAdapterConfig.JSON.readTree("{\"peft_type\": \"FOURIERFT\", \"random_loc_seed\": " + seed + "}"));
    }

    /**
     * manual_seed(-1) and manual_seed(2^64-1) are one seed (64-bit two's complement) and MT19937 takes its low
     * 32 bits. Expected prefix from numpy's MT19937 (RandomState(0xFFFFFFFF), an independent implementation of
     * init_genrand) driving PyTorch's shuffle: r[i] <-> r[i + next32() % (N - i)].
     */
    @Test
    void everySeedManualSeedAcceptsReproducesRandperm() throws IOException {
        int[] expected = {1443, 731, 2098, 1143, 1772};
        assertArrayEquals(expected, PeftIndices.randpermPrefix(3072, 5, -1L));
        for (String seed : List.of("-1", "18446744073709551615", "4294967295")) {
            FourierFTAdapterConfig c = config(seed);
            FourierFTSpec spec = FourierFTSpec.fromSeed(64, 48, 5, c.randomLocSeed(), 1f);
            for (int l = 0; l < 5; l++) {
                assertEquals(expected[l], spec.row(l) * 48 + spec.col(l), seed);
            }
        }
        assertEquals(-1L, config("18446744073709551615").randomLocSeed());
        assertEquals(Long.MIN_VALUE, config("-9223372036854775808").randomLocSeed());
        // only the low 32 bits seed MT19937: 2^32 + 777 places the frequencies as 777 does
        assertArrayEquals(PeftIndices.randpermPrefix(3072, 5, 777),
                PeftIndices.randpermPrefix(3072, 5, (1L << 32) + 777));
        for (String seed : List.of("18446744073709551616", "-9223372036854775809")) {
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> config(seed));
            assertTrue(e.getMessage().contains("outside [-2^63, 2^64-1]") && e.getMessage().contains("OverflowError"),
                    e.getMessage());
        }
        FourierFTAdapter a = FourierFTAdapter.builder().randomLocSeed(-1).layer("m.q", new float[] {1, 2, 3}).build();
        Path dir = tmp.resolve("neg-seed");
        a.save(dir);
        assertEquals(-1L, FourierFTAdapter.load(dir).config().randomLocSeed());
    }

    @Test
    void nEqualToTheLayerSizeIsAccepted() throws IOException {
        FourierFTAdapter a = FourierFTAdapter.builder().layer("m.q", new float[] {1, 2, 3, 4, 5, 6}).build();
        FourierFTSpec spec = a.spec("m.q", 2, 3);
        assertEquals(6, spec.n());
        Path file = tmp.resolve("base.safetensors");
        List<SafetensorsWriter.Entry> entries = List.of(new SafetensorsWriter.Entry("m.q.weight", TensorDType.F32, new long[] {2, 3}));
        try (SafetensorsWriter w = SafetensorsWriter.create(file, entries, Map.of())) {
            w.write("m.q.weight", TensorBytes.of(new float[6]));
            w.commit();
        }
        try (SafetensorsModel base = SafetensorsModel.open(file)) {
            assertEquals(spec, MergePlan.build(base, a, null).layerFor("m.q.weight").orElseThrow().storageSpec());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.spec("m.q", 1, 5));
        assertTrue(e.getMessage().contains("at most d_out·d_in = 5"), e.getMessage());
    }
}
