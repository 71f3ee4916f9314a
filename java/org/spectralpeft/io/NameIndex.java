package org.spectralpeft.io;

/**
 * Position of each name in an array of names: an open-addressing table of ints. A checkpoint may hold
 * millions of small tensors, where a HashMap's node per entry would outweigh the tensors' own data.
 */
final class NameIndex {
    private final String[] names;
    private final int[] slots; // position + 1; 0 is empty
    private final int mask;

    private NameIndex(String[] names, int capacity) {
        this.names = names;
        int size = Integer.highestOneBit(Math.max(4, capacity * 2 - 1)) << 1; // load factor at most 1/2
        this.slots = new int[size];
        this.mask = size - 1;
    }

    /** The index of {@code names[0..count)}; throws on a repeated name, giving the positions of both. */
    static NameIndex of(String[] names, int count, DuplicateHandler onDuplicate) throws SafetensorsException {
        NameIndex index = new NameIndex(names, count);
        for (int i = 0; i < count; i++) {
            int previous = index.add(i);
            if (previous >= 0) {
                onDuplicate.duplicate(previous, i);
            }
        }
        return index;
    }

    interface DuplicateHandler {
        void duplicate(int first, int second) throws SafetensorsException;
    }

    // spreads String.hashCode's low bits, which cluster for names differing only in a trailing number
    private static int spread(int h) {
        h *= 0x9E3779B9;
        return h ^ (h >>> 16);
    }

    /** Adds position {@code i}; returns the position already holding its name, or -1. */
    private int add(int i) {
        String name = names[i];
        for (int s = spread(name.hashCode()) & mask; ; s = (s + 1) & mask) {
            int at = slots[s] - 1;
            if (at < 0) {
                slots[s] = i + 1;
                return -1;
            }
            if (names[at].equals(name)) {
                return at;
            }
        }
    }

    /** The position of {@code name}, or -1. */
    int find(String name) {
        for (int s = spread(name.hashCode()) & mask; ; s = (s + 1) & mask) {
            int at = slots[s] - 1;
            if (at < 0) {
                return -1;
            }
            if (names[at].equals(name)) {
                return at;
            }
        }
    }
}
