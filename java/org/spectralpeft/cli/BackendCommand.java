package org.spectralpeft.cli;

import java.util.concurrent.Callable;
import org.spectralpeft.Backends;
import picocli.CommandLine.Command;

/** {@code backend}: which backend auto picks, and why CUDA is not used if it is not. */
@Command(name = "backend", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Print which backend 'auto' picks, and why CUDA is not used if it is not.")
final class BackendCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        var reason = Backends.cudaUnavailableReason();
        System.out.println(reason.map(r -> "cpu (CUDA not available: " + r + ")").orElse("cuda"));
        return Main.OK;
    }
}
