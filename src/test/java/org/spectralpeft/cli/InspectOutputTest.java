package org.spectralpeft.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;

/** inspect writes its listing in large blocks, not a dozen small writes (and a flush) per line. */
class InspectOutputTest {
    @TempDir
    Path tmp;

    @Test
    void listingIsWrittenInBlocks() throws Exception {
        int count = 20_000;
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            entries.add(new SafetensorsWriter.Entry("layer." + i + ".w", TensorDType.F32, new long[] {1}));
        }
        Path file = tmp.resolve("m.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(file, entries, Map.of())) {
            for (SafetensorsWriter.Entry e : entries) {
                w.write(e.name(), TensorBytes.of(new float[1]));
            }
            w.commit();
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int[] writes = new int[1];
        OutputStream counting = new OutputStream() {
            @Override
            public void write(int b) {
                writes[0]++;
                bytes.write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                writes[0]++;
                bytes.write(b, off, len);
            }
        };
        PrintStream out = new PrintStream(counting, true, StandardCharsets.UTF_8);
        try (SafetensorsModel model = SafetensorsModel.open(file)) {
            InspectCommand.describeModel(model, out);
        }
        String text = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("layer.19999.w") && text.contains(count + " tensors"), text.substring(0, 200));
        // the columns printf gave them
        String line = String.format("  %-13s  %-7s %-18s %12d%n", "layer.7.w", "F32", "[1]", 4);
        assertTrue(text.contains(line), line + " in " + text.substring(0, 400));
        // a few per 64 K block (the stream encodes in 8 KB pieces); line by line it was about 15 per line
        assertTrue(writes[0] < count / 20, writes[0] + " writes for " + count + " lines");
    }
}
