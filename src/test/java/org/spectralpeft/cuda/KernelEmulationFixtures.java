package org.spectralpeft.cuda;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.spectralpeft.TestData;
import org.spectralpeft.api.FourierFTSpec;
import org.spectralpeft.api.SpectralGrouping;
import org.spectralpeft.api.SpectrumColumns;

/**
 * Writes the inputs of native-build/kernel-emulation/check_kernels.cpp, which runs the real kernel sources
 * on the CPU: for each case, random coefficients, inputs and gradients, the tables of the specs the CUDA
 * backend hands to the kernels exactly as {@link DeviceSpecTables} uploads them (for materialize the
 * transposed spec when d_in = 1), and the chunk plan {@link CudaFourierFT} would walk for a given budget.
 * Text, floats in hexadecimal.
 *
 * <p>usage: KernelEmulationFixtures OUT_FILE [SEED]
 */
public final class KernelEmulationFixtures {
    /**
     * d_out, d_in, n, layers, chunk budget in rows, tokens of the forward and backward. Tokens: more than
     * one 64-token tile of the ∂L/∂c reduction; 70 and 129 are rounded up to a plan batch of 128 and 256
     * (zero padding rows), 64 and 300 are not.
     */
    private static final int[][] CASES = {
        {63, 50, 40, 3, 20, 70}, {301, 201, 250, 2, 40, 300}, {1, 9, 5, 2, 16, 70}, {37, 29, 134, 5, 80, 129},
        {17, 2, 30, 1, 16, 64}, {8, 1, 3, 2, 16, 70}, {256, 301, 700, 1, 100, 70}, {40, 12, 400, 1, 16, 64},
    };

    private KernelEmulationFixtures() {
    }

    public static void main(String[] args) throws IOException {
        TestData data = args.length > 1 ? new TestData(Long.parseLong(args[1])) : new TestData();
        try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(Path.of(args[0])))) {
            out.println("seed " + data.seed);
            for (int[] c : CASES) {
                FourierFTSpec spec = FourierFTSpec.fromSeed(c[0], c[1], c[2], data.seed, 150f);
                FourierFTSpec s = spec.dIn() == 1 && spec.dOut() > 1 ? spec.transposed() : spec;
                int layers = c[3];
                int tokens = c[5];
                out.printf("case %dx%d_n%d_L%d_T%d layers %d tokens %d batch %d%n", c[0], c[1], c[2], layers, tokens,
                        layers, tokens, FftPlans.paddedBatch(tokens));
                floats(out, "coeffs", data.gaussian(layers * s.n()));
                floats(out, "x", data.gaussian(tokens * spec.dIn()));
                floats(out, "gy", data.gaussian(tokens * spec.dOut()));
                floats(out, "gradDeltaW", data.gaussian(s.dOut() * s.dIn()));
                spec(out, "spec2d", s); // what materialize, merge and gradCoefficients use
                List<ColumnChunks.Chunk> chunks = ColumnChunks.plan(layers, s.dOut(), s.halfIn(), 8L * s.halfIn() * c[4]);
                out.print("chunks " + chunks.size());
                for (ColumnChunks.Chunk k : chunks) {
                    out.printf(" %d %d %d %d", k.layerBegin(), k.layers(), k.rowBegin(), k.rows());
                }
                out.println();
                GradientColumns grad = GradientColumns.of(s);
                ints(out, "gradOrder", grad.order);
                floats(out, "gradStepCos", grad.stepCos);
                floats(out, "gradStepSin", grad.stepSin);
                List<ColumnChunks.Chunk> gradChunks = ColumnChunks.plan(1, s.dOut(), s.halfIn(), 8L * s.halfIn() * c[4]);
                out.print("gradChunks " + gradChunks.size());
                for (ColumnChunks.Chunk k : gradChunks) {
                    out.printf(" %d %d %d %d", k.layerBegin(), k.layers(), k.rowBegin(), k.rows());
                }
                out.println();
                spec(out, "spec", spec); // what forward and backward use
            }
            out.println("end");
        }
    }

    /** A spec's dimensions and every table DeviceSpecTables uploads. */
    private static void spec(PrintWriter out, String name, FourierFTSpec s) {
        out.printf("%s %d %d %d %s%n", name, s.dOut(), s.dIn(), s.n(), Float.toHexString(s.scale()));
        ints(out, "rows", s.rows());
        ints(out, "cols", s.cols());
        SpectrumColumns cols = s.halfSpectrumColumns();
        ints(out, "colStart", cols.starts());
        ints(out, "colRow", cols.rows());
        ints(out, "colCoeff", cols.coefficients());
        floats(out, "stepCos", cols.stepCosines());
        floats(out, "stepSin", cols.stepSines());
        SpectralGrouping half = s.halfSpectrumGrouping();
        ints(out, "halfPos", half.positions());
        ints(out, "halfStart", half.starts());
        ints(out, "halfCoeff", half.entryCoefficients());
        for (SpectralGrouping g : new SpectralGrouping[] {s.forwardGrouping(), s.transposedGrouping()}) {
            ints(out, "groupStart", g.starts());
            ints(out, "groupCoeff", g.entryCoefficients());
            ints(out, "groupSrc", g.entrySources());
        }
        ints(out, "deltaGradBin", s.deltaGradientBins());
        ints(out, "xBin", s.inputBins());
        ints(out, "gyBin", s.outputGradientBins());
        floats(out, "imSign", s.imaginarySigns());
    }

    private static void ints(PrintWriter out, String name, int[] values) {
        out.print(name + " " + values.length);
        for (int v : values) {
            out.print(" " + v);
        }
        out.println();
    }

    private static void floats(PrintWriter out, String name, float[] values) {
        out.print(name + " " + values.length);
        for (float v : values) {
            out.print(" " + Float.toHexString(v));
        }
        out.println();
    }
}
