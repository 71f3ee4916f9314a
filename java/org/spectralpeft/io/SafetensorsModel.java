package org.spectralpeft.io;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A model's tensors across one safetensors file or a sharded checkpoint ({@code model.safetensors.index.json},
 * whose {@code weight_map} names the shard of every tensor). Opening validates every shard and checks the
 * index and the shards agree exactly: each indexed tensor is in its shard, and each shard holds only
 * indexed tensors. Tensor names are listed shard by shard, in data order.
 */
public final class SafetensorsModel implements AutoCloseable {
    /** The index file of a sharded checkpoint. */
    public static final String INDEX_FILE = "model.safetensors.index.json";
    /** The single file of an unsharded checkpoint. */
    public static final String SINGLE_FILE = "model.safetensors";

    private final Path source;
    private final List<SafetensorsFile> shards;
    private final Map<String, SafetensorsFile> owner;
    private final Map<String, String> metadata;

    private SafetensorsModel(Path source, List<SafetensorsFile> shards, Map<String, SafetensorsFile> owner,
                             Map<String, String> metadata) {
        this.source = source;
        this.shards = shards;
        this.owner = owner;
        this.metadata = metadata;
    }

    /**
     * Opens a {@code .safetensors} file, a {@code *.index.json} index, or a directory holding
     * {@value #INDEX_FILE} or {@value #SINGLE_FILE}.
     */
    public static SafetensorsModel open(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            if (Files.isRegularFile(path.resolve(INDEX_FILE))) {
                return openIndex(path.resolve(INDEX_FILE));
            }
            if (Files.isRegularFile(path.resolve(SINGLE_FILE))) {
                return openSingle(path.resolve(SINGLE_FILE));
            }
            throw new SafetensorsException(path, "directory has neither " + INDEX_FILE + " nor " + SINGLE_FILE);
        }
        if (!Files.isRegularFile(path)) {
            throw new SafetensorsException(path, "no such file");
        }
        return path.getFileName().toString().endsWith(".json") ? openIndex(path) : openSingle(path);
    }

    private static SafetensorsModel openSingle(Path file) throws IOException {
        SafetensorsFile f = SafetensorsFile.open(file);
        Map<String, SafetensorsFile> owner = new LinkedHashMap<>();
        for (TensorInfo t : f.tensors()) {
            owner.put(t.name(), f);
        }
        return new SafetensorsModel(file, List.of(f), owner, f.metadata());
    }

    private static SafetensorsModel openIndex(Path index) throws IOException {
        JsonNode root;
        try {
            root = SafetensorsFile.JSON.readTree(index.toFile());
        } catch (IOException e) {
            throw new SafetensorsException(index, "not a valid JSON index: " + e.getMessage());
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new SafetensorsException(index, "no \"weight_map\" object (not a safetensors index?)");
        }
        // normalized like the shard paths below, so "." or ".." in the index path is not taken for an escape
        Path dir = index.toAbsolutePath().normalize().getParent();
        Map<String, String> shardOf = new LinkedHashMap<>();
        Map<String, Path> shardPaths = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new SafetensorsException(index, e.getKey(), "weight_map value is not a file name");
            }
            String shard = e.getValue().textValue();
            Path p = dir.resolve(shard).normalize();
            if (!p.startsWith(dir) || Path.of(shard).isAbsolute()) {
                throw new SafetensorsException(index, e.getKey(), "shard '" + shard + "' lies outside the index's directory");
            }
            shardOf.put(e.getKey(), shard);
            shardPaths.putIfAbsent(shard, p);
        }
        List<SafetensorsFile> shards = new ArrayList<>();
        try {
            Map<String, SafetensorsFile> byShard = new LinkedHashMap<>();
            for (Map.Entry<String, Path> e : shardPaths.entrySet()) {
                SafetensorsFile f = SafetensorsFile.open(e.getValue());
                shards.add(f);
                byShard.put(e.getKey(), f);
            }
            Map<String, SafetensorsFile> owner = new LinkedHashMap<>();
            for (SafetensorsFile f : shards) {
                for (TensorInfo t : f.tensors()) {
                    String indexed = shardOf.get(t.name());
                    if (indexed == null || byShard.get(indexed) != f) {
                        throw new SafetensorsException(f.path(), t.name(), indexed == null
                                ? "is not in the index " + index.getFileName()
                                : "the index places it in " + indexed);
                    }
                    owner.put(t.name(), f);
                }
            }
            for (Map.Entry<String, String> e : shardOf.entrySet()) {
                if (!owner.containsKey(e.getKey())) {
                    throw new SafetensorsException(index, e.getKey(), "indexed in shard " + e.getValue() + " but not found there");
                }
            }
            Map<String, String> metadata = new LinkedHashMap<>();
            for (SafetensorsFile f : shards) {
                f.metadata().forEach(metadata::putIfAbsent);
            }
            return new SafetensorsModel(index, List.copyOf(shards), Collections.unmodifiableMap(owner),
                    Collections.unmodifiableMap(metadata));
        } catch (IOException | RuntimeException e) {
            for (SafetensorsFile f : shards) {
                f.close();
            }
            throw e;
        }
    }

    /** The file or index this model was opened from. */
    public Path source() {
        return source;
    }

    public boolean isSharded() {
        return source.getFileName().toString().endsWith(".json");
    }

    public List<SafetensorsFile> shards() {
        return shards;
    }

    /** All tensor names, shard by shard in data order. */
    public List<String> tensorNames() {
        return List.copyOf(owner.keySet());
    }

    public Optional<TensorInfo> find(String name) {
        SafetensorsFile f = owner.get(name);
        return f == null ? Optional.empty() : f.find(name);
    }

    /** The file holding tensor {@code name}. */
    public SafetensorsFile fileOf(String name) throws SafetensorsException {
        SafetensorsFile f = owner.get(name);
        if (f == null) {
            throw new SafetensorsException(source, name, "no such tensor");
        }
        return f;
    }

    public TensorInfo tensor(String name) throws SafetensorsException {
        return fileOf(name).tensor(name);
    }

    /** {@code __metadata__} of the shards, merged (the first shard's value wins on a clash). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Every file of the checkpoint (the index, if any, and the shards). */
    public List<Path> files() {
        List<Path> files = new ArrayList<>();
        if (isSharded()) {
            files.add(source);
        }
        shards.forEach(s -> files.add(s.path()));
        return files;
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        for (SafetensorsFile f : shards) {
            try {
                f.close();
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
