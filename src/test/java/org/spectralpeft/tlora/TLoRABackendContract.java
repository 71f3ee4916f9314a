package org.spectralpeft.tlora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.spectralpeft.TestData;
import org.spectralpeft.core.DType;
import org.spectralpeft.core.HostArray;
import org.spectralpeft.tlora.TLoRASpec.Residual;

/**
 * Every TLoRA operation of a backend against the float64 dense reference ({@link TLoRAReference}): factorisations
 * with 1 to 4 factors including 1s and primes, ring ranks 1, 2 and 4, every residual and dtype, gradients against
 * central differences, the authors' own values, identity start, poisoned outputs, repeats and every validation
 * error. Subclasses supply the backend.
 */
public abstract class TLoRABackendContract {

    /** @return the backend under test, open */
    protected abstract TLoRABackend backend();

    /** @return a new backend of the same kind, to be closed by the test */
    protected abstract TLoRABackend another();

    /** Factorisations with 1, 2, 3 and 4 factors, 1s and primes, every residual, ring ranks 1, 2 and 4. */
    static Stream<Arguments> cases() {
        int[][][] shapes = { // out, in
            {{3, 2}, {2, 3}},
            {{4, 3, 5}, {3, 4, 5}},
            {{7, 1}, {1, 7}},
            {{2, 1, 5}, {4, 8, 10}},
            {{3, 1, 2, 1}, {2, 1, 3, 2}},
            {{5}, {11}},
        };
        List<Arguments> out = new ArrayList<>();
        int[] rings = {1, 2, 4};
        for (int i = 0; i < shapes.length; i++) { // over the shapes, every kind meets every ring and rank 1 to 3
            for (Residual kind : Residual.values()) {
                int k = kind.ordinal();
                out.add(Arguments.of(shapes[i][0], shapes[i][1], rings[(k + i) % rings.length], kind, 1 + (k + 2 * i) % 3));
            }
        }
        return out.stream();
    }

    /**
     * Parameters with every array random (the transform away from identity, the residual away from zero).
     *
     * @param spec the layer
     * @param data the source of the draws
     * @return the parameters
     */
    protected static TLoRAParameters random(TLoRASpec spec, TestData data) {
        float[][] transform = new float[spec.inOrder()][];
        for (int d = 0; d < transform.length; d++) {
            transform[d] = scaled(data.gaussian(spec.transformCoreLength(d)), 1.0 / spec.transformRank());
        }
        float[][] residual = new float[spec.residualArrays()][];
        for (int k = 0; k < residual.length; k++) {
            residual[k] = scaled(data.gaussian((int) spec.residualLength(k)), 0.5);
        }
        return TLoRAParameters.of(spec, transform, residual);
    }

    private static float[] scaled(float[] v, double s) {
        for (int i = 0; i < v.length; i++) {
            v[i] *= (float) s;
        }
        return v;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void forwardMatchesTheReference(int[] out, int[] in, int ring, Residual kind, int rank) {
        for (DType dtype : DType.values()) {
            TestData data = new TestData();
            TLoRASpec spec = TLoRASpec.of(out, in, ring, kind, rank, 1.3f);
            TLoRAParameters p = random(spec, data);
            int tokens = 1 + data.nextInt(20);
            HostArray w0 = HostArray.of(dtype, data.gaussian(spec.dOut() * spec.dIn()));
            HostArray x = HostArray.of(dtype, data.gaussian(tokens * spec.dIn()));
            HostArray y = HostArray.of(dtype, data.gaussian(tokens * spec.dOut()));
            double[] before = TestData.toDouble(y);
            backend().forward(spec, p, w0, x, tokens, y);
            double[] ref = TLoRAReference.forward(spec, p, TestData.toDouble(w0), TestData.toDouble(x), tokens);
            for (int i = 0; i < ref.length; i++) {
                ref[i] += before[i];
            }
            double err = TestData.relativeError(TestData.toDouble(y), ref);
            assertTrue(err <= TestData.tolerance(dtype), dtype + " forward error " + err + " " + spec + data.tag());
        }
    }

    @ParameterizedTest
    @EnumSource(Residual.class)
    void forwardOnMoreTokensThanOutputsMatchesTheReference(Residual kind) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {2, 3}, new int[] {3, 4}, 2, kind, 2, 1.1f);
        TLoRAParameters p = random(spec, data);
        int tokens = 40; // more than d_out = 6: T goes on W0's rows
        HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
        HostArray x = HostArray.float32(data.gaussian(tokens * spec.dIn()));
        HostArray y = HostArray.float32(new float[tokens * spec.dOut()]);
        backend().forward(spec, p, w0, x, tokens, y);
        double[] ref = TLoRAReference.forward(spec, p, TestData.toDouble(w0), TestData.toDouble(x), tokens);
        double err = TestData.relativeError(TestData.toDouble(y), ref);
        assertTrue(err <= 1e-5, "forward error " + err + " " + spec + data.tag());
    }

    @ParameterizedTest
    @MethodSource("cases")
    void materializeAndMergeMatchTheReference(int[] out, int[] in, int ring, Residual kind, int rank) {
        for (DType dtype : DType.values()) {
            TestData data = new TestData();
            TLoRASpec spec = TLoRASpec.of(out, in, ring, kind, rank, 0.7f);
            TLoRAParameters p = random(spec, data);
            HostArray w0 = HostArray.of(dtype, data.gaussian(spec.dOut() * spec.dIn()));
            double[] ref = TLoRAReference.weight(spec, p, TestData.toDouble(w0));
            HostArray materialized = TestData.poisoned(dtype, spec.dOut() * spec.dIn());
            backend().materialize(spec, p, w0, materialized);
            double err = TestData.relativeError(TestData.toDouble(materialized), ref);
            assertTrue(err <= TestData.tolerance(dtype), dtype + " materialize error " + err + " " + spec + data.tag());
            backend().merge(spec, p, w0);
            for (int i = 0; i < ref.length; i++) {
                assertEquals(materialized.get(i), w0.get(i), "merge and materialize agree at " + i + data.tag());
            }
        }
    }

    /** L = Σ g·y in float64 through the reference. */
    private static double norm(double[] v) {
        double s = 0;
        for (double e : v) {
            s += e * e;
        }
        return Math.sqrt(s);
    }

    private static double loss(TLoRASpec spec, TLoRAParameters p, double[] w0, double[] x, double[] g, int tokens) {
        double[] y = TLoRAReference.forward(spec, p, w0, x, tokens);
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
            sum += g[i] * y[i];
        }
        return sum;
    }

    /** The cases small enough (d_in, d_out ≤ 60) for central differences through the dense reference. */
    static Stream<Arguments> smallCases() {
        return cases().filter(a -> {
            int in = 1;
            for (int f : (int[]) a.get()[1]) {
                in *= f;
            }
            return in <= 60;
        });
    }

    /**
     * Gradients against central differences of the float64 reference. The loss is linear in each core and
     * residual array separately, so the differences are exact up to rounding: the check is tight, relative to
     * each array's gradient, with one allowance: a transform core's gradient is a sum of terms up to about
     * ‖g‖·‖W0‖·‖x‖·Π‖other cores‖ in size, which may cancel to far less (a 1 × 1 core's single entry, seed
     * 43169872424295: 0.092 out of terms near 2,000), so float32 rounding of those terms (6e-8 of them) is
     * allowed on top, as 1e-7 of that bound; likewise a residual array's, whose terms are up to
     * s·‖g‖·‖x‖·Π‖other residual arrays‖ (a TTM residual's 1 × 1 × 1 × 1 core, seed 21439091774534: 3.0e-4).
     */
    @ParameterizedTest
    @MethodSource("smallCases")
    void backwardMatchesTheReference(int[] out, int[] in, int ring, Residual kind, int rank) {
        for (DType dtype : DType.values()) {
            TestData data = new TestData();
            TLoRASpec spec = TLoRASpec.of(out, in, ring, kind, rank, 0.9f);
            TLoRAParameters p = random(spec, data);
            int tokens = 1 + data.nextInt(20);
            HostArray w0 = HostArray.of(dtype, data.gaussian(spec.dOut() * spec.dIn()));
            HostArray x = HostArray.of(dtype, data.gaussian(tokens * spec.dIn()));
            HostArray g = HostArray.of(dtype, data.gaussian(tokens * spec.dOut()));
            HostArray gradX = HostArray.of(DType.FLOAT32, data.gaussian(tokens * spec.dIn()));
            double[] gradXBefore = TestData.toDouble(gradX);
            TLoRAParameters grads = backend().backward(spec, p, w0, x, g, tokens, gradX);
            double[] w0d = TestData.toDouble(w0);
            double[] xd = TestData.toDouble(x);
            double[] gd = TestData.toDouble(g);
            List<float[]> arrays = new ArrayList<>();
            List<float[]> gradients = new ArrayList<>();
            for (int d = 0; d < spec.inOrder(); d++) {
                arrays.add(p.transformCore(d));
                gradients.add(grads.transformCore(d));
            }
            for (int k = 0; k < spec.residualArrays(); k++) {
                arrays.add(p.residual(k));
                gradients.add(grads.residual(k));
            }
            for (int k = 0; k < arrays.size(); k++) {
                float[] a = arrays.get(k);
                int samples = Math.min(a.length, 12);
                double[] analytic = new double[samples];
                double[] numeric = new double[samples];
                for (int j = 0; j < samples; j++) {
                    int i = samples == a.length ? j : data.nextInt(a.length);
                    float saved = a[i];
                    a[i] = saved + 0.01f;
                    float up = a[i];
                    double plus = loss(spec, p, w0d, xd, gd, tokens);
                    a[i] = saved - 0.01f;
                    float down = a[i];
                    double minus = loss(spec, p, w0d, xd, gd, tokens);
                    a[i] = saved;
                    numeric[j] = (plus - minus) / ((double) up - down);
                    analytic[j] = gradients.get(k)[i];
                }
                double norm = 0;
                double analyticNorm = 0;
                for (int j = 0; j < samples; j++) {
                    norm += numeric[j] * numeric[j];
                    analyticNorm += analytic[j] * analytic[j];
                }
                if (norm == 0) { // entries the loss does not depend on (a one-core ring reads only the slices' diagonals)
                    assertTrue(Math.sqrt(analyticNorm) < 1e-6, "array " + k + " gradient should be zero " + spec + data.tag());
                    continue;
                }
                double termBound;
                if (k < spec.inOrder()) {
                    termBound = norm(gd) * norm(w0d) * norm(xd);
                    for (int d = 0; d < spec.inOrder(); d++) {
                        termBound *= d == k ? 1 : norm(TestData.toDouble(p.transformCore(d)));
                    }
                } else { // a residual array's terms: s·‖g‖·‖x‖·Π‖the other residual arrays‖
                    termBound = spec.scale() * norm(gd) * norm(xd);
                    for (int j = 0; j < spec.residualArrays(); j++) {
                        termBound *= spec.inOrder() + j == k ? 1 : norm(TestData.toDouble(p.residual(j)));
                    }
                }
                double err = TestData.relativeError(analytic, numeric);
                double allowed = 1e-4 + 1e-7 * termBound / Math.sqrt(norm);
                assertTrue(err < allowed, "array " + k + " gradient error " + err + " (allowed " + allowed + ") " + spec
                        + data.tag());
            }
            // ∂L/∂x = g·W' exactly
            double[] w = TLoRAReference.weight(spec, p, w0d);
            double[] expected = new double[tokens * spec.dIn()];
            for (int t = 0; t < tokens; t++) {
                for (int i = 0; i < spec.dIn(); i++) {
                    double sum = gradXBefore[t * spec.dIn() + i];
                    for (int o = 0; o < spec.dOut(); o++) {
                        sum += gd[t * spec.dOut() + o] * w[o * spec.dIn() + i];
                    }
                    expected[t * spec.dIn() + i] = sum;
                }
            }
            double err = TestData.relativeError(TestData.toDouble(gradX), expected);
            assertTrue(err < 1e-5, dtype + " gradX error " + err + " " + spec + data.tag());
        }
    }

    /**
     * ∂L/∂x = g·W' on both routes: T on the tokens' rows, and (many more tokens than outputs, where
     * {@link RingCost} chooses it for every ring rank here) W0·T then one GEMM.
     */
    @ParameterizedTest
    @CsvSource({"1,LORA", "2,TR", "4,TTM", "2,LORA"})
    void gradXMatchesTheReferenceOnBothRoutes(int ring, Residual kind) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {2, 3, 1}, new int[] {4, 1, 5}, ring, kind, 2, 1.3f);
        TLoRAParameters p = random(spec, data);
        double[] w0 = TestData.toDouble(HostArray.float32(data.gaussian(spec.dOut() * spec.dIn())));
        double[] w = TLoRAReference.weight(spec, p, w0);
        for (int tokens : new int[] {spec.dOut() - 1, 10 * spec.dOut() + 1}) {
            float[] x = data.gaussian(tokens * spec.dIn());
            float[] g = data.gaussian(tokens * spec.dOut());
            float[] gx = data.gaussian(tokens * spec.dIn());
            double[] expected = TestData.toDouble(HostArray.float32(gx));
            for (int t = 0; t < tokens; t++) {
                for (int i = 0; i < spec.dIn(); i++) {
                    for (int o = 0; o < spec.dOut(); o++) {
                        expected[t * spec.dIn() + i] += (double) g[t * spec.dOut() + o] * w[o * spec.dIn() + i];
                    }
                }
            }
            HostArray gradX = HostArray.float32(gx);
            backend().backward(spec, p, HostArray.float32(toFloats(w0)), HostArray.float32(x), HostArray.float32(g),
                    tokens, gradX);
            double err = TestData.relativeError(TestData.toDouble(gradX), expected);
            assertTrue(err < 1e-5, tokens + " tokens: gradX error " + err + " " + spec + data.tag());
        }
    }

    /** The cases whose transform can take either route (R ≥ 2, two factors or more), once per route. */
    static Stream<Arguments> routedCases() {
        List<Arguments> all = new ArrayList<>();
        for (String route : new String[] {"ring", "panels"}) {
            cases().map(Arguments::get).filter(a -> (int) a[2] >= 2 && ((int[]) a[1]).length >= 2)
                    .forEach(a -> all.add(Arguments.of(route, a[0], a[1], a[2], a[3], a[4])));
        }
        return all.stream();
    }

    /**
     * Runs the check with T's route forced through {@link RingCost#ROUTE_PROPERTY}, then restores it.
     *
     * @param route {@code ring} or {@code panels}
     * @param check what runs on it
     */
    protected static void onRoute(String route, Runnable check) {
        String saved = System.getProperty(RingCost.ROUTE_PROPERTY);
        System.setProperty(RingCost.ROUTE_PROPERTY, route);
        try {
            check.run();
        } finally {
            if (saved == null) {
                System.clearProperty(RingCost.ROUTE_PROPERTY);
            } else {
                System.setProperty(RingCost.ROUTE_PROPERTY, saved);
            }
        }
    }

    /** Forward, materialize and merge, and (where small enough) every gradient, with T through the ring or its panels. */
    @ParameterizedTest
    @MethodSource("routedCases")
    void everyOperationMatchesTheReferenceOnEitherRouteThroughT(String route, int[] out, int[] in, int ring,
                                                                Residual kind, int rank) {
        onRoute(route, () -> {
            forwardMatchesTheReference(out, in, ring, kind, rank);
            materializeAndMergeMatchTheReference(out, in, ring, kind, rank);
            if (java.util.Arrays.stream(in).reduce(1, (a, b) -> a * b) <= 60) { // as smallCases()
                backwardMatchesTheReference(out, in, ring, kind, rank);
            }
        });
    }

    /** T on W0's rows (more tokens than outputs) and ∂x on both of its routes, with T through the ring or its panels. */
    @ParameterizedTest
    @CsvSource({"ring,2,TR", "panels,2,TR", "ring,4,LORA", "panels,4,LORA", "ring,4,TTM", "panels,2,TTM"})
    void theRowsOfW0MatchTheReferenceOnEitherRouteThroughT(String route, int ring, Residual kind) {
        onRoute(route, () -> {
            forwardOnMoreTokensThanOutputsMatchesTheReference(kind);
            gradXMatchesTheReferenceOnBothRoutes(ring, kind);
            theInitialParametersGiveW0(ring, kind);
        });
    }

    /**
     * The two routes are different computations (the CPU's ring sums in float64, the panels in float32 GEMMs; on a
     * device, other orders), so their outputs differ in some bit: were they equal everywhere, the property would
     * not have switched the route, and the checks above would have tested one route twice.
     */
    @Test
    void theRoutesThroughTAreTwoComputations() {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {4, 3, 5}, new int[] {3, 4, 5}, 4, Residual.LORA, 2, 1f);
        TLoRAParameters p = random(spec, data);
        HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
        HostArray x = HostArray.float32(data.gaussian(7 * spec.dIn()));
        float[][] y = new float[2][7 * spec.dOut()];
        float[][] w = new float[2][spec.dOut() * spec.dIn()];
        String[] routes = {"ring", "panels"};
        for (int k = 0; k < 2; k++) {
            int at = k;
            onRoute(routes[k], () -> {
                backend().forward(spec, p, w0, x, 7, HostArray.float32(y[at]));
                backend().materialize(spec, p, w0, HostArray.float32(w[at]));
            });
        }
        assertFalse(java.util.Arrays.equals(y[0], y[1]), "forward: the same bits on both routes" + data.tag());
        assertFalse(java.util.Arrays.equals(w[0], w[1]), "materialize: the same bits on both routes" + data.tag());
    }

    private static float[] toFloats(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return f;
    }

    @ParameterizedTest
    @EnumSource(Residual.class)
    void backwardRepeatsAreBitIdenticalAndGradXIsOptional(Residual kind) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {6, 5}, new int[] {4, 9}, 2, kind, 2, 1f);
        TLoRAParameters p = random(spec, data);
        HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
        HostArray x = HostArray.float32(data.gaussian(70 * spec.dIn()));
        HostArray g = HostArray.float32(data.gaussian(70 * spec.dOut()));
        TLoRAParameters first = backend().backward(spec, p, w0, x, g, 70, null);
        TLoRAParameters second = backend().backward(spec, p, w0, x, g, 70, HostArray.float32(new float[70 * spec.dIn()]));
        for (int d = 0; d < spec.inOrder(); d++) {
            assertArrayEquals(first.transformCore(d), second.transformCore(d), data.tag());
        }
        for (int k = 0; k < spec.residualArrays(); k++) {
            assertArrayEquals(first.residual(k), second.residual(k), data.tag());
        }
    }

    @ParameterizedTest
    @CsvSource({"2,false,LORA", "2,false,TR", "2,false,TTM", "2,true,LORA", "2,true,TR", "2,true,TTM",
        "3,false,LORA", "3,false,TR", "3,false,TTM", "3,true,LORA", "3,true,TR", "3,true,TTM"})
    void theAuthorsCaseGivesTheAuthorsValues(int factors, boolean kronecker, Residual kind) {
        AuthorsCase authors = AuthorsCase.of(factors);
        TLoRASpec spec = authors.spec(kronecker, kind);
        TLoRAParameters p = authors.parameters(kronecker, kind);
        String key = AuthorsCase.key(kronecker, kind);
        String what = authors + ": " + key;
        HostArray w0 = HostArray.float32(authors.floats("W0"));
        HostArray w = HostArray.float32(new float[spec.dOut() * spec.dIn()]);
        backend().materialize(spec, p, w0, w);
        assertArrayEquals(authors.get("W'" + key + " = W0@T + s*Delta"), TestData.toDouble(w), 1e-5, what);
        float[] bias = authors.floats("bias");
        float[] y = new float[authors.tokens() * spec.dOut()];
        for (int i = 0; i < y.length; i++) {
            y[i] = bias[i % spec.dOut()]; // the bias goes into y first
        }
        backend().forward(spec, p, w0, HostArray.float32(authors.floats("x")), authors.tokens(), HostArray.float32(y));
        assertArrayEquals(authors.get("y" + key + " = x@W'^T + b"), TestData.toDouble(y), 1e-5, what);
    }

    @ParameterizedTest
    @CsvSource({"1,LORA", "2,TR", "4,TTM", "2,LORA", "4,TR", "1,TTM"})
    void theInitialParametersGiveW0(int ring, Residual kind) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {4, 2, 5}, new int[] {3, 8, 2}, ring, kind, 3, 2f);
        TLoRAParameters p = TLoRAParameters.initial(spec, new Random(data.seed));
        float[] w0 = data.gaussian(spec.dOut() * spec.dIn());
        for (int tokens : new int[] {9, 50}) { // T on the tokens, and (more tokens than outputs) on W0's rows
            float[] x = data.gaussian(tokens * spec.dIn());
            float[] y = new float[tokens * spec.dOut()];
            backend().forward(spec, p, HostArray.float32(w0), HostArray.float32(x), tokens, HostArray.float32(y));
            double[] plain = new double[tokens * spec.dOut()];
            for (int t = 0; t < tokens; t++) {
                for (int o = 0; o < spec.dOut(); o++) {
                    for (int i = 0; i < spec.dIn(); i++) {
                        plain[t * spec.dOut() + o] += (double) x[t * spec.dIn() + i] * w0[o * spec.dIn() + i];
                    }
                }
            }
            double err = TestData.relativeError(TestData.toDouble(HostArray.float32(y)), plain);
            assertTrue(err < 1e-6, tokens + " tokens: x·W0ᵀ, error " + err + data.tag());
        }
        float[] w = new float[w0.length];
        backend().materialize(spec, p, HostArray.float32(w0), HostArray.float32(w));
        assertArrayEquals(w0, w, "W' = W0, bit for bit" + data.tag());
    }

    @ParameterizedTest
    @EnumSource(Residual.class)
    void repeatsAreBitIdentical(Residual kind) {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {6, 5}, new int[] {4, 9}, 2, kind, 2, 1f);
        TLoRAParameters p = random(spec, data);
        HostArray w0 = HostArray.float32(data.gaussian(spec.dOut() * spec.dIn()));
        HostArray x = HostArray.float32(data.gaussian(70 * spec.dIn()));
        float[] first = new float[70 * spec.dOut()];
        float[] second = new float[70 * spec.dOut()];
        backend().forward(spec, p, w0, x, 70, HostArray.float32(first));
        backend().forward(spec, p, w0, x, 70, HostArray.float32(second));
        assertArrayEquals(first, second, data.tag());
    }

    @Test
    void badArgumentsAreRefusedBeforeAnyWork() {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {3, 2}, new int[] {2, 3}, 2, Residual.TR, 2, 1f);
        TLoRAParameters p = random(spec, data);
        HostArray w0 = HostArray.float32(data.gaussian(36));
        HostArray x = HostArray.float32(data.gaussian(12));
        float[] yValues = data.gaussian(12);
        HostArray y = HostArray.float32(yValues.clone());
        assertMessage(() -> backend().forward(spec, p, HostArray.float32(new float[35]), x, 2, y), "w0");
        assertMessage(() -> backend().forward(spec, p, w0, x, 3, y), "x");
        assertMessage(() -> backend().forward(spec, p, w0, x, 0, y), "tokens");
        float[] nan = data.gaussian(12);
        nan[5] = Float.NaN;
        assertMessage(() -> backend().forward(spec, p, w0, HostArray.float32(nan), 2, y), "x");
        float[][] cores = {new float[16], new float[35]};
        float[][] residual = {new float[12], new float[8], new float[8], new float[12]};
        assertMessage(() -> TLoRAParameters.of(spec, cores, residual), "transform core 1");
        float[] bad = p.transformCore(0);
        float saved = bad[3];
        bad[3] = Float.POSITIVE_INFINITY; // the caller changed its array after wrapping it: each call checks
        assertMessage(() -> backend().forward(spec, p, w0, x, 2, y), "transform core 0");
        bad[3] = saved;
        assertMessage(() -> backend().forward(spec, p, w0, x, 2, HostArray.float32(new float[11])), "y");
        HostArray readOnlyY = HostArray.float32(java.nio.FloatBuffer.wrap(new float[12]).asReadOnlyBuffer());
        assertMessage(() -> backend().forward(spec, p, w0, x, 2, readOnlyY), "y is a read-only buffer");
        float[] residual1 = p.residual(1);
        float savedResidual = residual1[2];
        residual1[2] = Float.NaN;
        assertMessage(() -> backend().forward(spec, p, w0, x, 2, y), "residual array 1");
        residual1[2] = savedResidual;
        assertArrayEquals(yValues, y.floats(), "y untouched by refused calls");

        // the backward: x's and W0's checks, then ∂L/∂y's and gradX's, gradX untouched
        float[] gradX0 = data.gaussian(12);
        HostArray gradX = HostArray.float32(gradX0.clone());
        HostArray g = HostArray.float32(data.gaussian(12));
        assertMessage(() -> backend().backward(spec, p, w0, x, HostArray.float32(new float[10]), 2, gradX), "gradY");
        float[] nanG = data.gaussian(12);
        nanG[4] = Float.NaN;
        assertMessage(() -> backend().backward(spec, p, w0, x, HostArray.float32(nanG), 2, gradX), "gradY");
        assertMessage(() -> backend().backward(spec, p, w0, x, g, 2, HostArray.float32(new float[13])), "gradX");
        assertMessage(() -> backend().backward(spec, p, HostArray.float32(new float[35]), x, g, 2, gradX), "w0");
        assertArrayEquals(gradX0, gradX.floats(), "gradX untouched by refused calls");
        assertMessage(() -> backend().materialize(spec, p, w0, HostArray.float32(new float[35])), "out");
        float[][] threeResidualArrays = {new float[12], new float[8], new float[8]}; // TR has four
        assertMessage(() -> TLoRAParameters.of(spec, p.transformCores(), threeResidualArrays), "residual arrays");
        assertMessage(() -> TLoRASpec.of(new int[] {6}, new int[] {6}, 1, Residual.LORA, 0, 1f), "rank");
        assertMessage(() -> TLoRASpec.of(new int[] {6}, new int[] {2, 3}, 1, Residual.TTM, 2, 1f), "TTM");
        assertMessage(() -> TLoRASpec.of(new int[] {6}, new int[] {2, 0}, 1, Residual.LORA, 2, 1f), "inShape[1]");
        assertMessage(() -> TLoRASpec.of(new int[] {6}, new int[] {6}, 0, Residual.LORA, 2, 1f), "transformRank");
        assertMessage(() -> TLoRASpec.of(new int[] {6}, new int[] {6}, 1, Residual.LORA, 2, Float.NaN), "alpha");
        assertMessage(() -> TLoRASpec.authorsShape(100), "100");
        assertArrayEquals(new int[] {8, 10, 16}, TLoRASpec.authorsShape(1280));
        HostArray w = HostArray.float32(new float[36]);
        float[] mergeInput = data.gaussian(36);
        mergeInput[7] = Float.NaN;
        HostArray weight = HostArray.float32(mergeInput.clone());
        assertMessage(() -> backend().merge(spec, p, weight), "w0");
        assertArrayEquals(mergeInput, weight.floats(), "a refused merge leaves the weight alone");
        TLoRABackend closed = another();
        closed.close();
        closed.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> closed.materialize(spec, p, w0, w));
    }

    /** A 2 × 2 layer whose residual Δ[0][0] = 1e8 overflows float16 (T the identity). */
    private static final TLoRASpec OVERFLOWING = TLoRASpec.of(new int[] {2}, new int[] {2}, 1, Residual.LORA, 1, 1f);

    private static TLoRAParameters overflowingParameters() {
        return TLoRAParameters.of(OVERFLOWING, new float[][] {{1, 0, 0, 1}}, new float[][] {{1e4f, 0}, {1e4f, 0}});
    }

    @Test
    void anOverflowingMaterializeThrows() {
        TLoRASpec spec = OVERFLOWING;
        TLoRAParameters p = overflowingParameters();
        HostArray out = HostArray.allocate(DType.FLOAT16, 4);
        assertMessage(() -> backend().materialize(spec, p, HostArray.float32(new float[4]), out), "out");
    }

    /** Merge overflows as materialize does: a weight not finite in its dtype afterwards is refused, naming it. */
    @Test
    void anOverflowingMergeThrows() {
        TLoRASpec spec = OVERFLOWING;
        TLoRAParameters p = overflowingParameters();
        HostArray weight = HostArray.of(DType.FLOAT16, new float[] {0.5f, -0.25f, 1f, 2f}); // Δ[0][0] = 1e8
        assertMessage(() -> backend().merge(spec, p, weight), "weight[0] = Infinity: the result is not finite in");
        assertEquals(-0.25f, weight.get(1), "the other elements are merged");
    }

    /**
     * Arrays the library would write into that the caller made read-only (merge's weight, the backward's gradX) and
     * a weight W0 that is not finite (forward, materialize) are refused before any work, naming the array, and every
     * output is left as it was.
     */
    @Test
    void readOnlyOutputsAndNonFiniteWeightsAreRefusedBeforeAnyWork() {
        TestData data = new TestData();
        TLoRASpec spec = TLoRASpec.of(new int[] {3, 2}, new int[] {2, 3}, 2, Residual.TTM, 2, 1f);
        TLoRAParameters p = random(spec, data);
        HostArray w0 = HostArray.float32(data.gaussian(36));
        HostArray x = HostArray.float32(data.gaussian(12));
        HostArray g = HostArray.float32(data.gaussian(12));

        float[] weightValues = data.gaussian(36);
        float[] weightArray = weightValues.clone();
        HostArray readOnlyWeight = HostArray.float32(java.nio.FloatBuffer.wrap(weightArray).asReadOnlyBuffer());
        assertMessage(() -> backend().merge(spec, p, readOnlyWeight), "weight is a read-only buffer");
        assertArrayEquals(weightValues, weightArray, "a refused merge leaves the weight alone");

        float[] gradXValues = data.gaussian(12);
        float[] gradXArray = gradXValues.clone();
        HostArray readOnlyGradX = HostArray.float32(java.nio.FloatBuffer.wrap(gradXArray).asReadOnlyBuffer());
        assertMessage(() -> backend().backward(spec, p, w0, x, g, 2, readOnlyGradX), "gradX is a read-only buffer");
        assertArrayEquals(gradXValues, gradXArray, "gradX untouched by a refused backward");

        float[] yValues = data.gaussian(12);
        HostArray y = HostArray.float32(yValues.clone());
        float[] outValues = data.gaussian(36);
        HostArray out = HostArray.float32(outValues.clone());
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            float[] w = data.gaussian(36);
            w[29] = bad;
            assertMessage(() -> backend().forward(spec, p, HostArray.float32(w), x, 2, y), "w0[29] is " + bad);
            assertMessage(() -> backend().materialize(spec, p, HostArray.of(DType.BFLOAT16, w), out), "w0[29] is " + bad);
        }
        assertArrayEquals(yValues, y.floats(), "y untouched by refused forwards");
        assertArrayEquals(outValues, out.floats(), "out untouched by refused materializes");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String names) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(names), "'" + e.getMessage() + "' should name " + names);
    }
}
