package org.spectralpeft.cpu;

import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Transform objects, and scratch arrays, kept for reuse per length. Building a transform costs more than
 * running it (JTransforms computes its twiddle tables, RealFft calibrates its inverse), and one must not be
 * used by two threads at once (they hold scratch arrays), so each use takes one and gives it back. Scratch
 * arrays are kept because the per-call alternative allocates (and zeroes) as much as the output. The pool
 * keeps at most as many per length as were ever in use at the same time. Its real transforms are tight
 * ({@link RealFft#RealFft(int, boolean)}), for callers that chain two transforms within 3e-7.
 */
public final class FftPool {
    private final Map<Integer, Queue<RealFft>> real = new ConcurrentHashMap<>();
    private final Map<Integer, Queue<ComplexFft>> complex = new ConcurrentHashMap<>();
    private final Map<Integer, Queue<float[]>> scratch = new ConcurrentHashMap<>();
    /** Batched transforms by length and block rows (length · 2¹⁶ + rows; rows below 2¹⁶). */
    private final Map<Long, Queue<BatchedRealFft>> batched = new ConcurrentHashMap<>();
    private final Map<Long, Queue<BatchedComplexFft>> batchedComplex = new ConcurrentHashMap<>();

    public RealFft takeReal(int n) {
        RealFft f = real.computeIfAbsent(n, k -> new ConcurrentLinkedQueue<>()).poll();
        return f != null ? f : new RealFft(n, true);
    }

    public void give(RealFft f) {
        real.get(f.length()).offer(f);
    }

    public ComplexFft takeComplex(int n) {
        ComplexFft f = complex.computeIfAbsent(n, k -> new ConcurrentLinkedQueue<>()).poll();
        return f != null ? f : new ComplexFft(n);
    }

    public void give(ComplexFft f) {
        complex.get(f.length()).offer(f);
    }

    /** A batched real inverse of length n for blocks of up to {@code rows} rows. */
    public BatchedRealFft takeBatched(int n, int rows) {
        BatchedRealFft f = batched.computeIfAbsent(batchedKey(n, rows), k -> new ConcurrentLinkedQueue<>()).poll();
        return f != null ? f : new BatchedRealFft(n, rows);
    }

    public void give(BatchedRealFft f) {
        batched.get(batchedKey(f.length(), f.maxRows())).offer(f);
    }

    /** A batched complex inverse of length n for blocks of up to {@code rows} rows. */
    public BatchedComplexFft takeBatchedComplex(int n, int rows) {
        BatchedComplexFft f =
                batchedComplex.computeIfAbsent(batchedKey(n, rows), k -> new ConcurrentLinkedQueue<>()).poll();
        return f != null ? f : new BatchedComplexFft(n, rows);
    }

    public void give(BatchedComplexFft f) {
        batchedComplex.get(batchedKey(f.length(), f.maxRows())).offer(f);
    }

    private static long batchedKey(int n, int rows) {
        return ((long) n << 16) | rows;
    }

    /** An array of {@code length} floats with arbitrary contents. */
    public float[] takeScratch(int length) {
        float[] a = scratch.computeIfAbsent(length, k -> new ConcurrentLinkedQueue<>()).poll();
        return a != null ? a : new float[length];
    }

    public void give(float[] a) {
        scratch.get(a.length).offer(a);
    }
}
