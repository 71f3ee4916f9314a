package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.PeftIndices;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.io.TensorInfo;
import org.spectralpeft.reference.FourierFTReference;

/**
 * Merging a PEFT FourierFT adapter into a safetensors checkpoint, on one backend, checked against the float64
 * reference: every adapted weight equals W + ΔW (ΔWᵀ for the Conv1D weight stored in × out) to the weight
 * dtype's rounding, every other tensor is byte-identical, and failures leave no output behind.
 */
public abstract class ModelMergerContract {
    @TempDir
    Path tmp;

    protected abstract FourierFTBackend backend();

    private static final Pattern CONV1D = Pattern.compile(TinyCheckpoint.CONV1D_MODULES);

    @ParameterizedTest
    @EnumSource(value = TensorDType.class, names = {"F32", "F16", "BF16", "F64"})
    void mergedWeightsMatchTheReferenceAndOtherTensorsAreCopied(TensorDType dtype) throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, dtype);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        FourierFTAdapter adapter = TinyCheckpoint.adapter(data, 2024, 120.0, IfftNorm.BACKWARD, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        ModelMerger.Summary s = merge(base, adapter, out);
        assertEquals(4, s.layersMerged(), data.tag());
        assertEquals(ckpt.bytes.size() - 4, s.tensorsCopied(), data.tag());
        check(ckpt, adapter, out, data);
    }

    @Test
    void shardedCheckpointMergesIntoOneFile() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.BF16);
        Files.createDirectories(tmp.resolve("base"));
        Path index = ckpt.writeSharded(tmp.resolve("base"));
        FourierFTAdapter adapter = TinyCheckpoint.adapter(data, 7, 300.0, IfftNorm.BACKWARD, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        merge(index, adapter, out);
        check(ckpt, adapter, out, data);
    }

    @Test
    void orthoNormAdapter() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        FourierFTAdapter adapter = TinyCheckpoint.adapter(data, 777, 2.5, IfftNorm.ORTHO, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        merge(base, adapter, out);
        check(ckpt, adapter, out, data);
    }

    @Test
    void aFailureMidwayLeavesTheExistingOutputUntouched() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        FourierFTAdapter adapter = TinyCheckpoint.adapter(data, 2024, 120.0, IfftNorm.BACKWARD, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        byte[] previous = "an earlier output".getBytes();
        Files.write(out, previous);
        InstrumentedBackend failing = new InstrumentedBackend(backend(), 2);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> merge(base, adapter, out, failing, null));
        assertTrue(e.getMessage().contains("injected"), e.getMessage());
        assertEquals(0, failing.active.get(), "a backend call outlived the failed merge");
        assertArrayEquals(previous, Files.readAllBytes(out));
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(List.of(), files.filter(p -> p.getFileName().toString().endsWith(".partial")).toList());
        }
    }

    /**
     * Reading and merging the next adapted weight overlaps writing: the backend runs on another thread, one
     * call at a time, and no more than two adapted weights (one merged and waiting, one being merged) are
     * ahead of what has been written.
     */
    @Test
    void mergesRunAheadOfTheWriterByAtMostOneWeight() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.BF16);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        FourierFTAdapter adapter = TinyCheckpoint.adapter(data, 11, 150.0, IfftNorm.BACKWARD, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        InstrumentedBackend counting = new InstrumentedBackend(backend(), 0);
        merge(base, adapter, out, counting, (done, total, tensor, merged) -> {
            if (merged) {
                counting.written.incrementAndGet();
            }
        });
        check(ckpt, adapter, out, data);
        assertEquals(4, counting.merges.get());
        assertEquals(4, counting.written.get());
        assertTrue(counting.mostAhead.get() <= 2, "merges ahead of the writer: " + counting.mostAhead.get());
        assertEquals(1, counting.mostActive.get(), "backend calls at once");
        assertFalse(counting.threads.contains(Thread.currentThread().getName()), "merged on " + counting.threads);
    }

    /**
     * A write (here the progress listener) failing while the next merge is still running: merge() must wait
     * for that merge before it returns, so the caller may close the backend. The merge is held until well
     * after the failure.
     */
    @Test
    void aFailedWriteWaitsForTheMergeInFlight() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        FourierFTAdapter adapter = TinyCheckpoint.adapter(data, 5, 80.0, IfftNorm.BACKWARD, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        InstrumentedBackend held = new InstrumentedBackend(backend(), 0);
        held.holdSecondMerge = new CountDownLatch(1);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> merge(base, adapter, out, held, (done, total, tensor, merged) -> {
                    if (merged) {
                        for (int wait = 0; held.merges.get() < 2 && wait < 10_000; wait++) {
                            sleep(1); // until the second merge is running (and held)
                        }
                        Thread release = new Thread(() -> {
                            sleep(200);
                            held.holdSecondMerge.countDown();
                        });
                        release.setDaemon(true);
                        release.start();
                        throw new IllegalStateException("injected write failure");
                    }
                }));
        assertTrue(e.getMessage().contains("injected write failure"), e.getMessage());
        assertEquals(2, held.merges.get(), "the second merge had started");
        assertEquals(0, held.active.get(), "merge() returned while a backend call was still running");
        assertFalse(Files.exists(out));
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * A result that is not finite in the weight's dtype (W + ΔW or ΔW itself overflows) is an error naming the
     * module, not infinities written. F16: ΔW is finite in float32 but W + ΔW is beyond 65504; the others:
     * coefficients so large that ΔW overflows float32.
     */
    @ParameterizedTest
    @EnumSource(value = TensorDType.class, names = {"F32", "F16", "BF16", "F64"})
    void anOverflowingMergeIsAnErrorNamingTheModule(TensorDType dtype) throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, dtype);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        float[] c = data.gaussian(200);
        double scaling = 150;
        if (dtype == TensorDType.F16) {
            scaling = 1e6;
        } else {
            java.util.Arrays.fill(c, 3e38f);
        }
        FourierFTAdapter.builder().scaling(scaling).ifftNorm(IfftNorm.FORWARD).layer("model.layers.1.mlp.fc", c).build()
                .save(tmp.resolve("adapter"));
        FourierFTAdapter adapter = FourierFTAdapter.load(tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        byte[] previous = "an earlier output".getBytes();
        Files.write(out, previous);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> merge(base, adapter, out));
        assertTrue(e.getMessage().contains("module 'model.layers.1.mlp.fc'") && e.getMessage().contains("not finite"),
                e.getMessage());
        assertArrayEquals(previous, Files.readAllBytes(out));
        assertNoPartials();
    }

    /** A base weight holding NaN is refused (a NaN input), naming the module, whatever the backend. */
    @ParameterizedTest
    @EnumSource(value = TensorDType.class, names = {"F32", "F16", "BF16", "F64"})
    void aBaseWeightHoldingNaNIsRefused(TensorDType dtype) throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, dtype);
        ByteBuffer w = ByteBuffer.wrap(ckpt.bytes.get("model.layers.0.self_attn.v_proj.weight")).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int at = 17;
        switch (dtype) {
            case F32 -> w.putFloat(4 * at, Float.NaN);
            case F64 -> w.putDouble(8 * at, Double.NaN);
            case F16 -> w.putShort(2 * at, (short) 0x7E00);
            default -> w.putShort(2 * at, (short) 0x7FC0);
        }
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        FourierFTAdapter adapter = TinyCheckpoint.adapter(data, 4, 150.0, IfftNorm.BACKWARD, tmp.resolve("adapter"));
        Path out = tmp.resolve("merged.safetensors");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> merge(base, adapter, out));
        assertTrue(e.getMessage().contains("module 'model.layers.0.self_attn.v_proj'") && e.getMessage().contains("NaN"),
                e.getMessage());
        assertFalse(Files.exists(out));
        assertNoPartials();
    }

    private void assertNoPartials() throws IOException {
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(List.of(), files.filter(p -> p.getFileName().toString().endsWith(".partial")).toList());
        }
    }

    @Test
    void outputMayNotBeTheInput() throws IOException {
        TestData data = new TestData();
        TinyCheckpoint ckpt = new TinyCheckpoint(data, TensorDType.F32);
        Path base = ckpt.writeSingle(tmp.resolve("model.safetensors"));
        byte[] before = Files.readAllBytes(base);
        FourierFTAdapter adapter = TinyCheckpoint.adapter(data, 1, 1.0, IfftNorm.BACKWARD, tmp.resolve("adapter"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> merge(base, adapter, base));
        assertTrue(e.getMessage().contains("is the input file"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(base));
        Path weights = tmp.resolve("adapter").resolve(FourierFTAdapter.WEIGHTS_FILE);
        byte[] adapterBefore = Files.readAllBytes(weights);
        e = assertThrows(IllegalArgumentException.class, () -> merge(base, adapter, weights));
        assertTrue(e.getMessage().contains("is the input file " + weights), e.getMessage());
        assertArrayEquals(adapterBefore, Files.readAllBytes(weights));
    }

    /**
     * Golden fixtures made by PEFT itself ({@code src/test/python/make_peft_fixtures.py}, committed under
     * src/test/resources/peft-fixtures; {@code spectralpeft.peft.fixtures} points at a freshly made set): PEFT's
     * indices, its merged float32 and bfloat16 Linear weights, and the Conv1D merge its forward implies. Missing
     * fixtures fail the test rather than skip it, so a run that cannot find them is not mistaken for a pass.
     */
    @Test
    void reproducesPeftsOwnMerges() throws IOException {
        Path dir = Path.of(System.getProperty("spectralpeft.peft.fixtures",
                TestData.resources().resolve("peft-fixtures").toString()));
        assertTrue(Files.isRegularFile(dir.resolve("manifest.json")), "PEFT fixtures not found in " + dir.toAbsolutePath()
                + " (committed under src/test/resources/peft-fixtures; set spectralpeft.test.resources or "
                + "spectralpeft.peft.fixtures)");
        FourierFTAdapter linear = FourierFTAdapter.load(dir.resolve("linear/adapter"));
        try (SafetensorsModel base = SafetensorsModel.open(dir.resolve("linear/base/model.safetensors"));
             SafetensorsFile indices = SafetensorsFile.open(dir.resolve("linear/indices.safetensors"))) {
            assertEquals(3, indices.tensors().size());
            for (TensorInfo t : indices.tensors()) {
                TensorInfo w = base.tensor(t.name() + ".weight");
                FourierFTSpec spec = linear.spec(t.name(), (int) w.dim(0), (int) w.dim(1));
                ByteBuffer b = indices.map(t);
                int n = (int) t.dim(1);
                assertEquals(spec.n(), n, t.name());
                for (int l = 0; l < n; l++) {
                    assertEquals(b.getLong(8 * l), spec.row(l), t.name() + " row " + l);
                    assertEquals(b.getLong(8 * (n + l)), spec.col(l), t.name() + " col " + l);
                }
            }
        }
        compareWithPeft(dir.resolve("linear/base/model.safetensors"), linear, dir.resolve("linear/merged/model.safetensors"), 1e-5);
        compareWithPeft(dir.resolve("linear/base_bf16/model.safetensors"), linear,
                dir.resolve("linear/merged_bf16/model.safetensors"), 1e-2);
        FourierFTAdapter conv = FourierFTAdapter.load(dir.resolve("conv1d/adapter"));
        assertTrue(conv.config().fanInFanOut());
        compareWithPeft(dir.resolve("conv1d/base/model.safetensors"), conv, dir.resolve("conv1d/expected/model.safetensors"), 1e-5);
    }

    private void compareWithPeft(Path basePath, FourierFTAdapter adapter, Path peftMerged, double tolerance) throws IOException {
        Path out = tmp.resolve("merged-" + System.nanoTime() + ".safetensors");
        try (SafetensorsModel base = SafetensorsModel.open(basePath)) {
            MergePlan plan = MergePlan.build(base, adapter, null);
            assertEquals(adapter.modules().size(), plan.layers().size());
            ModelMerger.merge(base, plan, backend(), out, null);
            try (SafetensorsFile ours = SafetensorsFile.open(out); SafetensorsFile peft = SafetensorsFile.open(peftMerged)) {
                assertEquals(base.tensorNames().size(), ours.tensors().size());
                for (String name : base.tensorNames()) {
                    TensorInfo mine = ours.tensor(name);
                    TensorInfo theirs = peft.tensor(name);
                    assertEquals(theirs.dtype(), mine.dtype(), name);
                    if (plan.layerFor(name).isEmpty()) {
                        assertEquals(peft.map(theirs), ours.map(mine), name + " must be unchanged");
                        continue;
                    }
                    double[] w = base.fileOf(name).readDoubles(base.tensor(name));
                    double[] a = ours.readDoubles(mine);
                    double[] b = peft.readDoubles(theirs);
                    for (int i = 0; i < w.length; i++) {
                        a[i] -= w[i];
                        b[i] -= w[i];
                    }
                    double err = TestData.relativeError(a, b);
                    assertTrue(err < tolerance, name + " in " + peftMerged + ": ΔW differs from PEFT's by " + err);
                }
            }
        }
    }

    private ModelMerger.Summary merge(Path base, FourierFTAdapter adapter, Path out) throws IOException {
        try (SafetensorsModel model = SafetensorsModel.open(base)) {
            List<String> seen = new ArrayList<>();
            ModelMerger.Summary s = merge(model, adapter, out, backend(),
                    (done, total, tensor, merged) -> seen.add(done + "/" + total));
            assertEquals(model.tensorNames().size(), seen.size());
            return s;
        }
    }

    /** Merges with the Conv1D module stored in × out, on {@code backend}, telling {@code progress}. */
    private static ModelMerger.Summary merge(Path base, FourierFTAdapter adapter, Path out, FourierFTBackend backend,
                                             ModelMerger.Progress progress) throws IOException {
        try (SafetensorsModel model = SafetensorsModel.open(base)) {
            return merge(model, adapter, out, backend, progress);
        }
    }

    private static ModelMerger.Summary merge(SafetensorsModel model, FourierFTAdapter adapter, Path out,
                                             FourierFTBackend backend, ModelMerger.Progress progress) throws IOException {
        MergePlan plan = MergePlan.build(model, adapter, m -> CONV1D.matcher(m).matches());
        return ModelMerger.merge(model, plan, backend, out, progress);
    }

    /** The output against W + ΔW from the float64 reference, and byte equality for everything else. */
    public static void check(TinyCheckpoint ckpt, FourierFTAdapter adapter, Path out, TestData data) throws IOException {
        FourierFTAdapterConfig config = adapter.config();
        try (SafetensorsFile merged = SafetensorsFile.open(out)) {
            assertEquals(ckpt.bytes.keySet(), new java.util.HashSet<>(merged.tensors().stream().map(TensorInfo::name).toList()));
            assertEquals("pt", merged.metadata().get("format"));
            for (TensorInfo t : merged.tensors()) {
                assertEquals(0, t.begin() % t.dtype().bytes(), t.name() + " is not aligned");
                assertEquals(ckpt.dtypes.get(t.name()), t.dtype(), t.name());
                assertArrayEquals(ckpt.shapes.get(t.name()), t.shape(), t.name());
            }
            for (String name : ckpt.bytes.keySet()) {
                TinyCheckpoint.Weight w = TinyCheckpoint.ADAPTED.stream().filter(a -> a.tensor().equals(name)).findFirst().orElse(null);
                TensorInfo t = merged.tensor(name);
                if (w == null) {
                    ByteBuffer got = merged.map(t);
                    assertEquals(ByteBuffer.wrap(ckpt.bytes.get(name)), got, name + " must be copied byte for byte");
                    continue;
                }
                double[] base = baseValues(ckpt, w);
                double[] expected = expectedMerge(base, w, adapter, config);
                double[] got = merged.readDoubles(t);
                compare(name, t.dtype(), got, expected, base, data);
            }
        }
    }

    /** The stored weight's values, decoded straight from the fixture's bytes (not through the reader). */
    static double[] baseValues(TinyCheckpoint ckpt, TinyCheckpoint.Weight w) {
        TensorDType dtype = ckpt.dtypes.get(w.tensor());
        ByteBuffer b = ByteBuffer.wrap(ckpt.bytes.get(w.tensor())).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        double[] v = new double[w.rows() * w.cols()];
        for (int i = 0; i < v.length; i++) {
            v[i] = switch (dtype) {
                case F32 -> b.getFloat(4 * i);
                case F64 -> b.getDouble(8 * i);
                case F16 -> DType.FLOAT16.decode(b.getShort(2 * i));
                case BF16 -> DType.BFLOAT16.decode(b.getShort(2 * i));
                default -> throw new IllegalArgumentException(dtype.toString());
            };
        }
        return v;
    }

    /** W + ΔW in the weight's storage order, in float64, with PEFT's indices and norm. */
    private static double[] expectedMerge(double[] base, TinyCheckpoint.Weight w, FourierFTAdapter adapter,
                                          FourierFTAdapterConfig config) {
        int dOut = w.dOut();
        int dIn = w.dIn();
        float[] c = adapter.coefficients(w.module());
        int[] flat = PeftIndices.randpermPrefix((long) dOut * dIn, c.length, config.randomLocSeed());
        int[] rows = new int[flat.length];
        int[] cols = new int[flat.length];
        for (int l = 0; l < flat.length; l++) {
            rows[l] = flat[l] / dIn;
            cols[l] = flat[l] % dIn;
        }
        double size = (double) dOut * dIn;
        double scale = switch (config.ifftNorm()) {
            case BACKWARD -> config.scaling() / size;
            case ORTHO -> config.scaling() / Math.sqrt(size);
            case FORWARD -> config.scaling();
        };
        FourierFTReference ref = new FourierFTReference(dOut, dIn, rows, cols, scale * size);
        double[] cd = new double[c.length];
        for (int l = 0; l < c.length; l++) {
            cd[l] = c[l];
        }
        double[] delta = ref.deltaW(cd);
        double[] expected = new double[base.length];
        for (int p = 0; p < dOut; p++) {
            for (int q = 0; q < dIn; q++) {
                int stored = w.storedInOut() ? q * dOut + p : p * dIn + q;
                expected[stored] = base[stored] + delta[p * dIn + q];
            }
        }
        return expected;
    }

    private static void compare(String name, TensorDType dtype, double[] got, double[] expected, double[] base, TestData data) {
        double[] gotDelta = new double[got.length];
        double[] refDelta = new double[got.length];
        for (int i = 0; i < got.length; i++) {
            gotDelta[i] = got[i] - base[i];
            refDelta[i] = expected[i] - base[i];
        }
        double err = TestData.relativeError(gotDelta, refDelta);
        double tol = dtype == TensorDType.F16 || dtype == TensorDType.BF16 ? 1e-2 : 1e-5;
        assertTrue(err < tol, name + " (" + dtype + "): ΔW relative error " + err + data.tag());
        if (dtype == TensorDType.F16 || dtype == TensorDType.BF16) {
            // each merged value is W + ΔW rounded once to the dtype: within one unit in the last place, plus the
            // float32 error of ΔW itself (which matters where W + ΔW nearly cancels). Rounding ΔW to 16 bits
            // before adding it would be off by about ulp(ΔW), far beyond this.
            DType d = dtype == TensorDType.F16 ? DType.FLOAT16 : DType.BFLOAT16;
            double maxDelta = 0;
            for (double v : refDelta) {
                maxDelta = Math.max(maxDelta, Math.abs(v));
            }
            for (int i = 0; i < got.length; i++) {
                double allowed = ulp(d, expected[i]) + 4e-6 * maxDelta;
                assertTrue(Math.abs(got[i] - expected[i]) <= allowed, name + "[" + i + "] = " + got[i] + ", expected "
                        + expected[i] + " within " + allowed + data.tag());
            }
        }
    }

    private static double ulp(DType d, double v) {
        double a = Math.max(Math.abs(v), d == DType.FLOAT16 ? 6.1e-5 : 1.2e-38);
        int mantissa = d == DType.FLOAT16 ? 10 : 7;
        return Math.pow(2, Math.getExponent(a) - mantissa);
    }

    /**
     * Delegates to a real backend and watches the merges: how many ran, on which threads, how many at once,
     * how far ahead of {@code written} (counted by the caller's progress listener); with {@code failAt} > 0
     * that merge fails, as a device error would.
     */
    private static final class InstrumentedBackend implements FourierFTBackend {
        private final FourierFTBackend inner;
        private final int failAt;
        final AtomicInteger merges = new AtomicInteger();
        final AtomicInteger written = new AtomicInteger();
        final AtomicInteger active = new AtomicInteger();
        final AtomicInteger mostActive = new AtomicInteger();
        final AtomicInteger mostAhead = new AtomicInteger();
        final Set<String> threads = ConcurrentHashMap.newKeySet();
        /** When set, the second merge waits for it (at most a minute) before it runs. */
        volatile CountDownLatch holdSecondMerge;

        InstrumentedBackend(FourierFTBackend inner, int failAt) {
            this.inner = inner;
            this.failAt = failAt;
        }

        @Override
        public String description() {
            return "failing " + inner.description();
        }

        @Override
        public void materializeBatch(FourierFTSpec spec, float[] coeffs, int layers, HostArray out) {
            inner.materializeBatch(spec, coeffs, layers, out);
        }

        @Override
        public void merge(FourierFTSpec spec, float[] coeffs, HostArray weight) {
            int started = merges.incrementAndGet();
            mostAhead.accumulateAndGet(started - written.get(), Math::max);
            mostActive.accumulateAndGet(active.incrementAndGet(), Math::max);
            threads.add(Thread.currentThread().getName());
            try {
                if (started == failAt) {
                    throw new IllegalStateException("injected device failure");
                }
                if (started == 2 && holdSecondMerge != null) {
                    holdSecondMerge.await(1, TimeUnit.MINUTES);
                }
                inner.merge(spec, coeffs, weight);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while held", e);
            } finally {
                active.decrementAndGet();
            }
        }

        @Override
        public void unmerge(FourierFTSpec spec, float[] coeffs, HostArray weight) {
            inner.unmerge(spec, coeffs, weight);
        }

        @Override
        public void forward(FourierFTSpec spec, float[] coeffs, HostArray x, int tokens, HostArray y) {
            inner.forward(spec, coeffs, x, tokens, y);
        }

        @Override
        public void forward(org.spectralpeft.fourierft.FourierFTAdapterPool pool, int[] adapterIds, HostArray x,
                            int tokens, HostArray y) {
            inner.forward(pool, adapterIds, x, tokens, y);
        }

        @Override
        public java.util.Map<Integer, float[]> backward(org.spectralpeft.fourierft.FourierFTAdapterPool pool,
                                                        int[] adapterIds, HostArray x, HostArray gradY, int tokens,
                                                        HostArray gradX) {
            return inner.backward(pool, adapterIds, x, gradY, tokens, gradX);
        }

        @Override
        public void gradCoefficients(FourierFTSpec spec, HostArray gradDeltaW, float[] gradCoeffs) {
            inner.gradCoefficients(spec, gradDeltaW, gradCoeffs);
        }

        @Override
        public void backward(FourierFTSpec spec, float[] coeffs, HostArray x, HostArray gradY, int tokens,
                             float[] gradCoeffs, HostArray gradX) {
            inner.backward(spec, coeffs, x, gradY, tokens, gradCoeffs, gradX);
        }

        @Override
        public void close() {
        }
    }
}
