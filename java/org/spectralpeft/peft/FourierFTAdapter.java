package org.spectralpeft.peft;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.spectralpeft.core.Checks;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.io.SafetensorsException;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.TensorInfo;

/**
 * A Hugging Face PEFT FourierFT adapter: its config and one spectrum (n coefficients) per adapted module,
 * stored in a directory as {@code adapter_config.json} plus {@code adapter_model.safetensors} with one 1-D
 * tensor per module under {@code base_model.model.<module path>.fourierft_spectrum}.
 *
 * <p>PEFT does not store the frequency positions: they follow from {@code random_loc_seed} and the layer's
 * shape, which only the base model knows. {@link #spec(String, int, int)} rebuilds them for a given shape,
 * exactly as PEFT does. Immutable.
 */
public final class FourierFTAdapter {
    /** The weights file of a PEFT adapter directory. */
    public static final String WEIGHTS_FILE = AdapterFiles.WEIGHTS_FILE;
    /** Key prefix PEFT puts before the module path. */
    public static final String KEY_PREFIX = AdapterFiles.KEY_PREFIX;
    /** Key suffix of a FourierFT spectrum. */
    public static final String KEY_SUFFIX = ".fourierft_spectrum";

    private final FourierFTAdapterConfig config;
    private final Map<String, float[]> spectra;
    private final List<Path> files;

    private FourierFTAdapter(FourierFTAdapterConfig config, Map<String, float[]> spectra, List<Path> files) {
        this.config = config;
        this.spectra = spectra;
        this.files = files;
    }

    /**
     * Reads a PEFT adapter directory; every problem is reported with the file (and tensor) it is in.
     *
     * @param dir the directory holding {@code adapter_config.json} and {@code adapter_model.safetensors}
     * @return the adapter
     * @throws SafetensorsException if a file is malformed or not a FourierFT adapter, naming it
     * @throws IOException if a file cannot be read
     */
    public static FourierFTAdapter load(Path dir) throws IOException {
        Checks.notNull(dir, "dir");
        Path configFile = AdapterFiles.configOf(dir);
        FourierFTAdapterConfig config = FourierFTAdapterConfig.read(configFile);
        Path weights = AdapterFiles.weightsOf(dir);
        Map<String, float[]> spectra = new LinkedHashMap<>();
        try (SafetensorsFile file = SafetensorsFile.open(weights)) {
            for (TensorInfo t : file.tensors()) {
                String module = moduleOf(weights, t.name());
                if (t.rank() != 1 || t.elementCount() < 1) {
                    throw new SafetensorsException(weights, t.name(), "a spectrum must be a non-empty 1-D tensor, got "
                            + t.dtype() + t.shapeString());
                }
                if (!t.dtype().isFloatingPoint()) {
                    throw new SafetensorsException(weights, t.name(), "dtype " + t.dtype() + " is not a floating-point type");
                }
                float[] c = file.readFloats(t);
                for (int l = 0; l < c.length; l++) {
                    if (!Float.isFinite(c[l])) {
                        throw new SafetensorsException(weights, t.name(), "coefficient " + l + " is " + c[l]);
                    }
                }
                spectra.put(module, c);
            }
        }
        if (spectra.isEmpty()) {
            throw new SafetensorsException(weights, "holds no FourierFT spectrum");
        }
        return new FourierFTAdapter(config, Collections.unmodifiableMap(spectra), List.of(configFile, weights));
    }

    private static String moduleOf(Path file, String key) throws SafetensorsException {
        if (!key.endsWith(KEY_SUFFIX)) {
            throw new SafetensorsException(file, key, "not a FourierFT spectrum (key does not end in " + KEY_SUFFIX
                    + "); adapters with modules_to_save or trained biases are not supported");
        }
        return AdapterFiles.moduleOf(file, key, KEY_SUFFIX);
    }

    /**
     * Writes {@code adapter_config.json} and {@code adapter_model.safetensors} (float32) into {@code dir}.
     *
     * @param dir the directory, created if absent
     * @throws IOException if writing fails
     */
    public void save(Path dir) throws IOException {
        Checks.notNull(dir, "dir");
        AdapterFiles.Tensors tensors = new AdapterFiles.Tensors();
        for (Map.Entry<String, float[]> e : spectra.entrySet()) {
            tensors.add(KEY_PREFIX + e.getKey() + KEY_SUFFIX, e.getValue(), e.getValue().length);
        }
        tensors.write(dir, FourierFTAdapterConfig.FILE, config.toJson());
    }

    /**
     * The files {@link #load} read (config and weights), which a merge must not overwrite; empty if built in memory.
     *
     * @return the files, or an empty list
     */
    public List<Path> files() {
        return files;
    }

    /**
     * The adapter's configuration ({@code adapter_config.json}).
     *
     * @return the config
     */
    public FourierFTAdapterConfig config() {
        return config;
    }

    /**
     * Module paths of the adapted layers, in file order.
     *
     * @return the module paths
     */
    public Set<String> modules() {
        return spectra.keySet();
    }

    /**
     * Module {@code module}'s coefficients (a copy).
     *
     * @param module an adapted module's path
     * @return its n coefficients
     * @throws IllegalArgumentException if the adapter has no such module
     */
    public float[] coefficients(String module) {
        return spectrum(module).clone();
    }

    /**
     * Number of coefficients of {@code module}.
     *
     * @param module an adapted module's path
     * @return n
     * @throws IllegalArgumentException if the adapter has no such module
     */
    public int n(String module) {
        return spectrum(module).length;
    }

    private float[] spectrum(String module) {
        Checks.notNull(module, "module");
        float[] c = spectra.get(module);
        if (c == null) {
            throw new IllegalArgumentException("the adapter has no module '" + module + "'");
        }
        return c;
    }

    /**
     * PEFT's spec for {@code module} when its layer is d_out × d_in (out_features × in_features, whatever
     * the storage order of the weight): the indices of {@code randperm(d_out·d_in, random_loc_seed)[:n]} and
     * the α of {@code scaling} under {@code ifft2_norm}. Throws if the stored spectrum's length is not the n
     * the config gives this module at this shape (a corrupt adapter, or the wrong base model).
     *
     * @param module an adapted module's path
     * @param dOut the layer's out_features
     * @param dIn the layer's in_features
     * @return the spec
     * @throws IllegalArgumentException if the module is unknown or its n does not fit the config or the shape
     */
    public FourierFTSpec spec(String module, int dOut, int dIn) {
        int n = checkedN(module, dOut, dIn);
        return FourierFTSpec.fromSeed(dOut, dIn, n, config.randomLocSeed(),
                config.ifftNorm().effectiveAlpha(config.scaling(), dOut, dIn));
    }

    /** Module {@code module}'s n, checked as {@link #spec} checks it, without building the spec. */
    int checkedN(String module, int dOut, int dIn) {
        int n = spectrum(module).length;
        int expected = config.nFrequencyFor(module, dOut, dIn);
        if (n != expected) {
            throw new IllegalArgumentException("module '" + module + "' has " + n + " coefficients but its config gives n = "
                    + expected + " for a " + dOut + " × " + dIn + " layer (wrong base model, or a corrupt adapter)");
        }
        if (n > (long) dOut * dIn) { // PEFT refuses only n > d_out·d_in; every frequency may be used
            throw new IllegalArgumentException("module '" + module + "': n = " + n + " must be at most d_out·d_in = "
                    + ((long) dOut * dIn) + " (as PEFT requires)");
        }
        return n;
    }

    /**
     * A new adapter, built in Java, to be saved as a PEFT adapter directory.
     *
     * @return an empty builder with PEFT's defaults
     */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds an adapter from per-module coefficients; the config is derived so that PEFT reproduces every n. */
    public static final class Builder {
        private final Map<String, float[]> spectra = new LinkedHashMap<>();
        private double scaling = FourierFTSpec.DEFAULT_SCALING;
        private long seed = FourierFTSpec.DEFAULT_SEED;
        private boolean fanInFanOut;
        private IfftNorm norm = IfftNorm.BACKWARD;
        private String baseModel;

        private Builder() {
        }

        /**
         * PEFT's {@code scaling}: the factor on the inverse transform; default 150.
         *
         * @param scaling a finite value
         * @return this builder
         * @throws IllegalArgumentException if {@code scaling} is NaN or infinite
         */
        public Builder scaling(double scaling) {
            if (!Double.isFinite(scaling)) {
                throw new IllegalArgumentException("scaling must be finite, got " + scaling);
            }
            this.scaling = scaling;
            return this;
        }

        /**
         * Any 64-bit seed; a negative one is the seed PyTorch's {@code manual_seed} takes it for.
         *
         * @param seed PEFT's {@code random_loc_seed}; default 777
         * @return this builder
         */
        public Builder randomLocSeed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * True when the base weights are stored in × out (GPT-2's Conv1D).
         *
         * @param fanInFanOut PEFT's {@code fan_in_fan_out}; default false
         * @return this builder
         */
        public Builder fanInFanOut(boolean fanInFanOut) {
            this.fanInFanOut = fanInFanOut;
            return this;
        }

        /**
         * PEFT's {@code ifft2_norm}; default {@link IfftNorm#BACKWARD}.
         *
         * @param norm the normalization
         * @return this builder
         * @throws IllegalArgumentException if {@code norm} is null
         */
        public Builder ifftNorm(IfftNorm norm) {
            this.norm = Checks.notNull(norm, "norm");
            return this;
        }

        /**
         * The {@code base_model_name_or_path} to record (a Hugging Face id or a path); optional.
         *
         * @param baseModel the name or path, or null
         * @return this builder
         */
        public Builder baseModel(String baseModel) {
            this.baseModel = baseModel;
            return this;
        }

        /**
         * Adds module {@code module} (its full path in the base model) with these coefficients (copied).
         *
         * @param module the module's dotted path
         * @param coefficients its n finite coefficients, at least one
         * @return this builder
         * @throws IllegalArgumentException if an argument is null, the path is malformed or repeated, or a
         *         coefficient is not finite
         */
        public Builder layer(String module, float[] coefficients) {
            Checks.notNull(module, "module");
            Checks.notNull(coefficients, "coefficients");
            if (module.isEmpty() || module.startsWith(".") || module.endsWith(".")) {
                throw new IllegalArgumentException("module path '" + module + "' is not a dotted module path");
            }
            if (coefficients.length < 1) {
                throw new IllegalArgumentException("module '" + module + "' has no coefficients");
            }
            for (int l = 0; l < coefficients.length; l++) {
                if (!Float.isFinite(coefficients[l])) {
                    throw new IllegalArgumentException("module '" + module + "' coefficient " + l + " is " + coefficients[l]);
                }
            }
            if (spectra.putIfAbsent(module, coefficients.clone()) != null) {
                throw new IllegalArgumentException("module '" + module + "' is added twice");
            }
            return this;
        }

        /**
         * Builds the adapter, choosing n_frequency as the most common n and an exact n_frequency_pattern entry for every other module.
         *
         * @return the adapter
         * @throws IllegalArgumentException if no layer was added
         */
        public FourierFTAdapter build() {
            if (spectra.isEmpty()) {
                throw new IllegalArgumentException("an adapter needs at least one layer");
            }
            // n_frequency = the most common n; every other module gets an exact n_frequency_pattern entry
            Map<Integer, Integer> counts = new HashMap<>();
            int common = -1;
            for (float[] c : spectra.values()) {
                int k = counts.merge(c.length, 1, Integer::sum);
                if (common < 0 || k > counts.get(common) || (k == counts.get(common) && c.length < common)) {
                    common = c.length;
                }
            }
            Map<String, Integer> pattern = new LinkedHashMap<>();
            for (Map.Entry<String, float[]> e : spectra.entrySet()) {
                if (e.getValue().length != common) {
                    pattern.put(e.getKey(), e.getValue().length);
                }
            }
            FourierFTAdapterConfig config = FourierFTAdapterConfig.create(common, pattern, scaling, seed, fanInFanOut,
                    norm, baseModel, spectra.keySet());
            for (Map.Entry<String, float[]> e : spectra.entrySet()) {
                // PEFT matches pattern keys as regexes too; make sure none claims another module
                int n = config.nFrequencyFor(e.getKey(), 1, 1);
                if (n != e.getValue().length) {
                    throw new IllegalArgumentException("module '" + e.getKey() + "' would get n = " + n + " from PEFT's "
                            + "n_frequency_pattern instead of " + e.getValue().length + "; rename or split the adapter");
                }
            }
            return new FourierFTAdapter(config, Collections.unmodifiableMap(new LinkedHashMap<>(spectra)), List.of());
        }
    }
}
