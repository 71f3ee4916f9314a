package org.spectralpeft.core;

/**
 * Whether a backend is still open, shared by every family's backends: a closed backend refuses calls with
 * {@link IllegalStateException}, and closing is idempotent.
 */
public abstract class OpenState {
    private volatile boolean closed;

    /**
     * Short name of the backend, for messages.
     *
     * @return the description
     */
    public abstract String description();

    /**
     * Throws if the backend has been closed.
     *
     * @throws IllegalStateException if the backend is closed
     */
    protected final void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(description() + " backend is closed");
        }
    }

    /**
     * Marks the backend closed, so later calls throw.
     *
     * @return true if it was open until now, so the caller releases its resources exactly once
     */
    protected final boolean markClosed() {
        boolean wasOpen = !closed;
        closed = true;
        return wasOpen;
    }
}
