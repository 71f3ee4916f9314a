package org.spectralpeft.peft;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;
import org.spectralpeft.core.Checks;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.TensorInfo;

/**
 * Which base tensor each adapter layer merges into, and with which spec, checked in full before any output
 * is written. A module {@code m} merges into the base tensor {@code m.weight}; when the checkpoint was saved
 * with a different top-level prefix than the model PEFT wrapped (GPT-2's {@code transformer.h.0...} against
 * {@code h.0...}, say), the unique tensor whose name equals {@code m.weight} with leading components dropped,
 * or ends in {@code .m.weight}, is taken instead; an ambiguous match is an error.
 *
 * <p>A weight stored out × in (nn.Linear) gets ΔW; one stored in × out (GPT-2's Conv1D,
 * {@code fan_in_fan_out}) gets ΔWᵀ, so the merged model computes what PEFT's unmerged forward computes.
 */
public final class MergePlan {

    /** One adapted layer: the base tensor, the spec of the update in the tensor's storage order, the coefficients. */
    public record Layer(String module, TensorInfo weight, boolean fanInFanOut, FourierFTSpec storageSpec, float[] coefficients) {
        /**
         * The layer's out_features × in_features.
         *
         * @return out_features
         */
        public int dOut() {
            return fanInFanOut ? storageSpec.dIn() : storageSpec.dOut();
        }

        /**
         * The layer's in_features.
         *
         * @return in_features
         */
        public int dIn() {
            return fanInFanOut ? storageSpec.dOut() : storageSpec.dIn();
        }
    }

    // seed, scaling and norm are adapter-wide, so shape, n and storage order decide the spec
    private record SpecKey(int dOut, int dIn, int n, boolean storedInOut) {
    }

    private final Map<String, Layer> byTensor;
    private final List<Path> inputFiles;

    private MergePlan(Map<String, Layer> byTensor, List<Path> inputFiles) {
        this.byTensor = byTensor;
        this.inputFiles = inputFiles;
    }

    /**
     * Plans merging {@code adapter} into {@code base}. {@code fanInFanOut} says, per module, whether its base
     * weight is stored in × out; pass null to use the config's {@code fan_in_fan_out} for every module.
     * Every problem found (missing or ambiguous base weight, wrong rank or dtype, n inconsistent with the
     * shape) is listed in one {@link IllegalArgumentException}.
     *
     * @param base the base model
     * @param adapter the adapter to merge
     * @param fanInFanOut per module path, whether its weight is stored in × out; or null
     * @return the plan
     * @throws IllegalArgumentException listing every problem found
     * @throws IOException if the base model cannot be read
     */
    public static MergePlan build(SafetensorsModel base, FourierFTAdapter adapter, Predicate<String> fanInFanOut)
            throws IOException {
        Checks.notNull(base, "base");
        Checks.notNull(adapter, "adapter");
        Predicate<String> storedInOut = fanInFanOut != null ? fanInFanOut : m -> adapter.config().fanInFanOut();
        List<String> problems = new ArrayList<>();
        Map<String, Layer> byTensor = new LinkedHashMap<>();
        Map<SpecKey, FourierFTSpec> specs = new HashMap<>();
        for (String module : adapter.modules()) {
            Optional<String> name = resolveWeight(base, module, problems);
            if (name.isEmpty()) {
                continue;
            }
            TensorInfo t = base.tensor(name.get());
            String where = "module '" + module + "' (base tensor '" + t.name() + "', " + t.dtype() + t.shapeString() + ")";
            if (t.rank() != 2) {
                problems.add(where + ": only 2-D weights (Linear, Conv1D) can be merged"
                        + (t.rank() == 4 ? "; FourierFT on Conv2d is not supported" : ""));
                continue;
            }
            if (!t.dtype().isFloatingPoint()) {
                problems.add(where + ": the weight is not F32, F16, BF16 or F64");
                continue;
            }
            if (t.dim(0) < 1 || t.dim(1) < 1 || t.dim(0) * t.dim(1) > Integer.MAX_VALUE) {
                problems.add(where + ": the weight's size is out of the supported range (1 .. 2^31-1 elements)");
                continue;
            }
            boolean inOut = storedInOut.test(module);
            int rows = (int) t.dim(0);
            int cols = (int) t.dim(1);
            int dOut = inOut ? cols : rows;
            int dIn = inOut ? rows : cols;
            FourierFTSpec spec;
            try {
                // layers of one shape and n share one spec (indices and groupings are built once, and held once)
                int n = adapter.checkedN(module, dOut, dIn);
                spec = specs.computeIfAbsent(new SpecKey(dOut, dIn, n, inOut), k -> {
                    FourierFTSpec layerSpec = adapter.spec(module, dOut, dIn);
                    return inOut ? layerSpec.transposed() : layerSpec;
                });
            } catch (IllegalArgumentException e) {
                problems.add(where + ": " + e.getMessage());
                continue;
            }
            Layer previous = byTensor.put(t.name(), new Layer(module, t, inOut, spec, adapter.coefficients(module)));
            if (previous != null) {
                problems.add(where + ": module '" + previous.module() + "' merges into the same tensor");
            }
        }
        if (!problems.isEmpty()) {
            int shown = Math.min(problems.size(), 20);
            StringBuilder sb = new StringBuilder("the adapter does not fit the base model (" + problems.size()
                    + (problems.size() == 1 ? " problem" : " problems") + "):");
            for (int i = 0; i < shown; i++) {
                sb.append(System.lineSeparator()).append("  ").append(problems.get(i));
            }
            if (shown < problems.size()) {
                sb.append(System.lineSeparator()).append("  ... and ").append(problems.size() - shown).append(" more");
            }
            throw new IllegalArgumentException(sb.toString());
        }
        List<Path> inputs = new ArrayList<>(base.files());
        inputs.addAll(adapter.files());
        return new MergePlan(byTensor, List.copyOf(inputs));
    }

    private static Optional<String> resolveWeight(SafetensorsModel base, String module, List<String> problems) {
        String exact = module + ".weight";
        if (base.find(exact).isPresent()) {
            return Optional.of(exact);
        }
        List<String> candidates = new ArrayList<>();
        // the checkpoint lacks a prefix the wrapped model had: drop leading components of the module path
        for (int dot = module.indexOf('.'); dot >= 0; dot = module.indexOf('.', dot + 1)) {
            String shorter = module.substring(dot + 1) + ".weight";
            if (base.find(shorter).isPresent()) {
                candidates.add(shorter);
                break;
            }
        }
        // the checkpoint has a prefix the wrapped model lacked
        String suffix = "." + exact;
        for (String name : base.tensorNames()) {
            if (name.endsWith(suffix)) {
                candidates.add(name);
            }
        }
        if (candidates.size() == 1) {
            return Optional.of(candidates.get(0));
        }
        problems.add("module '" + module + "': " + (candidates.isEmpty()
                ? "the base model has no tensor '" + exact + "'"
                : "'" + exact + "' is not in the base model and several tensors could be meant: " + candidates));
        return Optional.empty();
    }

    /**
     * The adapted layers, keyed by base tensor name.
     *
     * @return the layers (unmodifiable)
     */
    public Map<String, Layer> layers() {
        return java.util.Collections.unmodifiableMap(byTensor);
    }

    /**
     * Every file the merge reads: the base model's (index and shards) and the adapter's, if it was loaded from files.
     *
     * @return the files
     */
    public List<Path> inputFiles() {
        return inputFiles;
    }

    /**
     * The adapted layer whose base weight is the tensor {@code tensorName}.
     *
     * @param tensorName a base model tensor name
     * @return the layer, or empty if the tensor is not adapted
     * @throws IllegalArgumentException if {@code tensorName} is null
     */
    public Optional<Layer> layerFor(String tensorName) {
        Checks.notNull(tensorName, "tensorName");
        return Optional.ofNullable(byTensor.get(tensorName));
    }
}
