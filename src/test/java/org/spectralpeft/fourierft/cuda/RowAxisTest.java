package org.spectralpeft.fourierft.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.spectralpeft.fourierft.FourierFTSpec;

/** Which axis materialize's row transforms run along: d_in unless d_in is a length cuFFT transforms slowly. */
class RowAxisTest {

    @ParameterizedTest(name = "{0}x{1}: along d_out {2}")
    @CsvSource({
        "4096, 4096, false",
        "4096, 11008, true",   // 11008 = 2^8·43: LLaMA's up and gate projections
        "11008, 4096, false",  // the down projection transforms along 4096 already
        "4096, 14336, false",  // 14336 = 2^11·7 is 7-smooth
        "301, 201, true",      // 67 > 43
        "37, 29, false",       // 29 < 37: d_in is the better of two awkward lengths
        "43, 43, false",       // no gain from swapping equals
        "1, 11008, false",     // a single row or column has no second axis to swap with
        "11008, 1, false",
    })
    void slowInputLengthsSwapTheAxis(int dOut, int dIn, boolean alongOut) {
        FourierFTSpec spec = FourierFTSpec.fromSeed(dOut, dIn, Math.min(4, dOut * dIn));
        assertEquals(alongOut, CudaFourierFT.transformsAlongOut(spec));
    }

    @Test
    void largestPrimeFactors() {
        int[][] cases = {{1, 1}, {2, 2}, {7, 7}, {4096, 2}, {11008, 43}, {14336, 7}, {301, 43}, {201, 67},
            {2147483647, 2147483647}, {2147483646, 331}, {1 << 30, 2}, {46341 * 46337, 46337}};
        for (int[] c : cases) {
            assertEquals(c[1], CudaFourierFT.largestPrimeFactor(c[0]), "largest prime factor of " + c[0]);
        }
    }
}
