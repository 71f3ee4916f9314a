package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.spectralpeft.SystemProperty;
import org.spectralpeft.fourierft.FourierFTSpec;

/**
 * Where {@code fourierft_forward_fused} applies and the table it reads, without a device: the lengths it takes (halves
 * a power of two times 1, 3, 5 or 7), the twiddle table's length (their least common multiple), the shared memory
 * bound, twiddles e^{−2πi·j/L} to float rounding, and the table on an 8-byte boundary in the spec's device block (the
 * kernel reads it as float2).
 */
class FusedForwardRulesTest {
    @Test
    void theFusedKernelsAreTheDefaultAndCufftAsksForTheOtherRoute() {
        boolean[] seen = new boolean[4];
        SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, null, () -> seen[0] = FusedForward.requested());
        SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "auto", () -> seen[1] = FusedForward.requested());
        SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "fused", () -> seen[2] = FusedForward.requested());
        SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, "cufft", () -> seen[3] = !FusedForward.requested());
        assertTrue(seen[0] && seen[1] && seen[2] && seen[3], java.util.Arrays.toString(seen));
        for (String wrong : new String[] {"cuFFT", "", "fused "}) {
            SystemProperty.with(CudaFourierFT.FORWARD_PROPERTY, wrong, () -> {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, FusedForward::requested);
                assertTrue(e.getMessage().contains(CudaFourierFT.FORWARD_PROPERTY + "=" + wrong + " is not a route"),
                        e.getMessage());
            });
        }
    }

    @Test
    void halvesOfAPowerOfTwoTimesOneThreeFiveOrSevenHaveATable() {
        assertEquals(1, FusedForward.oddFactor(4096));
        assertEquals(3, FusedForward.oddFactor(768));
        assertEquals(5, FusedForward.oddFactor(5120));
        assertEquals(7, FusedForward.oddFactor(14336));
        assertEquals(3, FusedForward.oddFactor(6));
        assertEquals(1, FusedForward.oddFactor(2));
        assertEquals(0, FusedForward.oddFactor(11008)); // 2·43·2⁷
        assertEquals(0, FusedForward.oddFactor(4608)); // 2·9·2⁸
        assertEquals(0, FusedForward.oddFactor(37));
        assertEquals(0, FusedForward.oddFactor(1));
        assertEquals(0, FusedForward.oddFactor(0));
        assertEquals(4096, FusedForward.twiddleLength(4096, 4096));
        assertEquals(4096, FusedForward.twiddleLength(1024, 4096));
        assertEquals(8, FusedForward.twiddleLength(8, 2));
        assertEquals(768, FusedForward.twiddleLength(768, 768));
        assertEquals(3072, FusedForward.twiddleLength(768, 1024)); // the least common multiple
        assertEquals(28672, FusedForward.twiddleLength(14336, 4096));
        assertEquals(0, FusedForward.twiddleLength(4096, 11008));
        assertEquals(0, FusedForward.twiddleLength(1, 64));
        assertEquals(0, FusedForward.twiddleLength(64, 1));
        assertEquals(0, FusedForward.twiddleLength(0, 64));
        assertEquals(0, FusedForward.twiddleLength(7 * 2 << 20, 5 * 2 << 20)); // a table past the limit
        assertTrue(FusedForward.powersOfTwo(4096, 1024));
        assertTrue(FusedForward.powersOfTwo(2, 8));
        assertFalse(FusedForward.powersOfTwo(4096, 768)); // one length takes the radix kernels
        assertFalse(FusedForward.powersOfTwo(5120, 4096));
    }

    @Test
    void sharedMemoryHoldsBothHalfSpectraAndACoefficientRow() {
        // 2049 bins each, padded by one slot per 64 (2^(11 − 5)) elements
        assertEquals(8 * 2081 + 8 * 2081 + 4 * 1000, FusedForward.sharedBytes(4096, 4096, 1000));
        assertEquals(8 * 2081 + 8 * 481 + 4 * 7, FusedForward.sharedBytes(4096, 768, 7));
        int limit = 227 * 1024;
        assertTrue(FusedForward.fits(4096, 4096, 1000, limit));
        assertTrue(FusedForward.fits(8192, 8192, 12000, limit));
        assertTrue(FusedForward.fits(16384, 16384, 1000, limit)); // 128 KiB of spectra
        assertFalse(FusedForward.fits(32768, 32768, 1000, limit)); // 256 KiB
        assertFalse(FusedForward.fits(8192, 8192, 50_000, limit)); // the coefficient row
        assertFalse(FusedForward.fits(4096, 4096, 1000, 32 * 1024)); // a device with less
        assertTrue(FusedForward.fits(768, 768, 10, limit));
        assertFalse(FusedForward.fits(11008, 4096, 10, limit)); // a length the kernel does not take
    }

    @Test
    void spectraArePaddedBySlotsPerPowerOfTwoRun() {
        // M = d/2, part = M / odd = 2^p, one slot more per 2^max(p − 5, 1) elements, then bin M
        assertEquals(2048 + 32 + 1, FusedForward.spectrumSlots(4096));
        assertEquals(8192 + 32 + 1, FusedForward.spectrumSlots(16384));
        assertEquals(384 + 96 + 1, FusedForward.spectrumSlots(768)); // 3·2^7: shift 2
        assertEquals(7168 + 7 * 32 + 1, FusedForward.spectrumSlots(14336)); // 7·2^10: shift 5
        assertEquals(1 + 0 + 1, FusedForward.spectrumSlots(2)); // M = 1: shift 1
        assertEquals(4 + 2 + 1, FusedForward.spectrumSlots(8));
        assertEquals(3 + 1 + 1, FusedForward.spectrumSlots(6));
    }

    @Test
    void twiddlesAreTheUnitRootsRoundedOnce() {
        for (int length : new int[] {2, 4, 6, 64, 768, 4096, 28672}) {
            float[] t = FusedForward.twiddles(length);
            int stages = FusedForward.stageLength(length);
            assertEquals(Integer.lowestOneBit(length) / 2, stages);
            assertEquals(2 * (length + stages), t.length);
            for (int j = 0; j < length; j++) {
                double angle = 2 * Math.PI * j / length;
                assertEquals((float) Math.cos(angle), t[2 * j], "cos, L " + length + ", j " + j);
                assertEquals((float) -Math.sin(angle), t[2 * j + 1], "sin, L " + length + ", j " + j);
            }
            // the stages' table: pair L + h + j = e^{−2πi·j/(2h)}, the same unit roots as the first part holds
            for (int h = 1; h < stages; h <<= 1) {
                for (int j = 0; j < h; j++) {
                    int at = 2 * (length + h + j);
                    assertEquals(t[2 * (j * (length / (2 * h)))], t[at], 1e-7f, "cos, L " + length + ", h " + h);
                    assertEquals(t[2 * (j * (length / (2 * h))) + 1], t[at + 1], 1e-7f, "sin, L " + length + ", h " + h);
                    double angle = Math.PI * j / h;
                    if (h >= 2 && 2 * j == h) { // −i exactly, the quarter turn of (1, −0), sign of zero included
                        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(t[at]), "L " + length + ", h " + h);
                        assertEquals(-1f, t[at + 1]);
                        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(t[2 * (length + h) + 1]));
                    } else {
                        assertEquals((float) Math.cos(angle), t[at]);
                        assertEquals((float) -Math.sin(angle), t[at + 1]);
                    }
                }
            }
        }
        // what the kernels' passes derive equals what the other pass schedule reads, bit for bit: W_2h^(j + h/2) is
        // the quarter turn (w.y, −w.x) of W_2h^j (block_fft.cuh's bfft_quarter)
        for (int length : new int[] {4096, 28672, 1 << 15}) {
            float[] t = FusedForward.twiddles(length);
            for (int h = 2; h < FusedForward.stageLength(length); h <<= 1) {
                for (int j = 0; j < h / 2; j++) {
                    int at = 2 * (length + h + j);
                    int quarter = 2 * (length + h + j + h / 2);
                    assertEquals(Float.floatToRawIntBits(t[at + 1]), Float.floatToRawIntBits(t[quarter]),
                            "L " + length + ", h " + h + ", j " + j);
                    assertEquals(Float.floatToRawIntBits(-t[at]), Float.floatToRawIntBits(t[quarter + 1]),
                            "L " + length + ", h " + h + ", j " + j);
                }
            }
        }
        assertEquals(2048, FusedForward.stageLength(4096)); // 4096's part: M = 2048
        assertEquals(2048, FusedForward.stageLength(28672)); // lcm(14336, 4096) = 7·2^12: 4096's part
        assertEquals(128, FusedForward.stageLength(768)); // 768's part: 384 / 3
        assertEquals(1f, FusedForward.twiddles(2)[0]);
        assertEquals(-1f, FusedForward.twiddles(2)[2]);
        assertEquals(0, FusedForward.twiddles(0).length);
    }

    @Test
    void theSpecTablesCarryTheTwiddlesOnAnEightByteBoundary() {
        for (int n : new int[] {1, 2, 3, 7, 40}) { // table sizes before the twiddles of either parity
            FourierFTSpec spec = FourierFTSpec.fromSeed(16, 64, n, 3, 1f);
            try (DeviceSpecTables t = DeviceSpecTables.notUploaded(spec, 1L << 32)) {
                assertEquals(64, t.twiddleLength);
                assertEquals(0, t.twiddles % 8, "n " + n);
                assertTrue(t.twiddles > t.imSign, "after the other tables");
            }
        }
        try (DeviceSpecTables t = DeviceSpecTables.notUploaded(FourierFTSpec.fromSeed(37, 29, 20, 3, 1f), 1L << 32)) {
            assertEquals(0, t.twiddleLength);
            assertEquals(0, t.twiddles);
        }
    }
}
