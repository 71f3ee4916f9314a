package org.spectralpeft.fourierft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.spectralpeft.TestData;

/** Validation, accessors, and the per-bin groupings checked against brute-force recomputations. */
class FourierFTSpecTest {

    /** Shapes with odd and even sides, degenerate ones, and mirror-symmetric bins (0 and d/2). */
    private static final int[][] SHAPES = {
        {1, 1}, {1, 6}, {6, 1}, {2, 2}, {3, 3}, {4, 5}, {5, 4}, {7, 9}, {8, 6}, {9, 8}, {6, 11}, {16, 16},
        {13, 13}, {12, 7}, {20, 33}, {64, 48}
    };

    // ---------------------------------------------------------------- validation

    @Test
    void rejectsNonPositiveShapes() {
        int[][] bad = {{0, 5}, {5, 0}, {-1, 5}, {5, -3}, {0, 0}};
        for (int[] s : bad) {
            String dims = s[0] + " × " + s[1];
            expect(() -> FourierFTSpec.of(s[0], s[1], new int[] {0}, new int[] {0}, 1f), "positive", dims);
            expect(() -> FourierFTSpec.ofFlat(s[0], s[1], new int[] {0}, 1f), "positive", dims);
            expect(() -> FourierFTSpec.fromSeed(s[0], s[1], 1), "positive", dims);
        }
    }

    @Test
    void rejectsShapesLargerThanIntRange() {
        // 65536 · 32768 = 2^31 = Integer.MAX_VALUE + 1
        expect(() -> FourierFTSpec.of(65536, 32768, new int[] {0}, new int[] {0}, 1f), "2147483648", "exceeds");
        expect(() -> FourierFTSpec.ofFlat(65536, 32768, new int[] {0}, 1f), "2147483648");
        expect(() -> FourierFTSpec.fromSeed(65536, 32768, 1), "2147483648");
        expect(() -> FourierFTSpec.fromSeed(Integer.MAX_VALUE, 2, 1), "exceeds");
    }

    @Test
    void fromSeedRejectsSizesBeyondPyTorchs32BitRandpermPath() {
        // 16384² = 2^28 fits an int but is above PeftIndices.MAX_SIZE
        expect(() -> FourierFTSpec.fromSeed(16384, 16384, 1), "268435456");
    }

    @Test
    void rejectsBadCoefficientCounts() {
        expect(() -> FourierFTSpec.fromSeed(4, 4, 0), "n = 0");
        expect(() -> FourierFTSpec.fromSeed(4, 4, -2), "n = -2");
        expect(() -> FourierFTSpec.of(4, 4, new int[0], new int[0], 1f), "n = 0");
        expect(() -> FourierFTSpec.ofFlat(4, 4, new int[0], 1f), "n = 0");
        expect(() -> FourierFTSpec.fromSeed(2, 3, 7), "n = 7", "6");
        expect(() -> FourierFTSpec.of(2, 3, new int[7], new int[7], 1f), "n = 7", "6");
        // n = d_out·d_in is fine
        assertEquals(6, FourierFTSpec.fromSeed(2, 3, 6).n());
    }

    @Test
    void rejectsRowsColsLengthMismatch() {
        expect(() -> FourierFTSpec.of(4, 4, new int[] {0, 1, 2}, new int[] {0, 1}, 1f), "rows has 3", "cols has 2");
        expect(() -> FourierFTSpec.of(4, 4, new int[] {0}, new int[] {0, 1}, 1f), "rows has 1", "cols has 2");
    }

    @Test
    void rejectsOutOfRangeAndNegativeIndices() {
        expect(() -> FourierFTSpec.of(4, 5, new int[] {0, 4}, new int[] {0, 1}, 1f),
                "index pair 1", "row 4", "col 1", "d_out = 4", "d_in = 5");
        expect(() -> FourierFTSpec.of(4, 5, new int[] {0, 1, 3}, new int[] {0, 1, 5}, 1f),
                "index pair 2", "row 3", "col 5");
        expect(() -> FourierFTSpec.of(4, 5, new int[] {-1, 0}, new int[] {2, 1}, 1f),
                "index pair 0", "row -1", "col 2");
        expect(() -> FourierFTSpec.of(4, 5, new int[] {0, 2}, new int[] {1, -7}, 1f),
                "index pair 1", "row 2", "col -7");
    }

    @Test
    void rejectsDuplicatePairs() {
        expect(() -> FourierFTSpec.of(4, 5, new int[] {1, 2, 1}, new int[] {3, 0, 3}, 1f),
                "index pairs 0 and 2", "row 1", "col 3");
        expect(() -> FourierFTSpec.ofFlat(4, 5, new int[] {7, 3, 11, 3}, 1f), "index pairs 1 and 3");
    }

    @Test
    void rejectsOutOfRangeFlatIndices() {
        expect(() -> FourierFTSpec.ofFlat(4, 5, new int[] {3, 20}, 1f), "flat index 1 = 20", "20)");
        expect(() -> FourierFTSpec.ofFlat(4, 5, new int[] {-1, 3}, 1f), "flat index 0 = -1");
        expect(() -> FourierFTSpec.ofFlat(4, 5, new int[] {0, 1, Integer.MAX_VALUE}, 1f), "flat index 2");
    }

    @Test
    void rejectsNonFiniteAlpha() {
        for (float alpha : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            expect(() -> FourierFTSpec.of(4, 5, new int[] {1}, new int[] {1}, alpha), "alpha", String.valueOf(alpha));
            expect(() -> FourierFTSpec.ofFlat(4, 5, new int[] {1}, alpha), "alpha");
            expect(() -> FourierFTSpec.fromSeed(4, 5, 2, 777, alpha), "alpha");
        }
    }

    private static void expect(Executable call, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        String m = e.getMessage();
        for (String f : fragments) {
            assertTrue(m != null && m.contains(f), "message '" + m + "' does not mention '" + f + "'");
        }
    }

    // ---------------------------------------------------------------- accessors

    @Test
    void scaleIsAlphaOverSize() {
        FourierFTSpec spec = FourierFTSpec.of(64, 48, new int[] {1}, new int[] {2}, 150f);
        assertEquals((float) (150.0 / 3072.0), spec.scale());
        assertEquals(150f / 3072f, spec.scale(), 1e-9f);
        FourierFTSpec big = FourierFTSpec.fromSeed(4096, 4096, 3);
        assertEquals((float) (150.0 / (4096.0 * 4096.0)), big.scale());
        FourierFTSpec neg = FourierFTSpec.of(3, 7, new int[] {1}, new int[] {2}, -2.5f);
        assertEquals((float) (-2.5 / 21.0), neg.scale());
        assertEquals(0f, FourierFTSpec.of(3, 7, new int[] {1}, new int[] {2}, 0f).scale());
        // 4097·4099 = 16793603 is not a float: s must be the quotient by the exact size, rounded once
        FourierFTSpec odd = FourierFTSpec.of(4097, 4099, new int[] {5}, new int[] {6}, 150f);
        assertEquals((float) (150.0 / 16793603.0), odd.scale());
        assertEquals(8.931973E-6f, odd.scale());
    }

    @Test
    void halfSizes() {
        FourierFTSpec odd = FourierFTSpec.of(7, 9, new int[] {0}, new int[] {0}, 1f);
        assertEquals(5, odd.halfIn());
        assertEquals(4, odd.halfOut());
        FourierFTSpec even = FourierFTSpec.of(8, 6, new int[] {0}, new int[] {0}, 1f);
        assertEquals(4, even.halfIn());
        assertEquals(5, even.halfOut());
    }

    @Test
    void arraysAreCopiedInAndOut() {
        int[] rows = {0, 1, 2};
        int[] cols = {3, 4, 0};
        FourierFTSpec spec = FourierFTSpec.of(5, 6, rows, cols, 1f);
        rows[0] = 4;
        cols[0] = 5;
        assertEquals(0, spec.row(0));
        assertEquals(3, spec.col(0));

        int[] r = spec.rows();
        int[] c = spec.cols();
        assertNotSame(r, spec.rows());
        r[1] = 99;
        c[1] = 99;
        assertArrayEquals(new int[] {0, 1, 2}, spec.rows());
        assertArrayEquals(new int[] {3, 4, 0}, spec.cols());

        int[] flat = {9, 2};
        FourierFTSpec f = FourierFTSpec.ofFlat(5, 6, flat, 1f);
        flat[0] = 0;
        assertArrayEquals(new int[] {1, 0}, f.rows());
        assertArrayEquals(new int[] {3, 2}, f.cols());

        int[] bins = spec.deltaGradientBins();
        bins[0] = -1;
        assertTrue(spec.deltaGradientBins()[0] >= 0);
        int[] xb = spec.inputBins();
        xb[0] = -1;
        assertTrue(spec.inputBins()[0] >= 0);
        int[] gb = spec.outputGradientBins();
        gb[0] = -1;
        assertTrue(spec.outputGradientBins()[0] >= 0);
        float[] signs = spec.imaginarySigns();
        signs[0] = 0f;
        assertEquals(1f, Math.abs(spec.imaginarySigns()[0]));
        SpectralGrouping g = spec.forwardGrouping();
        int[] pos = g.positions();
        pos[0] = -1;
        assertEquals(0, g.positions()[0]);
        int[] starts = g.starts();
        starts[0] = -1;
        assertEquals(0, g.starts()[0]);
        int[] coeffs = g.entryCoefficients();
        if (coeffs.length > 0) {
            coeffs[0] = -1;
            assertTrue(g.entryCoefficients()[0] >= 0);
        }
    }

    @Test
    void ofFlatSplitsRowAndColumn() {
        FourierFTSpec spec = FourierFTSpec.ofFlat(4, 5, new int[] {0, 4, 5, 19, 13}, 2f);
        assertArrayEquals(new int[] {0, 0, 1, 3, 2}, spec.rows());
        assertArrayEquals(new int[] {0, 4, 0, 4, 3}, spec.cols());
        assertEquals(2f, spec.alpha());
        assertEquals(5, spec.n());
    }

    // ---------------------------------------------------------------- transposed, equality

    private static void assertSameGrouping(SpectralGrouping expected, SpectralGrouping actual, String where) {
        assertArrayEquals(expected.positions(), actual.positions(), where + ": positions");
        assertArrayEquals(expected.starts(), actual.starts(), where + ": starts");
        assertArrayEquals(expected.entryCoefficients(), actual.entryCoefficients(), where + ": coefficients");
        assertArrayEquals(expected.entrySources(), actual.entrySources(), where + ": sources");
    }

    @Test
    void transposedSwapsAxesAndGroupings() {
        TestData data = new TestData();
        for (FourierFTSpec spec : randomSpecs(data)) {
            String where = spec + data.tag();
            FourierFTSpec t = spec.transposed();
            assertEquals(spec.dIn(), t.dOut(), where);
            assertEquals(spec.dOut(), t.dIn(), where);
            assertEquals(spec.n(), t.n(), where);
            assertArrayEquals(spec.cols(), t.rows(), where);
            assertArrayEquals(spec.rows(), t.cols(), where);
            assertEquals(spec.alpha(), t.alpha(), where);
            assertEquals(spec.scale(), t.scale(), where);
            // the forward of ΔWᵀ is the backward of ΔW and vice versa
            assertSameGrouping(spec.transposedGrouping(), t.forwardGrouping(), where + " forward of the transpose");
            assertSameGrouping(spec.forwardGrouping(), t.transposedGrouping(), where + " backward of the transpose");
            assertArrayEquals(spec.inputBins(), t.outputGradientBins(), where);
            assertArrayEquals(spec.outputGradientBins(), t.inputBins(), where);
            assertArrayEquals(spec.imaginarySigns(), t.imaginarySigns(), where);
            assertEquals(spec, t.transposed(), where);
            assertEquals(spec.hashCode(), t.transposed().hashCode(), where);
            assertSameGrouping(spec.halfSpectrumGrouping(), t.transposed().halfSpectrumGrouping(), where);
        }
        // a d × 1 layer and its 1 × d transpose
        FourierFTSpec column = FourierFTSpec.of(8, 1, new int[] {1, 3, 0}, new int[] {0, 0, 0}, 2f);
        FourierFTSpec row = column.transposed();
        assertEquals(1, row.dOut());
        assertEquals(8, row.dIn());
        assertArrayEquals(new int[] {0, 0, 0}, row.rows());
        assertArrayEquals(new int[] {1, 3, 0}, row.cols());
        assertEquals(column.scale(), row.scale());
    }

    @Test
    void equalityIsByShapeIndicesAndAlpha() {
        FourierFTSpec a = FourierFTSpec.of(4, 6, new int[] {1, 2, 3}, new int[] {5, 0, 4}, 2f);
        FourierFTSpec same = FourierFTSpec.ofFlat(4, 6, new int[] {11, 12, 22}, 2f);
        assertEquals(a, same);
        assertEquals(same, a);
        assertEquals(a.hashCode(), same.hashCode());
        assertEquals(a, a);
        assertEquals(FourierFTSpec.fromSeed(64, 48, 5), FourierFTSpec.fromSeed(64, 48, 5));
        assertEquals(FourierFTSpec.fromSeed(64, 48, 5).hashCode(), FourierFTSpec.fromSeed(64, 48, 5).hashCode());

        FourierFTSpec[] different = {
            FourierFTSpec.of(4, 6, new int[] {1, 2, 3}, new int[] {5, 0, 4}, 3f),         // alpha
            FourierFTSpec.of(4, 6, new int[] {1, 2, 3}, new int[] {5, 0, 3}, 2f),         // one column
            FourierFTSpec.of(4, 6, new int[] {1, 2, 0}, new int[] {5, 0, 4}, 2f),         // one row
            FourierFTSpec.of(4, 6, new int[] {2, 1, 3}, new int[] {0, 5, 4}, 2f),         // order
            FourierFTSpec.of(4, 6, new int[] {1, 2}, new int[] {5, 0}, 2f),               // n
            FourierFTSpec.of(5, 6, new int[] {1, 2, 3}, new int[] {5, 0, 4}, 2f),         // d_out
            FourierFTSpec.of(4, 7, new int[] {1, 2, 3}, new int[] {5, 0, 4}, 2f),         // d_in
            FourierFTSpec.fromSeed(64, 48, 5, 778, FourierFTSpec.DEFAULT_SCALING),        // seed
        };
        for (FourierFTSpec d : different) {
            assertTrue(!a.equals(d) && !d.equals(a), a + " equals " + d);
        }
        assertTrue(!FourierFTSpec.fromSeed(64, 48, 5).equals(different[7]));
        FourierFTSpec plusZero = FourierFTSpec.of(4, 6, new int[] {1}, new int[] {2}, 0f);
        FourierFTSpec minusZero = FourierFTSpec.of(4, 6, new int[] {1}, new int[] {2}, -0f);
        assertTrue(!plusZero.equals(minusZero), "alpha +0 and -0 compare by bits");
        assertTrue(!a.equals(null));
        assertTrue(!a.equals("FourierFTSpec[4×6, n=3, alpha=2.0]"));
        // a square spec and its transpose differ unless the index set is symmetric
        FourierFTSpec sq = FourierFTSpec.of(5, 5, new int[] {1, 2}, new int[] {3, 4}, 1f);
        assertTrue(!sq.equals(sq.transposed()));
        FourierFTSpec diag = FourierFTSpec.of(5, 5, new int[] {1, 2}, new int[] {1, 2}, 1f);
        assertEquals(diag, diag.transposed());
        // equal specs are interchangeable as map keys
        java.util.Map<FourierFTSpec, String> cache = new java.util.HashMap<>();
        cache.put(a, "tables");
        assertEquals("tables", cache.get(same));
        assertEquals(null, cache.get(different[0]));
    }

    // ---------------------------------------------------------------- random specs

    private static List<FourierFTSpec> randomSpecs(TestData data) {
        List<FourierFTSpec> specs = new ArrayList<>();
        for (int[] s : SHAPES) {
            int size = s[0] * s[1];
            // a random subset, and (for small shapes) every position, which hits all mirror-symmetric bins
            int n = 1 + data.nextInt(size);
            int[] flat = data.distinctIndices(size, n);
            specs.add(FourierFTSpec.ofFlat(s[0], s[1], flat, 1f + (float) data.nextDouble()));
            if (size <= 256) {
                specs.add(FourierFTSpec.ofFlat(s[0], s[1], data.distinctIndices(size, size), 1f));
            }
        }
        specs.add(FourierFTSpec.fromSeed(64, 48, 200));
        specs.add(FourierFTSpec.fromSeed(63, 17, 100, data.nextInt(1000), 1f));
        return specs;
    }

    private static int mod(int a, int m) {
        return ((a % m) + m) % m;
    }

    /** Entries e of bin b, as a sorted list of their coefficients. */
    private static int[] binCoefficients(SpectralGrouping g, int b) {
        int[] out = new int[g.start(b + 1) - g.start(b)];
        for (int e = g.start(b); e < g.start(b + 1); e++) {
            out[e - g.start(b)] = g.coefficient(e);
        }
        Arrays.sort(out);
        return out;
    }

    private static void checkCsr(SpectralGrouping g, int n, String where) {
        int[] starts = g.starts();
        assertEquals(g.bins() + 1, starts.length, where);
        assertEquals(0, starts[0], where);
        assertEquals(g.entries(), starts[g.bins()], where);
        for (int b = 0; b < g.bins(); b++) {
            assertTrue(starts[b] <= starts[b + 1], where + ": starts decrease at bin " + b);
            assertEquals(starts[b], g.start(b), where);
        }
        int[] coeffs = g.entryCoefficients();
        assertEquals(g.entries(), coeffs.length, where);
        assertEquals(g.entries(), g.entrySources().length, where);
        for (int e = 0; e < g.entries(); e++) {
            assertTrue(coeffs[e] >= 0 && coeffs[e] < n, where + ": coefficient " + coeffs[e] + " out of range");
            assertEquals(coeffs[e], g.coefficient(e), where);
        }
    }

    @Test
    void halfSpectrumGroupingMatchesBruteForce() {
        TestData data = new TestData();
        for (FourierFTSpec spec : randomSpecs(data)) {
            String where = spec + data.tag();
            int m = spec.dOut();
            int d = spec.dIn();
            int h = d / 2 + 1;
            int n = spec.n();
            SpectralGrouping g = spec.halfSpectrumGrouping();
            checkCsr(g, n, where);

            // brute force: for every half-spectrum position (u, v), the coefficients whose (j, k) or (-j, -k) is there
            List<int[]> expectedBins = new ArrayList<>();
            List<Integer> expectedPos = new ArrayList<>();
            int total = 0;
            for (int u = 0; u < m; u++) {
                for (int v = 0; v < h; v++) {
                    List<Integer> here = new ArrayList<>();
                    for (int l = 0; l < n; l++) {
                        int j = spec.row(l);
                        int k = spec.col(l);
                        if (j == u && k == v) {
                            here.add(l);
                        }
                        if (mod(-j, m) == u && mod(-k, d) == v) {
                            here.add(l);
                        }
                    }
                    if (!here.isEmpty()) {
                        expectedPos.add(u * h + v);
                        expectedBins.add(here.stream().mapToInt(Integer::intValue).sorted().toArray());
                        total += here.size();
                    }
                }
            }
            int contributions = 0;
            for (int l = 0; l < n; l++) {
                contributions += (spec.col(l) <= d / 2 ? 1 : 0) + (mod(-spec.col(l), d) <= d / 2 ? 1 : 0);
            }
            assertEquals(contributions, total, where);
            assertEquals(total, g.entries(), where);
            assertEquals(expectedPos.size(), g.bins(), where);
            int[] pos = g.positions();
            for (int b = 0; b < g.bins(); b++) {
                assertEquals(expectedPos.get(b).intValue(), pos[b], where + ": bin " + b);
                assertEquals(pos[b], g.position(b), where);
                assertTrue(pos[b] < m * h, where);
                if (b > 0) {
                    assertTrue(pos[b] > pos[b - 1], where + ": positions not strictly increasing");
                }
                assertArrayEquals(expectedBins.get(b), binCoefficients(g, b), where + ": bin " + b);
            }
            int[] times = new int[n];
            for (int e = 0; e < g.entries(); e++) {
                times[g.coefficient(e)]++;
                assertEquals(0, g.entrySources()[e], where + ": materialize grouping has a source");
            }
            for (int l = 0; l < n; l++) {
                assertTrue(times[l] == 1 || times[l] == 2, where + ": coefficient " + l + " appears " + times[l] + "×");
            }
        }
    }

    /**
     * The half spectrum, c_l/2 per entry, is the non-redundant half of a Hermitian spectrum whose inverse
     * 2-D DFT is Σ_l c_l cos(2π(p·j_l/d_out + q·k_l/d_in)), i.e. ΔW / s.
     */
    @Test
    void halfSpectrumInvertsToTheCosineSum() {
        TestData data = new TestData();
        for (FourierFTSpec spec : randomSpecs(data)) {
            int m = spec.dOut();
            int d = spec.dIn();
            if (m * d > 400) {
                continue;
            }
            String where = spec + data.tag();
            int h = d / 2 + 1;
            float[] c = data.gaussian(spec.n());
            SpectralGrouping g = spec.halfSpectrumGrouping();
            double[] hr = new double[m * h];
            for (int b = 0; b < g.bins(); b++) {
                for (int e = g.start(b); e < g.start(b + 1); e++) {
                    hr[g.position(b)] += c[g.coefficient(e)] / 2.0; // real coefficients: the spectrum is real
                }
            }
            double maxErr = 0;
            double maxRef = 0;
            for (int p = 0; p < m; p++) {
                for (int q = 0; q < d; q++) {
                    double ref = 0;
                    for (int l = 0; l < spec.n(); l++) {
                        ref += c[l] * Math.cos(2 * Math.PI * ((double) p * spec.row(l) / m + (double) q * spec.col(l) / d));
                    }
                    double got = 0; // C2R: columns beyond d/2 are conj(H[-u, -v])
                    for (int u = 0; u < m; u++) {
                        for (int v = 0; v < d; v++) {
                            double re = v < h ? hr[u * h + v] : hr[mod(-u, m) * h + (d - v)];
                            got += re * Math.cos(2 * Math.PI * ((double) p * u / m + (double) q * v / d));
                        }
                    }
                    maxErr = Math.max(maxErr, Math.abs(got - ref));
                    maxRef = Math.max(maxRef, Math.abs(ref));
                }
            }
            assertTrue(maxErr <= 1e-9 * Math.max(1, maxRef), where + ": max error " + maxErr);
        }
    }

    @Test
    void forwardGroupingHasOneEntryPerContribution() {
        TestData data = new TestData();
        for (FourierFTSpec spec : randomSpecs(data)) {
            String where = spec + data.tag();
            checkForwardStructure(spec.forwardGrouping(), spec.dOut(), spec.rows(), spec.dIn(), where);
            checkForwardStructure(spec.transposedGrouping(), spec.dIn(), spec.cols(), spec.dOut(), where + " (transposed)");
        }
    }

    private static void checkForwardStructure(SpectralGrouping g, int outLen, int[] outIdx, int srcLen, String where) {
        int n = outIdx.length;
        checkCsr(g, n, where);
        assertEquals(outLen / 2 + 1, g.bins(), where);
        int[] pos = g.positions();
        for (int b = 0; b < g.bins(); b++) {
            assertEquals(b, pos[b], where + ": dense grouping position");
            List<Integer> expected = new ArrayList<>();
            for (int l = 0; l < n; l++) {
                if (outIdx[l] == b) {
                    expected.add(l); // c·X/2 at j
                }
                if (mod(-outIdx[l], outLen) == b) {
                    expected.add(l); // conj(c·X)/2 at -j
                }
            }
            assertArrayEquals(expected.stream().mapToInt(Integer::intValue).sorted().toArray(), binCoefficients(g, b),
                    where + ": bin " + b);
        }
        int total = 0;
        for (int l = 0; l < n; l++) {
            total += (outIdx[l] <= outLen / 2 ? 1 : 0) + (mod(-outIdx[l], outLen) <= outLen / 2 ? 1 : 0);
        }
        assertEquals(total, g.entries(), where);
        for (int e = 0; e < g.entries(); e++) {
            int src = g.sourceBin(e);
            assertTrue(src >= 0 && src <= srcLen / 2, where + ": source bin " + src + " outside the stored half");
            assertEquals(g.entrySources()[e] >> 1, src, where);
            assertEquals((g.entrySources()[e] & 1) != 0, g.negatesImag(e), where);
        }
    }

    /** DFT(a)[k] = Σ a[t]·e^{-2πi·t·k/len} for k = 0..bins-1, as {re[], im[]}. */
    private static double[][] dft(float[] a, int bins) {
        int len = a.length;
        double[] re = new double[bins];
        double[] im = new double[bins];
        for (int k = 0; k < bins; k++) {
            for (int t = 0; t < len; t++) {
                double ang = -2 * Math.PI * (((long) t * k) % len) / len;
                re[k] += a[t] * Math.cos(ang);
                im[k] += a[t] * Math.sin(ang);
            }
        }
        return new double[][] {re, im};
    }

    @Test
    void forwardGroupingComputesTheHalfOutputSpectrum() {
        TestData data = new TestData();
        for (FourierFTSpec spec : randomSpecs(data)) {
            String where = spec + data.tag();
            float[] c = data.gaussian(spec.n());
            checkForwardSemantics(spec.forwardGrouping(), spec.dOut(), spec.rows(), spec.cols(), c,
                    data.gaussian(spec.dIn()), where);
            checkForwardSemantics(spec.transposedGrouping(), spec.dIn(), spec.cols(), spec.rows(), c,
                    data.gaussian(spec.dOut()), where + " (transposed)");
        }
    }

    /**
     * With R = DFT(x) on bins 0..srcLen/2 and X = conj(DFT(x)): bin o of the grouping, Σ_e c·(Re R, ±Im R)/2,
     * must equal Z[o] = Σ_l c_l·X[k_l]/2·[j_l = o] + conj(c_l·X[k_l])/2·[-j_l = o]; and the real inverse DFT
     * of that half spectrum must be the product with the cosine matrix: y[p] = Σ_q Σ_l c_l cos(2π(p j/M + q k/N)) x[q].
     */
    private static void checkForwardSemantics(SpectralGrouping g, int outLen, int[] outIdx, int[] srcIdx, float[] c,
                                              float[] x, String where) {
        int srcLen = x.length;
        double[][] full = dft(x, srcLen);
        double[] xr = full[0];
        double[] xi = new double[srcLen];
        for (int k = 0; k < srcLen; k++) {
            xi[k] = -full[1][k]; // X = conj(DFT(x))
        }
        int bins = outLen / 2 + 1;
        double[] zr = new double[bins];
        double[] zi = new double[bins];
        for (int l = 0; l < c.length; l++) {
            int j = outIdx[l];
            int k = srcIdx[l];
            if (j < bins) {
                zr[j] += c[l] * xr[k] / 2;
                zi[j] += c[l] * xi[k] / 2;
            }
            int jm = mod(-j, outLen);
            if (jm < bins) {
                zr[jm] += c[l] * xr[k] / 2;
                zi[jm] -= c[l] * xi[k] / 2;
            }
        }
        double scaleRef = 1;
        for (int k = 0; k < srcLen; k++) {
            scaleRef = Math.max(scaleRef, Math.hypot(xr[k], xi[k]));
        }
        double tol = 1e-9 * scaleRef * Math.max(1, c.length);
        double[] gr = new double[bins];
        double[] gi = new double[bins];
        for (int o = 0; o < bins; o++) {
            for (int e = g.start(o); e < g.start(o + 1); e++) {
                int b = g.sourceBin(e);
                double cl = c[g.coefficient(e)];
                gr[o] += cl * full[0][b] / 2;
                gi[o] += (g.negatesImag(e) ? -cl : cl) * full[1][b] / 2;
            }
            assertEquals(zr[o], gr[o], tol, where + ": Re Z[" + o + "]");
            assertEquals(zi[o], gi[o], tol, where + ": Im Z[" + o + "]");
        }
        // end to end: C2R of the grouped half spectrum is the (unscaled) matrix-vector product
        for (int p = 0; p < outLen; p++) {
            double ref = 0;
            for (int q = 0; q < srcLen; q++) {
                double w = 0;
                for (int l = 0; l < c.length; l++) {
                    w += c[l] * Math.cos(2 * Math.PI * ((double) p * outIdx[l] / outLen + (double) q * srcIdx[l] / srcLen));
                }
                ref += w * x[q];
            }
            double got = 0;
            for (int o = 0; o < outLen; o++) {
                double re = o < bins ? gr[o] : gr[outLen - o];
                double im = o < bins ? gi[o] : -gi[outLen - o];
                double ang = 2 * Math.PI * (((long) p * o) % outLen) / outLen;
                got += re * Math.cos(ang) - im * Math.sin(ang);
            }
            assertEquals(ref, got, tol * outLen, where + ": y[" + p + "]");
        }
    }

    @Test
    void gradientBinsAreInRangeAndReadTheRightSpectrum() {
        TestData data = new TestData();
        for (FourierFTSpec spec : randomSpecs(data)) {
            String where = spec + data.tag();
            int m = spec.dOut();
            int d = spec.dIn();
            int h = spec.halfIn();
            int n = spec.n();
            int[] deltaBins = spec.deltaGradientBins();
            int[] xBins = spec.inputBins();
            int[] gyBins = spec.outputGradientBins();
            float[] signs = spec.imaginarySigns();
            assertEquals(n, deltaBins.length, where);
            assertEquals(n, xBins.length, where);
            assertEquals(n, gyBins.length, where);
            assertEquals(n, signs.length, where);
            for (int l = 0; l < n; l++) {
                assertTrue(deltaBins[l] >= 0 && deltaBins[l] < m * h, where + ": delta bin " + deltaBins[l]);
                assertTrue(xBins[l] >= 0 && xBins[l] <= d / 2, where + ": input bin " + xBins[l]);
                assertTrue(gyBins[l] >= 0 && gyBins[l] <= m / 2, where + ": output gradient bin " + gyBins[l]);
                assertTrue(signs[l] == 1f || signs[l] == -1f, where + ": sign " + signs[l]);
            }
            if (m * d > 1200) {
                continue; // the dense 2-D DFT below is O((d_out·d_in)²)
            }

            // ∂L/∂c_l ∝ Σ G[p,q] cos(2π(p j/M + q k/N)) = Re DFT2(G)[j,k], read at the stored R2C position
            float[] grad = data.gaussian(m * d);
            for (int l = 0; l < n; l++) {
                int u = deltaBins[l] / h;
                int v = deltaBins[l] % h;
                double reAtBin = 0;
                double cosSum = 0;
                for (int p = 0; p < m; p++) {
                    for (int q = 0; q < d; q++) {
                        double gpq = grad[p * d + q];
                        reAtBin += gpq * Math.cos(-2 * Math.PI * ((double) p * u / m + (double) q * v / d));
                        cosSum += gpq * Math.cos(2 * Math.PI * ((double) p * spec.row(l) / m + (double) q * spec.col(l) / d));
                    }
                }
                assertEquals(cosSum, reAtBin, 1e-9 * m * d, where + ": coefficient " + l + " (delta bin)");
            }

            // unmaterialized: Re(X[k]·Gy[j]) = Re R·Re Q − σ·Im R·Im Q from the stored R2C bins of x and ∂L/∂y
            float[] x = data.gaussian(d);
            float[] gy = data.gaussian(m);
            double[][] r = dft(x, d / 2 + 1);
            double[][] qq = dft(gy, m / 2 + 1);
            for (int l = 0; l < n; l++) {
                double direct = 0;
                for (int p = 0; p < m; p++) {
                    for (int q = 0; q < d; q++) {
                        direct += (double) gy[p] * x[q]
                                * Math.cos(2 * Math.PI * ((double) p * spec.row(l) / m + (double) q * spec.col(l) / d));
                    }
                }
                double fromBins = r[0][xBins[l]] * qq[0][gyBins[l]] - signs[l] * r[1][xBins[l]] * qq[1][gyBins[l]];
                assertEquals(direct, fromBins, 1e-9 * m * d, where + ": coefficient " + l + " (unmaterialized)");
            }
        }
    }

    @Test
    void groupingsOfALargeSpecAreConsistent() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(4096, 4096, 1000);
        assertEquals(1000, spec.n());
        SpectralGrouping fwd = spec.forwardGrouping();
        assertEquals(2049, fwd.bins());
        int[] times = new int[1000];
        for (int e = 0; e < fwd.entries(); e++) {
            times[fwd.coefficient(e)]++;
        }
        for (int l = 0; l < 1000; l++) {
            int j = spec.row(l);
            int expected = (j <= 2048 ? 1 : 0) + (mod(-j, 4096) <= 2048 ? 1 : 0);
            assertEquals(expected, times[l], "coefficient " + l + " at row " + j);
        }
        SpectralGrouping half = spec.halfSpectrumGrouping();
        int[] pos = half.positions();
        for (int b = 1; b < pos.length; b++) {
            assertTrue(pos[b] > pos[b - 1]);
        }
        assertTrue(pos[pos.length - 1] < 4096 * 2049);
    }
    /**
     * withAlpha keeps the shape and index set and shares the tables (an adapter pool's specs of one index set cost
     * no grouping each); sameIndexSet and indexSetHashCode ignore α and nothing else; a non-finite α is refused.
     */
    @Test
    void withAlphaSharesTheIndexSetAndItsTables() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(37, 29, 20, 5, 0.3f);
        FourierFTSpec other = spec.withAlpha(150f);
        assertEquals(150f, other.alpha());
        assertEquals(FourierFTSpec.fromSeed(37, 29, 20, 5, 150f), other);
        assertTrue(!other.equals(spec), "α is part of a spec's equality");
        assertTrue(spec.withAlpha(0.3f) == spec, "the same α: the same spec");
        assertTrue(other.forwardGrouping() == spec.forwardGrouping() && other.transposedGrouping()
                == spec.transposedGrouping(), "the groupings shared");
        assertEquals((float) (150.0 / (37 * 29)), other.scale());
        assertTrue(spec.sameIndexSet(other) && other.sameIndexSet(spec));
        assertEquals(spec.indexSetHashCode(), other.indexSetHashCode());
        assertTrue(!spec.sameIndexSet(FourierFTSpec.fromSeed(37, 29, 20, 6, 0.3f)), "another seed");
        assertTrue(!spec.sameIndexSet(FourierFTSpec.fromSeed(37, 29, 21, 5, 0.3f)), "another n");
        assertTrue(!spec.sameIndexSet(FourierFTSpec.fromSeed(29, 37, 20, 5, 0.3f)), "another shape");
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> spec.withAlpha(bad));
            assertTrue(e.getMessage().contains("alpha"), e.getMessage());
        }
    }

    /** IndexSetKey: one key per index set, whatever the α or whether the spec was built again; null refused. */
    @Test
    void indexSetKeysGroupSpecsByIndexSet() {
        FourierFTSpec spec = FourierFTSpec.fromSeed(37, 29, 20, 5, 0.3f);
        java.util.Map<FourierFTSpec.IndexSetKey, Integer> counts = new java.util.HashMap<>();
        for (FourierFTSpec s : new FourierFTSpec[] {spec, spec.withAlpha(150f), FourierFTSpec.fromSeed(37, 29, 20, 5, -2f),
                FourierFTSpec.fromSeed(37, 29, 20, 6, 0.3f), FourierFTSpec.fromSeed(29, 37, 20, 5, 0.3f)}) {
            counts.merge(new FourierFTSpec.IndexSetKey(s), 1, Integer::sum);
        }
        assertEquals(3, counts.size(), "three index sets");
        assertEquals(3, counts.get(new FourierFTSpec.IndexSetKey(spec.withAlpha(7f))), "one key for the three α's");
        assertTrue(!new FourierFTSpec.IndexSetKey(spec).equals(spec), "a key is not a spec");
        assertThrows(IllegalArgumentException.class, () -> new FourierFTSpec.IndexSetKey(null));
    }
}
