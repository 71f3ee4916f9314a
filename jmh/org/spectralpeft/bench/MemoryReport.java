package org.spectralpeft.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import org.spectralpeft.Backends;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.cuda.CudaStream;
import org.spectralpeft.cuda.DeviceBuffer;
import org.spectralpeft.fourierft.FourierFTSpec;
import org.spectralpeft.fourierft.cuda.CudaFourierFT;

/**
 * Peak device memory of materialize, as the driver counts it: for each case, the pool's high-water mark
 * over one call (after a warm-up call, so plans and tables exist), next to what
 * {@link CudaFourierFT#materializeScratch} says the call takes, the output, and the half spectra
 * (the allowance of the target "output + half spectrum + cuFFT work area"). Writes {@code memory.json}
 * (read by bench/side_by_side.py) and prints a table. CUDA only.
 *
 * <p>usage: MemoryReport OUT.json
 */
public final class MemoryReport {
    private record Case(String op, int dOut, int dIn, int n, int layers, DType dtype) {
    }

    private static final Case[] CASES = {
        new Case("materialize", 768, 768, 1000, 1, DType.FLOAT32),
        new Case("materialize", 4096, 4096, 1000, 1, DType.FLOAT32),
        new Case("materialize", 4096, 4096, 10000, 1, DType.FLOAT32),
        new Case("materialize", 4096, 4096, 1000, 1, DType.BFLOAT16),
        new Case("materialize", 4096, 11008, 1000, 1, DType.FLOAT32),
        new Case("materialize", 11008, 4096, 1000, 1, DType.FLOAT32),
        new Case("materializeBatch", 4096, 4096, 1000, 64, DType.FLOAT32),
    };

    private MemoryReport() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: MemoryReport OUT.json");
            System.exit(2);
        }
        var reason = Backends.cudaUnavailableReason();
        if (reason.isPresent()) {
            System.err.println("no memory report: " + reason.get());
            System.exit(1);
        }
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = json.createObjectNode();
        ArrayNode entries = root.putArray("entries");
        try (CudaFourierFT cuda = CudaFourierFT.open(); CudaStream stream = cuda.createStream()) {
            root.put("device", cuda.description());
            System.out.printf("%-17s %-11s %6s %3s %-9s %14s %14s %14s %14s %s%n", "op", "shape", "n", "L", "dtype",
                    "output", "half spectra", "scratch query", "peak scratch", "peak ≤ query");
            for (Case c : CASES) {
                entries.add(measure(cuda, stream, c, json.createObjectNode()));
            }
        }
        json.writeValue(Path.of(args[0]).toFile(), root);
    }

    private static ObjectNode measure(CudaFourierFT cuda, CudaStream stream, Case c, ObjectNode row) {
        FourierFTSpec spec = FourierFTSpec.fromSeed(c.dOut, c.dIn, c.n);
        long outLength = (long) c.layers * c.dOut * c.dIn;
        try (DeviceBuffer coeffs = cuda.allocate(DType.FLOAT32, (long) c.layers * c.n);
             DeviceBuffer out = cuda.allocate(c.dtype, outLength)) {
            coeffs.copyFrom(HostArray.float32(Bench.gaussian(c.layers * c.n, 1)));
            cuda.materialize(spec, coeffs.array(), c.layers, out.array(), stream); // plans, tables
            cuda.synchronize(stream);
            CudaFourierFT.ScratchSize scratch = cuda.materializeScratch(spec, c.layers, c.dtype);
            long query = scratch.total();
            cuda.resetScratchPeak();
            cuda.materialize(spec, coeffs.array(), c.layers, out.array(), stream);
            cuda.synchronize(stream);
            long peak = cuda.scratchPeakBytes();
            long outputBytes = outLength * c.dtype.bytes();
            long halfSpectra = 8L * c.layers * spec.dOut() * spec.halfIn();
            boolean within = peak <= query + (4L << 20); // the pool may round each of two allocations up to 2 MiB
            System.out.printf("%-17s %-11s %6d %3d %-9s %14d %14d %14d %14d %s%n", c.op, c.dOut + "x" + c.dIn, c.n,
                    c.layers, c.dtype.name().toLowerCase(), outputBytes, halfSpectra, query, peak, within);
            row.put("op", c.op).put("shape", c.dOut + "x" + c.dIn).put("n", c.n).put("layers", c.layers)
                    .put("dtype", c.dtype.name().toLowerCase())
                    .put("output_bytes", outputBytes).put("half_spectrum_bytes", halfSpectra)
                    .put("buffer_bytes", scratch.bufferBytes()).put("workspace_bytes", scratch.workAreaBytes())
                    .put("scratch_query_bytes", query).put("peak_scratch_bytes", peak)
                    .put("peak_bytes", outputBytes + peak).put("within_query", within);
            return row;
        }
    }
}
