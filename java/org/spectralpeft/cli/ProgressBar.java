package org.spectralpeft.cli;

import java.io.PrintStream;

/** A one-line progress bar redrawn in place; silent when the output is not a terminal. */
final class ProgressBar {
    private static final int WIDTH = 30;
    private final PrintStream out;
    private final boolean enabled;
    private int lastLength;

    ProgressBar(PrintStream out, boolean enabled) {
        this.out = out;
        this.enabled = enabled;
    }

    /** A bar on standard error, drawn only when the program runs in a terminal. */
    static ProgressBar onTerminal() {
        return new ProgressBar(System.err, System.console() != null);
    }

    void update(int done, int total, String label) {
        if (!enabled) {
            return;
        }
        int filled = total == 0 ? WIDTH : (int) ((long) done * WIDTH / total);
        String line = "[" + "#".repeat(filled) + " ".repeat(WIDTH - filled) + "] " + done + "/" + total + "  " + label;
        if (line.length() > 110) {
            line = line.substring(0, 107) + "...";
        }
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
}
