package org.spectralpeft.tlora;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.spectralpeft.TestData;

/**
 * The case of src/test/resources/tlora: inputs and results that authors_formulas.py computed with the einsum
 * contractions of the authors' code (d_in = 6 = [2, 3], d_out = 6 = [3, 2], ring ranks 2, α = 1.5, two tokens),
 * read from authors_expected.txt.
 */
public final class AuthorsCase {
    public static final int[] IN = {2, 3};
    public static final int[] OUT = {3, 2};
    public static final float ALPHA = 1.5f;
    public static final int TOKENS = 2;
    private final Map<String, double[]> arrays = new HashMap<>();

    public AuthorsCase() {
        Path file = TestData.resources().resolve("tlora/authors_expected.txt");
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        for (String line : lines) {
            int shape = line.indexOf(" shape=");
            int open = line.indexOf(" = [");
            if (line.startsWith("#") || shape < 0 || open < 0) {
                continue;
            }
            String[] parts = line.substring(open + 4, line.lastIndexOf(']')).split(",");
            double[] values = new double[parts.length];
            for (int i = 0; i < parts.length; i++) {
                values[i] = Double.parseDouble(parts[i].trim());
            }
            arrays.put(line.substring(0, shape), values);
        }
    }

    /**
     * @param name the line's name, everything before " shape="
     * @return its values
     */
    public double[] get(String name) {
        double[] v = arrays.get(name);
        if (v == null) {
            throw new AssertionError("authors_expected.txt has no " + name + "; it has " + arrays.keySet());
        }
        return v.clone();
    }

    /**
     * @param name the line's name
     * @return its values as float32 (the inputs have one decimal)
     */
    public float[] floats(String name) {
        double[] v = get(name);
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return f;
    }

    /** @return the transform cores for ring rank 2 ("TR") or 1 ("Kronecker") */
    public float[][] transform(boolean kronecker) {
        String kind = kronecker ? "(Kronecker, R=1)" : "(TR, R=2)";
        return new float[][] {floats("transform_core.0 " + kind), floats("transform_core.1 " + kind)};
    }

    /** @return the residual's arrays in TLoRAParameters' order */
    public float[][] residual(TLoRASpec.Residual kind) {
        return switch (kind) {
            case LORA -> new float[][] {floats("lora_A"), floats("lora_B")};
            case TR -> new float[][] {floats("ttv_core.0 (out)"), floats("ttv_core.1 (out)"), floats("ttv_core.2 (in)"),
                    floats("ttv_core.3 (in)")};
            case TTM -> new float[][] {floats("ttm_core.0"), floats("ttm_core.1")};
        };
    }

    /** @return the key of the results for a transform and a residual, as the script names them */
    public static String key(boolean kronecker, TLoRASpec.Residual kind) {
        return "[" + (kronecker ? "T_kron" : "T_tr") + "," + switch (kind) {
            case LORA -> "lora";
            case TR -> "ttv";
            case TTM -> "ttm";
        } + "]";
    }

    /** @return the spec of a transform (ring rank 2, or 1 for Kronecker) and a residual kind (rank 2) */
    public static TLoRASpec spec(boolean kronecker, TLoRASpec.Residual kind) {
        return TLoRASpec.of(OUT, IN, kronecker ? 1 : 2, kind, 2, ALPHA);
    }
}
