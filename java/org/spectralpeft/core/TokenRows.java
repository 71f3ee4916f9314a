package org.spectralpeft.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The row bookkeeping of mixed batches, in which tokens of one batch use different adapters: the tokens of each
 * adapter, and their rows gathered into a block and added back. Every family's host-array mixed batch runs
 * an adapter's tokens through its single-adapter path this way.
 */
public final class TokenRows {
    private TokenRows() {
    }

    /**
     * The tokens of each distinct key, in the order the keys first appear, each list in token order; null keys
     * (tokens without an adapter) are left out. Keys compare by equals (identity for arrays and for adapters).
     *
     * @param keys one key per token, or null
     * @param <K> the key type
     * @return key → its tokens
     */
    public static <K> Map<K, List<Integer>> byKey(K[] keys) {
        Map<K, List<Integer>> groups = new LinkedHashMap<>();
        for (int t = 0; t < keys.length; t++) {
            if (keys[t] != null) {
                groups.computeIfAbsent(keys[t], k -> new ArrayList<>()).add(t);
            }
        }
        return groups;
    }

    /**
     * The tokens of each slot (a call's distinct adapters, numbered in order of first use), by a counting sort.
     *
     * @param slotOfToken per token its slot in 0 .. slots − 1, or −1 for a token in none
     * @param slots the number of slots
     * @return each slot's tokens, in token order
     */
    public static Groups bySlot(int[] slotOfToken, int slots) {
        int[] starts = new int[slots + 1];
        for (int s : slotOfToken) {
            if (s >= 0) {
                starts[s + 1]++;
            }
        }
        for (int s = 0; s < slots; s++) {
            starts[s + 1] += starts[s];
        }
        int[] next = Arrays.copyOf(starts, slots);
        int[] tokens = new int[starts[slots]];
        for (int t = 0; t < slotOfToken.length; t++) {
            if (slotOfToken[t] >= 0) {
                tokens[next[slotOfToken[t]]++] = t;
            }
        }
        return new Groups(tokens, starts);
    }

    /**
     * Tokens grouped by slot ({@link #bySlot}): slot s's are {@code tokens[starts[s] .. starts[s + 1])}, in token
     * order; a token in no slot is in none.
     *
     * @param tokens the tokens in a slot, slot by slot
     * @param starts slots + 1 ascending offsets into tokens
     */
    public record Groups(int[] tokens, int[] starts) {
        /**
         * @param s a slot
         * @return its tokens, in token order, as a list (for {@link #gather} and {@link #addInto})
         */
        public List<Integer> tokensOf(int s) {
            List<Integer> rows = new ArrayList<>(starts[s + 1] - starts[s]);
            for (int i = starts[s]; i < starts[s + 1]; i++) {
                rows.add(tokens[i]);
            }
            return rows;
        }
    }

    /**
     * The given rows of a, in order, as one float32 block.
     *
     * @param a rows of {@code width} elements
     * @param rows the rows to take
     * @param width elements per row
     * @return rows.size() × width floats
     */
    public static float[] gather(HostArray a, List<Integer> rows, int width) {
        float[] out = new float[rows.size() * width];
        for (int i = 0; i < rows.size(); i++) {
            a.read(rows.get(i) * width, out, i * width, width);
        }
        return out;
    }

    /**
     * dst's given rows += the block's rows, in order, rounded once into dst's dtype.
     *
     * @param block rows.size() × width floats
     * @param rows where each block row goes
     * @param width elements per row
     * @param dst rows of {@code width} elements
     */
    public static void addInto(float[] block, List<Integer> rows, int width, HostArray dst) {
        for (int i = 0; i < rows.size(); i++) {
            dst.write(rows.get(i) * width, block, i * width, width, WriteMode.ADD);
        }
    }
}
