package org.spectralpeft;

/** A system property set for the length of a body: how tests and profiles take a route a per-call switch picks. */
public final class SystemProperty {
    private SystemProperty() {
    }

    /**
     * Runs {@code body} with a system property set (a switch the code reads per call), then puts back what was there.
     *
     * @param key the property
     * @param value its value during the body; null clears it for the body (the code's default)
     * @param body what runs with it
     */
    public static void with(String key, String value, Runnable body) {
        String old = System.getProperty(key);
        if (value == null) {
            System.clearProperty(key);
        } else {
            System.setProperty(key, value);
        }
        try {
            body.run();
        } finally {
            if (old == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, old);
            }
        }
    }
}
