package org.spectralpeft.peft;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.core.WriteMode;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.foura.FouRASpec;
import org.spectralpeft.foura.FouRAFactors;
import org.spectralpeft.foura.cpu.CpuFouRA;
import org.spectralpeft.foura.cpu.FoldedFactors;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;
import org.spectralpeft.tlora.cpu.CpuTLoRA;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.cpu.CpuFourierFT;
import org.spectralpeft.io.SafetensorsFile;
import org.spectralpeft.io.SafetensorsModel;
import org.spectralpeft.io.SafetensorsWriter;
import org.spectralpeft.io.TensorBytes;
import org.spectralpeft.io.TensorDType;
import org.spectralpeft.io.TensorInfo;

/**
 * Null for any object parameter of the public API throws the documented IllegalArgumentException naming
 * the argument, never a NullPointerException. Every public method with an object parameter is called by
 * reflection with that parameter null and the others valid, so a method added later is covered too.
 */
class NullArgumentsTest {
    @TempDir
    Path tmp;

    /**
     * Parameters where null is documented to mean something: "Class#method#index", or "Class#method#index/count"
     * for the overload with count parameters only.
     */
    private static final Set<String> NULLABLE = Set.of(
            "MergePlan#build#2",            // the config's fan_in_fan_out
            "ModelMerger#merge#4",          // no progress reports
            "FourierFTBackend#backward#6",  // no ∂L/∂x
            "CpuFourierFT#backward#6",
            "CpuFouRA#prepare#3",           // the NONE gate has no parameters
            "CpuFouRA#backward#6",          // no gate gradient
            "CpuFouRA#backward#7",          // no ∂L/∂x
            "CpuTLoRA#backward#6",          // no ∂L/∂x
            "FouRAFactors#update#2",
            "FouRAFactors#checkParameters#3",
            "FouRAFactors#checkGate#1",
            "Builder#layer#5",              // FouRAAdapter.Builder: the NONE gate has no parameters
            "Builder#baseModel#0",          // no base model recorded
            "TLoRAAdapter#of#1",            // no base model recorded
            "CpuFourierFT#backward#5/6");   // the mixed batch's backward (6 parameters): no ∂L/∂x

    private final Map<Class<?>, Callable<Object>> samples = new java.util.HashMap<>();

    private void sample(Class<?> type, Callable<Object> value) {
        samples.put(type, value);
    }

    private Path base;
    private FourierFTAdapter adapter;

    private void setUp() throws Exception {
        base = tmp.resolve("base.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(base,
                List.of(new SafetensorsWriter.Entry("m.q.weight", TensorDType.F32, new long[] {4, 4})), Map.of())) {
            w.write("m.q.weight", TensorBytes.of(new float[16]));
            w.commit();
        }
        adapter = FourierFTAdapter.builder().layer("m.q", new float[] {1, 2}).build();
        FourierFTSpec spec = FourierFTSpec.fromSeed(4, 4, 2);
        sample(FourierFTSpec.class, () -> spec);
        sample(float[].class, () -> new float[2]);
        sample(short[].class, () -> new short[16]);
        sample(int[].class, () -> new int[] {1, 2});
        sample(double[].class, () -> new double[16]);
        sample(HostArray.class, () -> HostArray.float32(new float[16]));
        sample(DType.class, () -> DType.FLOAT32);
        sample(WriteMode.class, () -> WriteMode.values()[0]);
        sample(String.class, () -> "m.q");
        sample(Path.class, () -> tmp.resolve("out-" + System.nanoTime()));
        sample(List.class, () -> List.of());
        sample(Map.class, () -> Map.of());
        sample(Predicate.class, () -> (Predicate<String>) m -> false);
        sample(TensorInfo.class, () -> new TensorInfo("m.q.weight", TensorDType.F32, new long[] {4, 4}, 0, 64));
        sample(SafetensorsFile.class, () -> SafetensorsFile.open(base));
        sample(SafetensorsModel.class, () -> SafetensorsModel.open(base));
        sample(FourierFTAdapter.class, () -> adapter);
        sample(MergePlan.class, () -> {
            try (SafetensorsModel m = SafetensorsModel.open(base)) {
                return MergePlan.build(m, adapter, null);
            }
        });
        sample(FourierFTBackend.class, CpuFourierFT::new);
        sample(ModelMerger.Progress.class, () -> (ModelMerger.Progress) (d, t, n, m) -> { });
        sample(IfftNorm.class, () -> IfftNorm.BACKWARD);
        sample(WritableByteChannel.class, () -> Channels.newChannel(new java.io.ByteArrayOutputStream()));
        sample(java.nio.ByteBuffer.class, () -> java.nio.ByteBuffer.allocate(64));
        sample(java.nio.FloatBuffer.class, () -> java.nio.FloatBuffer.allocate(16));
        sample(java.nio.ShortBuffer.class, () -> java.nio.ShortBuffer.allocate(16));
        FouRASpec foura = FouRASpec.of(4, 4, 2, FouRASpec.Transform.DFT, FouRASpec.Gate.NONE, 1f);
        sample(FouRASpec.class, () -> foura);
        sample(FouRASpec.Transform.class, () -> FouRASpec.Transform.DCT);
        sample(FouRASpec.Gate.class, () -> FouRASpec.Gate.FIXED);
        sample(FouRAFactors.class, () -> new CpuFouRA().prepare(foura, new float[8], new float[8], null));
        sample(FouRAFactors[].class, () -> new FouRAFactors[] {(FouRAFactors) samples.get(FouRAFactors.class).call()});
        sample(Object.class, CpuFouRA::new);
        sample(org.spectralpeft.foura.FouRABackend.class, CpuFouRA::new);
        TLoRASpec tlora = TLoRASpec.of(new int[] {2, 2}, new int[] {2, 2}, 1, TLoRASpec.Residual.LORA, 1, 1f);
        sample(TLoRASpec.class, () -> tlora);
        sample(TLoRASpec.Residual.class, () -> TLoRASpec.Residual.TR);
        sample(TLoRAParameters.class, () -> TLoRAParameters.initial(tlora, new java.util.Random(1)));
        sample(float[][].class, () -> new float[][] {new float[4], new float[4]});
        sample(java.util.Random.class, () -> new java.util.Random(1));
        sample(FouRAAdapter.class, () -> FouRAAdapter.builder(2, FouRASpec.Transform.DFT, FouRASpec.Gate.NONE, 1f)
                .layer("m.q", 4, 4, new float[8], new float[8], null).build());
        sample(TLoRAAdapter.class, () -> TLoRAAdapter.of(Map.of("m.q", new TLoRAAdapter.Layer(tlora,
                TLoRAParameters.initial(tlora, new java.util.Random(1)))), null));
        sample(org.spectralpeft.tlora.TLoRABackend.class, CpuTLoRA::new);
        sample(org.spectralpeft.foura.FouRAAdapterPool.class, () -> {
            org.spectralpeft.foura.FouRAAdapterPool pool = new org.spectralpeft.foura.FouRAAdapterPool(foura.dOut(), foura.dIn());
            pool.add(0, (FouRAFactors) samples.get(FouRAFactors.class).call());
            return pool;
        });
        sample(org.spectralpeft.fourierft.FourierFTAdapterPool.class, () -> {
            org.spectralpeft.fourierft.FourierFTAdapterPool pool = new org.spectralpeft.fourierft.FourierFTAdapterPool(4, 4);
            pool.add(0, spec, new float[spec.n()]);
            return pool;
        });
    }

    private Object instanceOf(Class<?> type) throws Exception {
        if (type == SafetensorsWriter.class) {
            return SafetensorsWriter.create(tmp.resolve("w-" + System.nanoTime()),
                    List.of(new SafetensorsWriter.Entry("m.q.weight", TensorDType.F32, new long[] {4, 4})), Map.of());
        }
        if (type == FourierFTAdapter.Builder.class) {
            return FourierFTAdapter.builder();
        }
        if (type == FouRAAdapter.Builder.class) {
            return FouRAAdapter.builder(2, FouRASpec.Transform.DFT, FouRASpec.Gate.NONE, 1f);
        }
        if (type == CpuFourierFT.class) {
            return new CpuFourierFT();
        }
        if (type == CpuFouRA.class) {
            return new CpuFouRA();
        }
        if (type == CpuTLoRA.class) {
            return new CpuTLoRA();
        }
        return samples.get(type).call();
    }

    @Test
    void nullObjectArgumentsThrowIllegalArgumentException() throws Exception {
        setUp();
        List<String> failures = new ArrayList<>();
        int calls = 0;
        for (Class<?> type : List.of(FourierFTSpec.class, HostArray.class, CpuFourierFT.class, SafetensorsFile.class,
                SafetensorsModel.class, SafetensorsWriter.class, FourierFTAdapter.class, FourierFTAdapter.Builder.class,
                MergePlan.class, ModelMerger.class, FouRASpec.class, FoldedFactors.class, DeviceArray.class, CpuFouRA.class,
                FouRAFactors.class, FouRAAdapter.class, FouRAAdapter.Builder.class, TLoRASpec.class, TLoRAParameters.class,
                CpuTLoRA.class, TLoRAAdapter.class, org.spectralpeft.fourierft.FourierFTAdapterPool.class,
                org.spectralpeft.foura.FouRAAdapterPool.class)) {
            for (Method m : type.getMethods()) {
                if (m.getDeclaringClass() == Object.class || m.getName().equals("equals")) {
                    continue;
                }
                Class<?>[] params = m.getParameterTypes();
                for (int i = 0; i < params.length; i++) {
                    String key = type.getSimpleName() + "#" + m.getName() + "#" + i;
                    if (params[i].isPrimitive() || NULLABLE.contains(key) || NULLABLE.contains(key + "/" + params.length)) {
                        continue;
                    }
                    Object[] args = new Object[params.length];
                    for (int k = 0; k < params.length; k++) {
                        args[k] = k == i ? null : valueOf(params[k]);
                    }
                    Object target = Modifier.isStatic(m.getModifiers()) ? null : instanceOf(type);
                    calls++;
                    try {
                        m.invoke(target, args);
                        failures.add(key + " " + m + ": accepted null");
                    } catch (InvocationTargetException e) {
                        Throwable c = e.getCause();
                        if (!(c instanceof IllegalArgumentException) || c.getMessage() == null || !c.getMessage().contains("null")) {
                            failures.add(key + " " + m + ": " + c);
                        }
                    } finally {
                        if (target instanceof AutoCloseable a) {
                            a.close();
                        }
                    }
                }
            }
        }
        assertTrue(calls > 50, calls + " calls");
        if (!failures.isEmpty()) {
            fail(failures.size() + " of " + calls + " calls:\n" + String.join("\n", failures));
        }
    }

    private Object valueOf(Class<?> type) throws Exception {
        if (type == int.class) {
            return 1;
        }
        if (type == long.class) {
            return 1L;
        }
        if (type == float.class) {
            return 1f;
        }
        if (type == double.class) {
            return 1.0;
        }
        if (type == boolean.class) {
            return false;
        }
        Callable<Object> s = samples.get(type);
        if (s == null) {
            throw new AssertionError("no sample value of " + type);
        }
        return s.call();
    }
}
