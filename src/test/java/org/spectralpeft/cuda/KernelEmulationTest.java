package org.spectralpeft.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The kernel sources themselves, run on the CPU (native-build/kernel-emulation: g++ and the CUDA headers,
 * which every machine that builds the PTX has): every pipeline of the CUDA backend (materialize on both
 * paths and in chunks, merge, forward, backward, gradCoefficients) over the tables and chunk plans the
 * Java side makes, with cuFFT replaced by float64 DFTs, against the closed forms. What it cannot see:
 * cuFFT itself, the JCuda launches and the device memory handling. Skips, saying why, without a C++
 * compiler or CUDA headers.
 */
class KernelEmulationTest {
    @TempDir
    Path tmp;

    @Test
    void kernelsComputeWhatTheJavaSidePlans() throws IOException, InterruptedException {
        Path fixture = tmp.resolve("fixtures.txt");
        KernelEmulationFixtures.main(new String[] {fixture.toString()});
        Process p = new ProcessBuilder("bash", "native-build/kernel-emulation/run.sh", fixture.toString())
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int status = p.waitFor();
        System.out.print(output);
        assumeTrue(status != 3, output.strip());
        assertEquals(0, status, output);
    }
}
