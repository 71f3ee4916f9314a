package org.spectralpeft.io;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;

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

    /**
     * One tensor of the file to be written.
     *
     * @param name the tensor's name
     * @param dtype its element type
     * @param shape its dimensions, outermost first
     */
    public record Entry(String name, TensorDType dtype, long[] shape) {
        /**
         * Copies the shape.
         *
         * @param name the tensor's name
         * @param dtype its element type
         * @param shape its dimensions, outermost first (copied)
         */
        public Entry {
            shape = shape.clone();
        }

        /**
         * An entry with the name, dtype and shape of an existing tensor.
         *
         * @param t the tensor
         * @return the entry
         */
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
    private final Plan plan;
    private ByteBuffer chunk;
    private int next;
    private boolean committed;
    private boolean closed;

    private SafetensorsWriter(Path target, AtomicFiles.Partial partial, Plan plan) {
        this.target = target;
        this.partial = partial;
        this.channel = partial.channel();
        this.plan = plan;
    }

    /**
     * The entries, copied into arrays: a model with millions of small tensors would otherwise hold an object
     * per tensor (and the caller's list may be a view that builds each entry on demand).
     */
    private static final class Plan {
        final String[] names;
        final byte[] dtypes;
        final long[] byteLengths;
        final long[] shapes;
        final int[] shapeStarts;

        Plan(List<Entry> entries) {
            int n = entries.size();
            names = new String[n];
            dtypes = new byte[n];
            byteLengths = new long[n];
            shapeStarts = new int[n + 1];
            long[] s = new long[Math.max(16, 2 * n)];
            for (int i = 0; i < n; i++) {
                Entry e = Checks.notNull(entries.get(i), "entries[" + i + "]");
                for (long d : e.shape) {
                    if (d < 0) {
                        throw new IllegalArgumentException("tensor '" + e.name() + "' has a negative dimension");
                    }
                }
                names[i] = e.name();
                dtypes[i] = (byte) e.dtype().ordinal();
                byteLengths[i] = e.byteLength();
                int at = shapeStarts[i];
                if (at + e.shape.length > s.length) {
                    s = Arrays.copyOf(s, Math.max(at + e.shape.length, s.length + (s.length >> 1)));
                }
                System.arraycopy(e.shape, 0, s, at, e.shape.length);
                shapeStarts[i + 1] = at + e.shape.length;
            }
            shapes = Arrays.copyOf(s, shapeStarts[n]);
        }

        int size() {
            return names.length;
        }

        TensorDType dtype(int i) {
            return DTYPES[dtypes[i]];
        }

        long[] shape(int i) {
            return Arrays.copyOfRange(shapes, shapeStarts[i], shapeStarts[i + 1]);
        }
    }

    private static final TensorDType[] DTYPES = TensorDType.values();

    /**
     * Starts writing {@code target} with these tensors, in this order, and this {@code __metadata__}.
     *
     * @param target the file to write; replaced only on {@link #commit()}
     * @param entries the tensors, in the order they will be written
     * @param metadata the {@code __metadata__} strings, possibly empty
     * @return the writer; close it (a close without commit discards the file)
     * @throws IllegalArgumentException if an argument is null, the target is unusable, or a name is reserved or repeated
     * @throws IOException if the temporary file cannot be created or written
     */
    public static SafetensorsWriter create(Path target, List<Entry> entries, Map<String, String> metadata)
            throws IOException {
        Checks.notNull(target, "target");
        Checks.notNull(entries, "entries");
        Checks.notNull(metadata, "metadata");
        Plan plan = new Plan(entries);
        try {
            NameIndex.of(plan.names, plan.size(), (first, second) -> {
                throw new IllegalArgumentException("tensor name '" + plan.names[second] + "' is reserved or repeated");
            });
        } catch (SafetensorsException e) {
            throw new IllegalStateException(e);
        }
        for (String name : plan.names) {
            if (name.equals("__metadata__")) {
                throw new IllegalArgumentException("tensor name '" + name + "' is reserved or repeated");
            }
        }
        // the header is generated twice, once to measure it and once into the file, so that it is never
        // held whole in memory (a model with millions of tensors has a header of up to 100 MB)
        CountingStream counter = new CountingStream();
        writeHeader(plan, metadata, counter);
        long jsonLength = counter.count;
        long padded = (jsonLength + 7) / 8 * 8;
        AtomicFiles.Partial partial = AtomicFiles.createSibling(target);
        FileChannel channel = partial.channel();
        try {
            ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, padded);
            writeFully(channel, prefix);
            OutputStream out = new BufferedOutputStream(Channels.newOutputStream(channel), 1 << 16);
            writeHeader(plan, metadata, out);
            for (long i = jsonLength; i < padded; i++) {
                out.write(' ');
            }
            out.flush();
            if (channel.position() != 8 + padded) {
                throw new IllegalStateException("the header of " + target + " changed between two renderings");
            }
            return new SafetensorsWriter(target, partial, plan);
        } catch (IOException e) {
            AtomicFiles.discard(partial);
            throw new IOException(target + ": cannot write: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            AtomicFiles.discard(partial);
            throw e;
        }
    }

    private static final class CountingStream extends OutputStream {
        long count;

        @Override
        public void write(int b) {
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) {
            count += len;
        }
    }

    private static void writeHeader(Plan plan, Map<String, String> metadata, OutputStream out) throws IOException {
        try (JsonGenerator g = SafetensorsFile.STREAMING.createGenerator(out)) {
            g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
            g.writeStartObject();
            if (!metadata.isEmpty()) {
                g.writeObjectFieldStart("__metadata__");
                for (Map.Entry<String, String> m : metadata.entrySet()) {
                    g.writeStringField(m.getKey(), m.getValue());
                }
                g.writeEndObject();
            }
            long offset = 0;
            for (int i = 0; i < plan.size(); i++) {
                g.writeObjectFieldStart(plan.names[i]);
                g.writeStringField("dtype", plan.dtype(i).tag());
                g.writeArrayFieldStart("shape");
                for (int k = plan.shapeStarts[i]; k < plan.shapeStarts[i + 1]; k++) {
                    g.writeNumber(plan.shapes[k]);
                }
                g.writeEndArray();
                long end = offset + plan.byteLengths[i];
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                g.writeNumber(end);
                g.writeEndArray();
                g.writeEndObject();
                offset = end;
            }
            g.writeEndObject();
        }
    }

    private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    /** Checks {@code name} is the next tensor and needs {@code bytes} bytes; returns its position. */
    private int expect(String name, long bytes) {
        if (closed || committed) {
            throw new IllegalStateException("the writer for " + target + " is closed");
        }
        if (next >= plan.size()) {
            throw new IllegalStateException("all " + plan.size() + " tensors are written; '" + name + "' is extra");
        }
        if (!plan.names[next].equals(name)) {
            throw new IllegalStateException("expected tensor '" + plan.names[next] + "' next, got '" + name + "'");
        }
        if (bytes != plan.byteLengths[next]) {
            throw new IllegalArgumentException("tensor '" + name + "' needs " + plan.byteLengths[next] + " bytes, got " + bytes);
        }
        return next;
    }

    /**
     * Writes the next tensor's raw little-endian bytes (the buffer's remaining bytes).
     *
     * @param name the next entry's name
     * @param bytes exactly that tensor's byte length
     * @throws IllegalStateException if the writer is closed or {@code name} is not the next entry
     * @throws IllegalArgumentException if the byte count is wrong
     * @throws IOException if writing fails
     */
    public void write(String name, ByteBuffer bytes) throws IOException {
        Checks.notNull(name, "name");
        Checks.notNull(bytes, "bytes");
        expect(name, bytes.remaining());
        try {
            writeFully(channel, bytes.duplicate());
        } catch (IOException e) {
            throw writeFailure(name, e);
        }
        next++;
    }

    /**
     * Copies the next tensor byte for byte from a tensor of another file (same dtype and shape).
     *
     * @param name the next entry's name
     * @param source the file to copy from
     * @param tensor a tensor of {@code source} with the entry's dtype and shape
     * @throws IllegalStateException if the writer is closed or {@code name} is not the next entry
     * @throws IllegalArgumentException if the dtype or shape differs
     * @throws IOException if reading or writing fails
     */
    public void copy(String name, SafetensorsFile source, TensorInfo tensor) throws IOException {
        Checks.notNull(name, "name");
        Checks.notNull(source, "source");
        Checks.notNull(tensor, "tensor");
        int e = expect(name, tensor.byteLength());
        if (plan.dtype(e) != tensor.dtype() || !Arrays.equals(plan.shape(e), tensor.shape())) {
            throw new IllegalArgumentException("tensor '" + name + "' is " + plan.dtype(e) + Arrays.toString(plan.shape(e))
                    + " but the source is " + tensor.dtype() + tensor.shapeString());
        }
        try {
            source.transferTo(tensor, channel);
        } catch (SafetensorsException x) {
            throw x; // the source's own problem, naming the source
        } catch (IOException x) {
            throw writeFailure(name, x);
        }
        next++;
    }

    /**
     * Writes the next tensor from a host array of the entry's dtype (F32, F16 or BF16).
     *
     * @param name the next entry's name
     * @param values the elements, row-major
     * @throws IllegalStateException if the writer is closed or {@code name} is not the next entry
     * @throws IllegalArgumentException if the dtype or length differs
     * @throws IOException if writing fails
     */
    public void write(String name, HostArray values) throws IOException {
        Checks.notNull(name, "name");
        Checks.notNull(values, "values");
        int n = values.length();
        expectTyped(name, TensorDType.of(values.dtype()), (long) n * values.dtype().bytes());
        if (values.dtype() == DType.FLOAT32) {
            FloatBuffer f = values.floatBuffer();
            streamElements(n, 4, (buf, from, count) -> buf.asFloatBuffer().put(f.slice(from, count)));
        } else {
            ShortBuffer h = values.shortBuffer();
            streamElements(n, 2, (buf, from, count) -> buf.asShortBuffer().put(h.slice(from, count)));
        }
        next++;
    }

    /**
     * Writes the next tensor, an F64 one, from doubles.
     *
     * @param name the next entry's name
     * @param values the elements, row-major
     * @throws IllegalStateException if the writer is closed or {@code name} is not the next entry
     * @throws IllegalArgumentException if the entry is not F64 or the length differs
     * @throws IOException if writing fails
     */
    public void write(String name, double[] values) throws IOException {
        Checks.notNull(name, "name");
        Checks.notNull(values, "values");
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
            try {
                writeFully(channel, chunk);
            } catch (IOException e) {
                throw writeFailure(entryName(), e);
            }
        }
    }

    private String entryName() {
        return next < plan.size() ? plan.names[next] : "";
    }

    // a full disk or an I/O error says "No space left on device" and no more: name the file and the tensor
    private IOException writeFailure(String tensor, IOException e) {
        return new IOException(target + ": cannot write tensor '" + tensor + "': " + e.getMessage(), e);
    }

    private void expectTyped(String name, TensorDType dtype, long bytes) {
        int e = expect(name, bytes);
        if (plan.dtype(e) != dtype) {
            throw new IllegalArgumentException("tensor '" + name + "' is " + plan.dtype(e) + " but the values are " + dtype);
        }
    }

    /**
     * Checks every tensor was written, flushes, and moves the file into place (atomically where supported).
     *
     * @throws IllegalStateException if a tensor is missing or the writer is closed
     * @throws IOException if flushing or moving fails
     */
    public void commit() throws IOException {
        if (closed || committed) {
            throw new IllegalStateException("the writer for " + target + " is closed");
        }
        if (next != plan.size()) {
            throw new IllegalStateException("only " + next + " of " + plan.size() + " tensors were written; next is '"
                    + plan.names[next] + "'");
        }
        try {
            channel.force(true);
        } catch (IOException e) {
            throw new IOException(target + ": cannot write: " + e.getMessage(), e);
        }
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
