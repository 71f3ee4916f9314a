package org.spectralpeft.cli;

import java.io.PrintStream;
import org.spectralpeft.Backends;
import org.spectralpeft.api.FourierFTBackend;

/** The {@code --backend auto|cpu|cuda} option of the commands. */
final class BackendOption {
    private BackendOption() {
    }

    /** Opens the named backend; for "auto", says on {@code notes} why CUDA is not used when it is not. */
    static FourierFTBackend open(String name, PrintStream notes) {
        switch (name) {
            case "cpu":
                return Backends.cpu();
            case "cuda":
                return Backends.cuda();
            case "auto":
                var reason = Backends.cudaUnavailableReason();
                if (reason.isPresent()) {
                    notes.println("CUDA not used: " + reason.get());
                    return Backends.cpu();
                }
                return Backends.best();
            default:
                throw new UsageException("unknown backend '" + name + "' (auto, cpu or cuda)");
        }
    }
}
