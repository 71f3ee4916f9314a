package org.spectralpeft.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.TestData;
import org.spectralpeft.core.HostArray;

/**
 * SafetensorsModel: single files, sharded checkpoints with an index, directories, and every way the index
 * and the shards can disagree.
 */
class SafetensorsModelTest {
    private static final String SHARD1 = "model-00001-of-00002.safetensors";
    private static final String SHARD2 = "model-00002-of-00002.safetensors";

    @TempDir
    Path dir;

    private final TestData data = new TestData();
    /** Every tensor written by the test, by name. */
    private final Map<String, float[]> written = new LinkedHashMap<>();
    private String tag;

    @BeforeEach
    void setUp() {
        tag = data.tag();
    }

    // ================================================================ helpers

    /** Writes a shard of F32 tensors of random length and values, in the given order. */
    private Path shard(String file, Map<String, String> metadata, String... names) throws IOException {
        Map<String, float[]> values = new LinkedHashMap<>();
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (String n : names) {
            float[] v = data.gaussian(1 + data.nextInt(40));
            values.put(n, v);
            entries.add(new SafetensorsWriter.Entry(n, TensorDType.F32, new long[] {v.length}));
        }
        Path p = dir.resolve(file);
        try (SafetensorsWriter w = SafetensorsWriter.create(p, entries, metadata)) {
            for (Map.Entry<String, float[]> e : values.entrySet()) {
                w.write(e.getKey(), HostArray.float32(e.getValue()));
            }
            w.commit();
        }
        written.putAll(values);
        return p;
    }

    /** Writes an index as transformers does: {"metadata": {"total_size": ...}, "weight_map": {...}}. */
    private Path index(Map<String, String> weightMap) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.putObject("metadata").put("total_size", 12345);
        ObjectNode map = root.putObject("weight_map");
        weightMap.forEach(map::put);
        Path p = dir.resolve(SafetensorsModel.INDEX_FILE);
        Files.writeString(p, json.writerWithDefaultPrettyPrinter().writeValueAsString(root));
        return p;
    }

    /** The standard checkpoint: w0, w1 in shard 1 and w2, w3 in shard 2. */
    private static Map<String, String> standardMap() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("w0", SHARD1);
        m.put("w1", SHARD1);
        m.put("w2", SHARD2);
        m.put("w3", SHARD2);
        return m;
    }

    private void standardShards() throws IOException {
        shard(SHARD1, Map.of("format", "pt", "from", "one"), "w0", "w1");
        shard(SHARD2, Map.of("format", "np", "only2", "yes"), "w2", "w3");
    }

    private static SafetensorsException assertRejected(Path open, String... fragments) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsModel.open(open).close(),
                "opening " + open + " should fail");
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), () -> "message lacks \"" + f + "\": " + e.getMessage());
        }
        return e;
    }

    private void assertValues(SafetensorsModel m) throws IOException {
        for (Map.Entry<String, float[]> e : written.entrySet()) {
            TensorInfo t = m.tensor(e.getKey());
            assertArrayEquals(e.getValue(), m.fileOf(e.getKey()).readFloats(t), e.getKey() + tag);
        }
    }

    // ================================================================ checkpoints that open

    @Test
    void shardedCheckpointOpensThroughItsIndex() throws IOException {
        standardShards();
        Path index = index(standardMap());
        try (SafetensorsModel m = SafetensorsModel.open(index)) {
            assertTrue(m.isSharded());
            assertEquals(index, m.source());
            assertEquals(List.of("w0", "w1", "w2", "w3"), m.tensorNames());
            for (String n : List.of("w0", "w1")) {
                assertEquals(dir.resolve(SHARD1), m.fileOf(n).path(), n);
            }
            for (String n : List.of("w2", "w3")) {
                assertEquals(dir.resolve(SHARD2), m.fileOf(n).path(), n);
            }
            assertEquals(List.of(index, dir.resolve(SHARD1), dir.resolve(SHARD2)), m.files());
            assertEquals(2, m.shards().size());
            // merged metadata: the first shard wins a clash
            assertEquals(Map.of("format", "pt", "from", "one", "only2", "yes"), m.metadata());
            assertValues(m);
            assertTrue(m.find("w9").isEmpty());
            assertTrue(m.find("w2").isPresent());
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> m.fileOf("w9"));
            assertTrue(e.getMessage().startsWith(index + ": tensor 'w9'"), e.getMessage());
        }
    }

    @Test
    void tensorNamesFollowTheShardsNotTheIndexOrder() throws IOException {
        shard(SHARD1, Map.of(), "z", "a");
        shard(SHARD2, Map.of(), "m");
        Map<String, String> sorted = new LinkedHashMap<>();  // transformers writes the weight_map sorted
        sorted.put("a", SHARD1);
        sorted.put("m", SHARD2);
        sorted.put("z", SHARD1);
        try (SafetensorsModel m = SafetensorsModel.open(index(sorted))) {
            assertEquals(List.of("z", "a", "m"), m.tensorNames());
            assertValues(m);
        }
    }

    @Test
    void directoryWithAnIndexOpensTheIndex() throws IOException {
        standardShards();
        Path index = index(standardMap());
        // a stale single file beside the index is ignored
        shard(SafetensorsModel.SINGLE_FILE, Map.of(), "stale");
        written.remove("stale");
        try (SafetensorsModel m = SafetensorsModel.open(dir)) {
            assertTrue(m.isSharded());
            assertEquals(index.toAbsolutePath().normalize(), m.source().toAbsolutePath().normalize());
            assertEquals(List.of("w0", "w1", "w2", "w3"), m.tensorNames());
            assertValues(m);
        }
    }

    @Test
    void pathsWithDotSegmentsOpen() throws IOException {
        standardShards();
        index(standardMap());
        Files.createDirectories(dir.resolve("sub"));
        for (Path p : List.of(dir.resolve("."), dir.resolve("sub/.."),
                dir.resolve("./" + SafetensorsModel.INDEX_FILE), dir.resolve("sub/../" + SafetensorsModel.INDEX_FILE))) {
            try (SafetensorsModel m = SafetensorsModel.open(p)) {
                assertEquals(List.of("w0", "w1", "w2", "w3"), m.tensorNames(), p.toString());
                assertValues(m);
            }
        }
    }

    @Test
    void directoryWithOnlyASingleFileOpensIt() throws IOException {
        Path single = shard(SafetensorsModel.SINGLE_FILE, Map.of("format", "pt"), "b", "a", "c");
        try (SafetensorsModel m = SafetensorsModel.open(dir)) {
            assertFalse(m.isSharded());
            assertEquals(single, m.source());
            assertEquals(List.of("b", "a", "c"), m.tensorNames());
            assertEquals(List.of(single), m.files());
            assertEquals(Map.of("format", "pt"), m.metadata());
            assertEquals(single, m.fileOf("a").path());
            assertValues(m);
        }
        try (SafetensorsModel m = SafetensorsModel.open(single)) {
            assertEquals(List.of("b", "a", "c"), m.tensorNames());
        }
    }

    // ================================================================ index and shards disagree

    @Test
    void indexedTensorMissingFromItsShardIsRejected() throws IOException {
        standardShards();
        Map<String, String> map = standardMap();
        map.put("w4", SHARD2);
        Path index = index(map);
        SafetensorsException e = assertRejected(index, "tensor 'w4'", SHARD2, "not found");
        assertTrue(e.getMessage().startsWith(index.toString()), e.getMessage());
    }

    @Test
    void shardTensorMissingFromTheIndexIsRejected() throws IOException {
        standardShards();
        Map<String, String> map = standardMap();
        map.remove("w3");
        Path index = index(map);
        SafetensorsException e = assertRejected(index, "tensor 'w3'", "not in the index", SafetensorsModel.INDEX_FILE);
        assertTrue(e.getMessage().startsWith(dir.resolve(SHARD2) + ": "), e.getMessage());
    }

    @Test
    void tensorTheIndexPlacesInTheOtherShardIsRejected() throws IOException {
        standardShards();
        Map<String, String> map = standardMap();
        map.put("w3", SHARD1);   // it is in shard 2
        index(map);
        SafetensorsException e = assertRejected(dir, "tensor 'w3'", "places it in " + SHARD1);
        assertTrue(e.getMessage().startsWith(dir.resolve(SHARD2) + ": "), e.getMessage());
    }

    @Test
    void tensorStoredInBothShardsIsRejected() throws IOException {
        shard(SHARD1, Map.of(), "w0", "w1");
        shard(SHARD2, Map.of(), "w2", "w1");
        Map<String, String> map = standardMap();
        map.remove("w3");
        index(map);
        SafetensorsException e = assertRejected(dir, "tensor 'w1'", "places it in " + SHARD1);
        assertTrue(e.getMessage().startsWith(dir.resolve(SHARD2) + ": "), e.getMessage());
    }

    // ================================================================ shard paths and missing files

    @Test
    void shardPathOutsideTheDirectoryIsRefused() throws IOException {
        Path inner = dir.resolve("ckpt");
        Files.createDirectories(inner);
        shard("x.safetensors", Map.of(), "w0");          // exists, but outside the index's directory
        Map<String, String> map = new LinkedHashMap<>();
        map.put("w0", "../x.safetensors");
        Path index = inner.resolve(SafetensorsModel.INDEX_FILE);
        Files.move(index(map), index);
        SafetensorsException e = assertRejected(index, "tensor 'w0'", "'../x.safetensors'", "outside");
        assertTrue(e.getMessage().startsWith(index.toString()), e.getMessage());

        map.put("w0", dir.resolve("x.safetensors").toString());   // absolute
        Files.move(index(map), index, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertRejected(index, "tensor 'w0'", "outside");

        map.put("w0", "sub/../../x.safetensors");
        Files.move(index(map), index, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertRejected(index, "tensor 'w0'", "outside");
    }

    @Test
    void shardInASubdirectoryIsAllowed() throws IOException {
        Files.createDirectories(dir.resolve("shards"));
        shard("shards/" + SHARD1, Map.of(), "w0", "w1");
        try (SafetensorsModel m = SafetensorsModel.open(index(Map.of("w0", "shards/" + SHARD1, "w1", "shards/" + SHARD1)))) {
            assertEquals(dir.resolve("shards/" + SHARD1), m.fileOf("w1").path());
            assertValues(m);
        }
    }

    @Test
    void missingShardFileIsRejected() throws IOException {
        shard(SHARD1, Map.of(), "w0", "w1");
        index(standardMap());
        assertRejected(dir, dir.resolve(SHARD2).toString(), "cannot open");
    }

    @Test
    void indexWithoutWeightMapIsRejected() throws IOException {
        standardShards();
        Path index = dir.resolve(SafetensorsModel.INDEX_FILE);
        for (String text : List.of("{\"metadata\":{\"total_size\":1}}", "{\"weight_map\":{}}",
                "{\"weight_map\":[\"" + SHARD1 + "\"]}", "[]")) {
            Files.writeString(index, text);
            SafetensorsException e = assertRejected(index, "weight_map");
            assertTrue(e.getMessage().startsWith(index + ": "), e.getMessage());
        }
    }

    @Test
    void indexThatIsNotJsonIsRejected() throws IOException {
        standardShards();
        Path index = dir.resolve(SafetensorsModel.INDEX_FILE);
        Files.writeString(index, "{\"weight_map\": {\"w0\": ");
        assertRejected(index, index.toString(), "not a valid JSON index");
        Files.writeString(index, "{\"weight_map\": {\"w0\": \"" + SHARD1 + "\", \"w0\": \"" + SHARD2 + "\"}}");
        assertRejected(index, index.toString(), "not a valid JSON index", "w0");
        Files.writeString(index, "{\"weight_map\": {\"w0\": 1}}");
        assertRejected(index, index.toString(), "tensor 'w0'", "not a file name");
    }

    @Test
    void directoryWithNeitherFileIsRejected() throws IOException {
        shard("other.safetensors", Map.of(), "w0");
        SafetensorsException e = assertRejected(dir, SafetensorsModel.INDEX_FILE, SafetensorsModel.SINGLE_FILE);
        assertTrue(e.getMessage().startsWith(dir + ": "), e.getMessage());
        assertRejected(dir.resolve("nothing.safetensors"), dir.resolve("nothing.safetensors").toString(), "no such file");
    }

    @Test
    void corruptShardIsReportedByItsOwnName() throws IOException {
        standardShards();
        index(standardMap());
        Path broken = dir.resolve(SHARD2);
        byte[] bytes = Files.readAllBytes(broken);
        Files.write(broken, java.util.Arrays.copyOf(bytes, bytes.length - 1 - data.nextInt(4)));
        assertRejected(dir, broken.toString(), "truncated");
    }
}
