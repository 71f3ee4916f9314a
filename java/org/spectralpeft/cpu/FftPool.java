package org.spectralpeft.cpu;

import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Transform objects kept for reuse, per length. Building one costs more than a transform of that length
 * (JTransforms computes its twiddle tables, RealFft calibrates its inverse), and one must not be used by
 * two threads at once (they hold scratch arrays), so each use takes one and gives it back. The pool keeps
 * at most as many per length as were ever in use at the same time.
 */
final class FftPool {
    private final Map<Integer, Queue<RealFft>> real = new ConcurrentHashMap<>();
    private final Map<Integer, Queue<ComplexFft>> complex = new ConcurrentHashMap<>();

    RealFft takeReal(int n) {
        RealFft f = real.computeIfAbsent(n, k -> new ConcurrentLinkedQueue<>()).poll();
        return f != null ? f : new RealFft(n);
    }

    void give(RealFft f) {
        real.get(f.length()).offer(f);
    }

    ComplexFft takeComplex(int n) {
        ComplexFft f = complex.computeIfAbsent(n, k -> new ConcurrentLinkedQueue<>()).poll();
        return f != null ? f : new ComplexFft(n);
    }

    void give(ComplexFft f) {
        complex.get(f.length()).offer(f);
    }
}
