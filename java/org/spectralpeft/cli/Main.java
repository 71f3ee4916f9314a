package org.spectralpeft.cli;

import org.spectralpeft.Backends;

/** Command line: {@code java -jar spectral-peft.jar <command>}. */
public final class Main {
    private static final String USAGE = String.join(System.lineSeparator(),
            "usage: java -jar spectral-peft.jar <command>",
            "  demo [--backend auto|cpu|cuda] [--tokens T]",
            "        FourierFT on a 4096x4096 layer (n = 1000): materialize, unmaterialized forward,",
            "        cross-checks and timings on the best available backend",
            "  merge --base <model.safetensors | model.safetensors.index.json | dir> --adapter <PEFT adapter dir>",
            "        --out <merged.safetensors> [--backend auto|cpu|cuda] [--fan-in-fan-out REGEX]",
            "        write the base model with a FourierFT adapter merged (W + ΔW in each weight's dtype);",
            "        --fan-in-fan-out: modules whose weight is stored in x out (default: the adapter config's flag)",
            "  inspect <file or dir>",
            "        tensors, dtypes and shapes of a safetensors file, index or model directory;",
            "        settings and layers (with n) of a PEFT FourierFT adapter directory",
            "  backend   print which backend 'auto' picks, and why CUDA is not used if it is not");

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs one command; returns its exit status (0 success, 1 failure, 2 bad command line). */
    public static int run(String[] args) {
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h")) {
            System.out.println(USAGE);
            return args.length == 0 ? 2 : 0;
        }
        try {
            switch (args[0]) {
                case "demo": {
                    String backend = "auto";
                    int tokens = 64;
                    for (int i = 1; i < args.length; i++) {
                        String value = i + 1 < args.length ? args[i + 1] : null;
                        switch (args[i]) {
                            case "--backend" -> backend = require(value, "--backend");
                            case "--tokens" -> tokens = Integer.parseInt(require(value, "--tokens"));
                            default -> throw new UsageException("unknown option " + args[i]);
                        }
                        i++;
                    }
                    return Demo.run(backend, tokens, System.out);
                }
                case "merge":
                    return MergeCommand.run(args, System.out, System.err);
                case "inspect":
                    return InspectCommand.run(args, System.out);
                case "backend": {
                    var reason = Backends.cudaUnavailableReason();
                    System.out.println(reason.map(r -> "cpu (CUDA not available: " + r + ")").orElse("cuda"));
                    return 0;
                }
                default:
                    System.err.println("unknown command '" + args[0] + "'");
                    System.err.println(USAGE);
                    return 2;
            }
        } catch (UsageException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(USAGE);
            return 2;
        } catch (java.io.IOException | IllegalArgumentException | IllegalStateException e) {
            System.err.println("error: " + e.getMessage());
            return 1;
        }
    }

    static String require(String value, String option) {
        if (value == null) {
            throw new UsageException(option + " needs a value");
        }
        return value;
    }
}
