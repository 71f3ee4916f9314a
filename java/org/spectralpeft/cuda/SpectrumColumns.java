package org.spectralpeft.cuda;

import org.spectralpeft.api.FourierFTSpec;
import org.spectralpeft.api.SpectralGrouping;

/**
 * The half-spectrum entries of a spec grouped by column v (0 ≤ v ≤ d_in/2) instead of by bin: column v
 * owns entries {@code start[v] .. start[v+1]-1}, entry e putting coefficient {@code coeff[e]} (times
 * α/(2·d_out·d_in)) at row {@code row[e]}; {@code stepCos[e] + i·stepSin[e]} is e^{2πi·row[e]/d_out}, the
 * factor by which that entry's twiddle advances from one row to the next (float64, then rounded once). Within a column, entries keep the bin order (by row), so a sum
 * over them has a fixed order. This is the table of the column-synthesis kernel (see
 * {@link CudaFourierFT}'s materialize), which computes the inverse transform down each column directly
 * from these few entries instead of running an FFT over a mostly-zero spectrum.
 */
final class SpectrumColumns {
    final int[] start;
    final int[] row;
    final int[] coeff;
    final float[] stepCos;
    final float[] stepSin;

    private SpectrumColumns(int[] start, int[] row, int[] coeff, int dOut) {
        this.start = start;
        this.row = row;
        this.coeff = coeff;
        this.stepCos = new float[row.length];
        this.stepSin = new float[row.length];
        for (int e = 0; e < row.length; e++) {
            int r = 2 * (long) row[e] > dOut ? row[e] - dOut : row[e]; // angle in (-π, π]
            double angle = 2 * Math.PI * r / dOut;
            stepCos[e] = (float) Math.cos(angle);
            stepSin[e] = (float) Math.sin(angle);
        }
    }

    static SpectrumColumns of(FourierFTSpec spec) {
        SpectralGrouping g = spec.halfSpectrumGrouping();
        int h = spec.halfIn();
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
        int[] next = java.util.Arrays.copyOf(start, h);
        for (int b = 0; b < g.bins(); b++) { // bins ascend by position = row·h + v: rows ascend in each column
            int v = g.position(b) % h;
            int u = g.position(b) / h;
            for (int e = g.start(b); e < g.start(b + 1); e++) {
                row[next[v]] = u;
                coeff[next[v]++] = g.coefficient(e);
            }
        }
        return new SpectrumColumns(start, row, coeff, spec.dOut());
    }

    int columns() {
        return start.length - 1;
    }

    int entries() {
        return row.length;
    }
}
