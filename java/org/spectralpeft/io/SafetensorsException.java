package org.spectralpeft.io;

import java.io.IOException;
import java.nio.file.Path;

/** A safetensors file, index or adapter directory that cannot be read as it claims to be; names the file. */
public class SafetensorsException extends IOException {
    public SafetensorsException(Path file, String problem) {
        super(file + ": " + problem);
    }

    public SafetensorsException(Path file, String tensor, String problem) {
        super(file + ": tensor '" + tensor + "': " + problem);
    }
}
