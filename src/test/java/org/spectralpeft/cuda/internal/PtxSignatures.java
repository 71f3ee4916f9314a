package org.spectralpeft.cuda.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The kernels' parameter lists as the shipped PTX declares them, for tests that hold each family's launchers to
 * them without a device: launches go to a recorder and are compared here.
 */
public final class PtxSignatures {
    /** One recorded launch. */
    public record Launch(String kernel, int gridX, int gridY, Object[] args) {
    }

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\s*\\(([^)]*)\\)", Pattern.DOTALL);
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+\\.(\\w+)\\s");

    private PtxSignatures() {
    }

    /**
     * Kernel name → the Java class the launch marshals for each parameter (.u64 pointers and long long → Long,
     * 32-bit integers → Integer, .f32 → Float), from a module's compute_90 PTX on the class path, read as the
     * backend reads it.
     *
     * @param module the module's name, e.g. "foura"
     * @return its kernels' parameter classes
     * @throws IOException if the PTX cannot be read
     */
    public static Map<String, List<Class<?>>> of(String module) throws IOException {
        String ptx;
        String name = module + ".compute_90.ptx";
        try (InputStream in = PtxSignatures.class.getResourceAsStream("/org/spectralpeft/kernels/" + name)) {
            assertTrue(in != null, name + " is not on the class path (were the kernels built?)");
            ptx = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
        Map<String, List<Class<?>>> out = new HashMap<>();
        Matcher m = ENTRY.matcher(ptx);
        while (m.find()) {
            List<Class<?>> types = new ArrayList<>();
            Matcher p = PARAM.matcher(m.group(2));
            while (p.find()) {
                switch (p.group(1)) {
                    case "u64", "s64", "b64" -> types.add(Long.class);
                    case "u32", "s32", "b32" -> types.add(Integer.class);
                    case "f32" -> types.add(Float.class);
                    default -> throw new AssertionError("unexpected PTX parameter type ." + p.group(1) + " in " + m.group(1));
                }
            }
            out.put(m.group(1), types);
        }
        return out;
    }

    /**
     * Each launch passes as many arguments as its kernel declares, each of the declared class, within CUDA's grid
     * limits; and every kernel of the signatures was launched.
     *
     * @param signatures from {@link #of}
     * @param launches the recorded launches
     */
    public static void assertLaunchesMatch(Map<String, List<Class<?>>> signatures, List<Launch> launches) {
        TreeSet<String> launched = new TreeSet<>();
        for (Launch l : launches) {
            launched.add(l.kernel());
            List<Class<?>> expected = signatures.get(l.kernel());
            assertTrue(expected != null, l.kernel() + " is not in the module");
            assertEquals(expected.size(), l.args().length, l.kernel() + ": argument count");
            for (int i = 0; i < expected.size(); i++) {
                assertEquals(expected.get(i), l.args()[i].getClass(), l.kernel() + ": argument " + i);
            }
            assertTrue(l.gridX() >= 1 && l.gridY() >= 1 && l.gridY() <= 65535, l.kernel() + ": grid " + l.gridX()
                    + " × " + l.gridY());
        }
        assertEquals(new TreeSet<>(signatures.keySet()), launched, "every kernel is launched by some launcher");
    }
}
