package org.spectralpeft.cli;

/** A command line the tool cannot parse (exit status 2, with the usage). */
final class UsageException extends IllegalArgumentException {
    UsageException(String message) {
        super(message);
    }
}
