package org.spectralpeft.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.spectralpeft.core.Checks;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.FouRASpec.Gate;
import org.spectralpeft.foura.FouRASpec.Transform;
import org.spectralpeft.io.SafetensorsException;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.TensorInfo;

/**
 * A FouRA adapter in PEFT's directory layout (PEFT itself has no FouRA type; this is the library's own, in
 * PEFT's conventions): {@code adapter_config.json} with {@code "peft_type": "FOURA"}, {@code r},
 * {@code foura_alpha}, {@code transform} ({@code "dft"} or {@code "dct"}), {@code gate} ({@code "none"},
 * {@code "fixed"} or {@code "adaptive"}), {@code fan_in_fan_out}, {@code target_modules} and
 * {@code base_model_name_or_path}; and {@code adapter_model.safetensors} with, per adapted module m,
 * {@code base_model.model.<m>.foura_A} (r × d_in), {@code .foura_B} (d_out × r), and for the FIXED gate
 * {@code .foura_gate_mask} (r values, each 0 or 1), for the ADAPTIVE gate {@code .foura_gate_weight}
 * (G, r × r) and {@code .foura_gate_bias} (b, r). The tensors' shapes give each layer's d_out and d_in.
 * Immutable.
 */
public final class FouRAAdapter {
    /** The config's {@code peft_type}. */
    public static final String PEFT_TYPE = "FOURA";
    /** Key suffix of A (r × d_in). */
    public static final String SUFFIX_A = ".foura_A";
    /** Key suffix of B (d_out × r). */
    public static final String SUFFIX_B = ".foura_B";
    /** Key suffix of the FIXED gate's mask (r). */
    public static final String SUFFIX_MASK = ".foura_gate_mask";
    /** Key suffix of the ADAPTIVE gate's weight G (r × r). */
    public static final String SUFFIX_GATE_WEIGHT = ".foura_gate_weight";
    /** Key suffix of the ADAPTIVE gate's bias b (r). */
    public static final String SUFFIX_GATE_BIAS = ".foura_gate_bias";
    private static final List<String> SUFFIXES = List.of(SUFFIX_A, SUFFIX_B, SUFFIX_MASK, SUFFIX_GATE_WEIGHT, SUFFIX_GATE_BIAS);

    /**
     * One adapted module: its spec and parameters, in {@link org.spectralpeft.foura.FouRABackend#prepare}'s
     * layouts (the gate null for NONE, the mask for FIXED, G then b for ADAPTIVE).
     *
     * @param spec the layer
     * @param a A, r × d_in
     * @param b B, d_out × r
     * @param gate the gate's parameters, or null
     */
    public record Layer(FouRASpec spec, float[] a, float[] b, float[] gate) {
    }

    private final int rank;
    private final float alpha;
    private final Transform transform;
    private final Gate gate;
    private final boolean fanInFanOut;
    private final String baseModel;
    private final Map<String, Layer> layers;
    private final List<Path> files;

    private FouRAAdapter(int rank, float alpha, Transform transform, Gate gate, boolean fanInFanOut, String baseModel,
                         Map<String, Layer> layers, List<Path> files) {
        this.rank = rank;
        this.alpha = alpha;
        this.transform = transform;
        this.gate = gate;
        this.fanInFanOut = fanInFanOut;
        this.baseModel = baseModel;
        this.layers = layers;
        this.files = files;
    }

    /**
     * Reads a FouRA adapter directory; every problem is reported with the file (and tensor) it is in.
     *
     * @param dir the directory holding {@code adapter_config.json} and {@code adapter_model.safetensors}
     * @return the adapter
     * @throws SafetensorsException if a file is malformed or not a FouRA adapter, naming it
     * @throws IOException if a file cannot be read
     */
    public static FouRAAdapter load(Path dir) throws IOException {
        Checks.notNull(dir, "dir");
        Path configFile = AdapterFiles.configOf(dir);
        ObjectNode config = AdapterFiles.readConfig(configFile, PEFT_TYPE, "FouRA");
        int rank = AdapterFiles.positiveInt(configFile, config, "r");
        float alpha = (float) AdapterFiles.finiteNumber(configFile, config, "foura_alpha", 1.0);
        Transform transform = choice(configFile, config, "transform", Transform.class, Transform.DFT);
        Gate gate = choice(configFile, config, "gate", Gate.class, Gate.NONE);
        JsonNode f = config.get("fan_in_fan_out");
        if (f != null && !f.isNull() && !f.isBoolean()) {
            throw new SafetensorsException(configFile, "fan_in_fan_out = " + f + " must be true or false");
        }
        boolean fanInFanOut = f != null && f.asBoolean(false);
        JsonNode base = config.get("base_model_name_or_path");
        String baseModel = base == null || base.isNull() ? null : base.asText();

        Path weights = AdapterFiles.weightsOf(dir);
        Map<String, Map<String, float[]>> tensors = new LinkedHashMap<>();
        Map<String, TensorInfo> infos = new LinkedHashMap<>();
        try (SafetensorsFile file = SafetensorsFile.open(weights)) {
            for (TensorInfo t : file.tensors()) {
                String suffix = SUFFIXES.stream().filter(t.name()::endsWith).findFirst().orElseThrow(() ->
                        new SafetensorsException(weights, t.name(), "not a FouRA tensor (its key ends in none of " + SUFFIXES + ")"));
                String module = AdapterFiles.moduleOf(weights, t.name(), suffix);
                if (!t.dtype().isFloatingPoint()) {
                    throw new SafetensorsException(weights, t.name(), "dtype " + t.dtype() + " is not a floating-point type");
                }
                tensors.computeIfAbsent(module, k -> new LinkedHashMap<>()).put(suffix, file.readFloats(t));
                infos.put(t.name(), t);
            }
        }
        if (tensors.isEmpty()) {
            throw new SafetensorsException(weights, "holds no FouRA layer");
        }
        Map<String, Layer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Map<String, float[]>> e : tensors.entrySet()) {
            layers.put(e.getKey(), layerOf(weights, e.getKey(), e.getValue(), infos, rank, alpha, transform, gate));
        }
        return new FouRAAdapter(rank, alpha, transform, gate, fanInFanOut, baseModel, Collections.unmodifiableMap(layers),
                List.of(configFile, weights));
    }

    private static Layer layerOf(Path weights, String module, Map<String, float[]> found, Map<String, TensorInfo> infos,
                                 int rank, float alpha, Transform transform, Gate gate) throws SafetensorsException {
        String key = AdapterFiles.KEY_PREFIX + module;
        Set<String> expected = new TreeSet<>(List.of(SUFFIX_A, SUFFIX_B));
        switch (gate) {
            case FIXED -> expected.add(SUFFIX_MASK);
            case ADAPTIVE -> expected.addAll(List.of(SUFFIX_GATE_WEIGHT, SUFFIX_GATE_BIAS));
            default -> { }
        }
        for (String suffix : expected) {
            if (!found.containsKey(suffix)) {
                throw new SafetensorsException(weights, key + suffix, "missing: module '" + module + "' of a " + gate
                        + "-gate adapter needs " + expected);
            }
        }
        for (String suffix : found.keySet()) {
            if (!expected.contains(suffix)) {
                throw new SafetensorsException(weights, key + suffix, "unexpected for the " + gate + " gate of adapter_config.json");
            }
        }
        TensorInfo a = infos.get(key + SUFFIX_A);
        TensorInfo b = infos.get(key + SUFFIX_B);
        if (a.rank() != 2 || a.dim(0) != rank || a.dim(1) < 1 || a.dim(1) > Integer.MAX_VALUE) {
            throw new SafetensorsException(weights, a.name(), "A must be r × d_in with r = " + rank + ", got " + a.shapeString());
        }
        if (b.rank() != 2 || b.dim(1) != rank || b.dim(0) < 1 || b.dim(0) > Integer.MAX_VALUE) {
            throw new SafetensorsException(weights, b.name(), "B must be d_out × r with r = " + rank + ", got " + b.shapeString());
        }
        int dIn = (int) a.dim(1);
        int dOut = (int) b.dim(0);
        if (rank > Math.min(dIn, dOut)) {
            throw new SafetensorsException(weights, a.name(), "r = " + rank + " exceeds min(d_in, d_out) = " + Math.min(dIn, dOut));
        }
        float[] gateParams = switch (gate) {
            case NONE -> null;
            case FIXED -> vector(weights, infos.get(key + SUFFIX_MASK), found.get(SUFFIX_MASK), rank);
            case ADAPTIVE -> {
                TensorInfo g = infos.get(key + SUFFIX_GATE_WEIGHT);
                if (g.rank() != 2 || g.dim(0) != rank || g.dim(1) != rank) {
                    throw new SafetensorsException(weights, g.name(), "the gate's weight must be r × r with r = " + rank
                            + ", got " + g.shapeString());
                }
                float[] bias = vector(weights, infos.get(key + SUFFIX_GATE_BIAS), found.get(SUFFIX_GATE_BIAS), rank);
                float[] both = new float[rank * rank + rank];
                System.arraycopy(found.get(SUFFIX_GATE_WEIGHT), 0, both, 0, rank * rank);
                System.arraycopy(bias, 0, both, rank * rank, rank);
                yield both;
            }
        };
        FouRASpec spec = FouRASpec.of(dOut, dIn, rank, transform, gate, alpha);
        try {
            FouRAFactors.checkParameters(spec, found.get(SUFFIX_A), found.get(SUFFIX_B), gateParams);
        } catch (IllegalArgumentException e) {
            throw new SafetensorsException(weights, key, e.getMessage());
        }
        return new Layer(spec, found.get(SUFFIX_A), found.get(SUFFIX_B), gateParams);
    }

    private static float[] vector(Path weights, TensorInfo t, float[] values, int rank) throws SafetensorsException {
        if (t.rank() != 1 || t.dim(0) != rank) {
            throw new SafetensorsException(weights, t.name(), "must hold r = " + rank + " values, got " + t.shapeString());
        }
        return values;
    }

    private static <E extends Enum<E>> E choice(Path file, ObjectNode root, String name, Class<E> type, E fallback)
            throws SafetensorsException {
        JsonNode v = root.get(name);
        if (v == null || v.isNull()) {
            return fallback;
        }
        for (E e : type.getEnumConstants()) {
            if (v.isTextual() && e.name().equalsIgnoreCase(v.textValue())) {
                return e;
            }
        }
        List<String> names = new ArrayList<>();
        for (E e : type.getEnumConstants()) {
            names.add('"' + e.name().toLowerCase(Locale.ROOT) + '"');
        }
        throw new SafetensorsException(file, name + " = " + v + " is not one of " + String.join(", ", names));
    }

    /**
     * Writes {@code adapter_config.json} and {@code adapter_model.safetensors} (float32) into {@code dir}, each
     * whole or not at all.
     *
     * @param dir the directory, created if absent
     * @throws IOException if writing fails
     */
    public void save(Path dir) throws IOException {
        Checks.notNull(dir, "dir");
        AdapterFiles.Tensors tensors = new AdapterFiles.Tensors();
        for (Map.Entry<String, Layer> e : layers.entrySet()) {
            String key = AdapterFiles.KEY_PREFIX + e.getKey();
            Layer l = e.getValue();
            int r = rank;
            tensors.add(key + SUFFIX_A, l.a(), r, l.spec().dIn());
            tensors.add(key + SUFFIX_B, l.b(), l.spec().dOut(), r);
            if (gate == Gate.FIXED) {
                tensors.add(key + SUFFIX_MASK, l.gate(), r);
            } else if (gate == Gate.ADAPTIVE) {
                tensors.add(key + SUFFIX_GATE_WEIGHT, java.util.Arrays.copyOf(l.gate(), r * r), r, r);
                tensors.add(key + SUFFIX_GATE_BIAS, java.util.Arrays.copyOfRange(l.gate(), r * r, r * r + r), r);
            }
        }
        tensors.write(dir, AdapterFiles.CONFIG_FILE, configJson());
    }

    private String configJson() {
        ObjectNode root = AdapterFiles.JSON.createObjectNode();
        root.put("peft_type", PEFT_TYPE);
        root.put("library", "spectral-peft");
        root.put("r", rank);
        root.put("foura_alpha", alpha);
        root.put("transform", transform.name().toLowerCase(Locale.ROOT));
        root.put("gate", gate.name().toLowerCase(Locale.ROOT));
        root.put("fan_in_fan_out", fanInFanOut);
        ArrayNode targets = root.putArray("target_modules");
        new TreeSet<>(layers.keySet()).forEach(targets::add);
        if (baseModel != null) {
            root.put("base_model_name_or_path", baseModel);
        } else {
            root.putNull("base_model_name_or_path");
        }
        root.putNull("task_type");
        return AdapterFiles.toJson(root);
    }

    /**
     * The files {@link #load} read, which a merge must not overwrite; empty if built in memory.
     *
     * @return the files, or an empty list
     */
    public List<Path> files() {
        return files;
    }

    /**
     * The adapted modules, in file order.
     *
     * @return their paths
     */
    public Set<String> modules() {
        return layers.keySet();
    }

    /**
     * One module's layer.
     *
     * @param module a module path from {@link #modules()}
     * @return its spec and parameters (shared arrays: do not modify)
     * @throws IllegalArgumentException if the adapter has no such module
     */
    public Layer layer(String module) {
        Checks.notNull(module, "module");
        Layer l = layers.get(module);
        Checks.require(l != null, "the adapter has no module '" + module + "'");
        return l;
    }

    /**
     * The rank of every layer.
     *
     * @return r
     */
    public int rank() {
        return rank;
    }

    /**
     * The scale α of every layer.
     *
     * @return α
     */
    public float alpha() {
        return alpha;
    }

    /**
     * The transform pair of every layer.
     *
     * @return DFT or DCT
     */
    public Transform transform() {
        return transform;
    }

    /**
     * The gate kind of every layer.
     *
     * @return NONE, FIXED or ADAPTIVE
     */
    public Gate gate() {
        return gate;
    }

    /**
     * Whether the base weights are stored in × out (GPT-2's Conv1D).
     *
     * @return the config's fan_in_fan_out
     */
    public boolean fanInFanOut() {
        return fanInFanOut;
    }

    /**
     * The base model the adapter was trained on, if recorded.
     *
     * @return base_model_name_or_path, or null
     */
    public String baseModel() {
        return baseModel;
    }

    /**
     * A builder for a new adapter, of one rank, transform, gate and α for all its layers.
     *
     * @param rank r
     * @param transform the transform pair
     * @param gate the gate kind
     * @param alpha α
     * @return the builder
     */
    public static Builder builder(int rank, Transform transform, Gate gate, float alpha) {
        Checks.positive(rank, "rank");
        Checks.notNull(transform, "transform");
        Checks.notNull(gate, "gate");
        Checks.require(Float.isFinite(alpha), "alpha is " + alpha + "; it must be finite");
        return new Builder(rank, transform, gate, alpha);
    }

    /** Collects layers; every argument is checked as it comes. */
    public static final class Builder {
        private final int rank;
        private final Transform transform;
        private final Gate gate;
        private final float alpha;
        private boolean fanInFanOut;
        private String baseModel;
        private final Map<String, Layer> layers = new LinkedHashMap<>();

        private Builder(int rank, Transform transform, Gate gate, float alpha) {
            this.rank = rank;
            this.transform = transform;
            this.gate = gate;
            this.alpha = alpha;
        }

        /**
         * Adds a module's layer (the arrays are copied).
         *
         * @param module the module path, e.g. {@code model.layers.0.self_attn.q_proj}
         * @param dOut the layer's out_features
         * @param dIn the layer's in_features
         * @param a A, r × d_in
         * @param b B, d_out × r
         * @param gateParams the gate's parameters (null for NONE)
         * @return this builder
         * @throws IllegalArgumentException for a bad argument or a module added twice
         */
        public Builder layer(String module, int dOut, int dIn, float[] a, float[] b, float[] gateParams) {
            Checks.notNull(module, "module");
            Checks.notNull(a, "A"); // every null named before any other complaint
            Checks.notNull(b, "B");
            Checks.require(!module.isEmpty() && !layers.containsKey(module), "module '" + module + "' is empty or already added");
            FouRASpec spec = FouRASpec.of(dOut, dIn, rank, transform, gate, alpha);
            FouRAFactors.checkParameters(spec, a, b, gateParams);
            layers.put(module, new Layer(spec, a.clone(), b.clone(), gateParams == null ? null : gateParams.clone()));
            return this;
        }

        /**
         * Records that base weights are stored in × out.
         *
         * @param value fan_in_fan_out
         * @return this builder
         */
        public Builder fanInFanOut(boolean value) {
            this.fanInFanOut = value;
            return this;
        }

        /**
         * Records the base model.
         *
         * @param name base_model_name_or_path
         * @return this builder
         */
        public Builder baseModel(String name) {
            this.baseModel = Checks.notNull(name, "name");
            return this;
        }

        /**
         * The adapter.
         *
         * @return it
         * @throws IllegalArgumentException if no layer was added
         */
        public FouRAAdapter build() {
            Checks.require(!layers.isEmpty(), "a FouRA adapter needs at least one layer");
            return new FouRAAdapter(rank, alpha, transform, gate, fanInFanOut, baseModel,
                    Collections.unmodifiableMap(new LinkedHashMap<>(layers)), List.of());
        }
    }
}
