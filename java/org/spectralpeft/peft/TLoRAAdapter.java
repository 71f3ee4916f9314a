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
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.spectralpeft.core.Checks;
import org.spectralpeft.io.SafetensorsException;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.TensorInfo;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.TLoRASpec.Residual;

/**
 * TLoRA adapters on disk, in two layouts, both with the authors' array names and shapes after each module's path:
 * {@code transform_core.d} ((I_d, I_d) for R = 1, else (I_d, I_d, R, R)), then {@code lora_A} (r × d_in) and
 * {@code lora_B} (d_out × r), or {@code ttv_core.k} (the output cores (J_d, r, r) then the input cores
 * (I_d, r, r)), or {@code ttm_core.k} ((J_d, I_d, r, r)). Each layer's factorisations come from these shapes.
 *
 * <ul>
 *   <li>The library's own directory in PEFT's layout ({@link #load}, {@link #save}): {@code adapter_config.json}
 *       with {@code "peft_type": "TLORA"}, {@code r}, {@code tlora_alpha}, {@code transform_rank},
 *       {@code addition_part} ({@code "lora"}, {@code "ttv"} or {@code "ttm"}, the authors' names),
 *       {@code target_modules} and {@code base_model_name_or_path}; {@code adapter_model.safetensors} with the
 *       arrays under {@code base_model.model.<module>.}.</li>
 *   <li>The authors' trained layers ({@link #loadAuthors}): a safetensors state dict of their SDXL UNet or of
 *       its attention processors, keys {@code [unet.]<block>.processor.<proj>_oft.<array>} with proj
 *       {@code to_q}, {@code to_k}, {@code to_v} or {@code to_out}. The layer adapts the module
 *       {@code <block>.<proj>} ({@code <block>.to_out.0} for to_out), the Linear whose weight a merge updates.
 *       Their buffers {@code cross_attention_dim} and {@code hidden_size} and every other tensor are ignored.
 *       α is not stored there: the caller gives it (their default is 1); s = α/√r as in their rsLoRA.</li>
 * </ul>
 * Every layer of an adapter has the same r, R, residual kind and α. Immutable.
 */
public final class TLoRAAdapter {
    /** The config's {@code peft_type}. */
    public static final String PEFT_TYPE = "TLORA";
    private static final Pattern ARRAY = Pattern.compile("(transform_core|ttv_core|ttm_core)\\.(\\d+)|lora_A|lora_B");
    /** A key ending in ".<array>". */
    private static final Pattern KEY_ARRAY = Pattern.compile("\\.(?:" + ARRAY.pattern() + ")$");
    private static final Pattern AUTHORS_KEY = Pattern.compile(
            "(?:unet\\.)?(.+?)(?:\\.processor)?\\.(to_q|to_k|to_v|to_out)_oft\\.(.+)");
    private static final Set<String> AUTHORS_BUFFERS = Set.of("cross_attention_dim", "hidden_size");

    /**
     * One adapted module.
     *
     * @param spec the layer
     * @param params its parameters
     */
    public record Layer(TLoRASpec spec, TLoRAParameters params) {
    }

    /** A tensor as read: its header entry and its values. */
    private record Tensor(TensorInfo info, float[] values) {
    }

    private final float alpha;
    private final String baseModel;
    private final Map<String, Layer> layers;
    private final List<Path> files;

    private TLoRAAdapter(float alpha, String baseModel, Map<String, Layer> layers, List<Path> files) {
        this.alpha = alpha;
        this.baseModel = baseModel;
        this.layers = layers;
        this.files = files;
    }

    /**
     * An adapter over the given layers, which must share r, R, the residual kind and α.
     *
     * @param layers module path → layer, in the order to keep
     * @param baseModel the base model's name, or null
     * @return the adapter
     * @throws IllegalArgumentException if there is no layer, a module path is empty, or the layers disagree
     */
    public static TLoRAAdapter of(Map<String, Layer> layers, String baseModel) {
        Checks.notNull(layers, "layers");
        Checks.require(!layers.isEmpty(), "a TLoRA adapter needs at least one layer");
        TLoRASpec first = null;
        for (Map.Entry<String, Layer> e : layers.entrySet()) {
            Checks.require(e.getKey() != null && !e.getKey().isEmpty(), "a module path is empty");
            Checks.notNull(e.getValue(), "layer '" + e.getKey() + "'");
            TLoRASpec s = e.getValue().spec();
            e.getValue().params().check(s);
            if (first == null) {
                first = s;
            }
            Checks.require(s.rank() == first.rank() && s.transformRank() == first.transformRank()
                    && s.residual() == first.residual() && s.alpha() == first.alpha(), "layer '" + e.getKey()
                    + "' is " + s + " but the adapter's first layer is " + first + ": every layer shares r, R, the"
                    + " residual kind and alpha");
        }
        return new TLoRAAdapter(first.alpha(), baseModel, Collections.unmodifiableMap(new LinkedHashMap<>(layers)),
                List.of());
    }

    /**
     * Reads the library's TLoRA adapter directory; every problem is reported with the file (and tensor) it is in.
     *
     * @param dir the directory holding {@code adapter_config.json} and {@code adapter_model.safetensors}
     * @return the adapter
     * @throws SafetensorsException if a file is malformed or not a TLoRA adapter, naming it
     * @throws IOException if a file cannot be read
     */
    public static TLoRAAdapter load(Path dir) throws IOException {
        Checks.notNull(dir, "dir");
        Path configFile = AdapterFiles.configOf(dir);
        ObjectNode config = AdapterFiles.readConfig(configFile, PEFT_TYPE, "TLoRA");
        int rank = AdapterFiles.positiveInt(configFile, config, "r");
        int transformRank = AdapterFiles.positiveInt(configFile, config, "transform_rank");
        float alpha = (float) AdapterFiles.finiteNumber(configFile, config, "tlora_alpha", 1.0);
        Residual residual = residualOf(configFile, config.get("addition_part"));
        JsonNode base = config.get("base_model_name_or_path");
        String baseModel = base == null || base.isNull() ? null : base.asText();

        Path weights = AdapterFiles.weightsOf(dir);
        Map<String, Map<String, Tensor>> modules = new LinkedHashMap<>();
        try (SafetensorsFile file = SafetensorsFile.open(weights)) {
            for (TensorInfo t : file.tensors()) {
                int dot = arrayStart(t.name());
                if (dot < 0) {
                    throw new SafetensorsException(weights, t.name(), "not a TLoRA tensor (its key ends in none of"
                            + " transform_core.<d>, lora_A, lora_B, ttv_core.<k>, ttm_core.<k>)");
                }
                String array = t.name().substring(dot + 1);
                String module = AdapterFiles.moduleOf(weights, t.name(), "." + array);
                modules.computeIfAbsent(module, k -> new LinkedHashMap<>()).put(array, read(file, weights, t));
            }
        }
        if (modules.isEmpty()) {
            throw new SafetensorsException(weights, "holds no TLoRA layer");
        }
        Map<String, Layer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, Map<String, Tensor>> e : modules.entrySet()) {
            Layer l = layerOf(weights, AdapterFiles.KEY_PREFIX + e.getKey() + ".", e.getValue(), alpha);
            TLoRASpec s = l.spec();
            if (s.rank() != rank || s.transformRank() != transformRank || s.residual() != residual) {
                throw new SafetensorsException(weights, AdapterFiles.KEY_PREFIX + e.getKey(), "the layer has r = "
                        + s.rank() + ", R = " + s.transformRank() + " and a " + s.residual() + " residual, but "
                        + configFile.getFileName() + " says r = " + rank + ", transform_rank = " + transformRank
                        + ", addition_part = " + authorsName(residual));
            }
            layers.put(e.getKey(), l);
        }
        return new TLoRAAdapter(alpha, baseModel, Collections.unmodifiableMap(layers), List.of(configFile, weights));
    }

    /**
     * Reads the authors' trained TLoRA layers from a safetensors state dict (see the class comment for the keys).
     *
     * @param file the safetensors file
     * @param alpha α of the run that trained them (not stored in their files; their default is 1)
     * @return the adapter, one layer per adapted projection, in key order
     * @throws SafetensorsException if the file holds no TLoRA layer or a layer is malformed, naming the tensor
     * @throws IOException if the file cannot be read
     * @throws IllegalArgumentException if alpha is not finite
     */
    public static TLoRAAdapter loadAuthors(Path file, float alpha) throws IOException {
        Checks.notNull(file, "file");
        Checks.require(Float.isFinite(alpha), "alpha is " + alpha + "; it must be finite");
        Map<String, Map<String, Tensor>> modules = new TreeMap<>();
        Map<String, String> prefixes = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (TensorInfo t : f.tensors()) {
                Matcher m = AUTHORS_KEY.matcher(t.name());
                if (!m.matches() || AUTHORS_BUFFERS.contains(m.group(3))) {
                    continue;
                }
                if (!ARRAY.matcher(m.group(3)).matches()) {
                    throw new SafetensorsException(file, t.name(), "not one of the authors' TLoRA arrays"
                            + " (transform_core.<d>, lora_A, lora_B, ttv_core.<k>, ttm_core.<k>)");
                }
                String module = m.group(1) + "." + ("to_out".equals(m.group(2)) ? "to_out.0" : m.group(2));
                prefixes.putIfAbsent(module, t.name().substring(0, t.name().length() - m.group(3).length()));
                modules.computeIfAbsent(module, k -> new LinkedHashMap<>()).put(m.group(3), read(f, file, t));
            }
        }
        if (modules.isEmpty()) {
            throw new SafetensorsException(file, "holds no TLoRA layer of the authors' code (no key like"
                    + " <block>.processor.to_q_oft.transform_core.0)");
        }
        Map<String, Layer> layers = new LinkedHashMap<>();
        Layer first = null;
        for (Map.Entry<String, Map<String, Tensor>> e : modules.entrySet()) {
            Layer l = layerOf(file, prefixes.get(e.getKey()), e.getValue(), alpha);
            if (first == null) {
                first = l;
            }
            TLoRASpec s = l.spec();
            if (s.rank() != first.spec().rank() || s.transformRank() != first.spec().transformRank()
                    || s.residual() != first.spec().residual()) {
                throw new SafetensorsException(file, prefixes.get(e.getKey()), "this layer is " + s
                        + " but the first is " + first.spec() + ": one run's layers share r, R and the residual kind");
            }
            layers.put(e.getKey(), l);
        }
        return new TLoRAAdapter(alpha, null, Collections.unmodifiableMap(layers), List.of(file));
    }

    /**
     * Whether a safetensors file holds layers of the authors' TLoRA code (a key like
     * {@code <block>.processor.to_q_oft.transform_core.0}).
     *
     * @param file the file
     * @return true if {@link #loadAuthors} finds a layer there to read
     * @throws IOException if the file cannot be read or is not safetensors
     */
    public static boolean holdsAuthorsLayers(Path file) throws IOException {
        Checks.notNull(file, "file");
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (TensorInfo t : f.tensors()) {
                Matcher m = AUTHORS_KEY.matcher(t.name());
                if (m.matches() && m.group(3).startsWith("transform_core.")) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The position of the dot before a key's array name, or −1. */
    private static int arrayStart(String key) {
        Matcher m = KEY_ARRAY.matcher(key);
        return m.find() ? m.start() : -1;
    }

    private static Tensor read(SafetensorsFile file, Path path, TensorInfo t) throws IOException {
        if (!t.dtype().isFloatingPoint()) {
            throw new SafetensorsException(path, t.name(), "dtype " + t.dtype() + " is not a floating-point type");
        }
        return new Tensor(t, file.readFloats(t));
    }

    /**
     * One layer from its arrays (names after {@code key}), the factorisations and ranks read off their shapes and
     * checked against each other.
     */
    private static Layer layerOf(Path file, String key, Map<String, Tensor> arrays, float alpha)
            throws SafetensorsException {
        List<Tensor> transform = numbered(file, key, arrays, "transform_core");
        if (transform.isEmpty()) {
            throw new SafetensorsException(file, key + "transform_core.0", "missing: every TLoRA layer has a transform");
        }
        int[] in = new int[transform.size()];
        int transformRank = 0;
        float[][] cores = new float[in.length][];
        for (int d = 0; d < in.length; d++) {
            TensorInfo t = transform.get(d).info();
            boolean kronecker = t.rank() == 2;
            if (!(kronecker || t.rank() == 4) || t.dim(0) != t.dim(1) || t.dim(0) < 1
                    || (!kronecker && (t.dim(2) != t.dim(3) || t.dim(2) < 1))) {
                throw new SafetensorsException(file, t.name(), "a transform core is (I, I) or (I, I, R, R), got "
                        + t.shapeString());
            }
            int ring = kronecker ? 1 : (int) t.dim(2);
            if (d > 0 && ring != transformRank) {
                throw new SafetensorsException(file, t.name(), "ring rank " + ring + ", but core 0 has " + transformRank);
            }
            transformRank = ring;
            in[d] = (int) t.dim(0);
            cores[d] = transform.get(d).values();
        }
        List<Tensor> ttv = numbered(file, key, arrays, "ttv_core");
        List<Tensor> ttm = numbered(file, key, arrays, "ttm_core");
        boolean lora = arrays.containsKey("lora_A") || arrays.containsKey("lora_B");
        int kinds = (lora ? 1 : 0) + (ttv.isEmpty() ? 0 : 1) + (ttm.isEmpty() ? 0 : 1);
        if (kinds != 1) {
            throw new SafetensorsException(file, key, kinds == 0 ? "no residual (lora_A and lora_B, ttv_core.<k> or"
                    + " ttm_core.<k>)" : "more than one residual kind");
        }
        Residual kind;
        int[] out;
        int rank;
        float[][] residual;
        if (lora) {
            kind = Residual.LORA;
            Tensor a = require(file, key, arrays, "lora_A");
            Tensor b = require(file, key, arrays, "lora_B");
            if (a.info().rank() != 2 || b.info().rank() != 2 || a.info().dim(0) != b.info().dim(1)) {
                throw new SafetensorsException(file, key + "lora_A", "lora_A must be r × d_in and lora_B d_out × r, got "
                        + a.info().shapeString() + " and " + b.info().shapeString());
            }
            rank = (int) a.info().dim(0);
            out = new int[] {(int) b.info().dim(0)};
            residual = new float[][] {a.values(), b.values()};
        } else if (!ttv.isEmpty()) {
            kind = Residual.TR;
            int outCount = ttv.size() - in.length;
            if (outCount < 1) {
                throw new SafetensorsException(file, key + "ttv_core.0", ttv.size() + " ttv cores: there must be the "
                        + in.length + " input cores and at least one output core before them");
            }
            rank = (int) ttv.get(0).info().dim(ttv.get(0).info().rank() - 1);
            out = new int[outCount];
            residual = new float[ttv.size()][];
            for (int k = 0; k < ttv.size(); k++) {
                TensorInfo t = ttv.get(k).info();
                if (t.rank() != 3 || t.dim(1) != rank || t.dim(2) != rank || (k >= outCount && t.dim(0) != in[k - outCount])) {
                    throw new SafetensorsException(file, t.name(), "a ttv core is (N, r, r) with r = " + rank
                            + (k >= outCount ? " and N = I_" + (k - outCount) + " = " + in[k - outCount] : "")
                            + ", got " + t.shapeString());
                }
                if (k < outCount) {
                    out[k] = (int) t.dim(0);
                }
                residual[k] = ttv.get(k).values();
            }
        } else {
            kind = Residual.TTM;
            if (ttm.size() != in.length) {
                throw new SafetensorsException(file, key + "ttm_core.0", ttm.size() + " ttm cores for " + in.length
                        + " transform cores: a TTM residual has one core per input factor");
            }
            rank = (int) ttm.get(0).info().dim(ttm.get(0).info().rank() - 1);
            out = new int[ttm.size()];
            residual = new float[ttm.size()][];
            for (int k = 0; k < ttm.size(); k++) {
                TensorInfo t = ttm.get(k).info();
                if (t.rank() != 4 || t.dim(1) != in[k] || t.dim(2) != rank || t.dim(3) != rank) {
                    throw new SafetensorsException(file, t.name(), "a ttm core is (J, I, r, r) with I = " + in[k]
                            + " and r = " + rank + ", got " + t.shapeString());
                }
                out[k] = (int) t.dim(0);
                residual[k] = ttm.get(k).values();
            }
        }
        try {
            TLoRASpec spec = TLoRASpec.of(out, in, transformRank, kind, rank, alpha);
            return new Layer(spec, TLoRAParameters.of(spec, cores, residual));
        } catch (IllegalArgumentException e) {
            throw new SafetensorsException(file, key, e.getMessage());
        }
    }

    /** The arrays {@code name.0}, {@code name.1}, … in order; refuses gaps. */
    private static List<Tensor> numbered(Path file, String key, Map<String, Tensor> arrays, String name)
            throws SafetensorsException {
        Map<Integer, Tensor> found = new TreeMap<>();
        for (Map.Entry<String, Tensor> e : arrays.entrySet()) {
            if (e.getKey().startsWith(name + ".")) {
                found.put(Integer.parseInt(e.getKey().substring(name.length() + 1)), e.getValue());
            }
        }
        List<Tensor> list = new ArrayList<>();
        for (int i = 0; i < found.size(); i++) {
            Tensor t = found.get(i);
            if (t == null) {
                throw new SafetensorsException(file, key + name + "." + i, "missing: the " + name
                        + " arrays must be numbered 0.." + (found.size() - 1));
            }
            list.add(t);
        }
        return list;
    }

    private static Tensor require(Path file, String key, Map<String, Tensor> arrays, String name)
            throws SafetensorsException {
        Tensor t = arrays.get(name);
        if (t == null) {
            throw new SafetensorsException(file, key + name, "missing: a LoRA residual has lora_A and lora_B");
        }
        return t;
    }

    private static Residual residualOf(Path file, JsonNode v) throws SafetensorsException {
        for (Residual r : Residual.values()) {
            if (v != null && v.isTextual() && authorsName(r).equals(v.textValue())) {
                return r;
            }
        }
        throw new SafetensorsException(file, "addition_part = " + v + " is not one of \"lora\", \"ttv\", \"ttm\"");
    }

    /** The authors' name of a residual kind: their {@code addition_part}. */
    private static String authorsName(Residual r) {
        return r == Residual.TR ? "ttv" : r.name().toLowerCase(Locale.ROOT);
    }

    /**
     * Writes {@code adapter_config.json} and {@code adapter_model.safetensors} (float32, the authors' shapes) into
     * {@code dir}, each whole or not at all.
     *
     * @param dir the directory, created if absent
     * @throws IOException if writing fails
     */
    public void save(Path dir) throws IOException {
        Checks.notNull(dir, "dir");
        AdapterFiles.Tensors tensors = new AdapterFiles.Tensors();
        for (Map.Entry<String, Layer> e : layers.entrySet()) {
            String key = AdapterFiles.KEY_PREFIX + e.getKey() + ".";
            TLoRASpec s = e.getValue().spec();
            TLoRAParameters p = e.getValue().params();
            int big = s.transformRank();
            for (int d = 0; d < s.inOrder(); d++) {
                int n = s.inFactor(d);
                tensors.add(key + "transform_core." + d, p.transformCore(d),
                        big == 1 ? new long[] {n, n} : new long[] {n, n, big, big});
            }
            int r = s.rank();
            switch (s.residual()) {
                case LORA -> {
                    tensors.add(key + "lora_A", p.residual(0), r, s.dIn());
                    tensors.add(key + "lora_B", p.residual(1), s.dOut(), r);
                }
                case TR -> {
                    for (int k = 0; k < s.residualArrays(); k++) {
                        int n = k < s.outOrder() ? s.outFactor(k) : s.inFactor(k - s.outOrder());
                        tensors.add(key + "ttv_core." + k, p.residual(k), n, r, r);
                    }
                }
                case TTM -> {
                    for (int k = 0; k < s.residualArrays(); k++) {
                        tensors.add(key + "ttm_core." + k, p.residual(k), s.outFactor(k), s.inFactor(k), r, r);
                    }
                }
            }
        }
        tensors.write(dir, AdapterFiles.CONFIG_FILE, configJson());
    }

    private String configJson() {
        TLoRASpec s = layers.values().iterator().next().spec();
        ObjectNode root = AdapterFiles.JSON.createObjectNode();
        root.put("peft_type", PEFT_TYPE);
        root.put("library", "spectral-peft");
        root.put("r", s.rank());
        root.put("tlora_alpha", alpha);
        root.put("transform_rank", s.transformRank());
        root.put("addition_part", authorsName(s.residual()));
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
     * The files the adapter was read from, which a merge must not overwrite; empty if built in memory.
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
     * The scale α of every layer (s = α/√r).
     *
     * @return α
     */
    public float alpha() {
        return alpha;
    }

    /**
     * The residual's rank r of every layer.
     *
     * @return r
     */
    public int rank() {
        return first().rank();
    }

    /**
     * The transform's ring rank R of every layer.
     *
     * @return R
     */
    public int transformRank() {
        return first().transformRank();
    }

    /**
     * The residual kind of every layer.
     *
     * @return LORA, TR or TTM
     */
    public Residual residual() {
        return first().residual();
    }

    /**
     * The base model the adapter was trained on, if recorded.
     *
     * @return base_model_name_or_path, or null
     */
    public String baseModel() {
        return baseModel;
    }

    private TLoRASpec first() {
        return layers.values().iterator().next().spec();
    }
}
