package org.spectralpeft.peft;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.spectralpeft.io.AtomicFiles;
import org.spectralpeft.io.SafetensorsException;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;

/**
 * What every adapter directory in PEFT's layout shares, whatever its family: the two file names, the key
 * prefix of its tensors, the strict JSON reader of its config, and reading the {@code peft_type}.
 */
public final class AdapterFiles {
    /** The config's file name. */
    public static final String CONFIG_FILE = "adapter_config.json";
    /** The weights' file name (safetensors; PEFT's pickle, adapter_model.bin, is refused). */
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";
    /** Every tensor key starts with this, then the module path (PEFT's wrapping of the base model). */
    public static final String KEY_PREFIX = "base_model.model.";

    // a config's strings (module paths, the base model's path) are bounded by the file, not by Jackson's defaults
    static final ObjectMapper JSON = JsonMapper.builder(com.fasterxml.jackson.core.JsonFactory.builder()
                    .streamReadConstraints(StreamReadConstraints.builder()
                            .maxStringLength(Integer.MAX_VALUE).maxNameLength(Integer.MAX_VALUE).build())
                    .build())
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    private AdapterFiles() {
    }

    /**
     * The {@code peft_type} of an adapter directory (FOURIERFT, FOURA, LORA...), for choosing its reader.
     *
     * @param dir the adapter directory
     * @return the type, or empty if the config has none
     * @throws SafetensorsException if the directory or its config is missing or malformed
     * @throws IOException if the config cannot be read
     */
    public static Optional<String> peftType(Path dir) throws IOException {
        JsonNode type = readObject(configOf(dir)).get("peft_type");
        return type != null && type.isTextual() ? Optional.of(type.textValue()) : Optional.empty();
    }

    /** The config file of {@code dir}, checked to exist. */
    static Path configOf(Path dir) throws SafetensorsException {
        if (!Files.isDirectory(dir)) {
            throw new SafetensorsException(dir, "not an adapter directory (no such directory)");
        }
        Path configFile = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(configFile)) {
            throw new SafetensorsException(dir, "no " + CONFIG_FILE + " (not a PEFT adapter directory)");
        }
        return configFile;
    }

    /** The weights file of {@code dir}, checked to exist (a pickle-only adapter is named as such). */
    static Path weightsOf(Path dir) throws SafetensorsException {
        Path weights = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(weights)) {
            throw new SafetensorsException(dir, Files.isRegularFile(dir.resolve("adapter_model.bin"))
                    ? "only adapter_model.bin (a pickle) is present; save the adapter with safe_serialization=True"
                    : "no " + WEIGHTS_FILE);
        }
        return weights;
    }

    /** The config as a JSON object. */
    static ObjectNode readObject(Path file) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new SafetensorsException(file, "not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new SafetensorsException(file, "cannot read: " + e);
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsException(file, "not a JSON object");
        }
        return (ObjectNode) root;
    }

    /** The config as a JSON object, refused unless its peft_type is {@code expected}. */
    static ObjectNode readConfig(Path file, String expected, String family) throws IOException {
        ObjectNode root = readObject(file);
        JsonNode type = root.get("peft_type");
        if (type == null || !type.isTextual()) {
            throw new SafetensorsException(file, "no \"peft_type\" (not a PEFT adapter config?)");
        }
        if (!type.textValue().equals(expected)) {
            throw new SafetensorsException(file, "peft_type is " + type.textValue() + "; expected a " + family
                    + " adapter (peft_type " + expected + ")");
        }
        return root;
    }

    /** The module path of a tensor key {@code base_model.model.<module><suffix>}. */
    static String moduleOf(Path file, String key, String suffix) throws SafetensorsException {
        if (!key.startsWith(KEY_PREFIX) || !key.endsWith(suffix) || key.length() <= KEY_PREFIX.length() + suffix.length()) {
            throw new SafetensorsException(file, key, "key does not start with " + KEY_PREFIX + " followed by a module path");
        }
        return key.substring(KEY_PREFIX.length(), key.length() - suffix.length());
    }

    /** JSON text of a config, indented as PEFT writes it. */
    static String toJson(ObjectNode root) {
        try {
            return JSON.writeValueAsString(root);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
    /** A positive int field of a config. */
    static int positiveInt(Path file, ObjectNode root, String name) throws SafetensorsException {
        JsonNode v = root.get(name);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 1) {
            throw new SafetensorsException(file, name + " = " + v + " must be a positive integer");
        }
        return v.intValue();
    }

    /** A number field of a config, finite as a float; fallback when absent or null. */
    static double finiteNumber(Path file, ObjectNode root, String name, double fallback) throws SafetensorsException {
        JsonNode v = root.get(name);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isNumber() || !Double.isFinite(v.doubleValue()) || !Float.isFinite((float) v.doubleValue())) {
            throw new SafetensorsException(file, name + " = " + v + " must be a finite number");
        }
        return v.doubleValue();
    }

    /** An adapter's float32 tensors, collected in order, then written with its config ({@link #write}). */
    static final class Tensors {
        private final Map<String, float[]> values = new LinkedHashMap<>();
        private final List<SafetensorsWriter.Entry> entries = new ArrayList<>();

        /** Adds a tensor of the given shape (values not copied). */
        void add(String name, float[] data, long... shape) {
            values.put(name, data);
            entries.add(new SafetensorsWriter.Entry(name, TensorDType.F32, shape));
        }

        /**
         * Writes {@code adapter_model.safetensors} and then the config (as {@code configFile}) into dir, created if
         * absent, each whole or not at all.
         */
        void write(Path dir, String configFile, String configJson) throws IOException {
            Files.createDirectories(dir);
            try (SafetensorsWriter w = SafetensorsWriter.create(dir.resolve(WEIGHTS_FILE), entries, Map.of("format", "pt"))) {
                for (Map.Entry<String, float[]> t : values.entrySet()) {
                    w.write(t.getKey(), TensorBytes.of(t.getValue()));
                }
                w.commit();
            }
            AtomicFiles.writeString(dir.resolve(configFile), configJson + "\n");
        }
    }
}
