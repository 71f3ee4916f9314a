package org.spectralpeft.bench;

import java.util.Random;
import org.spectralpeft.Backends;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.cuda.CudaFourierFT;

/**
 * What the benchmarks share: opening the backend (a CUDA benchmark fails its setup, and JMH moves on, when
 * no device is present), fresh inputs, and rotating output buffers. GPU benchmarks queue device-resident
 * work and synchronize the stream before JMH reads its clock; outputs rotate over buffers that together
 * exceed {@link #ROTATION_BYTES}, several times the L2 cache of an H100 (50 MB) or H200 (60 MB), so no
 * measured call finds its output in L2.
 */
public final class Bench {
    public static final long ROTATION_BYTES = 256L << 20;

    private Bench() {
    }

    public static FourierFTBackend open(String backend) {
        switch (backend) {
            case "cpu":
                return Backends.fourierFTCpu();
            case "cuda":
                var reason = Backends.cudaUnavailableReason();
                if (reason.isPresent()) {
                    throw new IllegalStateException("skipping the cuda benchmark: " + reason.get());
                }
                return Backends.fourierFTCuda();
            default:
                throw new IllegalArgumentException("backend must be cpu or cuda, got " + backend);
        }
    }

    public static DType dtype(String name) {
        return switch (name) {
            case "float32" -> DType.FLOAT32;
            case "float16" -> DType.FLOAT16;
            case "bfloat16" -> DType.BFLOAT16;
            default -> throw new IllegalArgumentException("dtype must be float32, float16 or bfloat16, got " + name);
        };
    }

    /** "4096x11008" → {4096, 11008} (d_out, d_in). */
    public static int[] shape(String s) {
        String[] parts = s.split("x");
        return new int[] {Integer.parseInt(parts[0]), Integer.parseInt(parts[1])};
    }

    public static float[] gaussian(int n, long seed) {
        Random r = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    public static HostArray gaussian(DType dtype, int n, long seed) {
        return HostArray.of(dtype, gaussian(n, seed));
    }

    /** How many buffers of {@code bytes} each to rotate over (at least 2, at most 64). */
    public static int rotation(long bytes) {
        return (int) Math.max(2, Math.min(64, (ROTATION_BYTES + bytes - 1) / bytes));
    }

    /** Device buffers for rotation, each filled from {@code fill} (or left as allocated when null). */
    public static DeviceBuffer[] deviceBuffers(CudaFourierFT cuda, DType dtype, long length, HostArray fill) {
        return deviceBuffers(cuda.context(), dtype, length, fill);
    }

    /** Device buffers for rotation on {@code context}, each filled from {@code fill} (or left as allocated when null). */
    public static DeviceBuffer[] deviceBuffers(CudaContext context, DType dtype, long length, HostArray fill) {
        int count = rotation(length * dtype.bytes());
        DeviceBuffer[] buffers = new DeviceBuffer[count];
        for (int i = 0; i < count; i++) {
            buffers[i] = context.allocate(dtype, length);
            if (fill != null) {
                buffers[i].copyFrom(fill);
            }
        }
        return buffers;
    }

    /** A device copy of {@code host} on {@code context}, in its dtype. */
    public static void close(DeviceBuffer[] buffers) {
        if (buffers != null) {
            for (DeviceBuffer b : buffers) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    /** Closes each non-null resource, in order. */
    public static void closeAll(AutoCloseable... resources) {
        for (AutoCloseable c : resources) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }
}
