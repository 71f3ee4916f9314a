package org.spectralpeft.cli;

import java.io.PrintStream;
import java.util.function.Supplier;
import org.spectralpeft.Backends;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.tlora.TLoRABackend;

/** The {@code --backend auto|cpu|cuda} option of the commands. */
enum BackendOption {
    AUTO, CPU, CUDA;

    static final String DESCRIPTION = "auto, cpu or cuda (default: auto, CUDA if it loads)";

    /** Opens FourierFT on this backend; for auto, says on {@code notes} (when not null) why CUDA is not used when it is not. */
    FourierFTBackend open(PrintStream notes) {
        return open(notes, Backends::fourierFTCpu, Backends::fourierFTCuda, Backends::fourierFT);
    }

    /** Opens FouRA on this backend, as {@link #open(PrintStream)} does FourierFT. */
    FouRABackend openFouRA(PrintStream notes) {
        return open(notes, Backends::fouRACpu, Backends::fouRACuda, Backends::fouRA);
    }

    TLoRABackend openTLoRA(PrintStream notes) {
        return open(notes, Backends::tLoRACpu, Backends::tLoRACuda, Backends::tLoRA);
    }

    /** The family's CPU, CUDA or best backend per this choice; auto says why CUDA is not used when it is not. */
    private <B> B open(PrintStream notes, Supplier<? extends B> cpu, Supplier<? extends B> cuda, Supplier<? extends B> best) {
        switch (this) {
            case CPU:
                return cpu.get();
            case CUDA:
                return cuda.get();
            default:
                var reason = Backends.cudaUnavailableReason();
                if (reason.isPresent()) {
                    if (notes != null) {
                        notes.println("CUDA not used: " + reason.get());
                    }
                    return cpu.get();
                }
                return best.get();
        }
    }

    @Override
    public String toString() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Accepts exactly the lower-case names, and says so when given anything else. */
    static final class Converter extends Choices<BackendOption> {
        Converter() {
            super(BackendOption.class);
        }
    }
}
