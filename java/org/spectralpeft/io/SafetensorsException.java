package org.spectralpeft.io;

import java.io.IOException;
import java.nio.file.Path;

/** A safetensors file, index or adapter directory that cannot be read as it claims to be; names the file. */
public class SafetensorsException extends IOException {
    /**
     * A problem with a whole file.
     *
     * @param file the file
     * @param problem what is wrong
     */
    public SafetensorsException(Path file, String problem) {
        super(file + ": " + problem);
    }

    /**
     * A problem with one tensor of a file.
     *
     * @param file the file
     * @param tensor the tensor's name
     * @param problem what is wrong
     */
    public SafetensorsException(Path file, String tensor, String problem) {
        super(file + ": tensor '" + tensor + "': " + problem);
    }
}
