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

    /** Creates a new, empty sibling of {@code target} and opens it for writing. */
    public static Partial createSibling(Path target) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
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
