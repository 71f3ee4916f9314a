package org.spectralpeft.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * A one-line progress bar redrawn in place: share of the bytes written, rate and time left. Weighted by
 * bytes, not tensors, because a model's tensors range from a few bytes to hundreds of megabytes.
 */
final class ProgressBar {
    private static final int BAR = 16;
    private static final int DEFAULT_WIDTH = 79;
    /** Redraws closer together than this are skipped: a model of many small tensors would flood the terminal. */
    private static final long REDRAW_NANOS = 100_000_000L;

    /** When to draw the bar: {@code --progress auto|always|never}. */
    enum Mode {
        AUTO, ALWAYS, NEVER;

        static final String DESCRIPTION = "auto, always or never (default: auto, a bar on standard error only"
                + " when it is a terminal and TERM is set, not dumb)";

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }

        boolean draws() {
            return this == ALWAYS || (this == AUTO && stderrIsTerminal());
        }

        static final class Converter extends Choices<Mode> {
            Converter() {
                super(Mode.class);
            }
        }
    }

    private final PrintStream out;
    private final boolean enabled;
    private final long totalBytes;
    private final LongSupplier nanoClock;
    private final long start;
    private final int width = lineWidth(System.getenv("COLUMNS"));
    private long doneBytes;
    private long lastDraw = Long.MIN_VALUE;
    private int lastLength;

    ProgressBar(PrintStream out, boolean enabled, long totalBytes, LongSupplier nanoClock) {
        this.out = out;
        this.enabled = enabled;
        this.totalBytes = totalBytes;
        this.nanoClock = nanoClock;
        this.start = nanoClock.getAsLong();
    }

    /**
     * Whether standard error is a terminal, as {@code test -t 2} would say. Java 17 can only ask whether
     * stdin and stdout both are (System.console()), which is wrong both for {@code merge > log} and for
     * {@code merge 2> err.log}; on Linux, /proc/self/fd/2 names the file behind descriptor 2.
     */
    static boolean stderrIsTerminal() {
        return isTerminal(System.getenv("TERM"), Path.of("/proc/self/fd/2"));
    }

    static boolean isTerminal(String term, Path descriptor) {
        if (term == null || term.isEmpty() || term.equals("dumb")) {
            return false; // no terminal type: nothing says a carriage return redraws the line
        }
        Path target;
        try {
            target = Files.readSymbolicLink(descriptor);
        } catch (IOException | UnsupportedOperationException e) {
            return System.console() != null; // no /proc (not Linux): the closest Java 17 can tell
        }
        try {
            // a character device (the link followed), named as terminals are; /dev/null is a device too
            return isTerminalName(target.toString())
                    && Files.readAttributes(descriptor, BasicFileAttributes.class).isOther();
        } catch (IOException e) {
            return false;
        }
    }

    static boolean isTerminalName(String device) {
        return device.startsWith("/dev/pts/") || device.matches("/dev/tty[A-Za-z]*[0-9]*") || device.equals("/dev/console");
    }

    /** Counts {@code bytes} more as done and redraws, at most ten times a second and always at the end. */
    void advance(long bytes, String label) {
        doneBytes += bytes;
        if (!enabled) {
            return;
        }
        long now = nanoClock.getAsLong();
        if (doneBytes < totalBytes && lastDraw != Long.MIN_VALUE && now - lastDraw < REDRAW_NANOS) {
            return;
        }
        lastDraw = now;
        String line = line(doneBytes, totalBytes, (now - start) / 1e9, label, width);
        out.print("\r" + line + " ".repeat(Math.max(0, lastLength - line.length())));
        lastLength = line.length();
        out.flush();
    }

    /** Clears the bar so the next output starts on a clean line. */
    void finish() {
        if (enabled && lastLength > 0) {
            out.print("\r" + " ".repeat(lastLength) + "\r");
            out.flush();
            lastLength = 0;
        }
    }

    /** {@code [#####    ]  42% 1.2 GB/2.9 GB 310.0 MB/s 0:05 left ...name}, at most {@code width} characters. */
    static String line(long done, long total, double seconds, String label, int width) {
        double fraction = total <= 0 ? 1 : Math.min(1, (double) done / total);
        int filled = (int) (fraction * BAR);
        StringBuilder s = new StringBuilder();
        s.append('[').append("#".repeat(filled)).append(" ".repeat(BAR - filled)).append("] ");
        s.append(String.format(Locale.ROOT, "%3d%% %s/%s", (int) (fraction * 100), bytes(done), bytes(total)));
        if (seconds > 0 && done > 0) {
            double rate = done / seconds;
            s.append(' ').append(bytes((long) rate)).append("/s");
            if (done < total) {
                s.append(' ').append(duration((total - done) / rate)).append(" left");
            }
        }
        // a line longer than the terminal wraps, and a carriage return then redraws only its last part
        int room = width - s.length() - 1;
        if (room >= 8) {
            s.append(' ').append(label.length() <= room ? label : "..." + label.substring(label.length() - room + 3));
        }
        return s.length() <= width ? s.toString() : s.substring(0, width);
    }

    /** The terminal's width less one, from COLUMNS where the shell exports it, else 79. */
    static int lineWidth(String columns) {
        try {
            int c = Integer.parseInt(columns == null ? "" : columns.strip());
            return c >= 40 ? c - 1 : DEFAULT_WIDTH;
        } catch (NumberFormatException e) {
            return DEFAULT_WIDTH;
        }
    }

    static String bytes(long n) {
        if (n < 1000) {
            return n + " B";
        }
        String[] units = {"kB", "MB", "GB", "TB"};
        double v = n;
        int u = -1;
        while (v >= 999.95 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }
}
