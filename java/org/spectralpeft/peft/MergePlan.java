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
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.tlora.TLoRASpec;
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

    /**
     * What is added to one base tensor, in the tensor's storage order: a FourierFT spec and its coefficients,
     * or a FouRA layer (for a weight stored in × out, the transposed layer: ΔWᵀ is the FouRA layer with
     * A' = Bᵀ and B' = Aᵀ, the same mask and transform), or a TLoRA layer (W ← W·T + s·Δ, weights stored
     * out × in only).
     */
    public sealed interface Update permits FourierFTUpdate, FouRAUpdate, TLoRAUpdate {
        /**
         * Rows of the update as stored.
         *
         * @return the tensor's first dimension
         */
        int storedRows();

        /**
         * Columns of the update as stored.
         *
         * @return the tensor's second dimension
         */
        int storedCols();
    }

    /**
     * A FourierFT update.
     *
     * @param storageSpec the spec in the tensor's storage order
     * @param coefficients its n coefficients
     */
    public record FourierFTUpdate(FourierFTSpec storageSpec, float[] coefficients) implements Update {
        @Override
        public int storedRows() {
            return storageSpec.dOut();
        }

        @Override
        public int storedCols() {
            return storageSpec.dIn();
        }
    }

    /**
     * A FouRA update (NONE or FIXED gate).
     *
     * @param storageLayer the layer in the tensor's storage order
     */
    public record FouRAUpdate(FouRAAdapter.Layer storageLayer) implements Update {
        @Override
        public int storedRows() {
            return storageLayer.spec().dOut();
        }

        @Override
        public int storedCols() {
            return storageLayer.spec().dIn();
        }
    }

    /**
     * A TLoRA update: W ← W·T + s·Δ, for a weight stored out × in.
     *
     * @param layer the layer
     */
    public record TLoRAUpdate(TLoRAAdapter.Layer layer) implements Update {
        @Override
        public int storedRows() {
            return layer.spec().dOut();
        }

        @Override
        public int storedCols() {
            return layer.spec().dIn();
        }
    }

    /**
     * One adapted layer: its module, the base tensor, whether the tensor is stored in × out, and the update.
     *
     * @param module the adapter's module path
     * @param weight the base tensor
     * @param fanInFanOut whether the tensor is stored in × out
     * @param update what is added to it, in its storage order
     */
    public record Layer(String module, TensorInfo weight, boolean fanInFanOut, Update update) {
        /**
         * The layer's out_features.
         *
         * @return out_features
         */
        public int dOut() {
            return fanInFanOut ? update.storedCols() : update.storedRows();
        }

        /**
         * The layer's in_features.
         *
         * @return in_features
         */
        public int dIn() {
            return fanInFanOut ? update.storedRows() : update.storedCols();
        }

        /**
         * The FourierFT spec in storage order.
         *
         * @return the spec
         * @throws IllegalStateException if the update is not FourierFT's
         */
        public FourierFTSpec storageSpec() {
            return fourierFT().storageSpec();
        }

        /**
         * The FourierFT coefficients.
         *
         * @return the coefficients
         * @throws IllegalStateException if the update is not FourierFT's
         */
        public float[] coefficients() {
            return fourierFT().coefficients();
        }

        private FourierFTUpdate fourierFT() {
            if (update instanceof FourierFTUpdate f) {
                return f;
            }
            throw new IllegalStateException("module '" + module + "' has a " + (update instanceof FouRAUpdate ? "FouRA"
                    : "TLoRA") + " update, not a FourierFT one");
        }
    }

    /** Makes one module's update for a weight of d_out × d_in, stored in × out or not; throws IAE with the problem. */
    private interface UpdateFactory {
        Update make(String module, int dOut, int dIn, boolean storedInOut);
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
        Map<SpecKey, FourierFTSpec> specs = new HashMap<>();
        return build(base, adapter.modules(), adapter.files(), storedInOut, (module, dOut, dIn, inOut) -> {
            // layers of one shape and n share one spec (indices and groupings are built once, and held once)
            int n = adapter.checkedN(module, dOut, dIn);
            FourierFTSpec spec = specs.computeIfAbsent(new SpecKey(dOut, dIn, n, inOut), k -> {
                FourierFTSpec layerSpec = adapter.spec(module, dOut, dIn);
                return inOut ? layerSpec.transposed() : layerSpec;
            });
            return new FourierFTUpdate(spec, adapter.coefficients(module));
        });
    }

    /**
     * Plans merging a FouRA {@code adapter} into {@code base}, as {@link #build(SafetensorsModel, FourierFTAdapter,
     * Predicate)} does for FourierFT; each layer's shape must equal its weight's (out × in, or in × out where
     * stored so). The ADAPTIVE gate has no fixed ΔW and is refused.
     *
     * @param base the base model
     * @param adapter the adapter to merge
     * @param fanInFanOut per module path, whether its weight is stored in × out; or null for the config's flag
     * @return the plan
     * @throws IllegalArgumentException listing every problem found
     * @throws IOException if the base model cannot be read
     */
    public static MergePlan build(SafetensorsModel base, FouRAAdapter adapter, Predicate<String> fanInFanOut)
            throws IOException {
        Checks.notNull(base, "base");
        Checks.notNull(adapter, "adapter");
        Checks.require(adapter.gate() != FouRASpec.Gate.ADAPTIVE, "the adapter's gate is ADAPTIVE: it depends on each"
                + " token, so there is no fixed ΔW to merge (only NONE and FIXED gates merge)");
        Predicate<String> storedInOut = fanInFanOut != null ? fanInFanOut : m -> adapter.fanInFanOut();
        return build(base, adapter.modules(), adapter.files(), storedInOut, (module, dOut, dIn, inOut) -> {
            FouRAAdapter.Layer l = adapter.layer(module);
            FouRASpec s = l.spec();
            Checks.require(s.dOut() == dOut && s.dIn() == dIn, "the adapter's layer is " + s.dOut() + " x " + s.dIn()
                    + " (d_out x d_in) but the weight is " + dOut + " x " + dIn
                    + (inOut ? " (stored in x out)" : "") + "; is fan_in_fan_out right?");
            return new FouRAUpdate(inOut ? transposed(l) : l);
        });
    }

    /**
     * Plans merging a TLoRA {@code adapter} into {@code base}, as {@link #build(SafetensorsModel, FourierFTAdapter,
     * Predicate)} does for FourierFT; each layer's shape must equal its weight's, stored out × in (a TLoRA merge
     * is W·T + s·Δ, not an addition: a weight stored in × out is refused).
     *
     * @param base the base model
     * @param adapter the adapter to merge
     * @param fanInFanOut per module path, whether its weight is stored in × out (each such module is refused); or
     *        null: none is
     * @return the plan
     * @throws IllegalArgumentException listing every problem found
     * @throws IOException if the base model cannot be read
     */
    public static MergePlan build(SafetensorsModel base, TLoRAAdapter adapter, Predicate<String> fanInFanOut)
            throws IOException {
        Checks.notNull(base, "base");
        Checks.notNull(adapter, "adapter");
        Predicate<String> storedInOut = fanInFanOut != null ? fanInFanOut : m -> false;
        return build(base, adapter.modules(), adapter.files(), storedInOut, (module, dOut, dIn, inOut) -> {
            Checks.require(!inOut, "TLoRA merges weights stored out x in (nn.Linear) only, and this one is marked"
                    + " in x out");
            TLoRASpec s = adapter.layer(module).spec();
            Checks.require(s.dOut() == dOut && s.dIn() == dIn, "the adapter's layer is " + s.dOut() + " x " + s.dIn()
                    + " (d_out x d_in) but the weight is " + dOut + " x " + dIn);
            return new TLoRAUpdate(adapter.layer(module));
        });
    }

    /** ΔWᵀ as a FouRA layer: d_in × d_out with A' = Bᵀ and B' = Aᵀ (FouRAReferenceTest checks the identity). */
    private static FouRAAdapter.Layer transposed(FouRAAdapter.Layer l) {
        FouRASpec s = l.spec();
        int r = s.rank();
        float[] a = new float[r * s.dOut()];
        float[] b = new float[s.dIn() * r];
        for (int i = 0; i < r; i++) {
            for (int o = 0; o < s.dOut(); o++) {
                a[i * s.dOut() + o] = l.b()[o * r + i];
            }
            for (int q = 0; q < s.dIn(); q++) {
                b[q * r + i] = l.a()[i * s.dIn() + q];
            }
        }
        return new FouRAAdapter.Layer(FouRASpec.of(s.dIn(), s.dOut(), r, s.transform(), s.gate(), s.alpha()), a, b, l.gate());
    }

    private static MergePlan build(SafetensorsModel base, java.util.Collection<String> modules, List<Path> adapterFiles,
                                   Predicate<String> storedInOut, UpdateFactory updates) throws IOException {
        List<String> problems = new ArrayList<>();
        Map<String, Layer> byTensor = new LinkedHashMap<>();
        for (String module : modules) {
            Optional<String> name = resolveWeight(base, module, problems);
            if (name.isEmpty()) {
                continue;
            }
            TensorInfo t = base.tensor(name.get());
            String where = "module '" + module + "' (base tensor '" + t.name() + "', " + t.dtype() + t.shapeString() + ")";
            if (t.rank() != 2) {
                problems.add(where + ": only 2-D weights (Linear, Conv1D) can be merged"
                        + (t.rank() == 4 ? "; FourierFT, FouRA and TLoRA on Conv2d are not supported" : ""));
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
            Update update;
            try {
                update = updates.make(module, dOut, dIn, inOut);
            } catch (IllegalArgumentException e) {
                problems.add(where + ": " + e.getMessage());
                continue;
            }
            Layer previous = byTensor.put(t.name(), new Layer(module, t, inOut, update));
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
        inputs.addAll(adapterFiles);
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
