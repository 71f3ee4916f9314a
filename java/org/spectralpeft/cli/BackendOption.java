package org.spectralpeft.cli;

import java.io.PrintStream;
import org.spectralpeft.Backends;
import org.spectralpeft.foura.FouRABackend;
import org.spectralpeft.fourierft.FourierFTBackend;

/** The {@code --backend auto|cpu|cuda} option of the commands. */
enum BackendOption {
    AUTO, CPU, CUDA;

    static final String DESCRIPTION = "auto, cpu or cuda (default: auto, CUDA if it loads)";

    /** Opens this backend; for auto, says on {@code notes} (when not null) why CUDA is not used when it is not. */
    FourierFTBackend open(PrintStream notes) {
        switch (this) {
            case CPU:
                return Backends.fourierFTCpu();
            case CUDA:
                return Backends.fourierFTCuda();
            default:
                var reason = Backends.cudaUnavailableReason();
                if (reason.isPresent()) {
                    if (notes != null) {
                        notes.println("CUDA not used: " + reason.get());
                    }
                    return Backends.fourierFTCpu();
                }
                return Backends.fourierFT();
        }
    }

    /** Opens FouRA on this backend; for auto, says on {@code notes} (when not null) why CUDA is not used when it is not. */
    FouRABackend openFouRA(PrintStream notes) {
        switch (this) {
            case CPU:
                return Backends.fouRACpu();
            case CUDA:
                return Backends.fouRACuda();
            default:
                var reason = Backends.cudaUnavailableReason();
                if (reason.isPresent()) {
                    if (notes != null) {
                        notes.println("CUDA not used: " + reason.get());
                    }
                    return Backends.fouRACpu();
                }
                return Backends.fouRA();
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
