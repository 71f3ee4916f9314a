package org.spectralpeft.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.TensorInfo;
import org.spectralpeft.peft.AdapterFiles;
import org.spectralpeft.peft.FouRAAdapter;
import org.spectralpeft.peft.FourierFTAdapter;
import org.spectralpeft.peft.FourierFTAdapterConfig;
import org.spectralpeft.peft.TLoRAAdapter;
import org.spectralpeft.tlora.TLoRASpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * {@code inspect <file or dir>}: for a PEFT adapter directory, its settings and layers (FourierFT: with their n;
 * FouRA: with their shapes and FIXED masks; TLoRA: with their shapes and factorisations); for a safetensors file
 * of the authors' TLoRA code, its TLoRA layers; for any other safetensors file, index or model directory, every
 * tensor with dtype, shape and size.
 */
@Command(name = "inspect", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = {"Tensors, dtypes and shapes of a safetensors file, index or model directory;",
                "settings and layers of a FourierFT (with n), FouRA or TLoRA (with shapes) adapter directory,",
                "or of the TLoRA layers in a safetensors file of the authors' code."})
final class InspectCommand implements Callable<Integer> {
    @Parameters(paramLabel = "<file or dir>", description = "a .safetensors file, an index, a model directory or an adapter directory")
    Path path;

    @Override
    public Integer call() throws IOException {
        PrintStream out = System.out;
        if (Files.isDirectory(path) && Files.isRegularFile(path.resolve(FourierFTAdapterConfig.FILE))) {
            String type = AdapterFiles.peftType(path).orElse("");
            if (type.equals(FouRAAdapter.PEFT_TYPE)) {
                describeFouRA(FouRAAdapter.load(path), path, out);
            } else if (type.equals(TLoRAAdapter.PEFT_TYPE)) {
                describeTLoRA(TLoRAAdapter.load(path), "TLoRA adapter " + path, out);
            } else {
                describeAdapter(FourierFTAdapter.load(path), path, out);
            }
        } else if (Files.isRegularFile(path) && path.toString().endsWith(".safetensors")
                && TLoRAAdapter.holdsAuthorsLayers(path)) {
            describeTLoRA(TLoRAAdapter.loadAuthors(path, 1f), "TLoRA layers of the authors' code in " + path
                    + " (their files do not store alpha: 1 assumed)", out);
        } else {
            try (SafetensorsModel model = SafetensorsModel.open(path)) {
                describeModel(model, out);
            }
        }
        return Main.OK;
    }

    /**
     * Lines gathered into blocks of about 64 K characters, each handed to the stream in one call: printing
     * line by line costs a dozen writes and a flush per line, seconds for a model of 200,000 tensors.
     */
    private static final class Lines {
        private static final int BLOCK = 1 << 16;
        private final PrintStream out;
        private final StringBuilder sb = new StringBuilder(BLOCK + 1024);

        Lines(PrintStream out) {
            this.out = out;
        }

        Lines add(String s) {
            sb.append(s);
            return this;
        }

        Lines pad(String s, int width) { // left-aligned in width columns
            sb.append(s);
            return spaces(width - s.length());
        }

        Lines padLeft(String s, int width) { // right-aligned in width columns
            return spaces(width - s.length()).add(s);
        }

        private Lines spaces(int n) {
            for (int i = 0; i < n; i++) {
                sb.append(' ');
            }
            return this;
        }

        void end() {
            sb.append(System.lineSeparator());
            if (sb.length() >= BLOCK) {
                flush();
            }
        }

        void flush() {
            out.print(sb);
            out.flush();
            sb.setLength(0);
        }
    }

    private static void describeAdapter(FourierFTAdapter adapter, Path dir, PrintStream out) {
        FourierFTAdapterConfig c = adapter.config();
        out.printf("FourierFT adapter %s%n", dir);
        out.printf("  random_loc_seed %d, scaling %s, ifft2_norm %s, fan_in_fan_out %s%n", c.randomLocSeed(),
                c.scaling(), c.ifftNorm().peftName(), c.fanInFanOut());
        out.printf("  n_frequency %d%s%s%n", c.nFrequency(),
                c.nFrequencyPattern().isEmpty() ? "" : ", n_frequency_pattern " + c.nFrequencyPattern(),
                c.alphaFraction() == null ? "" : ", alpha " + c.alphaFraction() + " (n = alpha·d_in·d_out)");
        if (c.baseModel() != null) {
            out.printf("  base model %s%n", c.baseModel());
        }
        Map<Integer, Integer> byN = new TreeMap<>();
        long total = 0;
        int width = 6;
        for (String m : adapter.modules()) {
            byN.merge(adapter.n(m), 1, Integer::sum);
            total += adapter.n(m);
            width = Math.max(width, m.length());
        }
        out.printf("  %d layer%s, %d coefficients; layers per n: %s%n", adapter.modules().size(),
                adapter.modules().size() == 1 ? "" : "s", total, byN);
        out.printf("  %-" + width + "s  %8s%n", "module", "n");
        Lines lines = new Lines(out);
        for (String m : adapter.modules()) {
            lines.add("  ").pad(m, width).add("  ").padLeft(Integer.toString(adapter.n(m)), 8).end();
        }
        lines.flush();
    }

    private static void describeFouRA(FouRAAdapter adapter, Path dir, PrintStream out) {
        out.printf("FouRA adapter %s%n", dir);
        out.printf("  r %d, foura_alpha %s, transform %s, gate %s, fan_in_fan_out %s%n", adapter.rank(), adapter.alpha(),
                adapter.transform().name().toLowerCase(java.util.Locale.ROOT),
                adapter.gate().name().toLowerCase(java.util.Locale.ROOT), adapter.fanInFanOut());
        if (adapter.baseModel() != null) {
            out.printf("  base model %s%n", adapter.baseModel());
        }
        long parameters = 0;
        int width = 6;
        for (String m : adapter.modules()) {
            FouRASpec s = adapter.layer(m).spec();
            parameters += s.aLength() + s.bLength() + s.gateLength();
            width = Math.max(width, m.length());
        }
        out.printf("  %d layer%s, %d parameters%n", adapter.modules().size(), adapter.modules().size() == 1 ? "" : "s",
                parameters);
        out.printf("  %-" + width + "s  %12s  %s%n", "module", "d_out x d_in", "mask (FIXED gate)");
        Lines lines = new Lines(out);
        for (String m : adapter.modules()) {
            FouRAAdapter.Layer l = adapter.layer(m);
            lines.add("  ").pad(m, width).add("  ").padLeft(l.spec().dOut() + "x" + l.spec().dIn(), 12);
            if (adapter.gate() == FouRASpec.Gate.FIXED) {
                StringBuilder mask = new StringBuilder();
                for (float v : l.gate()) {
                    mask.append(v == 0f ? '0' : '1');
                }
                lines.add("  ").add(mask.toString());
            }
            lines.end();
        }
        lines.flush();
    }

    private static void describeTLoRA(TLoRAAdapter adapter, String title, PrintStream out) {
        out.println(title);
        out.printf("  r %d, tlora_alpha %s, transform_rank %d, residual %s%n", adapter.rank(), adapter.alpha(),
                adapter.transformRank(), adapter.residual());
        if (adapter.baseModel() != null) {
            out.printf("  base model %s%n", adapter.baseModel());
        }
        long parameters = 0;
        int width = 6;
        for (String m : adapter.modules()) {
            TLoRASpec s = adapter.layer(m).spec();
            for (int d = 0; d < s.inOrder(); d++) {
                parameters += s.transformCoreLength(d);
            }
            for (int k = 0; k < s.residualArrays(); k++) {
                parameters += s.residualLength(k);
            }
            width = Math.max(width, m.length());
        }
        out.printf("  %d layer%s, %d parameters%n", adapter.modules().size(), adapter.modules().size() == 1 ? "" : "s",
                parameters);
        out.printf("  %-" + width + "s  %12s  %s%n", "module", "d_out x d_in", "factors (out; in)");
        Lines lines = new Lines(out);
        for (String m : adapter.modules()) {
            TLoRASpec s = adapter.layer(m).spec();
            lines.add("  ").pad(m, width).add("  ").padLeft(s.dOut() + "x" + s.dIn(), 12).add("  ")
                    .add(java.util.Arrays.toString(s.outShape()) + "; " + java.util.Arrays.toString(s.inShape())).end();
        }
        lines.flush();
    }

    static void describeModel(SafetensorsModel model, PrintStream out) throws IOException {
        long bytes = 0;
        int width = 6;
        for (SafetensorsFile shard : model.shards()) {
            bytes += shard.dataLength();
        }
        for (String name : model.tensorNames()) {
            width = Math.max(width, name.length());
        }
        out.printf("safetensors %s%s: %d tensors, %.1f MB%n", model.source(),
                model.isSharded() ? " (" + model.shards().size() + " shards)" : "", model.tensorNames().size(), bytes / 1e6);
        if (!model.metadata().isEmpty()) {
            out.printf("  metadata %s%n", model.metadata());
        }
        out.printf("  %-" + width + "s  %-7s %-18s %12s%n", "tensor", "dtype", "shape", "bytes");
        Lines lines = new Lines(out);
        for (SafetensorsFile shard : model.shards()) {
            for (int i = 0; i < shard.tensorCount(); i++) {
                TensorInfo t = shard.tensor(i);
                lines.add("  ").pad(t.name(), width).add("  ").pad(t.dtype().tag(), 7).add(" ")
                        .pad(t.shapeString(), 18).add(" ").padLeft(Long.toString(t.byteLength()), 12).end();
            }
        }
        lines.flush();
    }
}
