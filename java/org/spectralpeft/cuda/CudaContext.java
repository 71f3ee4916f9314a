package org.spectralpeft.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;

import java.nio.charset.StandardCharsets;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;
import org.bytedeco.cuda.cudart.CUmemPoolHandle_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.cufft;
import org.bytedeco.javacpp.LongPointer;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.internal.CommonKernels;
import org.spectralpeft.cuda.internal.Blas;
import org.spectralpeft.cuda.internal.FftPlans;

/**
 * One device's primary context, shared with cuFFT (the runtime API binds to the primary context), made
 * current on every thread that calls in. Opening also proves that the driver, JCuda's natives and the
 * CUDA 13 libraries (cuFFT through the JavaCPP presets) all load. The shared runtime of every adapter
 * family's CUDA backend: streams ({@link #createStream()}), buffers ({@link #allocate}) and the device's
 * memory pool, from which every call's scratch is drawn. Safe to use from several threads.
 */
public final class CudaContext implements AutoCloseable {
    private final int ordinal;
    private final CUdevice device;
    private final CUcontext context;
    private final String name;
    private final int computeMajor;
    private final int computeMinor;
    private final long totalMemory;
    private final int sharedPerBlockOptin;
    private final int driverVersion;
    private volatile boolean closed;
    /** Shared by every backend on this context, made at first use: the common kernels, the cuFFT plans and the cuBLAS handles. */
    private CommonKernels commonKernels;
    private FftPlans fftPlans;
    private Blas blas;

    private CudaContext(int ordinal) {
        JCudaDriver.setExceptionsEnabled(true);
        cuInit(0);
        int[] count = new int[1];
        cuDeviceGetCount(count);
        if (ordinal < 0 || ordinal >= count[0]) {
            throw new IllegalArgumentException("CUDA device " + ordinal + " does not exist (" + count[0] + " devices)");
        }
        this.ordinal = ordinal;
        this.device = new CUdevice();
        cuDeviceGet(device, ordinal);
        byte[] raw = new byte[256];
        cuDeviceGetName(raw, raw.length, device);
        int len = 0;
        while (len < raw.length && raw[len] != 0) {
            len++;
        }
        this.name = new String(raw, 0, len, StandardCharsets.US_ASCII);
        int[] v = new int[1];
        cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        this.computeMajor = v[0];
        cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
        this.computeMinor = v[0];
        cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, device);
        this.sharedPerBlockOptin = v[0];
        long[] mem = new long[1];
        cuDeviceTotalMem(mem, device);
        this.totalMemory = mem[0];
        cuDriverGetVersion(v);
        this.driverVersion = v[0];
        this.context = new CUcontext();
        cuDevicePrimaryCtxRetain(context, device);
        try {
            makeCurrent();
            checkCufftLoads();
            keepPoolMemory();
        } catch (RuntimeException | Error e) {
            cuDevicePrimaryCtxRelease(device);
            throw e;
        }
    }

    /**
     * Retains the device's primary context.
     *
     * @param ordinal the CUDA device ordinal
     * @return the context; close it to release the primary context
     * @throws IllegalArgumentException if there is no such device
     * @throws IllegalStateException if a CUDA call fails; a missing native library surfaces as a
     *         {@link LinkageError} instead
     */
    public static CudaContext open(int ordinal) {
        return new CudaContext(ordinal);
    }

    /**
     * A new non-blocking stream in this context, destroyed by its {@code close()}.
     *
     * @return the stream
     * @throws IllegalStateException if this context is closed
     */
    public CudaStream createStream() {
        return CudaStream.createOwned(this);
    }

    /**
     * Library-owned device memory of {@code length} elements (contents undefined), freed by its {@code close()}.
     *
     * @param dtype the element type
     * @param length number of elements, at least 1
     * @return the buffer
     * @throws IllegalStateException if this context is closed
     */
    public DeviceBuffer allocate(DType dtype, long length) {
        return new DeviceBuffer(this, dtype, length);
    }

    /**
     * Stream-ordered device memory of {@code length} elements (contents undefined), from the device's memory pool
     * ({@code cuMemAllocAsync}): usable by work queued on {@code stream} from now on (other streams must wait for
     * it), and freed by its {@code close()} in that stream's order. The pool keeps what was freed, so a call that
     * returns a buffer like this every time costs a few microseconds of host time, where {@link #allocate(DType,
     * long)} maps new memory each time (hundreds of microseconds for megabytes).
     *
     * @param dtype the element type
     * @param length number of elements, at least 1
     * @param stream the stream it is allocated and freed on
     * @return the buffer
     * @throws IllegalArgumentException if {@code stream} is null
     * @throws IllegalStateException if this context or the stream is closed
     */
    public DeviceBuffer allocate(DType dtype, long length, CudaStream stream) {
        Checks.notNull(stream, "stream");
        return new DeviceBuffer(this, dtype, length, stream);
    }

    /**
     * A new buffer holding a copy of {@code host} (its dtype and length): {@link #allocate} then
     * {@link DeviceBuffer#copyFrom}, the buffer freed again if the copy fails. Returns once the data is on the
     * device.
     *
     * @param host the values to copy, at least one element
     * @return the buffer, closed by the caller
     * @throws IllegalArgumentException if {@code host} is null
     * @throws IllegalStateException if this context is closed
     */
    public DeviceBuffer upload(HostArray host) {
        Checks.notNull(host, "host");
        DeviceBuffer b = allocate(host.dtype(), host.length());
        try {
            b.copyFrom(host);
            return b;
        } catch (RuntimeException | Error e) {
            b.close();
            throw e;
        }
    }

    // Loads libcufft.so.12 (and libcudart.so.13) through the presets now, so a missing library is
    // reported when the backend opens rather than at the first transform.
    private static void checkCufftLoads() {
        int[] version = new int[1];
        int status = cufft.cufftGetVersion(version);
        if (status != cufft.CUFFT_SUCCESS) {
            throw new IllegalStateException("cufftGetVersion failed with status " + status);
        }
    }

    // Scratch space comes from the stream-ordered allocator; by default its pool returns memory to the
    // driver at every synchronization, which turns each call's scratch into a fresh mapping. Keeping it
    // cached is an optimization only, so a failure here is ignored.
    private void keepPoolMemory() {
        try {
            CUmemPoolHandle_st pool = new CUmemPoolHandle_st();
            if (cudart.cudaDeviceGetDefaultMemPool(pool, ordinal) == cudart.cudaSuccess) {
                try (LongPointer threshold = new LongPointer(1).put(Long.MAX_VALUE)) {
                    cudart.cudaMemPoolSetAttribute(pool, cudart.cudaMemPoolAttrReleaseThreshold, threshold);
                }
            }
        } catch (RuntimeException | UnsatisfiedLinkError ignored) {
            // pool stays at its default release threshold
        }
    }

    /**
     * The high-water mark of bytes in use (cudaMemPoolAttrUsedMemHigh) of the device's current memory pool,
     * the one cuMemAllocAsync, and so every call's scratch, draws from.
     *
     * @return the high-water mark in bytes
     */
    public long poolUsedHighBytes() {
        try (LongPointer value = new LongPointer(1)) {
            checkRuntime(cudart.cudaMemPoolGetAttribute(currentPool(), cudart.cudaMemPoolAttrUsedMemHigh, value),
                    "cudaMemPoolGetAttribute");
            return value.get();
        }
    }

    /**
     * Resets that high-water mark. The runtime only accepts zero here; with nothing allocated from the pool
     * at that moment (synchronize first), the mark then follows the next allocations.
     */
    public void resetPoolUsedHigh() {
        try (LongPointer zero = new LongPointer(1).put(0L)) {
            checkRuntime(cudart.cudaMemPoolSetAttribute(currentPool(), cudart.cudaMemPoolAttrUsedMemHigh, zero),
                    "cudaMemPoolSetAttribute");
        }
    }

    private CUmemPoolHandle_st currentPool() {
        CUmemPoolHandle_st pool = new CUmemPoolHandle_st();
        checkRuntime(cudart.cudaDeviceGetMemPool(pool, ordinal), "cudaDeviceGetMemPool");
        return pool;
    }

    private static void checkRuntime(int status, String call) {
        if (status != cudart.cudaSuccess) {
            throw new IllegalStateException(call + " failed with CUDA runtime status " + status);
        }
    }

    /**
     * Makes this device's primary context current on the calling thread.
     *
     * @throws IllegalStateException if this context is closed
     */
    public void makeCurrent() {
        if (closed) {
            throw new IllegalStateException("CUDA context is closed");
        }
        cuCtxSetCurrent(context);
    }

    /**
     * The CUDA device ordinal.
     *
     * @return the ordinal this context was opened on
     */
    public int ordinal() {
        return ordinal;
    }

    /**
     * The compute capability as one number: 90 for sm_90.
     *
     * @return major × 10 + minor
     */
    public int computeCapability() {
        return computeMajor * 10 + computeMinor;
    }

    /**
     * The device's memory.
     *
     * @return total device memory in bytes
     */
    public long totalMemory() {
        return totalMemory;
    }

    /**
     * The most shared memory one block may have once a kernel opts in (227 KiB on sm_90).
     *
     * @return bytes
     */
    public int sharedMemoryPerBlockOptin() {
        return sharedPerBlockOptin;
    }

    /**
     * Device name, ordinal, architecture, memory and driver version, for logs.
     *
     * @return the description
     */
    public String describe() {
        return String.format("%s (device %d, sm_%d%d, %.1f GiB, driver %d.%d)", name, ordinal, computeMajor,
                computeMinor, totalMemory / (double) (1L << 30), driverVersion / 1000, (driverVersion % 1000) / 10);
    }

    /**
     * The kernels every adapter family uses ({@code kernels/common.cu}), loaded once per context. Internal:
     * for the families' CUDA backends.
     *
     * @return the shared launchers
     * @throws IllegalStateException if this context is closed
     */
    public synchronized CommonKernels commonKernels() {
        makeCurrent();
        if (commonKernels == null) {
            commonKernels = new CommonKernels(computeCapability(), Boolean.getBoolean("spectralpeft.cuda.debug"));
        }
        return commonKernels;
    }

    /**
     * The cuFFT plan cache every backend on this context shares (plans by transform shape and batch). Internal:
     * for the families' CUDA backends.
     *
     * @return the shared plan cache
     * @throws IllegalStateException if this context is closed
     */
    public synchronized FftPlans fftPlans() {
        if (fftPlans == null) {
            CommonKernels k = commonKernels();
            fftPlans = new FftPlans(k::lengthOneTransform);
        }
        return fftPlans;
    }

    /**
     * The cuBLAS handles every backend on this context shares. Internal: for the families' CUDA backends.
     *
     * @return the shared GEMMs
     * @throws IllegalStateException if this context is closed
     */
    public synchronized Blas blas() {
        makeCurrent();
        if (blas == null) {
            blas = new Blas();
        }
        return blas;
    }

    /**
     * Whether {@link #close()} was called.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return closed;
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            try {
                if (fftPlans != null || commonKernels != null || blas != null) {
                    cuCtxSetCurrent(context);
                }
                if (blas != null) {
                    blas.close();
                }
                if (fftPlans != null) {
                    fftPlans.close();
                }
                if (commonKernels != null) {
                    commonKernels.close();
                }
            } finally {
                closed = true;
                cuDevicePrimaryCtxRelease(device);
            }
        }
    }
}
