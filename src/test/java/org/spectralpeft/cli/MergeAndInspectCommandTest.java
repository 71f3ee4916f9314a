package org.spectralpeft.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.TestData;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.peft.FourierFTAdapter;
import org.spectralpeft.peft.IfftNorm;
import org.spectralpeft.peft.ModelMergerContract;
import org.spectralpeft.peft.TinyCheckpoint;

/** The {@code merge} and {@code inspect} commands end to end: exit status, output file, messages. */
class MergeAndInspectCommandTest {
    @TempDir
    Path tmp;


    private static CliRun run(String... args) {
        return CliRun.run(args);
    }

    @Test
    void mergeWritesTheMergedModel() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.BF16);
        Files.createDirectories(tmp.resolve("base"));
        Path index = ckpt.writeSharded(tmp.resolve("base"));
        FourierFTAdapter adapter = TinyCheckpoint.adapter(data, 99, 150, IfftNorm.BACKWARD, tmp.resolve("adapter"));
        Path out = Files.createDirectories(tmp.resolve("out")).resolve("merged.safetensors");
        CliRun r = run("merge", "--base", index.toString(), "--adapter", tmp.resolve("adapter").toString(),
                "--out", out.toString(), "--backend", "cpu", "--fan-in-fan-out", TinyCheckpoint.CONV1D_MODULES);
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("merged 4 FourierFT layers, copied 5 tensors"), r.out());
        assertTrue(r.out().contains("backend cpu"), r.out());
        ModelMergerContract.check(ckpt, adapter, out, data);
        if (out.getFileSystem().supportedFileAttributeViews().contains("posix")) {
            // the output gets the permissions of any new file (the umask), not a temporary file's owner-only ones
            Path plain = Files.createFile(tmp.resolve("out/plain"));
            assertEquals(Files.getPosixFilePermissions(plain), Files.getPosixFilePermissions(out));
        }
    }

    @Test
    void mergeTakesAFouRAAdapterAndRefusesAnAdaptiveOne() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F16);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        org.spectralpeft.peft.FouRAAdapter adapter = org.spectralpeft.peft.FouRAModelMergerTest.adapter(data,
                org.spectralpeft.foura.FouRASpec.Transform.DFT, org.spectralpeft.foura.FouRASpec.Gate.FIXED, tmp.resolve("foura"));
        Path out = tmp.resolve("merged.safetensors");
        CliRun r = run("merge", "--base", base.toString(), "--adapter", tmp.resolve("foura").toString(),
                "--out", out.toString(), "--backend", "cpu", "--fan-in-fan-out", TinyCheckpoint.CONV1D_MODULES);
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("merged 4 FouRA layers, copied 5 tensors") && r.out().contains("backend cpu"), r.out());
        assertTrue(Files.size(out) > 0 && adapter.modules().size() == 4);

        org.spectralpeft.peft.FouRAModelMergerTest.adapter(data, org.spectralpeft.foura.FouRASpec.Transform.DCT,
                org.spectralpeft.foura.FouRASpec.Gate.ADAPTIVE, tmp.resolve("adaptive"));
        Path out2 = tmp.resolve("merged2.safetensors");
        r = run("merge", "--base", base.toString(), "--adapter", tmp.resolve("adaptive").toString(), "--out", out2.toString(),
                "--backend", "cpu", "--fan-in-fan-out", TinyCheckpoint.CONV1D_MODULES);
        assertTrue(r.status() != 0 && r.err().contains("ADAPTIVE"), r.both());
        assertFalse(Files.exists(out2));
    }

    @Test
    void refusalsLeaveNoOutput() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        Path adapterDir = tmp.resolve("adapter");
        TinyCheckpoint.adapter(data, 1, 150, IfftNorm.BACKWARD, adapterDir);
        Path out = tmp.resolve("merged.safetensors");

        // a non-FourierFT adapter, a truncated base model, a layer the base lacks, bad command lines
        Path lora = tmp.resolve("lora");
        Files.createDirectories(lora);
        Files.writeString(lora.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 8}");
        CliRun r = run("merge", "--base", base.toString(), "--adapter", lora.toString(), "--out", out.toString(), "--backend", "cpu");
        assertEquals(1, r.status());
        assertTrue(r.err().contains("peft_type is LORA"), r.err());

        byte[] whole = Files.readAllBytes(base);
        Path truncated = tmp.resolve("truncated.safetensors");
        Files.write(truncated, Arrays.copyOf(whole, whole.length - 3));
        r = run("merge", "--base", truncated.toString(), "--adapter", adapterDir.toString(), "--out", out.toString(), "--backend", "cpu");
        assertEquals(1, r.status());
        assertTrue(r.err().contains("truncated.safetensors") && r.err().contains("truncated"), r.err());

        Path other = tmp.resolve("other");
        FourierFTAdapter.builder().layer("model.layers.7.self_attn.q_proj", data.gaussian(10)).build().save(other);
        r = run("merge", "--base", base.toString(), "--adapter", other.toString(), "--out", out.toString(), "--backend", "cpu");
        assertEquals(1, r.status());
        assertTrue(r.err().contains("no tensor 'model.layers.7.self_attn.q_proj.weight'"), r.err());

        r = run("merge", "--base", base.toString(), "--adapter", adapterDir.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("needs --base, --adapter and --out"), r.err());
        r = run("merge", "--base", base.toString(), "--adapter", adapterDir.toString(), "--out", out.toString(), "--backend", "tpu");
        assertEquals(2, r.status());

        assertFalse(Files.exists(out));
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(0, files.filter(p -> p.getFileName().toString().endsWith(".partial")).count());
        }
    }

    /** Every input file, reached by its own name or another (a "..", a symbolic link, a hard link), is refused as --out. */
    @Test
    void outputMayNotBeAnyInputFile() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Files.createDirectories(tmp.resolve("base"));
        Path index = ckpt.writeSharded(tmp.resolve("base"));
        Path shard = tmp.resolve("base/model-00002-of-00002.safetensors");
        Path adapterDir = tmp.resolve("adapter");
        TinyCheckpoint.adapter(data, 3, 150, IfftNorm.BACKWARD, adapterDir);
        Path weights = adapterDir.resolve("adapter_model.safetensors");
        Path config = adapterDir.resolve("adapter_config.json");
        List<Path> inputs = List.of(index, shard, tmp.resolve("base/model-00001-of-00002.safetensors"), weights, config);
        List<byte[]> before = new ArrayList<>();
        for (Path p : inputs) {
            before.add(Files.readAllBytes(p));
        }

        Map<Path, Path> outs = new LinkedHashMap<>(); // --out -> the input it is
        outs.put(weights, weights);
        outs.put(config, config);
        outs.put(index, index);
        outs.put(shard, shard);
        outs.put(tmp.resolve("adapter/../adapter/./adapter_model.safetensors"), weights);
        outs.put(Files.createLink(tmp.resolve("hard-link.safetensors"), shard), shard);
        try {
            outs.put(Files.createSymbolicLink(tmp.resolve("sym-link.json"), config), config);
        } catch (UnsupportedOperationException | IOException e) {
            // no symbolic links on this file system
        }
        for (Map.Entry<Path, Path> o : outs.entrySet()) {
            CliRun r = run("merge", "--base", index.toString(), "--adapter", adapterDir.toString(),
                    "--out", o.getKey().toString(), "--backend", "cpu", "--fan-in-fan-out", TinyCheckpoint.CONV1D_MODULES);
            assertEquals(1, r.status(), "--out " + o.getKey() + ": " + r.out() + r.err());
            assertTrue(r.err().contains(o.getKey().toString()) && r.err().contains(o.getValue().getFileName().toString())
                    && r.err().contains("is the input file"), r.err());
        }
        for (int i = 0; i < inputs.size(); i++) {
            assertArrayEquals(before.get(i), Files.readAllBytes(inputs.get(i)), inputs.get(i) + " changed");
        }
        assertNoPartialFiles(tmp);
    }

    /** --out must name a regular file (or nothing) in an existing directory; checked before any work. */
    @Test
    void outputMustBeARegularFileInAnExistingDirectory() throws IOException, InterruptedException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        Path adapterDir = tmp.resolve("adapter");
        TinyCheckpoint.adapter(data, 3, 150, IfftNorm.BACKWARD, adapterDir);

        Path emptyDir = Files.createDirectories(tmp.resolve("empty-dir"));
        CliRun r = run("merge", "--base", base.toString(), "--adapter", adapterDir.toString(), "--out", emptyDir.toString(), "--backend", "cpu");
        assertEquals(1, r.status(), r.out() + r.err());
        assertTrue(r.err().contains(emptyDir.toString()) && r.err().contains("is a directory"), r.err());
        assertTrue(Files.isDirectory(emptyDir));

        Path fifo = tmp.resolve("fifo");
        if (new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0) {
            r = run("merge", "--base", base.toString(), "--adapter", adapterDir.toString(), "--out", fifo.toString(), "--backend", "cpu");
            assertEquals(1, r.status(), r.out() + r.err());
            assertTrue(r.err().contains(fifo.toString()) && r.err().contains("not a regular file"), r.err());
            assertTrue(Files.exists(fifo) && !Files.isRegularFile(fifo), "the FIFO was replaced");
        }

        r = run("merge", "--base", base.toString(), "--adapter", adapterDir.toString(), "--out", "", "--backend", "cpu");
        assertEquals(2, r.status(), r.out() + r.err());
        assertTrue(r.err().contains("--out"), r.err());

        Path missing = tmp.resolve("missing/merged.safetensors");
        r = run("merge", "--base", base.toString(), "--adapter", adapterDir.toString(), "--out", missing.toString(), "--backend", "cpu");
        assertEquals(1, r.status(), r.out() + r.err());
        assertTrue(r.err().contains(tmp.resolve("missing").toString()) && r.err().contains("does not exist"), r.err());
        assertFalse(Files.exists(tmp.resolve("missing")), "a directory was created");
        assertNoPartialFiles(tmp);
    }

    private static void assertNoPartialFiles(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            assertEquals(List.of(), files.filter(p -> p.getFileName().toString().endsWith(".partial")).toList());
        }
    }

    @Test
    void anOverflowingMergeFailsNamingTheModule() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F16);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        Path adapterDir = tmp.resolve("adapter");
        // ΔW of order 10^6: finite in float32, beyond float16's 65504
        FourierFTAdapter.builder().scaling(1e6).ifftNorm(IfftNorm.FORWARD)
                .layer("model.layers.0.self_attn.q_proj", data.gaussian(50)).build().save(adapterDir);
        Path out = tmp.resolve("merged.safetensors");
        CliRun r = run("merge", "--base", base.toString(), "--adapter", adapterDir.toString(), "--out", out.toString(), "--backend", "cpu");
        assertEquals(1, r.status(), r.out() + r.err());
        assertTrue(r.err().contains("module 'model.layers.0.self_attn.q_proj'") && r.err().contains("not finite"), r.err());
        assertFalse(Files.exists(out));
        assertNoPartialFiles(tmp);
    }

    @Test
    void inspectDescribesModelsAndAdapters() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F16);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        CliRun r = run("inspect", base.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("9 tensors"), r.out());
        assertTrue(r.out().matches("(?s).*transformer\\.h\\.0\\.attn\\.c_attn\\.weight\\s+F16\\s+\\[24, 40\\]\\s+1920\\n.*"), r.out());
        assertTrue(r.out().matches("(?s).*model\\.position_ids\\s+I64\\s+\\[1, 33\\]\\s+264\\n.*"), r.out());

        Files.createDirectories(tmp.resolve("sharded"));
        ckpt.writeSharded(tmp.resolve("sharded"));
        r = run("inspect", tmp.resolve("sharded").toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("(2 shards): 9 tensors"), r.out());

        TinyCheckpoint.adapter(data, 4242, 150, IfftNorm.ORTHO, tmp.resolve("adapter"));
        r = run("inspect", tmp.resolve("adapter").toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("random_loc_seed 4242") && r.out().contains("ifft2_norm ortho"), r.out());
        assertTrue(r.out().contains("4 layers, 350 coefficients; layers per n: {50=3, 200=1}"), r.out());
        assertTrue(r.out().matches("(?s).*model\\.layers\\.1\\.mlp\\.fc\\s+200\\n.*"), r.out());

        r = run("inspect", tmp.resolve("nothing").toString());
        assertEquals(1, r.status());
        assertTrue(r.err().contains("nothing"), r.err());
    }

    @Test
    void usageIsPrintedForUnknownCommands() {
        CliRun r = run("frobnicate");
        assertEquals(2, r.status());
        assertTrue(r.err().contains("merge --base"), r.err());
        assertArrayEquals(new byte[0], r.out().getBytes());
    }
}
