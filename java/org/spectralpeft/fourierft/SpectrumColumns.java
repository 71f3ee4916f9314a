package org.spectralpeft.fourierft;

import java.util.Arrays;

/**
 * The half-spectrum entries of a spec grouped by column v (0 ≤ v ≤ d_in/2) instead of by bin: column v
 * owns entries {@code start(v) .. start(v+1)-1}, entry e putting coefficient {@code coefficient(e)} (times
 * α/(2·d_out·d_in)) at row {@code row(e)}. Within a column, entries keep the bin order (rows ascending),
 * so a sum over them has a fixed order. {@code stepCos(e) + i·stepSin(e)} is e^{2πi·row(e)/d_out}
 * (float64, rounded once): the factor by which that entry's term advances from one row to the next.
 *
 * <p>Backends use it to compute the inverse transform down each column directly from its few entries,
 * G[p, v] = Σ_e c·e^{2πi·p·row(e)/d_out}, instead of running an FFT over a mostly-zero column. Immutable;
 * built once per {@link FourierFTSpec}.
 */
public final class SpectrumColumns {
    private final int[] start;
    private final int[] row;
    private final int[] coeff;
    private final float[] stepCos;
    private final float[] stepSin;

    private SpectrumColumns(int[] start, int[] row, int[] coeff, int dOut) {
        this.start = start;
        this.row = row;
        this.coeff = coeff;
        this.stepCos = new float[row.length];
        this.stepSin = new float[row.length];
        unitRoots(row, dOut, stepCos, stepSin);
    }

    /**
     * cos[i] + i·sin[i] = e^{2πi·m[i]/d} for exponents 0 ≤ m[i] &lt; d: float64 on the angle reduced to
     * (-π, π], rounded once (the twiddle steps the CUDA kernels advance by).
     *
     * @param m the exponents, each in [0, d)
     * @param d the transform length
     * @param cos receives the real parts, m.length elements
     * @param sin receives the imaginary parts, m.length elements
     */
    public static void unitRoots(int[] m, int d, float[] cos, float[] sin) {
        for (int i = 0; i < m.length; i++) {
            int r = 2 * (long) m[i] > d ? m[i] - d : m[i];
            double angle = 2 * Math.PI * r / d;
            cos[i] = (float) Math.cos(angle);
            sin[i] = (float) Math.sin(angle);
        }
    }

    static SpectrumColumns of(int dOut, int halfIn, SpectralGrouping g) {
        int h = halfIn;
        int[] start = new int[h + 1];
        for (int b = 0; b < g.bins(); b++) {
            start[g.position(b) % h + 1] += g.start(b + 1) - g.start(b);
        }
        for (int v = 0; v < h; v++) {
            start[v + 1] += start[v];
        }
        int entries = start[h];
        int[] row = new int[entries];
        int[] coeff = new int[entries];
        int[] next = Arrays.copyOf(start, h);
        for (int b = 0; b < g.bins(); b++) { // bins ascend by position = row·h + v: rows ascend in each column
            int v = g.position(b) % h;
            int u = g.position(b) / h;
            for (int e = g.start(b); e < g.start(b + 1); e++) {
                row[next[v]] = u;
                coeff[next[v]++] = g.coefficient(e);
            }
        }
        return new SpectrumColumns(start, row, coeff, dOut);
    }

    /**
     * Number of half-spectrum columns, d_in/2 + 1.
     *
     * @return number of columns
     */
    public int columns() {
        return start.length - 1;
    }

    /**
     * Number of entries over all columns.
     *
     * @return number of entries
     */
    public int entries() {
        return row.length;
    }

    /**
     * First entry of a column; {@code start(column + 1)} ends it.
     *
     * @param column the column v, 0 ≤ v ≤ columns()
     * @return the entry offset
     */
    public int start(int column) {
        return start[column];
    }

    /**
     * Row (frequency u) of an entry.
     *
     * @param entry the entry, 0 ≤ entry &lt; entries()
     * @return the row, in [0, d_out)
     */
    public int row(int entry) {
        return row[entry];
    }

    /**
     * Coefficient index of an entry.
     *
     * @param entry the entry, 0 ≤ entry &lt; entries()
     * @return the coefficient index
     */
    public int coefficient(int entry) {
        return coeff[entry];
    }

    /**
     * Real part of the entry's row step e^{2πi·row(e)/d_out}.
     *
     * @param entry the entry, 0 ≤ entry &lt; entries()
     * @return cos(2π·row(e)/d_out)
     */
    public float stepCos(int entry) {
        return stepCos[entry];
    }

    /**
     * Imaginary part of the entry's row step e^{2πi·row(e)/d_out}.
     *
     * @param entry the entry, 0 ≤ entry &lt; entries()
     * @return sin(2π·row(e)/d_out)
     */
    public float stepSin(int entry) {
        return stepSin[entry];
    }

    /**
     * Copies of the tables, for upload.
     *
     * @return columns() + 1 offsets
     */
    public int[] starts() {
        return start.clone();
    }

    /**
     * Row of each entry (copy).
     *
     * @return entries() rows
     */
    public int[] rows() {
        return row.clone();
    }

    /**
     * Coefficient index of each entry (copy).
     *
     * @return entries() coefficient indices
     */
    public int[] coefficients() {
        return coeff.clone();
    }

    /**
     * Real parts of the row steps (copy).
     *
     * @return entries() values
     */
    public float[] stepCosines() {
        return stepCos.clone();
    }

    /**
     * Imaginary parts of the row steps (copy).
     *
     * @return entries() values
     */
    public float[] stepSines() {
        return stepSin.clone();
    }
}
