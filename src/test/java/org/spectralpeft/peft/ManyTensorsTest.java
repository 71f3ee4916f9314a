package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;

/**
 * Memory follows the weights, not the tensor count: a model of 100,000 one-element tensors (a 7 MB file)
 * is inspected and merged by a JVM with a 32 MB heap. An object graph per tensor (a JSON tree, a
 * TensorInfo and map entries each) needs several hundred bytes a tensor, far more than that heap.
 */
class ManyTensorsTest {
    private static final int TENSORS = 100_000;

    @TempDir
    Path tmp;

    static Path manyTensors(Path file, int count) throws IOException {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        entries.add(new SafetensorsWriter.Entry("q.weight", TensorDType.F32, new long[] {8, 8}));
        for (int i = 0; i < count; i++) {
            entries.add(new SafetensorsWriter.Entry("t" + Integer.toHexString(i), TensorDType.F32, new long[] {1}));
        }
        try (SafetensorsWriter w = SafetensorsWriter.create(file, entries, Map.of("format", "pt"))) {
            w.write("q.weight", TensorBytes.of(new float[64]));
            for (int i = 1; i < entries.size(); i++) {
                w.write(entries.get(i).name(), TensorBytes.of(new float[] {i}));
            }
            w.commit();
        }
        return file;
    }

    private static String run(Path dir, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "-Xmx32m", "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
                "org.spectralpeft.cli.Main"));
        command.addAll(List.of(args));
        Path log = dir.resolve("child-" + System.nanoTime() + ".log");
        Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "timed out: " + command);
        String out = Files.readString(log);
        int lines = out.split("\n", -1).length;
        assertEquals(0, p.exitValue(), String.join(" ", args) + " failed (" + lines + " lines): "
                + out.substring(Math.max(0, out.length() - 2000)));
        return out;
    }

    @Test
    void inspectAndMergeRunInAHeapSmallerThanAnObjectPerTensor() throws Exception {
        Path base = manyTensors(tmp.resolve("many.safetensors"), TENSORS);
        Path adapter = tmp.resolve("adapter");
        FourierFTAdapter.builder().scaling(1).layer("q", new float[] {1, 2, 3, 4}).build().save(adapter);

        String inspected = run(tmp, "inspect", base.toString());
        assertTrue(inspected.contains((TENSORS + 1) + " tensors"), inspected.substring(0, 300));

        Path out = tmp.resolve("merged.safetensors");
        run(tmp, "merge", "--backend", "cpu", "--base", base.toString(), "--adapter", adapter.toString(),
                "--out", out.toString());
        try (SafetensorsFile merged = SafetensorsFile.open(out)) {
            assertEquals(TENSORS + 1, merged.tensors().size());
            assertEquals(77f, merged.readFloats(merged.tensor("t4c"))[0]);
        }
    }
}
