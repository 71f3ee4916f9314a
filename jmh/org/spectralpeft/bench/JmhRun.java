package org.spectralpeft.bench;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import org.openjdk.jmh.Main;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.NoBenchmarksException;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.CommandLineOptionException;
import org.openjdk.jmh.runner.options.CommandLineOptions;

/**
 * JMH's command line ({@code org.openjdk.jmh.Main}, same arguments) followed by a summary of every result: the
 * median (p0.50, the figure the side-by-side tables use), the score with JMH's error (the half-width of its 99.9 %
 * confidence interval; in SampleTime mode the score is the mean of all samples) and the error over the score in
 * percent, flagged where it is over {@link #ERROR_LIMIT_PERCENT} %. native-build/run-benchmarks.sh runs it.
 */
public final class JmhRun {
    /** The error over the score, in percent, above which the summary flags a result as too noisy to quote. */
    public static final double ERROR_LIMIT_PERCENT = 5.0;

    private JmhRun() {
    }

    /**
     * Runs JMH with {@code args} and prints the summary.
     *
     * @param args JMH's own command-line arguments (benchmark regexes and options)
     * @throws IOException if JMH's listing (-l, -lp, -h) fails to print
     */
    public static void main(String[] args) throws IOException {
        CommandLineOptions options;
        try {
            options = new CommandLineOptions(args);
        } catch (CommandLineOptionException e) {
            System.err.println("Error parsing command line:");
            System.err.println(" " + e.getMessage());
            System.exit(1);
            return;
        }
        if (options.shouldHelp() || options.shouldList() || options.shouldListWithParams()
                || options.shouldListProfilers() || options.shouldListResultFormats()) {
            Main.main(args);
            return;
        }
        Collection<RunResult> results;
        try {
            results = new Runner(options).run();
        } catch (NoBenchmarksException e) {
            System.err.println("No matching benchmarks. Miss-spelled regexp? Use -l to list them.");
            System.exit(1);
            return;
        } catch (RunnerException e) {
            System.err.print("ERROR: ");
            e.printStackTrace(System.err);
            System.exit(1);
            return;
        }
        System.out.print(summary(results));
    }

    /**
     * The summary table of {@code results}: one line per benchmark and parameter set.
     *
     * @param results what {@link Runner#run()} returned
     * @return the lines, each ending in a newline
     */
    public static String summary(Collection<RunResult> results) {
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"Benchmark", "(params)", "Mode", "Samples", "Median", "Score", "±", "Error", "Units",
            "Error/score"});
        int noisy = 0;
        for (RunResult r : results) {
            BenchmarkParams p = r.getParams();
            Result<?> primary = r.getPrimaryResult();
            StringBuilder params = new StringBuilder();
            for (String key : p.getParamsKeys()) {
                params.append(params.length() == 0 ? "" : " ").append(key).append('=').append(p.getParam(key));
            }
            double score = primary.getScore();
            double error = primary.getScoreError();
            double percent = 100 * error / score;
            boolean known = Double.isFinite(percent);
            boolean over = !known || percent > ERROR_LIMIT_PERCENT;
            if (over) {
                noisy++;
            }
            String name = p.getBenchmark();
            name = name.substring(name.lastIndexOf('.', name.lastIndexOf('.') - 1) + 1);
            rows.add(new String[] {
                name,
                params.toString(),
                p.getMode().shortLabel(),
                Long.toString(primary.getSampleCount()),
                number(primary.getStatistics().getPercentile(50.0)),
                number(score),
                "±",
                Double.isFinite(error) ? number(error) : "n/a",
                primary.getScoreUnit(),
                (known ? String.format(Locale.ROOT, "%.1f %%", percent) : "n/a")
                    + (over ? "  over " + (int) ERROR_LIMIT_PERCENT + " %" : ""),
            });
        }
        int[] width = new int[rows.get(0).length];
        for (String[] row : rows) {
            for (int i = 0; i < row.length; i++) {
                width[i] = Math.max(width[i], row[i].length());
            }
        }
        StringBuilder out = new StringBuilder();
        out.append("\n== Summary: median (p0.50), score ± error (JMH's 99.9 % confidence half-width; the score is the"
                + " mean in SampleTime mode), error/score\n");
        for (String[] row : rows) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < row.length; i++) {
                boolean left = i <= 2 || i == 8 || i == 9;
                String cell = left ? pad(row[i], width[i], false) : pad(row[i], width[i], true);
                line.append(i == 0 ? "" : "  ").append(i == row.length - 1 ? row[i] : cell);
            }
            out.append(line.toString().stripTrailing()).append('\n');
        }
        out.append(noisy == 0
                ? "All " + results.size() + " results have an error under " + (int) ERROR_LIMIT_PERCENT
                    + " % of their score.\n"
                : noisy + " of " + results.size() + " results have an error over " + (int) ERROR_LIMIT_PERCENT
                    + " % of their score (or too few samples to tell): more iterations, or a quieter machine.\n");
        return out.toString();
    }

    private static String number(double x) {
        if (!Double.isFinite(x)) {
            return "n/a";
        }
        double a = Math.abs(x);
        if (a >= 100) {
            return String.format(Locale.ROOT, "%.1f", x);
        }
        if (a >= 1) {
            return String.format(Locale.ROOT, "%.3f", x);
        }
        return String.format(Locale.ROOT, "%.4g", x);
    }

    private static String pad(String s, int width, boolean right) {
        if (s.length() >= width) {
            return s;
        }
        String fill = " ".repeat(width - s.length());
        return right ? fill + s : s + fill;
    }
}
