package org.spectralpeft.cli;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * The main job: a LLaMA-sized FourierFT layer (4096 × 4096, n = 1000, PEFT's seed and scaling) on the
 * best backend. Materializes ΔW, runs the unmaterialized forward on a batch of tokens, cross-checks the
 * two paths against each other and a sample of ΔW against the float64 closed form, and prints the
 * backend, the errors and the timings. Exits non-zero when a check fails. {@code --adapter foura} does the
 * same for a FouRA layer (r = 16, FIXED gate) with each transform ({@link FouRADemo}), {@code --adapter tlora}
 * for an SDXL-sized TLoRA layer ({@link TLoRADemo}).
 */
@Command(name = "demo", mixinStandardHelpOptions = true, versionProvider = Version.class, sortOptions = false,
        description = {"FourierFT (n = 1000) or FouRA (r = 16, DFT and DCT) on a 4096x4096 layer: materialize,",
                "unmaterialized forward, cross-checks and timings on the best available backend.",
                "Exits with 1 when a check fails."})
final class Demo implements Callable<Integer> {
    private static final int D = 4096;
    private static final int N = 1000;
    /** The dense cross-check costs tokens·D² multiply-adds; beyond this it takes minutes. */
    static final int MAX_TOKENS = 4096;

    @Option(names = "--backend", paramLabel = "auto|cpu|cuda", defaultValue = "auto",
            converter = BackendOption.Converter.class, description = BackendOption.DESCRIPTION)
    BackendOption backend;

    @Option(names = "--tokens", paramLabel = "T", defaultValue = "64", converter = TokenCount.class,
            description = "tokens of the unmaterialized forward, 1 to " + MAX_TOKENS + " (default: ${DEFAULT-VALUE})")
    int tokens;

    @Option(names = "--adapter", paramLabel = "fourierft|foura|tlora", defaultValue = "fourierft",
            converter = AdapterKind.Converter.class, description = "the adapter family (default: ${DEFAULT-VALUE})")
    AdapterKind adapter;

    /** The families the demo runs. */
    enum AdapterKind {
        FOURIERFT, FOURA, TLORA;

        @Override
        public String toString() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        /** Accepts exactly the lower-case names. */
        static final class Converter extends Choices<AdapterKind> {
            Converter() {
                super(AdapterKind.class);
            }
        }
    }

    @Override
    public Integer call() {
        return switch (adapter) {
            case FOURA -> FouRADemo.run(backend, tokens, System.out);
            case TLORA -> TLoRADemo.run(backend, tokens, System.out);
            case FOURIERFT -> run(backend, tokens, System.out);
        };
    }

    /** A whole number in 1..MAX_TOKENS, refused with a message that says so. */
    static final class TokenCount implements ITypeConverter<Integer> {
        @Override
        public Integer convert(String value) {
            int t;
            try {
                t = Integer.parseInt(value.strip());
            } catch (NumberFormatException e) {
                t = 0;
            }
            if (t < 1 || t > MAX_TOKENS) {
                throw new TypeConversionException("'" + value + "' is not a whole number from 1 to " + MAX_TOKENS);
            }
            return t;
        }
    }

    static int run(BackendOption backendChoice, int tokens, PrintStream out) {
        FourierFTSpec spec = FourierFTSpec.fromSeed(D, D, N);
        Random random = new Random(2024);
        float[] coeffs = new float[N];
        for (int i = 0; i < N; i++) {
            coeffs[i] = (float) random.nextGaussian();
        }
        float[] x = new float[tokens * D];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        try (FourierFTBackend backend = backendChoice.open(out)) {
            out.printf("backend: %s%n", backend.description());
            out.printf("layer: %d x %d, n = %d, seed %d, scaling %.0f; %d tokens%n", D, D, N, FourierFTSpec.DEFAULT_SEED,
                    spec.alpha(), tokens);

            HostArray deltaW = HostArray.float32(new float[D * D]);
            double materializeMs = median(3, () -> backend.materialize(spec, coeffs, deltaW));
            HostArray y = HostArray.float32(new float[tokens * D]);
            double forwardMs = median(3, () -> {
                Arrays.fill(y.floats(), 0f);
                backend.forward(spec, coeffs, HostArray.float32(x), tokens, y);
            });

            double pathError = forwardVsDense(deltaW.floats(), x, tokens, y.floats());
            double sampleError = sampleVsClosedForm(spec, coeffs, deltaW.floats(), random);
            out.printf("materialize dW (host arrays, incl. copies): %.2f ms%n", materializeMs);
            out.printf("unmaterialized forward, %d tokens (host arrays, incl. copies): %.2f ms%n", tokens, forwardMs);
            out.printf("forward vs x*dW^T from the materialized dW: relative error %.2e%n", pathError);
            out.printf("dW sample (256 entries) vs float64 closed form: relative error %.2e%n", sampleError);
            boolean ok = pathError < 1e-5 && sampleError < 1e-5;
            out.println(ok ? "checks: passed" : "checks: FAILED (tolerance 1e-5)");
            return ok ? 0 : 1;
        }
    }

    /** Median wall time in ms of {@code runs} runs after one warm-up. */
    static double median(int runs, Runnable work) {
        work.run();
        double[] ms = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            work.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(ms);
        return ms[runs / 2];
    }

    /** ‖y − x·Wᵀ‖/‖x·Wᵀ‖ for a D × D matrix W, with the dense product in float64. */
    static double forwardVsDense(float[] w, float[] x, int tokens, float[] y) {
        return forwardVsDense(w, x, tokens, y, D);
    }

    /** ‖y − x·Wᵀ‖/‖x·Wᵀ‖ for a d × d matrix W, with the dense product in float64. */
    static double forwardVsDense(float[] w, float[] x, int tokens, float[] y, int d) {
        double[] sums = IntStream.range(0, tokens).parallel().mapToObj(t -> {
            double num = 0;
            double den = 0;
            for (int p = 0; p < d; p++) {
                double dot = 0;
                int row = p * d;
                int xi = t * d;
                for (int q = 0; q < d; q++) {
                    dot += (double) x[xi + q] * w[row + q];
                }
                double diff = y[t * d + p] - dot;
                num += diff * diff;
                den += dot * dot;
            }
            return new double[] {num, den};
        }).reduce(new double[2], (a, b) -> new double[] {a[0] + b[0], a[1] + b[1]});
        return Math.sqrt(sums[0] / sums[1]);
    }

    private static double sampleVsClosedForm(FourierFTSpec spec, float[] coeffs, float[] w, Random random) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < 256; i++) {
            int p = random.nextInt(D);
            int q = random.nextInt(D);
            double ref = DirectSum.deltaW(spec, coeffs, p, q);
            num += (w[p * D + q] - ref) * (w[p * D + q] - ref);
            den += ref * ref;
        }
        return Math.sqrt(num / den);
    }
}
