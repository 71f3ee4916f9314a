package org.spectralpeft.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.AbstractList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.RandomAccess;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;

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

    /**
     * For streaming headers and indexes: no interning or canonical table of names (millions of tensor names
     * would fill both), and duplicates are found with {@link NameIndex} instead of the parser's per-object set.
     */
    static final JsonFactory STREAMING = jsonFactory(MAX_HEADER_BYTES);

    /**
     * A JSON factory whose names and strings may be as long as {@code maxLength}. Jackson's defaults (names of
     * 50,000 characters, strings of 20 MB) would refuse valid files: the format bounds a tensor name or a
     * {@code __metadata__} value only by the header length.
     */
    static JsonFactory jsonFactory(long maxLength) {
        int max = (int) Math.min(maxLength, Integer.MAX_VALUE);
        return JsonFactory.builder()
                .streamReadConstraints(StreamReadConstraints.builder().maxStringLength(max).maxNameLength(max).build())
                .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
                .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
                .build();
    }

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    // Tensors in data order, held in arrays rather than one object per tensor: memory follows the weights,
    // not the tensor count (a checkpoint may hold millions of small tensors). Tensor i spans
    // [begins[i], begins[i + 1]) of the data section, as the tiling check guarantees.
    private final String[] names;
    private final byte[] dtypes;
    private final long[] begins;
    private final long[] shapes;
    private final int[] shapeStarts;
    private final NameIndex index;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, FileChannel channel, long dataStart, Header h, NameIndex index,
                            Map<String, String> metadata) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.names = h.names;
        this.dtypes = h.dtypes;
        this.begins = h.begins;
        this.shapes = h.shapes;
        this.shapeStarts = h.shapeStarts;
        this.index = index;
        this.metadata = metadata;
    }

    /**
     * Opens and validates {@code path}.
     *
     * @param path a {@code .safetensors} file
     * @return the open file; close it when done
     * @throws SafetensorsException if the header is malformed, naming the file
     * @throws IOException if the file cannot be read
     */
    public static SafetensorsFile open(Path path) throws IOException {
        Checks.notNull(path, "path");
        if (Files.isDirectory(path)) {
            throw new SafetensorsException(path, "is a directory, not a safetensors file");
        }
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
            checkUtf8(path, header);
            Map<String, String> metadata = new LinkedHashMap<>();
            Header h = parseHeader(path, header.array(), (int) headerLength, metadata);
            long dataStart = 8 + headerLength;
            h = validateLayout(path, h, size - dataStart);
            Header sorted = h;
            NameIndex index = NameIndex.of(sorted.names, sorted.count, (first, second) -> {
                throw new SafetensorsException(path, "the header is not valid JSON: Duplicate field '"
                        + sorted.names[second] + "'");
            });
            return new SafetensorsFile(path, channel, dataStart, h, index, Collections.unmodifiableMap(metadata));
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static ByteBuffer readFully(FileChannel channel, Path path, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        try {
            while (buffer.hasRemaining()) {
                if (channel.read(buffer, position + buffer.position()) < 0) {
                    throw new SafetensorsException(path, "truncated while reading bytes " + position + ".." + (position + length));
                }
            }
        } catch (SafetensorsException e) {
            throw e;
        } catch (IOException e) {
            throw new SafetensorsException(path, "cannot read: " + e);
        }
        return buffer.flip();
    }

    // Strict UTF-8 (no malformed or overlong sequences, no encoded surrogates), decoded into a small reused
    // buffer: the header may be 100 MB, and a String copy of it is not needed.
    private static void checkUtf8(Path path, ByteBuffer bytes) throws SafetensorsException {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = bytes.duplicate();
        CharBuffer out = CharBuffer.allocate(1 << 14);
        while (true) {
            CoderResult r = decoder.decode(in, out, true);
            if (r.isError()) {
                throw new SafetensorsException(path, "the header is not valid UTF-8");
            }
            if (r.isUnderflow()) {
                break;
            }
            out.clear();
        }
        if (decoder.flush(out.clear()).isError()) {
            throw new SafetensorsException(path, "the header is not valid UTF-8");
        }
    }

    /** The parsed header: growable parallel arrays, one slot per tensor. */
    private static final class Header {
        int count;
        String[] names = new String[16];
        byte[] dtypes = new byte[16];
        long[] begins = new long[17];
        long[] ends = new long[16];
        long[] shapes = new long[32];
        int[] shapeStarts = new int[17];

        void add(String name, TensorDType dtype, long[] shape, int rank, long begin, long end) {
            if (count == names.length) {
                int grown = count + (count >> 1) + 16;
                names = Arrays.copyOf(names, grown);
                dtypes = Arrays.copyOf(dtypes, grown);
                begins = Arrays.copyOf(begins, grown + 1);
                ends = Arrays.copyOf(ends, grown);
                shapeStarts = Arrays.copyOf(shapeStarts, grown + 1);
            }
            int s = shapeStarts[count];
            if (s + rank > shapes.length) {
                shapes = Arrays.copyOf(shapes, Math.max(s + rank, shapes.length + (shapes.length >> 1) + 16));
            }
            System.arraycopy(shape, 0, shapes, s, rank);
            names[count] = name;
            dtypes[count] = (byte) dtype.ordinal();
            begins[count] = begin;
            ends[count] = end;
            shapeStarts[count + 1] = s + rank;
            count++;
        }
    }

    private static Header parseHeader(Path path, byte[] bytes, int length, Map<String, String> metadata)
            throws SafetensorsException {
        if (bytes[0] != '{') {
            throw new SafetensorsException(path, "the header does not start with '{' (not a safetensors file?)");
        }
        Header h = new Header();
        long[] shape = new long[8];
        try (JsonParser p = STREAMING.createParser(bytes, 0, length)) {
            p.nextToken(); // START_OBJECT
            boolean sawMetadata = false;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken value = p.nextToken();
                if (name.equals(METADATA_KEY)) {
                    if (sawMetadata) {
                        throw new SafetensorsException(path, "the header is not valid JSON: Duplicate field '" + name + "'");
                    }
                    sawMetadata = true;
                    parseMetadata(path, p, value, metadata);
                    continue;
                }
                if (value != JsonToken.START_OBJECT) {
                    throw new SafetensorsException(path, name, "header entry is not a JSON object");
                }
                String dtypeTag = null;
                boolean dtypeSeen = false;
                int rank = -1;
                long begin = -1;
                long end = -1;
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String field = p.currentName();
                    JsonToken v = p.nextToken();
                    switch (field) {
                        case "dtype" -> {
                            if (dtypeSeen) {
                                throw duplicate(path, field);
                            }
                            dtypeSeen = true;
                            dtypeTag = v == JsonToken.VALUE_STRING ? p.getText() : null;
                            p.skipChildren();
                        }
                        case "shape" -> {
                            if (rank >= 0) {
                                throw duplicate(path, field);
                            }
                            if (v != JsonToken.START_ARRAY) {
                                throw new SafetensorsException(path, name, "missing or non-array \"shape\"");
                            }
                            rank = 0;
                            while (p.nextToken() != JsonToken.END_ARRAY) {
                                if (rank == shape.length) {
                                    shape = Arrays.copyOf(shape, 2 * rank);
                                }
                                shape[rank] = nonNegative(path, name, p, "shape", rank);
                                rank++;
                            }
                        }
                        case "data_offsets" -> {
                            if (begin >= 0) {
                                throw duplicate(path, field);
                            }
                            if (v != JsonToken.START_ARRAY) {
                                throw new SafetensorsException(path, name, "missing or non-array \"data_offsets\"");
                            }
                            long[] offsets = new long[2];
                            int k = 0;
                            while (p.nextToken() != JsonToken.END_ARRAY) {
                                long o = nonNegative(path, name, p, "data_offsets", k);
                                if (k < 2) {
                                    offsets[k] = o;
                                }
                                k++;
                            }
                            if (k != 2) {
                                throw new SafetensorsException(path, name, "\"data_offsets\" has " + k + " entries, not 2");
                            }
                            begin = offsets[0];
                            end = offsets[1];
                        }
                        default -> p.skipChildren();
                    }
                }
                if (dtypeTag == null) {
                    throw new SafetensorsException(path, name, "missing or non-string \"dtype\"");
                }
                String tag = dtypeTag;
                TensorDType dtype = TensorDType.ofTag(tag).orElseThrow(() -> new SafetensorsException(
                        path, name, "unknown dtype \"" + tag + "\""));
                if (rank < 0) {
                    throw new SafetensorsException(path, name, "missing or non-array \"shape\"");
                }
                if (begin < 0) {
                    throw new SafetensorsException(path, name, "missing or non-array \"data_offsets\"");
                }
                checkEntry(path, name, dtype, Arrays.copyOf(shape, rank), begin, end);
                h.add(name, dtype, shape, rank, begin, end);
            }
            if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
                // content after the header object (other than whitespace padding) is invalid JSON, not ignorable
                throw new SafetensorsException(path, "the header is not valid JSON: content after the header object");
            }
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new SafetensorsException(path, "the header is not valid JSON: " + e.getOriginalMessage());
        } catch (SafetensorsException e) {
            throw e;
        } catch (IOException e) {
            throw new SafetensorsException(path, "the header cannot be parsed: " + e);
        }
        return h;
    }

    private static SafetensorsException duplicate(Path path, String field) {
        return new SafetensorsException(path, "the header is not valid JSON: Duplicate field '" + field + "'");
    }

    private static void parseMetadata(Path path, JsonParser p, JsonToken value, Map<String, String> metadata)
            throws IOException {
        if (value != JsonToken.START_OBJECT) {
            throw new SafetensorsException(path, "__metadata__ is not a JSON object");
        }
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String key = p.currentName();
            if (p.nextToken() != JsonToken.VALUE_STRING) {
                throw new SafetensorsException(path, "__metadata__ value of '" + key + "' is not a string");
            }
            if (metadata.put(key, p.getText()) != null) {
                throw duplicate(path, key);
            }
        }
    }

    private static long nonNegative(Path path, String name, JsonParser p, String field, int i) throws IOException {
        if (p.currentToken() != JsonToken.VALUE_NUMBER_INT || p.getNumberType() == JsonParser.NumberType.BIG_INTEGER
                || p.getLongValue() < 0) {
            String text = p.currentToken() == JsonToken.VALUE_STRING ? "\"" + p.getText() + "\"" : p.getText();
            p.skipChildren();
            throw new SafetensorsException(path, name, "\"" + field + "\" entry " + i + " (" + text
                    + ") is not a non-negative integer");
        }
        return p.getLongValue();
    }

    private static void checkEntry(Path path, String name, TensorDType dtype, long[] shape, long begin, long end)
            throws SafetensorsException {
        if (begin > end) {
            throw new SafetensorsException(path, name, "data_offsets [" + begin + ", " + end + "] end before they begin");
        }
        long elements = 1;
        for (long d : shape) {
            if (d != 0 && elements > Long.MAX_VALUE / 8 / d) {
                throw new SafetensorsException(path, name, "shape " + Arrays.toString(shape) + " overflows");
            }
            elements *= d;
        }
        long expected = elements * dtype.bytes();
        if (end - begin != expected) {
            throw new SafetensorsException(path, name, "data_offsets [" + begin + ", " + end + "] span "
                    + (end - begin) + " bytes but " + dtype + Arrays.toString(shape) + " needs " + expected);
        }
    }

    // Tensors must tile [0, dataLength) exactly: sorted by offset, each begins where the previous ends.
    // Returns the header reordered into data order (ties, zero-length tensors, keep their header order).
    private static Header validateLayout(Path path, Header h, long dataLength) throws SafetensorsException {
        int n = h.count;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        long[] b = h.begins;
        long[] e = h.ends;
        Arrays.sort(order, (x, y) -> b[x] != b[y] ? Long.compare(b[x], b[y]) : Long.compare(e[x], e[y]));
        long cursor = 0;
        int previous = -1;
        for (int k = 0; k < n; k++) {
            int t = order[k];
            if (b[t] < cursor) {
                throw new SafetensorsException(path, h.names[t], "bytes [" + b[t] + ", " + e[t]
                        + ") overlap tensor '" + h.names[previous] + "' [" + b[previous] + ", " + e[previous] + ")");
            }
            if (b[t] > cursor) {
                throw new SafetensorsException(path, h.names[t], "begins at byte " + b[t]
                        + " but the previous tensor ends at " + cursor + " (a gap in the data section)");
            }
            cursor = e[t];
            previous = t;
        }
        if (cursor > dataLength) {
            throw new SafetensorsException(path, h.names[previous], "truncated: data ends at byte " + cursor
                    + " of the data section but the file holds only " + dataLength);
        }
        if (cursor < dataLength) {
            throw new SafetensorsException(path, (dataLength - cursor) + " bytes after the last tensor (data ends at "
                    + cursor + " of " + dataLength + ")");
        }
        Header sorted = new Header();
        sorted.count = n;
        sorted.names = new String[n];
        sorted.dtypes = new byte[n];
        sorted.begins = new long[n + 1];
        sorted.ends = null;
        sorted.shapeStarts = new int[n + 1];
        sorted.shapes = new long[h.shapeStarts[n]];
        for (int k = 0; k < n; k++) {
            int t = order[k];
            sorted.names[k] = h.names[t];
            sorted.dtypes[k] = h.dtypes[t];
            sorted.begins[k] = b[t];
            int rank = h.shapeStarts[t + 1] - h.shapeStarts[t];
            System.arraycopy(h.shapes, h.shapeStarts[t], sorted.shapes, sorted.shapeStarts[k], rank);
            sorted.shapeStarts[k + 1] = sorted.shapeStarts[k] + rank;
        }
        sorted.begins[n] = cursor;
        return sorted;
    }

    private static final TensorDType[] DTYPES = TensorDType.values();

    /**
     * Number of tensors.
     *
     * @return number of tensors
     */
    public int tensorCount() {
        return names.length;
    }

    /**
     * The name of tensor {@code i} in data order (no {@link TensorInfo} is built).
     *
     * @param i the tensor's position, 0 ≤ i &lt; tensorCount()
     * @return its name
     */
    public String tensorName(int i) {
        return names[i];
    }

    /**
     * Tensor {@code i} in data order.
     *
     * @param i the tensor's position, 0 ≤ i &lt; tensorCount()
     * @return its entry
     */
    public TensorInfo tensor(int i) {
        return new TensorInfo(names[i], DTYPES[dtypes[i]],
                Arrays.copyOfRange(shapes, shapeStarts[i], shapeStarts[i + 1]), begins[i], begins[i + 1]);
    }

    /**
     * The file this was opened from.
     *
     * @return the path
     */
    public Path path() {
        return path;
    }

    /**
     * Every tensor, in data-section order: an unmodifiable view that builds each entry as it is read.
     *
     * @return the tensors
     */
    public List<TensorInfo> tensors() {
        return new TensorList();
    }

    private final class TensorList extends AbstractList<TensorInfo> implements RandomAccess {
        @Override
        public TensorInfo get(int i) {
            return tensor(i);
        }

        @Override
        public int size() {
            return names.length;
        }
    }

    /**
     * The position of tensor {@code name} in data order, or -1.
     *
     * @param name the tensor's name
     * @return its position, or -1 if the file has no such tensor
     * @throws IllegalArgumentException if {@code name} is null
     */
    public int indexOf(String name) {
        return index.find(Checks.notNull(name, "name"));
    }

    /**
     * The tensor named {@code name}.
     *
     * @param name the tensor's name
     * @return its entry, or empty if the file has no such tensor
     * @throws IllegalArgumentException if {@code name} is null
     */
    public Optional<TensorInfo> find(String name) {
        int i = indexOf(name);
        return i < 0 ? Optional.empty() : Optional.of(tensor(i));
    }

    /**
     * The tensor named {@code name}; an exception naming the file if there is none.
     *
     * @param name the tensor's name
     * @return its entry
     * @throws SafetensorsException if there is no such tensor
     */
    public TensorInfo tensor(String name) throws SafetensorsException {
        int i = indexOf(name);
        if (i < 0) {
            throw new SafetensorsException(path, name, "no such tensor");
        }
        return tensor(i);
    }

    /**
     * The {@code __metadata__} map (empty if absent).
     *
     * @return the metadata, name to value
     */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Size of the data section in bytes.
     *
     * @return the byte count after the header
     * @throws IOException if the file size cannot be read
     */
    public long dataLength() throws IOException {
        return channel.size() - dataStart;
    }

    /**
     * The tensor's bytes as a read-only little-endian memory map. Tensors over 2 GiB cannot be mapped in one
     * buffer; use {@link #transferTo} or the chunked readers for those.
     *
     * @param t a tensor of this file
     * @return the mapped bytes
     * @throws SafetensorsException if the tensor exceeds 2 GiB or cannot be mapped
     * @throws IOException if the file cannot be read
     */
    public ByteBuffer map(TensorInfo t) throws IOException {
        Checks.notNull(t, "t");
        if (t.byteLength() > Integer.MAX_VALUE) {
            throw new SafetensorsException(path, t.name(), t.byteLength() + " bytes are too many for one buffer");
        }
        return mapRange(t, 0, t.byteLength());
    }

    private ByteBuffer mapRange(TensorInfo t, long offset, long length) throws IOException {
        checkIntact(t);
        try {
            return channel.map(FileChannel.MapMode.READ_ONLY, dataStart + t.begin() + offset, length)
                    .order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new SafetensorsException(path, t.name(), "cannot map: " + e);
        }
    }

    // A file shortened after it was opened would fail a read with an error that names no file, or a mapped
    // access with a bus error (an InternalError); checked before each read, and caught where a race remains.
    private void checkIntact(TensorInfo t) throws IOException {
        long size;
        try {
            size = channel.size();
        } catch (IOException e) {
            throw new SafetensorsException(path, t.name(), "cannot read: " + e);
        }
        if (size < dataStart + t.end()) {
            throw truncated(t, size);
        }
    }

    private SafetensorsException truncated(TensorInfo t, long size) {
        return new SafetensorsException(path, t.name(), "the file was truncated since it was opened: the tensor ends at byte "
                + (dataStart + t.end()) + " but the file now has " + size);
    }

    private SafetensorsException readFailure(TensorInfo t, Throwable e) {
        long size = -1;
        try {
            size = channel.size();
        } catch (IOException ignored) {
            // the size only refines the message
        }
        return size >= 0 && size < dataStart + t.end() ? truncated(t, size)
                : new SafetensorsException(path, t.name(), "cannot read: " + e);
    }

    /**
     * Copies the tensor's bytes, unchanged, to {@code target}.
     *
     * @param t a tensor of this file
     * @param target where the bytes go
     * @throws IOException if reading or writing fails
     */
    public void transferTo(TensorInfo t, WritableByteChannel target) throws IOException {
        Checks.notNull(t, "t");
        Checks.notNull(target, "target");
        checkIntact(t);
        long position = dataStart + t.begin();
        long remaining = t.byteLength();
        while (remaining > 0) {
            long moved = channel.transferTo(position, remaining, target);
            if (moved <= 0) {
                // transferTo may move nothing on some channels (or past a truncated end); fall back to a mapped write
                checkIntact(t);
                ByteBuffer chunk;
                try {
                    chunk = channel.map(FileChannel.MapMode.READ_ONLY, position, Math.min(remaining, MAP_CHUNK));
                } catch (IOException e) {
                    throw readFailure(t, e);
                }
                try {
                    while (chunk.hasRemaining()) {
                        moved += target.write(chunk);
                    }
                } catch (InternalError e) {
                    throw readFailure(t, e);
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
            ByteBuffer mapped = mapRange(t, offset, length);
            try {
                consumer.accept(mapped, (int) (offset / t.dtype().bytes()));
            } catch (InternalError e) { // a bus error: the mapped range is gone
                throw readFailure(t, e);
            }
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

    /**
     * The tensor's values as float32 (F64 values are rounded).
     *
     * @param t a floating-point tensor of this file (F32, F16, BF16 or F64)
     * @return its elements, row-major
     * @throws SafetensorsException if the dtype is not floating point or the tensor does not fit one array
     * @throws IOException if the file cannot be read
     */
    public float[] readFloats(TensorInfo t) throws IOException {
        Checks.notNull(t, "t");
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

    /**
     * The tensor's values as float64 (exact for every floating-point type).
     *
     * @param t a floating-point tensor of this file (F32, F16, BF16 or F64)
     * @return its elements, row-major
     * @throws SafetensorsException if the dtype is not floating point or the tensor does not fit one array
     * @throws IOException if the file cannot be read
     */
    public double[] readDoubles(TensorInfo t) throws IOException {
        Checks.notNull(t, "t");
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

    /**
     * The tensor as a {@link HostArray} in its own dtype (F32, F16 or BF16), ready for a backend.
     *
     * @param t an F32, F16 or BF16 tensor of this file
     * @return its elements, row-major, wrapped without a further copy
     * @throws SafetensorsException if the dtype is another one or the tensor does not fit one array
     * @throws IOException if the file cannot be read
     */
    public HostArray readHostArray(TensorInfo t) throws IOException {
        Checks.notNull(t, "t");
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
