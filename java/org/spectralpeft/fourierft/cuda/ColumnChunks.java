package org.spectralpeft.fourierft.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * How the column-synthesis path of materialize walks the (layer, row) space: in chunks whose synthesized
 * half rows (8·halfIn bytes each) fit a byte budget ({@link CudaFourierFT#DEFAULT_COLUMN_CHUNK_BYTES}), so
 * the call's scratch is one chunk buffer that every chunk reuses, whatever the number of layers. Either a chunk holds whole layers ({@code rowBegin == 0}, {@code rows ==
 * d_out}), or it is a run of rows of one layer; then the full chunks have a power-of-two number of rows
 * (at least {@link FourierFTKernels#COLUMN_TILE_ROWS}) and share one cuFFT plan.
 */
final class ColumnChunks {
    /** Layers [layerBegin, layerBegin+layers) × rows [rowBegin, rowBegin+rows). */
    record Chunk(int layerBegin, int layers, int rowBegin, int rows) {
        /** Index of the chunk's first row in the flattened layers × d_out rows. */
        long firstRow(int dOut) {
            return (long) layerBegin * dOut + rowBegin;
        }

        long rowCount() {
            return (long) layers * rows;
        }
    }

    private ColumnChunks() {
    }

    /** The chunks, in order, covering every row of every layer once. */
    static List<Chunk> plan(int layers, int dOut, int halfIn, long budgetBytes) {
        long rowBytes = 8L * halfIn;
        long budgetRows = Math.max(FourierFTKernels.COLUMN_TILE_ROWS, budgetBytes / rowBytes);
        List<Chunk> chunks = new ArrayList<>();
        if (dOut <= budgetRows) {
            int perChunk = (int) Math.min(layers, Math.max(1, budgetRows / dOut));
            for (int l = 0; l < layers; l += perChunk) {
                chunks.add(new Chunk(l, Math.min(perChunk, layers - l), 0, dOut));
            }
        } else {
            int rows = (int) Long.highestOneBit(budgetRows);
            for (int l = 0; l < layers; l++) {
                for (int r = 0; r < dOut; r += rows) {
                    chunks.add(new Chunk(l, 1, r, Math.min(rows, dOut - r)));
                }
            }
        }
        return chunks;
    }

    /** Rows of the largest chunk: what the chunk buffer must hold. */
    static long maxRows(List<Chunk> chunks) {
        long most = 0;
        for (Chunk c : chunks) {
            most = Math.max(most, c.rowCount());
        }
        return most;
    }
}
