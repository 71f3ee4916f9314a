package org.spectralpeft.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.fourierft.FourierFTBackend;
import org.spectralpeft.fourierft.FourierFTSpec;

/**
 * Our side of one round of {@code bench/cpu_side_by_side.py run}: the CPU backend's materialize and unmaterialized
 * forward, each timed twice, into a preallocated output and into a fresh output per call (as PEFT allocates
 * one), in one JVM. Not JMH: the Python side times PEFT by the same rule, and the script runs several rounds of
 * both, each in fresh processes, for the spread between processes.
 *
 * <p>The rule, per measurement ({@link Rule}; bench/side_by_side.py's {@code time_steady} is the same rule):
 * warm up in windows of at least {@code window-s} seconds and {@code window-calls} calls, until at least
 * {@code min-warmup-s} seconds have passed, the medians of the last three windows lie within {@code tolerance}
 * of each other and the JIT compiler spent at most {@code jit-fraction} of those windows' time compiling (on a
 * 2-core machine a late C2 compile can end a plateau that looks steady), or until {@code max-warmup-s} (then the
 * entry says {@code "steady": false}); then time at least {@code min-reps} calls and {@code min-time-s} seconds,
 * one clock reading around each call, and report their median (with p10, p90, min and max). Defaults: 3 s, 15 s,
 * windows of 0.5 s and 3 calls, 3 %, 2 %, 3 s and 10 calls.
 *
 * <p>Inputs are deterministic so that the two sides can be checked against each other: coefficient k is cos(k),
 * activation j (row-major) is sin(j), with PEFT's index set (seed 777) and scaling (150). Each case records the
 * norm and the first values of ΔW (materialize) or x·ΔWᵀ (forward) under {@code check}.
 *
 * <p>usage: {@code CpuSideBySide OUT.json [--min-warmup-s S] [--max-warmup-s S] [--window-s S] [--window-calls N]
 * [--tolerance F] [--jit-fraction F] [--min-time-s S] [--min-reps N] CASE...}, each CASE {@code materialize:SHAPE:N:DTYPE} (SHAPE
 * d_out x d_in, DTYPE float32 or bfloat16) or {@code forward:T:D:N} (T tokens of a D × D layer, float32).
 */
public final class CpuSideBySide {
    /** Keeps each fresh output reachable until the next call, so that no allocation is optimized away. */
    private static volatile Object sink;

    private CpuSideBySide() {
    }

    /** The warm-up and timing rule (seconds, calls, and the relative tolerance between window medians). */
    static final class Rule {
        double minWarmupS = 3;
        double maxWarmupS = 15;
        double windowS = 0.5;
        int windowCalls = 3;
        double tolerance = 0.03;
        double jitFraction = 0.02;
        double minTimeS = 3;
        int minReps = 10;

        Map<String, Object> describe() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("min_warmup_s", minWarmupS);
            m.put("max_warmup_s", maxWarmupS);
            m.put("window_s", windowS);
            m.put("window_calls", windowCalls);
            m.put("tolerance", tolerance);
            m.put("jit_fraction", jitFraction);
            m.put("min_time_s", minTimeS);
            m.put("min_reps", minReps);
            return m;
        }
    }

    /**
     * Runs the cases and writes OUT.json (after every case, so that a run cut short keeps what it finished).
     *
     * @param args OUT.json, options and cases (see the class comment)
     * @throws IOException if OUT.json cannot be written
     */
    public static void main(String[] args) throws IOException {
        Rule rule = new Rule();
        String outPath = null;
        List<String> cases = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("--")) {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(a + " needs a value");
                }
                String v = args[++i];
                switch (a) {
                    case "--min-warmup-s" -> rule.minWarmupS = Double.parseDouble(v);
                    case "--max-warmup-s" -> rule.maxWarmupS = Double.parseDouble(v);
                    case "--window-s" -> rule.windowS = Double.parseDouble(v);
                    case "--window-calls" -> rule.windowCalls = Integer.parseInt(v);
                    case "--tolerance" -> rule.tolerance = Double.parseDouble(v);
                    case "--jit-fraction" -> rule.jitFraction = Double.parseDouble(v);
                    case "--min-time-s" -> rule.minTimeS = Double.parseDouble(v);
                    case "--min-reps" -> rule.minReps = Integer.parseInt(v);
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            } else if (outPath == null) {
                outPath = a;
            } else {
                cases.add(a);
            }
        }
        if (outPath == null || cases.isEmpty()) {
            System.err.println("usage: CpuSideBySide OUT.json [options] CASE... (see the class comment)");
            System.exit(2);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("side", "ours");
        out.put("date", OffsetDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ISO_OFFSET_DATE_TIME));
        out.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"));
        out.put("java_version", System.getProperty("java.version"));
        out.put("jvm_args", ManagementFactory.getRuntimeMXBean().getInputArguments());
        out.put("max_heap_bytes", Runtime.getRuntime().maxMemory());
        out.put("processors", Runtime.getRuntime().availableProcessors());
        out.put("rule", rule.describe());
        List<Map<String, Object>> entries = new ArrayList<>();
        out.put("entries", entries);
        ObjectMapper json = new ObjectMapper();
        File file = new File(outPath);
        try (FourierFTBackend ft = Bench.open("cpu")) {
            out.put("backend", ft.description());
            for (String c : cases) {
                entries.addAll(runCase(ft, c, rule));
                json.writerWithDefaultPrettyPrinter().writeValue(file, out);
            }
        }
        json.writerWithDefaultPrettyPrinter().writeValue(file, out);
    }

    private static List<Map<String, Object>> runCase(FourierFTBackend ft, String c, Rule rule) {
        String[] p = c.split(":");
        List<Map<String, Object>> entries = new ArrayList<>();
        switch (p[0]) {
            case "materialize" -> {
                if (p.length != 4) {
                    throw new IllegalArgumentException("materialize:SHAPE:N:DTYPE, got " + c);
                }
                int[] s = Bench.shape(p[1]);
                int n = Integer.parseInt(p[2]);
                DType dtype = Bench.dtype(p[3]);
                int length = Math.multiplyExact(s[0], s[1]);
                FourierFTSpec spec = FourierFTSpec.fromSeed(s[0], s[1], n);
                float[] coeffs = cosines(n);
                HostArray out = HostArray.allocate(dtype, length);
                ft.materialize(spec, coeffs, out);
                Map<String, Object> check = check(out, s[1]);
                Map<String, Object> base = new LinkedHashMap<>();
                base.put("op", "materialize");
                base.put("shape", p[1]);
                base.put("n", n);
                base.put("dtype", p[3]);
                base.put("check", check);
                entries.add(entry(base, "preallocated", c, rule, () -> ft.materialize(spec, coeffs, out)));
                entries.add(entry(base, "fresh", c, rule, () -> {
                    HostArray fresh = HostArray.allocate(dtype, length);
                    ft.materialize(spec, coeffs, fresh);
                    sink = fresh;
                }));
            }
            case "forward" -> {
                if (p.length != 4) {
                    throw new IllegalArgumentException("forward:T:D:N, got " + c);
                }
                int tokens = Integer.parseInt(p[1]);
                int d = Integer.parseInt(p[2]);
                int n = Integer.parseInt(p[3]);
                int length = Math.multiplyExact(tokens, d);
                FourierFTSpec spec = FourierFTSpec.fromSeed(d, d, n);
                float[] coeffs = cosines(n);
                HostArray x = HostArray.float32(sines(length));
                HostArray y = HostArray.allocate(DType.FLOAT32, length);
                ft.forward(spec, coeffs, x, tokens, y);
                Map<String, Object> check = check(y, d);
                Map<String, Object> base = new LinkedHashMap<>();
                base.put("op", "forward");
                base.put("tokens", tokens);
                base.put("d", d);
                base.put("n", n);
                base.put("dtype", "float32");
                base.put("check", check);
                entries.add(entry(base, "preallocated", c, rule, () -> ft.forward(spec, coeffs, x, tokens, y)));
                entries.add(entry(base, "fresh", c, rule, () -> {
                    HostArray fresh = HostArray.allocate(DType.FLOAT32, length);
                    ft.forward(spec, coeffs, x, tokens, fresh);
                    sink = fresh;
                }));
            }
            default -> throw new IllegalArgumentException("a case is materialize:... or forward:..., got " + c);
        }
        return entries;
    }

    private static Map<String, Object> entry(Map<String, Object> base, String output, String name, Rule rule,
                                             Runnable call) {
        Map<String, Object> e = new LinkedHashMap<>(base);
        e.put("output", output);
        e.putAll(timeSteady(call, rule));
        System.err.printf(Locale.ROOT, "ours %s, %s output: median %.4g ms over %d calls (warm-up %.1f s, %s)%n",
                name, output, (Double) e.get("ms"), (Integer) e.get("reps"), (Double) e.get("warmup_s"),
                Boolean.TRUE.equals(e.get("steady")) ? "steady" : "NOT steady");
        return e;
    }

    /**
     * Warm-up to steady state, then timed calls, by the rule in the class comment.
     *
     * @param call one call
     * @param rule the rule
     * @return ms (median), p10_ms, p90_ms, min_ms, max_ms, reps, warmup_s, warmup_calls, windows_ms, steady
     */
    static Map<String, Object> timeSteady(Runnable call, Rule rule) {
        List<Double> windows = new ArrayList<>();
        List<Double> windowS = new ArrayList<>();
        List<Long> jitMs = new ArrayList<>();
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        boolean jitKnown = jit != null && jit.isCompilationTimeMonitoringSupported();
        long start = System.nanoTime();
        long calls = 0;
        boolean steady = false;
        double elapsed;
        Samples w = new Samples();
        while (true) {
            w.clear();
            long jit0 = jitKnown ? jit.getTotalCompilationTime() : 0;
            long w0 = System.nanoTime();
            while (w.size < rule.windowCalls || seconds(System.nanoTime() - w0) < rule.windowS) {
                w.add(timeOne(call));
                calls++;
            }
            windowS.add(seconds(System.nanoTime() - w0));
            jitMs.add(jitKnown ? jit.getTotalCompilationTime() - jit0 : 0);
            windows.add(w.quantile(0.5));
            elapsed = seconds(System.nanoTime() - start);
            if (elapsed >= rule.minWarmupS && windows.size() >= 3) {
                int from = windows.size() - 3;
                List<Double> last = windows.subList(from, windows.size());
                double lo = last.stream().mapToDouble(Double::doubleValue).min().orElseThrow();
                double hi = last.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
                double lastS = windowS.subList(from, windows.size()).stream().mapToDouble(Double::doubleValue).sum();
                long lastJitMs = jitMs.subList(from, windows.size()).stream().mapToLong(Long::longValue).sum();
                if (hi <= lo * (1 + rule.tolerance) && lastJitMs <= rule.jitFraction * lastS * 1e3) {
                    steady = true;
                    break;
                }
            }
            if (elapsed >= rule.maxWarmupS) {
                break;
            }
        }
        Samples t = new Samples();
        long t0 = System.nanoTime();
        while (t.size < rule.minReps || seconds(System.nanoTime() - t0) < rule.minTimeS) {
            t.add(timeOne(call));
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ms", t.quantile(0.5));
        m.put("p10_ms", t.quantile(0.1));
        m.put("p90_ms", t.quantile(0.9));
        m.put("min_ms", t.quantile(0));
        m.put("max_ms", t.quantile(1));
        m.put("reps", t.size);
        m.put("warmup_s", elapsed);
        m.put("warmup_calls", calls);
        m.put("windows_ms", windows);
        m.put("windows_jit_ms", jitMs);
        m.put("steady", steady);
        return m;
    }

    private static double timeOne(Runnable call) {
        long s = System.nanoTime();
        call.run();
        return (System.nanoTime() - s) * 1e-6;
    }

    private static double seconds(long nanos) {
        return nanos * 1e-9;
    }

    /** A growable list of milliseconds. */
    private static final class Samples {
        double[] values = new double[64];
        int size;

        void add(double v) {
            if (size == values.length) {
                values = Arrays.copyOf(values, size * 2);
            }
            values[size++] = v;
        }

        void clear() {
            size = 0;
        }

        /** Linear interpolation between the closest ranks (numpy's default), q in [0, 1]. */
        double quantile(double q) {
            double[] sorted = Arrays.copyOf(values, size);
            Arrays.sort(sorted);
            double pos = q * (size - 1);
            int lo = (int) Math.floor(pos);
            int hi = Math.min(lo + 1, size - 1);
            return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
        }
    }

    private static float[] cosines(int n) {
        float[] c = new float[n];
        for (int k = 0; k < n; k++) {
            c[k] = (float) Math.cos(k);
        }
        return c;
    }

    private static float[] sines(int n) {
        float[] s = new float[n];
        for (int j = 0; j < n; j++) {
            s[j] = (float) Math.sin(j);
        }
        return s;
    }

    /** The Frobenius norm and the first row's first 4 values of a rows × cols array. */
    private static Map<String, Object> check(HostArray a, int cols) {
        double sum = 0;
        for (int i = 0; i < a.length(); i++) {
            double v = a.get(i);
            sum += v * v;
        }
        List<Double> first = new ArrayList<>();
        for (int i = 0; i < Math.min(4, cols); i++) {
            first.add((double) a.get(i));
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("norm", Math.sqrt(sum));
        m.put("first", first);
        return m;
    }
}
