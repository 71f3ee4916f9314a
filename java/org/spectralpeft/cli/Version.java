package org.spectralpeft.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine.IVersionProvider;

/**
 * {@code --version}: the jar manifest's Implementation-Version if it has one, else the version Maven
 * records in every jar it builds (META-INF/maven/.../pom.properties).
 */
final class Version implements IVersionProvider {
    static final String POM_PROPERTIES = "/META-INF/maven/org.spectralpeft/spectral-peft/pom.properties";

    @Override
    public String[] getVersion() throws IOException {
        try (InputStream pom = Version.class.getResourceAsStream(POM_PROPERTIES)) {
            return new String[] {"spectral-peft " + of(Version.class.getPackage().getImplementationVersion(), pom)};
        }
    }

    static String of(String manifestVersion, InputStream pomProperties) throws IOException {
        if (manifestVersion != null && !manifestVersion.isBlank()) {
            return manifestVersion;
        }
        if (pomProperties != null) {
            Properties p = new Properties();
            p.load(pomProperties);
            String version = p.getProperty("version");
            if (version != null && !version.isBlank()) {
                return version;
            }
        }
        // classes run from a build directory rather than the jar
        return "(version unknown: not run from the packaged jar)";
    }
}
