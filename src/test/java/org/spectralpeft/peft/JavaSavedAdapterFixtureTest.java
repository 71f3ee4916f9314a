package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.TestData;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.reference.FourierFTReference;

/**
 * The committed adapter in {@code src/test/resources/java-saved-adapter/} is what this library saves, with
 * the float64 reference's ΔW beside it; {@code make_peft_fixtures.py} loads it into PEFT and checks PEFT's
 * {@code get_delta_weight} against that ΔW, which shows PEFT reads our adapters as we mean them. This test
 * keeps the committed files identical to what the saver writes today. Regenerate them, after a deliberate
 * format change, with {@code -Dspectralpeft.regenerate=true}.
 */
class JavaSavedAdapterFixtureTest {
    static final Path DIR = TestData.resources().resolve("java-saved-adapter");
    private static final Map<String, int[]> LAYERS = new LinkedHashMap<>();

    static {
        LAYERS.put("model.layers.0.self_attn.q_proj", new int[] {37, 29, 30});
        LAYERS.put("model.layers.0.self_attn.v_proj", new int[] {29, 37, 30});
        LAYERS.put("model.layers.1.mlp.fc", new int[] {64, 48, 77});
    }

    @TempDir
    Path tmp;

    private static void write(Path dir) throws IOException {
        Random random = new Random(20261122L);
        FourierFTAdapter.Builder b = FourierFTAdapter.builder().randomLocSeed(4321).scaling(99.5);
        Map<String, float[]> coeffs = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : LAYERS.entrySet()) {
            float[] c = new float[e.getValue()[2]];
            for (int l = 0; l < c.length; l++) {
                c[l] = (float) random.nextGaussian();
            }
            coeffs.put(e.getKey(), c);
            b.layer(e.getKey(), c);
        }
        FourierFTAdapter adapter = b.build();
        adapter.save(dir.resolve("adapter"));
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        LAYERS.forEach((m, s) -> entries.add(new SafetensorsWriter.Entry(m, TensorDType.F32, new long[] {s[0], s[1]})));
        try (SafetensorsWriter w = SafetensorsWriter.create(dir.resolve("expected_delta.safetensors"), entries, Map.of())) {
            for (Map.Entry<String, int[]> e : LAYERS.entrySet()) {
                int[] s = e.getValue();
                FourierFTSpec spec = adapter.spec(e.getKey(), s[0], s[1]);
                double[] c = new double[s[2]];
                float[] cf = coeffs.get(e.getKey());
                for (int l = 0; l < c.length; l++) {
                    c[l] = cf[l];
                }
                double[] delta = new FourierFTReference(s[0], s[1], spec.rows(), spec.cols(), 99.5).deltaW(c);
                float[] f = new float[delta.length];
                for (int i = 0; i < f.length; i++) {
                    f[i] = (float) delta[i];
                }
                w.write(e.getKey(), TensorBytes.of(f));
            }
            w.commit();
        }
    }

    @Test
    void committedFilesAreWhatTheSaverWrites() throws IOException {
        if (Boolean.getBoolean("spectralpeft.regenerate")) {
            write(DIR);
        }
        write(tmp);
        for (String f : List.of("adapter/adapter_config.json", "adapter/adapter_model.safetensors")) {
            assertArrayEquals(Files.readAllBytes(tmp.resolve(f)), Files.readAllBytes(DIR.resolve(f)),
                    f + " differs from what the saver writes now; regenerate with -Dspectralpeft.regenerate=true");
        }
        // ΔW comes from Math.cos/sin, which may differ in the last bit between JVMs: compare to float64 rounding
        try (SafetensorsFile now = SafetensorsFile.open(tmp.resolve("expected_delta.safetensors"));
             SafetensorsFile committed = SafetensorsFile.open(DIR.resolve("expected_delta.safetensors"))) {
            assertEquals(3, committed.tensors().size());
            for (String module : LAYERS.keySet()) {
                double err = TestData.relativeError(committed.readDoubles(committed.tensor(module)),
                        now.readDoubles(now.tensor(module)));
                assertTrue(err < 1e-6, module + ": committed ΔW differs from the reference by " + err);
            }
        }
    }
}
