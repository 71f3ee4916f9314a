package org.spectralpeft.fourierft;

import java.util.Arrays;

/**
 * Coefficient contributions grouped by the spectral bin they land in (compressed sparse rows), so that
 * a kernel can compute every bin with one thread, summing in a fixed order: no atomics, bit-identical
 * repeats. Immutable; built once per {@link FourierFTSpec}.
 *
 * <p>Bin {@code b} ({@code 0 <= b < bins()}) sits at {@code position(b)} and owns entries
 * {@code start(b) .. start(b+1)-1}; entry {@code e} reads coefficient {@code entryCoeff[e]} and, for the
 * unmaterialized forward, source bin {@code entrySrc[e] >> 1} with its imaginary part negated when
 * {@code entrySrc[e] & 1} is set.
 */
public final class SpectralGrouping {
    private final int[] position;
    private final int[] start;
    private final int[] entryCoeff;
    private final int[] entrySrc;

    private SpectralGrouping(int[] position, int[] start, int[] entryCoeff, int[] entrySrc) {
        this.position = position;
        this.start = start;
        this.entryCoeff = entryCoeff;
        this.entrySrc = entrySrc;
    }

    /**
     * Number of (non-empty, for sparse groupings) bins.
     *
     * @return number of bins
     */
    public int bins() {
        return start.length - 1;
    }

    /**
     * Number of entries (contributions) over all bins.
     *
     * @return number of entries
     */
    public int entries() {
        return entryCoeff.length;
    }

    /**
     * Bin positions (copy). For a dense grouping this is 0..bins-1.
     *
     * @return the positions, one per bin
     */
    public int[] positions() {
        return position.clone();
    }

    /**
     * Entry offsets (copy): bin b owns entries starts[b] .. starts[b+1]-1.
     *
     * @return bins() + 1 offsets
     */
    public int[] starts() {
        return start.clone();
    }

    /**
     * Coefficient index of each entry (copy).
     *
     * @return entries() coefficient indices
     */
    public int[] entryCoefficients() {
        return entryCoeff.clone();
    }

    /**
     * Packed source bins ({@code bin << 1 | negateImag}); all zero for the materialize grouping.
     *
     * @return entries() packed sources
     */
    public int[] entrySources() {
        return entrySrc.clone();
    }

    /**
     * Spectral position of a bin.
     *
     * @param bin the bin, 0 ≤ bin &lt; bins()
     * @return its position
     */
    public int position(int bin) {
        return position[bin];
    }

    /**
     * First entry of a bin; {@code start(bin + 1)} ends it.
     *
     * @param bin the bin, 0 ≤ bin ≤ bins()
     * @return the entry offset
     */
    public int start(int bin) {
        return start[bin];
    }

    /**
     * Coefficient index that an entry reads.
     *
     * @param entry the entry, 0 ≤ entry &lt; entries()
     * @return the coefficient index
     */
    public int coefficient(int entry) {
        return entryCoeff[entry];
    }

    /**
     * Source bin an entry reads in the unmaterialized forward.
     *
     * @param entry the entry, 0 ≤ entry &lt; entries()
     * @return the source bin
     */
    public int sourceBin(int entry) {
        return entrySrc[entry] >> 1;
    }

    /**
     * Whether an entry negates the imaginary part of its source bin.
     *
     * @param entry the entry, 0 ≤ entry &lt; entries()
     * @return true if it reads the conjugate
     */
    public boolean negatesImag(int entry) {
        return (entrySrc[entry] & 1) != 0;
    }

    /**
     * Groups contributions (position, coefficient, packed source) by position, keeping the order in
     * which they were added within a bin. With {@code dense}, every position in [0, positions) gets a
     * bin (empty ones included), so {@code position(b) == b}; otherwise only occupied positions do.
     */
    static SpectralGrouping build(int count, int[] pos, int[] coeff, int[] src, int positions, boolean dense) {
        long[] keys = new long[count];
        for (int e = 0; e < count; e++) {
            keys[e] = ((long) pos[e] << 32) | e;
        }
        Arrays.sort(keys);
        int[] entryCoeff = new int[count];
        int[] entrySrc = new int[count];
        for (int i = 0; i < count; i++) {
            int e = (int) keys[i];
            entryCoeff[i] = coeff[e];
            entrySrc[i] = src[e];
        }
        if (dense) {
            int[] start = new int[positions + 1];
            for (int e = 0; e < count; e++) {
                start[pos[e] + 1]++;
            }
            for (int b = 0; b < positions; b++) {
                start[b + 1] += start[b];
            }
            int[] position = new int[positions];
            Arrays.setAll(position, b -> b);
            return new SpectralGrouping(position, start, entryCoeff, entrySrc);
        }
        int distinct = 0;
        for (int i = 0; i < count; i++) {
            if (i == 0 || (keys[i] >>> 32) != (keys[i - 1] >>> 32)) {
                distinct++;
            }
        }
        int[] position = new int[distinct];
        int[] start = new int[distinct + 1];
        int b = -1;
        for (int i = 0; i < count; i++) {
            if (i == 0 || (keys[i] >>> 32) != (keys[i - 1] >>> 32)) {
                position[++b] = (int) (keys[i] >>> 32);
                start[b] = i;
            }
        }
        start[distinct] = count;
        return new SpectralGrouping(position, start, entryCoeff, entrySrc);
    }
}
