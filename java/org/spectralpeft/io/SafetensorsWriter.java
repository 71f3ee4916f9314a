package org.spectralpeft.io;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.spectralpeft.api.DType;
import org.spectralpeft.api.HostArray;

/**
 * Writes a safetensors file tensor by tensor, so a model can be streamed through with bounded memory.
 * The header (names, dtypes, shapes, offsets) is fixed up front from the list of entries; tensors are then
 * written in that order. Output goes to a temporary file beside the target and replaces the target only
 * on {@link #commit()}: a failed or abandoned write leaves no partial file behind.
 *
 * <p>The header is padded with spaces to a multiple of 8 bytes, so every tensor's data is 8-byte aligned
 * when the entries are ordered by decreasing element size (as the reference writer does). Not thread-safe.
 */
public final class SafetensorsWriter implements AutoCloseable {
    private static final int CHUNK_BYTES = 1 << 20;

    /** One tensor of the file to be written. */
    public record Entry(String name, TensorDType dtype, long[] shape) {
        public Entry {
            shape = shape.clone();
        }

        public static Entry of(TensorInfo t) {
            return new Entry(t.name(), t.dtype(), t.shape());
        }

        long byteLength() {
            long n = dtype.bytes();
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }
    }

    private final Path target;
    private final AtomicFiles.Partial partial;
    private final FileChannel channel;
    private final List<Entry> entries;
    private ByteBuffer chunk;
    private int next;
    private boolean committed;
    private boolean closed;

    private SafetensorsWriter(Path target, AtomicFiles.Partial partial, List<Entry> entries) {
        this.target = target;
        this.partial = partial;
        this.channel = partial.channel();
        this.entries = entries;
    }

    /** Starts writing {@code target} with these tensors, in this order, and this {@code __metadata__}. */
    public static SafetensorsWriter create(Path target, List<Entry> entries, Map<String, String> metadata)
            throws IOException {
        Set<String> names = new HashSet<>();
        for (Entry e : entries) {
            if (e.name().equals("__metadata__") || !names.add(e.name())) {
                throw new IllegalArgumentException("tensor name '" + e.name() + "' is reserved or repeated");
            }
            for (long d : e.shape()) {
                if (d < 0) {
                    throw new IllegalArgumentException("tensor '" + e.name() + "' has a negative dimension");
                }
            }
        }
        byte[] header = header(entries, metadata);
        AtomicFiles.Partial partial = AtomicFiles.createSibling(target);
        FileChannel channel = partial.channel();
        try {
            ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            writeFully(channel, prefix);
            writeFully(channel, ByteBuffer.wrap(header));
            return new SafetensorsWriter(target, partial, List.copyOf(entries));
        } catch (IOException | RuntimeException e) {
            AtomicFiles.discard(partial);
            throw e;
        }
    }

    private static byte[] header(List<Entry> entries, Map<String, String> metadata) {
        ObjectNode root = SafetensorsFile.JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Entry e : entries) {
            ObjectNode node = root.putObject(e.name());
            node.put("dtype", e.dtype().tag());
            ArrayNode shape = node.putArray("shape");
            for (long d : e.shape()) {
                shape.add(d);
            }
            long end = offset + e.byteLength();
            node.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json = root.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] out = java.util.Arrays.copyOf(json, padded);
        java.util.Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    private Entry expect(String name, long bytes) {
        if (closed || committed) {
            throw new IllegalStateException("the writer for " + target + " is closed");
        }
        if (next >= entries.size()) {
            throw new IllegalStateException("all " + entries.size() + " tensors are written; '" + name + "' is extra");
        }
        Entry e = entries.get(next);
        if (!e.name().equals(name)) {
            throw new IllegalStateException("expected tensor '" + e.name() + "' next, got '" + name + "'");
        }
        if (bytes != e.byteLength()) {
            throw new IllegalArgumentException("tensor '" + name + "' needs " + e.byteLength() + " bytes, got " + bytes);
        }
        return e;
    }

    /** Writes the next tensor's raw little-endian bytes (the buffer's remaining bytes). */
    public void write(String name, ByteBuffer bytes) throws IOException {
        expect(name, bytes.remaining());
        writeFully(channel, bytes.duplicate());
        next++;
    }

    /** Copies the next tensor byte for byte from a tensor of another file (same dtype and shape). */
    public void copy(String name, SafetensorsFile source, TensorInfo tensor) throws IOException {
        Entry e = expect(name, tensor.byteLength());
        if (e.dtype() != tensor.dtype() || !java.util.Arrays.equals(e.shape(), tensor.shape())) {
            throw new IllegalArgumentException("tensor '" + name + "' is " + e.dtype() + java.util.Arrays.toString(e.shape())
                    + " but the source is " + tensor.dtype() + tensor.shapeString());
        }
        source.transferTo(tensor, channel);
        next++;
    }

    /** Writes the next tensor from a host array of the entry's dtype (F32, F16 or BF16). */
    public void write(String name, HostArray values) throws IOException {
        int n = values.length();
        expectTyped(name, TensorDType.of(values.dtype()), (long) n * values.dtype().bytes());
        if (values.dtype() == DType.FLOAT32) {
            float[] f = values.floats();
            streamElements(n, 4, (buf, from, count) -> buf.asFloatBuffer().put(f, from, count));
        } else {
            short[] h = values.halves();
            streamElements(n, 2, (buf, from, count) -> buf.asShortBuffer().put(h, from, count));
        }
        next++;
    }

    /** Writes the next tensor, an F64 one, from doubles. */
    public void write(String name, double[] values) throws IOException {
        expectTyped(name, TensorDType.F64, 8L * values.length);
        streamElements(values.length, 8, (buf, from, count) -> buf.asDoubleBuffer().put(values, from, count));
        next++;
    }

    private interface ChunkFill {
        void fill(ByteBuffer buffer, int from, int count);
    }

    // Encodes the elements chunk by chunk into one reused direct buffer and writes each chunk. A heap image
    // of the whole tensor would cost a second full-size copy, and the channel would copy it again into a
    // temporary direct buffer of the same size.
    private void streamElements(int count, int elementBytes, ChunkFill fill) throws IOException {
        if (chunk == null) {
            chunk = ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        }
        int perChunk = CHUNK_BYTES / elementBytes;
        for (long from = 0; from < count; from += perChunk) { // long: from + perChunk may pass 2^31
            int k = (int) Math.min(perChunk, count - from);
            chunk.clear();
            fill.fill(chunk, (int) from, k);
            chunk.limit(k * elementBytes);
            writeFully(channel, chunk);
        }
    }

    private void expectTyped(String name, TensorDType dtype, long bytes) {
        Entry e = expect(name, bytes);
        if (e.dtype() != dtype) {
            throw new IllegalArgumentException("tensor '" + name + "' is " + e.dtype() + " but the values are " + dtype);
        }
    }

    /** Checks every tensor was written, flushes, and moves the file into place (atomically where supported). */
    public void commit() throws IOException {
        if (closed || committed) {
            throw new IllegalStateException("the writer for " + target + " is closed");
        }
        if (next != entries.size()) {
            throw new IllegalStateException("only " + next + " of " + entries.size() + " tensors were written; next is '"
                    + entries.get(next).name() + "'");
        }
        channel.force(true);
        AtomicFiles.moveIntoPlace(partial, target);
        committed = true;
    }

    /** Without a prior {@link #commit()}, discards everything written. Idempotent. */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        if (!committed) {
            AtomicFiles.discard(partial);
        }
    }
}
