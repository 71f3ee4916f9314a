package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.spectralpeft.TestData;
import org.spectralpeft.io.TensorDType;

/** A merge ended by SIGTERM (what destroy() sends) or SIGINT (Ctrl-C) leaves no partial file behind. */
class MergeSignalTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"TERM", "INT"})
    void aSignalledMergeLeavesNoPartialFile(String signal) throws IOException, InterruptedException {
        if (signal.equals("INT")) {
            // a child started with SIGINT ignored (as background jobs are) keeps ignoring it
            Assumptions.assumeFalse(ignoresSigint(), "SIGINT is ignored by this process and its children");
        }
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        TinyCheckpoint.adapter(data, 3, 150, IfftNorm.BACKWARD, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process child = new ProcessBuilder(java.toString(), "-Xmx256m", "-Xshare:auto", "-cp",
                System.getProperty("java.class.path"), HeldMerge.class.getName(),
                base.toString(), tmp.resolve("adapter").toString(), out.toString())
                .redirectErrorStream(true).start();
        try {
            BufferedReader lines = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
            StringBuilder said = new StringBuilder();
            for (String line; (line = lines.readLine()) != null && !line.equals("merging"); ) {
                said.append(line).append('\n');
            }
            assertTrue(child.isAlive(), "the merge ended early:\n" + said);
            assertEquals(1, partials().size(), "the merge in progress has its partial file");
            if (signal.equals("TERM")) {
                child.destroy();
            } else {
                assertEquals(0, new ProcessBuilder("kill", "-INT", Long.toString(child.pid())).start().waitFor());
            }
            assertTrue(child.waitFor(20, TimeUnit.SECONDS), "the merge did not end on SIG" + signal);
            assertEquals(128 + (signal.equals("TERM") ? 15 : 2), child.exitValue());
        } finally {
            child.destroyForcibly();
        }
        assertEquals(List.of(), partials());
        assertFalse(Files.exists(out));
    }

    private List<Path> partials() throws IOException {
        try (Stream<Path> files = Files.list(tmp)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".partial")).toList();
        }
    }

    private static boolean ignoresSigint() throws IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.isReadable(status)) {
            return false;
        }
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith("SigIgn:")) {
                return (Long.parseUnsignedLong(line.substring(7).trim(), 16) & (1L << 1)) != 0;
            }
        }
        return false;
    }
}
