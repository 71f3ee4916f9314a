package org.spectralpeft.fourierft.cuda;

import java.util.Optional;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.spectralpeft.Backends;

/**
 * Disables a test class, with the reason in the report, when the CUDA backend cannot open here. With the
 * environment variable {@code SPECTRALPEFT_REQUIRE_CUDA=1} (the GPU test bundle sets it) the class fails
 * instead: on a GPU machine a backend that does not open is a defect, not a reason to skip.
 */
public final class RequiresCuda implements ExecutionCondition {
    private static volatile Optional<String> reason;

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        Optional<String> r = reason;
        if (r == null) {
            r = Backends.cudaUnavailableReason();
            reason = r;
        }
        if (r.isPresent() && "1".equals(System.getenv("SPECTRALPEFT_REQUIRE_CUDA"))) {
            throw new IllegalStateException("CUDA is required here (SPECTRALPEFT_REQUIRE_CUDA=1) but the backend "
                    + "did not open: " + r.get());
        }
        return r.map(why -> ConditionEvaluationResult.disabled("CUDA unavailable: " + why))
                .orElseGet(() -> ConditionEvaluationResult.enabled("CUDA available"));
    }
}
