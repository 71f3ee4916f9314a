package org.spectralpeft.io;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryIteratorException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Write-then-rename: output goes to a hidden sibling {@code .<name>.<12 hex digits>.partial} (created with the
 * process's default permissions, unlike {@code Files.createTempFile}'s owner-only ones) and is moved over
 * the target only when complete.
 *
 * <p>No partial file outlives the JVM on any exit it sees: a shutdown hook (run on SIGINT, SIGTERM and
 * {@code System.exit}) removes the partials still open. A partial moved into place is no longer a partial,
 * so the hook cannot touch a completed output. After an exit the JVM cannot see (SIGKILL, a crash), the next
 * write to the same target removes the partials of its naming that no live writer holds: each writer keeps
 * its partial locked, and the operating system drops the lock with the process.
 */
public final class AtomicFiles {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final int SALT_BYTES = 6;

    // The partials created and neither moved into place nor removed. Guarded by itself, which also orders
    // the shutdown hook against moves: a partial is either moved or removed, never both.
    private static final Set<Partial> OPEN = new HashSet<>();
    private static boolean hookInstalled;
    private static boolean shuttingDown;

    private AtomicFiles() {
    }

    /** A temporary sibling file, open for writing. */
    public record Partial(Path path, FileChannel channel) {
    }

    /**
     * Refuses a target that a rename must not replace or cannot reach: an empty path, a directory, a device
     * node, FIFO or socket (the rename would replace the node itself, {@code /dev/null} included, when run as
     * root), or a file whose directory does not exist (none is created, so none is left behind after a failure).
     *
     * @param target the file to be written
     * @throws IllegalArgumentException if the target is unusable, saying why
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

    /**
     * Creates a new, empty sibling of {@code target} (checked by {@link #checkTarget}) and opens it for writing,
     * after removing abandoned partials of the same target. Finish it with {@link #moveIntoPlace} or {@link #discard}.
     *
     * @param target the file to be written
     * @return the open partial file
     * @throws IllegalArgumentException if the target is unusable, saying why
     * @throws IOException if the sibling cannot be created
     */
    public static Partial createSibling(Path target) throws IOException {
        checkTarget(target);
        Path dir = target.toAbsolutePath().getParent();
        String name = target.getFileName().toString();
        removeAbandonedPartials(dir, name);
        for (int attempt = 0; ; attempt++) {
            byte[] salt = new byte[SALT_BYTES];
            RANDOM.nextBytes(salt);
            Path temp = dir.resolve("." + name + "." + HexFormat.of().formatHex(salt) + ".partial");
            Partial partial;
            synchronized (OPEN) { // created and registered at once, so the hook sees every partial
                if (shuttingDown) {
                    throw new IOException("not writing " + target + ": the JVM is shutting down");
                }
                installHook();
                try {
                    partial = new Partial(temp, FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE));
                } catch (java.nio.file.FileAlreadyExistsException e) {
                    if (attempt > 8) {
                        throw e;
                    }
                    continue;
                }
                OPEN.add(partial);
            }
            try {
                partial.channel().tryLock(); // held until the channel closes; marks the partial as live
            } catch (IOException | OverlappingFileLockException | UnsupportedOperationException e) {
                // no locks here: the partial is unmarked, and a later write to the target may take it for abandoned
            }
            return partial;
        }
    }

    private static void installHook() throws IOException {
        if (hookInstalled) {
            return;
        }
        try {
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                synchronized (OPEN) {
                    shuttingDown = true;
                    removeOpenPartials();
                }
            }, "spectral-peft-partial-files"));
        } catch (IllegalStateException e) {
            throw new IOException("the JVM is shutting down", e);
        }
        hookInstalled = true;
    }

    /** Closes and deletes every partial still open: the shutdown hook's work. */
    static void removeOpenPartials() {
        synchronized (OPEN) {
            for (Partial p : OPEN) {
                // closed first, so a writer still running fails at once instead of writing to an unlinked file
                try {
                    p.channel().close();
                } catch (IOException e) {
                    // deleted below regardless
                }
                try {
                    Files.deleteIfExists(p.path());
                } catch (IOException e) {
                    // nothing more can be done while the JVM exits
                }
            }
            OPEN.clear();
        }
    }

    // Partials named for this target that no writer holds: left by a process killed outright. A partial of a
    // live writer is skipped, this JVM's by the registry, another process's by its lock.
    private static void removeAbandonedPartials(Path dir, String name) {
        Pattern own = Pattern.compile("\\." + Pattern.quote(name) + "\\.[0-9a-f]{" + 2 * SALT_BYTES + "}\\.partial");
        try (DirectoryStream<Path> found = Files.newDirectoryStream(dir, p -> own.matcher(p.getFileName().toString()).matches())) {
            for (Path p : found) {
                removeIfAbandoned(p);
            }
        } catch (IOException | DirectoryIteratorException e) {
            // best effort: a left-over partial costs space, not correctness
        }
    }

    private static void removeIfAbandoned(Path p) {
        synchronized (OPEN) {
            for (Partial live : OPEN) {
                if (live.path().equals(p)) {
                    return;
                }
            }
        }
        if (!Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (FileChannel channel = FileChannel.open(p, StandardOpenOption.WRITE)) { // an exclusive lock needs WRITE
            FileLock lock = channel.tryLock();
            if (lock != null) {
                Files.delete(p);
            }
        } catch (IOException | OverlappingFileLockException | UnsupportedOperationException e) {
            // held by this JVM under another name, not ours to delete, or no locks to tell: keep it
        }
    }

    /**
     * Moves the finished partial (its channel is closed here if the caller has not) over {@code target},
     * atomically where the file system allows. Fails if the partial was removed at shutdown.
     *
     * @param partial the finished partial
     * @param target the file to replace
     * @throws IOException if the move fails or the partial is gone
     */
    public static void moveIntoPlace(Partial partial, Path target) throws IOException {
        partial.channel().close();
        synchronized (OPEN) {
            if (!OPEN.contains(partial)) {
                throw new IOException(partial.path() + " was removed before it was moved to " + target
                        + " (the JVM is shutting down)");
            }
            try {
                Files.move(partial.path(), target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(partial.path(), target, StandardCopyOption.REPLACE_EXISTING);
            }
            OPEN.remove(partial);
        }
    }

    /**
     * Closes and deletes a partial not moved into place; does nothing for one that was. Idempotent.
     *
     * @param partial the partial to remove
     * @throws IOException if closing or deleting fails
     */
    public static void discard(Partial partial) throws IOException {
        try {
            partial.channel().close();
        } finally {
            synchronized (OPEN) {
                // deleted before it leaves the registry, so the hook removes it if this thread does not get to
                if (OPEN.contains(partial)) {
                    Files.deleteIfExists(partial.path());
                    OPEN.remove(partial);
                }
            }
        }
    }

    /**
     * Writes {@code text} (UTF-8) to {@code target} through a sibling temporary file.
     *
     * @param target the file to write
     * @param text the contents
     * @throws IllegalArgumentException if the target is unusable, saying why
     * @throws IOException if writing or moving fails
     */
    public static void writeString(Path target, String text) throws IOException {
        Partial temp = createSibling(target);
        try (FileChannel channel = temp.channel()) {
            var bytes = java.nio.ByteBuffer.wrap(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
            channel.force(true);
            moveIntoPlace(temp, target);
        } finally {
            discard(temp);
        }
    }
}
