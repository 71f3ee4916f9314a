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
 * A case of src/test/resources/tlora: inputs and results that authors_formulas.py computed with the einsum
 * contractions of the authors' code, read from authors_expected.txt. Two cases: {@link #twoFactors()} (d_in = 6 =
 * [2, 3], d_out = 6 = [3, 2], ring ranks 2, α = 1.5, two tokens) and {@link #threeFactors()} (d_in = 12 = [2, 3, 2],
 * d_out = 12 = [3, 2, 2], transform ring rank 2, residual rank 3, α = 1.5, three tokens), whose first and last
 * cores on each side have equal shapes, so that only the values tell a permutation of the cores.
 */
public final class AuthorsCase {
    private static final String THREE = "[3 factors] ";
    private static Map<String, double[]> file;

    private final String prefix;
    private final int[] in;
    private final int[] out;
    private final int transformRank;
    private final int rank;
    private final float alpha;
    private final int tokens;

    private AuthorsCase(String prefix, int[] out, int[] in, int transformRank, int rank, float alpha, int tokens) {
        this.prefix = prefix;
        this.out = out;
        this.in = in;
        this.transformRank = transformRank;
        this.rank = rank;
        this.alpha = alpha;
        this.tokens = tokens;
    }

    /** @return d_in = [2, 3], d_out = [3, 2], ring ranks 2, α = 1.5, two tokens */
    public static AuthorsCase twoFactors() {
        return new AuthorsCase("", new int[] {3, 2}, new int[] {2, 3}, 2, 2, 1.5f, 2);
    }

    /** @return d_in = [2, 3, 2], d_out = [3, 2, 2], transform ring rank 2, residual rank 3, α = 1.5, three tokens */
    public static AuthorsCase threeFactors() {
        return new AuthorsCase(THREE, new int[] {3, 2, 2}, new int[] {2, 3, 2}, 2, 3, 1.5f, 3);
    }

    /** @return both cases */
    public static List<AuthorsCase> all() {
        return List.of(twoFactors(), threeFactors());
    }

    /**
     * @param factors 2 or 3
     * @return that case
     */
    public static AuthorsCase of(int factors) {
        return switch (factors) {
            case 2 -> twoFactors();
            case 3 -> threeFactors();
            default -> throw new IllegalArgumentException("no case with " + factors + " factors");
        };
    }

    private static synchronized Map<String, double[]> file() {
        if (file != null) {
            return file;
        }
        Path path = TestData.resources().resolve("tlora/authors_expected.txt");
        List<String> lines;
        try {
            lines = Files.readAllLines(path);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Map<String, double[]> arrays = new HashMap<>();
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
        file = arrays;
        return file;
    }

    /**
     * @param name the line's name without the case's prefix, everything before " shape="
     * @return its values
     */
    public double[] get(String name) {
        double[] v = file().get(prefix + name);
        if (v == null) {
            throw new AssertionError("authors_expected.txt has no " + prefix + name + "; it has " + file().keySet());
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

    /** @return the transform cores for the case's ring rank ("TR") or 1 ("Kronecker") */
    public float[][] transform(boolean kronecker) {
        String kind = kronecker ? "(Kronecker, R=1)" : "(TR, R=" + transformRank + ")";
        float[][] cores = new float[in.length][];
        for (int d = 0; d < cores.length; d++) {
            cores[d] = floats("transform_core." + d + " " + kind);
        }
        return cores;
    }

    /** @return the name of the transform's dense matrix in the file */
    public String transformName(boolean kronecker) {
        if (kronecker) {
            return in.length == 2 ? "T_kron = kron(core0, core1)" : "T_kron = kron(core0, core1, ...)";
        }
        return "T_tr = ttm_to_matrix(transform_core R=" + transformRank + ")";
    }

    /** @return the residual's arrays in TLoRAParameters' order */
    public float[][] residual(TLoRASpec.Residual kind) {
        return switch (kind) {
            case LORA -> new float[][] {floats("lora_A"), floats("lora_B")};
            case TR -> {
                float[][] cores = new float[out.length + in.length][];
                for (int k = 0; k < cores.length; k++) {
                    cores[k] = floats("ttv_core." + k + (k < out.length ? " (out)" : " (in)"));
                }
                yield cores;
            }
            case TTM -> {
                float[][] cores = new float[in.length][];
                for (int k = 0; k < cores.length; k++) {
                    cores[k] = floats("ttm_core." + k);
                }
                yield cores;
            }
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

    /** @return the spec of the case's transform (or a Kronecker one, ring rank 1) and a residual kind */
    public TLoRASpec spec(boolean kronecker, TLoRASpec.Residual kind) {
        return TLoRASpec.of(out.clone(), in.clone(), kronecker ? 1 : transformRank, kind, rank, alpha);
    }

    /** @return the parameters of {@link #spec} from the file's arrays */
    public TLoRAParameters parameters(boolean kronecker, TLoRASpec.Residual kind) {
        return TLoRAParameters.of(spec(kronecker, kind), transform(kronecker), residual(kind));
    }

    /** @return the rows of x and y */
    public int tokens() {
        return tokens;
    }

    /** @return the number of input factors */
    public int factors() {
        return in.length;
    }

    @Override
    public String toString() {
        return in.length + " factors";
    }
}
