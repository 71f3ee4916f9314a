package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaContext;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.fourierft.FourierFTSpec;

/**
 * The mixed batch's two gather/scatter kernels give the same bits: {@code fourierft_gather_scatter_mixed_rows}
 * (a token's coefficient row staged in shared memory, its bins in chunks) against
 * {@code fourierft_gather_scatter_mixed} (the row read per entry), on random spectra and a table of adapter rows,
 * with tokens of no adapter (row 0), runs of one adapter (a staged row reused), padding rows, both groupings
 * (forward and transposed), grids that stride over the tokens, and n up to the most the staged kernel takes.
 * Outputs start poisoned, so an element neither kernel writes fails. The kernels' results against the float64
 * reference are the mixed-batch tests' (CudaFourierFTTest and the backend contract).
 */
@Tag("gpu")
@ExtendWith(RequiresCuda.class)
class MixedGatherKernelsTest {
    private static CudaContext context;
    private static FourierFTKernels kernels;
    private static CudaStream stream;

    @BeforeAll
    static void open() {
        context = CudaContext.open(0);
        context.makeCurrent();
        kernels = new FourierFTKernels(context.computeCapability(), true);
        stream = context.createStream();
    }

    @AfterAll
    static void close() {
        if (context != null) {
            stream.close();
            kernels.close();
            context.close();
        }
    }

    private static DeviceBuffer upload(float[] values) {
        DeviceBuffer b = context.allocate(DType.FLOAT32, values.length);
        b.copyFrom(HostArray.float32(values));
        return b;
    }

    /** Each row's own scale (its adapter's α differing row to row), as the pool's device copy holds them. */
    private static float[] rowHalfScales(FourierFTSpec spec, int rows) {
        float[] halfScales = new float[rows];
        for (int r = 0; r < rows; r++) {
            halfScales[r] = 0.5f * spec.withAlpha(0.7f + 0.3f * r).scale();
        }
        return halfScales;
    }

    private static float[] download(DeviceBuffer b) {
        HostArray h = HostArray.allocate(DType.FLOAT32, Math.toIntExact(b.array().length()));
        b.copyTo(h);
        return h.toFloats();
    }

    @ParameterizedTest(name = "{0}x{1} n={2} tokens={3}/{4} transposed={5}")
    @CsvSource({
        "1201, 700, 60, 37, 64, false",
        "1201, 700, 60, 37, 64, true",
        "37, 29, 20, 23, 23, false",
        "600, 513, 12288, 9, 16, false",
        "600, 513, 12288, 9, 16, true",
        "2, 3, 1, 5, 8, true",
    })
    void theStagedGatherGivesThePerEntryBits(int dOut, int dIn, int n, int tokens, int rows, boolean transposed) {
        TestData data = new TestData();
        FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, n, data.seed, 0.7f);
        int adapters = 5;
        int inBins = transposed ? spec.halfOut() : spec.halfIn();
        int outBins = transposed ? spec.halfIn() : spec.halfOut();
        int[] tokenRow = new int[tokens];
        for (int t = 0; t < tokens; t++) { // runs of one row, and tokens without one
            tokenRow[t] = t % 7 == 3 ? 0 : t > 0 && t % 3 != 0 ? tokenRow[t - 1] : 1 + data.nextInt(adapters);
        }
        tokenRow[tokens - 1] = Math.max(tokenRow[tokens - 1], 1);
        float[] rowBits = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            rowBits[t] = Float.intBitsToFloat(tokenRow[t]);
        }
        float[] poison = new float[2 * rows * outBins];
        java.util.Arrays.fill(poison, Float.NaN);
        try (DeviceSpecTables tables = new DeviceSpecTables(spec);
             DeviceBuffer in = upload(data.gaussian(2 * rows * inBins));
             DeviceBuffer table = upload(data.gaussian(adapters * n));
             DeviceBuffer rowsOf = upload(rowBits);
             DeviceBuffer halfScales = upload(rowHalfScales(spec, adapters));
             DeviceBuffer perEntry = upload(poison);
             DeviceBuffer staged = upload(poison)) {
            DeviceSpecTables.Grouping g = transposed ? tables.transposed : tables.forward;
            kernels.gatherScatterMixedPerEntry(in.array().address(), inBins, perEntry.array().address(), outBins,
                    outBins, table.array().address(), n, rowsOf.array().address(), halfScales.array().address(), g,
                    tokens, rows, rows, stream);
            stream.synchronize();
            float[] want = download(perEntry);
            for (int t = 0; t < rows; t++) {
                boolean none = t >= tokens || tokenRow[t] == 0;
                for (int i = 0; i < 2 * outBins; i++) {
                    float v = want[2 * t * outBins + i];
                    assertFalse(Float.isNaN(v), "token " + t + ", value " + i + " not written" + data.tag());
                    if (none) {
                        assertEquals(0f, v, "token " + t + " has no adapter here" + data.tag());
                    }
                }
            }
            for (int gridY : new int[] {rows, 3, 1}) {
                staged.copyFrom(HostArray.float32(poison));
                kernels.gatherScatterMixedStaged(in.array().address(), inBins, staged.array().address(), outBins,
                        outBins, table.array().address(), n, rowsOf.array().address(), halfScales.array().address(), g,
                        tokens, rows, gridY, stream);
                stream.synchronize();
                assertArrayEquals(want, download(staged), "staged rows, " + gridY + " blocks in y" + data.tag());
            }
        }
    }
}
