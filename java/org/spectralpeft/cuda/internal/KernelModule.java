package org.spectralpeft.cuda.internal;

import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import org.spectralpeft.cuda.CudaStream;

/**
 * The module built from one {@code kernels/<name>.cu}, loaded from the jar, and launches of its kernels with
 * boxed arguments ({@code Long}, {@code Integer}, {@code Float}). On compute capability 9.0 (H100, H200) the
 * sm_90 machine code is loaded (no JIT; it loads on any CUDA 13 driver, while PTX needs a driver at least as
 * new as the compiler that wrote it); elsewhere, or if that fails, the PTX built for compute_90 (Hopper and
 * newer) or the portable compute_75 PTX, which the driver JIT-compiles. Load it with its context current.
 */
public final class KernelModule implements AutoCloseable {
    private static final String KERNEL_DIR = "/org/spectralpeft/kernels/";

    private final CUmodule module = new CUmodule();
    private final String image;
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final boolean debug;
    /** Dynamic shared memory each kernel has been allowed beyond the default. */
    private final Map<String, Integer> sharedAllowed = new HashMap<>();
    /** Dynamic shared memory a block may have without opting in. */
    private static final int DEFAULT_SHARED = 48 * 1024;

    /**
     * Loads the module and looks up its kernels.
     *
     * @param name the kernel source's name without {@code .cu}: {@code kernels/<name>.cu}
     * @param computeCapability the device's, as major × 10 + minor
     * @param kernels the entry points to look up
     * @param debug synchronize the stream after every launch, so a faulting kernel is named at its launch
     * @throws IllegalStateException if the module is not in the jar or a kernel is missing from it
     */
    public KernelModule(String name, int computeCapability, String[] kernels, boolean debug) {
        this.debug = debug;
        this.image = load(name, computeCapability);
        for (String k : kernels) {
            CUfunction f = new CUfunction();
            cuModuleGetFunction(f, module, k);
            functions.put(k, f);
        }
    }

    /**
     * Throws when the jar holds no kernels (it was built without nvcc), before the driver is touched, so that
     * this is the reason given whether or not a driver is present.
     *
     * @param name the kernel source's name without {@code .cu}
     * @throws IllegalStateException if the module was not built
     */
    public static void requireBuilt(String name) {
        if (KernelModule.class.getResource(KERNEL_DIR + name + ".compute_75.ptx") == null) {
            throw new IllegalStateException("the CUDA kernels were not built (the library was built without nvcc)");
        }
    }

    /**
     * The image in use: {@code <name>.sm_90.cubin}, {@code <name>.compute_90.ptx} or {@code <name>.compute_75.ptx}.
     *
     * @return the resource name, with the reason the cubin did not load where it did not
     */
    public String image() {
        return image;
    }

    private String load(String name, int computeCapability) {
        String cubin = name + ".sm_90.cubin";
        String cubinFailure = "";
        if (computeCapability == 90) {
            try {
                cuModuleLoadData(module, readResource(cubin));
                return cubin;
            } catch (RuntimeException e) {
                cubinFailure = " (" + cubin + " did not load: " + e.getMessage() + ")";
            }
        }
        String ptx = name + "." + (computeCapability >= 90 ? "compute_90" : "compute_75") + ".ptx";
        cuModuleLoadData(module, new String(readResource(ptx), StandardCharsets.US_ASCII));
        return ptx + cubinFailure;
    }

    private static byte[] readResource(String name) {
        String path = KERNEL_DIR + name;
        try (InputStream in = KernelModule.class.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalStateException("kernel resource " + path + " is missing from the jar (was nvcc run?)");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + path, e);
        }
    }

    /**
     * Queues a launch of one-dimensional blocks without dynamic shared memory.
     *
     * @param kernel an entry point given to the constructor
     * @param gridX blocks in x
     * @param gridY blocks in y
     * @param block threads per block
     * @param stream the stream
     * @param args the kernel's arguments, in order, as Long, Integer or Float
     * @throws IllegalArgumentException for another argument type or an unknown kernel
     */
    public void launch(String kernel, int gridX, int gridY, int block, CudaStream stream, Object[] args) {
        launch(kernel, gridX, gridY, block, 0, stream, args);
    }

    /**
     * Queues a launch of one-dimensional blocks with {@code sharedBytes} of dynamic shared memory; above the
     * default 48 KiB the kernel is first allowed that much (once per size it grows to).
     *
     * @param kernel an entry point given to the constructor
     * @param gridX blocks in x
     * @param gridY blocks in y
     * @param block threads per block
     * @param sharedBytes dynamic shared memory per block
     * @param stream the stream
     * @param args the kernel's arguments, in order, as Long, Integer or Float
     * @throws IllegalArgumentException for another argument type or an unknown kernel
     */
    public void launch(String kernel, int gridX, int gridY, int block, int sharedBytes, CudaStream stream,
                       Object[] args) {
        CUfunction f = functions.get(kernel);
        if (f == null) {
            throw new IllegalArgumentException("no kernel " + kernel + " in " + image);
        }
        Pointer params = LaunchArguments.of(args);
        if (sharedBytes > DEFAULT_SHARED) {
            allowShared(kernel, f, sharedBytes);
        }
        cuLaunchKernel(f, gridX, gridY, 1, block, 1, 1, sharedBytes, stream.jcuda(), params, null);
        if (debug) {
            cuStreamSynchronize(stream.jcuda());
        }
    }

    private void allowShared(String kernel, CUfunction f, int bytes) {
        synchronized (sharedAllowed) {
            if (sharedAllowed.getOrDefault(kernel, DEFAULT_SHARED) < bytes) {
                cuFuncSetAttribute(f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
                sharedAllowed.put(kernel, bytes);
            }
        }
    }

    @Override
    public void close() {
        cuModuleUnload(module);
    }
}
