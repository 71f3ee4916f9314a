package org.spectralpeft.cpu;

import java.io.File;
import java.io.IOException;
import java.net.URL;
import java.nio.file.Path;
import org.bytedeco.javacpp.Loader;

/**
 * The OpenBLAS shared library carried by org.bytedeco's openblas natives jar, extracted into JavaCPP's cache
 * so that netlib's JNI BLAS can open it. Only the native files of that jar are used, not its Java bindings:
 * netlib's JNI passes the caller's arrays with offsets and without copying, which the bindings cannot.
 */
final class OpenBlasLibrary {
    /** The library and the runtime libraries it finds beside itself (its RUNPATH is $ORIGIN). */
    private static final String[] FILES = {"libopenblas.so.0", "libgfortran.so.5", "libquadmath.so.0", "libgcc_s.so.1"};

    private OpenBlasLibrary() {
    }

    /**
     * Extracts the library for this platform.
     *
     * @return the path of libopenblas, beside the libraries it needs
     * @throws IOException when the natives jar for this platform is not on the class path or cannot be extracted
     */
    static Path extract() throws IOException {
        String platform = Loader.getPlatform();
        if (!platform.startsWith("linux-")) {
            throw new IOException("no OpenBLAS files are known for " + platform);
        }
        String folder = "/org/bytedeco/openblas/" + platform + "/";
        File library = null;
        for (String name : FILES) {
            URL resource = OpenBlasLibrary.class.getResource(folder + name);
            if (resource == null) {
                if (library == null) {
                    throw new IOException("org.bytedeco:openblas natives for " + platform + " are not on the class path");
                }
                continue; // a runtime library the jar does without: the system's is used
            }
            File cached = Loader.cacheResource(resource);
            if (library == null) {
                library = cached;
            }
        }
        return library.toPath();
    }
}
