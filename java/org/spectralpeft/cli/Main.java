package org.spectralpeft.cli;

import org.spectralpeft.Backends;

/** Command line: {@code java -jar spectral-peft.jar <command>}. */
public final class Main {
    private static final String USAGE = String.join(System.lineSeparator(),
            "usage: java -jar spectral-peft.jar <command>",
            "  demo [--backend auto|cpu|cuda] [--tokens T]",
            "        FourierFT on a 4096x4096 layer (n = 1000): materialize, unmaterialized forward,",
            "        cross-checks and timings on the best available backend",
            "  backend   print which backend 'auto' picks, and why CUDA is not used if it is not");

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String[] args) {
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
                            default -> throw new IllegalArgumentException("unknown option " + args[i]);
                        }
                        i++;
                    }
                    return Demo.run(backend, tokens, System.out);
                }
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
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            return 2;
        }
    }

    private static String require(String value, String option) {
        if (value == null) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return value;
    }
}
