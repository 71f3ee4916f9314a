package org.spectralpeft.cuda.internal;

import java.util.ArrayList;
import java.util.List;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceArray;
import org.spectralpeft.cuda.DeviceBuffer;

/**
 * One host-array call of a CUDA backend: device copies of the arguments on a private stream (so that calls
 * from several threads run side by side), the results copied back by {@link #finish()}, everything freed by
 * {@link #close()}. Internal: for the families' CUDA backends.
 */
public final class HostCall implements AutoCloseable {
    private final CudaContext context;
    private final CudaStream stream;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private final List<HostArray> outputs = new ArrayList<>();
    private final List<DeviceBuffer> outputBuffers = new ArrayList<>();

    /**
     * A call on {@code context}, with a stream of its own.
     *
     * @param context the backend's context
     */
    public HostCall(CudaContext context) {
        this.context = context;
        context.makeCurrent();
        this.stream = context.createStream();
    }

    /**
     * The call's stream.
     *
     * @return the stream the call's work is queued on
     */
    public CudaStream stream() {
        return stream;
    }

    /**
     * A device copy of an input.
     *
     * @param host the input
     * @return its copy on the device, freed with the call
     */
    public DeviceArray in(HostArray host) {
        DeviceBuffer b = context.allocate(host.dtype(), host.length());
        buffers.add(b);
        b.copyFrom(host);
        return b.array();
    }

    /**
     * A device copy of an output, copied back by {@link #finish()}. Outputs are copied in as well: a poisoned
     * host array stays poisoned wherever the device misses it.
     *
     * @param host the output
     * @return its copy on the device
     */
    public DeviceArray out(HostArray host) {
        return inOut(host);
    }

    /**
     * A device copy of an array that is read and written (accumulated into), copied back by {@link #finish()}.
     *
     * @param host the array
     * @return its copy on the device
     */
    public DeviceArray inOut(HostArray host) {
        DeviceArray a = in(host);
        outputs.add(host);
        outputBuffers.add(buffers.get(buffers.size() - 1));
        return a;
    }

    /** Waits for the call's work and copies the outputs back into their host arrays. */
    public void finish() {
        context.makeCurrent();
        stream.synchronize();
        for (int i = 0; i < outputs.size(); i++) {
            outputBuffers.get(i).copyTo(outputs.get(i));
        }
    }

    @Override
    public void close() {
        try {
            context.makeCurrent();
            stream.synchronize();
        } finally {
            for (DeviceBuffer b : buffers) {
                b.close();
            }
            stream.close();
        }
    }
}
