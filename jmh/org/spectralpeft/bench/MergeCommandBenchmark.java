package org.spectralpeft.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.peft.FourierFTAdapter;
import org.spectralpeft.peft.MergePlan;
import org.spectralpeft.peft.ModelMerger;

/**
 * The {@code merge} command's work end to end ({@link ModelMerger#merge}): read a safetensors checkpoint,
 * merge a FourierFT adapter into its q and v projections, copy everything else, write the result. The
 * checkpoint is LLaMA-7B-like blocks of 4096 × 4096 projections (q, k, v, o; q and v adapted, n = 1000)
 * plus their norms, written once per trial to a temporary folder. The folder is in {@code /dev/shm} where
 * that exists with room to spare (memory-backed, so the final fsync costs nothing and the figure is the
 * host's reading, merging and writing, not the disk's speed), else in java.io.tmpdir;
 * {@code -p folder=/some/dir} chooses it.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 5)
@Fork(1)
public class MergeCommandBenchmark {
    private static final int D = 4096;
    private static final int N = 1000;

    @Param({"cpu", "cuda"})
    public String backend;

    @Param({"bfloat16", "float32"})
    public String dtype;

    @Param({"4"})
    public int blocks;

    /** Parent of the temporary folder; empty: /dev/shm if present, else java.io.tmpdir. */
    @Param({""})
    public String folder;

    private Path dir;
    private Path out;
    private FourierFTBackend ft;
    private SafetensorsModel model;
    private MergePlan plan;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        ft = Bench.open(backend);
        dir = Files.createTempDirectory(parentFolder(), "merge-bench");
        out = dir.resolve("merged.safetensors");
        Path base = writeCheckpoint(dir.resolve("model.safetensors"), Bench.dtype(dtype), blocks);
        FourierFTAdapter.Builder adapter = FourierFTAdapter.builder().scaling(150);
        for (int b = 0; b < blocks; b++) {
            adapter.layer(module(b, "q_proj"), Bench.gaussian(N, 10 + b));
            adapter.layer(module(b, "v_proj"), Bench.gaussian(N, 1000 + b));
        }
        Path adapterDir = dir.resolve("adapter");
        adapter.build().save(adapterDir);
        model = SafetensorsModel.open(base);
        plan = MergePlan.build(model, FourierFTAdapter.load(adapterDir), null);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        Bench.closeAll(model, ft);
        if (dir != null) {
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    @Benchmark
    public ModelMerger.Summary merge() throws IOException {
        return ModelMerger.merge(model, plan, ft, out, null);
    }

    // The checkpoint, the output and its temporary sibling must fit: /dev/shm only when it has room for them.
    private Path parentFolder() throws IOException {
        if (!folder.isEmpty()) {
            return Path.of(folder);
        }
        Path shm = Path.of("/dev/shm");
        long checkpointBytes = (long) blocks * (4L * D * D + D) * Bench.dtype(dtype).bytes();
        if (Files.isDirectory(shm) && Files.isWritable(shm)
                && Files.getFileStore(shm).getUsableSpace() > 4 * checkpointBytes) {
            return shm;
        }
        return Path.of(System.getProperty("java.io.tmpdir"));
    }

    private static String module(int block, String projection) {
        return "model.layers." + block + ".self_attn." + projection;
    }

    private static Path writeCheckpoint(Path file, DType valueType, int blocks) throws IOException {
        TensorDType dtype = TensorDType.of(valueType);
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (int b = 0; b < blocks; b++) {
            for (String p : List.of("q_proj", "k_proj", "v_proj", "o_proj")) {
                entries.add(new SafetensorsWriter.Entry(module(b, p) + ".weight", dtype, new long[] {D, D}));
            }
            entries.add(new SafetensorsWriter.Entry("model.layers." + b + ".input_layernorm.weight", dtype,
                    new long[] {D}));
        }
        HostArray weight = Bench.gaussian(valueType, D * D, 3);
        HostArray norm = Bench.gaussian(valueType, D, 4);
        try (SafetensorsWriter w = SafetensorsWriter.create(file, entries, Map.of("format", "pt"))) {
            for (SafetensorsWriter.Entry e : entries) {
                w.write(e.name(), e.shape().length == 2 ? weight : norm);
            }
            w.commit();
        }
        return file;
    }
}
