package org.spectralpeft.tlora.cuda;

import java.util.ArrayList;
import java.util.List;
import org.spectralpeft.core.Checks;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.tlora.RingProducts;
import org.spectralpeft.tlora.TLoRAParameters;
import org.spectralpeft.tlora.TLoRASpec;

/**
 * One TLoRA layer's parameters on the device, in the form the kernels read: the transform's ring (plan and
 * cores in one array), and the residual's arrays (LORA: A and B; TR: the ring products of both sides, straight
 * and transposed; TTM: its ring). Made by {@link CudaTLoRA#prepare}; {@link #update} copies new values in (once
 * per optimizer step), {@link #close()} frees the memory.
 *
 * <p>Calls that use the parameters may run from several threads at once; {@link #update} must not run while
 * another thread uses them, nor before the streams that used them have run their work. Used only by the
 * backend that made them.
 */
public final class TLoRADeviceParameters implements AutoCloseable {
    private final TLoRASpec spec;
    private final CudaTLoRA owner;
    private final CudaContext context;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private RingLayout transform;
    private RingLayout ttm;
    private TLoRAParameters host;
    private long[] addresses;
    private volatile boolean closed;

    TLoRADeviceParameters(TLoRASpec spec, CudaTLoRA owner, CudaContext context) {
        this.spec = spec;
        this.owner = owner;
        this.context = context;
    }

    /**
     * The layer.
     *
     * @return its spec
     */
    public TLoRASpec spec() {
        return spec;
    }

    /**
     * Copies new values in (the same layer).
     *
     * @param params the layer's parameters, checked against its spec
     * @throws IllegalArgumentException if the parameters do not fit the spec or are not finite
     * @throws IllegalStateException if these parameters are closed
     */
    public synchronized void update(TLoRAParameters params) {
        Checks.notNull(params, "params");
        ensureOpen();
        params.check(spec);
        load(params);
    }

    /** {@link #update} of parameters already checked against the spec. */
    synchronized void load(TLoRAParameters params) {
        float[][] arrays = arrays(params);
        if (buffers.isEmpty()) {
            for (float[] a : arrays) {
                buffers.add(context.allocate(DType.FLOAT32, Math.max(1, a.length)));
            }
        }
        addresses = new long[arrays.length];
        for (int k = 0; k < arrays.length; k++) {
            if (arrays[k].length > 0) {
                buffers.get(k).copyFrom(HostArray.float32(arrays[k]));
            }
            addresses[k] = buffers.get(k).array().address();
        }
        host = spec.residual() == TLoRASpec.Residual.TR ? snapshot(params) : null;
    }

    /** The device arrays, in the order {@link #address} names them. */
    private float[][] arrays(TLoRAParameters params) {
        int dIn = spec.dIn();
        int dOut = spec.dOut();
        int r = spec.rank();
        transform = new RingLayout(spec.inShape(), spec.inShape(), spec.transformRank(), params.transformCores());
        return switch (spec.residual()) {
            case LORA -> new float[][] {transform.packed(), params.residual(0), params.residual(1)};
            case TR -> {
                float[] in = RingProducts.input(spec, params);
                float[] out = RingProducts.output(spec, params);
                yield new float[][] {transform.packed(), in, out, RingProducts.transposeEach(in, dIn, r),
                    RingProducts.transposeEach(out, dOut, r)};
            }
            case TTM -> {
                ttm = new RingLayout(spec.outShape(), spec.inShape(), r, params.residualArrays());
                yield new float[][] {transform.packed(), ttm.packed()};
            }
        };
    }

    /**
     * A copy of the values, for the host's part of the TR gradients (the caller may change its arrays after an
     * update; the gradients must use the values on the device).
     */
    private TLoRAParameters snapshot(TLoRAParameters params) {
        float[][] cores = params.transformCores();
        float[][] residual = params.residualArrays();
        for (int d = 0; d < cores.length; d++) {
            cores[d] = cores[d].clone();
        }
        for (int k = 0; k < residual.length; k++) {
            residual[k] = residual[k].clone();
        }
        return TLoRAParameters.of(spec, cores, residual);
    }

    /** Index of the transform's packed ring; LORA: 1 = A, 2 = B; TR: 1 = H, 2 = G, 3 = Hᵀ, 4 = Gᵀ; TTM: 1 = ring. */
    long address(int k) {
        return addresses[k];
    }

    RingLayout transform() {
        return transform;
    }

    RingLayout ttm() {
        return ttm;
    }

    /** @return the values last loaded, for a TR residual; null for the other kinds */
    TLoRAParameters host() {
        return host;
    }

    /**
     * Throws unless these parameters are open and were made by {@code backend}.
     *
     * @param backend the backend about to use them
     * @param name the argument's name, for the message
     */
    void checkUsableBy(CudaTLoRA backend, String name) {
        ensureOpen();
        Checks.require(owner == backend, name + " were prepared by another backend");
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("the TLoRA device parameters are closed");
        }
    }

    /**
     * Whether {@link #close()} was called.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return closed;
    }

    /** Frees the device memory; idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (DeviceBuffer b : buffers) {
            b.close();
        }
        buffers.clear();
    }
}
