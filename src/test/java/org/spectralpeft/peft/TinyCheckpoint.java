package org.spectralpeft.peft;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;

/**
 * A small transformer-like checkpoint for merge tests: Linear weights of odd and even shapes (stored
 * out × in), one GPT-2-style Conv1D weight (stored in × out), biases, an embedding, an I64 buffer and a
 * BOOL mask, all filled with fresh random values. Adapted weights can be written in any float dtype.
 */
public final class TinyCheckpoint {
    /** A 2-D weight: module path, stored rows × cols, and whether it is stored in × out. */
    public record Weight(String module, int rows, int cols, boolean storedInOut) {
        public String tensor() {
            return module + ".weight";
        }

        public int dOut() {
            return storedInOut ? cols : rows;
        }

        public int dIn() {
            return storedInOut ? rows : cols;
        }
    }

    public static final List<Weight> ADAPTED = List.of(
            new Weight("model.layers.0.self_attn.q_proj", 37, 29, false),
            new Weight("model.layers.0.self_attn.v_proj", 29, 37, false),
            new Weight("model.layers.1.mlp.fc", 64, 48, false),
            new Weight("transformer.h.0.attn.c_attn", 24, 40, true));

    /** Regex of the modules stored in × out (for MergePlan / --fan-in-fan-out). */
    public static final String CONV1D_MODULES = "transformer\\.h\\.\\d+\\.attn\\.c_attn";

    /** Every tensor's raw bytes, in the order written. */
    final Map<String, byte[]> bytes = new LinkedHashMap<>();
    final Map<String, TensorDType> dtypes = new LinkedHashMap<>();
    final Map<String, long[]> shapes = new LinkedHashMap<>();

    public TinyCheckpoint(TestData data, TensorDType weightDtype) {
        for (Weight w : ADAPTED) {
            put(w.tensor(), weightDtype, new long[] {w.rows(), w.cols()}, floats(data, weightDtype, w.rows() * w.cols()));
        }
        put("model.layers.1.mlp.fc.bias", TensorDType.F32, new long[] {64}, floats(data, TensorDType.F32, 64));
        put("transformer.h.0.attn.c_attn.bias", weightDtype, new long[] {40}, floats(data, weightDtype, 40));
        put("model.embed_tokens.weight", weightDtype, new long[] {50, 16}, floats(data, weightDtype, 800));
        ByteBuffer ids = ByteBuffer.allocate(33 * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 33; i++) {
            ids.putLong((long) i * 1_000_000_007L);
        }
        put("model.position_ids", TensorDType.I64, new long[] {1, 33}, ids.array());
        byte[] mask = new byte[7];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = (byte) data.nextInt(2);
        }
        put("model.mask", TensorDType.BOOL, new long[] {7}, mask);
    }

    private void put(String name, TensorDType dtype, long[] shape, byte[] raw) {
        bytes.put(name, raw);
        dtypes.put(name, dtype);
        shapes.put(name, shape);
    }

    private static byte[] floats(TestData data, TensorDType dtype, int n) {
        float[] v = data.gaussian(n);
        for (int i = 0; i < n; i++) {
            v[i] *= 0.5f;
        }
        ByteBuffer b = switch (dtype) {
            case F64 -> {
                double[] d = new double[n];
                for (int i = 0; i < n; i++) {
                    d[i] = v[i] + 1e-9 * i; // values a float cannot hold
                }
                yield TensorBytes.of(d);
            }
            case F32 -> TensorBytes.of(v);
            case F16 -> TensorBytes.of(HostArray.of(DType.FLOAT16, v));
            case BF16 -> TensorBytes.of(HostArray.of(DType.BFLOAT16, v));
            default -> throw new IllegalArgumentException(dtype.toString());
        };
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /** Writes every tensor into one safetensors file. */
    public Path writeSingle(Path file) throws IOException {
        write(file, new ArrayList<>(bytes.keySet()));
        return file;
    }

    /** Writes a two-shard checkpoint with its index into {@code dir}; returns the index. */
    public Path writeSharded(Path dir) throws IOException {
        List<String> names = new ArrayList<>(bytes.keySet());
        List<String> first = names.subList(0, names.size() / 2);
        List<String> second = names.subList(names.size() / 2, names.size());
        write(dir.resolve("model-00001-of-00002.safetensors"), first);
        write(dir.resolve("model-00002-of-00002.safetensors"), second);
        StringBuilder map = new StringBuilder();
        for (String n : names) {
            map.append(map.length() == 0 ? "" : ",\n    ").append('"').append(n).append("\": \"")
                    .append(first.contains(n) ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors")
                    .append('"');
        }
        Path index = dir.resolve("model.safetensors.index.json");
        Files.writeString(index, "{\n  \"metadata\": {\"total_size\": 1},\n  \"weight_map\": {\n    " + map + "\n  }\n}\n");
        return index;
    }

    private void write(Path file, List<String> names) throws IOException {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (String n : names) {
            entries.add(new SafetensorsWriter.Entry(n, dtypes.get(n), shapes.get(n)));
        }
        try (SafetensorsWriter w = SafetensorsWriter.create(file, entries, Map.of("format", "pt"))) {
            for (String n : names) {
                w.write(n, ByteBuffer.wrap(bytes.get(n)));
            }
            w.commit();
        }
    }

    /** An adapter for the four weights: n = 50, except 200 for the MLP through an n_frequency_pattern regex. */
    public static FourierFTAdapter adapter(TestData data, long seed, double scaling, IfftNorm norm, Path dir) throws IOException {
        FourierFTAdapter.Builder b = FourierFTAdapter.builder().randomLocSeed(seed).scaling(scaling).ifftNorm(norm);
        for (Weight w : ADAPTED) {
            b.layer(w.module(), data.gaussian(w.module().endsWith(".fc") ? 200 : 50));
        }
        b.build().save(dir);
        // PEFT users write patterns as short regexes; make the config say so, as PEFT would have saved it
        Path config = dir.resolve(FourierFTAdapterConfig.FILE);
        String json = Files.readString(config);
        json = json.replace("\"model.layers.1.mlp.fc\" : 200", "\"fc\" : 200");
        if (!json.contains("\"fc\" : 200")) {
            throw new AssertionError("fixture config not in the expected form:\n" + json);
        }
        Files.writeString(config, json);
        return FourierFTAdapter.load(dir);
    }
}
