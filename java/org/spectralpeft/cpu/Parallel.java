package org.spectralpeft.cpu;

import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Work split into fixed chunks on the common fork-join pool. The chunks do not depend on the number of
 * threads, so a caller that reduces per-chunk partial results in chunk order gets the same bits on every
 * machine.
 */
public final class Parallel {
    private Parallel() {
    }

    /** The work of one chunk: the half-open range [from, to). */
    public interface Range {
        void run(int from, int to);
    }

    /**
     * Runs body over [0, count) in chunks of {@code chunk} (the last one shorter), in parallel.
     *
     * @param count the number of items
     * @param chunk items per chunk, at least 1
     * @param body the work of one chunk
     */
    public static void inChunks(int count, int chunk, Range body) {
        int chunks = chunks(count, chunk);
        IntConsumer task = c -> body.run(c * chunk, Math.min(count, (c + 1) * chunk));
        if (chunks == 1) {
            task.accept(0);
        } else {
            IntStream.range(0, chunks).parallel().forEach(task);
        }
    }

    /**
     * The number of chunks {@link #inChunks} makes: chunk c covers [c·chunk, min(count, (c+1)·chunk)).
     *
     * @param count the number of items
     * @param chunk items per chunk, at least 1
     * @return ⌈count / chunk⌉
     */
    public static int chunks(int count, int chunk) {
        return (count + chunk - 1) / chunk;
    }
}
