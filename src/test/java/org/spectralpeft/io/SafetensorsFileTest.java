package org.spectralpeft.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;

/**
 * SafetensorsFile and SafetensorsWriter: round trips of every kind of dtype and shape, a file built by hand
 * byte by byte (the independent check of the on-disk format), every way a file can be malformed, and
 * writer misuse.
 */
class SafetensorsFileTest {

    @TempDir
    Path dir;

    private final TestData data = new TestData();

    // ================================================================ helpers

    /** A file of an explicit header-length field, header bytes and data section. */
    private Path rawFile(String name, long headerLength, byte[] header, byte[] dataSection) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataSection.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLength).put(header).put(dataSection);
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    /** A file whose header is exactly {@code header} (no padding) followed by {@code dataBytes} random bytes. */
    private Path file(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return rawFile("bad.safetensors", h.length, h, randomBytes(dataBytes, 256));
    }

    /** One header entry, with shape and offsets given as raw JSON so they can be malformed. */
    private static String entry(String name, String dtype, String shape, String offsets) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
    }

    private static String header(String... entries) {
        return "{" + String.join(",", entries) + "}";
    }

    /** Opening {@code file} fails with a message that starts with the file and contains every fragment. */
    private static SafetensorsException assertRejected(Path file, String... fragments) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(file).close(),
                "opening " + file + " should fail");
        assertMessage(e, file, fragments);
        return e;
    }

    private static void assertMessage(Exception e, Path file, String... fragments) {
        String m = e.getMessage();
        assertTrue(m.startsWith(file + ": "), () -> "message does not start with the file name: " + m);
        for (String f : fragments) {
            assertTrue(m.contains(f), () -> "message lacks \"" + f + "\": " + m);
        }
    }

    private byte[] randomBytes(int n, int bound) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) data.nextInt(bound);
        }
        return b;
    }

    private short[] randomBits(int n) {
        short[] s = new short[n];
        for (int i = 0; i < n; i++) {
            s[i] = (short) data.nextInt(1 << 16);
        }
        return s;
    }

    private double[] randomDoubles(int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) {
            d[i] = (data.nextDouble() - 0.5) * Math.pow(10, data.nextInt(20) - 10);
        }
        return d;
    }

    private int odd(int max) {
        return 2 * data.nextInt(max / 2) + 1;
    }

    private static byte[] leFloats(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return b.array();
    }

    private static byte[] leShorts(short[] v) {
        ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (short x : v) {
            b.putShort(x);
        }
        return b.array();
    }

    private static byte[] leDoubles(double[] v) {
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (double x : v) {
            b.putDouble(x);
        }
        return b.array();
    }

    private static byte[] bytesOf(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    private static List<Path> listDir(Path d) throws IOException {
        try (Stream<Path> s = Files.list(d)) {
            return s.toList();
        }
    }

    // ================================================================ round trips of every dtype kind

    /** One tensor of the round trip: its entry, the exact bytes the file must hold, and how to write it. */
    private record Case(SafetensorsWriter.Entry entry, byte[] bytes, Writing writing) {
    }

    private interface Writing {
        void write(SafetensorsWriter w) throws IOException;
    }

    /** Random tensors of every kind, ordered by decreasing element size (so the data stays 8-byte aligned). */
    private List<Case> everyKind(Map<String, Object> values) {
        List<Case> cases = new ArrayList<>();
        double[] f64 = randomDoubles(odd(20));
        values.put("f64", f64);
        cases.add(new Case(new SafetensorsWriter.Entry("f64", TensorDType.F64, new long[] {f64.length}),
                leDoubles(f64), w -> w.write("f64", f64)));
        int nI64 = odd(20);
        byte[] i64 = randomBytes(8 * nI64, 256);
        cases.add(new Case(new SafetensorsWriter.Entry("i64", TensorDType.I64, new long[] {nI64}),
                i64, w -> w.write("i64", ByteBuffer.wrap(i64))));
        int rows = odd(10);
        int cols = odd(10);
        float[] f32 = data.gaussian(rows * cols);
        values.put("f32", f32);
        cases.add(new Case(new SafetensorsWriter.Entry("f32", TensorDType.F32, new long[] {rows, cols}),
                leFloats(f32), w -> w.write("f32", HostArray.float32(f32))));
        float[] scalar = data.gaussian(1);
        values.put("scalar", scalar);
        cases.add(new Case(new SafetensorsWriter.Entry("scalar", TensorDType.F32, new long[0]),
                leFloats(scalar), w -> w.write("scalar", HostArray.float32(scalar))));
        cases.add(new Case(new SafetensorsWriter.Entry("empty", TensorDType.F32, new long[] {0, 3}),
                new byte[0], w -> w.write("empty", HostArray.float32(new float[0]))));
        int h1 = odd(10);
        int h2 = odd(10);
        short[] f16 = randomBits(h1 * h2);
        values.put("f16", f16);
        cases.add(new Case(new SafetensorsWriter.Entry("f16", TensorDType.F16, new long[] {h1, h2}),
                leShorts(f16), w -> w.write("f16", HostArray.float16(f16))));
        short[] bf16 = randomBits(odd(30));
        values.put("bf16", bf16);
        cases.add(new Case(new SafetensorsWriter.Entry("bf16", TensorDType.BF16, new long[] {bf16.length}),
                leShorts(bf16), w -> w.write("bf16", HostArray.bfloat16(bf16))));
        byte[] u8 = randomBytes(odd(30), 256);
        cases.add(new Case(new SafetensorsWriter.Entry("u8", TensorDType.U8, new long[] {u8.length}),
                u8, w -> w.write("u8", ByteBuffer.wrap(u8))));
        byte[] bool = randomBytes(odd(30), 2);
        cases.add(new Case(new SafetensorsWriter.Entry("bool", TensorDType.BOOL, new long[] {1, bool.length}),
                bool, w -> w.write("bool", ByteBuffer.wrap(bool))));
        return cases;
    }

    private Map<String, String> randomMetadata() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", "pt");
        // a value of random length, so the header padding varies from run to run
        m.put("note", "x".repeat(data.nextInt(40)) + "é");
        return m;
    }

    private static Path writeAll(Path target, List<Case> cases, Map<String, String> metadata) throws IOException {
        try (SafetensorsWriter w = SafetensorsWriter.create(target,
                cases.stream().map(Case::entry).toList(), metadata)) {
            for (Case c : cases) {
                c.writing().write(w);
            }
            w.commit();
        }
        return target;
    }

    @Test
    void everyDTypeRoundTripsWithMetadataAndAlignment() throws IOException {
        Map<String, Object> values = new LinkedHashMap<>();
        List<Case> cases = everyKind(values);
        Map<String, String> metadata = randomMetadata();
        Path target = writeAll(dir.resolve("all.safetensors"), cases, metadata);
        String tag = data.tag();

        // the layout: header length a multiple of 8, padded with spaces, data right after it
        byte[] raw = Files.readAllBytes(target);
        long headerLength = ByteBuffer.wrap(raw, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLength % 8, "header length " + headerLength + tag);
        assertEquals(0, (8 + headerLength) % 8, "data start" + tag);
        long total = cases.stream().mapToLong(c -> c.bytes().length).sum();
        assertEquals(8 + headerLength + total, raw.length, "file size" + tag);
        String headerText = new String(raw, 8, (int) headerLength, StandardCharsets.UTF_8);
        String json = headerText.stripTrailing();
        assertTrue(json.endsWith("}"), "header: " + headerText + tag);
        assertEquals(" ".repeat(headerText.length() - json.length()), headerText.substring(json.length()),
                "padding must be spaces" + tag);

        // the header, parsed independently of SafetensorsFile
        JsonNode root = new ObjectMapper().readTree(json);
        assertEquals(metadata.get("note"), root.get("__metadata__").get("note").textValue(), tag);
        List<TensorInfo> expected = new ArrayList<>();
        long offset = 0;
        for (Case c : cases) {
            SafetensorsWriter.Entry e = c.entry();
            JsonNode node = root.get(e.name());
            assertEquals(e.dtype().tag(), node.get("dtype").textValue(), e.name() + tag);
            assertEquals(e.shape().length, node.get("shape").size(), e.name() + tag);
            assertEquals(offset, node.get("data_offsets").get(0).longValue(), e.name() + tag);
            assertEquals(offset + c.bytes().length, node.get("data_offsets").get(1).longValue(), e.name() + tag);
            expected.add(new TensorInfo(e.name(), e.dtype(), e.shape(), offset, offset + c.bytes().length));
            offset += c.bytes().length;
        }

        try (SafetensorsFile f = SafetensorsFile.open(target)) {
            assertEquals(expected, f.tensors(), tag);
            assertEquals(metadata, f.metadata(), tag);
            assertEquals(total, f.dataLength(), tag);
            for (Case c : cases) {
                TensorInfo t = f.tensor(c.entry().name());
                assertArrayEquals(c.entry().shape(), t.shape(), t.name() + tag);
                assertArrayEquals(c.bytes(), bytesOf(f.map(t)), "mapped bytes of " + t.name() + tag);
                ByteArrayOutputStream sink = new ByteArrayOutputStream();
                f.transferTo(t, Channels.newChannel(sink));
                assertArrayEquals(c.bytes(), sink.toByteArray(), "transferTo of " + t.name() + tag);
            }

            // numbers, per floating-point dtype
            float[] f32 = (float[]) values.get("f32");
            TensorInfo tf32 = f.tensor("f32");
            assertArrayEquals(f32, f.readFloats(tf32), tag);
            assertArrayEquals(TestData.toDouble(f32), f.readDoubles(tf32), tag);
            HostArray h32 = f.readHostArray(tf32);
            assertEquals(DType.FLOAT32, h32.dtype(), tag);
            assertArrayEquals(f32, h32.floats(), tag);

            assertArrayEquals((float[]) values.get("scalar"), f.readFloats(f.tensor("scalar")), tag);
            assertEquals(1, f.tensor("scalar").elementCount());
            assertEquals(0, f.tensor("scalar").rank());

            TensorInfo empty = f.tensor("empty");
            assertEquals(0, empty.elementCount());
            assertEquals(0, f.readFloats(empty).length);
            assertEquals(0, f.readDoubles(empty).length);
            assertEquals(0, f.readHostArray(empty).length());

            double[] f64 = (double[]) values.get("f64");
            TensorInfo tf64 = f.tensor("f64");
            assertArrayEquals(f64, f.readDoubles(tf64), tag);
            float[] rounded = new float[f64.length];
            for (int i = 0; i < f64.length; i++) {
                rounded[i] = (float) f64[i];
            }
            assertArrayEquals(rounded, f.readFloats(tf64), tag);

            for (String name : List.of("f16", "bf16")) {
                short[] bits = (short[]) values.get(name);
                TensorInfo t = f.tensor(name);
                DType dtype = name.equals("f16") ? DType.FLOAT16 : DType.BFLOAT16;
                HostArray h = f.readHostArray(t);
                assertEquals(dtype, h.dtype(), name + tag);
                assertArrayEquals(bits, h.halves(), "raw bits of " + name + tag);
                float[] decoded = new float[bits.length];
                for (int i = 0; i < bits.length; i++) {
                    decoded[i] = dtype.decode(bits[i]);
                }
                assertArrayEquals(decoded, f.readFloats(t), name + tag);
                assertArrayEquals(TestData.toDouble(decoded), f.readDoubles(t), name + tag);
            }
        }
    }

    /** Tensors of several of the writer's 1 MiB chunks, with a partial last chunk, land byte for byte. */
    @Test
    void tensorsLargerThanTheWriteChunkAreWrittenWhole() throws IOException {
        float[] f = data.gaussian(300_007);
        HostArray bf = HostArray.of(DType.BFLOAT16, data.gaussian(600_011));
        double[] d = new double[150_001];
        for (int i = 0; i < d.length; i++) {
            d[i] = data.nextDouble() - 0.5;
        }
        float[] tail = data.gaussian(3);
        Path target = dir.resolve("large.safetensors");
        List<SafetensorsWriter.Entry> entries = List.of(
                new SafetensorsWriter.Entry("d", TensorDType.F64, new long[] {d.length}),
                new SafetensorsWriter.Entry("f", TensorDType.F32, new long[] {f.length}),
                new SafetensorsWriter.Entry("tail", TensorDType.F32, new long[] {3}),
                new SafetensorsWriter.Entry("bf", TensorDType.BF16, new long[] {bf.length()}));
        try (SafetensorsWriter w = SafetensorsWriter.create(target, entries, Map.of())) {
            w.write("d", d);
            w.write("f", HostArray.float32(f));
            w.write("tail", HostArray.float32(tail));
            w.write("bf", bf);
            w.commit();
        }
        ByteBuffer expected = ByteBuffer.allocate(8 * d.length + 4 * f.length + 12 + 2 * bf.length())
                .order(ByteOrder.LITTLE_ENDIAN);
        for (double v : d) {
            expected.putDouble(v);
        }
        for (float v : f) {
            expected.putFloat(v);
        }
        for (float v : tail) {
            expected.putFloat(v);
        }
        for (short v : bf.halves()) {
            expected.putShort(v);
        }
        byte[] raw = Files.readAllBytes(target);
        long headerLength = ByteBuffer.wrap(raw, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        byte[] dataSection = Arrays.copyOfRange(raw, (int) (8 + headerLength), raw.length);
        assertArrayEquals(expected.array(), dataSection, data.tag());
    }

    @Test
    void copyingEveryTensorReproducesTheFileByteForByte() throws IOException {
        List<Case> cases = everyKind(new LinkedHashMap<>());
        Map<String, String> metadata = randomMetadata();
        Path source = writeAll(dir.resolve("source.safetensors"), cases, metadata);
        Path copy = dir.resolve("copy.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(source);
             SafetensorsWriter w = SafetensorsWriter.create(copy,
                     f.tensors().stream().map(SafetensorsWriter.Entry::of).toList(), f.metadata())) {
            for (TensorInfo t : f.tensors()) {
                w.copy(t.name(), f, t);
            }
            w.commit();
        }
        assertArrayEquals(Files.readAllBytes(source), Files.readAllBytes(copy), data.tag());
    }

    @Test
    void transferToWritesExactlyTheTensorAtTheChannelPosition() throws IOException {
        byte[] first = randomBytes(8 * odd(200), 256);
        byte[] big = randomBytes(100_000 + odd(100_000), 256);
        List<SafetensorsWriter.Entry> entries = List.of(
                new SafetensorsWriter.Entry("first", TensorDType.I64, new long[] {first.length / 8}),
                new SafetensorsWriter.Entry("big", TensorDType.U8, new long[] {big.length}));
        Path source = dir.resolve("t.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(source, entries, Map.of())) {
            w.write("first", ByteBuffer.wrap(first));
            w.write("big", ByteBuffer.wrap(big));
            w.commit();
        }
        byte[] prefix = randomBytes(1 + data.nextInt(50), 256);
        Path out = dir.resolve("out.bin");
        Files.write(out, prefix);
        try (SafetensorsFile f = SafetensorsFile.open(source);
             FileChannel target = FileChannel.open(out, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
            f.transferTo(f.tensor("big"), target);
            f.transferTo(f.tensor("first"), target);
        }
        ByteBuffer expected = ByteBuffer.allocate(prefix.length + big.length + first.length)
                .put(prefix).put(big).put(first);
        assertArrayEquals(expected.array(), Files.readAllBytes(out), data.tag());
    }

    @Test
    void writerWithoutMetadataWritesNoMetadataKey() throws IOException {
        float[] v = data.gaussian(odd(20));
        Path target = dir.resolve("m.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(target,
                List.of(new SafetensorsWriter.Entry("w", TensorDType.F32, new long[] {v.length})), Map.of())) {
            w.write("w", HostArray.float32(v));
            w.commit();
        }
        assertFalse(new String(Files.readAllBytes(target), StandardCharsets.UTF_8).contains("__metadata__"));
        try (SafetensorsFile f = SafetensorsFile.open(target)) {
            assertTrue(f.metadata().isEmpty());
            assertArrayEquals(v, f.readFloats(f.tensor("w")), data.tag());
        }
    }

    // ================================================================ a file built by hand: the format itself

    private static void putLE(ByteArrayOutputStream out, long value, int bytes) {
        for (int i = 0; i < bytes; i++) {
            out.write((int) (value >>> (8 * i)) & 0xFF);
        }
    }

    @Test
    void readsAFileBuiltByHand() throws IOException {
        // the JSON lists "a" before "b" though "b" comes first in the data: tensors() is in data order
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                + "\"c\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[22,28]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
        byte[] h = header.getBytes(StandardCharsets.US_ASCII);
        float[] b = data.gaussian(4);
        float[] a = data.gaussian(3);
        short[] aBits = new short[3];
        for (int i = 0; i < 3; i++) {
            int bits = Float.floatToRawIntBits(a[i]) & 0xFFFF0000; // a float bfloat16 holds exactly
            a[i] = Float.intBitsToFloat(bits);
            aBits[i] = (short) (bits >>> 16);
        }
        int[] cBits = {0x3C00, 0xC000, 0x7BFF};   // float16 1, -2, 65504
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        putLE(out, h.length, 8);
        out.write(h, 0, h.length);
        for (float x : b) {
            putLE(out, Float.floatToRawIntBits(x), 4);
        }
        for (short s : aBits) {
            putLE(out, s, 2);
        }
        for (int s : cBits) {
            putLE(out, s, 2);
        }
        Path p = dir.resolve("hand.safetensors");
        Files.write(p, out.toByteArray());
        String tag = data.tag();

        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.of(
                    new TensorInfo("b", TensorDType.F32, new long[] {2, 2}, 0, 16),
                    new TensorInfo("a", TensorDType.BF16, new long[] {3}, 16, 22),
                    new TensorInfo("c", TensorDType.F16, new long[] {3}, 22, 28)), f.tensors());
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertEquals(28, f.dataLength());
            assertArrayEquals(b, f.readFloats(f.tensor("b")), tag);
            assertArrayEquals(a, f.readFloats(f.tensor("a")), tag);
            assertArrayEquals(aBits, f.readHostArray(f.tensor("a")).halves(), tag);
            assertArrayEquals(new float[] {1f, -2f, 65504f}, f.readFloats(f.tensor("c")));
            assertEquals(DType.FLOAT16, f.readHostArray(f.tensor("c")).dtype());
            assertTrue(f.find("d").isEmpty());
            assertMessage(assertThrows(SafetensorsException.class, () -> f.tensor("d")), p, "tensor 'd'", "no such tensor");
        }
    }

    // ================================================================ framing: length prefix, encoding, JSON

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 5, 7})
    void fileShorterThanTheLengthPrefixIsRejected(int size) throws IOException {
        Path p = dir.resolve("short.safetensors");
        Files.write(p, randomBytes(size, 256));
        assertRejected(p, "truncated", size + " bytes");
    }

    @Test
    void headerLengthOutOfRangeIsRejected() throws IOException {
        byte[] h = "{}".getBytes(StandardCharsets.US_ASCII);
        assertRejected(rawFile("zero.safetensors", 0, h, new byte[0]), "header length 0 ");
        assertRejected(rawFile("one.safetensors", 1, h, new byte[0]), "header length 1 ");
        assertRejected(rawFile("huge.safetensors", 1L << 40, h, new byte[0]), "header length " + (1L << 40));
        assertRejected(rawFile("limit.safetensors", SafetensorsFile.MAX_HEADER_BYTES + 1, h, new byte[0]),
                "header length " + (SafetensorsFile.MAX_HEADER_BYTES + 1));
        assertRejected(rawFile("negative.safetensors", -1, h, new byte[0]), "header length 18446744073709551615");
    }

    @Test
    void headerLongerThanTheFileIsRejected() throws IOException {
        byte[] h = header(entry("w", "F32", "[1]", "[0,4]")).getBytes(StandardCharsets.US_ASCII);
        Path p = rawFile("long.safetensors", 1000, h, new byte[4]);
        assertRejected(p, "truncated", "claims 1000", "only " + (h.length + 4));
    }

    @Test
    void headerThatIsNotUtf8IsRejected() throws IOException {
        byte[] h = {'{', '"', (byte) 0xC3, 0x28, '"', ':', '{', '}', '}'}; // 0xC3 0x28: broken two-byte sequence
        assertRejected(rawFile("latin.safetensors", h.length, h, new byte[0]), "not valid UTF-8");
        byte[] h2 = {'{', '"', (byte) 0xFF, '"', ':', '{', '}', '}'};
        assertRejected(rawFile("ff.safetensors", h2.length, h2, new byte[0]), "not valid UTF-8");
    }

    @ParameterizedTest
    @ValueSource(strings = {" {}", "[]", "\"{}\"", "null", "\n{\"a\":1}"})
    void headerNotStartingWithBraceIsRejected(String header) throws IOException {
        assertRejected(file(header, 0), "does not start with '{'");
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"w\":",
        "{\"w\" {}}",
        "{'w':{}}",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}",
        // content after the header object (only spaces may pad it)
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}}",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}{}",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}\0\0\0",
    })
    void invalidJsonIsRejected(String header) throws IOException {
        assertRejected(file(header, 4), "not valid JSON");
    }

    @Test
    void headerPaddedWithSpacesIsAccepted() throws IOException {
        float[] v = data.gaussian(1);
        byte[] h = (header(entry("w", "F32", "[1]", "[0,4]")) + "     ").getBytes(StandardCharsets.US_ASCII);
        try (SafetensorsFile f = SafetensorsFile.open(rawFile("pad.safetensors", h.length, h, leFloats(v)))) {
            assertArrayEquals(v, f.readFloats(f.tensor("w")), data.tag());
        }
    }

    @Test
    void duplicateTensorKeyIsRejected() throws IOException {
        Path p = file(header(entry("a", "F32", "[1]", "[0,4]"), entry("a", "F32", "[1]", "[4,8]")), 8);
        assertRejected(p, "Duplicate", "'a'");
    }

    // ================================================================ tensor entries and layout

    static Stream<Arguments> malformedEntries() {
        String ok = entry("a", "F32", "[4]", "[0,16]");
        return Stream.of(
                Arguments.of("unknown dtype F4", header(entry("w", "F4", "[2]", "[0,1]")), 1,
                        new String[] {"tensor 'w'", "unknown dtype \"F4\""}),
                Arguments.of("unknown dtype Q8", header(entry("w", "Q8", "[2]", "[0,2]")), 2,
                        new String[] {"tensor 'w'", "unknown dtype \"Q8\""}),
                Arguments.of("entry not an object", "{\"w\":3}", 0,
                        new String[] {"tensor 'w'", "not a JSON object"}),
                Arguments.of("missing dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                        new String[] {"tensor 'w'", "\"dtype\""}),
                Arguments.of("non-string dtype", "{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                        new String[] {"tensor 'w'", "\"dtype\""}),
                Arguments.of("missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8,
                        new String[] {"tensor 'w'", "\"shape\""}),
                Arguments.of("missing data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8,
                        new String[] {"tensor 'w'", "\"data_offsets\""}),
                Arguments.of("negative shape entry", header(entry("w", "F32", "[-1,2]", "[0,8]")), 8,
                        new String[] {"tensor 'w'", "\"shape\" entry 0", "-1", "non-negative integer"}),
                Arguments.of("fractional shape entry", header(entry("w", "F32", "[2,2.5]", "[0,20]")), 20,
                        new String[] {"tensor 'w'", "\"shape\" entry 1", "2.5"}),
                Arguments.of("string shape entry", header(entry("w", "F32", "[\"2\"]", "[0,8]")), 8,
                        new String[] {"tensor 'w'", "\"shape\" entry 0"}),
                Arguments.of("negative data offset", header(entry("w", "F32", "[0]", "[-4,-4]")), 0,
                        new String[] {"tensor 'w'", "\"data_offsets\" entry 0"}),
                Arguments.of("three data_offsets", header(entry("w", "F32", "[2]", "[0,8,16]")), 8,
                        new String[] {"tensor 'w'", "\"data_offsets\" has 3 entries"}),
                Arguments.of("end before begin", header(entry("w", "F32", "[2]", "[8,0]")), 8,
                        new String[] {"tensor 'w'", "[8, 0]", "end before they begin"}),
                Arguments.of("span not shape x dtype", header(entry("w", "F32", "[2,2]", "[0,12]")), 12,
                        new String[] {"tensor 'w'", "span 12 bytes", "F32[2, 2] needs 16"}),
                Arguments.of("span of the wrong dtype size", header(entry("w", "BF16", "[4]", "[0,16]")), 16,
                        new String[] {"tensor 'w'", "span 16 bytes", "needs 8"}),
                Arguments.of("overlapping tensors", header(ok, entry("b", "F32", "[4]", "[8,24]")), 24,
                        new String[] {"tensor 'b'", "[8, 24)", "overlap tensor 'a'"}),
                Arguments.of("gap between tensors", header(ok, entry("b", "F32", "[4]", "[20,36]")), 36,
                        new String[] {"tensor 'b'", "begins at byte 20", "gap"}),
                Arguments.of("gap before the first tensor", header(entry("a", "F32", "[4]", "[4,20]")), 20,
                        new String[] {"tensor 'a'", "begins at byte 4", "gap"}),
                Arguments.of("data section truncated", header(ok, entry("b", "F32", "[4]", "[16,32]")), 30,
                        new String[] {"tensor 'b'", "truncated", "32", "only 30"}),
                Arguments.of("trailing bytes", header(ok), 20,
                        new String[] {"4 bytes after the last tensor"}),
                Arguments.of("trailing bytes without tensors", "{}", 3,
                        new String[] {"3 bytes after the last tensor"}),
                Arguments.of("__metadata__ with a non-string value", "{\"__metadata__\":{\"format\":\"pt\",\"step\":1}," + ok + "}", 16,
                        new String[] {"__metadata__", "'step'", "not a string"}),
                Arguments.of("__metadata__ with a null value", "{\"__metadata__\":{\"format\":null}," + ok + "}", 16,
                        new String[] {"__metadata__", "'format'", "not a string"}),
                Arguments.of("__metadata__ not an object", "{\"__metadata__\":\"pt\"," + ok + "}", 16,
                        new String[] {"__metadata__ is not a JSON object"}));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformedEntries")
    void malformedHeaderEntryOrLayoutIsRejected(String what, String header, int dataBytes, String[] fragments)
            throws IOException {
        assertRejected(file(header, dataBytes), fragments);
    }

    @Test
    void zeroElementTensorsMayShareAnOffset() throws IOException {
        float[] v = data.gaussian(odd(10));
        int end = 4 * v.length;
        String h = header(entry("e1", "F32", "[0,3]", "[0,0]"), entry("w", "F32", "[" + v.length + "]", "[0," + end + "]"),
                entry("e2", "F16", "[5,0]", "[" + end + "," + end + "]"), entry("e3", "U8", "[0]", "[" + end + "," + end + "]"));
        byte[] hb = h.getBytes(StandardCharsets.US_ASCII);
        try (SafetensorsFile f = SafetensorsFile.open(rawFile("z.safetensors", hb.length, hb, leFloats(v)))) {
            assertEquals(List.of("e1", "w", "e2", "e3"), f.tensors().stream().map(TensorInfo::name).toList());
            assertArrayEquals(v, f.readFloats(f.tensor("w")), data.tag());
            assertEquals(0, f.readHostArray(f.tensor("e2")).length());
        }
    }

    // ================================================================ reading a tensor as the wrong kind

    @Test
    void nonFloatTensorsCannotBeReadAsNumbers() throws IOException {
        int n = odd(10);
        double[] d = randomDoubles(2);
        String h = header(entry("ids", "I64", "[" + n + "]", "[0," + 8 * n + "]"),
                entry("d", "F64", "[2]", "[" + 8 * n + "," + (8 * n + 16) + "]"),
                entry("mask", "BOOL", "[3]", "[" + (8 * n + 16) + "," + (8 * n + 19) + "]"));
        byte[] hb = h.getBytes(StandardCharsets.US_ASCII);
        byte[] section = ByteBuffer.allocate(8 * n + 19).put(randomBytes(8 * n, 256)).put(leDoubles(d))
                .put(new byte[] {1, 0, 1}).array();
        Path p = rawFile("ints.safetensors", hb.length, hb, section);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            TensorInfo ids = f.tensor("ids");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.readFloats(ids)), p, "tensor 'ids'", "I64");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.readDoubles(ids)), p, "tensor 'ids'", "I64");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.readHostArray(ids)), p, "tensor 'ids'", "I64");
            TensorInfo mask = f.tensor("mask");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.readFloats(mask)), p, "tensor 'mask'", "BOOL");
            // F64 reads as numbers but has no compute dtype
            assertArrayEquals(d, f.readDoubles(f.tensor("d")), data.tag());
            assertMessage(assertThrows(SafetensorsException.class, () -> f.readHostArray(f.tensor("d"))), p,
                    "tensor 'd'", "F64");
        }
    }

    // ================================================================ writer misuse

    private static final List<SafetensorsWriter.Entry> TWO = List.of(
            new SafetensorsWriter.Entry("a", TensorDType.F32, new long[] {2, 3}),
            new SafetensorsWriter.Entry("b", TensorDType.F16, new long[] {4}));

    @Test
    void rejectedWritesLeaveTheWriterUsableAndTheFileIntact() throws IOException {
        float[] a = data.gaussian(6);
        short[] b = randomBits(4);
        Path target = dir.resolve("w.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(target, TWO, Map.of())) {
            // out of order
            IllegalStateException order = assertThrows(IllegalStateException.class,
                    () -> w.write("b", HostArray.float16(b)));
            assertTrue(order.getMessage().contains("'a'") && order.getMessage().contains("'b'"), order.getMessage());
            // wrong byte count
            IllegalArgumentException count = assertThrows(IllegalArgumentException.class,
                    () -> w.write("a", ByteBuffer.allocate(20)));
            assertTrue(count.getMessage().contains("24") && count.getMessage().contains("20"), count.getMessage());
            assertThrows(IllegalArgumentException.class, () -> w.write("a", HostArray.float32(new float[5])));
            // dtype mismatch with the right byte count: F16 and F64 values into the F32 entry
            IllegalArgumentException f16 = assertThrows(IllegalArgumentException.class,
                    () -> w.write("a", HostArray.float16(new short[12])));
            assertTrue(f16.getMessage().contains("F32") && f16.getMessage().contains("F16"), f16.getMessage());
            assertThrows(IllegalArgumentException.class, () -> w.write("a", new double[3]));
            // commit before every tensor is written
            IllegalStateException early = assertThrows(IllegalStateException.class, w::commit);
            assertTrue(early.getMessage().contains("'a'"), early.getMessage());

            w.write("a", HostArray.float32(a));
            assertThrows(IllegalStateException.class, () -> w.write("a", HostArray.float32(a)));
            assertThrows(IllegalArgumentException.class, () -> w.write("b", HostArray.bfloat16(b)));
            IllegalStateException early2 = assertThrows(IllegalStateException.class, w::commit);
            assertTrue(early2.getMessage().contains("'b'"), early2.getMessage());
            assertFalse(Files.exists(target), "nothing may appear before commit");

            w.write("b", HostArray.float16(b));
            assertThrows(IllegalStateException.class, () -> w.write("c", ByteBuffer.allocate(0)));
            w.commit();
            assertThrows(IllegalStateException.class, w::commit);
            assertThrows(IllegalStateException.class, () -> w.write("b", HostArray.float16(b)));
        }
        // none of the rejected writes left bytes behind
        try (SafetensorsFile f = SafetensorsFile.open(target)) {
            assertArrayEquals(a, f.readFloats(f.tensor("a")), data.tag());
            assertArrayEquals(b, f.readHostArray(f.tensor("b")).halves(), data.tag());
        }
        assertEquals(List.of(target), listDir(dir));
    }

    @Test
    void copyRejectsASourceOfAnotherDTypeOrShape() throws IOException {
        Path source = dir.resolve("s.safetensors");
        List<SafetensorsWriter.Entry> entries = List.of(
                new SafetensorsWriter.Entry("a", TensorDType.F32, new long[] {3, 2}),
                new SafetensorsWriter.Entry("b", TensorDType.BF16, new long[] {4}));
        try (SafetensorsWriter w = SafetensorsWriter.create(source, entries, Map.of())) {
            w.write("a", HostArray.float32(data.gaussian(6)));
            w.write("b", HostArray.bfloat16(randomBits(4)));
            w.commit();
        }
        try (SafetensorsFile f = SafetensorsFile.open(source);
             SafetensorsWriter w = SafetensorsWriter.create(dir.resolve("t.safetensors"), TWO, Map.of())) {
            assertThrows(IllegalArgumentException.class, () -> w.copy("a", f, f.tensor("a")));  // [3, 2] vs [2, 3]
            assertThrows(IllegalStateException.class, () -> w.copy("b", f, f.tensor("b")));    // out of order
        }
        assertEquals(List.of(source), listDir(dir));
    }

    @Test
    void reservedRepeatedOrNegativeEntriesAreRefusedUpFront() throws IOException {
        Path target = dir.resolve("x.safetensors");
        SafetensorsWriter.Entry a = new SafetensorsWriter.Entry("a", TensorDType.F32, new long[] {1});
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.create(target,
                List.of(a, new SafetensorsWriter.Entry("a", TensorDType.F16, new long[] {2})), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.create(target,
                List.of(a, new SafetensorsWriter.Entry("__metadata__", TensorDType.F32, new long[] {1})), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.create(target,
                List.of(new SafetensorsWriter.Entry("n", TensorDType.F32, new long[] {2, -1})), Map.of()));
        assertEquals(List.of(), listDir(dir), "a refused create leaves no file");
    }

    @Test
    void closingWithoutCommitLeavesNoFile() throws IOException {
        Path target = dir.resolve("abandoned.safetensors");
        SafetensorsWriter w = SafetensorsWriter.create(target, TWO, Map.of("k", "v"));
        w.write("a", HostArray.float32(data.gaussian(6)));
        assertFalse(Files.exists(target));
        w.close();
        w.close(); // idempotent
        assertEquals(List.of(), listDir(dir), "neither the target nor a temp file may remain");
        assertThrows(IllegalStateException.class, () -> w.write("b", HostArray.float16(new short[4])));
        assertThrows(IllegalStateException.class, w::commit);
    }

    @Test
    void commitReplacesAnExistingFile() throws IOException {
        Path target = dir.resolve("model.safetensors");
        Files.write(target, randomBytes(1 + data.nextInt(500), 256));
        float[] a = data.gaussian(6);
        short[] b = randomBits(4);
        try (SafetensorsWriter w = SafetensorsWriter.create(target, TWO, Map.of("v", "2"))) {
            w.write("a", HostArray.float32(a));
            w.write("b", HostArray.float16(b));
            w.commit();
        }
        try (SafetensorsFile f = SafetensorsFile.open(target)) {
            assertEquals(Map.of("v", "2"), f.metadata());
            assertArrayEquals(a, f.readFloats(f.tensor("a")), data.tag());
            assertArrayEquals(b, f.readHostArray(f.tensor("b")).halves(), data.tag());
        }
        assertEquals(List.of(target), listDir(dir));
    }

    @Test
    void committedFileHasDefaultPermissionsNotOwnerOnly() throws IOException {
        Assumptions.assumeTrue(dir.getFileSystem().supportedFileAttributeViews().contains("posix"), "POSIX only");
        Path plain = Files.createFile(dir.resolve("plain.bin"));   // the process's default permissions
        Path target = dir.resolve("perm.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(target, TWO.subList(0, 1), Map.of())) {
            w.write("a", HostArray.float32(data.gaussian(6)));
            w.commit();
        }
        assertEquals(Files.getPosixFilePermissions(plain), Files.getPosixFilePermissions(target));
    }

    @Test
    void failedWriteLeavesAnExistingFileByteIdentical() throws IOException {
        Path target = dir.resolve("model.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(target, TWO, Map.of("v", "1"))) {
            w.write("a", HostArray.float32(data.gaussian(6)));
            w.write("b", HostArray.float16(randomBits(4)));
            w.commit();
        }
        byte[] before = Files.readAllBytes(target);
        try (SafetensorsWriter w = SafetensorsWriter.create(target, TWO, Map.of("v", "2"))) {
            w.write("a", HostArray.float32(data.gaussian(6)));
            assertThrows(IllegalArgumentException.class, () -> w.write("b", HostArray.float16(randomBits(5))));
        }
        assertArrayEquals(before, Files.readAllBytes(target), data.tag());
        assertEquals(List.of(target), listDir(dir), "no temp file may remain");
    }

    @Test
    void writeTakesTheBufferFromItsPositionAtCallTime() throws IOException {
        // write(name, ByteBuffer) consumes the buffer's remaining bytes at call time, from its position
        float[] a = data.gaussian(6);
        byte[] bytes = leFloats(a);
        ByteBuffer padded = ByteBuffer.allocate(bytes.length + 3).put(new byte[] {9, 9, 9}).put(bytes);
        padded.position(3);
        Path target = dir.resolve("buf.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(target, TWO.subList(0, 1), Map.of())) {
            w.write("a", padded);
            Arrays.fill(padded.array(), (byte) 0);
            w.commit();
        }
        try (SafetensorsFile f = SafetensorsFile.open(target)) {
            assertArrayEquals(a, f.readFloats(f.tensor("a")), data.tag());
        }
    }
}
