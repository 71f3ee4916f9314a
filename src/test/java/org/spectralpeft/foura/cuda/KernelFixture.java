package org.spectralpeft.foura.cuda;

import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;

/** Device 0's context, FouRA's kernels on it and a stream: for the tests that drive the kernels without a backend. */
final class KernelFixture implements AutoCloseable {
    final CudaContext context;
    final FouRAKernels kernels;
    final CudaStream stream;

    KernelFixture() {
        context = CudaContext.open(0);
        try {
            context.makeCurrent();
            kernels = new FouRAKernels(context.computeCapability(), true);
        } catch (RuntimeException | Error e) {
            context.close();
            throw e;
        }
        try {
            stream = context.createStream();
        } catch (RuntimeException | Error e) {
            kernels.close();
            context.close();
            throw e;
        }
    }

    @Override
    public void close() {
        stream.close();
        kernels.close();
        context.close();
    }
}
