package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The chunk plan of the column-synthesis path: every (layer, row) once, in order, within the budget. */
class ColumnChunksTest {

    @ParameterizedTest(name = "{0} layers of {1} rows, halfIn {2}, budget {3}")
    @CsvSource({
        "1, 4096, 2049, 16777216",  // 4096² on an H100: 1024-row chunks
        "64, 4096, 2049, 16777216",
        "1, 4096, 5505, 16777216",  // 4096×11008: 256-row chunks
        "1, 11008, 2049, 16777216", // 11008 rows: a partial last chunk
        "5, 301, 101, 16777216",    // small layers: several per chunk
        "7, 40, 7, 1000",           // budget under 16 rows: 16-row chunks
        "3, 1, 9, 64",
        "2, 301, 101, 32320",       // 40 rows of budget: 32-row chunks, a partial one per layer
    })
    void coversEveryRowOnceWithinTheBudget(int layers, int dOut, int halfIn, long budget) {
        List<ColumnChunks.Chunk> chunks = ColumnChunks.plan(layers, dOut, halfIn, budget);
        long next = 0; // the flattened row the next chunk must start at
        for (ColumnChunks.Chunk c : chunks) {
            assertEquals(next, c.firstRow(dOut), "gap or overlap at " + c);
            assertTrue(c.layers() == 1 || (c.rowBegin() == 0 && c.rows() == dOut), "mixed chunk " + c);
            assertTrue(c.rowBegin() + c.rows() <= dOut, "past the layer: " + c);
            long budgetRows = Math.max(budget / (8L * halfIn), FourierFTKernels.COLUMN_TILE_ROWS); // 16 at the least
            assertTrue(c.rowCount() <= budgetRows, "over budget: " + c + ", " + budgetRows + " rows allowed");
            next += c.rowCount();
        }
        assertEquals((long) layers * dOut, next, "rows covered");
        long full = chunks.get(0).rowCount();
        assertEquals(full, ColumnChunks.maxRows(chunks));
        if (chunks.get(0).layers() == 1 && chunks.get(0).rows() < dOut) {
            assertEquals(1, Long.bitCount(full), "full chunks of a split layer are a power of two rows: " + full);
        }
    }
}
