#!/usr/bin/env bash
# Builds a self-contained test bundle in native-build/bundle/ for a GPU machine that has the NVIDIA
# driver and CUDA 13 libraries but no Java, no Maven and no network:
#   jre/                       a small Java runtime made with jlink
#   lib/                       every compile, runtime and test dependency (Maven copy-dependencies)
#   spectral-peft.jar          target/classes (with the PTX kernels)
#   spectral-peft-tests.jar    target/test-classes (with the JMH benchmarks, if any)
#   test-resources/            src/test/resources (the committed fixtures; the tests read them as files)
#   run-gpu-tests.sh           runs the tests tagged "gpu" (or all with --all); see its header
#   run-benchmarks.sh          runs the JMH benchmarks; see its header
#   run-gpu-suite.sh           fixtures, all tests, memory report, GPU benchmarks, side by side; see its header
#   cuda-env.sh                finds the CUDA 13 libraries (sourced by the three above)
#
# usage: make-bundle.sh [--no-build]
#   --no-build   reuse target/ instead of running `mvn package` first
# environment:
#   MVN          the Maven command (default: mvn)
#   JLINK_JDK    the JDK whose jlink and jmods make the runtime (default: the JDK 17 that is
#                installed, else the one on the PATH); it must be 17 or newer
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
bundle=$repo/native-build/bundle
max_mib=60

build=1
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "error: unknown argument: $a (try --help)" >&2; exit 2 ;;
  esac
done

die() { echo "error: $*" >&2; exit 1; }
read -r -a mvn <<<"${MVN:-mvn}"

cd "$repo"
[ -f pom.xml ] || die "no pom.xml in $repo"

if [ $build = 1 ]; then
  echo "== mvn package"
  "${mvn[@]}" -B -q -DskipTests package
fi
[ -d target/classes ] || die "target/classes is missing; run without --no-build"
[ -d target/test-classes ] || die "target/test-classes is missing; run without --no-build"
ls target/classes/org/spectralpeft/kernels/*.ptx >/dev/null 2>&1 \
  || die "no PTX in target/classes/org/spectralpeft/kernels; the kernels were not built"

# ---------------------------------------------------------------------------------------------
# the JDK that makes the runtime
find_jdk() {
  local c j
  for c in "${JLINK_JDK:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk \
           /usr/lib/jvm/temurin-17-jdk-amd64 "${JAVA_HOME:-}"; do
    if [ -n "$c" ] && [ -x "$c/bin/jlink" ] && [ -d "$c/jmods" ]; then echo "$c"; return 0; fi
  done
  j=$(command -v jlink 2>/dev/null) || return 1
  c=$(dirname "$(dirname "$(readlink -f "$j")")")
  [ -d "$c/jmods" ] && { echo "$c"; return 0; }
  return 1
}
jdk=$(find_jdk) || die "no JDK with jlink and jmods found; set JLINK_JDK=/path/to/jdk (17 or newer)"
jdk_major=$("$jdk/bin/java" -XshowSettings:properties -version 2>&1 \
            | awk -F' = ' '/java.specification.version/ {print $2}')
[ "${jdk_major:-0}" -ge 17 ] || die "$jdk is Java ${jdk_major:-?}; the classes need 17 or newer"

# ---------------------------------------------------------------------------------------------
echo "== bundle in $bundle"
case $bundle in */native-build/bundle) ;; *) die "refusing to clear $bundle" ;; esac
rm -rf "$bundle"
mkdir -p "$bundle/lib"

echo "== dependencies"
"${mvn[@]}" -B -q dependency:copy-dependencies -DincludeScope=test -DoutputDirectory="$bundle/lib"
shopt -s nullglob
launcher=("$bundle"/lib/junit-platform-console-standalone-*.jar)
[ ${#launcher[@]} -eq 1 ] || die "junit-platform-console-standalone is not among the test dependencies"

# The console launcher jar already holds the JUnit Platform, Jupiter, Vintage and opentest4j
# (it lists them in META-INF/shadowed-artifacts); their separate copies would only duplicate classes.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && "$jdk/bin/jar" --extract --file "${launcher[0]}" META-INF/shadowed-artifacts)
if [ -f "$tmp/META-INF/shadowed-artifacts" ]; then
  while IFS=: read -r _group artifact version; do
    version=${version%$'\r'}
    j=$bundle/lib/$artifact-$version.jar
    if [ -f "$j" ]; then
      rm "$j"
      echo "  left out lib/$(basename "$j") (inside the launcher jar)"
    fi
  done <"$tmp/META-INF/shadowed-artifacts"
fi
# the junit-jupiter aggregator has no classes, only a module descriptor naming the jars above
for j in "$bundle"/lib/junit-jupiter-[0-9]*.jar; do
  rm "$j"
  echo "  left out lib/$(basename "$j") (an aggregator without classes)"
done

# EJML, the CPU GEMM candidate that FouRAGemmBenchmark compares and the library does not use, is not needed on
# a GPU machine. (netlib's BLAS stays: CpuFouRA computes with it.)
for j in "$bundle"/lib/ejml-*.jar; do
  rm "$j"
  echo "  left out lib/$(basename "$j") (a CPU benchmark's candidate)"
done

# OpenBLAS (the CPU GEMMs' native BLAS, 20 MB) does not fit beside the JRE and the CUDA jars; without it the CPU
# backend computes with netlib's Java BLAS, which the GPU tests do not time.
for j in "$bundle"/lib/openblas-*.jar; do
  rm "$j"
  echo "  left out lib/$(basename "$j") (the CPU backend uses netlib's Java BLAS instead)"
done

# jcuda-natives carries the JNI libraries of every JCuda module; the NVPTX compiler's alone is
# 24 MB. Keep the driver's and those of the modules the classes use.
uses() { grep -rqaF "$1" target/classes target/test-classes; }
for j in "$bundle"/lib/jcuda-natives-*.jar; do
  drop=()
  uses jcuda/nvptxcompiler/ || drop+=(libJNvPTXCompiler)
  uses jcuda/nvrtc/ || drop+=(libJNvrtc)
  uses jcuda/runtime/ || drop+=(libJCudaRuntime)
  uses jcuda/nvjitlink/ || drop+=(libJNvJitLink)
  [ ${#drop[@]} -gt 0 ] || continue
  rm -rf "$tmp/natives" && mkdir -p "$tmp/natives/files"
  (cd "$tmp/natives/files" && "$jdk/bin/jar" --extract --file "$j")
  mv "$tmp/natives/files/META-INF/MANIFEST.MF" "$tmp/natives/MANIFEST.MF"
  for d in "${drop[@]}"; do rm -f "$tmp/natives/files/lib/$d"-*.so; done
  rm "$j"
  "$jdk/bin/jar" --create --file "$j" --manifest "$tmp/natives/MANIFEST.MF" -C "$tmp/natives/files" .
  echo "  $(basename "$j"): left out ${drop[*]} (not used by the classes)"
done

echo "== test resources"
cp -r src/test/resources "$bundle/test-resources"

echo "== classes"
"$jdk/bin/jar" --create --file "$bundle/spectral-peft.jar" -C target/classes .
"$jdk/bin/jar" --create --file "$bundle/spectral-peft-tests.jar" -C target/test-classes .

# ---------------------------------------------------------------------------------------------
# Modules: what jdeps finds in the classes and every library, plus what is used only through
# reflection or service loading, less java.desktop.
#   jdk.zipfs        the JUnit launcher scans the tests jar through the zip file system provider
#   jdk.management   com.sun.management MXBeans (JMH profilers)
#   jdk.incubator.vector  the CPU backend's vector loops (loaded by reflection; run-benchmarks.sh adds it)
#   java.desktop     referenced only by commons-math3's geometry classes (AffineTransform), which
#                    JTransforms never reaches; it is the largest module, so it is left out
echo "== modules"
base_modules=java.base,java.logging,java.xml,java.sql,java.management,jdk.management,jdk.unsupported,jdk.zipfs,jdk.incubator.vector
excluded_modules=java.desktop
jars=("$bundle"/lib/*.jar)
jdeps_modules() {
  "$jdk/bin/jdeps" --multi-release "$jdk_major" --ignore-missing-deps -q --print-module-deps "$@" 2>/dev/null \
    | tail -1
}
if found=$(jdeps_modules "${jars[@]}" target/classes target/test-classes) && [ -n "$found" ]; then
  echo "  jdeps: $found"
else
  # one jar jdeps cannot resolve spoils the whole run; take them one at a time
  found=
  for j in "${jars[@]}" target/classes target/test-classes; do
    if m=$(jdeps_modules "$j") && [ -n "$m" ]; then
      found=$found${found:+,}$m
    else
      echo "warning: jdeps could not read $j; its modules come from the fixed list only" >&2
    fi
  done
  echo "  jdeps (jar by jar): $found"
fi
modules=$(printf '%s\n' ${base_modules//,/ } ${found//,/ } | sort -u \
          | grep -vxF -f <(printf '%s\n' ${excluded_modules//,/ }) | paste -sd, -)
echo "  jlink: $modules"

if [ "$jdk_major" -ge 21 ]; then compress=--compress=zip-6; else compress=--compress=2; fi
"$jdk/bin/jlink" --module-path "$jdk/jmods" --add-modules "$modules" \
  --strip-debug --no-header-files --no-man-pages "$compress" --output "$bundle/jre"
# The runtime's shared libraries keep their dynamic symbols (what the JVM and JNI look up) but lose their full
# symbol tables, which only name frames in a crash report: about 4 MiB of libjvm.so
if command -v strip >/dev/null 2>&1; then
  find "$bundle/jre" -name '*.so' -type f -exec strip --strip-unneeded {} +
fi
"$bundle/jre/bin/java" -version >/dev/null 2>&1 || die "the linked runtime does not start"
# jlink links the modules' shared legal notices; plain files survive any copy
find "$bundle/jre" -type l | while IFS= read -r l; do
  cp --remove-destination "$(readlink -f "$l")" "$l"
done

for s in run-gpu-tests.sh run-benchmarks.sh run-gpu-suite.sh cuda-env.sh; do
  cp "$script_dir/$s" "$bundle/$s"
  chmod +x "$bundle/$s"
done

# ---------------------------------------------------------------------------------------------
bytes=$(du -sb "$bundle" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
echo "== sizes"
du -sh "$bundle/jre" "$bundle/lib" "$bundle"/*.jar | sed 's/^/  /'
echo "bundle: $bundle, $mib MiB ($bytes bytes)"
if [ "$bytes" -gt $((max_mib * 1024 * 1024)) ]; then
  die "the bundle is $mib MiB, over the $max_mib MiB limit (the working tree travels in 64 MiB)"
fi
