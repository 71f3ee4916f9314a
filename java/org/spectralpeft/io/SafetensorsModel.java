package org.spectralpeft.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.AbstractList;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.spectralpeft.core.Checks;

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
    // every tensor name, shard by shard; tensor i lives in the shard whose range in shardStarts holds i
    private final String[] names;
    private final int[] shardStarts;
    private final NameIndex index;
    private final Map<String, String> metadata;

    private SafetensorsModel(Path source, List<SafetensorsFile> shards, String[] names, int[] shardStarts,
                             NameIndex index, Map<String, String> metadata) {
        this.source = source;
        this.shards = shards;
        this.names = names;
        this.shardStarts = shardStarts;
        this.index = index;
        this.metadata = metadata;
    }

    /**
     * Opens a {@code .safetensors} file, a {@code *.index.json} index, or a directory holding
     * {@value #INDEX_FILE} or {@value #SINGLE_FILE}.
     *
     * @param path the file, index or directory
     * @return the open model; close it when done
     * @throws SafetensorsException if a header or the index is malformed, naming the file
     * @throws IOException if a file cannot be read
     */
    public static SafetensorsModel open(Path path) throws IOException {
        Checks.notNull(path, "path");
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
        return new SafetensorsModel(file, List.of(f), null, new int[] {0, f.tensorCount()}, null, f.metadata());
    }

    /** The index's weight_map, streamed: tensor names and, per tensor, the number of its shard. */
    private static final class WeightMap {
        int count;
        String[] names = new String[16];
        int[] shardOf = new int[16];
        final List<String> shardNames = new ArrayList<>();
        final Map<String, Integer> shardNumbers = new LinkedHashMap<>();

        void add(String name, String shard) {
            if (count == names.length) {
                names = Arrays.copyOf(names, count + (count >> 1) + 16);
                shardOf = Arrays.copyOf(shardOf, names.length);
            }
            Integer number = shardNumbers.get(shard);
            if (number == null) {
                number = shardNames.size();
                shardNumbers.put(shard, number);
                shardNames.add(shard);
            }
            names[count] = name;
            shardOf[count++] = number;
        }
    }

    private static WeightMap readWeightMap(Path index) throws IOException {
        WeightMap map = null;
        try (JsonParser p = SafetensorsFile.STREAMING.createParser(index.toFile())) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new SafetensorsException(index, "no \"weight_map\" object (not a safetensors index?)");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                if (!field.equals("weight_map") || value != JsonToken.START_OBJECT) {
                    p.skipChildren();
                    continue;
                }
                if (map != null) {
                    throw new SafetensorsException(index, "not a valid JSON index: Duplicate field 'weight_map'");
                }
                map = new WeightMap();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    if (p.nextToken() != JsonToken.VALUE_STRING) {
                        throw new SafetensorsException(index, name, "weight_map value is not a file name");
                    }
                    map.add(name, p.getText());
                }
            }
            if (p.nextToken() != null) {
                throw new SafetensorsException(index, "not a valid JSON index: content after the index object");
            }
        } catch (SafetensorsException e) {
            throw e;
        } catch (IOException e) {
            throw new SafetensorsException(index, "not a valid JSON index: " + e.getMessage());
        }
        if (map == null || map.count == 0) {
            throw new SafetensorsException(index, "no \"weight_map\" object (not a safetensors index?)");
        }
        return map;
    }

    private static SafetensorsModel openIndex(Path index) throws IOException {
        WeightMap map = readWeightMap(index);
        NameIndex indexed = NameIndex.of(map.names, map.count, (first, second) -> {
            throw new SafetensorsException(index, "not a valid JSON index: Duplicate field '" + map.names[second] + "'");
        });
        // normalized like the shard paths below, so "." or ".." in the index path is not taken for an escape
        Path dir = index.toAbsolutePath().normalize().getParent();
        List<Path> shardPaths = new ArrayList<>();
        for (int i = 0; i < map.count; i++) {
            if (map.shardOf[i] < shardPaths.size()) {
                continue;
            }
            String shard = map.shardNames.get(map.shardOf[i]);
            Path p = dir.resolve(shard).normalize();
            if (!p.startsWith(dir) || Path.of(shard).isAbsolute()) {
                throw new SafetensorsException(index, map.names[i], "shard '" + shard + "' lies outside the index's directory");
            }
            shardPaths.add(p);
        }
        List<SafetensorsFile> shards = new ArrayList<>();
        try {
            for (Path p : shardPaths) {
                shards.add(SafetensorsFile.open(p));
            }
            int[] shardStarts = new int[shards.size() + 1];
            long total = 0;
            for (int s = 0; s < shards.size(); s++) {
                SafetensorsFile f = shards.get(s);
                for (int i = 0; i < f.tensorCount(); i++) {
                    String name = f.tensorName(i);
                    int at = indexed.find(name);
                    if (at < 0 || map.shardOf[at] != s) {
                        throw new SafetensorsException(f.path(), name, at < 0
                                ? "is not in the index " + index.getFileName()
                                : "the index places it in " + map.shardNames.get(map.shardOf[at]));
                    }
                }
                total += f.tensorCount();
                shardStarts[s + 1] = (int) total;
            }
            // every shard tensor matched a distinct index entry; equal counts mean every entry was found
            if (total != map.count) {
                for (int i = 0; i < map.count; i++) {
                    if (shards.get(map.shardOf[i]).indexOf(map.names[i]) < 0) {
                        throw new SafetensorsException(index, map.names[i], "indexed in shard "
                                + map.shardNames.get(map.shardOf[i]) + " but not found there");
                    }
                }
            }
            String[] names = new String[(int) total];
            for (int s = 0; s < shards.size(); s++) {
                SafetensorsFile f = shards.get(s);
                for (int i = 0; i < f.tensorCount(); i++) {
                    names[shardStarts[s] + i] = f.tensorName(i); // the shard's own strings, not the index's copies
                }
            }
            NameIndex byName = NameIndex.of(names, names.length, (first, second) -> {
                throw new IllegalStateException("tensor '" + names[second] + "' in two shards passed the index check");
            });
            Map<String, String> metadata = new LinkedHashMap<>();
            for (SafetensorsFile f : shards) {
                f.metadata().forEach(metadata::putIfAbsent);
            }
            return new SafetensorsModel(index, List.copyOf(shards), names, shardStarts, byName,
                    Collections.unmodifiableMap(metadata));
        } catch (IOException | RuntimeException e) {
            for (SafetensorsFile f : shards) {
                f.close();
            }
            throw e;
        }
    }

    /**
     * The file or index this model was opened from.
     *
     * @return the path
     */
    public Path source() {
        return source;
    }

    /**
     * Whether the model was opened from a {@code model.safetensors.index.json} over several shards.
     *
     * @return true for an index
     */
    public boolean isSharded() {
        return source.getFileName().toString().endsWith(".json");
    }

    /**
     * The shard files, in index order; a single file for an unsharded model.
     *
     * @return the shards
     */
    public List<SafetensorsFile> shards() {
        return shards;
    }

    /**
     * All tensor names, shard by shard in data order: an unmodifiable view.
     *
     * @return the names
     */
    public List<String> tensorNames() {
        return new AbstractList<>() {
            @Override
            public String get(int i) {
                return tensorName(i);
            }

            @Override
            public int size() {
                return tensorCount();
            }
        };
    }

    /**
     * Number of tensors in all shards.
     *
     * @return number of tensors
     */
    public int tensorCount() {
        return shardStarts[shardStarts.length - 1];
    }

    /**
     * Name of tensor {@code i}, shard by shard in data order.
     *
     * @param i the tensor's position, 0 ≤ i &lt; tensorCount()
     * @return its name
     */
    public String tensorName(int i) {
        return names != null ? names[i] : shards.get(0).tensorName(i);
    }

    private int shardOf(int i) {
        int s = Arrays.binarySearch(shardStarts, i);
        if (s < 0) {
            return -s - 2;
        }
        while (s + 1 < shardStarts.length - 1 && shardStarts[s + 1] == i) { // skip shards without tensors
            s++;
        }
        return s;
    }

    private int indexOf(String name) {
        Checks.notNull(name, "name");
        return index != null ? index.find(name) : shards.get(0).indexOf(name);
    }

    /**
     * The tensor named {@code name}, in whichever shard holds it.
     *
     * @param name the tensor's name
     * @return its entry, or empty if no shard has it
     * @throws IllegalArgumentException if {@code name} is null
     */
    public Optional<TensorInfo> find(String name) {
        int i = indexOf(name);
        if (i < 0) {
            return Optional.empty();
        }
        int s = shardOf(i);
        return Optional.of(shards.get(s).tensor(i - shardStarts[s]));
    }

    /**
     * The file holding tensor {@code name}.
     *
     * @param name the tensor's name
     * @return the shard that holds it
     * @throws SafetensorsException if there is no such tensor
     */
    public SafetensorsFile fileOf(String name) throws SafetensorsException {
        int i = indexOf(name);
        if (i < 0) {
            throw new SafetensorsException(source, name, "no such tensor");
        }
        return shards.get(shardOf(i));
    }

    /**
     * The tensor named {@code name}.
     *
     * @param name the tensor's name
     * @return its entry
     * @throws SafetensorsException naming the model if there is no such tensor
     * @throws IllegalArgumentException if {@code name} is null
     */
    public TensorInfo tensor(String name) throws SafetensorsException {
        return find(name).orElseThrow(() -> new SafetensorsException(source, name, "no such tensor"));
    }

    /**
     * {@code __metadata__} of the shards, merged (the first shard's value wins on a clash).
     *
     * @return the metadata, name to value
     */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Every file of the checkpoint (the index, if any, and the shards).
     *
     * @return the files
     */
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
