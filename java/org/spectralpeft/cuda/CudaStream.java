package org.spectralpeft.cuda;

import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import org.spectralpeft.cuda.internal.NativeHandles;

/**
 * The stream a call's work is queued on. {@link #foreign(long)} wraps a framework's stream (its raw
 * {@code cudaStream_t}/{@code CUstream} handle), which the library never destroys; streams made by
 * {@link CudaContext#createStream()} (and the backends' {@code createStream()}) are owned and destroyed on {@link #close()}.
 */
public final class CudaStream implements AutoCloseable {
    private static final CudaStream LEGACY_DEFAULT = new CudaStream(0L, null);

    private final long handle;
    private final CUstream stream;
    private final CudaContext owner; // null for foreign streams
    private volatile boolean closed;

    private CudaStream(long handle, CudaContext owner) {
        this.handle = handle;
        this.stream = NativeHandles.streamOf(handle);
        this.owner = owner;
    }

    /**
     * A framework-owned stream handle (0 is the legacy default stream).
     *
     * @param handle the {@code cudaStream_t}, owned by the framework
     * @return a stream this library never destroys
     */
    public static CudaStream foreign(long handle) {
        return handle == 0 ? LEGACY_DEFAULT : new CudaStream(handle, null);
    }

    /**
     * The legacy default stream (handle 0).
     *
     * @return the default stream
     */
    public static CudaStream legacyDefault() {
        return LEGACY_DEFAULT;
    }

    /** A new non-blocking stream in {@code context}, destroyed by {@link #close()}. */
    static CudaStream createOwned(CudaContext context) {
        context.makeCurrent();
        CUstream s = new CUstream();
        cuStreamCreate(s, CUstream_flags.CU_STREAM_NON_BLOCKING);
        return new CudaStream(NativeHandles.handleOf(s), context);
    }

    /**
     * The raw handle, for passing to other CUDA libraries.
     *
     * @return the {@code cudaStream_t} handle
     */
    public long handle() {
        return handle;
    }

    /**
     * The JCuda handle, for queueing work on this stream (kernels, copies, library calls).
     *
     * @return the stream
     * @throws IllegalStateException if the stream is closed
     */
    public CUstream jcuda() {
        if (closed) {
            throw new IllegalStateException("stream is closed");
        }
        return stream;
    }

    /** @return whether {@link #close()} destroyed this (owned) stream */
    boolean isClosed() {
        return closed;
    }

    /** Blocks until all work queued on this stream has finished (the stream's context must be current). */
    public void synchronize() {
        cuStreamSynchronize(jcuda());
    }

    @Override
    public synchronized void close() {
        if (owner != null && !closed) {
            closed = true;
            owner.makeCurrent();
            cuStreamDestroy(stream);
        }
    }
}
