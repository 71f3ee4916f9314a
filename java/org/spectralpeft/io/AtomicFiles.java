package org.spectralpeft.io;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * Write-then-rename: output goes to a hidden sibling {@code .<name>.<random>.partial} (created with the
 * process's default permissions, unlike {@code Files.createTempFile}'s owner-only ones) and is moved over
 * the target only when complete.
 */
public final class AtomicFiles {
    private static final SecureRandom RANDOM = new SecureRandom();

    private AtomicFiles() {
    }

    /** A temporary sibling file, open for writing. */
    public record Partial(Path path, FileChannel channel) {
    }

    /**
     * Refuses a target that a rename must not replace or cannot reach: an empty path, a directory, a device
     * node, FIFO or socket (the rename would replace the node itself, {@code /dev/null} included, when run as
     * root), or a file whose directory does not exist (none is created, so none is left behind after a failure).
     */
    public static void checkTarget(Path target) {
        if (target.toString().isEmpty() || target.getFileName() == null) {
            throw new IllegalArgumentException("the output path '" + target + "' names no file");
        }
        if (Files.isDirectory(target)) {
            throw new IllegalArgumentException("the output " + target + " is a directory");
        }
        if (Files.exists(target) && !Files.isRegularFile(target)) {
            throw new IllegalArgumentException("the output " + target
                    + " exists and is not a regular file (a device, FIFO or socket); it cannot be replaced");
        }
        Path dir = target.toAbsolutePath().getParent();
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("the output's directory " + dir + " does not exist");
        }
    }

    /** Creates a new, empty sibling of {@code target} (checked by {@link #checkTarget}) and opens it for writing. */
    public static Partial createSibling(Path target) throws IOException {
        checkTarget(target);
        Path dir = target.toAbsolutePath().getParent();
        for (int attempt = 0; ; attempt++) {
            byte[] salt = new byte[6];
            RANDOM.nextBytes(salt);
            Path temp = dir.resolve("." + target.getFileName() + "." + HexFormat.of().formatHex(salt) + ".partial");
            try {
                return new Partial(temp, FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE));
            } catch (java.nio.file.FileAlreadyExistsException e) {
                if (attempt > 8) {
                    throw e;
                }
            }
        }
    }

    /** Moves the finished {@code temp} over {@code target}, atomically where the file system allows. */
    public static void moveIntoPlace(Path temp, Path target) throws IOException {
        try {
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Writes {@code text} (UTF-8) to {@code target} through a sibling temporary file. */
    public static void writeString(Path target, String text) throws IOException {
        Partial temp = createSibling(target);
        try (FileChannel channel = temp.channel()) {
            var bytes = java.nio.ByteBuffer.wrap(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
            channel.force(true);
            channel.close();
            moveIntoPlace(temp.path(), target);
        } finally {
            Files.deleteIfExists(temp.path());
        }
    }
}
