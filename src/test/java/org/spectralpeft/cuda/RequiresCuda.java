package org.spectralpeft.cuda;

import java.util.Optional;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.spectralpeft.Backends;

/** Disables a test class, with the reason in the report, when the CUDA backend cannot open here. */
public final class RequiresCuda implements ExecutionCondition {
    private static volatile Optional<String> reason;

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        Optional<String> r = reason;
        if (r == null) {
            r = Backends.cudaUnavailableReason();
            reason = r;
        }
        return r.map(why -> ConditionEvaluationResult.disabled("CUDA unavailable: " + why))
                .orElseGet(() -> ConditionEvaluationResult.enabled("CUDA available"));
    }
}
