package org.spectralpeft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.TestData;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.peft.IfftNorm;
import org.spectralpeft.peft.TinyCheckpoint;

/** The command line itself: help, version, typed options, suggestions and exit statuses. */
class CommandLineTest {
    private static final List<String> COMMANDS = List.of("demo", "merge", "inspect", "backend");

    @TempDir
    Path tmp;


    private static CliRun run(String... args) {
        return CliRun.run(args);
    }

    /** A bad command line: status 2, one "error:" line first, nothing on standard output, no stack trace. */
    private static CliRun badCommandLine(String... args) {
        CliRun r = run(args);
        assertEquals(Main.BAD_COMMAND_LINE, r.status(), String.join(" ", args) + ": " + r.both());
        assertTrue(r.err().startsWith("error: "), r.err());
        assertEquals("", r.out());
        assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), r.err());
        return r;
    }

    @Test
    void helpOnEveryCommand() {
        CliRun top = run("--help");
        assertEquals(0, top.status(), top.err());
        assertEquals("", top.err());
        for (String command : COMMANDS) {
            assertTrue(top.out().contains("\n  " + command), command + " missing from\n" + top.out());
        }
        assertTrue(top.out().contains("merge --base=<model> --adapter=<dir or file> --out=<file>"), top.out());
        assertTrue(top.out().contains("2 bad command line"), top.out());
        assertEquals(top.out(), run("-h").out());
        assertEquals(top.out(), run("help").out());

        for (String command : COMMANDS) {
            CliRun r = run(command, "--help");
            assertEquals(0, r.status(), command + ": " + r.err());
            assertTrue(r.out().startsWith("Usage: spectral-peft " + command), r.out());
            CliRun viaHelp = run("help", command);
            assertEquals(0, viaHelp.status(), viaHelp.err());
            assertEquals(r.out(), viaHelp.out());
        }
        CliRun merge = run("merge", "--help");
        for (String option : List.of("--base", "--adapter", "--out", "--backend", "--fan-in-fan-out", "--progress", "--quiet")) {
            assertTrue(merge.out().contains(option), option + " missing from\n" + merge.out());
        }
        badCommandLine("help", "frobnicate");
    }

    @Test
    void versionOnEveryCommand() {
        CliRun r = run("--version");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().startsWith("spectral-peft "), r.out());
        assertEquals(r.out(), run("-V").out());
        for (String command : COMMANDS) {
            assertEquals(r.out(), run(command, "--version").out(), command);
        }
    }

    @Test
    void versionComesFromTheManifestElseFromMavensRecord() throws IOException {
        var pom = new ByteArrayInputStream("groupId=org.spectralpeft\nversion=1.2.3\n".getBytes(StandardCharsets.ISO_8859_1));
        assertEquals("1.2.3", Version.of(null, pom));
        assertEquals("2.0.0", Version.of("2.0.0", new ByteArrayInputStream(new byte[0])));
        assertTrue(Version.of(null, null).contains("unknown"));
    }

    @Test
    void typedOptionsSayWhatIsWrong() {
        for (String tokens : List.of("-3", "0", "abc", "4097", "1.5")) {
            CliRun r = badCommandLine("demo", "--tokens", tokens);
            assertTrue(r.err().contains("--tokens") && r.err().contains("'" + tokens + "' is not a whole number from 1 to 4096"),
                    r.err());
            assertFalse(r.err().contains("For input string"), r.err());
            assertEquals(r.err(), badCommandLine("demo", "--tokens=" + tokens).err());
        }
        assertTrue(badCommandLine("demo", "--tokens").err().contains("--tokens"));
        assertTrue(badCommandLine("demo", "--backend=tpu").err().contains("'tpu' is not one of auto, cpu, cuda"));
        assertTrue(badCommandLine("demo", "--backend", "CPU").err().contains("'CPU' is not one of auto, cpu, cuda"));
        CliRun regex = badCommandLine("merge", "--base", "b", "--adapter", "a", "--out", "o", "--fan-in-fan-out", "h.(");
        assertTrue(regex.err().contains("--fan-in-fan-out") && regex.err().contains("'h.(' is not a valid regex"), regex.err());
        CliRun progress = badCommandLine("merge", "--base", "b", "--adapter", "a", "--out", "o", "--progress=sometimes");
        assertTrue(progress.err().contains("'sometimes' is not one of auto, always, never"), progress.err());
        assertTrue(badCommandLine("merge", "--base", "b", "--adapter", "a", "--out", "o", "--quiet", "--progress=always")
                .err().contains("contradict"));
        assertTrue(badCommandLine("inspect").err().contains("<file or dir>"));
        assertTrue(badCommandLine("inspect", "a", "b").err().contains("'b'"));
    }

    @Test
    void typosGetSuggestions() {
        CliRun r = badCommandLine("merg");
        assertTrue(r.err().contains("unknown command 'merg'") && r.err().contains("Did you mean") && r.err().contains("merge"),
                r.err());
        r = badCommandLine("demo", "--tokns", "3");
        assertTrue(r.err().contains("'--tokns'") && r.err().contains("--tokens"), r.err());
        r = badCommandLine("merge", "--adaptr", "a", "--base", "b", "--out", "o");
        assertTrue(r.err().contains("'--adaptr'") && r.err().contains("--adapter"), r.err());
    }

    @Test
    void exitStatusesAreAsDocumented() throws IOException {
        TestData data = new TestData();
        Path base = new TinyCheckpoint(data, TensorDType.F32).writeSingle(tmp.resolve("model.safetensors"));
        Path adapter = tmp.resolve("adapter");
        TinyCheckpoint.adapter(data, 5, 150, IfftNorm.BACKWARD, adapter);
        Path out = tmp.resolve("merged.safetensors");

        // 2: no command, an unknown one, an option missing, an unknown option; with the usage or a pointer to it
        assertTrue(badCommandLine().err().contains("Commands:"));
        assertTrue(badCommandLine("frobnicate").err().contains("Commands:"));
        CliRun missing = badCommandLine("merge", "--base", base.toString(), "--out", out.toString());
        assertTrue(missing.err().contains("merge needs --base, --adapter and --out (missing: --adapter)"), missing.err());
        assertTrue(badCommandLine("inspect", "--verbose", base.toString()).err().contains("--help"));
        // 1: refused
        CliRun refused = run("merge", "--base", tmp.resolve("none.safetensors").toString(), "--adapter", adapter.toString(),
                "--out", out.toString(), "--backend", "cpu");
        assertEquals(Main.FAILED, refused.status(), refused.both());
        assertTrue(refused.err().startsWith("error: ") && refused.err().contains("none.safetensors"), refused.err());
        assertFalse(refused.err().contains("\tat "), refused.err());
        // 0: done, with --opt=value throughout
        CliRun done = run("merge", "--base=" + base, "--adapter=" + adapter, "--out=" + out, "--backend=cpu",
                "--fan-in-fan-out=" + TinyCheckpoint.CONV1D_MODULES, "--progress=never");
        assertEquals(Main.OK, done.status(), done.both());
        assertTrue(done.out().contains("merged 4 FourierFT layers"), done.out());
        assertEquals("", done.err());
        assertEquals(Main.OK, run("inspect", out.toString()).status());
    }

    @Test
    void quietPrintsOnlyErrors() throws IOException {
        TestData data = new TestData();
        Path base = new TinyCheckpoint(data, TensorDType.BF16).writeSingle(tmp.resolve("model.safetensors"));
        Path adapter = tmp.resolve("adapter");
        TinyCheckpoint.adapter(data, 6, 150, IfftNorm.BACKWARD, adapter);
        Path out = tmp.resolve("merged.safetensors");
        for (String backend : List.of("cpu", "auto")) { // auto: no "CUDA not used" note either
            CliRun r = run("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out", out.toString(),
                    "--backend", backend, "--fan-in-fan-out", TinyCheckpoint.CONV1D_MODULES, "-q");
            assertEquals(Main.OK, r.status(), r.both());
            assertEquals("", r.both());
            assertTrue(Files.size(out) > 0);
        }
        CliRun failed = run("merge", "--base", base.toString(), "--adapter", tmp.resolve("none").toString(), "--out",
                out.toString(), "--quiet");
        assertEquals(Main.FAILED, failed.status());
        assertTrue(failed.err().startsWith("error: "), failed.err());
    }

    @Test
    void progressAlwaysDrawsAByteWeightedBarOnStandardError() throws IOException {
        TestData data = new TestData();
        Path base = new TinyCheckpoint(data, TensorDType.F32).writeSingle(tmp.resolve("model.safetensors"));
        Path adapter = tmp.resolve("adapter");
        TinyCheckpoint.adapter(data, 7, 150, IfftNorm.BACKWARD, adapter);
        CliRun r = run("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
                tmp.resolve("merged.safetensors").toString(), "--backend", "cpu", "--fan-in-fan-out",
                TinyCheckpoint.CONV1D_MODULES, "--progress", "always");
        assertEquals(Main.OK, r.status(), r.both());
        assertTrue(r.err().startsWith("\r[") && r.err().contains("100%"), r.err());
        assertTrue(r.err().endsWith("\r"), "the bar is cleared at the end");
        assertFalse(r.out().contains("\r"), r.out());
        assertTrue(r.out().contains("merged 4 FourierFT layers"), r.out());
    }

    @Test
    void demoRunsWithTypedOptions() {
        CliRun r = run("demo", "--backend=cpu", "--tokens=2");
        assertEquals(Main.OK, r.status(), r.both());
        assertTrue(r.out().contains("backend: cpu") && r.out().contains("; 2 tokens") && r.out().contains("checks: passed"),
                r.out());
    }

    @Test
    void tloraAdaptersAndTheAuthorsFilesAreInspectedAndMerged() throws IOException {
        org.spectralpeft.TestData data = new org.spectralpeft.TestData();
        Path base = new org.spectralpeft.peft.TinyCheckpoint(data, org.spectralpeft.io.TensorDType.BF16)
                .writeSingle(tmp.resolve("model.safetensors"));
        org.spectralpeft.tlora.TLoRASpec spec = org.spectralpeft.tlora.TLoRASpec.of(new int[] {4, 16}, new int[] {6, 8},
                2, org.spectralpeft.tlora.TLoRASpec.Residual.TTM, 2, 0.5f);
        org.spectralpeft.tlora.TLoRAParameters p = org.spectralpeft.tlora.TLoRAParameters.initial(spec,
                new java.util.Random(data.seed));
        Path dir = tmp.resolve("tlora");
        org.spectralpeft.peft.TLoRAAdapter.of(java.util.Map.of("model.layers.1.mlp.fc",
                new org.spectralpeft.peft.TLoRAAdapter.Layer(spec, p)), "tiny/llama").save(dir);
        CliRun r = run("inspect", dir.toString());
        assertEquals(Main.OK, r.status(), r.both());
        assertTrue(r.out().contains("TLoRA adapter") && r.out().contains("r 2, tlora_alpha 0.5, transform_rank 2, residual TTM")
                && r.out().contains("1 layer, 1008 parameters") && r.out().contains("64x48  [4, 16]; [6, 8]"), r.out());
        Path out = tmp.resolve("merged.safetensors");
        r = run("merge", "--base", base.toString(), "--adapter", dir.toString(), "--out", out.toString(), "--backend=cpu",
                "--progress=never");
        assertEquals(Main.OK, r.status(), r.both());
        assertTrue(r.out().contains("merged 1 TLoRA layer"), r.out());
        CliRun refused = run("merge", "--base", base.toString(), "--adapter", dir.toString(), "--out",
                tmp.resolve("other.safetensors").toString(), "--tlora-alpha", "2");
        assertTrue(refused.status() != Main.OK && refused.err().contains("--tlora-alpha applies to"), refused.both());

        // the same layer in a file of the authors' code: their key names and shapes
        Path authors = tmp.resolve("authors.safetensors");
        java.util.List<org.spectralpeft.io.SafetensorsWriter.Entry> entries = new java.util.ArrayList<>();
        java.util.Map<String, float[]> values = new java.util.LinkedHashMap<>();
        String key = "model.layers.1.mlp.processor.to_q_oft.";
        for (int d = 0; d < 2; d++) {
            int n = spec.inFactor(d);
            values.put(key + "transform_core." + d, p.transformCore(d));
            entries.add(new org.spectralpeft.io.SafetensorsWriter.Entry(key + "transform_core." + d,
                    org.spectralpeft.io.TensorDType.F32, new long[] {n, n, 2, 2}));
            values.put(key + "ttm_core." + d, p.residual(d));
            entries.add(new org.spectralpeft.io.SafetensorsWriter.Entry(key + "ttm_core." + d,
                    org.spectralpeft.io.TensorDType.F32, new long[] {spec.outFactor(d), n, 2, 2}));
        }
        try (org.spectralpeft.io.SafetensorsWriter w = org.spectralpeft.io.SafetensorsWriter.create(authors, entries,
                java.util.Map.of())) {
            for (java.util.Map.Entry<String, float[]> e : values.entrySet()) {
                w.write(e.getKey(), org.spectralpeft.io.TensorBytes.of(e.getValue()));
            }
            w.commit();
        }
        r = run("inspect", authors.toString());
        assertEquals(Main.OK, r.status(), r.both());
        assertTrue(r.out().contains("TLoRA layers of the authors' code") && r.out().contains("model.layers.1.mlp.to_q"),
                r.out());
        r = run("merge", "--base", base.toString(), "--adapter", authors.toString(), "--out",
                tmp.resolve("m2.safetensors").toString(), "--backend=cpu", "--tlora-alpha", "0.5");
        assertTrue(r.status() != Main.OK && r.err().contains("model.layers.1.mlp.to_q"), r.both()); // no such weight
    }

    @Test
    void inspectShowsAFouRAAdapter() throws IOException {
        Path dir = tmp.resolve("foura");
        org.spectralpeft.peft.FouRAAdapter.builder(2, org.spectralpeft.foura.FouRASpec.Transform.DCT,
                        org.spectralpeft.foura.FouRASpec.Gate.FIXED, 0.5f)
                .layer("model.layers.0.self_attn.q_proj", 8, 6, new float[12], new float[16], new float[] {1f, 0f})
                .baseModel("tiny/llama").build().save(dir);
        CliRun r = run("inspect", dir.toString());
        assertEquals(Main.OK, r.status(), r.both());
        assertTrue(r.out().contains("FouRA adapter") && r.out().contains("r 2, foura_alpha 0.5, transform dct, gate fixed")
                && r.out().contains("base model tiny/llama") && r.out().contains("1 layer, 30 parameters")
                && r.out().contains("model.layers.0.self_attn.q_proj") && r.out().contains("8x6  10"), r.out());
    }

    @Test
    void tloraDemoRunsBothRingRanksAndResidualsAndChecksThem() {
        CliRun r = run("demo", "--adapter", "tlora", "--backend=cpu", "--tokens=2");
        assertEquals(Main.OK, r.status(), r.both());
        for (String layer : new String[] {"transform ring rank 1, LORA", "transform ring rank 1, TR",
                "transform ring rank 4, LORA", "transform ring rank 4, TR"}) {
            assertTrue(r.out().contains(layer), layer + " in " + r.out());
        }
        assertTrue(r.out().contains("checks: passed"), r.out());
        if (org.spectralpeft.Backends.cudaUnavailableReason().isPresent()) { // CUDA asked for and absent: said so
            CliRun cuda = run("demo", "--adapter", "tlora", "--backend=cuda", "--tokens=1");
            assertTrue(cuda.status() != Main.OK && cuda.err().contains("CUDA backend unavailable"), cuda.both());
        }
    }

    @Test
    void fouraDemoRunsBothTransformsAndChecksThem() {
        CliRun r = run("demo", "--adapter", "foura", "--backend=cpu", "--tokens=3");
        assertEquals(Main.OK, r.status(), r.both());
        assertTrue(r.out().contains("r = 16, DFT") && r.out().contains("r = 16, DCT") && r.out().contains("checks: passed"),
                r.out());
        assertTrue(badCommandLine("demo", "--adapter", "lora").err().contains("'lora' is not one of fourierft, foura, tlora"));
        if (org.spectralpeft.Backends.cudaUnavailableReason().isPresent()) { // CUDA asked for and absent: said so
            CliRun cuda = run("demo", "--adapter", "foura", "--backend=cuda", "--tokens=1");
            assertTrue(cuda.status() != Main.OK && cuda.err().contains("CUDA backend unavailable"), cuda.both());
        }
    }
}
