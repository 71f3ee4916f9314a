package org.spectralpeft.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.spectralpeft.api.DType;
import org.spectralpeft.api.HostArray;

/**
 * A safetensors file opened for reading: an 8-byte little-endian header length, a UTF-8 JSON header
 * ({@code name → {dtype, shape, data_offsets}} plus an optional {@code __metadata__} string map), then the
 * data section. The whole layout is validated on open — header length, JSON, known dtypes, offsets
 * consistent with shapes, tensors tiling the data section with no gap or overlap, file size — so a bad
 * file fails with an exception naming the file and the tensor, never with a partial read later.
 *
 * <p>Tensor data is read through read-only memory maps of the tensor's byte range. Safe for concurrent
 * reads; {@link #close()} closes the file.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** Headers larger than this are refused (the reference implementation's limit). */
    public static final long MAX_HEADER_BYTES = 100L << 20;
    private static final String METADATA_KEY = "__metadata__";
    private static final long MAP_CHUNK = 1L << 30;

    static final ObjectMapper JSON = JsonMapper.builder(jsonFactory(MAX_HEADER_BYTES))
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            // content after the header object (other than space padding) is invalid JSON, not ignorable
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    /**
     * A JSON factory whose names and strings may be as long as {@code maxLength}. Jackson's defaults (names of
     * 50,000 characters, strings of 20 MB) would refuse valid files: the format bounds a tensor name or a
     * {@code __metadata__} value only by the header length.
     */
    static com.fasterxml.jackson.core.JsonFactory jsonFactory(long maxLength) {
        int max = (int) Math.min(maxLength, Integer.MAX_VALUE);
        return com.fasterxml.jackson.core.JsonFactory.builder()
                .streamReadConstraints(StreamReadConstraints.builder().maxStringLength(max).maxNameLength(max).build())
                .build();
    }

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, FileChannel channel, long dataStart, Map<String, TensorInfo> tensors,
                            Map<String, String> metadata) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Opens and validates {@code path}. */
    public static SafetensorsFile open(Path path) throws IOException {
        FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new SafetensorsException(path, "cannot open: " + e);
        }
        try {
            long size = channel.size();
            if (size < 8) {
                throw new SafetensorsException(path, "truncated: " + size + " bytes, shorter than the 8-byte header length");
            }
            ByteBuffer lengthBytes = readFully(channel, path, 0, 8).order(ByteOrder.LITTLE_ENDIAN);
            long headerLength = lengthBytes.getLong(0);
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
                throw new SafetensorsException(path, "header length " + Long.toUnsignedString(headerLength)
                        + " is not in [2, " + MAX_HEADER_BYTES + "] (not a safetensors file?)");
            }
            if (8 + headerLength > size) {
                throw new SafetensorsException(path, "truncated: the header claims " + headerLength
                        + " bytes but the file has only " + (size - 8) + " after the length");
            }
            ByteBuffer header = readFully(channel, path, 8, (int) headerLength);
            Map<String, String> metadata = new LinkedHashMap<>();
            List<TensorInfo> list = parseHeader(path, decodeUtf8(path, header), metadata);
            long dataStart = 8 + headerLength;
            Map<String, TensorInfo> byName = validateLayout(path, list, size - dataStart);
            return new SafetensorsFile(path, channel, dataStart, byName, Collections.unmodifiableMap(metadata));
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static ByteBuffer readFully(FileChannel channel, Path path, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) {
                throw new SafetensorsException(path, "truncated while reading bytes " + position + ".." + (position + length));
            }
        }
        return buffer.flip();
    }

    private static String decodeUtf8(Path path, ByteBuffer bytes) throws SafetensorsException {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes).toString();
        } catch (CharacterCodingException e) {
            throw new SafetensorsException(path, "the header is not valid UTF-8");
        }
    }

    private static List<TensorInfo> parseHeader(Path path, String text, Map<String, String> metadata)
            throws SafetensorsException {
        if (!text.startsWith("{")) {
            throw new SafetensorsException(path, "the header does not start with '{' (not a safetensors file?)");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new SafetensorsException(path, "the header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsException(path, "the header is not a JSON object");
        }
        List<TensorInfo> list = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            String name = field.getKey();
            JsonNode node = field.getValue();
            if (name.equals(METADATA_KEY)) {
                if (!node.isObject()) {
                    throw new SafetensorsException(path, "__metadata__ is not a JSON object");
                }
                for (Iterator<Map.Entry<String, JsonNode>> m = node.fields(); m.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = m.next();
                    if (!e.getValue().isTextual()) {
                        throw new SafetensorsException(path, "__metadata__ value of '" + e.getKey() + "' is not a string");
                    }
                    metadata.put(e.getKey(), e.getValue().textValue());
                }
                continue;
            }
            list.add(parseEntry(path, name, node));
        }
        return list;
    }

    private static TensorInfo parseEntry(Path path, String name, JsonNode node) throws SafetensorsException {
        if (!node.isObject()) {
            throw new SafetensorsException(path, name, "header entry is not a JSON object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new SafetensorsException(path, name, "missing or non-string \"dtype\"");
        }
        TensorDType dtype = TensorDType.ofTag(dtypeNode.textValue()).orElseThrow(() -> new SafetensorsException(
                path, name, "unknown dtype \"" + dtypeNode.textValue() + "\""));
        long[] shape = longArray(path, name, node.get("shape"), "shape", -1);
        long[] offsets = longArray(path, name, node.get("data_offsets"), "data_offsets", 2);
        if (offsets[0] > offsets[1]) {
            throw new SafetensorsException(path, name, "data_offsets [" + offsets[0] + ", " + offsets[1] + "] end before they begin");
        }
        long elements = 1;
        for (long d : shape) {
            if (d != 0 && elements > Long.MAX_VALUE / 8 / d) {
                throw new SafetensorsException(path, name, "shape " + java.util.Arrays.toString(shape) + " overflows");
            }
            elements *= d;
        }
        long expected = elements * dtype.bytes();
        if (offsets[1] - offsets[0] != expected) {
            throw new SafetensorsException(path, name, "data_offsets [" + offsets[0] + ", " + offsets[1] + "] span "
                    + (offsets[1] - offsets[0]) + " bytes but " + dtype + java.util.Arrays.toString(shape)
                    + " needs " + expected);
        }
        return new TensorInfo(name, dtype, shape, offsets[0], offsets[1]);
    }

    private static long[] longArray(Path path, String name, JsonNode node, String field, int requiredLength)
            throws SafetensorsException {
        if (node == null || !node.isArray()) {
            throw new SafetensorsException(path, name, "missing or non-array \"" + field + "\"");
        }
        if (requiredLength >= 0 && node.size() != requiredLength) {
            throw new SafetensorsException(path, name, "\"" + field + "\" has " + node.size() + " entries, not " + requiredLength);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new SafetensorsException(path, name, "\"" + field + "\" entry " + i + " (" + v + ") is not a non-negative integer");
            }
            out[i] = v.longValue();
        }
        return out;
    }

    // Tensors must tile [0, dataLength) exactly: sorted by offset, each begins where the previous ends.
    private static Map<String, TensorInfo> validateLayout(Path path, List<TensorInfo> list, long dataLength)
            throws SafetensorsException {
        List<TensorInfo> sorted = new ArrayList<>(list);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long cursor = 0;
        TensorInfo previous = null;
        for (TensorInfo t : sorted) {
            if (t.begin() < cursor) {
                throw new SafetensorsException(path, t.name(), "bytes [" + t.begin() + ", " + t.end()
                        + ") overlap tensor '" + previous.name() + "' [" + previous.begin() + ", " + previous.end() + ")");
            }
            if (t.begin() > cursor) {
                throw new SafetensorsException(path, t.name(), "begins at byte " + t.begin()
                        + " but the previous tensor ends at " + cursor + " (a gap in the data section)");
            }
            cursor = t.end();
            previous = t;
        }
        if (cursor > dataLength) {
            throw new SafetensorsException(path, previous.name(), "truncated: data ends at byte " + cursor
                    + " of the data section but the file holds only " + dataLength);
        }
        if (cursor < dataLength) {
            throw new SafetensorsException(path, (dataLength - cursor) + " bytes after the last tensor (data ends at "
                    + cursor + " of " + dataLength + ")");
        }
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (TensorInfo t : sorted) {
            byName.put(t.name(), t);
        }
        return Collections.unmodifiableMap(byName);
    }

    public Path path() {
        return path;
    }

    /** Every tensor, in data-section order. */
    public List<TensorInfo> tensors() {
        return List.copyOf(tensors.values());
    }

    public Optional<TensorInfo> find(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    /** The tensor named {@code name}; an exception naming the file if there is none. */
    public TensorInfo tensor(String name) throws SafetensorsException {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new SafetensorsException(path, name, "no such tensor");
        }
        return t;
    }

    /** The {@code __metadata__} map (empty if absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Size of the data section in bytes. */
    public long dataLength() throws IOException {
        return channel.size() - dataStart;
    }

    /**
     * The tensor's bytes as a read-only little-endian memory map. Tensors over 2 GiB cannot be mapped in one
     * buffer; use {@link #transferTo} or the chunked readers for those.
     */
    public ByteBuffer map(TensorInfo t) throws IOException {
        if (t.byteLength() > Integer.MAX_VALUE) {
            throw new SafetensorsException(path, t.name(), t.byteLength() + " bytes are too many for one buffer");
        }
        return mapRange(t, 0, t.byteLength());
    }

    private ByteBuffer mapRange(TensorInfo t, long offset, long length) throws IOException {
        return channel.map(FileChannel.MapMode.READ_ONLY, dataStart + t.begin() + offset, length)
                .order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Copies the tensor's bytes, unchanged, to {@code target}. */
    public void transferTo(TensorInfo t, WritableByteChannel target) throws IOException {
        long position = dataStart + t.begin();
        long remaining = t.byteLength();
        while (remaining > 0) {
            long moved = channel.transferTo(position, remaining, target);
            if (moved <= 0) {
                // transferTo may move nothing on some channels; fall back to a mapped write
                ByteBuffer chunk = channel.map(FileChannel.MapMode.READ_ONLY, position, Math.min(remaining, MAP_CHUNK));
                while (chunk.hasRemaining()) {
                    moved += target.write(chunk);
                }
            }
            position += moved;
            remaining -= moved;
        }
    }

    /** Calls {@code consumer} on consecutive mapped chunks of at most 1 GiB (whole elements) of the tensor. */
    private void forEachChunk(TensorInfo t, ChunkConsumer consumer) throws IOException {
        long chunk = MAP_CHUNK - MAP_CHUNK % t.dtype().bytes();
        for (long offset = 0; offset < t.byteLength(); offset += chunk) {
            long length = Math.min(chunk, t.byteLength() - offset);
            consumer.accept(mapRange(t, offset, length), (int) (offset / t.dtype().bytes()));
        }
    }

    private interface ChunkConsumer {
        void accept(ByteBuffer chunk, int firstElement) throws IOException;
    }

    private int checkedElementCount(TensorInfo t) throws SafetensorsException {
        if (t.elementCount() > Integer.MAX_VALUE - 8) {
            throw new SafetensorsException(path, t.name(), t.elementCount() + " elements do not fit one Java array");
        }
        return (int) t.elementCount();
    }

    private void requireFloatingPoint(TensorInfo t) throws SafetensorsException {
        if (!t.dtype().isFloatingPoint()) {
            throw new SafetensorsException(path, t.name(), "dtype " + t.dtype() + " is not a floating-point type (F32, F16, BF16, F64)");
        }
    }

    /** The tensor's values as float32 (F64 values are rounded). */
    public float[] readFloats(TensorInfo t) throws IOException {
        requireFloatingPoint(t);
        float[] out = new float[checkedElementCount(t)];
        DType half = t.dtype() == TensorDType.F16 ? DType.FLOAT16 : DType.BFLOAT16; // used for F16/BF16 only
        forEachChunk(t, (chunk, first) -> {
            int count = chunk.remaining() / t.dtype().bytes();
            switch (t.dtype()) {
                case F32 -> chunk.asFloatBuffer().get(out, first, count);
                case F64 -> {
                    var doubles = chunk.asDoubleBuffer();
                    for (int i = 0; i < count; i++) {
                        out[first + i] = (float) doubles.get(i);
                    }
                }
                default -> {
                    var shorts = chunk.asShortBuffer();
                    for (int i = 0; i < count; i++) {
                        out[first + i] = half.decode(shorts.get(i));
                    }
                }
            }
        });
        return out;
    }

    /** The tensor's values as float64 (exact for every floating-point type). */
    public double[] readDoubles(TensorInfo t) throws IOException {
        requireFloatingPoint(t);
        if (t.dtype() != TensorDType.F64) {
            float[] f = readFloats(t);
            double[] out = new double[f.length];
            for (int i = 0; i < f.length; i++) {
                out[i] = f[i];
            }
            return out;
        }
        double[] out = new double[checkedElementCount(t)];
        forEachChunk(t, (chunk, first) -> chunk.asDoubleBuffer().get(out, first, chunk.remaining() / 8));
        return out;
    }

    /** The tensor as a {@link HostArray} in its own dtype (F32, F16 or BF16), ready for a backend. */
    public HostArray readHostArray(TensorInfo t) throws IOException {
        DType dtype = t.dtype().computeType().orElseThrow(() -> new SafetensorsException(path, t.name(),
                "dtype " + t.dtype() + " is not one of F32, F16, BF16"));
        if (dtype == DType.FLOAT32) {
            return HostArray.float32(readFloats(t));
        }
        short[] bits = new short[checkedElementCount(t)];
        forEachChunk(t, (chunk, first) -> chunk.asShortBuffer().get(bits, first, chunk.remaining() / 2));
        return dtype == DType.FLOAT16 ? HostArray.float16(bits) : HostArray.bfloat16(bits);
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    @Override
    public String toString() {
        return path.toString();
    }
}
