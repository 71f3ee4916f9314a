package org.spectralpeft.fourierft;

import java.util.HashMap;
import java.util.Map;

/**
 * The spectral index set Hugging Face PEFT draws for a FourierFT layer:
 * {@code torch.randperm(d_out * d_in, generator=torch.Generator().manual_seed(seed))[:n]}.
 *
 * <p>PyTorch's CPU randperm for sizes below 2³²/20 (the only path reproduced here) is a forward
 * Fisher–Yates shuffle driven by MT19937: {@code r = [0..N-1]; for i in 0..N-2: z = next32() % (N-i);
 * swap(r[i], r[i+z])}. Position i is final after step i, so the first n entries need only n steps
 * and a sparse record of the positions already swapped — O(n) time and memory, not O(N).
 *
 * <p>Seeds: {@code manual_seed} takes any integer in [-2^63, 2^64-1] as 64 bits (a negative one as its
 * two's complement), and PyTorch's MT19937 is seeded with {@code init_genrand} of the low 32 bits. A Java
 * {@code long} holds exactly those 64 bits, so every long is a valid seed: -1 is PyTorch's -1 and 2^64-1.
 */
public final class PeftIndices {
    /** Largest d_out·d_in for which PyTorch's randperm takes the 32-bit path reproduced here. */
    public static final long MAX_SIZE = (1L << 32) / 20 - 1;

    private PeftIndices() {
    }

    /**
     * The first {@code n} entries of PyTorch's {@code randperm(size)} under {@code manual_seed(seed)}.
     *
     * @param size the permutation length d_out·d_in, in [1, MAX_SIZE]
     * @param n number of entries wanted, in [0, size]
     * @param seed PyTorch's seed, as its 64 bits
     * @return n distinct flat indices in [0, size)
     * @throws IllegalArgumentException if size or n is out of range
     */
    public static int[] randpermPrefix(long size, int n, long seed) {
        if (size < 1 || size > MAX_SIZE) {
            throw new IllegalArgumentException("randperm size " + size + " is outside [1, " + MAX_SIZE
                    + "], where PyTorch's CPU randperm is reproduced exactly");
        }
        if (n < 0 || n > size) {
            throw new IllegalArgumentException("n = " + n + " must be in [0, " + size + "]");
        }
        Mt19937 mt = new Mt19937(seed);
        Map<Integer, Integer> moved = new HashMap<>();
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            if (i == size - 1) { // the last position takes whatever is left; no draw
                out[i] = moved.getOrDefault(i, i);
                break;
            }
            long z = Integer.toUnsignedLong(mt.next32()) % (size - i);
            int j = (int) (i + z);
            int atI = moved.getOrDefault(i, i);
            int atJ = moved.getOrDefault(j, j);
            moved.put(j, atI);
            out[i] = atJ;
        }
        return out;
    }

    /** MT19937 with the reference {@code init_genrand} seeding of the seed's low 32 bits, as PyTorch seeds it. */
    static final class Mt19937 {
        private final int[] mt = new int[624];
        private int index = 624;

        Mt19937(long seed) {
            mt[0] = (int) seed;
            for (int i = 1; i < 624; i++) {
                mt[i] = 1812433253 * (mt[i - 1] ^ (mt[i - 1] >>> 30)) + i;
            }
        }

        int next32() {
            if (index >= 624) {
                twist();
            }
            int y = mt[index++];
            y ^= y >>> 11;
            y ^= (y << 7) & 0x9D2C5680;
            y ^= (y << 15) & 0xEFC60000;
            y ^= y >>> 18;
            return y;
        }

        private void twist() {
            for (int i = 0; i < 624; i++) {
                int y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7FFFFFFF);
                int next = mt[(i + 397) % 624] ^ (y >>> 1);
                mt[i] = (y & 1) != 0 ? next ^ 0x9908B0DF : next;
            }
            index = 0;
        }
    }
}
