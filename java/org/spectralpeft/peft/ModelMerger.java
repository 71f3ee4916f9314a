package org.spectralpeft.peft;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.AbstractList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.tlora.TLoRABackend;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.io.AtomicFiles;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.io.TensorInfo;

/**
 * Streams a base model into a new safetensors file with the adapter merged: every adapted weight becomes
 * W + ΔW (ΔWᵀ for weights stored in × out) in the weight's own dtype, every other tensor is copied byte
 * for byte. The output is written beside the target and moved into place only when complete, so a failure
 * leaves no partial file.
 *
 * <p>A second thread reads and merges the next adapted weight while the calling thread writes (or copies
 * the tensors before it), so reading, merging and writing overlap; at most two adapted weights are in
 * memory, the one being written and the one being merged. The backend is only called from that thread,
 * one call at a time, and never after this method returns.
 *
 * <p>Tensors are written ordered by element size, largest first, then by name (as the reference
 * safetensors writer orders them), which keeps every tensor 8-byte aligned.
 */
public final class ModelMerger {

    /** Told about each tensor as it is written. */
    public interface Progress {
        /**
         * Called after each tensor is written.
         *
         * @param done tensors written so far, this one included
         * @param total tensors in the output
         * @param tensor the tensor's name
         * @param merged true if the adapter was merged into it, false if it was copied
         */
        void tensorDone(int done, int total, String tensor, boolean merged);
    }

    /** What a merge did. */
    public record Summary(int layersMerged, int tensorsCopied, long bytesWritten, double seconds, String backend) {
    }

    private ModelMerger() {
    }

    /**
     * Writes {@code base} with every layer of {@code plan} merged to the safetensors file {@code out}.
     *
     * @param base the base model
     * @param plan the layers to merge and their coefficients
     * @param backend computes W + ΔW; called only from the merging thread
     * @param out the output file, replaced atomically when complete
     * @param progress told about each tensor, or null
     * @return what the merge did
     * @throws IllegalArgumentException if an argument is null, or {@code out} is one of the input files
     * @throws IOException if reading the base model or writing the output fails
     */
    public static Summary merge(SafetensorsModel base, MergePlan plan, FourierFTBackend backend, Path out,
                                Progress progress) throws IOException {
        Checks.notNull(backend, "backend"); // progress may be null
        return mergeWith(base, plan, new FourierFTOps(backend), out, progress);
    }

    /**
     * Writes {@code base} with every layer of a FouRA {@code plan} merged to the safetensors file {@code out}
     * (as {@link #merge(SafetensorsModel, MergePlan, FourierFTBackend, Path, Progress)} does for FourierFT).
     *
     * @param base the base model
     * @param plan the layers to merge, from {@link MergePlan#build(SafetensorsModel, FouRAAdapter, java.util.function.Predicate)}
     * @param backend computes W + ΔW; called only from the merging thread
     * @param out the output file, replaced atomically when complete
     * @param progress told about each tensor, or null
     * @return what the merge did
     * @throws IllegalArgumentException if an argument is null, the plan is not FouRA's, or {@code out} is an input
     * @throws IOException if reading the base model or writing the output fails
     */
    public static Summary merge(SafetensorsModel base, MergePlan plan, FouRABackend backend, Path out,
                                Progress progress) throws IOException {
        Checks.notNull(backend, "backend"); // progress may be null
        return mergeWith(base, plan, new FouRAOps(backend), out, progress);
    }

    /**
     * Writes {@code base} with every layer of a TLoRA {@code plan} merged (W ← W·T + s·Δ) to the safetensors
     * file {@code out}, as {@link #merge(SafetensorsModel, MergePlan, FourierFTBackend, Path, Progress)} does for
     * FourierFT. A float64 weight is merged in float32 and the change added to it.
     *
     * @param base the base model
     * @param plan the layers to merge, from {@link MergePlan#build(SafetensorsModel, TLoRAAdapter, java.util.function.Predicate)}
     * @param backend computes W·T + s·Δ; called only from the merging thread
     * @param out the output file, replaced atomically when complete
     * @param progress told about each tensor, or null
     * @return what the merge did
     * @throws IllegalArgumentException if an argument is null, the plan is not TLoRA's, or {@code out} is an input
     * @throws IOException if reading the base model or writing the output fails
     */
    public static Summary merge(SafetensorsModel base, MergePlan plan, TLoRABackend backend, Path out,
                                Progress progress) throws IOException {
        Checks.notNull(backend, "backend"); // progress may be null
        return mergeWith(base, plan, new TLoRAOps(backend), out, progress);
    }

    /** How one family's backend applies a layer's update to a weight, in the weight's storage order. */
    private interface UpdateOps {
        String description();

        /** Refuses, before any work, a plan whose updates are another family's. */
        void check(MergePlan.Layer layer);

        /** The merge, in the weight's storage order, in place. */
        void merge(MergePlan.Layer layer, HostArray weight);

        /** The change a merge makes to a float64 weight, computed in float32 (the weight is read, not written). */
        float[] change(MergePlan.Layer layer, double[] weight);
    }

    /** A family whose merge adds ΔW: a float64 weight's change is ΔW itself. */
    private interface AdditiveOps extends UpdateOps {
        /** out (float32, stored rows × cols) = ΔW in storage order. */
        void materialize(MergePlan.Layer layer, HostArray out);

        @Override
        default float[] change(MergePlan.Layer layer, double[] weight) {
            float[] delta = new float[weight.length];
            materialize(layer, HostArray.float32(delta));
            return delta;
        }
    }

    private record TLoRAOps(TLoRABackend backend) implements UpdateOps {
        @Override
        public String description() {
            return backend.description();
        }

        @Override
        public void check(MergePlan.Layer layer) {
            Checks.require(layer.update() instanceof MergePlan.TLoRAUpdate, "module '" + layer.module()
                    + "' has no TLoRA update; merge it with its own family's backend");
        }

        @Override
        public void merge(MergePlan.Layer layer, HostArray weight) {
            TLoRAAdapter.Layer l = ((MergePlan.TLoRAUpdate) layer.update()).layer();
            backend.merge(l.spec(), l.params(), weight);
        }

        /** W' − W with W rounded to float32 (the merge is W·T + s·Δ, not an addition): what the float32 merge changes. */
        @Override
        public float[] change(MergePlan.Layer layer, double[] weight) {
            float[] w = new float[weight.length];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) weight[i];
            }
            float[] merged = w.clone();
            merge(layer, HostArray.float32(merged));
            for (int i = 0; i < w.length; i++) {
                merged[i] -= w[i];
            }
            return merged;
        }
    }

    private record FourierFTOps(FourierFTBackend backend) implements AdditiveOps {
        @Override
        public String description() {
            return backend.description();
        }

        @Override
        public void check(MergePlan.Layer layer) {
            Checks.require(layer.update() instanceof MergePlan.FourierFTUpdate, "module '" + layer.module()
                    + "' has no FourierFT update; merge it with its own family's backend");
        }

        @Override
        public void materialize(MergePlan.Layer layer, HostArray out) {
            backend.materialize(layer.storageSpec(), layer.coefficients(), out);
        }

        @Override
        public void merge(MergePlan.Layer layer, HostArray weight) {
            backend.merge(layer.storageSpec(), layer.coefficients(), weight);
        }
    }

    private record FouRAOps(FouRABackend backend) implements AdditiveOps {
        @Override
        public String description() {
            return backend.description();
        }

        @Override
        public void check(MergePlan.Layer layer) {
            Checks.require(layer.update() instanceof MergePlan.FouRAUpdate, "module '" + layer.module()
                    + "' has no FouRA update; merge it with its own family's backend");
        }

        @Override
        public void materialize(MergePlan.Layer layer, HostArray out) {
            try (FouRAFactors f = prepare(layer)) {
                backend.materialize(f, out);
            }
        }

        @Override
        public void merge(MergePlan.Layer layer, HostArray weight) {
            try (FouRAFactors f = prepare(layer)) {
                backend.merge(f, weight);
            }
        }

        private FouRAFactors prepare(MergePlan.Layer layer) {
            FouRAAdapter.Layer l = ((MergePlan.FouRAUpdate) layer.update()).storageLayer();
            return backend.prepare(l.spec(), l.a(), l.b(), l.gate());
        }
    }

    private static Summary mergeWith(SafetensorsModel base, MergePlan plan, UpdateOps backend, Path out,
                                     Progress progress) throws IOException {
        checkOutput(base, plan, out);
        plan.layers().values().forEach(backend::check);
        long start = System.nanoTime();
        // names only, sorted; each tensor's entry is looked up as it is needed, so that memory follows the
        // weights rather than the tensor count (no object per tensor for a model of millions of them)
        String[] order = base.tensorNames().toArray(new String[0]);
        byte[] elementBytes = new byte[order.length];
        long bytes = 0;
        for (int i = 0; i < order.length; i++) {
            TensorInfo t = base.tensor(order[i]);
            elementBytes[i] = (byte) t.dtype().bytes();
            bytes += t.byteLength();
        }
        sortByElementSizeThenName(order, elementBytes);
        List<SafetensorsWriter.Entry> entries = new AbstractList<>() {
            @Override
            public SafetensorsWriter.Entry get(int i) {
                return SafetensorsWriter.Entry.of(tensor(base, order[i]));
            }

            @Override
            public int size() {
                return order.length;
            }
        };
        int merged = 0;
        ExecutorService mergeThread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "spectral-peft-merge");
            t.setDaemon(true);
            return t;
        });
        Future<MergedWeight> ahead = null;
        Throwable failure = null;
        try (SafetensorsWriter writer = SafetensorsWriter.create(out, entries, base.metadata())) {
            int nextAdapted = nextAdapted(order, plan, 0);
            ahead = nextAdapted < 0 ? null : submit(mergeThread, base, base.tensor(order[nextAdapted]), plan, backend);
            for (int i = 0; i < order.length; i++) {
                TensorInfo t = base.tensor(order[i]);
                boolean adapted = i == nextAdapted;
                if (adapted) {
                    MergedWeight w = await(ahead);
                    nextAdapted = nextAdapted(order, plan, i + 1);
                    ahead = nextAdapted < 0 ? null : submit(mergeThread, base, base.tensor(order[nextAdapted]), plan, backend);
                    w.writeTo(writer);
                    merged++;
                } else {
                    writer.copy(t.name(), base.fileOf(t.name()), t);
                }
                if (progress != null) {
                    progress.tensorDone(i + 1, order.length, t.name(), adapted);
                }
            }
            writer.commit();
        } catch (IOException | RuntimeException | Error e) {
            failure = e;
            throw e;
        } finally {
            // On failure, a merge already running must end before the caller may close the backend. It is
            // not interrupted: an interrupt would close the model's file channels under it.
            if (ahead != null) {
                ahead.cancel(false);
            }
            mergeThread.shutdown();
            awaitUninterruptibly(mergeThread);
            if (failure != null && ahead != null && ahead.isDone() && !ahead.isCancelled()) {
                try {
                    ahead.get();
                } catch (ExecutionException e) {
                    if (e.getCause() != failure) { // the merge in flight failed too (not the failure itself)
                        failure.addSuppressed(e.getCause());
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
        return new Summary(merged, order.length - merged, bytes, (System.nanoTime() - start) / 1e9, backend.description());
    }

    /**
     * Refuses an output {@link AtomicFiles#checkTarget} refuses (not a regular file, no such directory), and one
     * that is, or resolves to (through "..", symbolic or hard links), a file the merge
     * reads: the base model's files and the adapter's. The output replaces its target by a rename, which
     * would otherwise swap an input (the adapter, say) for the merged model and still succeed.
     *
     * @param base the base model
     * @param plan the merge plan, naming the adapter's files
     * @param out the output file
     * @throws IllegalArgumentException if an argument is null or the output is refused, saying why
     * @throws IOException if a path cannot be resolved
     */
    public static void checkOutput(SafetensorsModel base, MergePlan plan, Path out) throws IOException {
        Checks.notNull(base, "base");
        Checks.notNull(plan, "plan");
        Checks.notNull(out, "out");
        AtomicFiles.checkTarget(out);
        Set<Path> inputs = new LinkedHashSet<>(base.files());
        inputs.addAll(plan.inputFiles());
        if (!Files.exists(out)) {
            return; // an input exists, so a missing output cannot be one
        }
        for (Path input : inputs) {
            if (Files.exists(input) && Files.isSameFile(input, out)) {
                throw new IllegalArgumentException("the output " + out + " is the input file " + input);
            }
        }
    }

    /** A merged weight waiting to be written: 16- or 32-bit values, or float64 ones. */
    private record MergedWeight(String name, HostArray values, double[] doubles) {
        void writeTo(SafetensorsWriter writer) throws IOException {
            if (doubles != null) {
                writer.write(name, doubles);
            } else {
                writer.write(name, values);
            }
        }
    }

    private static TensorInfo tensor(SafetensorsModel base, String name) {
        return base.find(name).orElseThrow(() -> new IllegalStateException("tensor '" + name + "' left " + base.source()));
    }

    // The reference writer's order: largest element size first, then by name. Bucketed by size (1, 2, 4 or
    // 8 bytes), each bucket sorted in place: no per-tensor objects.
    private static void sortByElementSizeThenName(String[] names, byte[] elementBytes) {
        String[] sorted = new String[names.length];
        int at = 0;
        for (int size = 8; size >= 1; size >>= 1) {
            int from = at;
            for (int i = 0; i < names.length; i++) {
                if (elementBytes[i] == size) {
                    sorted[at++] = names[i];
                }
            }
            Arrays.sort(sorted, from, at);
        }
        if (at != names.length) {
            throw new IllegalStateException("an element size other than 1, 2, 4 or 8 bytes");
        }
        System.arraycopy(sorted, 0, names, 0, names.length);
    }

    private static int nextAdapted(String[] order, MergePlan plan, int from) {
        for (int i = from; i < order.length; i++) {
            if (plan.layerFor(order[i]).isPresent()) {
                return i;
            }
        }
        return -1;
    }

    private static Future<MergedWeight> submit(ExecutorService mergeThread, SafetensorsModel base, TensorInfo t,
                                               MergePlan plan, UpdateOps backend) {
        MergePlan.Layer layer = plan.layerFor(t.name()).orElseThrow();
        return mergeThread.submit(() -> mergeLayer(base.fileOf(t.name()), t, layer, backend));
    }

    /** The merged weight, or the merge's own exception (IOException, or unchecked as thrown). */
    private static MergedWeight await(Future<MergedWeight> merge) throws IOException {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return merge.get();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException io) {
                throw io;
            }
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(cause);
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static void awaitUninterruptibly(ExecutorService executor) {
        boolean interrupted = false;
        while (true) {
            try {
                if (executor.awaitTermination(1, TimeUnit.MINUTES)) {
                    break;
                }
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    // The base weight must be finite, and so must the merged one: a non-finite result means ΔW or W + ΔW
    // overflowed the dtype. Both are checked here, whatever the backend, before anything is written.
    private static MergedWeight mergeLayer(SafetensorsFile file, TensorInfo t, MergePlan.Layer layer,
                                           UpdateOps backend) throws IOException {
        String where = "module '" + layer.module() + "' (tensor '" + t.name() + "' in " + file.path() + ")";
        try {
            if (t.dtype() == TensorDType.F64) {
                // the backends compute in float32: add the float32 ΔW to the float64 weight on the host
                double[] w = file.readDoubles(t);
                for (int i = 0; i < w.length; i++) {
                    if (!Double.isFinite(w[i])) {
                        throw new IllegalArgumentException(baseNotFinite(where, i, w[i]));
                    }
                }
                float[] delta = backend.change(layer, w);
                for (int i = 0; i < w.length; i++) {
                    w[i] += delta[i];
                    if (!Double.isFinite(w[i])) {
                        throw new IllegalArgumentException(mergedNotFinite(where, t, i, w[i]));
                    }
                }
                return new MergedWeight(t.name(), null, w);
            }
            HostArray weight = file.readHostArray(t);
            int bad = weight.firstNonFinite();
            if (bad >= 0) {
                throw new IllegalArgumentException(baseNotFinite(where, bad, weight.get(bad)));
            }
            backend.merge(layer, weight);
            bad = weight.firstNonFinite();
            if (bad >= 0) {
                throw new IllegalArgumentException(mergedNotFinite(where, t, bad, weight.get(bad)));
            }
            return new MergedWeight(t.name(), weight, null);
        } catch (IllegalArgumentException e) {
            if (e.getMessage() != null && e.getMessage().startsWith(where)) {
                throw e;
            }
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
    }

    private static String baseNotFinite(String where, int index, double value) {
        return where + ": the base weight's element " + index + " is " + value + "; a weight must be finite";
    }

    private static String mergedNotFinite(String where, TensorInfo t, int index, double value) {
        return where + ": W + ΔW at element " + index + " is " + value + ", not finite in " + t.dtype()
                + " (it overflows; the coefficients or scaling are too large)";
    }
}
