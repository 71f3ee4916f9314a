package org.spectralpeft.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.io.SafetensorsException;

/**
 * The FourierFT fields of a PEFT {@code adapter_config.json}: {@code n_frequency} (default 1000),
 * {@code n_frequency_pattern}, {@code alpha} (n as a fraction of d_in·d_out, overriding both when set),
 * {@code scaling} (150), {@code random_loc_seed} (777), {@code fan_in_fan_out} (false) and
 * {@code ifft2_norm} ("backward"). The file's full JSON is kept, so an adapter loaded and saved again
 * keeps every field PEFT wrote.
 */
public final class FourierFTAdapterConfig {
    /** The config file of a PEFT adapter directory. */
    public static final String FILE = AdapterFiles.CONFIG_FILE;
    static final ObjectMapper JSON = AdapterFiles.JSON;

    private final ObjectNode json;
    private final int nFrequency;
    private final Double alpha;
    private final double scaling;
    private final long seed;
    private final boolean fanInFanOut;
    private final IfftNorm norm;
    private final Map<String, Integer> nFrequencyPattern;
    private final Map<Pattern, Integer> patternMatchers; // re.match(".*\.key$"), compiled once, in key order

    private FourierFTAdapterConfig(ObjectNode json, int nFrequency, Double alpha, double scaling, long seed,
                                   boolean fanInFanOut, IfftNorm norm, Map<String, Integer> nFrequencyPattern) {
        this.json = json;
        this.nFrequency = nFrequency;
        this.alpha = alpha;
        this.scaling = scaling;
        this.seed = seed;
        this.fanInFanOut = fanInFanOut;
        this.norm = norm;
        this.nFrequencyPattern = nFrequencyPattern;
        this.patternMatchers = new LinkedHashMap<>();
        nFrequencyPattern.forEach((key, n) -> patternMatchers.put(matcherOf(key), n));
    }

    /**
     * Reads and validates {@code file}; a non-FourierFT adapter is refused with its {@code peft_type}.
     *
     * @param file an {@code adapter_config.json}
     * @return the config
     * @throws SafetensorsException if the file is malformed or not a FourierFT config, naming it
     * @throws IOException if the file cannot be read
     */
    public static FourierFTAdapterConfig read(Path file) throws IOException {
        return parse(file, AdapterFiles.readObject(file));
    }

    static FourierFTAdapterConfig parse(Path file, ObjectNode root) throws SafetensorsException {
        JsonNode type = root.get("peft_type");
        if (type == null || !type.isTextual()) {
            throw new SafetensorsException(file, "no \"peft_type\" (not a PEFT adapter config?)");
        }
        if (!type.textValue().equals("FOURIERFT")) {
            throw new SafetensorsException(file, "peft_type is " + type.textValue()
                    + "; only FourierFT adapters (peft_type FOURIERFT) are supported");
        }
        int n = intField(file, root, "n_frequency", 1000);
        if (n < 1) {
            throw new SafetensorsException(file, "n_frequency = " + n + " must be positive");
        }
        Double alpha = null;
        JsonNode a = root.get("alpha");
        if (a != null && !a.isNull()) {
            if (!a.isNumber() || !(a.doubleValue() >= 0) || a.doubleValue() > 1) {
                throw new SafetensorsException(file, "alpha = " + a + " must be a number in [0, 1]");
            }
            alpha = a.doubleValue() == 0 ? null : a.doubleValue(); // PEFT's "if alpha:" treats 0 as unset
        }
        double scaling = FourierFTSpec.DEFAULT_SCALING;
        JsonNode s = root.get("scaling");
        if (s != null && !s.isNull()) {
            if (!s.isNumber() || !Double.isFinite(s.doubleValue())) {
                throw new SafetensorsException(file, "scaling = " + s + " must be a finite number");
            }
            scaling = s.doubleValue();
        }
        JsonNode seedNode = root.get("random_loc_seed");
        long seed = FourierFTSpec.DEFAULT_SEED;
        if (seedNode != null) {
            seed = seedOf(file, seedNode);
        }
        boolean fanInFanOut = false;
        JsonNode f = root.get("fan_in_fan_out");
        if (f != null && !f.isNull()) {
            if (!f.isBoolean()) {
                throw new SafetensorsException(file, "fan_in_fan_out = " + f + " must be true or false");
            }
            fanInFanOut = f.booleanValue();
        }
        IfftNorm norm = IfftNorm.BACKWARD;
        JsonNode nn = root.get("ifft2_norm");
        if (nn != null && !nn.isNull()) {
            norm = IfftNorm.ofPeftName(nn.asText()).orElseThrow(() -> new SafetensorsException(file,
                    "ifft2_norm = " + nn + " is not one of \"backward\", \"ortho\", \"forward\""));
        }
        Map<String, Integer> pattern = new LinkedHashMap<>();
        JsonNode p = root.get("n_frequency_pattern");
        if (p != null && !p.isNull()) {
            if (!p.isObject()) {
                throw new SafetensorsException(file, "n_frequency_pattern must be a JSON object");
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = p.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getValue().isIntegralNumber() || !e.getValue().canConvertToInt() || e.getValue().intValue() < 1) {
                    throw new SafetensorsException(file, "n_frequency_pattern['" + e.getKey() + "'] = " + e.getValue()
                            + " must be a positive integer");
                }
                try {
                    matcherOf(e.getKey());
                } catch (PatternSyntaxException x) {
                    throw new SafetensorsException(file, "n_frequency_pattern key '" + e.getKey() + "' is not a valid regex");
                }
                pattern.put(e.getKey(), e.getValue().intValue());
            }
        }
        return new FourierFTAdapterConfig(root.deepCopy(), n, alpha, scaling, seed, fanInFanOut, norm,
                Collections.unmodifiableMap(pattern));
    }

    private static final java.math.BigInteger MIN_SEED = java.math.BigInteger.valueOf(Long.MIN_VALUE);
    private static final java.math.BigInteger MAX_SEED = java.math.BigInteger.ONE.shiftLeft(64).subtract(java.math.BigInteger.ONE);

    /**
     * torch.Generator.manual_seed takes any integer in [-2^63, 2^64-1]: a negative one as its 64-bit two's
     * complement, the rest as is. The seed is kept as those 64 bits (2^64-1 and -1 are the same seed).
     */
    private static long seedOf(Path file, JsonNode node) throws SafetensorsException {
        if (!node.isIntegralNumber()) {
            throw new SafetensorsException(file, "random_loc_seed = " + node
                    + " must be an integer (PEFT needs it to place the frequencies)");
        }
        java.math.BigInteger v = node.bigIntegerValue();
        if (v.compareTo(MIN_SEED) < 0 || v.compareTo(MAX_SEED) > 0) {
            throw new SafetensorsException(file, "random_loc_seed = " + node + " is outside [-2^63, 2^64-1], the seeds"
                    + " torch.Generator.manual_seed accepts (PyTorch would fail with an OverflowError)");
        }
        return v.longValue(); // the low 64 bits: two's complement for negative seeds, as PyTorch takes them
    }

    private static int intField(Path file, ObjectNode root, String name, int fallback) throws SafetensorsException {
        JsonNode v = root.get(name);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new SafetensorsException(file, name + " = " + v + " must be an integer");
        }
        return v.intValue();
    }

    /**
     * A config for a new adapter, with the fields FourierFT configs have had since PEFT first shipped them
     * (newer optional ones, such as exclude_modules, are left out so that older PEFT versions load it too).
     */
    static FourierFTAdapterConfig create(int nFrequency, Map<String, Integer> pattern, double scaling, long seed,
                                         boolean fanInFanOut, IfftNorm norm, String baseModel,
                                         Iterable<String> targetModules) {
        ObjectNode root = JSON.createObjectNode();
        root.putNull("auto_mapping");
        if (baseModel == null) {
            root.putNull("base_model_name_or_path");
        } else {
            root.put("base_model_name_or_path", baseModel);
        }
        root.put("bias", "none");
        root.put("fan_in_fan_out", fanInFanOut);
        // "backward" is the default; leaving it out keeps the file loadable by PEFT versions without ifft2_norm
        if (norm != IfftNorm.BACKWARD) {
            root.put("ifft2_norm", norm.peftName());
        }
        root.put("inference_mode", true);
        root.put("init_weights", false);
        root.putNull("layers_pattern");
        root.putNull("layers_to_transform");
        root.putNull("modules_to_save");
        root.put("n_frequency", nFrequency);
        ObjectNode p = root.putObject("n_frequency_pattern");
        pattern.forEach(p::put);
        root.put("peft_type", "FOURIERFT");
        root.put("random_loc_seed", seed);
        root.putNull("revision");
        root.put("scaling", scaling);
        var targets = root.putArray("target_modules");
        targetModules.forEach(targets::add);
        root.putNull("task_type");
        try {
            return parse(Path.of(FILE), root);
        } catch (SafetensorsException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /**
     * The number of frequencies PEFT gives module {@code module} of shape d_out × d_in: {@code alpha} if set
     * ({@code int(alpha·d_in·d_out)}), else the first {@code n_frequency_pattern} key {@code k} with
     * {@code re.match(".*\.k$", module)}, else the key equal to the module path, else {@code n_frequency}.
     *
     * @param module the module's dotted path
     * @param dOut the layer's out_features
     * @param dIn the layer's in_features
     * @return n for that module
     */
    public int nFrequencyFor(String module, int dOut, int dIn) {
        if (alpha != null) {
            return (int) (alpha * dIn * dOut); // Python: int(alpha * in_features * out_features), left to right
        }
        for (Map.Entry<Pattern, Integer> e : patternMatchers.entrySet()) {
            if (e.getKey().matcher(module).lookingAt()) {
                return e.getValue();
            }
        }
        return nFrequencyPattern.getOrDefault(module, nFrequency);
    }

    private static Pattern matcherOf(String key) {
        return Pattern.compile(".*\\." + key + "$");
    }

    /**
     * PEFT's {@code n_frequency}: coefficients per layer, unless a pattern or {@code alpha} says otherwise.
     *
     * @return n_frequency
     */
    public int nFrequency() {
        return nFrequency;
    }

    /**
     * PEFT's {@code scaling}.
     *
     * @return scaling
     */
    public double scaling() {
        return scaling;
    }

    /**
     * The seed's 64 bits as PyTorch holds them (a seed of 2^64-1 in the file reads as -1).
     *
     * @return the seed
     */
    public long randomLocSeed() {
        return seed;
    }

    /**
     * PEFT's {@code fan_in_fan_out}: whether base weights are stored in × out (GPT-2's Conv1D).
     *
     * @return fan_in_fan_out
     */
    public boolean fanInFanOut() {
        return fanInFanOut;
    }

    /**
     * PEFT's {@code ifft2_norm}.
     *
     * @return the normalization
     */
    public IfftNorm ifftNorm() {
        return norm;
    }

    /**
     * PEFT's {@code n_frequency_pattern}: per-module n overriding n_frequency, keyed by module name or pattern.
     *
     * @return the pattern map
     */
    public Map<String, Integer> nFrequencyPattern() {
        return nFrequencyPattern;
    }

    /**
     * {@code alpha}, n as a fraction of d_in·d_out, or null when n comes from n_frequency.
     *
     * @return the fraction, or null
     */
    public Double alphaFraction() {
        return alpha;
    }

    /**
     * The base model named in the config, or null.
     *
     * @return the name or path, or null
     */
    public String baseModel() {
        JsonNode b = json.get("base_model_name_or_path");
        return b == null || b.isNull() ? null : b.asText();
    }

    /**
     * The config as JSON text, as {@code adapter_config.json} holds it.
     *
     * @return the JSON text
     */
    public String toJson() {
        try {
            return JSON.writeValueAsString(json);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
