package org.spectralpeft.tlora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** The float64 reference against the values the authors' formulas give (authors_formulas.py). */
class TLoRAReferenceTest {
    /** The inputs have one decimal, rounded to float32 (0.1 is not exact there): a few 1e-8 apart, index errors 0.1. */
    private static final double EXACT = 1e-6;
    private final AuthorsCase authors = new AuthorsCase();

    @Test
    void transformsMatchTheAuthorsIndexOrder() {
        for (boolean kronecker : new boolean[] {false, true}) {
            TLoRASpec spec = AuthorsCase.spec(kronecker, TLoRASpec.Residual.LORA);
            TLoRAParameters p = TLoRAParameters.of(spec, authors.transform(kronecker), authors.residual(TLoRASpec.Residual.LORA));
            String name = kronecker ? "T_kron = kron(core0, core1)" : "T_tr = ttm_to_matrix(transform_core R=2)";
            assertArrayEquals(authors.get(name), TLoRAReference.transform(spec, p), EXACT, name);
        }
    }

    @Test
    void residualsMatchTheAuthorsIndexOrder() {
        String[] names = {"Delta_lora = lora_B @ lora_A", "Delta_ttv", "Delta_ttm"};
        for (TLoRASpec.Residual kind : TLoRASpec.Residual.values()) {
            TLoRASpec spec = AuthorsCase.spec(false, kind);
            TLoRAParameters p = TLoRAParameters.of(spec, authors.transform(false), authors.residual(kind));
            assertArrayEquals(authors.get(names[kind.ordinal()]), TLoRAReference.residual(spec, p), EXACT, kind.name());
        }
    }

    @ParameterizedTest
    @CsvSource({"false,LORA", "false,TR", "false,TTM", "true,LORA", "true,TR", "true,TTM"})
    void weightAndOutputMatchTheAuthors(boolean kronecker, TLoRASpec.Residual kind) {
        TLoRASpec spec = AuthorsCase.spec(kronecker, kind);
        TLoRAParameters p = TLoRAParameters.of(spec, authors.transform(kronecker), authors.residual(kind));
        double[] w0 = authors.get("W0");
        String key = AuthorsCase.key(kronecker, kind);
        assertArrayEquals(authors.get("W'" + key + " = W0@T + s*Delta"), TLoRAReference.weight(spec, p, w0), EXACT, key);
        double[] y = authors.get("y" + key + " = x@W'^T + b");
        double[] bias = authors.get("bias");
        for (int i = 0; i < y.length; i++) {
            y[i] -= bias[i % bias.length]; // the library's forward leaves the bias to the caller
        }
        assertArrayEquals(y, TLoRAReference.forward(spec, p, w0, authors.get("x"), AuthorsCase.TOKENS), EXACT, key);
    }
}
