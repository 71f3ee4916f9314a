package org.spectralpeft;

import java.util.Optional;
import java.util.function.Supplier;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.foura.cpu.CpuFouRA;
import org.spectralpeft.foura.cuda.CudaFouRA;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.cpu.CpuFourierFT;
import org.spectralpeft.fourierft.cuda.CudaFourierFT;
import org.spectralpeft.tlora.TLoRABackend;
import org.spectralpeft.tlora.cpu.CpuTLoRA;
import org.spectralpeft.tlora.cuda.CudaTLoRA;

/**
 * Factories, one set per adapter family: the best backend (CUDA when a device, the NVIDIA driver and the
 * CUDA 13 libraries (cuFFT) all load, otherwise the CPU backend), the CPU one and the CUDA one.
 * {@link #cudaUnavailableReason()} says in one line why CUDA was not used.
 */
public final class Backends {
    private Backends() {
    }

    /**
     * FourierFT on the CUDA backend on device 0 if it opens, else on the CPU backend.
     *
     * @return an open backend; the caller closes it
     */
    public static FourierFTBackend fourierFT() {
        return cudaOrElse(CudaFourierFT::open, CpuFourierFT::new);
    }

    /**
     * FourierFT's pure-Java CPU backend, available everywhere.
     *
     * @return a new CPU backend
     */
    public static CpuFourierFT fourierFTCpu() {
        return new CpuFourierFT();
    }

    /**
     * FourierFT's CUDA backend on device 0; throws {@link IllegalStateException} with the reason when
     * unavailable. ({@link CudaFourierFT#open(org.spectralpeft.cuda.CudaContext)} opens one on a shared context.)
     *
     * @return a new CUDA backend
     * @throws IllegalStateException if no CUDA device or native library is available
     */
    public static CudaFourierFT fourierFTCuda() {
        return cudaOrThrow(CudaFourierFT::open);
    }

    /**
     * FouRA on the CUDA backend on device 0 if it opens, else on the CPU backend.
     *
     * @return an open backend; the caller closes it
     */
    public static FouRABackend fouRA() {
        return cudaOrElse(CudaFouRA::open, CpuFouRA::new);
    }

    /**
     * TLoRA on the CUDA backend on device 0 if it opens, else on the CPU backend.
     *
     * @return an open backend; the caller closes it
     */
    public static TLoRABackend tLoRA() {
        return cudaOrElse(CudaTLoRA::open, CpuTLoRA::new);
    }

    /**
     * TLoRA's pure-Java CPU backend, available everywhere.
     *
     * @return a new CPU backend
     */
    public static CpuTLoRA tLoRACpu() {
        return new CpuTLoRA();
    }

    /**
     * TLoRA's CUDA backend on device 0; throws {@link IllegalStateException} with the reason when unavailable.
     * ({@link CudaTLoRA#open(org.spectralpeft.cuda.CudaContext)} opens one on a shared context.)
     *
     * @return a new CUDA backend
     * @throws IllegalStateException if no CUDA device or native library is available
     */
    public static CudaTLoRA tLoRACuda() {
        return cudaOrThrow(CudaTLoRA::open);
    }

    /**
     * FouRA's pure-Java CPU backend, available everywhere.
     *
     * @return a new CPU backend
     */
    public static CpuFouRA fouRACpu() {
        return new CpuFouRA();
    }

    /**
     * FouRA's CUDA backend on device 0; throws {@link IllegalStateException} with the reason when unavailable.
     * ({@link CudaFouRA#open(org.spectralpeft.cuda.CudaContext)} opens one on a shared context.)
     *
     * @return a new CUDA backend
     * @throws IllegalStateException if no CUDA device or native library is available
     */
    public static CudaFouRA fouRACuda() {
        return cudaOrThrow(CudaFouRA::open);
    }

    /** The CUDA backend if it opens, else the CPU one. */
    private static <B> B cudaOrElse(Supplier<? extends B> cuda, Supplier<? extends B> cpu) {
        try {
            return cuda.get();
        } catch (Throwable e) { // missing natives surface as linkage errors, not exceptions
            return cpu.get();
        }
    }

    /** The CUDA backend, or {@link IllegalStateException} with the reason it did not open. */
    private static <B> B cudaOrThrow(Supplier<B> cuda) {
        try {
            return cuda.get();
        } catch (Throwable e) {
            throw new IllegalStateException("CUDA backend unavailable: " + explain(e), e);
        }
    }

    /**
     * Empty when the CUDA backend opens; otherwise one line saying why not.
     *
     * @return the reason, or empty if CUDA is available
     */
    public static Optional<String> cudaUnavailableReason() {
        try {
            CudaFourierFT.open().close();
            return Optional.empty();
        } catch (Throwable e) {
            return Optional.of(explain(e));
        }
    }

    /** A one-line reason for a failed CUDA start. */
    static String explain(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String message = String.valueOf(root.getMessage());
        String lower = message.toLowerCase();
        String what;
        if (lower.contains("kernels were not built")) {
            return message; // a jar built without nvcc: the whole reason, no need to look further
        } else if (lower.contains("libcuda.so") || lower.contains("jcudadriver")) {
            what = "the NVIDIA driver (libcuda.so.1) could not be loaded";
        } else if (lower.contains("cufft") || lower.contains("cudart")) {
            what = "the CUDA 13 libraries (libcufft.so.12, libcudart.so.13) could not be loaded;"
                    + " put their directory on LD_LIBRARY_PATH";
        } else if (message.contains("CUDA_ERROR_NO_DEVICE")) {
            what = "no CUDA device is present";
        } else {
            what = root.getClass().getSimpleName();
        }
        String first = message.lines().findFirst().orElse("");
        return what + (first.isEmpty() || first.equals("null") ? "" : " (" + first + ")");
    }
}
