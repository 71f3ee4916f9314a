package org.spectralpeft.foura.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * foura_project_tiled's chunks of x's columns: multiples of its step, at least eight steps unless x is narrower,
 * enough of them to fill the device where the tiles are few, one where they are many, and no empty chunk.
 */
class TiledChunkTest {
    @Test
    void chunksCoverXWithoutEmptyOnesAndFillTheDeviceWhereTilesAreFew() {
        for (int dIn : new int[] {1, 7, 31, 32, 33, 255, 256, 300, 1280, 4096, 11008}) {
            for (int tiles : new int[] {1, 2, 3, 64, 263, 264, 1000}) {
                int chunk = FouRAKernels.tiledChunk(tiles, dIn);
                int parts = (dIn + chunk - 1) / chunk;
                String what = "d_in " + dIn + ", " + tiles + " tiles: chunk " + chunk + ", " + parts + " parts";
                assertEquals(0, chunk % FouRAKernels.TILE_K, what);
                assertTrue(chunk >= Math.min(FouRAKernels.TILED_MIN_CHUNK, roundUp(dIn)), what);
                assertTrue((long) (parts - 1) * chunk < dIn, what + ": an empty chunk");
                if (tiles >= FouRAKernels.TILED_MIN_BLOCKS) {
                    assertEquals(1, parts, what);
                } else if (dIn >= FouRAKernels.TILED_MIN_BLOCKS * FouRAKernels.TILED_MIN_CHUNK) {
                    assertTrue((long) tiles * parts >= FouRAKernels.TILED_MIN_BLOCKS, what);
                }
            }
        }
        assertEquals(4096, FouRAKernels.tiledChunk(264, 4096)); // T = 4096 at r = 16: x in one pass
        assertEquals(256, FouRAKernels.tiledChunk(1, 4096)); // T = 1: 16 chunks
    }

    private static int roundUp(int dIn) {
        return (dIn + FouRAKernels.TILE_K - 1) / FouRAKernels.TILE_K * FouRAKernels.TILE_K;
    }
}
