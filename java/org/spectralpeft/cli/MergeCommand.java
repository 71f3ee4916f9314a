package org.spectralpeft.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import org.spectralpeft.api.FourierFTBackend;
import org.spectralpeft.io.AtomicFiles;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.peft.FourierFTAdapter;
import org.spectralpeft.peft.MergePlan;
import org.spectralpeft.peft.ModelMerger;

/**
 * {@code merge --base B --adapter A --out O [--backend auto|cpu|cuda] [--fan-in-fan-out REGEX]}: writes the
 * base model with a PEFT FourierFT adapter merged. Everything is checked before the output is started;
 * a failure leaves no output file.
 */
final class MergeCommand {
    private MergeCommand() {
    }

    static int run(String[] args, PrintStream out, PrintStream err) throws IOException {
        Path base = null;
        Path adapterDir = null;
        Path target = null;
        String backendName = "auto";
        String fanInFanOut = null;
        for (int i = 1; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--base" -> base = Path.of(Main.require(value, "--base"));
                case "--adapter" -> adapterDir = Path.of(Main.require(value, "--adapter"));
                case "--out" -> target = Path.of(Main.require(value, "--out"));
                case "--backend" -> backendName = Main.require(value, "--backend");
                case "--fan-in-fan-out" -> fanInFanOut = Main.require(value, "--fan-in-fan-out");
                default -> throw new UsageException("unknown option " + args[i]);
            }
            i++;
        }
        if (base == null || adapterDir == null || target == null) {
            throw new UsageException("merge needs --base, --adapter and --out");
        }
        if (target.toString().isEmpty()) {
            throw new UsageException("--out needs a file name");
        }
        AtomicFiles.checkTarget(target); // before anything is read
        Predicate<String> storedInOut = null;
        if (fanInFanOut != null) {
            try {
                storedInOut = Pattern.compile(fanInFanOut).asMatchPredicate();
            } catch (PatternSyntaxException e) {
                throw new UsageException("--fan-in-fan-out: '" + fanInFanOut + "' is not a valid regex");
            }
        }

        FourierFTAdapter adapter = FourierFTAdapter.load(adapterDir);
        try (SafetensorsModel model = SafetensorsModel.open(base)) {
            MergePlan plan = MergePlan.build(model, adapter, storedInOut);
            ModelMerger.checkOutput(model, plan, target); // before the backend starts (CUDA takes a while)
            try (FourierFTBackend backend = BackendOption.open(backendName, err)) {
                ProgressBar bar = ProgressBar.onTerminal();
                ModelMerger.Summary s;
                try {
                    s = ModelMerger.merge(model, plan, backend, target,
                            (done, total, tensor, merged) -> bar.update(done, total, tensor));
                } finally {
                    bar.finish();
                }
                out.printf("merged %d FourierFT layer%s, copied %d tensor%s (%.1f MB) into %s%n", s.layersMerged(),
                        s.layersMerged() == 1 ? "" : "s", s.tensorsCopied(), s.tensorsCopied() == 1 ? "" : "s",
                        s.bytesWritten() / 1e6, target);
                out.printf("backend %s, %.2f s%n", s.backend(), s.seconds());
            }
        }
        return 0;
    }
}
