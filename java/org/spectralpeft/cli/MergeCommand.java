package org.spectralpeft.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.io.AtomicFiles;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.peft.AdapterFiles;
import org.spectralpeft.peft.FouRAAdapter;
import org.spectralpeft.peft.FourierFTAdapter;
import org.spectralpeft.peft.MergePlan;
import org.spectralpeft.peft.ModelMerger;
import org.spectralpeft.peft.TLoRAAdapter;
import org.spectralpeft.tlora.TLoRABackend;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code merge --base B --adapter A --out O [options]}: writes the base model with a FourierFT, FouRA (NONE or
 * FIXED gate) or TLoRA adapter merged, the family read from the adapter's {@code peft_type} (or TLoRA for a
 * safetensors file of the TLoRA authors' code). Everything is
 * checked before the output is started; a failure leaves no output file.
 */
@Command(name = "merge", mixinStandardHelpOptions = true, versionProvider = Version.class, sortOptions = false,
        sortSynopsis = false,
        description = {"Write the base model with a FourierFT or FouRA adapter (W + ΔW) or a TLoRA adapter (W·T + s·Δ)"
                + " merged, in each weight's dtype.",
                "The summary goes to standard output, the progress bar and errors to standard error."})
final class MergeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--base", required = true, paramLabel = "<model>",
            description = "model.safetensors, model.safetensors.index.json, or a directory holding either")
    Path base;

    @Option(names = "--adapter", required = true, paramLabel = "<dir or file>",
            description = "FourierFT, FouRA or TLoRA adapter directory (adapter_config.json, adapter_model.safetensors),"
                    + " or a .safetensors file of the TLoRA authors' code")
    Path adapterDir;


    @Option(names = "--out", required = true, paramLabel = "<file>",
            description = "merged .safetensors file, written whole or not at all")
    Path target;

    @Option(names = "--backend", paramLabel = "auto|cpu|cuda", defaultValue = "auto",
            converter = BackendOption.Converter.class, description = BackendOption.DESCRIPTION)
    BackendOption backend;

    @Option(names = "--fan-in-fan-out", paramLabel = "REGEX", converter = Regex.class,
            description = "modules (full paths, whole match) whose weight is stored in x out (default: the adapter config's flag)")
    Pattern fanInFanOut;

    @Option(names = "--tlora-alpha", paramLabel = "<alpha>",
            description = "alpha of the run that trained a TLoRA authors' file (their files do not store it; default 1)")
    Float tloraAlpha;

    @Option(names = "--progress", paramLabel = "auto|always|never", defaultValue = "auto",
            converter = ProgressBar.Mode.Converter.class, description = ProgressBar.Mode.DESCRIPTION)
    ProgressBar.Mode progress;

    @Option(names = {"-q", "--quiet"}, description = "print only errors: no progress bar, notes or summary")
    boolean quiet;

    @Override
    public Integer call() throws IOException {
        if (target.toString().isEmpty()) {
            throw new ParameterException(spec.commandLine(), "--out needs a file name");
        }
        if (quiet && progress == ProgressBar.Mode.ALWAYS) {
            throw new ParameterException(spec.commandLine(), "--quiet and --progress=always contradict each other");
        }
        AtomicFiles.checkTarget(target); // before anything is read
        Predicate<String> storedInOut = fanInFanOut == null ? null : fanInFanOut.asMatchPredicate();
        PrintStream out = System.out;
        PrintStream err = System.err;

        String family = adapterFamily();
        if (tloraAlpha != null && (!family.equals("TLoRA") || Files.isDirectory(adapterDir))) {
            throw new ParameterException(spec.commandLine(), "--tlora-alpha applies to a TLoRA authors' .safetensors"
                    + " file only (an adapter directory records its alpha)");
        }
        if (tloraAlpha != null && !Float.isFinite(tloraAlpha)) {
            throw new ParameterException(spec.commandLine(), "--tlora-alpha must be finite, got " + tloraAlpha);
        }
        try (SafetensorsModel model = SafetensorsModel.open(base)) {
            Merge merge = switch (family) {
                case "FouRA" -> {
                    MergePlan plan = MergePlan.build(model, FouRAAdapter.load(adapterDir), storedInOut);
                    yield new Merge(plan, (notes, progressTo) -> {
                        try (FouRABackend opened = backend.openFouRA(notes)) {
                            return ModelMerger.merge(model, plan, opened, target, progressTo);
                        }
                    });
                }
                case "TLoRA" -> {
                    TLoRAAdapter adapter = Files.isDirectory(adapterDir) ? TLoRAAdapter.load(adapterDir)
                            : TLoRAAdapter.loadAuthors(adapterDir, tloraAlpha == null ? 1f : tloraAlpha);
                    MergePlan plan = MergePlan.build(model, adapter, storedInOut);
                    yield new Merge(plan, (notes, progressTo) -> {
                        try (TLoRABackend opened = backend.openTLoRA(notes)) {
                            return ModelMerger.merge(model, plan, opened, target, progressTo);
                        }
                    });
                }
                default -> {
                    MergePlan plan = MergePlan.build(model, FourierFTAdapter.load(adapterDir), storedInOut);
                    yield new Merge(plan, (notes, progressTo) -> {
                        try (FourierFTBackend opened = backend.open(notes)) {
                            return ModelMerger.merge(model, plan, opened, target, progressTo);
                        }
                    });
                }
            };
            ModelMerger.checkOutput(model, merge.plan(), target); // before the backend starts (CUDA takes a while)
            Map<String, Long> sizes = new HashMap<>();
            long total = 0;
            for (String name : model.tensorNames()) {
                long n = model.tensor(name).byteLength();
                sizes.put(name, n);
                total += n;
            }
            PrintStream notes = quiet ? null : err;
            ModelMerger.Summary s = withProgressBar(total, sizes, p -> merge.run().merge(notes, p));
            if (!quiet) {
                out.printf("merged %d %s layer%s, copied %d tensor%s (%.1f MB) into %s%n", s.layersMerged(), family,
                        s.layersMerged() == 1 ? "" : "s", s.tensorsCopied(), s.tensorsCopied() == 1 ? "" : "s",
                        s.bytesWritten() / 1e6, target);
                out.printf("backend %s, %.2f s%n", s.backend(), s.seconds());
            }
        }
        return Main.OK;
    }

    /** A merge, told its progress. */
    private interface Run {
        ModelMerger.Summary merge(ModelMerger.Progress progress) throws IOException;
    }

    /** One family's merge: its backend opened (notes on why CUDA is not used) around the merge. */
    private interface FamilyRun {
        ModelMerger.Summary merge(PrintStream notes, ModelMerger.Progress progress) throws IOException;
    }

    private record Merge(MergePlan plan, FamilyRun run) {
    }

    /** FourierFT, FouRA or TLoRA: by the directory's peft_type, or TLoRA for a file of the authors' code. */
    private String adapterFamily() throws IOException {
        if (Files.isRegularFile(adapterDir)) {
            if (adapterDir.toString().endsWith(".safetensors") && TLoRAAdapter.holdsAuthorsLayers(adapterDir)) {
                return "TLoRA";
            }
            throw new ParameterException(spec.commandLine(), adapterDir + " is a file but not a .safetensors file of"
                    + " the TLoRA authors' code; --adapter takes an adapter directory or such a file");
        }
        String type = AdapterFiles.peftType(adapterDir).orElse("");
        return type.equals(FouRAAdapter.PEFT_TYPE) ? "FouRA" : type.equals(TLoRAAdapter.PEFT_TYPE) ? "TLoRA" : "FourierFT";
    }

    /** Runs the merge with the progress bar on standard error (drawn only when asked and not quiet). */
    private ModelMerger.Summary withProgressBar(long total, Map<String, Long> sizes, Run run) throws IOException {
        ProgressBar bar = new ProgressBar(System.err, !quiet && progress.draws(), total, System::nanoTime);
        try {
            return run.merge((done, count, tensor, merged) -> bar.advance(sizes.getOrDefault(tensor, 0L), tensor));
        } finally {
            bar.finish();
        }
    }

    /** A regular expression, refused at parse time (exit status 2) when it does not compile. */
    static final class Regex implements ITypeConverter<Pattern> {
        @Override
        public Pattern convert(String value) {
            try {
                return Pattern.compile(value);
            } catch (PatternSyntaxException e) {
                throw new TypeConversionException("'" + value + "' is not a valid regex (" + e.getDescription() + ")");
            }
        }
    }
}
