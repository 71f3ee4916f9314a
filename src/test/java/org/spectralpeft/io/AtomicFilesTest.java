package org.spectralpeft.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Partial files: removed at JVM shutdown while still open, and left over ones removed by the next write. */
class AtomicFilesTest {
    @TempDir
    Path dir;

    private static final List<SafetensorsWriter.Entry> ONE =
            List.of(new SafetensorsWriter.Entry("t", TensorDType.U8, new long[] {4}));

    private static void writeAndCommit(Path target, byte value) throws IOException {
        try (SafetensorsWriter w = SafetensorsWriter.create(target, ONE, Map.of())) {
            w.write("t", ByteBuffer.wrap(new byte[] {value, value, value, value}));
            w.commit();
        }
    }

    private List<String> partials() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".partial")).sorted().toList();
        }
    }

    /** What a kill -9 leaves: partial files of the target's own naming are removed, anything else is kept. */
    @Test
    void theNextWriteRemovesStalePartialsOfItsOwnTarget() throws IOException {
        Path target = dir.resolve("merged.safetensors");
        List<String> stale = List.of(".merged.safetensors.0123456789ab.partial", ".merged.safetensors.ffffffffffff.partial");
        List<String> others = List.of(".other.safetensors.0123456789ab.partial", ".merged.safetensors.partial",
                ".merged.safetensors.0123456789zz.partial", "x.merged.safetensors.0123456789ab.partial",
                ".merged.safetensors.0123456789ab.partial.bak");
        for (String n : stale) {
            Files.write(dir.resolve(n), new byte[100]);
        }
        for (String n : others) {
            Files.write(dir.resolve(n), new byte[3]);
        }
        // one held locked, as a writer in another process holds its partial: it is still being written
        Path held = Files.write(dir.resolve(".merged.safetensors.aaaaaaaaaaaa.partial"), new byte[7]);
        SafetensorsWriter open;
        String openPartial;
        try (FileChannel ch = FileChannel.open(held, StandardOpenOption.WRITE); FileLock lock = ch.lock()) {
            // this process's own writer to the same target, not yet committed, while another one commits
            open = SafetensorsWriter.create(target, ONE, Map.of());
            List<String> created = partials().stream().filter(n -> !stale.contains(n) && !others.contains(n)
                    && !n.equals(held.getFileName().toString())).toList();
            assertEquals(1, created.size(), partials().toString());
            openPartial = created.get(0);
            writeAndCommit(target, (byte) 1);
        }
        for (String n : stale) {
            assertFalse(Files.exists(dir.resolve(n)), n + " was left");
        }
        for (String n : others) {
            assertTrue(Files.exists(dir.resolve(n)), n + " was removed");
        }
        assertTrue(Files.exists(held), "a locked partial was removed");
        assertTrue(Files.exists(dir.resolve(openPartial)), "a live writer's partial was removed");
        open.write("t", ByteBuffer.wrap(new byte[] {2, 2, 2, 2}));
        open.commit();
        try (SafetensorsFile f = SafetensorsFile.open(target)) {
            assertEquals(ByteBuffer.wrap(new byte[] {2, 2, 2, 2}), f.map(f.tensor("t")));
        }
    }

    /**
     * The shutdown hook's work: every partial still open is removed, and one that was moved into place is not
     * touched; a writer whose partial was removed cannot commit afterwards.
     */
    @Test
    void shutdownRemovesOpenPartialsButNeverACommittedOutput() throws IOException {
        Path done = dir.resolve("done.safetensors");
        writeAndCommit(done, (byte) 5);
        byte[] committed = Files.readAllBytes(done);
        Path target = dir.resolve("interrupted.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(target, ONE, Map.of())) {
            assertEquals(1, partials().size());
            AtomicFiles.removeOpenPartials();
            assertEquals(List.of(), partials());
            assertThrows(IOException.class, () -> {
                w.write("t", ByteBuffer.wrap(new byte[4]));
                w.commit();
            });
        }
        assertFalse(Files.exists(target));
        assertArrayEquals(committed, Files.readAllBytes(done));
        assertEquals(List.of(), partials());
    }
}
