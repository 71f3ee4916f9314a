package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.fourierft.cpu.CpuFourierFT;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;

/** Every I/O failure names the file: a shard that is a directory, a file truncated after it was opened. */
class FileErrorsTest {
    @TempDir
    Path tmp;

    private static void assertNames(Exception e, Path file, String... fragments) {
        assertTrue(e.getMessage().contains(file.toString()), "names " + file + ": " + e.getMessage());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "contains '" + f + "': " + e.getMessage());
        }
    }

    private Path model(Path file) throws IOException {
        List<SafetensorsWriter.Entry> entries = List.of(
                new SafetensorsWriter.Entry("q.weight", TensorDType.F32, new long[] {64, 64}),
                new SafetensorsWriter.Entry("z.bias", TensorDType.F32, new long[] {4096}));
        try (SafetensorsWriter w = SafetensorsWriter.create(file, entries, Map.of())) {
            w.write("q.weight", TensorBytes.of(new float[4096]));
            w.write("z.bias", TensorBytes.of(new float[4096]));
            w.commit();
        }
        return file;
    }

    private static void truncate(Path file, long size) throws IOException {
        try (FileChannel c = FileChannel.open(file, StandardOpenOption.WRITE)) {
            c.truncate(size);
        }
    }

    @Test
    void aShardThatIsADirectoryIsNamed() throws IOException {
        Path shard = Files.createDirectory(tmp.resolve("model-00001-of-00001.safetensors"));
        Path index = tmp.resolve("model.safetensors.index.json");
        Files.writeString(index, "{\"weight_map\": {\"w\": \"model-00001-of-00001.safetensors\"}}");
        assertNames(assertThrows(IOException.class, () -> SafetensorsModel.open(index).close()), shard, "directory");
        assertNames(assertThrows(IOException.class, () -> SafetensorsFile.open(shard).close()), shard, "directory");
    }

    @Test
    void aFileTruncatedAfterOpenIsNamedOnEveryRead() throws IOException {
        Path file = model(tmp.resolve("m.safetensors"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            truncate(file, Files.size(file) - 4096 * 4 - 100);
            for (String name : List.of("q.weight", "z.bias")) {
                var t = f.tensor(name);
                assertNames(assertThrows(IOException.class, () -> f.readFloats(t)), file, name, "truncated");
                assertNames(assertThrows(IOException.class, () -> f.readHostArray(t)), file, name, "truncated");
                assertNames(assertThrows(IOException.class, () -> f.readDoubles(t)), file, name, "truncated");
                assertNames(assertThrows(IOException.class, () -> f.map(t)), file, name, "truncated");
                assertNames(assertThrows(IOException.class,
                        () -> f.transferTo(t, Channels.newChannel(new ByteArrayOutputStream()))), file, name, "truncated");
            }
        }
    }

    @Test
    void aBaseTruncatedDuringTheMergeIsNamed() throws IOException {
        Path file = model(tmp.resolve("base.safetensors"));
        FourierFTAdapter adapter = FourierFTAdapter.builder().layer("q", new float[] {1, 2, 3}).build();
        Path out = tmp.resolve("merged.safetensors");
        try (SafetensorsModel base = SafetensorsModel.open(file); CpuFourierFT backend = new CpuFourierFT()) {
            MergePlan plan = MergePlan.build(base, adapter, null);
            truncate(file, 200); // inside the first tensor, after the plan has been made
            IOException e = assertThrows(IOException.class, () -> ModelMerger.merge(base, plan, backend, out, null));
            assertNames(e, file, "truncated");
        }
        assertTrue(Files.notExists(out));
    }
}
