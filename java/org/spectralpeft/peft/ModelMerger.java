package org.spectralpeft.peft;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.spectralpeft.api.FourierFTBackend;
import org.spectralpeft.api.HostArray;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.io.TensorInfo;

/**
 * Streams a base model into a new safetensors file with the adapter merged: every adapted weight becomes
 * W + ΔW (ΔWᵀ for weights stored in × out) in the weight's own dtype, every other tensor is copied byte
 * for byte. One tensor is in memory at a time. The output is written beside the target and moved into
 * place only when complete, so a failure leaves no partial file.
 *
 * <p>Tensors are written ordered by element size, largest first, then by name (as the reference
 * safetensors writer orders them), which keeps every tensor 8-byte aligned.
 */
public final class ModelMerger {

    /** Told about each tensor as it is written. */
    public interface Progress {
        void tensorDone(int done, int total, String tensor, boolean merged);
    }

    /** What a merge did. */
    public record Summary(int layersMerged, int tensorsCopied, long bytesWritten, double seconds, String backend) {
    }

    private ModelMerger() {
    }

    public static Summary merge(SafetensorsModel base, MergePlan plan, FourierFTBackend backend, Path out,
                                Progress progress) throws IOException {
        for (Path input : base.files()) {
            if (Files.exists(out) && Files.isSameFile(input, out)) {
                throw new IllegalArgumentException("the output " + out + " is the input file " + input);
            }
        }
        long start = System.nanoTime();
        List<TensorInfo> order = new ArrayList<>();
        for (String name : base.tensorNames()) {
            order.add(base.tensor(name));
        }
        order.sort(Comparator.comparingInt((TensorInfo t) -> -t.dtype().bytes()).thenComparing(TensorInfo::name));
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        long bytes = 0;
        for (TensorInfo t : order) {
            entries.add(SafetensorsWriter.Entry.of(t));
            bytes += t.byteLength();
        }
        int merged = 0;
        try (SafetensorsWriter writer = SafetensorsWriter.create(out, entries, base.metadata())) {
            for (int i = 0; i < order.size(); i++) {
                TensorInfo t = order.get(i);
                SafetensorsFile file = base.fileOf(t.name());
                var layer = plan.layerFor(t.name());
                if (layer.isPresent()) {
                    mergeLayer(file, t, layer.get(), backend, writer);
                    merged++;
                } else {
                    writer.copy(t.name(), file, t);
                }
                if (progress != null) {
                    progress.tensorDone(i + 1, order.size(), t.name(), layer.isPresent());
                }
            }
            writer.commit();
        }
        return new Summary(merged, order.size() - merged, bytes, (System.nanoTime() - start) / 1e9, backend.description());
    }

    private static void mergeLayer(SafetensorsFile file, TensorInfo t, MergePlan.Layer layer, FourierFTBackend backend,
                                   SafetensorsWriter writer) throws IOException {
        if (t.dtype() == TensorDType.F64) {
            // the backends compute in float32: add the float32 ΔW to the float64 weight on the host
            double[] w = file.readDoubles(t);
            float[] delta = new float[w.length];
            backend.materialize(layer.storageSpec(), layer.coefficients(), HostArray.float32(delta));
            for (int i = 0; i < w.length; i++) {
                w[i] += delta[i];
            }
            writer.write(t.name(), w);
            return;
        }
        HostArray weight = file.readHostArray(t);
        try {
            backend.merge(layer.storageSpec(), layer.coefficients(), weight);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("tensor '" + t.name() + "' in " + file.path() + ": " + e.getMessage(), e);
        }
        writer.write(t.name(), weight);
    }
}
