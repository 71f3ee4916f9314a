package org.spectralpeft.core;

import java.util.Arrays;

/**
 * int id → non-negative int, without boxing: open addressing with linear probes and Fibonacci hashing (consecutive
 * ids spread apart), kept at most half full, grown by doubling. A slot holds value + 1, 0 when empty, so a new table
 * needs no fill. Used per call where a batch meets thousands of adapters (a map of boxed ids would cost a scattered
 * object per id). Not thread-safe.
 */
public final class IdTable {
    private int bits;
    private int[] keys;
    private int[] values;
    private int size;

    /** @param expected how many ids it will likely hold (it grows past that) */
    public IdTable(int expected) {
        bits = Math.min(30, Math.max(4, 33 - Integer.numberOfLeadingZeros(Math.max(1, expected)))); // ≥ 2 × expected
        keys = new int[1 << bits];
        values = new int[1 << bits];
    }

    private int slot(int id) {
        int mask = keys.length - 1;
        int h = (id * 0x9E3779B9) >>> (32 - bits);
        while (values[h] != 0 && keys[h] != id) {
            h = h + 1 & mask;
        }
        return h;
    }

    /**
     * @param id any int
     * @return the value last put for id, or −1
     */
    public int get(int id) {
        return values[slot(id)] - 1;
    }

    /**
     * Maps id to value, replacing any value it had.
     *
     * @param id any int
     * @param value ≥ 0
     */
    public void put(int id, int value) {
        int h = slot(id);
        if (values[h] == 0) {
            if (2 * (size + 1) > keys.length) {
                grow();
                h = slot(id);
            }
            size++;
        }
        keys[h] = id;
        values[h] = value + 1;
    }

    /** Forgets every id. */
    public void clear() {
        if (size > 0) {
            Arrays.fill(values, 0);
            size = 0;
        }
    }

    private void grow() {
        int[] oldKeys = keys;
        int[] oldValues = values;
        bits++;
        keys = new int[1 << bits];
        values = new int[1 << bits];
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldValues[i] != 0) {
                int h = slot(oldKeys[i]);
                keys[h] = oldKeys[i];
                values[h] = oldValues[i];
            }
        }
    }
}
