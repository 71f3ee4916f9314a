package org.spectralpeft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProgressBarTest {
    @TempDir
    Path tmp;

    @Test
    void lineShowsBytesRateAndTimeLeft() {
        String name = "model.layers.0.self_attn.q_proj.weight";
        assertEquals("[####            ]  25% 250.0 MB/1.0 GB 125.0 MB/s 0:06 left " + name,
                ProgressBar.line(250_000_000L, 1_000_000_000L, 2.0, name, 120));
        // the name is cut from the left to fit the terminal's width
        String cut = ProgressBar.line(250_000_000L, 1_000_000_000L, 2.0, name, 79);
        assertEquals(79, cut.length());
        assertTrue(cut.endsWith("q_proj.weight") && cut.contains(" left ..."), cut);
        // nothing known about the rate yet; at the end, no time left
        assertEquals("[                ]   0% 0 B/1.0 kB a", ProgressBar.line(0, 1000, 0, "a", 79));
        assertEquals("[################] 100% 1.0 kB/1.0 kB 2.0 kB/s a", ProgressBar.line(1000, 1000, 0.5, "a", 79));
        assertTrue(ProgressBar.line(1, 2, 1, "x".repeat(500), 40).length() <= 40);
        assertEquals(79, ProgressBar.lineWidth(null));
        assertEquals(79, ProgressBar.lineWidth("wide"));
        assertEquals(131, ProgressBar.lineWidth("132"));
    }

    @Test
    void unitsAndDurations() {
        assertEquals("999 B", ProgressBar.bytes(999));
        assertEquals("1.5 kB", ProgressBar.bytes(1500));
        assertEquals("1.0 MB", ProgressBar.bytes(999_999));
        assertEquals("14.2 GB", ProgressBar.bytes(14_200_000_000L));
        assertEquals("0:59", ProgressBar.duration(59.4));
        assertEquals("2:05", ProgressBar.duration(125));
        assertEquals("1:01:01", ProgressBar.duration(3661));
    }

    /** One large tensor after many small ones: the share follows the bytes, not the tensor count. */
    @Test
    void weightedByBytesAndThrottled() {
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        AtomicLong clock = new AtomicLong();
        ProgressBar bar = new ProgressBar(new PrintStream(sink, true, StandardCharsets.UTF_8), true, 1_000_000, clock::get);
        for (int i = 0; i < 10; i++) {
            clock.addAndGet(200_000_000L);
            bar.advance(1_000, "small." + i);
        }
        String frames = sink.toString(StandardCharsets.UTF_8);
        assertTrue(frames.contains("  1% 10.0 kB/1.0 MB"), frames); // 10 of 11 tensors, 1% of the bytes
        bar.advance(990_000, "large"); // within 100 ms of the last frame, but the last one is always drawn
        frames = sink.toString(StandardCharsets.UTF_8);
        assertTrue(frames.contains("100% 1.0 MB/1.0 MB") && frames.strip().endsWith("large"), frames);

        sink.reset();
        ProgressBar fast = new ProgressBar(new PrintStream(sink, true, StandardCharsets.UTF_8), true, 1_000_000, clock::get);
        for (int i = 0; i < 50; i++) {
            fast.advance(1_000, "t" + i); // no time passes: only the first frame is drawn
        }
        assertEquals(1, sink.toString(StandardCharsets.UTF_8).chars().filter(c -> c == '\r').count());
        fast.finish();
        assertTrue(sink.toString(StandardCharsets.UTF_8).endsWith("\r"));
    }

    @Test
    void disabledDrawsNothing() {
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(sink, true, StandardCharsets.UTF_8), false, 10, System::nanoTime);
        bar.advance(10, "a");
        bar.finish();
        assertEquals(0, sink.size());
    }

    @Test
    void terminalRule() throws IOException {
        assertTrue(ProgressBar.isTerminalName("/dev/pts/3"));
        assertTrue(ProgressBar.isTerminalName("/dev/tty1"));
        assertTrue(ProgressBar.isTerminalName("/dev/ttyS0"));
        assertTrue(ProgressBar.isTerminalName("/dev/console"));
        assertFalse(ProgressBar.isTerminalName("/dev/null"));
        assertFalse(ProgressBar.isTerminalName("pipe:[4242]"));
        assertFalse(ProgressBar.isTerminalName("/home/me/err.log"));
        assertFalse(ProgressBar.isTerminalName("/dev/pts-not/log"));

        // standard error redirected to a file, to /dev/null, or without TERM: no bar
        Path log = Files.createFile(tmp.resolve("err.log"));
        Path toLog = Files.createSymbolicLink(tmp.resolve("fd-log"), log);
        assertFalse(ProgressBar.isTerminal("xterm-256color", toLog));
        Path toNull = Files.createSymbolicLink(tmp.resolve("fd-null"), Path.of("/dev/null"));
        assertFalse(ProgressBar.isTerminal("xterm-256color", toNull));
        assertFalse(ProgressBar.isTerminal(null, toLog));
        assertFalse(ProgressBar.isTerminal("dumb", toLog));
    }
}
