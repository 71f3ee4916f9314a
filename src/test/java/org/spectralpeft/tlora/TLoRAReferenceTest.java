package org.spectralpeft.tlora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The float64 reference against the values the authors' formulas give (authors_formulas.py), on 2 and 3 factors. */
class TLoRAReferenceTest {
    /** The inputs have one decimal, rounded to float32 (0.1 is not exact there): a few 1e-8 apart, index errors 0.1. */
    private static final double EXACT = 1e-6;

    @ParameterizedTest
    @ValueSource(ints = {2, 3})
    void transformsMatchTheAuthorsIndexOrder(int factors) {
        AuthorsCase authors = AuthorsCase.of(factors);
        for (boolean kronecker : new boolean[] {false, true}) {
            TLoRASpec spec = authors.spec(kronecker, TLoRASpec.Residual.LORA);
            TLoRAParameters p = authors.parameters(kronecker, TLoRASpec.Residual.LORA);
            String name = authors.transformName(kronecker);
            assertArrayEquals(authors.get(name), TLoRAReference.transform(spec, p), EXACT, authors + ": " + name);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3})
    void residualsMatchTheAuthorsIndexOrder(int factors) {
        AuthorsCase authors = AuthorsCase.of(factors);
        String[] names = {"Delta_lora = lora_B @ lora_A", "Delta_ttv", "Delta_ttm"};
        for (TLoRASpec.Residual kind : TLoRASpec.Residual.values()) {
            TLoRASpec spec = authors.spec(false, kind);
            TLoRAParameters p = authors.parameters(false, kind);
            assertArrayEquals(authors.get(names[kind.ordinal()]), TLoRAReference.residual(spec, p), EXACT,
                    authors + ": " + kind);
        }
    }

    @ParameterizedTest
    @CsvSource({"2,false,LORA", "2,false,TR", "2,false,TTM", "2,true,LORA", "2,true,TR", "2,true,TTM",
        "3,false,LORA", "3,false,TR", "3,false,TTM", "3,true,LORA", "3,true,TR", "3,true,TTM"})
    void weightAndOutputMatchTheAuthors(int factors, boolean kronecker, TLoRASpec.Residual kind) {
        AuthorsCase authors = AuthorsCase.of(factors);
        TLoRASpec spec = authors.spec(kronecker, kind);
        TLoRAParameters p = authors.parameters(kronecker, kind);
        double[] w0 = authors.get("W0");
        String key = authors + ": " + AuthorsCase.key(kronecker, kind);
        assertArrayEquals(authors.get("W'" + AuthorsCase.key(kronecker, kind) + " = W0@T + s*Delta"),
                TLoRAReference.weight(spec, p, w0), EXACT, key);
        double[] y = authors.get("y" + AuthorsCase.key(kronecker, kind) + " = x@W'^T + b");
        double[] bias = authors.get("bias");
        for (int i = 0; i < y.length; i++) {
            y[i] -= bias[i % bias.length]; // the library's forward leaves the bias to the caller
        }
        assertArrayEquals(y, TLoRAReference.forward(spec, p, w0, authors.get("x"), authors.tokens()), EXACT, key);
    }
}
