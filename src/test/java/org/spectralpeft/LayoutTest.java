package org.spectralpeft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** ARCHITECTURE.md's package rules, checked on the main sources: who may import whom, and no family in the shared runtime. */
class LayoutTest {
    private static final Path SOURCES = Path.of("java/org/spectralpeft");
    private static final Pattern IMPORT = Pattern.compile("^import (?:static )?org\\.spectralpeft\\.([a-z.]+?)\\.[A-Z]", Pattern.MULTILINE);

    /** Package → the packages of this project it may import (besides itself). */
    private static final Map<String, Set<String>> ALLOWED = Map.ofEntries(
            Map.entry("core", Set.of()),
            Map.entry("cpu", Set.of("core")),
            Map.entry("cuda", Set.of("core", "cuda.internal")),
            Map.entry("cuda.internal", Set.of("core", "cuda")),
            Map.entry("fourierft", Set.of("core")),
            Map.entry("fourierft.cpu", Set.of("core", "cpu", "fourierft")),
            Map.entry("fourierft.cuda", Set.of("core", "cuda", "cuda.internal", "fourierft")),
            Map.entry("foura", Set.of("core")),
            Map.entry("foura.cpu", Set.of("core", "cpu", "foura")),
            Map.entry("foura.cuda", Set.of("core", "cuda", "cuda.internal", "foura")),
            Map.entry("tlora", Set.of("core")),
            Map.entry("tlora.cpu", Set.of("core", "cpu", "tlora")),
            Map.entry("tlora.cuda", Set.of("core", "cuda", "cuda.internal", "tlora")),
            Map.entry("io", Set.of("core")),
            Map.entry("peft", Set.of("core", "io", "fourierft", "foura", "tlora")));

    private static List<Path> javaFiles(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.toString().endsWith(".java")).sorted().toList();
        }
    }

    @Test
    void packagesImportOnlyWhatArchitectureMdAllows() throws IOException {
        Assumptions.assumeTrue(Files.isDirectory(SOURCES), "the main sources are not here (run from the repository root)");
        List<String> violations = new ArrayList<>();
        for (Map.Entry<String, Set<String>> e : ALLOWED.entrySet()) {
            Path dir = SOURCES.resolve(e.getKey().replace('.', '/'));
            assertTrue(Files.isDirectory(dir), "no package " + e.getKey());
            for (Path f : javaFiles(dir)) {
                Matcher m = IMPORT.matcher(Files.readString(f));
                while (m.find()) {
                    String imported = m.group(1);
                    if (!imported.equals(e.getKey()) && !e.getValue().contains(imported)) {
                        violations.add(SOURCES.relativize(f) + " imports " + imported);
                    }
                }
            }
        }
        assertEquals(List.of(), violations);
    }

    @Test
    void theSharedRuntimeNamesNoFamily() throws IOException {
        Assumptions.assumeTrue(Files.isDirectory(SOURCES), "the main sources are not here (run from the repository root)");
        Set<String> naming = new TreeSet<>();
        for (String shared : List.of("core", "cpu", "cuda", "cuda/internal")) {
            for (Path f : javaFiles(SOURCES.resolve(shared))) {
                String text = Files.readString(f).toLowerCase(java.util.Locale.ROOT);
                for (String family : List.of("fourierft", "foura", "tlora")) {
                    if (text.contains(family)) {
                        naming.add(SOURCES.relativize(f) + " names " + family);
                    }
                }
            }
        }
        assertEquals(Set.of(), naming);
    }
}
